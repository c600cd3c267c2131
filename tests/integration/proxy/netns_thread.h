// Test helper for the proxy apply suites: a dedicated thread living in a fresh network
// namespace (unshare(CLONE_NEWNET) on that thread only, `lo` up), which runs the tasks
// it is given. Objects that bind to the netns of the thread creating them (libnftables
// contexts, ctnetlink handles) are created by a task on it; child processes spawned by a
// task (iptables-restore) start in it. The netns disappears with the thread (nothing
// pins it), so tests clean up even when they fail.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>

#include "common/status.h"

namespace berth::proxy::testing {

class NetnsThread {
 public:
  // Starts the thread and makes its netns; status() says whether that worked.
  NetnsThread();
  ~NetnsThread();
  NetnsThread(const NetnsThread&) = delete;
  NetnsThread& operator=(const NetnsThread&) = delete;

  // OK, or why the netns could not be made (then tasks still run, in the old netns:
  // callers must skip).
  const Status& status() const { return status_; }
  // The inode of the thread's netns.
  ino_t inode() const { return inode_; }

  // Runs `fn` on the thread and waits for it.
  void run(std::function<void()> fn) { post(std::move(fn)).get(); }
  // Queues `fn` on the thread; the future is ready when it has run.
  std::future<void> post(std::function<void()> fn);

 private:
  void loop(std::promise<void>& ready);

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::packaged_task<void()>> tasks_;
  bool stop_ = false;
  Status status_;
  ino_t inode_ = 0;
  std::thread thread_;
};

// The inode of the calling thread's netns.
ino_t currentNetnsInode();

// Brings `lo` up in the calling thread's netns.
Status bringLoopbackUp();

// Empty when the process may create network namespaces (root with CAP_SYS_ADMIN), else
// the reason to skip.
std::string whyNoPrivileges();

}  // namespace berth::proxy::testing
