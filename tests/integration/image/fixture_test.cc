// Self-tests of the image fixtures: the images built from busybox-static are valid
// layer tars with the promised entries, and Debian's docker-registry accepts them in
// every mode (plain HTTP, TLS + htpasswd, TLS + token auth) and serves them back.
#include <archive.h>
#include <archive_entry.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "common/sha256.h"
#include "tests/fixtures/image_builder.h"
#include "tests/fixtures/registry_fixture.h"

namespace berth::testing {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;
using nlohmann::json;

struct ListedEntry {
  std::string path;
  mode_t type = 0;  // AE_IFREG, AE_IFDIR, ...
  std::string symlink;
  std::string hardlink;
  uid_t uid = 0;
  int64_t size = 0;
  std::map<std::string, std::string> xattrs;
};

struct ListedLayer {
  std::string diff_id;  // sha256 of the decompressed stream
  std::map<std::string, ListedEntry> entries;
  std::vector<std::string> order;
};

std::string decompress(const std::string& blob) {
  struct archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_raw(a);
  std::string out;
  if (archive_read_open_memory(a, blob.data(), blob.size()) == ARCHIVE_OK) {
    struct archive_entry* e;
    if (archive_read_next_header(a, &e) == ARCHIVE_OK) {
      char buf[65536];
      la_ssize_t n;
      while ((n = archive_read_data(a, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
    }
  }
  archive_read_free(a);
  return out;
}

ListedLayer listLayer(const std::string& blob) {
  ListedLayer layer;
  std::string tar = decompress(blob);
  layer.diff_id = sha256Digest(tar);
  struct archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  EXPECT_EQ(archive_read_open_memory(a, tar.data(), tar.size()), ARCHIVE_OK);
  struct archive_entry* e;
  int r;
  while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    ListedEntry le;
    le.path = archive_entry_pathname(e);
    while (le.path.size() > 1 && le.path.back() == '/') le.path.pop_back();
    le.type = archive_entry_filetype(e);
    if (archive_entry_symlink(e) != nullptr) le.symlink = archive_entry_symlink(e);
    if (archive_entry_hardlink(e) != nullptr) le.hardlink = archive_entry_hardlink(e);
    le.uid = static_cast<uid_t>(archive_entry_uid(e));
    le.size = archive_entry_size(e);
    archive_entry_xattr_reset(e);
    const char* name;
    const void* value;
    size_t size;
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
      le.xattrs[name] = std::string(static_cast<const char*>(value), size);
    }
    layer.order.push_back(le.path);
    layer.entries[le.path] = le;
  }
  EXPECT_EQ(r, ARCHIVE_EOF) << archive_error_string(a);
  archive_read_free(a);
  return layer;
}

const TestImage& image(const std::string& name) {
  auto img = standardImage(name);
  EXPECT_TRUE(img.ok()) << img.status();
  return **img;
}

class ImageBuilderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status s = checkBusyboxStatic();
    if (!s.ok()) GTEST_SKIP() << s.message();
    ASSERT_TRUE(standardImages().ok()) << standardImages().status();
  }
};

