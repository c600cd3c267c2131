// Helpers for the common/kube tests: a temp directory removed at the end, and
// polling for a condition with a deadline.
#pragma once

#include <stdlib.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "common/fs.h"

namespace berth::kube::testing {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/berth-kube-test-XXXXXX";
    path_ = ::mkdtemp(tmpl) != nullptr ? tmpl : "";
  }
  ~TempDir() {
    if (!path_.empty()) (void)fs::removeAll(path_);
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  // Writes `content` to <dir>/<name> atomically (a new inode, as kubelet's updates).
  void write(const std::string& name, const std::string& content) const {
    (void)fs::writeFileAtomic(file(name), content, 0644, fs::Durability::kVolatile);
  }

 private:
  std::string path_;
};

// Polls `done` every 5 ms until it is true or `timeout` passes; returns its last value.
inline bool waitFor(const std::function<bool()>& done,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return done();
}

}  // namespace berth::kube::testing
