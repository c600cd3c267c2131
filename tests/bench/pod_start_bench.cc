// Pod start benchmark (issue 6, "Benchmark"): berthd against Debian's containerd 1.6
// (+ runc and containerd-shim-runc-v2), in the same run, through the same CRI v1 client
// code (both serve runtime.v1 on a unix socket), with the same CNI config (Debian's
// reference bridge + host-local plugins) and the same image (the fixture busybox from a
// local docker-registry).
//
// For each runtime, after PullImage (not timed), N pods one after another:
//   RunPodSandbox -> CreateContainer (busybox `sleep`) -> StartContainer
// timed per phase and in total ("pod start"); then StopPodSandbox and RemovePodSandbox
// for each. Memory: the daemon's VmRSS when idle (after the pull), and the sum of RSS
// and PSS (/proc/<pid>/smaps_rollup: shared pages divided among their users, which is
// what a static shim binary shared by every pod really costs) of the daemon and its
// shims with all N pods running; "per pod" = (with pods - idle) / N.
//
// Everything runs in a network namespace of the benchmark's own (bridge, IPs, pods);
// each daemon gets its own temp root/state/socket (never /var/lib/containerd or
// /run/containerd) and is stopped by PID afterwards. containerd runs with
// restrict_oom_score_adj = true and a pause image built from the fixture busybox
// (`sleep` forever) pushed to the same registry.
//
// Usage: berth_bench_pod_start [--pods 50] [--runtime both|berth|containerd]
// Needs root, /bin/busybox (busybox-static), docker-registry, containerd, runc,
// containernetworking-plugins.
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

#include "CLI/CLI.hpp"
#include "common/fs.h"
#include "common/strings.h"
#include "tests/e2e/berthd_process.h"

namespace berth::testing {
namespace {

namespace v1 = ::runtime::v1;
using Clock = std::chrono::steady_clock;

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct Phases {
  std::vector<double> run, create, start, total, stop, remove;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5));
  return v[i];
}

// KiB from a "Name:  N kB" line of a /proc file.
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

struct Memory {
  uint64_t rss_kb = 0;
  uint64_t pss_kb = 0;
  int processes = 0;
};

// The daemon plus every process whose command line names `dir` (its shims).
Memory measure(pid_t daemon, const std::string& dir) {
  Memory m;
  auto entries = fs::listDir("/proc");
  if (!entries.ok()) return m;
  for (const std::string& e : *entries) {
    if (e.empty() || !std::isdigit(static_cast<unsigned char>(e[0]))) continue;
    pid_t pid = std::atoi(e.c_str());
    bool ours = pid == daemon;
    if (!ours) {
      auto cmd = fs::readFile("/proc/" + e + "/cmdline");
      ours = cmd.ok() && cmd->find(dir) != std::string::npos &&
             (cmd->find("shim") != std::string::npos);
    }
    if (!ours) continue;
    m.rss_kb += procKb("/proc/" + e + "/status", "VmRSS");
    m.pss_kb += procKb("/proc/" + e + "/smaps_rollup", "Pss");
    ++m.processes;
  }
  return m;
}

// A CRI endpoint: berthd or containerd as our child.
class Daemon {
 public:
  virtual ~Daemon() = default;
  virtual std::string name() const = 0;
  virtual pid_t pid() const = 0;
  virtual std::string dir() const = 0;
  virtual v1::RuntimeService::Stub& runtime() = 0;
  virtual v1::ImageService::Stub& images() = 0;
  virtual std::string cgroupParent() const = 0;
};

class BerthDaemon : public Daemon {
 public:
  BerthDaemon(const std::string& registry) {
    char tmpl[] = "/tmp/berth-bench-pods-XXXXXX";
    std::string dir = ::mkdtemp(tmpl);
    writeInsecureRegistriesConf(dir, registry);
    writeBridgeConflist(dir, "10.78.0.0/24");
    berthd_ = std::make_unique<Berthd>(
        std::vector<std::string>{"--cni-bin-dir", "/usr/lib/cni", "--registries-conf",
                                 dir + "/registries.conf"},
        dir);
  }
  bool ready() const { return berthd_->ready(); }
  std::string log() const { return berthd_->log(); }
  std::string name() const override { return "berth"; }
  pid_t pid() const override { return berthd_->pid(); }
  std::string dir() const override { return berthd_->dir(); }
  v1::RuntimeService::Stub& runtime() override { return berthd_->runtime(); }
  v1::ImageService::Stub& images() override { return berthd_->images(); }
  std::string cgroupParent() const override { return "/berth-bench-berth"; }

