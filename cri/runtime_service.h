// CRI v1 RuntimeService (runtime.v1 api.proto "service RuntimeService"). This stage
// serves the runtime-wide calls: Version, Status (RuntimeReady and NetworkReady with
// reason and message) and RuntimeConfig (the cgroup driver). Pod and container calls
// answer Unimplemented until the shim-based pod lifecycle is wired in (issue 6).
//
// Thread-safety: handlers run concurrently on gRPC's threads; the probes passed in
// must be thread-safe.
#pragma once

#include <functional>
#include <string>

#include "common/status.h"
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
  explicit CriRuntimeService(RuntimeInfo info) : info_(std::move(info)) {}

  grpc::Status Version(grpc::ServerContext* context, const runtime::v1::VersionRequest* request,
                       runtime::v1::VersionResponse* response) override;
  grpc::Status Status(grpc::ServerContext* context, const runtime::v1::StatusRequest* request,
                      runtime::v1::StatusResponse* response) override;
  grpc::Status RuntimeConfig(grpc::ServerContext* context,
                             const runtime::v1::RuntimeConfigRequest* request,
                             runtime::v1::RuntimeConfigResponse* response) override;

 private:
  RuntimeInfo info_;
};

}  // namespace berth::cri
