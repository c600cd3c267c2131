#include "runtime/image/snapshotter.h"
#include "tests/fixtures/mount_namespace.h"

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
#include <future>
#include <map>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/fs.h"
#include "common/sha256.h"
#include "runtime/image/unpack.h"

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

TEST_F(SnapshotterTest, FillWithUnpackLayerOfARealTar) {
  const std::string src = fs::join(dir_, "src");
  ASSERT_TRUE(fs::mkdirAll(fs::join(src, "etc")).ok());
  ASSERT_TRUE(writeText(fs::join(src, "etc/passwd"), "root:x:0:0::/root:/bin/sh\n").ok());
  ASSERT_EQ(::symlink("etc/passwd", fs::join(src, "pw").c_str()), 0);
  const std::string tar = fs::join(dir_, "layer.tar");
  ASSERT_EQ(std::system(strCat("tar -C ", src, " -cf ", tar, " .").c_str()), 0);
  std::string diff_id;
  auto info = snap_->prepareLayer(D('1'), "", "image test layer 1/1",
                                  [&](const std::string& dir) -> Status {
                                    UnpackOptions options;
                                    options.apply_ownership = false;
                                    ASSIGN_OR_RETURN(UnpackResult r,
                                                     unpackLayer(tar, dir, options));
                                    diff_id = r.diff_id;
                                    return absl::OkStatus();
                                  });
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(readText(fs::join(info->path, "etc/passwd")), "root:x:0:0::/root:/bin/sh\n");
  char link[64] = {};
  ASSERT_GT(::readlink(fs::join(info->path, "pw").c_str(), link, sizeof(link) - 1), 0);
  EXPECT_STREQ(link, "etc/passwd");
  EXPECT_EQ(diff_id.rfind("sha256:", 0), 0u);
  EXPECT_THAT(rootEntries(root_), ElementsAre(std::to_string(info->id)));
}

TEST_F(SnapshotterTest, StaleDirectoryOfTheNextIdIsReplaced) {
  // Another process crashed after renaming into <id> but before COMMIT: the id is
  // handed out again while we run.
  ASSERT_TRUE(fs::mkdirAll(fs::join(root_, "1/fs/junk")).ok());
  SnapshotInfo l1 = layer(D('1'), "", {{"real", "1"}});
  ASSERT_EQ(l1.id, 1);
  EXPECT_TRUE(fs::exists(fs::join(l1.path, "real")));
  EXPECT_FALSE(fs::exists(fs::join(l1.path, "junk")));
  ASSERT_TRUE(fs::mkdirAll(fs::join(root_, "2/work/junk")).ok());
  ASSERT_TRUE(snap_->prepareActive("ctr", D('1')).ok());
  EXPECT_FALSE(fs::exists(fs::join(root_, "2/work/junk")));
  EXPECT_TRUE(fs::exists(fs::join(root_, "2/fs")));
}

