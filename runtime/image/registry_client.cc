#include "runtime/image/registry_client.h"

#include <openssl/evp.h>

#include <cctype>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "common/sha256.h"
#include "runtime/image/reference.h"
#include "runtime/image/registries_conf.h"
#include "runtime/image/registry_auth.h"
#include "runtime/image/registry_transport.h"

namespace berth::image {

using internal::BasicCredentials;
using internal::BodyConsumer;
using internal::RegistryTransport;
using internal::TlsSettings;
using internal::TransportRequest;
using internal::TransportResponse;

namespace {

constexpr size_t kMaxManifestBytes = 4 << 20;  // distribution-spec "Pulling manifests"
constexpr int kMaxRedirects = 10;
constexpr int kMaxAuthRounds = 2;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool isRetryableStatus(long status) {
  return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

// Digest of `bytes` in the algorithm of `digest` ("sha256:" or "sha512:"); "" for an
// algorithm this client cannot compute.
std::string digestLike(std::string_view digest, std::string_view bytes) {
  if (digest.rfind("sha256:", 0) == 0) return sha256Digest(bytes);
  if (digest.rfind("sha512:", 0) == 0) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(bytes.data(), bytes.size(), out, &len, EVP_sha512(), nullptr) != 1) return "";
    static constexpr char kHex[] = "0123456789abcdef";
    std::string result = "sha512:";
    for (unsigned int i = 0; i < len; ++i) {
      result.push_back(kHex[out[i] >> 4]);
      result.push_back(kHex[out[i] & 15]);
    }
    return result;
  }
  return "";
}

StatusOr<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return lastErrnoError(strCat("read \"", path, "\""));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// One registry operation: what it is (for messages) and where it goes.
struct Target {
  const RegistryEndpoint& endpoint;
  std::string host;  // endpoint.host lowercased
  std::string repository;
  std::string what;  // "fetch manifest \"1.36\" of 127.0.0.1:5000/library/busybox"
  std::string path;  // "/v2/library/busybox/manifests/1.36"
  std::vector<std::string> headers;
};

// The body side of one operation, called for every attempt.
struct Exchange {
  std::function<std::vector<std::string>()> begin;  // resets, returns extra headers
  BodyConsumer consumer;
  std::function<int64_t()> progress;  // body bytes delivered so far
  std::function<bool()> complete;     // everything has arrived (a late error is moot)
};

// How a request authenticates, for one operation.
struct AuthSession {
  enum class Kind { kNone, kRegistryToken, kBasic, kCachedToken, kFreshToken };
  Kind kind = Kind::kNone;
  std::optional<BasicCredentials> basic;
  std::string header;     // the Authorization value, "" for none
  std::string token_key;  // cache key of the bearer token in use
};

// What a registry host asked for last time, so later requests authenticate at once.
struct HostHint {
  bool plain_http = false;  // an insecure endpoint that does not speak TLS
  std::string scheme;       // "basic", "bearer" or ""
  std::string realm;
  std::string service;
};

}  // namespace

class RegistryClient::Impl {
 public:
  Impl(RegistryClientOptions options, std::unique_ptr<RegistryTransport> transport)
      : options_(std::move(options)), transport_(std::move(transport)) {}

  StatusOr<FetchedManifest> fetchManifest(const RegistryEndpoint& endpoint,
                                          const std::string& repository,
                                          const std::string& reference,
                                          const Credentials& credentials);
  Status fetchBlob(const RegistryEndpoint& endpoint, const std::string& repository,
                   const Descriptor& expected, const Credentials& credentials,
                   const std::function<Status(std::string_view)>& sink);

