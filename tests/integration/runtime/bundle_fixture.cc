#include "tests/integration/runtime/bundle_fixture.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "common/fs.h"
#include "common/strings.h"

namespace berth::itest {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr const char* kBusybox = "/bin/busybox";

// Sets O_CLOEXEC on both ends of a new pipe.
bool makePipe(int fds[2]) { return ::pipe2(fds, O_CLOEXEC) == 0; }

// Reads everything currently available from a non-blocking fd; returns false at EOF.
bool drain(int fd, std::string& into) {
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      into.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK;
  }
}

int shellStatus(int wstatus) {
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return -1;
}

// `busybox --list`, computed once.
const std::vector<std::string>& busyboxApplets() {
  static const std::vector<std::string> applets = [] {
    CmdResult r = runCommand({kBusybox, "--list"});
    std::vector<std::string> names;
    for (auto& name : split(r.out, '\n', true)) {
      if (name.find('/') == std::string::npos && name != "busybox") names.push_back(name);
    }
    return names;
  }();
  return applets;
}

Status copyFile(const std::string& from, const std::string& to, mode_t mode) {
  ASSIGN_OR_RETURN(std::string data, fs::readFile(from));
  UniqueFd fd(::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd) return lastErrnoError(strCat("create ", to));
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
    if (n < 0) return lastErrnoError(strCat("write ", to));
    done += static_cast<size_t>(n);
  }
  if (::fchmod(fd.get(), mode) != 0) return lastErrnoError(strCat("chmod ", to));
  return absl::OkStatus();
}

std::string readFrom(const std::string& path, off_t offset) {
  auto data = fs::readFile(path);
  if (!data.ok()) return "";
  if (static_cast<size_t>(offset) >= data->size()) return "";
  return data->substr(static_cast<size_t>(offset));
}

off_t fileSize(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_size : 0;
}

// All cgroup hierarchy mount points under /sys/fs/cgroup (v1 controllers, the v2
// "unified" mount, or /sys/fs/cgroup itself on a pure v2 host).
std::vector<std::string> cgroupMounts() {
  std::vector<std::string> out;
  auto mounts = fs::readFile("/proc/self/mountinfo");
  if (!mounts.ok()) return out;
  for (auto& line : split(*mounts, '\n', true)) {
    auto sep = line.find(" - ");
    if (sep == std::string::npos) continue;
    auto fields = split(line.substr(0, sep), ' ', true);
    auto tail = split(line.substr(sep + 3), ' ', true);
    if (fields.size() < 5 || tail.empty()) continue;
    if (tail[0] == "cgroup" || tail[0] == "cgroup2") out.push_back(fields[4]);
  }
  return out;
}

}  // namespace

std::string CmdResult::describe() const {
  return strCat(timed_out ? "TIMED OUT, " : "", "exit ", exit_code, ", stdout: [", out,
                "], stderr: [", err, "]");
}