TEST_F(SnapshotterTest, GarbageCollectSparesTheParentOfAnUnpackInProgress) {
  layer(D('1'), "");
  std::promise<void> entered, release;
  auto release_future = release.get_future();
  StatusOr<SnapshotInfo> child = absl::UnknownError("not run");
  std::thread t([&] {
    child = snap_->prepareLayer(D('2'), D('1'), "img", [&](const std::string& dir) -> Status {
      entered.set_value();
      release_future.wait();
      return writeText(fs::join(dir, "two"), "2");
    });
  });
  entered.get_future().wait();
  auto removed = snap_->garbageCollect({});
  release.set_value();
  t.join();
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_TRUE(removed->empty());
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_EQ(child->parent_chain_id, D('1'));
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

// ---- Privileged: real overlay mounts in a private mount namespace ----

namespace berth::image {
namespace {

using ::berth::testing::inPrivateMountNamespace;

// The mountinfo line of the mount on `target` in the calling thread's namespace.
std::string mountInfoLine(const std::string& target) {
  std::ifstream in("/proc/thread-self/mountinfo");
  std::string line, found;
  while (std::getline(in, line)) {
    auto fields = split(line, ' ');
    if (fields.size() > 4 && fields[4] == target) found = line;
  }
  return found;
}

bool isCharDevice00(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
}

class SnapshotterPrivileged : public SnapshotterTest {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (mounts, whiteouts, trusted xattrs)";
    SnapshotterTest::SetUp();
  }
  std::string target(const std::string& name) {
    std::string t = fs::join(dir_, name);
    EXPECT_TRUE(fs::mkdirAll(t).ok());
    return t;
  }
};

TEST_F(SnapshotterPrivileged, WhiteoutsAndOpaqueDirsShapeTheMergedView) {
  ASSERT_TRUE(snap_->prepareLayer(D('a'), "", "l1", [](const std::string& dir) -> Status {
    RETURN_IF_ERROR(writeText(fs::join(dir, "a"), "a1"));
    RETURN_IF_ERROR(writeText(fs::join(dir, "b"), "b1"));
    RETURN_IF_ERROR(writeText(fs::join(dir, "keep"), "k1"));
    RETURN_IF_ERROR(fs::mkdirAll(fs::join(dir, "d")));
    RETURN_IF_ERROR(writeText(fs::join(dir, "d/x"), "x1"));
    return writeText(fs::join(dir, "d/y"), "y1");
  }).ok());
  ASSERT_TRUE(snap_->prepareLayer(D('b'), D('a'), "l2", [](const std::string& dir) -> Status {
    // Layer 2 deletes "a" (overlay whiteout) and adds "c".
    if (::mknod(fs::join(dir, "a").c_str(), S_IFCHR | 0000, makedev(0, 0)) != 0) {
      return lastErrnoError("mknod whiteout");
    }
    return writeText(fs::join(dir, "c"), "c2");
  }).ok());
  ASSERT_TRUE(snap_->prepareLayer(D('c'), D('b'), "l3", [](const std::string& dir) -> Status {
    // Layer 3 replaces directory "d" (opaque) with one holding only "z".
    RETURN_IF_ERROR(fs::mkdirAll(fs::join(dir, "d")));
    if (::setxattr(fs::join(dir, "d").c_str(), "trusted.overlay.opaque", "y", 1, 0) != 0) {
      return lastErrnoError("setxattr opaque");
    }
    return writeText(fs::join(dir, "d/z"), "z3");
  }).ok());
  ASSERT_TRUE(snap_->prepareActive("ctr", D('c')).ok());
  ASSERT_TRUE(snap_->prepareView("view", D('c')).ok());
  auto all = snap_->list();
  ASSERT_TRUE(all.ok());
  int64_t upper_id = 0;
  for (const auto& info : *all) {
    if (info.key == "ctr") upper_id = info.id;
  }
  const std::string merged = target("merged");
  const std::string ro = target("ro");
  inPrivateMountNamespace([&] {
    Status st = snap_->mount("ctr", merged);
    ASSERT_TRUE(st.ok()) << st;
    EXPECT_THAT(mountInfoLine(merged), HasSubstr(" - overlay overlay "));
    EXPECT_FALSE(fs::exists(fs::join(merged, "a")));
    EXPECT_EQ(readText(fs::join(merged, "b")), "b1");
    EXPECT_EQ(readText(fs::join(merged, "c")), "c2");
    EXPECT_EQ(readText(fs::join(merged, "keep")), "k1");
    EXPECT_EQ(readText(fs::join(merged, "d/z")), "z3");
    EXPECT_FALSE(fs::exists(fs::join(merged, "d/x")));
    EXPECT_FALSE(fs::exists(fs::join(merged, "d/y")));
    // Writes go to the upper directory; deletions become whiteouts there.
    ASSERT_TRUE(writeText(fs::join(merged, "new"), "n").ok());
    ASSERT_EQ(::unlink(fs::join(merged, "b").c_str()), 0);
    EXPECT_EQ(readText(idPath(upper_id, "fs/new")), "n");
    EXPECT_TRUE(isCharDevice00(idPath(upper_id, "fs/b")));
    EXPECT_FALSE(fs::exists(idPath(upper_id, "fs/keep")));
    auto l1 = snap_->committed(D('a'));
    ASSERT_TRUE(l1.ok());
    EXPECT_EQ(readText(fs::join(l1->path, "b")), "b1");  // lower layers untouched

    // The view: same files, read-only.
    st = snap_->mount("view", ro);
    ASSERT_TRUE(st.ok()) << st;
    EXPECT_EQ(readText(fs::join(ro, "b")), "b1");
    EXPECT_EQ(readText(fs::join(ro, "d/z")), "z3");
    EXPECT_FALSE(fs::exists(fs::join(ro, "a")));
    int fd = ::open(fs::join(ro, "other").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    EXPECT_LT(fd, 0);
    EXPECT_EQ(errno, EROFS);
    if (fd >= 0) ::close(fd);
    EXPECT_EQ(::umount2(merged.c_str(), MNT_DETACH), 0);
    EXPECT_EQ(::umount2(ro.c_str(), MNT_DETACH), 0);
  });
  EXPECT_EQ(mountInfoLine(merged), "");  // nothing leaked into our namespace
}

TEST_F(SnapshotterPrivileged, BindMountsForSingleLayerViewsAndEmptyActives) {
  layer(D('1'), "", {{"only", "1"}});
  ASSERT_TRUE(snap_->prepareView("view", D('1')).ok());
  ASSERT_TRUE(snap_->prepareActive("scratch", "").ok());
  const std::string v = target("v");
  const std::string s = target("s");
  inPrivateMountNamespace([&] {
    Status st = snap_->mount("view", v);
    ASSERT_TRUE(st.ok()) << st;
    EXPECT_EQ(readText(fs::join(v, "only")), "1");
    EXPECT_NE(writeText(fs::join(v, "x"), "y").ok(), true);
    EXPECT_THAT(mountInfoLine(v), HasSubstr(" ro"));
    st = snap_->mount("scratch", s);
    ASSERT_TRUE(st.ok()) << st;
    EXPECT_TRUE(writeText(fs::join(s, "x"), "y").ok());
    EXPECT_EQ(::umount2(v.c_str(), MNT_DETACH), 0);
    EXPECT_EQ(::umount2(s.c_str(), MNT_DETACH), 0);
  });
  auto used = snap_->usage("scratch");
  ASSERT_TRUE(used.ok());
  EXPECT_EQ(used->inodes, 4);  // <id>, fs, work, x
}

TEST_F(SnapshotterPrivileged, ShortChainUsesMountSyscallWithAbsolutePaths) {
  SnapshotInfo l1 = layer(D('1'), "", {{"one", "1"}});
  SnapshotInfo l2 = layer(D('2'), D('1'), {{"two", "2"}});
  ASSERT_TRUE(snap_->prepareActive("ctr", D('2')).ok());
  const std::string t = target("rootfs");
  inPrivateMountNamespace([&] {
    Status st = snap_->mount("ctr", t);
    ASSERT_TRUE(st.ok()) << st;
    EXPECT_THAT(mountInfoLine(t), HasSubstr(strCat("lowerdir=", l2.path, ":", l1.path)));
    EXPECT_EQ(readText(fs::join(t, "one")), "1");
    EXPECT_EQ(readText(fs::join(t, "two")), "2");
    EXPECT_EQ(::umount2(t.c_str(), MNT_DETACH), 0);
  });
}

TEST_F(SnapshotterPrivileged, LongChainMountsWithLowerdirPlusAndWithRelativePaths) {
  constexpr int kLayers = 200;
  inPrivateMountNamespace([&] {
    // A tmpfs keeps 200 commits (syncfs, fsync) fast; it lives in this namespace only.
    const std::string base = target("long");
    ASSERT_EQ(::mount("tmpfs", base.c_str(), "tmpfs", 0, "mode=0700"), 0) << strerror(errno);
    auto db = Database::open(fs::join(base, "berth.db"));
    ASSERT_TRUE(db.ok()) << db.status();
    auto snap = Snapshotter::open(fs::join(base, "a-rather-long-snapshotter-root"), db->get());
    ASSERT_TRUE(snap.ok()) << snap.status();
    std::string parent;
    for (int i = 0; i < kLayers; ++i) {
      std::string chain = chainId(parent, sha256Digest(std::to_string(i)));
      auto info = (*snap)->prepareLayer(chain, parent, "long", fillWith({{strCat("f", i), "x"}}));
      ASSERT_TRUE(info.ok()) << info.status();
      parent = chain;
    }
    ASSERT_TRUE((*snap)->prepareActive("plus", parent).ok());
    ASSERT_TRUE((*snap)->prepareActive("fallback", parent).ok());
    auto specs = (*snap)->mounts("plus");
    ASSERT_TRUE(specs.ok());
    ASSERT_GT((*specs)[0].options[0].size(), 4096u);  // would overflow mount(2)

    auto check = [&](const std::string& dir) {
      int seen = 0;
      for (int i = 0; i < kLayers; ++i) seen += fs::exists(fs::join(dir, strCat("f", i))) ? 1 : 0;
      EXPECT_EQ(seen, kLayers);
      EXPECT_TRUE(writeText(fs::join(dir, "written"), "w").ok());
    };
    const std::string t1 = fs::join(base, "t1");
    const std::string t2 = fs::join(base, "t2");
    ASSERT_TRUE(fs::mkdirAll(t1).ok());
    ASSERT_TRUE(fs::mkdirAll(t2).ok());
    Status st = (*snap)->mount("plus", t1);
    ASSERT_TRUE(st.ok()) << st;
    check(t1);
    // One "lowerdir+" per layer, top-most first, absolute.
    const std::string info1 = mountInfoLine(t1);
    const std::string lower_root = fs::join(base, "a-rather-long-snapshotter-root");
    EXPECT_NE(info1.find(" - overlay overlay "), std::string::npos) << info1.substr(0, 200);
    EXPECT_NE(info1.find(strCat("lowerdir+=", lower_root, "/", kLayers, "/fs,lowerdir+=",
                                lower_root, "/", kLayers - 1, "/fs,")),
              std::string::npos)
        << info1.substr(0, 300);

    char cwd_before[4096];
    ASSERT_NE(::getcwd(cwd_before, sizeof(cwd_before)), nullptr);
    ::setenv("BERTH_SNAPSHOTTER_NO_LOWERDIR_PLUS", "1", 1);
    st = (*snap)->mount("fallback", t2);
    ::unsetenv("BERTH_SNAPSHOTTER_NO_LOWERDIR_PLUS");
    ASSERT_TRUE(st.ok()) << st;
    char cwd_after[4096];
    ASSERT_NE(::getcwd(cwd_after, sizeof(cwd_after)), nullptr);
    EXPECT_STREQ(cwd_after, cwd_before);  // the helper thread's chdir stayed its own
    check(t2);
    const std::string info2 = mountInfoLine(t2);
    EXPECT_NE(info2.find(strCat("lowerdir=", kLayers, "/fs:", kLayers - 1, "/fs:")),
              std::string::npos)
        << info2.substr(0, 300);
    EXPECT_EQ(::umount2(t1.c_str(), MNT_DETACH), 0);
    EXPECT_EQ(::umount2(t2.c_str(), MNT_DETACH), 0);
    snap->reset();
    db->reset();
    EXPECT_EQ(::umount2(base.c_str(), MNT_DETACH), 0);
  });
}

}  // namespace
}  // namespace berth::image
