#include "tests/integration/proxy/netns_thread.h"

#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "common/unique_fd.h"

namespace berth::proxy::testing {

ino_t currentNetnsInode() {
  struct stat st {};
  return ::stat("/proc/thread-self/ns/net", &st) == 0 ? st.st_ino : 0;
}

Status bringLoopbackUp() {
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s.valid()) return lastErrnoError("socket");
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(s.get(), SIOCGIFFLAGS, &ifr) != 0) return lastErrnoError("SIOCGIFFLAGS lo");
  ifr.ifr_flags |= IFF_UP;
  if (::ioctl(s.get(), SIOCSIFFLAGS, &ifr) != 0) return lastErrnoError("SIOCSIFFLAGS lo up");
  return absl::OkStatus();
}

std::string whyNoPrivileges() {
  if (::geteuid() != 0) return "needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN) to create network namespaces";
  return "";
}

NetnsThread::NetnsThread() {
  std::promise<void> ready;
  std::future<void> started = ready.get_future();
  thread_ = std::thread([this, &ready] { loop(ready); });
  started.get();
}

NetnsThread::~NetnsThread() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::future<void> NetnsThread::post(std::function<void()> fn) {
  std::packaged_task<void()> task(std::move(fn));
  std::future<void> done = task.get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_all();
  return done;
}

void NetnsThread::loop(std::promise<void>& ready) {
  if (::unshare(CLONE_NEWNET) != 0) {
    status_ = lastErrnoError("unshare(CLONE_NEWNET)");
  } else {
    status_ = bringLoopbackUp();
  }
  inode_ = currentNetnsInode();
  ready.set_value();
  for (;;) {
    std::packaged_task<void()> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

}  // namespace berth::proxy::testing
