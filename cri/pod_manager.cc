// PodManager: construction, locks, layout, container events, the exit monitor and
// recovery after a restart. See pod_manager.h.
#include "cri/pod_manager.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/strings.h"
#include "cri/container_spec.h"
#include "cri/pod_manager_internal.h"
#include "runtime/shim/pod_namespaces.h"

extern char** environ;

namespace berth::cri {

namespace v1 = ::runtime::v1;

// ---------------------------------------------------------------------------
// helpers

bool waitGone(pid_t pid, std::chrono::milliseconds timeout) {
  if (pid <= 0) return true;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  // A zombie is gone for us: shims are reparented to init (or a subreaper), which may
  // reap late (seconds, on some inits).
  while ((::kill(pid, 0) == 0 || errno == EPERM) && proc::state(pid) != 'Z') {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

Status unmountIfMounted(const std::string& path) {
  if (::umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    return lastErrnoError(strCat("unmount \"", path, "\""));
  }
  return absl::OkStatus();
}

Status removeNamespacesWithoutShim(const std::string& ns_dir, const std::string& shim_dir) {
  // The shim recorded its pause process (pid + start time) in sandbox.json.
  pid_t pause = 0;
  uint64_t start_time = 0;
  if (auto text = fs::readFile(fs::join(shim_dir, "sandbox.json")); text.ok()) {
    auto j = nlohmann::json::parse(*text, nullptr, false);
    if (j.is_object()) {
      pause = j.value("pause_pid", 0);
      start_time = j.value("pause_start_time", uint64_t{0});
    }
  }
  return shim::removePodNamespaces(ns_dir, pause, start_time);
}

Status removePodDir(const std::string& dir) {
  RETURN_IF_ERROR(unmountIfMounted(fs::join(dir, "shm")));
  return fs::removeAll(dir);
}

namespace {

bool fileExists(const char* path) {
  struct stat st;
  return ::stat(path, &st) == 0;
}

}  // namespace

PodManager::HostFacts PodManager::readHostFacts() {
  HostFacts h;
  h.cgroup_v2 = fileExists("/sys/fs/cgroup/cgroup.controllers");
  // cgroup v2 memory.swap.max (pure or hybrid), or v1 memsw accounting.
  h.swap_available = fileExists("/sys/fs/cgroup/memory.swap.max") ||
                     fileExists("/sys/fs/cgroup/unified/memory.swap.max") ||
                     fileExists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes");
  // Without root berthd cannot lower oom_score_adj below its own.
  if (::geteuid() != 0) {
    if (auto text = fs::readFile("/proc/self/oom_score_adj"); text.ok()) {
      h.min_oom_score_adj = std::atoi(std::string(trim(*text)).c_str());
    }
  }
  return h;
}

int64_t nowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ---------------------------------------------------------------------------
// ContainerEventQueue

std::optional<v1::ContainerEventResponse> ContainerEventQueue::next(
    std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return closed_ || !events_.empty(); });
  if (events_.empty()) return std::nullopt;
  v1::ContainerEventResponse e = std::move(events_.front());
  events_.pop_front();
  return e;
}

void ContainerEventQueue::push(v1::ContainerEventResponse event) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    if (events_.size() >= 1024) events_.pop_front();
    events_.push_back(std::move(event));
  }
  cv_.notify_one();
}

bool ContainerEventQueue::closed() {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_ && events_.empty();
}

void ContainerEventQueue::close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

// ---------------------------------------------------------------------------
// PodManager

PodManager::PodManager(PodManagerOptions options, PodStore* store, image::ImageService* images,
                       cni::PodNetwork* network)
    : options_(std::move(options)), store_(store), images_(images), network_(network) {}

