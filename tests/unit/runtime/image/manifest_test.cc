#include "runtime/image/manifest.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace berth::image {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A distinct, valid sha256 digest per seed character.
std::string dg(char c) { return "sha256:" + std::string(64, c); }

std::string replaceAll(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

// A busybox-like Docker manifest list, as Docker Hub serves it (abbreviated digests
// replaced by valid ones), plus a BuildKit attestation entry.
const std::string kBusyboxList = replaceAll(R"({
  "manifests": [
    {"digest": "@A", "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
     "platform": {"architecture": "amd64", "os": "linux"}, "size": 528},
    {"digest": "@B", "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
     "platform": {"architecture": "arm", "os": "linux", "variant": "v5"}, "size": 527},
    {"digest": "@C", "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
     "platform": {"architecture": "arm", "os": "linux", "variant": "v6"}, "size": 527},
    {"digest": "@D", "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
     "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}, "size": 527},
    {"digest": "@E", "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
     "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}, "size": 527},
    {"digest": "@F", "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
     "platform": {"architecture": "ppc64le", "os": "linux"}, "size": 528},
    {"digest": "@1", "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
     "platform": {"architecture": "s390x", "os": "linux"}, "size": 528}
  ],
  "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
  "schemaVersion": 2
})",
                                            "@A", dg('a'));

std::string busyboxList() {
  std::string s = kBusyboxList;
  for (char c : std::string("BCDEF1")) s = replaceAll(s, std::string("@") + c, dg(tolower(c)));
  return s;
}

const std::string kOciManifest = replaceAll(R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "config": {
    "mediaType": "application/vnd.oci.image.config.v1+json",
    "digest": "@C",
    "size": 1457
  },
  "layers": [
    {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "@1", "size": 2152262},
    {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": "@2", "size": 4096,
     "annotations": {"org.opencontainers.image.title": "layer2.tar.zst"}},
    {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "@3", "size": 10240},
    {"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
     "digest": "@4", "size": 77, "urls": ["https://mcr.example.com/layer4"]}
  ],
  "annotations": {"org.opencontainers.image.created": "2024-05-01T00:00:00Z"}
})",
                                            "@C", dg('c'));

std::string ociManifest() {
  std::string s = kOciManifest;
  for (char c : std::string("1234")) s = replaceAll(s, std::string("@") + c, dg(c));
  return s;
}

const std::string kDockerManifest = replaceAll(
    replaceAll(R"({
   "schemaVersion": 2,
   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
   "config": {
      "mediaType": "application/vnd.docker.container.image.v1+json",
      "size": 1470,
      "digest": "@C"
   },
   "layers": [
      {
         "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
         "size": 2219949,
         "digest": "@L"
      },
      {
         "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
         "size": 1024,
         "digest": "@F",
         "urls": ["https://go.microsoft.com/fwlink/?linkid=000000"]
      }
   ]
})",
               "@C", dg('c')),
    "@L", dg('1'));

std::string dockerManifest() { return replaceAll(kDockerManifest, "@F", dg('f')); }

TEST(ManifestTest, ParsesOciManifest) {
  auto m = parseManifest(ociManifest(), media_type::kOciManifest, "example.com/app:1");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->schemaVersion, 2);
  EXPECT_EQ(m->mediaType, media_type::kOciManifest);
  EXPECT_EQ(m->config.mediaType, media_type::kOciConfig);
  EXPECT_EQ(m->config.digest, dg('c'));
  EXPECT_EQ(m->config.size, 1457);
  ASSERT_EQ(m->layers.size(), 4u);
  EXPECT_EQ(m->layers[0].digest, dg('1'));
  EXPECT_EQ(m->layers[0].size, 2152262);
  EXPECT_EQ(m->layers[1].annotations.at("org.opencontainers.image.title"), "layer2.tar.zst");
  EXPECT_THAT(m->layers[3].urls, ElementsAre("https://mcr.example.com/layer4"));
  EXPECT_EQ(m->annotations.at("org.opencontainers.image.created"), "2024-05-01T00:00:00Z");
  EXPECT_FALSE(m->subject.has_value());
}

