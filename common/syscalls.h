// The syscall interface: every privileged or environment-dependent syscall that the
// runtime library makes goes through Syscalls, so unit tests can substitute a recording
// fake (tests/unit/fakes/recording_syscalls.h) and assert on the exact sequence.
// Each call returns the value and errno together (Envoy's SysCallResult habit).
//
// Thread-safety: RealSyscalls is stateless and thread-safe; fakes document their own.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace berth {

// The result of one syscall: `value` as the kernel returned it (-1 on failure) and
// `err` the errno on failure, 0 on success.
template <typename T>
struct SysResult {
  T value;
  int err;
  bool ok() const { return err == 0; }
};
using SysIntResult = SysResult<int>;
using SysLongResult = SysResult<long>;

class Syscalls {
 public:
  virtual ~Syscalls() = default;

  // mount(2): source/target paths, filesystem type, MS_* flags, data string.
  // Null `source`/`fstype`/`data` are passed as nullptr.
  virtual SysIntResult mount(const char* source, const char* target, const char* fstype,
                             unsigned long flags, const void* data) = 0;
  // umount2(2) with MNT_* flags.
  virtual SysIntResult umount2(const char* target, int flags) = 0;
  // pivot_root(2).
  virtual SysIntResult pivotRoot(const char* new_root, const char* put_old) = 0;
  // mkdir(2) with a mode (masked by umask).
  virtual SysIntResult mkdir(const char* path, mode_t mode) = 0;
  // mknod(2).
  virtual SysIntResult mknod(const char* path, mode_t mode, dev_t dev) = 0;
  // symlink(2): creates `linkpath` pointing at `target`.
  virtual SysIntResult symlink(const char* target, const char* linkpath) = 0;
  // open(2); the returned fd belongs to the caller.
  virtual SysIntResult open(const char* path, int flags, mode_t mode) = 0;
  // close(2).
  virtual SysIntResult close(int fd) = 0;
  // chdir(2) / chroot(2).
  virtual SysIntResult chdir(const char* path) = 0;
  virtual SysIntResult chroot(const char* path) = 0;
  // sethostname(2) / setdomainname(2).
  virtual SysIntResult sethostname(const std::string& name) = 0;
  virtual SysIntResult setdomainname(const std::string& name) = 0;
  // setns(2) with a CLONE_NEW* type (0 = any).
  virtual SysIntResult setns(int fd, int nstype) = 0;
  // unshare(2) with CLONE_* flags.
  virtual SysIntResult unshare(int flags) = 0;
  // bpf(2): raw command and attribute union of `size` bytes.
  virtual SysLongResult bpf(int cmd, void* attr, unsigned int size) = 0;
  // kill(2).
  virtual SysIntResult kill(pid_t pid, int sig) = 0;
  // fchdir(2): changes the working directory to the directory open as `fd`.
  virtual SysIntResult fchdir(int fd) = 0;
};

// Makes the real syscalls.
class RealSyscalls final : public Syscalls {
 public:
  // The process-wide instance (stateless, so sharing it is safe).
  static RealSyscalls& get();

  SysIntResult mount(const char* source, const char* target, const char* fstype,
                     unsigned long flags, const void* data) override;
  SysIntResult umount2(const char* target, int flags) override;
  SysIntResult pivotRoot(const char* new_root, const char* put_old) override;
  SysIntResult mkdir(const char* path, mode_t mode) override;
  SysIntResult mknod(const char* path, mode_t mode, dev_t dev) override;
  SysIntResult symlink(const char* target, const char* linkpath) override;
  SysIntResult open(const char* path, int flags, mode_t mode) override;
  SysIntResult close(int fd) override;
  SysIntResult chdir(const char* path) override;
  SysIntResult chroot(const char* path) override;
  SysIntResult sethostname(const std::string& name) override;
  SysIntResult setdomainname(const std::string& name) override;
  SysIntResult setns(int fd, int nstype) override;
  SysIntResult unshare(int flags) override;
  SysLongResult bpf(int cmd, void* attr, unsigned int size) override;
  SysIntResult kill(pid_t pid, int sig) override;
  SysIntResult fchdir(int fd) override;
};

}  // namespace berth
