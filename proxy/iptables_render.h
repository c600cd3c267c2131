// The iptables backend's renderer: a ProxyState (service_map.h) as input for
// `iptables-restore --noflush` (or ip6tables-restore), in our own chains only, the
// way kube-proxy's iptables mode lays them out (kubernetes pkg/proxy/iptables):
//
//   nat    PREROUTING, OUTPUT -> BERTH-SERVICES      per service port:
//            -d <cluster IP> -p P --dport N -> BERTH-SVC-<h> (or BERTH-SVL-<h> with iTP Local)
//            -d <external IP> / <LB IP> ... -> BERTH-EXT-<h> (BERTH-FW-<h> with source ranges)
//            last: local destination (or -d <nodeport CIDR>) -> BERTH-NODEPORTS
//          BERTH-NODEPORTS   -p P --dport <nodePort> -> BERTH-EXT-<h>
//          BERTH-SVC-<h>     traffic from outside the cluster CIDR -> BERTH-MARK-MASQ;
//                            ClientIP affinity: `recent --rcheck` per endpoint first;
//                            then endpoint i of n with `statistic --probability 1/(n-i)`
//          BERTH-SVL-<h>     the same over the local endpoints, no masquerade mark
//          BERTH-EXT-<h>     eTP Cluster: mark masquerade, -> SVC; eTP Local: pods (cluster
//                            CIDR) and the node itself -> SVC (masqueraded when local), the
//                            rest -> SVL (client IP kept)
//          BERTH-FW-<h>      -s <source range> -> EXT; else -> BERTH-MARK-DROP
//          BERTH-SEP-<h>     -s <endpoint> -> MARK-MASQ (hairpin); DNAT to the endpoint
//                            (`recent --set` with affinity)
//          POSTROUTING -> BERTH-POSTROUTING: marked 0x4000 -> MASQUERADE --random-fully
//   filter INPUT/FORWARD/OUTPUT (new connections) -> BERTH-SERVICES, BERTH-EXTERNAL-SERVICES:
//            REJECT (ICMP port unreachable: "connection refused" at once) for service
//            ports without any endpoint, DROP for those whose policy leaves none;
//          BERTH-FIREWALL drops what BERTH-FW marked 0x8000; BERTH-FORWARD accepts
//          forwarded service traffic when the FORWARD policy is DROP.
//
// Chain names: prefix + 16 hex digits of fnv1a64 of the service port name (and the
// endpoint for SEP chains), stable across restarts, under iptables' 28-character limit.
//
// Only changed chains are written: the renderer keeps the text of every chain it
// committed and a sync emits each chain whose rules differ (top-level ones such as
// BERTH-SERVICES included: a one-endpoint change restores a few short chains); chains that are gone are flushed and deleted
// (-X) in the same restore, after the chains that jumped to them were rewritten. A full
// sync (the first one, after failed(), or when asked) writes every chain. It never
// reads the kernel's rules; the caller checks the base-chain jumps (baseJumps()) once
// at startup and after a failure with iptables-save and asks for the missing ones.
//
// Thread-safety: not synchronised; one proxier thread uses it.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "proxy/service_map.h"

namespace berth::proxy {

class IptablesRenderer {
 public:
  explicit IptablesRenderer(IpFamily family) : family_(family) {}

  struct Jump {
    std::string table;  // "nat" / "filter"
    std::string rule;   // as iptables-save prints it: "-A PREROUTING -j BERTH-SERVICES"
  };
  // The jumps from the built-in chains into ours.
  static std::vector<Jump> baseJumps();

  struct Output {
    std::string restore_input;  // for iptables-restore --noflush; "" when nothing changed
    int rules = 0;              // rules in our chains after this sync
    int chains_written = 0;
    int chains_deleted = 0;
  };

  // Renders the sync for `state` (ports of other families are ignored). `missing_jumps`
  // are base jumps to insert (from baseJumps(), those iptables-save did not show).
  Output render(const ProxyState& state, bool full, const std::vector<Jump>& missing_jumps = {});
  // The last render was applied: remember its chains.
  void committed();
  // The last render failed: the next one is full and chains from before stay known
  // (so stale ones are still deleted).
  void failed();

 private:
  using Chains = std::map<std::string, std::vector<std::string>>;  // chain -> rules
  struct Tables {
    Chains nat, filter;
  };
  Tables build(const ProxyState& state) const;

  IpFamily family_;
  Tables committed_;
  Tables pending_;
  bool has_committed_ = false;
  bool force_full_ = true;
};

// The chain names for a service port (exposed for tests): kind is "SVC", "SVL", "EXT",
// "FW", and for "SEP" `endpoint` is the endpoint's "ip:port".
std::string iptablesChainName(const std::string& kind, const ServicePortName& port,
                              const std::string& endpoint = "");

}  // namespace berth::proxy
