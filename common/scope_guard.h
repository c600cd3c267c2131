// Rollback helpers: a ScopeGuard runs its function when it goes out of scope unless
// dismissed. Multi-step creates register rollback steps that run only on failure.
#pragma once

#include <functional>
#include <utility>
#include <vector>

namespace berth {

template <typename F>
class ScopeGuard {
 public:
  explicit ScopeGuard(F fn) : fn_(std::move(fn)) {}
  ScopeGuard(const ScopeGuard&) = delete;
  ScopeGuard& operator=(const ScopeGuard&) = delete;
  ~ScopeGuard() {
    if (active_) fn_();
  }
  void dismiss() { active_ = false; }

 private:
  F fn_;
  bool active_ = true;
};

// Runs registered undo steps in reverse order on destruction unless commit() was called.
class Rollback {
 public:
  Rollback() = default;
  Rollback(const Rollback&) = delete;
  Rollback& operator=(const Rollback&) = delete;
  ~Rollback() {
    if (committed_) return;
    for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) (*it)();
  }
  void add(std::function<void()> step) { steps_.push_back(std::move(step)); }
  void commit() { committed_ = true; }

 private:
  std::vector<std::function<void()>> steps_;
  bool committed_ = false;
};

}  // namespace berth
