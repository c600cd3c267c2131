#include "cri/runtime_service.h"

#include "cri/grpc_status.h"
#include "nlohmann/json.hpp"

namespace berth::cri {

namespace v1 = runtime::v1;

grpc::Status CriRuntimeService::Version(grpc::ServerContext*, const v1::VersionRequest*,
                                        v1::VersionResponse* response) {
  // "version" is the CRI API version of the runtime, as containerd and CRI-O report it.
  response->set_version("0.1.0");
  response->set_runtime_name("berth");
  response->set_runtime_version(info_.runtime_version);
  response->set_runtime_api_version("v1");
  return grpc::Status::OK;
}

grpc::Status CriRuntimeService::Status(grpc::ServerContext*, const v1::StatusRequest* request,
                                       v1::StatusResponse* response) {
  auto add = [&](const char* type, const berth::Status& st, const char* reason) {
    v1::RuntimeCondition* c = response->mutable_status()->add_conditions();
    c->set_type(type);
    c->set_status(st.ok());
    if (!st.ok()) {
      c->set_reason(reason);
      c->set_message(std::string(st.message()));
    }
  };
  add("RuntimeReady", info_.runtime_ready(), "RuntimeNotReady");
  add("NetworkReady", info_.network_ready(), "NetworkPluginNotReady");
  v1::RuntimeHandler* handler = response->add_runtime_handlers();
  handler->set_name("");
  if (request->verbose()) {
    nlohmann::json config = {
        {"runtimeVersion", info_.runtime_version},
        {"cgroupDriver", info_.systemd_cgroup_driver ? "systemd" : "cgroupfs"}};
    (*response->mutable_info())["config"] = config.dump();
  }
  return grpc::Status::OK;
}

grpc::Status CriRuntimeService::RuntimeConfig(grpc::ServerContext*,
                                              const v1::RuntimeConfigRequest*,
                                              v1::RuntimeConfigResponse* response) {
  response->mutable_linux()->set_cgroup_driver(info_.systemd_cgroup_driver ? v1::SYSTEMD
                                                                           : v1::CGROUPFS);
  return grpc::Status::OK;
}

}  // namespace berth::cri

// ---------------------------------------------------------------------------
// pods and containers (pod_manager.h does the work)

namespace berth::cri {

namespace {

grpc::Status noPods() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      "berthd runs without its pod runtime (see its log for why)");
}

}  // namespace

#define BERTH_NEED_PODS() \
  if (pods_ == nullptr) return noPods()

grpc::Status CriRuntimeService::RunPodSandbox(grpc::ServerContext*,
                                              const v1::RunPodSandboxRequest* request,
                                              v1::RunPodSandboxResponse* response) {
  BERTH_NEED_PODS();
  auto id = pods_->runPodSandbox(request->config(), request->runtime_handler());
  if (!id.ok()) return toGrpc(id.status());
  response->set_pod_sandbox_id(*id);
  return grpc::Status::OK;
}

grpc::Status CriRuntimeService::StopPodSandbox(grpc::ServerContext*,
                                               const v1::StopPodSandboxRequest* request,
                                               v1::StopPodSandboxResponse*) {
  BERTH_NEED_PODS();
  return toGrpc(pods_->stopPodSandbox(request->pod_sandbox_id()));
}

grpc::Status CriRuntimeService::RemovePodSandbox(grpc::ServerContext*,
                                                 const v1::RemovePodSandboxRequest* request,
                                                 v1::RemovePodSandboxResponse*) {
  BERTH_NEED_PODS();
  return toGrpc(pods_->removePodSandbox(request->pod_sandbox_id()));
}

grpc::Status CriRuntimeService::PodSandboxStatus(grpc::ServerContext*,
                                                 const v1::PodSandboxStatusRequest* request,
                                                 v1::PodSandboxStatusResponse* response) {
  BERTH_NEED_PODS();
  auto r = pods_->podSandboxStatus(request->pod_sandbox_id(), request->verbose());
  if (!r.ok()) return toGrpc(r.status());
  *response = std::move(*r);
  return grpc::Status::OK;
}

grpc::Status CriRuntimeService::ListPodSandbox(grpc::ServerContext*,
                                               const v1::ListPodSandboxRequest* request,
                                               v1::ListPodSandboxResponse* response) {
  BERTH_NEED_PODS();
  auto r = pods_->listPodSandbox(request->filter());
  if (!r.ok()) return toGrpc(r.status());
  for (auto& p : *r) *response->add_items() = std::move(p);
  return grpc::Status::OK;
}

grpc::Status CriRuntimeService::CreateContainer(grpc::ServerContext*,
                                                const v1::CreateContainerRequest* request,
                                                v1::CreateContainerResponse* response) {
  BERTH_NEED_PODS();
  auto id = pods_->createContainer(request->pod_sandbox_id(), request->config(),
                                   request->sandbox_config());
  if (!id.ok()) return toGrpc(id.status());
  response->set_container_id(*id);
  return grpc::Status::OK;
}

grpc::Status CriRuntimeService::StartContainer(grpc::ServerContext*,
                                               const v1::StartContainerRequest* request,
                                               v1::StartContainerResponse*) {
  BERTH_NEED_PODS();
  return toGrpc(pods_->startContainer(request->container_id()));
}

