// create / start / state / kill / delete / pause / resume / list / ps.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/scope_guard.h"
#include "common/strings.h"
#include "runtime/cgroups/manager.h"
#include "runtime/init.h"
#include "runtime/linux/capabilities.h"
#include "runtime/linux/console.h"
#include "runtime/linux/hooks.h"
#include "runtime/linux/namespaces.h"
#include "runtime/linux/process_setup.h"
#include "runtime/linux/seccomp.h"
#include "runtime/runtime.h"
#include "runtime/spawn.h"
#include "runtime/sync.h"

namespace berth::runtime {
namespace {

std::string absolutePath(const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  char cwd[4096];
  if (::getcwd(cwd, sizeof(cwd)) == nullptr) return path;
  return fs::join(cwd, path);
}

// Waits until `pid` is gone (or a zombie), up to `timeout`.
bool waitGone(pid_t pid, uint64_t start_time, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (proc::isAlive(pid, start_time)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    // Reap it if it is our child (run, or create's rollback).
    ::waitpid(pid, nullptr, WNOHANG);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// Checks what the runtime itself needs beyond oci::validateSpec.
Status validateForCreate(const oci::Spec& spec) {
  RETURN_IF_ERROR(oci::validateSpec(spec));
  if (!spec.linux) return invalidArgument("config.json: \"linux\" is required on Linux");
  if (spec.process->capabilities) RETURN_IF_ERROR(caps::validate(*spec.process->capabilities));
  if (spec.linux->seccomp) RETURN_IF_ERROR(seccomp::validateProfile(*spec.linux->seccomp));
  bool has_mount = false;
  for (const auto& n : spec.linux->namespaces) {
    if (n.type == "mount") has_mount = true;
  }
  if (!has_mount) {
    return invalidArgument("linux.namespaces: a \"mount\" namespace is required so the "
                           "container's rootfs and mounts stay out of the host; add "
                           "{\"type\": \"mount\"}");
  }
  return absl::OkStatus();
}

// The device rules the cgroup gets: the config's own rules, then allow rules for every
// linux.devices entry and for the devices every container needs (the runtime-spec
// default devices, /dev/pts/*, /dev/ptmx, /dev/net/tun, and mknod of any device node,
// which stays harmless because reading or writing it is still denied) — the same list
// runc appends, so configs written for runc behave the same.
std::vector<oci::DeviceCgroup> effectiveDeviceRules(const oci::Spec& spec) {
  std::vector<oci::DeviceCgroup> rules;
  if (spec.linux->resources) rules = spec.linux->resources->devices;
  auto allow = [&](const char* type, std::optional<int64_t> major, std::optional<int64_t> minor,
                   const char* access) {
    oci::DeviceCgroup r;
    r.allow = true;
    r.type = type;
    r.major = major;
    r.minor = minor;
    r.access = access;
    rules.push_back(r);
  };
  for (const auto& d : spec.linux->devices) {
    if (d.type == "c" || d.type == "u") allow("c", d.major, d.minor, "rwm");
    if (d.type == "b") allow("b", d.major, d.minor, "rwm");
  }
  allow("c", std::nullopt, std::nullopt, "m");
  allow("b", std::nullopt, std::nullopt, "m");
  allow("c", 1, 3, "rwm");    // /dev/null
  allow("c", 1, 8, "rwm");    // /dev/random
  allow("c", 1, 7, "rwm");    // /dev/full
  allow("c", 5, 0, "rwm");    // /dev/tty
  allow("c", 1, 5, "rwm");    // /dev/zero
  allow("c", 1, 9, "rwm");    // /dev/urandom
  allow("c", 136, std::nullopt, "rwm");  // /dev/pts/*
  allow("c", 5, 2, "rwm");    // /dev/ptmx
  allow("c", 10, 200, "rwm"); // /dev/net/tun
  return rules;
}

}  // namespace

std::unique_ptr<cgroups::Manager> Runtime::cgroupOf(const ContainerRecord& r) const {
  cgroups::Options o;
  o.mount_root = r.cgroup_mount;
  o.path = r.cgroup_path;
  o.container_id = r.state.id;
  o.strict = r.cgroup_strict;
  o.syscalls = &RealSyscalls::get();
  o.logger = logger_;
  return cgroups::newFs2Manager(std::move(o));
}

Runtime::Runtime(RuntimeOptions options, ContainerStore store)
    : options_(std::move(options)), store_(std::move(store)) {
  logger_ = options_.logger ? options_.logger : log::get("runtime");
}

StatusOr<Runtime> Runtime::open(RuntimeOptions options) {
  ASSIGN_OR_RETURN(auto store, ContainerStore::open(options.root));
  return Runtime(std::move(options), std::move(store));
}

oci::Status Runtime::liveStatus(const ContainerRecord& r) const {
  if (r.state.status == oci::Status::kCreating) {
    return proc::isAlive(r.state.pid, r.init_start_time) ? oci::Status::kCreating
                                                          : oci::Status::kStopped;
  }
  if (!proc::isAlive(r.state.pid, r.init_start_time)) return oci::Status::kStopped;
  if (fs::exists(fs::join(store_.dir(r.state.id), "exec.fifo"))) return oci::Status::kCreated;
  auto cg = cgroupOf(r);
  auto frozen = cg->isFrozen();
  if (frozen.ok() && *frozen) return oci::Status::kPaused;
  return oci::Status::kRunning;
}

StatusOr<pid_t> Runtime::create(const CreateOptions& opts, int* local_console) {
  const std::string& id = opts.id;
  auto ctx = [&](const Status& st) { return withContext(st, strCat("create container \"", id, "\"")); };
  if (Status st = ContainerStore::validateId(id); !st.ok()) return ctx(st);

  std::string bundle = absolutePath(opts.bundle.empty() ? "." : opts.bundle);
  auto spec_or = oci::loadSpec(bundle);
  if (!spec_or.ok()) return ctx(spec_or.status());
  oci::Spec spec = std::move(*spec_or);
  if (Status st = validateForCreate(spec); !st.ok()) return ctx(st);
  std::string rootfs = spec.root->path[0] == '/' ? spec.root->path : fs::join(bundle, spec.root->path);
  struct stat rst;
  if (::stat(rootfs.c_str(), &rst) != 0 || !S_ISDIR(rst.st_mode)) {
    return ctx(notFound("root.path: rootfs \"", rootfs,
                        "\" does not exist or is not a directory; unpack an image there or fix root.path"));
  }
  auto plan = ns::makePlan(spec.linux->namespaces);
  if (!plan.ok()) return ctx(plan.status());

  auto cg_mount = cgroups::detectCgroup2Mount();
  if (!cg_mount.ok()) return ctx(cg_mount.status());
  auto cg_path = cgroups::resolveCgroupsPath(spec.linux->cgroupsPath, id);
  if (!cg_path.ok()) return ctx(withContext(cg_path.status(), "linux.cgroupsPath"));

  // From here on every step registers its undo.
  if (Status st = store_.createDir(id); !st.ok()) return ctx(st);
  // Everything the rollback steps touch is declared before the Rollback so it is
  // destroyed after the steps ran.
  std::unique_ptr<cgroups::Manager> cgroup;
  pid_t init_pid = 0;
  Rollback rollback;
  rollback.add([&] { (void)store_.remove(id); });
  std::string dir = store_.dir(id);
  UniqueFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd) return ctx(lastErrnoError(strCat("open \"", dir, "\"")));
  while (::flock(dir_fd.get(), LOCK_EX) != 0 && errno == EINTR) {
  }
  // The init gets its own O_PATH fd of the directory: sharing dir_fd would share the
  // flock (locks belong to the open file description) and block `start` forever.
  UniqueFd init_dir_fd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!init_dir_fd) return ctx(lastErrnoError(strCat("open \"", dir, "\"")));
  std::string fifo = fs::join(dir, "exec.fifo");
  if (::mkfifo(fifo.c_str(), 0622) != 0) return ctx(lastErrnoError(strCat("mkfifo \"", fifo, "\"")));
  ::chmod(fifo.c_str(), 0622);