 private:
  Status run(const Target& target, const Credentials& credentials, Exchange& exchange,
             TransportResponse* final_response);
  StatusOr<TlsSettings> tlsFor(const std::string& host_port, bool insecure);
  Status initAuth(const Target& target, const Credentials& credentials, AuthSession& auth);
  Status answerChallenge(const Target& target, const Credentials& credentials,
                         AuthSession& auth, const TransportResponse& response);
  StatusOr<std::string> bearerToken(const Target& target, const Credentials& credentials,
                                    const AuthSession& auth, const std::string& realm,
                                    const std::string& service,
                                    const std::vector<std::string>& scopes, std::string* key);
  Status httpError(const Target& target, const AuthSession& auth, const TransportResponse& r,
                   int retries);
  Status transportError(const Target& target, const TransportResponse& r, int retries,
                        const std::string& earlier);

  HostHint hint(const std::string& host) {
    std::lock_guard<std::mutex> lock(mu_);
    return hints_[host];
  }
  template <typename F>
  void updateHint(const std::string& host, F&& update) {
    std::lock_guard<std::mutex> lock(mu_);
    update(hints_[host]);
  }

  RegistryClientOptions options_;
  std::unique_ptr<RegistryTransport> transport_;
  internal::TokenCache tokens_;
  std::mutex mu_;
  std::map<std::string, HostHint> hints_;  // by lowercased host[:port], guarded by mu_
};

StatusOr<TlsSettings> RegistryClient::Impl::tlsFor(const std::string& host_port, bool insecure) {
  TlsSettings tls;
  tls.verify = !insecure;
  auto files = certsFor(options_.certs_dir, host_port);
  if (!files.ok()) {
    return withContext(files.status(), strCat("TLS configuration for ", host_port));
  }
  if (tls.verify) {
    for (const std::string& ca : files->ca_files) {
      ASSIGN_OR_RETURN(std::string pem, readFile(ca));
      tls.extra_ca_pem += pem + "\n";
    }
  }
  if (!files->client_certs.empty()) {
    tls.client_cert = files->client_certs.front().cert;
    tls.client_key = files->client_certs.front().key;
  }
  return tls;
}

StatusOr<std::string> RegistryClient::Impl::bearerToken(
    const Target& target, const Credentials& credentials, const AuthSession& auth,
    const std::string& realm, const std::string& service, const std::vector<std::string>& scopes,
    std::string* key) {
  // Tokens are specific to the credentials: never hand one user's token to another.
  std::string fingerprint = sha256Hex(strCat(credentials.username, '\0', credentials.password,
                                             '\0', credentials.auth, '\0',
                                             credentials.identity_token));
  *key = strCat(realm, '\n', service, '\n', joinStrings(scopes, " "), '\n', fingerprint);
  if (auto cached = tokens_.get(*key)) return *cached;
  std::string realm_host = internal::urlHostPort(realm);
  if (realm_host.empty() || (realm.rfind("https://", 0) != 0 && realm.rfind("http://", 0) != 0)) {
    return absl::UnauthenticatedError(strCat(target.what, ": registry ", target.endpoint.host,
                                             " asks for a token from an invalid realm \"", realm,
                                             "\""));
  }
  internal::TokenRequest request;
  request.realm = realm;
  request.service = service;
  request.scopes = scopes;
  request.registry = target.endpoint.host;
  request.identity_token = credentials.identity_token;
  if (request.identity_token.empty()) request.basic = auth.basic;
  request.max_retries = options_.max_retries;
  request.retry_backoff = options_.retry_backoff;
  ASSIGN_OR_RETURN(request.tls,
                   tlsFor(realm_host, target.endpoint.insecure && realm_host == target.host));
  auto token = internal::fetchToken(*transport_, request);
  if (!token.ok()) return withContext(token.status(), target.what);
  tokens_.put(*key, token->token, token->expires_in);
  return token->token;
}

