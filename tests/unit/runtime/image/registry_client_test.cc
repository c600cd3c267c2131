#include "runtime/image/registry_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/sha256.h"
#include "tests/fixtures/fake_registry.h"

namespace berth::image {
namespace {

using ::berth::testing::FakeAuthMode;
using ::berth::testing::FakeRegistry;
using ::berth::testing::FakeRegistryOptions;
using ::berth::testing::FaultRule;
using ::berth::testing::HttpRequest;
using ::berth::testing::HttpResponse;
using ::berth::testing::HttpServer;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kRepo[] = "library/busybox";

std::string manifestJson(const std::string& config_digest, const std::string& layer_digest) {
  return strCat(R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)",
                R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")",
                config_digest, R"(","size":2},"layers":[{"mediaType":)",
                R"("application/vnd.oci.image.layer.v1.tar+gzip","digest":")", layer_digest,
                R"(","size":3}]})");
}

// Deterministic pseudo-random bytes.
std::string blobBytes(size_t size, unsigned seed = 1) {
  std::string out(size, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (char& c : out) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 16);
  }
  return out;
}

// A FakeRegistry without TLS: plain HTTP at once.
RegistryEndpoint plainEndpoint(const FakeRegistry& registry) {
  RegistryEndpoint endpoint;
  endpoint.host = registry.hostPort();
  endpoint.insecure = true;
  endpoint.plain_http = true;
  return endpoint;
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/berth-regclient-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void writeFile(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// A CA and a server certificate for 127.0.0.1 signed by it, made once with openssl(1).
struct TestPki {
  TempDir dir;
  bool ok = false;
  std::string ca() const { return dir.path() + "/ca.crt"; }
  std::string cert() const { return dir.path() + "/server.crt"; }
  std::string key() const { return dir.path() + "/server.key"; }

  TestPki() {
    std::string d = dir.path();
    std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    writeFile(d + "/ext.cnf",
              "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\n"
              "extendedKeyUsage=serverAuth\n");
    std::string script = strCat(
        "(cd ", d, " && openssl req -x509 ", ec,
        " -keyout ca.key -out ca.crt -days 2 -subj /CN=berth-test-ca && openssl req ", ec,
        " -keyout server.key -out server.csr -subj /CN=127.0.0.1 && openssl x509 -req -in "
        "server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 "
        "-extfile ext.cnf) >/dev/null 2>&1");
    ok = std::system(script.c_str()) == 0;
  }
};

const TestPki& pki() {
  static TestPki instance;  // removed at exit
  return instance;
}

class RegistryClientTest : public ::testing::Test {
 protected:
  RegistryClientOptions fastOptions() {
    RegistryClientOptions options;
    options.certs_dir = certs_.path();
    options.connect_timeout = std::chrono::seconds(2);
    options.low_speed_time = std::chrono::seconds(1);
    options.retry_backoff = std::chrono::milliseconds(10);
    options.max_retry_after = std::chrono::seconds(2);
    options.max_retries = 3;
    return options;
  }

  std::unique_ptr<RegistryClient> makeClient(std::optional<RegistryClientOptions> options = {}) {
    auto client = RegistryClient::create(options ? *options : fastOptions());
    EXPECT_TRUE(client.ok()) << client.status();
    return std::move(client).value();
  }

  std::unique_ptr<FakeRegistry> startRegistry(FakeRegistryOptions options = {}) {
    auto registry = FakeRegistry::start(std::move(options));
    EXPECT_TRUE(registry.ok()) << registry.status();
    return std::move(registry).value();
  }

  // Stores a small image; returns the manifest digest.
  std::string addImage(FakeRegistry& registry, const std::string& tag = "1.36") {
    config_digest_ = registry.addBlob(kRepo, "{}");
    layer_ = blobBytes(300000);
    layer_digest_ = registry.addBlob(kRepo, layer_);
    manifest_ = manifestJson(config_digest_, layer_digest_);
    return registry.addManifest(kRepo, tag, manifest_, media_type::kOciManifest);
  }

  Descriptor layerDescriptor() const {
    Descriptor d;
    d.mediaType = media_type::kOciLayerGzip;
    d.digest = layer_digest_;
    d.size = static_cast<int64_t>(layer_.size());
    return d;
  }

  // Fetches the layer into a string.
  Status fetchLayer(RegistryClient& client, const RegistryEndpoint& endpoint,
                    const Credentials& credentials, std::string* out) {
    return client.fetchBlob(endpoint, kRepo, layerDescriptor(), credentials,
                            [out](std::string_view data) {
                              out->append(data);
                              return absl::OkStatus();
                            });
  }

  TempDir certs_;
  std::string config_digest_;
  std::string layer_;
  std::string layer_digest_;
  std::string manifest_;
};

// ---- parseWwwAuthenticate ----

TEST(ParseWwwAuthenticateTest, BearerWithQuotedParams) {
  auto c = parseWwwAuthenticate(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull")");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_THAT(*c, SizeIs(1));
  EXPECT_EQ((*c)[0].scheme, "bearer");
  EXPECT_EQ((*c)[0].param("realm"), "https://auth.docker.io/token");
  EXPECT_EQ((*c)[0].param("SERVICE"), "registry.docker.io");
  EXPECT_EQ((*c)[0].param("scope"), "repository:library/busybox:pull");
  EXPECT_EQ((*c)[0].param("missing"), "");
}

TEST(ParseWwwAuthenticateTest, SeveralChallengesEscapesAndSpaces) {
  auto c = parseWwwAuthenticate(
      R"(Basic realm="a \"quoted\" realm", charset=UTF-8 ,  BEARER realm = "r" , error="insufficient_scope", scope="a b")");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_THAT(*c, SizeIs(2));
  EXPECT_EQ((*c)[0].scheme, "basic");
  EXPECT_EQ((*c)[0].param("realm"), "a \"quoted\" realm");
  EXPECT_EQ((*c)[0].param("charset"), "UTF-8");
  EXPECT_EQ((*c)[1].scheme, "bearer");
  EXPECT_EQ((*c)[1].param("realm"), "r");
  EXPECT_EQ((*c)[1].param("error"), "insufficient_scope");
  EXPECT_EQ((*c)[1].param("scope"), "a b");
}

TEST(ParseWwwAuthenticateTest, BareSchemesAndToken68) {
  auto c = parseWwwAuthenticate("Negotiate abc+/d==, Basic");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_THAT(*c, SizeIs(2));
  EXPECT_EQ((*c)[0].scheme, "negotiate");
  ASSERT_THAT((*c)[0].params, SizeIs(1));
  EXPECT_EQ((*c)[0].params[0].second, "abc+/d==");
  EXPECT_EQ((*c)[1].scheme, "basic");
  EXPECT_THAT((*c)[1].params, IsEmpty());
}

TEST(ParseWwwAuthenticateTest, UnquotedRealmUrlIsAccepted) {
  auto c = parseWwwAuthenticate("Bearer realm=https://x.example/token,service=x.example");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)[0].param("realm"), "https://x.example/token");
  EXPECT_EQ((*c)[0].param("service"), "x.example");
}

