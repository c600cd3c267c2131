#include "common/fs.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace berth::fs {
namespace {

class FsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-fs-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { ASSERT_TRUE(removeAll(dir_).ok()); }
  std::string dir_;
};

TEST_F(FsTest, WriteFileAtomicReplacesContentAndLeavesNoTemp) {
  std::string path = join(dir_, "state.json");
  ASSERT_TRUE(writeFileAtomic(path, "one").ok());
  ASSERT_TRUE(writeFileAtomic(path, "two", 0600, Durability::kVolatile).ok());
  EXPECT_EQ(*readFile(path), "two");
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_THAT(*listDir(dir_), ::testing::ElementsAre("state.json"));
}

TEST_F(FsTest, WriteFileAtomicIntoMissingDirectoryFailsWithPath) {
  Status st = writeFileAtomic(join(dir_, "missing/x"), "data");
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(st.message()), ::testing::HasSubstr(dir_ + "/missing/x"));
}

TEST_F(FsTest, ReadMissingFileIsNotFound) {
  auto r = readFile(join(dir_, "nope"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(FsTest, MkdirAllAndRemoveAll) {
  std::string deep = join(dir_, "a/b/c");
  ASSERT_TRUE(mkdirAll(deep).ok());
  ASSERT_TRUE(mkdirAll(deep).ok());  // idempotent
  ASSERT_TRUE(writeFileAtomic(join(deep, "f"), "x").ok());
  ASSERT_EQ(symlink("/etc", join(deep, "link").c_str()), 0);
  ASSERT_TRUE(removeAll(join(dir_, "a")).ok());
  EXPECT_FALSE(exists(join(dir_, "a")));
  EXPECT_TRUE(exists("/etc/passwd"));  // the symlink was removed, not followed
  EXPECT_TRUE(removeAll(join(dir_, "a")).ok());  // missing is fine
}

TEST_F(FsTest, MkdirAllOverAFileFails) {
  ASSERT_TRUE(writeFileAtomic(join(dir_, "file"), "x").ok());
  EXPECT_FALSE(mkdirAll(join(dir_, "file")).ok());
}

TEST(FsJoinTest, Join) {
  EXPECT_EQ(join("a/", "/b"), "a/b");
  EXPECT_EQ(join("/", "b"), "/b");
  EXPECT_EQ(join("a", ""), "a");
  EXPECT_EQ(join("", "b"), "b");
}

TEST_F(FsTest, SecureJoinKeepsSymlinksInsideRoot) {
  std::string root = join(dir_, "rootfs");
  ASSERT_TRUE(mkdirAll(join(root, "real")).ok());
  ASSERT_EQ(symlink("/etc", join(root, "abs").c_str()), 0);
  ASSERT_EQ(symlink("../../../../..", join(root, "up").c_str()), 0);
  ASSERT_EQ(symlink("real", join(root, "rel").c_str()), 0);
  EXPECT_EQ(*secureJoin(root, "/abs/passwd"), root + "/etc/passwd");
  EXPECT_EQ(*secureJoin(root, "up/etc"), root + "/etc");
  EXPECT_EQ(*secureJoin(root, "/../../x"), root + "/x");
  EXPECT_EQ(*secureJoin(root, "rel/new/dir"), root + "/real/new/dir");
  EXPECT_EQ(*secureJoin(root, "/"), root);
}

TEST_F(FsTest, SecureJoinDetectsLoops) {
  std::string root = join(dir_, "rootfs");
  ASSERT_TRUE(mkdirAll(root).ok());
  ASSERT_EQ(symlink("loop", join(root, "loop").c_str()), 0);
  EXPECT_FALSE(secureJoin(root, "loop/x").ok());
}

}  // namespace
}  // namespace berth::fs
