// ConntrackCleaner: removes connection-tracking entries the proxy's rule changes made
// stale, over libnetfilter-conntrack (ctnetlink). UDP has no connection teardown, so an
// entry keeps steering a client's datagrams to the old destination (or to nowhere) for
// as long as the client keeps sending; kube-proxy therefore deletes, after a sync:
//
//   - flows to a Service IP:port that went away, or whose endpoints changed from none
//     to some (the entry then holds the "no endpoints" reject):  deleteByOrigDst()
//   - flows DNATed to an endpoint that went away: deleteByReplySrc(endpoint ip, port),
//     the reply direction's source being the endpoint after DNAT
//   - flows to a NodePort on any local address: deleteByOrigDstPort()
//
// Each call dumps the table of the address family concerned (the kernel filters dumps
// by family only; deleteAny() dumps once for many filters), matches in userspace, and
// deletes the matches one by one; an entry
// that disappears in between (timed out, deleted by someone else) is not counted and is
// not an error. A dump interrupted by concurrent changes (NLM_F_DUMP_INTR, EINTR) is
// retried.
//
// Network namespace: a cleaner acts on the netns the calling thread was in when open()
// ran, for its whole life, whichever thread calls it later: nfct_open() creates its
// NETLINK_NETFILTER socket there, and a netlink socket belongs to the netns of the task
// that created it (verified in tests/integration/proxy/conntrack_test.cc).
//
// Thread-safety: all methods are thread-safe (one mutex around the netlink handle).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "proxy/protocol.h"

struct nfct_handle;

namespace berth::proxy {

// The protocol of an entry (proxy/protocol.h; protocolLower() spells it).
using L4Protocol = Protocol;

// Which entries a deletion or listing concerns. Every field that is set must match;
// addresses are compared as addresses ("::1" matches "0:0::1"). The family is that of
// the addresses given (they must agree); with no address, both IPv4 and IPv6 entries.
struct ConntrackFilter {
  L4Protocol protocol = L4Protocol::kUDP;
  std::optional<std::string> orig_dst_ip;     // the original direction's destination
  std::optional<uint16_t> orig_dst_port;
  std::optional<std::string> reply_src_ip;    // the reply direction's source (after DNAT)
  std::optional<uint16_t> reply_src_port;
};

// One entry as the kernel reports it (addresses as inet_ntop(3) prints them).
struct ConntrackEntry {
  int family = 0;  // AF_INET or AF_INET6
  L4Protocol protocol = L4Protocol::kUDP;
  std::string orig_src_ip, orig_dst_ip, reply_src_ip, reply_dst_ip;
  uint16_t orig_src_port = 0, orig_dst_port = 0, reply_src_port = 0, reply_dst_port = 0;

  // "udp 127.0.0.1:40000 -> 127.0.0.1:5000, reply 127.0.0.2:6000 -> 127.0.0.1:40000"
  std::string toString() const;
};

class ConntrackCleaner {
 public:
  // Opens a ctnetlink handle in the calling thread's network namespace. Errors:
  // Unavailable naming the errno when the socket cannot be opened (no
  // nf_conntrack_netlink, or no CAP_NET_ADMIN).
  static StatusOr<std::unique_ptr<ConntrackCleaner>> open();
  ~ConntrackCleaner();
  ConntrackCleaner(const ConntrackCleaner&) = delete;
  ConntrackCleaner& operator=(const ConntrackCleaner&) = delete;

  // Deletes the `protocol` entries whose original destination is ip:port (a Service
  // IP:port). Returns how many were deleted. Errors: InvalidArgument for a malformed
  // address or port 0; the netlink error, naming the operation and ip:port.
  StatusOr<size_t> deleteByOrigDst(L4Protocol protocol, std::string_view ip, uint16_t port);

  // Deletes the `protocol` entries whose reply source is ip:port (flows DNATed to that
  // endpoint). Returns how many were deleted. Errors: as deleteByOrigDst().
  StatusOr<size_t> deleteByReplySrc(L4Protocol protocol, std::string_view ip, uint16_t port);

  // Deletes the `protocol` entries of either family whose original destination port is
  // `port`, whatever the address (a NodePort on any local address). Returns how many
  // were deleted. Errors: InvalidArgument for port 0; the netlink error.
  StatusOr<size_t> deleteByOrigDstPort(L4Protocol protocol, uint16_t port);

  // Deletes every entry `filter` matches (at least one field must be set). Returns how
  // many were deleted. Errors: InvalidArgument for an empty filter, a malformed
  // address, a port 0 or addresses of different families; the netlink error naming the
  // filter.
  StatusOr<size_t> deleteMatching(const ConntrackFilter& filter);

  // Deletes every entry that matches any of `filters`, with one dump of each address
  // family concerned however many filters there are: what a proxier wants after a sync
  // (collect the stale Service IPs, endpoints and NodePorts, then clean once). Returns
  // how many were deleted; an empty list deletes nothing. Errors: as deleteMatching(),
  // for the first bad filter; nothing is deleted then.
  StatusOr<size_t> deleteAny(const std::vector<ConntrackFilter>& filters);

  // The entries `filter` matches (an empty filter matches every `protocol` entry).
  // Errors: as deleteMatching(), except that an empty filter is allowed.
  StatusOr<std::vector<ConntrackEntry>> list(const ConntrackFilter& filter);

  // The inode of the network namespace this cleaner acts on.
  ino_t netnsInode() const { return netns_inode_; }

 private:
  ConntrackCleaner(nfct_handle* handle, ino_t netns_inode) : handle_(handle), netns_inode_(netns_inode) {}

  std::mutex mu_;
  nfct_handle* handle_;  // guarded by mu_
  ino_t netns_inode_;
};

// "udp orig dst 10.96.0.10:53, reply src 10.244.1.5:53": the filter in words, for errors.
std::string describeFilter(const ConntrackFilter& filter);

}  // namespace berth::proxy
