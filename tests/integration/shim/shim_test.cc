// berth-shim end to end (root): a real daemonized shim with a temp state dir runs
// busybox containers through the berth-runtime built here. Checks pinned pod
// namespaces, CRI log lines, exit codes/reasons and exit.json, stop escalation,
// execSync, reconnecting clients, removeSandbox and shutdown.
//
// Every test owns a temp dir (state, runtime root, ns dir, logs, bundles) and a
// throwaway cgroup subtree "/berth-shim-it-<pid>" that TearDown removes; it kills only
// the shim it started (force shutdown, then SIGKILL of that pid).
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <fstream>
#include <regex>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/fs.h"
#include "common/proc.h"
#include "common/strings.h"
#include "runtime/shim/client.h"
#include "runtime/shim/pod_namespaces.h"
#include "tests/integration/runtime/bundle_fixture.h"

namespace berth::shim {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

std::vector<std::string> cgroupMounts() {
  std::vector<std::string> out;
  auto text = fs::readFile("/proc/self/mountinfo");
  if (!text.ok()) return out;
  for (const auto& line : split(*text, '\n', true)) {
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    auto tail = split(line.substr(dash + 3), ' ', true);
    auto fields = split(line, ' ', true);
    if (!tail.empty() && (tail[0] == "cgroup" || tail[0] == "cgroup2") && fields.size() > 4) {
      out.push_back(fields[4]);
    }
  }
  return out;
}

// Removes a cgroup subtree bottom-up (directories only; the kernel files go with them).
void removeCgroupTree(const std::string& dir) {
  auto subs = fs::listSubdirs(dir);
  if (subs.ok()) {
    for (const auto& s : *subs) removeCgroupTree(fs::join(dir, s));
  }
  ::rmdir(dir.c_str());
}

class ShimPrivileged : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (mounts, namespaces, containers)";
    char tmpl[] = "/tmp/berth-shim-it-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    tmp_ = tmpl;
    ::chmod(tmp_.c_str(), 0755);
    state_ = tmp_ + "/state";
    ns_dir_ = tmp_ + "/ns";
    cgroup_parent_ = strCat("/berth-shim-it-", ::getpid());
    StartOptions o;
    o.shim_binary = BERTH_SHIM_BINARY;
    o.pod_id = "pod-" + std::to_string(::getpid());
    o.state_dir = state_;
    o.runtime = BERTH_RUNTIME_BINARY;
    o.runtime_root = tmp_ + "/runtime";
    o.log_level = "debug";
    auto shim = startShim(o);
    ASSERT_TRUE(shim.ok()) << shim.status();
    shim_ = *shim;
    client_ = std::make_unique<ShimClient>(shim_.socket);
  }

  void TearDown() override {
    if (tmp_.empty()) return;
    if (client_) (void)client_->shutdown(true);
    for (int i = 0; i < 100 && shim_.pid > 0 && proc::isAlive(shim_.pid, shim_.start_time); ++i) {
      std::this_thread::sleep_for(50ms);
    }
    if (shim_.pid > 0 && proc::isAlive(shim_.pid, shim_.start_time)) {
      ADD_FAILURE() << "the shim did not exit after a forced shutdown";
      ::kill(shim_.pid, SIGKILL);
    }
    (void)removePodNamespaces(ns_dir_);
    for (const auto& m : cgroupMounts()) removeCgroupTree(m + cgroup_parent_);
    if (HasFailure()) {
      auto log = fs::readFile(state_ + "/shim.log");
      if (log.ok()) std::cerr << "--- shim.log ---\n" << *log << "---\n";
    }
    (void)fs::removeAll(tmp_);
  }

  // A bundle running `args`; with `pod` set its net/ipc/uts (and pid) namespaces are
  // the pinned ones.
  std::string makeBundle(const std::string& name, const std::vector<std::string>& args,
                         const SandboxNamespaces* pod = nullptr, bool tty = false) {
    auto b = itest::Bundle::create(tmp_ + "/bundles/" + name);
    EXPECT_TRUE(b.ok()) << b.status();
    if (!b.ok()) return "";
    auto& cfg = (*b)->config;
    cfg["process"]["args"] = args;
    cfg["process"]["terminal"] = tty;
    cfg["linux"]["cgroupsPath"] = cgroup_parent_ + "/" + name;
    if (pod != nullptr) {
      cfg.erase("hostname");
      Json ns = Json::array();
      ns.push_back(pod->pid.empty() ? Json{{"type", "pid"}} : Json{{"type", "pid"}, {"path", pod->pid}});
      ns.push_back({{"type", "network"}, {"path", pod->net}});
      ns.push_back({{"type", "ipc"}, {"path", pod->ipc}});
      ns.push_back({{"type", "uts"}, {"path", pod->uts}});
      ns.push_back({{"type", "mount"}});
      cfg["linux"]["namespaces"] = ns;
    }
    EXPECT_TRUE((*b)->writeConfig().ok());
    return (*b)->dir();
  }

  std::string logPath(const std::string& id) { return tmp_ + "/logs/" + id + "/0.log"; }

  // createContainer + startContainer; returns the state after start.
  ContainerState run(const std::string& id, const std::string& bundle, bool tty = false,
                     bool stdin = false, bool stdin_once = false) {
    ContainerSpec spec;
    spec.id = id;
    spec.bundle = bundle;
    spec.log_path = logPath(id);
    spec.tty = tty;
    spec.stdin = stdin;
    spec.stdin_once = stdin_once;
    auto created = client_->createContainer(spec);
    EXPECT_TRUE(created.ok()) << created.status();
    if (!created.ok()) return {};
    EXPECT_EQ(created->status, ContainerStatus::kCreated);
    EXPECT_GT(created->pid, 0);
    auto started = client_->startContainer(id);
    EXPECT_TRUE(started.ok()) << started.status();
    return started.ok() ? *started : ContainerState{};
  }

  ContainerState waitExited(const std::string& id, std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    ContainerState last;
    while (std::chrono::steady_clock::now() < deadline) {
      auto s = client_->state(id);
      if (s.ok()) {
        last = *s;
        if (s->status == ContainerStatus::kExited) return last;
      }
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << "container " << id << " did not exit; last status " << statusName(last.status);
    return last;
  }

  // Waits until the container's log contains `text`.
  bool waitForLog(const std::string& id, const std::string& text, std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto log = fs::readFile(logPath(id));
      if (log.ok() && log->find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  // The log records as (stream, tag, content), checking the line format on the way.
  std::vector<std::tuple<std::string, std::string, std::string>> records(const std::string& id) {
    std::vector<std::tuple<std::string, std::string, std::string>> out;
    auto log = fs::readFile(logPath(id));
    EXPECT_TRUE(log.ok()) << log.status();
    if (!log.ok()) return out;
    static const std::regex kLine(
        R"(^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (stdout|stderr) ([PF]) (.*)$)");
    for (const auto& line : split(*log, '\n', true)) {
      std::smatch m;
      if (!std::regex_match(line, m, kLine)) {
        ADD_FAILURE() << "bad CRI log line: " << line;
        continue;
      }
      out.emplace_back(m[2], m[3], m[4]);
    }
    return out;
  }

  std::string tmp_, state_, ns_dir_, cgroup_parent_;
  ShimProcess shim_;
  std::unique_ptr<ShimClient> client_;
};

using Rec = std::tuple<std::string, std::string, std::string>;

TEST_F(ShimPrivileged, DaemonizesAndIsNotOurChild) {
  auto stat = fs::readFile(strCat("/proc/", shim_.pid, "/stat"));
  ASSERT_TRUE(stat.ok());
  auto fields = split(stat->substr(stat->rfind(')') + 2), ' ');
  EXPECT_NE(std::atoi(fields[1].c_str()), ::getpid()) << "the shim must not be our child";
  // Its own session and process group: signals to berthd's group never reach it.
  EXPECT_NE(std::atoi(fields[2].c_str()), ::getpgrp());
  EXPECT_NE(std::atoi(fields[3].c_str()), ::getsid(0));
  EXPECT_TRUE(fs::exists(state_ + "/shim.sock"));
  auto again = client_->call("ping", Json::object());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)["pid"], shim_.pid);
  // A second shim for the same state dir is refused.
  StartOptions o;
  o.shim_binary = BERTH_SHIM_BINARY;
  o.pod_id = "dup";
  o.state_dir = state_;
  o.runtime = BERTH_RUNTIME_BINARY;
  o.runtime_root = tmp_ + "/runtime";
  auto dup = startShim(o);
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kAlreadyExists) << dup.status();
  // Unknown methods and bad params get errors, and the shim keeps serving.
  EXPECT_EQ(client_->call("bogus", Json::object()).status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(client_->state("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->call("state", Json::object()).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(client_->call("ping", Json::object()).ok());

  // Garbage on a raw connection gets error replies, never a crash.
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  std::string sock = state_ + "/shim.sock";
  memcpy(addr.sun_path, sock.c_str(), sock.size() + 1);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  std::string junk;
  for (int i = 0; i < 100; ++i) {
    switch (i % 5) {
      case 0: junk += "not json\n"; break;
      case 1: junk += "{\"id\":\"x\"}\n"; break;
      case 2: junk += "{\"id\":1,\"method\":\"createContainer\",\"params\":{\"id\":\"../x\",\"bundle\":\"/\"}}\n"; break;
      case 3: junk += "{\"id\":2,\"method\":\"kill\",\"params\":{\"id\":\"x\",\"signal\":\"SIGBOGUS\"}}\n"; break;
      default: junk += std::string(1000, '\x01') + "\n"; break;
    }
  }
  ASSERT_EQ(::write(fd, junk.data(), junk.size()), static_cast<ssize_t>(junk.size()));
  std::string replies;
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::count(replies.begin(), replies.end(), '\n') < 100 &&
         std::chrono::steady_clock::now() < deadline) {
    char buf[65536];
    ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) replies.append(buf, static_cast<size_t>(n));
    else std::this_thread::sleep_for(10ms);
  }
  ::close(fd);
  EXPECT_EQ(std::count(replies.begin(), replies.end(), '\n'), 100);
  EXPECT_EQ(replies.find("\"result\""), std::string::npos);
  EXPECT_THAT(replies, HasSubstr("InvalidArgument"));
  EXPECT_THAT(replies, HasSubstr("container id \\\"../x\\\" may contain only"));
  EXPECT_TRUE(client_->call("ping", Json::object()).ok());
}