StatusOr<std::unique_ptr<PodManager>> PodManager::create(PodManagerOptions options,
                                                         PodStore* store,
                                                         image::ImageService* images,
                                                         cni::PodNetwork* network) {
  if (options.state_dir.empty()) return invalidArgument("pod manager: state dir is empty");
  for (const auto* bin : {&options.shim_binary, &options.runtime}) {
    if (bin->empty() || ::access(bin->c_str(), X_OK) != 0) {
      return invalidArgument("pod manager: \"", *bin,
                             "\" is not an executable; install berth-shim and berth-runtime "
                             "next to berthd or pass --runtime");
    }
  }
  if (options.runtime_root.empty()) options.runtime_root = fs::join(options.state_dir, "runtime");
  if (options.default_cgroup_parent.empty()) {
    options.default_cgroup_parent = options.systemd_cgroup ? "system.slice" : "/berth";
  }
  for (const char* sub : {"shims", "ns", "pods", "containers", "runtime"}) {
    RETURN_IF_ERROR(fs::mkdirAll(fs::join(options.state_dir, sub), 0711));
  }
  RETURN_IF_ERROR(fs::mkdirAll(options.runtime_root, 0711));
  std::unique_ptr<PodManager> m(new PodManager(std::move(options), store, images, network));
  m->host_ = readHostFacts();
  m->wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (m->wake_fd_ < 0) return lastErrnoError("pod manager: eventfd");
  m->monitor_ = std::thread([p = m.get()] { p->monitorLoop(); });
  return m;
}

PodManager::~PodManager() {
  {
    std::lock_guard<std::mutex> lock(watch_mu_);
    stopping_ = true;
  }
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof(one));
  if (monitor_.joinable()) monitor_.join();
  ::close(wake_fd_);
  std::lock_guard<std::mutex> lock(events_mu_);
  for (auto& q : event_queues_) q->close();
}

namespace {

// The mutex for `id` in `locks` (made on first use; entries whose mutex nobody holds
// any more are pruned now and then). The caller holds the map's own lock.
std::shared_ptr<std::mutex> lockFor(std::map<std::string, std::weak_ptr<std::mutex>>& locks,
                                    const std::string& id) {
  auto& weak = locks[id];
  auto strong = weak.lock();
  if (!strong) {
    strong = std::make_shared<std::mutex>();
    weak = strong;
  }
  if (locks.size() > 256) {
    std::erase_if(locks, [](const auto& kv) { return kv.second.expired(); });
  }
  return strong;
}

}  // namespace

std::shared_ptr<std::mutex> PodManager::podLock(const std::string& pod_id) {
  std::lock_guard<std::mutex> lock(locks_mu_);
  return lockFor(pod_locks_, pod_id);
}

std::shared_ptr<std::mutex> PodManager::containerLock(const std::string& id) {
  std::lock_guard<std::mutex> lock(locks_mu_);
  return lockFor(container_locks_, id);
}

std::string PodManager::shimDir(const std::string& pod_id) const {
  return fs::join(fs::join(options_.state_dir, "shims"), pod_id);
}
std::string PodManager::nsDir(const std::string& pod_id) const {
  return fs::join(fs::join(options_.state_dir, "ns"), pod_id);
}
std::string PodManager::podDir(const std::string& pod_id) const {
  return fs::join(fs::join(options_.state_dir, "pods"), pod_id);
}
std::string PodManager::bundleDir(const std::string& container_id) const {
  return fs::join(fs::join(options_.state_dir, "containers"), container_id);
}

shim::ShimClient PodManager::shimClient(const PodRecord& pod) const {
  return shim::ShimClient(fs::join(pod.shim_dir, "shim.sock"));
}

std::string PodManager::containerCgroupsPath(const PodRecord& pod,
                                             const std::string& container_id) const {
  return ::berth::cri::containerCgroupsPath(pod.cgroup_parent, container_id,
                                            options_.systemd_cgroup);
}

int PodManager::containerPid(const ContainerRecord& c) const {
  if (c.state != v1::CONTAINER_RUNNING) return 0;
  auto pod = store_->getPod(c.pod_id);
  if (!pod.ok()) return 0;
  auto st = shimClient(*pod).state(c.id);
  return st.ok() && st->status == shim::ContainerStatus::kRunning ? st->pid : 0;
}

