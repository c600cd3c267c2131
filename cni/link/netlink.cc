#include "cni/link/netlink.h"

#include <linux/if_bridge.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/addr.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>
#include <netlink/socket.h>

#include <functional>

namespace berth::cni::link {
namespace {

// RAII for libnl's refcounted objects.
struct LinkPut { void operator()(rtnl_link* l) const { rtnl_link_put(l); } };
struct AddrPut { void operator()(nl_addr* a) const { nl_addr_put(a); } };
struct RtAddrPut { void operator()(rtnl_addr* a) const { rtnl_addr_put(a); } };
struct RoutePut { void operator()(rtnl_route* r) const { rtnl_route_put(r); } };
struct CachePut { void operator()(nl_cache* c) const { nl_cache_free(c); } };
struct MsgFree { void operator()(nl_msg* m) const { nlmsg_free(m); } };
using LinkPtr = std::unique_ptr<rtnl_link, LinkPut>;
using NlAddrPtr = std::unique_ptr<nl_addr, AddrPut>;
using RtAddrPtr = std::unique_ptr<rtnl_addr, RtAddrPut>;
using RoutePtr = std::unique_ptr<rtnl_route, RoutePut>;
using CachePtr = std::unique_ptr<nl_cache, CachePut>;
using MsgPtr = std::unique_ptr<nl_msg, MsgFree>;

// A libnl error (negative NLE_*) as a Status naming the operation.
Status nlError(int err, std::string_view what) {
  if (err < 0) err = -err;
  std::string text = strCat(what, ": ", nl_geterror(err));
  switch (err) {
    case NLE_EXIST: return absl::AlreadyExistsError(text);
    case NLE_OBJ_NOTFOUND:
    case NLE_NODEV: return absl::NotFoundError(text);
    case NLE_INVAL:
    case NLE_RANGE: return absl::InvalidArgumentError(text);
    case NLE_PERM:
    case NLE_NOACCESS: return absl::PermissionDeniedError(text);
    case NLE_BUSY: return absl::FailedPreconditionError(text);
    case NLE_OPNOTSUPP: return absl::UnimplementedError(text);
    default: return absl::InternalError(text);
  }
}

std::string macOf(rtnl_link* l) {
  nl_addr* a = rtnl_link_get_addr(l);
  if (a == nullptr || nl_addr_get_len(a) != 6) return "";
  char buf[32];
  nl_addr2str(a, buf, sizeof(buf));
  return buf;
}

LinkInfo infoOf(rtnl_link* l) {
  LinkInfo info;
  info.index = rtnl_link_get_ifindex(l);
  const char* name = rtnl_link_get_name(l);
  info.name = name ? name : "";
  const char* kind = rtnl_link_get_type(l);
  info.kind = kind ? kind : "";
  info.mac = macOf(l);
  info.mtu = static_cast<int>(rtnl_link_get_mtu(l));
  unsigned flags = rtnl_link_get_flags(l);
  info.up = (flags & IFF_UP) != 0;
  info.promisc = (flags & IFF_PROMISC) != 0;
  info.master_index = rtnl_link_get_master(l);
  return info;
}

StatusOr<NlAddrPtr> parseAddr(std::string_view text, int family, std::string_view what) {
  nl_addr* a = nullptr;
  std::string s(text);
  int err = nl_addr_parse(s.c_str(), family, &a);
  if (err < 0) return invalidArgument(what, ": \"", text, "\" is not a valid address");
  return NlAddrPtr(a);
}

int familyOf(std::string_view ip) { return ip.find(':') != std::string_view::npos ? AF_INET6 : AF_INET; }

// Sends a hand-built message and waits for the kernel's ack.
Status sendAndAck(nl_sock* sock, nl_msg* msg, std::string_view what) {
  int err = nl_send_auto(sock, msg);
  if (err < 0) return nlError(err, what);
  err = nl_wait_for_ack(sock);
  if (err < 0) return nlError(err, what);
  return absl::OkStatus();
}

StatusOr<RoutePtr> buildRoute(const RouteSpec& spec) {
  int family = familyOf(spec.dst);
  ASSIGN_OR_RETURN(NlAddrPtr dst, parseAddr(spec.dst, family, "route destination"));
  RoutePtr route(rtnl_route_alloc());
  rtnl_route_set_family(route.get(), static_cast<uint8_t>(family));
  rtnl_route_set_dst(route.get(), dst.get());
  rtnl_route_set_table(route.get(), spec.table ? static_cast<uint32_t>(spec.table) : RT_TABLE_MAIN);
  rtnl_route_set_type(route.get(), RTN_UNICAST);
  if (spec.metric) rtnl_route_set_priority(route.get(), static_cast<uint32_t>(spec.metric));
  if (spec.protocol) rtnl_route_set_protocol(route.get(), static_cast<uint8_t>(spec.protocol));
  if (spec.mtu) rtnl_route_set_metric(route.get(), RTAX_MTU, static_cast<unsigned>(spec.mtu));
  int scope = spec.scope >= 0 ? spec.scope : (spec.gw.empty() ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE);
  rtnl_route_set_scope(route.get(), static_cast<uint8_t>(scope));
  rtnl_nexthop* nh = rtnl_route_nh_alloc();
  if (spec.oif) rtnl_route_nh_set_ifindex(nh, spec.oif);
  if (!spec.gw.empty()) {
    auto gw = parseAddr(spec.gw, family, "route gateway");
    if (!gw.ok()) {
      rtnl_route_nh_free(nh);
      return gw.status();
    }
    rtnl_route_nh_set_gateway(nh, gw->get());
  }
  rtnl_route_add_nexthop(route.get(), nh);  // the route owns nh now
  return route;
}

std::string routeName(const RouteSpec& spec) {
  return strCat(spec.dst, spec.gw.empty() ? "" : " via " + spec.gw,
                spec.oif ? strCat(" dev #", spec.oif) : "");
}

}  // namespace

StatusOr<RouteSocket> RouteSocket::open() {
  nl_sock* sock = nl_socket_alloc();
  if (sock == nullptr) return absl::ResourceExhaustedError("allocate a netlink socket");
  int err = nl_connect(sock, NETLINK_ROUTE);
  if (err < 0) {
    nl_socket_free(sock);
    return nlError(err, "connect a NETLINK_ROUTE socket");
  }
  return RouteSocket(sock);
}

RouteSocket::RouteSocket(RouteSocket&& o) noexcept : sock_(std::exchange(o.sock_, nullptr)) {}
RouteSocket& RouteSocket::operator=(RouteSocket&& o) noexcept {
  if (this != &o) {
    if (sock_) nl_socket_free(sock_);
    sock_ = std::exchange(o.sock_, nullptr);
  }
  return *this;
}
RouteSocket::~RouteSocket() {
  if (sock_) nl_socket_free(sock_);
}

StatusOr<LinkInfo> RouteSocket::link(std::string_view name) {
  std::string n(name);
  rtnl_link* l = nullptr;
  int err = rtnl_link_get_kernel(sock_, 0, n.c_str(), &l);
  if (err < 0) {
    if (err == -NLE_OBJ_NOTFOUND || err == -NLE_NODEV) {
      return notFound("link \"", name, "\" not found in this network namespace");
    }
    return nlError(err, strCat("get link \"", name, "\""));
  }
  LinkPtr owned(l);
  return infoOf(l);
}

StatusOr<LinkInfo> RouteSocket::linkByIndex(int index) {
  rtnl_link* l = nullptr;
  int err = rtnl_link_get_kernel(sock_, index, nullptr, &l);
  if (err < 0) {
    if (err == -NLE_OBJ_NOTFOUND || err == -NLE_NODEV) return notFound("link #", index, " not found");
    return nlError(err, strCat("get link #", index));
  }
  LinkPtr owned(l);
  return infoOf(l);
}

StatusOr<std::vector<LinkInfo>> RouteSocket::links() {
  nl_cache* cache = nullptr;
  int err = rtnl_link_alloc_cache(sock_, AF_UNSPEC, &cache);
  if (err < 0) return nlError(err, "list links");
  CachePtr owned(cache);
  std::vector<LinkInfo> out;
  for (nl_object* o = nl_cache_get_first(cache); o != nullptr; o = nl_cache_get_next(o)) {
    out.push_back(infoOf(reinterpret_cast<rtnl_link*>(o)));
  }
  return out;
}

Status RouteSocket::changeLink(int index, const std::function<void(rtnl_link*)>& edit,
                               std::string_view what) {
  rtnl_link* orig = nullptr;
  int err = rtnl_link_get_kernel(sock_, index, nullptr, &orig);
  if (err < 0) return nlError(err, what);
  LinkPtr owned(orig);
  LinkPtr change(rtnl_link_alloc());
  edit(change.get());
  err = rtnl_link_change(sock_, orig, change.get(), 0);
  if (err < 0) return nlError(err, what);
  return absl::OkStatus();
}

StatusOr<LinkInfo> RouteSocket::ensureBridge(const BridgeSpec& spec) {
  auto existing = link(spec.name);
  if (existing.ok() && existing->kind != "bridge") {
    return failedPrecondition("link \"", spec.name, "\" exists and is a ",
                              existing->kind.empty() ? "device" : existing->kind,
                              ", not a bridge; set \"bridge\" in the network config to another name");
  }
  if (!existing.ok()) {
    if (!absl::IsNotFound(existing.status())) return existing.status();
    LinkPtr l(rtnl_link_alloc());
    rtnl_link_set_name(l.get(), spec.name.c_str());
    int err = rtnl_link_set_type(l.get(), "bridge");
    if (err < 0) return nlError(err, "bridge link type");
    if (spec.mtu) rtnl_link_set_mtu(l.get(), static_cast<unsigned>(spec.mtu));
    err = rtnl_link_add(sock_, l.get(), NLM_F_CREATE | NLM_F_EXCL);
    // Another plugin process may have created it at the same moment: reuse that one.
    if (err < 0 && err != -NLE_EXIST) return nlError(err, strCat("create bridge \"", spec.name, "\""));
    ASSIGN_OR_RETURN(existing, link(spec.name));
    if (existing->kind != "bridge") {
      return failedPrecondition("link \"", spec.name, "\" exists and is a ", existing->kind,
                                ", not a bridge");
    }
  }
  if (spec.vlan_filtering) {
    MsgPtr msg(nlmsg_alloc_simple(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK));
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    ifi.ifi_index = existing->index;
    nlmsg_append(msg.get(), &ifi, sizeof(ifi), NLMSG_ALIGNTO);
    nlattr* info = nla_nest_start(msg.get(), IFLA_LINKINFO);
    nla_put_string(msg.get(), IFLA_INFO_KIND, "bridge");
    nlattr* data = nla_nest_start(msg.get(), IFLA_INFO_DATA);
    nla_put_u8(msg.get(), IFLA_BR_VLAN_FILTERING, 1);
    nla_nest_end(msg.get(), data);
    nla_nest_end(msg.get(), info);
    Status st = sendAndAck(sock_, msg.get(), strCat("turn on VLAN filtering on \"", spec.name, "\""));
    if (absl::IsUnimplemented(st)) {
      return failedPrecondition(st.message(), "; this kernel has no bridge VLAN filtering "
                                "(CONFIG_BRIDGE_VLAN_FILTERING): remove \"vlan\" from the network config");
    }
    RETURN_IF_ERROR(st);
  }
  if (spec.mtu && existing->mtu != spec.mtu) RETURN_IF_ERROR(setMtu(existing->index, spec.mtu));
  if (spec.promisc != existing->promisc) RETURN_IF_ERROR(setPromisc(existing->index, spec.promisc));
  if (!existing->up) RETURN_IF_ERROR(setUp(existing->index));
  return linkByIndex(existing->index);
}

Status RouteSocket::createVeth(const VethSpec& spec) {
  rtnl_link* l = rtnl_link_veth_alloc();
  if (l == nullptr) return absl::ResourceExhaustedError("allocate a veth link object");
  rtnl_link* peer = rtnl_link_veth_get_peer(l);
  rtnl_link_set_name(l, spec.host_name.c_str());
  rtnl_link_set_name(peer, spec.peer_name.c_str());
  if (spec.peer_netns_fd >= 0) rtnl_link_set_ns_fd(peer, spec.peer_netns_fd);
  if (spec.mtu) {
    rtnl_link_set_mtu(l, static_cast<unsigned>(spec.mtu));
    rtnl_link_set_mtu(peer, static_cast<unsigned>(spec.mtu));
  }
  Status st;
  for (auto [obj, mac] : {std::pair{l, &spec.host_mac}, std::pair{peer, &spec.peer_mac}}) {
    if (mac->empty()) continue;
    auto a = parseAddr(*mac, AF_LLC, "MAC address");
    if (!a.ok()) {
      st = a.status();
      break;
    }
    rtnl_link_set_addr(obj, a->get());
  }
  if (st.ok()) {
    int err = rtnl_link_add(sock_, l, NLM_F_CREATE | NLM_F_EXCL);
    if (err < 0) {
      st = nlError(err, strCat("create veth pair \"", spec.host_name, "\" / \"", spec.peer_name, "\""));
    }
  }
  rtnl_link_put(peer);
  rtnl_link_veth_release(l);
  return st;
}

Status RouteSocket::deleteLink(std::string_view name) {
  ASSIGN_OR_RETURN(LinkInfo info, link(name));
  LinkPtr l(rtnl_link_alloc());
  rtnl_link_set_ifindex(l.get(), info.index);
  int err = rtnl_link_delete(sock_, l.get());
  if (err < 0) return nlError(err, strCat("delete link \"", name, "\""));
  return absl::OkStatus();
}

Status RouteSocket::setUp(int index, bool up) {
  return changeLink(index, [up](rtnl_link* c) {
    if (up) rtnl_link_set_flags(c, IFF_UP); else rtnl_link_unset_flags(c, IFF_UP);
  }, strCat("set link #", index, up ? " up" : " down"));
}

Status RouteSocket::setMaster(int index, int master_index) {
  return changeLink(index, [master_index](rtnl_link* c) { rtnl_link_set_master(c, master_index); },
                    strCat("attach link #", index, " to #", master_index));
}

Status RouteSocket::setMtu(int index, int mtu) {
  return changeLink(index, [mtu](rtnl_link* c) { rtnl_link_set_mtu(c, static_cast<unsigned>(mtu)); },
                    strCat("set MTU ", mtu, " on link #", index));
}

Status RouteSocket::setPromisc(int index, bool on) {
  return changeLink(index, [on](rtnl_link* c) {
    if (on) rtnl_link_set_flags(c, IFF_PROMISC); else rtnl_link_unset_flags(c, IFF_PROMISC);
  }, strCat("set promiscuous mode on link #", index));
}

Status RouteSocket::setMac(int index, std::string_view mac) {
  ASSIGN_OR_RETURN(NlAddrPtr a, parseAddr(mac, AF_LLC, "MAC address"));
  return changeLink(index, [&a](rtnl_link* c) { rtnl_link_set_addr(c, a.get()); },
                    strCat("set MAC ", mac, " on link #", index));
}

Status RouteSocket::setHairpin(int port_index, bool on) {
  MsgPtr msg(nlmsg_alloc_simple(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK));
  ifinfomsg ifi{};
  ifi.ifi_family = AF_BRIDGE;
  ifi.ifi_index = port_index;
  nlmsg_append(msg.get(), &ifi, sizeof(ifi), NLMSG_ALIGNTO);
  nlattr* proto = nla_nest_start(msg.get(), IFLA_PROTINFO | NLA_F_NESTED);
  nla_put_u8(msg.get(), IFLA_BRPORT_MODE, on ? 1 : 0);
  nla_nest_end(msg.get(), proto);
  return sendAndAck(sock_, msg.get(), strCat("set hairpin mode on bridge port #", port_index));
}

Status RouteSocket::addBridgeVlan(int port_index, int vid, bool pvid, bool untagged) {
  MsgPtr msg(nlmsg_alloc_simple(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK));
  ifinfomsg ifi{};
  ifi.ifi_family = AF_BRIDGE;
  ifi.ifi_index = port_index;
  nlmsg_append(msg.get(), &ifi, sizeof(ifi), NLMSG_ALIGNTO);
  nlattr* spec = nla_nest_start(msg.get(), IFLA_AF_SPEC);
  bridge_vlan_info info{};
  info.vid = static_cast<uint16_t>(vid);
  if (pvid) info.flags |= BRIDGE_VLAN_INFO_PVID;
  if (untagged) info.flags |= BRIDGE_VLAN_INFO_UNTAGGED;
  nla_put(msg.get(), IFLA_BRIDGE_VLAN_INFO, sizeof(info), &info);
  nla_nest_end(msg.get(), spec);
  return sendAndAck(sock_, msg.get(), strCat("add VLAN ", vid, " to bridge port #", port_index));
}

Status RouteSocket::addAddress(int index, std::string_view cidr) {
  ASSIGN_OR_RETURN(NlAddrPtr local, parseAddr(cidr, familyOf(cidr), "address"));
  RtAddrPtr a(rtnl_addr_alloc());
  rtnl_addr_set_ifindex(a.get(), index);
  rtnl_addr_set_local(a.get(), local.get());
  int err = rtnl_addr_add(sock_, a.get(), 0);
  if (err < 0 && err != -NLE_EXIST) {
    return nlError(err, strCat("add address ", cidr, " to link #", index));
  }
  return absl::OkStatus();
}

Status RouteSocket::deleteAddress(int index, std::string_view cidr) {
  ASSIGN_OR_RETURN(NlAddrPtr local, parseAddr(cidr, familyOf(cidr), "address"));
  RtAddrPtr a(rtnl_addr_alloc());
  rtnl_addr_set_ifindex(a.get(), index);
  rtnl_addr_set_local(a.get(), local.get());
  int err = rtnl_addr_delete(sock_, a.get(), 0);
  if (err < 0 && err != -NLE_NOADDR && err != -NLE_OBJ_NOTFOUND && err != -NLE_NODEV) {
    return nlError(err, strCat("delete address ", cidr, " from link #", index));
  }
  return absl::OkStatus();
}

StatusOr<std::vector<std::string>> RouteSocket::addresses(int index, int family) {
  nl_cache* cache = nullptr;
  int err = rtnl_addr_alloc_cache(sock_, &cache);
  if (err < 0) return nlError(err, "list addresses");
  CachePtr owned(cache);
  std::vector<std::string> out;
  for (nl_object* o = nl_cache_get_first(cache); o != nullptr; o = nl_cache_get_next(o)) {
    auto* a = reinterpret_cast<rtnl_addr*>(o);
    if (rtnl_addr_get_ifindex(a) != index) continue;
    if (family != AF_UNSPEC && rtnl_addr_get_family(a) != family) continue;
    nl_addr* local = rtnl_addr_get_local(a);
    if (local == nullptr) continue;
    char buf[INET6_ADDRSTRLEN + 8];
    nl_addr2str(local, buf, sizeof(buf));
    std::string text = buf;
    if (text.find('/') == std::string::npos) text += strCat("/", nl_addr_get_prefixlen(local));
    out.push_back(text);
  }
  return out;
}

Status RouteSocket::addRoute(const RouteSpec& spec) {
  ASSIGN_OR_RETURN(RoutePtr route, buildRoute(spec));
  int flags = NLM_F_CREATE | (spec.replace ? NLM_F_REPLACE : NLM_F_EXCL);
  int err = rtnl_route_add(sock_, route.get(), flags);
  if (err < 0) return nlError(err, strCat("add route ", routeName(spec)));
  return absl::OkStatus();
}

Status RouteSocket::deleteRoute(const RouteSpec& spec) {
  ASSIGN_OR_RETURN(RoutePtr route, buildRoute(spec));
  int err = rtnl_route_delete(sock_, route.get(), 0);
  if (err < 0 && err != -NLE_OBJ_NOTFOUND && err != -NLE_NODEV) {
    return nlError(err, strCat("delete route ", routeName(spec)));
  }
  return absl::OkStatus();
}

StatusOr<std::vector<RouteSpec>> RouteSocket::routes(int family, int table) {
  nl_cache* cache = nullptr;
  int err = rtnl_route_alloc_cache(sock_, family, 0, &cache);
  if (err < 0) return nlError(err, "list routes");
  CachePtr owned(cache);
  std::vector<RouteSpec> out;
  uint32_t want_table = table ? static_cast<uint32_t>(table) : RT_TABLE_MAIN;
  for (nl_object* o = nl_cache_get_first(cache); o != nullptr; o = nl_cache_get_next(o)) {
    auto* r = reinterpret_cast<rtnl_route*>(o);
    if (rtnl_route_get_table(r) != want_table) continue;
    RouteSpec spec;
    char buf[INET6_ADDRSTRLEN + 8];
    nl_addr* dst = rtnl_route_get_dst(r);
    if (dst == nullptr) continue;
    nl_addr2str(dst, buf, sizeof(buf));
    spec.dst = buf;
    if (spec.dst == "none" || spec.dst == "default") {
      spec.dst = rtnl_route_get_family(r) == AF_INET6 ? "::/0" : "0.0.0.0/0";
    } else if (spec.dst.find('/') == std::string::npos) {
      spec.dst += strCat("/", nl_addr_get_prefixlen(dst));
    }
    spec.table = static_cast<int>(rtnl_route_get_table(r));
    spec.metric = static_cast<int>(rtnl_route_get_priority(r));
    spec.protocol = rtnl_route_get_protocol(r);
    spec.scope = rtnl_route_get_scope(r);
    if (rtnl_route_get_nnexthops(r) > 0) {
      rtnl_nexthop* nh = rtnl_route_nexthop_n(r, 0);
      spec.oif = rtnl_route_nh_get_ifindex(nh);
      if (nl_addr* gw = rtnl_route_nh_get_gateway(nh)) {
        nl_addr2str(gw, buf, sizeof(buf));
        spec.gw = buf;
      }
    }
    out.push_back(spec);
  }
  return out;
}

}  // namespace berth::cni::link