TEST(ManifestTest, ParsesDockerSchema2Manifest) {
  auto m = parseManifest(dockerManifest(), media_type::kDockerManifest, "busybox");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->mediaType, media_type::kDockerManifest);
  EXPECT_EQ(m->config.mediaType, media_type::kDockerConfig);
  ASSERT_EQ(m->layers.size(), 2u);
  auto kind = classifyLayer(m->layers[1].mediaType);
  ASSERT_TRUE(kind.ok());
  EXPECT_TRUE(kind->foreign);
  EXPECT_EQ(kind->compression, Compression::kGzip);
}

TEST(ManifestTest, ClassifiesLayerMediaTypes) {
  struct Case {
    const char* type;
    Compression compression;
    bool foreign;
  } cases[] = {
      {media_type::kOciLayer, Compression::kNone, false},
      {media_type::kOciLayerGzip, Compression::kGzip, false},
      {media_type::kOciLayerZstd, Compression::kZstd, false},
      {media_type::kDockerLayerGzip, Compression::kGzip, false},
      {media_type::kDockerLayerZstd, Compression::kZstd, false},
      {media_type::kOciLayerNondistributable, Compression::kNone, true},
      {media_type::kOciLayerNondistributableGzip, Compression::kGzip, true},
      {media_type::kOciLayerNondistributableZstd, Compression::kZstd, true},
      {media_type::kDockerForeignLayerGzip, Compression::kGzip, true},
  };
  for (const Case& c : cases) {
    auto kind = classifyLayer(c.type);
    ASSERT_TRUE(kind.ok()) << c.type;
    EXPECT_EQ(kind->compression, c.compression) << c.type;
    EXPECT_EQ(kind->foreign, c.foreign) << c.type;
  }
  auto bad = classifyLayer("application/vnd.oci.image.layer.v1.tar+bzip2");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("unknown layer media type \"application/vnd.oci.image.layer.v1.tar+bzip2\""));
}

TEST(ManifestTest, UnknownLayerMediaTypeNamesImageLayerAndType) {
  std::string doc = replaceAll(ociManifest(), "application/vnd.oci.image.layer.v1.tar\"",
                               "application/vnd.example.weird\"");
  auto m = parseManifest(doc, "", "example.com/app:1");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  std::string msg(m.status().message());
  EXPECT_THAT(msg, HasSubstr("example.com/app:1: layer 2 (" + dg('3') + ")"));
  EXPECT_THAT(msg, HasSubstr("unknown layer media type \"application/vnd.example.weird\""));
}

TEST(ManifestTest, ParsesManifestListAndIndex) {
  auto idx = parseIndex(busyboxList(), media_type::kDockerManifestList, "busybox");
  ASSERT_TRUE(idx.ok()) << idx.status();
  EXPECT_EQ(idx->mediaType, media_type::kDockerManifestList);
  ASSERT_EQ(idx->manifests.size(), 7u);
  ASSERT_TRUE(idx->manifests[3].platform.has_value());
  EXPECT_EQ(idx->manifests[3].platform->string(), "linux/arm/v7");
  EXPECT_EQ(idx->manifests[3].size, 527);

  std::string oci = replaceAll(busyboxList(), media_type::kDockerManifestList,
                               media_type::kOciIndex);
  oci = replaceAll(oci, media_type::kDockerManifest, media_type::kOciManifest);
  auto idx2 = parseIndex(oci, "application/json", "busybox");
  ASSERT_TRUE(idx2.ok()) << idx2.status();
  EXPECT_EQ(idx2->mediaType, media_type::kOciIndex);
}

TEST(ManifestTest, MediaTypeFieldWinsOverContentType) {
  auto doc = parseManifestDocument(busyboxList(), media_type::kOciManifest, "busybox");
  ASSERT_TRUE(doc.ok()) << doc.status();
  ASSERT_TRUE(std::holds_alternative<Index>(*doc));
  EXPECT_EQ(std::get<Index>(*doc).mediaType, media_type::kDockerManifestList);
}

TEST(ManifestTest, ContentTypeUsedWhenFieldAbsentIgnoringParameters) {
  std::string doc = replaceAll(
      dockerManifest(), "\"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\",", "");
  auto m = parseManifest(doc, "application/vnd.docker.distribution.manifest.v2+json; charset=utf-8",
                         "busybox");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->mediaType, media_type::kDockerManifest);
}

