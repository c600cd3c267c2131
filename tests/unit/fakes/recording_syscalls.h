// A recording fake of berth::Syscalls for unit tests: every call is appended to
// calls() as one readable line ("mount(proc, /r/proc, proc, 0xe, -)"), and each call
// returns success unless a failure was scripted with failOn(). Keep a typed reference
// to this fake in tests instead of downcasting.
// Thread-safety: not thread-safe; one test thread.
#pragma once

#include <cerrno>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "common/strings.h"
#include "common/syscalls.h"

namespace berth::testing {

class RecordingSyscalls : public Syscalls {
 public:
  // Every call made so far, in order.
  const std::vector<std::string>& calls() const { return calls_; }
  void clear() { calls_.clear(); }

  // Makes the next calls whose recorded line starts with `prefix` fail with `err`.
  void failOn(const std::string& prefix, int err) { failures_[prefix] = err; }

  // The value returned by successful open() calls (incremented each time).
  int next_fd = 100;

  SysIntResult mount(const char* source, const char* target, const char* fstype,
                     unsigned long flags, const void* data) override {
    char hex[32];
    snprintf(hex, sizeof(hex), "0x%lx", flags);
    return record(strCat("mount(", s(source), ", ", s(target), ", ", s(fstype), ", ",
                               hex, ", ", s(static_cast<const char*>(data)), ")"));
  }
  SysIntResult umount2(const char* target, int flags) override {
    return record(strCat("umount2(", s(target), ", ", flags, ")"));
  }
  SysIntResult pivotRoot(const char* new_root, const char* put_old) override {
    return record(strCat("pivot_root(", s(new_root), ", ", s(put_old), ")"));
  }
  SysIntResult mkdir(const char* path, mode_t mode) override {
    return record(strCat("mkdir(", s(path), ", 0", hex(mode), ")"));
  }
  SysIntResult mknod(const char* path, mode_t mode, dev_t dev) override {
    return record(strCat("mknod(", s(path), ", 0", hex(mode), ", ", dev, ")"));
  }
  SysIntResult symlink(const char* target, const char* linkpath) override {
    return record(strCat("symlink(", s(target), ", ", s(linkpath), ")"));
  }
  SysIntResult open(const char* path, int flags, mode_t mode) override {
    auto r = record(strCat("open(", s(path), ", 0x", hex(flags), ", 0",
                                 hex(mode), ")"));
    if (r.ok()) r.value = next_fd++;
    return r;
  }
  SysIntResult close(int fd) override { return record(strCat("close(", fd, ")")); }
  SysIntResult chdir(const char* path) override {
    return record(strCat("chdir(", s(path), ")"));
  }
  SysIntResult chroot(const char* path) override {
    return record(strCat("chroot(", s(path), ")"));
  }
  SysIntResult sethostname(const std::string& name) override {
    return record(strCat("sethostname(", name, ")"));
  }
  SysIntResult setdomainname(const std::string& name) override {
    return record(strCat("setdomainname(", name, ")"));
  }
  SysIntResult setns(int fd, int nstype) override {
    return record(strCat("setns(", fd, ", 0x", hex(nstype), ")"));
  }
  SysIntResult unshare(int flags) override {
    return record(strCat("unshare(0x", hex(flags), ")"));
  }
  SysLongResult bpf(int cmd, void* /*attr*/, unsigned int size) override {
    auto r = record(strCat("bpf(", cmd, ", ", size, ")"));
    return {r.value, r.err};
  }
  SysIntResult kill(pid_t pid, int sig) override {
    return record(strCat("kill(", pid, ", ", sig, ")"));
  }
  SysIntResult fchdir(int fd) override { return record(strCat("fchdir(", fd, ")")); }

 protected:
  SysIntResult record(std::string line) {
    for (const auto& [prefix, err] : failures_) {
      if (line.rfind(prefix, 0) == 0) {
        calls_.push_back(line + " = " + std::to_string(-err));
        return {-1, err};
      }
    }
    calls_.push_back(std::move(line));
    return {0, 0};
  }
  static std::string s(const char* p) { return p == nullptr ? "-" : p; }

  std::vector<std::string> calls_;
  std::map<std::string, int> failures_;
};

}  // namespace berth::testing
