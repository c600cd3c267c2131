#include "common/kube/kubeconfig.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/base64.h"
#include "tests/unit/common/kube/test_util.h"

namespace berth::kube {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;

constexpr char kCa[] = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n";
constexpr char kCert[] = "-----BEGIN CERTIFICATE-----\nCLIENT\n-----END CERTIFICATE-----\n";
constexpr char kKey[] = "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n";

std::string msg(const Status& s) { return std::string(s.message()); }

TEST(KubeconfigTest, DataFieldsAndCurrentContext) {
  TempDir dir;
  dir.write("config", strCat(R"(apiVersion: v1
kind: Config
current-context: prod
clusters:
- name: dev
  cluster:
    server: https://dev.example:6443
- name: prod-cluster
  cluster:
    server: https://10.0.0.1:6443/
    certificate-authority-data: )", base64Encode(kCa), R"(
    tls-server-name: kubernetes.default.svc
users:
- name: admin
  user:
    client-certificate-data: )", base64Encode(kCert), R"(
    client-key-data: )", base64Encode(kKey), R"(
    token: "0123"
contexts:
- name: dev
  context: {cluster: dev, user: admin}
- name: prod
  context:
    cluster: prod-cluster
    user: admin
    namespace: kube-system
)"));
  StatusOr<ClientConfig> c = loadKubeconfig(dir.file("config"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://10.0.0.1:6443");
  EXPECT_EQ(c->ca_pem, kCa);
  EXPECT_EQ(c->tls_server_name, "kubernetes.default.svc");
  EXPECT_EQ(c->client_cert_pem, kCert);
  EXPECT_EQ(c->client_key_pem, kKey);
  EXPECT_EQ(c->bearer_token, "0123");
  EXPECT_EQ(c->default_namespace, "kube-system");
  EXPECT_FALSE(c->insecure_skip_tls_verify);
  EXPECT_THAT(c->source, HasSubstr("context \"prod\""));
}

TEST(KubeconfigTest, ContextOverrideWinsOverCurrentContext) {
  TempDir dir;
  dir.write("config", R"(current-context: a
clusters:
- {name: ca, cluster: {server: "https://a:6443"}}
- {name: cb, cluster: {server: "http://b:8080", insecure-skip-tls-verify: true}}
users:
- {name: u, user: {token: tok}}
contexts:
- {name: a, context: {cluster: ca, user: u}}
- {name: b, context: {cluster: cb, user: u}}
)");
  StatusOr<ClientConfig> a = loadKubeconfig(dir.file("config"));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->server, "https://a:6443");
  EXPECT_EQ(a->default_namespace, "default");
  StatusOr<ClientConfig> b = loadKubeconfig(dir.file("config"), "b");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->server, "http://b:8080");
  EXPECT_TRUE(b->insecure_skip_tls_verify);
}

TEST(KubeconfigTest, FileFieldsResolveRelativeToTheKubeconfig) {
  TempDir dir;
  ASSERT_TRUE(fs::mkdirAll(dir.file("kube/pki")).ok());
  dir.write("kube/pki/ca.crt", kCa);
  dir.write("kube/pki/client.crt", kCert);
  dir.write("abs.key", kKey);
  dir.write("kube/token", "  file-token\n");
  dir.write("kube/config", strCat(R"(current-context: c
clusters:
- name: k
  cluster:
    server: https://k:6443
    certificate-authority: pki/ca.crt
users:
- name: u
  user:
    client-certificate: pki/client.crt
    client-key: )", dir.file("abs.key"), R"(
    tokenFile: token
contexts:
- name: c
  context: {cluster: k, user: u}
)"));
  StatusOr<ClientConfig> c = loadKubeconfig(dir.file("kube/config"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ca_pem, kCa);
  EXPECT_EQ(c->client_cert_pem, kCert);
  EXPECT_EQ(c->client_key_pem, kKey);
  EXPECT_EQ(c->token_file, dir.file("kube") + "/token");
  EXPECT_EQ(c->bearer_token, "file-token");
}

TEST(KubeconfigTest, DataFieldWinsOverFileField) {
  TempDir dir;
  dir.write("config", strCat(R"(current-context: c
clusters:
- name: k
  cluster:
    server: https://k:6443
    certificate-authority: does-not-exist.crt
    certificate-authority-data: )", base64Encode(kCa), R"(
contexts:
- {name: c, context: {cluster: k}}
)"));
  StatusOr<ClientConfig> c = loadKubeconfig(dir.file("config"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ca_pem, kCa);
  EXPECT_TRUE(c->bearer_token.empty());
}

TEST(KubeconfigTest, MissingEntriesAreNamed) {
  TempDir dir;
  const std::string base = R"(clusters:
- {name: k, cluster: {server: "https://k:6443"}}
- {name: noserver, cluster: {}}
users:
- {name: u, user: {token: t}}
contexts:
- {name: ok, context: {cluster: k, user: u}}
- {name: badcluster, context: {cluster: nope, user: u}}
- {name: baduser, context: {cluster: k, user: ghost}}
- {name: emptyserver, context: {cluster: noserver, user: u}}
)";
  dir.write("config", base);
  std::string path = dir.file("config");

  Status none = loadKubeconfig(path).status();
  EXPECT_EQ(none.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(msg(none), HasSubstr(path));
  EXPECT_THAT(msg(none), HasSubstr("no current-context"));

  Status ctx = loadKubeconfig(path, "missing").status();
  EXPECT_THAT(msg(ctx), HasSubstr("context \"missing\" is not defined in \"contexts\""));
  EXPECT_THAT(msg(ctx), HasSubstr(path));

  Status cluster = loadKubeconfig(path, "badcluster").status();
  EXPECT_THAT(msg(cluster), HasSubstr("cluster \"nope\" is not defined in \"clusters\""));

  Status user = loadKubeconfig(path, "baduser").status();
  EXPECT_THAT(msg(user), HasSubstr("user \"ghost\" is not defined in \"users\""));

  Status server = loadKubeconfig(path, "emptyserver").status();
  EXPECT_THAT(msg(server), HasSubstr("cluster \"noserver\" has no \"server\""));

  Status missing = loadKubeconfig(dir.file("nothere")).status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(msg(missing), HasSubstr("nothere"));
}

TEST(KubeconfigTest, BadBase64AndMissingFilesAreErrors) {
  TempDir dir;
  dir.write("config", R"(current-context: c
clusters:
- {name: k, cluster: {server: "https://k:6443", certificate-authority-data: "not*base64!"}}
- {name: f, cluster: {server: "https://k:6443", certificate-authority: missing-ca.crt}}
contexts:
- {name: c, context: {cluster: k}}
- {name: f, context: {cluster: f}}
)");
  Status b64 = loadKubeconfig(dir.file("config")).status();
  EXPECT_EQ(b64.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(msg(b64), HasSubstr("cluster \"k\""));
  EXPECT_THAT(msg(b64), HasSubstr("certificate-authority-data\" is not valid base64"));

  Status file = loadKubeconfig(dir.file("config"), "f").status();
  EXPECT_EQ(file.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(msg(file), HasSubstr("missing-ca.crt"));
  EXPECT_THAT(msg(file), HasSubstr("cluster \"f\""));
}

TEST(KubeconfigTest, ExecPluginOnlyUserIsUnimplemented) {
  TempDir dir;
  dir.write("config", R"(current-context: c
clusters:
- {name: k, cluster: {server: "https://k:6443"}}
users:
- name: cloud
  user:
    exec: {command: aws, apiVersion: client.authentication.k8s.io/v1}
contexts:
- {name: c, context: {cluster: k, user: cloud}}
)");
  Status s = loadKubeconfig(dir.file("config")).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(msg(s), HasSubstr("user \"cloud\""));
  EXPECT_THAT(msg(s), HasSubstr("exec"));
}

TEST(KubeconfigTest, YamlSyntaxErrorNamesTheFile) {
  TempDir dir;
  dir.write("config", "clusters: [\n");
  Status s = loadKubeconfig(dir.file("config")).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(msg(s), HasSubstr(dir.file("config") + ":"));
}

TEST(InClusterConfigTest, ReadsServiceAccountDirectory) {
  TempDir dir;
  dir.write("token", "sa-token\n");
  dir.write("ca.crt", kCa);
  dir.write("namespace", "kube-system");
  StatusOr<ClientConfig> c = inClusterConfigFrom(dir.path(), "10.96.0.1", "443");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://10.96.0.1:443");
  EXPECT_EQ(c->bearer_token, "sa-token");
  EXPECT_EQ(c->token_file, dir.file("token"));
  EXPECT_EQ(c->ca_pem, kCa);
  EXPECT_EQ(c->default_namespace, "kube-system");

  StatusOr<ClientConfig> v6 = inClusterConfigFrom(dir.path(), "fd00::1", "6443");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->server, "https://[fd00::1]:6443");
}

TEST(InClusterConfigTest, MissingPiecesAreErrors) {
  TempDir dir;
  Status env = inClusterConfigFrom(dir.path(), "", "").status();
  EXPECT_EQ(env.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(msg(env), HasSubstr("KUBERNETES_SERVICE_HOST"));

  Status token = inClusterConfigFrom(dir.path(), "10.96.0.1", "443").status();
  EXPECT_EQ(token.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(msg(token), HasSubstr(dir.file("token")));

  dir.write("token", "t");
  Status ca = inClusterConfigFrom(dir.path(), "10.96.0.1", "443").status();
  EXPECT_EQ(ca.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(msg(ca), HasSubstr("ca.crt"));

  dir.write("ca.crt", kCa);
  StatusOr<ClientConfig> ok = inClusterConfigFrom(dir.path(), "10.96.0.1", "443");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->default_namespace, "default");  // no namespace file
}

}  // namespace
}  // namespace berth::kube
