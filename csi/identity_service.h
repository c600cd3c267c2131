// csi.v1.Identity for the hostPath driver (CSI spec "Identity Service RPC"):
// GetPluginInfo answers kDriverName and the berth version; GetPluginCapabilities
// advertises CONTROLLER_SERVICE, VOLUME_ACCESSIBILITY_CONSTRAINTS and ONLINE volume
// expansion; Probe reports ready once the metadata database answers (and
// FAILED_PRECONDITION, "plugin not healthy", when it does not).
// Thread-safety: thread-safe (gRPC calls handlers from many threads).
#pragma once

#include <string>

#include "csi/hostpath_backend.h"
#include "csi/proto/csi.grpc.pb.h"

namespace berth::csi {

class IdentityService final : public ::csi::v1::Identity::Service {
 public:
  IdentityService(HostPathBackend* backend, std::string vendor_version)
      : backend_(backend), vendor_version_(std::move(vendor_version)) {}

  grpc::Status GetPluginInfo(grpc::ServerContext* ctx, const ::csi::v1::GetPluginInfoRequest* req,
                             ::csi::v1::GetPluginInfoResponse* resp) override;
  grpc::Status GetPluginCapabilities(grpc::ServerContext* ctx,
                                     const ::csi::v1::GetPluginCapabilitiesRequest* req,
                                     ::csi::v1::GetPluginCapabilitiesResponse* resp) override;
  grpc::Status Probe(grpc::ServerContext* ctx, const ::csi::v1::ProbeRequest* req,
                     ::csi::v1::ProbeResponse* resp) override;

 private:
  HostPathBackend* backend_;
  std::string vendor_version_;
};

}  // namespace berth::csi
