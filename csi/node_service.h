// csi.v1.Node for the hostPath driver (CSI spec "Node Service RPC"): request checks
// (INVALID_ARGUMENT naming the missing field) over NodePublisher, plus
// NodeGetCapabilities (STAGE_UNSTAGE_VOLUME, GET_VOLUME_STATS, EXPAND_VOLUME,
// VOLUME_CONDITION, SINGLE_NODE_MULTI_WRITER) and NodeGetInfo (node id,
// max_volumes_per_node, topology {topology.hostpath.berth.dev/node: <node id>}).
// Thread-safety: thread-safe.
#pragma once

#include <cstdint>

#include "csi/node_publisher.h"
#include "csi/proto/csi.grpc.pb.h"

namespace berth::csi {

class NodeService final : public ::csi::v1::Node::Service {
 public:
  // `max_volumes_per_node` 0 means "no limit stated".
  NodeService(HostPathBackend* backend, NodePublisher* publisher, int64_t max_volumes_per_node)
      : backend_(backend), publisher_(publisher), max_volumes_(max_volumes_per_node) {}

  grpc::Status NodeStageVolume(grpc::ServerContext*, const ::csi::v1::NodeStageVolumeRequest*,
                               ::csi::v1::NodeStageVolumeResponse*) override;
  grpc::Status NodeUnstageVolume(grpc::ServerContext*,
                                 const ::csi::v1::NodeUnstageVolumeRequest*,
                                 ::csi::v1::NodeUnstageVolumeResponse*) override;
  grpc::Status NodePublishVolume(grpc::ServerContext*,
                                 const ::csi::v1::NodePublishVolumeRequest*,
                                 ::csi::v1::NodePublishVolumeResponse*) override;
  grpc::Status NodeUnpublishVolume(grpc::ServerContext*,
                                   const ::csi::v1::NodeUnpublishVolumeRequest*,
                                   ::csi::v1::NodeUnpublishVolumeResponse*) override;
  grpc::Status NodeGetVolumeStats(grpc::ServerContext*,
                                  const ::csi::v1::NodeGetVolumeStatsRequest*,
                                  ::csi::v1::NodeGetVolumeStatsResponse*) override;
  grpc::Status NodeExpandVolume(grpc::ServerContext*, const ::csi::v1::NodeExpandVolumeRequest*,
                                ::csi::v1::NodeExpandVolumeResponse*) override;
  grpc::Status NodeGetCapabilities(grpc::ServerContext*,
                                   const ::csi::v1::NodeGetCapabilitiesRequest*,
                                   ::csi::v1::NodeGetCapabilitiesResponse*) override;
  grpc::Status NodeGetInfo(grpc::ServerContext*, const ::csi::v1::NodeGetInfoRequest*,
                           ::csi::v1::NodeGetInfoResponse*) override;

 private:
  Status stage(const ::csi::v1::NodeStageVolumeRequest& req);
  Status publish(const ::csi::v1::NodePublishVolumeRequest& req);
  Status stats(const ::csi::v1::NodeGetVolumeStatsRequest& req,
               ::csi::v1::NodeGetVolumeStatsResponse* resp);
  Status expand(const ::csi::v1::NodeExpandVolumeRequest& req,
                ::csi::v1::NodeExpandVolumeResponse* resp);

  HostPathBackend* backend_;
  NodePublisher* publisher_;
  int64_t max_volumes_;
};

}  // namespace berth::csi
