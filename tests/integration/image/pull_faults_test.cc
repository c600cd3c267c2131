// Pulls through the scripted registry (tests/fixtures/fake_registry.h: real HTTP on
// loopback) that misbehaves on purpose: every bad input of the images issue returns an
// error naming the image, the object and the cause, and leaves the store as it was.
// Also: two pulls of one image at once share each download.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "nlohmann/json.hpp"
#include "tests/integration/image/image_env.h"

namespace berth::testing {
namespace {

using ::testing::HasSubstr;

class PullFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (layer ownership and device nodes)";
    Status busybox = checkBusyboxStatic();
    if (!busybox.ok()) GTEST_SKIP() << busybox;
    auto registry = FakeRegistry::start();
    ASSERT_TRUE(registry.ok()) << registry.status();
    registry_ = std::move(*registry);
    env_ = std::make_unique<ImageEnv>([this](image::ImageServiceOptions& o) {
      o.insecure_registries = {registry_->hostPort()};
    });
    image_ = &fixtureImage("busybox-multi");
    publish(*registry_, "test/busybox", "1", *image_);
    ref_ = registry_->hostPort() + "/test/busybox:1";
  }

  std::string blobPath(const std::string& digest) {
    return "/v2/test/busybox/blobs/" + digest;
  }
  const BuiltLayer& layer(size_t i) { return image_->images[0].layers.at(i); }

  // Pulls and expects failure with `code`; the store must be unchanged.
  Status failedPull(absl::StatusCode code) {
    StoreState before = env_->state();
    auto result = env_->svc().pull(ref_);
    EXPECT_FALSE(result.ok());
    if (result.ok()) return absl::OkStatus();
    EXPECT_EQ(result.status().code(), code) << result.status();
    EXPECT_THAT(std::string(result.status().message()), HasSubstr(ref_));
    StoreState after = env_->state();
    EXPECT_EQ(before.blobs, after.blobs);
    EXPECT_EQ(before.snapshots, after.snapshots);
    EXPECT_EQ(before.images, after.images);
    EXPECT_EQ(before.files, after.files);
    return result.status();
  }

  std::unique_ptr<FakeRegistry> registry_;
  std::unique_ptr<ImageEnv> env_;
  const TestImage* image_ = nullptr;
  std::string ref_;
};

TEST_F(PullFaultsTest, CleanPullWorksAsBaseline) {
  auto image = env_->svc().pull(ref_);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->id, image_->images[0].config_digest);
  EXPECT_EQ(image->chain_ids.size(), image_->images[0].layers.size());
}

TEST_F(PullFaultsTest, LayerDigestMismatchIsDataLossNamingTheLayer) {
  FaultRule rule;
  rule.path_prefix = blobPath(layer(1).digest);
  rule.times = -1;
  rule.replace_body = std::string(layer(1).data.size(), 'x');
  registry_->addFault(rule);
  Status st = failedPull(absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(st.message()), HasSubstr("layer 2 of"));
  EXPECT_THAT(std::string(st.message()), HasSubstr(layer(1).digest));
}

TEST_F(PullFaultsTest, TruncatedBlobIsDataLoss) {
  // The registry serves a complete response that is shorter than the descriptor says.
  FaultRule rule;
  rule.path_prefix = blobPath(layer(0).digest);
  rule.times = -1;
  rule.replace_body = layer(0).data.substr(0, layer(0).data.size() / 2);
  registry_->addFault(rule);
  Status st = failedPull(absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(st.message()), HasSubstr(layer(0).digest));
}

TEST_F(PullFaultsTest, RegistryClosingMidBlobEveryTimeIsUnavailable) {
  // Headers promise the whole blob, then the connection closes before any byte; a
  // resumed request fares no better.
  FaultRule rule;
  rule.path_prefix = blobPath(layer(0).digest);
  rule.times = -1;
  rule.close_after_bytes = 0;
  registry_->addFault(rule);
  Status st = failedPull(absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(st.message()), HasSubstr(layer(0).digest));
}

