// Pod start benchmark (issue 6, "Benchmark"): berthd against Debian's containerd 1.6
// (+ runc and containerd-shim-runc-v2), in the same run, through the same CRI v1 client
// code (both serve runtime.v1 on a unix socket), with the same CNI config (Debian's
// reference bridge + host-local plugins) and the same image (the fixture busybox from a
// local docker-registry).
//
// For each runtime, after PullImage (not timed), N pods one after another:
//   RunPodSandbox -> CreateContainer (busybox `sleep 3600`) -> StartContainer
// timed per phase and in total ("pod start"); ContainerStatus then checks (untimed) that
// the container is CONTAINER_RUNNING. Then StopPodSandbox and RemovePodSandbox for each,
// timed too. Memory: the daemon's VmRSS when idle (after the pull), and with all N pods
// running the RSS and PSS (/proc/<pid>/smaps_rollup: shared pages divided among their
// users, which is what a static shim binary shared by every pod really costs) of the
// daemon, its shims and the pods' sandbox (pause) processes; the workload containers
// (`sleep 3600`) are not counted. "per pod" = (with pods - idle) / N.
//
// Isolation: the benchmark first moves itself into a network namespace and a mount
// namespace of its own (lo up; the CNI bridge, pod IPs and every mount the daemons make
// live there and vanish with it), and becomes a child subreaper, so the daemonized
// shims are reparented to it and reaped here (not left as zombies of the host's init).
// Each daemon gets its own temp root/state/socket under /tmp (never /var/lib/containerd
// or /run/containerd), is stopped by PID (SIGTERM, SIGKILL after 10 s), and what it
// leaves (mounts or processes naming its dir, cgroup parents) is reported as a leak and
// cleaned up. containerd runs with restrict_oom_score_adj = true and a pause image built
// from the fixture busybox (`sleep` forever) pushed to the same registry.
//
// Usage: berth_bench_pod_start [--pods 50] [--runtime both|berth|containerd] [--keep]
// Needs root, /bin/busybox (busybox-static), docker-registry, containerd, runc,
// containernetworking-plugins. Exit status 1 when a runtime failed or leaked.
#include <fcntl.h>
#include <signal.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <thread>

#include "CLI/CLI.hpp"
#include "common/fs.h"
#include "common/strings.h"
#include "tests/e2e/berthd_process.h"

namespace berth::testing {
namespace {

namespace v1 = ::runtime::v1;
using Clock = std::chrono::steady_clock;

// The workload's and the pause image's argv, also how their processes are recognized.
constexpr char kWorkloadSeconds[] = "3600";
constexpr char kPauseSeconds[] = "2147483647";

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct Phases {
  std::vector<double> run, create, start, total, stop, remove;
};

// Nearest-rank percentile (p in [0, 1]); with 50 samples p99 is the slowest.
double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5));
  return v[i];
}

// KiB from a "Name:  N kB" line of a /proc file; 0 when absent.
uint64_t procKb(const std::string& path, const std::string& key) {
  auto text = fs::readFile(path);
  if (!text.ok()) return 0;
  for (const std::string& line : split(*text, '\n')) {
    if (line.rfind(key + ":", 0) == 0) {
      return std::strtoull(line.c_str() + key.size() + 1, nullptr, 10);
    }
  }
  return 0;
}

struct Proc {
  pid_t pid = 0, ppid = 0;
  char state = '?';
  std::string comm, cmdline;  // cmdline: arguments joined by spaces
};

// Every process of the host (of our pid namespace).
std::map<pid_t, Proc> scanProcs() {
  std::map<pid_t, Proc> out;
  auto entries = fs::listDir("/proc");
  if (!entries.ok()) return out;
  for (const std::string& e : *entries) {
    if (e.empty() || !std::isdigit(static_cast<unsigned char>(e[0]))) continue;
    auto stat = fs::readFile("/proc/" + e + "/stat");
    if (!stat.ok()) continue;
    Proc p;
    p.pid = std::atoi(e.c_str());
    size_t open = stat->find('('), close = stat->rfind(')');
    if (open == std::string::npos || close == std::string::npos || close + 4 > stat->size()) continue;
    p.comm = stat->substr(open + 1, close - open - 1);
    p.state = (*stat)[close + 2];
    p.ppid = std::atoi(stat->c_str() + close + 4);
    std::string cmd = fs::readFile("/proc/" + e + "/cmdline").value_or("");
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    p.cmdline = trim(cmd);
    out[p.pid] = std::move(p);
  }
  return out;
}

