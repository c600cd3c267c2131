// ApiClient against the fake API server over loopback HTTP (no mock of the client).
#include "common/kube/client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>

#include <atomic>
#include <thread>

#include "tests/fixtures/fake_apiserver.h"
#include "tests/unit/common/kube/test_util.h"

namespace berth::kube {
namespace {

using ::testing::HasSubstr;
using berth::testing::FakeApiServer;
using testing::TempDir;
using testing::waitFor;

constexpr char kServices[] = "/api/v1/services";

Json service(const std::string& ns, const std::string& name, int port = 80,
             Json labels = Json::object()) {
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", {{"name", name}, {"namespace", ns}, {"labels", labels}}},
          {"spec", {{"ports", {{{"port", port}}}}}}};
}

struct HttpRequestLite {
  std::string limit;
  std::string cont;
  bool after_expired = false;  // a continued page was asked for before it
};

// The last list request, and whether a continued page came before it.
HttpRequestLite lastList(const FakeApiServer& fake) {
  HttpRequestLite out;
  bool saw_continue = false;
  for (const auto& r : fake.requests()) {
    if (r.method != "GET" || !r.queryParam("watch").empty()) continue;
    out.limit = r.queryParam("limit");
    out.cont = r.queryParam("continue");
    out.after_expired = saw_continue;
    if (!out.cont.empty()) saw_continue = true;
  }
  return out;
}

class ApiClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto fake = FakeApiServer::start();
    ASSERT_TRUE(fake.ok()) << fake.status();
    fake_ = std::move(*fake);
    client_ = makeClient();
  }

  std::unique_ptr<ApiClient> makeClient(ClientConfig config = {}) {
    config.server = fake_->url();
    config.request_timeout = std::chrono::seconds(10);
    auto client = ApiClient::create(std::move(config));
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(*client) : nullptr;
  }

  std::unique_ptr<FakeApiServer> fake_;
  std::unique_ptr<ApiClient> client_;
};