CmdResult runCommand(const std::vector<std::string>& argv, const RunOptions& opts) {
  CmdResult result;
  int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1}, in_pipe[2] = {-1, -1};
  bool capture_out = opts.stdout_fd < 0, capture_err = opts.stderr_fd < 0;
  bool feed_in = !opts.stdin_data.empty();
  if ((capture_out && !makePipe(out_pipe)) || (capture_err && !makePipe(err_pipe)) ||
      (feed_in && !makePipe(in_pipe))) {
    result.err = strCat("pipe: ", std::strerror(errno));
    return result;
  }
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid == 0) {
    int in = feed_in ? in_pipe[0] : opts.stdin_fd;
    if (in < 0) in = ::open("/dev/null", O_RDONLY);
    int out = capture_out ? out_pipe[1] : opts.stdout_fd;
    int err = capture_err ? err_pipe[1] : opts.stderr_fd;
    // dup2 onto 0/1/2 clears O_CLOEXEC on the copies; dup first if an fd is already
    // a target number to avoid clobbering.
    int tmp_in = ::fcntl(in, F_DUPFD_CLOEXEC, 10);
    int tmp_out = ::fcntl(out, F_DUPFD_CLOEXEC, 10);
    int tmp_err = ::fcntl(err, F_DUPFD_CLOEXEC, 10);
    ::dup2(tmp_in, 0);
    ::dup2(tmp_out, 1);
    ::dup2(tmp_err, 2);
    ::signal(SIGPIPE, SIG_DFL);
    ::execvp(cargv[0], cargv.data());
    ::dprintf(2, "exec %s: %s\n", cargv[0], std::strerror(errno));
    ::_exit(127);
  }
  if (capture_out) ::close(out_pipe[1]);
  if (capture_err) ::close(err_pipe[1]);
  if (feed_in) ::close(in_pipe[0]);
  if (pid < 0) {
    result.err = strCat("fork: ", std::strerror(errno));
    for (int fd : {out_pipe[0], err_pipe[0], in_pipe[1]})
      if (fd >= 0) ::close(fd);
    return result;
  }
  if (feed_in) {
    // Small inputs fit in the pipe buffer; write then close so the command sees EOF.
    (void)!::write(in_pipe[1], opts.stdin_data.data(), opts.stdin_data.size());
    ::close(in_pipe[1]);
  }
  for (int fd : {out_pipe[0], err_pipe[0]})
    if (fd >= 0) ::fcntl(fd, F_SETFL, O_NONBLOCK);

  auto deadline = Clock::now() + opts.timeout;
  int wstatus = 0;
  bool exited = false;
  bool out_open = capture_out, err_open = capture_err;
  while (!exited) {
    std::vector<pollfd> pfds;
    if (out_open) pfds.push_back({out_pipe[0], POLLIN, 0});
    if (err_open) pfds.push_back({err_pipe[0], POLLIN, 0});
    if (!pfds.empty()) {
      ::poll(pfds.data(), pfds.size(), 20);
    } else {
      ::usleep(5000);
    }
    if (out_open) out_open = drain(out_pipe[0], result.out);
    if (err_open) err_open = drain(err_pipe[0], result.err);
    pid_t w = ::waitpid(pid, &wstatus, WNOHANG);
    if (w == pid) {
      exited = true;
    } else if (w < 0 && errno != EINTR) {
      break;
    } else if (Clock::now() > deadline) {
      result.timed_out = true;
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &wstatus, 0);
      exited = true;
    }
  }
  if (out_open) drain(out_pipe[0], result.out);
  if (err_open) drain(err_pipe[0], result.err);
  for (int fd : {out_pipe[0], err_pipe[0]})
    if (fd >= 0) ::close(fd);
  result.exit_code = shellStatus(wstatus);
  if (WIFSIGNALED(wstatus)) result.term_signal = WTERMSIG(wstatus);
  return result;
}

std::string runtimeBinary() {
  const char* env = ::getenv("RUNTIME");
  if (env != nullptr && *env != '\0') return env;
  return BERTH_RUNTIME_BINARY;
}

bool testingBerthRuntime() {
  const char* env = ::getenv("RUNTIME");
  return env == nullptr || *env == '\0';
}

