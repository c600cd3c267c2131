#include "common/syscalls.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace berth {
namespace {
SysIntResult wrap(int rc) { return {rc, rc < 0 ? errno : 0}; }
}  // namespace

RealSyscalls& RealSyscalls::get() {
  static RealSyscalls instance;
  return instance;
}

SysIntResult RealSyscalls::mount(const char* source, const char* target,
                                 const char* fstype, unsigned long flags,
                                 const void* data) {
  return wrap(::mount(source, target, fstype, flags, data));
}
SysIntResult RealSyscalls::umount2(const char* target, int flags) {
  return wrap(::umount2(target, flags));
}
SysIntResult RealSyscalls::pivotRoot(const char* new_root, const char* put_old) {
  return wrap(static_cast<int>(::syscall(SYS_pivot_root, new_root, put_old)));
}
SysIntResult RealSyscalls::mkdir(const char* path, mode_t mode) {
  return wrap(::mkdir(path, mode));
}
SysIntResult RealSyscalls::mknod(const char* path, mode_t mode, dev_t dev) {
  return wrap(::mknod(path, mode, dev));
}
SysIntResult RealSyscalls::symlink(const char* target, const char* linkpath) {
  return wrap(::symlink(target, linkpath));
}
SysIntResult RealSyscalls::open(const char* path, int flags, mode_t mode) {
  return wrap(::open(path, flags, mode));
}
SysIntResult RealSyscalls::close(int fd) { return wrap(::close(fd)); }
SysIntResult RealSyscalls::chdir(const char* path) { return wrap(::chdir(path)); }
SysIntResult RealSyscalls::chroot(const char* path) { return wrap(::chroot(path)); }
SysIntResult RealSyscalls::sethostname(const std::string& name) {
  return wrap(::sethostname(name.data(), name.size()));
}
SysIntResult RealSyscalls::setdomainname(const std::string& name) {
  return wrap(::setdomainname(name.data(), name.size()));
}
SysIntResult RealSyscalls::setns(int fd, int nstype) { return wrap(::setns(fd, nstype)); }
SysIntResult RealSyscalls::unshare(int flags) { return wrap(::unshare(flags)); }
SysLongResult RealSyscalls::bpf(int cmd, void* attr, unsigned int size) {
  long rc = ::syscall(SYS_bpf, cmd, attr, size);
  return {rc, rc < 0 ? errno : 0};
}
SysIntResult RealSyscalls::kill(pid_t pid, int sig) { return wrap(::kill(pid, sig)); }
SysIntResult RealSyscalls::fchdir(int fd) { return wrap(::fchdir(fd)); }

}  // namespace berth
