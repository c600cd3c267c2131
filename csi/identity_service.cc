#include "csi/identity_service.h"

#include "csi/csi_convert.h"
#include "csi/driver_info.h"

namespace berth::csi {

namespace v1 = ::csi::v1;

grpc::Status IdentityService::GetPluginInfo(grpc::ServerContext*, const v1::GetPluginInfoRequest*,
                                            v1::GetPluginInfoResponse* resp) {
  resp->set_name(std::string(kDriverName));
  resp->set_vendor_version(vendor_version_);
  (*resp->mutable_manifest())["capacity-enforced"] = backend_->capacityMode();
  return grpc::Status::OK;
}

grpc::Status IdentityService::GetPluginCapabilities(grpc::ServerContext*,
                                                    const v1::GetPluginCapabilitiesRequest*,
                                                    v1::GetPluginCapabilitiesResponse* resp) {
  for (auto type : {v1::PluginCapability::Service::CONTROLLER_SERVICE,
                    v1::PluginCapability::Service::VOLUME_ACCESSIBILITY_CONSTRAINTS}) {
    resp->add_capabilities()->mutable_service()->set_type(type);
  }
  resp->add_capabilities()->mutable_volume_expansion()->set_type(
      v1::PluginCapability::VolumeExpansion::ONLINE);
  return grpc::Status::OK;
}

grpc::Status IdentityService::Probe(grpc::ServerContext*, const v1::ProbeRequest*,
                                    v1::ProbeResponse* resp) {
  auto reserved = backend_->store().reservedBytes();
  if (!reserved.ok()) {
    return toGrpc(failedPrecondition("the CSI metadata database does not answer: ",
                                     reserved.status().message()));
  }
  resp->mutable_ready()->set_value(true);
  return grpc::Status::OK;
}

}  // namespace berth::csi
