#include "runtime/image/image_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/sha256.h"

namespace berth::image {
namespace {

using json::Json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/berth-archive-test-XXXXXX";
    char* dir = ::mkdtemp(tmpl);
    EXPECT_NE(dir, nullptr);
    path_ = dir != nullptr ? dir : "";
  }
  ~TempDir() { (void)fs::removeAll(path_); }
  const std::string& path() const { return path_; }
  std::string sub(std::string_view name) const { return fs::join(path_, name); }

 private:
  std::string path_;
};

struct Member {
  std::string name;
  std::string data;
  std::string symlink;  // non-empty: a symlink to this target
};

la_ssize_t appendCallback(archive*, void* client, const void* buf, size_t n) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(buf), n);
  return static_cast<la_ssize_t>(n);
}

std::string makeTar(const std::vector<Member>& members, bool gzip = false) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (gzip) archive_write_add_filter_gzip(a);
  archive_write_set_bytes_in_last_block(a, 1);
  EXPECT_EQ(archive_write_open(a, &out, nullptr, appendCallback, nullptr), ARCHIVE_OK);
  for (const Member& m : members) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, m.name.c_str());
    archive_entry_set_mtime(e, 1700000000, 0);
    if (!m.symlink.empty()) {
      archive_entry_set_filetype(e, AE_IFLNK);
      archive_entry_set_perm(e, 0777);
      archive_entry_set_symlink(e, m.symlink.c_str());
      archive_entry_set_size(e, 0);
    } else {
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_perm(e, 0644);
      archive_entry_set_size(e, static_cast<la_int64_t>(m.data.size()));
    }
    EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK) << archive_error_string(a);
    if (m.symlink.empty() && !m.data.empty()) {
      archive_write_data(a, m.data.data(), m.data.size());
    }
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

// gzip of `data` (one raw stream).
std::string gzipBytes(const std::string& data) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_raw(a);
  archive_write_add_filter_gzip(a);
  archive_write_set_bytes_in_last_block(a, 1);
  EXPECT_EQ(archive_write_open(a, &out, nullptr, appendCallback, nullptr), ARCHIVE_OK);
  archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, "data");
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
  EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK) << archive_error_string(a);
  archive_write_data(a, data.data(), data.size());
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

// Every regular member of a (possibly compressed) tar file.
std::map<std::string, std::string> readTar(const std::string& path) {
  std::map<std::string, std::string> out;
  archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_tar(a);
  EXPECT_EQ(archive_read_open_filename(a, path.c_str(), 10240), ARCHIVE_OK);
  archive_entry* e = nullptr;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    if (archive_entry_filetype(e) != AE_IFREG) continue;
    std::string data;
    char buf[8192];
    la_ssize_t n;
    while ((n = archive_read_data(a, buf, sizeof(buf))) > 0) data.append(buf, n);
    out[archive_entry_pathname(e)] = data;
  }
  archive_read_free(a);
  return out;
}

Descriptor putBlob(ContentStore& store, const std::string& bytes, const std::string& type) {
  Descriptor d;
  d.mediaType = type;
  d.digest = sha256Digest(bytes);
  d.size = static_cast<int64_t>(bytes.size());
  EXPECT_TRUE(store.writeBlob(d.digest, bytes).ok());
  return d;
}

std::string hexOf(const std::string& digest) { return digest.substr(7); }

Json descJson(const Descriptor& d) {
  Json j = {{"mediaType", d.mediaType}, {"digest", d.digest}, {"size", d.size}};
  if (d.platform) j["platform"] = {{"architecture", d.platform->architecture}, {"os", "linux"}};
  if (!d.annotations.empty()) j["annotations"] = d.annotations;
  return j;
}

struct BuiltImage {
  Descriptor manifest;
  Descriptor config;
  std::vector<Descriptor> layers;
  std::vector<std::string> diff_ids;
  std::map<std::string, std::string> blobs;  // digest -> bytes
};

