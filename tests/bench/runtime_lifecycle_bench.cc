// berth_bench_runtime: container lifecycle latency of OCI runtime CLIs.
//
// Method. One busybox bundle whose process is `true` is prepared once. Each iteration
// runs, for every available runtime in turn (A B A B …, so drift in machine load hits
// all runtimes alike), exactly the same sequence and times it with steady_clock:
//   `create --bundle B --pid-file P <id>`  (stdio /dev/null)
//   `start <id>`
//   waitpid(<pid from P>)                   (this process is a child subreaper, so the
//                                            container init, orphaned when `create`
//                                            exits, is reparented to us and we get its
//                                            exit the moment it happens — no polling of
//                                            `state`)
//   `delete <id>`
// i.e. the full create+start+exit+delete cycle a shim drives. Each runtime first gets
// --warmup untimed cycles; a runtime whose first cycle fails is reported as
// unavailable with what it printed (crun 1.8 refuses hybrid-cgroup hosts). Results are
// per-runtime median and p99 (nearest rank) in ms, and the ratio of berth-runtime's
// median to each other runtime's median.
//
// Usage: berth_bench_runtime [--runtimes berth-runtime,runc,crun] [--iterations 200]
//        [--warmup 3]
// A runtime is "berth-runtime" (the binary built with this bench), a name looked up in
// PATH, or a path. Needs root and /bin/busybox (busybox-static).
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "common/strings.h"
#include "common/unique_fd.h"

