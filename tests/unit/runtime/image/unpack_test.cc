// Tests for common/sha256 and runtime/image/unpack: layers are built in the test with
// libarchive's writer (pax format, optional gzip/zstd filters) and unpacked into temp
// directories. Tests named *Privileged* need root and skip otherwise.
#include "runtime/image/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "common/fs.h"
#include "common/sha256.h"
#include "runtime/image/unpack_paths.h"

namespace berth::image {
namespace {

using ::testing::HasSubstr;

// ---------------------------------------------------------------------------- sha256

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256Digest("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256Test, StreamingMatchesOneShotAndResets) {
  std::string data(200000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + 3);
  Sha256 hasher;
  for (size_t pos = 0; pos < data.size(); pos += 4097) {
    hasher.update(std::string_view(data).substr(pos, 4097));
  }
  EXPECT_EQ(hasher.bytesHashed(), data.size());
  EXPECT_EQ(hasher.hexDigest(), sha256Hex(data));
  hasher.update("abc");  // reset after a digest
  EXPECT_EQ(hasher.hexDigest(), sha256Hex("abc"));
}

TEST(Sha256Test, FileAndDigestStrings) {
  char dir[] = "/tmp/berth-sha-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/f";
  ASSERT_TRUE(fs::writeFileAtomic(path, "hello\n").ok());
  auto hex = sha256File(path);
  ASSERT_TRUE(hex.ok()) << hex.status();
  EXPECT_EQ(*hex, sha256Hex("hello\n"));
  auto missing = sha256File(std::string(dir) + "/missing");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("/missing"));
  ASSERT_TRUE(fs::removeAll(dir).ok());