TEST(ParseWwwAuthenticateTest, MalformedInputIsInvalidArgument) {
  for (const char* bad : {"", "Bearer realm=\"unterminated", "=x", "Bearer realm=\"a\" junk=",
                          "Bearer realm=\"a\" \"b\"", "Bearer realm=\"a\",="}) {
    auto c = parseWwwAuthenticate(bad);
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(c.status().message()), HasSubstr("WWW-Authenticate")) << bad;
  }
}

// ---- manifests ----

TEST_F(RegistryClientTest, ManifestByTagAndByDigest) {
  auto registry = startRegistry();
  std::string digest = addImage(*registry);
  auto client = makeClient();
  RegistryEndpoint endpoint = plainEndpoint(*registry);

  auto by_tag = client->fetchManifest(endpoint, kRepo, "1.36", {});
  ASSERT_TRUE(by_tag.ok()) << by_tag.status();
  EXPECT_EQ(by_tag->bytes, manifest_);
  EXPECT_EQ(by_tag->digest, digest);
  EXPECT_EQ(by_tag->media_type, media_type::kOciManifest);

  auto by_digest = client->fetchManifest(endpoint, kRepo, digest, {});
  ASSERT_TRUE(by_digest.ok()) << by_digest.status();
  EXPECT_EQ(by_digest->bytes, manifest_);

  auto requests = registry->requestsTo("/v2/library/busybox/manifests/");
  ASSERT_THAT(requests, SizeIs(2));
  EXPECT_EQ(requests[1].path, "/v2/library/busybox/manifests/" + digest);
  EXPECT_EQ(requests[0].header("accept"), manifestAcceptHeader());
  EXPECT_EQ(requests[0].header("user-agent"), "berth");
}

