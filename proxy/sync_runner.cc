#include "proxy/sync_runner.h"

#include <algorithm>

#include "common/log.h"

namespace berth::proxy {

SyncRunner::SyncRunner(Options options, SyncFn sync, ProxyHealth* health, ProxyMetrics* metrics)
    : options_(options), sync_(std::move(sync)), health_(health), metrics_(metrics) {
  if (health_ != nullptr) health_->queued();
}

SyncRunner::~SyncRunner() { stop(); }

void SyncRunner::start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { loop(); });
}

void SyncRunner::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void SyncRunner::requestSync() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_ = true;
  }
  if (health_ != nullptr) health_->queued();
  if (metrics_ != nullptr) metrics_->observeQueued();
  cv_.notify_all();
}

void SyncRunner::requestFullSync() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_ = true;
    pending_full_ = true;
  }
  if (health_ != nullptr) health_->queued();
  cv_.notify_all();
}

int SyncRunner::attempts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return attempts_;
}

int SyncRunner::failures() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failures_;
}

void SyncRunner::loop() {
  auto logger = log::get("proxy");
  Clock::time_point last_sync = Clock::time_point::min();
  Clock::time_point next_full = Clock::now() + options_.sync_period;
  std::chrono::milliseconds backoff{0};
  Clock::time_point retry_at = Clock::time_point::min();
  bool was_failing = false;

  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (stopping_) return;
    Clock::time_point now = Clock::now();
    // When may the next sync run, and must it?
    Clock::time_point earliest =
        last_sync == Clock::time_point::min() ? now : last_sync + options_.min_interval;
    earliest = std::max(earliest, retry_at);
    bool due_full = now >= next_full;
    if ((pending_ || due_full) && now >= earliest) {
      bool full = pending_full_ || due_full;
      pending_ = false;
      pending_full_ = false;
      ++attempts_;
      lock.unlock();

      auto started = Clock::now();
      StatusOr<SyncCounts> counts = sync_(full);
      auto took = Clock::now() - started;

      lock.lock();
      last_sync = Clock::now();
      if (counts.ok()) {
        if (full) next_full = last_sync + options_.sync_period;
        backoff = std::chrono::milliseconds{0};
        retry_at = Clock::time_point::min();
        lock.unlock();
        if (health_ != nullptr) health_->synced();
        if (metrics_ != nullptr) {
          metrics_->observeSync(full, took, counts->rules, counts->services, counts->endpoints);
        }
        if (was_failing) logger->info("proxy rules are in sync again");
        was_failing = false;
        logger->debug("{} sync of proxy rules took {:.1f} ms ({} rules, {} service ports)",
                      full ? "full" : "partial",
                      std::chrono::duration<double, std::milli>(took).count(), counts->rules,
                      counts->services);
        lock.lock();
      } else {
        ++failures_;
        backoff = backoff.count() == 0 ? options_.retry_initial
                                       : std::min(backoff * 2, options_.retry_max);
        retry_at = last_sync + backoff;
        pending_ = true;
        pending_full_ = true;  // what is in the kernel is unknown now
        std::string why(counts.status().message());
        lock.unlock();
        if (health_ != nullptr) health_->failed(why);
        if (metrics_ != nullptr) metrics_->observeFailure();
        logger->warn("sync of proxy rules failed (the previous rules stay in place; retrying "
                     "in {} ms with a full sync): {}",
                     backoff.count(), why);
        was_failing = true;
        lock.lock();
      }
      continue;
    }
    Clock::time_point wake = next_full;
    if (pending_) wake = std::min(wake, std::max(earliest, now));
    cv_.wait_until(lock, wake);
  }
}

}  // namespace berth::proxy
