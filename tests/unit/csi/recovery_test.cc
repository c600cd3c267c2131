// Crash safety: the driver is stopped with the leftovers a crash between any two
// steps of CreateVolume / DeleteVolume / CreateSnapshot / ControllerExpandVolume
// would leave, and restarted; no orphan may survive and nothing valid may be lost.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "csi/volume_store.h"
#include "tests/unit/csi/csi_test_server.h"

namespace berth::csi {
namespace {

using testing::blockCap;
using testing::CsiTestServer;
using testing::mountCap;
namespace v1 = ::csi::v1;

class CsiRecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(srv_.start()); }

  std::string base() { return srv_.root() + "/volumes"; }
  std::string volumes() { return base() + "/volumes"; }

  // Runs `edit` on the stopped driver's database, then restarts the driver.
  void crashAndRestart(const std::function<void(VolumeStore&)>& edit) {
    srv_.stop();
    {
      auto db = Database::open(base() + "/csi.db");
      ASSERT_TRUE(db.ok()) << db.status();
      auto store = VolumeStore::open(db->get());
      ASSERT_TRUE(store.ok()) << store.status();
      edit(**store);
    }
    ASSERT_TRUE(srv_.start());
  }

  static VolumeRecord record(const std::string& id, const std::string& path, RecordState state) {
    VolumeRecord v;
    v.id = id;
    v.name = "crashed-" + id;
    v.capacity_bytes = 1 << 20;
    v.path = path;
    v.capacity_mode = "accounted";
    v.state = state;
    return v;
  }

  std::vector<std::string> listVolumeIds() {
    v1::ListVolumesResponse resp;
    grpc::ClientContext ctx;
    EXPECT_TRUE(srv_.controller->ListVolumes(&ctx, {}, &resp).ok());
    std::vector<std::string> ids;
    for (const auto& e : resp.entries()) ids.push_back(e.volume().volume_id());
    return ids;
  }

  CsiTestServer srv_;
};

TEST_F(CsiRecoveryTest, CrashMidCreateVolumeLeavesNoOrphan) {
  std::string kept = srv_.mustCreate("kept", 1 << 20);
  std::ofstream(volumes() + "/" + kept + "/data") << "precious";
  crashAndRestart([&](VolumeStore& store) {
    // After step 1 only (record, no directory yet).
    ASSERT_TRUE(store.insertVolume(record("c1", volumes() + "/c1", RecordState::kCreating)).ok());
    // After step 2 (record + directory with partial data).
    ASSERT_TRUE(store.insertVolume(record("c2", volumes() + "/c2", RecordState::kCreating)).ok());
    ASSERT_TRUE(fs::mkdirAll(volumes() + "/c2/partial").ok());
    // A block volume after step 2.
    auto blk = record("c3", volumes() + "/c3.img", RecordState::kCreating);
    blk.access_type = AccessType::kBlock;
    ASSERT_TRUE(store.insertVolume(blk).ok());
    std::ofstream(volumes() + "/c3.img") << "x";
  });
  EXPECT_EQ(srv_.server().backend().lastRecovery().volumes_rolled_back, 3);
  auto entries = fs::listDir(volumes());
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ(*entries, std::vector<std::string>{kept});
  EXPECT_EQ(listVolumeIds(), std::vector<std::string>{kept});
  auto text = fs::readFile(volumes() + "/" + kept + "/data");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "precious");
  // The rolled-back name is free again and its reservation is released.
  v1::CreateVolumeResponse resp;
  EXPECT_TRUE(srv_.create("crashed-c2", 1 << 20, mountCap(), &resp).ok());
  v1::GetCapacityResponse cap;
  grpc::ClientContext ctx;
  ASSERT_TRUE(srv_.controller->GetCapacity(&ctx, {}, &cap).ok());
  EXPECT_EQ(cap.available_capacity(), (int64_t{1} << 30) - 2 * (1 << 20));
}

TEST_F(CsiRecoveryTest, CrashMidDeleteVolumeFinishesTheDelete) {
  std::string a = srv_.mustCreate("del-a", 1 << 20);
  std::string b = srv_.mustCreate("del-b", 1 << 20);
  crashAndRestart([&](VolumeStore& store) {
    // a: marked deleting, data still there; b: marked deleting, data already gone.
    ASSERT_TRUE(store.setVolumeState(a, RecordState::kDeleting).ok());
    ASSERT_TRUE(store.setVolumeState(b, RecordState::kDeleting).ok());
    ASSERT_TRUE(fs::removeAll(volumes() + "/" + b).ok());
  });
  EXPECT_EQ(srv_.server().backend().lastRecovery().deletes_finished, 2);
  EXPECT_TRUE(listVolumeIds().empty());
  EXPECT_TRUE(fs::listDir(volumes())->empty());
}

