#include "cri/runtime_service.h"

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
