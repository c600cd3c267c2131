// A small HTTP/1.1 endpoint for berthd's own plain-text and JSON pages: the Service
// proxy's /healthz and /livez, the per-Service healthCheckNodePort answers, and
// Prometheus /metrics. It is GNU libmicrohttpd (one internal polling thread per
// endpoint) behind a function that maps a request to a response; nothing here parses
// HTTP itself.
//
// Thread-safety: the handler runs on the endpoint's own thread (one request at a
// time); it must be safe against the threads that change what it reads. start() and
// the destructor may be called from any thread, not concurrently on one object.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace berth::http {

struct Request {
  std::string method;  // "GET", "HEAD", ...
  std::string path;    // "/healthz" (the query string is not included)
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

// Splits "HOST:PORT", "[V6]:PORT" or ":PORT" (every address). Errors: InvalidArgument
// naming `address` (missing or out-of-range port, a host that is not an IP literal).
// On success `host` is "" (any), an IPv4 or an IPv6 literal; `port` is 0..65535.
Status splitHostPort(const std::string& address, std::string& host, uint16_t& port);

class Endpoint {
 public:
  using Handler = std::function<Response(const Request&)>;

  // Listens on `address` ("0.0.0.0:10256", "127.0.0.1:0" for a free port, "[::]:80",
  // ":10256" for every IPv4 and IPv6 address) and serves `handler` until destroyed.
  // `what` names the endpoint in errors ("proxy healthz"). Errors: InvalidArgument for
  // a bad address; Unavailable when the address cannot be bound (in use, not local),
  // naming `what` and the address.
  static StatusOr<std::unique_ptr<Endpoint>> start(const std::string& what,
                                                   const std::string& address, Handler handler);
  ~Endpoint();
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  // The bound port (the chosen one when started with port 0).
  uint16_t port() const { return port_; }
  const std::string& address() const { return address_; }

 private:
  Endpoint() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint16_t port_ = 0;
  std::string address_;
};

}  // namespace berth::http
