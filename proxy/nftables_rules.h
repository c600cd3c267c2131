// The rule generation of the nftables proxy, without any transaction logic: the fixed
// skeleton of table "inet berth-proxy" (nftables_skeleton.cc) and the chains, affinity
// sets and map elements of one Service port (nftables_service.cc). NftablesRenderer
// (nftables_render.h) turns these into add/flush/delete commands. The layout is described
// in proxy/README.md; it follows kube-proxy's nftables proxier (pkg/proxy/nftables), with
// both families in one inet table (per-family maps and chains).
//
// Rules are nft text syntax without the "add rule inet <table> <chain>" prefix.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "proxy/service_map.h"

namespace berth::proxy::nftrules {

struct RenderOptions {
  std::string table = "berth-proxy";  // in family inet
  // The packet mark bit that asks the masquerading chain to SNAT (kube-proxy's default).
  uint32_t masquerade_mark = 0x4000;
  // Masquerade all traffic to cluster IPs (kube-proxy --masquerade-all), not only traffic
  // from outside the cluster CIDRs.
  bool masquerade_all = false;
  bool operator==(const RenderOptions&) const = default;
};

struct ChainContent {
  std::string name;
  std::vector<std::string> rules;
  bool operator==(const ChainContent&) const = default;
};

// A per-endpoint ClientIP affinity set (type <family addr>; flags dynamic,timeout).
struct AffinitySetDecl {
  std::string name;
  IpFamily family = IpFamily::kIPv4;
  int timeout_seconds = 0;
  bool operator==(const AffinitySetDecl&) const = default;
};

// One element of a map ("10.96.0.1 . tcp . 80" : "goto service-...") or of a set (value
// empty).
struct Element {
  std::string container;  // map or set name
  std::string key;
  std::string value;
  bool operator==(const Element&) const = default;
};

// `cidrs` sorted, without duplicates and without any CIDR contained in another one (nft
// refuses overlapping intervals in one set).
std::vector<Cidr> coveringCidrs(std::vector<Cidr> cidrs);

// "10.0.0.0/8" for one CIDR, "{ 10.0.0.0/8, 192.168.0.0/16 }" for several (after
// coveringCidrs()); "" for none.
std::string cidrSetExpr(const std::vector<Cidr>& cidrs);

// ---------------------------------------------------------------------------
// Skeleton (nftables_skeleton.cc)

// Base chain declaration ("{ type nat hook prerouting priority dstnat; }") of each base
// chain, in a fixed order.
struct BaseChain {
  std::string_view name;
  std::string_view spec;
};
const std::vector<BaseChain>& baseChains();
// The fixed regular chains.
const std::vector<std::string_view>& fixedChains();

// A map or set of the skeleton with its declaration ("{ type ...; }").
struct Container {
  std::string name;
  std::string spec;
  bool is_map = true;
};
std::vector<Container> containers();

// The rules of every base and fixed chain for `node` (its nodeport_addresses decide the
// NodePort match; service_cidrs the drop of unallocated cluster IPs).
std::vector<ChainContent> skeletonChains(const NodeInfo& node, const RenderOptions& options);

// Elements that depend only on the node: the nodeport-addresses sets.
void skeletonElements(const NodeInfo& node, std::vector<Element>& out);

// ---------------------------------------------------------------------------
// One Service port (nftables_service.cc)

// What one Service port programs, following kube-proxy's syncProxyRules for one
// servicePortInfo (see README.md, "Per Service port").
struct ServicePortRules {
  std::vector<ChainContent> chains;  // every chain the port uses, each complete
  std::vector<AffinitySetDecl> sets;
};

// The chains (with rules) and affinity sets of `port`.
ServicePortRules servicePortRules(const ServicePortState& port, const NodeInfo& node,
                                  const RenderOptions& options);

// Only the names of the chains and sets servicePortRules() would return (cheap: no rule
// text), in the same order.
struct ServicePortNames {
  std::vector<std::string> chains;
  std::vector<std::string> sets;
};
ServicePortNames servicePortNames(const ServicePortState& port);

// Appends the map/set elements of `port`: cluster-ips, service-ips, service-nodeports,
// no-endpoint-services, no-endpoint-nodeports, firewall-ips.
void servicePortElements(const ServicePortState& port, std::vector<Element>& out);

}  // namespace berth::proxy::nftrules
