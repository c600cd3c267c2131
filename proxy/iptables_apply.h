// IptablesApplier: the kernel-facing half of the iptables proxier. The renderers produce
// iptables-restore input; this class feeds it to iptables-restore (IPv4) or
// ip6tables-restore (IPv6) of the backend the host uses, and reads tables back with
// iptables-save. It knows nothing of Services.
//
// Backends: Debian's iptables package ships both flavours — iptables-nft-* (rules in
// nf_tables, the default) and iptables-legacy-* (the old x_tables); `iptables
// --version` prints "iptables v1.8.9 (nf_tables)" or "iptables v1.8.9 (legacy)" for
// whichever `update-alternatives` selected. Rules written by one flavour are invisible to
// the other's -save, so the proxier must use the one the rest of the host (kubelet, CNI
// plugins, the admin) uses: detect it, or let the operator force one.
//
// Transactions: one iptables-restore run is one transaction per table (`*nat` ...
// `COMMIT`): legacy replaces the table blob at COMMIT, nft sends one batch per COMMIT;
// a failing line aborts its table and the tables after it, and a table committed
// earlier in the same input stays (verified for both backends with 1.8.9). So give each
// restore() one table, or accept that earlier tables may be committed. Line numbers:
// legacy names the failing rule's line; nft names the rule's line for parse errors but
// the COMMIT line for errors the kernel reports at commit (e.g. a jump to a missing
// chain: "Chain 'X' does not exist", at the COMMIT line). --noflush keeps the chains the input does not
// mention; a chain declared with ":NAME - [0:0]" is flushed (created when missing).
//
// Network namespace: iptables-restore/-save run as child processes, which start in the
// network namespace of the thread that calls restore()/save() (posix_spawn clones the
// calling thread's namespaces), not the one create() ran in.
//
// Processes: spawned with posix_spawn (no shell), argv only, environment inherited,
// stdin/stdout/stderr through pipes, the signal mask cleared; a child still running
// after the timeout is killed (SIGKILL, by pid) and reaped. SIGPIPE is blocked in the
// calling thread while writing the input, so a child that exits early cannot kill us.
//
// Thread-safety: an IptablesApplier is immutable after create(); restore() and save()
// may be called from several threads (iptables' own lock, --wait, serializes writers).
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/status.h"
#include "proxy/protocol.h"

namespace berth::proxy {

enum class IptablesBackend {
  kDetect,  // create(): use what `iptables --version` (or ip6tables) reports
  kNft,     // iptables-nft-restore / iptables-nft-save
  kLegacy,  // iptables-legacy-restore / iptables-legacy-save
};

// "nf_tables", "legacy" or "detect".
std::string_view backendName(IptablesBackend backend);

// The backend named in the output of `iptables --version` ("... (nf_tables)" or
// "... (legacy)"). Errors: InvalidArgument when it names neither (iptables < 1.8
// prints no backend: it is legacy-only, but we do not guess).
StatusOr<IptablesBackend> parseVersionBackend(std::string_view version_output);

// Runs `iptables --version` (`ip6tables --version` for IPv6) from PATH and parses it.
// Errors: NotFound when the binary is missing; the run's error; InvalidArgument from
// parseVersionBackend().
StatusOr<IptablesBackend> detectBackend(IpFamily family);

// An error for a failed iptables-restore run: "<tool> (<backend>): line N failed:
// <reason>: \"<text of line N of input>\"" when stderr names a line (the forms
// "line N failed", "Error occurred at line: N", "COMMIT expected at line N"), else
// "<tool> (<backend>) failed (exit status S): <stderr>". Code InvalidArgument when a
// line was named, Internal otherwise. Exposed for tests.
Status restoreError(std::string_view tool, IptablesBackend backend, int exit_status,
                    std::string_view stderr_text, std::string_view input);

class IptablesApplier {
 public:
  struct Options {
    IptablesBackend backend = IptablesBackend::kDetect;
    // How long restore()/save() may wait for the xtables lock (iptables --wait).
    std::chrono::seconds lock_wait{5};
    // A child still running after this long is killed.
    std::chrono::seconds timeout{60};
  };

  // Resolves the restore and save binaries of `family` and the backend (detected when
  // kDetect) to absolute paths in PATH: iptables-nft-restore / iptables-legacy-restore
  // (ip6tables-* for IPv6), or plain iptables-restore when the flavoured name is missing
  // but `iptables --version` reports that backend. Errors: NotFound naming the binary
  // and the package to install; detectBackend()'s errors.
  static StatusOr<IptablesApplier> create(IpFamily family, const Options& options);
  static StatusOr<IptablesApplier> create(IpFamily family) { return create(family, Options()); }

  IpFamily family() const { return family_; }
  // kNft or kLegacy, never kDetect.
  IptablesBackend backend() const { return backend_; }
  const std::string& restoreBinary() const { return restore_; }
  const std::string& saveBinary() const { return save_; }

  // Runs `<restore> --noflush --wait=<lock_wait>` with `input` (iptables-restore
  // format: "*table", ":CHAIN - [0:0]", "-A ...", "COMMIT") on stdin, in the calling
  // thread's netns. Errors: restoreError() (the failing line number and text); the
  // posix_spawn errno when the binary cannot be run; Internal when it times out.
  Status restore(std::string_view input) const;

  // Runs `<save> -t <table>` and returns its output (iptables-save format). Meant for
  // finding our own stale chains once at startup, not for every sync. Errors:
  // InvalidArgument for a table other than filter, nat, mangle, raw, security; the run's
  // exit status and stderr.
  StatusOr<std::string> save(std::string_view table) const;

 private:
  IptablesApplier(IpFamily family, IptablesBackend backend, std::string restore, std::string save,
                  Options options)
      : family_(family),
        backend_(backend),
        restore_(std::move(restore)),
        save_(std::move(save)),
        options_(options) {}

  IpFamily family_;
  IptablesBackend backend_;
  std::string restore_;
  std::string save_;
  Options options_;
};

}  // namespace berth::proxy