Status PodManager::runtimeDelete(const std::string& id) const {
  std::vector<std::string> args = {options_.runtime, "--root", options_.runtime_root, "delete",
                                   "--force", id};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return errnoError(rc, strCat("run \"", options_.runtime, " delete ", id, "\""));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return internalError("\"", options_.runtime, " delete --force ", id, "\" failed (status ",
                         status, ")");
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// events

std::shared_ptr<ContainerEventQueue> PodManager::subscribeEvents() {
  auto q = std::make_shared<ContainerEventQueue>();
  std::lock_guard<std::mutex> lock(events_mu_);
  if (events_closed_) {
    q->close();  // a stream that starts during shutdown ends at once
    return q;
  }
  event_queues_.push_back(q);
  return q;
}

void PodManager::unsubscribeEvents(const std::shared_ptr<ContainerEventQueue>& queue) {
  queue->close();
  std::lock_guard<std::mutex> lock(events_mu_);
  std::erase(event_queues_, queue);
}

void PodManager::closeEventStreams() {
  std::lock_guard<std::mutex> lock(events_mu_);
  events_closed_ = true;
  for (auto& q : event_queues_) q->close();
}

void PodManager::emit(v1::ContainerEventType type, const ContainerRecord& c) {
  std::vector<std::shared_ptr<ContainerEventQueue>> queues;
  {
    std::lock_guard<std::mutex> lock(events_mu_);
    queues = event_queues_;
  }
  if (queues.empty()) return;
  v1::ContainerEventResponse e;
  e.set_container_id(c.id);
  e.set_container_event_type(type);
  e.set_created_at(nowNanos());
  auto pod = podSandboxStatus(c.pod_id, false);
  if (pod.ok()) *e.mutable_pod_sandbox_status() = pod->status();
  if (type != v1::CONTAINER_DELETED_EVENT) {
    auto status = containerStatusFromRecord(c);
    *e.add_containers_statuses() = status;
  }
  for (auto& q : queues) q->push(e);
}

// ---------------------------------------------------------------------------
// the exit monitor

void PodManager::watchPod(const PodRecord& pod) {
  auto sub = shimClient(pod).subscribe();
  if (!sub.ok()) {
    log::get("berthd")->warn("pod {}: cannot subscribe to its shim's events: {}",
                             pod.id.substr(0, 13), std::string(sub.status().message()));
    return;
  }
  {
    std::lock_guard<std::mutex> lock(watch_mu_);
    watched_[pod.id] = std::move(*sub);
  }
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof(one));
}

void PodManager::unwatchPod(const std::string& pod_id) {
  {
    std::lock_guard<std::mutex> lock(watch_mu_);
    watched_.erase(pod_id);
  }
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof(one));
}

void PodManager::monitorLoop() {
  for (;;) {
    std::vector<pollfd> fds;
    std::vector<std::string> ids;
    {
      std::lock_guard<std::mutex> lock(watch_mu_);
      if (stopping_) return;
      fds.push_back({wake_fd_, POLLIN, 0});
      ids.emplace_back();
      for (auto& [id, sub] : watched_) {
        fds.push_back({sub.fd(), POLLIN, 0});
        ids.push_back(id);
      }
    }
    int n = ::poll(fds.data(), fds.size(), 1000);
    if (n <= 0) continue;
    if (fds[0].revents != 0) {
      uint64_t v;
      (void)!::read(wake_fd_, &v, sizeof(v));
    }
    for (size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      // Drain what is there; the subscription may have been replaced or removed.
      for (;;) {
        StatusOr<shim::ShimEvent> event = notFound("");
        {
          std::lock_guard<std::mutex> lock(watch_mu_);
          auto it = watched_.find(ids[i]);
          if (it == watched_.end() || it->second.fd() != fds[i].fd) break;
          event = it->second.next(std::chrono::milliseconds(0));
          if (!event.ok() && !absl::IsDeadlineExceeded(event.status())) watched_.erase(it);
        }
        if (event.ok()) {
          onShimEvent(ids[i], *event);
          continue;
        }
        if (!absl::IsDeadlineExceeded(event.status())) onShimGone(ids[i]);
        break;
      }
    }
  }
}