TEST_F(ShimPrivileged, SandboxPinsNamespacesSharedByItsContainers) {
  SandboxSpec spec;
  spec.ns_dir = ns_dir_;
  spec.hostname = "shim-pod";
  spec.sysctls["net.ipv4.ip_unprivileged_port_start"] = "81";
  auto pod = client_->createSandbox(spec);
  ASSERT_TRUE(pod.ok()) << pod.status();
  for (const auto& p : {pod->net, pod->ipc, pod->uts}) {
    EXPECT_TRUE(isNsfsMount(p)) << p;
  }
  EXPECT_TRUE(pod->pid.empty());
  EXPECT_EQ(pod->pause_pid, 0);
  struct stat net_pin {};
  ASSERT_EQ(::stat(pod->net.c_str(), &net_pin), 0);
  EXPECT_NE(strCat("net:[", net_pin.st_ino, "]"), itest::nsLink("/proc/self/ns/net"));
  // Idempotent.
  auto again = client_->createSandbox(spec);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->net, pod->net);

  std::vector<std::string> script = {
      "sh", "-c", "hostname; cat /proc/sys/net/ipv4/ip_unprivileged_port_start; "
                  "ip link show lo | grep -q UP && echo lo-up; exec sleep 60"};
  auto a = run("a", makeBundle("a", script, &*pod));
  auto b = run("b", makeBundle("b", script, &*pod));
  ASSERT_GT(a.pid, 0);
  ASSERT_GT(b.pid, 0);
  std::string want = strCat("net:[", net_pin.st_ino, "]");
  EXPECT_EQ(itest::nsLink(strCat("/proc/", a.pid, "/ns/net")), want);
  EXPECT_EQ(itest::nsLink(strCat("/proc/", b.pid, "/ns/net")), want);
  EXPECT_EQ(itest::nsLink(strCat("/proc/", a.pid, "/ns/ipc")),
            itest::nsLink(strCat("/proc/", b.pid, "/ns/ipc")));
  EXPECT_NE(itest::nsLink(strCat("/proc/", a.pid, "/ns/pid")),
            itest::nsLink(strCat("/proc/", b.pid, "/ns/pid")));
  ASSERT_TRUE(waitForLog("a", "lo-up"));
  EXPECT_THAT(records("a"), ::testing::ElementsAre(Rec{"stdout", "F", "shim-pod"},
                                                   Rec{"stdout", "F", "81"},
                                                   Rec{"stdout", "F", "lo-up"}));

  for (const char* id : {"a", "b"}) {
    auto st = client_->stopContainer(id, 0);
    ASSERT_TRUE(st.ok()) << st.status();
    EXPECT_EQ(st->exit_code, 137);
    ASSERT_TRUE(client_->deleteContainer(id).ok());
  }
  ASSERT_TRUE(client_->removeSandbox().ok());
  EXPECT_FALSE(fs::exists(pod->net));
  EXPECT_FALSE(fs::exists(ns_dir_));
  auto mounts = fs::readFile("/proc/self/mountinfo");
  ASSERT_TRUE(mounts.ok());
  EXPECT_EQ(mounts->find(ns_dir_), std::string::npos) << "a pin is still mounted";
  EXPECT_TRUE(client_->removeSandbox(ns_dir_).ok()) << "removeSandbox is idempotent";
}