Status RegistryClient::Impl::initAuth(const Target& target, const Credentials& credentials,
                                      AuthSession& auth) {
  auto basic = internal::basicCredentials(credentials);
  if (!basic.ok()) return withContext(basic.status(), target.what);
  auth.basic = *basic;
  if (!credentials.registry_token.empty()) {
    auth.kind = AuthSession::Kind::kRegistryToken;
    auth.header = "Bearer " + credentials.registry_token;
    return absl::OkStatus();
  }
  HostHint h = hint(target.host);
  if (h.scheme == "basic" && auth.basic) {
    auth.kind = AuthSession::Kind::kBasic;
    auth.header = internal::basicAuthorization(*auth.basic);
  } else if (h.scheme == "bearer") {
    std::vector<std::string> scopes = {strCat("repository:", target.repository, ":pull")};
    ASSIGN_OR_RETURN(std::string token, bearerToken(target, credentials, auth, h.realm,
                                                    h.service, scopes, &auth.token_key));
    auth.kind = AuthSession::Kind::kCachedToken;
    auth.header = "Bearer " + token;
  }
  return absl::OkStatus();
}

Status RegistryClient::Impl::answerChallenge(const Target& target,
                                             const Credentials& credentials,
                                             AuthSession& auth,
                                             const TransportResponse& response) {
  std::string cause = strCat(target.what, ": ", internal::describeHttpError(response));
  if (auth.kind == AuthSession::Kind::kRegistryToken) {
    return absl::UnauthenticatedError(strCat(cause, "; the registry token given for ",
                                             target.endpoint.host,
                                             " was refused: get a new one"));
  }
  auto challenges = parseWwwAuthenticate(response.www_authenticate);
  if (!challenges.ok()) {
    return absl::UnauthenticatedError(strCat(cause, "; ", challenges.status().message()));
  }
  const AuthChallenge* bearer = nullptr;
  const AuthChallenge* basic = nullptr;
  for (const AuthChallenge& c : *challenges) {
    if (c.scheme == "bearer" && bearer == nullptr) bearer = &c;
    if (c.scheme == "basic" && basic == nullptr) basic = &c;
  }
  if (bearer != nullptr) {
    std::string realm = bearer->param("realm");
    std::string service = bearer->param("service");
    std::vector<std::string> scopes = split(bearer->param("scope"), ' ', true);
    if (scopes.empty()) scopes.push_back(strCat("repository:", target.repository, ":pull"));
    std::string key;
    if (auth.kind == AuthSession::Kind::kFreshToken) {
      // A token fetched just now was refused: the credentials do not reach this image.
      std::string advice =
          credentials.empty()
              ? strCat("; ", target.endpoint.host, "/", target.repository,
                       " needs credentials (anonymous access was refused): give a username "
                       "and password or an image pull secret")
              : strCat("; check that the credentials given for ", target.endpoint.host,
                       " may pull ", target.repository);
      return absl::UnauthenticatedError(cause + advice);
    }
    if (auth.kind == AuthSession::Kind::kCachedToken) tokens_.erase(auth.token_key);
    updateHint(target.host, [&](HostHint& h) {
      h.scheme = "bearer";
      h.realm = realm;
      h.service = service;
    });
    ASSIGN_OR_RETURN(std::string token,
                     bearerToken(target, credentials, auth, realm, service, scopes, &key));
    auth.kind = AuthSession::Kind::kFreshToken;
    auth.token_key = key;
    auth.header = "Bearer " + token;
    return absl::OkStatus();
  }
  if (basic != nullptr) {
    if (!auth.basic) {
      return absl::UnauthenticatedError(strCat(
          cause, "; ", target.endpoint.host,
          " requires a username and password: give credentials (an image pull secret)"));
    }
    if (auth.kind == AuthSession::Kind::kBasic) {
      return absl::UnauthenticatedError(strCat(cause, "; check the username and password given for ",
                                               target.endpoint.host));
    }
    updateHint(target.host, [](HostHint& h) { h.scheme = "basic"; });
    auth.kind = AuthSession::Kind::kBasic;
    auth.header = internal::basicAuthorization(*auth.basic);
    return absl::OkStatus();
  }
  return absl::UnauthenticatedError(strCat(cause, "; the registry asks for an unsupported "
                                                  "authentication scheme (WWW-Authenticate: ",
                                           response.www_authenticate, ")"));
}