TEST_F(RegistryClientTest, IndexMediaTypesAndContentTypeParameters) {
  auto registry = startRegistry();
  std::string list = R"({"schemaVersion":2,"manifests":[]})";
  registry->addManifest(kRepo, "list", list,
                        std::string(media_type::kDockerManifestList) + "; charset=utf-8");
  std::string index = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]})";
  registry->addManifest(kRepo, "index", index, media_type::kOciIndex);
  auto client = makeClient();
  RegistryEndpoint endpoint = plainEndpoint(*registry);
  auto a = client->fetchManifest(endpoint, kRepo, "list", {});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->media_type, media_type::kDockerManifestList);
  EXPECT_EQ(a->digest, sha256Digest(list));
  auto b = client->fetchManifest(endpoint, kRepo, "index", {});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->media_type, media_type::kOciIndex);
  EXPECT_THAT(registry->requests().back().header("accept"),
              AllOf(HasSubstr(media_type::kOciIndex), HasSubstr(media_type::kDockerManifestList)));
}

TEST_F(RegistryClientTest, ManifestDigestMismatchIsDataLoss) {
  auto registry = startRegistry();
  std::string digest = addImage(*registry);
  FaultRule wrong;
  wrong.path_prefix = "/v2/library/busybox/manifests/";
  wrong.replace_body = manifest_ + " ";
  registry->addFault(wrong);
  auto client = makeClient();
  RegistryEndpoint endpoint = plainEndpoint(*registry);
  auto m = client->fetchManifest(endpoint, kRepo, digest, {});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(m.status().message()),
              AllOf(HasSubstr("fetch manifest \"" + digest + "\""), HasSubstr("digest")));
}

TEST_F(RegistryClientTest, DockerContentDigestMismatchIsDataLoss) {
  auto registry = startRegistry();
  addImage(*registry);
  FaultRule wrong;
  wrong.path_prefix = "/v2/library/busybox/manifests/";
  wrong.docker_content_digest = sha256Digest("something else");
  registry->addFault(wrong);
  auto client = makeClient();
  auto m = client->fetchManifest(plainEndpoint(*registry), kRepo, "1.36", {});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("Docker-Content-Digest"));
}

TEST_F(RegistryClientTest, ManifestOver4MiBIsRefused) {
  auto registry = startRegistry();
  registry->addManifest(kRepo, "big", std::string((4 << 20) + 10, ' '), media_type::kOciManifest);
  auto client = makeClient();
  auto m = client->fetchManifest(plainEndpoint(*registry), kRepo, "big", {});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("4 MiB"));
}

TEST_F(RegistryClientTest, NotFoundNamesTheObject) {
  auto registry = startRegistry();
  addImage(*registry);
  auto client = makeClient();
  RegistryEndpoint endpoint = plainEndpoint(*registry);
  auto m = client->fetchManifest(endpoint, kRepo, "nope", {});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(std::string(m.status().message()),
            strCat("fetch manifest \"nope\" of ", registry->hostPort(),
                   "/library/busybox: HTTP 404 Not Found: MANIFEST_UNKNOWN: manifest unknown"));

  Descriptor missing = layerDescriptor();
  missing.digest = sha256Digest("missing");
  Status s = client->fetchBlob(endpoint, kRepo, missing, {},
                               [](std::string_view) { return absl::OkStatus(); });
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()),
              AllOf(HasSubstr("fetch blob " + missing.digest), HasSubstr("BLOB_UNKNOWN")));
}