TEST_F(ShimPrivileged, SharedPidNamespaceRunsThePause) {
  SandboxSpec spec;
  spec.ns_dir = ns_dir_;
  spec.share_pid = true;
  auto pod = client_->createSandbox(spec);
  ASSERT_TRUE(pod.ok()) << pod.status();
  ASSERT_GT(pod->pause_pid, 0);
  EXPECT_TRUE(pod->pause_running);
  EXPECT_TRUE(isNsfsMount(pod->pid));
  auto comm = fs::readFile(strCat("/proc/", pod->pause_pid, "/comm"));
  ASSERT_TRUE(comm.ok());
  EXPECT_EQ(*comm, "berth-pause\n");
  auto c = run("c", makeBundle("c", {"sh", "-c", "cat /proc/1/comm; echo pid=$$"}, &*pod));
  auto done = waitExited("c");
  EXPECT_EQ(done.exit_code, 0);
  auto recs = records("c");
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(std::get<2>(recs[0]), "berth-pause");
  EXPECT_NE(std::get<2>(recs[1]), "pid=1");
  ASSERT_TRUE(client_->deleteContainer("c").ok());
  ASSERT_TRUE(client_->removeSandbox().ok());
  for (int i = 0; i < 100 && proc::isAlive(pod->pause_pid, 0); ++i) std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(proc::isAlive(pod->pause_pid, 0)) << "the pause process outlived removeSandbox";
  EXPECT_FALSE(fs::exists(ns_dir_));
}