Status RegistryClient::Impl::httpError(const Target& target, const AuthSession& auth,
                                       const TransportResponse& r, int retries) {
  std::string message = strCat(target.what, ": ", internal::describeHttpError(r));
  std::string after = retries > 0 ? strCat(" (after ", retries, " retries)") : "";
  switch (r.status) {
    case 401:
      return absl::UnauthenticatedError(strCat(message, "; check the credentials given for ",
                                               target.endpoint.host));
    case 403:
      return absl::PermissionDeniedError(strCat(
          message, auth.kind == AuthSession::Kind::kNone
                       ? strCat("; ", target.endpoint.host, " refuses anonymous pulls")
                       : strCat("; the credentials given for ", target.endpoint.host,
                                " may not pull ", target.repository)));
    case 404:
      return absl::NotFoundError(message);
    case 429:
      return absl::ResourceExhaustedError(
          strCat(message, after, "; the registry rate-limits pulls: try again later"));
    default:
      break;
  }
  if (r.status >= 500) return absl::UnavailableError(message + after);
  if (r.status >= 300 && r.status < 400) {
    return absl::UnavailableError(strCat(message, ": redirect without a usable Location"));
  }
  return absl::FailedPreconditionError(message);
}

Status RegistryClient::Impl::transportError(const Target& target, const TransportResponse& r,
                                            int retries, const std::string& earlier) {
  std::string message = strCat(target.what, ": ", earlier, r.curl_error);
  if (r.tls_handshake_failed) {
    return absl::UnavailableError(strCat(
        message, "; TLS with ", target.endpoint.host, " failed: if it serves plain HTTP, mark it "
        "insecure in registries.conf; if its certificate comes from a private CA, put the CA in ",
        options_.certs_dir, "/", target.endpoint.host, "/ca.crt"));
  }
  if (r.curl_code == 28) {  // CURLE_OPERATION_TIMEDOUT
    message += strCat(" (timed out: connect timeout ", options_.connect_timeout.count(),
                      " s, stall timeout ", options_.low_speed_time.count(), " s)");
  }
  if (retries > 0) message += strCat(" (after ", retries, " retries)");
  return absl::UnavailableError(message);
}

