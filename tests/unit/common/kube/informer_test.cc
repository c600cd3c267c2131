// Informer against the fake API server: list, watch, bookmarks, 410 relist, reconnects,
// backoff, resync, stop.
#include "common/kube/informer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <mutex>

#include "tests/fixtures/fake_apiserver.h"
#include "tests/unit/common/kube/test_util.h"

namespace berth::kube {
namespace {

using berth::testing::FakeApiServer;
using testing::waitFor;
using ::testing::ElementsAre;

constexpr char kSlices[] = "/apis/discovery.k8s.io/v1/endpointslices";

Json slice(const std::string& ns, const std::string& name, const std::string& address) {
  return {{"apiVersion", "discovery.k8s.io/v1"},
          {"kind", "EndpointSlice"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"addressType", "IPv4"},
          {"endpoints", {{{"addresses", {address}}}}}};
}

// Records handler calls as "add ns/name", "update ns/name rvOld->rvNew", "delete ns/name".
class Recorder {
 public:
  ObjectHandlers handlers() {
    ObjectHandlers h;
    h.on_add = [this](const Json& o) { push("add " + objectKey(o)); };
    h.on_update = [this](const Json& a, const Json& b) {
      push("update " + objectKey(b) + " " + objectResourceVersion(a) + "->" +
           objectResourceVersion(b));
    };
    h.on_delete = [this](const Json& o) { push("delete " + objectKey(o)); };
    return h;
  }
  std::vector<std::string> events() const {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return events_.size();
  }
  bool waitForSize(size_t n) const {
    return waitFor([&] { return size() >= n; });
  }
  bool contains(const std::string& e) const {
    std::lock_guard<std::mutex> lock(mu_);
    return std::find(events_.begin(), events_.end(), e) != events_.end();
  }
  void clear() {
    std::lock_guard<std::mutex> lock(mu_);
    events_.clear();
  }

 private:
  void push(std::string e) {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(e));
  }
  mutable std::mutex mu_;
  std::vector<std::string> events_;
};

int listRequests(const FakeApiServer& fake) {
  int lists = 0;
  for (const auto& r : fake.requests()) {
    if (r.queryParam("watch").empty()) ++lists;
  }
  return lists;
}

class InformerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto fake = FakeApiServer::start();
    ASSERT_TRUE(fake.ok()) << fake.status();
    fake_ = std::move(*fake);
    ClientConfig config;
    config.server = fake_->url();
    config.request_timeout = std::chrono::seconds(10);
    auto client = ApiClient::create(config);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
  }

  std::unique_ptr<Informer> makeInformer(InformerOptions options = {}) {
    if (options.path.empty()) options.path = kSlices;
    options.backoff_base = std::chrono::milliseconds(20);
    options.backoff_cap = std::chrono::milliseconds(200);
    auto informer = Informer::create(client_.get(), options, recorder_.handlers());
    EXPECT_TRUE(informer.ok()) << informer.status();
    return informer.ok() ? std::move(*informer) : nullptr;
  }

  // The resourceVersion of the last watch request so far.
  std::string lastWatchRv() const {
    auto watches = fake_->watchRequests();
    return watches.empty() ? "" : watches.back().queryParam("resourceVersion");
  }

  std::unique_ptr<FakeApiServer> fake_;
  std::unique_ptr<ApiClient> client_;
  Recorder recorder_;
};

TEST_F(InformerTest, InitialListThenWatchAddUpdateDelete) {
  fake_->upsert(kSlices, slice("default", "a", "10.0.0.1"));
  fake_->upsert(kSlices, slice("other", "b", "10.0.0.2"));
  auto informer = makeInformer();
  EXPECT_FALSE(informer->hasSynced());
  informer->start();
  ASSERT_TRUE(informer->waitForSync(std::chrono::seconds(10)));
  EXPECT_THAT(recorder_.events(), ElementsAre("add default/a", "add other/b"));
  ASSERT_TRUE(informer->get("default", "a").has_value());
  EXPECT_EQ((*informer->get("default", "a"))["kind"], "EndpointSlice");
  EXPECT_EQ(informer->snapshot().size(), 2u);

  // The watch starts from the list's resourceVersion, with bookmarks allowed.
  ASSERT_TRUE(fake_->waitForActiveWatches(1, std::chrono::seconds(10)));
  auto watch = fake_->watchRequests().at(0);
  EXPECT_EQ(watch.queryParam("resourceVersion"), std::to_string(fake_->resourceVersion()));
  EXPECT_EQ(watch.queryParam("allowWatchBookmarks"), "true");
  EXPECT_EQ(watch.path, kSlices);

  recorder_.clear();
  Json updated = fake_->upsert(kSlices, slice("default", "a", "10.0.0.9"));
  fake_->upsert(kSlices, slice("default", "c", "10.0.0.3"));
  fake_->remove(kSlices, "other", "b");
  ASSERT_TRUE(recorder_.waitForSize(3));
  std::vector<std::string> events = recorder_.events();
  EXPECT_EQ(events[0], "update default/a 2->" + objectResourceVersion(updated));
  EXPECT_EQ(events[1], "add default/c");
  EXPECT_EQ(events[2], "delete other/b");
  EXPECT_EQ((*informer->get("default", "a"))["endpoints"][0]["addresses"][0], "10.0.0.9");
  EXPECT_FALSE(informer->get("other", "b").has_value());
  EXPECT_EQ(informer->lastResourceVersion(), std::to_string(fake_->resourceVersion()));
  informer->stop();
}