void PodManager::onShimEvent(const std::string& pod_id, const shim::ShimEvent& event) {
  if (event.type != "exit") return;
  auto lock = containerLock(event.container_id);
  std::lock_guard<std::mutex> guard(*lock);
  auto c = store_->getContainer(event.container_id);
  if (!c.ok() || c->pod_id != pod_id) return;
  if (c->state == v1::CONTAINER_EXITED) return;
  applyState(*c, event.state);
}

void PodManager::onShimGone(const std::string& pod_id) {
  // The shim exited (crashed or was killed): its containers are gone with it.
  auto pod = store_->getPod(pod_id);
  if (!pod.ok()) return;
  log::get("berthd")->warn("pod {}: its shim exited; marking its containers exited",
                           pod_id.substr(0, 13));
  auto containers = store_->listContainers(containersOf(pod_id));
  if (!containers.ok()) return;
  for (ContainerRecord c : *containers) {
    if (c.state != v1::CONTAINER_RUNNING && c.state != v1::CONTAINER_CREATED) continue;
    auto lock = containerLock(c.id);
    std::lock_guard<std::mutex> guard(*lock);
    reconcileWithoutShim(*pod, c);
  }
}

void PodManager::reconcileWithoutShim(const PodRecord& pod, ContainerRecord& c) {
  auto exit = shim::readExitRecord(pod.shim_dir, c.id);
  if (exit.ok()) {
    applyState(c, *exit);
    return;
  }
  // The container's processes outlive a dead shim (reparented to init): kill them and
  // drop the runtime's state, so "exited" is true and nothing runs unowned.
  if (Status st = runtimeDelete(c.id); !st.ok()) {
    log::get("berthd")->warn("container {}: cleaning up after its dead shim: {}",
                             c.id.substr(0, 13), std::string(st.message()));
  }
  c.state = v1::CONTAINER_EXITED;
  if (c.finished_at == 0) c.finished_at = nowNanos();
  c.exit_code = 255;
  c.reason = "Unknown";
  c.message = "the pod's shim exited before the container; its exit status is unknown";
  (void)store_->updateContainer(c);
  emit(v1::CONTAINER_STOPPED_EVENT, c);
}

void PodManager::applyState(ContainerRecord& c, const shim::ContainerState& s) {
  const v1::ContainerState before = c.state;
  switch (s.status) {
    case shim::ContainerStatus::kCreated: c.state = v1::CONTAINER_CREATED; break;
    case shim::ContainerStatus::kRunning: c.state = v1::CONTAINER_RUNNING; break;
    case shim::ContainerStatus::kExited: c.state = v1::CONTAINER_EXITED; break;
    case shim::ContainerStatus::kUnknown: c.state = v1::CONTAINER_UNKNOWN; break;
  }
  if (s.started_at_ns) c.started_at = s.started_at_ns;
  if (s.finished_at_ns) c.finished_at = s.finished_at_ns;
  if (c.state == v1::CONTAINER_EXITED) {
    c.exit_code = s.exit_code;
    c.reason = s.oom_killed ? "OOMKilled" : !s.reason.empty() ? s.reason
                                           : s.exit_code == 0 ? "Completed" : "Error";
    if (c.finished_at == 0) c.finished_at = nowNanos();
  }
  Status st = store_->updateContainer(c);
  if (!st.ok()) {
    log::get("berthd")->error("container {}: saving its state failed: {}", c.id.substr(0, 13),
                              std::string(st.message()));
  }
  if (before != c.state) {
    if (c.state == v1::CONTAINER_RUNNING) emit(v1::CONTAINER_STARTED_EVENT, c);
    if (c.state == v1::CONTAINER_EXITED) emit(v1::CONTAINER_STOPPED_EVENT, c);
  }
}