// Reaps our zombie children except `keep` (daemons and the registry, which their
// owners wait for): the shims that were reparented to us as subreaper.
void reapOrphans(const std::set<pid_t>& keep) {
  for (const auto& [pid, p] : scanProcs()) {
    if (p.ppid == ::getpid() && p.state == 'Z' && keep.count(pid) == 0) {
      ::waitpid(pid, nullptr, WNOHANG);
    }
  }
}

struct Memory {
  uint64_t rss_kb = 0, pss_kb = 0;
  struct Kind {
    int count = 0;
    uint64_t rss_kb = 0, pss_kb = 0;
  };
  std::map<std::string, Kind> kinds;  // per kind of process: daemon, shim, pause...
};

// The daemon, the processes whose command line names `dir` (its shims) and all their
// descendants, without live workload containers (`sleep 3600`) and zombies.
Memory measure(pid_t daemon, const std::string& dir) {
  Memory m;
  auto procs = scanProcs();
  std::set<pid_t> roots = {daemon};
  for (const auto& [pid, p] : procs) {
    if (p.cmdline.find(dir) != std::string::npos) roots.insert(pid);
  }
  for (const auto& [pid, p] : procs) {
    bool ours = false;
    for (pid_t cur = pid; cur > 1 && !ours; cur = procs.count(cur) ? procs[cur].ppid : 0) {
      ours = roots.count(cur) > 0;
    }
    if (!ours || p.state == 'Z') continue;
    std::string kind = pid == daemon ? "daemon"
                       : p.cmdline.find(strCat("sleep ", kWorkloadSeconds)) != std::string::npos
                           ? "workload"
                       : p.cmdline.find(strCat("sleep ", kPauseSeconds)) != std::string::npos
                           ? "pause"
                           : p.comm;
    Memory::Kind& k = m.kinds[kind];
    ++k.count;
    uint64_t rss = procKb("/proc/" + std::to_string(pid) + "/status", "VmRSS");
    uint64_t pss = procKb("/proc/" + std::to_string(pid) + "/smaps_rollup", "Pss");
    k.rss_kb += rss;
    k.pss_kb += pss;
    if (kind == "workload") continue;
    m.rss_kb += rss;
    m.pss_kb += pss;
  }
  return m;
}

// A CRI daemon as our child: own temp dir, log in <dir>/daemon.log, a gRPC channel once
// the socket answers; stop() by PID, cleanup() removes what it left.
class Daemon {
 public:
  Daemon(std::string name, std::string dir, std::string socket)
      : name_(std::move(name)), dir_(std::move(dir)), socket_(std::move(socket)) {}
  ~Daemon() { stop(); }