TEST_F(ApiClientTest, CreateGetUpdatePatchDelete) {
  StatusOr<Json> created =
      client_->create("/api/v1/namespaces/default/services", service("default", "web"));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ((*created)["metadata"]["name"], "web");
  std::string rv1 = (*created)["metadata"]["resourceVersion"];
  EXPECT_FALSE(rv1.empty());

  StatusOr<Json> got = client_->get("/api/v1/namespaces/default/services/web");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ((*got)["spec"]["ports"][0]["port"], 80);

  Json changed = *got;
  changed["spec"]["ports"][0]["port"] = 8080;
  StatusOr<Json> updated = client_->update("/api/v1/namespaces/default/services/web", changed);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ((*updated)["spec"]["ports"][0]["port"], 8080);
  EXPECT_NE((*updated)["metadata"]["resourceVersion"], rv1);

  // A write based on the stale object is a conflict (Aborted), naming the path.
  Status stale = client_->update("/api/v1/namespaces/default/services/web", *got).status();
  EXPECT_EQ(stale.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(std::string(stale.message()),
              HasSubstr("PUT /api/v1/namespaces/default/services/web: 409 Conflict"));

  StatusOr<Json> merged = client_->patch("/api/v1/namespaces/default/services/web",
                                         PatchType::kMerge,
                                         {{"metadata", {{"labels", {{"app", "web"}}}}}});
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ((*merged)["metadata"]["labels"]["app"], "web");
  EXPECT_EQ((*merged)["spec"]["ports"][0]["port"], 8080);

  StatusOr<Json> strategic = client_->patch("/api/v1/namespaces/default/services/web",
                                            PatchType::kStrategicMerge,
                                            {{"spec", {{"type", "NodePort"}}}});
  ASSERT_TRUE(strategic.ok()) << strategic.status();
  EXPECT_EQ((*strategic)["spec"]["type"], "NodePort");

  StatusOr<Json> json_patch = client_->patch(
      "/api/v1/namespaces/default/services/web", PatchType::kJsonPatch,
      Json::array({{{"op", "replace"}, {"path", "/spec/ports/0/port"}, {"value", 9090}}}));
  ASSERT_TRUE(json_patch.ok()) << json_patch.status();
  EXPECT_EQ((*json_patch)["spec"]["ports"][0]["port"], 9090);

  // The content types went out as the API expects them.
  std::vector<std::string> patch_types;
  for (const auto& r : fake_->requests()) {
    if (r.method == "PATCH") patch_types.push_back(r.header("content-type"));
  }
  EXPECT_THAT(patch_types, ::testing::ElementsAre("application/merge-patch+json",
                                                  "application/strategic-merge-patch+json",
                                                  "application/json-patch+json"));

  StatusOr<Json> removed = client_->remove("/api/v1/namespaces/default/services/web");
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_FALSE(fake_->object(kServices, "default", "web").has_value());

  Status missing = client_->get("/api/v1/namespaces/default/services/web").status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(std::string(missing.message()),
            "kube API GET /api/v1/namespaces/default/services/web: 404 NotFound: services "
            "\"web\" not found");
  EXPECT_EQ(client_->remove("/api/v1/namespaces/default/services/web").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ApiClientTest, CreateExistingIsAlreadyExists) {
  ASSERT_TRUE(client_->create("/api/v1/namespaces/default/services", service("default", "a")).ok());
  Status again =
      client_->create("/api/v1/namespaces/default/services", service("default", "a")).status();
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(again.message()), HasSubstr("POST /api/v1/namespaces/default/services"));
  EXPECT_THAT(std::string(again.message()), HasSubstr("already exists"));
}

TEST_F(ApiClientTest, ListFollowsContinueTokens) {
  for (int i = 0; i < 7; ++i) {
    fake_->upsert(kServices, service(i % 2 ? "a" : "b", strCat("svc", i), 80,
                                     {{"app", i < 5 ? "web" : "db"}}));
  }
  ListOptions options;
  options.limit = 2;
  StatusOr<ListResult> all = client_->list(kServices, options);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->items.size(), 7u);
  EXPECT_EQ(all->resource_version, std::to_string(fake_->resourceVersion()));
  // Items get kind and apiVersion back from the list.
  EXPECT_EQ(all->items[0]["kind"], "Service");
  EXPECT_EQ(all->items[0]["apiVersion"], "v1");
  int pages = 0;
  for (const auto& r : fake_->requests()) {
    if (r.method == "GET" && r.path == kServices) ++pages;
  }
  EXPECT_EQ(pages, 4);  // 2+2+2+1

  options.all_pages = false;
  StatusOr<ListResult> one = client_->list(kServices, options);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->items.size(), 2u);
  EXPECT_FALSE(one->continue_token.empty());
  ListOptions rest = options;
  rest.continue_token = one->continue_token;
  rest.all_pages = true;
  StatusOr<ListResult> remaining = client_->list(kServices, rest);
  ASSERT_TRUE(remaining.ok());
  EXPECT_EQ(remaining->items.size(), 5u);

  ListOptions selected;
  selected.label_selector = "app=web";
  selected.field_selector = "metadata.namespace=a";
  StatusOr<ListResult> filtered = client_->list(kServices, selected);
  ASSERT_TRUE(filtered.ok());
  EXPECT_EQ(filtered->items.size(), 2u);  // svc1, svc3
  for (const Json& item : filtered->items) EXPECT_EQ(item["metadata"]["namespace"], "a");

  StatusOr<ListResult> ns = client_->list("/api/v1/namespaces/b/services");
  ASSERT_TRUE(ns.ok());
  EXPECT_EQ(ns->items.size(), 4u);
}

TEST_F(ApiClientTest, ExpiredContinueTokenFallsBackToAFullList) {
  for (int i = 0; i < 5; ++i) fake_->upsert(kServices, service("default", strCat("s", i)));
  ListOptions options;
  options.limit = 2;
  options.all_pages = false;
  StatusOr<ListResult> first = client_->list(kServices, options);
  ASSERT_TRUE(first.ok());
  fake_->upsert(kServices, service("default", "late"));
  fake_->compact();
  // Continuing by hand from an expired token is Gone...
  ListOptions cont = options;
  cont.continue_token = first->continue_token;
  Status gone = client_->list(kServices, cont).status();
  EXPECT_TRUE(isGone(gone)) << gone;
  // ...while a paging list restarts without a limit when its token expires mid-way.
  options.all_pages = true;
  fake_->compactAfterNextListPage();
  StatusOr<ListResult> all = client_->list(kServices, options);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->items.size(), 6u);
  // The last request was the fallback: no limit, no continue token.
  HttpRequestLite last = lastList(*fake_);
  EXPECT_EQ(last.limit, "");
  EXPECT_EQ(last.cont, "");
  EXPECT_TRUE(last.after_expired);
}