// ---------------------------------------------------------------------------
// recovery

Status PodManager::recover() {
  auto logger = log::get("berthd");
  ASSIGN_OR_RETURN(auto pods, store_->listPods());
  std::set<std::string> known_pods;
  std::set<std::string> known_containers;
  for (PodRecord& pod : pods) {
    known_pods.insert(pod.id);
    auto lock = podLock(pod.id);
    std::lock_guard<std::mutex> guard(*lock);
    auto containers = store_->listContainers(containersOf(pod.id));
    if (!containers.ok()) continue;
    for (auto& c : *containers) known_containers.insert(c.id);
    auto proc = shim::findShim(pod.shim_dir);
    if (proc.ok()) {
      // Adopt: events from now on, and the state of every container as the shim sees it.
      watchPod(pod);
      auto states = shimClient(pod).listContainers();
      std::map<std::string, shim::ContainerState> by_id;
      if (states.ok()) {
        for (auto& s : *states) by_id[s.id] = s;
      }
      for (ContainerRecord& c : *containers) {
        auto clock = containerLock(c.id);
        std::lock_guard<std::mutex> cguard(*clock);
        auto it = by_id.find(c.id);
        if (it != by_id.end()) {
          applyState(c, it->second);
        } else if (c.state == v1::CONTAINER_RUNNING || c.state == v1::CONTAINER_CREATED) {
          reconcileWithoutShim(pod, c);
        }
      }
      logger->info("adopted pod {} (shim pid {}, {} containers)", pod.id.substr(0, 13),
                   proc->pid, containers->size());
      continue;
    }
    // No shim: the pod cannot run anything any more.
    for (ContainerRecord& c : *containers) {
      if (c.state == v1::CONTAINER_RUNNING || c.state == v1::CONTAINER_CREATED) {
        auto clock = containerLock(c.id);
        std::lock_guard<std::mutex> cguard(*clock);
        reconcileWithoutShim(pod, c);
      }
    }
    if (pod.state == v1::SANDBOX_READY) {
      pod.state = v1::SANDBOX_NOTREADY;
      (void)store_->updatePod(pod);
      logger->warn("pod {}: its shim is gone; pod marked NOTREADY", pod.id.substr(0, 13));
    }
  }
  // Leftovers of calls a crash interrupted: bundles and writable snapshots of
  // containers that were never recorded, pod dirs of pods that were never recorded.
  auto bundles = fs::listSubdirs(fs::join(options_.state_dir, "containers"));
  if (bundles.ok()) {
    for (const std::string& id : *bundles) {
      if (known_containers.count(id)) continue;
      logger->info("removing leftover container {} of an interrupted create", id.substr(0, 13));
      (void)runtimeDelete(id);
      (void)unmountIfMounted(fs::join(bundleDir(id), "rootfs"));
      (void)images_->snapshotter().removeActive(id);
      (void)fs::removeAll(bundleDir(id));
    }
  }
  for (const char* sub : {"pods", "shims", "ns"}) {
    auto dirs = fs::listSubdirs(fs::join(options_.state_dir, sub));
    if (!dirs.ok()) continue;
    for (const std::string& id : *dirs) {
      if (known_pods.count(id)) continue;
      const std::string dir = fs::join(fs::join(options_.state_dir, sub), id);
      logger->info("removing leftover {} of pod {}", dir, id.substr(0, 13));
      if (std::string(sub) == "shims") {
        auto proc = shim::findShim(dir);
        if (proc.ok()) {
          (void)shim::ShimClient(fs::join(dir, "shim.sock")).shutdown(true);
          waitGone(proc->pid, std::chrono::seconds(5));
        }
        (void)fs::removeAll(dir);
      } else if (std::string(sub) == "ns") {
        (void)removeNamespacesWithoutShim(dir, shimDir(id));
      } else {
        (void)removePodDir(dir);
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace berth::cri
