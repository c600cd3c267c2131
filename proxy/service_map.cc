#include "proxy/service_map.h"

#include <algorithm>
#include <tuple>

namespace berth::proxy {
namespace {

bool endpointLess(const Endpoint& a, const Endpoint& b) {
  return std::tie(a.ip, a.port) < std::tie(b.ip, b.port);
}

template <typename Pred>
std::vector<Endpoint> filter(const std::vector<Endpoint>& in, Pred pred) {
  std::vector<Endpoint> out;
  for (const Endpoint& ep : in) {
    if (pred(ep)) out.push_back(ep);
  }
  return out;
}

bool externallyAccessible(const Service& svc) {
  return svc.type == ServiceType::kLoadBalancer || svc.type == ServiceType::kNodePort ||
         (svc.type == ServiceType::kClusterIP && !svc.external_ips.empty());
}

template <typename T>
std::vector<T> ofFamily(const std::vector<T>& in, IpFamily family) {
  std::vector<T> out;
  for (const T& v : in) {
    if constexpr (std::is_same_v<T, Cidr>) {
      if (v.address.family == family) out.push_back(v);
    } else {
      if (v.family == family) out.push_back(v);
    }
  }
  return out;
}

ServicePortState makePortState(const Service& svc, const ServicePort& port,
                               const IpAddress& cluster_ip) {
  ServicePortState st;
  st.name = {svc.name, port.name, port.protocol};
  st.family = cluster_ip.family;
  st.cluster_ip = cluster_ip;
  st.port = port.port;
  st.target_port = port.target_port;
  if (svc.type == ServiceType::kNodePort || svc.type == ServiceType::kLoadBalancer) {
    st.node_port = port.node_port;
  }
  st.external_ips = ofFamily(svc.external_ips, st.family);
  if (svc.type == ServiceType::kLoadBalancer) {
    st.load_balancer_ips = ofFamily(svc.load_balancer_ips, st.family);
    st.source_ranges = ofFamily(svc.load_balancer_source_ranges, st.family);
  }
  st.affinity = svc.session_affinity;
  if (st.affinity == SessionAffinity::kClientIP) {
    st.affinity_timeout_seconds = svc.affinity_timeout_seconds;
  }
  st.external_policy_local =
      externallyAccessible(svc) && svc.external_traffic_policy == TrafficPolicy::kLocal;
  st.internal_policy_local = svc.internal_traffic_policy == TrafficPolicy::kLocal;
  if (svc.type == ServiceType::kLoadBalancer && st.external_policy_local) {
    st.health_check_node_port = svc.health_check_node_port;
  }
  return st;
}

}  // namespace

std::string Endpoint::str() const {
  if (ip.family == IpFamily::kIPv6) return strCat("[", ip.str(), "]:", port);
  return strCat(ip.str(), ":", port);
}

bool ServicePortState::externallyAccessible() const {
  return node_port != 0 || !load_balancer_ips.empty() || !external_ips.empty();
}

bool ServicePortState::usesClusterEndpoints() const {
  return !internal_policy_local || externallyAccessible();
}

bool ServicePortState::usesLocalEndpoints() const {
  return internal_policy_local || (external_policy_local && externallyAccessible());
}

const std::vector<Endpoint>& ServicePortState::internalEndpoints() const {
  return internal_policy_local ? local_endpoints : cluster_endpoints;
}

bool ServicePortState::hasInternalEndpoints() const {
  return has_any_endpoints && !internalEndpoints().empty();
}

const std::vector<Endpoint>& ServicePortState::externalEndpoints() const {
  return external_policy_local ? local_endpoints : cluster_endpoints;
}

bool ServicePortState::hasExternalEndpoints() const {
  return has_any_endpoints && !externalEndpoints().empty();
}

const ServicePortState* ProxyState::find(const ServicePortName& name, IpFamily family) const {
  auto it = std::lower_bound(ports.begin(), ports.end(), std::tie(name, family),
                             [](const ServicePortState& p, const auto& key) {
                               return std::tie(p.name, p.family) < key;
                             });
  if (it == ports.end() || it->name != name || it->family != family) return nullptr;
  return &*it;
}

void categorizeEndpoints(ServicePortState& port) {
  port.cluster_endpoints.clear();
  port.local_endpoints.clear();
  port.reachable_endpoints.clear();
  port.has_any_endpoints = false;
  auto serving_terminating = [](const Endpoint& ep) { return ep.serving && ep.terminating; };

  if (port.usesClusterEndpoints()) {
    port.cluster_endpoints = filter(port.endpoints, [](const Endpoint& ep) { return ep.ready; });
    // No ready endpoint anywhere: fall back to terminating ones that still serve, so
    // connections are not dropped while a rollout drains.
    if (port.cluster_endpoints.empty()) {
      port.cluster_endpoints = filter(port.endpoints, serving_terminating);
    }
    port.has_any_endpoints = !port.cluster_endpoints.empty();
  }
  if (!port.usesLocalEndpoints()) {
    port.reachable_endpoints = port.cluster_endpoints;
    return;
  }

  bool local_ready = false;
  bool local_serving_terminating = false;
  for (const Endpoint& ep : port.endpoints) {
    if (ep.ready) {
      port.has_any_endpoints = true;
      local_ready |= ep.local;
    } else if (serving_terminating(ep)) {
      port.has_any_endpoints = true;
      local_serving_terminating |= ep.local;
    }
  }
  if (local_ready) {
    port.local_endpoints = filter(port.endpoints, [](const Endpoint& ep) { return ep.local && ep.ready; });
  } else if (local_serving_terminating) {
    port.local_endpoints = filter(port.endpoints, [&](const Endpoint& ep) {
      return ep.local && serving_terminating(ep);
    });
  }

  if (!port.usesClusterEndpoints()) {
    port.reachable_endpoints = port.local_endpoints;
    return;
  }
  port.reachable_endpoints = port.cluster_endpoints;
  for (const Endpoint& ep : port.local_endpoints) {
    auto same = [&](const Endpoint& other) { return other.ip == ep.ip && other.port == ep.port; };
    if (std::none_of(port.reachable_endpoints.begin(), port.reachable_endpoints.end(), same)) {
      port.reachable_endpoints.push_back(ep);
    }
  }
  std::sort(port.reachable_endpoints.begin(), port.reachable_endpoints.end(), endpointLess);
}

std::vector<Endpoint> endpointsForPort(const std::map<std::string, EndpointSlice>& slices,
                                       const ServicePortName& port, IpFamily family,
                                       const std::string& node_name) {
  AddressType want = family == IpFamily::kIPv4 ? AddressType::kIPv4 : AddressType::kIPv6;
  std::map<std::pair<IpAddress, int>, Endpoint> merged;  // sorted by ip, port
  for (const auto& [slice_name, slice] : slices) {
    if (slice.address_type != want) continue;
    for (const SlicePort& sp : slice.ports) {
      if (sp.name != port.port || sp.protocol != port.protocol || !sp.port) continue;
      for (const SliceEndpoint& se : slice.endpoints) {
        if (!se.ip) continue;
        Endpoint ep;
        ep.ip = *se.ip;
        ep.port = *sp.port;
        ep.ready = se.conditions.ready;
        ep.serving = se.conditions.serving;
        ep.terminating = se.conditions.terminating;
        ep.node_name = se.node_name;
        ep.zone = se.zone;
        ep.local = !node_name.empty() && se.node_name == node_name;
        auto [it, inserted] = merged.try_emplace({ep.ip, ep.port}, ep);
        // The same endpoint in two slices: the copy on this node wins.
        if (!inserted && ep.local && !it->second.local) it->second = std::move(ep);
      }
    }
  }
  std::vector<Endpoint> out;
  out.reserve(merged.size());
  for (auto& [key, ep] : merged) out.push_back(std::move(ep));
  return out;
}

ProxyState buildProxyState(const ServiceMap& map, const NodeInfo& node) {
  ProxyState state;
  state.node = node;
  static const std::map<std::string, EndpointSlice> kNoSlices;
  for (const auto& [name, svc] : map.services) {
    std::string reason = svc.skipReason();
    if (!reason.empty()) {
      state.skipped[name] = reason;
      continue;
    }
    auto slices_it = map.slices.find(name);
    const auto& slices = slices_it == map.slices.end() ? kNoSlices : slices_it->second;
    for (const ServicePort& port : svc.ports) {
      for (const IpAddress& cluster_ip : svc.cluster_ips) {
        ServicePortState st = makePortState(svc, port, cluster_ip);
        st.endpoints = endpointsForPort(slices, st.name, st.family, node.node_name);
        categorizeEndpoints(st);
        state.ports.push_back(std::move(st));
      }
    }
  }
  std::sort(state.ports.begin(), state.ports.end(), [](const auto& a, const auto& b) {
    return std::tie(a.name, a.family) < std::tie(b.name, b.family);
  });
  return state;
}

}  // namespace berth::proxy
