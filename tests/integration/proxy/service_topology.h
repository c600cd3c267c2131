// A throwaway node for Service proxy behaviour tests, made of network namespaces the
// test owns (named "berth-pt-<pid>-<n>-<role>", deleted by the destructor even when the
// test fails):
//
//   client "outside" ns          node ns (the proxy runs here)            pod ns i
//   eth0 192.168.77.2/24 ──veth── ext0 192.168.77.1/24 (node IP)
//   (IPv6: pods get /128 addresses, so other pods are reached through the node)
//                                 pveth<i> 10.244.0.1/32 ──veth───────── eth0 10.244.0.<i+2>/24
//                                 route 10.244.0.<i+2>/32 dev pveth<i>    default via 10.244.0.1
//   default via 192.168.77.1      ip_forward=1, proxy_arp on pveth*, default via the client
//
// and, for IPv6, the same with 2001:db8:77::/64 outside and fd00:244::<i+2>/64 pods.
// Pods are routed (no bridge), so a pod reaching itself through a Service (hairpin)
// goes out and back over its own veth, where masquerade gives it the node's address.
// Echo servers in each pod answer TCP and UDP on a port with the pod's name (and the
// peer address they saw), so a test can tell which endpoint served it and whether the
// client address was kept.
//
// Thread-safety: one test thread; echo servers run on their own threads.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"

namespace berth::proxy::testing {

class ServiceTopology {
 public:
  // Creates the namespaces and links. Errors: the failing `ip` command and its output.
  static StatusOr<std::unique_ptr<ServiceTopology>> create(int pods);
  ~ServiceTopology();

  // Named netns ("ip netns" names) and their /run/netns paths.
  const std::string& nodeNs() const { return node_; }
  const std::string& clientNs() const { return client_; }
  const std::string& podNs(int i) const { return pods_.at(i); }
  static std::string path(const std::string& ns) { return "/run/netns/" + ns; }
  int podCount() const { return static_cast<int>(pods_.size()); }

  std::string nodeIp() const { return "192.168.77.1"; }
  std::string clientIp() const { return "192.168.77.2"; }
  std::string podIp(int i) const { return "10.244.0." + std::to_string(i + 2); }
  std::string nodeIp6() const { return "2001:db8:77::1"; }
  std::string clientIp6() const { return "2001:db8:77::2"; }
  std::string podIp6(int i) const { return "fd00:244::" + std::to_string(i + 2); }
  std::string podName(int i) const { return "pod" + std::to_string(i); }

  // Starts TCP and UDP echo servers on `port` in every pod (IPv4 and IPv6). Each reply
  // is "<podName> <peer address>". Idempotent per port.
  Status startEchoServers(uint16_t port);

  // Runs a shell command inside `ns` (ip netns exec). Errors: non-zero exit with output.
  static StatusOr<std::string> exec(const std::string& ns, const std::string& cmd);

 private:
  ServiceTopology() = default;
  struct Server;
  std::string node_, client_;
  std::vector<std::string> pods_;
  std::vector<std::unique_ptr<Server>> servers_;
};

// Result of one request through the network.
struct Reply {
  std::string pod;   // who answered ("pod1")
  std::string peer;  // the client address the pod saw
};

// Connects from `ns` to ip:port over TCP, sends a line and reads the reply.
// Errors: Unavailable "connection refused" (a REJECT or no listener: fast),
// DeadlineExceeded when nothing answered within `timeout_ms` (a DROP or no route),
// other failures with the errno.
StatusOr<Reply> tcpAsk(const std::string& ns, const std::string& ip, uint16_t port,
                       int timeout_ms = 2000);

// Sends one UDP datagram from `ns` (from `src_port`, 0 = any) and waits for the reply.
// Errors as tcpAsk (ICMP port unreachable -> Unavailable).
StatusOr<Reply> udpAsk(const std::string& ns, const std::string& ip, uint16_t port,
                       int timeout_ms = 1000, uint16_t src_port = 0);

// Runs `fn` on a new thread that entered the netns `ns`, and waits for it.
Status inNetns(const std::string& ns, const std::function<void()>& fn);

}  // namespace berth::proxy::testing