  std::string good = "sha256:" + sha256Hex("x");
  EXPECT_TRUE(isSha256Digest(good));
  EXPECT_EQ(*parseSha256Digest(good), sha256Hex("x"));
  EXPECT_FALSE(isSha256Digest(sha256Hex("x")));
  EXPECT_FALSE(parseSha256Digest("sha512:abcd").ok());
  EXPECT_FALSE(parseSha256Digest("sha256:ABC").ok());
  std::string upper = "sha256:" + std::string(64, 'A');
  EXPECT_THAT(std::string(parseSha256Digest(upper).status().message()), HasSubstr("lowercase"));
}

// ------------------------------------------------------------------------ path rules

TEST(UnpackPathsTest, CleanEntryPath) {
  EXPECT_EQ(joinComponents(*cleanEntryPath("./a//b/./c/")), "a/b/c");
  EXPECT_EQ(joinComponents(*cleanEntryPath("/abs/x")), "abs/x");
  EXPECT_EQ(joinComponents(*cleanEntryPath("a/../b")), "b");
  EXPECT_TRUE(cleanEntryPath("./")->empty());
  EXPECT_FALSE(cleanEntryPath("../escape").ok());
  EXPECT_FALSE(cleanEntryPath("/abs/../../escape").ok());
  EXPECT_FALSE(cleanEntryPath("a/../../b").ok());
}

TEST(UnpackPathsTest, SymlinkLeavesLayer) {
  EXPECT_TRUE(symlinkLeavesLayer({"s"}, "/etc/passwd"));
  EXPECT_TRUE(symlinkLeavesLayer({"s"}, "../etc/passwd"));
  EXPECT_TRUE(symlinkLeavesLayer({"a", "s"}, "../../x"));
  EXPECT_FALSE(symlinkLeavesLayer({"a", "s"}, "../x"));
  EXPECT_FALSE(symlinkLeavesLayer({"a", "s"}, "b/../c"));
}

// ----------------------------------------------------------------------- tar builder

enum class Compression { kNone, kGzip, kZstd };

struct TarEntry {
  std::string path;
  unsigned type = AE_IFREG;
  unsigned perm = 0644;
  std::string data;
  std::string symlink;   // AE_IFLNK target
  std::string hardlink;  // non-empty: a hard link to this earlier entry
  time_t mtime = 1600000000;
  long mtime_nsec = 0;
  int64_t uid = 0;
  int64_t gid = 0;
  dev_t rdev = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
};

TarEntry file(std::string path, std::string data, unsigned perm = 0644) {
  TarEntry e;
  e.path = std::move(path);
  e.data = std::move(data);
  e.perm = perm;
  return e;
}
TarEntry dir(std::string path, unsigned perm = 0755) {
  TarEntry e;
  e.path = std::move(path);
  e.type = AE_IFDIR;
  e.perm = perm;
  return e;
}
TarEntry symlink(std::string path, std::string target) {
  TarEntry e;
  e.path = std::move(path);
  e.type = AE_IFLNK;
  e.perm = 0777;
  e.symlink = std::move(target);
  return e;
}
TarEntry hardlink(std::string path, std::string target) {
  TarEntry e;
  e.path = std::move(path);
  e.hardlink = std::move(target);
  return e;
}

void writeTar(const std::string& path, const std::vector<TarEntry>& entries,
              Compression compression) {
  archive* a = archive_write_new();
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(archive_write_set_format_pax(a), ARCHIVE_OK);
  if (compression == Compression::kGzip) {
    ASSERT_EQ(archive_write_add_filter_gzip(a), ARCHIVE_OK);
  }
  if (compression == Compression::kZstd) {
    ASSERT_EQ(archive_write_add_filter_zstd(a), ARCHIVE_OK);
  }
  ASSERT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK) << archive_error_string(a);
  for (const TarEntry& t : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, t.path.c_str());
    archive_entry_set_perm(e, t.perm);
    archive_entry_set_mtime(e, t.mtime, t.mtime_nsec);
    archive_entry_set_uid(e, t.uid);
    archive_entry_set_gid(e, t.gid);
    if (!t.hardlink.empty()) {
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_hardlink(e, t.hardlink.c_str());
      archive_entry_set_size(e, 0);
    } else {
      archive_entry_set_filetype(e, t.type);
      if (t.type == AE_IFLNK) archive_entry_set_symlink(e, t.symlink.c_str());
      if (t.type == AE_IFCHR || t.type == AE_IFBLK) archive_entry_set_rdev(e, t.rdev);
      archive_entry_set_size(e, t.type == AE_IFREG ? static_cast<la_int64_t>(t.data.size()) : 0);
    }
    for (const auto& [name, value] : t.xattrs) {
      archive_entry_xattr_add_entry(e, name.c_str(), value.data(), value.size());
    }
    ASSERT_EQ(archive_write_header(a, e), ARCHIVE_OK) << archive_error_string(a);
    if (!t.data.empty()) {
      ASSERT_EQ(archive_write_data(a, t.data.data(), t.data.size()),
                static_cast<la_ssize_t>(t.data.size()));
    }
    archive_entry_free(e);
  }
  ASSERT_EQ(archive_write_close(a), ARCHIVE_OK);
  archive_write_free(a);
}

class UnpackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-unpack-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    target_ = dir_ + "/layer";
    options_.display_name = "test-layer";
    options_.apply_ownership = false;
  }
  void TearDown() override {
    (void)fs::removeAll(dir_);
    if (!outside_.empty()) (void)fs::removeAll(outside_);
  }

  std::string makeLayer(const std::vector<TarEntry>& entries,
                        Compression compression = Compression::kNone,
                        const std::string& name = "layer.tar") {
    std::string path = dir_ + "/" + name;
    writeTar(path, entries, compression);
    return path;
  }

  StatusOr<UnpackResult> unpack(const std::vector<TarEntry>& entries,
                                Compression compression = Compression::kNone) {
    return unpackLayer(makeLayer(entries, compression), target_, options_);
  }

  // A directory outside the test dir that hostile layers aim at.
  std::string makeOutside() {
    char tmpl[] = "/tmp/berth-outside-XXXXXX";
    EXPECT_NE(::mkdtemp(tmpl), nullptr);
    outside_ = tmpl;
    return outside_;
  }

  // The unpack failed cleanly: error names the layer and `entry`, nothing at the
  // target, no temporary sibling left, the outside directory (if any) untouched.
  void expectCleanFailure(const StatusOr<UnpackResult>& result, const std::string& entry) {
    ASSERT_FALSE(result.ok());
    std::string msg(result.status().message());
    EXPECT_THAT(msg, HasSubstr("unpack layer \"test-layer\""));
    if (!entry.empty()) {
      EXPECT_THAT(msg, HasSubstr("entry \"" + entry + "\"")) << msg;
    }
    EXPECT_FALSE(fs::exists(target_));
    auto names = fs::listDir(dir_);
    ASSERT_TRUE(names.ok());
    for (const std::string& n : *names) EXPECT_EQ(n.find("layer.tmp-"), std::string::npos) << n;
    if (!outside_.empty()) {
      auto out = fs::listDir(outside_);
      ASSERT_TRUE(out.ok());
      EXPECT_TRUE(out->empty()) << "something was written outside the layer";
    }
  }

  std::string at(const std::string& rel) { return target_ + "/" + rel; }

  std::string dir_;
  std::string target_;
  std::string outside_;
  UnpackOptions options_;
};

