// The built-in provisioner against the test API server (real list/watch protocol) with
// a real HostPathBackend on a temp directory (accounted capacity, no quotas): which
// claims it provisions, the exact PV it writes, restart between volume and PV, binding
// on and off, release with Delete and Retain, block volumes, data sources, orphaned
// volumes, volumes still published, injected API errors. Absence is checked after a
// barrier: a later claim's PV appearing proves the single worker passed the earlier
// keys (informer events are delivered in order, the queue is FIFO).
#include "csi/provisioner.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/fs.h"
#include "common/sqlite.h"
#include "csi/driver_info.h"
#include "tests/fixtures/fake_apiserver.h"

namespace berth::csi {
namespace {

using namespace std::chrono_literals;
using kube::Json;

constexpr const char* kClaims = "/api/v1/persistentvolumeclaims";
constexpr const char* kVolumes = "/api/v1/persistentvolumes";
constexpr const char* kClasses = "/apis/storage.k8s.io/v1/storageclasses";
constexpr int64_t kMi = int64_t{1} << 20;
constexpr int64_t kGi = int64_t{1} << 30;

bool waitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout = 15s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return done();
}

Json storageClass(const std::string& name, const std::string& mode,
                  const std::string& reclaim = "", const std::string& provisioner = "hostpath.berth.dev") {
  Json sc = {{"apiVersion", "storage.k8s.io/v1"},
             {"kind", "StorageClass"},
             {"metadata", {{"name", name}}},
             {"provisioner", provisioner},
             {"volumeBindingMode", mode}};
  if (!reclaim.empty()) sc["reclaimPolicy"] = reclaim;
  return sc;
}

Json claim(const std::string& name, const std::string& sc, const std::string& size,
           const std::string& selected_node = "", const std::string& volume_mode = "") {
  Json c = {{"apiVersion", "v1"},
            {"kind", "PersistentVolumeClaim"},
            {"metadata", {{"namespace", "default"}, {"name", name}}},
            {"spec",
             {{"storageClassName", sc},
              {"accessModes", {"ReadWriteOnce"}},
              {"resources", {{"requests", {{"storage", size}}}}}}},
            {"status", {{"phase", "Pending"}}}};
  if (!selected_node.empty()) {
    c["metadata"]["annotations"][std::string(kAnnSelectedNode)] = selected_node;
  }
  if (!volume_mode.empty()) c["spec"]["volumeMode"] = volume_mode;
  return c;
}

class ProvisionerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto fake = testing::FakeApiServer::start();
    ASSERT_TRUE(fake.ok()) << fake.status();
    api_ = std::move(*fake);
    char tmpl[] = "/tmp/berth-prov-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto db = Database::open(dir_ + "/csi.db");
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    auto store = VolumeStore::open(db_.get());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    openBackend();
    kube::ClientConfig cfg;
    cfg.server = api_->url();
    auto client = kube::ApiClient::create(cfg);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
  }
  void TearDown() override {
    provisioner_.reset();
    backend_.reset();
    store_.reset();
    db_.reset();
    if (!dir_.empty()) (void)fs::removeAll(dir_);
  }

  void openBackend() {
    BackendOptions o;
    o.base_dir = dir_ + "/volumes";
    o.node_id = "node-a";
    o.capacity_bytes = 64 * kGi;  // accounted: directories take no space up front
    o.default_volume_bytes = 16 * kMi;
    o.use_quota = false;
    auto b = HostPathBackend::create(o, store_.get());
    ASSERT_TRUE(b.ok()) << b.status();
    backend_ = std::move(*b);
  }

  void startProvisioner(bool bind_claims = false) {
    ProvisionerOptions o;
    o.node_name = "node-a";
    o.bind_claims = bind_claims;
    o.backoff_base = 10ms;
    o.backoff_cap = 200ms;
    o.informer_backoff_base = 20ms;
    auto p = Provisioner::create(client_.get(), backend_.get(), o);
    ASSERT_TRUE(p.ok()) << p.status();
    provisioner_ = std::move(*p);
    // Watch requests, not open streams: a stopped provisioner's streams may not have
    // ended on the server side yet. A counted watch request is past the failure
    // injection (failNextRequests), which is what the tests need.
    size_t watches = api_->watchRequests().size();
    provisioner_->start();
    ASSERT_TRUE(provisioner_->waitForSync(10s));
    ASSERT_TRUE(api_->waitForWatchRequests(watches + 3, 10s));
  }

  std::string uidOf(const std::string& name) {
    auto c = api_->object(kClaims, "default", name);
    return c ? (*c)["metadata"]["uid"].get<std::string>() : "";
  }
  std::optional<Json> pvOf(const std::string& claim_name) {
    return api_->object(kVolumes, "", "pvc-" + uidOf(claim_name));
  }
  bool waitForPv(const std::string& claim_name) {
    return waitFor([&] { return pvOf(claim_name).has_value(); });
  }
  std::optional<VolumeRecord> volumeOf(const std::string& claim_name) {
    auto v = store_->getVolumeByName("pvc-" + uidOf(claim_name));
    return v.ok() ? *v : std::nullopt;
  }
  size_t volumeCount() {
    auto v = store_->listVolumes();
    return v.ok() ? v->size() : 0;
  }
  size_t pvCount() {
    auto l = client_->list(kVolumes);
    return l.ok() ? l->items.size() : 0;
  }
  // A claim provisioned after everything so far was processed (see the file comment).
  void barrier(const std::string& name) {
    api_->upsert(kClasses, storageClass("barrier", "Immediate"));
    api_->upsert(kClaims, claim(name, "barrier", "1Mi"));
    ASSERT_TRUE(waitForPv(name)) << "barrier claim " << name << " was not provisioned";
  }

  std::unique_ptr<testing::FakeApiServer> api_;
  std::string dir_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<VolumeStore> store_;
  std::unique_ptr<HostPathBackend> backend_;
  std::unique_ptr<kube::ApiClient> client_;
  std::unique_ptr<Provisioner> provisioner_;
};