TEST_F(PullFaultsTest, ConnectionClosedMidBlobOnceIsResumed) {
  FaultRule rule;
  rule.path_prefix = blobPath(layer(0).digest);
  rule.times = 1;
  rule.close_after_bytes = layer(0).data.size() / 2;
  registry_->addFault(rule);
  auto image = env_->svc().pull(ref_);
  ASSERT_TRUE(image.ok()) << image.status();
  auto gets = registry_->requestsTo(blobPath(layer(0).digest));
  ASSERT_EQ(gets.size(), 2u);
  EXPECT_THAT(gets[1].header("range"), HasSubstr("bytes="));
}

TEST_F(PullFaultsTest, UnknownTagIsNotFound) {
  ref_ = registry_->hostPort() + "/test/busybox:nosuch";
  Status st = failedPull(absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(st.message()), HasSubstr("nosuch"));
}

TEST_F(PullFaultsTest, ForbiddenManifestIsPermissionDenied) {
  FaultRule rule;
  rule.path_prefix = "/v2/test/busybox/manifests/";
  rule.times = -1;
  rule.status = 403;
  registry_->addFault(rule);
  (void)failedPull(absl::StatusCode::kPermissionDenied);
}

TEST_F(PullFaultsTest, UnauthorizedBlobIsUnauthenticated) {
  FaultRule rule;
  rule.path_prefix = blobPath(layer(2).digest);
  rule.times = -1;
  rule.status = 401;
  registry_->addFault(rule);
  Status st = failedPull(absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(st.message()), HasSubstr("layer 3 of"));
}

TEST_F(PullFaultsTest, TooManyRequestsRetriedThenResourceExhausted) {
  FaultRule rule;
  rule.path_prefix = blobPath(layer(1).digest);
  rule.times = -1;
  rule.status = 429;
  rule.retry_after = "0";
  registry_->addFault(rule);
  (void)failedPull(absl::StatusCode::kResourceExhausted);
  EXPECT_GE(registry_->requestsTo(blobPath(layer(1).digest)).size(), 2u);
}

TEST_F(PullFaultsTest, ServerErrorOnceIsRetried) {
  FaultRule rule;
  rule.path_prefix = blobPath(layer(1).digest);
  rule.times = 1;
  rule.status = 503;
  registry_->addFault(rule);
  auto image = env_->svc().pull(ref_);
  ASSERT_TRUE(image.ok()) << image.status();
}

TEST_F(PullFaultsTest, ServerErrorAlwaysIsUnavailable) {
  FaultRule rule;
  rule.path_prefix = "/v2/test/busybox/manifests/";
  rule.times = -1;
  rule.status = 500;
  registry_->addFault(rule);
  (void)failedPull(absl::StatusCode::kUnavailable);
}

TEST_F(PullFaultsTest, StalledTransferTimesOut) {
  FaultRule rule;
  rule.path_prefix = blobPath(layer(0).digest);
  rule.times = -1;
  rule.stall = std::chrono::milliseconds(8000);
  registry_->addFault(rule);
  env_->options().client.max_retries = 0;
  env_->reopen();
  auto started = std::chrono::steady_clock::now();
  Status st = failedPull(absl::StatusCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(7));
  EXPECT_THAT(std::string(st.message()), HasSubstr(layer(0).digest));
}

TEST_F(PullFaultsTest, UnknownLayerMediaTypeFailsBeforeAnyDownload) {
  const BuiltImage& built = image_->images[0];
  nlohmann::json manifest = nlohmann::json::parse(built.manifest);
  manifest["layers"][1]["mediaType"] = "application/vnd.example.unknown";
  std::string bytes = manifest.dump();
  registry_->addManifest("test/odd", "1", bytes, built.manifest_media_type);
  for (const auto& [digest, blob] : built.blobs()) registry_->addBlob("test/odd", blob);
  ref_ = registry_->hostPort() + "/test/odd:1";
  Status st = failedPull(absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("application/vnd.example.unknown"));
  EXPECT_TRUE(registry_->requestsTo("/v2/test/odd/blobs/").empty());
}