TEST_F(ApiClientTest, ServerErrorsMapToUnavailable) {
  fake_->failNextRequests(1, 500);
  Status s = client_->get("/api/v1/namespaces/default/services/x").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(httpCodeOf(s), 500);
  EXPECT_THAT(std::string(s.message()), HasSubstr("injected failure"));

  fake_->failNextRequests(1, 403);
  Status forbidden = client_->get("/api/v1/nodes").status();
  EXPECT_EQ(forbidden.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(reasonOf(forbidden), "Forbidden");

  fake_->failNextRequests(1, 429);
  EXPECT_EQ(client_->get("/api/v1/nodes").status().code(), absl::StatusCode::kUnavailable);
  // After the injected failures the same call succeeds.
  EXPECT_TRUE(client_->get("/api/v1/nodes").ok());
}

TEST_F(ApiClientTest, ConnectionRefusedIsUnavailable) {
  std::string url = fake_->url();
  fake_.reset();
  ClientConfig config;
  config.server = url;
  config.connect_timeout = std::chrono::seconds(2);
  auto client = ApiClient::create(config);
  ASSERT_TRUE(client.ok());
  Status s = (*client)->get("/api/v1/nodes").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(s.message()), HasSubstr("GET /api/v1/nodes"));
}

TEST_F(ApiClientTest, BearerTokenIsSentAndRotatedTokenFileReRead) {
  TempDir dir;
  dir.write("token", "first\n");
  fake_->requireBearerTokens({"first"});
  ClientConfig config;
  config.token_file = dir.file("token");
  config.bearer_token = "first";
  auto client = makeClient(config);
  ASSERT_TRUE(client->list("/api/v1/nodes").ok());
  EXPECT_EQ(fake_->requests().back().header("authorization"), "Bearer first");

  // The token rotates: the server accepts only the new one, kubelet rewrote the file.
  fake_->requireBearerTokens({"second"});
  dir.write("token", "second\n");
  StatusOr<ListResult> after = client->list("/api/v1/nodes");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(fake_->requests().back().header("authorization"), "Bearer second");

  // A wrong token is Unauthenticated, with the server's message.
  fake_->requireBearerTokens({"third"});
  Status denied = client->list("/api/v1/nodes").status();
  EXPECT_EQ(denied.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(denied.message()), HasSubstr("401 Unauthorized"));
}

TEST_F(ApiClientTest, TokenFileReReadOn401EvenWithoutAStatChange) {
  // No token file change detected by stat is needed when the server says 401: the
  // client re-reads the file once and retries.
  TempDir dir;
  dir.write("token", "old");
  ClientConfig config;
  config.token_file = dir.file("token");
  auto client = makeClient(config);
  ASSERT_TRUE(client->list("/api/v1/nodes").ok());
  EXPECT_EQ(fake_->requests().back().header("authorization"), "Bearer old");
  // Rewrite in place with the same size and put the old mtime back: stat sees nothing.
  struct stat before {};
  ASSERT_EQ(::stat(dir.file("token").c_str(), &before), 0);
  ASSERT_TRUE(fs::writeFile(dir.file("token"), "new").ok());
  timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, dir.file("token").c_str(), times, 0), 0);
  fake_->requireBearerTokens({"new"});
  ASSERT_TRUE(client->list("/api/v1/nodes").ok());
  EXPECT_EQ(fake_->requests().back().header("authorization"), "Bearer new");
}

TEST_F(ApiClientTest, WatchDeliversEventsAcrossTinyChunks) {
  fake_->upsert(kServices, service("default", "before"));
  std::string rv = std::to_string(fake_->resourceVersion());
  fake_->setWatchChunkBytes(3);
  std::vector<WatchEvent> events;
  CancelToken cancel;
  std::thread writer([&] {
    ASSERT_TRUE(fake_->waitForActiveWatches(1, std::chrono::seconds(10)));
    fake_->upsert(kServices, service("default", "a"));
    fake_->upsert(kServices, service("default", "a", 81));
    fake_->remove(kServices, "default", "a");
  });
  WatchOptions options;
  options.resource_version = rv;
  Status s = client_->watch(
      kServices, options,
      [&](WatchEvent&& e) {
        events.push_back(std::move(e));
        if (events.size() == 3) cancel.cancel();
        return absl::OkStatus();
      },
      &cancel);
  writer.join();
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].type, "ADDED");
  EXPECT_EQ(events[0].object["metadata"]["name"], "a");
  EXPECT_EQ(events[1].type, "MODIFIED");
  EXPECT_EQ(events[1].object["spec"]["ports"][0]["port"], 81);
  EXPECT_EQ(events[2].type, "DELETED");
  auto watches = fake_->watchRequests();
  ASSERT_EQ(watches.size(), 1u);
  EXPECT_EQ(watches[0].queryParam("resourceVersion"), rv);
}

