#include "runtime/image/snapshotter.h"

#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/fs.h"

namespace berth::image {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

std::string D(char c) { return strCat("sha256:", std::string(64, c)); }

Status writeText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) return internalError("write ", path);
  return absl::OkStatus();
}

std::string readText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fill function writing `files` (name -> content) into the layer directory.
std::function<Status(const std::string&)> fillWith(std::map<std::string, std::string> files,
                                                   std::atomic<int>* calls = nullptr) {
  return [files, calls](const std::string& dir) -> Status {
    if (calls != nullptr) ++*calls;
    for (const auto& [name, text] : files) RETURN_IF_ERROR(writeText(fs::join(dir, name), text));
    return absl::OkStatus();
  };
}

std::vector<std::string> rootEntries(const std::string& root) {
  auto names = fs::listDir(root);
  EXPECT_TRUE(names.ok()) << names.status();
  std::vector<std::string> out;
  for (const auto& n : *names) {
    if (n != ".lock") out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

class SnapshotterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-snapshotter-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    root_ = fs::join(dir_, "snapshots");
    reopen();
  }
  void TearDown() override {
    snap_.reset();
    db_.reset();
    ASSERT_TRUE(fs::removeAll(dir_).ok());
  }
  void reopen() {
    snap_.reset();
    db_.reset();
    auto db = Database::open(fs::join(dir_, "berth.db"));
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    auto snap = Snapshotter::open(root_, db_.get());
    ASSERT_TRUE(snap.ok()) << snap.status();
    snap_ = std::move(*snap);
  }
  // Commits a layer with one file named after it.
  SnapshotInfo layer(const std::string& chain, const std::string& parent,
                     std::map<std::string, std::string> files = {}) {
    if (files.empty()) files = {{"file-" + chain.substr(7, 4), chain}};
    auto info = snap_->prepareLayer(chain, parent, "test", fillWith(files));
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? *info : SnapshotInfo{};
  }
  std::string idPath(int64_t id, const std::string& sub = "") const {
    std::string p = fs::join(root_, std::to_string(id));
    return sub.empty() ? p : fs::join(p, sub);
  }

  std::string dir_;
  std::string root_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<Snapshotter> snap_;
};

TEST(ChainIdTest, MatchesImageSpecDefinition) {
  // ChainID(L0) = DiffID(L0).
  EXPECT_EQ(chainId("", "sha256:a"), "sha256:a");
  // printf '%s' "sha256:a sha256:b" | sha256sum
  const std::string c1 =
      "sha256:970a948bffa8de94d6e22d747ba8c95030e6e546909f98f54e99a13005e173a8";
  EXPECT_EQ(chainId("sha256:a", "sha256:b"), c1);
  // printf '%s' "<c1> sha256:c" | sha256sum
  const std::string c2 =
      "sha256:dee159b33409cefa3f6eda71539f006014283e9d9130c18a1dea7bd8a33c9b1b";
  EXPECT_THAT(chainIds({"sha256:a", "sha256:b", "sha256:c"}), ElementsAre("sha256:a", c1, c2));
  EXPECT_TRUE(chainIds({}).empty());
}

TEST_F(SnapshotterTest, OpenCreatesPrivateRoot) {
  struct stat st;
  ASSERT_EQ(::stat(root_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(snap_->root(), root_);
}

TEST_F(SnapshotterTest, PrepareLayerUnpacksOnceForConcurrentCallers) {
  std::atomic<int> calls{0};
  auto slowFill = [&](const std::string& dir) -> Status {
    ++calls;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    return writeText(fs::join(dir, "hello"), "world");
  };
  std::vector<StatusOr<SnapshotInfo>> results(8, absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] { results[i] = snap_->prepareLayer(D('a'), "", "img", slowFill); });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(calls.load(), 1);
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->id, results[0]->id);
    EXPECT_EQ(r->chain_id, D('a'));
    EXPECT_EQ(r->kind, SnapshotKind::kCommitted);
  }
  EXPECT_EQ(results[0]->path, idPath(results[0]->id, "fs"));
  EXPECT_EQ(readText(fs::join(results[0]->path, "hello")), "world");
  // Later calls find it committed without unpacking.
  auto again = snap_->prepareLayer(D('a'), "", "img", slowFill);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->id, results[0]->id);
  EXPECT_EQ(calls.load(), 1);
  auto c = snap_->committed(D('a'));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->id, results[0]->id);
  EXPECT_THAT(rootEntries(root_), ElementsAre(std::to_string(results[0]->id)));
}

