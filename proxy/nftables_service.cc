// Rules of one Service port (per IP family): which chains it needs, their rules, its
// affinity sets and its map elements. Mirrors kube-proxy's nftables syncProxyRules for
// one servicePortInfo; see proxy/README.md ("Per Service port").
#include "common/strings.h"
#include "proxy/nftables_names.h"
#include "proxy/nftables_rules.h"

namespace berth::proxy::nftrules {
namespace {

using namespace nftnames;

// Which chains a Service port uses and where its traffic goes, from its categorised
// endpoints (kube-proxy's usesClusterPolicyChain, hasInternalEndpoints, ...).
struct Plan {
  std::string cluster_chain, local_chain, external_chain, firewall_chain;
  bool uses_cluster = false;   // cluster chain exists
  bool uses_local = false;     // local chain exists
  bool has_internal = false;   // cluster IP traffic has endpoints
  bool has_external = false;   // outside traffic to external destinations has endpoints
  bool uses_external = false;  // external chain exists
  bool uses_firewall = false;  // LB IPs with source ranges
  bool affinity = false;
  std::string internal_chain;         // where cluster IP traffic goes
  std::string external_policy_chain;  // where external traffic from outside goes
  // Verdicts in the no-endpoint maps: reject when nothing anywhere, else drop.
  std::string internal_verdict, external_verdict;
};

Plan makePlan(const ServicePortState& p) {
  Plan plan;
  plan.cluster_chain = clusterChain(p.name, p.family);
  plan.local_chain = localChain(p.name, p.family);
  plan.external_chain = externalChain(p.name, p.family);
  plan.firewall_chain = firewallChain(p.name, p.family);
  plan.uses_cluster = !p.cluster_endpoints.empty() && p.usesClusterEndpoints();
  plan.uses_local = !p.local_endpoints.empty() && p.usesLocalEndpoints();
  plan.has_internal = p.hasInternalEndpoints();
  plan.has_external = p.hasExternalEndpoints();
  plan.uses_external = p.has_any_endpoints && p.externallyAccessible();
  plan.uses_firewall = !p.load_balancer_ips.empty() && !p.source_ranges.empty();
  plan.affinity = p.affinity == SessionAffinity::kClientIP;
  plan.internal_chain = p.internal_policy_local ? plan.local_chain : plan.cluster_chain;
  plan.external_policy_chain = p.external_policy_local ? plan.local_chain : plan.cluster_chain;
  std::string none = p.has_any_endpoints ? "drop" : strCat("goto ", kRejectChain);
  plan.internal_verdict = plan.has_internal ? "" : none;
  plan.external_verdict = plan.has_external ? "" : none;
  return plan;
}

std::string localCidrs(const NodeInfo& node, IpFamily f) {
  std::vector<Cidr> cidrs;
  for (const Cidr& c : node.cluster_cidrs) {
    if (c.address.family == f) cidrs.push_back(c);
  }
  return cidrSetExpr(cidrs);
}

std::string proto(const ServicePortState& p) { return std::string(protocolLower(p.protocol())); }

std::string key3(const IpAddress& ip, const ServicePortState& p, int port) {
  return strCat(ip.str(), " . ", proto(p), " . ", port);
}

// Affinity lookups, then a random pick: the body of a cluster or local policy chain.
void endpointDispatch(const ServicePortState& p, const Plan& plan,
                      const std::vector<Endpoint>& endpoints, std::vector<std::string>& rules) {
  std::string ipx(ipKeyword(p.family));
  if (plan.affinity) {
    for (const Endpoint& ep : endpoints) {
      rules.push_back(strCat(ipx, " saddr @", affinitySet(p.name, ep), " goto ",
                             endpointChain(p.name, ep)));
    }
  }
  // A uniform random pick without a set: rule i goes to endpoint i with probability
  // 1/(N-i) (numgen random mod N-i == 0), the last one unconditionally; so each endpoint
  // gets exactly 1/N, as with "numgen random mod N vmap { 0 : ..., ... }". No anonymous
  // map: binding one walks the whole transaction in the kernel (__nft_set_trans_bind),
  // which made a full sync quadratic in the number of Services.
  size_t n = endpoints.size();
  for (size_t i = 0; i < n; ++i) {
    std::string to = strCat("goto ", endpointChain(p.name, endpoints[i]));
    if (n - i > 1) {
      rules.push_back(strCat("numgen random mod ", n - i, " == 0 ", to));
    } else {
      rules.push_back(std::move(to));
    }
  }
}

// The external chain: masquerade (eTP Cluster) or keep the client IP (eTP Local, with
// pod and node traffic short-circuited to the cluster chain), then the policy chain.
ChainContent externalChainContent(const ServicePortState& p, const Plan& plan,
                                  const NodeInfo& node) {
  ChainContent c{plan.external_chain, {}};
  if (!p.external_policy_local) {
    c.rules.push_back(strCat("jump ", kMarkForMasquerade));
  } else {
    std::string pods = localCidrs(node, p.family);
    if (!pods.empty()) {
      // Pod -> external IP: as if it went out to the load balancer and came back in.
      c.rules.push_back(strCat(ipKeyword(p.family), " saddr ", pods, " goto ", plan.cluster_chain));
    }
    // The node itself: its source address is local, replies must come back here.
    c.rules.push_back(strCat("fib saddr type local jump ", kMarkForMasquerade));
    c.rules.push_back(strCat("fib saddr type local goto ", plan.cluster_chain));
  }
  if (plan.has_external) c.rules.push_back(strCat("goto ", plan.external_policy_chain));
  return c;
}

ChainContent firewallChainContent(const ServicePortState& p, const Plan& plan,
                                  const NodeInfo& node) {
  std::vector<Cidr> allowed = p.source_ranges;
  // A VIP-style LB IP is often also a local address: a request from this node to it loops
  // back with the LB IP as source, so allow that when the node itself is allowed.
  bool node_allowed = false;
  for (const Cidr& range : p.source_ranges) {
    for (const IpAddress& ip : node.node_ips) node_allowed |= range.contains(ip);
  }
  if (node_allowed) {
    for (const IpAddress& ip : p.load_balancer_ips) {
      allowed.push_back({ip, ip.family == IpFamily::kIPv4 ? 32 : 128});
    }
  }
  std::string set = cidrSetExpr(allowed);
  if (set.front() != '{') set = strCat("{ ", set, " }");
  return {plan.firewall_chain, {strCat(ipKeyword(p.family), " saddr != ", set, " drop")}};
}

ChainContent endpointChainContent(const ServicePortState& p, const Plan& plan,
                                  const Endpoint& ep) {
  std::string ipx(ipKeyword(p.family));
  ChainContent c{endpointChain(p.name, ep), {}};
  // Hairpin: an endpoint reaching itself through the Service must see the node as source.
  c.rules.push_back(strCat(ipx, " saddr ", ep.ip.str(), " jump ", kMarkForMasquerade));
  if (plan.affinity) {
    c.rules.push_back(strCat("update @", affinitySet(p.name, ep), " { ", ipx, " saddr timeout ",
                             p.affinity_timeout_seconds, "s }"));
  }
  std::string dest = p.family == IpFamily::kIPv6 ? strCat("[", ep.ip.str(), "]:", ep.port)
                                                 : strCat(ep.ip.str(), ":", ep.port);
  c.rules.push_back(strCat("meta l4proto ", proto(p), " dnat ", ipx, " to ", dest));
  return c;
}

}  // namespace

ServicePortNames servicePortNames(const ServicePortState& p) {
  Plan plan = makePlan(p);
  ServicePortNames out;
  if (plan.uses_cluster) out.chains.push_back(plan.cluster_chain);
  if (plan.uses_local) out.chains.push_back(plan.local_chain);
  if (plan.uses_external) out.chains.push_back(plan.external_chain);
  if (plan.uses_firewall) out.chains.push_back(plan.firewall_chain);
  for (const Endpoint& ep : p.reachable_endpoints) {
    out.chains.push_back(endpointChain(p.name, ep));
    if (plan.affinity) out.sets.push_back(affinitySet(p.name, ep));
  }
  return out;
}

ServicePortRules servicePortRules(const ServicePortState& p, const NodeInfo& node,
                                  const RenderOptions& options) {
  Plan plan = makePlan(p);
  ServicePortRules out;
  std::string ipx(ipKeyword(p.family));

  // Masquerade cluster IP traffic from outside the pod network (or all of it): first rule
  // of the chain cluster IP traffic goes to (the chain is shared with external traffic,
  // hence the destination match).
  std::string masq_rule;
  if (plan.has_internal) {
    std::string match = strCat(ipx, " daddr ", p.cluster_ip.str(), " ", proto(p), " dport ", p.port);
    std::string pods = localCidrs(node, p.family);
    if (options.masquerade_all) {
      masq_rule = strCat(match, " jump ", kMarkForMasquerade);
    } else if (!pods.empty()) {
      masq_rule = strCat(match, " ", ipx, " saddr != ", pods, " jump ", kMarkForMasquerade);
    }
  }
  auto policyChain = [&](const std::string& name, const std::vector<Endpoint>& eps) {
    ChainContent c{name, {}};
    if (!masq_rule.empty() && name == plan.internal_chain) c.rules.push_back(masq_rule);
    endpointDispatch(p, plan, eps, c.rules);
    out.chains.push_back(std::move(c));
  };
  if (plan.uses_cluster) policyChain(plan.cluster_chain, p.cluster_endpoints);
  if (plan.uses_local) policyChain(plan.local_chain, p.local_endpoints);
  if (plan.uses_external) out.chains.push_back(externalChainContent(p, plan, node));
  if (plan.uses_firewall) out.chains.push_back(firewallChainContent(p, plan, node));
  for (const Endpoint& ep : p.reachable_endpoints) {
    out.chains.push_back(endpointChainContent(p, plan, ep));
    if (plan.affinity) {
      out.sets.push_back({affinitySet(p.name, ep), p.family, p.affinity_timeout_seconds});
    }
  }
  return out;
}

void servicePortElements(const ServicePortState& p, std::vector<Element>& out) {
  Plan plan = makePlan(p);
  IpFamily f = p.family;
  out.push_back({clusterIpsSet(f), p.cluster_ip.str(), ""});
  if (plan.has_internal) {
    out.push_back({serviceIpsMap(f), key3(p.cluster_ip, p, p.port), strCat("goto ", plan.internal_chain)});
  } else {
    out.push_back({noEndpointServicesMap(f), key3(p.cluster_ip, p, p.port), plan.internal_verdict});
  }
  std::string to_external = strCat("goto ", plan.external_chain);
  for (const IpAddress& ip : p.external_ips) {
    if (p.has_any_endpoints) out.push_back({serviceIpsMap(f), key3(ip, p, p.port), to_external});
    if (!plan.has_external) {
      out.push_back({noEndpointServicesMap(f), key3(ip, p, p.port), plan.external_verdict});
    }
  }
  for (const IpAddress& ip : p.load_balancer_ips) {
    if (p.has_any_endpoints) out.push_back({serviceIpsMap(f), key3(ip, p, p.port), to_external});
    if (plan.uses_firewall) {
      out.push_back({firewallIpsMap(f), key3(ip, p, p.port), strCat("goto ", plan.firewall_chain)});
    }
    if (!plan.has_external) {
      out.push_back({noEndpointServicesMap(f), key3(ip, p, p.port), plan.external_verdict});
    }
  }
  if (p.node_port != 0) {
    std::string key = strCat(proto(p), " . ", p.node_port);
    // NodePorts are not subject to loadBalancerSourceRanges (as in kube-proxy).
    if (p.has_any_endpoints) out.push_back({serviceNodePortsMap(f), key, to_external});
    if (!plan.has_external) out.push_back({noEndpointNodePortsMap(f), key, plan.external_verdict});
  }
}

}  // namespace berth::proxy::nftrules