// Children of the pause (orphans of the pod's containers) that exit are reaped: none
// is left a zombie, and the pause ends on SIGTERM.
TEST_F(ShimPrivileged, PauseReapsOrphansOfThePod) {
  SandboxSpec spec;
  spec.ns_dir = ns_dir_;
  spec.share_pid = true;
  auto pod = client_->createSandbox(spec);
  ASSERT_TRUE(pod.ok()) << pod.status();
  // The subshell exits at once, so its `sleep 0.2` is reparented to PID 1 (the pause)
  // and exits there 0.2 s later.
  run("orph", makeBundle("orph", {"sh", "-c", "(sleep 0.2 &); (sleep 0.2 &); echo forked; exec sleep 30"},
                         &*pod));
  ASSERT_TRUE(waitForLog("orph", "forked"));
  auto childrenOfPause = [&] {
    int n = 0, zombies = 0;
    auto dirs = fs::listSubdirs("/proc");
    if (!dirs.ok()) return std::pair{-1, -1};
    for (const auto& d : *dirs) {
      if (d.empty() || !isdigit(static_cast<unsigned char>(d[0]))) continue;
      auto stat = fs::readFile("/proc/" + d + "/stat");
      if (!stat.ok()) continue;
      auto close = stat->rfind(')');
      if (close == std::string::npos || close + 4 >= stat->size()) continue;
      char state = (*stat)[close + 2];
      int ppid = std::atoi(stat->c_str() + close + 4);
      if (ppid != pod->pause_pid) continue;
      ++n;
      if (state == 'Z') ++zombies;
    }
    return std::pair{n, zombies};
  };
  auto [n, zombies] = childrenOfPause();
  for (int i = 0; i < 100 && n > 0; ++i) {
    std::this_thread::sleep_for(20ms);
    std::tie(n, zombies) = childrenOfPause();
  }
  EXPECT_EQ(n, 0) << "orphans of the pod were not reaped by the pause (" << zombies << " zombies)";
  EXPECT_TRUE(proc::isAlive(pod->pause_pid, 0));
  ASSERT_TRUE(client_->stopContainer("orph", 0).ok());
  ASSERT_TRUE(client_->deleteContainer("orph").ok());
  ::kill(pod->pause_pid, SIGTERM);
  for (int i = 0; i < 100 && proc::isAlive(pod->pause_pid, 0); ++i) std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(proc::isAlive(pod->pause_pid, 0)) << "the pause did not end on SIGTERM";
  ASSERT_TRUE(client_->removeSandbox().ok());
}

