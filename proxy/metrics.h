// The Service proxy's Prometheus metrics, under kube-proxy's names where kube-proxy has
// one (so its dashboards and alerts work unchanged), built on prometheus-cpp and
// served as text exposition format 0.0.4 on berthd's metrics address (/metrics):
//
//   kubeproxy_sync_proxy_rules_duration_seconds           histogram, every sync
//   kubeproxy_sync_full_proxy_rules_duration_seconds      histogram, full syncs
//   kubeproxy_sync_partial_proxy_rules_duration_seconds   histogram, partial syncs
//   kubeproxy_network_programming_duration_seconds        histogram, from the change's
//       trigger time (EndpointSlice annotation endpoints.kubernetes.io/last-change-trigger-time,
//       or when berthd saw the change) until the rules carrying it were applied
//   kubeproxy_sync_proxy_rules_last_timestamp_seconds     gauge, last successful sync
//   kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds gauge, last queued change
//   berth_proxy_sync_failures_total                        counter, syncs that failed to apply
//   berth_proxy_rules                                      gauge{backend}, rules in the last sync
//   berth_proxy_services / berth_proxy_endpoints           gauges, service ports and endpoints programmed
//
// Thread-safety: all methods are thread-safe (prometheus-cpp metrics are atomic).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/http_endpoint.h"

namespace prometheus {
class Registry;
class Histogram;
class Gauge;
class Counter;
}  // namespace prometheus

namespace berth::proxy {

class ProxyMetrics {
 public:
  // `backend`: "nftables" or "iptables" (the label of berth_proxy_rules).
  explicit ProxyMetrics(const std::string& backend);
  ~ProxyMetrics();

  // A sync that applied; `full` chooses the full or partial histogram.
  void observeSync(bool full, std::chrono::duration<double> took, int rules, int services,
                   int endpoints);
  void observeFailure();
  void observeQueued();
  // One change applied `latency` after it was triggered.
  void observeNetworkProgramming(std::chrono::duration<double> latency);

  // The text exposition of every metric.
  std::string render() const;
  // GET /metrics -> render(); other paths 404.
  http::Response handle(const http::Request& req) const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Histogram* sync_all_;
  prometheus::Histogram* sync_full_;
  prometheus::Histogram* sync_partial_;
  prometheus::Histogram* network_programming_;
  prometheus::Gauge* last_sync_;
  prometheus::Gauge* last_queued_;
  prometheus::Counter* failures_;
  prometheus::Gauge* rules_;
  prometheus::Gauge* services_;
  prometheus::Gauge* endpoints_;
};

}  // namespace berth::proxy
