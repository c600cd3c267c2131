// Internal to the registry client (registry_client.cc, registry_auth.cc): one HTTP
// exchange over libcurl, no redirects followed, no retries, with the connection pool,
// DNS cache and TLS sessions shared between all requests of one transport.
//
// Thread-safety: a RegistryTransport is thread-safe; perform() may be called from any
// number of threads at once (one curl easy handle per call, one CURLSH with locks).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace berth::image::internal {

// TLS settings of one request.
struct TlsSettings {
  bool verify = true;        // false: no peer/host verification (insecure endpoint)
  std::string extra_ca_pem;  // extra CA certificates (PEM) added to the system store
  std::string client_cert;   // PEM file paths; both empty when none
  std::string client_key;
};

struct TransportRequest {
  std::string method = "GET";  // "GET" or "POST"
  std::string url;             // absolute http(s) URL
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // POST body (form encoded)
  TlsSettings tls;
};

// What came back. Header fields are those of the last response received (a 3xx is
// not followed: `redirect_url` holds its absolute Location).
struct TransportResponse {
  int curl_code = 0;       // CURLcode; 0 when an HTTP response was read completely
  std::string curl_error;  // curl's message for curl_code
  bool tls_handshake_failed = false;  // TCP connected but the TLS handshake did not finish
  long status = 0;         // HTTP status, 0 when none was received
  std::string reason;      // reason phrase of the status line
  std::string content_type;
  std::string docker_content_digest;
  std::string www_authenticate;  // all WWW-Authenticate headers joined by ", "
  std::string retry_after;
  std::string content_range;
  std::string redirect_url;
  std::string error_body;  // body of a non-2xx response (first 64 KiB)
  Status consumer_status;  // the error with which the body consumer aborted
  int64_t body_bytes = 0;  // 2xx body bytes passed to the consumer
};

// Receives the body of a 2xx response as it arrives (called after the headers are
// known: `response` has the status and headers). A non-OK status aborts the transfer.
using BodyConsumer =
    std::function<Status(const TransportResponse& response, std::string_view data)>;

struct TransportOptions {
  std::chrono::seconds connect_timeout{20};
  int64_t low_speed_bytes = 1;
  std::chrono::seconds low_speed_time{30};
  std::string user_agent = "berth";
};

class RegistryTransport {
 public:
  // Errors: Internal when curl cannot be initialised.
  static StatusOr<std::unique_ptr<RegistryTransport>> create(TransportOptions options);
  ~RegistryTransport();

  // Performs one request. Transport failures are reported in the response
  // (curl_code != 0), not as a Status. `consumer` may be null (body discarded).
  TransportResponse perform(const TransportRequest& request, const BodyConsumer& consumer);

  // The system CA bundle (PEM) that curl uses, read once; "" when unreadable.
  const std::string& systemCaBundle();

 private:
  explicit RegistryTransport(TransportOptions options);
  struct Share;
  TransportOptions options_;
  std::unique_ptr<Share> share_;
  std::once_flag ca_once_;
  std::string system_ca_;
};

// The "host[:port]" of an absolute URL ("https://a.b:5000/x" -> "a.b:5000"), lowercased;
// "" when it cannot be parsed.
std::string urlHostPort(const std::string& url);

// Percent-encodes a query / form value (RFC 3986 unreserved characters kept).
std::string urlEncode(std::string_view value);

}  // namespace berth::image::internal