TEST_F(ShimPrivileged, CriLogLinesExitCodesAndExitRecords) {
  auto sub = client_->subscribe();
  ASSERT_TRUE(sub.ok()) << sub.status();
  run("ok", makeBundle("ok", {"sh", "-c", "echo out1; echo err1 >&2; echo out2; printf tail"}));
  auto s = waitExited("ok");
  EXPECT_EQ(s.exit_code, 0);
  EXPECT_EQ(s.reason, "Completed");
  EXPECT_GE(s.finished_at_ns, s.started_at_ns);
  EXPECT_GT(s.started_at_ns, 0);
  auto recs = records("ok");
  std::vector<Rec> out, err;
  for (auto& r : recs) (std::get<0>(r) == "stdout" ? out : err).push_back(r);
  EXPECT_THAT(out, ::testing::ElementsAre(Rec{"stdout", "F", "out1"}, Rec{"stdout", "F", "out2"},
                                          Rec{"stdout", "P", "tail"}));
  EXPECT_THAT(err, ::testing::ElementsAre(Rec{"stderr", "F", "err1"}));
  auto rec = readExitRecord(state_, "ok");
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_EQ(rec->exit_code, 0);
  EXPECT_EQ(rec->reason, "Completed");
  // Without a cgroup v2 memory controller (this host) the record says why OOM
  // detection is off; with one, there is no note.
  if (!s.oom_note.empty()) {
    EXPECT_THAT(s.oom_note, HasSubstr("OOM kills cannot be detected"));
  }
  auto ev = sub->next(5s);
  ASSERT_TRUE(ev.ok()) << ev.status();
  EXPECT_EQ(ev->type, "exit");
  EXPECT_EQ(ev->container_id, "ok");
  EXPECT_EQ(ev->state.exit_code, 0);

  run("fail", makeBundle("fail", {"sh", "-c", "exit 1"}));
  s = waitExited("fail");
  EXPECT_EQ(s.exit_code, 1);
  EXPECT_EQ(s.reason, "Error");

  run("killed", makeBundle("killed", {"sleep", "60"}));
  ASSERT_TRUE(client_->kill("killed", SIGKILL).ok());
  s = waitExited("killed");
  EXPECT_EQ(s.exit_code, 137);
  EXPECT_EQ(s.reason, "Error");
  EXPECT_FALSE(s.oom_killed);
  rec = readExitRecord(state_, "killed");
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->exit_code, 137);
  EXPECT_EQ(client_->kill("killed", SIGTERM).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(client_->startContainer("killed").status().code(), absl::StatusCode::kFailedPrecondition);

  auto list = client_->listContainers();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 3u);
  for (const char* id : {"ok", "fail", "killed"}) ASSERT_TRUE(client_->deleteContainer(id).ok()) << id;
  EXPECT_FALSE(fs::exists(state_ + "/containers/ok"));
  EXPECT_EQ(client_->state("ok").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ShimPrivileged, LongLinesAreSplitAndTtyOutputIsLogged) {
  // 40000 'x' then a newline: 16384 P + 16384 P + 7232 F.
  run("long", makeBundle("long", {"sh", "-c", "head -c 40000 /dev/zero | tr '\\0' x; echo"}));
  EXPECT_EQ(waitExited("long").exit_code, 0);
  auto recs = records("long");
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(std::get<1>(recs[0]), "P");
  EXPECT_EQ(std::get<2>(recs[0]).size(), 16384u);
  EXPECT_EQ(std::get<1>(recs[1]), "P");
  EXPECT_EQ(std::get<1>(recs[2]), "F");
  EXPECT_EQ(std::get<2>(recs[2]).size(), 40000u - 2 * 16384u);

  run("tty", makeBundle("tty", {"sh", "-c", "echo on-a-tty; [ -t 1 ] && echo is-tty"}, nullptr, true), true);
  EXPECT_EQ(waitExited("tty").exit_code, 0);
  ASSERT_TRUE(waitForLog("tty", "is-tty"));
  EXPECT_THAT(records("tty"), ::testing::ElementsAre(Rec{"stdout", "F", "on-a-tty"},
                                                     Rec{"stdout", "F", "is-tty"}));
}

TEST_F(ShimPrivileged, StopEscalatesToSigkillAfterTheTimeout) {
  run("stubborn", makeBundle("stubborn", {"sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.2; done"}));
  ASSERT_TRUE(waitForLog("stubborn", "ready"));
  auto t0 = std::chrono::steady_clock::now();
  auto s = client_->stopContainer("stubborn", 2);
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->status, ContainerStatus::kExited);
  EXPECT_EQ(s->exit_code, 137);
  EXPECT_GE(took, 1900ms);
  EXPECT_LT(took, 8s);

  run("polite", makeBundle("polite", {"sh", "-c", "trap 'exit 3' TERM; echo ready; while :; do sleep 0.2; done"}));
  ASSERT_TRUE(waitForLog("polite", "ready"));
  t0 = std::chrono::steady_clock::now();
  s = client_->stopContainer("polite", 30);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->exit_code, 3);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  // Stopping an exited container answers at once.
  s = client_->stopContainer("polite", 30);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->exit_code, 3);
  EXPECT_EQ(client_->deleteContainer("nope").code(), absl::StatusCode::kNotFound);
}