Status RegistryClient::Impl::run(const Target& target, const Credentials& credentials,
                                 Exchange& exchange, TransportResponse* final_response) {
  AuthSession auth;
  RETURN_IF_ERROR(initAuth(target, credentials, auth));
  bool plain = target.endpoint.plain_http ||
               (target.endpoint.insecure && hint(target.host).plain_http);
  std::string scheme = plain ? "http" : "https";
  std::string https_error;  // why HTTPS was given up, for messages
  int attempt = 0;
  int retries = 0;
  int auth_rounds = 0;
  for (;;) {
    int64_t before = exchange.progress();
    std::vector<std::string> headers = target.headers;
    for (std::string& h : exchange.begin()) headers.push_back(std::move(h));
    std::string url = strCat(scheme, "://", target.endpoint.host, target.path);
    ASSIGN_OR_RETURN(TlsSettings tls, tlsFor(target.endpoint.host, target.endpoint.insecure));
    TransportResponse r;
    for (int hop = 0;; ++hop) {
      TransportRequest request;
      request.url = url;
      request.tls = tls;
      request.headers = headers;
      // Credentials go to the registry host only, never to a redirect target elsewhere.
      if (!auth.header.empty() && internal::urlHostPort(url) == target.host) {
        request.headers.push_back("Authorization: " + auth.header);
      }
      r = transport_->perform(request, exchange.consumer);
      if (r.curl_code != 0 || r.status < 300 || r.status >= 400 || r.redirect_url.empty()) break;
      if (hop >= kMaxRedirects) {
        return absl::UnavailableError(
            strCat(target.what, ": more than ", kMaxRedirects, " redirects"));
      }
      url = r.redirect_url;
      std::string next_host = internal::urlHostPort(url);
      ASSIGN_OR_RETURN(tls, tlsFor(next_host, target.endpoint.insecure && next_host == target.host));
    }
    if (!r.consumer_status.ok()) return withContext(r.consumer_status, target.what);
    if (r.curl_code != 0) {
      if (exchange.complete()) break;
      if (r.tls_handshake_failed && target.endpoint.insecure && scheme == "https") {
        // An insecure registry that does not speak TLS: use plain HTTP from now on.
        https_error = strCat("over https: ", r.curl_error, "; over http: ");
        scheme = "http";
        updateHint(target.host, [](HostHint& h) { h.plain_http = true; });
        continue;
      }
      if (exchange.progress() > before) attempt = 0;  // a resumable cut, not a dead server
      if (!r.tls_handshake_failed && attempt < options_.max_retries) {
        std::this_thread::sleep_for(internal::retryDelay(attempt, options_.retry_backoff, "",
                                                         options_.max_retry_after));
        ++attempt;
        ++retries;
        continue;
      }
      return transportError(target, r, retries, https_error);
    }
    if (r.status >= 200 && r.status < 300) {
      if (final_response != nullptr) *final_response = r;
      return absl::OkStatus();
    }
    if (r.status == 401 && auth_rounds < kMaxAuthRounds) {
      ++auth_rounds;
      RETURN_IF_ERROR(answerChallenge(target, credentials, auth, r));
      continue;
    }
    if (isRetryableStatus(r.status) && attempt < options_.max_retries) {
      std::this_thread::sleep_for(internal::retryDelay(attempt, options_.retry_backoff,
                                                       r.retry_after, options_.max_retry_after));
      ++attempt;
      ++retries;
      continue;
    }
    return httpError(target, auth, r, retries);
  }
  return absl::OkStatus();
}

StatusOr<FetchedManifest> RegistryClient::Impl::fetchManifest(const RegistryEndpoint& endpoint,
                                                              const std::string& repository,
                                                              const std::string& reference,
                                                              const Credentials& credentials) {
  Target target{endpoint,
                lower(endpoint.host),
                repository,
                strCat("fetch manifest \"", reference, "\" of ", endpoint.host, "/", repository),
                strCat("/v2/", repository, "/manifests/", reference),
                {"Accept: " + manifestAcceptHeader()}};
  bool by_digest = reference.find(':') != std::string::npos;
  if (by_digest) RETURN_IF_ERROR_CTX(validateDigest(reference), target.what);
  std::string body;
  Exchange exchange;
  exchange.begin = [&body] {
    body.clear();
    return std::vector<std::string>();
  };
  exchange.consumer = [&body](const TransportResponse&, std::string_view data) -> Status {
    if (body.size() + data.size() > kMaxManifestBytes) {
      return failedPrecondition("manifest larger than 4 MiB (the distribution-spec limit)");
    }
    body.append(data);
    return absl::OkStatus();
  };
  exchange.progress = [] { return int64_t{0}; };
  exchange.complete = [] { return false; };
  TransportResponse response;
  RETURN_IF_ERROR(run(target, credentials, exchange, &response));

  FetchedManifest result;
  result.digest = sha256Digest(body);
  std::string_view content_type = response.content_type;
  result.media_type = std::string(trim(content_type.substr(0, content_type.find(';'))));
  if (by_digest) {
    std::string actual = digestLike(reference, body);
    if (actual != reference) {
      return absl::DataLossError(strCat(target.what, ": the registry sent content with digest ",
                                        actual, ", not the requested one"));
    }
  } else if (!response.docker_content_digest.empty()) {
    const std::string& header = response.docker_content_digest;
    std::string actual = digestLike(header, body);
    if (!actual.empty() && actual != header) {
      return absl::DataLossError(strCat(target.what, ": Docker-Content-Digest says ", header,
                                        " but the content hashes to ", actual));
    }
  }
  result.bytes = std::move(body);
  return result;
}

