// The Service proxy's health answers, as kube-proxy gives them
// (kubernetes pkg/proxy/healthcheck):
//
// - ProxyHealth: the proxy's own /healthz and /livez. Healthy unless a change to the
//   wanted rules has been waiting longer than the health timeout (kube-proxy uses twice
//   the sync period) or the last sync failed to apply. Body (JSON):
//     {"lastUpdated":"<RFC3339>","currentTime":"<RFC3339>","nodeEligible":true}
//   HTTP 200 when healthy, 503 otherwise. /livez is the same check.
//
// - ServiceHealthServers: for each Service with externalTrafficPolicy Local and a
//   healthCheckNodePort, an HTTP listener on that port that a cloud load balancer
//   probes; any path answers
//     {"service":{"namespace":"ns","name":"web"},"localEndpoints":N,"serviceProxyHealthy":true}
//   with 200 when N > 0 and the proxy is healthy, 503 otherwise, plus the headers
//   X-Content-Type-Options: nosniff and X-Load-Balancing-Endpoint-Weight: N.
//
// Thread-safety: both classes are thread-safe (one mutex each); the HTTP handlers run
// on the endpoints' threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/http_endpoint.h"
#include "common/status.h"

namespace berth::proxy {

class ProxyHealth {
 public:
  using Clock = std::function<std::chrono::system_clock::time_point()>;

  // `timeout`: how long a queued change may wait for a successful sync.
  explicit ProxyHealth(std::chrono::milliseconds timeout, Clock clock = nullptr);

  // A change arrived that the next sync must apply (kept: the oldest pending one).
  void queued();
  // A sync applied every pending change.
  void synced();
  // A sync failed: unhealthy until the next successful one.
  void failed(const std::string& why);

  bool healthy() const;
  // The JSON answer and status for /healthz and /livez (404 for other paths).
  http::Response handle(const http::Request& req) const;

 private:
  bool healthyLocked(std::chrono::system_clock::time_point now) const;

  const std::chrono::milliseconds timeout_;
  Clock clock_;
  mutable std::mutex mu_;
  std::chrono::system_clock::time_point last_updated_;    // guarded by mu_
  std::chrono::system_clock::time_point oldest_pending_;  // epoch when none; guarded by mu_
  std::string failure_;                                   // guarded by mu_
};

// Formats a system_clock time as RFC3339 with nanoseconds, UTC.
std::string formatRfc3339(std::chrono::system_clock::time_point t);

class ServiceHealthServers {
 public:
  // Health of one Service with a healthCheckNodePort.
  struct Entry {
    std::string ns, name;
    uint16_t port = 0;
    int local_endpoints = 0;
  };

  // `addresses`: host parts to listen on ("" = every address, or node IPs). `proxy`
  // (may be null) decides serviceProxyHealthy.
  ServiceHealthServers(std::vector<std::string> addresses, const ProxyHealth* proxy);

  // Makes the listeners match `entries` (keyed by port): opens new ports, closes
  // removed ones, updates counts. A port that cannot be bound is logged and reported
  // in the returned status (naming the Service and port); the others are still served.
  Status sync(const std::vector<Entry>& entries);

  // Ports being served now.
  std::vector<uint16_t> ports() const;

 private:
  http::Response answer(uint16_t port) const;

  std::vector<std::string> addresses_;
  const ProxyHealth* proxy_;
  mutable std::mutex mu_;
  std::map<uint16_t, Entry> entries_;                                        // guarded by mu_
  std::map<uint16_t, std::vector<std::unique_ptr<http::Endpoint>>> servers_;  // guarded by mu_
};

}  // namespace berth::proxy