// A two-layer OCI image: a gzip layer and an uncompressed one.
BuiltImage buildImage(ContentStore& store, const std::string& arch) {
  BuiltImage img;
  std::string tar0 = makeTar({{"bin/hello", "hello from " + arch, ""}});
  std::string tar1 = makeTar({{"etc/marker", arch, ""}});
  std::string gz0 = gzipBytes(tar0);
  img.diff_ids = {sha256Digest(tar0), sha256Digest(tar1)};
  img.layers = {putBlob(store, gz0, media_type::kOciLayerGzip),
                putBlob(store, tar1, media_type::kOciLayer)};
  Json config = {{"architecture", arch},
                 {"os", "linux"},
                 {"config", {{"Cmd", {"/bin/hello"}}}},
                 {"rootfs", {{"type", "layers"}, {"diff_ids", img.diff_ids}}}};
  std::string config_bytes = json::dump(config);
  img.config = putBlob(store, config_bytes, media_type::kOciConfig);
  Json manifest = {{"schemaVersion", 2},
                   {"mediaType", media_type::kOciManifest},
                   {"config", descJson(img.config)},
                   {"layers", {descJson(img.layers[0]), descJson(img.layers[1])}}};
  std::string manifest_bytes = json::dump(manifest);
  img.manifest = putBlob(store, manifest_bytes, media_type::kOciManifest);
  img.manifest.platform = Platform{arch, "linux", "", "", {}};
  img.blobs = {{img.layers[0].digest, gz0},
               {img.layers[1].digest, tar1},
               {img.config.digest, config_bytes},
               {img.manifest.digest, manifest_bytes}};
  return img;
}

class ImageArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = ContentStore::open(dir_.sub("store1"));
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    auto s2 = ContentStore::open(dir_.sub("store2"));
    ASSERT_TRUE(s2.ok()) << s2.status();
    store2_ = std::move(*s2);
    amd64_ = buildImage(*store_, "amd64");
    arm64_ = buildImage(*store_, "arm64");
    Json index = {{"schemaVersion", 2},
                  {"mediaType", media_type::kOciIndex},
                  {"manifests", {descJson(amd64_.manifest), descJson(arm64_.manifest)}}};
    index_bytes_ = json::dump(index);
    index_ = putBlob(*store_, index_bytes_, media_type::kOciIndex);
    items_ = {{"docker.io/library/busybox:1.36", index_},
              {"", amd64_.manifest},
              {"example.com/app:v1", arm64_.manifest}};
  }

  std::vector<std::string> storeDigests(ContentStore& store) {
    auto list = store.list();
    EXPECT_TRUE(list.ok());
    std::vector<std::string> out;
    for (const BlobInfo& b : *list) out.push_back(b.digest);
    return out;
  }

  void expectOciRoundTrip(const std::vector<ImportedImage>& images) {
    ASSERT_EQ(images.size(), 3u);
    EXPECT_EQ(images[0].name, "docker.io/library/busybox:1.36");
    EXPECT_EQ(images[0].target.digest, index_.digest);
    EXPECT_EQ(images[0].target.mediaType, media_type::kOciIndex);
    EXPECT_EQ(images[1].name, "");
    EXPECT_EQ(images[1].target.digest, amd64_.manifest.digest);
    EXPECT_EQ(images[2].name, "example.com/app:v1");
    EXPECT_EQ(images[2].target.digest, arm64_.manifest.digest);
    EXPECT_EQ(storeDigests(*store2_), storeDigests(*store_));
  }

  // The members of an OCI layout tar holding `img` (index.json last, as some tools
  // write it), with index.json naming the manifest by `annotations`.
  std::vector<Member> layoutMembers(const BuiltImage& img,
                                    std::map<std::string, std::string> annotations = {}) {
    std::vector<Member> out;
    for (const auto& [digest, bytes] : img.blobs) {
      out.push_back({"blobs/sha256/" + hexOf(digest), bytes, ""});
    }
    out.push_back({"oci-layout", R"({"imageLayoutVersion":"1.0.0"})", ""});
    Descriptor d = img.manifest;
    d.annotations = std::move(annotations);
    Json index = {{"schemaVersion", 2}, {"manifests", {descJson(d)}}};
    out.push_back({"index.json", json::dump(index), ""});
    return out;
  }

  std::string writeFile(const std::string& name, const std::string& data) {
    std::string path = dir_.sub(name);
    EXPECT_TRUE(fs::writeFileAtomic(path, data).ok());
    return path;
  }

  TempDir dir_;
  std::unique_ptr<ContentStore> store_;
  std::unique_ptr<ContentStore> store2_;
  BuiltImage amd64_;
  BuiltImage arm64_;
  std::string index_bytes_;
  Descriptor index_;
  std::vector<ExportItem> items_;
};

