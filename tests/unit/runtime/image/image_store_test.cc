#include "runtime/image/image_store.h"

#include <stdlib.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/fs.h"
#include "common/strings.h"

namespace berth::image {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// "sha256:" + 64 hex digits: `lead` followed by the repeated `fill` digit.
std::string digestOf(const std::string& lead, char fill = '0') {
  return "sha256:" + lead + std::string(64 - lead.size(), fill);
}

ImageRecord makeRecord(const std::string& id_lead) {
  ImageRecord r;
  r.id = digestOf(id_lead);
  r.manifest_digest = digestOf("ea" + id_lead);
  r.manifest_media_type = "application/vnd.oci.image.manifest.v1+json";
  r.config_media_type = "application/vnd.oci.image.config.v1+json";
  r.platform = "linux/amd64";
  r.layer_digests = {digestOf("1a" + id_lead), digestOf("1b" + id_lead)};
  r.diff_ids = {digestOf("2a" + id_lead), digestOf("2b" + id_lead)};
  r.chain_ids = {digestOf("2a" + id_lead), digestOf("3b" + id_lead)};
  r.blobs = {r.manifest_digest, r.id, r.layer_digests[0], r.layer_digests[1]};
  r.size = 1234567;
  return r;
}

class ImageStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-image-store-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    db_ = openDb();
    ASSERT_NE(db_, nullptr);
    auto store = ImageStore::open(db_.get());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }
  void TearDown() override {
    store_.reset();
    db_.reset();
    ASSERT_TRUE(fs::removeAll(dir_).ok());
  }

  std::unique_ptr<Database> openDb() {
    auto db = Database::open(dir_ + "/berth.db");
    EXPECT_TRUE(db.ok()) << db.status();
    return db.ok() ? std::move(*db) : nullptr;
  }

  int64_t count(const std::string& table) {
    auto st = db_->prepare("SELECT count(*) FROM " + table);
    EXPECT_TRUE(st.ok());
    auto row = st->step();
    EXPECT_TRUE(row.ok() && *row);
    return st->columnInt(0);
  }

  std::string dir_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<ImageStore> store_;
};

const char kBusybox[] = "docker.io/library/busybox:1.36";
const char kBusyboxLatest[] = "docker.io/library/busybox:latest";
const char kBusyboxDigest[] =
    "docker.io/library/busybox@sha256:"
    "1111111111111111111111111111111111111111111111111111111111111111";

TEST_F(ImageStoreTest, PutGetRoundTripsEveryField) {
  ImageRecord r = makeRecord("aa");
  r.repo_tags = {kBusyboxLatest, kBusybox};  // unsorted on purpose
  r.repo_digests = {kBusyboxDigest};
  r.platform = "linux/arm/v7";
  r.pinned = true;
  const auto before = std::chrono::system_clock::now();
  ASSERT_TRUE(store_->put(r).ok());
  const auto after = std::chrono::system_clock::now();

  auto got = store_->get(r.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->id, r.id);
  EXPECT_THAT(got->repo_tags, ElementsAre(kBusybox, kBusyboxLatest));
  EXPECT_THAT(got->repo_digests, ElementsAre(kBusyboxDigest));
  EXPECT_EQ(got->manifest_digest, r.manifest_digest);
  EXPECT_EQ(got->manifest_media_type, r.manifest_media_type);
  EXPECT_EQ(got->config_media_type, r.config_media_type);
  EXPECT_EQ(got->platform, "linux/arm/v7");
  EXPECT_EQ(got->layer_digests, r.layer_digests);
  EXPECT_EQ(got->diff_ids, r.diff_ids);
  EXPECT_EQ(got->chain_ids, r.chain_ids);
  EXPECT_EQ(got->blobs, r.blobs);
  EXPECT_EQ(got->size, 1234567);
  EXPECT_TRUE(got->pinned);
  EXPECT_GE(got->created, before);
  EXPECT_LE(got->created, after);
  EXPECT_EQ(got->updated, got->created);

  auto all = store_->list();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].id, r.id);
  EXPECT_EQ((*all)[0].layer_digests, r.layer_digests);
}

