// berthd as a child process for e2e tests: throwaway root, state, socket and kubelet
// root dir (the CSI sockets) under /tmp/berth-e2e-XXXXXX, its log in <dir>/berthd.log,
// a gRPC channel once the socket
// answers, and SIGTERM + waitpid (by PID) on destruction. Needs BERTHD_BINARY defined
// by the test target.
//
// Thread-safety: one test thread.
#pragma once

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "common/fs.h"
#include "cri/proto/api.grpc.pb.h"
#include "tests/fixtures/image_builder.h"
#include "tests/fixtures/registry_fixture.h"

namespace berth::testing {

// A berthd child process on throwaway root/state/socket; stopped by PID.
class Berthd {
 public:
  // `dir`: reuse the root/state of an earlier Berthd that was kill9()ed (a restart);
  // "" makes a new one.
  explicit Berthd(const std::vector<std::string>& extra_args, const std::string& dir = "") {
    if (dir.empty()) {
      char tmpl[] = "/tmp/berth-e2e-XXXXXX";
      dir_ = ::mkdtemp(tmpl);
    } else {
      dir_ = dir;
    }
    socket_ = dir_ + "/state/berth.sock";
    std::vector<std::string> args = {BERTHD_BINARY,         "--root",    dir_ + "/root",
                                     "--state",             dir_ + "/state",
                                     "--cni-conf-dir",      dir_ + "/net.d",
                                     "--kubelet-root-dir",  dir_ + "/kubelet",
                                     "--log-level",         "debug"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      int log = ::open((dir_ + "/berthd.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(log, 1);
      ::dup2(log, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    // Connect once the socket exists: gRPC's reconnect backoff would otherwise add
    // seconds after a first attempt that came too early.
    for (int i = 0; i < 2000 && !fs::exists(socket_); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    channel_ = grpc::CreateChannel("unix://" + socket_, grpc::InsecureChannelCredentials());
    ready_ = channel_->WaitForConnected(std::chrono::system_clock::now() +
                                        std::chrono::seconds(20));
    runtime_ = runtime::v1::RuntimeService::NewStub(channel_);
    images_ = runtime::v1::ImageService::NewStub(channel_);
  }
  ~Berthd() {
    runtime_.reset();
    images_.reset();
    channel_.reset();
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    if (!keep_dir_) (void)fs::removeAll(dir_);
  }

  // SIGKILLs berthd (a crash) and keeps its dirs for a restarted Berthd(args, dir()).
  void kill9() {
    runtime_.reset();
    images_.reset();
    channel_.reset();
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
    }
    keep_dir_ = true;
  }

  bool ready() const { return ready_; }
  std::string log() const { return fs::readFile(dir_ + "/berthd.log").value_or(""); }
  const std::string& dir() const { return dir_; }
  const std::string& socket() const { return socket_; }
  pid_t pid() const { return pid_; }
  runtime::v1::RuntimeService::Stub& runtime() { return *runtime_; }
  runtime::v1::ImageService::Stub& images() { return *images_; }

 private:
  std::string dir_;
  std::string socket_;
  pid_t pid_ = -1;
  bool ready_ = false;
  bool keep_dir_ = false;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<runtime::v1::RuntimeService::Stub> runtime_;
  std::unique_ptr<runtime::v1::ImageService::Stub> images_;
};

// The e2e suites' registry: Debian's docker-registry (plain HTTP) with the fixture
// busybox image as library/busybox:1.36. nullptr when this host cannot run it (not
// root, tools missing); the suites' SetUp skips then with the reason.
inline RegistryFixture* startBusyboxRegistry() {
  if (::geteuid() != 0 || !checkRegistryTools().ok() || !checkBusyboxStatic().ok()) {
    return nullptr;
  }
  auto registry = RegistryFixture::start(RegistryFixture::Mode::kPlainHttp);
  EXPECT_TRUE(registry.ok()) << registry.status();
  if (!registry.ok()) return nullptr;
  auto image = standardImage("busybox-multi");
  EXPECT_TRUE(image.ok()) << image.status();
  Status pushed = image.ok() ? (*registry)->push("library/busybox", "1.36", **image)
                             : image.status();
  EXPECT_TRUE(pushed.ok()) << pushed;
  return pushed.ok() ? registry->release() : nullptr;
}

// Writes <dir>/registries.conf marking `host_port` insecure (plain HTTP) and returns
// its path, for berthd's --registries-conf.
inline std::string writeInsecureRegistriesConf(const std::string& dir,
                                               const std::string& host_port) {
  std::string conf = dir + "/registries.conf";
  Status st = fs::writeFileAtomic(
      conf, strCat("[[registry]]\nlocation = \"", host_port, "\"\ninsecure = true\n"));
  EXPECT_TRUE(st.ok()) << st;
  return conf;
}

// Writes <dir>/net.d/10-bridge.conflist: Debian's reference bridge + host-local
// plugins on `subnet`, IPAM state under <dir>/ipam (never the host's /var/lib/cni).
// Only for berthds running in a network namespace the test made (the bridge is
// created there).
inline void writeBridgeConflist(const std::string& dir, const std::string& subnet) {
  Status st = fs::mkdirAll(dir + "/net.d");
  EXPECT_TRUE(st.ok()) << st;
  st = fs::writeFileAtomic(
      dir + "/net.d/10-bridge.conflist",
      strCat(R"({"cniVersion":"1.0.0","name":"e2e","plugins":[{"type":"bridge","bridge":"e2e0",)",
             R"("isGateway":true,"ipMasq":false,"ipam":{"type":"host-local","dataDir":")", dir,
             R"(/ipam","ranges":[[{"subnet":")", subnet, R"("}]]}}]})"));
  EXPECT_TRUE(st.ok()) << st;
}

// Moves the calling process (call before it starts threads) into a new network
// namespace with `lo` up, so bridges and pods the test makes never touch the host's.
inline Status enterOwnNetworkNamespace() {
  if (::unshare(CLONE_NEWNET) != 0) return lastErrnoError("unshare(CLONE_NEWNET)");
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return lastErrnoError("socket");
  struct ifreq ifr = {};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  int rc = ::ioctl(fd, SIOCGIFFLAGS, &ifr);
  if (rc == 0) {
    ifr.ifr_flags |= IFF_UP;
    rc = ::ioctl(fd, SIOCSIFFLAGS, &ifr);
  }
  int err = errno;
  ::close(fd);
  if (rc != 0) return errnoError(err, "set lo up in the test's network namespace");
  return absl::OkStatus();
}

}  // namespace berth::testing
