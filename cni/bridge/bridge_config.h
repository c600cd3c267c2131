// berth-bridge's network configuration: the reference `bridge` plugin's keys (so
// existing conflists keep working) plus the per-invocation inputs SPEC.md and
// CONVENTIONS.md define — runtimeConfig capabilities (portMappings, mac, ips), the
// `args.cni` keys (ips, mac), CNI_ARGS (IP, MAC) and prevResult.
//
//   {"cniVersion": "1.1.0", "name": "pods", "type": "berth-bridge",
//    "bridge": "berth0", "isGateway": true, "isDefaultGateway": true, "ipMasq": true,
//    "mtu": 1500, "hairpinMode": true, "promiscMode": false, "vlan": 0,
//    "forceAddress": false, "macspoofchk": false, "ipMasqBackend": "nftables",
//    "nonMasqueradeCIDRs": ["10.244.0.0/16"],
//    "ipam": {"type": "berth-ipam", "subnet": "10.244.0.0/24"}}
//
// Thread-safety: pure functions on values.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cni/nat/firewall.h"
#include "cni/plugin/skel.h"
#include "cni/result.h"
#include "common/json.h"
#include "common/status.h"

namespace berth::cni::bridge {

// The bridge used when the configuration names none.
inline constexpr char kDefaultBridge[] = "berth0";

// The IPAM type served inside berth-bridge without executing another plugin.
inline constexpr char kBuiltinIpam[] = "berth-ipam";

struct BridgeConfig {
  std::string network;      // "name"
  std::string cni_version;  // "cniVersion"
  std::string bridge = kDefaultBridge;
  bool is_gateway = false;          // gateway address on the bridge
  bool is_default_gateway = false;  // also the pod's default route (implies is_gateway)
  bool force_address = false;       // replace a different address of the family on the bridge
  bool ip_masq = false;             // masquerade pod traffic leaving the pod subnets
  std::string ip_masq_backend;      // "", "nftables" or "iptables" ("" = nftables if usable)
  std::vector<std::string> non_masquerade_cidrs;  // destinations reached without NAT
                                                  // (the cluster's pod CIDR)
  int mtu = 0;                      // 0 = kernel default (1500)
  bool hairpin_mode = false;
  bool promisc_mode = false;
  int vlan = 0;                     // 0 = none, else 1..4094
  bool macspoofchk = false;
  json::Json ipam;                  // the "ipam" object (may be null: no IPAM)
  std::string ipam_type;            // ipam.type ("" when there is no ipam)
  std::vector<nat::PortMapping> port_mappings;  // runtimeConfig.portMappings
  std::string mac;                  // requested pod MAC ("" = kernel random)
  std::vector<std::string> requested_ips;  // requested pod IPs, no prefix length
  Dns dns;                          // "dns", copied into the result
  std::optional<Result> prev_result;

  bool builtinIpam() const { return ipam_type == kBuiltinIpam; }
};

// Parses and validates the request's configuration. Errors (InvalidArgument, CNI code
// 7) name the key and the value: `"mtu": -5 is out of range; use 68..65535 or leave it
// out`, `"vlan": 5000 ...`, `runtimeConfig.portMappings[1].protocol: "icmp" ...`,
// `"ipMasqBackend": "pf" ...`, a malformed MAC or IP, a bridge name that is not a valid
// interface name, a prevResult that does not parse.
StatusOr<BridgeConfig> parseBridgeConfig(const plugin::Request& request);

// The host-side veth name for an attachment: "bv" + 11 hex digits of
// sha256(container_id + "/" + ifname), so DEL and GC find it without state even when
// the pod's netns is gone. 13 characters (IFNAMSIZ is 16 with the NUL).
std::string hostVethName(std::string_view container_id, std::string_view ifname);

}  // namespace berth::cni::bridge