TEST_F(InformerTest, NamespaceAndSelectorsNarrowTheCollection) {
  Json labelled = slice("default", "a", "10.0.0.1");
  labelled["metadata"]["labels"] = {{"kubernetes.io/service-name", "web"}};
  fake_->upsert(kSlices, labelled);
  fake_->upsert(kSlices, slice("default", "b", "10.0.0.2"));
  fake_->upsert(kSlices, slice("other", "c", "10.0.0.3"));
  InformerOptions options;
  options.namespace_name = "default";
  options.label_selector = "kubernetes.io/service-name=web";
  auto informer = makeInformer(options);
  informer->start();
  ASSERT_TRUE(informer->waitForSync(std::chrono::seconds(10)));
  EXPECT_THAT(recorder_.events(), ElementsAre("add default/a"));
  ASSERT_TRUE(fake_->waitForActiveWatches(1, std::chrono::seconds(10)));
  auto watch = fake_->watchRequests().at(0);
  EXPECT_EQ(watch.path, "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices");
  EXPECT_EQ(watch.queryParam("labelSelector"), "kubernetes.io/service-name=web");
}

TEST_F(InformerTest, PagedInitialList) {
  for (int i = 0; i < 9; ++i) fake_->upsert(kSlices, slice("default", strCat("s", i), "10.0.0.1"));
  InformerOptions options;
  options.page_size = 4;
  auto informer = makeInformer(options);
  informer->start();
  ASSERT_TRUE(informer->waitForSync(std::chrono::seconds(10)));
  EXPECT_EQ(recorder_.size(), 9u);
  int pages = 0;
  for (const auto& r : fake_->requests()) {
    if (r.queryParam("watch").empty() && r.queryParam("limit") == "4") ++pages;
  }
  EXPECT_EQ(pages, 3);
}

TEST_F(InformerTest, BookmarkAdvancesTheResumeVersion) {
  fake_->upsert(kSlices, slice("default", "a", "10.0.0.1"));
  auto informer = makeInformer();
  informer->start();
  ASSERT_TRUE(informer->waitForSync(std::chrono::seconds(10)));
  ASSERT_TRUE(fake_->waitForActiveWatches(1, std::chrono::seconds(10)));
  std::string first_rv = lastWatchRv();

  // Other resources move the revision on; a bookmark tells the informer.
  fake_->upsert("/api/v1/services", {{"kind", "Service"}, {"metadata", {{"name", "x"}, {"namespace", "d"}}}});
  uint64_t bumped = fake_->bumpResourceVersion();
  fake_->sendBookmark();
  ASSERT_TRUE(waitFor([&] { return informer->lastResourceVersion() == std::to_string(bumped); }));
  EXPECT_EQ(recorder_.size(), 1u);  // a bookmark is not an object event

  fake_->dropWatches(true);
  ASSERT_TRUE(fake_->waitForWatchRequests(2, std::chrono::seconds(10)));
  EXPECT_NE(first_rv, std::to_string(bumped));
  EXPECT_EQ(lastWatchRv(), std::to_string(bumped));
  // No relist happened: one list request only.
  EXPECT_EQ(listRequests(*fake_), 1);
}

TEST_F(InformerTest, GoneRelistsAndDeliversDeletesMissedInTheGap) {
  fake_->upsert(kSlices, slice("default", "stays", "10.0.0.1"));
  fake_->upsert(kSlices, slice("default", "vanishes", "10.0.0.2"));
  fake_->upsert(kSlices, slice("default", "changes", "10.0.0.3"));
  auto informer = makeInformer();
  informer->start();
  ASSERT_TRUE(informer->waitForSync(std::chrono::seconds(10)));
  ASSERT_TRUE(fake_->waitForActiveWatches(1, std::chrono::seconds(10)));
  std::string old_rv = informer->lastResourceVersion();

  // The informer loses its connection and cannot reconnect (connections are cut
  // before any answer) while objects change and history is compacted.
  fake_->failNextRequests(1000000, 0);
  fake_->dropWatches(false);
  ASSERT_TRUE(waitFor([&] { return fake_->activeWatches() == 0; }));
  fake_->remove(kSlices, "default", "vanishes");
  Json changed = fake_->upsert(kSlices, slice("default", "changes", "10.0.0.33"));
  fake_->upsert(kSlices, slice("default", "new", "10.0.0.4"));
  fake_->compact();
  recorder_.clear();
  size_t watches_before = fake_->watchRequests().size();
  fake_->failNextRequests(0);

  // Its rewatch from the old version gets ERROR 410; it relists and diffs.
  ASSERT_TRUE(recorder_.waitForSize(3));
  std::vector<std::string> events = recorder_.events();
  std::sort(events.begin(), events.end());
  EXPECT_THAT(events, ElementsAre("add default/new", "delete default/vanishes",
                                  "update default/changes 4->" + objectResourceVersion(changed)));
  auto watches = fake_->watchRequests();
  ASSERT_GT(watches.size(), watches_before);
  EXPECT_EQ(watches[watches_before].queryParam("resourceVersion"), old_rv);
  EXPECT_EQ(listRequests(*fake_), 2);
  EXPECT_FALSE(informer->get("default", "vanishes").has_value());
  EXPECT_TRUE(informer->get("default", "stays").has_value());
  EXPECT_EQ(informer->snapshot().size(), 3u);
  // The next watch continues from the relist's version.
  ASSERT_TRUE(fake_->waitForWatchRequests(watches_before + 2, std::chrono::seconds(10)));
  EXPECT_EQ(lastWatchRv(), std::to_string(fake_->resourceVersion()));
}

