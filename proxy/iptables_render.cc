#include "proxy/iptables_render.h"

#include <set>

#include "common/strings.h"

namespace berth::proxy {
namespace {

constexpr const char* kServices = "BERTH-SERVICES";
constexpr const char* kNodePorts = "BERTH-NODEPORTS";
constexpr const char* kPostrouting = "BERTH-POSTROUTING";
constexpr const char* kMarkMasq = "BERTH-MARK-MASQ";
constexpr const char* kMarkDrop = "BERTH-MARK-DROP";
constexpr const char* kExternal = "BERTH-EXTERNAL-SERVICES";
constexpr const char* kFirewall = "BERTH-FIREWALL";
constexpr const char* kForward = "BERTH-FORWARD";
constexpr const char* kMasqMark = "0x4000";
constexpr const char* kDropMark = "0x8000";

std::string host(const IpAddress& ip) {
  return ip.str() + (ip.family == IpFamily::kIPv4 ? "/32" : "/128");
}

// "-p tcp -m tcp --dport 80"
std::string portMatch(Protocol p, int port) {
  std::string proto(protocolLower(p));
  return strCat("-p ", proto, " -m ", proto, " --dport ", port);
}

std::string comment(const std::string& text) { return strCat("-m comment --comment \"", text, "\""); }

struct Builder {
  IpFamily family;
  std::map<std::string, std::vector<std::string>>& nat;
  std::map<std::string, std::vector<std::string>>& filter;
  const NodeInfo& node;

  std::string clusterCidr() const {
    for (const Cidr& c : node.cluster_cidrs) {
      if (c.address.family == family) return c.str();
    }
    return "";
  }

  // The endpoint-choosing rules of an SVC/SVL chain.
  void endpointRules(const std::string& chain, const ServicePortState& sp,
                     const std::vector<Endpoint>& eps) {
    auto& rules = nat[chain];
    std::vector<std::string> seps;
    for (const Endpoint& ep : eps) seps.push_back(iptablesChainName("SEP", sp.name, ep.str()));
    if (sp.affinity == SessionAffinity::kClientIP) {
      for (size_t i = 0; i < eps.size(); ++i) {
        rules.push_back(strCat(comment(strCat(sp.name.str(), " -> ", eps[i].str())),
                               " -m recent --name ", seps[i], " --rcheck --seconds ",
                               sp.affinity_timeout_seconds, " --reap -j ", seps[i]));
      }
    }
    for (size_t i = 0; i < eps.size(); ++i) {
      size_t left = eps.size() - i;
      std::string pick = left > 1 ? strCat(" -m statistic --mode random --probability ",
                                           formatProbability(1.0 / static_cast<double>(left)))
                                  : "";
      rules.push_back(strCat(comment(strCat(sp.name.str(), " -> ", eps[i].str())), pick, " -j ", seps[i]));
    }
  }

  static std::string formatProbability(double p) {
    char buf[32];
    snprintf(buf, sizeof(buf), "%0.10f", p);
    return buf;
  }

  void endpointChains(const ServicePortState& sp) {
    for (const Endpoint& ep : sp.reachable_endpoints) {
      std::string sep = iptablesChainName("SEP", sp.name, ep.str());
      auto& rules = nat[sep];
      rules.push_back(strCat(comment(sp.name.str()), " -s ", host(ep.ip), " -j ", kMarkMasq));
      std::string proto(protocolLower(sp.protocol()));
      std::string recent = sp.affinity == SessionAffinity::kClientIP
                               ? strCat(" -m recent --name ", sep, " --set")
                               : "";
      rules.push_back(strCat(comment(sp.name.str()), " -p ", proto, " -m ", proto, recent,
                             " -j DNAT --to-destination ", ep.str()));
    }
  }