  // Starts argv[0] with `argv` and waits (up to 20 s) for the CRI socket to answer.
  bool start(std::vector<std::string> argv) {
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
      int log = ::open((dir_ + "/daemon.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(log, 1);
      ::dup2(log, 2);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      ::execvp(args[0], args.data());
      ::_exit(127);
    }
    // Connect once the socket exists: gRPC's reconnect backoff would otherwise add
    // seconds after an early first attempt.
    for (int i = 0; i < 2000 && !fs::exists(socket_) && alive(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    channel_ = grpc::CreateChannel("unix://" + socket_, grpc::InsecureChannelCredentials());
    runtime_ = v1::RuntimeService::NewStub(channel_);
    images_ = v1::ImageService::NewStub(channel_);
    return alive() && channel_->WaitForConnected(std::chrono::system_clock::now() +
                                                 std::chrono::seconds(20));
  }

  // SIGTERM, then SIGKILL after 10 s; waits for exactly our pid.
  void stop() {
    runtime_.reset();
    images_.reset();
    channel_.reset();
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 200; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  // After stop(): kills processes still naming our dir, unmounts what is left below it,
  // removes the pods' cgroup parent and (unless `keep`) the dir. Returns the leaks found.
  // `keep_pids`: our other children (the registry), never reaped here.
  std::vector<std::string> cleanup(const std::string& cgroup_parent, bool keep,
                                   const std::set<pid_t>& keep_pids) {
    std::vector<std::string> leaks;
    for (int round = 0; round < 20; ++round) {
      std::vector<pid_t> left;
      for (const auto& [pid, p] : scanProcs()) {
        if (p.state != 'Z' && pid != ::getpid() && p.cmdline.find(dir_) != std::string::npos) {
          left.push_back(pid);
        }
      }
      if (left.empty()) break;
      if (round == 0) leaks.push_back(strCat(left.size(), " process(es) still running"));
      for (pid_t pid : left) ::kill(pid, round < 10 ? SIGTERM : SIGKILL);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      reapOrphans(keep_pids);
    }
    std::vector<std::string> mounts;
    for (const auto& line : split(fs::readFile("/proc/self/mountinfo").value_or(""), '\n')) {
      auto f = split(line, ' ');
      if (f.size() > 4 && f[4].rfind(dir_, 0) == 0) mounts.push_back(f[4]);
    }
    if (!mounts.empty()) leaks.push_back(strCat(mounts.size(), " mount(s), first ", mounts[0]));
    std::sort(mounts.rbegin(), mounts.rend());
    for (const auto& m : mounts) ::umount2(m.c_str(), MNT_DETACH);
    // Leaf cgroups first: runtimes remove their pods' cgroups, not the parent we chose.
    for (const std::string& root : fs::listSubdirs("/sys/fs/cgroup").value_or(std::vector<std::string>{})) {
      std::string parent = strCat("/sys/fs/cgroup/", root, cgroup_parent);
      for (const std::string& sub : fs::listSubdirs(parent).value_or(std::vector<std::string>{})) {
        if (::rmdir((parent + "/" + sub).c_str()) == 0) {
          leaks.push_back(strCat("cgroup ", parent, "/", sub));
        }
      }
      ::rmdir(parent.c_str());
    }
    ::rmdir(strCat("/sys/fs/cgroup", cgroup_parent).c_str());
    if (keep) {
      std::printf("%s: kept %s\n", name_.c_str(), dir_.c_str());
    } else {
      (void)fs::removeAll(dir_);
    }
    return leaks;
  }

  bool alive() const { return pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == 0; }
  const std::string& name() const { return name_; }
  const std::string& dir() const { return dir_; }
  pid_t pid() const { return pid_; }
  std::string log() const { return fs::readFile(dir_ + "/daemon.log").value_or(""); }
  v1::RuntimeService::Stub& runtime() { return *runtime_; }
  v1::ImageService::Stub& images() { return *images_; }

 private:
  std::string name_, dir_, socket_;
  pid_t pid_ = -1;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::RuntimeService::Stub> runtime_;
  std::unique_ptr<v1::ImageService::Stub> images_;
};

std::string makeTempDir(const std::string& name) {
  std::string tmpl = strCat("/tmp/berth-bench-", name, "-XXXXXX");
  if (::mkdtemp(tmpl.data()) == nullptr) return "";
  return tmpl;
}

// The same CNI network for both daemons (only the bridge name, the subnet and the IPAM
// state dir differ, so a leftover of one run cannot collide with the other).
void writeConflist(const std::string& dir, const std::string& bridge, const std::string& subnet) {
  (void)fs::mkdirAll(dir + "/net.d");
  (void)fs::writeFileAtomic(
      dir + "/net.d/10-bridge.conflist",
      strCat(R"({"cniVersion":"1.0.0","name":"bench","plugins":[{"type":"bridge","bridge":")",
             bridge, R"(","isGateway":true,"ipMasq":false,"ipam":{"type":"host-local",)",
             R"("dataDir":")", dir, R"(/ipam","ranges":[[{"subnet":")", subnet, R"("}]]}}]})"));
}

std::vector<std::string> berthdArgs(const std::string& dir, const std::string& registry) {
  writeConflist(dir, "berth0", "10.78.0.0/16");
  std::string conf = writeInsecureRegistriesConf(dir, registry);
  // The log level of containerd's config below: no per-request logging for either.
  return {BERTHD_BINARY,    "--root",         dir + "/root",  "--state",
          dir + "/state",   "--listen",       dir + "/cri.sock", "--cni-conf-dir",
          dir + "/net.d",   "--cni-bin-dir",  "/usr/lib/cni", "--registries-conf",
          conf,             "--log-level",    "warn"};
}

std::vector<std::string> containerdArgs(const std::string& dir, const std::string& registry,
                                        const std::string& pause) {
  writeConflist(dir, "ctrd0", "10.79.0.0/16");
  std::string config = strCat(
      "version = 2\n", "root = \"", dir, "/root\"\n", "state = \"", dir, "/state\"\n",
      "disabled_plugins = [\"io.containerd.snapshotter.v1.btrfs\", "
      "\"io.containerd.snapshotter.v1.zfs\", \"io.containerd.snapshotter.v1.devmapper\", "
      "\"io.containerd.snapshotter.v1.aufs\", \"io.containerd.internal.v1.opt\"]\n",
      "[grpc]\n  address = \"", dir, "/cri.sock\"\n", "[ttrpc]\n  address = \"", dir,
      "/cri.sock.ttrpc\"\n", "[debug]\n  level = \"warn\"\n",
      "[plugins.\"io.containerd.grpc.v1.cri\"]\n", "  sandbox_image = \"", pause, "\"\n",
      "  restrict_oom_score_adj = true\n", "  [plugins.\"io.containerd.grpc.v1.cri\".cni]\n",
      "    bin_dir = \"/usr/lib/cni\"\n", "    conf_dir = \"", dir, "/net.d\"\n",
      "  [plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"", registry, "\"]\n",
      "    endpoint = [\"http://", registry, "\"]\n");
  (void)fs::writeFileAtomic(dir + "/config.toml", config);
  return {"/usr/bin/containerd", "--config", dir + "/config.toml"};
}

struct Result {
  std::string name;
  Phases phases;
  Memory idle, loaded;
  int pods = 0;  // pods measured (all N started)
  std::string error;
  std::vector<std::string> leaks;
};

std::string rpcError(const std::string& rpc, const std::string& pod, const grpc::Status& st) {
  return strCat(rpc, pod.empty() ? "" : " (" + pod + ")", ": gRPC code ",
                static_cast<int>(st.error_code()), ": ", st.error_message());
}

// Stops and removes `ids` (timed into `phases` when given); the first error in `error`.
void removePods(Daemon& d, const std::vector<std::string>& ids, Phases* phases,
                std::string& error) {
  for (const std::string& id : ids) {
    auto t0 = Clock::now();
    grpc::ClientContext c1;
    c1.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    v1::StopPodSandboxRequest sr;
    sr.set_pod_sandbox_id(id);
    v1::StopPodSandboxResponse sresp;
    grpc::Status st = d.runtime().StopPodSandbox(&c1, sr, &sresp);
    if (!st.ok() && error.empty()) error = rpcError("StopPodSandbox", id, st);
    auto t1 = Clock::now();
    grpc::ClientContext c2;
    c2.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    v1::RemovePodSandboxRequest rr;
    rr.set_pod_sandbox_id(id);
    v1::RemovePodSandboxResponse rresp;
    grpc::Status st2 = d.runtime().RemovePodSandbox(&c2, rr, &rresp);
    if (!st2.ok() && error.empty()) error = rpcError("RemovePodSandbox", id, st2);
    if (phases != nullptr && st.ok() && st2.ok()) {
      phases->stop.push_back(ms(t1 - t0));
      phases->remove.push_back(ms(Clock::now() - t1));
    }
  }
}

// Starts `pods` pods one after another, measures, removes them. Pods created before an
// error are still removed (untimed), so a failed run leaves no shims behind.
void runPods(Daemon& d, const std::string& image, int pods, Result& r) {
  auto deadline = [] { return std::chrono::system_clock::now() + std::chrono::seconds(60); };
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline());
    v1::PullImageRequest req;
    req.mutable_image()->set_image(image);
    v1::PullImageResponse resp;
    grpc::Status st = d.images().PullImage(&ctx, req, &resp);
    if (!st.ok()) {
      r.error = rpcError("PullImage " + image, "", st);
      return;
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  r.idle = measure(d.pid(), d.dir());
  std::vector<std::string> ids;
  for (int i = 0; i < pods && r.error.empty(); ++i) {
    const std::string name = strCat("bench-", i);
    v1::PodSandboxConfig pc;
    pc.mutable_metadata()->set_name(name);
    pc.mutable_metadata()->set_namespace_("bench");
    pc.mutable_metadata()->set_uid(strCat("bench-uid-", i));
    pc.set_hostname(name);
    pc.set_log_directory(d.dir() + "/logs/" + std::to_string(i));
    pc.mutable_linux()->set_cgroup_parent("/berth-bench-" + d.name());
    auto t0 = Clock::now();
    grpc::ClientContext c1;
    c1.set_deadline(deadline());
    v1::RunPodSandboxRequest rr;
    *rr.mutable_config() = pc;
    v1::RunPodSandboxResponse rresp;
    grpc::Status st = d.runtime().RunPodSandbox(&c1, rr, &rresp);
    if (!st.ok()) {
      r.error = rpcError("RunPodSandbox", name, st);
      break;
    }
    ids.push_back(rresp.pod_sandbox_id());
    auto t1 = Clock::now();
    grpc::ClientContext c2;
    c2.set_deadline(deadline());
    v1::CreateContainerRequest cr;
    cr.set_pod_sandbox_id(rresp.pod_sandbox_id());
    *cr.mutable_sandbox_config() = pc;
    cr.mutable_config()->mutable_metadata()->set_name("sleep");
    cr.mutable_config()->mutable_image()->set_image(image);
    cr.mutable_config()->add_command("/bin/busybox");
    cr.mutable_config()->add_args("sleep");
    cr.mutable_config()->add_args(kWorkloadSeconds);
    cr.mutable_config()->set_log_path("sleep.log");
    v1::CreateContainerResponse cresp;
    st = d.runtime().CreateContainer(&c2, cr, &cresp);
    if (!st.ok()) {
      r.error = rpcError("CreateContainer", name, st);
      break;
    }
    auto t2 = Clock::now();
    grpc::ClientContext c3;
    c3.set_deadline(deadline());
    v1::StartContainerRequest sr;
    sr.set_container_id(cresp.container_id());
    v1::StartContainerResponse sresp;
    st = d.runtime().StartContainer(&c3, sr, &sresp);
    if (!st.ok()) {
      r.error = rpcError("StartContainer", name, st);
      break;
    }
    auto t3 = Clock::now();
    grpc::ClientContext c4;
    c4.set_deadline(deadline());
    v1::ContainerStatusRequest qr;
    qr.set_container_id(cresp.container_id());
    v1::ContainerStatusResponse qresp;
    st = d.runtime().ContainerStatus(&c4, qr, &qresp);
    if (!st.ok()) {
      r.error = rpcError("ContainerStatus", name, st);
      break;
    }
    if (qresp.status().state() != v1::CONTAINER_RUNNING) {
      r.error = strCat("ContainerStatus (", name, "): state ",
                       v1::ContainerState_Name(qresp.status().state()),
                       " after StartContainer, want CONTAINER_RUNNING (exit code ",
                       qresp.status().exit_code(), ", reason \"", qresp.status().reason(),
                       "\")");
      break;
    }
    r.phases.run.push_back(ms(t1 - t0));
    r.phases.create.push_back(ms(t2 - t1));
    r.phases.start.push_back(ms(t3 - t2));
    r.phases.total.push_back(ms(t3 - t0));
  }
  if (r.error.empty()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    r.loaded = measure(d.pid(), d.dir());
    r.pods = pods;
    removePods(d, ids, &r.phases, r.error);
  } else {
    std::string ignored;
    removePods(d, ids, nullptr, ignored);
  }
}

// One runtime, start to cleanup.
Result runOne(const std::string& name, const std::string& registry, const std::string& image,
              int pods, bool keep, const std::set<pid_t>& keep_pids) {
  Result r;
  r.name = name;
  std::string dir = makeTempDir(name);
  if (dir.empty()) {
    r.error = "mkdtemp under /tmp failed";
    return r;
  }
  Daemon d(name, dir, dir + "/cri.sock");
  auto argv = name == "berth" ? berthdArgs(dir, registry)
                              : containerdArgs(dir, registry, registry + "/library/pause:1");
  if (!d.start(argv)) {
    std::string log = d.log();
    r.error = strCat(argv[0], " did not serve CRI on ", dir, "/cri.sock within 20 s; its log",
                     " ends with:\n", log.size() > 2000 ? log.substr(log.size() - 2000) : log);
  } else {
    runPods(d, image, pods, r);
  }
  d.stop();
  reapOrphans(keep_pids);
  r.leaks = d.cleanup("/berth-bench-" + name, keep || !r.error.empty(), keep_pids);
  return r;
}

void printTable(const std::vector<Result>& results) {
  const Result* berth = nullptr;
  const Result* ctrd = nullptr;
  for (const auto& r : results) {
    if (!r.error.empty()) std::printf("%s: FAILED: %s\n", r.name.c_str(), r.error.c_str());
    for (const auto& leak : r.leaks) std::printf("%s: LEAK: %s\n", r.name.c_str(), leak.c_str());
    if (r.name == "berth" && r.pods > 0) berth = &r;
    if (r.name == "containerd" && r.pods > 0) ctrd = &r;
  }
  std::printf("\n%-20s %10s %10s %10s %10s %9s\n", "phase (ms)", "berth p50", "berth p99",
              "ctrd p50", "ctrd p99", "p50 ratio");
  auto row = [&](const char* name, std::vector<double> Phases::*m) {
    auto cell = [&](const Result* r, double p) {
      if (r == nullptr || (r->phases.*m).empty()) return std::string("-");
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%.1f", percentile(r->phases.*m, p));
      return std::string(buf);
    };
    std::string ratio = "-";
    if (berth != nullptr && ctrd != nullptr && !(ctrd->phases.*m).empty()) {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%.2fx",
                    percentile(berth->phases.*m, 0.5) / percentile(ctrd->phases.*m, 0.5));
      ratio = buf;
    }
    std::printf("%-20s %10s %10s %10s %10s %9s\n", name, cell(berth, 0.5).c_str(),
                cell(berth, 0.99).c_str(), cell(ctrd, 0.5).c_str(), cell(ctrd, 0.99).c_str(),
                ratio.c_str());
  };
  row("RunPodSandbox", &Phases::run);
  row("CreateContainer", &Phases::create);
  row("StartContainer", &Phases::start);
  row("pod start (total)", &Phases::total);
  row("StopPodSandbox", &Phases::stop);
  row("RemovePodSandbox", &Phases::remove);
  std::printf("\n%-11s %12s %14s %14s\n", "memory", "idle RSS", "per pod RSS",
              "per pod PSS");
  auto kib = [](const Result& r, uint64_t Memory::*m) {
    return static_cast<double>(static_cast<int64_t>(r.loaded.*m - r.idle.*m)) / r.pods;
  };
  for (const Result* r : {berth, ctrd}) {
    if (r == nullptr) continue;
    std::printf("%-11s %8.1f MiB %10.0f KiB %10.0f KiB\n", r->name.c_str(),
                static_cast<double>(r->idle.rss_kb) / 1024, kib(*r, &Memory::rss_kb),
                kib(*r, &Memory::pss_kb));
  }
  if (berth != nullptr && ctrd != nullptr) {
    std::printf("%-11s %12.2fx %13.2fx %13.2fx\n", "ratio",
                static_cast<double>(berth->idle.rss_kb) / static_cast<double>(ctrd->idle.rss_kb),
                kib(*berth, &Memory::rss_kb) / kib(*ctrd, &Memory::rss_kb),
                kib(*berth, &Memory::pss_kb) / kib(*ctrd, &Memory::pss_kb));
  }
  std::printf("per pod = (with pods - idle) / pods; with pods running, by process kind "
              "(count, RSS / PSS KiB each on average; workload not counted):\n");
  for (const Result* r : {berth, ctrd}) {
    if (r == nullptr) continue;
    std::vector<std::string> kinds;
    for (const auto& [name, k] : r->loaded.kinds) {
      kinds.push_back(strCat(name, " ", k.count, "x ", k.rss_kb / k.count, "/",
                             k.pss_kb / k.count));
    }
    std::printf("  %-11s %s\n", r->name.c_str(), joinStrings(kinds, ", ").c_str());
  }
}

// A private network namespace (lo up) and mount namespace (mounts private, so nothing
// the daemons mount reaches the host's namespace), before any thread starts.
Status isolate() {
  RETURN_IF_ERROR(enterOwnNetworkNamespace());
  if (::unshare(CLONE_NEWNS) != 0) return lastErrnoError("unshare(CLONE_NEWNS)");
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return lastErrnoError("make / private in the benchmark's mount namespace");
  }
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
    return lastErrnoError("prctl(PR_SET_CHILD_SUBREAPER)");
  }
  return absl::OkStatus();
}

