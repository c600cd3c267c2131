// Privileged integration tests of cri::PodManager with the real berth-shim and
// berth-runtime but a fake pod network (tests/unit/cni/fake_pod_network.h), so CNI
// failures can be injected at will: a failed ADD rolls everything back, a failed DEL
// leaves the pod stoppable again, and a shim that dies is noticed, its containers are
// killed (not left running unowned) and its pause process is reaped on removal.
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/fs.h"
#include "common/proc.h"
#include "common/sqlite.h"
#include "common/strings.h"
#include "cri/pod_manager.h"
#include "tests/fixtures/image_builder.h"
#include "tests/unit/cni/fake_pod_network.h"

namespace berth::cri {
namespace {

namespace v1 = ::runtime::v1;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::vector<std::string> mountsUnder(const std::string& dir) {
  std::vector<std::string> out;
  auto info = fs::readFile("/proc/self/mountinfo");
  if (!info.ok()) return out;
  for (const auto& line : split(*info, '\n')) {
    auto f = split(line, ' ');
    if (f.size() > 4 && f[4].rfind(dir, 0) == 0) out.push_back(f[4]);
  }
  return out;
}

class PodManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (namespaces, mounts, cgroups)";
    if (!testing::checkBusyboxStatic().ok()) GTEST_SKIP() << "needs busybox-static";
    char tmpl[] = "/tmp/berth-podmgr-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    auto db = Database::open(dir_ + "/berth.db");
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    image::ImageServiceOptions io;
    io.root = dir_ + "/root";
    io.certs_dir = dir_ + "/certs.d";
    auto images = image::ImageService::open(io, db_.get());
    ASSERT_TRUE(images.ok()) << images.status();
    images_ = std::move(*images);
    // The fixture busybox, imported from an OCI layout.
    auto busybox = testing::standardImage("busybox-multi");
    ASSERT_TRUE(busybox.ok()) << busybox.status();
    ASSERT_TRUE(testing::writeOciLayout(dir_ + "/layout", {{"busybox:1.36", **busybox}}).ok());
    auto imported = images_->importArchive(dir_ + "/layout");
    ASSERT_TRUE(imported.ok()) << imported.status();
    ASSERT_EQ(imported->size(), 1u);
    image_ = imported->front().id;
    auto store = PodStore::open(db_.get());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    startManager();
  }

  void startManager() {
    manager_.reset();
    PodManagerOptions o;
    o.state_dir = dir_ + "/state";
    o.shim_binary = BERTH_SHIM_BINARY;
    o.runtime = BERTH_RUNTIME_BINARY;
    auto m = PodManager::create(o, store_.get(), images_.get(), &network_);
    ASSERT_TRUE(m.ok()) << m.status();
    manager_ = std::move(*m);
  }

  void TearDown() override {
    if (manager_) {
      auto pods = manager_->listPodSandbox({});
      if (pods.ok()) {
        for (const auto& p : *pods) EXPECT_TRUE(manager_->removePodSandbox(p.id()).ok());
      }
    }
    manager_.reset();
    store_.reset();
    images_.reset();
    db_.reset();
    for (const auto& m : mountsUnder(dir_)) ::umount2(m.c_str(), MNT_DETACH);
    if (!dir_.empty()) (void)fs::removeAll(dir_);
    for (const char* root : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
      ::rmdir(strCat(root, cgroupParent()).c_str());
    }
  }

  static std::string cgroupParent() { return strCat("/berth-podmgr-", ::getpid()); }

  v1::PodSandboxConfig podConfig(const std::string& name) {
    v1::PodSandboxConfig c;
    c.mutable_metadata()->set_name(name);
    c.mutable_metadata()->set_namespace_("test");
    c.mutable_metadata()->set_uid("uid-" + name);
    c.set_hostname(name);
    c.set_log_directory(dir_ + "/logs/" + name);
    c.mutable_linux()->set_cgroup_parent(cgroupParent());
    return c;
  }

  std::string runningContainer(const std::string& pod, const v1::PodSandboxConfig& pc) {
    v1::ContainerConfig c;
    c.mutable_metadata()->set_name("sleeper");
    c.mutable_image()->set_image(image_);
    c.add_command("/bin/busybox");
    c.add_args("sleep");
    c.add_args("600");
    auto id = manager_->createContainer(pod, c, pc);
    EXPECT_TRUE(id.ok()) << id.status();
    if (!id.ok()) return "";
    EXPECT_TRUE(manager_->startContainer(*id).ok());
    return *id;
  }

  std::vector<std::string> subdirs(const std::string& sub) {
    return fs::listSubdirs(dir_ + "/state/" + sub).value_or(std::vector<std::string>{});
  }