TEST_F(SnapshotterTest, TwoSnapshottersOnOneRootUnpackOnce) {
  auto db2 = Database::open(fs::join(dir_, "berth.db"));
  ASSERT_TRUE(db2.ok());
  auto snap2 = Snapshotter::open(root_, db2->get());
  ASSERT_TRUE(snap2.ok()) << snap2.status();
  std::atomic<int> calls{0};
  auto fill = [&](const std::string& dir) -> Status {
    ++calls;
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    return writeText(fs::join(dir, "x"), "y");
  };
  StatusOr<SnapshotInfo> r1 = absl::UnknownError(""), r2 = absl::UnknownError("");
  std::thread t1([&] { r1 = snap_->prepareLayer(D('b'), "", "img", fill); });
  std::thread t2([&] { r2 = (*snap2)->prepareLayer(D('b'), "", "img", fill); });
  t1.join();
  t2.join();
  ASSERT_TRUE(r1.ok()) << r1.status();
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(r1->id, r2->id);
  EXPECT_EQ(calls.load(), 1);
  snap2->reset();
}

TEST_F(SnapshotterTest, FillFailureLeavesNoDirectoryAndNoRow) {
  auto fail = [](const std::string& dir) -> Status {
    EXPECT_TRUE(writeText(fs::join(dir, "partial"), "x").ok());
    return absl::InvalidArgumentError("unpack layer \"l\": truncated stream");
  };
  auto r = snap_->prepareLayer(D('c'), "", "image busybox layer 1/1", fail);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("image busybox layer 1/1"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("truncated stream"));
  EXPECT_TRUE(rootEntries(root_).empty());
  auto all = snap_->list();
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->empty());
  EXPECT_EQ(snap_->committed(D('c')).status().code(), absl::StatusCode::kNotFound);
  // A later attempt unpacks again.
  std::atomic<int> calls{0};
  ASSERT_TRUE(snap_->prepareLayer(D('c'), "", "img", fillWith({{"ok", "1"}}, &calls)).ok());
  EXPECT_EQ(calls.load(), 1);
}

TEST_F(SnapshotterTest, ConcurrentWaitersShareTheError) {
  auto fail = [](const std::string&) -> Status {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    return absl::DataLossError("digest mismatch");
  };
  std::vector<StatusOr<SnapshotInfo>> results(4, absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] { results[i] = snap_->prepareLayer(D('d'), "", "img", fail); });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : results) {
    EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("digest mismatch"));
  }
  EXPECT_TRUE(rootEntries(root_).empty());
}

TEST_F(SnapshotterTest, ParentMustBeCommitted) {
  std::atomic<int> calls{0};
  auto r = snap_->prepareLayer(D('e'), D('f'), "img", fillWith({{"a", "b"}}, &calls));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(D('f')));
  EXPECT_EQ(calls.load(), 0);
  EXPECT_TRUE(rootEntries(root_).empty());
  SnapshotInfo base = layer(D('f'), "");
  SnapshotInfo top = layer(D('e'), D('f'));
  EXPECT_EQ(top.parent_chain_id, D('f'));
  EXPECT_NE(top.id, base.id);
}