TEST(Quantity, ParsesKubernetesQuantities) {
  struct Case {
    const char* text;
    int64_t bytes;
  } cases[] = {
      {"0", 0},           {"1", 1},
      {"1073741824", kGi}, {"1Ki", 1024},
      {"10Gi", 10 * kGi}, {"1.5Gi", 3 * kGi / 2},
      {"0.5Mi", kMi / 2}, {"2Ti", 2 * 1024 * kGi},
      {"1Pi", int64_t{1} << 50}, {"1Ei", int64_t{1} << 60},
      {"1k", 1000},       {"5M", 5000000},
      {"1G", 1000000000}, {"2T", 2000000000000},
      {"1P", 1000000000000000}, {"1E", 1000000000000000000},
      {"1.5G", 1500000000}, {"1e3", 1000},
      {"1E9", 1000000000}, {"2.5e+2", 250},
      {"100m", 1},        {"1500m", 2},
      {"1n", 1},          {"+7", 7},
      {" 3Mi ", 3 * kMi}, {".5Ki", 512},
      {"007", 7},         {"1.0000Gi", kGi},
  };
  for (const Case& c : cases) {
    auto v = parseQuantityBytes(c.text);
    ASSERT_TRUE(v.ok()) << c.text << ": " << v.status();
    EXPECT_EQ(*v, c.bytes) << c.text;
  }
  for (const char* bad : {"", "Gi", "1GB", "1K", "-1Gi", "1.2.3", "abc", "1 Gi", "16Ei",
                          "9223372036854775808", "1e", "1e-30", "1x"}) {
    auto v = parseQuantityBytes(bad);
    if (v.ok()) {
      ADD_FAILURE() << "\"" << bad << "\" parsed as " << *v;
    } else {
      EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    }
  }
  EXPECT_THAT(parseQuantityBytes("10GB").status().message(), ::testing::HasSubstr("\"10GB\""));
  EXPECT_EQ(*parseQuantityBytes("9223372036854775807"), INT64_MAX);
}

TEST(Quantity, FormatsCanonically) {
  EXPECT_EQ(formatQuantityBytes(10 * kGi), "10Gi");
  EXPECT_EQ(formatQuantityBytes(3 * kGi / 2), "1536Mi");
  EXPECT_EQ(formatQuantityBytes(1000), "1000");
  EXPECT_EQ(formatQuantityBytes(1024), "1Ki");
  EXPECT_EQ(formatQuantityBytes(0), "0");
}