TEST_F(ImageArchiveTest, OciDirectoryRoundTrip) {
  std::string out = dir_.sub("layout");
  ASSERT_TRUE(exportArchive(items_, *store_, out, ArchiveFormat::kOciLayout).ok());
  EXPECT_TRUE(fs::exists(fs::join(out, "oci-layout")));
  EXPECT_TRUE(fs::exists(fs::join(out, "blobs/sha256/" + hexOf(index_.digest))));
  auto index = json::parseFile(fs::join(out, "index.json"));
  ASSERT_TRUE(index.ok()) << index.status();
  const Json& manifests = (*index)["manifests"];
  ASSERT_EQ(manifests.size(), 3u);
  EXPECT_EQ(manifests[0]["annotations"]["org.opencontainers.image.ref.name"],
            "docker.io/library/busybox:1.36");
  EXPECT_EQ(manifests[0]["annotations"]["io.containerd.image.name"],
            "docker.io/library/busybox:1.36");
  EXPECT_FALSE(manifests[1].contains("annotations"));
  EXPECT_EQ(manifests[2]["platform"]["architecture"], "arm64");

  auto imported = importArchive(out, *store2_);
  ASSERT_TRUE(imported.ok()) << imported.status();
  expectOciRoundTrip(*imported);
}

TEST_F(ImageArchiveTest, OciTarRoundTrip) {
  std::string out = dir_.sub("layout.tar");
  ASSERT_TRUE(exportArchive(items_, *store_, out, ArchiveFormat::kOciLayout).ok());
  auto members = readTar(out);
  EXPECT_EQ(members.count("oci-layout"), 1u);
  EXPECT_EQ(members.count("index.json"), 1u);
  EXPECT_EQ(members["blobs/sha256/" + hexOf(index_.digest)], index_bytes_);
  auto imported = importArchive(out, *store2_);
  ASSERT_TRUE(imported.ok()) << imported.status();
  expectOciRoundTrip(*imported);
  // Importing twice is idempotent.
  auto again = importArchive(out, *store2_);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->size(), 3u);
}

TEST_F(ImageArchiveTest, OciExportSkipsPlatformManifestsNotInTheStore) {
  ASSERT_TRUE(store_->remove(arm64_.manifest.digest).ok());
  std::string out = dir_.sub("partial.tar");
  ASSERT_TRUE(exportArchive({items_[0]}, *store_, out, ArchiveFormat::kOciLayout).ok());
  auto members = readTar(out);
  EXPECT_EQ(members.count("blobs/sha256/" + hexOf(arm64_.manifest.digest)), 0u);
  EXPECT_EQ(members.count("blobs/sha256/" + hexOf(amd64_.config.digest)), 1u);
  auto imported = importArchive(out, *store2_);
  ASSERT_TRUE(imported.ok()) << imported.status();
  ASSERT_EQ(imported->size(), 1u);
  EXPECT_EQ((*imported)[0].target.digest, index_.digest);
  EXPECT_TRUE(store2_->exists(amd64_.layers[0].digest));
}