TEST_F(SnapshotterTest, OpenRecoversFromCrashes) {
  SnapshotInfo a = layer(D('1'), "");
  SnapshotInfo b = layer(D('2'), "");
  SnapshotInfo b2 = layer(D('3'), D('2'));
  ASSERT_TRUE(snap_->prepareActive("ctr", D('3')).ok());
  snap_.reset();
  // An interrupted unpack, an orphan <id> (crash before COMMIT) and a committed
  // snapshot whose directory vanished (with a child and an active snapshot on it).
  ASSERT_TRUE(fs::mkdirAll(fs::join(root_, "tmp-abc123/fs/etc")).ok());
  ASSERT_TRUE(fs::mkdirAll(fs::join(root_, "999/fs")).ok());
  ASSERT_TRUE(fs::removeAll(idPath(b.id)).ok());
  reopen();
  EXPECT_THAT(rootEntries(root_), ElementsAre(std::to_string(a.id)));
  auto all = snap_->list();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].chain_id, D('1'));
  EXPECT_EQ(snap_->committed(D('3')).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(snap_->mounts("ctr").status().code(), absl::StatusCode::kNotFound);
  // New snapshots do not collide with anything left behind.
  SnapshotInfo c = layer(D('4'), D('1'));
  EXPECT_GT(c.id, b2.id);
  EXPECT_TRUE(fs::exists(c.path));
}

TEST_F(SnapshotterTest, OpenKeepsTmpWhileAnotherUserHasTheRootOpen) {
  auto db2 = Database::open(fs::join(dir_, "berth.db"));
  ASSERT_TRUE(db2.ok());
  ASSERT_TRUE(fs::mkdirAll(fs::join(root_, "tmp-busy")).ok());
  auto snap2 = Snapshotter::open(root_, db2->get());
  ASSERT_TRUE(snap2.ok());
  EXPECT_TRUE(fs::exists(fs::join(root_, "tmp-busy")));  // maybe another unpack
  snap2->reset();
  reopen();  // now alone: cleaned up
  EXPECT_FALSE(fs::exists(fs::join(root_, "tmp-busy")));
}

TEST_F(SnapshotterTest, ActiveMountsListLowerLayersTopMostFirst) {
  SnapshotInfo l1 = layer(D('1'), "");
  SnapshotInfo l2 = layer(D('2'), D('1'));
  SnapshotInfo l3 = layer(D('3'), D('2'));
  auto mounts = snap_->prepareActive("ctr1", D('3'));
  ASSERT_TRUE(mounts.ok()) << mounts.status();
  ASSERT_EQ(mounts->size(), 1u);
  const MountSpec& m = (*mounts)[0];
  EXPECT_EQ(m.type, "overlay");
  EXPECT_EQ(m.source, "overlay");
  auto all = snap_->list();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 4u);
  const SnapshotInfo& active = (*all)[3];
  EXPECT_EQ(active.kind, SnapshotKind::kActive);
  EXPECT_EQ(active.key, "ctr1");
  EXPECT_EQ(active.parent_chain_id, D('3'));
  EXPECT_THAT(m.options,
              ElementsAre(strCat("lowerdir=", l3.path, ":", l2.path, ":", l1.path),
                          strCat("upperdir=", idPath(active.id, "fs")),
                          strCat("workdir=", idPath(active.id, "work"))));
  EXPECT_TRUE(fs::exists(idPath(active.id, "fs")));
  EXPECT_TRUE(fs::exists(idPath(active.id, "work")));
  auto again = snap_->mounts("ctr1");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)[0].options, m.options);

  // No parent: a writable bind mount of the empty upper directory.
  auto empty = snap_->prepareActive("scratch", "");
  ASSERT_TRUE(empty.ok()) << empty.status();
  ASSERT_EQ(empty->size(), 1u);
  EXPECT_EQ((*empty)[0].type, "bind");
  EXPECT_THAT((*empty)[0].options, ElementsAre("rw", "rbind"));
  EXPECT_EQ((*empty)[0].source.rfind(root_ + "/", 0), 0u);
  EXPECT_TRUE(fs::exists((*empty)[0].source));
}

TEST_F(SnapshotterTest, ViewsAreReadOnly) {
  SnapshotInfo l1 = layer(D('1'), "");
  SnapshotInfo l2 = layer(D('2'), D('1'));
  auto one = snap_->prepareView("v1", D('1'));
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ((*one)[0].type, "bind");
  EXPECT_EQ((*one)[0].source, l1.path);
  EXPECT_THAT((*one)[0].options, ElementsAre("ro", "rbind"));
  auto two = snap_->prepareView("v2", D('2'));
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_EQ((*two)[0].type, "overlay");
  EXPECT_THAT((*two)[0].options, ElementsAre(strCat("lowerdir=", l2.path, ":", l1.path)));
  auto none = snap_->prepareView("v3", "");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ((*none)[0].type, "bind");
  EXPECT_THAT((*none)[0].options, ElementsAre("ro", "rbind"));
  auto all = snap_->list();
  ASSERT_TRUE(all.ok());
  for (const auto& info : *all) {
    if (info.kind == SnapshotKind::kView) {
      EXPECT_FALSE(fs::exists(idPath(info.id, "work")));
    }
  }
}

