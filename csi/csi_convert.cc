#include "csi/csi_convert.h"

#include <charconv>

#include "csi/driver_info.h"

namespace berth::csi {

namespace v1 = ::csi::v1;

grpc::Status toGrpc(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

StatusOr<AccessType> capabilityAccessType(const v1::VolumeCapability& cap,
                                          std::string_view field) {
  AccessType type;
  switch (cap.access_type_case()) {
    case v1::VolumeCapability::kBlock:
      type = AccessType::kBlock;
      break;
    case v1::VolumeCapability::kMount:
      type = AccessType::kMount;
      break;
    default:
      return invalidArgument(field, ".access_type is required (block or mount)");
  }
  if (!cap.has_access_mode()) return invalidArgument(field, ".access_mode is required");
  int mode = cap.access_mode().mode();
  if (mode == v1::VolumeCapability::AccessMode::UNKNOWN ||
      !v1::VolumeCapability::AccessMode::Mode_IsValid(mode)) {
    return invalidArgument(field, ".access_mode.mode ", mode, " is not a supported access mode");
  }
  return type;
}

StatusOr<AccessType> capabilitiesAccessType(
    const google::protobuf::RepeatedPtrField<v1::VolumeCapability>& caps,
    std::string_view field) {
  if (caps.empty()) return invalidArgument(field, " is required");
  std::optional<AccessType> type;
  for (int i = 0; i < caps.size(); ++i) {
    ASSIGN_OR_RETURN(AccessType t, capabilityAccessType(caps[i], strCat(field, "[", i, "]")));
    if (type && *type != t) {
      return invalidArgument(field, ": block and mount access cannot be asked for together");
    }
    type = t;
  }
  return *type;
}

void fillTopology(const std::string& node_id, v1::Topology* out) {
  (*out->mutable_segments())[std::string(kTopologyKey)] = node_id;
}

bool topologyIsThisNode(const v1::Topology& topology, const std::string& node_id) {
  for (const auto& [key, value] : topology.segments()) {
    if (key != kTopologyKey || value != node_id) return false;
  }
  return true;
}

void fillVolume(const VolumeRecord& r, const std::string& node_id, v1::Volume* out) {
  out->set_volume_id(r.id);
  out->set_capacity_bytes(r.capacity_bytes);
  auto& context = *out->mutable_volume_context();
  context[std::string(kCapacityEnforcedKey)] = r.capacity_mode;
  if (r.source_kind == "snapshot") {
    out->mutable_content_source()->mutable_snapshot()->set_snapshot_id(r.source_id);
  } else if (r.source_kind == "volume") {
    out->mutable_content_source()->mutable_volume()->set_volume_id(r.source_id);
  }
  fillTopology(node_id, out->add_accessible_topology());
}

void fillSnapshot(const SnapshotRecord& r, v1::Snapshot* out) {
  out->set_snapshot_id(r.id);
  out->set_source_volume_id(r.source_volume_id);
  out->set_size_bytes(r.size_bytes);
  out->set_ready_to_use(r.ready);
  out->mutable_creation_time()->set_seconds(r.created_unix_ns / 1000000000);
  out->mutable_creation_time()->set_nanos(static_cast<int32_t>(r.created_unix_ns % 1000000000));
}

StatusOr<size_t> parseStartingToken(const std::string& token, size_t count) {
  if (token.empty()) return size_t{0};
  size_t index = 0;
  auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), index);
  if (ec != std::errc() || end != token.data() + token.size() || index > count) {
    return absl::AbortedError(strCat("starting_token \"", token,
                                     "\" is not valid; restart the listing with an empty token"));
  }
  return index;
}

}  // namespace berth::csi