TEST_F(ImageArchiveTest, DockerSaveRoundTrip) {
  std::string out = dir_.sub("save.tar");
  std::vector<ExportItem> items = {items_[0], items_[2],
                                   {"docker.io/library/busybox:latest", amd64_.manifest}};
  ASSERT_TRUE(exportArchive(items, *store_, out, ArchiveFormat::kDockerSave).ok());
  auto members = readTar(out);
  auto manifest = json::parse(members["manifest.json"], "manifest.json");
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  ASSERT_EQ(manifest->size(), 2u);  // the index resolves to the amd64 manifest
  EXPECT_EQ((*manifest)[0]["Config"], hexOf(amd64_.config.digest) + ".json");
  EXPECT_EQ((*manifest)[0]["RepoTags"], Json({"busybox:1.36", "busybox:latest"}));
  EXPECT_EQ((*manifest)[1]["RepoTags"], Json({"example.com/app:v1"}));
  EXPECT_EQ((*manifest)[0]["Layers"][0], hexOf(amd64_.diff_ids[0]) + "/layer.tar");
  auto repositories = json::parse(members["repositories"], "repositories");
  ASSERT_TRUE(repositories.ok());
  EXPECT_EQ((*repositories)["busybox"]["1.36"], hexOf(amd64_.diff_ids[1]));

  auto imported = importArchive(out, *store2_);
  ASSERT_TRUE(imported.ok()) << imported.status();
  ASSERT_EQ(imported->size(), 3u);
  EXPECT_EQ((*imported)[0].name, "docker.io/library/busybox:1.36");
  EXPECT_EQ((*imported)[1].name, "docker.io/library/busybox:latest");
  EXPECT_EQ((*imported)[2].name, "example.com/app:v1");
  EXPECT_EQ((*imported)[0].target.digest, (*imported)[1].target.digest);
  const std::vector<std::pair<int, BuiltImage*>> expected = {{0, &amd64_}, {2, &arm64_}};
  for (const auto& [i, img] : expected) {
    const Descriptor& target = (*imported)[i].target;
    EXPECT_EQ(target.mediaType, media_type::kDockerManifest);
    auto bytes = store2_->readBlob(target.digest);
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    auto m = parseManifest(*bytes, "", "imported");
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->config.digest, img->config.digest);  // configs identical
    EXPECT_EQ(m->config.mediaType, media_type::kDockerConfig);
    ASSERT_EQ(m->layers.size(), 2u);
    for (size_t l = 0; l < 2; ++l) {
      EXPECT_EQ(m->layers[l].digest, img->diff_ids[l]);  // uncompressed now
      EXPECT_EQ(m->layers[l].mediaType, media_type::kOciLayer);
      EXPECT_TRUE(store2_->exists(img->diff_ids[l]));
    }
  }
}