TEST_F(ImageBuilderTest, BusyboxMultiLayersHaveThePromisedEntries) {
  const TestImage& img = image("busybox-multi");
  ASSERT_FALSE(img.isIndex());
  ASSERT_EQ(img.images.size(), 1u);
  const BuiltImage& b = img.images[0];
  ASSERT_EQ(b.layers.size(), 3u);
  std::vector<ListedLayer> layers;
  for (const BuiltLayer& l : b.layers) {
    EXPECT_EQ(l.media_type, kOciLayerGzipType);
    EXPECT_EQ(sha256Digest(l.data), l.digest);
    // The gzip stream ends exactly with ISIZE (no block padding that Go's multistream
    // gzip reader would reject as a bad header).
    ASSERT_GT(l.data.size(), 8u);
    uint32_t isize;
    std::memcpy(&isize, l.data.data() + l.data.size() - 4, 4);
    EXPECT_EQ(isize, static_cast<uint32_t>(l.uncompressed_size));
    layers.push_back(listLayer(l.data));
    EXPECT_EQ(layers.back().diff_id, l.diff_id);
  }
  const auto& l1 = layers[0].entries;
  ASSERT_TRUE(l1.count("bin/busybox"));
  EXPECT_GT(l1.at("bin/busybox").size, 500000);
  ASSERT_TRUE(l1.count("bin/sh"));
  EXPECT_EQ(l1.at("bin/sh").type, AE_IFLNK);
  EXPECT_EQ(l1.at("bin/sh").symlink, "busybox");
  EXPECT_TRUE(l1.count("etc/passwd") && l1.count("etc/group") && l1.count("etc/removed-later"));
  EXPECT_TRUE(l1.count("data/old/a"));
  EXPECT_EQ(l1.at("home/app").uid, 1000u);

  const auto& l2 = layers[1].entries;
  EXPECT_TRUE(l2.count("etc/.wh.removed-later"));
  EXPECT_TRUE(l2.count("etc/added"));

  const auto& l3 = layers[2].entries;
  ASSERT_TRUE(l3.count("data/old/.wh..wh..opq"));
  // The opaque marker comes before the directory's new content.
  auto pos = [&](const std::string& p) {
    return std::find(layers[2].order.begin(), layers[2].order.end(), p) - layers[2].order.begin();
  };
  EXPECT_LT(pos("data/old/.wh..wh..opq"), pos("data/old/b"));
  EXPECT_EQ(l3.at("data/old/b-hardlink").hardlink, "data/old/b");
  EXPECT_EQ(l3.at("data/old/c-symlink").symlink, "b");
  EXPECT_EQ(l3.at("data/fifo").type, AE_IFIFO);
  EXPECT_EQ(l3.at("data/app-owned").uid, 1000u);
  EXPECT_EQ(l3.at("data/xattr-file").xattrs.at("user.berth.test"), "fixture");

  json config = json::parse(b.config);
  EXPECT_EQ(config["architecture"], "amd64");
  EXPECT_EQ(config["config"]["User"], "app");
  EXPECT_EQ(config["config"]["Entrypoint"], json({"/bin/sh", "-c"}));
  EXPECT_EQ(config["config"]["Cmd"], json({"echo hello"}));
  EXPECT_EQ(config["config"]["WorkingDir"], "/data");
  EXPECT_EQ(config["config"]["StopSignal"], "SIGQUIT");
  EXPECT_THAT(config["config"]["Env"].get<std::vector<std::string>>(), Contains("FOO=bar"));
  EXPECT_EQ(config["rootfs"]["diff_ids"].size(), 3u);
  json manifest = json::parse(b.manifest);
  EXPECT_EQ(manifest["config"]["digest"], b.config_digest);
  EXPECT_EQ(img.digest, sha256Digest(img.manifest));
}

TEST_F(ImageBuilderTest, DockerZstdAndIndexVariants) {
  const TestImage& docker = image("busybox-docker");
  EXPECT_EQ(docker.media_type, kDockerManifestType);
  EXPECT_EQ(docker.images[0].config_media_type, kDockerConfigType);
  for (const BuiltLayer& l : docker.images[0].layers) EXPECT_EQ(l.media_type, kDockerLayerGzipType);

  const TestImage& zstd = image("busybox-zstd");
  ASSERT_EQ(zstd.images[0].layers.size(), 1u);
  const BuiltLayer& zl = zstd.images[0].layers[0];
  EXPECT_EQ(zl.media_type, kOciLayerZstdType);
  EXPECT_EQ(zl.data.substr(0, 4), std::string("\x28\xb5\x2f\xfd", 4));  // zstd magic
  ListedLayer listed = listLayer(zl.data);
  EXPECT_EQ(listed.diff_id, zl.diff_id);
  // Same content as busybox-multi's base layer, different compression.
  EXPECT_EQ(zl.diff_id, image("busybox-multi").images[0].layers[0].diff_id);
  EXPECT_NE(zl.digest, image("busybox-multi").images[0].layers[0].digest);

  const TestImage& multi = image("multiarch");
  ASSERT_TRUE(multi.isIndex());
  ASSERT_EQ(multi.images.size(), 3u);
  EXPECT_EQ(multi.images[0].platform.str(), "linux/arm64");  // amd64 is not first
  ASSERT_NE(multi.forPlatform("linux/amd64"), nullptr);
  ASSERT_NE(multi.forPlatform("linux/arm/v7"), nullptr);
  json index = json::parse(multi.manifest);
  ASSERT_EQ(index["manifests"].size(), 3u);
  EXPECT_EQ(index["manifests"][2]["platform"]["variant"], "v7");
  EXPECT_EQ(json::parse(multi.forPlatform("linux/arm/v7")->config)["architecture"], "arm");
  const TestImage& arm = image("arm64-only");
  ASSERT_EQ(arm.images.size(), 1u);
  EXPECT_EQ(arm.forPlatform("linux/amd64"), nullptr);
}

