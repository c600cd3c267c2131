// Internal to the registry client: credentials decoding, the token endpoint of the
// distribution token auth spec (docker/distribution docs/spec/auth/token.md, oauth.md)
// and the shared token cache.
//
// Thread-safety: free functions are thread-safe; TokenCache is thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base64.h"
#include "common/status.h"
#include "runtime/image/registry_client.h"
#include "runtime/image/registry_transport.h"

namespace berth::image::internal {

// docker `auth` values are base64 (common/base64.h; unpadded input accepted).
using ::berth::base64Decode;
using ::berth::base64Encode;

struct BasicCredentials {
  std::string username;
  std::string password;
};

// The username/password of `credentials` (username/password fields, else the decoded
// `auth` "user:pass"); nullopt when neither is set. Errors: InvalidArgument when
// `auth` is not base64 of "user:password".
StatusOr<std::optional<BasicCredentials>> basicCredentials(const Credentials& credentials);

// "Basic <base64(user:pass)>".
std::string basicAuthorization(const BasicCredentials& basic);

// A token endpoint answer: "token" or "access_token", "expires_in" (seconds, default
// 60, token.md "Token Response Fields"). Errors: InvalidArgument for malformed JSON
// or a response without a token.
struct TokenResponse {
  std::string token;
  std::chrono::seconds expires_in{60};
};
StatusOr<TokenResponse> parseTokenResponse(std::string_view body);

struct TokenRequest {
  std::string realm;                // absolute URL of the token endpoint
  std::string service;              // may be empty
  std::vector<std::string> scopes;  // "repository:library/busybox:pull"
  std::optional<BasicCredentials> basic;  // GET with basic auth when set
  std::string identity_token;       // POST grant_type=refresh_token when set
  std::string registry;             // host[:port] of the registry, for messages
  TlsSettings tls;
  int max_retries = 3;
  std::chrono::milliseconds retry_backoff{200};
};

// Gets a token from the realm: GET realm?service=&scope=... (token.md "Requesting a
// Token"), or with an identity token POST grant_type=refresh_token&refresh_token=..
// &service=..&scope=..&client_id=berth (oauth.md). 429/5xx and connection errors are
// retried. Errors: Unauthenticated (401, with advice to check the credentials),
// PermissionDenied (403), Unavailable (connection / 5xx), InvalidArgument (bad
// response); each names the realm and the registry.
StatusOr<TokenResponse> fetchToken(RegistryTransport& transport, const TokenRequest& request);

// Tokens by key (realm, service, scope, credential fingerprint) until they expire.
class TokenCache {
 public:
  std::optional<std::string> get(const std::string& key);
  void put(const std::string& key, const std::string& token, std::chrono::seconds expires_in);
  void erase(const std::string& key);

 private:
  struct Entry {
    std::string token;
    std::chrono::steady_clock::time_point expires;
  };
  std::mutex mu_;
  std::map<std::string, Entry> entries_;  // guarded by mu_
};

// Sleep before retry `attempt` (0-based): retry_backoff * 2^attempt, or the
// Retry-After header (delta-seconds or HTTP-date) when it says longer, capped at
// `max_retry_after` when it comes from the header.
std::chrono::milliseconds retryDelay(int attempt, std::chrono::milliseconds backoff,
                                     const std::string& retry_after,
                                     std::chrono::seconds max_retry_after);

// "HTTP <status> <reason>[: <CODE>: <message>[; ...]]" from a registry error response
// (distribution-spec "Error Codes": {"errors":[{"code","message","detail"}]}).
std::string describeHttpError(const TransportResponse& response);

}  // namespace berth::image::internal