TEST_F(ImageArchiveTest, HandMadeDockerSaveWithTwoTags) {
  std::string tar0 = makeTar({{"bin/sh", "shell", ""}});
  std::string gz0 = gzipBytes(tar0);
  std::string tar1 = makeTar({{"etc/hostname", "box", ""}});
  std::string config = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}})";
  std::string config_hex = sha256Hex(config);
  Json manifest = Json::array();
  manifest.push_back({{"Config", config_hex + ".json"},
                      {"RepoTags", {"busybox:1.36", "example.com/app:v1"}},
                      {"Layers", {"aaa/layer.tar", "./bbb/layer.tar"}}});
  std::string path = writeFile("hand.tar", makeTar({
      {"manifest.json", json::dump(manifest), ""},  // before the layers it names
      {"aaa/VERSION", "1.0", ""},
      {"aaa/layer.tar", gz0, ""},
      {"bbb/json", "{}", ""},
      {"bbb/layer.tar", tar1, ""},
      {config_hex + ".json", config, ""},
      {"repositories", R"({"busybox":{"1.36":"bbb"}})", ""},
  }));
  auto imported = importArchive(path, *store2_);
  ASSERT_TRUE(imported.ok()) << imported.status();
  ASSERT_EQ(imported->size(), 2u);
  EXPECT_EQ((*imported)[0].name, "docker.io/library/busybox:1.36");
  EXPECT_EQ((*imported)[1].name, "example.com/app:v1");
  EXPECT_EQ((*imported)[0].target.digest, (*imported)[1].target.digest);
  auto bytes = store2_->readBlob((*imported)[0].target.digest);
  ASSERT_TRUE(bytes.ok());
  auto m = parseManifest(*bytes, "", "imported");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->mediaType, media_type::kDockerManifest);
  EXPECT_EQ(m->config.digest, "sha256:" + config_hex);
  ASSERT_EQ(m->layers.size(), 2u);
  EXPECT_EQ(m->layers[0].mediaType, media_type::kDockerLayerGzip);
  EXPECT_EQ(m->layers[0].digest, sha256Digest(gz0));
  EXPECT_EQ(m->layers[1].mediaType, media_type::kOciLayer);
  EXPECT_EQ(m->layers[1].digest, sha256Digest(tar1));
  // Members manifest.json does not name are not stored.
  EXPECT_FALSE(store2_->exists(sha256Digest("1.0")));
  EXPECT_FALSE(store2_->exists(sha256Digest("{}")));
}

TEST_F(ImageArchiveTest, DockerSaveWithBlobsLayoutAndSymlinks) {
  // Docker 25+ style without index.json: blobs/ members, manifest.json naming them,
  // and a legacy "<id>/layer.tar" symlink into blobs/.
  const std::string& layer0 = amd64_.blobs[amd64_.layers[1].digest];
  const std::string& config = amd64_.blobs[amd64_.config.digest];
  Json manifest = Json::array();
  manifest.push_back({{"Config", "blobs/sha256/" + hexOf(amd64_.config.digest)},
                      {"RepoTags", nullptr},
                      {"Layers", {"legacy/layer.tar"}}});
  std::string path = writeFile("docker25.tar", makeTar({
      {"blobs/sha256/" + hexOf(amd64_.layers[1].digest), layer0, ""},
      {"blobs/sha256/" + hexOf(amd64_.config.digest), config, ""},
      {"legacy/layer.tar", "", "../blobs/sha256/" + hexOf(amd64_.layers[1].digest)},
      {"manifest.json", json::dump(manifest), ""},
  }));
  auto imported = importArchive(path, *store2_);
  ASSERT_TRUE(imported.ok()) << imported.status();
  ASSERT_EQ(imported->size(), 1u);
  EXPECT_EQ((*imported)[0].name, "");
  auto m = parseManifest(*store2_->readBlob((*imported)[0].target.digest), "", "m");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->config.digest, amd64_.config.digest);
  ASSERT_EQ(m->layers.size(), 1u);
  EXPECT_EQ(m->layers[0].digest, amd64_.layers[1].digest);
}

TEST_F(ImageArchiveTest, GzipOciTarWithIndexLastAndNames) {
  std::vector<Member> members = layoutMembers(amd64_);
  Descriptor tagged = amd64_.manifest;
  tagged.annotations = {{"org.opencontainers.image.ref.name", "1.36"},
                        {"io.containerd.image.name", "docker.io/library/busybox:1.36"}};
  Descriptor bare_tag = amd64_.manifest;
  bare_tag.annotations = {{"org.opencontainers.image.ref.name", "latest"}};
  Descriptor full = amd64_.manifest;
  full.annotations = {{"org.opencontainers.image.ref.name", "quay.io/x/y:2"}};
  members.back().data = json::dump(
      {{"schemaVersion", 2}, {"manifests", {descJson(tagged), descJson(bare_tag), descJson(full)}}});
  std::string path = writeFile("layout.tar.gz", makeTar(members, /*gzip=*/true));
  auto imported = importArchive(path, *store2_);
  ASSERT_TRUE(imported.ok()) << imported.status();
  ASSERT_EQ(imported->size(), 3u);
  EXPECT_EQ((*imported)[0].name, "docker.io/library/busybox:1.36");
  EXPECT_EQ((*imported)[1].name, "");  // a bare tag names no repository
  EXPECT_EQ((*imported)[2].name, "quay.io/x/y:2");
  for (const auto& [digest, bytes] : amd64_.blobs) EXPECT_TRUE(store2_->exists(digest));
}

