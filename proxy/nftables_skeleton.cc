// The fixed part of table inet berth-proxy: base chains, dispatch chains, the per-family
// maps and sets, masquerading and rejecting. See proxy/README.md for the layout.
#include <algorithm>
#include <tuple>

#include "common/strings.h"
#include "proxy/nftables_names.h"
#include "proxy/nftables_rules.h"

namespace berth::proxy::nftrules {
namespace {

using namespace nftnames;

constexpr IpFamily kFamilies[] = {IpFamily::kIPv4, IpFamily::kIPv6};

std::string markHex(uint32_t mark) { return strCat("0x", hex(mark)); }

std::string loopbackExclusion(IpFamily f) {
  return f == IpFamily::kIPv4 ? "ip daddr != 127.0.0.0/8" : "ip6 daddr != ::1";
}

std::vector<Cidr> cidrsOf(const std::vector<Cidr>& all, IpFamily f) {
  std::vector<Cidr> out;
  for (const Cidr& c : all) {
    if (c.address.family == f) out.push_back(c);
  }
  return out;
}

// "fib daddr type local ip daddr != 127.0.0.0/8 [ip daddr @nodeport-addresses-v4]", or
// "" when this family has no NodePort addresses at all.
std::string nodePortMatch(const NodeInfo& node, IpFamily f) {
  std::string match = strCat("fib daddr type local ", loopbackExclusion(f));
  if (node.nodeport_addresses.empty()) return match;
  if (cidrsOf(node.nodeport_addresses, f).empty()) return "";
  return strCat(match, " ", ipKeyword(f), " daddr @", nodePortAddressesSet(f));
}

}  // namespace

std::vector<Cidr> coveringCidrs(std::vector<Cidr> cidrs) {
  // Shorter prefixes first, so a CIDR is only kept when no kept one contains it.
  std::sort(cidrs.begin(), cidrs.end(), [](const Cidr& a, const Cidr& b) {
    return std::tie(a.address.family, a.prefix_len, a.address) <
           std::tie(b.address.family, b.prefix_len, b.address);
  });
  std::vector<Cidr> kept;
  for (const Cidr& c : cidrs) {
    bool covered = std::any_of(kept.begin(), kept.end(), [&](const Cidr& k) {
      return k.prefix_len <= c.prefix_len && k.contains(c.address);
    });
    if (!covered) kept.push_back(c);
  }
  std::sort(kept.begin(), kept.end());
  return kept;
}

std::string cidrSetExpr(const std::vector<Cidr>& cidrs) {
  std::vector<std::string> parts;
  for (const Cidr& c : coveringCidrs(cidrs)) parts.push_back(c.str());
  if (parts.empty()) return "";
  if (parts.size() == 1) return parts[0];
  return strCat("{ ", joinStrings(parts, ", "), " }");
}

const std::vector<BaseChain>& baseChains() {
  // The source-range firewall runs before DNAT (dstnat - 10) to see the Service address;
  // the no-endpoint checks run after it (priority filter), so that traffic the nat chains
  // DNATed (e.g. node or pod traffic short-circuited past an eTP Local drop) no longer
  // matches them. "dstnat"/"srcnat" are only valid in prerouting/postrouting, hence -110
  // and -100 in output.
  static const std::vector<BaseChain> kChains = {
      {kFilterPreroutingPreDnat, "{ type filter hook prerouting priority dstnat - 10; }"},
      {kFilterOutputPreDnat, "{ type filter hook output priority -110; }"},
      {kFilterInput, "{ type filter hook input priority filter; }"},
      {kFilterForward, "{ type filter hook forward priority filter; }"},
      {kFilterOutput, "{ type filter hook output priority filter; }"},
      {kNatPrerouting, "{ type nat hook prerouting priority dstnat; }"},
      {kNatOutput, "{ type nat hook output priority -100; }"},
      {kNatPostrouting, "{ type nat hook postrouting priority srcnat; }"},
  };
  return kChains;
}

const std::vector<std::string_view>& fixedChains() {
  static const std::vector<std::string_view> kChains = {
      kServices,          kFirewallCheck,     kServiceEndpointsCheck, kNodePortEndpointsCheck,
      kClusterIpsCheck,   kMarkForMasquerade, kMasquerading,          kRejectChain,
  };
  return kChains;
}

std::vector<Container> containers() {
  std::vector<Container> out;
  for (IpFamily f : kFamilies) {
    std::string addr(addrType(f));
    std::string triple = strCat("{ type ", addr, " . inet_proto . inet_service : verdict; }");
    std::string pair = "{ type inet_proto . inet_service : verdict; }";
    out.push_back({serviceIpsMap(f), triple, true});
    out.push_back({serviceNodePortsMap(f), pair, true});
    out.push_back({noEndpointServicesMap(f), triple, true});
    out.push_back({noEndpointNodePortsMap(f), pair, true});
    out.push_back({firewallIpsMap(f), triple, true});
    out.push_back({clusterIpsSet(f), strCat("{ type ", addr, "; }"), false});
    out.push_back({nodePortAddressesSet(f), strCat("{ type ", addr, "; flags interval; }"), false});
  }
  return out;
}

std::vector<ChainContent> skeletonChains(const NodeInfo& node, const RenderOptions& options) {
  std::string jump = "ct state new jump ";
  std::vector<ChainContent> out = {
      {std::string(kFilterPreroutingPreDnat), {jump + std::string(kFirewallCheck)}},
      {std::string(kFilterOutputPreDnat), {jump + std::string(kFirewallCheck)}},
      {std::string(kFilterInput),
       {jump + std::string(kNodePortEndpointsCheck), jump + std::string(kServiceEndpointsCheck)}},
      {std::string(kFilterForward),
       {jump + std::string(kServiceEndpointsCheck), jump + std::string(kClusterIpsCheck)}},
      {std::string(kFilterOutput),
       {jump + std::string(kServiceEndpointsCheck), jump + std::string(kClusterIpsCheck)}},
      {std::string(kNatPrerouting), {strCat("jump ", kServices)}},
      {std::string(kNatOutput), {strCat("jump ", kServices)}},
      {std::string(kNatPostrouting), {strCat("jump ", kMasquerading)}},
  };
  std::string mark = markHex(options.masquerade_mark);
  out.push_back({std::string(kMarkForMasquerade), {strCat("meta mark set meta mark | ", mark)}});
  out.push_back({std::string(kMasquerading),
                 {strCat("meta mark & ", mark, " == 0 return"),
                  strCat("meta mark set meta mark ^ ", mark), "masquerade fully-random"}});
  // TCP clients get a reset, everything else ICMP(v6) port unreachable.
  out.push_back({std::string(kRejectChain), {"meta l4proto tcp reject with tcp reset", "reject"}});

  ChainContent services{std::string(kServices), {}};
  ChainContent firewall{std::string(kFirewallCheck), {}};
  ChainContent endpoints{std::string(kServiceEndpointsCheck), {}};
  ChainContent nodeports{std::string(kNodePortEndpointsCheck), {}};
  ChainContent cluster_ips{std::string(kClusterIpsCheck), {}};
  for (IpFamily f : kFamilies) {
    std::string triple = strCat(ipKeyword(f), " daddr . meta l4proto . th dport vmap @");
    services.rules.push_back(triple + serviceIpsMap(f));
    firewall.rules.push_back(triple + firewallIpsMap(f));
    endpoints.rules.push_back(triple + noEndpointServicesMap(f));
    std::string np = nodePortMatch(node, f);
    if (!np.empty()) {
      services.rules.push_back(strCat(np, " meta l4proto . th dport vmap @", serviceNodePortsMap(f)));
      nodeports.rules.push_back(strCat(np, " meta l4proto . th dport vmap @", noEndpointNodePortsMap(f)));
    }
    cluster_ips.rules.push_back(strCat(ipKeyword(f), " daddr @", clusterIpsSet(f), " reject"));
    std::vector<Cidr> service_cidrs = cidrsOf(node.service_cidrs, f);
    if (!service_cidrs.empty()) {
      cluster_ips.rules.push_back(strCat(ipKeyword(f), " daddr ", cidrSetExpr(service_cidrs), " drop"));
    }
  }
  out.push_back(std::move(services));
  out.push_back(std::move(firewall));
  out.push_back(std::move(endpoints));
  out.push_back(std::move(nodeports));
  out.push_back(std::move(cluster_ips));
  return out;
}

void skeletonElements(const NodeInfo& node, std::vector<Element>& out) {
  for (const Cidr& c : coveringCidrs(node.nodeport_addresses)) {
    out.push_back({nodePortAddressesSet(c.address.family), c.str(), ""});
  }
}

}  // namespace berth::proxy::nftrules