namespace berth::bench {
namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

constexpr const char* kBusybox = "/bin/busybox";
constexpr const char* kBerthName = "berth-runtime";
// Longest a runtime command (or the container's `true`) may take before the runtime is
// reported as failing instead of hanging the benchmark.
constexpr std::chrono::seconds kCommandTimeout{30};
// Every container runs in <hierarchy>/berth-bench/bench, removed at the end.
constexpr const char* kCgroupParent = "berth-bench";

struct Cmd {
  int exit_code = -1;
  std::string err;  // stderr (stdout is discarded)
};

// Runs argv with stdin/stdout on /dev/null and stderr captured in a temp file (a file,
// not a pipe, so a container that inherits it cannot keep us waiting).
Cmd runCmd(const std::vector<std::string>& argv, const std::string& err_file) {
  Cmd result;
  UniqueFd err(::open(err_file.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::dup2(err.get(), 2);
    ::execvp(cargv[0], cargv.data());
    ::dprintf(2, "exec %s: %s\n", cargv[0], std::strerror(errno));
    ::_exit(127);
  }
  if (pid < 0) {
    result.err = strCat("fork: ", std::strerror(errno));
    return result;
  }
  int ws = 0;
  auto deadline = Clock::now() + kCommandTimeout;
  for (;;) {
    pid_t w = ::waitpid(pid, &ws, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) break;
    if (Clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &ws, 0);
      result.exit_code = -1;
      result.err = strCat("timed out after ", kCommandTimeout.count(), " s");
      return result;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  result.exit_code = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
  if (result.exit_code != 0) {
    auto text = fs::readFile(err_file);
    if (text.ok()) result.err = std::string(trim(*text));
  }
  return result;
}

// Waits for `pid` to exit: waitpid when it is our child (we are a subreaper), else
// polling until it is gone. Returns false if it still runs after kCommandTimeout.
bool waitExit(pid_t pid) {
  auto deadline = Clock::now() + kCommandTimeout;
  int ws;
  for (;;) {
    pid_t w = ::waitpid(pid, &ws, WNOHANG);
    if (w == pid) return true;
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) break;  // ECHILD: not ours
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  while (::kill(pid, 0) == 0) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

Json benchConfig() {
  Json caps = {"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"};
  return {
      {"ociVersion", "1.0.2"},
      {"process",
       {{"terminal", false},
        {"user", {{"uid", 0}, {"gid", 0}}},
        {"args", {"true"}},
        {"env", {"PATH=/bin"}},
        {"cwd", "/"},
        {"capabilities", {{"bounding", caps}, {"effective", caps}, {"permitted", caps}}},
        {"noNewPrivileges", true}}},
      {"root", {{"path", "rootfs"}, {"readonly", true}}},
      {"hostname", "bench"},
      {"mounts",
       {{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
        {{"destination", "/dev"},
         {"type", "tmpfs"},
         {"source", "tmpfs"},
         {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
        {{"destination", "/dev/pts"},
         {"type", "devpts"},
         {"source", "devpts"},
         {"options", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}}},
        {{"destination", "/dev/shm"},
         {"type", "tmpfs"},
         {"source", "shm"},
         {"options", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}},
        {{"destination", "/sys"},
         {"type", "sysfs"},
         {"source", "sysfs"},
         {"options", {"nosuid", "noexec", "nodev", "ro"}}}}},
      {"linux",
       {{"resources", {{"devices", {{{"allow", false}, {"access", "rwm"}}}}}},
        {"cgroupsPath", "/berth-bench/bench"},
        {"namespaces",
         {{{"type", "pid"}}, {{"type", "network"}}, {{"type", "ipc"}}, {{"type", "uts"}},
          {{"type", "mount"}}}},
        {"maskedPaths", {"/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"}},
        {"readonlyPaths", {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys"}}}}};
}

// Makes <dir>/bundle with a busybox rootfs and config.json. Returns the bundle path.
std::optional<std::string> makeBundle(const std::string& dir) {
  std::string rootfs = dir + "/bundle/rootfs";
  for (const char* sub : {"bin", "proc", "sys", "dev", "tmp", "etc"}) {
    if (!fs::mkdirAll(rootfs + "/" + sub).ok()) return std::nullopt;
  }
  auto data = fs::readFile(kBusybox);
  if (!data.ok() || !fs::writeFileAtomic(rootfs + "/bin/busybox", *data, 0755).ok())
    return std::nullopt;
  for (const char* applet : {"true", "sh"}) {
    if (::symlink("busybox", (rootfs + "/bin/" + applet).c_str()) != 0) return std::nullopt;
  }
  if (!fs::writeFileAtomic(dir + "/bundle/config.json", benchConfig().dump(2)).ok())
    return std::nullopt;
  return dir + "/bundle";
}

struct Runtime {
  std::string name;    // as given on the command line
  std::string binary;  // what we exec
  std::string root;    // its --root state dir
  std::optional<std::string> unavailable;  // reason, when it cannot run here
  std::vector<double> ms;                  // timed cycles
};

// One create+start+wait+delete cycle. Returns the error text, or nullopt on success.
std::optional<std::string> cycle(Runtime& rt, const std::string& bundle,
                                 const std::string& id, const std::string& scratch) {
  std::string pid_file = scratch + "/" + id + ".pid";
  std::string err_file = scratch + "/err";
  std::vector<std::string> base = {rt.binary, "--root", rt.root};
  auto with = [&](std::initializer_list<std::string> rest) {
    std::vector<std::string> argv = base;
    argv.insert(argv.end(), rest);
    return argv;
  };
  Cmd c = runCmd(with({"create", "--bundle", bundle, "--pid-file", pid_file, id}), err_file);
  if (c.exit_code != 0) {
    runCmd(with({"delete", "--force", id}), err_file);
    return strCat("create: ", c.err.empty() ? "failed" : c.err);
  }
  auto text = fs::readFile(pid_file);
  pid_t pid = text.ok() ? std::atoi(text->c_str()) : 0;
  ::unlink(pid_file.c_str());
  if (pid <= 0) {
    runCmd(with({"delete", "--force", id}), err_file);
    return std::string("create succeeded but wrote no --pid-file");
  }
  c = runCmd(with({"start", id}), err_file);
  if (c.exit_code != 0) {
    runCmd(with({"delete", "--force", id}), err_file);
    return strCat("start: ", c.err);
  }
  if (!waitExit(pid)) {
    runCmd(with({"delete", "--force", id}), err_file);
    ::kill(pid, SIGKILL);  // our container's init, if delete could not
    return strCat("container did not exit within ", kCommandTimeout.count(), " s of start");
  }
  c = runCmd(with({"delete", id}), err_file);
  if (c.exit_code != 0) {
    runCmd(with({"delete", "--force", id}), err_file);
    return strCat("delete: ", c.err);
  }
  return std::nullopt;
}

// After a failed cycle: SIGKILLs whatever the failing runtime left in the bench's
// container cgroup (only our own containers live there), then reaps zombies that were
// reparented to us.
void killStrays() {
  for (const char* mnt : {"unified", "pids", "freezer", "systemd", ""}) {
    std::string procs = strCat("/sys/fs/cgroup/", mnt, *mnt ? "/" : "", kCgroupParent,
                               "/bench/cgroup.procs");
    auto text = fs::readFile(procs);
    if (!text.ok()) continue;
    for (auto& pid : split(*text, '\n', true)) ::kill(std::atoi(pid.c_str()), SIGKILL);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  int ws;
  while (::waitpid(-1, &ws, WNOHANG) > 0) {
  }
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  if (p == 50 && v.size() % 2 == 0) return (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

void removeCgroupParents() {
  killStrays();
  for (const char* mnt : {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio",
                          "pids", "systemd", "unified", "hugetlb", "net_cls", "perf_event",
                          ""}) {
    std::string parent = strCat("/sys/fs/cgroup/", mnt, *mnt ? "/" : "", kCgroupParent);
    ::rmdir((parent + "/bench").c_str());
    ::rmdir(parent.c_str());
  }
}

int benchMain(int argc, char** argv) {
  CLI::App app{"Container lifecycle latency (create+start+wait+delete) of OCI runtimes"};
  std::string runtimes_arg = std::string(kBerthName) + ",runc";
  int iterations = 200;
  int warmup = 3;
  std::string berth_binary = BERTH_RUNTIME_BINARY;
  app.add_option("--berth-runtime", berth_binary,
                 "path of the berth-runtime binary to measure (default: the build tree's)");
  app.add_option("--runtimes", runtimes_arg,
                 "comma-separated runtimes: berth-runtime, a name in PATH, or a path");
  app.add_option("--iterations", iterations, "timed cycles per runtime")->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "untimed cycles per runtime first")->check(CLI::NonNegativeNumber);
  CLI11_PARSE(app, argc, argv);

  if (::geteuid() != 0) {
    std::fprintf(stderr, "berth_bench_runtime: needs root to create containers\n");
    return 2;
  }
  if (::access(kBusybox, X_OK) != 0) {
    std::fprintf(stderr, "berth_bench_runtime: %s missing (apt-get install busybox-static)\n",
                 kBusybox);
    return 2;
  }
  ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

  char templ[] = "/tmp/berth-bench-XXXXXX";
  if (::mkdtemp(templ) == nullptr) {
    std::perror("mkdtemp");
    return 2;
  }
  std::string dir = templ;
  ::chmod(dir.c_str(), 0755);
  auto bundle = makeBundle(dir);
  if (!bundle) {
    std::fprintf(stderr, "berth_bench_runtime: cannot build the bundle in %s\n", dir.c_str());
    (void)fs::removeAll(dir);
    return 2;
  }

  std::vector<Runtime> runtimes;
  for (auto& name : split(runtimes_arg, ',', true)) {
    Runtime rt;
    // Shown by base name, so "/tmp/runc" reads as runc.
    rt.name = name.substr(name.rfind('/') + 1);
    rt.binary = name == kBerthName ? berth_binary : name;
    rt.root = strCat(dir, "/root-", runtimes.size());
    (void)fs::mkdirAll(rt.root, 0700);
    runtimes.push_back(std::move(rt));
  }

  // Warm-up, which also finds the runtimes that cannot run here.
  for (size_t r = 0; r < runtimes.size(); ++r) {
    for (int i = 0; i < std::max(warmup, 1) && !runtimes[r].unavailable; ++i) {
      auto err = cycle(runtimes[r], *bundle, strCat("warm", r, "-", i), dir);
      if (err) {
        runtimes[r].unavailable = *err;
        killStrays();
      }
    }
  }
  for (int i = 0; i < iterations; ++i) {
    for (size_t r = 0; r < runtimes.size(); ++r) {
      Runtime& rt = runtimes[r];
      if (rt.unavailable) continue;
      auto t0 = Clock::now();
      auto err = cycle(rt, *bundle, strCat("b", r, "-", i), dir);
      auto t1 = Clock::now();
      if (err) {
        rt.unavailable = strCat("failed at iteration ", i, ": ", *err);
        killStrays();
        continue;
      }
      rt.ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
  }

  std::printf("create+start+wait+delete, %d iterations, busybox `true`\n", iterations);
  std::printf("%-16s %10s %10s %6s\n", "runtime", "median_ms", "p99_ms", "n");
  for (auto& rt : runtimes) {
    if (rt.unavailable && rt.ms.empty()) {
      std::printf("%-16s unavailable: %s\n", rt.name.c_str(), rt.unavailable->c_str());
      continue;
    }
    std::printf("%-16s %10.2f %10.2f %6zu%s%s\n", rt.name.c_str(), percentile(rt.ms, 50),
                percentile(rt.ms, 99), rt.ms.size(), rt.unavailable ? "  (stopped: " : "",
                rt.unavailable ? (*rt.unavailable + ")").c_str() : "");
  }
  const Runtime* berth = nullptr;
  for (auto& rt : runtimes)
    if (rt.name == kBerthName && !rt.ms.empty()) berth = &rt;
  if (berth != nullptr) {
    for (auto& rt : runtimes) {
      if (&rt == berth || rt.ms.empty()) continue;
      std::printf("%s/%s median ratio %.2f\n", berth->name.c_str(), rt.name.c_str(),
                  percentile(berth->ms, 50) / percentile(rt.ms, 50));
    }
  }
  (void)fs::removeAll(dir);
  removeCgroupParents();
  bool any = std::any_of(runtimes.begin(), runtimes.end(),
                         [](const Runtime& rt) { return !rt.ms.empty(); });
  return any ? 0 : 1;
}

}  // namespace
}  // namespace berth::bench

int main(int argc, char** argv) { return berth::bench::benchMain(argc, argv); }