  ContainerRecord record;
  record.state.ociVersion = spec.ociVersion;
  record.state.id = id;
  record.state.status = oci::Status::kCreating;
  record.state.bundle = bundle;
  record.state.rootfs = rootfs;
  record.state.created = oci::rfc3339Now();
  record.state.annotations = spec.annotations;
  record.cgroup_mount = *cg_mount;
  record.cgroup_path = *cg_path;
  record.cgroup_strict = options_.cgroup_strict;
  record.new_pid_ns = (plan->create_flags & CLONE_NEWPID) != 0;
  if (Status st = store_.saveConfig(id, oci::toJson(spec)); !st.ok()) return ctx(st);

  cgroup = cgroupOf(record);
  if (Status st = cgroup->create(); !st.ok()) return ctx(withContext(st, "create cgroup"));
  rollback.add([&] {
    (void)cgroup->killAll(SIGKILL);
    for (int i = 0; i < 200; ++i) {
      auto e = cgroup->empty();
      if (!e.ok() || *e) break;
      ::waitpid(-1, nullptr, WNOHANG);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    (void)cgroup->destroy();
  });
  {
    oci::Resources resources = spec.linux->resources.value_or(oci::Resources{});
    resources.devices = effectiveDeviceRules(spec);
    if (Status st = cgroup->apply(resources); !st.ok()) {
      return ctx(withContext(st, "apply linux.resources"));
    }
  }

  // Console: connect to the given socket, or make a local pair for `run -t`.
  UniqueFd console_child, console_local;
  if (spec.process->terminal) {
    auto ends = console::openConsoleEnds(
        opts.console_socket, opts.want_local_console,
        "process.terminal is true but no --console-socket was given; pass one, or set "
        "terminal to false");
    if (!ends.ok()) return ctx(ends.status());
    console_child = std::move(ends->child);
    console_local = std::move(ends->local);
  }

  int sp[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0) {
    return ctx(lastErrnoError("sync socketpair"));
  }
  UniqueFd parent_end(sp[0]), child_end(sp[1]);
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);

