// NftablesApplier: the kernel-facing half of the nftables proxier. The renderers
// (proxy/, another layer) produce nft scripts; this class applies them as atomic
// transactions, and removes or inspects our tables. It knows nothing of Services.
//
// Transactions: apply() hands the whole script to libnftables as one input, which
// libnftables sends as one netlink batch (NFNL_MSG_BATCH_BEGIN ... END); the kernel
// commits all of it or, on any error, aborts all of it. So a sync that fails half-way
// leaves the previous ruleset in place and the caller marks a full resync, like
// kube-proxy's nftables proxier. Verified by tests/integration/proxy/nft_apply_test.cc
// (a failing command in the middle of a script leaves the table exactly as it was,
// including chains added by earlier lines of the same script).
//
// Network namespace: an applier acts on the netns its creating thread was in when
// create() ran, whichever thread calls it later (see common/nftables.h).
//
// Cost (libnftables 1.0.6, measured in a netns on this VM): apply() of a 50-line sync
// ~0.7 ms once the context's cache is warm (the first command of a context ~2-10 ms);
// 10,000 map elements in one transaction ~200 ms. Every listing, even "list tables",
// makes libnftables fetch the whole ruleset including set elements (~30 ms with 10,000
// elements), so tableExists()/listTable()/deleteTable() belong at startup and cleanup,
// not in every sync.
//
// Thread-safety: all methods are thread-safe (one mutex around the libnftables context);
// calls are serialized.
#pragma once

#include <sys/types.h>

#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "common/nftables.h"
#include "common/status.h"

namespace berth::proxy {

class NftablesApplier {
 public:
  // Opens a libnftables context in the calling thread's network namespace. Keep the
  // applier for the proxier's life: each context committed to pays ~10 ms when closed.
  // Errors: Unavailable when libnftables cannot make a context.
  static StatusOr<std::unique_ptr<NftablesApplier>> create();

  // Applies `script` (nft text syntax; any mix of add/flush/delete commands and table
  // blocks) as one transaction. `what` names it in errors ("sync of table ip
  // berth-proxy"). Errors: `<what>: nftables: line N: <message>: "<text of line N>"`
  // (see nft::Context::run() for the codes); the ruleset is then unchanged.
  Status apply(std::string_view script, std::string_view what = "nftables ruleset");

  // Validates `script` against the current ruleset without changing it (nft -c).
  // Errors: as apply(), prefixed "check ".
  Status check(std::string_view script, std::string_view what = "nftables ruleset");

  // Deletes table `family` `name` (family: ip, ip6, inet, arp, bridge, netdev; name:
  // letters, digits, '_', '-', '.'), with everything in it, in one transaction. A table
  // that does not exist is not an error. Errors: InvalidArgument for a bad family or
  // name; the kernel's error otherwise.
  Status deleteTable(std::string_view family, std::string_view name);

  // True if table `family` `name` exists (reads only the list of tables, not their
  // contents). Errors: InvalidArgument for a bad family or name; nftables' error.
  StatusOr<bool> tableExists(std::string_view family, std::string_view name);

  // The text listing of table `family` `name` ("" when it does not exist), e.g. for
  // diagnostics or to compare against what was applied. Errors: as tableExists().
  StatusOr<std::string> listTable(std::string_view family, std::string_view name);

  // The inode of the network namespace this applier acts on.
  ino_t netnsInode() const { return ctx_.netnsInode(); }

 private:
  explicit NftablesApplier(nft::Context ctx) : ctx_(std::move(ctx)) {}

  std::mutex mu_;
  nft::Context ctx_;  // guarded by mu_
};

// Checks an nftables family and table name as deleteTable() accepts them. Errors:
// InvalidArgument naming the bad part.
Status checkTableName(std::string_view family, std::string_view name);

}  // namespace berth::proxy