TEST_F(ShimPrivileged, ExecSyncReturnsOutputAndTimesOut) {
  run("box", makeBundle("box", {"sleep", "60"}));
  ExecSpec e;
  e.id = "box";
  e.argv = {"sh", "-c", "echo hi; echo oops >&2; echo $FOO; exit 3"};
  e.env = {"FOO=bar"};
  e.timeout_s = 10;
  auto r = client_->execSync(e);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout_data, "hi\nbar\n");
  EXPECT_EQ(r->stderr_data, "oops\n");
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_FALSE(r->timed_out);

  e.argv = {"sleep", "30"};
  e.timeout_s = 1;
  auto t0 = std::chrono::steady_clock::now();
  r = client_->execSync(e);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->timed_out);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  // The timed-out process itself was killed, not only the runtime.
  ExecSpec ps = e;
  // Only the init ("sleep 60") may be left.
  ps.argv = {"sh", "-c", "ps -o args | grep -c '^sleep' || true"};
  ps.timeout_s = 10;
  auto left = client_->execSync(ps);
  ASSERT_TRUE(left.ok()) << left.status();
  EXPECT_EQ(left->stdout_data, "1\n") << left->stderr_data;

  // Running requests do not block others: a long exec and a state call together.
  e.argv = {"sleep", "2"};
  e.timeout_s = 10;
  std::thread slow([&] { EXPECT_TRUE(client_->execSync(e).ok()); });
  std::this_thread::sleep_for(200ms);
  t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(client_->state("box").ok());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  slow.join();

  ASSERT_TRUE(client_->stopContainer("box", 0).ok());
  e.argv = {"true"};
  EXPECT_EQ(client_->execSync(e).status().code(), absl::StatusCode::kFailedPrecondition);
}

// Reads `fd` until EOF (or `until` appears) within a few seconds.
std::string readAll(int fd, const std::string& until = "") {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    struct pollfd p = {fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) break;  // EOF, or EIO from a pty whose other side closed
    out.append(buf, static_cast<size_t>(n));
    if (!until.empty() && out.find(until) != std::string::npos) break;
  }
  return out;
}

TEST_F(ShimPrivileged, ExecStreamHandsOverPipesAndReportsTheExitCode) {
  run("box", makeBundle("box", {"sleep", "60"}));
  ExecStreamSpec e;
  e.id = "box";
  e.argv = {"sh", "-c", "read x; echo got $x; echo oops >&2; cat; exit 3"};
  e.attach_stdin = true;
  auto s = client_->execStream(e);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->tty);
  ASSERT_TRUE(s->stdin_fd && s->stdout_fd && s->stderr_fd);
  std::string input = "hello\n" + std::string(1 << 20, 'z');  // more than a pipe holds
  std::thread writer([&] {
    std::string_view left = input;
    while (!left.empty()) {
      ssize_t n = ::write(s->stdin_fd.get(), left.data(), left.size());
      if (n <= 0) break;
      left.remove_prefix(static_cast<size_t>(n));
    }
    s->stdin_fd.reset();  // EOF: cat ends, the shell exits
  });
  std::string out = readAll(s->stdout_fd.get());
  writer.join();
  EXPECT_EQ(out, "got hello\n" + std::string(1 << 20, 'z'));
  EXPECT_EQ(readAll(s->stderr_fd.get()), "oops\n");
  auto code = s->waitExit(10s);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 3);

  // Only stdout, killed by a signal.
  ExecStreamSpec k;
  k.id = "box";
  k.argv = {"sh", "-c", "echo up; kill -9 $$"};
  k.attach_stderr = false;
  auto ks = client_->execStream(k);
  ASSERT_TRUE(ks.ok()) << ks.status();
  EXPECT_FALSE(ks->stdin_fd);
  EXPECT_FALSE(ks->stderr_fd);
  EXPECT_EQ(readAll(ks->stdout_fd.get()), "up\n");
  auto kc = ks->waitExit(10s);
  ASSERT_TRUE(kc.ok()) << kc.status();
  EXPECT_EQ(*kc, 137);

  // Bad requests get clear errors.
  ExecStreamSpec none = k;
  none.attach_stdout = false;
  EXPECT_EQ(client_->execStream(none).status().code(), absl::StatusCode::kInvalidArgument);
  ExecStreamSpec missing = k;
  missing.id = "nope";
  EXPECT_EQ(client_->execStream(missing).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ShimPrivileged, ExecStreamWithATtyTakesResizesAndInput) {
  run("box", makeBundle("box", {"sleep", "60"}));
  ExecStreamSpec e;
  e.id = "box";
  e.argv = {"sh", "-c", "read x; stty size; echo tty=$(tty); exit 5"};
  e.tty = true;
  auto s = client_->execStream(e);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE(s->tty);
  ASSERT_TRUE(s->pty);
  EXPECT_FALSE(s->stdout_fd);
  struct winsize ws = {};
  ws.ws_row = 40;
  ws.ws_col = 123;
  ASSERT_EQ(::ioctl(s->pty.get(), TIOCSWINSZ, &ws), 0) << std::strerror(errno);
  ASSERT_EQ(::write(s->pty.get(), "go\n", 3), 3);
  std::string out = readAll(s->pty.get(), "tty=");
  out += readAll(s->pty.get());
  EXPECT_THAT(out, ::testing::HasSubstr("40 123"));
  EXPECT_THAT(out, ::testing::HasSubstr("tty=/dev/pts/"));
  auto code = s->waitExit(10s);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 5);
}