TEST_F(ImageStoreTest, CreatedAndUpdatedAreSetByTheStore) {
  ImageRecord r = makeRecord("ab");
  r.created = std::chrono::system_clock::time_point(std::chrono::nanoseconds(1700000000123456789));
  r.updated = r.created;
  const auto before = std::chrono::system_clock::now();
  ASSERT_TRUE(store_->put(r).ok());
  auto got = store_->get(r.id);
  ASSERT_TRUE(got.ok());
  EXPECT_GE(got->created, before);  // when first recorded, not the caller's value
  EXPECT_EQ(got->updated, got->created);
}

TEST_F(ImageStoreTest, PutMergesNamesReplacesFieldsKeepsCreated) {
  ImageRecord r = makeRecord("aa");
  r.repo_tags = {kBusybox};
  ASSERT_TRUE(store_->put(r).ok());
  auto first = store_->get(r.id);
  ASSERT_TRUE(first.ok());

  ImageRecord again = makeRecord("aa");
  again.repo_tags = {kBusyboxLatest};
  again.repo_digests = {kBusyboxDigest};
  again.layer_digests = {digestOf("99")};
  again.blobs = {digestOf("99")};
  again.size = 5;
  again.created = std::chrono::system_clock::now() + std::chrono::hours(1);  // ignored
  ASSERT_TRUE(store_->put(again).ok());

  auto got = store_->get(r.id);
  ASSERT_TRUE(got.ok());
  EXPECT_THAT(got->repo_tags, ElementsAre(kBusybox, kBusyboxLatest));
  EXPECT_THAT(got->repo_digests, ElementsAre(kBusyboxDigest));
  EXPECT_THAT(got->layer_digests, ElementsAre(digestOf("99")));
  EXPECT_THAT(got->blobs, ElementsAre(digestOf("99")));
  EXPECT_EQ(got->size, 5);
  EXPECT_EQ(got->created, first->created);
  EXPECT_GE(got->updated, first->updated);
  EXPECT_EQ(count("images"), 1);
}

TEST_F(ImageStoreTest, TagMovesToTheNewImage) {
  ImageRecord a = makeRecord("aa");
  a.repo_tags = {kBusybox, kBusyboxLatest};
  ASSERT_TRUE(store_->put(a).ok());
  ImageRecord b = makeRecord("bb");
  b.repo_tags = {kBusyboxLatest};
  ASSERT_TRUE(store_->put(b).ok());

  auto ga = store_->get(a.id);
  auto gb = store_->get(b.id);
  ASSERT_TRUE(ga.ok() && gb.ok());
  EXPECT_THAT(ga->repo_tags, ElementsAre(kBusybox));
  EXPECT_THAT(gb->repo_tags, ElementsAre(kBusyboxLatest));
  auto resolved = store_->resolve(kBusyboxLatest);
  ASSERT_TRUE(resolved.ok());
  EXPECT_EQ(resolved->id, b.id);

  // Moving its last tag leaves the old image listed by ID only.
  ImageRecord c = makeRecord("cc");
  c.repo_tags = {kBusybox};
  ASSERT_TRUE(store_->put(c).ok());
  ga = store_->get(a.id);
  ASSERT_TRUE(ga.ok());
  EXPECT_THAT(ga->repo_tags, IsEmpty());
  EXPECT_THAT(ga->repo_digests, IsEmpty());
  auto all = store_->list();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].id, a.id);  // sorted by ID
  EXPECT_EQ((*all)[1].id, b.id);
  EXPECT_EQ((*all)[2].id, c.id);
}