Status RegistryClient::Impl::fetchBlob(const RegistryEndpoint& endpoint,
                                       const std::string& repository, const Descriptor& expected,
                                       const Credentials& credentials,
                                       const std::function<Status(std::string_view)>& sink) {
  Target target{endpoint,
                lower(endpoint.host),
                repository,
                strCat("fetch blob ", expected.digest, " of ", endpoint.host, "/", repository),
                strCat("/v2/", repository, "/blobs/", expected.digest),
                {}};
  RETURN_IF_ERROR_CTX(validateDigest(expected.digest), target.what);
  int64_t delivered = 0;  // bytes handed to the sink
  int64_t requested = 0;  // offset asked for by this attempt
  int64_t skip = 0;       // bytes of this response the sink has already seen
  bool started = false;   // this attempt's response checked
  Exchange exchange;
  exchange.begin = [&] {
    requested = delivered;
    started = false;
    std::vector<std::string> headers;
    if (requested > 0) headers.push_back(strCat("Range: bytes=", requested, "-"));
    return headers;
  };
  exchange.consumer = [&](const TransportResponse& r, std::string_view data) -> Status {
    if (!started) {
      started = true;
      int64_t start = 0;
      if (r.status == 206) {
        // "bytes <first>-<last>/<total>"
        std::string_view range = trim(r.content_range);
        if (range.rfind("bytes ", 0) == 0) range.remove_prefix(6);
        std::string first(range.substr(0, range.find('-')));
        start = first.empty() ? -1 : std::strtoll(first.c_str(), nullptr, 10);
        if (start < 0 || start > requested) {
          return absl::UnavailableError(strCat("asked for bytes ", requested,
                                               "- but the registry sent Content-Range \"",
                                               r.content_range, "\""));
        }
      }
      skip = requested - start;  // a 200 restarts from byte 0: skip what we have
    }
    if (skip > 0) {
      size_t drop = static_cast<size_t>(std::min<int64_t>(skip, data.size()));
      data.remove_prefix(drop);
      skip -= static_cast<int64_t>(drop);
    }
    if (data.empty()) return absl::OkStatus();
    if (delivered + static_cast<int64_t>(data.size()) > expected.size) {
      return absl::DataLossError(strCat("the registry sent more than the ", expected.size,
                                        " bytes the descriptor gives"));
    }
    RETURN_IF_ERROR(sink(data));
    delivered += static_cast<int64_t>(data.size());
    return absl::OkStatus();
  };
  exchange.progress = [&delivered] { return delivered; };
  exchange.complete = [&] { return delivered == expected.size && expected.size > 0; };
  return run(target, credentials, exchange, nullptr);
}

StatusOr<std::unique_ptr<RegistryClient>> RegistryClient::create(RegistryClientOptions options) {
  internal::TransportOptions transport_options;
  transport_options.connect_timeout = options.connect_timeout;
  transport_options.low_speed_bytes = options.low_speed_bytes;
  transport_options.low_speed_time = options.low_speed_time;
  transport_options.user_agent = options.user_agent;
  ASSIGN_OR_RETURN(auto transport, RegistryTransport::create(std::move(transport_options)));
  return std::unique_ptr<RegistryClient>(new RegistryClient(
      std::make_unique<Impl>(std::move(options), std::move(transport))));
}

RegistryClient::RegistryClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RegistryClient::~RegistryClient() = default;

StatusOr<FetchedManifest> RegistryClient::fetchManifest(const RegistryEndpoint& endpoint,
                                                        const std::string& repository,
                                                        const std::string& reference,
                                                        const Credentials& credentials) {
  return impl_->fetchManifest(endpoint, repository, reference, credentials);
}

Status RegistryClient::fetchBlob(const RegistryEndpoint& endpoint, const std::string& repository,
                                 const Descriptor& expected, const Credentials& credentials,
                                 const std::function<Status(std::string_view)>& sink) {
  return impl_->fetchBlob(endpoint, repository, expected, credentials, sink);
}

}  // namespace berth::image