TEST_F(ImageBuilderTest, DeterministicAndLayoutRoundTrip) {
  LayerBuilder l;
  l.addFile("a/b", "hello").addWhiteout("a/c");
  auto x = l.build(Compression::kGzip);
  auto y = l.build(Compression::kGzip);
  ASSERT_TRUE(x.ok() && y.ok());
  EXPECT_EQ(x->digest, y->digest);
  // No gzip MTIME (bytes 4..7): digests are stable across runs and machines.
  EXPECT_EQ(x->data.substr(0, 3), std::string("\x1f\x8b\x08", 3));
  EXPECT_EQ(x->data.substr(4, 4), std::string(4, '\0'));
  ListedLayer listed = listLayer(x->data);
  EXPECT_EQ(listed.order, (std::vector<std::string>{"a", "a/b", "a/.wh.c"}));
  EXPECT_FALSE(LayerBuilder().build(Compression::kZstd, MediaTypes::kDocker).ok());

  char tmpl[] = "/tmp/berth-layout-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  std::map<std::string, TestImage> images = {{"multi", image("busybox-multi")},
                                             {"arch", image("multiarch")}};
  ASSERT_TRUE(writeOciLayout(dir, images).ok());
  EXPECT_TRUE(fs::exists(dir + "/oci-layout"));
  auto back = readOciLayout(dir, "arch");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->digest, image("multiarch").digest);
  EXPECT_EQ(back->images.size(), 3u);
  auto multi = readOciLayout(dir, "multi");
  ASSERT_TRUE(multi.ok()) << multi.status();
  EXPECT_EQ(multi->images[0].layers[2].diff_id, image("busybox-multi").images[0].layers[2].diff_id);
  EXPECT_EQ(readOciLayout(dir, "nope").status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(fs::removeAll(dir).ok());
}

TEST_F(ImageBuilderTest, BigImageIsBuiltOnceAndCached) {
  char tmpl[] = "/tmp/berth-bigcache-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  auto first = bigImage(dir);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->images[0].layers.size(), 5u);
  size_t total = 0;
  for (const BuiltLayer& l : first->images[0].layers) total += l.data.size();
  EXPECT_GT(total, 40u << 20);  // pseudo-random data does not compress
  EXPECT_LT(total, 60u << 20);
  EXPECT_TRUE(fs::exists(dir + "/big/index.json"));
  auto second = bigImage(dir);  // read back from the cache
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->digest, first->digest);
  EXPECT_EQ(second->images[0].layers[4].diff_id, first->images[0].layers[4].diff_id);
  ASSERT_TRUE(fs::removeAll(dir).ok());
}

class RegistryFixtureTest : public ::testing::TestWithParam<RegistryFixture::Mode> {
 protected:
  void SetUp() override {
    BERTH_SKIP_WITHOUT_REGISTRY();
    Status s = checkBusyboxStatic();
    if (!s.ok()) GTEST_SKIP() << s.message();
    auto r = RegistryFixture::start(GetParam());
    ASSERT_TRUE(r.ok()) << r.status();
    registry_ = std::move(*r);
  }