grpc::Status CriRuntimeService::StopContainer(grpc::ServerContext*,
                                              const v1::StopContainerRequest* request,
                                              v1::StopContainerResponse*) {
  BERTH_NEED_PODS();
  return toGrpc(pods_->stopContainer(request->container_id(), request->timeout()));
}

grpc::Status CriRuntimeService::RemoveContainer(grpc::ServerContext*,
                                                const v1::RemoveContainerRequest* request,
                                                v1::RemoveContainerResponse*) {
  BERTH_NEED_PODS();
  return toGrpc(pods_->removeContainer(request->container_id()));
}

grpc::Status CriRuntimeService::ListContainers(grpc::ServerContext*,
                                               const v1::ListContainersRequest* request,
                                               v1::ListContainersResponse* response) {
  BERTH_NEED_PODS();
  auto r = pods_->listContainers(request->filter());
  if (!r.ok()) return toGrpc(r.status());
  for (auto& c : *r) *response->add_containers() = std::move(c);
  return grpc::Status::OK;
}

grpc::Status CriRuntimeService::ContainerStatus(grpc::ServerContext*,
                                                const v1::ContainerStatusRequest* request,
                                                v1::ContainerStatusResponse* response) {
  BERTH_NEED_PODS();
  auto r = pods_->containerStatus(request->container_id(), request->verbose());
  if (!r.ok()) return toGrpc(r.status());
  *response = std::move(*r);
  return grpc::Status::OK;
}

grpc::Status CriRuntimeService::UpdateContainerResources(
    grpc::ServerContext*, const v1::UpdateContainerResourcesRequest* request,
    v1::UpdateContainerResourcesResponse*) {
  BERTH_NEED_PODS();
  return toGrpc(pods_->updateContainerResources(request->container_id(), request->linux()));
}

grpc::Status CriRuntimeService::ReopenContainerLog(grpc::ServerContext*,
                                                   const v1::ReopenContainerLogRequest* request,
                                                   v1::ReopenContainerLogResponse*) {
  BERTH_NEED_PODS();
  return toGrpc(pods_->reopenContainerLog(request->container_id()));
}

grpc::Status CriRuntimeService::ExecSync(grpc::ServerContext*, const v1::ExecSyncRequest* request,
                                         v1::ExecSyncResponse* response) {
  BERTH_NEED_PODS();
  std::vector<std::string> cmd(request->cmd().begin(), request->cmd().end());
  auto r = pods_->execSync(request->container_id(), cmd, request->timeout());
  if (!r.ok()) return toGrpc(r.status());
  *response = std::move(*r);
  return grpc::Status::OK;
}

grpc::Status CriRuntimeService::ContainerStats(grpc::ServerContext*,
                                               const v1::ContainerStatsRequest* request,
                                               v1::ContainerStatsResponse* response) {
  BERTH_NEED_PODS();
  auto r = pods_->containerStats(request->container_id());
  if (!r.ok()) return toGrpc(r.status());
  *response->mutable_stats() = std::move(*r);
  return grpc::Status::OK;
}

grpc::Status CriRuntimeService::ListContainerStats(grpc::ServerContext*,
                                                   const v1::ListContainerStatsRequest* request,
                                                   v1::ListContainerStatsResponse* response) {
  BERTH_NEED_PODS();
  auto r = pods_->listContainerStats(request->filter());
  if (!r.ok()) return toGrpc(r.status());
  for (auto& s : *r) *response->add_stats() = std::move(s);
  return grpc::Status::OK;
}

grpc::Status CriRuntimeService::PodSandboxStats(grpc::ServerContext*,
                                                const v1::PodSandboxStatsRequest* request,
                                                v1::PodSandboxStatsResponse* response) {
  BERTH_NEED_PODS();
  auto r = pods_->podSandboxStats(request->pod_sandbox_id());
  if (!r.ok()) return toGrpc(r.status());
  *response->mutable_stats() = std::move(*r);
  return grpc::Status::OK;
}

grpc::Status CriRuntimeService::ListPodSandboxStats(grpc::ServerContext*,
                                                    const v1::ListPodSandboxStatsRequest* request,
                                                    v1::ListPodSandboxStatsResponse* response) {
  BERTH_NEED_PODS();
  auto r = pods_->listPodSandboxStats(request->filter());
  if (!r.ok()) return toGrpc(r.status());
  for (auto& s : *r) *response->add_stats() = std::move(s);
  return grpc::Status::OK;
}

grpc::Status CriRuntimeService::UpdateRuntimeConfig(grpc::ServerContext*,
                                                    const v1::UpdateRuntimeConfigRequest*,
                                                    v1::UpdateRuntimeConfigResponse*) {
  // kubelet passes the node's pod CIDR here; the CNI config carries it for berth.
  return grpc::Status::OK;
}

grpc::Status CriRuntimeService::GetContainerEvents(
    grpc::ServerContext* context, const v1::GetEventsRequest*,
    grpc::ServerWriter<v1::ContainerEventResponse>* writer) {
  BERTH_NEED_PODS();
  auto queue = pods_->subscribeEvents();
  while (!context->IsCancelled() && !queue->closed()) {
    auto event = queue->next(std::chrono::milliseconds(500));
    if (!event) continue;
    if (!writer->Write(*event)) break;
  }
  pods_->unsubscribeEvents(queue);
  return grpc::Status::OK;
}

#undef BERTH_NEED_PODS

}  // namespace berth::cri
