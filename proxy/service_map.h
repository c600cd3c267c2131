// ServiceMap (the Services and EndpointSlices the proxy knows) and ProxyState (what a
// renderer programs): one ServicePortState per Service port and IP family, with its
// addresses, policies and endpoints, categorised the way kube-proxy does it.
//
// Upstream behaviour implemented (kubernetes pkg/proxy):
// - serviceport.go newBaseServiceInfo: per IP family, the cluster IP of that family,
//   externalIPs / LB ingress IPs / loadBalancerSourceRanges filtered to the family;
//   externalTrafficPolicy Local only counts for externally accessible Services (NodePort,
//   LoadBalancer, or ClusterIP with externalIPs); healthCheckNodePort only for
//   LoadBalancer + eTP Local; nodePort only for NodePort/LoadBalancer.
// - endpointslicecache.go: a Service port's endpoints are, over all the Service's slices
//   of the port's family, every endpoint's addresses[0] with the port number of the
//   slice port whose name and protocol equal the Service port's (this is how a named
//   targetPort is resolved: the EndpointSlice controller writes the number); slice ports
//   without a number are skipped; duplicates (same ip:port in several slices) are merged,
//   preferring the copy that is on this node; sorted by ip then port.
// - topology.go CategorizeEndpoints (without topology hints): cluster endpoints = the
//   ready ones, or if none is ready the serving+terminating ones; local endpoints = the
//   ready ones on this node, or if none the serving+terminating ones on this node;
//   has_any_endpoints = some endpoint anywhere is ready or serving+terminating.
//
// Thread-safety: plain values and pure functions; a ServiceMap is not synchronised.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "proxy/model.h"

namespace berth::proxy {

// The Services and their EndpointSlices, keyed by namespace/name; slices are grouped
// by the Service named in their kubernetes.io/service-name label (a slice may arrive
// before its Service, or outlive it). Ignored slices (FQDN) are not stored.
struct ServiceMap {
  std::map<NamespacedName, Service> services;
  // service -> slice name -> slice
  std::map<NamespacedName, std::map<std::string, EndpointSlice>> slices;
};

// What the proxy needs to know about the node it runs on.
struct NodeInfo {
  std::string node_name;              // endpoints with this nodeName are local
  std::vector<IpAddress> node_ips;    // the node's primary addresses, any family
  // Pod CIDRs of the cluster (per family); traffic from outside them to a cluster IP is
  // masqueraded, pod traffic to an eTP Local external IP is short-circuited. A family
  // without one gets neither rule (kube-proxy without a local-traffic detector).
  std::vector<Cidr> cluster_cidrs;
  // --nodeport-addresses: NodePorts answer on local addresses inside these CIDRs only. A
  // family with no CIDR here while the list is non-empty gets no NodePorts. Empty list:
  // every local address (except loopback).
  std::vector<Cidr> nodeport_addresses;
  // Service CIDRs (optional): traffic to an unallocated address in them is dropped.
  std::vector<Cidr> service_cidrs;

  bool operator==(const NodeInfo&) const = default;
};

struct Endpoint {
  IpAddress ip;
  int port = 0;
  bool ready = true;
  bool serving = true;
  bool terminating = false;
  bool local = false;  // node_name == NodeInfo::node_name
  std::string node_name;
  std::string zone;

  // "10.0.0.1:80" / "[fd00::1]:80"
  std::string str() const;
  bool operator==(const Endpoint&) const = default;
};

struct ServicePortState {
  ServicePortName name;
  IpFamily family = IpFamily::kIPv4;
  IpAddress cluster_ip;
  int port = 0;
  int node_port = 0;  // 0 = none
  TargetPort target_port;
  std::vector<IpAddress> external_ips;       // of `family`
  std::vector<IpAddress> load_balancer_ips;  // of `family`
  std::vector<Cidr> source_ranges;           // of `family`
  SessionAffinity affinity = SessionAffinity::kNone;
  int affinity_timeout_seconds = 0;          // ClientIP only
  bool external_policy_local = false;        // eTP Local and externally accessible
  bool internal_policy_local = false;        // iTP Local
  int health_check_node_port = 0;

  std::vector<Endpoint> endpoints;           // all known, deduplicated, sorted

  // Categorised (categorizeEndpoints()):
  std::vector<Endpoint> cluster_endpoints;    // for "Cluster" policy traffic (empty when unused)
  std::vector<Endpoint> local_endpoints;      // for "Local" policy traffic (empty when unused)
  std::vector<Endpoint> reachable_endpoints;  // union of the two that are used, sorted
  bool has_any_endpoints = false;             // usable endpoints exist somewhere

  Protocol protocol() const { return name.protocol; }
  // Has a NodePort, LB ingress IPs or external IPs.
  bool externallyAccessible() const;
  // Sends some traffic by "Cluster" policy: iTP Cluster, or externally accessible (even
  // with eTP Local, for the short-circuit of pod and node traffic).
  bool usesClusterEndpoints() const;
  // Sends some traffic by "Local" policy: iTP Local, or eTP Local.
  bool usesLocalEndpoints() const;

  // Endpoints for traffic to the cluster IP (local ones with iTP Local), and whether
  // that traffic has any (else it is dropped, or rejected when !has_any_endpoints).
  const std::vector<Endpoint>& internalEndpoints() const;
  bool hasInternalEndpoints() const;
  // Endpoints for external traffic (NodePort, LB, external IPs) from outside the node
  // (local ones with eTP Local), and whether there are any.
  const std::vector<Endpoint>& externalEndpoints() const;
  bool hasExternalEndpoints() const;

  bool operator==(const ServicePortState&) const = default;
};

struct ProxyState {
  NodeInfo node;
  // Sorted by (name, family); one entry per programmed Service port and IP family.
  std::vector<ServicePortState> ports;
  // Services present but not programmed, with the reason (diagnostics).
  std::map<NamespacedName, std::string> skipped;

  // The entry for `name` and `family`, or nullptr.
  const ServicePortState* find(const ServicePortName& name, IpFamily family) const;
};

// Fills cluster_endpoints, local_endpoints, reachable_endpoints and has_any_endpoints
// of `port` from port.endpoints and its policies (see the header comment).
void categorizeEndpoints(ServicePortState& port);

// The endpoints of `port` (protocol and name) of family `family` from `slices`
// (see the header comment); `node_name` marks local ones.
std::vector<Endpoint> endpointsForPort(const std::map<std::string, EndpointSlice>& slices,
                                       const ServicePortName& port, IpFamily family,
                                       const std::string& node_name);

// Builds the state of every programmed Service port for `node`. Services that are
// skipped (Service::skipReason()) appear in ProxyState::skipped only. Never fails:
// inputs were validated when parsed.
ProxyState buildProxyState(const ServiceMap& map, const NodeInfo& node);

}  // namespace berth::proxy