// ---- blobs ----

TEST_F(RegistryClientTest, BlobIsStreamedToTheSink) {
  auto registry = startRegistry();
  addImage(*registry);
  auto client = makeClient();
  std::string got;
  int calls = 0;
  Status s = client->fetchBlob(plainEndpoint(*registry), kRepo, layerDescriptor(), {},
                               [&](std::string_view data) {
                                 ++calls;
                                 got.append(data);
                                 return absl::OkStatus();
                               });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(got, layer_);
  EXPECT_GT(calls, 1);  // streamed in pieces, not buffered whole
}

TEST_F(RegistryClientTest, MoreBytesThanTheDescriptorIsDataLoss) {
  auto registry = startRegistry();
  addImage(*registry);
  auto client = makeClient();
  Descriptor small = layerDescriptor();
  small.size = 1000;
  int64_t seen = 0;
  Status s = client->fetchBlob(plainEndpoint(*registry), kRepo, small, {},
                               [&](std::string_view data) {
                                 seen += static_cast<int64_t>(data.size());
                                 return absl::OkStatus();
                               });
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_LE(seen, 1000);
  EXPECT_THAT(std::string(s.message()), HasSubstr("1000 bytes"));
}

TEST_F(RegistryClientTest, SinkErrorAbortsWithoutRetry) {
  auto registry = startRegistry();
  addImage(*registry);
  auto client = makeClient();
  int calls = 0;
  Status s = client->fetchBlob(plainEndpoint(*registry), kRepo, layerDescriptor(), {},
                               [&](std::string_view) {
                                 ++calls;
                                 return absl::ResourceExhaustedError("disk full");
                               });
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(s.message()), HasSubstr("disk full"));
  EXPECT_EQ(calls, 1);
  EXPECT_THAT(registry->requestsTo("/v2/library/busybox/blobs/"), SizeIs(1));
}

TEST_F(RegistryClientTest, InterruptedBlobIsResumedWithRange) {
  auto registry = startRegistry();
  addImage(*registry);
  FaultRule cut;
  cut.path_prefix = "/v2/library/busybox/blobs/" + layer_digest_;
  cut.close_after_bytes = 100000;
  cut.times = 2;
  registry->addFault(cut);
  auto client = makeClient();
  std::string got;
  Status s = fetchLayer(*client, plainEndpoint(*registry), {}, &got);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(got.size(), layer_.size());
  EXPECT_TRUE(got == layer_);
  auto requests = registry->requestsTo("/v2/library/busybox/blobs/");
  ASSERT_THAT(requests, SizeIs(3));
  EXPECT_EQ(requests[0].header("range"), "");
  EXPECT_EQ(requests[1].header("range"), "bytes=100000-");
  EXPECT_EQ(requests[2].header("range"), "bytes=200000-");
}

TEST_F(RegistryClientTest, InterruptedBlobFromServerIgnoringRangeSkipsSeenBytes) {
  FakeRegistryOptions options;
  options.ignore_range = true;
  auto registry = startRegistry(options);
  addImage(*registry);
  FaultRule cut;
  cut.path_prefix = "/v2/library/busybox/blobs/" + layer_digest_;
  cut.close_after_bytes = 123457;
  registry->addFault(cut);
  auto client = makeClient();
  std::string got;
  Status s = fetchLayer(*client, plainEndpoint(*registry), {}, &got);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(got == layer_);
  auto requests = registry->requestsTo("/v2/library/busybox/blobs/");
  ASSERT_THAT(requests, SizeIs(2));
  EXPECT_EQ(requests[1].header("range"), "bytes=123457-");
}