TEST_F(PullFaultsTest, WrongDiffIdIsDataLoss) {
  const BuiltImage& built = image_->images[0];
  nlohmann::json config = nlohmann::json::parse(built.config);
  config["rootfs"]["diff_ids"][0] = "sha256:" + std::string(64, 'a');
  std::string config_bytes = config.dump();
  std::string config_digest = registry_->addBlob("test/bad", config_bytes);
  for (const BuiltLayer& l : built.layers) registry_->addBlob("test/bad", l.data);
  nlohmann::json manifest = nlohmann::json::parse(built.manifest);
  manifest["config"]["digest"] = config_digest;
  manifest["config"]["size"] = config_bytes.size();
  registry_->addManifest("test/bad", "1", manifest.dump(), built.manifest_media_type);
  ref_ = registry_->hostPort() + "/test/bad:1";
  Status st = failedPull(absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(st.message()), HasSubstr("layer 1 of"));
}

TEST_F(PullFaultsTest, HostileLayerFailsAndLeavesNothingOutside) {
  LayerBuilder hostile(false);
  TarEntry escape;
  escape.path = "../../escaped-by-layer";
  escape.content = "x";
  hostile.add(escape);
  auto layer = hostile.build(Compression::kGzip);
  ASSERT_TRUE(layer.ok()) << layer.status();
  auto built = ImageBuilder().addLayer(*layer).build();
  ASSERT_TRUE(built.ok()) << built.status();
  publish(*registry_, "test/hostile", "1", singleImage("hostile", *built));
  ref_ = registry_->hostPort() + "/test/hostile:1";
  (void)failedPull(absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(fs::join(env_->options().root, "escaped-by-layer")));
  EXPECT_FALSE(fs::exists(fs::join(env_->dir(), "escaped-by-layer")));
}

TEST_F(PullFaultsTest, OnlyAnotherPlatformIsNotFound) {
  publish(*registry_, "test/arm", "1", fixtureImage("arm64-only"));
  ref_ = registry_->hostPort() + "/test/arm:1";
  Status st = failedPull(absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(st.message()), HasSubstr("linux/amd64"));
  EXPECT_THAT(std::string(st.message()), HasSubstr("linux/arm64"));
}

TEST_F(PullFaultsTest, ConcurrentPullsShareEachDownload) {
  // Slow the layers down a little so both pulls are in flight together.
  for (const BuiltLayer& l : image_->images[0].layers) {
    FaultRule rule;
    rule.path_prefix = blobPath(l.digest);
    rule.times = 1;
    rule.stall = std::chrono::milliseconds(300);
    rule.close_after_bytes = l.data.size();  // whole body, no cut
    registry_->addFault(rule);
  }
  StatusOr<image::ImageRecord> a, b;
  std::thread ta([&] { a = env_->svc().pull(ref_); });
  std::thread tb([&] { b = env_->svc().pull(ref_); });
  ta.join();
  tb.join();
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(a->id, b->id);
  for (const BuiltLayer& l : image_->images[0].layers) {
    EXPECT_EQ(registry_->requestsTo(blobPath(l.digest)).size(), 1u) << l.digest;
  }
  EXPECT_EQ(registry_->requestsTo(blobPath(image_->images[0].config_digest)).size(), 1u);
}

TEST_F(PullFaultsTest, RepeatedPullDownloadsNoBlobAgain) {
  ASSERT_TRUE(env_->svc().pull(ref_).ok());
  size_t blob_requests = registry_->requestsTo("/v2/test/busybox/blobs/").size();
  auto again = env_->svc().pull(ref_);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(registry_->requestsTo("/v2/test/busybox/blobs/").size(), blob_requests);
}

}  // namespace
}  // namespace berth::testing
