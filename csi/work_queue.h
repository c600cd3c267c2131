// The provisioner's work queue, after client-go's workqueue: a key is queued at most
// once, never handed out twice at a time (a key added while it is processed is queued
// again by done()), plus delayed adds (retry backoff) and per-key failure counts.
//
// Thread-safety: thread-safe; get() blocks and may be called from several threads.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

namespace berth::csi {

class WorkQueue {
 public:
  // Queues `key` unless it is queued already (no-op after shutdown()).
  void add(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    addLocked(key);
  }
  // Queues `key` once `delay` has passed (retry backoff).
  void addAfter(const std::string& key, std::chrono::milliseconds delay) {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutdown_) return;
    waiting_.emplace(std::chrono::steady_clock::now() + delay, key);
    cv_.notify_all();
  }
  // The next key, blocking; nullopt once shut down.
  std::optional<std::string> get() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      if (shutdown_) return std::nullopt;
      auto now = std::chrono::steady_clock::now();
      while (!waiting_.empty() && waiting_.begin()->first <= now) {
        std::string key = waiting_.begin()->second;
        waiting_.erase(waiting_.begin());
        addLocked(key);
      }
      if (!queue_.empty()) {
        std::string key = std::move(queue_.front());
        queue_.pop_front();
        dirty_.erase(key);
        processing_.insert(key);
        return key;
      }
      if (waiting_.empty()) {
        cv_.wait(lock);
      } else {
        cv_.wait_until(lock, waiting_.begin()->first);
      }
    }
  }
  // Ends processing of a key returned by get(); re-queues it if it was added meanwhile.
  void done(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    processing_.erase(key);
    if (dirty_.count(key) != 0) {
      queue_.push_back(key);
      cv_.notify_all();
    }
  }
  // Counts a failure; returns the failures before it.
  int fail(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    return failures_[key]++;
  }
  // Resets the key's failure count (after a success).
  void forget(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    failures_.erase(key);
  }
  // Wakes every get() (they return nullopt) and refuses further adds.
  void shutdown() {
    std::lock_guard<std::mutex> lock(mu_);
    shutdown_ = true;
    cv_.notify_all();
  }

 private:
  void addLocked(const std::string& key) {
    if (shutdown_ || dirty_.count(key) != 0) return;
    dirty_.insert(key);
    if (processing_.count(key) != 0) return;  // done() re-queues it
    queue_.push_back(key);
    cv_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;                          // guarded by mu_
  std::set<std::string> dirty_;                            // queued or to re-queue; mu_
  std::set<std::string> processing_;                       // guarded by mu_
  std::multimap<std::chrono::steady_clock::time_point, std::string> waiting_;  // guarded by mu_
  std::map<std::string, int> failures_;                    // guarded by mu_
  bool shutdown_ = false;                                  // guarded by mu_
};

}  // namespace berth::csi