TEST_F(RegistryClientTest, StalledTransferTimesOut) {
  auto registry = startRegistry();
  addImage(*registry);
  FaultRule stall;
  stall.path_prefix = "/v2/library/busybox/blobs/";
  stall.stall = std::chrono::milliseconds(10000);
  stall.times = -1;
  registry->addFault(stall);
  RegistryClientOptions options = fastOptions();
  options.max_retries = 0;
  auto client = makeClient(options);
  std::string got;
  auto start = std::chrono::steady_clock::now();
  Status s = fetchLayer(*client, plainEndpoint(*registry), {}, &got);
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("fetch blob " + layer_digest_));
  EXPECT_LT(elapsed, std::chrono::seconds(5));
}

TEST_F(RegistryClientTest, DroppedConnectionIsRetried) {
  auto registry = startRegistry();
  std::string digest = addImage(*registry);
  FaultRule drop;
  drop.path_prefix = "/v2/library/busybox/manifests/";
  drop.drop_connection = true;
  registry->addFault(drop);
  auto client = makeClient();
  auto m = client->fetchManifest(plainEndpoint(*registry), kRepo, "1.36", {});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->digest, digest);
  EXPECT_THAT(registry->requestsTo("/v2/library/busybox/manifests/"), SizeIs(2));
}

// ---- retries and status mapping ----

TEST_F(RegistryClientTest, TooManyRequestsHonoursRetryAfterThenSucceeds) {
  auto registry = startRegistry();
  addImage(*registry);
  FaultRule limit;
  limit.path_prefix = "/v2/library/busybox/manifests/";
  limit.status = 429;
  limit.retry_after = "1";
  registry->addFault(limit);
  auto client = makeClient();
  auto start = std::chrono::steady_clock::now();
  auto m = client->fetchManifest(plainEndpoint(*registry), kRepo, "1.36", {});
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_GE(elapsed, std::chrono::milliseconds(950));
  EXPECT_THAT(registry->requestsTo("/v2/library/busybox/manifests/"), SizeIs(2));
}

TEST_F(RegistryClientTest, PersistentTooManyRequestsIsResourceExhausted) {
  auto registry = startRegistry();
  addImage(*registry);
  FaultRule limit;
  limit.status = 429;
  limit.retry_after = "0";
  limit.times = -1;
  registry->addFault(limit);
  auto client = makeClient();
  auto m = client->fetchManifest(plainEndpoint(*registry), kRepo, "1.36", {});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(m.status().message()),
              AllOf(HasSubstr("HTTP 429"), HasSubstr("TOOMANYREQUESTS"), HasSubstr("3 retries")));
  EXPECT_THAT(registry->requestsTo("/v2/library/busybox/manifests/"), SizeIs(4));
}

TEST_F(RegistryClientTest, ServerErrorsAreRetriedThenUnavailable) {
  auto registry = startRegistry();
  addImage(*registry);
  FaultRule e500;
  e500.status = 500;
  registry->addFault(e500);
  FaultRule e503;
  e503.status = 503;
  registry->addFault(e503);
  auto client = makeClient();
  RegistryEndpoint endpoint = plainEndpoint(*registry);
  auto m = client->fetchManifest(endpoint, kRepo, "1.36", {});
  ASSERT_TRUE(m.ok()) << m.status();

  FaultRule down;
  down.status = 503;
  down.times = -1;
  registry->addFault(down);
  m = client->fetchManifest(endpoint, kRepo, "1.36", {});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("HTTP 503"));
}

TEST_F(RegistryClientTest, ForbiddenIsPermissionDenied) {
  auto registry = startRegistry();
  addImage(*registry);
  FaultRule deny;
  deny.status = 403;
  registry->addFault(deny);
  auto client = makeClient();
  auto m = client->fetchManifest(plainEndpoint(*registry), kRepo, "1.36", {});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("HTTP 403 Forbidden: DENIED"));
  EXPECT_THAT(registry->requestsTo("/v2/"), SizeIs(1));  // not retried
}

// ---- auth ----