uint64_t capMask(const std::vector<std::string>& names) {
  static const std::map<std::string, int> kCaps = {
      {"CAP_CHOWN", 0},           {"CAP_DAC_OVERRIDE", 1},    {"CAP_DAC_READ_SEARCH", 2},
      {"CAP_FOWNER", 3},          {"CAP_FSETID", 4},          {"CAP_KILL", 5},
      {"CAP_SETGID", 6},          {"CAP_SETUID", 7},          {"CAP_SETPCAP", 8},
      {"CAP_LINUX_IMMUTABLE", 9}, {"CAP_NET_BIND_SERVICE", 10}, {"CAP_NET_BROADCAST", 11},
      {"CAP_NET_ADMIN", 12},      {"CAP_NET_RAW", 13},        {"CAP_IPC_LOCK", 14},
      {"CAP_IPC_OWNER", 15},      {"CAP_SYS_MODULE", 16},     {"CAP_SYS_RAWIO", 17},
      {"CAP_SYS_CHROOT", 18},     {"CAP_SYS_PTRACE", 19},     {"CAP_SYS_PACCT", 20},
      {"CAP_SYS_ADMIN", 21},      {"CAP_SYS_BOOT", 22},       {"CAP_SYS_NICE", 23},
      {"CAP_SYS_RESOURCE", 24},   {"CAP_SYS_TIME", 25},       {"CAP_SYS_TTY_CONFIG", 26},
      {"CAP_MKNOD", 27},          {"CAP_LEASE", 28},          {"CAP_AUDIT_WRITE", 29},
      {"CAP_AUDIT_CONTROL", 30},  {"CAP_SETFCAP", 31},        {"CAP_MAC_OVERRIDE", 32},
      {"CAP_MAC_ADMIN", 33},      {"CAP_SYSLOG", 34},         {"CAP_WAKE_ALARM", 35},
      {"CAP_BLOCK_SUSPEND", 36},  {"CAP_AUDIT_READ", 37},     {"CAP_PERFMON", 38},
      {"CAP_BPF", 39},            {"CAP_CHECKPOINT_RESTORE", 40}};
  uint64_t mask = 0;
  for (auto& n : names) {
    auto it = kCaps.find(n);
    if (it == kCaps.end()) {
      ADD_FAILURE() << "unknown capability " << n;
      continue;
    }
    mask |= uint64_t{1} << it->second;
  }
  return mask;
}

std::string nsLink(const std::string& path) {
  char buf[256];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
  if (n < 0) return "";
  return std::string(buf, static_cast<size_t>(n));
}

// ---------------------------------------------------------------------------
// Bundle

