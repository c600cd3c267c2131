// The per-object in-flight set the CSI spec asks for ("Operation pending for volume:
// ABORTED"): a handler claims a key ("volume/<id>", "volume-name/<name>", ...) for the
// duration of its operation; a second call claiming the same key while the first runs
// gets ABORTED at once instead of racing it. Keys are released when the guard goes.
//
// Thread-safety: thread-safe.
#pragma once

#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "common/status.h"

namespace berth::csi {

class InFlight {
 public:
  class Guard {
   public:
    Guard(InFlight* owner, std::string key) : owner_(owner), key_(std::move(key)) {}
    Guard(Guard&& other) noexcept : owner_(std::exchange(other.owner_, nullptr)),
                                    key_(std::move(other.key_)) {}
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    Guard& operator=(Guard&&) = delete;
    ~Guard() {
      if (owner_ != nullptr) owner_->release(key_);
    }

   private:
    InFlight* owner_;
    std::string key_;
  };

  // Claims `key`. Errors: ABORTED naming `what` when another operation holds it.
  StatusOr<Guard> claim(const std::string& key, std::string_view what) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!keys_.insert(key).second) {
      return absl::AbortedError(
          strCat("an operation on ", what, " is already in progress; retry when it ends"));
    }
    return Guard(this, key);
  }

  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return keys_.size();
  }

 private:
  void release(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    keys_.erase(key);
  }

  mutable std::mutex mu_;
  std::set<std::string> keys_;  // guarded by mu_
};

}  // namespace berth::csi