int run(int argc, char** argv) {
  CLI::App app{"pod start: berthd vs containerd 1.6 over CRI"};
  int pods = 50;
  std::string which = "both";
  bool keep = false;
  app.add_option("--pods", pods, "pods per runtime")->capture_default_str()->check(
      CLI::PositiveNumber);
  app.add_option("--runtime", which, "both, berth or containerd")
      ->capture_default_str()
      ->check(CLI::IsMember({"both", "berth", "containerd"}));
  app.add_flag("--keep", keep, "keep the daemons' temp dirs (configs, logs) for debugging");
  CLI11_PARSE(app, argc, argv);
  if (::geteuid() != 0) {
    std::fprintf(stderr, "berth_bench_pod_start: needs root (daemons, mounts, namespaces)\n");
    return 2;
  }
  for (const char* tool : {"/usr/bin/containerd", "/usr/bin/containerd-shim-runc-v2",
                           "/usr/sbin/runc", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local"}) {
    if (which != "berth" && ::access(tool, X_OK) != 0 &&
        !(std::string(tool) == "/usr/sbin/runc" && ::access("/usr/bin/runc", X_OK) == 0)) {
      std::fprintf(stderr,
                   "berth_bench_pod_start: %s missing; install containerd, runc and "
                   "containernetworking-plugins (or pass --runtime berth)\n",
                   tool);
      return 2;
    }
  }
  if (Status st = isolate(); !st.ok()) {
    std::fprintf(stderr, "berth_bench_pod_start: %s\n", std::string(st.message()).c_str());
    return 2;
  }
  auto registry = RegistryFixture::start(RegistryFixture::Mode::kPlainHttp);
  if (!registry.ok()) {
    std::fprintf(stderr, "berth_bench_pod_start: local registry: %s\n",
                 std::string(registry.status().message()).c_str());
    return 2;
  }
  auto busybox = standardImage("busybox-multi");
  if (!busybox.ok()) {
    std::fprintf(stderr, "berth_bench_pod_start: fixture busybox image: %s\n",
                 std::string(busybox.status().message()).c_str());
    return 2;
  }
  // The pause image for containerd: the same layers, sleeping forever.
  ImageBuilder pause;
  ImageConfigFields cfg;
  cfg.entrypoint = {"/bin/busybox", "sleep", kPauseSeconds};
  pause.config(cfg);
  for (const BuiltLayer& l : (*busybox)->images[0].layers) pause.addLayer(l);
  auto pause_image = pause.build();
  Status pushed = pause_image.ok()
                      ? (*registry)->push("library/pause", "1", singleImage("pause", *pause_image))
                      : pause_image.status();
  if (pushed.ok()) pushed = (*registry)->push("library/busybox", "1.36", **busybox);
  if (!pushed.ok()) {
    std::fprintf(stderr, "berth_bench_pod_start: pushing the images: %s\n",
                 std::string(pushed.message()).c_str());
    return 2;
  }
  const std::string host = (*registry)->hostPort();
  const std::string image = host + "/library/busybox:1.36";
  std::printf("pod start: %d pods per runtime, image %s, CNI bridge + host-local\n", pods,
              image.c_str());
  std::fflush(stdout);
  std::vector<Result> results;
  for (const std::string name : {"berth", "containerd"}) {
    if (which != "both" && which != name) continue;
    results.push_back(runOne(name, host, image, pods, keep, {(*registry)->pid()}));
  }
  printTable(results);
  int rc = 0;
  for (const auto& r : results) {
    if (!r.error.empty() || !r.leaks.empty()) rc = 1;
  }
  return rc;
}

}  // namespace
}  // namespace berth::testing

int main(int argc, char** argv) { return berth::testing::run(argc, argv); }