TEST_F(ImageStoreTest, UntagLastNameRemovesTheRecord) {
  ImageRecord r = makeRecord("aa");
  r.repo_tags = {kBusybox, kBusyboxLatest};
  ASSERT_TRUE(store_->put(r).ok());

  auto removed = store_->untag(kBusybox);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_FALSE(*removed);
  auto got = store_->get(r.id);
  ASSERT_TRUE(got.ok());
  EXPECT_THAT(got->repo_tags, ElementsAre(kBusyboxLatest));

  removed = store_->untag(kBusyboxLatest);
  ASSERT_TRUE(removed.ok());
  EXPECT_TRUE(*removed);
  EXPECT_EQ(store_->get(r.id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(count("images"), 0);
  EXPECT_EQ(count("image_names"), 0);

  auto again = store_->untag(kBusyboxLatest);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(again.status().message()), HasSubstr(kBusyboxLatest));
}

TEST_F(ImageStoreTest, UntagDigest) {
  ImageRecord r = makeRecord("aa");
  r.repo_tags = {kBusybox};
  r.repo_digests = {kBusyboxDigest};
  ASSERT_TRUE(store_->put(r).ok());
  auto removed = store_->untag(kBusyboxDigest);
  ASSERT_TRUE(removed.ok());
  EXPECT_FALSE(*removed);
  auto got = store_->get(r.id);
  ASSERT_TRUE(got.ok());
  EXPECT_THAT(got->repo_digests, IsEmpty());
  EXPECT_THAT(got->repo_tags, ElementsAre(kBusybox));
  EXPECT_EQ(store_->resolve(kBusyboxDigest).status().code(), absl::StatusCode::kNotFound);

  // A record named only by a digest goes when that digest is untagged.
  ImageRecord d = makeRecord("dd");
  d.repo_digests = {kBusyboxDigest};
  ASSERT_TRUE(store_->put(d).ok());
  removed = store_->untag(kBusyboxDigest);
  ASSERT_TRUE(removed.ok());
  EXPECT_TRUE(*removed);
  EXPECT_EQ(store_->get(d.id).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ImageStoreTest, RemoveDropsRecordAndNames) {
  ImageRecord r = makeRecord("aa");
  r.repo_tags = {kBusybox};
  r.repo_digests = {kBusyboxDigest};
  ASSERT_TRUE(store_->put(r).ok());
  ImageRecord other = makeRecord("bb");
  other.repo_tags = {kBusyboxLatest};
  ASSERT_TRUE(store_->put(other).ok());

  ASSERT_TRUE(store_->remove(r.id).ok());
  EXPECT_EQ(store_->get(r.id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->resolve(kBusybox).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(count("image_names"), 1);
  EXPECT_TRUE(store_->get(other.id).ok());

  Status st = store_->remove(r.id);
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(st.message()), HasSubstr(r.id));
}

TEST_F(ImageStoreTest, ResolveByIdPrefixTagAndDigest) {
  ImageRecord a = makeRecord("abcdef0123456789");
  a.repo_tags = {kBusybox};
  a.repo_digests = {kBusyboxDigest};
  ASSERT_TRUE(store_->put(a).ok());
  ImageRecord b = makeRecord("abcdef0123456788");
  ASSERT_TRUE(store_->put(b).ok());

  auto expectResolves = [&](const std::string& name, const std::string& id) {
    auto got = store_->resolve(name);
    ASSERT_TRUE(got.ok()) << name << ": " << got.status();
    EXPECT_EQ(got->id, id) << name;
  };
  expectResolves(a.id, a.id);
  expectResolves(a.id.substr(7), a.id);                      // bare 64 hex
  expectResolves("sha256:abcdef0123456789", a.id);           // prefix with sha256:
  expectResolves("abcdef0123456788", b.id);                  // bare prefix
  expectResolves(kBusybox, a.id);
  expectResolves(kBusyboxDigest, a.id);

  auto ambiguous = store_->resolve("abcdef012345");
  EXPECT_EQ(ambiguous.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(ambiguous.status().message()), HasSubstr(a.id));
  EXPECT_THAT(std::string(ambiguous.status().message()), HasSubstr(b.id));
  EXPECT_EQ(store_->resolve("sha256:abcdef012345").status().code(),
            absl::StatusCode::kFailedPrecondition);

  // Too short a prefix is not an ID.
  auto short_prefix = store_->resolve("abcdef01234");
  EXPECT_EQ(short_prefix.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(short_prefix.status().message()), HasSubstr("12 hex digits"));

  auto missing = store_->resolve("docker.io/library/nosuch:1");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(std::string(missing.status().message()),
            "image \"docker.io/library/nosuch:1\" not found; list images with berth-image list");
  EXPECT_EQ(store_->resolve(digestOf("ff")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->resolve("ffffffffffffffff").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->resolve("").status().code(), absl::StatusCode::kNotFound);
  // Names are matched exactly: callers normalise first.
  EXPECT_EQ(store_->resolve("busybox:1.36").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ImageStoreTest, Pinned) {
  ImageRecord r = makeRecord("aa");
  ASSERT_TRUE(store_->put(r).ok());
  EXPECT_FALSE(store_->get(r.id)->pinned);
  ASSERT_TRUE(store_->setPinned(r.id, true).ok());
  EXPECT_TRUE(store_->get(r.id)->pinned);
  ASSERT_TRUE(store_->setPinned(r.id, false).ok());
  EXPECT_FALSE(store_->get(r.id)->pinned);
  EXPECT_EQ(store_->setPinned(digestOf("ee"), true).code(), absl::StatusCode::kNotFound);
}

TEST_F(ImageStoreTest, ReferencedBlobsAndChainIdsAreTheUnion) {
  auto empty = store_->referencedBlobs();
  ASSERT_TRUE(empty.ok());
  EXPECT_THAT(*empty, IsEmpty());

  ImageRecord a = makeRecord("aa");
  a.blobs = {digestOf("01"), digestOf("02")};
  a.chain_ids = {digestOf("c1"), digestOf("c2")};
  ImageRecord b = makeRecord("bb");
  b.blobs = {digestOf("02"), digestOf("03")};
  b.chain_ids = {digestOf("c1"), digestOf("c3")};
  ASSERT_TRUE(store_->put(a).ok());
  ASSERT_TRUE(store_->put(b).ok());

  auto blobs = store_->referencedBlobs();
  ASSERT_TRUE(blobs.ok());
  EXPECT_THAT(*blobs, ElementsAre(digestOf("01"), digestOf("02"), digestOf("03")));
  auto chains = store_->referencedChainIds();
  ASSERT_TRUE(chains.ok());
  EXPECT_THAT(*chains, ElementsAre(digestOf("c1"), digestOf("c2"), digestOf("c3")));

  ASSERT_TRUE(store_->remove(a.id).ok());
  blobs = store_->referencedBlobs();
  ASSERT_TRUE(blobs.ok());
  EXPECT_THAT(*blobs, ElementsAre(digestOf("02"), digestOf("03")));
}

TEST_F(ImageStoreTest, InvalidInputsAreRejectedWithNothingWritten) {
  ImageRecord holder = makeRecord("bb");
  holder.repo_tags = {kBusybox};
  ASSERT_TRUE(store_->put(holder).ok());

  struct Case {
    std::string what;
    std::function<void(ImageRecord&)> mutate;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"empty id", [](ImageRecord& r) { r.id = ""; }, "image ID is empty"},
      {"no algorithm", [](ImageRecord& r) { r.id = r.id.substr(7); }, "malformed"},
      {"uppercase id", [](ImageRecord& r) { r.id = "sha256:" + std::string(64, 'A'); },
       "malformed"},
      {"short id", [](ImageRecord& r) { r.id = "sha256:abc"; }, "malformed"},
      {"tag not normalised", [](ImageRecord& r) { r.repo_tags = {"busybox:1.36"}; },
       "use \"docker.io/library/busybox:1.36\""},
      {"tag without tag", [](ImageRecord& r) { r.repo_tags = {"docker.io/library/busybox"}; },
       "use \"docker.io/library/busybox:latest\""},
      {"tag with digest", [](ImageRecord& r) { r.repo_tags = {kBusyboxDigest}; },
       "without a digest"},
      {"bad tag", [](ImageRecord& r) { r.repo_tags = {"docker.io/library/Busy:1"}; },
       "invalid image reference"},
      {"digest is a tag", [](ImageRecord& r) { r.repo_digests = {kBusybox}; },
       "without a tag"},
      {"bad layer digest", [](ImageRecord& r) { r.layer_digests = {"sha256:zz"}; },
       "layer_digests"},
      {"bad chain id", [](ImageRecord& r) { r.chain_ids = {""}; }, "chain_ids"},
      {"negative size", [](ImageRecord& r) { r.size = -1; }, "negative"},
  };
  for (const Case& c : cases) {
    ImageRecord r = makeRecord("aa");
    // A valid tag that would move off `holder`, to check nothing is written.
    r.repo_tags = {kBusybox};
    c.mutate(r);
    if (c.what != "tag not normalised" && c.what != "tag without tag" &&
        c.what != "tag with digest" && c.what != "bad tag") {
      r.repo_tags.push_back(kBusyboxLatest);
    }
    Status st = store_->put(r);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << c.what << ": " << st;
    EXPECT_THAT(std::string(st.message()), HasSubstr(c.message)) << c.what;
  }
  EXPECT_EQ(count("images"), 1);
  EXPECT_EQ(count("image_names"), 1);
  auto got = store_->resolve(kBusybox);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->id, holder.id);
}

TEST_F(ImageStoreTest, PersistsAcrossReopen) {
  ImageRecord r = makeRecord("aa");
  r.repo_tags = {kBusybox};
  r.repo_digests = {kBusyboxDigest};
  r.pinned = true;
  ASSERT_TRUE(store_->put(r).ok());
  auto before = store_->get(r.id);
  ASSERT_TRUE(before.ok());
  store_.reset();
  db_.reset();

  db_ = openDb();
  ASSERT_NE(db_, nullptr);
  auto store = ImageStore::open(db_.get());
  ASSERT_TRUE(store.ok()) << store.status();
  store_ = std::move(*store);
  auto got = store_->resolve(kBusybox);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->id, r.id);
  EXPECT_THAT(got->repo_digests, ElementsAre(kBusyboxDigest));
  EXPECT_EQ(got->chain_ids, r.chain_ids);
  EXPECT_TRUE(got->pinned);
  EXPECT_EQ(got->created, before->created);
  EXPECT_EQ(got->updated, before->updated);
}

TEST_F(ImageStoreTest, ConcurrentPutsFromEightThreads) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  std::vector<std::string> errors(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        ImageRecord r = makeRecord(strCat(hex(static_cast<unsigned>(t)), "f",
                                          hex(static_cast<unsigned>(i)), "f"));
        r.repo_tags = {strCat("docker.io/library/t", t, ":", i),
                       strCat("docker.io/library/shared:", i)};  // contended tags move
        Status st = store_->put(r);
        if (!st.ok()) {
          ++failures;
          errors[t] = std::string(st.message());
        }
        (void)store_->resolve(r.repo_tags[1]);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0) << joinStrings(errors, "; ");
  auto all = store_->list();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(count("image_names"), kThreads * kPerThread + kPerThread);
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      EXPECT_TRUE(store_->resolve(strCat("docker.io/library/t", t, ":", i)).ok());
    }
  }
}

