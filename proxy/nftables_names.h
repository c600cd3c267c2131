// Names of everything in the nftables proxy table (table "inet berth-proxy"): the fixed
// base and helper chains, the per-family verdict maps and sets, and the per-Service-port
// chains and affinity sets, whose names are derived from the ServicePortName so they are
// stable across syncs and restarts.
//
// Per-service names follow kube-proxy's nftables proxier (pkg/proxy/nftables/proxier.go
// servicePortChainNameBase): "<prefix>-<hash>-<namespace>/<service>/<proto>/<port name>",
// where <hash> is 8 hex digits of FNV-1a 64 over the readable part (so near-identical
// names are told apart at a glance), <proto> is "tcp"/"udp"/"sctp" for IPv4 chains and
// "tcp6"/"udp6"/"sctp6" for IPv6 ones (one inet table holds both families), and endpoint
// names append "__<ip>/<port>" with ':' of IPv6 addresses written as '.'. Every per-service
// name contains '/', which no fixed name does. nft identifiers allow [A-Za-z0-9_./-] and at
// most 255 characters; the inputs are DNS labels (validated by the parsers), anything else
// is replaced by '_', and a longer name is cut (the hash keeps it unique).
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "proxy/model.h"
#include "proxy/service_map.h"

namespace berth::proxy::nftnames {

inline constexpr std::string_view kDefaultTable = "berth-proxy";

// Base chains (hooked), named "<type>-<hook>[-pre-dnat]" as kube-proxy does (the layout of
// kubernetes PR #132456: source-range firewall before DNAT, no-endpoint drop/reject after).
inline constexpr std::string_view kFilterPreroutingPreDnat = "filter-prerouting-pre-dnat";
inline constexpr std::string_view kFilterOutputPreDnat = "filter-output-pre-dnat";
inline constexpr std::string_view kFilterInput = "filter-input";
inline constexpr std::string_view kFilterForward = "filter-forward";
inline constexpr std::string_view kFilterOutput = "filter-output";
inline constexpr std::string_view kNatPrerouting = "nat-prerouting";
inline constexpr std::string_view kNatOutput = "nat-output";
inline constexpr std::string_view kNatPostrouting = "nat-postrouting";

// Fixed regular chains.
inline constexpr std::string_view kServices = "services";
inline constexpr std::string_view kFirewallCheck = "firewall-check";
inline constexpr std::string_view kServiceEndpointsCheck = "service-endpoints-check";
inline constexpr std::string_view kNodePortEndpointsCheck = "nodeport-endpoints-check";
inline constexpr std::string_view kClusterIpsCheck = "cluster-ips-check";
inline constexpr std::string_view kMarkForMasquerade = "mark-for-masquerade";
inline constexpr std::string_view kMasquerading = "masquerading";
inline constexpr std::string_view kRejectChain = "reject-chain";

// "v4" / "v6": the suffix of per-family maps and sets.
std::string_view familySuffix(IpFamily family);
// "ip" / "ip6": the nft payload protocol for addresses of `family`.
std::string_view ipKeyword(IpFamily family);
// "ipv4_addr" / "ipv6_addr": the nft data type.
std::string_view addrType(IpFamily family);

// Per-family maps and sets (e.g. "service-ips-v4").
// ip . proto . port -> goto the Service port's chain (cluster IPs, external IPs, LB IPs).
std::string serviceIpsMap(IpFamily family);
// proto . port -> goto the external chain (NodePorts on local addresses).
std::string serviceNodePortsMap(IpFamily family);
// ip . proto . port -> goto reject-chain or drop (no endpoints), consulted in filter hooks.
std::string noEndpointServicesMap(IpFamily family);
// proto . port -> goto reject-chain or drop (NodePorts without endpoints).
std::string noEndpointNodePortsMap(IpFamily family);
// ip . proto . port -> goto the firewall chain (LB IPs with loadBalancerSourceRanges).
std::string firewallIpsMap(IpFamily family);
// Set of active cluster IPs (traffic to other ports of them is rejected).
std::string clusterIpsSet(IpFamily family);
// Interval set of the NodePort address CIDRs (only when nodeport_addresses is set).
std::string nodePortAddressesSet(IpFamily family);

// The readable, hashed base of a Service port's names: "<hash>-ns/svc/tcp/http".
std::string servicePortBase(const ServicePortName& name, IpFamily family);
// Chain of the "Cluster" policy endpoints: "service-<base>".
std::string clusterChain(const ServicePortName& name, IpFamily family);
// Chain of the "Local" policy endpoints: "local-<base>".
std::string localChain(const ServicePortName& name, IpFamily family);
// Chain for external destinations (NodePort, LB, external IPs): "external-<base>".
std::string externalChain(const ServicePortName& name, IpFamily family);
// loadBalancerSourceRanges check: "firewall-<base>".
std::string firewallChain(const ServicePortName& name, IpFamily family);
// One endpoint's DNAT chain: "endpoint-<hash>-ns/svc/tcp/http__10.1.2.3/8080".
std::string endpointChain(const ServicePortName& name, const Endpoint& endpoint);
// One endpoint's session-affinity set: "affinity-<hash>-ns/svc/tcp/http__10.1.2.3/8080".
std::string affinitySet(const ServicePortName& name, const Endpoint& endpoint);

// True for per-service chain and set names (they contain '/').
bool isServiceObject(std::string_view name);

}  // namespace berth::proxy::nftnames
