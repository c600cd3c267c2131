// Links, addresses and routes over rtnetlink (libnl-route-3): what berth-bridge and
// berthd's node routes need, each call a direct kernel request (no libnl caches kept
// between calls), so every answer reflects the kernel's state at that moment.
//
// A RouteSocket is bound to the network namespace of the thread that opened it; open
// one per netns (enter the pod's netns with cni/netns.h runInNetns() first).
//
// Thread-safety: a RouteSocket is not thread-safe; use one per thread.
#pragma once

#include <sys/socket.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

struct nl_sock;
struct rtnl_link;

namespace berth::cni::link {

struct LinkInfo {
  int index = 0;
  std::string name;
  std::string kind;     // "bridge", "veth", ... ("" for physical/unknown)
  std::string mac;      // "0a:58:0a:f4:00:05" ("" when the link has none)
  int mtu = 0;
  bool up = false;      // IFF_UP
  int master_index = 0; // 0 = no master
  bool promisc = false;
};

struct BridgeSpec {
  std::string name;
  int mtu = 0;  // 0 = kernel default
  bool promisc = false;
  bool vlan_filtering = false;
};

struct VethSpec {
  std::string host_name;  // created in the socket's netns
  std::string peer_name;  // created directly inside peer_netns_fd
  int peer_netns_fd = -1;
  int mtu = 0;             // both ends; 0 = kernel default
  std::string host_mac, peer_mac;  // "" = kernel random
};

struct RouteSpec {
  std::string dst;   // CIDR ("0.0.0.0/0" / "::/0" for a default route)
  std::string gw;    // next hop; "" = directly connected via oif
  int oif = 0;       // output link index; 0 = any
  int table = 0;     // 0 = main
  int metric = 0;    // priority
  int mtu = 0;       // path MTU metric; 0 = none
  int scope = -1;    // -1 = universe with a gateway, link without
  int protocol = 0;  // rtm_protocol; 0 = boot (the kernel's default for user routes)
  bool replace = true;  // NLM_F_REPLACE (else NLM_F_EXCL)
};

class RouteSocket {
 public:
  // Opens and connects a NETLINK_ROUTE socket in the calling thread's netns.
  static StatusOr<RouteSocket> open();
  RouteSocket(RouteSocket&&) noexcept;
  RouteSocket& operator=(RouteSocket&&) noexcept;
  ~RouteSocket();

  // The link named `name`. Errors: NotFound `link "x" not found`.
  StatusOr<LinkInfo> link(std::string_view name);
  StatusOr<LinkInfo> linkByIndex(int index);
  // Every link of the netns.
  StatusOr<std::vector<LinkInfo>> links();

  // Creates the bridge when missing, else reuses it; sets it up (and MTU, promisc,
  // VLAN filtering when asked). Errors: FailedPrecondition when a link of that name
  // exists and is not a bridge, naming its kind.
  StatusOr<LinkInfo> ensureBridge(const BridgeSpec& spec);
  // Creates a veth pair in one request, the peer born inside spec.peer_netns_fd.
  // Errors: AlreadyExists when a name is taken.
  Status createVeth(const VethSpec& spec);
  // Errors: NotFound when no such link.
  Status deleteLink(std::string_view name);
  Status setUp(int index, bool up = true);
  Status setMaster(int index, int master_index);  // 0 = release from its master
  Status setMtu(int index, int mtu);
  Status setPromisc(int index, bool on);
  Status setMac(int index, std::string_view mac);
  // Bridge port hairpin mode (IFLA_BRPORT_MODE).
  Status setHairpin(int port_index, bool on);
  // Bridge port VLAN (IFLA_AF_SPEC / IFLA_BRIDGE_VLAN_INFO); the bridge needs
  // vlan_filtering.
  Status addBridgeVlan(int port_index, int vid, bool pvid, bool untagged);

  // Adds `cidr` ("10.1.0.5/24") to the link; already present is OK.
  Status addAddress(int index, std::string_view cidr);
  // Removes `cidr` from the link; absent is OK.
  Status deleteAddress(int index, std::string_view cidr);
  // The link's addresses in CIDR form (family AF_INET, AF_INET6 or AF_UNSPEC = both).
  StatusOr<std::vector<std::string>> addresses(int index, int family = AF_UNSPEC);

  Status addRoute(const RouteSpec& spec);
  // Absent is OK.
  Status deleteRoute(const RouteSpec& spec);
  // Routes of `table` (0 = main) and `family`, with dst, gw, oif, metric, protocol set.
  StatusOr<std::vector<RouteSpec>> routes(int family = AF_UNSPEC, int table = 0);

 private:
  explicit RouteSocket(nl_sock* sock) : sock_(sock) {}
  Status changeLink(int index, const std::function<void(::rtnl_link*)>& edit,
                    std::string_view what);
  nl_sock* sock_ = nullptr;
};

}  // namespace berth::cni::link