TEST(ManifestTest, DetectsByStructureWhenNoMediaTypeAnywhere) {
  std::string manifest = replaceAll(
      ociManifest(), "\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\",", "");
  auto doc = parseManifestDocument(manifest, "", "x");
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ(std::get<Manifest>(*doc).mediaType, media_type::kOciManifest);

  std::string index = replaceAll(
      busyboxList(), "\"mediaType\": \"application/vnd.docker.distribution.manifest.list.v2+json\",", "");
  auto doc2 = parseManifestDocument(index, "application/octet-stream", "x");
  ASSERT_TRUE(doc2.ok()) << doc2.status();
  EXPECT_EQ(std::get<Index>(*doc2).mediaType, media_type::kOciIndex);

  auto neither = parseManifestDocument(R"({"schemaVersion": 2})", "", "x");
  EXPECT_THAT(std::string(neither.status().message()), HasSubstr("neither \"manifests\""));
}

TEST(ManifestTest, RejectsSchema1) {
  const std::string schema1 = R"({
    "schemaVersion": 1, "name": "library/busybox", "tag": "latest", "architecture": "amd64",
    "fsLayers": [{"blobSum": "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"}],
    "history": [{"v1Compatibility": "{}"}],
    "signatures": []})";
  for (const char* ct : {media_type::kDockerSchema1Signed, media_type::kDockerSchema1, ""}) {
    auto doc = parseManifestDocument(schema1, ct, "docker.io/library/busybox:old");
    ASSERT_FALSE(doc.ok());
    EXPECT_EQ(doc.status().code(), absl::StatusCode::kInvalidArgument);
    std::string msg(doc.status().message());
    EXPECT_THAT(msg, HasSubstr("docker.io/library/busybox:old: Docker schema 1 manifests are "
                               "not supported"));
    EXPECT_THAT(msg, HasSubstr("push the image again"));
  }
}

TEST(ManifestTest, UnknownDocumentMediaTypeIsNamed) {
  auto doc = parseManifestDocument(R"({"schemaVersion":2,"mediaType":"application/vnd.cncf.helm.chart.v1"})",
                                   "", "charts/x");
  ASSERT_FALSE(doc.ok());
  EXPECT_THAT(std::string(doc.status().message()),
              HasSubstr("unknown manifest media type \"application/vnd.cncf.helm.chart.v1\""));
  auto doc2 = parseManifestDocument("{}", "application/vnd.example+json", "x");
  EXPECT_THAT(std::string(doc2.status().message()),
              HasSubstr("unknown manifest media type \"application/vnd.example+json\""));
}

TEST(ManifestTest, RejectsArtifactConfig) {
  std::string doc = replaceAll(ociManifest(), "application/vnd.oci.image.config.v1+json",
                               "application/vnd.cncf.helm.config.v1+json");
  auto m = parseManifest(doc, "", "charts/x:1");
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(std::string(m.status().message()),
              HasSubstr("config media type \"application/vnd.cncf.helm.config.v1+json\" is not "
                        "a container image config"));
}

TEST(ManifestTest, DescriptorValidation) {
  auto bad_digest = parseManifest(replaceAll(ociManifest(), dg('2'), "sha256:1234"), "", "x");
  EXPECT_THAT(std::string(bad_digest.status().message()),
              HasSubstr("x: layer 1: digest \"sha256:1234\""));
  auto neg = parseManifest(replaceAll(ociManifest(), "\"size\": 77", "\"size\": -1"), "", "x");
  EXPECT_THAT(std::string(neg.status().message()),
              HasSubstr("layer 3: digest " + dg('4') + ": \"size\" must be a non-negative"));
  auto str_size =
      parseManifest(replaceAll(ociManifest(), "\"size\": 1457", "\"size\": \"1457\""), "", "x");
  EXPECT_THAT(std::string(str_size.status().message()), HasSubstr("config: digest"));
  auto no_config = parseManifest(
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]})",
      "", "x");
  EXPECT_THAT(std::string(no_config.status().message()), HasSubstr("no \"config\""));
}