  void servicePort(const ServicePortState& sp) {
    const std::string name = sp.name.str();
    const std::string svc = iptablesChainName("SVC", sp.name);
    const std::string svl = iptablesChainName("SVL", sp.name);
    const std::string ext = iptablesChainName("EXT", sp.name);
    const std::string fw = iptablesChainName("FW", sp.name);
    const std::string match = portMatch(sp.protocol(), sp.port);
    const std::string cidr = clusterCidr();

    if (sp.usesClusterEndpoints() && !sp.cluster_endpoints.empty()) {
      auto& rules = nat[svc];
      if (!cidr.empty()) {
        rules.push_back(strCat(comment(name + " cluster IP"), " ! -s ", cidr, " -d ",
                               host(sp.cluster_ip), " ", match, " -j ", kMarkMasq));
      }
      endpointRules(svc, sp, sp.cluster_endpoints);
    }
    if (sp.usesLocalEndpoints() && !sp.local_endpoints.empty()) {
      endpointRules(svl, sp, sp.local_endpoints);
    }
    endpointChains(sp);

    // Cluster IP.
    if (sp.hasInternalEndpoints()) {
      nat[kServices].push_back(strCat(comment(name + " cluster IP"), " -d ", host(sp.cluster_ip), " ",
                                      match, " -j ", sp.internal_policy_local ? svl : svc));
    } else {
      filter[kServices].push_back(strCat(
          comment(strCat(name, sp.has_any_endpoints ? " has no local endpoints" : " has no endpoints")),
          " -d ", host(sp.cluster_ip), " ", match, " -j ", sp.has_any_endpoints ? "DROP" : "REJECT"));
    }

    // External destinations.
    if (!sp.externallyAccessible()) return;
    if (sp.hasExternalEndpoints()) {
      auto& rules = nat[ext];
      if (sp.external_policy_local) {
        if (!cidr.empty()) {
          rules.push_back(strCat(comment("pod traffic for " + name + " external destinations"),
                                 " -s ", cidr, " -j ", svc));
        }
        rules.push_back(strCat(comment("masquerade LOCAL traffic for " + name + " external destinations"),
                               " -m addrtype --src-type LOCAL -j ", kMarkMasq));
        rules.push_back(strCat(comment("route LOCAL traffic for " + name + " external destinations"),
                               " -m addrtype --src-type LOCAL -j ", svc));
        rules.push_back(strCat(comment(name + " external traffic to local endpoints"), " -j ", svl));
      } else {
        rules.push_back(strCat(comment("masquerade traffic for " + name + " external destinations"),
                               " -j ", kMarkMasq));
        rules.push_back(strCat("-j ", svc));
      }
    }
    auto externalTarget = [&](std::vector<std::string>& chain_rules, const std::string& what,
                              const std::string& dst, bool firewall) {
      if (sp.hasExternalEndpoints()) {
        nat[kServices].push_back(strCat(comment(name + " " + what), dst, " ", match, " -j ",
                                        firewall ? fw : ext));
      } else {
        chain_rules.push_back(strCat(
            comment(strCat(name, sp.has_any_endpoints ? " has no local endpoints" : " has no endpoints")),
            dst, " ", match, " -j ", sp.has_any_endpoints ? "DROP" : "REJECT"));
      }
    };
    for (const IpAddress& ip : sp.external_ips) {
      externalTarget(filter[kExternal], "external IP", " -d " + host(ip), false);
    }
    bool firewall = !sp.source_ranges.empty();
    for (const IpAddress& ip : sp.load_balancer_ips) {
      externalTarget(filter[kExternal], "loadbalancer IP", " -d " + host(ip), firewall);
    }
    if (firewall && sp.hasExternalEndpoints() && !sp.load_balancer_ips.empty()) {
      auto& rules = nat[fw];
      for (const Cidr& range : sp.source_ranges) {
        rules.push_back(strCat(comment(name + " loadbalancer IP"), " -s ", range.str(), " -j ", ext));
      }
      rules.push_back(strCat(comment(name + " loadbalancer IP"), " -j ", kMarkDrop));
    }
    if (sp.node_port != 0) {
      std::string np_match = portMatch(sp.protocol(), sp.node_port);
      if (sp.hasExternalEndpoints()) {
        nat[kNodePorts].push_back(strCat(comment(name), " ", np_match, " -j ", ext));
      } else {
        filter[kExternal].push_back(strCat(
            comment(strCat(name, sp.has_any_endpoints ? " has no local endpoints" : " has no endpoints")),
            " -m addrtype --dst-type LOCAL ", np_match, " -j ", sp.has_any_endpoints ? "DROP" : "REJECT"));
      }
    }
  }

  void fixedChains() {
    nat[kMarkMasq] = {strCat("-j MARK --or-mark ", kMasqMark)};
    nat[kMarkDrop] = {strCat("-j MARK --or-mark ", kDropMark)};
    nat[kPostrouting] = {strCat("-m mark ! --mark ", kMasqMark, "/", kMasqMark, " -j RETURN"),
                         strCat("-j MARK --xor-mark ", kMasqMark),
                         strCat(comment("berth service traffic requiring SNAT"),
                                " -j MASQUERADE --random-fully")};
    filter[kFirewall] = {strCat(comment("berth dropped by loadBalancerSourceRanges"), " -m mark --mark ",
                                kDropMark, "/", kDropMark, " -j DROP")};
    filter[kForward] = {
        strCat(comment("berth forwarding rules"), " -m mark --mark ", kMasqMark, "/", kMasqMark,
               " -j ACCEPT"),
        strCat(comment("berth forwarding conntrack rule"),
               " -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")};
    nat[kServices];
    nat[kNodePorts];
    filter[kServices];
    filter[kExternal];
  }

