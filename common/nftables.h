// A small RAII wrapper over libnftables (the library behind nft(8)): one context, its
// output and errors captured in memory, scripts applied as one transaction and errors
// reported with the script line that failed.
//
// Network namespace: a context acts on the network namespace its creating thread was in
// when create() ran, for its whole life. nft_ctx_new(NFT_CTX_DEFAULT) opens the
// NETLINK_NETFILTER socket right away (nftables src/libnftables.c: nft_ctx_new() calls
// nft_mnl_socket_open(); the socket is never reopened since nftables 0.9.9 removed
// nft_mnl_socket_reopen()), and a netlink socket belongs to the netns of the task that
// created it. Verified here with libnftables 1.0.6 (tests/integration/proxy/
// nftables_context_test.cc): a context made in netns A keeps changing A after its
// thread setns()/unshare()s into B. To act on another netns, create the context on a
// thread that is in that netns.
//
// Cost: keep one context alive for as long as it is useful (one per proxier, not one
// per sync). Closing the socket of a context that committed a batch waits for an RCU
// grace period (~10 ms, see cni/nat/nftables_firewall.cc); creating one parses nothing
// but allocates the cache and opens the socket.
//
// Thread-safety: a Context is not thread-safe (libnftables keeps per-context caches and
// output buffers); use it from one thread at a time. Different contexts may be used from
// different threads: every libnftables call of the process goes through one mutex
// (nft_ctx_new()'s one-time library initialisation is unsynchronised, and libxtables,
// which libnftables uses, keeps process-wide state), so calls on different contexts
// run one after the other.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

struct nft_ctx;

namespace berth::nft {

struct Options {
  // list() returns libnftables' JSON (`nft -j`, NFT_CTX_OUTPUT_JSON) instead of the
  // text syntax. Scripts given to run()/check() are always nft's text syntax.
  bool json_output = false;
  // Listings carry "# handle N" after every rule (NFT_CTX_OUTPUT_HANDLE), or a "handle"
  // key in JSON.
  bool handles = false;
};

class Context {
 public:
  // Makes a context bound to the calling thread's network namespace (see above), with
  // output and errors buffered in memory. Errors: Unavailable when libnftables cannot
  // make a context (no memory, netlink socket refused).
  static StatusOr<Context> create(const Options& options = {});

  Context(Context&&) noexcept;
  Context& operator=(Context&&) noexcept;
  ~Context();

  // Applies `script` (nft syntax, any number of commands and lines, e.g. "add table ip
  // t\nadd chain ip t c\n", or a whole "table ip t { ... }" block) as one netlink batch:
  // the kernel commits every command or none. `what` names what is applied, for errors.
  // Errors: `<what>: nftables: line N: <nft's message>: "<text of line N>"` for each
  // error nft reports (parse, evaluation or kernel), with the code taken from the kernel
  // error text: NotFound ("No such file or directory"), AlreadyExists ("File exists"),
  // PermissionDenied ("Operation not permitted"), Unavailable (nf_tables missing:
  // "Protocol not supported"), else InvalidArgument.
  // The script is handed to libnftables as a file (a memfd) so that nft's error
  // locations carry the right line: libnftables 1.0.6 prints the first line of a buffer
  // instead of the failing one.
  Status run(std::string_view script, std::string_view what);

  // Validates `script` without applying it (nft -c: NFT_CTX_DRY_RUN via
  // nft_ctx_set_dry_run): parsed, evaluated against the current ruleset, sent to the
  // kernel as a batch that is aborted instead of committed, so references to missing
  // chains or sets are reported just like run() would. Errors: as run().
  Status check(std::string_view script, std::string_view what);

  // Runs one read command (e.g. "list table ip berth", "list tables", "list ruleset")
  // and returns its output: nft's text syntax, or JSON with Options::json_output.
  // Errors: NotFound when the listed object does not exist; else as run().
  StatusOr<std::string> list(std::string_view command);

  // The inode of the network namespace this context acts on (the one of
  // /proc/thread-self/ns/net when create() ran); 0 if it could not be read.
  ino_t netnsInode() const { return netns_inode_; }

 private:
  struct Free {
    void operator()(nft_ctx* ctx) const;
  };
  Context(nft_ctx* ctx, ino_t netns_inode);
  // Empties the output and error buffers (they accumulate until read).
  void drain();
  Status runScript(std::string_view script, std::string_view what);

  std::unique_ptr<nft_ctx, Free> ctx_;
  ino_t netns_inode_ = 0;
};

// Turns libnftables' error output into one line: "line N: <message>: \"<line N of
// script>\"" for each error located at `source` (the file name the script was given to
// libnftables as) line N; the source-text and caret lines nft prints under a located
// error are dropped; other lines are kept, trimmed; all joined by "; ". Exposed for
// tests.
std::string formatErrors(std::string_view raw, std::string_view source, std::string_view script);

// The status code for nft's error text (see Context::run()).
absl::StatusCode codeForError(std::string_view text);

}  // namespace berth::nft