Json Bundle::defaultConfig(const std::vector<std::string>& args) {
  Json caps = {"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"};
  Json config = {
      {"ociVersion", "1.0.2"},
      {"process",
       {{"terminal", false},
        {"user", {{"uid", 0}, {"gid", 0}}},
        {"args", args},
        {"env", {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                 "TERM=xterm"}},
        {"cwd", "/"},
        {"capabilities", {{"bounding", caps}, {"effective", caps}, {"permitted", caps}}},
        {"rlimits", {{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}}},
        {"noNewPrivileges", true}}},
      {"root", {{"path", "rootfs"}, {"readonly", false}}},
      {"hostname", "berth-itest"},
      {"mounts",
       {{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
        {{"destination", "/dev"},
         {"type", "tmpfs"},
         {"source", "tmpfs"},
         {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
        {{"destination", "/dev/pts"},
         {"type", "devpts"},
         {"source", "devpts"},
         {"options",
          {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}}},
        {{"destination", "/dev/shm"},
         {"type", "tmpfs"},
         {"source", "shm"},
         {"options", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}},
        {{"destination", "/dev/mqueue"},
         {"type", "mqueue"},
         {"source", "mqueue"},
         {"options", {"nosuid", "noexec", "nodev"}}},
        {{"destination", "/sys"},
         {"type", "sysfs"},
         {"source", "sysfs"},
         {"options", {"nosuid", "noexec", "nodev", "ro"}}}}},
      {"linux",
       {{"resources", {{"devices", {{{"allow", false}, {"access", "rwm"}}}}}},
        {"namespaces",
         {{{"type", "pid"}}, {{"type", "network"}}, {{"type", "ipc"}}, {{"type", "uts"}},
          {{"type", "mount"}}}},
        {"maskedPaths",
         {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
          "/proc/scsi"}},
        {"readonlyPaths",
         {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}}}}};
  return config;
}

StatusOr<std::unique_ptr<Bundle>> Bundle::create(const std::string& dir) {
  std::unique_ptr<Bundle> b(new Bundle(dir));
  std::string rootfs = b->rootfs();
  for (const char* sub : {"bin", "proc", "sys", "dev", "tmp", "etc", "root"}) {
    RETURN_IF_ERROR(fs::mkdirAll(fs::join(rootfs, sub), 0755));
  }
  ::chmod(fs::join(rootfs, "tmp").c_str(), 01777);
  RETURN_IF_ERROR(copyFile(kBusybox, rootfs + "/bin/busybox", 0755));
  for (auto& applet : busyboxApplets()) {
    std::string link = rootfs + "/bin/" + applet;
    if (::symlink("busybox", link.c_str()) != 0 && errno != EEXIST)
      return lastErrnoError(strCat("symlink ", link));
  }
  RETURN_IF_ERROR(fs::writeFileAtomic(
      rootfs + "/etc/passwd",
      "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
      "itest:x:1000:1000:itest:/tmp:/bin/sh\n"));
  RETURN_IF_ERROR(fs::writeFileAtomic(
      rootfs + "/etc/group",
      "root:x:0:\ntty:x:5:\nnogroup:x:65534:\nitest:x:1000:\n"));
  b->config = defaultConfig({"sh"});
  return b;
}

Status Bundle::writeConfig() const {
  return fs::writeFileAtomic(dir_ + "/config.json", config.dump(2) + "\n");
}

// ---------------------------------------------------------------------------
// ConsoleSocket

StatusOr<std::unique_ptr<ConsoleSocket>> ConsoleSocket::listen(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return lastErrnoError("socket(AF_UNIX)");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return invalidArgument("socket path too long: ", path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return lastErrnoError(strCat("bind ", path));
  if (::listen(fd.get(), 4) != 0) return lastErrnoError(strCat("listen ", path));
  return std::unique_ptr<ConsoleSocket>(new ConsoleSocket(path, std::move(fd)));
}

ConsoleSocket::~ConsoleSocket() { ::unlink(path_.c_str()); }

StatusOr<UniqueFd> ConsoleSocket::receiveMaster(std::chrono::milliseconds timeout) {
  pollfd pfd{fd_.get(), POLLIN, 0};
  if (::poll(&pfd, 1, static_cast<int>(timeout.count())) <= 0)
    return absl::DeadlineExceededError(strCat("no connection on console socket ", path_));
  UniqueFd conn(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!conn) return lastErrnoError(strCat("accept on ", path_));
  pfd = {conn.get(), POLLIN, 0};
  if (::poll(&pfd, 1, static_cast<int>(timeout.count())) <= 0)
    return absl::DeadlineExceededError(strCat("no message on console socket ", path_));
  char data[4096];
  iovec iov{data, sizeof data};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  if (::recvmsg(conn.get(), &msg, MSG_CMSG_CLOEXEC) < 0)
    return lastErrnoError(strCat("recvmsg on ", path_));
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
      return UniqueFd(fd);
    }
  }
  return internalError("console socket message carried no SCM_RIGHTS fd");
}

std::string readPty(int master, const std::string& until, std::chrono::milliseconds timeout) {
  std::string out;
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (!until.empty() && out.find(until) != std::string::npos) break;
    pollfd pfd{master, POLLIN, 0};
    int left = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
    if (::poll(&pfd, 1, std::max(left, 1)) <= 0) break;
    char buf[4096];
    ssize_t n = ::read(master, buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;  // EOF or EIO: every slave fd is closed
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// RuntimeTest

void RuntimeTest::SetUp() {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (runs an OCI runtime)";
  if (::access(kBusybox, X_OK) != 0)
    GTEST_SKIP() << kBusybox << " missing: apt-get install busybox-static";
  std::string bin = runtimeBinary();
  if (bin.find('/') != std::string::npos && ::access(bin.c_str(), X_OK) != 0)
    GTEST_SKIP() << "runtime binary " << bin << " is not executable";
  ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

  char templ[] = "/tmp/berth-itest-XXXXXX";
  ASSERT_NE(::mkdtemp(templ), nullptr) << std::strerror(errno);
  tmp_ = templ;
  // Mapped users (user namespaces, process.user) must be able to reach the rootfs.
  ::chmod(tmp_.c_str(), 0755);
  root_ = tmp_ + "/state";
  ASSERT_TRUE(fs::mkdirAll(root_, 0700).ok());
  ASSERT_TRUE(fs::mkdirAll(tmp_ + "/io", 0755).ok());
  auto b = Bundle::create(tmp_ + "/bundle");
  ASSERT_TRUE(b.ok()) << b.status();
  bundle_ = std::move(*b);
  ready_ = true;
}

void RuntimeTest::TearDown() {
  if (tmp_.empty()) return;
  if (ready_) {
    RunOptions quick;
    quick.timeout = 10s;
    for (auto& id : ids_) {
      if (!stateEntryExists(id)) continue;
      runtime({"kill", id, "KILL"}, quick);
    }
    reapZombies(ids_.empty() ? 0ms : 300ms);
    for (auto& id : ids_) {
      if (!stateEntryExists(id)) continue;
      runtime({"delete", "--force", id}, quick);
    }
    // Whatever a failing runtime left in a test container's cgroup is ours to kill.
    bool strays = false;
    for (auto& id : ids_) {
      for (auto& dir : cgroupDirsFor(id)) {
        auto procs = fs::readFile(dir + "/cgroup.procs");
        if (!procs.ok()) continue;
        for (auto& pid : split(*procs, '\n', true)) {
          strays = true;
          ::kill(std::atoi(pid.c_str()), SIGKILL);
        }
      }
    }
    reapZombies(strays ? 200ms : 0ms);
    for (auto& id : ids_) {
      for (auto& dir : cgroupDirsFor(id)) ::rmdir(dir.c_str());
    }
    for (auto& mnt : cgroupMounts()) ::rmdir((mnt + "/berth-itest").c_str());
  }
  Status removed = fs::removeAll(tmp_);
  if (!removed.ok()) ADD_FAILURE() << "cleanup of " << tmp_ << ": " << removed;
}

void RuntimeTest::reapZombies(std::chrono::milliseconds budget) {
  auto deadline = Clock::now() + budget;
  for (;;) {
    int ws;
    pid_t w = ::waitpid(-1, &ws, WNOHANG);
    if (w > 0) continue;
    if (w < 0) return;  // ECHILD: nothing left
    if (Clock::now() >= deadline) return;
    ::usleep(10000);
  }
}

Bundle& RuntimeTest::newBundle() {
  std::string dir = strCat(tmp_, "/bundle", extra_bundles_.size() + 2);
  auto b = Bundle::create(dir);
  if (!b.ok()) {
    ADD_FAILURE() << b.status();
    return *bundle_;
  }
  extra_bundles_.push_back(std::move(*b));
  return *extra_bundles_.back();
}

std::string RuntimeTest::newId(const std::string& hint) {
  std::string id = strCat("it", ::getpid(), "-", ids_.size(), "-", hint);
  ids_.push_back(id);
  return id;
}

CmdResult RuntimeTest::runtimeWithGlobals(const std::vector<std::string>& globals,
                                          const std::vector<std::string>& args,
                                          const RunOptions& opts) {
  std::vector<std::string> argv = {runtimeBinary(), "--root", root_};
  argv.insert(argv.end(), globals.begin(), globals.end());
  argv.insert(argv.end(), args.begin(), args.end());
  return runCommand(argv, opts);
}

CmdResult RuntimeTest::runtime(const std::vector<std::string>& args, const RunOptions& opts) {
  return runtimeWithGlobals({}, args, opts);
}

void RuntimeTest::prepareConfig(Bundle& b, const std::string& id) {
  if (b.auto_cgroups_path) b.config["linux"]["cgroupsPath"] = cgroupsPathFor(id);
  Status s = b.writeConfig();
  if (!s.ok()) ADD_FAILURE() << s;
}

CmdResult RuntimeTest::run(Bundle& b, const std::string& id, const RunOptions& opts) {
  prepareConfig(b, id);
  return runtime({"run", "--bundle", b.dir(), id}, opts);
}

CmdResult RuntimeTest::runArgs(const std::vector<std::string>& args) {
  bundle().setArgs(args);
  return run(bundle(), newId("run"));
}

CmdResult RuntimeTest::create(Bundle& b, const std::string& id,
                              const std::vector<std::string>& extra,
                              const std::vector<std::string>& globals) {
  prepareConfig(b, id);
  std::string out_path = tmp_ + "/io/" + id + ".out";
  std::string err_path = tmp_ + "/io/" + id + ".err";
  UniqueFd out(::open(out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  UniqueFd err(::open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  off_t out_start = fileSize(out_path), err_start = fileSize(err_path);
  std::vector<std::string> args = {"create", "--bundle", b.dir()};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back(id);
  RunOptions opts;
  opts.stdout_fd = out.get();
  opts.stderr_fd = err.get();
  CmdResult r = runtimeWithGlobals(globals, args, opts);
  r.out = readFrom(out_path, out_start);
  r.err = readFrom(err_path, err_start);
  io_offsets_[id] = {fileSize(out_path), fileSize(err_path)};
  return r;
}

pid_t RuntimeTest::createOrFail(Bundle& b, const std::string& id) {
  CmdResult r = create(b, id);
  if (r.exit_code != 0) {
    ADD_FAILURE() << "create " << id << ": " << r.describe();
    return 0;
  }
  auto st = state(id);
  if (!st.ok()) {
    ADD_FAILURE() << "state " << id << ": " << st.status();
    return 0;
  }
  return (*st).value("pid", 0);
}

pid_t RuntimeTest::startOrFail(Bundle& b, const std::string& id) {
  pid_t pid = createOrFail(b, id);
  if (pid == 0) return 0;
  CmdResult r = start(id);
  if (r.exit_code != 0) {
    ADD_FAILURE() << "start " << id << ": " << r.describe();
    return 0;
  }
  return pid;
}

CmdResult RuntimeTest::kill(const std::string& id, const std::string& sig, bool all) {
  if (all) return runtime({"kill", "--all", id, sig});
  return runtime({"kill", id, sig});
}

CmdResult RuntimeTest::del(const std::string& id, bool force) {
  if (force) return runtime({"delete", "--force", id});
  return runtime({"delete", id});
}

StatusOr<Json> RuntimeTest::state(const std::string& id) {
  CmdResult r = runtime({"state", id});
  if (r.exit_code != 0) return internalError("state ", id, " failed: ", r.describe());
  try {
    return Json::parse(r.out);
  } catch (const std::exception& e) {
    return internalError("state ", id, " printed invalid JSON: ", e.what(), ": ", r.out);
  }
}

std::string RuntimeTest::status(const std::string& id) {
  auto st = state(id);
  if (!st.ok()) return "";
  return (*st).value("status", "");
}

std::string RuntimeTest::waitForStatus(const std::string& id, const std::string& want,
                                       std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  std::string last;
  for (;;) {
    last = status(id);
    if (last == want || Clock::now() > deadline) return last;
    std::this_thread::sleep_for(20ms);
  }
}

CmdResult RuntimeTest::exec(const std::string& id, const std::vector<std::string>& args,
                            const std::vector<std::string>& flags, const RunOptions& opts) {
  std::vector<std::string> argv = {"exec"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.push_back(id);
  argv.insert(argv.end(), args.begin(), args.end());
  return runtime(argv, opts);
}

std::optional<int> RuntimeTest::waitForExit(pid_t pid, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    int ws = 0;
    pid_t w = ::waitpid(pid, &ws, WNOHANG);
    if (w == pid) return shellStatus(ws);
    if (w < 0 && errno == ECHILD) {
      if (::kill(pid, 0) != 0) return -1;
    }
    if (Clock::now() > deadline) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
}

std::string RuntimeTest::containerStdout(const std::string& id) {
  return readFrom(tmp_ + "/io/" + id + ".out", io_offsets_[id].first);
}

std::string RuntimeTest::containerStderr(const std::string& id) {
  return readFrom(tmp_ + "/io/" + id + ".err", io_offsets_[id].second);
}

bool RuntimeTest::stateEntryExists(const std::string& id) const {
  return fs::exists(fs::join(root_, id));
}

std::vector<std::string> RuntimeTest::cgroupDirsFor(const std::string& id) const {
  std::vector<std::string> out;
  for (auto& mnt : cgroupMounts()) {
    std::string dir = mnt + cgroupsPathFor(id);
    if (fs::exists(dir)) out.push_back(dir);
  }
  return out;
}

}  // namespace berth::itest