TEST_F(ImageArchiveTest, CorruptBlobIsDataLossAndNotStored) {
  std::vector<Member> members = layoutMembers(amd64_);
  std::string config_member = "blobs/sha256/" + hexOf(amd64_.config.digest);
  for (Member& m : members) {
    if (m.name == config_member) m.data = R"({"tampered":true})";
  }
  std::string path = writeFile("corrupt.tar", makeTar(members));
  auto imported = importArchive(path, *store2_);
  ASSERT_FALSE(imported.ok());
  EXPECT_EQ(imported.status().code(), absl::StatusCode::kDataLoss) << imported.status();
  EXPECT_THAT(std::string(imported.status().message()), HasSubstr(config_member));
  EXPECT_THAT(std::string(imported.status().message()), HasSubstr(path));
  EXPECT_FALSE(store2_->exists(amd64_.config.digest));
}

TEST_F(ImageArchiveTest, MissingBlobIsNotFoundNamingIt) {
  std::vector<Member> members = layoutMembers(amd64_);
  std::string missing = amd64_.layers[0].digest;
  std::erase_if(members, [&](const Member& m) { return m.name == "blobs/sha256/" + hexOf(missing); });
  std::string path = writeFile("missing.tar", makeTar(members));
  auto imported = importArchive(path, *store2_);
  ASSERT_FALSE(imported.ok());
  EXPECT_EQ(imported.status().code(), absl::StatusCode::kNotFound) << imported.status();
  EXPECT_THAT(std::string(imported.status().message()), HasSubstr(missing));

  // The same from a layout directory.
  std::string layout = dir_.sub("missing-dir");
  ASSERT_TRUE(exportArchive({{"", amd64_.manifest}}, *store_, layout, ArchiveFormat::kOciLayout).ok());
  ASSERT_TRUE(fs::removeAll(fs::join(layout, "blobs/sha256/" + hexOf(missing))).ok());
  auto from_dir = importArchive(layout, *store2_);
  ASSERT_FALSE(from_dir.ok());
  EXPECT_EQ(from_dir.status().code(), absl::StatusCode::kNotFound) << from_dir.status();
  EXPECT_THAT(std::string(from_dir.status().message()), HasSubstr(missing));
}

TEST_F(ImageArchiveTest, UnknownFormatsAreInvalidArgument) {
  std::vector<std::string> paths = {
      writeFile("random.bin", std::string(4096, '\x5a')),
      writeFile("other.tar", makeTar({{"hello.txt", "hi", ""}})),
      writeFile("empty", ""),
  };
  ASSERT_TRUE(fs::mkdirAll(dir_.sub("plain-dir")).ok());
  paths.push_back(dir_.sub("plain-dir"));
  for (const std::string& path : paths) {
    auto imported = importArchive(path, *store2_);
    ASSERT_FALSE(imported.ok()) << path;
    EXPECT_EQ(imported.status().code(), absl::StatusCode::kInvalidArgument) << imported.status();
    EXPECT_THAT(std::string(imported.status().message()), HasSubstr(path));
  }
  auto missing = importArchive(dir_.sub("nope.tar"), *store2_);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(storeDigests(*store2_).empty());
}

