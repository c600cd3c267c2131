// berth-bridge CHECK and STATUS (SPEC.md "CHECK", "STATUS").
#include <sys/socket.h>

#include "cni/bridge/bridge_internal.h"
#include "cni/bridge/bridge_plugin.h"
#include "cni/bridge/ipam_client.h"
#include "cni/link/netlink.h"
#include "cni/netns.h"
#include "cni/plugin_exec.h"

namespace berth::cni::bridge {

Status bridgeCheck(const plugin::Request& request) {
  ASSIGN_OR_RETURN(BridgeConfig config, parseBridgeConfig(request));
  if (!config.prev_result) {
    return withCniErrorCode(
        invalidArgument("CHECK needs \"prevResult\" (the result of the attachment's ADD)"),
        kErrInvalidNetworkConfig);
  }
  const Result& prev = *config.prev_result;
  {
    auto ns = openNetns(request.netns);
    if (!ns.ok()) {
      return withCniErrorCode(withContext(ns.status(), "CNI_NETNS"), kErrUnknownContainer);
    }
  }
  ASSIGN_OR_RETURN(link::RouteSocket host, link::RouteSocket::open());
  auto bridge = host.link(config.bridge);
  if (!bridge.ok()) return failedPrecondition("bridge \"", config.bridge, "\" is missing");
  if (bridge->kind != "bridge") {
    return failedPrecondition("link \"", config.bridge, "\" is a ", bridge->kind, ", not a bridge");
  }
  std::string host_name = hostVethName(request.container_id, request.ifname);
  auto veth = host.link(host_name);
  if (!veth.ok()) {
    return failedPrecondition("host end \"", host_name, "\" of the pod's veth pair is missing");
  }
  if (veth->master_index != bridge->index) {
    return failedPrecondition("host end \"", host_name, "\" is not attached to bridge \"",
                              config.bridge, "\"");
  }

  // The pod interface carries every address prevResult gave it.
  std::vector<std::string> expected_cidrs, expected_ips;
  for (const IpConfig& ip : prev.ips) {
    bool ours = !ip.interface || (*ip.interface >= 0 &&
                                  *ip.interface < static_cast<int>(prev.interfaces.size()) &&
                                  prev.interfaces[*ip.interface].name == request.ifname &&
                                  !prev.interfaces[*ip.interface].sandbox.empty());
    if (!ours) continue;
    expected_cidrs.push_back(ip.address);
    expected_ips.push_back(ip.ip());
  }
  Status pod = runInNetns(request.netns, [&]() -> Status {
    ASSIGN_OR_RETURN(link::RouteSocket sock, link::RouteSocket::open());
    auto eth = sock.link(request.ifname);
    if (!eth.ok()) {
      return failedPrecondition("interface \"", request.ifname, "\" is missing in ", request.netns);
    }
    if (!eth->up) return failedPrecondition("interface \"", request.ifname, "\" is down");
    ASSIGN_OR_RETURN(std::vector<std::string> have, sock.addresses(eth->index));
    for (const std::string& want : expected_cidrs) {
      bool found = false;
      for (const std::string& a : have) found = found || a == want;
      if (!found) {
        return failedPrecondition("address ", want, " is missing on \"", request.ifname,
                                  "\" in ", request.netns);
      }
    }
    return absl::OkStatus();
  });
  RETURN_IF_ERROR(pod);

  if (!config.ipam_type.empty()) {
    IpamClient ipam(request, config);
    RETURN_IF_ERROR(ipam.check(expected_ips));
  }
  std::vector<std::string> subnets;
  for (const std::string& cidr : expected_cidrs) {
    ASSIGN_OR_RETURN(std::string s, subnetOf(cidr));
    subnets.push_back(s);
  }
  if ((config.ip_masq && !subnets.empty()) || !config.port_mappings.empty()) {
    ASSIGN_OR_RETURN(std::unique_ptr<nat::Firewall> firewall, openFirewall(config));
    if (config.ip_masq && !subnets.empty()) {
      RETURN_IF_ERROR(firewall->checkMasquerade(config.network, subnets));
    }
    if (!config.port_mappings.empty()) {
      RETURN_IF_ERROR(firewall->checkPortMappings(
          nat::Attachment{config.network, request.container_id, request.ifname}, expected_ips,
          config.port_mappings));
    }
  }
  if (config.macspoofchk) {
    RETURN_IF_ERROR(nat::checkMacSpoofCheck(
        nat::Attachment{config.network, request.container_id, request.ifname}));
  }
  return absl::OkStatus();
}

Status bridgeStatus(const plugin::Request& request) {
  ASSIGN_OR_RETURN(BridgeConfig config, parseBridgeConfig(request));
  if (config.ipam_type.empty()) return absl::OkStatus();
  IpamClient ipam(request, config);
  Status st = ipam.status();
  if (st.ok()) return st;
  int code = cniErrorCode(st);
  return withCniErrorCode(st, code == kErrPluginNotAvailableLimited ? code : kErrPluginNotAvailable);
}

}  // namespace berth::cni::bridge
