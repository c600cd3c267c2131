// The proxy's health and metrics answers over real HTTP on 127.0.0.1 (libcurl as the
// client): /healthz turns 503 after a failed sync or a change waiting too long;
// healthCheckNodePort listeners open and close with the Services and answer the local
// endpoint count; /metrics is Prometheus text with kube-proxy's metric names.
#include <curl/curl.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/http_endpoint.h"
#include "common/json.h"
#include "proxy/health.h"
#include "proxy/metrics.h"

namespace berth::proxy {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

struct Got {
  long status = 0;
  std::string body;
  std::string headers;
};

size_t append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

Got get(const std::string& url) {
  Got g;
  CURL* c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, append);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &g.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, append);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &g.headers);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 5L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &g.status);
  curl_easy_cleanup(c);
  return g;
}

TEST(HttpEndpoint, SplitsAddressesAndRejectsBadOnes) {
  std::string host;
  uint16_t port = 0;
  ASSERT_TRUE(http::splitHostPort("0.0.0.0:10256", host, port).ok());
  EXPECT_EQ(host, "0.0.0.0");
  EXPECT_EQ(port, 10256);
  ASSERT_TRUE(http::splitHostPort("[::1]:80", host, port).ok());
  EXPECT_EQ(host, "::1");
  ASSERT_TRUE(http::splitHostPort(":9", host, port).ok());
  EXPECT_EQ(host, "");
  EXPECT_THAT(std::string(http::splitHostPort("10256", host, port).message()), HasSubstr("HOST:PORT"));
  EXPECT_THAT(std::string(http::splitHostPort("1.2.3.4:70000", host, port).message()),
              HasSubstr("0 to 65535"));
  EXPECT_THAT(std::string(http::splitHostPort("node-1:80", host, port).message()),
              HasSubstr("must be an IP address"));
}

TEST(HttpEndpoint, ServesAndReportsAPortInUse) {
  auto ep = http::Endpoint::start("test", "127.0.0.1:0", [](const http::Request& r) {
    return http::Response{200, "text/plain", r.method + " " + r.path, {{"X-Test", "1"}}};
  });
  ASSERT_TRUE(ep.ok()) << ep.status();
  Got g = get("http://127.0.0.1:" + std::to_string((*ep)->port()) + "/a/b?x=1");
  EXPECT_EQ(g.status, 200);
  EXPECT_EQ(g.body, "GET /a/b");
  EXPECT_THAT(g.headers, HasSubstr("X-Test: 1"));
  auto again = http::Endpoint::start("second", "127.0.0.1:" + std::to_string((*ep)->port()),
                                     [](const http::Request&) { return http::Response{}; });
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("second: bind 127.0.0.1:"));
}

TEST(ProxyHealth, HealthyUntilAChangeWaitsTooLongOrASyncFails) {
  auto now = std::chrono::system_clock::now();
  auto t = now;
  ProxyHealth h(60s, [&] { return t; });
  EXPECT_TRUE(h.healthy());
  h.queued();
  t += 30s;
  EXPECT_TRUE(h.healthy()) << "a change younger than the timeout is fine";
  t += 31s;
  EXPECT_FALSE(h.healthy()) << "a change waiting longer than the timeout is not";
  h.synced();
  EXPECT_TRUE(h.healthy());
  h.failed("apply nftables: No such file or directory");
  EXPECT_FALSE(h.healthy());
  http::Response r = h.handle({"GET", "/healthz"});
  EXPECT_EQ(r.status, 503);
  auto body = json::parse(r.body, "healthz");
  ASSERT_TRUE(body.ok());
  EXPECT_TRUE((*body)["lastUpdated"].is_string());
  EXPECT_TRUE((*body)["currentTime"].is_string());
  EXPECT_EQ((*body)["lastError"], "apply nftables: No such file or directory");
  h.synced();
  EXPECT_EQ(h.handle({"GET", "/livez"}).status, 200);
  EXPECT_EQ(h.handle({"GET", "/other"}).status, 404);
}