TEST(DecideClaim, FollowsExternalProvisionerRules) {
  Json wffc = storageClass("hostpath", "WaitForFirstConsumer");
  Json immediate = storageClass("fast", "Immediate");
  EXPECT_TRUE(decideClaim(claim("a", "hostpath", "1Gi", "node-a"), &wffc, "node-a").provision);
  EXPECT_FALSE(decideClaim(claim("a", "hostpath", "1Gi"), &wffc, "node-a").provision);
  auto other = decideClaim(claim("a", "hostpath", "1Gi", "node-b"), &wffc, "node-a");
  EXPECT_FALSE(other.provision);
  EXPECT_THAT(other.reason, ::testing::HasSubstr("node-b"));
  EXPECT_FALSE(decideClaim(claim("a", "hostpath", "1Gi", "node-a"), nullptr, "node-a").provision);
  EXPECT_TRUE(decideClaim(claim("a", "fast", "1Gi"), &immediate, "node-a").provision);
  EXPECT_FALSE(decideClaim(claim("a", "fast", "1Gi", "node-b"), &immediate, "node-a").provision);

  // The PV controller's annotation decides over the class; naming us is enough.
  Json foreign = storageClass("ebs", "Immediate", "", "ebs.csi.aws.com");
  Json c = claim("a", "ebs", "1Gi");
  EXPECT_FALSE(decideClaim(c, &foreign, "node-a").provision);
  c["metadata"]["annotations"][std::string(kAnnStorageProvisioner)] = "hostpath.berth.dev";
  EXPECT_TRUE(decideClaim(c, &foreign, "node-a").provision);
  Json d = claim("a", "fast", "1Gi");
  d["metadata"]["annotations"][std::string(kAnnBetaStorageProvisioner)] = "other.example.com";
  EXPECT_FALSE(decideClaim(d, &immediate, "node-a").provision);

  // Bound, not Pending, being deleted.
  Json bound = claim("a", "fast", "1Gi");
  bound["spec"]["volumeName"] = "pv-1";
  EXPECT_FALSE(decideClaim(bound, &immediate, "node-a").provision);
  Json lost = claim("a", "fast", "1Gi");
  lost["status"]["phase"] = "Lost";
  EXPECT_FALSE(decideClaim(lost, &immediate, "node-a").provision);
  Json deleting = claim("a", "fast", "1Gi");
  deleting["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z";
  EXPECT_FALSE(decideClaim(deleting, &immediate, "node-a").provision);

  // allowedTopologies on our key must list this node.
  Json topo = immediate;
  topo["allowedTopologies"] = {{{"matchLabelExpressions",
                                 {{{"key", std::string(kTopologyKey)}, {"values", {"node-b"}}}}}}};
  EXPECT_FALSE(decideClaim(claim("a", "fast", "1Gi"), &topo, "node-a").provision);
  topo["allowedTopologies"][0]["matchLabelExpressions"][0]["values"].push_back("node-a");
  EXPECT_TRUE(decideClaim(claim("a", "fast", "1Gi"), &topo, "node-a").provision);
}

TEST_F(ProvisionerTest, CreateRejectsANodeNameOtherThanTheDrivers) {
  auto p = Provisioner::create(client_.get(), backend_.get(), ProvisionerOptions{.node_name = "node-b"});
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(p.status().message(), ::testing::HasSubstr("node-a"));
  EXPECT_FALSE(Provisioner::create(client_.get(), backend_.get(), {}).ok());
}

TEST_F(ProvisionerTest, WaitForFirstConsumerProvisionsOnceThisNodeIsSelected) {
  api_->upsert(kClasses, storageClass("hostpath", "WaitForFirstConsumer"));
  Json mount_options_class = storageClass("other", "Immediate", "", "ebs.csi.aws.com");
  api_->upsert(kClasses, mount_options_class);
  api_->upsert(kClaims, claim("data", "hostpath", "10Gi"));
  startProvisioner();
  api_->upsert(kClaims, claim("elsewhere", "hostpath", "1Gi", "node-b"));
  api_->upsert(kClaims, claim("foreign", "other", "1Gi", "node-a"));
  api_->upsert(kClaims, claim("no-class", "missing", "1Gi", "node-a"));
  barrier("barrier-1");
  EXPECT_FALSE(pvOf("data"));
  EXPECT_FALSE(pvOf("elsewhere"));
  EXPECT_FALSE(pvOf("foreign"));
  EXPECT_FALSE(pvOf("no-class"));
  EXPECT_EQ(volumeCount(), 1u);  // the barrier's

  // The scheduler picks this node.
  api_->upsert(kClaims, claim("data", "hostpath", "10Gi", "node-a"));
  ASSERT_TRUE(waitForPv("data"));
  auto volume = volumeOf("data");
  ASSERT_TRUE(volume);
  EXPECT_EQ(volume->capacity_bytes, 10 * kGi);
  EXPECT_EQ(volume->access_type, AccessType::kMount);
  struct stat st {};
  EXPECT_EQ(::stat(volume->path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));

  // bind_claims is off: the claim is left for the PV controller.
  barrier("barrier-2");
  auto data = api_->object(kClaims, "default", "data");
  ASSERT_TRUE(data);
  EXPECT_FALSE((*data)["spec"].contains("volumeName"));
  EXPECT_EQ(provisioner_->stats().provisioned, 3);
}

TEST_F(ProvisionerTest, WritesThePersistentVolumeExactly) {
  Json sc = storageClass("hostpath", "WaitForFirstConsumer", "Retain");
  sc["mountOptions"] = {"noatime"};
  api_->upsert(kClasses, sc);
  Json c = claim("data-garage-0", "hostpath", "1.5Gi", "node-a");
  c["spec"]["accessModes"] = {"ReadWriteOnce", "ReadWriteOncePod"};
  api_->upsert(kClaims, c);
  startProvisioner();
  ASSERT_TRUE(waitForPv("data-garage-0"));
  Json pv = *pvOf("data-garage-0");
  auto stored_claim = *api_->object(kClaims, "default", "data-garage-0");
  std::string uid = uidOf("data-garage-0");
  auto volume = volumeOf("data-garage-0");
  ASSERT_TRUE(volume);
  EXPECT_EQ(volume->capacity_bytes, 3 * kGi / 2);

  EXPECT_EQ(pv["metadata"]["name"], "pvc-" + uid);
  EXPECT_EQ(pv["metadata"]["annotations"],
            Json({{"pv.kubernetes.io/provisioned-by", "hostpath.berth.dev"}}));
  EXPECT_EQ(pv["metadata"]["finalizers"],
            Json::array({"external-provisioner.volume.kubernetes.io/finalizer"}));
  Json want_spec = {
      {"capacity", {{"storage", "1536Mi"}}},
      {"accessModes", {"ReadWriteOnce", "ReadWriteOncePod"}},
      {"volumeMode", "Filesystem"},
      {"storageClassName", "hostpath"},
      {"persistentVolumeReclaimPolicy", "Retain"},
      {"mountOptions", {"noatime"}},
      {"claimRef",
       {{"apiVersion", "v1"},
        {"kind", "PersistentVolumeClaim"},
        {"namespace", "default"},
        {"name", "data-garage-0"},
        {"uid", uid},
        {"resourceVersion", stored_claim["metadata"]["resourceVersion"]}}},
      {"nodeAffinity",
       {{"required",
         {{"nodeSelectorTerms",
           Json::array({{{"matchExpressions",
                          Json::array({{{"key", "topology.hostpath.berth.dev/node"},
                                        {"operator", "In"},
                                        {"values", {"node-a"}}}})}}})}}}}},
      {"csi",
       {{"driver", "hostpath.berth.dev"},
        {"volumeHandle", volume->id},
        {"volumeAttributes", {{"berth.dev/capacity-enforced", "accounted"}}}}}};
  EXPECT_EQ(pv["spec"], want_spec) << pv["spec"].dump(2);

  // The success event names the claim.
  EXPECT_TRUE(waitFor([&] {
    auto events = client_->list("/api/v1/events");
    if (!events.ok()) return false;
    for (const Json& e : events->items) {
      if (e["reason"] == "ProvisioningSucceeded" && e["involvedObject"]["name"] == "data-garage-0" &&
          e["involvedObject"]["uid"] == uid) {
        return true;
      }
    }
    return false;
  }));
}

TEST_F(ProvisionerTest, RestartBetweenVolumeAndPvGivesOneOfEach) {
  api_->upsert(kClasses, storageClass("hostpath", "WaitForFirstConsumer"));
  startProvisioner();
  // Every request from now on fails: the volume is made, the PV create is not.
  api_->failNextRequests(1000000, 500);
  api_->upsert(kClaims, claim("data", "hostpath", "1Gi", "node-a"));
  ASSERT_TRUE(waitFor([&] { return volumeOf("data").has_value(); }));
  std::string volume_id = volumeOf("data")->id;
  ASSERT_TRUE(waitFor([&] { return provisioner_->stats().failures >= 2; }));
  EXPECT_FALSE(pvOf("data"));
  provisioner_.reset();  // "crash"
  api_->failNextRequests(0);

  openBackend();  // recovery over the same store keeps the ready volume
  startProvisioner();
  ASSERT_TRUE(waitForPv("data"));
  EXPECT_EQ((*pvOf("data"))["spec"]["csi"]["volumeHandle"], volume_id);
  EXPECT_EQ(volumeCount(), 1u);
  EXPECT_EQ(pvCount(), 1u);
}

TEST_F(ProvisionerTest, ApiErrorsAreRetried) {
  api_->upsert(kClasses, storageClass("hostpath", "Immediate"));
  startProvisioner();
  // The watches are open; the next requests are the worker's PV creates.
  api_->failNextRequests(3, 503);
  api_->upsert(kClaims, claim("data", "hostpath", "64Mi"));
  ASSERT_TRUE(waitForPv("data"));
  EXPECT_GE(provisioner_->stats().failures, 1);
  EXPECT_EQ(volumeCount(), 1u);
  EXPECT_EQ(pvCount(), 1u);
}

TEST_F(ProvisionerTest, ReleaseWithDeleteRemovesVolumeAndPv) {
  api_->upsert(kClasses, storageClass("hostpath", "WaitForFirstConsumer"));
  api_->upsert(kClaims, claim("data", "hostpath", "1Gi", "node-a"));
  startProvisioner(/*bind_claims=*/true);
  ASSERT_TRUE(waitForPv("data"));
  std::string pv_name = "pvc-" + uidOf("data");
  ASSERT_TRUE(waitFor([&] {
    auto c = api_->object(kClaims, "default", "data");
    return c && (*c)["spec"].value("volumeName", "") == pv_name;
  }));
  std::string path = volumeOf("data")->path;
  ASSERT_TRUE(fs::writeFileAtomic(path + "/file", "payload").ok());

  ASSERT_TRUE(api_->remove(kClaims, "default", "data"));
  ASSERT_TRUE(waitFor([&] { return !api_->object(kVolumes, "", pv_name).has_value(); }));
  struct stat st {};
  EXPECT_NE(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(volumeCount(), 0u);
  EXPECT_EQ(provisioner_->stats().deleted, 1);
}

TEST_F(ProvisionerTest, ReleasedPhaseWithDeleteIsDeletedWhilePublishedIsRetried) {
  api_->upsert(kClasses, storageClass("hostpath", "Immediate", "Delete"));
  api_->upsert(kClaims, claim("data", "hostpath", "1Gi"));
  startProvisioner();
  ASSERT_TRUE(waitForPv("data"));
  VolumeRecord volume = *volumeOf("data");
  // A pod still has it published.
  PublicationRecord pub;
  pub.volume_id = volume.id;
  pub.target_path = dir_ + "/target";
  ASSERT_TRUE(store_->putPublication(pub).ok());
  Json pv = *pvOf("data");
  pv["status"]["phase"] = "Released";  // what the PV controller does
  api_->upsert(kVolumes, pv);
  ASSERT_TRUE(waitFor([&] { return provisioner_->stats().failures >= 2; }));
  EXPECT_TRUE(pvOf("data"));
  EXPECT_TRUE(volumeOf("data"));
  // Unpublished: the next retry deletes both.
  ASSERT_TRUE(store_->deletePublication(volume.id, pub.target_path).ok());
  ASSERT_TRUE(waitFor([&] { return !pvOf("data").has_value(); }));
  EXPECT_EQ(volumeCount(), 0u);
}

TEST_F(ProvisionerTest, RetainKeepsVolumeAndPv) {
  api_->upsert(kClasses, storageClass("hostpath", "WaitForFirstConsumer", "Retain"));
  api_->upsert(kClaims, claim("data", "hostpath", "1Gi", "node-a"));
  startProvisioner(/*bind_claims=*/true);
  ASSERT_TRUE(waitForPv("data"));
  std::string uid = uidOf("data");
  std::string pv_name = "pvc-" + uid;
  std::string path = volumeOf("data")->path;
  ASSERT_TRUE(api_->remove(kClaims, "default", "data"));
  barrier("barrier");
  EXPECT_TRUE(api_->object(kVolumes, "", pv_name));
  auto kept = store_->getVolumeByName(pv_name);
  ASSERT_TRUE(kept.ok() && kept->has_value());
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0);

  // An admin deletes the retained PV: only our finalizer goes, the data stays.
  Json pv = *api_->object(kVolumes, "", pv_name);
  pv["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z";
  api_->upsert(kVolumes, pv);
  ASSERT_TRUE(waitFor([&] {
    auto p = api_->object(kVolumes, "", pv_name);
    return p && (*p)["metadata"]["finalizers"] == Json::array();
  }));
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(provisioner_->stats().deleted, 0);
}

TEST_F(ProvisionerTest, BlockModeGivesABlockVolume) {
  api_->upsert(kClasses, storageClass("hostpath", "WaitForFirstConsumer"));
  api_->upsert(kClaims, claim("raw", "hostpath", "64Mi", "node-a", "Block"));
  startProvisioner();
  ASSERT_TRUE(waitForPv("raw"));
  auto volume = volumeOf("raw");
  ASSERT_TRUE(volume);
  EXPECT_EQ(volume->access_type, AccessType::kBlock);
  struct stat st {};
  ASSERT_EQ(::stat(volume->path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_size, 64 * kMi);
  Json pv = *pvOf("raw");
  EXPECT_EQ(pv["spec"]["volumeMode"], "Block");
  EXPECT_EQ(pv["spec"]["capacity"]["storage"], "64Mi");
}

TEST_F(ProvisionerTest, ClonesAClaimAndRestoresASnapshot) {
  api_->upsert(kClasses, storageClass("hostpath", "Immediate"));
  api_->upsert(kClaims, claim("source", "hostpath", "32Mi"));
  startProvisioner(/*bind_claims=*/true);
  ASSERT_TRUE(waitFor([&] {
    auto c = api_->object(kClaims, "default", "source");
    return c && (*c)["spec"].contains("volumeName");
  }));
  VolumeRecord source = *volumeOf("source");
  ASSERT_TRUE(fs::writeFileAtomic(source.path + "/hello", "world").ok());

  Json clone = claim("clone", "hostpath", "32Mi");
  clone["spec"]["dataSource"] = {{"kind", "PersistentVolumeClaim"}, {"name", "source"}};
  api_->upsert(kClaims, clone);
  ASSERT_TRUE(waitForPv("clone"));
  auto cloned = volumeOf("clone");
  ASSERT_TRUE(cloned);
  EXPECT_EQ(cloned->source_kind, "volume");
  EXPECT_EQ(cloned->source_id, source.id);
  EXPECT_EQ(*fs::readFile(cloned->path + "/hello"), "world");

  auto snap = backend_->createSnapshot("snapshot-1", source.id);
  ASSERT_TRUE(snap.ok()) << snap.status();
  Json restore = claim("restore", "hostpath", "32Mi");
  restore["spec"]["dataSourceRef"] = {
      {"apiGroup", "snapshot.storage.k8s.io"}, {"kind", "VolumeSnapshot"}, {"name", "snap"}};
  api_->upsert(kClaims, restore);
  // Not there yet: retried until the snapshot and its content exist and are ready.
  ASSERT_TRUE(waitFor([&] { return provisioner_->stats().failures >= 1; }));
  api_->upsert("/apis/snapshot.storage.k8s.io/v1/volumesnapshots",
               {{"apiVersion", "snapshot.storage.k8s.io/v1"},
                {"kind", "VolumeSnapshot"},
                {"metadata", {{"namespace", "default"}, {"name", "snap"}}},
                {"status", {{"boundVolumeSnapshotContentName", "snapcontent-1"}, {"readyToUse", true}}}});
  api_->upsert("/apis/snapshot.storage.k8s.io/v1/volumesnapshotcontents",
               {{"apiVersion", "snapshot.storage.k8s.io/v1"},
                {"kind", "VolumeSnapshotContent"},
                {"metadata", {{"name", "snapcontent-1"}}},
                {"spec", {{"driver", "hostpath.berth.dev"}}},
                {"status", {{"snapshotHandle", snap->id}, {"readyToUse", true}}}});
  ASSERT_TRUE(waitForPv("restore"));
  auto restored = volumeOf("restore");
  ASSERT_TRUE(restored);
  EXPECT_EQ(restored->source_kind, "snapshot");
  EXPECT_EQ(restored->source_id, snap->id);
  EXPECT_EQ(*fs::readFile(restored->path + "/hello"), "world");

  // A populator data source is not supported: no volume, no retry loop.
  Json populated = claim("populated", "hostpath", "32Mi");
  populated["spec"]["dataSourceRef"] = {
      {"apiGroup", "populator.example.com"}, {"kind", "Thing"}, {"name", "x"}};
  api_->upsert(kClaims, populated);
  barrier("barrier");
  EXPECT_FALSE(pvOf("populated"));
  EXPECT_FALSE(volumeOf("populated"));
}

TEST_F(ProvisionerTest, VolumeOfAClaimDeletedBeforeItsPvIsRemoved) {
  api_->upsert(kClasses, storageClass("hostpath", "WaitForFirstConsumer"));
  api_->upsert(kClaims, claim("gone", "hostpath", "1Gi", "node-b"));
  // As if this node had made the volume and crashed before the PV.
  CreateVolumeParams params;
  params.name = "pvc-" + uidOf("gone");
  params.required_bytes = kGi;
  auto made = backend_->createVolume(params);
  ASSERT_TRUE(made.ok()) << made.status();
  startProvisioner();
  ASSERT_TRUE(api_->remove(kClaims, "default", "gone"));
  ASSERT_TRUE(waitFor([&] { return provisioner_->stats().orphans_deleted == 1; }));
  EXPECT_EQ(volumeCount(), 0u);
  struct stat st {};
  EXPECT_NE(::stat(made->path.c_str(), &st), 0);
}

TEST_F(ProvisionerTest, PvOfAnotherNodeIsLeftAlone) {
  api_->upsert(kClasses, storageClass("hostpath", "Immediate"));
  api_->upsert(kClaims, claim("data", "hostpath", "1Gi"));
  startProvisioner();
  ASSERT_TRUE(waitForPv("data"));
  // Another node's PV of our driver whose claim is gone.
  Json foreign = *pvOf("data");
  foreign["metadata"] = {{"name", "pvc-foreign"},
                         {"annotations", {{"pv.kubernetes.io/provisioned-by", "hostpath.berth.dev"}}}};
  foreign["spec"]["claimRef"]["uid"] = "no-such-uid";
  foreign["spec"]["claimRef"]["name"] = "no-such-claim";
  foreign["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] =
      {"node-b"};
  api_->upsert(kVolumes, foreign);
  barrier("barrier");
  EXPECT_TRUE(api_->object(kVolumes, "", "pvc-foreign"));
  EXPECT_EQ(provisioner_->stats().deleted, 0);
}

TEST_F(ProvisionerTest, ImmediateRaceLostToAnotherNodeDropsTheLocalVolume) {
  api_->upsert(kClasses, storageClass("fast", "Immediate"));
  api_->upsert(kClaims, claim("shared", "fast", "1Gi"));
  std::string pv_name = "pvc-" + uidOf("shared");
  // node-b won: its PV exists; this node had made a volume of the same name.
  CreateVolumeParams params;
  params.name = pv_name;
  params.required_bytes = kGi;
  ASSERT_TRUE(backend_->createVolume(params).ok());
  Json pv = {{"apiVersion", "v1"}, {"kind", "PersistentVolume"}};
  pv["metadata"]["name"] = pv_name;
  pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] = "hostpath.berth.dev";
  pv["spec"]["persistentVolumeReclaimPolicy"] = "Delete";
  pv["spec"]["claimRef"] = {{"namespace", "default"}, {"name", "shared"}, {"uid", uidOf("shared")}};
  Json expr = {{"key", "topology.hostpath.berth.dev/node"}, {"operator", "In"}, {"values", {"node-b"}}};
  pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"] =
      Json::array({{{"matchExpressions", Json::array({expr})}}});
  pv["spec"]["csi"] = {{"driver", "hostpath.berth.dev"}, {"volumeHandle", "node-b-volume"}};
  api_->upsert(kVolumes, pv);
  startProvisioner();
  ASSERT_TRUE(waitFor([&] { return volumeCount() == 0; }));
  barrier("barrier");
  EXPECT_EQ((*api_->object(kVolumes, "", pv_name))["spec"]["csi"]["volumeHandle"], "node-b-volume");
  EXPECT_EQ(provisioner_->stats().deleted, 0);
}

TEST_F(ProvisionerTest, ShutdownIsPrompt) {
  startProvisioner();
  // The watches are long-lived (minutes): returning at all means they were cancelled.
  provisioner_->shutdown();
  provisioner_->shutdown();  // idempotent
  EXPECT_TRUE(waitFor([&] { return api_->activeWatches() == 0; }));
}

}  // namespace
}  // namespace berth::csi
