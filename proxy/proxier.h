// The Service proxy: what kube-proxy is, inside berthd. Service and EndpointSlice
// objects (API JSON, from an informer or a manifest directory) go into a ChangeTracker;
// a SyncRunner turns changes into syncs of a RuleBackend (nftables or iptables); after
// each successful sync UDP conntrack entries that would keep clients on a removed
// endpoint or Service are deleted, the healthCheckNodePort listeners follow the
// Services, and health and metrics are updated.
//
//   informer / manifest dir ──serviceChanged()/…──► ChangeTracker ──► SyncRunner
//        SyncRunner thread: buildProxyState → backend.sync → conntrack cleanup →
//                           ServiceHealthServers.sync → ProxyHealth / ProxyMetrics
//
// Bad objects (invalid IPs, port 0, unknown protocol, …) are logged with the object's
// name and skipped; the rest of the state is still programmed. A sync that fails to
// apply leaves the previous rules in place, turns /healthz unhealthy and is retried
// with backoff as a full sync.
//
// Thread-safety: the event methods may be called from any thread; start()/stop() from
// one thread. The backend and conntrack handles act on the network namespace of the
// thread that called create(), and start() must be called from that thread too.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/http_endpoint.h"
#include "common/json.h"
#include "common/status.h"
#include "proxy/change_tracker.h"
#include "proxy/conntrack.h"
#include "proxy/health.h"
#include "proxy/metrics.h"
#include "proxy/rule_backend.h"
#include "proxy/sync_runner.h"

namespace berth::proxy {

struct ProxierOptions {
  NodeInfo node;
  SyncRunner::Options runner;
  // host:port of /healthz and /livez, and of /metrics; "" = not served.
  std::string healthz_address;
  std::string metrics_address;
  // Addresses the healthCheckNodePort listeners bind ("" = every address).
  std::vector<std::string> health_check_hosts = {""};
  // Delete stale UDP conntrack entries after syncs (off only in tests without ctnetlink).
  bool conntrack_cleanup = true;
};

class Proxier {
 public:
  // Errors: the healthz or metrics address cannot be bound; conntrack cannot be opened.
  static StatusOr<std::unique_ptr<Proxier>> create(ProxierOptions options,
                                                   std::unique_ptr<RuleBackend> backend);
  ~Proxier();

  void start();
  void stop();

  // A Service / EndpointSlice object was added or updated (`object` is the API JSON),
  // or deleted. Invalid objects are logged and ignored (a previous valid version of
  // the same object stays in effect).
  void serviceChanged(const json::Json& object);
  void serviceDeleted(const json::Json& object);
  void endpointSliceChanged(const json::Json& object);
  void endpointSliceDeleted(const json::Json& object);

  // Replaces everything (after a relist).
  void replaceAll(const std::vector<json::Json>& services, const std::vector<json::Json>& slices);

  const ProxyHealth& health() const { return health_; }
  const ProxyMetrics& metrics() const { return metrics_; }
  SyncRunner& runner() { return *runner_; }
  uint16_t healthzPort() const { return healthz_ ? healthz_->port() : 0; }
  uint16_t metricsPort() const { return metrics_http_ ? metrics_http_->port() : 0; }
  // The state of the last successful sync.
  ProxyState lastState() const;
  // Bad objects seen so far, by "kind ns/name" -> error (diagnostics).
  std::map<std::string, std::string> rejectedObjects() const;

 private:
  Proxier(ProxierOptions options, std::unique_ptr<RuleBackend> backend);
  StatusOr<SyncCounts> sync(bool full);
  void changed(const json::Json& object);
  void reject(const std::string& what, const json::Json& object, const Status& st);
  std::vector<ConntrackFilter> staleUdp(const ProxyState& before, const ProxyState& after) const;

  ProxierOptions options_;
  std::unique_ptr<RuleBackend> backend_;
  ProxyHealth health_;
  ProxyMetrics metrics_;
  ServiceHealthServers service_health_;
  std::unique_ptr<ConntrackCleaner> conntrack_;
  std::unique_ptr<http::Endpoint> healthz_;
  std::unique_ptr<http::Endpoint> metrics_http_;

  mutable std::mutex mu_;
  ChangeTracker tracker_;                                          // guarded by mu_
  ProxyState last_state_;                                          // guarded by mu_
  std::map<std::string, std::string> rejected_;                    // guarded by mu_
  std::vector<std::chrono::system_clock::time_point> triggers_;    // guarded by mu_

  std::unique_ptr<SyncRunner> runner_;
};

}  // namespace berth::proxy