TEST_F(InformerTest, DisconnectReconnectsAndResumesFromLastVersion) {
  auto informer = makeInformer();
  informer->start();
  ASSERT_TRUE(informer->waitForSync(std::chrono::seconds(10)));
  ASSERT_TRUE(fake_->waitForActiveWatches(1, std::chrono::seconds(10)));
  fake_->upsert(kSlices, slice("default", "a", "10.0.0.1"));
  ASSERT_TRUE(recorder_.waitForSize(1));
  std::string rv = informer->lastResourceVersion();

  fake_->dropWatches(false);  // cut mid-stream
  ASSERT_TRUE(fake_->waitForWatchRequests(2, std::chrono::seconds(10)));
  EXPECT_EQ(lastWatchRv(), rv);
  ASSERT_TRUE(fake_->waitForActiveWatches(1, std::chrono::seconds(10)));
  fake_->upsert(kSlices, slice("default", "b", "10.0.0.2"));
  ASSERT_TRUE(recorder_.waitForSize(2));
  EXPECT_THAT(recorder_.events(), ElementsAre("add default/a", "add default/b"));

  fake_->dropWatches(true);  // clean end of stream (server timeout)
  ASSERT_TRUE(fake_->waitForWatchRequests(3, std::chrono::seconds(10)));
  EXPECT_EQ(lastWatchRv(), informer->lastResourceVersion());
}

TEST_F(InformerTest, ServerErrorsBackOffThenSucceed) {
  fake_->upsert(kSlices, slice("default", "a", "10.0.0.1"));
  fake_->failNextRequests(4, 500);
  auto start = std::chrono::steady_clock::now();
  auto informer = makeInformer();
  informer->start();
  ASSERT_TRUE(informer->waitForSync(std::chrono::seconds(10)));
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_THAT(recorder_.events(), ElementsAre("add default/a"));
  // Four failures at base 20 ms doubling (capped at 200 ms), 50-100% jitter: at least
  // (20+40+80+160)/2 = 150 ms of backoff.
  EXPECT_GE(elapsed, std::chrono::milliseconds(150));
  EXPECT_LT(elapsed, std::chrono::seconds(5));
  // Five list attempts reached the server.
  EXPECT_EQ(listRequests(*fake_), 5);
}

TEST_F(InformerTest, ResyncRedeliversCachedObjects) {
  fake_->upsert(kSlices, slice("default", "a", "10.0.0.1"));
  fake_->upsert(kSlices, slice("default", "b", "10.0.0.2"));
  InformerOptions options;
  options.resync_period = std::chrono::milliseconds(100);
  auto informer = makeInformer(options);
  informer->start();
  ASSERT_TRUE(informer->waitForSync(std::chrono::seconds(10)));
  ASSERT_TRUE(waitFor([&] {
    return recorder_.contains("update default/a 2->2") && recorder_.contains("update default/b 3->3");
  }));
  informer->stop();
  size_t n = recorder_.size();
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  EXPECT_EQ(recorder_.size(), n);  // nothing after stop
}

TEST_F(InformerTest, StopIsPromptDuringAWatchAndDuringBackoff) {
  auto informer = makeInformer();
  informer->start();
  ASSERT_TRUE(informer->waitForSync(std::chrono::seconds(10)));
  ASSERT_TRUE(fake_->waitForActiveWatches(1, std::chrono::seconds(10)));
  auto start = std::chrono::steady_clock::now();
  informer->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
  EXPECT_TRUE(waitFor([&] { return fake_->activeWatches() == 0; }));

  // An informer sleeping in a long backoff stops at once too.
  fake_->failNextRequests(1000, 500);
  InformerOptions options;
  options.path = kSlices;
  options.backoff_base = std::chrono::seconds(30);
  options.backoff_cap = std::chrono::seconds(60);
  auto slow = Informer::create(client_.get(), options, recorder_.handlers());
  ASSERT_TRUE(slow.ok());
  (*slow)->start();
  ASSERT_TRUE(waitFor([&] { return fake_->requests().size() >= 3; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  start = std::chrono::steady_clock::now();
  (*slow)->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
  EXPECT_FALSE((*slow)->hasSynced());
}

}  // namespace
}  // namespace berth::kube
