// berth-ipam's configuration: the reference host-local plugin's keys under "ipam"
// (`subnet`, `rangeStart`, `rangeEnd`, `gateway`, `ranges`, `routes`, `dataDir`) plus
// `podCIDRFile`, the node's pod subnets as berthd writes them from the Node's
// spec.podCIDRs (one CIDR per line; '#' comments and blank lines ignored).
//
//   "ipam": {"type": "berth-ipam", "subnet": "10.244.0.0/24"}
//   "ipam": {"type": "berth-ipam", "ranges": [[{"subnet": "10.244.0.0/24"}],
//                                            [{"subnet": "fd00:10:244::/64"}]]}
//   "ipam": {"type": "berth-ipam", "podCIDRFile": "/run/berth/pod-cidr"}
//
// Thread-safety: pure functions (parseIpamConfig reads the podCIDRFile).
#pragma once

#include <string>
#include <vector>

#include "cni/ipam/ip_address.h"
#include "cni/result.h"
#include "common/json.h"
#include "common/status.h"

namespace berth::cni::ipam {

inline constexpr char kDefaultDataDir[] = "/var/lib/berth/ipam";

// One range of a subnet. Defaults as host-local: start = network + 1, end = the last
// address (IPv4: broadcast - 1), gateway = network + 1.
struct IpRange {
  IpPrefix subnet;
  IpAddress range_start, range_end, gateway;
  // "10.1.0.2-10.1.0.254" for messages.
  std::string describe() const;
};

struct IpamConfig {
  std::string type;
  // One range set per address the attachment gets (dual-stack: one per family); an
  // address comes from the first range of its set with a free address.
  std::vector<std::vector<IpRange>> range_sets;
  std::vector<Route> routes;
  std::string data_dir = kDefaultDataDir;
  std::string pod_cidr_file;
};

// Parses netconf["ipam"] (the whole network configuration is passed, as SPEC.md hands
// IPAM plugins the complete configuration). Errors: InvalidArgument naming the key
// (`ipam.ranges[0][1].rangeStart: "10.2.0.5" is outside subnet 10.1.0.0/24`), including
// overlapping range sets, mixed families in one set, podCIDRFile together with
// subnet/ranges; Unavailable when podCIDRFile does not exist yet (berthd has not
// written the node's pod CIDR: retry later).
StatusOr<IpamConfig> parseIpamConfig(const json::Json& netconf);

// The range sets for the CIDRs in a podCIDRFile's text. Errors: InvalidArgument naming
// the line.
StatusOr<std::vector<std::vector<IpRange>>> parsePodCidrText(std::string_view text,
                                                            std::string_view path);

}  // namespace berth::cni::ipam
