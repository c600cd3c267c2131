// Helpers shared by berth-bridge's operations (cni/bridge/bridge_*.cc). Not a public
// interface.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cni/bridge/bridge_config.h"
#include "cni/nat/firewall.h"
#include "cni/result.h"
#include "common/scope_guard.h"
#include "common/status.h"

namespace berth::cni::bridge {

// The network prefix of an address in CIDR form: "10.1.0.5/24" -> "10.1.0.0/24".
// Errors: InvalidArgument naming the value.
StatusOr<std::string> subnetOf(std::string_view cidr);

// The first host address of the subnet of `cidr` ("10.1.0.5/24" -> "10.1.0.1"): the
// gateway the reference plugins assume when IPAM names none.
StatusOr<std::string> firstHostOf(std::string_view cidr);

// The prefix length of `cidr` ("10.1.0.5/24" -> 24).
int prefixLengthOf(std::string_view cidr);

// The firewall for the configuration's backend ("" = nftables when usable).
StatusOr<std::unique_ptr<nat::Firewall>> openFirewall(const BridgeConfig& config);

}  // namespace berth::cni::bridge