TEST(ManifestTest, SchemaVersionMustBeTwo) {
  auto m = parseManifest(replaceAll(ociManifest(), "\"schemaVersion\": 2", "\"schemaVersion\": 3"),
                         "", "x");
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("\"schemaVersion\" must be 2"));
}

TEST(ManifestTest, MalformedJson) {
  auto m = parseManifestDocument("{\"schemaVersion\": 2,", "", "busybox");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("busybox: parse manifest"));
}

TEST(ManifestTest, ParseIndexRejectsManifestAndViceVersa) {
  EXPECT_THAT(std::string(parseIndex(ociManifest(), "", "x").status().message()),
              HasSubstr("expected an index"));
  EXPECT_THAT(std::string(parseManifest(busyboxList(), "", "x").status().message()),
              HasSubstr("expected an image manifest"));
}

TEST(ManifestTest, AcceptHeaderListsAllFour) {
  std::string accept = manifestAcceptHeader();
  EXPECT_THAT(accept, HasSubstr(media_type::kOciIndex));
  EXPECT_THAT(accept, HasSubstr(media_type::kDockerManifestList));
  EXPECT_THAT(accept, HasSubstr(media_type::kOciManifest));
  EXPECT_THAT(accept, HasSubstr(media_type::kDockerManifest));
}

// --- platform selection -----------------------------------------------------------

Index busybox() {
  auto idx = parseIndex(busyboxList(), "", "busybox");
  EXPECT_TRUE(idx.ok()) << idx.status();
  return *idx;
}

std::string pick(const Index& idx, const std::string& platform) {
  auto p = parsePlatform(platform);
  EXPECT_TRUE(p.ok()) << p.status();
  auto d = selectPlatform(idx, *p, "busybox");
  if (!d.ok()) return std::string(d.status().message());
  return d->digest;
}

TEST(PlatformTest, DefaultIsLinuxAmd64) {
  EXPECT_EQ(defaultPlatform().string(), "linux/amd64");
  auto d = selectPlatform(busybox(), defaultPlatform(), "busybox");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->digest, dg('a'));
}

TEST(PlatformTest, Arm64MatchesV8AndNoVariant) {
  Index idx = busybox();
  EXPECT_EQ(pick(idx, "linux/arm64"), dg('e'));
  EXPECT_EQ(pick(idx, "linux/arm64/v8"), dg('e'));
  EXPECT_EQ(pick(idx, "linux/aarch64"), dg('e'));
  // An arm64 entry without variant is v8 too.
  Index noVariant = idx;
  noVariant.manifests[4].platform->variant.clear();
  EXPECT_EQ(pick(noVariant, "linux/arm64/v8"), dg('e'));
}

TEST(PlatformTest, ArmVariantsAndFallbacks) {
  Index idx = busybox();
  EXPECT_EQ(pick(idx, "linux/arm"), dg('d'));  // arm means arm/v7
  EXPECT_EQ(pick(idx, "linux/arm/v7"), dg('d'));
  EXPECT_EQ(pick(idx, "linux/arm/v6"), dg('c'));
  EXPECT_EQ(pick(idx, "linux/armel"), dg('c'));
  EXPECT_EQ(pick(idx, "linux/arm/v5"), dg('b'));
  Index noV7 = idx;
  noV7.manifests.erase(noV7.manifests.begin() + 3);
  EXPECT_EQ(pick(noV7, "linux/arm/v7"), dg('c'));  // v6 runs on v7
  // arm64 with no arm64 entry falls back to 32-bit arm.
  Index noArm64 = idx;
  noArm64.manifests.erase(noArm64.manifests.begin() + 4);
  EXPECT_EQ(pick(noArm64, "linux/arm64"), dg('d'));
}

