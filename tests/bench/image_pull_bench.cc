// berth_bench_image_pull: pull+unpack time of a ~50 MB multi-layer image, berth-image
// against Debian's containerd, in the same run (issue 4, "CLI and benchmark").
//
// Method. The "big" fixture image (tests/fixtures/image_builder.h bigImage(): busybox
// plus 4 x 10 MB pseudo-random layers, 5 gzip layers, built once and cached as an OCI
// layout under --cache-dir) is pushed once as bench/big:1 into Debian's docker-registry
// on 127.0.0.1 (plain HTTP). Then every iteration runs both tools, alternating which
// goes first (A B, B A, …) so drift in machine load hits both alike:
//   berth      `berth-image --root <fresh dir> --insecure-registry H --max-concurrent-
//              downloads M pull H/bench/big:1`: content store, SQLite records and overlay
//              snapshots, all in one process.
//   containerd a containerd started for this iteration alone with a fresh root and
//              state (config.toml in a temp dir; its own socket; CRI and the snapshotters
//              that cannot run here disabled), and once its socket answers `ctr version`,
//              `ctr -n bench images pull --plain-http --max-concurrent-downloads M
//              H/bench/big:1` (fetch into the content store, then unpack into overlayfs
//              snapshots). The daemon is stopped (SIGTERM, then SIGKILL) afterwards.
// Only the pull command is timed: wall clock from fork to exit (steady_clock). The
// daemon's start is not timed (it is a long-running service in real use), but
// berth-image's process start and database creation are. CPU time is the pull process's
// (wait4 rusage) plus, for containerd, the daemon's utime+stime delta over the pull
// (/proc/<pid>/stat): ctr downloads and streams the blobs to the daemon, which writes
// and unpacks them.
// Each run is checked: exit status 0, the image listed afterwards (`berth-image images
// -q` shows the ID the pull printed; `ctr images ls -q` shows the reference) and one
// committed snapshot per layer. The page cache is not dropped: both tools read the same
// registry, whose blobs stay warm in memory after the push.
//
// Usage: berth_bench_image_pull [--iterations 10] [--warmup 1] [--cache-dir DIR]
//        [--work-dir /var/tmp] [--max-concurrent-downloads 3] [--keep-going]
//        [--berth-image PATH] [--containerd PATH] [--ctr PATH]
// Needs root (overlay mounts, containerd), /bin/busybox (busybox-static), Debian's
// docker-registry and containerd. Never touches /var/lib/containerd or /run/containerd.
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/fs.h"
#include "common/strings.h"
#include "common/unique_fd.h"
#include "tests/fixtures/image_builder.h"
#include "tests/fixtures/registry_fixture.h"

