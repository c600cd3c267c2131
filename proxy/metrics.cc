#include "proxy/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace berth::proxy {
namespace {

double nowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// 1 ms doubling up to ~16 s, as kube-proxy's sync histograms.
prometheus::Histogram::BucketBoundaries syncBuckets() {
  prometheus::Histogram::BucketBoundaries b;
  double v = 0.001;
  for (int i = 0; i < 15; ++i, v *= 2) b.push_back(v);
  return b;
}

prometheus::Histogram::BucketBoundaries programmingBuckets() {
  return {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300};
}

prometheus::Histogram& histogram(prometheus::Registry& r, const std::string& name,
                                 const std::string& help,
                                 const prometheus::Histogram::BucketBoundaries& buckets) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(r).Add({}, buckets);
}

prometheus::Gauge& gauge(prometheus::Registry& r, const std::string& name, const std::string& help,
                         const prometheus::Labels& labels = {}) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r).Add(labels);
}

}  // namespace

ProxyMetrics::ProxyMetrics(const std::string& backend)
    : registry_(std::make_shared<prometheus::Registry>()) {
  auto& r = *registry_;
  sync_all_ = &histogram(r, "kubeproxy_sync_proxy_rules_duration_seconds",
                         "SyncProxyRules latency in seconds", syncBuckets());
  sync_full_ = &histogram(r, "kubeproxy_sync_full_proxy_rules_duration_seconds",
                          "SyncProxyRules latency in seconds for full resyncs", syncBuckets());
  sync_partial_ = &histogram(r, "kubeproxy_sync_partial_proxy_rules_duration_seconds",
                             "SyncProxyRules latency in seconds for partial resyncs", syncBuckets());
  network_programming_ = &histogram(r, "kubeproxy_network_programming_duration_seconds",
                                    "In Cluster Network Programming Latency in seconds",
                                    programmingBuckets());
  last_sync_ = &gauge(r, "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
                      "The last time proxy rules were successfully synced");
  last_queued_ = &gauge(r, "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
                        "The last time a sync of proxy rules was queued");
  failures_ = &prometheus::BuildCounter()
                   .Name("berth_proxy_sync_failures_total")
                   .Help("Syncs whose rules failed to apply (the previous rules stayed in place)")
                   .Register(r)
                   .Add({});
  rules_ = &gauge(r, "berth_proxy_rules", "Rules and map elements written by the last sync",
                  {{"backend", backend}});
  services_ = &gauge(r, "berth_proxy_services", "Service ports programmed by the last sync");
  endpoints_ = &gauge(r, "berth_proxy_endpoints", "Endpoints programmed by the last sync");
}

ProxyMetrics::~ProxyMetrics() = default;

void ProxyMetrics::observeSync(bool full, std::chrono::duration<double> took, int rules,
                               int services, int endpoints) {
  sync_all_->Observe(took.count());
  (full ? sync_full_ : sync_partial_)->Observe(took.count());
  last_sync_->Set(nowSeconds());
  rules_->Set(rules);
  services_->Set(services);
  endpoints_->Set(endpoints);
}

void ProxyMetrics::observeFailure() { failures_->Increment(); }

void ProxyMetrics::observeQueued() { last_queued_->Set(nowSeconds()); }

void ProxyMetrics::observeNetworkProgramming(std::chrono::duration<double> latency) {
  network_programming_->Observe(latency.count() < 0 ? 0 : latency.count());
}

std::string ProxyMetrics::render() const {
  prometheus::TextSerializer serializer;
  return serializer.Serialize(registry_->Collect());
}

http::Response ProxyMetrics::handle(const http::Request& req) const {
  if (req.path != "/metrics") return http::Response{404, "text/plain; charset=utf-8", "404 page not found\n", {}};
  return http::Response{200, "text/plain; version=0.0.4; charset=utf-8", render(), {}};
}

}  // namespace berth::proxy