  // The last rule of nat BERTH-SERVICES: local destinations to the NodePorts.
  void nodePortJump() {
    std::vector<const Cidr*> cidrs;
    for (const Cidr& c : node.nodeport_addresses) {
      if (c.address.family == family) cidrs.push_back(&c);
    }
    if (node.nodeport_addresses.empty()) {
      std::string loopback = family == IpFamily::kIPv4 ? "127.0.0.0/8" : "::1/128";
      nat[kServices].push_back(strCat(comment("berth service nodeports"), " ! -d ", loopback,
                                      " -m addrtype --dst-type LOCAL -j ", kNodePorts));
      return;
    }
    for (const Cidr* c : cidrs) {
      nat[kServices].push_back(strCat(comment("berth service nodeports"), " -d ", c->str(),
                                      " -m addrtype --dst-type LOCAL -j ", kNodePorts));
    }
  }
};

void renderTable(const std::string& table, const std::map<std::string, std::vector<std::string>>& want,
                 const std::map<std::string, std::vector<std::string>>& have, bool full,
                 const std::vector<IptablesRenderer::Jump>& jumps, IptablesRenderer::Output& out) {
  std::string decl, rules, deletes;
  for (const auto& [chain, list] : want) {
    out.rules += static_cast<int>(list.size());
    auto it = have.find(chain);
    // Every chain, BERTH-SERVICES (one rule per Service port) included, only when its
    // rules differ: a one-endpoint change then restores a few short chains instead of
    // one rule per Service (--noflush leaves chains not named in the input alone).
    bool write = full || it == have.end() || it->second != list;
    if (!write) continue;
    ++out.chains_written;
    decl += strCat(":", chain, " - [0:0]\n");
    for (const std::string& r : list) rules += strCat("-A ", chain, " ", r, "\n");
  }
  for (const auto& [chain, list] : have) {
    if (want.count(chain) != 0) continue;
    ++out.chains_deleted;
    decl += strCat(":", chain, " - [0:0]\n");
    deletes += strCat("-X ", chain, "\n");
  }
  std::string inserts;
  for (const auto& j : jumps) {
    if (j.table != table) continue;
    // "-A CHAIN rest" -> "-I CHAIN 1 rest": our jumps go first.
    size_t sp = j.rule.find(' ', 3);
    inserts += strCat("-I ", j.rule.substr(3, sp - 3), " 1", j.rule.substr(sp), "\n");
  }
  if (decl.empty() && inserts.empty()) return;
  out.restore_input += strCat("*", table, "\n", decl, rules, deletes, inserts, "COMMIT\n");
}

}  // namespace

std::string iptablesChainName(const std::string& kind, const ServicePortName& port,
                              const std::string& endpoint) {
  std::string key = strCat(port.str(), "/", protocolName(port.protocol));
  if (!endpoint.empty()) key += "/" + endpoint;
  return strCat("BERTH-", kind, "-", fnv1a64Hex(key));
}

std::vector<IptablesRenderer::Jump> IptablesRenderer::baseJumps() {
  return {
      {"nat", "-A PREROUTING -j BERTH-SERVICES"},
      {"nat", "-A OUTPUT -j BERTH-SERVICES"},
      {"nat", "-A POSTROUTING -j BERTH-POSTROUTING"},
      {"filter", "-A INPUT -m conntrack --ctstate NEW -j BERTH-EXTERNAL-SERVICES"},
      {"filter", "-A INPUT -j BERTH-FIREWALL"},
      {"filter", "-A FORWARD -m conntrack --ctstate NEW -j BERTH-SERVICES"},
      {"filter", "-A FORWARD -m conntrack --ctstate NEW -j BERTH-EXTERNAL-SERVICES"},
      {"filter", "-A FORWARD -j BERTH-FORWARD"},
      {"filter", "-A OUTPUT -m conntrack --ctstate NEW -j BERTH-SERVICES"},
      {"filter", "-A OUTPUT -j BERTH-FIREWALL"},
  };
}

IptablesRenderer::Tables IptablesRenderer::build(const ProxyState& state) const {
  Tables t;
  Builder b{family_, t.nat, t.filter, state.node};
  b.fixedChains();
  for (const ServicePortState& sp : state.ports) {
    if (sp.family == family_) b.servicePort(sp);
  }
  b.nodePortJump();
  return t;
}

IptablesRenderer::Output IptablesRenderer::render(const ProxyState& state, bool full,
                                                  const std::vector<Jump>& missing_jumps) {
  pending_ = build(state);
  bool all = full || force_full_ || !has_committed_;
  Output out;
  renderTable("nat", pending_.nat, committed_.nat, all, missing_jumps, out);
  renderTable("filter", pending_.filter, committed_.filter, all, missing_jumps, out);
  return out;
}

void IptablesRenderer::committed() {
  committed_ = std::move(pending_);
  pending_ = {};
  has_committed_ = true;
  force_full_ = false;
}

void IptablesRenderer::failed() {
  // Part of the restore may have been applied (each table commits on its own): chains
  // it created count as existing, so a later sync that no longer wants them deletes
  // them. The next sync is full, which rewrites every wanted chain anyway.
  for (auto [want, have] : {std::pair{&pending_.nat, &committed_.nat},
                            std::pair{&pending_.filter, &committed_.filter}}) {
    for (const auto& [chain, rules] : *want) {
      if (have->count(chain) == 0) (*have)[chain] = {"(unknown: a failed sync may have made it)"};
    }
  }
  force_full_ = true;
  pending_ = {};
}

}  // namespace berth::proxy