TEST(ServiceHealthServers, OpenAnswerAndCloseWithTheServices) {
  ProxyHealth proxy(60s);
  ServiceHealthServers servers({"127.0.0.1"}, &proxy);
  // Free ports: let the kernel pick, then release them for the servers.
  uint16_t p1, p2;
  {
    auto a = http::Endpoint::start("probe", "127.0.0.1:0", [](const http::Request&) { return http::Response{}; });
    auto b = http::Endpoint::start("probe", "127.0.0.1:0", [](const http::Request&) { return http::Response{}; });
    ASSERT_TRUE(a.ok() && b.ok());
    p1 = (*a)->port();
    p2 = (*b)->port();
  }
  ASSERT_TRUE(servers.sync({{"default", "web", p1, 2}, {"shop", "cart", p2, 0}}).ok());
  Got web = get("http://127.0.0.1:" + std::to_string(p1) + "/");
  EXPECT_EQ(web.status, 200);
  auto body = json::parse(web.body, "health");
  ASSERT_TRUE(body.ok()) << web.body;
  EXPECT_EQ((*body)["service"]["namespace"], "default");
  EXPECT_EQ((*body)["service"]["name"], "web");
  EXPECT_EQ((*body)["localEndpoints"], 2);
  EXPECT_EQ((*body)["serviceProxyHealthy"], true);
  EXPECT_THAT(web.headers, HasSubstr("X-Load-Balancing-Endpoint-Weight: 2"));
  EXPECT_EQ(get("http://127.0.0.1:" + std::to_string(p2) + "/healthz").status, 503)
      << "no local endpoints";
  // Counts change without reopening; removed Services close their port.
  ASSERT_TRUE(servers.sync({{"default", "web", p1, 0}}).ok());
  EXPECT_EQ(get("http://127.0.0.1:" + std::to_string(p1) + "/").status, 503);
  EXPECT_EQ(get("http://127.0.0.1:" + std::to_string(p2) + "/").status, 0) << "port closed";
  EXPECT_THAT(servers.ports(), ::testing::ElementsAre(p1));
  // An unhealthy proxy makes every service answer 503.
  ASSERT_TRUE(servers.sync({{"default", "web", p1, 3}}).ok());
  proxy.failed("boom");
  EXPECT_EQ(get("http://127.0.0.1:" + std::to_string(p1) + "/").status, 503);
}

TEST(ProxyMetrics, KubeProxyNamesInTextFormat) {
  ProxyMetrics m("nftables");
  m.observeQueued();
  m.observeSync(true, 12ms, 40, 3, 7);
  m.observeSync(false, 2ms, 41, 3, 8);
  m.observeFailure();
  m.observeNetworkProgramming(300ms);
  std::string text = m.render();
  EXPECT_THAT(text, HasSubstr("kubeproxy_sync_full_proxy_rules_duration_seconds_count 1"));
  EXPECT_THAT(text, HasSubstr("kubeproxy_sync_partial_proxy_rules_duration_seconds_count 1"));
  EXPECT_THAT(text, HasSubstr("kubeproxy_sync_proxy_rules_duration_seconds_count 2"));
  EXPECT_THAT(text, HasSubstr("kubeproxy_network_programming_duration_seconds_count 1"));
  EXPECT_THAT(text, HasSubstr("kubeproxy_sync_proxy_rules_last_timestamp_seconds"));
  EXPECT_THAT(text, HasSubstr("berth_proxy_sync_failures_total 1"));
  EXPECT_THAT(text, HasSubstr("berth_proxy_rules{backend=\"nftables\"} 41"));
  EXPECT_THAT(text, HasSubstr("berth_proxy_endpoints 8"));
  EXPECT_EQ(m.handle({"GET", "/metrics"}).status, 200);
  EXPECT_EQ(m.handle({"GET", "/"}).status, 404);
}

}  // namespace
}  // namespace berth::proxy