TEST_F(ApiClientTest, WatchFromZeroStartsWithCurrentObjectsAndEndsOnServerTimeout) {
  fake_->upsert(kServices, service("default", "a"));
  fake_->upsert(kServices, service("other", "b"));
  std::vector<std::string> names;
  WatchOptions options;
  options.timeout_seconds = 1;
  options.field_selector = "metadata.namespace=default";
  Status s = client_->watch(kServices, options, [&](WatchEvent&& e) {
    names.push_back(e.type + " " + e.object["metadata"]["name"].get<std::string>());
    return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;  // the server ended the stream after timeoutSeconds
  EXPECT_THAT(names, ::testing::ElementsAre("ADDED a"));
  EXPECT_EQ(fake_->watchRequests().at(0).queryParam("timeoutSeconds"), "1");
}

TEST_F(ApiClientTest, WatchTooOldResourceVersionIsGone) {
  fake_->upsert(kServices, service("default", "a"));
  fake_->compact();
  WatchOptions options;
  options.resource_version = "1";
  int events = 0;
  Status s = client_->watch(kServices, options, [&](WatchEvent&&) {
    ++events;
    return absl::OkStatus();
  });
  EXPECT_TRUE(isGone(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("too old resource version"));
  EXPECT_EQ(events, 0);
}

TEST_F(ApiClientTest, WatchCutMidStreamIsUnavailable) {
  std::thread dropper([&] {
    ASSERT_TRUE(fake_->waitForActiveWatches(1, std::chrono::seconds(10)));
    fake_->upsert(kServices, service("default", "a"));
    ASSERT_TRUE(waitFor([&] { return fake_->resourceVersion() >= 2; }));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    fake_->dropWatches(false);
  });
  WatchOptions options;
  options.resource_version = std::to_string(fake_->resourceVersion());
  int events = 0;
  Status s = client_->watch(kServices, options, [&](WatchEvent&&) {
    ++events;
    return absl::OkStatus();
  });
  dropper.join();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_EQ(events, 1);
}

TEST_F(ApiClientTest, CancelEndsAnIdleWatchPromptly) {
  CancelToken cancel;
  std::thread canceller([&] {
    ASSERT_TRUE(fake_->waitForActiveWatches(1, std::chrono::seconds(10)));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    cancel.cancel();
  });
  auto start = std::chrono::steady_clock::now();
  Status s = client_->watch(kServices, WatchOptions{}, [](WatchEvent&&) { return absl::OkStatus(); },
                            &cancel);
  auto elapsed = std::chrono::steady_clock::now() - start;
  canceller.join();
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled);
  EXPECT_LT(elapsed, std::chrono::milliseconds(900));
  // The server sees the connection go away.
  EXPECT_TRUE(waitFor([&] { return fake_->activeWatches() == 0; }));
}

TEST_F(ApiClientTest, WatchHttpErrorIsMapped) {
  fake_->failNextRequests(1, 503);
  Status s = client_->watch(kServices, WatchOptions{}, [](WatchEvent&&) { return absl::OkStatus(); });
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(httpCodeOf(s), 503);
  EXPECT_THAT(std::string(s.message()), HasSubstr("watch /api/v1/services: 503"));
}

TEST_F(ApiClientTest, ConcurrentCallsFromManyThreads) {
  for (int i = 0; i < 10; ++i) fake_->upsert(kServices, service("default", strCat("s", i)));
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        auto got = client_->get(strCat("/api/v1/namespaces/default/services/s", (t + i) % 10));
        if (got.ok()) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 80);
}

TEST(ApiClientConfigTest, CreateValidatesConfig) {
  ClientConfig bad_url;
  bad_url.server = "ftp://x";
  EXPECT_EQ(ApiClient::create(bad_url).status().code(), absl::StatusCode::kInvalidArgument);
  ClientConfig bad_ca;
  bad_ca.server = "https://x:6443";
  bad_ca.ca_pem = "not pem";
  EXPECT_THAT(std::string(ApiClient::create(bad_ca).status().message()),
              HasSubstr("certificate authority is not PEM"));
  ClientConfig half_cert;
  half_cert.server = "https://x:6443";
  half_cert.client_cert_pem = "-----BEGIN CERTIFICATE-----\n";
  EXPECT_FALSE(ApiClient::create(half_cert).ok());
}

}  // namespace
}  // namespace berth::kube
