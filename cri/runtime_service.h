// CRI v1 RuntimeService (runtime.v1 api.proto "service RuntimeService"): the
// runtime-wide calls (Version, Status with RuntimeReady and NetworkReady, RuntimeConfig,
// UpdateRuntimeConfig) and, through a PodManager (pod_manager.h), the pod sandbox and
// container calls, ExecSync, ReopenContainerLog, the stats calls and GetContainerEvents.
// Exec, Attach and PortForward (the streaming server), CheckpointContainer and the
// metrics calls answer Unimplemented with what to use instead.
//
// Thread-safety: handlers run concurrently on gRPC's threads; the probes passed in
// must be thread-safe.
#pragma once

#include <functional>
#include <string>

#include "common/status.h"
#include "cri/pod_manager.h"
#include "cri/proto/api.grpc.pb.h"

namespace berth::cri {

// What the runtime-wide calls report.
struct RuntimeInfo {
  std::string runtime_version;  // berth's version, e.g. "0.1.0"
  bool systemd_cgroup_driver = false;
  // OK when the runtime can run pods; else its message becomes the RuntimeReady
  // condition's message (reason "RuntimeNotReady").
  std::function<Status()> runtime_ready = [] { return absl::OkStatus(); };
  // OK when a pod network is configured; else NetworkReady is false with reason
  // "NetworkPluginNotReady" and the status message (e.g. "no network config found in
  // /etc/cni/net.d").
  std::function<Status()> network_ready = [] { return absl::OkStatus(); };
};

class CriRuntimeService : public runtime::v1::RuntimeService::Service {
 public:
  // `pods` may be null (then pod and container calls answer Unavailable); it must
  // outlive the service.
  explicit CriRuntimeService(RuntimeInfo info, PodManager* pods = nullptr)
      : info_(std::move(info)), pods_(pods) {}

  grpc::Status Version(grpc::ServerContext* context, const runtime::v1::VersionRequest* request,
                       runtime::v1::VersionResponse* response) override;
  grpc::Status Status(grpc::ServerContext* context, const runtime::v1::StatusRequest* request,
                      runtime::v1::StatusResponse* response) override;
  grpc::Status RuntimeConfig(grpc::ServerContext* context,
                             const runtime::v1::RuntimeConfigRequest* request,
                             runtime::v1::RuntimeConfigResponse* response) override;

  grpc::Status RunPodSandbox(grpc::ServerContext* context,
                    const runtime::v1::RunPodSandboxRequest* request,
                    runtime::v1::RunPodSandboxResponse* response) override;
  grpc::Status StopPodSandbox(grpc::ServerContext* context,
                    const runtime::v1::StopPodSandboxRequest* request,
                    runtime::v1::StopPodSandboxResponse* response) override;
  grpc::Status RemovePodSandbox(grpc::ServerContext* context,
                    const runtime::v1::RemovePodSandboxRequest* request,
                    runtime::v1::RemovePodSandboxResponse* response) override;
  grpc::Status PodSandboxStatus(grpc::ServerContext* context,
                    const runtime::v1::PodSandboxStatusRequest* request,
                    runtime::v1::PodSandboxStatusResponse* response) override;
  grpc::Status ListPodSandbox(grpc::ServerContext* context,
                    const runtime::v1::ListPodSandboxRequest* request,
                    runtime::v1::ListPodSandboxResponse* response) override;
  grpc::Status CreateContainer(grpc::ServerContext* context,
                    const runtime::v1::CreateContainerRequest* request,
                    runtime::v1::CreateContainerResponse* response) override;
  grpc::Status StartContainer(grpc::ServerContext* context,
                    const runtime::v1::StartContainerRequest* request,
                    runtime::v1::StartContainerResponse* response) override;
  grpc::Status StopContainer(grpc::ServerContext* context,
                    const runtime::v1::StopContainerRequest* request,
                    runtime::v1::StopContainerResponse* response) override;
  grpc::Status RemoveContainer(grpc::ServerContext* context,
                    const runtime::v1::RemoveContainerRequest* request,
                    runtime::v1::RemoveContainerResponse* response) override;
  grpc::Status ListContainers(grpc::ServerContext* context,
                    const runtime::v1::ListContainersRequest* request,
                    runtime::v1::ListContainersResponse* response) override;
  grpc::Status ContainerStatus(grpc::ServerContext* context,
                    const runtime::v1::ContainerStatusRequest* request,
                    runtime::v1::ContainerStatusResponse* response) override;
  grpc::Status UpdateContainerResources(grpc::ServerContext* context,
                    const runtime::v1::UpdateContainerResourcesRequest* request,
                    runtime::v1::UpdateContainerResourcesResponse* response) override;
  grpc::Status ReopenContainerLog(grpc::ServerContext* context,
                    const runtime::v1::ReopenContainerLogRequest* request,
                    runtime::v1::ReopenContainerLogResponse* response) override;
  grpc::Status ExecSync(grpc::ServerContext* context,
                    const runtime::v1::ExecSyncRequest* request,
                    runtime::v1::ExecSyncResponse* response) override;
  grpc::Status UpdateRuntimeConfig(grpc::ServerContext* context,
                    const runtime::v1::UpdateRuntimeConfigRequest* request,
                    runtime::v1::UpdateRuntimeConfigResponse* response) override;
  grpc::Status ContainerStats(grpc::ServerContext* context,
                    const runtime::v1::ContainerStatsRequest* request,
                    runtime::v1::ContainerStatsResponse* response) override;
  grpc::Status ListContainerStats(grpc::ServerContext* context,
                    const runtime::v1::ListContainerStatsRequest* request,
                    runtime::v1::ListContainerStatsResponse* response) override;
  grpc::Status PodSandboxStats(grpc::ServerContext* context,
                    const runtime::v1::PodSandboxStatsRequest* request,
                    runtime::v1::PodSandboxStatsResponse* response) override;
  grpc::Status ListPodSandboxStats(grpc::ServerContext* context,
                    const runtime::v1::ListPodSandboxStatsRequest* request,
                    runtime::v1::ListPodSandboxStatsResponse* response) override;
  grpc::Status GetContainerEvents(
      grpc::ServerContext* context, const runtime::v1::GetEventsRequest* request,
      grpc::ServerWriter<runtime::v1::ContainerEventResponse>* writer) override;

 private:
  RuntimeInfo info_;
  PodManager* pods_;
};

}  // namespace berth::cri
