#include "runtime/image/content_store.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/fs.h"
#include "common/sha256.h"

namespace berth::image {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

class ContentStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-content-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    root_ = fs::join(dir_, "content");
    StatusOr<std::unique_ptr<ContentStore>> store = ContentStore::open(root_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }
  void TearDown() override {
    store_.reset();
    ASSERT_TRUE(fs::removeAll(dir_).ok());
  }

  std::vector<std::string> ingestFiles() { return *fs::listDir(fs::join(root_, "ingest")); }
  std::vector<std::string> blobFiles() { return *fs::listDir(fs::join(root_, "blobs/sha256")); }

  // Writes `data` in chunks of `chunk` bytes and commits.
  Status ingest(const std::string& digest, int64_t size, const std::string& data,
                size_t chunk = 7) {
    ASSIGN_OR_RETURN(auto writer, store_->openWriter(digest, size));
    for (size_t i = 0; i < data.size(); i += chunk) {
      RETURN_IF_ERROR(writer->write(std::string_view(data).substr(i, chunk)));
    }
    return writer->commit();
  }

  std::string dir_;
  std::string root_;
  std::unique_ptr<ContentStore> store_;
};

TEST_F(ContentStoreTest, IngestHappyPath) {
  std::string data(100000, 'x');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 31);
  std::string digest = sha256Digest(data);
  ASSERT_FALSE(store_->exists(digest));
  {
    StatusOr<std::unique_ptr<ContentStore::Writer>> writer =
        store_->openWriter(digest, static_cast<int64_t>(data.size()));
    ASSERT_TRUE(writer.ok()) << writer.status();
    EXPECT_EQ((*writer)->digest(), digest);
    ASSERT_TRUE((*writer)->write(std::string_view(data).substr(0, 4096)).ok());
    ASSERT_TRUE((*writer)->write(std::string_view(data).substr(4096)).ok());
    EXPECT_EQ((*writer)->offset(), 100000);
    EXPECT_THAT(ingestFiles(), ::testing::SizeIs(1));
    EXPECT_FALSE(store_->exists(digest));  // not visible before commit
    Status st = (*writer)->commit();
    ASSERT_TRUE(st.ok()) << st;
    EXPECT_EQ((*writer)->commit().code(), absl::StatusCode::kFailedPrecondition);
  }
  EXPECT_TRUE(store_->exists(digest));
  EXPECT_THAT(ingestFiles(), IsEmpty());
  EXPECT_THAT(blobFiles(), ElementsAre(digest.substr(7)));

  StatusOr<BlobInfo> info = store_->info(digest);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->size, 100000);
  StatusOr<std::string> path = store_->path(digest);
  ASSERT_TRUE(path.ok());
  EXPECT_EQ(*path, root_ + "/blobs/sha256/" + digest.substr(7));
  EXPECT_EQ(*fs::readFile(*path), data);
  struct stat st;
  ASSERT_EQ(stat(path->c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
  StatusOr<std::string> read = store_->readBlob(digest);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, data);
}

TEST_F(ContentStoreTest, UnknownSizeChecksOnlyDigest) {
  std::string data = "{\"schemaVersion\":2}";
  ASSERT_TRUE(ingest(sha256Digest(data), -1, data).ok());
  EXPECT_TRUE(store_->exists(sha256Digest(data)));
}

TEST_F(ContentStoreTest, WrongDigestFailsAndLeavesNothing) {
  std::string expected = sha256Digest("what the manifest said");
  std::string actual = sha256Digest("what the registry sent");
  Status st = ingest(expected, 22, "what the registry sent");
  ASSERT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("expected " + expected));
  EXPECT_THAT(std::string(st.message()), HasSubstr("content is " + actual));
  EXPECT_FALSE(store_->exists(expected));
  EXPECT_FALSE(store_->exists(actual));
  EXPECT_THAT(ingestFiles(), IsEmpty());
  EXPECT_THAT(blobFiles(), IsEmpty());
}

TEST_F(ContentStoreTest, TooShortFailsAtCommit) {
  std::string data = "0123456789";
  Status st = ingest(sha256Digest(data), 11, data);
  ASSERT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("expected 11 bytes, received 10"));
  EXPECT_THAT(ingestFiles(), IsEmpty());
  EXPECT_THAT(blobFiles(), IsEmpty());
}

