// The Proxier fed by its real sources, with a recording backend (no kernel): the test
// API server (list/watch JSON lines, bookmarks, 410 Gone) and a manifest directory.
// Objects reach the programmed state, watch updates and deletes follow, a relist after
// 410 catches a delete missed while disconnected, and a bad object is named and
// skipped while the rest is still programmed.
#include "proxy/proxy_sources.h"

#include <unistd.h>

#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/fs.h"
#include "common/kube/kubeconfig.h"
#include "tests/fixtures/fake_apiserver.h"

namespace berth::proxy {
namespace {

using namespace std::chrono_literals;
using json::Json;

class RecordingBackend : public RuleBackend {
 public:
  std::string name() const override { return "recording"; }
  StatusOr<int> sync(const ProxyState& state, const ChangedSet&, bool) override {
    std::lock_guard<std::mutex> lock(mu_);
    last_ = state;
    ++syncs_;
    return static_cast<int>(state.ports.size());
  }
  Status cleanup() override { return absl::OkStatus(); }
  // "ns/name:port -> ip:port,ip:port" of the last sync, sorted.
  std::vector<std::string> programmed() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> out;
    for (const auto& sp : last_.ports) {
      std::string eps;
      for (const auto& e : sp.cluster_endpoints) eps += (eps.empty() ? "" : ",") + e.str();
      out.push_back(sp.name.str() + " -> " + eps);
    }
    return out;
  }

 private:
  std::mutex mu_;
  ProxyState last_;
  int syncs_ = 0;
};

Json service(const std::string& name, const std::string& ip) {
  return {{"apiVersion", "v1"}, {"kind", "Service"},
          {"metadata", {{"namespace", "default"}, {"name", name}}},
          {"spec", {{"clusterIP", ip}, {"ports", {{{"name", "http"}, {"port", 80}}}}}}};
}

Json slice(const std::string& svc, const std::vector<std::string>& ips) {
  Json eps = Json::array();
  for (const auto& ip : ips) eps.push_back({{"addresses", {ip}}});
  return {{"apiVersion", "discovery.k8s.io/v1"}, {"kind", "EndpointSlice"},
          {"metadata", {{"namespace", "default"}, {"name", svc + "-1"},
                        {"labels", {{"kubernetes.io/service-name", svc}}}}},
          {"addressType", "IPv4"}, {"endpoints", eps},
          {"ports", {{{"name", "http"}, {"port", 8080}}}}};
}

bool eventually(const std::function<bool()>& f, std::chrono::milliseconds timeout = 5s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (f()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return f();
}

std::unique_ptr<Proxier> makeProxier(RecordingBackend** backend) {
  auto b = std::make_unique<RecordingBackend>();
  *backend = b.get();
  ProxierOptions o;
  o.node.node_name = "node-a";
  o.runner.min_interval = 0ms;
  o.conntrack_cleanup = false;
  o.health_check_hosts = {"127.0.0.1"};
  auto p = Proxier::create(o, std::move(b));
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? std::move(*p) : nullptr;
}

TEST(ProxySource, ApiServerListWatchRelistAndBadObjects) {
  auto fake = testing::FakeApiServer::start();
  ASSERT_TRUE(fake.ok()) << fake.status();
  auto& api = **fake;
  api.upsert("/api/v1/services", service("web", "10.96.0.10"));
  api.upsert("/apis/discovery.k8s.io/v1/endpointslices", slice("web", {"10.244.0.2", "10.244.0.3"}));

  RecordingBackend* backend = nullptr;
  auto proxier = makeProxier(&backend);
  ASSERT_TRUE(proxier);
  kube::ClientConfig cfg;
  cfg.server = api.url();
  auto client = kube::ApiClient::create(cfg);
  ASSERT_TRUE(client.ok()) << client.status();
  auto source = ProxySource::fromApiServer(client->get(), proxier.get());
  ASSERT_TRUE(source.ok()) << source.status();
  proxier->start();
  (*source)->start();
  ASSERT_TRUE(eventually([&] { return (*source)->hasSynced(); }));
  EXPECT_TRUE(eventually([&] {
    return backend->programmed() ==
           std::vector<std::string>{"default/web:http -> 10.244.0.2:8080,10.244.0.3:8080"};
  })) << ::testing::PrintToString(backend->programmed());

  // A watch update, a new Service, and a bad one that is skipped by name.
  api.upsert("/apis/discovery.k8s.io/v1/endpointslices", slice("web", {"10.244.0.4"}));
  api.upsert("/api/v1/services", service("db", "10.96.0.20"));
  api.upsert("/api/v1/services", service("broken", "10.96.0.999"));
  EXPECT_TRUE(eventually([&] {
    return backend->programmed() ==
           std::vector<std::string>{"default/db:http -> ", "default/web:http -> 10.244.0.4:8080"};
  })) << ::testing::PrintToString(backend->programmed());
  EXPECT_TRUE(eventually([&] { return proxier->rejectedObjects().count("service default/broken") == 1; }));
  EXPECT_THAT(proxier->rejectedObjects()["service default/broken"], ::testing::HasSubstr("10.96.0.999"));

  // Disconnected while "db" is deleted and history compacted: the rewatch gets 410,
  // the relist notices the delete.
  ASSERT_TRUE(api.waitForActiveWatches(2, 5s));
  api.remove("/api/v1/services", "default", "db");
  api.compact();
  api.dropWatches(false);
  EXPECT_TRUE(eventually([&] {
    return backend->programmed() == std::vector<std::string>{"default/web:http -> 10.244.0.4:8080"};
  }, 10s)) << ::testing::PrintToString(backend->programmed());
  (*source)->stop();
  proxier->stop();
}

TEST(ProxySource, ManifestDirectoryAddsUpdatesAndDeletes) {
  char tmpl[] = "/tmp/berth-proxy-manifests-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  RecordingBackend* backend = nullptr;
  auto proxier = makeProxier(&backend);
  ASSERT_TRUE(proxier);
  auto source = ProxySource::fromManifests(dir, proxier.get());
  ASSERT_TRUE(source.ok()) << source.status();
  proxier->start();
  (*source)->start();
  std::string yaml =
      "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  clusterIP: 10.96.0.10\n"
      "  ports: [{name: http, port: 80}]\n---\n"
      "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-1\n"
      "  labels: {kubernetes.io/service-name: web}\naddressType: IPv4\n"
      "endpoints: [{addresses: [10.244.0.2]}]\nports: [{name: http, port: 8080}]\n";
  ASSERT_TRUE(fs::writeFileAtomic(dir + "/web.yaml", yaml).ok());
  EXPECT_TRUE(eventually([&] {
    return backend->programmed() == std::vector<std::string>{"default/web:http -> 10.244.0.2:8080"};
  })) << ::testing::PrintToString(backend->programmed());
  ASSERT_TRUE(fs::writeFileAtomic(dir + "/broken.yaml", "kind: Service\nmetadata: {name: [oops\n").ok());
  ASSERT_EQ(::unlink((dir + "/web.yaml").c_str()), 0);
  EXPECT_TRUE(eventually([&] { return backend->programmed().empty(); }))
      << ::testing::PrintToString(backend->programmed());
  (*source)->stop();
  proxier->stop();
  (void)fs::removeAll(dir);
}

}  // namespace
}  // namespace berth::proxy