TEST(PlatformTest, Amd64VariantRules) {
  Index idx = busybox();
  idx.manifests[0].platform->variant = "v3";
  // No variant wanted: any amd64 entry matches.
  EXPECT_EQ(pick(idx, "linux/amd64"), dg('a'));
  // v2 wanted: a v3 image does not run.
  EXPECT_THAT(pick(idx, "linux/amd64/v2"), HasSubstr("has no manifest for linux/amd64/v2"));
  // v4 wanted: v3 is compatible.
  EXPECT_EQ(pick(idx, "linux/amd64/v4"), dg('a'));
  // Prefer the plain entry over a variant one when no variant is wanted.
  Index both = idx;
  Descriptor plain = both.manifests[0];
  plain.platform->variant.clear();
  plain.digest = dg('9');
  both.manifests.push_back(plain);
  EXPECT_EQ(pick(both, "linux/x86_64"), dg('9'));
  // Exact variant wins over the v1 baseline.
  EXPECT_EQ(pick(both, "linux/amd64/v3"), dg('a'));
}

TEST(PlatformTest, OtherArchitectures) {
  Index idx = busybox();
  EXPECT_EQ(pick(idx, "linux/ppc64le"), dg('f'));
  EXPECT_EQ(pick(idx, "linux/s390x"), dg('1'));
}

TEST(PlatformTest, NotFoundListsAvailablePlatforms) {
  Index idx = busybox();
  idx.manifests.erase(idx.manifests.begin());  // drop amd64
  // A BuildKit attestation manifest is not offered as a platform.
  Descriptor att;
  att.mediaType = media_type::kOciManifest;
  att.digest = dg('7');
  att.size = 840;
  att.platform = Platform{"unknown", "unknown", "", "", {}};
  att.annotations["vnd.docker.reference.type"] = "attestation-manifest";
  idx.manifests.push_back(att);
  auto d = selectPlatform(idx, defaultPlatform(), "docker.io/library/busybox:latest");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(std::string(d.status().message()),
            "image docker.io/library/busybox:latest has no manifest for linux/amd64; "
            "available: linux/arm/v5, linux/arm/v6, linux/arm/v7, linux/arm64/v8, "
            "linux/ppc64le, linux/s390x");
}

TEST(PlatformTest, OsMustMatch) {
  Index idx;
  Descriptor win;
  win.mediaType = media_type::kDockerManifest;
  win.digest = dg('5');
  win.platform = Platform{"amd64", "windows", "", "10.0.17763.5458", {}};
  idx.manifests.push_back(win);
  auto d = selectPlatform(idx, defaultPlatform(), "mcr.microsoft.com/windows/nanoserver");
  EXPECT_THAT(std::string(d.status().message()), HasSubstr("available: windows/amd64"));
}

TEST(PlatformTest, PlatformlessManifestIsAFallback) {
  Index idx;
  Descriptor only;
  only.mediaType = media_type::kOciManifest;
  only.digest = dg('6');
  idx.manifests.push_back(only);
  EXPECT_EQ(pick(idx, "linux/amd64"), dg('6'));
}

TEST(PlatformTest, ParsePlatform) {
  auto p = parsePlatform("linux/armhf");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->string(), "linux/arm/v7");
  EXPECT_EQ(parsePlatform("linux/x86_64")->string(), "linux/amd64");
  EXPECT_EQ(parsePlatform("linux/arm64/v8")->string(), "linux/arm64");
  for (const char* bad : {"linux", "linux/", "/amd64", "linux/arm/v7/x", "linux/arm/"}) {
    auto r = parsePlatform(bad);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(PlatformTest, PlatformFieldsRoundTrip) {
  const std::string doc = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
    "manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
                          dg('8') + R"(","size":1,
    "platform":{"architecture":"amd64","os":"windows","os.version":"10.0.20348.2340",
                "os.features":["win32k"]}}]})";
  auto idx = parseIndex(doc, "", "x");
  ASSERT_TRUE(idx.ok()) << idx.status();
  const Platform& p = *idx->manifests[0].platform;
  EXPECT_EQ(p.osVersion, "10.0.20348.2340");
  EXPECT_THAT(p.osFeatures, ElementsAre("win32k"));
  auto missingOs = parseIndex(replaceAll(doc, "\"os\":\"windows\",", ""), "", "x");
  EXPECT_THAT(std::string(missingOs.status().message()),
              HasSubstr("manifests[0]: \"platform\" needs \"architecture\" and \"os\""));
}

}  // namespace
}  // namespace berth::image