  std::string dir_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<image::ImageService> images_;
  std::unique_ptr<PodStore> store_;
  cni::testing::FakePodNetwork network_;
  std::unique_ptr<PodManager> manager_;
  std::string image_;
};

TEST_F(PodManagerTest, FailedNetworkAddRollsBackShimNamespacesAndRecord) {
  network_.failNextAdd(absl::UnavailableError("plugin \"bridge\" failed: no bridge"));
  auto id = manager_->runPodSandbox(podConfig("web"), "");
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(id.status().message()), HasSubstr("run pod sandbox \"web_test_uid-web_0\""));
  EXPECT_THAT(std::string(id.status().message()), HasSubstr("no bridge"));
  EXPECT_THAT(subdirs("shims"), IsEmpty());
  EXPECT_THAT(subdirs("ns"), IsEmpty());
  EXPECT_THAT(subdirs("pods"), IsEmpty());
  EXPECT_THAT(mountsUnder(dir_), IsEmpty());
  EXPECT_TRUE(manager_->listPodSandbox({})->empty());
  // The name is free again.
  EXPECT_TRUE(manager_->runPodSandbox(podConfig("web"), "").ok());
}

TEST_F(PodManagerTest, FailedNetworkDelKeepsThePodStoppableUntilItWorks) {
  auto pod = manager_->runPodSandbox(podConfig("web"), "");
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_THAT(manager_->podSandboxStatus(*pod, false)->status().network().ip(),
              ::testing::StartsWith("10.99.0."));
  network_.failNextDel(absl::InternalError("plugin \"bridge\" DEL failed"));
  Status st = manager_->stopPodSandbox(*pod);
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), HasSubstr("DEL failed"));
  // Retried (as kubelet does): now it works, and again is fine.
  EXPECT_TRUE(manager_->stopPodSandbox(*pod).ok());
  EXPECT_TRUE(manager_->stopPodSandbox(*pod).ok());
  EXPECT_EQ(manager_->podSandboxStatus(*pod, false)->status().state(), v1::SANDBOX_NOTREADY);
  EXPECT_TRUE(manager_->removePodSandbox(*pod).ok());
  EXPECT_TRUE(manager_->removePodSandbox(*pod).ok());
  EXPECT_THAT(mountsUnder(dir_), IsEmpty());
}

TEST_F(PodManagerTest, DeadShimIsNoticedItsContainersKilledAndThePauseReaped) {
  v1::PodSandboxConfig pc = podConfig("crashy");
  auto pod = manager_->runPodSandbox(pc, "");
  ASSERT_TRUE(pod.ok()) << pod.status();
  std::string id = runningContainer(*pod, pc);
  ASSERT_FALSE(id.empty());
  auto status = manager_->podSandboxStatus(*pod, true);
  ASSERT_TRUE(status.ok());
  auto info = nlohmann::json::parse(status->info().at("info"));
  int shim_pid = info.value("shimPid", 0);
  ASSERT_GT(shim_pid, 0);
  auto sandbox = nlohmann::json::parse(
      *fs::readFile(dir_ + "/state/shims/" + *pod + "/sandbox.json"));
  int pause_pid = sandbox.value("pause_pid", 0);
  ASSERT_GT(pause_pid, 0);
  int container_pid = manager_->containerPid(*manager_->container(id));
  ASSERT_GT(container_pid, 0);

  ASSERT_EQ(::kill(shim_pid, SIGKILL), 0);
  // berthd restarts meanwhile (a new manager on the same state) and finds the shim gone.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  startManager();
  ASSERT_TRUE(manager_->recover().ok());
  EXPECT_EQ(manager_->podSandboxStatus(*pod, false)->status().state(), v1::SANDBOX_NOTREADY);
  auto c = manager_->containerStatus(id, false);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->status().state(), v1::CONTAINER_EXITED);
  EXPECT_EQ(c->status().reason(), "Unknown");
  // The container's process did not outlive its shim unowned.
  for (int i = 0; i < 100 && proc::state(container_pid) != 0 && proc::state(container_pid) != 'Z';
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(proc::state(container_pid) == 0 || proc::state(container_pid) == 'Z');
  // Removing the pod unpins its namespaces and kills the orphaned pause.
  ASSERT_TRUE(manager_->removePodSandbox(*pod).ok());
  for (int i = 0; i < 100 && proc::state(pause_pid) != 0 && proc::state(pause_pid) != 'Z'; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(proc::state(pause_pid) == 0 || proc::state(pause_pid) == 'Z');
  EXPECT_THAT(mountsUnder(dir_), IsEmpty());
  EXPECT_THAT(subdirs("containers"), IsEmpty());
}

}  // namespace
}  // namespace berth::cri
