#include "csi/controller_service.h"

#include "common/log.h"
#include "csi/csi_convert.h"

namespace berth::csi {
namespace {

namespace v1 = ::csi::v1;

// Logs failures the caller cannot fix by changing the request (internal errors).
grpc::Status answer(std::string_view rpc, const Status& status) {
  if (!status.ok() && (status.code() == absl::StatusCode::kInternal ||
                       status.code() == absl::StatusCode::kUnknown ||
                       status.code() == absl::StatusCode::kDataLoss)) {
    log::get("csi")->error("{}: {}", rpc, status.ToString());
  }
  return toGrpc(status);
}

}  // namespace

Status ControllerService::createVolume(const v1::CreateVolumeRequest& req,
                                       v1::CreateVolumeResponse* resp) {
  if (req.name().empty()) return invalidArgument("name is required");
  ASSIGN_OR_RETURN(AccessType type,
                   capabilitiesAccessType(req.volume_capabilities(), "volume_capabilities"));
  const std::string& node = backend_->options().node_id;
  if (req.has_accessibility_requirements() &&
      req.accessibility_requirements().requisite_size() > 0) {
    bool here = false;
    for (const auto& t : req.accessibility_requirements().requisite()) {
      if (topologyIsThisNode(t, node)) here = true;
    }
    if (!here) {
      return absl::ResourceExhaustedError(
          strCat("accessibility_requirements.requisite does not include this node (",
                 "topology.hostpath.berth.dev/node=", node, "); volumes live on the node "
                 "that serves them"));
    }
  }
  CreateVolumeParams p;
  p.name = req.name();
  p.access_type = type;
  if (req.has_capacity_range()) {
    p.required_bytes = req.capacity_range().required_bytes();
    p.limit_bytes = req.capacity_range().limit_bytes();
  }
  if (req.has_volume_content_source()) {
    const auto& src = req.volume_content_source();
    if (src.has_snapshot()) {
      if (src.snapshot().snapshot_id().empty()) {
        return invalidArgument("volume_content_source.snapshot.snapshot_id is required");
      }
      p.source_kind = "snapshot";
      p.source_id = src.snapshot().snapshot_id();
    } else if (src.has_volume()) {
      if (src.volume().volume_id().empty()) {
        return invalidArgument("volume_content_source.volume.volume_id is required");
      }
      p.source_kind = "volume";
      p.source_id = src.volume().volume_id();
    } else {
      return invalidArgument("volume_content_source: snapshot or volume is required");
    }
  }
  ASSIGN_OR_RETURN(VolumeRecord v, backend_->createVolume(p));
  fillVolume(v, node, resp->mutable_volume());
  return absl::OkStatus();
}

grpc::Status ControllerService::CreateVolume(grpc::ServerContext*,
                                             const v1::CreateVolumeRequest* req,
                                             v1::CreateVolumeResponse* resp) {
  return answer("CreateVolume", createVolume(*req, resp));
}

grpc::Status ControllerService::DeleteVolume(grpc::ServerContext*,
                                             const v1::DeleteVolumeRequest* req,
                                             v1::DeleteVolumeResponse*) {
  if (req->volume_id().empty()) return toGrpc(invalidArgument("volume_id is required"));
  return answer("DeleteVolume", backend_->deleteVolume(req->volume_id()));
}

Status ControllerService::validate(const v1::ValidateVolumeCapabilitiesRequest& req,
                                   v1::ValidateVolumeCapabilitiesResponse* resp) {
  if (req.volume_id().empty()) return invalidArgument("volume_id is required");
  if (req.volume_capabilities().empty()) return invalidArgument("volume_capabilities is required");
  ASSIGN_OR_RETURN(auto v, backend_->store().getVolume(req.volume_id()));
  if (!v || v->state != RecordState::kReady) {
    return notFound("volume ", req.volume_id(), " does not exist");
  }
  for (int i = 0; i < req.volume_capabilities_size(); ++i) {
    auto type = capabilityAccessType(req.volume_capabilities(i),
                                     strCat("volume_capabilities[", i, "]"));
    if (!type.ok()) return type.status();
    if (*type != v->access_type) {
      resp->set_message(strCat("volume ", v->id, " is a ", accessTypeName(v->access_type),
                               " volume; volume_capabilities[", i, "] asks for ",
                               accessTypeName(*type), " access"));
      return absl::OkStatus();
    }
  }
  auto* confirmed = resp->mutable_confirmed();
  *confirmed->mutable_volume_context() = req.volume_context();
  *confirmed->mutable_volume_capabilities() = req.volume_capabilities();
  *confirmed->mutable_parameters() = req.parameters();
  *confirmed->mutable_mutable_parameters() = req.mutable_parameters();
  return absl::OkStatus();
}

grpc::Status ControllerService::ValidateVolumeCapabilities(
    grpc::ServerContext*, const v1::ValidateVolumeCapabilitiesRequest* req,
    v1::ValidateVolumeCapabilitiesResponse* resp) {
  return answer("ValidateVolumeCapabilities", validate(*req, resp));
}

Status ControllerService::listVolumes(const v1::ListVolumesRequest& req,
                                      v1::ListVolumesResponse* resp) {
  if (req.max_entries() < 0) return invalidArgument("max_entries must not be negative");
  ASSIGN_OR_RETURN(auto all, backend_->store().listVolumes());
  std::vector<VolumeRecord> ready;
  for (auto& v : all) {
    if (v.state == RecordState::kReady) ready.push_back(std::move(v));
  }
  ASSIGN_OR_RETURN(size_t start, parseStartingToken(req.starting_token(), ready.size()));
  size_t end = ready.size();
  if (req.max_entries() > 0) end = std::min(end, start + static_cast<size_t>(req.max_entries()));
  for (size_t i = start; i < end; ++i) {
    auto* entry = resp->add_entries();
    fillVolume(ready[i], backend_->options().node_id, entry->mutable_volume());
    ASSIGN_OR_RETURN(auto pubs, backend_->store().publications(ready[i].id));
    if (!pubs.empty()) entry->mutable_status()->add_published_node_ids(backend_->options().node_id);
    Condition c = backend_->condition(ready[i]);
    entry->mutable_status()->mutable_volume_condition()->set_abnormal(c.abnormal);
    entry->mutable_status()->mutable_volume_condition()->set_message(c.message);
  }
  if (end < ready.size()) resp->set_next_token(std::to_string(end));
  return absl::OkStatus();
}

grpc::Status ControllerService::ListVolumes(grpc::ServerContext*,
                                            const v1::ListVolumesRequest* req,
                                            v1::ListVolumesResponse* resp) {
  return answer("ListVolumes", listVolumes(*req, resp));
}

grpc::Status ControllerService::GetCapacity(grpc::ServerContext*,
                                            const v1::GetCapacityRequest* req,
                                            v1::GetCapacityResponse* resp) {
  for (int i = 0; i < req->volume_capabilities_size(); ++i) {
    auto type = capabilityAccessType(req->volume_capabilities(i),
                                     strCat("volume_capabilities[", i, "]"));
    if (!type.ok()) return toGrpc(type.status());
  }
  if (req->has_accessible_topology() &&
      !topologyIsThisNode(req->accessible_topology(), backend_->options().node_id)) {
    resp->set_available_capacity(0);  // nothing of ours is reachable from there
    return grpc::Status::OK;
  }
  auto cap = backend_->capacity();
  if (!cap.ok()) return answer("GetCapacity", cap.status());
  resp->set_available_capacity(cap->available_bytes);
  resp->mutable_maximum_volume_size()->set_value(cap->max_volume_bytes);
  return grpc::Status::OK;
}

grpc::Status ControllerService::ControllerGetCapabilities(
    grpc::ServerContext*, const v1::ControllerGetCapabilitiesRequest*,
    v1::ControllerGetCapabilitiesResponse* resp) {
  using Rpc = v1::ControllerServiceCapability::RPC;
  for (auto type : {Rpc::CREATE_DELETE_VOLUME, Rpc::LIST_VOLUMES,
                    Rpc::LIST_VOLUMES_PUBLISHED_NODES, Rpc::GET_CAPACITY,
                    Rpc::CREATE_DELETE_SNAPSHOT, Rpc::LIST_SNAPSHOTS, Rpc::CLONE_VOLUME,
                    Rpc::EXPAND_VOLUME, Rpc::VOLUME_CONDITION, Rpc::GET_VOLUME,
                    Rpc::SINGLE_NODE_MULTI_WRITER}) {
    resp->add_capabilities()->mutable_rpc()->set_type(type);
  }
  return grpc::Status::OK;
}

grpc::Status ControllerService::CreateSnapshot(grpc::ServerContext*,
                                               const v1::CreateSnapshotRequest* req,
                                               v1::CreateSnapshotResponse* resp) {
  if (req->name().empty()) return toGrpc(invalidArgument("name is required"));
  if (req->source_volume_id().empty()) {
    return toGrpc(invalidArgument("source_volume_id is required"));
  }
  auto snap = backend_->createSnapshot(req->name(), req->source_volume_id());
  if (!snap.ok()) return answer("CreateSnapshot", snap.status());
  fillSnapshot(*snap, resp->mutable_snapshot());
  return grpc::Status::OK;
}

grpc::Status ControllerService::DeleteSnapshot(grpc::ServerContext*,
                                               const v1::DeleteSnapshotRequest* req,
                                               v1::DeleteSnapshotResponse*) {
  if (req->snapshot_id().empty()) return toGrpc(invalidArgument("snapshot_id is required"));
  return answer("DeleteSnapshot", backend_->deleteSnapshot(req->snapshot_id()));
}

Status ControllerService::listSnapshots(const v1::ListSnapshotsRequest& req,
                                        v1::ListSnapshotsResponse* resp) {
  if (req.max_entries() < 0) return invalidArgument("max_entries must not be negative");
  ASSIGN_OR_RETURN(auto all, backend_->store().listSnapshots());
  std::vector<SnapshotRecord> matching;
  for (auto& s : all) {
    if (s.state != RecordState::kReady) continue;
    if (!req.snapshot_id().empty() && s.id != req.snapshot_id()) continue;
    if (!req.source_volume_id().empty() && s.source_volume_id != req.source_volume_id()) continue;
    matching.push_back(std::move(s));
  }
  ASSIGN_OR_RETURN(size_t start, parseStartingToken(req.starting_token(), matching.size()));
  size_t end = matching.size();
  if (req.max_entries() > 0) end = std::min(end, start + static_cast<size_t>(req.max_entries()));
  for (size_t i = start; i < end; ++i) {
    fillSnapshot(matching[i], resp->add_entries()->mutable_snapshot());
  }
  if (end < matching.size()) resp->set_next_token(std::to_string(end));
  return absl::OkStatus();
}

grpc::Status ControllerService::ListSnapshots(grpc::ServerContext*,
                                              const v1::ListSnapshotsRequest* req,
                                              v1::ListSnapshotsResponse* resp) {
  return answer("ListSnapshots", listSnapshots(*req, resp));
}

Status ControllerService::expand(const v1::ControllerExpandVolumeRequest& req,
                                 v1::ControllerExpandVolumeResponse* resp) {
  if (req.volume_id().empty()) return invalidArgument("volume_id is required");
  if (!req.has_capacity_range()) return invalidArgument("capacity_range is required");
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
  ASSIGN_OR_RETURN(VolumeRecord grown,
                   backend_->expandVolume(req.volume_id(), req.capacity_range().required_bytes(),
                                          req.capacity_range().limit_bytes()));
  resp->set_capacity_bytes(grown.capacity_bytes);
  // Block volumes: the node refreshes its loop devices (the controller already does
  // when it can; the call is cheap and idempotent). Mount volumes need nothing more.
  resp->set_node_expansion_required(grown.access_type == AccessType::kBlock);
  return absl::OkStatus();
}

grpc::Status ControllerService::ControllerExpandVolume(
    grpc::ServerContext*, const v1::ControllerExpandVolumeRequest* req,
    v1::ControllerExpandVolumeResponse* resp) {
  return answer("ControllerExpandVolume", expand(*req, resp));
}

Status ControllerService::getVolume(const v1::ControllerGetVolumeRequest& req,
                                    v1::ControllerGetVolumeResponse* resp) {
  if (req.volume_id().empty()) return invalidArgument("volume_id is required");
  ASSIGN_OR_RETURN(auto v, backend_->store().getVolume(req.volume_id()));
  if (!v || v->state != RecordState::kReady) {
    return notFound("volume ", req.volume_id(), " does not exist");
  }
  fillVolume(*v, backend_->options().node_id, resp->mutable_volume());
  ASSIGN_OR_RETURN(auto pubs, backend_->store().publications(v->id));
  if (!pubs.empty()) resp->mutable_status()->add_published_node_ids(backend_->options().node_id);
  Condition c = backend_->condition(*v);
  resp->mutable_status()->mutable_volume_condition()->set_abnormal(c.abnormal);
  resp->mutable_status()->mutable_volume_condition()->set_message(c.message);
  return absl::OkStatus();
}

grpc::Status ControllerService::ControllerGetVolume(grpc::ServerContext*,
                                                    const v1::ControllerGetVolumeRequest* req,
                                                    v1::ControllerGetVolumeResponse* resp) {
  return answer("ControllerGetVolume", getVolume(*req, resp));
}

}  // namespace berth::csi
