// The Service proxy's sync loop, the part of kube-proxy that is not about rules
// (kubernetes pkg/util/async BoundedFrequencyRunner and the proxier's syncRunner use):
//
//   - requestSync() after any Service/EndpointSlice change: the next sync runs as soon
//     as `min_interval` has passed since the previous one (changes arriving meanwhile
//     are folded into that one sync);
//   - every `sync_period` a full resync runs even without changes (it repairs rules
//     someone else flushed);
//   - a sync that fails is retried after a backoff (doubling from `retry_initial` up
//     to `retry_max`), and the next attempt after a failure is always full;
//   - each outcome is reported to ProxyHealth (queued/synced/failed) and ProxyMetrics
//     (durations, rule counts, failures), and logged once per change of state.
//
// The rules themselves come from a SyncFn: it renders the wanted state and applies it
// (a partial sync when `full` is false), returning counts for the metrics.
//
// Thread-safety: requestSync(), requestFullSync() and stop() may be called from any
// thread; the SyncFn runs on the runner's own thread only, never concurrently.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "common/status.h"
#include "proxy/health.h"
#include "proxy/metrics.h"

namespace berth::proxy {

struct SyncCounts {
  int rules = 0;      // rules + map elements written or kept
  int services = 0;   // service ports programmed
  int endpoints = 0;  // endpoints programmed
};

class SyncRunner {
 public:
  using SyncFn = std::function<StatusOr<SyncCounts>(bool full)>;

  struct Options {
    std::chrono::milliseconds min_interval{1000};   // kube-proxy's minSyncPeriod
    std::chrono::milliseconds sync_period{30000};   // full resync period
    std::chrono::milliseconds retry_initial{500};
    std::chrono::milliseconds retry_max{30000};
  };

  // `health` and `metrics` may be null. The first sync (full) runs at once after start().
  SyncRunner(Options options, SyncFn sync, ProxyHealth* health, ProxyMetrics* metrics);
  ~SyncRunner();  // stop()

  void start();
  // Stops the loop; an in-flight sync finishes first. Idempotent.
  void stop();

  // A change arrived: sync soon (partial unless a full one is pending).
  void requestSync();
  // Something outside invalidated the rules: the next sync is full.
  void requestFullSync();

  // Number of syncs attempted and failed so far (for tests and logs).
  int attempts() const;
  int failures() const;

 private:
  void loop();

  using Clock = std::chrono::steady_clock;
  const Options options_;
  SyncFn sync_;
  ProxyHealth* health_;
  ProxyMetrics* metrics_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;      // guarded by mu_
  bool pending_ = true;        // guarded by mu_; the first sync
  bool pending_full_ = true;   // guarded by mu_
  int attempts_ = 0;           // guarded by mu_
  int failures_ = 0;           // guarded by mu_
  std::thread thread_;
};

}  // namespace berth::proxy
