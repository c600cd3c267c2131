// ApiClient over TLS against the fake API server: CA verification from in-memory PEM,
// a wrong CA refused, client certificates, tls-server-name.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/kube/client.h"
#include "tests/fixtures/fake_apiserver.h"

namespace berth::kube {
namespace {

using ::testing::HasSubstr;
using berth::testing::FakeApiServer;
using berth::testing::FakeApiServerOptions;

std::unique_ptr<FakeApiServer> startTls(bool client_cert) {
  FakeApiServerOptions options;
  options.tls = true;
  options.require_client_cert = client_cert;
  auto fake = FakeApiServer::start(options);
  EXPECT_TRUE(fake.ok()) << fake.status();
  return fake.ok() ? std::move(*fake) : nullptr;
}

StatusOr<Json> getNodes(const ClientConfig& config) {
  ASSIGN_OR_RETURN(auto client, ApiClient::create(config));
  return client->get("/api/v1/nodes");
}

TEST(ApiClientTlsTest, VerifiesTheServerWithTheConfiguredCa) {
  auto fake = startTls(false);
  ASSERT_NE(fake, nullptr);
  ClientConfig config;
  config.server = fake->url();
  config.ca_pem = fake->pki().ca_cert_pem;
  StatusOr<Json> nodes = getNodes(config);
  ASSERT_TRUE(nodes.ok()) << nodes.status();
  EXPECT_TRUE((*nodes)["items"].is_array());
}

TEST(ApiClientTlsTest, WrongCaIsRefused) {
  auto fake = startTls(false);
  ASSERT_NE(fake, nullptr);
  StatusOr<berth::testing::TestPki> other = berth::testing::makeTestPki();
  ASSERT_TRUE(other.ok());
  ClientConfig config;
  config.server = fake->url();
  config.ca_pem = other->ca_cert_pem;
  Status s = getNodes(config).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(s.message()), HasSubstr("GET /api/v1/nodes"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("certificate"));
  // Nothing reached the handler.
  EXPECT_TRUE(fake->requests().empty());

  config.insecure_skip_tls_verify = true;
  EXPECT_TRUE(getNodes(config).ok());
}

TEST(ApiClientTlsTest, TlsServerNameIsVerifiedInsteadOfTheHost) {
  auto fake = startTls(false);
  ASSERT_NE(fake, nullptr);
  ClientConfig config;
  config.server = fake->url();
  config.ca_pem = fake->pki().ca_cert_pem;
  config.tls_server_name = "kubernetes.default.svc";  // in the certificate's SANs
  StatusOr<Json> nodes = getNodes(config);
  EXPECT_TRUE(nodes.ok()) << nodes.status();
  config.tls_server_name = "not-in-the-cert.example";
  EXPECT_EQ(getNodes(config).status().code(), absl::StatusCode::kUnavailable);
}

TEST(ApiClientTlsTest, ClientCertificateFromMemory) {
  auto fake = startTls(true);
  ASSERT_NE(fake, nullptr);
  ClientConfig config;
  config.server = fake->url();
  config.ca_pem = fake->pki().ca_cert_pem;
  Status without = getNodes(config).status();
  EXPECT_EQ(without.code(), absl::StatusCode::kUnavailable);

  config.client_cert_pem = fake->pki().client_cert_pem;
  config.client_key_pem = fake->pki().client_key_pem;
  StatusOr<Json> with = getNodes(config);
  EXPECT_TRUE(with.ok()) << with.status();
}

TEST(ApiClientTlsTest, WatchOverTls) {
  auto fake = startTls(false);
  ASSERT_NE(fake, nullptr);
  fake->upsert("/api/v1/nodes", {{"kind", "Node"}, {"metadata", {{"name", "n1"}}}});
  ClientConfig config;
  config.server = fake->url();
  config.ca_pem = fake->pki().ca_cert_pem;
  auto client = ApiClient::create(config);
  ASSERT_TRUE(client.ok());
  CancelToken cancel;
  std::string name;
  Status s = (*client)->watch(
      "/api/v1/nodes", WatchOptions{},
      [&](WatchEvent&& e) {
        name = e.object["metadata"]["name"];
        cancel.cancel();
        return absl::OkStatus();
      },
      &cancel);
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(name, "n1");
}

}  // namespace
}  // namespace berth::kube
