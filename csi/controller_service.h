// csi.v1.Controller for the hostPath driver (CSI spec "Controller Service RPC"): thin
// handlers that check the request (INVALID_ARGUMENT naming the missing field), call
// the HostPathBackend and shape the answer. Capabilities: CREATE_DELETE_VOLUME,
// LIST_VOLUMES, LIST_VOLUMES_PUBLISHED_NODES, GET_CAPACITY, CREATE_DELETE_SNAPSHOT,
// LIST_SNAPSHOTS, CLONE_VOLUME, EXPAND_VOLUME, VOLUME_CONDITION, GET_VOLUME and
// SINGLE_NODE_MULTI_WRITER. ControllerPublish/Unpublish, GetSnapshot and
// ControllerModifyVolume are not offered (UNIMPLEMENTED), as the capabilities say.
//
// Every access mode is accepted: the driver serves one node, so the multi-node modes
// are satisfied trivially. accessibility_requirements.requisite must include this
// node's topology ({topology.hostpath.berth.dev/node: <node id>}), else
// RESOURCE_EXHAUSTED. Parameters are opaque and ignored.
//
// Thread-safety: thread-safe.
#pragma once

#include <string>

#include "csi/hostpath_backend.h"
#include "csi/proto/csi.grpc.pb.h"

namespace berth::csi {

class ControllerService final : public ::csi::v1::Controller::Service {
 public:
  explicit ControllerService(HostPathBackend* backend) : backend_(backend) {}

  grpc::Status CreateVolume(grpc::ServerContext*, const ::csi::v1::CreateVolumeRequest*,
                            ::csi::v1::CreateVolumeResponse*) override;
  grpc::Status DeleteVolume(grpc::ServerContext*, const ::csi::v1::DeleteVolumeRequest*,
                            ::csi::v1::DeleteVolumeResponse*) override;
  grpc::Status ValidateVolumeCapabilities(grpc::ServerContext*,
                                          const ::csi::v1::ValidateVolumeCapabilitiesRequest*,
                                          ::csi::v1::ValidateVolumeCapabilitiesResponse*) override;
  grpc::Status ListVolumes(grpc::ServerContext*, const ::csi::v1::ListVolumesRequest*,
                           ::csi::v1::ListVolumesResponse*) override;
  grpc::Status GetCapacity(grpc::ServerContext*, const ::csi::v1::GetCapacityRequest*,
                           ::csi::v1::GetCapacityResponse*) override;
  grpc::Status ControllerGetCapabilities(grpc::ServerContext*,
                                         const ::csi::v1::ControllerGetCapabilitiesRequest*,
                                         ::csi::v1::ControllerGetCapabilitiesResponse*) override;
  grpc::Status CreateSnapshot(grpc::ServerContext*, const ::csi::v1::CreateSnapshotRequest*,
                              ::csi::v1::CreateSnapshotResponse*) override;
  grpc::Status DeleteSnapshot(grpc::ServerContext*, const ::csi::v1::DeleteSnapshotRequest*,
                              ::csi::v1::DeleteSnapshotResponse*) override;
  grpc::Status ListSnapshots(grpc::ServerContext*, const ::csi::v1::ListSnapshotsRequest*,
                             ::csi::v1::ListSnapshotsResponse*) override;
  grpc::Status ControllerExpandVolume(grpc::ServerContext*,
                                      const ::csi::v1::ControllerExpandVolumeRequest*,
                                      ::csi::v1::ControllerExpandVolumeResponse*) override;
  grpc::Status ControllerGetVolume(grpc::ServerContext*,
                                   const ::csi::v1::ControllerGetVolumeRequest*,
                                   ::csi::v1::ControllerGetVolumeResponse*) override;

 private:
  Status createVolume(const ::csi::v1::CreateVolumeRequest& req,
                      ::csi::v1::CreateVolumeResponse* resp);
  Status validate(const ::csi::v1::ValidateVolumeCapabilitiesRequest& req,
                  ::csi::v1::ValidateVolumeCapabilitiesResponse* resp);
  Status listVolumes(const ::csi::v1::ListVolumesRequest& req,
                     ::csi::v1::ListVolumesResponse* resp);
  Status listSnapshots(const ::csi::v1::ListSnapshotsRequest& req,
                       ::csi::v1::ListSnapshotsResponse* resp);
  Status expand(const ::csi::v1::ControllerExpandVolumeRequest& req,
                ::csi::v1::ControllerExpandVolumeResponse* resp);
  Status getVolume(const ::csi::v1::ControllerGetVolumeRequest& req,
                   ::csi::v1::ControllerGetVolumeResponse* resp);

  HostPathBackend* backend_;
};

}  // namespace berth::csi