TEST_F(RegistryClientTest, BasicAuthWithUsernamePasswordOrAuthField) {
  FakeRegistryOptions options;
  options.auth = FakeAuthMode::kBasic;
  auto registry = startRegistry(options);
  addImage(*registry);
  RegistryEndpoint endpoint = plainEndpoint(*registry);

  auto anonymous = makeClient()->fetchManifest(endpoint, kRepo, "1.36", {});
  ASSERT_FALSE(anonymous.ok());
  EXPECT_EQ(anonymous.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(anonymous.status().message()), HasSubstr("requires a username"));

  Credentials creds;
  creds.username = "user";
  creds.password = "secret";
  auto m = makeClient()->fetchManifest(endpoint, kRepo, "1.36", creds);
  ASSERT_TRUE(m.ok()) << m.status();

  Credentials auth_field;
  auth_field.auth = "dXNlcjpzZWNyZXQ=";  // base64("user:secret")
  auto client = makeClient();
  m = client->fetchManifest(endpoint, kRepo, "1.36", auth_field);
  ASSERT_TRUE(m.ok()) << m.status();
  std::string got;
  ASSERT_TRUE(fetchLayer(*client, endpoint, auth_field, &got).ok());
  // The second request of the same client authenticates at once.
  auto blob_requests = registry->requestsTo("/v2/library/busybox/blobs/");
  ASSERT_THAT(blob_requests, SizeIs(1));
  EXPECT_EQ(blob_requests[0].header("authorization"), "Basic dXNlcjpzZWNyZXQ=");
}

TEST_F(RegistryClientTest, WrongBasicCredentialsAreUnauthenticated) {
  FakeRegistryOptions options;
  options.auth = FakeAuthMode::kBasic;
  auto registry = startRegistry(options);
  addImage(*registry);
  Credentials creds;
  creds.username = "user";
  creds.password = "wrong";
  auto m = makeClient()->fetchManifest(plainEndpoint(*registry), kRepo, "1.36", creds);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(m.status().message()),
              AllOf(HasSubstr("HTTP 401 Unauthorized: UNAUTHORIZED"),
                    HasSubstr("check the username and password given for " +
                              registry->hostPort())));
}

TEST_F(RegistryClientTest, BearerTokenViaGetIsCachedPerRepository) {
  FakeRegistryOptions options;
  options.auth = FakeAuthMode::kBearer;
  auto registry = startRegistry(options);
  addImage(*registry);
  auto client = makeClient();
  RegistryEndpoint endpoint = plainEndpoint(*registry);
  Credentials creds;
  creds.username = "user";
  creds.password = "secret";
  for (int i = 0; i < 2; ++i) {
    auto m = client->fetchManifest(endpoint, kRepo, "1.36", creds);
    ASSERT_TRUE(m.ok()) << m.status();
    std::string got;
    Status s = fetchLayer(*client, endpoint, creds, &got);
    ASSERT_TRUE(s.ok()) << s;
    EXPECT_TRUE(got == layer_);
  }
  EXPECT_EQ(registry->tokenRequests(), 1);
  auto token_requests = registry->requestsTo("/token");
  ASSERT_THAT(token_requests, SizeIs(1));
  EXPECT_EQ(token_requests[0].method, "GET");
  EXPECT_EQ(token_requests[0].queryParam("service"), "fake-registry");
  EXPECT_EQ(token_requests[0].queryParam("scope"), "repository:library/busybox:pull");
  EXPECT_EQ(token_requests[0].header("authorization"), "Basic dXNlcjpzZWNyZXQ=");
  EXPECT_THAT(registry->requestsTo("/v2/library/busybox/blobs/").back().header("authorization"),
              HasSubstr("Bearer tok-"));

  // Other credentials never reuse that token.
  Credentials other;
  other.username = "user";
  other.password = "wrong";
  auto m = client->fetchManifest(endpoint, kRepo, "1.36", other);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(m.status().message()),
              AllOf(HasSubstr("/token"), HasSubstr("check the username and password")));

  // A revoked token is replaced once.
  registry->revokeTokens();
  auto again = client->fetchManifest(endpoint, kRepo, "1.36", creds);
  ASSERT_TRUE(again.ok()) << again.status();
}

TEST_F(RegistryClientTest, BearerAnonymous) {
  FakeRegistryOptions options;
  options.auth = FakeAuthMode::kBearer;
  options.allow_anonymous = true;
  auto registry = startRegistry(options);
  addImage(*registry);
  auto m = makeClient()->fetchManifest(plainEndpoint(*registry), kRepo, "1.36", {});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(registry->requestsTo("/token").at(0).header("authorization"), "");
}