TEST_F(ImageStoreTest, TwoConnectionsToOneFileBothWrite) {
  // Two processes (berthd and the image CLI) are two connections to one file.
  auto db2 = openDb();
  ASSERT_NE(db2, nullptr);
  auto store2 = ImageStore::open(db2.get());
  ASSERT_TRUE(store2.ok()) << store2.status();

  constexpr int kEach = 40;
  std::atomic<int> failures{0};
  std::string error;
  auto writer = [&](ImageStore* store, const std::string& lead) {
    for (int i = 0; i < kEach; ++i) {
      ImageRecord r = makeRecord(strCat(lead, hex(static_cast<unsigned>(i)), "f"));
      r.repo_tags = {strCat("docker.io/library/", lead == "a" ? "one" : "two", ":", i),
                     "docker.io/library/contended:latest"};
      Status st = store->put(r);
      if (!st.ok()) {
        ++failures;
        error = std::string(st.message());
      }
    }
  };
  std::thread t1(writer, store_.get(), "a");
  std::thread t2(writer, store2->get(), "b");
  t1.join();
  t2.join();
  EXPECT_EQ(failures.load(), 0) << error;

  auto from1 = store_->list();
  auto from2 = (*store2)->list();
  ASSERT_TRUE(from1.ok() && from2.ok());
  EXPECT_EQ(from1->size(), 2u * kEach);
  EXPECT_EQ(from2->size(), 2u * kEach);
  // The contended tag is held by exactly one image, the same seen from both.
  auto c1 = store_->resolve("docker.io/library/contended:latest");
  auto c2 = (*store2)->resolve("docker.io/library/contended:latest");
  ASSERT_TRUE(c1.ok() && c2.ok());
  EXPECT_EQ(c1->id, c2->id);
  int holders = 0;
  for (const ImageRecord& r : *from1) {
    for (const std::string& t : r.repo_tags) holders += t == "docker.io/library/contended:latest";
  }
  EXPECT_EQ(holders, 1);
  // A write through one connection is seen by the other.
  ASSERT_TRUE((*store2)->setPinned(c1->id, true).ok());
  EXPECT_TRUE(store_->get(c1->id)->pinned);
}

TEST_F(ImageStoreTest, OpenTwiceMigratesOnce) {
  auto again = ImageStore::open(db_.get());
  ASSERT_TRUE(again.ok()) << again.status();
  auto st = db_->prepare("SELECT version FROM schema_versions WHERE component = 'images'");
  ASSERT_TRUE(st.ok());
  auto row = st->step();
  ASSERT_TRUE(row.ok() && *row);
  EXPECT_EQ(st->columnInt(0), 1);
}

}  // namespace
}  // namespace berth::image
