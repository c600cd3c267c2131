// NftablesRenderer: turns a ProxyState into the nft script of one sync of table
// "inet berth-proxy", to be applied as ONE transaction (NftablesApplier::apply, which
// libnftables sends as one netlink batch: all or nothing). Layout: proxy/README.md.
//
// The renderer remembers what it has programmed (chains and their owners, affinity sets,
// every map/set element); it never reads the kernel ruleset back. After each render the
// caller reports the outcome: committed() (the script was applied) or failed() (it was
// not, or the outcome is unknown).
//
// Kinds of sync:
// - rebuild: the first render, and the first after failed(). The renderer does not know
//   what the kernel holds (a previous berthd's table, or someone changed ours), so the
//   script starts with "add table; delete table" and declares everything: the result is
//   exact whatever was there. (Affinity sets restart empty; conntrack keeps established
//   connections, so they are not affected.)
// - full (renderSync(..., full=true), or when the NodeInfo or options changed): base and
//   fixed chains flushed and rewritten, every map/set flushed and refilled, every Service
//   chain flushed and rewritten, chains and sets no longer wanted removed.
// - partial: only the chains of the Services in `changed` are flushed and rewritten (plus,
//   as a safety net, any Service whose set of chain names differs from what is programmed,
//   e.g. a changed Service missing from `changed`); map/set elements are diffed against
//   what is programmed (delete / delete+add / add), for all Services, because an element
//   costs nothing to compute.
//
// Ordering inside one script, so the kernel never sees a dangling or busy reference:
//   1 [rebuild] add table + delete table        2 table, skeleton (full)
//   3 add + flush of rewritten chains; flush of chains that became stale
//   4 delete of map elements and affinity sets   5 add of affinity sets
//   6 rules of rewritten chains                  7 add of map elements
//   8 delete of stale chains
// A stale chain (its Service port or endpoint went away) is referenced only by its own
// Service's chains and map elements, which are flushed/deleted earlier in the same script.
// With StaleChainPolicy::kDeleteInSameTransaction it is deleted in step 8; with
// kDeleteLater (the default) it is only flushed and deleted by a later sync at least
// `stale_chain_delay` after, because kernels before 6.2 release the reference held by a
// deleted verdict-map element asynchronously, so deleting the chain in the same (or an
// immediately following) transaction can fail with EBUSY (kube-proxy waits likewise).
//
// Thread-safety: not synchronised; one proxier thread uses it.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <string>

#include "proxy/change_tracker.h"
#include "proxy/nftables_rules.h"
#include "proxy/service_map.h"

namespace berth::proxy {

enum class StaleChainPolicy { kDeleteLater, kDeleteInSameTransaction };

struct NftablesRendererOptions {
  nftrules::RenderOptions rules;
  StaleChainPolicy stale_chains = StaleChainPolicy::kDeleteLater;
  std::chrono::milliseconds stale_chain_delay{1000};
  // The clock for stale chain ages; tests pass a fake. Default: steady_clock::now.
  std::function<std::chrono::steady_clock::time_point()> clock;
};

// What the last render did (for logs, metrics and tests).
struct RenderStats {
  enum class Kind { kRebuild, kFull, kPartial } kind = Kind::kRebuild;
  size_t services_rendered = 0;     // Services whose chains were rewritten
  size_t chains_written = 0;
  size_t chains_flushed_stale = 0;
  size_t chains_deleted = 0;
  size_t elements_added = 0;
  size_t elements_deleted = 0;
};

class NftablesRenderer {
 public:
  explicit NftablesRenderer(NftablesRendererOptions options = {});

  // The script for one sync (newline-separated nft commands) bringing the table from
  // what was last committed to `state`. `changed`: Services whose objects or slices
  // changed since the last committed sync (ChangeTracker::takeChanged(); accumulate them
  // across failed syncs, or pass full = true). Renders a rebuild or full sync when needed
  // regardless of `full` (see above). A second render without committed()/failed() in
  // between replaces the first (it is assumed not applied).
  std::string renderSync(const ProxyState& state, const ChangedSet& changed, bool full);

  // The last rendered script was applied.
  void committed();
  // The last rendered script was not applied (or its outcome is unknown): the next
  // render is a rebuild.
  void failed();

  // Removes the whole table ("add table" + "delete table": no error if absent), e.g. when
  // switching to the iptables mode. Forgets what was programmed (next render: rebuild).
  std::string renderCleanup();

  // True when the next render will be a rebuild.
  bool needsRebuild() const { return !committed_.valid; }
  // Stale chains flushed but not deleted yet (a later sync deletes them; the proxier may
  // schedule one after stale_chain_delay).
  size_t pendingStaleChains() const { return committed_.stale.size(); }
  const RenderStats& lastStats() const { return stats_; }
  // What the last committed sync left programmed: Service chains (stale ones excluded)
  // and map/set elements (for metrics).
  size_t programmedChains() const { return committed_.chains.size(); }
  size_t programmedElements() const;
  const std::string& table() const { return options_.rules.table; }

 private:
  struct Programmed {
    bool valid = false;
    std::string skeleton_key;  // NodeInfo + options the skeleton was rendered for
    std::map<std::string, NamespacedName> chains;              // service chains -> owner
    std::map<std::string, std::pair<NamespacedName, int>> sets;  // affinity -> owner, timeout
    std::map<std::string, std::map<std::string, std::string>> elements;  // container -> key -> value
    std::map<std::string, std::chrono::steady_clock::time_point> stale;  // flushed, to delete
  };
  struct Script;

  std::chrono::steady_clock::time_point now() const;
  std::string skeletonKey(const NodeInfo& node) const;
  void renderSkeleton(const NodeInfo& node, bool rebuild, Script& s) const;
  std::set<NamespacedName> servicesToRender(const ProxyState& state, const ChangedSet& changed,
                                            bool full) const;
  void renderServices(const ProxyState& state, const std::set<NamespacedName>& render,
                      Script& s, Programmed& next);
  void renderStale(Script& s, Programmed& next);
  void renderElements(const ProxyState& state, bool full, Script& s, Programmed& next);

  NftablesRendererOptions options_;
  Programmed committed_;
  Programmed pending_;
  bool has_pending_ = false;
  RenderStats stats_;
};

}  // namespace berth::proxy
