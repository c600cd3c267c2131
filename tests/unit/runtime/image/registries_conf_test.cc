#include "runtime/image/registries_conf.h"

#include <stdlib.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/fs.h"

namespace berth::image {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kDigestRef[] =
    "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

RegistriesConf parseOk(const std::string& text) {
  StatusOr<RegistriesConf> conf = parseRegistriesConf(text, "/etc/containers/registries.conf");
  EXPECT_TRUE(conf.ok()) << conf.status();
  return conf.ok() ? *conf : RegistriesConf{};
}

std::string parseError(const std::string& text) {
  StatusOr<RegistriesConf> conf = parseRegistriesConf(text, "/etc/containers/registries.conf");
  EXPECT_FALSE(conf.ok());
  if (conf.ok()) return "";
  EXPECT_EQ(conf.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(conf.status().message());
}

std::vector<std::string> refs(const std::vector<PullSource>& sources) {
  std::vector<std::string> out;
  for (const PullSource& s : sources) out.push_back(s.reference);
  return out;
}

std::vector<std::string> sourcesFor(const RegistriesConf& conf, const std::string& ref) {
  StatusOr<std::vector<PullSource>> sources = pullSources(conf, ref);
  EXPECT_TRUE(sources.ok()) << sources.status();
  return sources.ok() ? refs(*sources) : std::vector<std::string>{};
}

TEST(RegistriesConfTest, ParsesVersion2File) {
  RegistriesConf conf = parseOk(R"(
unqualified-search-registries = ["docker.io", "quay.io/"]
short-name-mode = "enforcing"

[aliases]
"busybox" = "docker.io/library/busybox"

[[registry]]
prefix = "example.com/foo"
location = "internal.example.com/bar"
insecure = true
mirror-by-digest-only = true

[[registry.mirror]]
location = "mirror-1.local:5000/foo"
insecure = true

[[registry]]
location = "blocked.example.com"
blocked = true
)");
  EXPECT_EQ(conf.version, 2);
  EXPECT_THAT(conf.unqualified_search_registries, ElementsAre("docker.io", "quay.io"));
  EXPECT_EQ(conf.short_name_mode, "enforcing");
  EXPECT_EQ(conf.aliases.at("busybox"), "docker.io/library/busybox");
  ASSERT_EQ(conf.registries.size(), 2u);
  const RegistryEntry& first = conf.registries[0];
  EXPECT_EQ(first.prefix, "example.com/foo");
  EXPECT_EQ(first.location, "internal.example.com/bar");
  EXPECT_TRUE(first.insecure);
  EXPECT_FALSE(first.blocked);
  EXPECT_TRUE(first.mirror_by_digest_only);
  ASSERT_EQ(first.mirrors.size(), 1u);
  EXPECT_EQ(first.mirrors[0].location, "mirror-1.local:5000/foo");
  EXPECT_TRUE(first.mirrors[0].insecure);
  EXPECT_EQ(first.mirrors[0].pull_from_mirror, PullFromMirror::kAll);
  // prefix defaults to location.
  EXPECT_EQ(conf.registries[1].prefix, "blocked.example.com");
  EXPECT_TRUE(conf.registries[1].blocked);
  EXPECT_EQ(conf.registries[1].line, 18);
  EXPECT_THAT(conf.warnings, IsEmpty());
}

TEST(RegistriesConfTest, SyntaxErrorNamesFileLineAndColumn) {
  std::string msg = parseError("[[registry]]\nlocation = \"a.example.com\nblocked = true\n");
  EXPECT_THAT(msg, HasSubstr("/etc/containers/registries.conf:2:"));
  EXPECT_THAT(msg, HasSubstr("invalid TOML"));
}

TEST(RegistriesConfTest, WrongTypeNamesKeyAndPosition) {
  std::string msg = parseError("[[registry]]\nlocation = \"a.example.com\"\ninsecure = \"yes\"\n");
  EXPECT_THAT(msg, HasSubstr("registries.conf:3:"));
  EXPECT_THAT(msg, HasSubstr("[[registry]] #1 insecure: expected a boolean"));
  EXPECT_THAT(msg, HasSubstr("got string"));
}

TEST(RegistriesConfTest, RejectsBadValues) {
  EXPECT_THAT(parseError("[[registry]]\ninsecure = true\n"),
              HasSubstr("sets neither prefix nor location"));
  EXPECT_THAT(parseError("[[registry]]\nlocation = \"https://a.example.com\"\n"),
              HasSubstr("URI schemes are not supported"));
  EXPECT_THAT(parseError("[[registry]]\nprefix = \"*.example.com/foo\"\n"),
              HasSubstr("wildcard prefix must be a host name"));
  EXPECT_THAT(parseError("[[registry]]\nprefix = \"example.*.com\"\n"),
              HasSubstr("'*' is only allowed"));
  EXPECT_THAT(parseError("short-name-mode = \"strict\"\n"),
              HasSubstr("use one of enforcing, permissive, disabled"));
  EXPECT_THAT(parseError("[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\n"
                         "location = \"m.io\"\npull-from-mirror = \"sometimes\"\n"),
              HasSubstr("use one of all, digest-only, tag-only"));
  EXPECT_THAT(parseError("[[registry]]\nlocation = \"a.io\"\nmirror-by-digest-only = true\n"
                         "[[registry.mirror]]\nlocation = \"m.io\"\n"
                         "pull-from-mirror = \"tag-only\"\n"),
              HasSubstr("cannot be combined with mirror-by-digest-only"));
  EXPECT_THAT(parseError("[[registry]]\nlocation = \"a.io\"\n[[registry]]\nprefix = \"a.io\"\n"
                         "location = \"b.io\"\n"),
              HasSubstr("already defined by the [[registry]] at line 1"));
}

TEST(RegistriesConfTest, UnknownKeysAreWarnings) {
  RegistriesConf conf = parseOk("credential-helpers = [\"x\"]\n[[registry]]\n"
                                "location = \"a.io\"\nfancy = 1\n");
  EXPECT_EQ(conf.registries.size(), 1u);
  ASSERT_EQ(conf.warnings.size(), 2u);
  EXPECT_THAT(conf.warnings[0], HasSubstr("[[registry]] #1 unknown key \"fancy\""));
  EXPECT_THAT(conf.warnings[1], HasSubstr("unknown key \"credential-helpers\""));
}

TEST(RegistriesConfTest, TranslatesVersion1Tables) {
  RegistriesConf conf = parseOk(R"(
[registries.search]
registries = ["docker.io", "quay.io"]
[registries.insecure]
registries = ["local:5000", "both.example.com"]
[registries.block]
registries = ["bad.example.com", "both.example.com"]
)");
  EXPECT_EQ(conf.version, 1);
  EXPECT_THAT(conf.unqualified_search_registries, ElementsAre("docker.io", "quay.io"));
  ASSERT_EQ(conf.registries.size(), 3u);
  EXPECT_EQ(conf.registries[0].prefix, "local:5000");
  EXPECT_TRUE(conf.registries[0].insecure);
  EXPECT_FALSE(conf.registries[0].blocked);
  EXPECT_EQ(conf.registries[1].prefix, "both.example.com");
  EXPECT_TRUE(conf.registries[1].insecure);
  EXPECT_TRUE(conf.registries[1].blocked);
  EXPECT_TRUE(conf.registries[2].blocked);
  StatusOr<std::vector<PullSource>> local = pullSources(conf, "local:5000/app:1");
  ASSERT_TRUE(local.ok());
  ASSERT_EQ(local->size(), 1u);
  EXPECT_TRUE((*local)[0].insecure);
}

TEST(RegistriesConfTest, RejectsVersion1MixedWithVersion2) {
  EXPECT_THAT(parseError("unqualified-search-registries = [\"docker.io\"]\n"
                         "[registries.search]\nregistries = [\"quay.io\"]\n"),
              HasSubstr("mixing the version 1"));
}

TEST(RegistriesConfTest, MissingFileIsEmptyConfig) {
  StatusOr<RegistriesConf> conf = loadRegistriesConf("/nonexistent/berth/registries.conf");
  ASSERT_TRUE(conf.ok()) << conf.status();
  EXPECT_THAT(conf->registries, IsEmpty());
  EXPECT_THAT(sourcesFor(*conf, "docker.io/library/busybox:1.36"),
              ElementsAre("docker.io/library/busybox:1.36"));
}

TEST(RegistriesConfTest, LoadsFileAndBlockedErrorNamesIt) {
  char tmpl[] = "/tmp/berth-regconf-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string path = fs::join(tmpl, "registries.conf");
  ASSERT_TRUE(fs::writeFileAtomic(path, "[[registry]]\nprefix = \"*.evil.example\"\n"
                                        "blocked = true\n").ok());
  StatusOr<RegistriesConf> conf = loadRegistriesConf(path);
  ASSERT_TRUE(conf.ok()) << conf.status();
  StatusOr<std::vector<PullSource>> sources = pullSources(*conf, "a.evil.example/x:1");
  ASSERT_FALSE(sources.ok());
  EXPECT_EQ(sources.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(sources.status().message()),
              HasSubstr("registry *.evil.example is blocked by " + path));
  EXPECT_TRUE(pullSources(*conf, "evil.example/x:1").ok());
  ASSERT_TRUE(fs::removeAll(tmpl).ok());
}

TEST(RegistriesConfTest, PrefixMatchesOnPathBoundaries) {
  RegistriesConf conf = parseOk(R"(
[[registry]]
prefix = "example.com/foo"
location = "rewritten.local/foo"
)");
  EXPECT_THAT(sourcesFor(conf, "example.com/foo/bar:1"), ElementsAre("rewritten.local/foo/bar:1"));
  EXPECT_THAT(sourcesFor(conf, "example.com/foo:tag"), ElementsAre("rewritten.local/foo:tag"));
  EXPECT_THAT(sourcesFor(conf, std::string("example.com/foo") + kDigestRef),
              ElementsAre(std::string("rewritten.local/foo") + kDigestRef));
  EXPECT_THAT(sourcesFor(conf, "example.com/foobar:1"), ElementsAre("example.com/foobar:1"));
  EXPECT_THAT(sourcesFor(conf, "example.com/fo:1"), ElementsAre("example.com/fo:1"));
}

TEST(RegistriesConfTest, HostPrefixDoesNotMatchOtherPort) {
  RegistriesConf conf = parseOk("[[registry]]\nlocation = \"example.com\"\nblocked = true\n");
  EXPECT_FALSE(pullSources(conf, "example.com/x:1").ok());
  EXPECT_THAT(sourcesFor(conf, "example.com:5000/x:1"), ElementsAre("example.com:5000/x:1"));
}

TEST(RegistriesConfTest, LongestPrefixWins) {
  RegistriesConf conf = parseOk(R"(
[[registry]]
prefix = "example.com"
location = "one.local"
[[registry]]
prefix = "example.com/team/app"
location = "three.local/app"
[[registry]]
prefix = "example.com/team"
location = "two.local"
)");
  EXPECT_THAT(sourcesFor(conf, "example.com/other:1"), ElementsAre("one.local/other:1"));
  EXPECT_THAT(sourcesFor(conf, "example.com/team/x:1"), ElementsAre("two.local/x:1"));
  EXPECT_THAT(sourcesFor(conf, "example.com/team/app:1"), ElementsAre("three.local/app:1"));
  EXPECT_THAT(sourcesFor(conf, "example.com/team/app/sub:1"),
              ElementsAre("three.local/app/sub:1"));
}

TEST(RegistriesConfTest, WildcardPrefix) {
  RegistriesConf conf = parseOk(R"(
[[registry]]
prefix = "*.example.com"
insecure = true
[[registry]]
prefix = "exact.example.com"
location = "elsewhere.local"
)");
  StatusOr<std::vector<PullSource>> sub = pullSources(conf, "a.b.example.com:5000/x:1");
  ASSERT_TRUE(sub.ok()) << sub.status();
  ASSERT_EQ(sub->size(), 1u);
  EXPECT_EQ((*sub)[0].reference, "a.b.example.com:5000/x:1");  // empty location: kept
  EXPECT_EQ((*sub)[0].registry, "a.b.example.com:5000");
  EXPECT_TRUE((*sub)[0].insecure);
  // A literal prefix of the same length beats the wildcard.
  EXPECT_THAT(sourcesFor(conf, "exact.example.com/x:1"), ElementsAre("elsewhere.local/x:1"));
  // The bare domain is not a subdomain.
  StatusOr<std::vector<PullSource>> bare = pullSources(conf, "example.com/x:1");
  ASSERT_TRUE(bare.ok());
  EXPECT_FALSE((*bare)[0].insecure);
  EXPECT_THAT(sourcesFor(conf, "badexample.com/x:1"), ElementsAre("badexample.com/x:1"));
}

TEST(RegistriesConfTest, MirrorsComeFirstAndRespectPullFromMirror) {
  RegistriesConf conf = parseOk(R"(
[[registry]]
prefix = "docker.io"
location = "registry-1.docker.io"
[[registry.mirror]]
location = "all.local:5000"
insecure = true
[[registry.mirror]]
location = "digests.local/cache"
pull-from-mirror = "digest-only"
[[registry.mirror]]
location = "tags.local"
pull-from-mirror = "tag-only"
)");
  StatusOr<std::vector<PullSource>> tag = pullSources(conf, "docker.io/library/busybox:1.36");
  ASSERT_TRUE(tag.ok()) << tag.status();
  EXPECT_THAT(refs(*tag), ElementsAre("all.local:5000/library/busybox:1.36",
                                      "tags.local/library/busybox:1.36",
                                      "registry-1.docker.io/library/busybox:1.36"));
  EXPECT_TRUE((*tag)[0].insecure);
  EXPECT_TRUE((*tag)[0].mirror);
  EXPECT_EQ((*tag)[0].registry, "all.local:5000");
  EXPECT_FALSE((*tag)[2].insecure);
  EXPECT_FALSE((*tag)[2].mirror);
  std::string digest_ref = std::string("docker.io/library/busybox") + kDigestRef;
  EXPECT_THAT(sourcesFor(conf, digest_ref),
              ElementsAre(std::string("all.local:5000/library/busybox") + kDigestRef,
                          std::string("digests.local/cache/library/busybox") + kDigestRef,
                          std::string("registry-1.docker.io/library/busybox") + kDigestRef));
}

TEST(RegistriesConfTest, MirrorByDigestOnlySkipsMirrorsForTags) {
  RegistriesConf conf = parseOk(R"(
[[registry]]
location = "quay.io"
mirror-by-digest-only = true
[[registry.mirror]]
location = "m.local"
)");
  EXPECT_THAT(sourcesFor(conf, "quay.io/a/b:latest"), ElementsAre("quay.io/a/b:latest"));
  EXPECT_THAT(sourcesFor(conf, std::string("quay.io/a/b") + kDigestRef),
              ElementsAre(std::string("m.local/a/b") + kDigestRef,
                          std::string("quay.io/a/b") + kDigestRef));
}

TEST(RegistriesConfTest, ReferenceWithoutHostIsRejected) {
  RegistriesConf conf;
  StatusOr<std::vector<PullSource>> sources = pullSources(conf, "busybox");
  EXPECT_EQ(sources.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(sources.status().message()), HasSubstr("has no registry host"));
}

class CertsDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-certsd-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { ASSERT_TRUE(fs::removeAll(dir_).ok()); }
  void touch(const std::string& rel) {
    std::string path = fs::join(dir_, rel);
    ASSERT_TRUE(fs::mkdirAll(path.substr(0, path.rfind('/'))).ok());
    ASSERT_TRUE(fs::writeFileAtomic(path, "pem", 0644, fs::Durability::kVolatile).ok());
  }
  std::string dir_;
};

TEST_F(CertsDirTest, ListsCaFilesAndClientPairs) {
  touch("reg.local:5000/ca.crt");
  touch("reg.local:5000/another.crt");
  touch("reg.local:5000/client.cert");
  touch("reg.local:5000/client.key");
  touch("reg.local:5000/README");
  touch("reg.local/other.crt");
  StatusOr<TlsFiles> files = certsFor(dir_, "reg.local:5000");
  ASSERT_TRUE(files.ok()) << files.status();
  std::string d = dir_ + "/reg.local:5000/";
  EXPECT_THAT(files->ca_files, ElementsAre(d + "another.crt", d + "ca.crt"));
  ASSERT_EQ(files->client_certs.size(), 1u);
  EXPECT_EQ(files->client_certs[0].cert, d + "client.cert");
  EXPECT_EQ(files->client_certs[0].key, d + "client.key");
}

TEST_F(CertsDirTest, MissingDirectoryIsEmpty) {
  StatusOr<TlsFiles> files = certsFor(dir_, "nothing.local");
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_THAT(files->ca_files, IsEmpty());
  EXPECT_THAT(files->client_certs, IsEmpty());
}

TEST_F(CertsDirTest, CertWithoutKeyNamesBoth) {
  touch("reg.local/client.cert");
  StatusOr<TlsFiles> files = certsFor(dir_, "reg.local");
  ASSERT_FALSE(files.ok());
  EXPECT_EQ(files.status().code(), absl::StatusCode::kFailedPrecondition);
  std::string msg(files.status().message());
  EXPECT_THAT(msg, HasSubstr(dir_ + "/reg.local/client.cert"));
  EXPECT_THAT(msg, HasSubstr(dir_ + "/reg.local/client.key"));
}

TEST_F(CertsDirTest, KeyWithoutCertNamesBoth) {
  touch("reg.local/client.key");
  StatusOr<TlsFiles> files = certsFor(dir_, "reg.local");
  ASSERT_FALSE(files.ok());
  std::string msg(files.status().message());
  EXPECT_THAT(msg, HasSubstr(dir_ + "/reg.local/client.key"));
  EXPECT_THAT(msg, HasSubstr(dir_ + "/reg.local/client.cert"));
}

TEST_F(CertsDirTest, RejectsPathLikeHost) {
  EXPECT_EQ(certsFor(dir_, "../etc").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(certsFor(dir_, "..").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(certsFor(dir_, "").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace berth::image