  auto forked = forkInCgroup(*cgroup, *logger_);
  if (!forked.ok()) return ctx(forked.status());
  pid_t helper = *forked;
  if (helper == 0) {
    parent_end.reset();
    dir_fd.reset();  // the flock must not outlive `create` through the init's copy
    InitContext ic;
    ic.spec = &spec;
    ic.id = id;
    ic.bundle = bundle;
    ic.rootfs = rootfs;
    ic.sync_fd = child_end.get();
    ic.state_dir_fd = init_dir_fd.get();
    ic.console_fd = console_child.get();
    ic.no_pivot = opts.no_pivot;
    ic.no_new_keyring = opts.no_new_keyring;
    ic.preserve_fds = opts.preserve_fds;
    ic.plan = &*plan;
    ic.logger = logger_.get();
    runCreateHelper(ic);
  }
  child_end.reset();
  console_child.reset();
  rollback.add([&] {
    if (init_pid > 0) {
      ::kill(init_pid, SIGKILL);
      ::waitpid(init_pid, nullptr, 0);
    }
  });
  auto reap_helper = [&] {
    int status;
    while (::waitpid(helper, &status, 0) < 0 && errno == EINTR) {
    }
  };
  auto fail = [&](const Status& st) {
    ::kill(helper, SIGKILL);
    reap_helper();
    return ctx(st);
  };

  if (Status st = sync::send(parent_end.get(), sync::Msg::kGo, helper); !st.ok()) return fail(st);
  while (true) {
    auto p = sync::receive(parent_end.get());
    if (!p.ok()) return fail(internalError("namespace helper exited before the init started"));
    if (p->type == sync::Msg::kError) return fail(internalError(p->text));
    if (p->type == sync::Msg::kUsernsReady) {
      if (Status st = ns::writeIdMappings(helper, spec.linux->uidMappings, spec.linux->gidMappings);
          !st.ok()) {
        return fail(st);
      }
      if (Status st = sync::send(parent_end.get(), sync::Msg::kUsernsMapped); !st.ok()) return fail(st);
      continue;
    }
    if (p->type == sync::Msg::kChildPid) {
      init_pid = static_cast<pid_t>(p->value);
      break;
    }
    return fail(internalError("unexpected sync message ", static_cast<uint32_t>(p->type)));
  }
  reap_helper();

  record.state.pid = init_pid;
  auto start_time = proc::startTime(init_pid);
  record.init_start_time = start_time.ok() ? *start_time : 0;
  if (Status st = store_.save(record); !st.ok()) return ctx(st);
  if (spec.process->oomScoreAdj) {
    if (Status st = process::setOomScoreAdj(init_pid, *spec.process->oomScoreAdj, *logger_); !st.ok()) {
      return ctx(st);
    }
  }
  if (Status st = sync::send(parent_end.get(), sync::Msg::kGo, init_pid); !st.ok()) return ctx(st);

