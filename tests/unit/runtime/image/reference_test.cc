#include "runtime/image/reference.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace berth::image {
namespace {

using ::testing::HasSubstr;

const std::string kHex64 = "6d6b2ffd1a3e19d2a0cd69a1f6b2ee6f5c8e6c7e95b3f60d6e4a2b1c0d9e8f70";
const std::string kHex128 = kHex64 + kHex64;

Reference mustParse(const std::string& text) {
  auto ref = parseReference(text);
  EXPECT_TRUE(ref.ok()) << text << ": " << ref.status();
  return ref.ok() ? *ref : Reference{};
}

std::string errorOf(const std::string& text) {
  auto ref = parseReference(text);
  EXPECT_FALSE(ref.ok()) << text << " parsed as " << (ref.ok() ? ref->string() : "");
  if (ref.ok()) return "";
  EXPECT_EQ(ref.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(ref.status().message());
}

TEST(ReferenceTest, OfficialImageGetsLibraryAndLatest) {
  Reference ref = mustParse("busybox");
  EXPECT_EQ(ref.domain, "docker.io");
  EXPECT_EQ(ref.path, "library/busybox");
  EXPECT_EQ(ref.tag, "latest");
  EXPECT_EQ(ref.digest, "");
  EXPECT_EQ(ref.fullName(), "docker.io/library/busybox");
  EXPECT_EQ(ref.string(), "docker.io/library/busybox:latest");
  EXPECT_EQ(ref.familiarName(), "busybox:latest");
  EXPECT_EQ(ref.registryHost(), "registry-1.docker.io");
  EXPECT_EQ(ref.manifestReference(), "latest");
}

TEST(ReferenceTest, UserRepositoryOnDockerHub) {
  Reference ref = mustParse("user/app");
  EXPECT_EQ(ref.string(), "docker.io/user/app:latest");
  EXPECT_EQ(ref.familiarName(), "user/app:latest");
  EXPECT_EQ(mustParse("user/app:v1.2").string(), "docker.io/user/app:v1.2");
}

TEST(ReferenceTest, FullyQualifiedDockerHubReferencesAreUnchanged) {
  EXPECT_EQ(mustParse("docker.io/library/busybox:1.36").string(),
            "docker.io/library/busybox:1.36");
  EXPECT_EQ(mustParse("docker.io/busybox:1.36").string(), "docker.io/library/busybox:1.36");
  EXPECT_EQ(mustParse("docker.io/library/busybox:1.36").familiarName(), "busybox:1.36");
}

TEST(ReferenceTest, LegacyIndexDomainIsNormalised) {
  Reference ref = mustParse("index.docker.io/library/nginx:1.25");
  EXPECT_EQ(ref.domain, "docker.io");
  EXPECT_EQ(ref.string(), "docker.io/library/nginx:1.25");
  EXPECT_EQ(mustParse("index.docker.io/nginx").string(), "docker.io/library/nginx:latest");
}

TEST(ReferenceTest, RegistryWithPortAndTag) {
  Reference ref = mustParse("registry.example.com:5000/team/repo:tag-1");
  EXPECT_EQ(ref.domain, "registry.example.com:5000");
  EXPECT_EQ(ref.path, "team/repo");
  EXPECT_EQ(ref.tag, "tag-1");
  EXPECT_EQ(ref.registryHost(), "registry.example.com:5000");
  EXPECT_EQ(ref.familiarName(), "registry.example.com:5000/team/repo:tag-1");
  // A non-docker.io single-component path gets no "library/".
  EXPECT_EQ(mustParse("host:5000/repo").string(), "host:5000/repo:latest");
}

TEST(ReferenceTest, DigestOnlyReferenceHasNoDefaultTag) {
  Reference ref = mustParse("quay.io/coreos/etcd@sha256:" + kHex64);
  EXPECT_EQ(ref.domain, "quay.io");
  EXPECT_EQ(ref.path, "coreos/etcd");
  EXPECT_EQ(ref.tag, "");
  EXPECT_EQ(ref.digest, "sha256:" + kHex64);
  EXPECT_EQ(ref.string(), "quay.io/coreos/etcd@sha256:" + kHex64);
  EXPECT_EQ(ref.manifestReference(), "sha256:" + kHex64);
}

TEST(ReferenceTest, TagAndDigestAreBothKeptAndDigestIsPulled) {
  Reference ref = mustParse("busybox:1.36@sha256:" + kHex64);
  EXPECT_EQ(ref.tag, "1.36");
  EXPECT_EQ(ref.digest, "sha256:" + kHex64);
  EXPECT_EQ(ref.string(), "docker.io/library/busybox:1.36@sha256:" + kHex64);
  EXPECT_EQ(ref.familiarName(), "busybox:1.36@sha256:" + kHex64);
  EXPECT_EQ(ref.manifestReference(), "sha256:" + kHex64);
}

TEST(ReferenceTest, Sha512Digest) {
  Reference ref = mustParse("example.org/x@sha512:" + kHex128);
  EXPECT_EQ(ref.digest, "sha512:" + kHex128);
}

TEST(ReferenceTest, LocalhostIsADomain) {
  Reference ref = mustParse("localhost/x");
  EXPECT_EQ(ref.domain, "localhost");
  EXPECT_EQ(ref.path, "x");
  EXPECT_EQ(ref.string(), "localhost/x:latest");
  EXPECT_EQ(mustParse("localhost:5000/a/b:c").string(), "localhost:5000/a/b:c");
}

TEST(ReferenceTest, LocalhostWithoutSlashIsARepositoryWithATag) {
  // "localhost:5000" has no "/": the ":5000" is a tag, as in Docker.
  Reference ref = mustParse("localhost:5000");
  EXPECT_EQ(ref.string(), "docker.io/library/localhost:5000");
}

TEST(ReferenceTest, Ipv6Registry) {
  Reference ref = mustParse("[::1]:5000/x");
  EXPECT_EQ(ref.domain, "[::1]:5000");
  EXPECT_EQ(ref.path, "x");
  EXPECT_EQ(ref.tag, "latest");
  EXPECT_EQ(ref.registryHost(), "[::1]:5000");
  EXPECT_EQ(mustParse("[fe80::1ff:fe23:4567:890a]/ns/img:1").domain,
            "[fe80::1ff:fe23:4567:890a]");
}

TEST(ReferenceTest, FirstComponentWithoutDotOrColonIsAPath) {
  Reference ref = mustParse("myregistry/foo/bar");
  EXPECT_EQ(ref.domain, "docker.io");
  EXPECT_EQ(ref.path, "myregistry/foo/bar");
  EXPECT_EQ(ref.familiarName(), "myregistry/foo/bar:latest");
}

TEST(ReferenceTest, UppercaseFirstComponentIsADomain) {
  Reference ref = mustParse("Registry/app");
  EXPECT_EQ(ref.domain, "Registry");
  EXPECT_EQ(ref.path, "app");
}

TEST(ReferenceTest, PathSeparators) {
  EXPECT_EQ(mustParse("a/b.c_d__e---f:1").path, "a/b.c_d__e---f");
  EXPECT_THAT(errorOf("a/b..c"), HasSubstr("invalid repository path component \"b..c\""));
  EXPECT_THAT(errorOf("a/b___c"), HasSubstr("b___c"));
  EXPECT_THAT(errorOf("a/-b"), HasSubstr("\"-b\""));
  EXPECT_THAT(errorOf("a/b-"), HasSubstr("\"b-\""));
  EXPECT_THAT(errorOf("a//b"), HasSubstr("path component \"\""));
}

TEST(ReferenceTest, UppercaseRepositoryIsRejected) {
  std::string msg = errorOf("docker.io/library/BusyBox");
  EXPECT_THAT(msg, HasSubstr("invalid image reference \"docker.io/library/BusyBox\""));
  EXPECT_THAT(msg, HasSubstr("must be lowercase"));
  EXPECT_THAT(errorOf("BusyBox"), HasSubstr("must be lowercase"));
}

TEST(ReferenceTest, TagGrammar) {
  EXPECT_EQ(mustParse("busybox:_x.Y-1").tag, "_x.Y-1");
  EXPECT_EQ(mustParse("busybox:" + std::string(128, 'a')).tag.size(), 128u);
  EXPECT_THAT(errorOf("busybox:" + std::string(129, 'a')), HasSubstr("invalid tag"));
  EXPECT_THAT(errorOf("busybox:.hidden"), HasSubstr("invalid tag \".hidden\""));
  EXPECT_THAT(errorOf("busybox:-x"), HasSubstr("invalid tag"));
  EXPECT_THAT(errorOf("busybox:a+b"), HasSubstr("invalid tag"));
  EXPECT_THAT(errorOf("busybox:"), HasSubstr("invalid tag \"\""));
}

TEST(ReferenceTest, DigestValidation) {
  EXPECT_THAT(errorOf("busybox@sha256:abc"), HasSubstr("sha256 needs 64 hex digits, got 3"));
  std::string upper = kHex64;
  upper[0] = 'D';
  EXPECT_THAT(errorOf("busybox@sha256:" + upper), HasSubstr("not a lowercase hex digit"));
  EXPECT_THAT(errorOf("busybox@md5:" + kHex64.substr(0, 32)),
              HasSubstr("unsupported algorithm \"md5\""));
  EXPECT_THAT(errorOf("busybox@" + kHex64), HasSubstr("missing \"<algorithm>:\" prefix"));
  EXPECT_THAT(errorOf("busybox@sha512:" + kHex64), HasSubstr("sha512 needs 128"));
  EXPECT_THAT(errorOf("busybox@sha256:" + kHex64 + "@sha256:" + kHex64),
              HasSubstr("sha256 needs 64 hex digits, got 136"));
}

TEST(ReferenceTest, ValidateDigestDirectly) {
  EXPECT_TRUE(validateDigest("sha256:" + kHex64).ok());
  EXPECT_TRUE(validateDigest("sha512:" + kHex128).ok());
  auto st = validateDigest("SHA256:" + kHex64);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("invalid algorithm \"SHA256\""));
}

TEST(ReferenceTest, BadDomains) {
  EXPECT_THAT(errorOf("-bad.example.com/x"), HasSubstr("invalid registry host"));
  EXPECT_THAT(errorOf("host:/x"), HasSubstr("invalid registry host \"host:\""));
  EXPECT_THAT(errorOf("host:50a0/x"), HasSubstr("invalid registry host"));
  EXPECT_THAT(errorOf("[::1/x"), HasSubstr("invalid registry host"));
  EXPECT_THAT(errorOf("[zz::1]:5000/x"), HasSubstr("invalid registry host"));
  EXPECT_THAT(errorOf("a..b/x"), HasSubstr("invalid registry host"));
}

TEST(ReferenceTest, EmptyAndMalformed) {
  EXPECT_THAT(errorOf(""), HasSubstr("empty reference"));
  EXPECT_THAT(errorOf(":tag"), HasSubstr("missing repository name"));
  EXPECT_THAT(errorOf("@sha256:" + kHex64), HasSubstr("missing repository name"));
  EXPECT_THAT(errorOf("example.com/"), HasSubstr("missing repository name"));
  EXPECT_THAT(errorOf(" busybox"), HasSubstr("path component"));
  EXPECT_THAT(errorOf(kHex64), HasSubstr("64-hex image ID is not a reference"));
}

TEST(ReferenceTest, NameLengthLimit) {
  // docker.io/ (10) + 245 = 255 is fine; one more is not.
  std::string path = "u/" + std::string(243, 'a');
  EXPECT_EQ(mustParse(path).fullName().size(), 255u);
  EXPECT_THAT(errorOf(path + "a"), HasSubstr("longer than 255 characters"));
}

TEST(ReferenceTest, FamiliarNameKeepsNestedLibraryPaths) {
  EXPECT_EQ(mustParse("docker.io/library/a/b").familiarName(), "library/a/b:latest");
}

TEST(ReferenceTest, ParseOfStringIsIdentity) {
  for (const std::string& text : std::vector<std::string>{
           "busybox", "user/app:1", "host:5000/repo@sha256:" + kHex64, "[::1]:5000/x",
        "repo:tag@sha256:" + kHex64, "localhost/x"}) {
    Reference ref = mustParse(text);
    EXPECT_EQ(mustParse(ref.string()), ref) << text;
    EXPECT_EQ(mustParse(ref.familiarName()), ref) << text;
  }
}

}  // namespace
}  // namespace berth::image