TEST_F(SnapshotterTest, KeysAreUniqueAndParentsMustExist) {
  layer(D('1'), "");
  ASSERT_TRUE(snap_->prepareActive("k", D('1')).ok());
  auto dup = snap_->prepareActive("k", D('1'));
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(dup.status().message()), HasSubstr("\"k\""));
  EXPECT_EQ(snap_->prepareView("k", "").status().code(), absl::StatusCode::kAlreadyExists);
  auto missing = snap_->prepareActive("k2", D('9'));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr(D('9')));
  auto all = snap_->list();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);
  EXPECT_EQ(rootEntries(root_).size(), 2u);
  EXPECT_EQ(snap_->mounts("nope").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(SnapshotterTest, RemoveActiveIsIdempotent) {
  layer(D('1'), "");
  ASSERT_TRUE(snap_->prepareActive("ctr", D('1')).ok());
  auto all = snap_->list();
  ASSERT_TRUE(all.ok());
  const int64_t id = all->back().id;
  ASSERT_TRUE(writeText(idPath(id, "fs/new-file"), "data").ok());
  ASSERT_TRUE(snap_->removeActive("ctr").ok());
  EXPECT_FALSE(fs::exists(idPath(id)));
  EXPECT_EQ(snap_->mounts("ctr").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(snap_->removeActive("ctr").ok());
  EXPECT_TRUE(snap_->removeActive("never-existed").ok());
  // A chain ID is not a key: committed snapshots are not removed this way.
  EXPECT_TRUE(snap_->removeActive(D('1')).ok());
  EXPECT_TRUE(snap_->committed(D('1')).ok());
  // The key can be used again.
  EXPECT_TRUE(snap_->prepareActive("ctr", D('1')).ok());
}

TEST_F(SnapshotterTest, ListShowsCommittedFirstWithStoredUsage) {
  ASSERT_TRUE(snap_->prepareActive("early", "").ok());
  SnapshotInfo l1 = layer(D('1'), "", {{"big", std::string(20000, 'x')}});
  SnapshotInfo l2 = layer(D('2'), D('1'));
  ASSERT_TRUE(snap_->prepareView("view", D('2')).ok());
  auto all = snap_->list();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 4u);
  EXPECT_EQ((*all)[0].chain_id, D('1'));
  EXPECT_EQ((*all)[1].chain_id, D('2'));
  EXPECT_EQ((*all)[1].parent_chain_id, D('1'));
  EXPECT_EQ((*all)[2].key, "early");
  EXPECT_EQ((*all)[2].kind, SnapshotKind::kActive);
  EXPECT_EQ((*all)[2].parent_chain_id, "");
  EXPECT_EQ((*all)[3].key, "view");
  EXPECT_EQ((*all)[3].kind, SnapshotKind::kView);
  EXPECT_EQ((*all)[0].path, l1.path);
  EXPECT_GE((*all)[0].size_bytes, 20000);
  EXPECT_EQ((*all)[0].inodes, 3);  // <id>, fs, big
  EXPECT_EQ((*all)[0].size_bytes, l1.size_bytes);
  auto age = std::chrono::system_clock::now() - (*all)[0].created;
  EXPECT_GE(age, std::chrono::seconds(0));
  EXPECT_LT(age, std::chrono::minutes(5));
}

TEST_F(SnapshotterTest, UsageCountsBlocksAndHardLinksOnce) {
  auto fill = [](const std::string& dir) -> Status {
    RETURN_IF_ERROR(writeText(fs::join(dir, "a"), std::string(50000, 'a')));
    RETURN_IF_ERROR(writeText(fs::join(dir, "b"), std::string(10, 'b')));
    if (::link(fs::join(dir, "a").c_str(), fs::join(dir, "a-link").c_str()) != 0) {
      return lastErrnoError("link");
    }
    return fs::mkdirAll(fs::join(dir, "sub"));
  };
  auto info = snap_->prepareLayer(D('1'), "", "img", fill);
  ASSERT_TRUE(info.ok()) << info.status();
  auto used = snap_->usage(D('1'));
  ASSERT_TRUE(used.ok()) << used.status();
  EXPECT_EQ(used->inodes, 5);  // <id>, fs, a (twice linked), b, sub
  EXPECT_GE(used->bytes, 50000);
  EXPECT_LT(used->bytes, 100000);  // the hard link is not counted twice
  EXPECT_EQ(used->bytes, info->size_bytes);
  EXPECT_EQ(used->inodes, info->inodes);

  ASSERT_TRUE(snap_->prepareActive("ctr", D('1')).ok());
  auto before = snap_->usage("ctr");
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before->inodes, 3);  // <id>, fs, work
  auto all = snap_->list();
  ASSERT_TRUE(all.ok());
  ASSERT_TRUE(writeText(idPath(all->back().id, "fs/written"), std::string(30000, 'w')).ok());
  auto after = snap_->usage("ctr");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->inodes, before->inodes + 1);
  EXPECT_GE(after->bytes, before->bytes + 30000);
  auto total = snap_->totalUsage();
  ASSERT_TRUE(total.ok());
  EXPECT_EQ(total->bytes, used->bytes + after->bytes);
  EXPECT_EQ(total->inodes, used->inodes + after->inodes);
  EXPECT_EQ(snap_->usage("unknown").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(SnapshotterTest, GarbageCollectKeepsAncestorsOfKeptAndActive) {
  // Image A: a1 <- a2 <- a3. Image B: b1 <- b2. c1 <- c2 with a container on c1.
  layer(D('1'), "");
  layer(D('2'), D('1'));
  layer(D('3'), D('2'));
  SnapshotInfo b1 = layer(D('4'), "");
  SnapshotInfo b2 = layer(D('5'), D('4'));
  SnapshotInfo c1 = layer(D('6'), "");
  SnapshotInfo c2 = layer(D('7'), D('6'));
  ASSERT_TRUE(snap_->prepareActive("ctr", D('6')).ok());
  ASSERT_TRUE(snap_->prepareView("peek", D('2')).ok());

  auto removed = snap_->garbageCollect({D('3')});
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_THAT(*removed, UnorderedElementsAre(D('5'), D('4'), D('7')));
  auto pos = [&](const std::string& c) {
    return std::find(removed->begin(), removed->end(), c) - removed->begin();
  };
  EXPECT_LT(pos(D('5')), pos(D('4')));  // children before parents
  EXPECT_FALSE(fs::exists(idPath(b1.id)));
  EXPECT_FALSE(fs::exists(idPath(b2.id)));
  EXPECT_FALSE(fs::exists(idPath(c2.id)));
  EXPECT_TRUE(fs::exists(c1.path));
  for (char c : {'1', '2', '3', '6'}) EXPECT_TRUE(snap_->committed(D(c)).ok()) << c;

  // Nothing kept: only what the container and the view stand on survives.
  removed = snap_->garbageCollect({});
  ASSERT_TRUE(removed.ok());
  EXPECT_THAT(*removed, ElementsAre(D('3')));
  ASSERT_TRUE(snap_->removeActive("ctr").ok());
  ASSERT_TRUE(snap_->removeActive("peek").ok());
  removed = snap_->garbageCollect({});
  ASSERT_TRUE(removed.ok());
  EXPECT_THAT(*removed, UnorderedElementsAre(D('2'), D('1'), D('6')));
  EXPECT_LT(std::find(removed->begin(), removed->end(), D('2')),
            std::find(removed->begin(), removed->end(), D('1')));
  EXPECT_TRUE(rootEntries(root_).empty());
  auto all = snap_->list();
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->empty());
}

}  // namespace
}  // namespace berth::image
