// The e2e pods suites' fixture: BerthdPodsTest runs berthd (on throwaway dirs, in the
// test's own network namespace) with the fixture registry's busybox image and
// Debian's reference bridge + host-local CNI plugins, and wraps the CRI calls the
// tests make. Also httpGet and mountsUnder.
//
// Thread-safety: one test thread.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <grpcpp/generic/generic_stub.h>
#include <gmock/gmock.h>
#include <nlohmann/json.hpp>
#include <gtest/gtest.h>
#include "common/fs.h"
#include "common/proc.h"
#include "common/scope_guard.h"
#include "common/strings.h"
#include "tests/e2e/berthd_process.h"

namespace berth::testing {

namespace v1 = ::runtime::v1;
using ::testing::HasSubstr;

inline constexpr char kCniBin[] = "/usr/lib/cni";

inline RegistryFixture* registry = nullptr;
inline std::string setup_skip;

class BerthdPodsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) {
      setup_skip = "needs root (network namespace, mounts, cgroups)";
      return;
    }
    if (!fs::exists(strCat(kCniBin, "/bridge")) || !fs::exists(strCat(kCniBin, "/host-local"))) {
      setup_skip = "Debian's containernetworking-plugins are not installed (/usr/lib/cni)";
      return;
    }
    Status st = enterOwnNetworkNamespace();
    if (!st.ok()) {
      setup_skip = std::string(st.message());
      return;
    }
    registry = startBusyboxRegistry();
    if (registry == nullptr) setup_skip = "the docker-registry fixture cannot run here";
  }
  static void TearDownTestSuite() {
    delete registry;
    registry = nullptr;
    // The suite's own cgroup parent (containers' cgroups below it are gone by now).
    for (const char* root : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
      ::rmdir(strCat(root, cgroupParent()).c_str());
    }
  }
  // Pods of this suite get their own cgroup parent, never the default one.
  static std::string cgroupParent() { return strCat("/berth-e2e-", ::getpid()); }

  void SetUp() override {
    if (!setup_skip.empty()) GTEST_SKIP() << setup_skip;
    start();
  }

  // Starts berthd on a new dir (with a registries.conf for the fixture registry and
  // a bridge conflist), or restarts it on the dir of one that was kill9()ed.
  void start(std::string dir = "", const std::vector<std::string>& extra = {}) {
    if (dir.empty()) {
      char tmpl[] = "/tmp/berth-e2e-XXXXXX";
      dir = ::mkdtemp(tmpl);
      writeInsecureRegistriesConf(dir, registry->hostPort());
      writeBridgeConflist(dir, "10.77.0.0/24");
    }
    std::vector<std::string> args{"--cni-bin-dir", kCniBin, "--registries-conf",
                                  dir + "/registries.conf"};
    args.insert(args.end(), extra.begin(), extra.end());
    berthd_ = std::make_unique<Berthd>(args, dir);
    ASSERT_TRUE(berthd_->ready()) << berthd_->log();
  }

  void TearDown() override {
    if (!berthd_) return;
    // Remove whatever pods are left, so the dir holds no mount or process.
    grpc::ClientContext ctx;
    v1::ListPodSandboxRequest req;
    v1::ListPodSandboxResponse resp;
    if (berthd_->runtime().ListPodSandbox(&ctx, req, &resp).ok()) {
      for (const auto& p : resp.items()) {
        grpc::ClientContext c2;
        v1::RemovePodSandboxRequest r;
        r.set_pod_sandbox_id(p.id());
        v1::RemovePodSandboxResponse out;
        grpc::Status st = berthd_->runtime().RemovePodSandbox(&c2, r, &out);
        EXPECT_TRUE(st.ok()) << st.error_message();
      }
    }
    if (HasFailure()) std::fprintf(stderr, "berthd log:\n%s\n", berthd_->log().c_str());
  }

  std::string image() const { return registry->hostPort() + "/library/busybox:1.36"; }

  void pull() {
    grpc::ClientContext ctx;
    v1::PullImageRequest req;
    req.mutable_image()->set_image(image());
    v1::PullImageResponse resp;
    grpc::Status st = berthd_->images().PullImage(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }

  v1::PodSandboxConfig podConfig(const std::string& name) {
    v1::PodSandboxConfig c;
    c.mutable_metadata()->set_name(name);
    c.mutable_metadata()->set_namespace_("shop");
    c.mutable_metadata()->set_uid("uid-" + name);
    c.set_hostname(name);
    c.set_log_directory(berthd_->dir() + "/logs/" + name);
    auto* dns = c.mutable_dns_config();
    dns->add_servers("10.96.0.10");
    dns->add_searches("shop.svc.cluster.local");
    dns->add_searches("svc.cluster.local");
    dns->add_searches("cluster.local");
    dns->add_options("ndots:5");
    (*c.mutable_labels())["app"] = name;
    c.mutable_linux()->set_cgroup_parent(cgroupParent());
    return c;
  }

  std::string runPod(const v1::PodSandboxConfig& config) {
    grpc::ClientContext ctx;
    v1::RunPodSandboxRequest req;
    *req.mutable_config() = config;
    v1::RunPodSandboxResponse resp;
    grpc::Status st = berthd_->runtime().RunPodSandbox(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.pod_sandbox_id();
  }

  std::string createContainer(const std::string& pod, const v1::PodSandboxConfig& pod_config,
                              const std::string& name, const std::string& script,
                              const std::vector<v1::Mount>& mounts = {}) {
    grpc::ClientContext ctx;
    v1::CreateContainerRequest req;
    req.set_pod_sandbox_id(pod);
    *req.mutable_sandbox_config() = pod_config;
    auto* c = req.mutable_config();
    c->mutable_metadata()->set_name(name);
    c->mutable_image()->set_image(image());
    c->add_command("/bin/sh");
    c->add_args("-c");
    c->add_args(script);
    c->set_log_path(name + ".log");
    for (const v1::Mount& m : mounts) *c->add_mounts() = m;
    v1::CreateContainerResponse resp;
    grpc::Status st = berthd_->runtime().CreateContainer(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.container_id();
  }

  grpc::Status startContainer(const std::string& id) {
    grpc::ClientContext ctx;
    v1::StartContainerRequest req;
    req.set_container_id(id);
    v1::StartContainerResponse resp;
    return berthd_->runtime().StartContainer(&ctx, req, &resp);
  }

  grpc::Status stopContainer(const std::string& id, int64_t timeout = 0) {
    grpc::ClientContext ctx;
    v1::StopContainerRequest req;
    req.set_container_id(id);
    req.set_timeout(timeout);
    v1::StopContainerResponse resp;
    return berthd_->runtime().StopContainer(&ctx, req, &resp);
  }

  grpc::Status removeContainer(const std::string& id) {
    grpc::ClientContext ctx;
    v1::RemoveContainerRequest req;
    req.set_container_id(id);
    v1::RemoveContainerResponse resp;
    return berthd_->runtime().RemoveContainer(&ctx, req, &resp);
  }

  grpc::Status stopPod(const std::string& id) {
    grpc::ClientContext ctx;
    v1::StopPodSandboxRequest req;
    req.set_pod_sandbox_id(id);
    v1::StopPodSandboxResponse resp;
    return berthd_->runtime().StopPodSandbox(&ctx, req, &resp);
  }

  grpc::Status removePod(const std::string& id) {
    grpc::ClientContext ctx;
    v1::RemovePodSandboxRequest req;
    req.set_pod_sandbox_id(id);
    v1::RemovePodSandboxResponse resp;
    return berthd_->runtime().RemovePodSandbox(&ctx, req, &resp);
  }

  v1::ContainerStatus containerStatus(const std::string& id) {
    grpc::ClientContext ctx;
    v1::ContainerStatusRequest req;
    req.set_container_id(id);
    v1::ContainerStatusResponse resp;
    grpc::Status st = berthd_->runtime().ContainerStatus(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.status();
  }

  v1::PodSandboxStatus podStatus(const std::string& id) {
    grpc::ClientContext ctx;
    v1::PodSandboxStatusRequest req;
    req.set_pod_sandbox_id(id);
    v1::PodSandboxStatusResponse resp;
    grpc::Status st = berthd_->runtime().PodSandboxStatus(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.status();
  }

  // Waits until the container has exited (up to `seconds`).
  v1::ContainerStatus waitExited(const std::string& id, int seconds = 20) {
    v1::ContainerStatus s;
    for (int i = 0; i < seconds * 20; ++i) {
      s = containerStatus(id);
      if (s.state() == v1::CONTAINER_EXITED) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return s;
  }

  v1::ExecSyncResponse execSync(const std::string& id, const std::vector<std::string>& cmd,
                                grpc::Status* status = nullptr, int64_t timeout = 10) {
    grpc::ClientContext ctx;
    v1::ExecSyncRequest req;
    req.set_container_id(id);
    for (const auto& a : cmd) req.add_cmd(a);
    req.set_timeout(timeout);
    v1::ExecSyncResponse resp;
    grpc::Status st = berthd_->runtime().ExecSync(&ctx, req, &resp);
    if (status) {
      *status = st;
    } else {
      EXPECT_TRUE(st.ok()) << st.error_message();
    }
    return resp;
  }

  std::unique_ptr<Berthd> berthd_;
};

// GET http://<ip>:<port>/<path> from the test's (node) network namespace.
inline std::string httpGet(const std::string& ip, int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
  std::string out;
  for (int i = 0; i < 100; ++i) {
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ::close(fd);
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  }
  std::string req = strCat("GET ", path, " HTTP/1.0\r\nHost: ", ip, "\r\n\r\n");
  (void)!::write(fd, req.data(), req.size());
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

// Mounts under `dir` (from /proc/self/mountinfo).
inline std::vector<std::string> mountsUnder(const std::string& dir) {
  std::vector<std::string> out;
  auto info = fs::readFile("/proc/self/mountinfo");
  if (!info.ok()) return out;
  for (const auto& line : split(*info, '\n')) {
    auto fields = split(line, ' ');
    if (fields.size() > 4 && fields[4].rfind(dir, 0) == 0) out.push_back(fields[4]);
  }
  return out;
}

}  // namespace berth::testing