  // Pushes `name` and checks the registry serves it back byte for byte.
  void pushAndVerify(const std::string& name, const std::string& repo) {
    const TestImage& img = image(name);
    Status s = registry_->push(repo, "v1", img);
    ASSERT_TRUE(s.ok()) << s << "\nregistry log:\n" << registry_->logTail();
    auto got = registry_->getManifest(repo, "v1");
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->status, 200) << got->body;
    EXPECT_EQ(got->docker_content_digest, img.digest);
    EXPECT_EQ(sha256Digest(got->body), img.digest);
    EXPECT_EQ(got->content_type, img.media_type);
    const BuiltImage& first = img.isIndex() ? *img.forPlatform(img.images.size() > 1
                                                                   ? "linux/amd64"
                                                                   : "linux/arm64")
                                            : img.images[0];
    auto child = registry_->getManifest(repo, first.manifest_digest);
    ASSERT_TRUE(child.ok()) << child.status();
    EXPECT_EQ(child->status, 200) << child->body;
    EXPECT_EQ(child->body, first.manifest);
    const BuiltLayer& layer = first.layers.back();
    auto blob = registry_->getBlob(repo, layer.digest);
    ASSERT_TRUE(blob.ok()) << blob.status();
    EXPECT_EQ(blob->status, 200);
    EXPECT_EQ(sha256Digest(blob->body), layer.digest);
  }

  std::unique_ptr<RegistryFixture> registry_;
};

TEST_P(RegistryFixtureTest, PushesAndServesImages) {
  pushAndVerify("busybox-multi", "test/busybox");
  pushAndVerify("multiarch", "test/multiarch");
  if (GetParam() == RegistryFixture::Mode::kPlainHttp) {
    pushAndVerify("busybox-docker", "test/docker");
    pushAndVerify("busybox-zstd", "test/zstd");
    pushAndVerify("arm64-only", "test/arm");
  }
  // Pushing again is a no-op for present blobs and keeps the digest.
  ASSERT_TRUE(registry_->push("test/busybox", "v1", image("busybox-multi")).ok());
  auto missing = registry_->getManifest("test/busybox", "no-such-tag");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
}

TEST_P(RegistryFixtureTest, AuthIsEnforced) {
  auto anon = registry_->getManifest("test/busybox", "v1", /*authenticate=*/false);
  ASSERT_TRUE(anon.ok()) << anon.status();
  switch (GetParam()) {
    case RegistryFixture::Mode::kPlainHttp:
      EXPECT_EQ(anon->status, 404);  // no auth: straight to "manifest unknown"
      EXPECT_TRUE(registry_->caCertPath().empty());
      return;
    case RegistryFixture::Mode::kTlsBasic:
      EXPECT_EQ(anon->status, 401);
      EXPECT_THAT(anon->www_authenticate, HasSubstr("Basic realm="));
      break;
    case RegistryFixture::Mode::kTlsToken:
      EXPECT_EQ(anon->status, 401);
      EXPECT_THAT(anon->www_authenticate, HasSubstr("Bearer realm=\"" +
                                                    registry_->tokenServer()->realm() + "\""));
      EXPECT_THAT(anon->www_authenticate, HasSubstr("scope=\"repository:test/busybox:pull\""));
      break;
  }
  auto wrong = registry_->getManifest("test/busybox", "v1", true, "wrong-password");
  ASSERT_TRUE(wrong.ok()) << wrong.status();
  EXPECT_EQ(wrong->status, 401);
  auto right = registry_->getManifest("test/busybox", "v1");
  ASSERT_TRUE(right.ok());
  EXPECT_EQ(right->status, 404) << right->body;  // authenticated, nothing pushed yet
  EXPECT_TRUE(fs::exists(registry_->certsDir() + "/" + registry_->hostPort() + "/ca.crt"));
}

std::string modeName(const ::testing::TestParamInfo<RegistryFixture::Mode>& info) {
  switch (info.param) {
    case RegistryFixture::Mode::kPlainHttp: return "PlainHttp";
    case RegistryFixture::Mode::kTlsBasic: return "TlsBasic";
    case RegistryFixture::Mode::kTlsToken: return "TlsToken";
  }
  return "Unknown";
}

