#include "csi/node_service.h"

#include "common/log.h"
#include "csi/csi_convert.h"

namespace berth::csi {
namespace {

namespace v1 = ::csi::v1;

grpc::Status answer(std::string_view rpc, const Status& status) {
  if (!status.ok() && (status.code() == absl::StatusCode::kInternal ||
                       status.code() == absl::StatusCode::kUnknown ||
                       status.code() == absl::StatusCode::kPermissionDenied)) {
    log::get("csi")->error("{}: {}", rpc, status.ToString());
  }
  return toGrpc(status);
}

}  // namespace

Status NodeService::stage(const v1::NodeStageVolumeRequest& req) {
  if (req.volume_id().empty()) return invalidArgument("volume_id is required");
  if (req.staging_target_path().empty()) return invalidArgument("staging_target_path is required");
  if (!req.has_volume_capability()) return invalidArgument("volume_capability is required");
  ASSIGN_OR_RETURN(AccessType type,
                   capabilityAccessType(req.volume_capability(), "volume_capability"));
  StageRequest r;
  r.volume_id = req.volume_id();
  r.staging_path = req.staging_target_path();
  r.access_type = type;
  r.access_mode = req.volume_capability().access_mode().mode();
  return publisher_->stage(r);
}

grpc::Status NodeService::NodeStageVolume(grpc::ServerContext*,
                                          const v1::NodeStageVolumeRequest* req,
                                          v1::NodeStageVolumeResponse*) {
  return answer("NodeStageVolume", stage(*req));
}

grpc::Status NodeService::NodeUnstageVolume(grpc::ServerContext*,
                                            const v1::NodeUnstageVolumeRequest* req,
                                            v1::NodeUnstageVolumeResponse*) {
  if (req->volume_id().empty()) return toGrpc(invalidArgument("volume_id is required"));
  if (req->staging_target_path().empty()) {
    return toGrpc(invalidArgument("staging_target_path is required"));
  }
  return answer("NodeUnstageVolume",
                publisher_->unstage(req->volume_id(), req->staging_target_path()));
}

Status NodeService::publish(const v1::NodePublishVolumeRequest& req) {
  if (req.volume_id().empty()) return invalidArgument("volume_id is required");
  if (req.target_path().empty()) return invalidArgument("target_path is required");
  if (!req.has_volume_capability()) return invalidArgument("volume_capability is required");
  ASSIGN_OR_RETURN(AccessType type,
                   capabilityAccessType(req.volume_capability(), "volume_capability"));
  PublishRequest r;
  r.volume_id = req.volume_id();
  r.target_path = req.target_path();
  r.staging_path = req.staging_target_path();
  r.readonly = req.readonly();
  r.access_type = type;
  r.access_mode = req.volume_capability().access_mode().mode();
  if (type == AccessType::kMount) {
    const auto& flags = req.volume_capability().mount().mount_flags();
    r.mount_flags.assign(flags.begin(), flags.end());
  }
  return publisher_->publish(r);
}

grpc::Status NodeService::NodePublishVolume(grpc::ServerContext*,
                                            const v1::NodePublishVolumeRequest* req,
                                            v1::NodePublishVolumeResponse*) {
  return answer("NodePublishVolume", publish(*req));
}

grpc::Status NodeService::NodeUnpublishVolume(grpc::ServerContext*,
                                              const v1::NodeUnpublishVolumeRequest* req,
                                              v1::NodeUnpublishVolumeResponse*) {
  if (req->volume_id().empty()) return toGrpc(invalidArgument("volume_id is required"));
  if (req->target_path().empty()) return toGrpc(invalidArgument("target_path is required"));
  return answer("NodeUnpublishVolume",
                publisher_->unpublish(req->volume_id(), req->target_path()));
}

Status NodeService::stats(const v1::NodeGetVolumeStatsRequest& req,
                          v1::NodeGetVolumeStatsResponse* resp) {
  if (req.volume_id().empty()) return invalidArgument("volume_id is required");
  if (req.volume_path().empty()) return invalidArgument("volume_path is required");
  ASSIGN_OR_RETURN(VolumeStats s, publisher_->stats(req.volume_id(), req.volume_path()));
  auto* bytes = resp->add_usage();
  bytes->set_unit(v1::VolumeUsage::BYTES);
  bytes->set_total(s.bytes_total);
  bytes->set_used(s.bytes_used);
  bytes->set_available(s.bytes_available);
  if (s.has_inodes) {
    auto* inodes = resp->add_usage();
    inodes->set_unit(v1::VolumeUsage::INODES);
    inodes->set_total(s.inodes_total);
    inodes->set_used(s.inodes_used);
    inodes->set_available(s.inodes_free);
  }
  resp->mutable_volume_condition()->set_abnormal(s.condition.abnormal);
  resp->mutable_volume_condition()->set_message(s.condition.message);
  return absl::OkStatus();
}

grpc::Status NodeService::NodeGetVolumeStats(grpc::ServerContext*,
                                             const v1::NodeGetVolumeStatsRequest* req,
                                             v1::NodeGetVolumeStatsResponse* resp) {
  return answer("NodeGetVolumeStats", stats(*req, resp));
}

Status NodeService::expand(const v1::NodeExpandVolumeRequest& req,
                           v1::NodeExpandVolumeResponse* resp) {
  if (req.volume_id().empty()) return invalidArgument("volume_id is required");
  if (req.volume_path().empty()) return invalidArgument("volume_path is required");
  ASSIGN_OR_RETURN(auto v, backend_->store().getVolume(req.volume_id()));
  if (!v || v->state != RecordState::kReady) {
    return notFound("volume ", req.volume_id(), " does not exist");
  }
  if (req.has_volume_capability()) {
    ASSIGN_OR_RETURN(AccessType type,
                     capabilityAccessType(req.volume_capability(), "volume_capability"));
    if (type != v->access_type) {
      return invalidArgument("volume_capability asks for ", accessTypeName(type),
                             " access but volume ", v->id, " is a ",
                             accessTypeName(v->access_type), " volume");
    }
  }
  ASSIGN_OR_RETURN(int64_t capacity, publisher_->expand(req.volume_id(), req.volume_path()));
  if (req.has_capacity_range()) {
    const auto& range = req.capacity_range();
    if (range.required_bytes() > capacity) {
      return absl::OutOfRangeError(strCat("volume ", v->id, " has ", capacity,
                                          " bytes; expand it with ControllerExpandVolume to ",
                                          range.required_bytes(), " first"));
    }
    if (range.limit_bytes() > 0 && capacity > range.limit_bytes()) {
      return absl::OutOfRangeError(strCat("volume ", v->id, " has ", capacity,
                                          " bytes, above limit_bytes ", range.limit_bytes()));
    }
  }
  resp->set_capacity_bytes(capacity);
  return absl::OkStatus();
}

grpc::Status NodeService::NodeExpandVolume(grpc::ServerContext*,
                                           const v1::NodeExpandVolumeRequest* req,
                                           v1::NodeExpandVolumeResponse* resp) {
  return answer("NodeExpandVolume", expand(*req, resp));
}

grpc::Status NodeService::NodeGetCapabilities(grpc::ServerContext*,
                                              const v1::NodeGetCapabilitiesRequest*,
                                              v1::NodeGetCapabilitiesResponse* resp) {
  using Rpc = v1::NodeServiceCapability::RPC;
  for (auto type : {Rpc::STAGE_UNSTAGE_VOLUME, Rpc::GET_VOLUME_STATS, Rpc::EXPAND_VOLUME,
                    Rpc::VOLUME_CONDITION, Rpc::SINGLE_NODE_MULTI_WRITER}) {
    resp->add_capabilities()->mutable_rpc()->set_type(type);
  }
  return grpc::Status::OK;
}

grpc::Status NodeService::NodeGetInfo(grpc::ServerContext*, const v1::NodeGetInfoRequest*,
                                      v1::NodeGetInfoResponse* resp) {
  resp->set_node_id(backend_->options().node_id);
  resp->set_max_volumes_per_node(max_volumes_);
  fillTopology(backend_->options().node_id, resp->mutable_accessible_topology());
  return grpc::Status::OK;
}

}  // namespace berth::csi
