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
// usable address (IPv4: broadcast - 1; IPv6: the last address), gateway = network + 1.
// start, end and gateway lie inside the subnet and start <= end.
struct IpRange {
  IpPrefix subnet;
  IpAddress range_start, range_end, gateway;

  // True if `ip` lies in [range_start, range_end].
  bool inRange(const IpAddress& ip) const;
  // True for the addresses never handed out: the network address, the gateway and (IPv4)
  // the broadcast address.
  bool isReserved(const IpAddress& ip) const;
  // How many addresses of the range can be handed out (the range minus reserved ones),
  // saturating at UINT64_MAX.
  uint64_t capacity() const;
  // The configured range, "10.1.0.1-10.1.0.254".
  std::string describe() const;
  // The range without reserved addresses at its ends, "10.1.0.2-10.1.0.254" (what
  // allocation can hand out; used in messages). Empty if nothing is usable.
  std::string describeUsable() const;
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

// Parses netconf["ipam"] (the whole network configuration is passed, as SPEC.md
// "Section 4: Plugin Delegation" hands IPAM plugins the complete configuration); reads
// the podCIDRFile when one is named. Errors: InvalidArgument naming the key
// (`ipam.ranges[0][1].rangeStart: "10.2.0.5" is outside subnet 10.1.0.0/24`): a bad
// subnet/address/route, a range with nothing to hand out, overlapping ranges or range
// sets, mixed families in one set, subnet together with ranges, podCIDRFile together
// with subnet/ranges; Unavailable when the podCIDRFile does not exist yet or lists no
// CIDR (berthd has not written the node's pod CIDR: retry later, CNI code 11); other
// read errors of the podCIDRFile with its path.
StatusOr<IpamConfig> parseIpamConfig(const json::Json& netconf);

// The range sets for the CIDRs in a podCIDRFile's text (one CIDR per line, each with
// the default range; blank lines and '#' comments ignored). `path` is only used in
// messages. Errors: InvalidArgument naming the path and line; Unavailable when the text
// lists no CIDR (berthd has not written it yet).
StatusOr<std::vector<std::vector<IpRange>>> parsePodCidrText(std::string_view text,
                                                            std::string_view path);

}  // namespace berth::cni::ipam