INSTANTIATE_TEST_SUITE_P(Modes, RegistryFixtureTest,
                         ::testing::Values(RegistryFixture::Mode::kPlainHttp,
                                           RegistryFixture::Mode::kTlsBasic,
                                           RegistryFixture::Mode::kTlsToken),
                         modeName);

// The registry verifies our JWTs for real: expired and under-privileged tokens fail,
// the OAuth2 password and refresh grants work.
TEST(TokenServerTest, RegistryVerifiesTokens) {
  BERTH_SKIP_WITHOUT_REGISTRY();
  auto r = RegistryFixture::start(RegistryFixture::Mode::kTlsToken);
  ASSERT_TRUE(r.ok()) << r.status();
  RegistryFixture& reg = **r;
  TokenServer& ts = *reg.tokenServer();

  // A valid pull token minted directly is accepted (404: repo empty, but authorised).
  auto good = ts.mintToken("berth", {{"repository", "test/x", {"pull"}}}, 300);
  ASSERT_TRUE(good.ok());
  auto call = [&](const std::string& token, const std::string& method, const std::string& path) {
    std::string out = reg.workDir() + "/curl.out";
    std::string cmd = strCat("curl -s -o /dev/null -w '%{http_code}' --noproxy '*' --cacert ",
                             reg.caCertPath(), " -X ", method, " -H 'Authorization: Bearer ",
                             token, "' ", reg.url(), path, " > ", out);
    EXPECT_EQ(system(cmd.c_str()), 0);
    auto code = fs::readFile(out);
    return code.ok() ? *code : std::string("?");
  };
  EXPECT_EQ(call(*good, "GET", "/v2/test/x/manifests/latest"), "404");
  // Expired (beyond the registry's 60 s leeway).
  auto expired = ts.mintToken("berth", {{"repository", "test/x", {"pull"}}}, -300);
  ASSERT_TRUE(expired.ok());
  EXPECT_EQ(call(*expired, "GET", "/v2/test/x/manifests/latest"), "401");
  // Pull-only token cannot start an upload.
  EXPECT_EQ(call(*good, "POST", "/v2/test/x/blobs/uploads/"), "401");
  // A tampered signature.
  std::string bad = *good;
  bad[bad.size() - 5] = bad[bad.size() - 5] == 'A' ? 'B' : 'A';
  EXPECT_EQ(call(bad, "GET", "/v2/test/x/manifests/latest"), "401");

  // OAuth2 password grant -> refresh token -> refresh grant.
  std::string out = reg.workDir() + "/oauth.json";
  std::string cmd = strCat("curl -s --noproxy '*' --cacert ", reg.caCertPath(),
                           " -d grant_type=password -d username=berth -d password=",
                           reg.password(), " -d service=berth-test-registry -d client_id=test",
                           " -d scope=repository:test/x:pull ", ts.realm(), " > ", out);
  ASSERT_EQ(system(cmd.c_str()), 0);
  json pw = json::parse(*fs::readFile(out));
  ASSERT_TRUE(pw.contains("refresh_token")) << pw.dump();
  EXPECT_EQ(call(pw["access_token"].get<std::string>(), "GET", "/v2/test/x/manifests/latest"),
            "404");
  cmd = strCat("curl -s --noproxy '*' --cacert ", reg.caCertPath(),
               " -d grant_type=refresh_token -d refresh_token=",
               pw["refresh_token"].get<std::string>(),
               " -d service=berth-test-registry -d client_id=test",
               " -d scope=repository:test/x:pull ", ts.realm(), " > ", out);
  ASSERT_EQ(system(cmd.c_str()), 0);
  json refreshed = json::parse(*fs::readFile(out));
  ASSERT_TRUE(refreshed.contains("access_token")) << refreshed.dump();
  EXPECT_EQ(call(refreshed["access_token"].get<std::string>(), "GET",
                 "/v2/test/x/manifests/latest"),
            "404");
  EXPECT_THAT(parseScopes("repository:a/b:pull,push registry:catalog:*").size(), 2u);
}

}  // namespace
}  // namespace berth::testing