TEST_F(RegistryClientTest, BearerAnonymousRefusedSaysCredentialsAreNeeded) {
  FakeRegistryOptions options;
  options.auth = FakeAuthMode::kBearer;
  auto registry = startRegistry(options);
  addImage(*registry);
  auto m = makeClient()->fetchManifest(plainEndpoint(*registry), kRepo, "1.36", {});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("needs credentials"));
}

TEST_F(RegistryClientTest, IdentityTokenUsesOAuthPost) {
  FakeRegistryOptions options;
  options.auth = FakeAuthMode::kBearer;
  auto registry = startRegistry(options);
  addImage(*registry);
  Credentials creds;
  creds.username = "user";
  creds.identity_token = "refresh-secret";
  auto m = makeClient()->fetchManifest(plainEndpoint(*registry), kRepo, "1.36", creds);
  ASSERT_TRUE(m.ok()) << m.status();
  auto token_requests = registry->requestsTo("/token");
  ASSERT_THAT(token_requests, SizeIs(1));
  const HttpRequest& t = token_requests[0];
  EXPECT_EQ(t.method, "POST");
  EXPECT_EQ(t.formParam("grant_type"), "refresh_token");
  EXPECT_EQ(t.formParam("refresh_token"), "refresh-secret");
  EXPECT_EQ(t.formParam("service"), "fake-registry");
  EXPECT_EQ(t.formParam("scope"), "repository:library/busybox:pull");
  EXPECT_EQ(t.formParam("client_id"), "berth");

  creds.identity_token = "stale";
  auto bad = makeClient()->fetchManifest(plainEndpoint(*registry), kRepo, "1.36", creds);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("identity token"));
}

TEST_F(RegistryClientTest, RegistryTokenIsSentAsIs) {
  FakeRegistryOptions options;
  options.auth = FakeAuthMode::kBearer;
  auto registry = startRegistry(options);
  addImage(*registry);
  Credentials creds;
  creds.registry_token = registry->issueToken(kRepo);
  auto m = makeClient()->fetchManifest(plainEndpoint(*registry), kRepo, "1.36", creds);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(registry->tokenRequests(), 0);
  auto requests = registry->requestsTo("/v2/");
  ASSERT_THAT(requests, SizeIs(1));
  EXPECT_EQ(requests[0].header("authorization"), "Bearer " + creds.registry_token);

  creds.registry_token = "bogus";
  auto bad = makeClient()->fetchManifest(plainEndpoint(*registry), kRepo, "1.36", creds);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("registry token"));
}

TEST_F(RegistryClientTest, RedirectToAnotherHostDropsAuthorization) {
  FakeRegistryOptions options;
  options.auth = FakeAuthMode::kBasic;
  auto registry = startRegistry(options);
  addImage(*registry);
  auto storage = startRegistry();  // the "blob storage" host, no auth
  storage->addBlob(kRepo, layer_);
  FaultRule redirect;
  redirect.path_prefix = "/v2/library/busybox/blobs/";
  redirect.redirect_to = strCat("http://localhost:", storage->port());
  redirect.times = -1;
  registry->addFault(redirect);
  Credentials creds;
  creds.username = "user";
  creds.password = "secret";
  std::string got;
  Status s = fetchLayer(*makeClient(), plainEndpoint(*registry), creds, &got);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(got == layer_);
  auto at_registry = registry->requestsTo("/v2/library/busybox/blobs/");
  ASSERT_THAT(at_registry, SizeIs(2));  // 401 challenge, then authorised -> 307
  EXPECT_NE(at_registry[1].header("authorization"), "");
  auto at_storage = storage->requests();
  ASSERT_THAT(at_storage, SizeIs(1));
  EXPECT_EQ(at_storage[0].header("host"), strCat("localhost:", storage->port()));
  EXPECT_EQ(at_storage[0].header("authorization"), "");
}