TEST_F(ImageArchiveTest, TraversalMembersAreIgnoredAndNeverWritten) {
  std::string abs_target = dir_.sub("abs-evil");
  std::vector<Member> members = {
      {"../evil", "x", ""},
      {abs_target, "x", ""},
      {"blobs/sha256/../../../evil2", "x", ""},
      {"blobs/sha256/not-a-digest", "x", ""},
      {"blobs/sha256/" + hexOf(sha256Digest("link")), "", "/etc/passwd"},
  };
  for (Member& m : layoutMembers(amd64_)) members.push_back(std::move(m));
  std::string sub = dir_.sub("work");
  ASSERT_TRUE(fs::mkdirAll(sub).ok());
  std::string path = fs::join(sub, "hostile.tar");
  ASSERT_TRUE(fs::writeFileAtomic(path, makeTar(members)).ok());
  auto imported = importArchive(path, *store2_);
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_FALSE(fs::exists(dir_.sub("evil")));
  EXPECT_FALSE(fs::exists(dir_.sub("evil2")));
  EXPECT_FALSE(fs::exists(abs_target));
  EXPECT_FALSE(fs::exists(dir_.sub("store2/evil2")));
  std::vector<std::string> want;
  for (const auto& [digest, bytes] : amd64_.blobs) want.push_back(digest);
  EXPECT_EQ(storeDigests(*store2_), want);  // std::map order is digest order

  // A docker save manifest naming a path outside the archive is rejected.
  Json manifest = Json::array();
  manifest.push_back(
      {{"Config", "c.json"}, {"RepoTags", {"a:b"}}, {"Layers", {"../outside/layer.tar"}}});
  std::string docker = writeFile("escape.tar", makeTar({
      {"c.json", R"({"os":"linux"})", ""},
      {"manifest.json", json::dump(manifest), ""},
  }));
  auto rejected = importArchive(docker, *store2_);
  ASSERT_FALSE(rejected.ok());
  EXPECT_EQ(rejected.status().code(), absl::StatusCode::kInvalidArgument) << rejected.status();
  EXPECT_THAT(std::string(rejected.status().message()), HasSubstr("../outside/layer.tar"));
}

TEST_F(ImageArchiveTest, ExportToExistingPathIsAlreadyExists) {
  std::string existing = writeFile("exists.tar", "keep me");
  for (ArchiveFormat format : {ArchiveFormat::kOciLayout, ArchiveFormat::kDockerSave}) {
    Status st = exportArchive(items_, *store_, existing, format);
    EXPECT_EQ(st.code(), absl::StatusCode::kAlreadyExists) << st;
  }
  EXPECT_EQ(*fs::readFile(existing), "keep me");
}

TEST_F(ImageArchiveTest, FailedExportLeavesNothingBehind) {
  ASSERT_TRUE(store_->remove(amd64_.layers[1].digest).ok());
  for (const std::string& name : {"fail-dir", "fail.tar", "fail-save.tar"}) {
    ArchiveFormat format = std::string(name) == "fail-save.tar" ? ArchiveFormat::kDockerSave
                                                                 : ArchiveFormat::kOciLayout;
    Status st = exportArchive(items_, *store_, dir_.sub(name), format);
    ASSERT_FALSE(st.ok()) << name;
    EXPECT_EQ(st.code(), absl::StatusCode::kNotFound) << st;
    EXPECT_THAT(std::string(st.message()), HasSubstr(amd64_.layers[1].digest));
    EXPECT_THAT(std::string(st.message()), HasSubstr("busybox:1.36"));
    EXPECT_FALSE(fs::exists(dir_.sub(name)));
  }
  auto entries = fs::listDir(dir_.path());
  ASSERT_TRUE(entries.ok());
  EXPECT_THAT(*entries, ::testing::UnorderedElementsAre("store1", "store2"));
}

}  // namespace
}  // namespace berth::image