TEST_F(ContentStoreTest, TooLongFailsAtWrite) {
  std::string data = "0123456789";
  StatusOr<std::unique_ptr<ContentStore::Writer>> writer =
      store_->openWriter(sha256Digest(data), 9);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->write("01234").ok());
  Status st = (*writer)->write("56789");
  ASSERT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("expected 9 bytes, received at least 10"));
  EXPECT_THAT(ingestFiles(), IsEmpty());
  EXPECT_EQ((*writer)->commit().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(store_->exists(sha256Digest(data)));
  EXPECT_THAT(blobFiles(), IsEmpty());
}

TEST_F(ContentStoreTest, AbortAndDestructionLeaveNothing) {
  std::string data = "partial layer";
  {
    auto writer = store_->openWriter(sha256Digest(data), 13);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->write("partial").ok());
    EXPECT_THAT(ingestFiles(), ::testing::SizeIs(1));
  }  // destroyed without commit
  EXPECT_THAT(ingestFiles(), IsEmpty());
  auto writer = store_->openWriter(sha256Digest(data), 13);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->write(data).ok());
  (*writer)->abort();
  (*writer)->abort();  // idempotent
  EXPECT_THAT(ingestFiles(), IsEmpty());
  EXPECT_EQ((*writer)->commit().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(store_->exists(sha256Digest(data)));
}

TEST_F(ContentStoreTest, ReIngestIsIdempotent) {
  std::string data = "same content";
  std::string digest = sha256Digest(data);
  ASSERT_TRUE(ingest(digest, 12, data).ok());
  StatusOr<BlobInfo> before = store_->info(digest);
  ASSERT_TRUE(before.ok());
  ASSERT_TRUE(ingest(digest, 12, data).ok());
  ASSERT_TRUE(store_->writeBlob(digest, data).ok());
  EXPECT_THAT(blobFiles(), ElementsAre(digest.substr(7)));
  EXPECT_THAT(ingestFiles(), IsEmpty());
  EXPECT_EQ(store_->info(digest)->modified, before->modified);  // not replaced
}

TEST_F(ContentStoreTest, ConcurrentWritersOfSameDigestAllSucceed) {
  std::string data(256 * 1024, 'a');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i % 251);
  std::string digest = sha256Digest(data);
  constexpr int kThreads = 8;
  std::vector<Status> results(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      results[t] = ingest(digest, static_cast<int64_t>(data.size()), data, 4096 + t);
    });
  }
  for (std::thread& t : threads) t.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_TRUE(results[t].ok()) << t << ": " << results[t];
  EXPECT_THAT(blobFiles(), ElementsAre(digest.substr(7)));
  EXPECT_THAT(ingestFiles(), IsEmpty());
  EXPECT_EQ(*store_->readBlob(digest, 1 << 20), data);
}