TEST_F(ShimPrivileged, AttachStreamsOutputAndStdinAndStdinOnceClosesIt) {
  // A shell reading its stdin: each line comes back on stdout and stderr.
  run("echoer", makeBundle("echoer", {"sh", "-c", "echo started; while read l; do echo out:$l; echo err:$l >&2; done; echo bye"}),
      false, true, true);
  ASSERT_TRUE(waitForLog("echoer", "started"));
  AttachSpec a;
  a.id = "echoer";
  a.attach_stdin = true;
  auto s = client_->attach(a);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE(s->stdin_fd && s->stdout_fd && s->stderr_fd);
  // A second, output-only session sees the same output.
  AttachSpec watch_only;
  watch_only.id = "echoer";
  watch_only.attach_stderr = false;
  auto w = client_->attach(watch_only);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_FALSE(w->stdin_fd);
  ASSERT_EQ(::write(s->stdin_fd.get(), "one\n", 4), 4);
  EXPECT_EQ(readAll(s->stdout_fd.get(), "out:one\n"), "out:one\n") << "output from now on, not the past";
  EXPECT_EQ(readAll(s->stderr_fd.get(), "err:one\n"), "err:one\n");
  EXPECT_EQ(readAll(w->stdout_fd.get(), "out:one\n"), "out:one\n");
  ASSERT_TRUE(waitForLog("echoer", "err:one")) << "the log still gets everything";
  // Ending the stdin session (stdin_once) closes the container's stdin: the loop ends.
  s->stdin_fd.reset();
  s->conn.reset();
  EXPECT_EQ(readAll(w->stdout_fd.get()), "bye\n") << "EOF once the container exits";
  EXPECT_EQ(waitExited("echoer").exit_code, 0);
  AttachSpec late = a;
  EXPECT_EQ(client_->attach(late).status().code(), absl::StatusCode::kFailedPrecondition)
      << "an exited container cannot be attached to";

  // stdin on a container created without it.
  run("nostdin", makeBundle("nostdin", {"sleep", "60"}));
  AttachSpec bad;
  bad.id = "nostdin";
  bad.attach_stdin = true;
  auto refused = client_->attach(bad);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()), ::testing::HasSubstr("without stdin"));
}

TEST_F(ShimPrivileged, AttachToATtyContainerTypesIntoItsTerminal) {
  run("term", makeBundle("term", {"sh", "-c", "read l; stty size; echo said:$l"}, nullptr, true), true, true);
  AttachSpec a;
  a.id = "term";
  a.attach_stdin = true;
  auto s = client_->attach(a);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->tty);
  EXPECT_FALSE(s->stderr_fd) << "a tty has one output stream";
  struct winsize ws = {};
  ws.ws_row = 33;
  ws.ws_col = 77;
  ASSERT_EQ(::ioctl(s->stdin_fd.get(), TIOCSWINSZ, &ws), 0) << std::strerror(errno);
  ASSERT_EQ(::write(s->stdin_fd.get(), "hi\n", 3), 3);
  std::string out = readAll(s->stdout_fd.get(), "said:hi");
  EXPECT_THAT(out, ::testing::HasSubstr("33 77"));
  EXPECT_THAT(out, ::testing::HasSubstr("said:hi"));
  EXPECT_EQ(waitExited("term").exit_code, 0);
}

