#include "csi/volume_store.h"

#include <gtest/gtest.h>

namespace berth::csi {
namespace {

class CsiVolumeStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = Database::open(":memory:");
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    auto store = VolumeStore::open(db_.get());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }
  static VolumeRecord volume(const std::string& id, const std::string& name, int64_t bytes) {
    VolumeRecord v;
    v.id = id;
    v.name = name;
    v.capacity_bytes = bytes;
    v.path = "/base/volumes/" + id;
    v.capacity_mode = "accounted";
    return v;
  }
  std::unique_ptr<Database> db_;
  std::unique_ptr<VolumeStore> store_;
};

TEST_F(CsiVolumeStoreTest, VolumesRoundTripAndNamesAreUnique) {
  VolumeRecord v = volume("a1", "pvc-a", 100);
  v.access_type = AccessType::kBlock;
  v.source_kind = "snapshot";
  v.source_id = "s1";
  v.project_id = 1000001;
  v.created_unix_ns = 42;
  ASSERT_TRUE(store_->insertVolume(v).ok());
  auto got = store_->getVolume("a1");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->name, "pvc-a");
  EXPECT_EQ((*got)->access_type, AccessType::kBlock);
  EXPECT_EQ((*got)->source_kind, "snapshot");
  EXPECT_EQ((*got)->project_id, 1000001u);
  EXPECT_EQ((*got)->state, RecordState::kCreating);
  EXPECT_EQ((*got)->created_unix_ns, 42);
  auto by_name = store_->getVolumeByName("pvc-a");
  ASSERT_TRUE(by_name.ok() && by_name->has_value());
  EXPECT_EQ((*by_name)->id, "a1");

  Status dup = store_->insertVolume(volume("a2", "pvc-a", 1));
  EXPECT_EQ(dup.code(), absl::StatusCode::kAlreadyExists) << dup;
  auto missing = store_->getVolume("zz");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
}

TEST_F(CsiVolumeStoreTest, StateAndCapacityUpdatesNeedTheRow) {
  ASSERT_TRUE(store_->insertVolume(volume("a1", "n1", 10)).ok());
  ASSERT_TRUE(store_->setVolumeState("a1", RecordState::kReady).ok());
  ASSERT_TRUE(store_->setVolumeCapacity("a1", 20).ok());
  auto got = store_->getVolume("a1");
  EXPECT_EQ((*got)->state, RecordState::kReady);
  EXPECT_EQ((*got)->capacity_bytes, 20);
  EXPECT_EQ(store_->setVolumeState("nope", RecordState::kReady).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->setVolumeCapacity("nope", 1).code(), absl::StatusCode::kNotFound);
}

TEST_F(CsiVolumeStoreTest, ReservedBytesSumsEveryVolume) {
  ASSERT_TRUE(store_->insertVolume(volume("a", "a", 10)).ok());
  ASSERT_TRUE(store_->insertVolume(volume("b", "b", 32)).ok());
  auto reserved = store_->reservedBytes();
  ASSERT_TRUE(reserved.ok());
  EXPECT_EQ(*reserved, 42);
  auto list = store_->listVolumes();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].id, "a");  // creation order
}

TEST_F(CsiVolumeStoreTest, DeletingAVolumeForgetsItsPublicationsAndStagings) {
  ASSERT_TRUE(store_->insertVolume(volume("a", "a", 10)).ok());
  PublicationRecord p;
  p.volume_id = "a";
  p.target_path = "/t1";
  p.readonly = true;
  p.staging_path = "/s";
  p.access_mode = 5;
  p.mount_flags = "noexec";
  ASSERT_TRUE(store_->putPublication(p).ok());
  p.target_path = "/t2";
  ASSERT_TRUE(store_->putPublication(p).ok());
  StagingRecord s;
  s.volume_id = "a";
  s.staging_path = "/s";
  s.loop_device = "/dev/loop9";
  ASSERT_TRUE(store_->putStaging(s).ok());
  auto pubs = store_->publications("a");
  ASSERT_TRUE(pubs.ok());
  ASSERT_EQ(pubs->size(), 2u);
  EXPECT_TRUE((*pubs)[0].readonly);
  EXPECT_EQ((*pubs)[0].mount_flags, "noexec");
  auto stages = store_->stagings("a");
  ASSERT_EQ(stages->size(), 1u);
  EXPECT_EQ((*stages)[0].loop_device, "/dev/loop9");

  ASSERT_TRUE(store_->deleteVolume("a").ok());
  EXPECT_TRUE(store_->publications("a")->empty());
  EXPECT_TRUE(store_->stagings("a")->empty());
  EXPECT_TRUE(store_->deleteVolume("a").ok());  // already gone
}

TEST_F(CsiVolumeStoreTest, PublicationsMustBelongToAVolume) {
  PublicationRecord p;
  p.volume_id = "ghost";
  p.target_path = "/t";
  EXPECT_FALSE(store_->putPublication(p).ok());
}

TEST_F(CsiVolumeStoreTest, SnapshotsRoundTrip) {
  SnapshotRecord s;
  s.id = "s1";
  s.name = "snap";
  s.source_volume_id = "a";
  s.size_bytes = 5;
  s.path = "/base/snapshots/s1.tar";
  ASSERT_TRUE(store_->insertSnapshot(s).ok());
  ASSERT_TRUE(store_->markSnapshotReady("s1", 7).ok());
  auto got = store_->getSnapshotByName("snap");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_TRUE((*got)->ready);
  EXPECT_EQ((*got)->state, RecordState::kReady);
  EXPECT_EQ((*got)->size_bytes, 7);
  s.id = "s2";
  EXPECT_EQ(store_->insertSnapshot(s).code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(store_->deleteSnapshot("s1").ok());
  EXPECT_FALSE(store_->getSnapshot("s1")->has_value());
  EXPECT_EQ(store_->markSnapshotReady("s1", 1).code(), absl::StatusCode::kNotFound);
}

TEST_F(CsiVolumeStoreTest, ReopeningKeepsTheSchema) {
  ASSERT_TRUE(store_->insertVolume(volume("a", "a", 1)).ok());
  auto again = VolumeStore::open(db_.get());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE((*again)->getVolume("a")->has_value());
}

}  // namespace
}  // namespace berth::csi
