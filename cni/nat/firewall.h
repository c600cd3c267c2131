// berth-bridge's NAT: per-network masquerade of pod traffic leaving the pod subnets and
// per-attachment hostPort DNAT (CONVENTIONS.md "portMappings"), programmed through
// libnftables into one table of ours, `inet berth-cni`:
//
//   chain masq-<network>   nat/postrouting  one rule set per network (not per pod):
//                          saddr in the subnets, daddr outside them and the
//                          nonMasqueradeCIDRs, not multicast -> masquerade
//   chain prerouting       nat/prerouting   fib daddr type local -> jump hostports
//   chain output           nat/output       fib daddr type local -> jump hostports
//   chain hostports        per-attachment DNAT rules, comment "<net>/<id>/<ifname>"
//   chain hostport-masq    nat/postrouting  hairpin: pod -> its own hostPort masqueraded
//
// ensureMasquerade() reads the network's chain (~0.1 ms) and writes only when it does not
// hold exactly the wanted rules (each rule carries a fingerprint of the whole wanted set
// in its comment); the write is one atomic batch (add table, add chain, flush chain, add
// rules). Reading first is deliberate: after a committed batch, closing the netlink
// socket waits for an RCU grace period (~16 ms measured here), so steady-state ADDs
// write nothing. Port mappings read the table only when an attachment has hostPorts.
// The iptables fallback and the design are described in cni/nat/README.md.
//
// Thread-safety: a Firewall is used by one thread; nftables batches are atomic, so
// concurrent plugin processes never see half a rule set.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace berth::cni::nat {

enum class Backend { kNftables, kIptables };

struct PortMapping {
  int host_port = 0;
  int container_port = 0;
  std::string protocol = "tcp";  // tcp, udp, sctp
  std::string host_ip;           // "" = every local address
};

struct Attachment {
  std::string network;
  std::string container_id;
  std::string ifname;
  bool operator==(const Attachment&) const = default;
};

class Firewall {
 public:
  virtual ~Firewall() = default;

  // The firewall of the calling thread's network namespace. With `preferred`, that
  // backend (no probe). Without: nftables when one read through libnftables works here,
  // else iptables when iptables-restore is in PATH (cni/nat/iptables_firewall.cc:
  // iptables-save/-restore). Errors: Unavailable naming nft's error when neither works.
  // Keeps one nft_ctx (one netlink socket, bound to the netns of the calling thread).
  static StatusOr<std::unique_ptr<Firewall>> open(std::optional<Backend> preferred = std::nullopt);

  virtual Backend backend() const = 0;

  // Masquerades traffic from `subnets` (CIDRs, either family; host bits are cleared) to
  // destinations outside them and outside `keep` (other CIDRs reached without NAT, e.g.
  // the cluster's pod CIDR), multicast excluded. Idempotent and atomic; a different
  // `subnets`/`keep` replaces the network's rules. Errors: InvalidArgument for an unsafe
  // network name, no subnet, or a bad CIDR; Internal with nft's / iptables-restore's
  // error otherwise.
  virtual Status ensureMasquerade(std::string_view network, const std::vector<std::string>& subnets,
                                  const std::vector<std::string>& keep = {}) = 0;
  // Removes the network's rule set; idempotent.
  virtual Status removeMasquerade(std::string_view network) = 0;
  // OK when the network's rule set exists and covers every subnet. Errors:
  // FailedPrecondition naming the network and what is missing; InvalidArgument for bad
  // input.
  virtual Status checkMasquerade(std::string_view network, const std::vector<std::string>& subnets) = 0;

  // hostPort -> pod_ip:containerPort for each mapping and pod IP of the mapping's
  // family, plus hairpin masquerade. Replaces the attachment's earlier rules in the same
  // batch. Errors: InvalidArgument (port 0/70000, protocol, bad IPs, names).
  virtual Status addPortMappings(const Attachment& attachment, const std::vector<std::string>& pod_ips,
                                 const std::vector<PortMapping>& mappings) = 0;
  // Removes the attachment's hostPort rules; idempotent.
  virtual Status removePortMappings(const Attachment& attachment) = 0;
  // OK when every mapping has its DNAT rule to each pod IP of its family. Errors:
  // FailedPrecondition naming the attachment, port and target; InvalidArgument.
  virtual Status checkPortMappings(const Attachment& attachment, const std::vector<std::string>& pod_ips,
                                   const std::vector<PortMapping>& mappings) = 0;
  // The attachments of `network` that have hostPort rules (for CNI GC).
  virtual StatusOr<std::vector<Attachment>> portMappingAttachments(std::string_view network) = 0;
};

// MAC spoof check (the reference bridge plugin's "macspoofchk"): frames, and ARP
// senders, entering the bridge from an attachment's host veth must carry the pod's MAC;
// others are dropped. nftables bridge family (`table bridge berth-cni`, chain macspoof at
// prerouting priority -300, one tagged rule pair per attachment) whichever backend does
// the NAT: iptables has no bridge-family equivalent short of ebtables.
// Errors: InvalidArgument for a bad name or MAC; the nft error otherwise.
Status addMacSpoofCheck(const Attachment& attachment, std::string_view host_ifname,
                        std::string_view mac);
// Idempotent.
Status removeMacSpoofCheck(const Attachment& attachment);
// Errors: FailedPrecondition when the attachment's rule is missing.
Status checkMacSpoofCheck(const Attachment& attachment);
// Attachments of `network` with a MAC spoof check (for CNI GC).
StatusOr<std::vector<Attachment>> macSpoofAttachments(std::string_view network);

}  // namespace berth::cni::nat