 private:
  std::unique_ptr<Berthd> berthd_;
};

class ContainerdDaemon : public Daemon {
 public:
  ContainerdDaemon(const std::string& registry, const std::string& pause) {
    char tmpl[] = "/tmp/berth-bench-ctrd-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    socket_ = dir_ + "/containerd.sock";
    (void)fs::mkdirAll(dir_ + "/net.d");
    (void)fs::writeFileAtomic(
        dir_ + "/net.d/10-bridge.conflist",
        strCat(R"({"cniVersion":"1.0.0","name":"bench","plugins":[{"type":"bridge",)",
               R"("bridge":"ctrd0","isGateway":true,"ipMasq":false,"ipam":{"type":)",
               R"("host-local","dataDir":")", dir_, R"(/ipam","ranges":[[{"subnet":)",
               R"("10.79.0.0/24"}]]}}]})"));
    std::string config = strCat(
        "version = 2\n", "root = \"", dir_, "/root\"\n", "state = \"", dir_, "/state\"\n",
        "disabled_plugins = [\"io.containerd.snapshotter.v1.btrfs\", "
        "\"io.containerd.snapshotter.v1.zfs\", \"io.containerd.snapshotter.v1.devmapper\", "
        "\"io.containerd.snapshotter.v1.aufs\", \"io.containerd.internal.v1.opt\"]\n",
        "[grpc]\n  address = \"", socket_, "\"\n", "[ttrpc]\n  address = \"", socket_,
        ".ttrpc\"\n", "[debug]\n  level = \"warn\"\n",
        "[plugins.\"io.containerd.grpc.v1.cri\"]\n", "  sandbox_image = \"", pause, "\"\n",
        "  restrict_oom_score_adj = true\n",
        "  [plugins.\"io.containerd.grpc.v1.cri\".cni]\n", "    bin_dir = \"/usr/lib/cni\"\n",
        "    conf_dir = \"", dir_, "/net.d\"\n",
        "  [plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"", registry, "\"]\n",
        "    endpoint = [\"http://", registry, "\"]\n");
    (void)fs::writeFileAtomic(dir_ + "/config.toml", config);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
      int log = ::open((dir_ + "/containerd.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(log, 1);
      ::dup2(log, 2);
      std::string cfg = dir_ + "/config.toml";
      ::execlp("containerd", "containerd", "--config", cfg.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 2000 && !fs::exists(socket_); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    channel_ = grpc::CreateChannel("unix://" + socket_, grpc::InsecureChannelCredentials());
    ready_ = channel_->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(20));
    runtime_ = v1::RuntimeService::NewStub(channel_);
    images_ = v1::ImageService::NewStub(channel_);
  }
  ~ContainerdDaemon() override {
    runtime_.reset();
    images_.reset();
    channel_.reset();
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      for (int i = 0; i < 100; ++i) {
        if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
          pid_ = -1;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
      }
    }
    // containerd's overlay mounts of removed containers are gone; its root may still
    // hold a tmpmount or two: unmount what is left below the dir, then remove it.
    auto info = fs::readFile("/proc/self/mountinfo");
    if (info.ok()) {
      std::vector<std::string> mounts;
      for (const auto& line : split(*info, '\n')) {
        auto f = split(line, ' ');
        if (f.size() > 4 && f[4].rfind(dir_, 0) == 0) mounts.push_back(f[4]);
      }
      std::sort(mounts.rbegin(), mounts.rend());
      for (const auto& m : mounts) ::umount2(m.c_str(), MNT_DETACH);
    }
    (void)fs::removeAll(dir_);
  }
  bool ready() const { return ready_; }
  std::string name() const override { return "containerd"; }
  pid_t pid() const override { return pid_; }
  std::string dir() const override { return dir_; }
  v1::RuntimeService::Stub& runtime() override { return *runtime_; }
  v1::ImageService::Stub& images() override { return *images_; }
  std::string cgroupParent() const override { return "/berth-bench-containerd"; }

 private:
  std::string dir_, socket_;
  pid_t pid_ = -1;
  bool ready_ = false;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::RuntimeService::Stub> runtime_;
  std::unique_ptr<v1::ImageService::Stub> images_;
};

struct Result {
  std::string name;
  Phases phases;
  Memory idle, loaded;
  int pods = 0;
  std::string error;
};

Result runOne(Daemon& d, const std::string& image, int pods) {
  Result r;
  r.name = d.name();
  auto fail = [&](const std::string& what, const grpc::Status& st) {
    r.error = strCat(what, ": ", st.error_message());
    return r;
  };
  {
    grpc::ClientContext ctx;
    v1::PullImageRequest req;
    req.mutable_image()->set_image(image);
    v1::PullImageResponse resp;
    grpc::Status st = d.images().PullImage(&ctx, req, &resp);
    if (!st.ok()) return fail("PullImage", st);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  r.idle = measure(d.pid(), d.dir());
  std::vector<std::string> ids;
  for (int i = 0; i < pods; ++i) {
    v1::PodSandboxConfig pc;
    pc.mutable_metadata()->set_name(strCat("bench-", i));
    pc.mutable_metadata()->set_namespace_("bench");
    pc.mutable_metadata()->set_uid(strCat("bench-uid-", i));
    pc.set_hostname(strCat("bench-", i));
    pc.set_log_directory(d.dir() + "/logs/" + std::to_string(i));
    pc.mutable_linux()->set_cgroup_parent(d.cgroupParent());
    auto t0 = Clock::now();
    grpc::ClientContext c1;
    v1::RunPodSandboxRequest rr;
    *rr.mutable_config() = pc;
    v1::RunPodSandboxResponse rresp;
    grpc::Status st = d.runtime().RunPodSandbox(&c1, rr, &rresp);
    if (!st.ok()) return fail("RunPodSandbox", st);
    ids.push_back(rresp.pod_sandbox_id());
    auto t1 = Clock::now();
    grpc::ClientContext c2;
    v1::CreateContainerRequest cr;
    cr.set_pod_sandbox_id(rresp.pod_sandbox_id());
    *cr.mutable_sandbox_config() = pc;
    cr.mutable_config()->mutable_metadata()->set_name("sleep");
    cr.mutable_config()->mutable_image()->set_image(image);
    cr.mutable_config()->add_command("/bin/busybox");
    cr.mutable_config()->add_args("sleep");
    cr.mutable_config()->add_args("3600");
    cr.mutable_config()->set_log_path("sleep.log");
    v1::CreateContainerResponse cresp;
    st = d.runtime().CreateContainer(&c2, cr, &cresp);
    if (!st.ok()) return fail("CreateContainer", st);
    auto t2 = Clock::now();
    grpc::ClientContext c3;
    v1::StartContainerRequest sr;
    sr.set_container_id(cresp.container_id());
    v1::StartContainerResponse sresp;
    st = d.runtime().StartContainer(&c3, sr, &sresp);
    if (!st.ok()) return fail("StartContainer", st);
    auto t3 = Clock::now();
    r.phases.run.push_back(ms(t1 - t0));
    r.phases.create.push_back(ms(t2 - t1));
    r.phases.start.push_back(ms(t3 - t2));
    r.phases.total.push_back(ms(t3 - t0));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  r.loaded = measure(d.pid(), d.dir());
  r.pods = pods;
  for (const std::string& id : ids) {
    auto t0 = Clock::now();
    grpc::ClientContext c1;
    v1::StopPodSandboxRequest sr;
    sr.set_pod_sandbox_id(id);
    v1::StopPodSandboxResponse sresp;
    grpc::Status st = d.runtime().StopPodSandbox(&c1, sr, &sresp);
    if (!st.ok()) return fail("StopPodSandbox", st);
    auto t1 = Clock::now();
    grpc::ClientContext c2;
    v1::RemovePodSandboxRequest rr;
    rr.set_pod_sandbox_id(id);
    v1::RemovePodSandboxResponse rresp;
    st = d.runtime().RemovePodSandbox(&c2, rr, &rresp);
    if (!st.ok()) return fail("RemovePodSandbox", st);
    r.phases.stop.push_back(ms(t1 - t0));
    r.phases.remove.push_back(ms(Clock::now() - t1));
  }
  // The cgroup parent, in the v2 hierarchy and (runc on hybrid hosts) every v1 one.
  ::rmdir(strCat("/sys/fs/cgroup", d.cgroupParent()).c_str());
  if (auto roots = fs::listSubdirs("/sys/fs/cgroup"); roots.ok()) {
    for (const std::string& root : *roots) {
      ::rmdir(strCat("/sys/fs/cgroup/", root, d.cgroupParent()).c_str());
    }
  }
  return r;
}

void printTable(const std::vector<Result>& results) {
  const Result* berth = nullptr;
  const Result* ctrd = nullptr;
  for (const auto& r : results) {
    if (!r.error.empty()) std::printf("%s: FAILED: %s\n", r.name.c_str(), r.error.c_str());
    if (r.name == "berth" && r.error.empty()) berth = &r;
    if (r.name == "containerd" && r.error.empty()) ctrd = &r;
  }
  std::printf("\n%-22s %12s %12s %12s %12s %9s\n", "phase (ms)", "berth p50", "berth p99",
              "ctrd p50", "ctrd p99", "p50 ratio");
  auto row = [&](const char* name, auto member) {
    double bp50 = berth ? percentile(berth->phases.*member, 0.5) : 0;
    double bp99 = berth ? percentile(berth->phases.*member, 0.99) : 0;
    double cp50 = ctrd ? percentile(ctrd->phases.*member, 0.5) : 0;
    double cp99 = ctrd ? percentile(ctrd->phases.*member, 0.99) : 0;
    std::printf("%-22s %12.1f %12.1f %12.1f %12.1f %9.2f\n", name, bp50, bp99, cp50, cp99,
                cp50 > 0 ? bp50 / cp50 : 0.0);
  };
  row("RunPodSandbox", &Phases::run);
  row("CreateContainer", &Phases::create);
  row("StartContainer", &Phases::start);
  row("pod start (total)", &Phases::total);
  row("StopPodSandbox", &Phases::stop);
  row("RemovePodSandbox", &Phases::remove);
  std::printf("\n%-12s %14s %20s %20s %10s\n", "memory", "daemon idle", "per pod RSS (KiB)",
              "per pod PSS (KiB)", "processes");
  for (const Result* r : {berth, ctrd}) {
    if (r == nullptr || r->pods == 0) continue;
    std::printf("%-12s %10llu KiB %20.0f %20.0f %10d\n", r->name.c_str(),
                static_cast<unsigned long long>(r->idle.rss_kb),
                static_cast<double>(r->loaded.rss_kb - r->idle.rss_kb) / r->pods,
                static_cast<double>(r->loaded.pss_kb - r->idle.pss_kb) / r->pods,
                r->loaded.processes);
  }
}

int run(int argc, char** argv) {
  CLI::App app{"pod start: berthd vs containerd 1.6 over CRI"};
  int pods = 50;
  std::string which = "both";
  app.add_option("--pods", pods, "pods per runtime")->capture_default_str();
  app.add_option("--runtime", which, "both, berth or containerd")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (::geteuid() != 0) {
    std::fprintf(stderr, "pod_start_bench: needs root\n");
    return 2;
  }
  if (Status st = enterOwnNetworkNamespace(); !st.ok()) {
    std::fprintf(stderr, "pod_start_bench: %s\n", std::string(st.message()).c_str());
    return 2;
  }
  auto registry = RegistryFixture::start(RegistryFixture::Mode::kPlainHttp);
  if (!registry.ok()) {
    std::fprintf(stderr, "pod_start_bench: %s\n", std::string(registry.status().message()).c_str());
    return 2;
  }
  auto busybox = standardImage("busybox-multi");
  if (!busybox.ok()) return 2;
  // The pause image for containerd: the same layers, sleeping forever.
  ImageBuilder pause;
  ImageConfigFields cfg;
  cfg.entrypoint = {"/bin/busybox", "sleep", "2147483647"};
  pause.config(cfg);
  for (const BuiltLayer& l : (*busybox)->images[0].layers) pause.addLayer(l);
  auto pause_image = pause.build();
  if (!pause_image.ok() ||
      !(*registry)->push("library/pause", "1", singleImage("pause", *pause_image)).ok() ||
      !(*registry)->push("library/busybox", "1.36", **busybox).ok()) {
    std::fprintf(stderr, "pod_start_bench: pushing the images failed\n");
    return 2;
  }
  const std::string host = (*registry)->hostPort();
  const std::string image = host + "/library/busybox:1.36";
  std::printf("pod start: %d pods per runtime, image %s, CNI bridge + host-local\n", pods,
              image.c_str());
  std::vector<Result> results;
  if (which == "both" || which == "berth") {
    BerthDaemon d(host);
    if (!d.ready()) {
      std::fprintf(stderr, "berthd did not start:\n%s\n", d.log().c_str());
      return 1;
    }
    results.push_back(runOne(d, image, pods));
  }
  if (which == "both" || which == "containerd") {
    ContainerdDaemon d(host, host + "/library/pause:1");
    if (!d.ready()) {
      std::fprintf(stderr, "containerd did not start (see its log)\n");
      return 1;
    }
    results.push_back(runOne(d, image, pods));
  }
  printTable(results);
  for (const auto& r : results) {
    if (!r.error.empty()) return 1;
  }
  return 0;
}

}  // namespace
}  // namespace berth::testing

int main(int argc, char** argv) { return berth::testing::run(argc, argv); }
