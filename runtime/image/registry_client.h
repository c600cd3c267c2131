// Registry client over libcurl: the pull side of the OCI distribution-spec
// (https://github.com/opencontainers/distribution-spec/blob/main/spec.md, "Pulling
// manifests", "Pulling blobs") which is also the Docker Registry HTTP API v2.
//
// Auth (distribution "token" auth, docker/distribution docs/spec/auth/token.md and
// oauth.md): requests go out anonymously first; a 401 with
//   WWW-Authenticate: Basic realm="..."         -> retried with the basic credentials
//   WWW-Authenticate: Bearer realm=..,service=..,scope=..
//                                                -> a token is fetched from the realm
//     (GET with basic credentials, or POST grant_type=refresh_token when an identity
//     token is given) and the request is retried with "Authorization: Bearer <token>".
// Tokens are cached per (registry host, scope) until they expire (expires_in, default
// 60 s) and shared by all threads.
//
// TLS: the system CA store plus, per registry host[:port], the files of
// certs.d/<host[:port]>/ (ca.crt -> extra CA, client.cert + client.key -> client
// certificate), see registries_conf.h certsFor(). An endpoint marked insecure
// (registries.conf `insecure = true`) is tried over HTTPS without certificate
// verification first and over plain HTTP when the TLS handshake fails (remembered per
// host); an endpoint marked plain_http goes to plain HTTP at once.
//
// Errors name the registry, the repository and the object, and map HTTP status codes
// to status codes: 401 -> Unauthenticated ("check the credentials"), 403 ->
// PermissionDenied, 404 -> NotFound, 429 -> ResourceExhausted (after retries), 5xx and
// connection failures / timeouts -> Unavailable (after retries). The registry's JSON
// error body ("errors":[{"code","message"}]) is included when present.
//
// Thread-safety: a RegistryClient is thread-safe; any number of fetches may run at
// once (each uses its own curl handle; connections and DNS are shared).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "runtime/image/manifest.h"

namespace berth::image {

// Credentials for one registry: CRI AuthConfig (runtime.v1 api.proto AuthConfig).
// At most one form is used, in this order: registry_token, identity_token,
// username/password, auth.
struct Credentials {
  std::string username;
  std::string password;
  std::string auth;            // base64("username:password"), as in docker config.json
  std::string identity_token;  // OAuth2 refresh token for the token endpoint
  std::string registry_token;  // bearer token sent as-is
  bool empty() const {
    return username.empty() && password.empty() && auth.empty() &&
           identity_token.empty() && registry_token.empty();
  }
};

// Where to send requests: one PullSource of registries_conf.h.
struct RegistryEndpoint {
  std::string host;       // "registry-1.docker.io", "127.0.0.1:5000", "[::1]:5000"
  bool insecure = false;  // allow plain HTTP and unverified TLS
  // The registry is known to serve plain HTTP only (a containerd hosts.toml "http://"
  // server, a loopback test registry): requests go to http:// at once, with no HTTPS
  // attempt first. Credentials are then sent in the clear.
  bool plain_http = false;
};

struct RegistryClientOptions {
  std::string certs_dir = "/etc/containers/certs.d";
  std::chrono::seconds connect_timeout{20};
  // A transfer slower than low_speed_bytes per second for low_speed_time is aborted
  // as a timeout (also catches a server that stalls mid-response).
  int64_t low_speed_bytes = 1;
  std::chrono::seconds low_speed_time{30};
  // Retries of 429, 5xx and connection errors (not of 4xx), with exponential backoff
  // from retry_backoff, honouring Retry-After up to max_retry_after.
  int max_retries = 3;
  std::chrono::milliseconds retry_backoff{200};
  std::chrono::seconds max_retry_after{10};
  std::string user_agent = "berth";
};

// A manifest or index as served.
struct FetchedManifest {
  std::string bytes;
  std::string media_type;  // Content-Type with parameters stripped
  std::string digest;      // sha256 of bytes, "sha256:<hex>"
};

class RegistryClient {
 public:
  // Errors: curl global init failure (Internal).
  static StatusOr<std::unique_ptr<RegistryClient>> create(RegistryClientOptions options = {});
  ~RegistryClient();

  // GET /v2/<repository>/manifests/<reference> with manifestAcceptHeader().
  // `reference` is a tag or a digest. When it is a digest the body must hash to it
  // (DataLoss otherwise); when the registry sends Docker-Content-Digest for a tag, the
  // body must hash to that. Manifests larger than 4 MiB are refused
  // (FailedPrecondition), as the distribution-spec allows.
  StatusOr<FetchedManifest> fetchManifest(const RegistryEndpoint& endpoint,
                                          const std::string& repository,
                                          const std::string& reference,
                                          const Credentials& credentials);

  // GET /v2/<repository>/blobs/<digest>, following redirects (credentials are not
  // sent to another host), passing the body to `sink` in order as it arrives. The
  // caller verifies size and digest (ContentStore::Writer does). A transfer cut off
  // mid-way is retried with "Range: bytes=<n>-" (or, when the server ignores Range,
  // by skipping the first n bytes), so the sink never sees a byte twice.
  // Errors: as above, plus DataLoss when more than `expected.size` bytes arrive, and
  // any error returned by `sink` (which aborts the transfer at once).
  Status fetchBlob(const RegistryEndpoint& endpoint, const std::string& repository,
                   const Descriptor& expected, const Credentials& credentials,
                   const std::function<Status(std::string_view)>& sink);

  class Impl;

 private:
  explicit RegistryClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One challenge of a WWW-Authenticate header (RFC 7235 section 4.1), e.g.
// Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="a b".
struct AuthChallenge {
  std::string scheme;                         // lowercased: "basic", "bearer"
  std::vector<std::pair<std::string, std::string>> params;  // names lowercased
  std::string param(std::string_view name) const;  // "" when absent
};

// Parses a WWW-Authenticate header value into its challenges (quoted strings with
// backslash escapes, several challenges separated by commas). Errors:
// InvalidArgument naming the header for malformed input.
StatusOr<std::vector<AuthChallenge>> parseWwwAuthenticate(std::string_view header);

}  // namespace berth::image
