// berth-bridge's view of IP address management (SPEC.md "Section 4: Plugin
// Delegation"): `"ipam": {"type": "berth-ipam"}` runs the allocator in-process (no
// extra exec); any other type is a delegated IPAM plugin found in CNI_PATH and run with
// the same environment and the complete configuration, its stderr passed through.
//
// Thread-safety: an IpamClient is used by one thread.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "cni/bridge/bridge_config.h"
#include "cni/plugin/skel.h"
#include "cni/result.h"
#include "common/status.h"

namespace berth::cni::bridge {

class IpamClient {
 public:
  // `request` and `config` must outlive the client.
  IpamClient(const plugin::Request& request, const BridgeConfig& config)
      : request_(request), config_(config) {}

  // ADD: the addresses (and routes, DNS) for the attachment. Errors: the IPAM's error,
  // prefixed with `IPAM "<type>"`, keeping its CNI code.
  StatusOr<Result> add();
  // DEL: releases the attachment's addresses; idempotent.
  Status del();
  // CHECK: the attachment still holds `expected` (addresses without prefix).
  Status check(const std::vector<std::string>& expected);
  // GC with the request's valid attachments.
  Status gc();
  // STATUS: can the IPAM serve ADD?
  Status status();

 private:
  StatusOr<json::Json> exec(std::string_view command);

  const plugin::Request& request_;
  const BridgeConfig& config_;
};

}  // namespace berth::cni::bridge
