// A Service proxy backend: renders a ProxyState and applies it to the kernel as one
// step per table (nftables: one transaction; iptables: one iptables-restore per IP
// family). The proxier (proxier.h) owns one and calls it from its sync thread only.
//
// Backends act on the network namespace of the thread that created them (libnftables
// and ctnetlink handles bind at creation; iptables-restore is spawned by the sync
// thread, which the proxier starts from the creating thread).
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "proxy/change_tracker.h"
#include "proxy/iptables_apply.h"
#include "proxy/service_map.h"

namespace berth::proxy {

class RuleBackend {
 public:
  virtual ~RuleBackend() = default;

  // "nftables" / "iptables".
  virtual std::string name() const = 0;

  // Makes the kernel's rules match `state`. `changed`: Services changed since the last
  // successful sync (a hint; `full` rewrites everything). Returns the number of rules
  // (and map elements) programmed. On error the previous rules stay in place and the
  // next call must be full. Errors: the apply step's error, naming the tool and line.
  virtual StatusOr<int> sync(const ProxyState& state, const ChangedSet& changed, bool full) = 0;

  // Removes every rule, chain and table of ours (used when the proxy is turned off or
  // switches mode). Idempotent: nothing of ours present is OK.
  virtual Status cleanup() = 0;
};

// The iptables backend for IPv4 and IPv6 (ip6tables when present; IPv6 service ports
// are skipped with a log line when it is not). Errors: neither iptables-restore flavour
// found (naming the Debian package).
StatusOr<std::unique_ptr<RuleBackend>> makeIptablesBackend(IptablesBackend flavour);

// The nftables backend: table `inet berth-proxy` through one libnftables context kept
// for the proxier's life. Errors: libnftables cannot open a netlink socket.
StatusOr<std::unique_ptr<RuleBackend>> makeNftablesBackend();

}  // namespace berth::proxy