  auto init_failed = [&](const Status& st) { return ctx(st); };
  auto p = sync::expect(parent_end.get(), sync::Msg::kCreateRuntime);
  if (!p.ok()) {
    return init_failed(p.status().code() == absl::StatusCode::kUnavailable
                           ? internalError("container init exited during setup")
                           : p.status());
  }
  std::string state_json = oci::hookStateJson(record.state).dump();
  if (spec.hooks) {
    if (Status st = hooks::runHooks(spec.hooks->prestart, state_json, "prestart"); !st.ok()) {
      return init_failed(st);
    }
    if (Status st = hooks::runHooks(spec.hooks->createRuntime, state_json, "createRuntime"); !st.ok()) {
      return init_failed(st);
    }
  }
  if (Status st = sync::send(parent_end.get(), sync::Msg::kHooksDone); !st.ok()) return init_failed(st);
  auto created = sync::expect(parent_end.get(), sync::Msg::kCreated);
  if (!created.ok()) {
    return init_failed(created.status().code() == absl::StatusCode::kUnavailable
                           ? internalError("container init exited during setup")
                           : created.status());
  }

  if (console_local && local_console != nullptr) {
    auto master = console::receiveFd(console_local.get());
    if (!master.ok()) return ctx(withContext(master.status(), "receive terminal"));
    *local_console = master->release();
  }
  record.state.status = oci::Status::kCreated;
  if (Status st = store_.save(record); !st.ok()) return ctx(st);
  if (!opts.pid_file.empty()) {
    if (Status st = fs::writeFileAtomic(absolutePath(opts.pid_file), std::to_string(init_pid), 0644,
                                               fs::Durability::kVolatile);
        !st.ok()) {
      return ctx(withContext(st, "write --pid-file"));
    }
  }
  rollback.commit();
  logger_->debug("created container \"{}\" with init pid {}", id, init_pid);
  return init_pid;
}

Status Runtime::start(const std::string& id) {
  auto ctx = [&](const Status& st) { return withContext(st, strCat("start container \"", id, "\"")); };
  auto lock = store_.lock(id);
  if (!lock.ok()) return ctx(lock.status());
  auto record = store_.load(id);
  if (!record.ok()) return ctx(record.status());
  oci::Status status = liveStatus(*record);
  if (status != oci::Status::kCreated) {
    return ctx(failedPrecondition("container is ", oci::statusName(status),
                                  ", not created; only a created container can be started"));
  }
  std::string fifo = fs::join(store_.dir(id), "exec.fifo");
  UniqueFd fd(::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fd) return ctx(lastErrnoError(strCat("open \"", fifo, "\"")));
  while (true) {
    struct pollfd pfd = {fd.get(), POLLIN, 0};
    int n = ::poll(&pfd, 1, 50);
    if (n > 0 && (pfd.revents & POLLIN)) {
      char c;
      if (::read(fd.get(), &c, 1) == 1) break;
    }
    if (!proc::isAlive(record->state.pid, record->init_start_time)) {
      return ctx(failedPrecondition("container init (pid ", record->state.pid,
                                    ") exited before it could start"));
    }
  }
  ::unlink(fifo.c_str());
  record->state.status = oci::Status::kRunning;
  (void)store_.save(*record);
  auto config = store_.loadConfig(id);
  if (config.ok() && config->contains("hooks")) {
    auto spec = oci::parseSpec(config->dump());
    if (spec.ok() && spec->hooks) {
      std::string state_json = oci::hookStateJson(record->state).dump();
      Status st = hooks::runHooks(spec->hooks->poststart, state_json, "poststart");
      if (!st.ok()) logger_->warn("container \"{}\": {}", id, std::string(st.message()));
    }
  }
  return absl::OkStatus();
}

StatusOr<oci::State> Runtime::state(const std::string& id) {
  auto record = store_.load(id);
  if (!record.ok()) return record.status();
  oci::State st = record->state;
  st.status = liveStatus(*record);
  if (st.status == oci::Status::kStopped) st.pid = 0;
  return st;
}

Status Runtime::kill(const std::string& id, int signal, bool all) {
  auto ctx = [&](const Status& st) { return withContext(st, strCat("kill container \"", id, "\"")); };
  auto record = store_.load(id);
  if (!record.ok()) return ctx(record.status());
  oci::Status status = liveStatus(*record);
  if (all) {
    auto cg = cgroupOf(*record);
    if (status == oci::Status::kPaused && signal == SIGKILL) (void)cg->thaw();
    return withContext(cg->killAll(signal), strCat("kill container \"", id, "\""));
  }
  if (status == oci::Status::kStopped) {
    return ctx(failedPrecondition("container is not running"));
  }
  if (::kill(record->state.pid, signal) != 0) {
    return ctx(lastErrnoError(strCat("signal ", signal, " to init pid ", record->state.pid)));
  }
  return absl::OkStatus();
}

Status Runtime::remove(const std::string& id, bool force) {
  auto ctx = [&](const Status& st) { return withContext(st, strCat("delete container \"", id, "\"")); };
  if (Status st = ContainerStore::validateId(id); !st.ok()) return ctx(st);
  auto lock = store_.lock(id);
  if (!lock.ok()) {
    // Deleting what is already gone with --force is not an error (runc, crun).
    if (force && lock.status().code() == absl::StatusCode::kNotFound) return absl::OkStatus();
    return ctx(lock.status());
  }
  auto record = store_.load(id);
  if (!record.ok()) {
    if (record.status().code() == absl::StatusCode::kNotFound) {
      // A directory without state: a create that crashed half-way. Remove it.
      return store_.remove(id);
    }
    return ctx(record.status());
  }
  oci::Status status = liveStatus(*record);
  if ((status == oci::Status::kRunning || status == oci::Status::kPaused) && !force) {
    return ctx(failedPrecondition("container is ", oci::statusName(status),
                                  ", not stopped; stop it first or use --force"));
  }
  auto cg = cgroupOf(*record);
  if (status != oci::Status::kStopped) {
    if (status == oci::Status::kPaused) (void)cg->thaw();
    (void)cg->killAll(SIGKILL);
    if (proc::isAlive(record->state.pid, record->init_start_time)) ::kill(record->state.pid, SIGKILL);
    if (!waitGone(record->state.pid, record->init_start_time, std::chrono::seconds(10))) {
      return ctx(internalError("init pid ", record->state.pid, " did not exit after SIGKILL"));
    }
  }
  // Leftover processes (no own pid namespace, or daemons escaping init): kill them too.
  for (int i = 0; i < 500; ++i) {
    auto empty = cg->empty();
    if (!empty.ok() || *empty) break;
    (void)cg->killAll(SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (Status st = cg->destroy(); !st.ok() && st.code() != absl::StatusCode::kNotFound) {
    return ctx(withContext(st, "remove cgroup"));
  }
  auto config = store_.loadConfig(id);
  if (config.ok() && config->contains("hooks")) {
    auto spec = oci::parseSpec(config->dump());
    if (spec.ok() && spec->hooks) {
      oci::State st = record->state;
      st.status = oci::Status::kStopped;
      Status hs = hooks::runHooks(spec->hooks->poststop, oci::hookStateJson(st).dump(), "poststop");
      if (!hs.ok()) logger_->warn("container \"{}\": {}", id, std::string(hs.message()));
    }
  }
  return withContext(store_.remove(id), strCat("delete container \"", id, "\""));
}

Status Runtime::pause(const std::string& id) {
  auto record = store_.load(id);
  if (!record.ok()) return withContext(record.status(), strCat("pause container \"", id, "\""));
  oci::Status status = liveStatus(*record);
  if (status != oci::Status::kRunning && status != oci::Status::kCreated) {
    return failedPrecondition("pause container \"", id, "\": container is ",
                              oci::statusName(status), ", not running");
  }
  return withContext(cgroupOf(*record)->freeze(),
                     strCat("pause container \"", id, "\""));
}

Status Runtime::resume(const std::string& id) {
  auto record = store_.load(id);
  if (!record.ok()) return withContext(record.status(), strCat("resume container \"", id, "\""));
  if (liveStatus(*record) != oci::Status::kPaused) {
    return failedPrecondition("resume container \"", id, "\": container is not paused");
  }
  return withContext(cgroupOf(*record)->thaw(),
                     strCat("resume container \"", id, "\""));
}

StatusOr<std::vector<oci::State>> Runtime::list() {
  ASSIGN_OR_RETURN(auto ids, store_.list());
  std::vector<oci::State> out;
  for (const auto& id : ids) {
    auto st = state(id);
    if (st.ok()) out.push_back(std::move(*st));
  }
  return out;
}

StatusOr<cgroups::Stats> Runtime::stats(const std::string& id) {
  auto record = store_.load(id);
  if (!record.ok()) return withContext(record.status(), strCat("stats of container \"", id, "\""));
  return withContext(cgroupOf(*record)->stats(),
                     strCat("stats of container \"", id, "\""));
}

StatusOr<std::vector<pid_t>> Runtime::pids(const std::string& id) {
  auto record = store_.load(id);
  if (!record.ok()) return withContext(record.status(), strCat("ps container \"", id, "\""));
  return cgroupOf(*record)->pids();
}

}  // namespace berth::runtime
