// Shared pieces of the CSI handlers: absl::Status -> grpc::Status (the codes map one
// to one), VolumeCapability validation with the offending field named, and
// record -> csi.v1 message conversion.
// Thread-safety: pure functions.
#pragma once

#include <grpcpp/grpcpp.h>

#include <string>
#include <string_view>

#include "common/status.h"
#include "csi/hostpath_backend.h"
#include "csi/proto/csi.pb.h"

namespace berth::csi {

// The gRPC status for `status` (same code, same message).
grpc::Status toGrpc(const Status& status);

// Validates one capability and returns its access type. Errors: InvalidArgument naming
// `field` when access_type (block|mount) or access_mode is missing, or the mode is
// UNKNOWN/out of range.
StatusOr<AccessType> capabilityAccessType(const ::csi::v1::VolumeCapability& cap,
                                          std::string_view field);

// Validates a non-empty list of capabilities that all use the same access type.
// Errors: InvalidArgument ("<field> is required", mixed block and mount, or one bad
// capability by index).
StatusOr<AccessType> capabilitiesAccessType(
    const google::protobuf::RepeatedPtrField<::csi::v1::VolumeCapability>& caps,
    std::string_view field);

// The csi.v1.Volume for a record: id, capacity, context (capacity mode, access type),
// content source, topology {kTopologyKey: node_id}.
void fillVolume(const VolumeRecord& record, const std::string& node_id, ::csi::v1::Volume* out);

// The csi.v1.Snapshot for a record.
void fillSnapshot(const SnapshotRecord& record, ::csi::v1::Snapshot* out);

// The node topology {kTopologyKey: node_id}.
void fillTopology(const std::string& node_id, ::csi::v1::Topology* out);

// True when `topology` names only this node (every segment known and equal).
bool topologyIsThisNode(const ::csi::v1::Topology& topology, const std::string& node_id);

// Parses a ListVolumes/ListSnapshots starting_token: "" -> 0, a decimal index <=
// `count` -> it. Errors: Aborted (spec: "Invalid starting_token").
StatusOr<size_t> parseStartingToken(const std::string& token, size_t count);

}  // namespace berth::csi
