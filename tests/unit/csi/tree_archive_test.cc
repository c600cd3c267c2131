// Snapshot archives and clones keep what a volume holds: contents, modes, owners,
// symlinks, hard links and holes.
#include "csi/tree_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>

#include "common/fs.h"

namespace berth::csi {
namespace {

struct Node {
  mode_t mode;
  uid_t uid;
  gid_t gid;
  off_t size;
  std::string content;  // file data or link target
  ino_t ino;
};

// Everything below `root` keyed by relative path.
std::map<std::string, Node> scan(const std::string& root, const std::string& rel = "") {
  std::map<std::string, Node> out;
  std::string path = rel.empty() ? root : root + "/" + rel;
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return out;
  Node n{st.st_mode, st.st_uid, st.st_gid, st.st_size, "", st.st_ino};
  if (S_ISLNK(st.st_mode)) {
    char buf[256] = {};
    ssize_t len = ::readlink(path.c_str(), buf, sizeof(buf) - 1);
    n.content.assign(buf, len > 0 ? static_cast<size_t>(len) : 0);
  } else if (S_ISREG(st.st_mode) && st.st_size < (1 << 20)) {
    n.content = fs::readFile(path).value_or("");
  }
  out[rel.empty() ? "." : rel] = n;
  if (S_ISDIR(st.st_mode)) {
    for (const auto& name : fs::listDir(path).value_or(std::vector<std::string>{})) {
      auto sub = scan(root, rel.empty() ? name : rel + "/" + name);
      out.insert(sub.begin(), sub.end());
    }
  }
  return out;
}

class CsiTreeArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/csi-tar-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    src_ = dir_ + "/src";
    ASSERT_EQ(::mkdir(src_.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((src_ + "/sub").c_str(), 0750), 0);
    ASSERT_EQ(::mkdir((src_ + "/sticky").c_str(), 01777), 0);
    ASSERT_EQ(::chmod((src_ + "/sticky").c_str(), 01777), 0);
    std::ofstream(src_ + "/sub/a.txt") << "alpha";
    ASSERT_EQ(::chmod((src_ + "/sub/a.txt").c_str(), 0640), 0);
    std::ofstream(src_ + "/tool") << "#!/bin/sh\n";
    ASSERT_EQ(::chmod((src_ + "/tool").c_str(), 04755), 0);
    ASSERT_EQ(::symlink("sub/a.txt", (src_ + "/rel-link").c_str()), 0);
    ASSERT_EQ(::symlink("/nowhere/at/all", (src_ + "/dangling").c_str()), 0);
    ASSERT_EQ(::link((src_ + "/sub/a.txt").c_str(), (src_ + "/hard").c_str()), 0);
    if (::geteuid() == 0) {
      ASSERT_EQ(::lchown((src_ + "/sub/a.txt").c_str(), 1234, 5678), 0);
    }
    // A sparse file: 1 MiB data at 64 MiB, hole before.
    int fd = ::open((src_ + "/sparse").c_str(), O_WRONLY | O_CREAT, 0600);
    ASSERT_GE(fd, 0);
    std::string block(1 << 20, 'z');
    ASSERT_EQ(::pwrite(fd, block.data(), block.size(), 64 << 20), static_cast<ssize_t>(block.size()));
    ::close(fd);
  }
  void TearDown() override { (void)fs::removeAll(dir_); }

  void expectSameTree(const std::string& copy) {
    auto want = scan(src_);
    auto got = scan(copy);
    ASSERT_EQ(want.size(), got.size());
    for (const auto& [path, w] : want) {
      ASSERT_TRUE(got.count(path)) << path;
      const Node& g = got[path];
      EXPECT_EQ(g.mode, w.mode) << path;
      EXPECT_EQ(g.uid, w.uid) << path;
      EXPECT_EQ(g.gid, w.gid) << path;
      if (!S_ISDIR(w.mode)) {
        EXPECT_EQ(g.size, w.size) << path;
        EXPECT_EQ(g.content, w.content) << path;
      }
    }
    EXPECT_EQ(got["hard"].ino, got["sub/a.txt"].ino) << "hard link kept";
    struct stat st;
    ASSERT_EQ(::stat((copy + "/sparse").c_str(), &st), 0);
    EXPECT_EQ(st.st_size, (64 << 20) + (1 << 20));
    EXPECT_LT(st.st_blocks * 512, 8 << 20) << "the hole stays a hole";
    std::string tail(16, '\0');
    int fd = ::open((copy + "/sparse").c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pread(fd, tail.data(), tail.size(), 64 << 20), 16);
    ::close(fd);
    EXPECT_EQ(tail, std::string(16, 'z'));
  }

  std::string dir_;
  std::string src_;
};

TEST_F(CsiTreeArchiveTest, ArchiveAndExtractGiveAnIdenticalTree) {
  auto size = archiveTree(src_, dir_ + "/snap.tar");
  ASSERT_TRUE(size.ok()) << size.status();
  EXPECT_LT(*size, 4 << 20) << "the sparse file's hole is not stored";
  EXPECT_FALSE(fs::exists(dir_ + "/snap.tar.tmp"));
  ASSERT_EQ(::mkdir((dir_ + "/restored").c_str(), 0777), 0);
  Status st = extractArchive(dir_ + "/snap.tar", dir_ + "/restored");
  ASSERT_TRUE(st.ok()) << st;
  expectSameTree(dir_ + "/restored");
}

TEST_F(CsiTreeArchiveTest, CopyTreeGivesAnIdenticalTree) {
  Status st = copyTree(src_, dir_ + "/clone");
  ASSERT_TRUE(st.ok()) << st;
  expectSameTree(dir_ + "/clone");
}

TEST_F(CsiTreeArchiveTest, SingleFilesRoundTrip) {
  auto size = archiveTree(src_ + "/sparse", dir_ + "/file.tar");
  ASSERT_TRUE(size.ok()) << size.status();
  Status st = extractArchive(dir_ + "/file.tar", dir_ + "/file.img");
  ASSERT_TRUE(st.ok()) << st;
  struct stat a, b;
  ASSERT_EQ(::stat((src_ + "/sparse").c_str(), &a), 0);
  ASSERT_EQ(::stat((dir_ + "/file.img").c_str(), &b), 0);
  EXPECT_TRUE(S_ISREG(b.st_mode));
  EXPECT_EQ(a.st_size, b.st_size);
}

TEST_F(CsiTreeArchiveTest, ForeignArchivesAreRefused) {
  std::string path = dir_ + "/evil.tar";
  archive* w = archive_write_new();
  archive_write_set_format_pax_restricted(w);
  ASSERT_EQ(archive_write_open_filename(w, path.c_str()), ARCHIVE_OK);
  for (const char* name : {"data", "data/../../escape"}) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, name[4] == '\0' ? AE_IFDIR : AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, 0);
    archive_write_header(w, e);
    archive_entry_free(e);
  }
  archive_write_close(w);
  archive_write_free(w);
  Status st = extractArchive(path, dir_ + "/out");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_FALSE(fs::exists(dir_ + "/escape"));
}

}  // namespace
}  // namespace berth::csi