TEST_F(ShimPrivileged, KeepsLoggingWithoutClientsAndANewClientSeesState) {
  {
    auto sub = client_->subscribe();
    ASSERT_TRUE(sub.ok());
    run("ticker", makeBundle("ticker", {"sh", "-c", "for i in 1 2 3 4 5; do echo tick $i; sleep 0.2; done"}));
    // `sub` and every call's connection close here, while the container runs.
  }
  client_.reset();
  std::this_thread::sleep_for(1500ms);
  client_ = std::make_unique<ShimClient>(state_ + "/shim.sock");
  auto list = client_->listContainers();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].id, "ticker");
  auto s = waitExited("ticker");
  EXPECT_EQ(s.exit_code, 0);
  auto recs = records("ticker");
  ASSERT_EQ(recs.size(), 5u);
  EXPECT_EQ(std::get<2>(recs[4]), "tick 5");
  auto found = findShim(state_);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->pid, shim_.pid);
}

TEST_F(ShimPrivileged, ReopenLogAfterRotation) {
  run("rot", makeBundle("rot", {"sh", "-c", "echo one; sleep 1; echo two; sleep 60"}));
  ASSERT_TRUE(waitForLog("rot", "one"));
  std::string rotated = logPath("rot") + ".1";
  ASSERT_EQ(::rename(logPath("rot").c_str(), rotated.c_str()), 0);
  ASSERT_TRUE(client_->reopenLog("rot").ok());
  ASSERT_TRUE(waitForLog("rot", "two"));
  auto old_log = fs::readFile(rotated);
  ASSERT_TRUE(old_log.ok());
  EXPECT_EQ(old_log->find("two"), std::string::npos);
  EXPECT_THAT(records("rot"), ::testing::ElementsAre(Rec{"stdout", "F", "two"}));
  ASSERT_TRUE(client_->stopContainer("rot", 0).ok());
}

TEST_F(ShimPrivileged, ShutdownRefusesWhileRunningThenExits) {
  run("live", makeBundle("live", {"sleep", "60"}));
  Status st = client_->shutdown(false);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("live"));
  ASSERT_TRUE(client_->stopContainer("live", 0).ok());
  ASSERT_TRUE(client_->shutdown(false).ok());
  for (int i = 0; i < 100 && proc::isAlive(shim_.pid, shim_.start_time); ++i) std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(proc::isAlive(shim_.pid, shim_.start_time));
  EXPECT_FALSE(fs::exists(state_ + "/shim.sock"));
  EXPECT_EQ(findShim(state_).status().code(), absl::StatusCode::kNotFound);
  // The exit record outlives the shim.
  auto rec = readExitRecord(state_, "live");
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_EQ(rec->exit_code, 137);
  client_.reset();
}

}  // namespace
}  // namespace berth::shim

namespace berth::shim {
namespace {

// "VmRSS" etc. from /proc/<pid>/status, in KiB (0 if missing).
long statusKiB(pid_t pid, const std::string& key) {
  auto text = fs::readFile(strCat("/proc/", pid, "/status"));
  if (!text.ok()) return 0;
  for (const auto& line : split(*text, '\n', true)) {
    if (line.rfind(key + ":", 0) == 0) return std::atol(line.c_str() + key.size() + 1);
  }
  return 0;
}

TEST_F(ShimPrivileged, IdleMemoryWithOneRunningContainer) {
  SandboxSpec spec;
  spec.ns_dir = ns_dir_;
  spec.share_pid = true;
  auto pod = client_->createSandbox(spec);
  ASSERT_TRUE(pod.ok()) << pod.status();
  run("idle", makeBundle("idle", {"sh", "-c", "echo up; exec sleep 60"}, &*pod));
  ASSERT_TRUE(waitForLog("idle", "up"));
  std::this_thread::sleep_for(200ms);
  long rss = statusKiB(shim_.pid, "VmRSS");
  long anon = statusKiB(shim_.pid, "RssAnon");
  long file = statusKiB(shim_.pid, "RssFile");
  long pause_rss = statusKiB(pod->pause_pid, "VmRSS");
  std::cout << "berth-shim idle with one running container: VmRSS " << rss << " KiB (anon "
            << anon << ", file " << file << "); pause VmRSS " << pause_rss << " KiB\n";
  RecordProperty("shim_vmrss_kib", static_cast<int>(rss));
  RecordProperty("pause_vmrss_kib", static_cast<int>(pause_rss));
  EXPECT_GT(rss, 0);
  EXPECT_LT(rss, 4096) << "the shim should stay small";
  EXPECT_LT(pause_rss, 1024);
  ASSERT_TRUE(client_->stopContainer("idle", 0).ok());
}

}  // namespace
}  // namespace berth::shim
