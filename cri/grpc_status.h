// One mapping from berth's absl::Status to gRPC status for every CRI handler: the
// codes are the same numbers (absl's canonical codes are gRPC's), the message is kept.
// Thread-safety: pure functions.
#pragma once

#include <grpcpp/grpcpp.h>

#include "common/status.h"

namespace berth::cri {

inline grpc::Status toGrpc(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

}  // namespace berth::cri