TEST_F(RegistryClientTest, ConcurrentFetchesShareOneClient) {
  FakeRegistryOptions options;
  options.auth = FakeAuthMode::kBearer;
  auto registry = startRegistry(options);
  std::string digest = addImage(*registry);
  auto client = makeClient();
  Credentials creds;
  creds.username = "user";
  creds.password = "secret";
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      auto m = client->fetchManifest(plainEndpoint(*registry), kRepo, "1.36", creds);
      std::string got;
      Status s = fetchLayer(*client, plainEndpoint(*registry), creds, &got);
      if (m.ok() && m->digest == digest && s.ok() && got == layer_) ++good;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(good.load(), 8);
  EXPECT_GE(registry->tokenRequests(), 1);
  EXPECT_LE(registry->tokenRequests(), 8);
}

// ---- TLS ----

TEST_F(RegistryClientTest, HttpsWithCaFromCertsDir) {
  if (!pki().ok) GTEST_SKIP() << "openssl(1) could not make test certificates";
  FakeRegistryOptions options;
  options.tls_cert_pem_file = pki().cert();
  options.tls_key_pem_file = pki().key();
  auto registry = startRegistry(options);
  addImage(*registry);
  RegistryEndpoint endpoint{registry->hostPort(), false};
  RegistryClientOptions client_options = fastOptions();
  client_options.max_retries = 0;

  auto unknown_ca = makeClient(client_options)->fetchManifest(endpoint, kRepo, "1.36", {});
  ASSERT_FALSE(unknown_ca.ok());
  EXPECT_EQ(unknown_ca.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(unknown_ca.status().message()),
              HasSubstr(certs_.path() + "/" + registry->hostPort() + "/ca.crt"));

  std::filesystem::create_directories(certs_.path() + "/" + registry->hostPort());
  std::filesystem::copy_file(pki().ca(), certs_.path() + "/" + registry->hostPort() + "/ca.crt");
  auto client = makeClient(client_options);
  auto m = client->fetchManifest(endpoint, kRepo, "1.36", {});
  ASSERT_TRUE(m.ok()) << m.status();
  std::string got;
  ASSERT_TRUE(fetchLayer(*client, endpoint, {}, &got).ok());
  EXPECT_TRUE(got == layer_);
}

TEST_F(RegistryClientTest, InsecureEndpointSkipsVerificationAndFallsBackToHttp) {
  if (!pki().ok) GTEST_SKIP() << "openssl(1) could not make test certificates";
  RegistryClientOptions client_options = fastOptions();
  client_options.connect_timeout = std::chrono::seconds(1);
  client_options.max_retries = 0;
  auto client = makeClient(client_options);

  FakeRegistryOptions tls_options;
  tls_options.tls_cert_pem_file = pki().cert();
  tls_options.tls_key_pem_file = pki().key();
  auto tls_registry = startRegistry(tls_options);
  addImage(*tls_registry);
  auto m = client->fetchManifest({tls_registry->hostPort(), true}, kRepo, "1.36", {});
  ASSERT_TRUE(m.ok()) << m.status();

  auto plain = startRegistry();
  addImage(*plain);
  m = client->fetchManifest({plain->hostPort(), true}, kRepo, "1.36", {});
  ASSERT_TRUE(m.ok()) << m.status();
  // Later requests go straight to plain HTTP.
  std::string got;
  ASSERT_TRUE(fetchLayer(*client, {plain->hostPort(), true}, {}, &got).ok());
  EXPECT_TRUE(got == layer_);
}

TEST_F(RegistryClientTest, SecureEndpointOnPlainHttpIsAClearTlsError) {
  auto plain = startRegistry();
  addImage(*plain);
  RegistryClientOptions client_options = fastOptions();
  client_options.connect_timeout = std::chrono::seconds(1);
  auto m = makeClient(client_options)->fetchManifest({plain->hostPort(), false}, kRepo, "1.36", {});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(m.status().message()),
              AllOf(HasSubstr("TLS with " + plain->hostPort() + " failed"),
                    HasSubstr("mark it insecure")));
}

}  // namespace
}  // namespace berth::image