TEST_F(CsiRecoveryTest, DirectoriesWithoutARecordAreRemoved) {
  std::string kept = srv_.mustCreate("kept", 1 << 20);
  crashAndRestart([&](VolumeStore&) {
    ASSERT_TRUE(fs::mkdirAll(volumes() + "/0123456789abcdef/deep/er").ok());
    std::ofstream(volumes() + "/stray.img") << "y";
    std::ofstream(base() + "/snapshots/half.tar.tmp") << "z";
  });
  EXPECT_EQ(srv_.server().backend().lastRecovery().orphans_removed, 3);
  EXPECT_EQ(*fs::listDir(volumes()), std::vector<std::string>{kept});
  EXPECT_TRUE(fs::listDir(base() + "/snapshots")->empty());
}

TEST_F(CsiRecoveryTest, CrashMidCreateSnapshotRollsItBack) {
  std::string src = srv_.mustCreate("snap-src", 1 << 20);
  v1::CreateSnapshotResponse good;
  ASSERT_TRUE(srv_.snapshot("good", src, &good).ok());
  crashAndRestart([&](VolumeStore& store) {
    SnapshotRecord s;
    s.id = "halfsnap";
    s.name = "half";
    s.source_volume_id = src;
    s.path = base() + "/snapshots/halfsnap.tar";
    ASSERT_TRUE(store.insertSnapshot(s).ok());
    std::ofstream(s.path + ".tmp") << "partial archive";
  });
  EXPECT_EQ(srv_.server().backend().lastRecovery().snapshots_rolled_back, 1);
  auto snaps = fs::listDir(base() + "/snapshots");
  ASSERT_TRUE(snaps.ok());
  EXPECT_EQ(*snaps, std::vector<std::string>{good.snapshot().snapshot_id() + ".tar"});
  v1::ListSnapshotsResponse list;
  grpc::ClientContext ctx;
  ASSERT_TRUE(srv_.controller->ListSnapshots(&ctx, {}, &list).ok());
  ASSERT_EQ(list.entries_size(), 1);
  // The name can be used again.
  v1::CreateSnapshotResponse again;
  EXPECT_TRUE(srv_.snapshot("half", src, &again).ok());
}

TEST_F(CsiRecoveryTest, InterruptedBlockExpansionIsFinished) {
  std::string id = srv_.mustCreate("blk", 1 << 20, blockCap());
  crashAndRestart([&](VolumeStore& store) {
    // The record was updated, the file not grown yet.
    ASSERT_TRUE(store.setVolumeCapacity(id, 4 << 20).ok());
  });
  struct stat st;
  ASSERT_EQ(::stat((volumes() + "/" + id + ".img").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 4 << 20);
}

TEST_F(CsiRecoveryTest, ReadyVolumeWithoutDataIsKeptAndAbnormal) {
  std::string id = srv_.mustCreate("lost", 1 << 20);
  crashAndRestart([&](VolumeStore&) { ASSERT_TRUE(fs::removeAll(volumes() + "/" + id).ok()); });
  EXPECT_EQ(srv_.server().backend().lastRecovery().missing_data, 1);
  v1::ListVolumesResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(srv_.controller->ListVolumes(&ctx, {}, &resp).ok());
  ASSERT_EQ(resp.entries_size(), 1);
  EXPECT_TRUE(resp.entries(0).status().volume_condition().abnormal());
  EXPECT_TRUE(srv_.deleteVolume(id).ok());
}

TEST_F(CsiRecoveryTest, RestartKeepsVolumesAndIdempotency) {
  std::string id = srv_.mustCreate("survivor", 2 << 20);
  crashAndRestart([](VolumeStore&) {});
  v1::CreateVolumeResponse resp;
  ASSERT_TRUE(srv_.create("survivor", 2 << 20, mountCap(), &resp).ok());
  EXPECT_EQ(resp.volume().volume_id(), id);
}

}  // namespace
}  // namespace berth::csi
