// e2e: storage on a real berthd, the way a cluster uses it. A test API server holds a
// StorageClass and a PVC; berthd's built-in provisioner makes the volume and the PV;
// the test plays kubelet: plugin registration on <kubelet-root>/plugins_registry,
// NodeStage/NodePublish on the CSI socket, then pods over CRI that mount the
// published path. Data written by one pod is read by the next; release deletes the
// volume and its data. The test process runs in its own network and mount namespaces,
// so no mount or address reaches the host.
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "csi/proto/csi.grpc.pb.h"
#include "csi/proto/pluginregistration.grpc.pb.h"
#include "tests/e2e/berthd_pods_fixture.h"
#include "tests/fixtures/fake_apiserver.h"

namespace berth::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

constexpr char kNode[] = "e2e-node";
constexpr char kClaims[] = "/api/v1/persistentvolumeclaims";
constexpr char kVolumes[] = "/api/v1/persistentvolumes";
constexpr char kClasses[] = "/apis/storage.k8s.io/v1/storageclasses";

bool waitFor(const std::function<bool()>& done, std::chrono::seconds timeout = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

class BerthdStorageTest : public BerthdPodsTest {
 protected:
  static void SetUpTestSuite() {
    // Before any thread exists: CLONE_NEWNS needs a single-threaded process.
    if (::geteuid() == 0) {
      if (::unshare(CLONE_NEWNS) != 0 ||
          ::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
        setup_skip = strCat("cannot make a private mount namespace: ", std::strerror(errno));
        return;
      }
    }
    BerthdPodsTest::SetUpTestSuite();
  }

  void SetUp() override {
    if (!setup_skip.empty()) GTEST_SKIP() << setup_skip;
    auto api = FakeApiServer::start();
    ASSERT_TRUE(api.ok()) << api.status();
    api_ = std::move(*api);
    char tmpl[] = "/tmp/berth-e2e-kube-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    kube_dir_ = tmpl;
    std::string kubeconfig = kube_dir_ + "/kubeconfig";
    ASSERT_TRUE(fs::writeFileAtomic(kubeconfig,
                                    strCat("apiVersion: v1\nkind: Config\n"
                                           "clusters: [{name: e2e, cluster: {server: \"",
                                           api_->url(), "\"}}]\n"
                                           "users: [{name: e2e, user: {}}]\n"
                                           "contexts: [{name: e2e, context: {cluster: e2e, user: e2e}}]\n"
                                           "current-context: e2e\n"))
                    .ok());
    start("", {"--kubeconfig", kubeconfig, "--node-name", kNode, "--proxy-mode", "off"});
  }

  void TearDown() override {
    BerthdPodsTest::TearDown();
    berthd_.reset();  // stops the provisioner before the API server goes
    api_.reset();
    if (!kube_dir_.empty()) (void)fs::removeAll(kube_dir_);
  }

  std::string kubeletDir() const { return berthd_->dir() + "/kubelet"; }

  std::unique_ptr<FakeApiServer> api_;
  std::string kube_dir_;
};

TEST_F(BerthdStorageTest, ClaimIsProvisionedPublishedIntoPodsKeptAcrossPodsAndFreedOnRelease) {
  // 1. kubelet's plugin watcher: GetInfo on the registration socket, then the verdict.
  std::string reg_socket = kubeletDir() + "/plugins_registry/hostpath.berth.dev-reg.sock";
  std::string csi_socket = kubeletDir() + "/plugins/hostpath.berth.dev/csi.sock";
  // berthd starts its CSI component after the CRI socket serves.
  ASSERT_TRUE(waitFor([&] { return fs::exists(reg_socket); })) << berthd_->log();
  auto reg = ::pluginregistration::Registration::NewStub(
      grpc::CreateChannel("unix://" + reg_socket, grpc::InsecureChannelCredentials()));
  {
    grpc::ClientContext ctx;
    ::pluginregistration::PluginInfo info;
    ASSERT_TRUE(reg->GetInfo(&ctx, {}, &info).ok());
    EXPECT_EQ(info.type(), "CSIPlugin");
    EXPECT_EQ(info.name(), "hostpath.berth.dev");
    EXPECT_EQ(info.endpoint(), csi_socket);
    EXPECT_THAT(info.supported_versions(), ::testing::Contains("1.0.0"));
    grpc::ClientContext ctx2;
    ::pluginregistration::RegistrationStatus status;
    status.set_plugin_registered(true);
    ::pluginregistration::RegistrationStatusResponse out;
    ASSERT_TRUE(reg->NotifyRegistrationStatus(&ctx2, status, &out).ok());
  }
  EXPECT_THAT(berthd_->log(), HasSubstr("kubelet registered CSI driver hostpath.berth.dev"));

  // 2. A StatefulSet's claim, scheduled to this node.
  api_->upsert(kClasses, {{"apiVersion", "storage.k8s.io/v1"},
                          {"kind", "StorageClass"},
                          {"metadata", {{"name", "hostpath"}}},
                          {"provisioner", "hostpath.berth.dev"},
                          {"reclaimPolicy", "Delete"},
                          {"volumeBindingMode", "WaitForFirstConsumer"}});
  json claim = api_->upsert(
      kClaims, {{"apiVersion", "v1"},
                {"kind", "PersistentVolumeClaim"},
                {"metadata",
                 {{"namespace", "garage"},
                  {"name", "data-garage-0"},
                  {"annotations", {{"volume.kubernetes.io/selected-node", kNode}}}}},
                {"spec",
                 {{"storageClassName", "hostpath"},
                  {"accessModes", {"ReadWriteOnce"}},
                  {"resources", {{"requests", {{"storage", "1Gi"}}}}}}},
                {"status", {{"phase", "Pending"}}}});
  std::string pv_name = "pvc-" + claim["metadata"]["uid"].get<std::string>();
  ASSERT_TRUE(waitFor([&] { return api_->object(kVolumes, "", pv_name).has_value(); }))
      << berthd_->log();
  json pv = *api_->object(kVolumes, "", pv_name);
  EXPECT_EQ(pv["spec"]["csi"]["driver"], "hostpath.berth.dev");
  EXPECT_EQ(pv["spec"]["capacity"]["storage"], "1Gi");
  EXPECT_EQ(pv["spec"]["claimRef"]["name"], "data-garage-0");
  EXPECT_EQ(pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
               ["values"][0],
            kNode);
  std::string volume_id = pv["spec"]["csi"]["volumeHandle"];
  std::string volume_dir = berthd_->dir() + "/root/volumes/volumes/" + volume_id;
  EXPECT_TRUE(fs::exists(volume_dir)) << "csi-base-dir defaults to <root>/volumes";

  // 3. kubelet mounts it for a pod: stage, then publish into the pod's volume dir.
  auto node = ::csi::v1::Node::NewStub(
      grpc::CreateChannel("unix://" + csi_socket, grpc::InsecureChannelCredentials()));
  ::csi::v1::VolumeCapability cap;
  cap.mutable_mount();
  cap.mutable_access_mode()->set_mode(::csi::v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
  std::string staging = kubeletDir() + "/plugins/kubernetes.io/csi/hostpath.berth.dev/x/globalmount";
  std::string target = kubeletDir() + "/pods/uid-garage-0/volumes/kubernetes.io~csi/" + pv_name + "/mount";
  ASSERT_TRUE(fs::mkdirAll(staging).ok());
  {
    grpc::ClientContext ctx;
    ::csi::v1::NodeStageVolumeRequest req;
    req.set_volume_id(volume_id);
    req.set_staging_target_path(staging);
    *req.mutable_volume_capability() = cap;
    for (auto& [k, v] : pv["spec"]["csi"]["volumeAttributes"].items()) {
      (*req.mutable_volume_context())[k] = v.get<std::string>();
    }
    ::csi::v1::NodeStageVolumeResponse out;
    grpc::Status st = node->NodeStageVolume(&ctx, req, &out);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  auto publish = [&] {
    grpc::ClientContext ctx;
    ::csi::v1::NodePublishVolumeRequest req;
    req.set_volume_id(volume_id);
    req.set_staging_target_path(staging);
    req.set_target_path(target);
    *req.mutable_volume_capability() = cap;
    ::csi::v1::NodePublishVolumeResponse out;
    return node->NodePublishVolume(&ctx, req, &out);
  };
  grpc::Status published = publish();
  ASSERT_TRUE(published.ok()) << published.error_message();
  EXPECT_TRUE(publish().ok()) << "NodePublishVolume is idempotent";
  EXPECT_THAT(mountsUnder(target), ::testing::ElementsAre(target));

  // 4. Two pods in turn: the first writes, the second reads what the first wrote.
  pull();
  if (HasFatalFailure()) return;
  v1::Mount mount;
  mount.set_container_path("/data");
  mount.set_host_path(target);
  auto runOnce = [&](const std::string& name, const std::string& script) {
    v1::PodSandboxConfig config = podConfig(name);
    std::string pod = runPod(config);
    std::string c = createContainer(pod, config, "main", script, {mount});
    EXPECT_TRUE(startContainer(c).ok());
    v1::ContainerStatus cs = waitExited(c);
    auto log = fs::readFile(cs.log_path());
    EXPECT_TRUE(removePod(pod).ok());
    EXPECT_EQ(cs.exit_code(), 0) << log.value_or("");
    return log.value_or("");
  };
  runOnce("garage-0", "echo kept across pods > /data/object && sync");
  EXPECT_EQ(fs::readFile(volume_dir + "/object").value_or(""), "kept across pods\n");
  EXPECT_THAT(runOnce("garage-0-again", "cat /data/object"), HasSubstr("kept across pods"));

  // 5. kubelet tears down: unpublish, unstage; nothing stays mounted.
  {
    grpc::ClientContext ctx;
    ::csi::v1::NodeUnpublishVolumeRequest req;
    req.set_volume_id(volume_id);
    req.set_target_path(target);
    ::csi::v1::NodeUnpublishVolumeResponse out;
    ASSERT_TRUE(node->NodeUnpublishVolume(&ctx, req, &out).ok());
    grpc::ClientContext ctx2;
    ::csi::v1::NodeUnstageVolumeRequest ureq;
    ureq.set_volume_id(volume_id);
    ureq.set_staging_target_path(staging);
    ::csi::v1::NodeUnstageVolumeResponse uout;
    ASSERT_TRUE(node->NodeUnstageVolume(&ctx2, ureq, &uout).ok());
  }
  EXPECT_THAT(mountsUnder(kubeletDir() + "/pods"), ::testing::IsEmpty());
  EXPECT_FALSE(fs::exists(target));

  // 6. The StatefulSet's claim is deleted: reclaimPolicy Delete frees volume and PV.
  ASSERT_TRUE(api_->remove(kClaims, "garage", "data-garage-0"));
  EXPECT_TRUE(waitFor([&] { return !api_->object(kVolumes, "", pv_name).has_value(); }))
      << berthd_->log();
  EXPECT_FALSE(fs::exists(volume_dir)) << "DeleteVolume frees the space";
}

}  // namespace
}  // namespace berth::testing
