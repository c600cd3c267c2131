// Shared setup of the image integration tests: a throwaway image root with its own
// database and ImageService, helpers to publish fixture images and to compare the
// store before and after a failed pull.
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <functional>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/fs.h"
#include "common/sqlite.h"
#include "runtime/image/image_service.h"
#include "tests/fixtures/fake_registry.h"
#include "tests/fixtures/image_builder.h"

namespace berth::testing {

// Everything that makes up the store, to check that a failed pull left it as it was.
struct StoreState {
  std::set<std::string> blobs;
  std::set<std::string> snapshots;  // "<kind>:<chain id or key>"
  std::set<std::string> images;
  std::set<std::string> files;      // paths under the root except the database files
  bool operator==(const StoreState&) const = default;
};

class ImageEnv {
 public:
  // Creates a temp root and opens an ImageService on it. `tweak` may adjust options.
  explicit ImageEnv(const std::function<void(image::ImageServiceOptions&)>& tweak = {}) {
    char tmpl[] = "/tmp/berth-image-test-XXXXXX";
    char* dir = ::mkdtemp(tmpl);
    EXPECT_NE(dir, nullptr);
    root_ = dir;
    options_.root = fs::join(root_, "root");
    options_.registries_conf = "";
    options_.certs_dir = fs::join(root_, "certs.d");
    options_.client.max_retries = 2;
    options_.client.retry_backoff = std::chrono::milliseconds(10);
    options_.client.low_speed_time = std::chrono::seconds(2);
    options_.client.connect_timeout = std::chrono::seconds(5);
    if (tweak) tweak(options_);
    reopen();
  }
  ~ImageEnv() {
    service_.reset();
    db_.reset();
    (void)fs::removeAll(root_);
  }

  void reopen() {
    service_.reset();
    db_.reset();
    auto db = Database::open(fs::join(options_.root, "berth.db"));
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    auto svc = image::ImageService::open(options_, db_.get());
    ASSERT_TRUE(svc.ok()) << svc.status();
    service_ = std::move(*svc);
  }

  image::ImageService& svc() { return *service_; }
  image::ImageServiceOptions& options() { return options_; }
  const std::string& dir() const { return root_; }

  StoreState state() {
    StoreState s;
    auto blobs = service_->content().list();
    EXPECT_TRUE(blobs.ok());
    if (blobs.ok()) {
      for (const auto& b : *blobs) s.blobs.insert(b.digest);
    }
    auto snaps = service_->snapshotter().list();
    EXPECT_TRUE(snaps.ok());
    if (snaps.ok()) {
      for (const auto& sn : *snaps) {
        s.snapshots.insert(sn.kind == image::SnapshotKind::kCommitted ? "c:" + sn.chain_id
                                                                      : "a:" + sn.key);
      }
    }
    auto images = service_->list();
    EXPECT_TRUE(images.ok());
    if (images.ok()) {
      for (const auto& i : *images) s.images.insert(i.id);
    }
    collectFiles(options_.root, "", s.files);
    return s;
  }

 private:
  static void collectFiles(const std::string& dir, const std::string& rel,
                           std::set<std::string>& out) {
    auto names = fs::listDir(dir);
    if (!names.ok()) return;
    for (const std::string& name : *names) {
      if (name.rfind("berth.db", 0) == 0 || name == "image.lock") continue;
      std::string path = fs::join(dir, name);
      out.insert(rel + name);
      struct stat st;
      if (::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && name != "fs") {
        collectFiles(path, rel + name + "/", out);
      }
    }
  }

  std::string root_;
  image::ImageServiceOptions options_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<image::ImageService> service_;
};

// Publishes `image` (single or index) in `registry` as <repository>:<tag>.
inline void publish(FakeRegistry& registry, const std::string& repository,
                    const std::string& tag, const TestImage& image) {
  for (const BuiltImage& platform_image : image.images) {
    for (const auto& [digest, bytes] : platform_image.blobs()) {
      registry.addBlob(repository, bytes);
    }
    if (image.isIndex()) {
      registry.addManifest(repository, "", platform_image.manifest,
                           platform_image.manifest_media_type);
    }
  }
  registry.addManifest(repository, tag, image.manifest, image.media_type);
}

// The fixture image `name`, or a test failure.
inline const TestImage& fixtureImage(const std::string& name) {
  auto image = standardImage(name);
  if (!image.ok()) {
    ADD_FAILURE() << image.status();
    static TestImage empty;
    return empty;
  }
  return **image;
}

}  // namespace berth::testing
