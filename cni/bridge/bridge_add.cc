// berth-bridge ADD (SPEC.md "ADD"): bridge, IPAM, veth pair, pod-side addresses and
// routes, gateway on the bridge, masquerade, hostPorts — each step undone on failure.
#include <sys/socket.h>

#include "cni/bridge/bridge_internal.h"
#include "cni/bridge/bridge_plugin.h"
#include "cni/bridge/ipam_client.h"
#include "cni/link/netlink.h"
#include "cni/link/sysctl.h"
#include "cni/netns.h"
#include "cni/plugin_exec.h"

namespace berth::cni::bridge {
namespace {

// The default route of the family of `ip` via its gateway, unless IPAM already gave one.
bool hasDefaultRoute(const std::vector<Route>& routes, bool v6) {
  for (const Route& r : routes) {
    if (r.dst == (v6 ? "::/0" : "0.0.0.0/0")) return true;
  }
  return false;
}

// Pod side: addresses, link up, routes, neighbours told; returns the interface's MAC.
StatusOr<std::string> configurePod(const plugin::Request& request, const std::vector<IpConfig>& ips,
                                   const std::vector<Route>& routes) {
  std::string mac;
  Status st = runInNetns(request.netns, [&]() -> Status {
    ASSIGN_OR_RETURN(link::RouteSocket pod, link::RouteSocket::open());
    ASSIGN_OR_RETURN(link::LinkInfo eth, pod.link(request.ifname));
    bool any_v6 = false;
    for (const IpConfig& ip : ips) any_v6 = any_v6 || ip.isV6();
    if (any_v6) {
      // No duplicate address detection on the pod side: the address is ours by IPAM,
      // and DAD would hold it "tentative" for a second or more after ADD.
      RETURN_IF_ERROR(link::writeSysctl(strCat("net/ipv6/conf/", request.ifname, "/accept_dad"), "0"));
    }
    // Gratuitous ARP: the kernel announces the addresses when the link comes up
    // (arp_notify). A packet socket of our own would cost ~8 ms on close (its release
    // waits for an RCU grace period).
    RETURN_IF_ERROR(link::writeSysctl(strCat("net/ipv4/conf/", request.ifname, "/arp_notify"), "1"));
    for (const IpConfig& ip : ips) RETURN_IF_ERROR(pod.addAddress(eth.index, ip.address));
    RETURN_IF_ERROR(pod.setUp(eth.index));
    for (const Route& r : routes) {
      link::RouteSpec spec;
      spec.dst = r.dst;
      spec.gw = r.gw;
      if (spec.gw.empty()) {
        bool v6 = r.dst.find(':') != std::string::npos;
        for (const IpConfig& ip : ips) {
          if (ip.isV6() == v6 && !ip.gateway.empty()) {
            spec.gw = ip.gateway;
            break;
          }
        }
      }
      spec.oif = eth.index;
      if (r.mtu) spec.mtu = *r.mtu;
      if (r.priority) spec.metric = *r.priority;
      if (r.table) spec.table = *r.table;
      if (r.scope) spec.scope = *r.scope;
      RETURN_IF_ERROR(pod.addRoute(spec));
    }
    mac = eth.mac;
    return absl::OkStatus();
  });
  if (!st.ok()) return withContext(st, strCat("configure \"", request.ifname, "\" in ", request.netns));
  return mac;
}

// Host side of the gateway: the gateway addresses on the bridge, forwarding on.
Status configureGateway(link::RouteSocket& host, const link::LinkInfo& bridge,
                        const BridgeConfig& config, const std::vector<IpConfig>& ips) {
  bool v4 = false, v6 = false;
  for (const IpConfig& ip : ips) {
    if (ip.gateway.empty()) continue;
    std::string want = strCat(ip.gateway, "/", prefixLengthOf(ip.address));
    ASSIGN_OR_RETURN(std::vector<std::string> have,
                     host.addresses(bridge.index, ip.isV6() ? AF_INET6 : AF_INET));
    bool present = false;
    for (const std::string& a : have) present = present || a == want;
    if (!present && config.force_address) {
      for (const std::string& a : have) {
        auto have_subnet = subnetOf(a);
        auto want_subnet = subnetOf(want);
        if (have_subnet.ok() && want_subnet.ok() && *have_subnet == *want_subnet) {
          RETURN_IF_ERROR(host.deleteAddress(bridge.index, a));
        }
      }
    }
    if (!present) RETURN_IF_ERROR(host.addAddress(bridge.index, want));
    (ip.isV6() ? v6 : v4) = true;
  }
  if (v4) RETURN_IF_ERROR(link::writeSysctl("net/ipv4/ip_forward", "1"));
  if (v6) RETURN_IF_ERROR(link::writeSysctl("net/ipv6/conf/all/forwarding", "1"));
  return absl::OkStatus();
}

}  // namespace

StatusOr<Result> bridgeAdd(const plugin::Request& request) {
  ASSIGN_OR_RETURN(BridgeConfig config, parseBridgeConfig(request));
  {
    auto ns = openNetns(request.netns);
    if (!ns.ok()) {
      return withCniErrorCode(withContext(ns.status(), "CNI_NETNS"), kErrInvalidEnvironment);
    }
  }
  ASSIGN_OR_RETURN(link::RouteSocket host, link::RouteSocket::open());
  link::BridgeSpec bridge_spec;
  bridge_spec.name = config.bridge;
  bridge_spec.mtu = config.mtu;
  bridge_spec.promisc = config.promisc_mode;
  bridge_spec.vlan_filtering = config.vlan != 0;
  ASSIGN_OR_RETURN(link::LinkInfo bridge, host.ensureBridge(bridge_spec));

  // IPAM first: the addresses decide everything below.
  IpamClient ipam(request, config);
  std::unique_ptr<nat::Firewall> firewall;
  // Declared after everything its undo steps use, so it runs before they are destroyed.
  Rollback rollback;
  Result ipam_result;
  if (!config.ipam_type.empty()) {
    ASSIGN_OR_RETURN(ipam_result, ipam.add());
    rollback.add([&ipam] { (void)ipam.del(); });
    if (ipam_result.ips.empty()) {
      return withCniErrorCode(
          internalError("IPAM \"", config.ipam_type, "\" returned no IP address for ",
                        request.container_id, "/", request.ifname),
          kErrInvalidNetworkConfig);
    }
  }
  std::vector<IpConfig> ips = ipam_result.ips;
  for (IpConfig& ip : ips) {
    if (ip.gateway.empty() && config.is_gateway) {
      ASSIGN_OR_RETURN(ip.gateway, firstHostOf(ip.address));
    }
  }
  std::vector<Route> routes = ipam_result.routes;
  if (config.is_default_gateway) {
    for (const IpConfig& ip : ips) {
      if (ip.gateway.empty() || hasDefaultRoute(routes, ip.isV6())) continue;
      Route r;
      r.dst = ip.isV6() ? "::/0" : "0.0.0.0/0";
      r.gw = ip.gateway;
      routes.push_back(r);
    }
  }

  // The veth pair, created with its peer directly inside the pod's netns.
  std::string host_name = hostVethName(request.container_id, request.ifname);
  {
    ASSIGN_OR_RETURN(UniqueFd netns, openNetns(request.netns));
    link::VethSpec veth;
    veth.host_name = host_name;
    veth.peer_name = request.ifname;
    veth.peer_netns_fd = netns.get();
    veth.mtu = config.mtu;
    veth.peer_mac = config.mac;
    Status st = host.createVeth(veth);
    if (absl::IsAlreadyExists(st)) {
      // Either the pod already has CNI_IFNAME (SPEC.md: ADD must fail) or a host end
      // survived an earlier attachment whose netns is gone: remove that and retry.
      bool pod_has_it = false;
      (void)runInNetns(request.netns, [&]() -> Status {
        ASSIGN_OR_RETURN(link::RouteSocket pod, link::RouteSocket::open());
        pod_has_it = pod.link(request.ifname).ok();
        return absl::OkStatus();
      });
      if (pod_has_it) {
        return alreadyExists("interface \"", request.ifname, "\" already exists in ", request.netns,
                             "; DEL the earlier attachment first or use another CNI_IFNAME");
      }
      RETURN_IF_ERROR(host.deleteLink(host_name));
      st = host.createVeth(veth);
    }
    RETURN_IF_ERROR_CTX(st, strCat("create veth pair ", host_name, " <-> ", request.ifname));
  }
  rollback.add([&host, host_name] { (void)host.deleteLink(host_name); });
  ASSIGN_OR_RETURN(link::LinkInfo host_veth, host.link(host_name));
  RETURN_IF_ERROR(host.setMaster(host_veth.index, bridge.index));
  if (config.hairpin_mode) RETURN_IF_ERROR(host.setHairpin(host_veth.index, true));
  if (config.vlan != 0) {
    RETURN_IF_ERROR(host.addBridgeVlan(host_veth.index, config.vlan, /*pvid=*/true, /*untagged=*/true));
  }
  RETURN_IF_ERROR(host.setUp(host_veth.index));

  ASSIGN_OR_RETURN(std::string pod_mac, configurePod(request, ips, routes));
  if (config.is_gateway) RETURN_IF_ERROR(configureGateway(host, bridge, config, ips));

  std::vector<std::string> subnets, pod_ips;
  for (const IpConfig& ip : ips) {
    ASSIGN_OR_RETURN(std::string subnet, subnetOf(ip.address));
    subnets.push_back(subnet);
    pod_ips.push_back(ip.ip());
  }
  if ((config.ip_masq && !subnets.empty()) || !config.port_mappings.empty()) {
    ASSIGN_OR_RETURN(firewall, openFirewall(config));
  }
  if (config.ip_masq && !subnets.empty()) {
    RETURN_IF_ERROR(firewall->ensureMasquerade(config.network, subnets, config.non_masquerade_cidrs));
  }
  nat::Attachment attachment{config.network, request.container_id, request.ifname};
  if (!config.port_mappings.empty()) {
    RETURN_IF_ERROR(firewall->addPortMappings(attachment, pod_ips, config.port_mappings));
    rollback.add([&firewall, attachment] { (void)firewall->removePortMappings(attachment); });
  }

  if (config.macspoofchk) {
    RETURN_IF_ERROR(nat::addMacSpoofCheck(attachment, host_name, pod_mac));
    rollback.add([attachment] { (void)nat::removeMacSpoofCheck(attachment); });
  }

  // The result: a prevResult is kept (SPEC.md "ADD"), ours appended to it.
  Result result = config.prev_result ? *config.prev_result : Result();
  result.raw = json::Json();
  result.cni_version = config.cni_version;
  int base = static_cast<int>(result.interfaces.size());
  ASSIGN_OR_RETURN(link::LinkInfo bridge_now, host.linkByIndex(bridge.index));
  result.interfaces.push_back(Interface{config.bridge, bridge_now.mac, std::nullopt, "", "", ""});
  result.interfaces.push_back(Interface{host_name, host_veth.mac, std::nullopt, "", "", ""});
  Interface pod_if{request.ifname, pod_mac, std::nullopt, request.netns, "", ""};
  if (config.mtu) pod_if.mtu = config.mtu;
  result.interfaces.push_back(pod_if);
  for (IpConfig ip : ips) {
    ip.interface = base + 2;
    result.ips.push_back(ip);
  }
  for (const Route& r : routes) result.routes.push_back(r);
  result.dns = !config.dns.empty() ? config.dns : ipam_result.dns;
  rollback.commit();
  return result;
}

plugin::Handlers bridgeHandlers() {
  plugin::Handlers h;
  h.add = bridgeAdd;
  h.del = bridgeDel;
  h.check = bridgeCheck;
  h.status = bridgeStatus;
  h.gc = bridgeGc;
  return h;
}

}  // namespace berth::cni::bridge