TEST_F(UnpackTest, NormalLayerKeepsTypesModesTimesLinksAndXattrs) {
  TarEntry etc = dir("etc", 0750);
  etc.mtime = 1500000000;
  TarEntry hosts = file("etc/hosts", "127.0.0.1 localhost\n", 0640);
  hosts.mtime = 1510000000;
  hosts.mtime_nsec = 123456789;
  hosts.xattrs = {{"user.berth.test", "value1"}};
  TarEntry tool = file("usr/bin/tool", std::string(100000, 'x'), 04755);
  TarEntry link = symlink("usr/bin/sh", "/usr/bin/tool");
  link.mtime = 1520000000;
  TarEntry fifo;
  fifo.path = "run/fifo";
  fifo.type = AE_IFIFO;
  fifo.perm = 0600;
  auto result = unpack({dir("./", 0711), etc, hosts, dir("usr"), dir("usr/bin"), tool,
                        link, hardlink("usr/bin/tool2", "usr/bin/tool"), dir("run"), fifo});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->entries, 10u);
  EXPECT_EQ(result->unpacked_size, 20u + 100000u);
  EXPECT_EQ(result->diff_id, "sha256:" + *sha256File(dir_ + "/layer.tar"));
  struct stat st;
  ASSERT_EQ(::stat(target_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0711u);

  ASSERT_EQ(::lstat(at("etc").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1500000000);  // set after etc/hosts was created

  ASSERT_EQ(::lstat(at("etc/hosts").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1510000000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 123456789);
  EXPECT_EQ(*fs::readFile(at("etc/hosts")), "127.0.0.1 localhost\n");
  char value[64] = {};
  ssize_t n = ::getxattr(at("etc/hosts").c_str(), "user.berth.test", value, sizeof(value));
  if (n < 0 && errno == ENOTSUP) {
    EXPECT_EQ(result->skipped_xattrs, 1u);
  } else {
    ASSERT_EQ(n, 6) << "errno " << errno;
    EXPECT_EQ(std::string(value, 6), "value1");
  }

  struct stat tool_st;
  ASSERT_EQ(::lstat(at("usr/bin/tool").c_str(), &tool_st), 0);
  EXPECT_EQ(tool_st.st_mode & 07777, 04755u);
  EXPECT_EQ(tool_st.st_size, 100000);
  EXPECT_EQ(tool_st.st_nlink, 2u);
  ASSERT_EQ(::lstat(at("usr/bin/tool2").c_str(), &st), 0);
  EXPECT_EQ(st.st_ino, tool_st.st_ino);

  ASSERT_EQ(::lstat(at("usr/bin/sh").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(st.st_mtim.tv_sec, 1520000000);
  char buf[64] = {};
  ASSERT_EQ(::readlink(at("usr/bin/sh").c_str(), buf, sizeof(buf)), 13);
  EXPECT_EQ(std::string(buf), "/usr/bin/tool");

  ASSERT_EQ(::lstat(at("run/fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST_F(UnpackTest, MissingParentsAbsoluteNamesAndReplacedEntries) {
  auto result = unpack({file("/abs/deep/er/file", "a"), file("x", "old"), file("x", "new"),
                        symlink("y", "x"), file("y", "file now")});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(*fs::readFile(at("abs/deep/er/file")), "a");
  EXPECT_EQ(*fs::readFile(at("x")), "new");
  struct stat st;
  ASSERT_EQ(::lstat(at("y").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  ASSERT_EQ(::stat(target_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);  // no "./" entry: default root mode
}

TEST_F(UnpackTest, PlainGzipAndZstdGiveTheSameDiffId) {
  std::vector<TarEntry> entries = {dir("d"), file("d/f", std::string(300000, 'q')),
                                   symlink("l", "d/f")};
  std::string plain = makeLayer(entries, Compression::kNone, "plain.tar");
  std::string gz = makeLayer(entries, Compression::kGzip, "layer.tar.gz");
  std::string zst = makeLayer(entries, Compression::kZstd, "layer.tar.zst");
  std::string expected = "sha256:" + *sha256File(plain);
  struct stat st;
  ASSERT_EQ(::stat(plain.c_str(), &st), 0);
  int i = 0;
  for (const std::string& blob : {plain, gz, zst}) {
    std::string target = dir_ + "/out" + std::to_string(i++);
    auto result = unpackLayer(blob, target, options_);
    ASSERT_TRUE(result.ok()) << blob << ": " << result.status();
    EXPECT_EQ(result->diff_id, expected) << blob;
    EXPECT_EQ(result->uncompressed_size, static_cast<uint64_t>(st.st_size)) << blob;
    EXPECT_EQ(*fs::readFile(target + "/d/f"), std::string(300000, 'q'));
  }
  // The expected diffID is accepted.
  options_.expected_diff_id = expected;
  auto again = unpackLayer(zst, target_, options_);
  ASSERT_TRUE(again.ok()) << again.status();
}

TEST_F(UnpackTest, EmptyLayers) {
  // A tar with no entries (1 KiB of end-of-archive zeros plus padding), as Docker
  // emits for metadata-only layers.
  std::string empty_tar = makeLayer({}, Compression::kNone, "empty.tar");
  auto result = unpackLayer(empty_tar, target_, options_);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->diff_id, "sha256:" + *sha256File(empty_tar));
  EXPECT_EQ(result->entries, 0u);
  EXPECT_TRUE(fs::listDir(target_)->empty());
  // A zero-byte blob is an empty stream, too.
  std::string zero = dir_ + "/zero";
  ASSERT_TRUE(fs::writeFileAtomic(zero, "").ok());
  auto zero_result = unpackLayer(zero, dir_ + "/zero-out", options_);
  ASSERT_TRUE(zero_result.ok()) << zero_result.status();
  EXPECT_EQ(zero_result->diff_id, "sha256:" + sha256Hex(""));
}

TEST_F(UnpackTest, SelfHardlinkAndLinkToInLayerSymlink) {
  auto result = unpack({file("f", "x"), hardlink("f", "f"), symlink("s", "f"),
                        hardlink("s2", "s")});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(*fs::readFile(at("f")), "x");
  struct stat st;
  ASSERT_EQ(::lstat(at("s2").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));  // the symlink itself is linked, not its target
}

TEST_F(UnpackTest, DiffIdMismatchFailsAndLeavesNoTarget) {
  options_.expected_diff_id = "sha256:" + sha256Hex("something else");
  auto result = unpack({file("f", "data")}, Compression::kGzip);
  expectCleanFailure(result, "");
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("diffID mismatch"));

  options_.expected_diff_id = "md5:abc";
  auto bad = unpack({file("f", "data")});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(UnpackTest, TargetMustBeEmpty) {
  ASSERT_TRUE(fs::mkdirAll(target_).ok());
  auto ok = unpack({file("f", "1")});  // an existing empty directory is replaced
  ASSERT_TRUE(ok.ok()) << ok.status();
  auto again = unpack({file("g", "2")});
  ASSERT_FALSE(again.ok());
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("is not empty"));
  EXPECT_EQ(*fs::readFile(at("f")), "1");
  EXPECT_FALSE(fs::exists(at("g")));
}

TEST_F(UnpackTest, HostileDotDotEscapeFails) {
  std::string outside = makeOutside();
  expectCleanFailure(unpack({file("ok", "1"), file("../escape", "x")}), "../escape");
  EXPECT_FALSE(fs::exists(dir_ + "/escape"));
}

TEST_F(UnpackTest, HostileAbsoluteDotDotEscapeFails) {
  auto result = unpack({file("/abs/../../escape", "x")});
  expectCleanFailure(result, "/abs/../../escape");
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("leaves the layer root"));
  EXPECT_FALSE(fs::exists(dir_ + "/escape"));
}

TEST_F(UnpackTest, HostileFileThroughAbsoluteSymlinkFails) {
  std::string outside = makeOutside();
  auto result = unpack({symlink("a", outside), file("a/file", "pwned")});
  expectCleanFailure(result, "a/file");
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("\"a\" is a symlink"));
}

TEST_F(UnpackTest, HostileFileThroughRelativeSymlinkFails) {
  auto result = unpack({dir("d"), symlink("b", "../../.."), file("b/x", "pwned"),
                        dir("b/sub")});
  expectCleanFailure(result, "b/x");
  EXPECT_FALSE(fs::exists("/x"));
}

TEST_F(UnpackTest, HostileDirectoryThroughSymlinkDeepFails) {
  std::string outside = makeOutside();
  auto result = unpack({dir("d"), symlink("d/l", outside), dir("d/l/sub")});
  expectCleanFailure(result, "d/l/sub/");  // libarchive writes dirs with a slash
}

TEST_F(UnpackTest, HostileHardlinkOutsideFails) {
  auto result = unpack({hardlink("passwd", "../../etc/passwd")});
  expectCleanFailure(result, "passwd");
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("hard link target"));
}

TEST_F(UnpackTest, HostileHardlinkToSymlinkOutFails) {
  auto result = unpack({symlink("s", "../../etc/passwd"), hardlink("h", "s")});
  expectCleanFailure(result, "h");
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("symlink pointing outside"));
  result = unpack({symlink("abs", "/etc/shadow"), hardlink("h2", "abs")});
  expectCleanFailure(result, "h2");
}

TEST_F(UnpackTest, HardlinkThroughSymlinkDirectoryFails) {
  std::string outside = makeOutside();
  ASSERT_TRUE(fs::writeFileAtomic(outside + "/secret", "s").ok());
  auto result = unpack({symlink("a", outside), hardlink("h", "a/secret")});
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("entry \"h\""));
  EXPECT_FALSE(fs::exists(target_));
  struct stat st;
  ASSERT_EQ(::stat((outside + "/secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 1u);
}

TEST_F(UnpackTest, TruncatedGzipFailsNamingTheLayer) {
  std::string data(400000, '\0');
  unsigned state = 12345;
  for (char& c : data) {
    state = state * 1103515245 + 12345;
    c = static_cast<char>(state >> 16);
  }
  std::string path = makeLayer({file("big", data), file("after", "x")}, Compression::kGzip);
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  ASSERT_EQ(::truncate(path.c_str(), st.st_size / 2), 0);
  auto result = unpackLayer(path, target_, options_);
  expectCleanFailure(result, "");
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(UnpackTest, NotATarFails) {
  std::string path = dir_ + "/layer.tar";
  ASSERT_TRUE(fs::writeFileAtomic(path, std::string(5000, 'z')).ok());
  expectCleanFailure(unpackLayer(path, target_, options_), "");
}

TEST_F(UnpackTest, WhiteoutsWithoutRoot) {
  if (::geteuid() == 0) GTEST_SKIP() << "needs a non-root user to see the behaviour";
  // Kernels >= 5.8 let anyone create the 0:0 whiteout device; older ones need
  // CAP_MKNOD, and then the error says so.
  auto result = unpack({dir("d"), file("d/.wh.gone", "")});
  if (result.ok()) {
    struct stat st;
    ASSERT_EQ(::lstat(at("d/gone").c_str(), &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode));
    EXPECT_EQ(st.st_rdev, makedev(0, 0));
    ASSERT_TRUE(fs::removeAll(target_).ok());
  } else {
    expectCleanFailure(result, "d/.wh.gone");
    EXPECT_THAT(std::string(result.status().message()), HasSubstr("needs root"));
  }
  // trusted.overlay.opaque always needs CAP_SYS_ADMIN.
  auto opaque = unpack({dir("d"), file("d/.wh..wh..opq", "")});
  expectCleanFailure(opaque, "d/.wh..wh..opq");
  EXPECT_EQ(opaque.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(opaque.status().message()), HasSubstr("needs root"));
}

TEST_F(UnpackTest, WhiteoutAndOpaquePrivileged) {
  if (::geteuid() != 0) GTEST_SKIP() << "overlay whiteouts need root (CAP_MKNOD, trusted.*)";
  auto result = unpack({dir("d"), file("d/keep", "k"), file("d/.wh.gone", ""),
                        file("d/.wh..wh..opq", ""), file("d/.wh..wh.plnk", ""),
                        file("d/replaced", "r"), file("d/.wh.replaced", "")});
  ASSERT_TRUE(result.ok()) << result.status();
  for (const char* name : {"d/gone", "d/replaced"}) {
    struct stat st;
    ASSERT_EQ(::lstat(at(name).c_str(), &st), 0) << name;
    EXPECT_TRUE(S_ISCHR(st.st_mode)) << name;
    EXPECT_EQ(major(st.st_rdev), 0u);
    EXPECT_EQ(minor(st.st_rdev), 0u);
  }
  EXPECT_FALSE(fs::exists(at("d/.wh.gone")));
  EXPECT_FALSE(fs::exists(at("d/.wh..wh..opq")));
  EXPECT_FALSE(fs::exists(at("d/.wh..wh.plnk")));
  char value[8] = {};
  ASSERT_EQ(::getxattr(at("d").c_str(), "trusted.overlay.opaque", value, sizeof(value)), 1);
  EXPECT_EQ(value[0], 'y');
  EXPECT_LT(::getxattr(target_.c_str(), "trusted.overlay.opaque", value, sizeof(value)), 0);
}

TEST_F(UnpackTest, OwnershipAndIdShiftPrivileged) {
  if (::geteuid() != 0) GTEST_SKIP() << "chown to other users needs root";
  options_.apply_ownership = true;
  TarEntry d = dir("home");
  d.uid = d.gid = 1000;
  TarEntry f = file("home/f", "x", 04750);
  f.uid = f.gid = 1000;
  TarEntry l = symlink("home/l", "/nowhere");
  l.uid = l.gid = 1000;
  auto result = unpack({d, f, l});
  ASSERT_TRUE(result.ok()) << result.status();
  for (const char* name : {"home", "home/f", "home/l"}) {
    struct stat st;
    ASSERT_EQ(::lstat(at(name).c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 1000u) << name;
    EXPECT_EQ(st.st_gid, 1000u) << name;
  }
  struct stat st;
  ASSERT_EQ(::lstat(at("home/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 04750u);  // chmod after chown keeps set-id bits

  options_.id_shift = IdShift{100000, 200000};
  std::string shifted = dir_ + "/shifted";
  auto again = unpackLayer(dir_ + "/layer.tar", shifted, options_);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_EQ(::lstat((shifted + "/home/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 101000u);
  EXPECT_EQ(st.st_gid, 201000u);
}

TEST_F(UnpackTest, DeviceNodesAndCapabilityXattrPrivileged) {
  if (::geteuid() != 0) GTEST_SKIP() << "device nodes and security.* xattrs need root";
  TarEntry null;
  null.path = "dev/null";
  null.type = AE_IFCHR;
  null.perm = 0666;
  null.rdev = makedev(1, 3);
  TarEntry loop;
  loop.path = "dev/loop9";
  loop.type = AE_IFBLK;
  loop.perm = 0660;
  loop.rdev = makedev(7, 9);
  // VFS_CAP_REVISION_2 with CAP_NET_BIND_SERVICE (bit 10) permitted + effective.
  std::string cap(20, '\0');
  cap[0] = 0x01;
  cap[3] = 0x02;  // magic 0x02000001 little endian
  cap[4] = 0x00;
  cap[5] = 0x04;  // permitted[0] = 1 << 10
  TarEntry ping = file("bin/ping", "elf", 0755);
  ping.xattrs = {{"security.capability", cap}};
  auto result = unpack({null, loop, ping});
  ASSERT_TRUE(result.ok()) << result.status();
  struct stat st;
  ASSERT_EQ(::lstat(at("dev/null").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
  EXPECT_EQ(st.st_mode & 07777, 0666u);
  ASSERT_EQ(::lstat(at("dev/loop9").c_str(), &st), 0);
  EXPECT_TRUE(S_ISBLK(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(7, 9));
  char value[32];
  ssize_t n = ::getxattr(at("bin/ping").c_str(), "security.capability", value, sizeof(value));
  ASSERT_EQ(n, 20) << "errno " << errno;
  EXPECT_EQ(std::string(value, 20), cap);
}

}  // namespace
}  // namespace berth::image