TEST_F(ContentStoreTest, ListRemoveAndGarbageCollect) {
  std::string a = "blob a", b = "blob bb", c = "blob ccc";
  for (const std::string& s : {a, b, c}) ASSERT_TRUE(store_->writeBlob(sha256Digest(s), s).ok());
  // Junk under blobs/sha256 is not listed.
  ASSERT_TRUE(fs::writeFileAtomic(root_ + "/blobs/sha256/not-a-digest", "x").ok());
  StatusOr<std::vector<BlobInfo>> listed = store_->list();
  ASSERT_TRUE(listed.ok()) << listed.status();
  std::vector<std::string> digests;
  for (const BlobInfo& info : *listed) digests.push_back(info.digest);
  EXPECT_THAT(digests, UnorderedElementsAre(sha256Digest(a), sha256Digest(b), sha256Digest(c)));
  EXPECT_TRUE(std::is_sorted(digests.begin(), digests.end()));

  // A stale ingest file (an interrupted pull) and a fresh one (a running pull).
  auto stale = store_->openWriter(sha256Digest("stale"), 5);
  auto fresh = store_->openWriter(sha256Digest("fresh"), 5);
  ASSERT_TRUE(stale.ok() && fresh.ok());
  ASSERT_TRUE((*stale)->write("sta").ok());
  std::vector<std::string> ingest_names = ingestFiles();
  ASSERT_EQ(ingest_names.size(), 2u);
  std::string stale_prefix = sha256Digest("stale").substr(7, 12);
  for (const std::string& name : ingest_names) {
    if (name.rfind(stale_prefix, 0) != 0) continue;
    struct timespec times[2] = {{1000000, 0}, {1000000, 0}};
    ASSERT_EQ(utimensat(AT_FDCWD, (root_ + "/ingest/" + name).c_str(), times, 0), 0);
  }

  StatusOr<GcResult> gc = store_->garbageCollect({sha256Digest(b)}, std::chrono::hours(1));
  ASSERT_TRUE(gc.ok()) << gc.status();
  EXPECT_THAT(gc->removed_blobs, UnorderedElementsAre(sha256Digest(a), sha256Digest(c)));
  EXPECT_EQ(gc->removed_ingests, 1);
  EXPECT_EQ(gc->freed_bytes, 6 + 8 + 3);
  EXPECT_FALSE(store_->exists(sha256Digest(a)));
  EXPECT_TRUE(store_->exists(sha256Digest(b)));
  EXPECT_FALSE(store_->exists(sha256Digest(c)));
  ASSERT_EQ(ingestFiles().size(), 1u);
  EXPECT_EQ(ingestFiles()[0].substr(0, 12), sha256Digest("fresh").substr(7, 12));
  // The running pull still commits.
  ASSERT_TRUE((*fresh)->write("fresh").ok());
  EXPECT_TRUE((*fresh)->commit().ok());
  // The interrupted one fails cleanly.
  EXPECT_FALSE((*stale)->commit().ok());

  EXPECT_TRUE(store_->remove(sha256Digest(b)).ok());
  EXPECT_EQ(store_->remove(sha256Digest(b)).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->info(sha256Digest(b)).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->path(sha256Digest(b)).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->readBlob(sha256Digest(b)).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ContentStoreTest, UsageCountsBytesAndInodes) {
  StatusOr<StoreUsage> empty = store_->usage();
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->bytes, 0);
  EXPECT_EQ(empty->inodes, 4);  // root, blobs, blobs/sha256, ingest
  std::string small = "12345", big(3000, 'b');
  ASSERT_TRUE(store_->writeBlob(sha256Digest(small), small).ok());
  ASSERT_TRUE(store_->writeBlob(sha256Digest(big), big).ok());
  StatusOr<StoreUsage> used = store_->usage();
  ASSERT_TRUE(used.ok()) << used.status();
  EXPECT_EQ(used->bytes, 3005);
  EXPECT_EQ(used->inodes, 6);
  EXPECT_GT(used->disk_bytes, 0);
  // An in-flight ingest counts too.
  auto writer = store_->openWriter(sha256Digest("xy"), 2);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->write("x").ok());
  EXPECT_EQ(store_->usage()->bytes, 3006);
  EXPECT_EQ(store_->usage()->inodes, 7);
}

TEST_F(ContentStoreTest, ReadBlobDetectsCorruptionAndSizeLimit) {
  std::string data = "{\"config\":{}}";
  std::string digest = sha256Digest(data);
  ASSERT_TRUE(store_->writeBlob(digest, data).ok());
  StatusOr<std::string> limited = store_->readBlob(digest, 4);
  EXPECT_EQ(limited.status().code(), absl::StatusCode::kFailedPrecondition);
  std::string path = *store_->path(digest);
  ASSERT_EQ(chmod(path.c_str(), 0644), 0);
  ASSERT_TRUE(fs::writeFile(path, "{\"config\":{X}").ok());
  StatusOr<std::string> corrupt = store_->readBlob(digest);
  ASSERT_EQ(corrupt.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(corrupt.status().message()), HasSubstr(path));
}

TEST_F(ContentStoreTest, InvalidDigestsAreRejected) {
  std::string hex64(64, 'a');
  for (const std::string& bad :
       {std::string(""), std::string("sha256"), "sha256:" + hex64.substr(1),
        "sha256:" + std::string(64, 'A'), "sha256:" + hex64 + "a", "sha256:" + std::string(64, 'g'),
        ":" + hex64, "sha256:../../../etc/passwd" + std::string(38, 'a')}) {
    EXPECT_EQ(validateBlobDigest(bad).code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(store_->openWriter(bad, 1).status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
    EXPECT_EQ(store_->info(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(store_->remove(bad).code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_FALSE(store_->exists(bad)) << bad;
  }
  Status other = validateBlobDigest("sha512:" + std::string(128, 'a'));
  EXPECT_EQ(other.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(other.message()), HasSubstr("algorithm \"sha512\" is not supported"));
  EXPECT_TRUE(validateBlobDigest("sha256:" + hex64).ok());
  EXPECT_EQ(store_->openWriter("sha256:" + hex64, -2).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ContentStoreOpenTest, ErrorNamesRoot) {
  StatusOr<std::unique_ptr<ContentStore>> store = ContentStore::open("/proc/berth-no/content");
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("/proc/berth-no"));
}

}  // namespace
}  // namespace berth::image
