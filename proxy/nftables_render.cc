#include "proxy/nftables_render.h"

#include <utility>

#include "common/strings.h"
#include "proxy/nftables_names.h"

namespace berth::proxy {
namespace {

using nftrules::Element;

std::string elementBody(const std::string& key, const std::string& value) {
  if (value.empty()) return strCat("{ ", key, " }");
  return strCat("{ ", key, " : ", value, " }");
}

}  // namespace

// The script's commands by step (see the header); joined in this order.
struct NftablesRenderer::Script {
  std::vector<std::string> prefix;    // 1
  std::vector<std::string> skeleton;  // 2
  std::vector<std::string> chains;    // 3
  std::vector<std::string> deletes;   // 4
  std::vector<std::string> sets;      // 5
  std::vector<std::string> rules;     // 6
  std::vector<std::string> adds;      // 7
  std::vector<std::string> final;     // 8

  std::string join() const {
    std::string out;
    for (const auto* part : {&prefix, &skeleton, &chains, &deletes, &sets, &rules, &adds, &final}) {
      for (const std::string& line : *part) {
        out += line;
        out += '\n';
      }
    }
    return out;
  }
};

NftablesRenderer::NftablesRenderer(NftablesRendererOptions options)
    : options_(std::move(options)) {}

std::chrono::steady_clock::time_point NftablesRenderer::now() const {
  return options_.clock ? options_.clock() : std::chrono::steady_clock::now();
}

std::string NftablesRenderer::skeletonKey(const NodeInfo& node) const {
  std::string key = strCat(options_.rules.table, "|", options_.rules.masquerade_mark, "|",
                           options_.rules.masquerade_all, "|", node.node_name, "|");
  for (const auto& ip : node.node_ips) key += ip.str() + ",";
  key += "|";
  for (const auto* list : {&node.cluster_cidrs, &node.nodeport_addresses, &node.service_cidrs}) {
    for (const Cidr& c : *list) key += c.str() + ",";
    key += "|";
  }
  return key;
}

void NftablesRenderer::renderSkeleton(const NodeInfo& node, bool rebuild, Script& s) const {
  const std::string& t = options_.rules.table;
  s.skeleton.push_back(strCat("add table inet ", t));
  for (const auto& base : nftrules::baseChains()) {
    s.skeleton.push_back(strCat("add chain inet ", t, " ", base.name, " ", base.spec));
  }
  for (std::string_view name : nftrules::fixedChains()) {
    s.skeleton.push_back(strCat("add chain inet ", t, " ", name));
  }
  auto containers = nftrules::containers();
  for (const auto& c : containers) {
    s.skeleton.push_back(strCat("add ", c.is_map ? "map" : "set", " inet ", t, " ", c.name, " ", c.spec));
  }
  if (!rebuild) {
    // The table existed: empty what this sync refills.
    for (const auto& base : nftrules::baseChains()) {
      s.skeleton.push_back(strCat("flush chain inet ", t, " ", base.name));
    }
    for (std::string_view name : nftrules::fixedChains()) {
      s.skeleton.push_back(strCat("flush chain inet ", t, " ", name));
    }
    for (const auto& c : containers) {
      s.skeleton.push_back(strCat("flush ", c.is_map ? "map" : "set", " inet ", t, " ", c.name));
    }
  }
  for (const auto& chain : nftrules::skeletonChains(node, options_.rules)) {
    for (const std::string& rule : chain.rules) {
      s.skeleton.push_back(strCat("add rule inet ", t, " ", chain.name, " ", rule));
    }
  }
}

std::set<NamespacedName> NftablesRenderer::servicesToRender(const ProxyState& state,
                                                            const ChangedSet& changed,
                                                            bool full) const {
  std::set<NamespacedName> out;
  if (full) {
    for (const auto& p : state.ports) out.insert(p.name.service);
    return out;
  }
  // What is programmed, per owner.
  std::map<NamespacedName, std::set<std::string>> programmed;
  for (const auto& [name, owner] : committed_.chains) programmed[owner].insert(name);
  for (const auto& [name, rec] : committed_.sets) programmed[rec.first].insert(name);

  size_t i = 0;
  while (i < state.ports.size()) {
    const NamespacedName& svc = state.ports[i].name.service;
    size_t end = i;
    while (end < state.ports.size() && state.ports[end].name.service == svc) ++end;
    if (changed.count(svc)) {
      out.insert(svc);
    } else {
      // Safety net: a Service whose chains or sets would differ in name from what is
      // programmed changed without being reported; render it anyway.
      std::set<std::string> wanted;
      for (size_t k = i; k < end; ++k) {
        auto names = nftrules::servicePortNames(state.ports[k]);
        wanted.insert(names.chains.begin(), names.chains.end());
        wanted.insert(names.sets.begin(), names.sets.end());
      }
      auto it = programmed.find(svc);
      static const std::set<std::string> kNone;
      if (wanted != (it == programmed.end() ? kNone : it->second)) out.insert(svc);
    }
    i = end;
  }
  return out;
}

void NftablesRenderer::renderServices(const ProxyState& state,
                                      const std::set<NamespacedName>& render, Script& s,
                                      Programmed& next) {
  const std::string& t = options_.rules.table;
  std::set<NamespacedName> present;
  for (const auto& port : state.ports) {
    present.insert(port.name.service);
    const NamespacedName& owner = port.name.service;
    if (!render.count(owner)) continue;
    auto rules = nftrules::servicePortRules(port, state.node, options_.rules);
    for (const auto& chain : rules.chains) {
      next.chains[chain.name] = owner;
      s.chains.push_back(strCat("add chain inet ", t, " ", chain.name));
      bool exists = committed_.chains.count(chain.name) || committed_.stale.count(chain.name);
      if (exists) s.chains.push_back(strCat("flush chain inet ", t, " ", chain.name));
      for (const std::string& rule : chain.rules) {
        s.rules.push_back(strCat("add rule inet ", t, " ", chain.name, " ", rule));
      }
      ++stats_.chains_written;
    }
    for (const auto& set : rules.sets) {
      next.sets[set.name] = {owner, set.timeout_seconds};
      auto known = committed_.sets.find(set.name);
      if (known != committed_.sets.end() && known->second.second == set.timeout_seconds) continue;
      // A new set, or one whose timeout changed (a set's flags and timeout cannot be
      // changed in place): the chains using it are all rewritten above, so it is unused.
      if (known != committed_.sets.end()) s.deletes.push_back(strCat("delete set inet ", t, " ", set.name));
      s.sets.push_back(strCat("add set inet ", t, " ", set.name, " { type ",
                              nftnames::addrType(set.family), "; flags dynamic,timeout; timeout ",
                              set.timeout_seconds, "s; }"));
    }
  }
  stats_.services_rendered = render.size();
  // Services not rendered keep what they have.
  for (const auto& [name, owner] : committed_.chains) {
    if (present.count(owner) && !render.count(owner)) next.chains[name] = owner;
  }
  for (const auto& [name, rec] : committed_.sets) {
    if (present.count(rec.first) && !render.count(rec.first)) next.sets[name] = rec;
  }
}

void NftablesRenderer::renderStale(Script& s, Programmed& next) {
  const std::string& t = options_.rules.table;
  auto when = now();
  bool same_tx = options_.stale_chains == StaleChainPolicy::kDeleteInSameTransaction;
  for (const auto& [name, owner] : committed_.chains) {
    if (next.chains.count(name)) continue;
    // Its references (its Service's chains and map elements) go earlier in this script.
    s.chains.push_back(strCat("flush chain inet ", t, " ", name));
    ++stats_.chains_flushed_stale;
    if (same_tx) {
      s.final.push_back(strCat("delete chain inet ", t, " ", name));
      ++stats_.chains_deleted;
    } else {
      next.stale[name] = when;
    }
  }
  for (const auto& [name, since] : committed_.stale) {
    if (next.chains.count(name)) continue;  // wanted again: rewritten above
    if (same_tx || when - since >= options_.stale_chain_delay) {
      s.final.push_back(strCat("delete chain inet ", t, " ", name));
      ++stats_.chains_deleted;
    } else {
      next.stale[name] = since;
    }
  }
  for (const auto& [name, rec] : committed_.sets) {
    if (!next.sets.count(name)) s.deletes.push_back(strCat("delete set inet ", t, " ", name));
  }
}

void NftablesRenderer::renderElements(const ProxyState& state, bool full, Script& s,
                                      Programmed& next) {
  const std::string& t = options_.rules.table;
  std::vector<Element> all;
  nftrules::skeletonElements(state.node, all);
  for (const auto& port : state.ports) nftrules::servicePortElements(port, all);
  auto& desired = next.elements;
  // The first claim of a key wins (two Services with the same external IP and port:
  // the one sorting first, as the map cannot hold both).
  for (Element& e : all) desired[e.container].try_emplace(e.key, std::move(e.value));

  auto add = [&](const std::string& c, const std::string& k, const std::string& v) {
    s.adds.push_back(strCat("add element inet ", t, " ", c, " ", elementBody(k, v)));
    ++stats_.elements_added;
  };
  auto del = [&](const std::string& c, const std::string& k) {
    s.deletes.push_back(strCat("delete element inet ", t, " ", c, " ", elementBody(k, "")));
    ++stats_.elements_deleted;
  };
  if (full) {
    for (const auto& [c, elems] : desired) {
      for (const auto& [k, v] : elems) add(c, k, v);
    }
    return;
  }
  static const std::map<std::string, std::string> kEmpty;
  for (const auto& [c, old_elems] : committed_.elements) {
    auto it = desired.find(c);
    const auto& now_elems = it == desired.end() ? kEmpty : it->second;
    for (const auto& [k, v] : old_elems) {
      auto cur = now_elems.find(k);
      if (cur == now_elems.end()) {
        del(c, k);
      } else if (cur->second != v) {
        del(c, k);
        add(c, k, cur->second);
      }
    }
  }
  for (const auto& [c, elems] : desired) {
    auto it = committed_.elements.find(c);
    for (const auto& [k, v] : elems) {
      if (it == committed_.elements.end() || !it->second.count(k)) add(c, k, v);
    }
  }
}

std::string NftablesRenderer::renderSync(const ProxyState& state, const ChangedSet& changed,
                                         bool full) {
  stats_ = RenderStats{};
  Programmed next;
  next.valid = true;
  next.skeleton_key = skeletonKey(state.node);
  bool rebuild = !committed_.valid;
  bool full_sync = full || rebuild || next.skeleton_key != committed_.skeleton_key;
  stats_.kind = rebuild ? RenderStats::Kind::kRebuild
                        : (full_sync ? RenderStats::Kind::kFull : RenderStats::Kind::kPartial);

  Script s;
  const std::string& t = options_.rules.table;
  if (rebuild) {
    // "add" first so that the delete cannot fail on a missing table.
    s.prefix.push_back(strCat("add table inet ", t));
    s.prefix.push_back(strCat("delete table inet ", t));
  }
  if (full_sync) renderSkeleton(state.node, rebuild, s);
  std::set<NamespacedName> render = servicesToRender(state, changed, full_sync);
  renderServices(state, render, s, next);
  renderStale(s, next);
  renderElements(state, full_sync, s, next);

  pending_ = std::move(next);
  has_pending_ = true;
  return s.join();
}

void NftablesRenderer::committed() {
  if (!has_pending_) return;
  committed_ = std::move(pending_);
  pending_ = Programmed{};
  has_pending_ = false;
}

void NftablesRenderer::failed() {
  committed_ = Programmed{};
  pending_ = Programmed{};
  has_pending_ = false;
}

size_t NftablesRenderer::programmedElements() const {
  size_t n = 0;
  for (const auto& [container, elems] : committed_.elements) n += elems.size();
  return n;
}

std::string NftablesRenderer::renderCleanup() {
  failed();
  const std::string& t = options_.rules.table;
  return strCat("add table inet ", t, "\ndelete table inet ", t, "\n");
}

}  // namespace berth::proxy