namespace berth::bench {
namespace {

using Clock = std::chrono::steady_clock;

// Longest one pull may take before the run counts as failed.
constexpr std::chrono::seconds kPullTimeout{300};
// Longest a helper command (ctr version, images ls…) may take.
constexpr std::chrono::seconds kCommandTimeout{30};
// Longest containerd may take to answer on its socket, and to exit after SIGTERM.
constexpr std::chrono::seconds kDaemonTimeout{20};
constexpr const char* kRepo = "bench/big";
constexpr const char* kTag = "1";
constexpr const char* kNamespace = "bench";

struct Proc {
  int exit_code = -1;
  double wall_ms = 0;
  double cpu_ms = 0;  // user + system of the process and its waited-for children
  std::string out;    // stdout
  std::string err;    // stderr, trimmed
};

double tvMs(const timeval& tv) { return tv.tv_sec * 1e3 + tv.tv_usec / 1e3; }

// Runs argv with stdin on /dev/null and stdout/stderr in files under `scratch` (files,
// not pipes: nothing can block on a full pipe). The wall time runs from just before
// fork to the moment wait4 reports the exit.
Proc runCmd(const std::vector<std::string>& argv, const std::string& scratch,
            std::chrono::seconds timeout = kCommandTimeout) {
  Proc result;
  std::string out_file = scratch + "/cmd.out";
  std::string err_file = scratch + "/cmd.err";
  UniqueFd out(::open(out_file.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  UniqueFd err(::open(err_file.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!out || !err) {
    result.err = strCat("open ", scratch, "/cmd.{out,err}: ", std::strerror(errno));
    return result;
  }
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  auto t0 = Clock::now();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(out.get(), 1);
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
  rusage ru{};
  auto deadline = t0 + timeout;
  for (;;) {
    pid_t w = ::wait4(pid, &ws, WNOHANG, &ru);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) {
      result.err = strCat("wait4: ", std::strerror(errno));
      return result;
    }
    if (Clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &ws, 0);
      result.err = strCat(argv[0], " timed out after ", timeout.count(), " s");
      return result;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  result.wall_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  result.cpu_ms = tvMs(ru.ru_utime) + tvMs(ru.ru_stime);
  result.exit_code = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
  auto o = fs::readFile(out_file);
  if (o.ok()) result.out = *o;
  auto e = fs::readFile(err_file);
  if (e.ok()) result.err = std::string(trim(*e));
  return result;
}

std::string describeFailure(const std::string& what, const Proc& p) {
  std::string err = p.err.size() > 2000 ? "…" + p.err.substr(p.err.size() - 2000) : p.err;
  return strCat(what, " exited ", p.exit_code, err.empty() ? "" : ": ", err);
}

size_t countLines(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (auto& line : split(text, '\n', true)) {
    if (line.find(needle) != std::string::npos) ++n;
  }
  return n;
}

bool hasLine(const std::string& text, const std::string& line) {
  for (auto& l : split(text, '\n', true)) {
    if (trim(l) == line) return true;
  }
  return false;
}

// Detaches every mount at or below `dir` (deepest first), from /proc/self/mountinfo.
void unmountUnder(const std::string& dir) {
  auto info = fs::readFile("/proc/self/mountinfo");
  if (!info.ok()) return;
  std::vector<std::string> targets;
  for (auto& line : split(*info, '\n', true)) {
    auto fields = split(line, ' ', true);
    if (fields.size() < 5) continue;
    const std::string& mnt = fields[4];
    if (mnt == dir || mnt.rfind(dir + "/", 0) == 0) targets.push_back(mnt);
  }
  std::sort(targets.begin(), targets.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (auto& t : targets) {
    if (::umount2(t.c_str(), MNT_DETACH) != 0) {
      std::fprintf(stderr, "warning: umount %s: %s\n", t.c_str(), std::strerror(errno));
    }
  }
}

// Unmounts anything left under `dir`, then removes it.
void removeTree(const std::string& dir) {
  unmountUnder(dir);
  Status st = fs::removeAll(dir);
  if (!st.ok()) {
    std::fprintf(stderr, "warning: remove %s: %s\n", dir.c_str(),
                 std::string(st.message()).c_str());
  }
}

// user+system CPU ms of a live process, from /proc/<pid>/stat (fields 14 and 15).
double processCpuMs(pid_t pid) {
  auto stat = fs::readFile(strCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return 0;
  size_t paren = stat->rfind(')');
  if (paren == std::string::npos) return 0;
  auto fields = split(stat->substr(paren + 2), ' ', true);  // fields[0] is field 3
  if (fields.size() < 13) return 0;
  double ticks = std::atof(fields[11].c_str()) + std::atof(fields[12].c_str());
  return ticks * 1000.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

std::string fsTypeName(const std::string& path) {
  struct statfs sfs {};
  if (::statfs(path.c_str(), &sfs) != 0) return "?";
  switch (static_cast<unsigned long>(sfs.f_type)) {
    case 0xEF53: return "ext4";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x01021994: return "tmpfs";
    case 0x794c7630: return "overlayfs";
    default: return strCat("fs magic 0x", hex(static_cast<unsigned long>(sfs.f_type)));
  }
}

// One containerd daemon with everything under `dir`.
class Containerd {
 public:
  Containerd(std::string binary, std::string ctr, std::string dir)
      : binary_(std::move(binary)), ctr_(std::move(ctr)), dir_(std::move(dir)) {}
  ~Containerd() { stop(); }

  std::string socket() const { return dir_ + "/containerd.sock"; }
  pid_t pid() const { return pid_; }

  // Writes the config, starts the daemon and waits until `ctr version` answers on its
  // socket. Returns the error text, or nullopt once it is ready.
  std::optional<std::string> start() {
    if (!fs::mkdirAll(dir_, 0711).ok()) return strCat("cannot create ", dir_);
    // Plugins disabled: CRI (not needed; it would also look for CNI), the snapshotters
    // that cannot work on this host (their start-up errors are noise) and the "opt"
    // plugin, which would create /opt/containerd.
    std::string config = strCat(
        "version = 2\n"
        "root = \"", dir_, "/root\"\n"
        "state = \"", dir_, "/state\"\n"
        "disabled_plugins = [\"io.containerd.grpc.v1.cri\", "
        "\"io.containerd.snapshotter.v1.btrfs\", \"io.containerd.snapshotter.v1.zfs\", "
        "\"io.containerd.snapshotter.v1.devmapper\", \"io.containerd.snapshotter.v1.aufs\", "
        "\"io.containerd.internal.v1.opt\"]\n"
        "[grpc]\n  address = \"", socket(), "\"\n"
        "[ttrpc]\n  address = \"", socket(), ".ttrpc\"\n"
        "[debug]\n  address = \"\"\n  level = \"warn\"\n"
        "[metrics]\n  address = \"\"\n");
    if (!fs::writeFileAtomic(dir_ + "/config.toml", config, 0644,
                             fs::Durability::kVolatile).ok()) {
      return strCat("cannot write ", dir_, "/config.toml");
    }
    std::string log = dir_ + "/containerd.log";
    UniqueFd log_fd(::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
      int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 0);
      ::dup2(log_fd.get(), 1);
      ::dup2(log_fd.get(), 2);
      std::string cfg = dir_ + "/config.toml";
      ::execlp(binary_.c_str(), binary_.c_str(), "--config", cfg.c_str(),
               static_cast<char*>(nullptr));
      ::dprintf(2, "exec %s: %s\n", binary_.c_str(), std::strerror(errno));
      ::_exit(127);
    }
    if (pid_ < 0) return strCat("fork: ", std::strerror(errno));
    auto deadline = Clock::now() + kDaemonTimeout;
    for (;;) {
      int ws;
      if (::waitpid(pid_, &ws, WNOHANG) == pid_) {
        pid_ = -1;
        return strCat("containerd exited at start: ", logTail());
      }
      if (fs::exists(socket())) {
        Proc v = runCmd({ctr_, "--address", socket(), "version"}, dir_);
        if (v.exit_code == 0) return std::nullopt;
      }
      if (Clock::now() > deadline) {
        return strCat("containerd did not answer on ", socket(), " within ",
                      kDaemonTimeout.count(), " s: ", logTail());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  // SIGTERM, up to kDaemonTimeout for the exit, then SIGKILL. Idempotent.
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    auto deadline = Clock::now() + kDaemonTimeout;
    int ws;
    while (::waitpid(pid_, &ws, WNOHANG) != pid_) {
      if (Clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &ws, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
  }

  std::string logTail() const {
    auto text = fs::readFile(dir_ + "/containerd.log");
    if (!text.ok()) return "(no log)";
    std::string t(trim(*text));
    return t.size() > 2000 ? "…" + t.substr(t.size() - 2000) : t;
  }

 private:
  std::string binary_;
  std::string ctr_;
  std::string dir_;
  pid_t pid_ = -1;
};

struct Options {
  int iterations = 10;
  int warmup = 1;
  std::string cache_dir = "/var/tmp/berth-bench-cache";
  std::string work_dir = "/var/tmp";
  int downloads = 3;
  bool keep_going = false;
  std::string berth_image = BERTH_IMAGE_BINARY;
  std::string containerd = "containerd";
  std::string ctr = "ctr";
};

struct Sample {
  double wall_ms;
  double cpu_ms;
};

struct Tool {
  std::string label;
  std::vector<Sample> samples;
  std::vector<std::string> failures;
};

struct Env {
  const Options& opt;
  std::string work;  // our temp dir
  std::string host;  // registry host:port
  std::string ref;   // host/bench/big:1
  size_t layers = 0;
};

// One berth-image pull into a fresh root. Returns the error text on failure.
std::optional<std::string> berthRun(const Env& env, int run, Sample& sample) {
  std::string root = strCat(env.work, "/berth-", run);
  if (!fs::mkdirAll(root, 0700).ok()) return strCat("cannot create ", root);
  std::vector<std::string> base = {env.opt.berth_image, "--root", root};
  auto with = [&](std::vector<std::string> rest) {
    std::vector<std::string> argv = base;
    argv.insert(argv.end(), rest.begin(), rest.end());
    return argv;
  };
  std::optional<std::string> error;
  Proc pull = runCmd(with({"--insecure-registry", env.host, "--max-concurrent-downloads",
                           std::to_string(env.opt.downloads), "pull", env.ref}),
                     env.work, kPullTimeout);
  if (pull.exit_code != 0) {
    error = describeFailure("berth-image pull", pull);
  } else {
    sample = {pull.wall_ms, pull.cpu_ms};
    std::string id(trim(pull.out));
    Proc list = runCmd(with({"images", "-q"}), env.work);
    Proc snaps = runCmd(with({"snapshots"}), env.work);
    if (list.exit_code != 0) {
      error = describeFailure("berth-image images -q", list);
    } else if (id.empty() || !hasLine(list.out, id)) {
      error = strCat("berth-image pull printed \"", id, "\" but `images -q` lists: ",
                     trim(list.out));
    } else if (snaps.exit_code != 0) {
      error = describeFailure("berth-image snapshots", snaps);
    } else if (countLines(snaps.out, "committed") != env.layers) {
      error = strCat("expected ", env.layers, " committed snapshots, berth-image snapshots "
                     "shows:\n", snaps.out);
    }
  }
  removeTree(root);
  return error;
}

// One ctr pull into a containerd started for this run. Returns the error text.
std::optional<std::string> containerdRun(const Env& env, int run, Sample& sample) {
  std::string dir = strCat(env.work, "/containerd-", run);
  std::optional<std::string> error;
  {
    Containerd daemon(env.opt.containerd, env.opt.ctr, dir);
    error = daemon.start();
    if (!error) {
      std::vector<std::string> base = {env.opt.ctr, "--address", daemon.socket(), "-n",
                                       kNamespace};
      auto with = [&](std::vector<std::string> rest) {
        std::vector<std::string> argv = base;
        argv.insert(argv.end(), rest.begin(), rest.end());
        return argv;
      };
      double daemon_cpu0 = processCpuMs(daemon.pid());
      Proc pull = runCmd(with({"images", "pull", "--plain-http", "--max-concurrent-downloads",
                               std::to_string(env.opt.downloads), env.ref}),
                         env.work, kPullTimeout);
      double daemon_cpu = processCpuMs(daemon.pid()) - daemon_cpu0;
      if (pull.exit_code != 0) {
        error = describeFailure("ctr images pull", pull) + "\ncontainerd log: " +
                daemon.logTail();
      } else {
        sample = {pull.wall_ms, pull.cpu_ms + daemon_cpu};
        Proc list = runCmd(with({"images", "ls", "-q"}), env.work);
        Proc snaps = runCmd(with({"snapshots", "ls"}), env.work);
        if (list.exit_code != 0) {
          error = describeFailure("ctr images ls -q", list);
        } else if (!hasLine(list.out, env.ref)) {
          error = strCat("`ctr images ls -q` does not list ", env.ref, ": ", trim(list.out));
        } else if (snaps.exit_code != 0) {
          error = describeFailure("ctr snapshots ls", snaps);
        } else if (countLines(snaps.out, "Committed") != env.layers) {
          error = strCat("expected ", env.layers, " committed snapshots, ctr snapshots ls "
                         "shows:\n", snaps.out);
        }
      }
    }
    daemon.stop();
  }
  removeTree(dir);
  return error;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  if (p == 50 && v.size() % 2 == 0) return (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

std::vector<double> walls(const Tool& t) {
  std::vector<double> v;
  for (auto& s : t.samples) v.push_back(s.wall_ms);
  return v;
}

std::vector<double> cpus(const Tool& t) {
  std::vector<double> v;
  for (auto& s : t.samples) v.push_back(s.cpu_ms);
  return v;
}

// "1.6.20" from "containerd github.com/containerd/containerd 1.6.20~ds1 ...".
std::string containerdVersion(const Options& opt, const std::string& scratch) {
  Proc v = runCmd({opt.containerd, "--version"}, scratch);
  auto fields = split(trim(v.out), ' ', true);
  if (v.exit_code != 0 || fields.size() < 3) return "?";
  std::string ver = fields[2];
  return ver.substr(0, ver.find('~'));
}

int benchMain(int argc, char** argv) {
  CLI::App app{"Pull+unpack time of a ~50 MB 5-layer image from a local registry: "
               "berth-image vs containerd (ctr images pull)"};
  Options opt;
  app.add_option("--iterations", opt.iterations, "timed pulls per tool")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--warmup", opt.warmup, "untimed pulls per tool first")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--cache-dir", opt.cache_dir, "where the big image is built once and kept")
      ->capture_default_str();
  app.add_option("--work-dir", opt.work_dir,
                 "parent of the temp dir holding both tools' stores (same filesystem for both)")
      ->capture_default_str();
  app.add_option("--max-concurrent-downloads", opt.downloads,
                 "layer downloads at once, passed to both tools (ctr's own default, 0, means "
                 "unlimited)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_flag("--keep-going", opt.keep_going,
               "record a failed pull and go on (default: stop at the first failure)");
  app.add_option("--berth-image", opt.berth_image, "berth-image binary (default: the build's)");
  app.add_option("--containerd", opt.containerd, "containerd binary")->capture_default_str();
  app.add_option("--ctr", opt.ctr, "ctr binary")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  if (::geteuid() != 0) {
    std::fprintf(stderr, "berth_bench_image_pull: needs root (overlay mounts, containerd)\n");
    return 2;
  }
  Status tools = testing::checkRegistryTools();
  if (tools.ok()) tools = testing::checkBusyboxStatic();
  if (!tools.ok()) {
    std::fprintf(stderr, "berth_bench_image_pull: %s\n", std::string(tools.message()).c_str());
    return 2;
  }

  auto image = testing::bigImage(opt.cache_dir);
  if (!image.ok()) {
    std::fprintf(stderr, "berth_bench_image_pull: build the big image in %s: %s\n",
                 opt.cache_dir.c_str(), std::string(image.status().message()).c_str());
    return 2;
  }
  // The registry is our child, tied (PDEATHSIG) to this thread.
  auto registry = testing::RegistryFixture::start(testing::RegistryFixture::Mode::kPlainHttp);
  if (!registry.ok()) {
    std::fprintf(stderr, "berth_bench_image_pull: start docker-registry: %s\n",
                 std::string(registry.status().message()).c_str());
    return 2;
  }
  Status pushed = (*registry)->push(kRepo, kTag, *image);
  if (!pushed.ok()) {
    std::fprintf(stderr, "berth_bench_image_pull: push %s:%s: %s\n", kRepo, kTag,
                 std::string(pushed.message()).c_str());
    return 2;
  }

  std::string templ = opt.work_dir + "/berth-bench-pull-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) {
    std::fprintf(stderr, "berth_bench_image_pull: mkdtemp %s: %s\n", templ.c_str(),
                 std::strerror(errno));
    return 2;
  }
  const testing::BuiltImage& img = image->images.front();
  Env env{opt, templ, (*registry)->hostPort(), "", img.layers.size()};
  env.ref = strCat(env.host, "/", kRepo, ":", kTag);

  uint64_t compressed = img.config.size();
  for (auto& l : img.layers) compressed += l.data.size();
  std::string version = containerdVersion(opt, env.work);
  Tool berth{"berth-image pull", {}, {}};
  Tool ctrd{strCat("containerd ", version, " ctr pull"), {}, {}};

  std::printf("image %s: %zu gzip layers, %.1f MB compressed (layers + config)\n",
              env.ref.c_str(), img.layers.size(), static_cast<double>(compressed) / 1e6);
  std::printf("stores under %s (%s); registry docker-registry on %s (plain HTTP), blobs warm "
              "in the page cache (not dropped between runs: both tools read the same warm "
              "registry)\n",
              opt.work_dir.c_str(), fsTypeName(opt.work_dir).c_str(), env.host.c_str());
  std::printf("max concurrent downloads: %d for both; %d warm-up + %d timed pulls per tool, "
              "interleaved; timed: the pull command only (containerd already running)\n",
              opt.downloads, opt.warmup, opt.iterations);
  std::fflush(stdout);

  bool stopped = false;
  int run = 0;
  for (int i = -opt.warmup; i < opt.iterations && !stopped; ++i) {
    bool timed = i >= 0;
    Tool* order[2] = {&berth, &ctrd};
    if ((i + opt.warmup) % 2 == 1) std::swap(order[0], order[1]);
    for (Tool* tool : order) {
      Sample s{};
      auto err = tool == &berth ? berthRun(env, run++, s) : containerdRun(env, run++, s);
      if (err) {
        std::string what = strCat(timed ? "iteration " : "warm-up ", timed ? i : i + opt.warmup,
                                  ": ", *err);
        std::fprintf(stderr, "%s failed: %s\n", tool->label.c_str(), what.c_str());
        tool->failures.push_back(what);
        if (!opt.keep_going) {
          stopped = true;
          break;
        }
        continue;
      }
      if (timed) tool->samples.push_back(s);
    }
  }
  removeTree(env.work);

  std::printf("%-32s %10s %10s %14s %4s %7s\n", "tool", "median_ms", "p90_ms", "median_cpu_ms",
              "n", "failed");
  for (const Tool* t : {&berth, &ctrd}) {
    std::printf("%-32s %10.0f %10.0f %14.0f %4zu %7zu\n", t->label.c_str(),
                percentile(walls(*t), 50), percentile(walls(*t), 90), percentile(cpus(*t), 50),
                t->samples.size(), t->failures.size());
  }
  if (berth.samples.empty() || ctrd.samples.empty()) {
    std::printf("no ratio: a tool has no successful timed pull\n");
    return 1;
  }
  double b = percentile(walls(berth), 50);
  double c = percentile(walls(ctrd), 50);
  std::printf("%s: median %.0f ms; %s: median %.0f ms; ratio %.0f/%.0f = %.2f\u00d7 "
              "(goal <= 0.7\u00d7)\n",
              berth.label.c_str(), b, ctrd.label.c_str(), c, b, c, b / c);
  bool failed = !berth.failures.empty() || !ctrd.failures.empty();
  return failed ? 1 : 0;
}

}  // namespace
}  // namespace berth::bench

int main(int argc, char** argv) { return berth::bench::benchMain(argc, argv); }
