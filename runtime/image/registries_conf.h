// Registry configuration shared with CRI-O, Podman and skopeo:
//   - containers-registries.conf(5) version 2 (TOML): search registries, short-name
//     mode and aliases, and per-prefix [[registry]] tables that rewrite, block, mark
//     insecure (plain HTTP / unverified TLS) or mirror parts of the image namespace;
//   - containers-certs.d(5): per-registry CA and client certificates in
//     <certs_dir>/<host[:port]>/.
//
// The legacy version 1 tables ([registries.search], [registries.insecure],
// [registries.block]) are TRANSLATED into the version 2 model (each listed registry
// becomes a [[registry]] with prefix = location = the name); a file mixing version 1
// tables with version 2 keys is rejected, as containers/image does.
//
// Not implemented: registries.conf.d/ drop-in directories, credential-helpers (kept as
// unknown keys), per-user config files. Unknown keys are reported in
// RegistriesConf::warnings, not rejected, so newer files still load.
//
// Thread-safety: all functions are pure (they read files, keep no state); a
// RegistriesConf is a plain value, safe to share read-only between threads.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace berth::image {

// Which pulls a mirror serves ([[registry.mirror]] pull-from-mirror).
enum class PullFromMirror {
  kAll,         // "all" or unset: tag and digest pulls
  kDigestOnly,  // "digest-only": only pulls by digest (immutable content)
  kTagOnly,     // "tag-only": only pulls by tag
};

// One [[registry.mirror]] table.
struct RegistryMirror {
  std::string location;  // host[:port][/namespace...], no scheme, no trailing '/'
  bool insecure = false;
  PullFromMirror pull_from_mirror = PullFromMirror::kAll;
};

// One [[registry]] table, after defaults are applied.
struct RegistryEntry {
  // The namespace this entry applies to: host[:port][/namespace...] or a wildcard host
  // "*.example.com". Defaults to `location` when unset.
  std::string prefix;
  // Where the namespace really lives. May be empty only for a wildcard prefix (then
  // the matched host is kept).
  std::string location;
  bool insecure = false;
  bool blocked = false;
  bool mirror_by_digest_only = false;
  std::vector<RegistryMirror> mirrors;
  int line = 0;  // line of the table in the file, for messages (0 when translated)
};

// A parsed registries.conf.
struct RegistriesConf {
  std::string source_path;  // the file it came from ("" for an empty default config)
  int version = 2;          // 1 when translated from the legacy tables
  std::vector<std::string> unqualified_search_registries;
  // "enforcing", "permissive", "disabled", or "" when unset. Kept for the short-name
  // resolution done by the caller.
  std::string short_name_mode;
  std::map<std::string, std::string> aliases;  // [aliases] short name -> reference
  std::vector<RegistryEntry> registries;
  std::vector<std::string> warnings;  // "<file>:<line>:<col>: unknown key \"x\"..."
};

// One endpoint to try for a pull, in order.
struct PullSource {
  // The reference to pull from this endpoint, rewritten from the requested one
  // (e.g. "mirror.local:5000/library/busybox:1.36").
  std::string reference;
  // host[:port] of `reference`: what to connect to and look up in certs.d.
  std::string registry;
  // Plain HTTP or unverified TLS allowed for this endpoint.
  bool insecure = false;
  // True for a [[registry.mirror]], false for the primary location.
  bool mirror = false;
};

// TLS material for one registry from containers-certs.d(5).
struct TlsFiles {
  struct ClientCert {
    std::string cert;  // "<dir>/<name>.cert"
    std::string key;   // "<dir>/<name>.key"
  };
  std::vector<std::string> ca_files;         // every "*.crt", sorted by name
  std::vector<ClientCert> client_certs;      // every "*.cert"/"*.key" pair, sorted
};

// Parses registries.conf text. `source_path` is used in messages only.
// Errors (InvalidArgument), each naming the file and line:column:
//   TOML syntax errors; a value of the wrong type; an unknown pull-from-mirror or
//   short-name-mode value; a [[registry]] without prefix and location; a location or
//   prefix with a URI scheme ("https://..."); a malformed wildcard prefix; the same
//   prefix twice; pull-from-mirror set on a mirror of a registry with
//   mirror-by-digest-only = true; version 1 tables mixed with version 2 keys.
StatusOr<RegistriesConf> parseRegistriesConf(const std::string& text,
                                             const std::string& source_path);

// Reads and parses `path` (containers-registries.conf(5)). A missing file gives an
// empty config (pulls go straight to the named registry over TLS), not an error.
// Errors: as parseRegistriesConf, or the read error (PermissionDenied, ...) with path.
StatusOr<RegistriesConf> loadRegistriesConf(const std::string& path);

// Returns the endpoints to try, in order, for pulling `normalized_reference`
// ("docker.io/library/busybox:1.36", "host:5000/x@sha256:<hex>"; the first component
// must be the registry host, as after normalisation).
// Matching (containers-registries.conf(5)): the [[registry]] with the longest
// matching prefix wins; a prefix matches at a path boundary ("example.com/foo"
// matches "example.com/foo/bar", "example.com/foo:tag", "example.com/foo@sha256:..."
// but neither "example.com/foobar" nor, for a host-only prefix "example.com", the
// different registry "example.com:5000/..."); "*.example.com" matches any subdomain
// host (with any port), not "example.com" itself; at equal length a literal prefix
// beats a wildcard. The matched prefix is replaced by each mirror's location, then by
// the primary location. Mirrors come first, filtered by pull-from-mirror /
// mirror-by-digest-only against whether the reference is by digest ('@') or by tag;
// the primary location is always last. With no matching entry the result is the
// reference itself, secure.
// Errors: PermissionDenied "registry <prefix> is blocked by <conf path>" when the
// matching entry is blocked; InvalidArgument when the reference has no host part.
StatusOr<std::vector<PullSource>> pullSources(const RegistriesConf& conf,
                                              const std::string& normalized_reference);

// Lists the TLS files for `host_port` ("registry.local:5000" or "quay.io") in
// `<certs_dir>/<host_port>/` per containers-certs.d(5): "*.crt" are CA certificates
// added to the system roots; "*.cert" with the same-named "*.key" is a client
// certificate. A missing directory gives empty TlsFiles.
// Errors: FailedPrecondition naming both files when a ".cert" has no ".key" or a
// ".key" has no ".cert"; InvalidArgument when `host_port` is empty or contains '/'
// or is ".."; read errors of the directory with its path.
StatusOr<TlsFiles> certsFor(const std::string& certs_dir, const std::string& host_port);

// The text form of a PullFromMirror ("all", "digest-only", "tag-only").
const char* pullFromMirrorName(PullFromMirror mode);

}  // namespace berth::image
