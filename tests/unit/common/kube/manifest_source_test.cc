// ManifestSource over a temp directory: inotify-driven add/update/delete, bad files
// keep their previous objects, Lists and multi-document files, periodic rescan.
#include "common/kube/manifest_source.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <mutex>

#include "tests/unit/common/kube/test_util.h"

namespace berth::kube {
namespace {

using testing::TempDir;
using testing::waitFor;
using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

class Recorder {
 public:
  ObjectHandlers handlers(const std::string& kind) {
    ObjectHandlers h;
    h.on_add = [this, kind](const Json& o) { push("add " + kind + " " + objectKey(o)); };
    h.on_update = [this, kind](const Json&, const Json& o) {
      push("update " + kind + " " + objectKey(o));
    };
    h.on_delete = [this, kind](const Json& o) { push("delete " + kind + " " + objectKey(o)); };
    return h;
  }
  std::vector<std::string> take() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::exchange(events_, {});
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return events_.size();
  }

 private:
  void push(std::string e) {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(e));
  }
  mutable std::mutex mu_;
  std::vector<std::string> events_;
};

constexpr char kWeb[] = R"(apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  ports:
  - port: 80
    targetPort: "8080"
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: default
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
endpoints:
- addresses: [10.1.0.5]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ignored}
)";

class ManifestSourceTest : public ::testing::Test {
 protected:
  std::unique_ptr<ManifestSource> make(std::chrono::milliseconds rescan = std::chrono::seconds(30)) {
    ManifestSourceOptions options;
    options.dir = dir_.path();
    options.kinds["Service"] = recorder_.handlers("Service");
    options.kinds["EndpointSlice"] = recorder_.handlers("EndpointSlice");
    options.rescan_period = rescan;
    options.debounce = std::chrono::milliseconds(20);
    auto source = ManifestSource::create(options);
    EXPECT_TRUE(source.ok()) << source.status();
    return source.ok() ? std::move(*source) : nullptr;
  }

  // Waits until `n` events arrived and returns them.
  std::vector<std::string> waitEvents(size_t n) {
    EXPECT_TRUE(waitFor([&] { return recorder_.size() >= n; })) << "wanted " << n;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // nothing more should come
    return recorder_.take();
  }

  TempDir dir_;
  Recorder recorder_;
};

TEST_F(ManifestSourceTest, AddUpdateDeleteThroughFileChanges) {
  dir_.write("web.yaml", kWeb);
  auto source = make();
  source->start();
  ASSERT_TRUE(source->waitForSync(std::chrono::seconds(10)));
  EXPECT_THAT(recorder_.take(), UnorderedElementsAre("add Service default/web",
                                                     "add EndpointSlice default/web-1"));
  auto web = source->get("Service", "default", "web");
  ASSERT_TRUE(web.has_value());
  EXPECT_EQ((*web)["metadata"]["namespace"], "default");  // defaulted
  EXPECT_EQ((*web)["spec"]["ports"][0]["port"], 80);
  EXPECT_EQ((*web)["spec"]["ports"][0]["targetPort"], "8080");  // quoted stays a string
  EXPECT_FALSE(source->get("ConfigMap", "default", "ignored").has_value());

  // Change the Service only: one update.
  std::string changed = kWeb;
  changed.replace(changed.find("port: 80"), 8, "port: 81");
  dir_.write("web.yaml", changed);
  EXPECT_THAT(waitEvents(1), ElementsAre("update Service default/web"));
  EXPECT_EQ((*source->get("Service", "default", "web"))["spec"]["ports"][0]["port"], 81);

  // A new JSON file with a List.
  dir_.write("more.json", R"({"kind":"List","items":[
    {"apiVersion":"v1","kind":"Service","metadata":{"name":"db","namespace":"data"}},
    {"apiVersion":"v1","kind":"Service","metadata":{"name":"cache","namespace":"data"}}]})");
  EXPECT_THAT(waitEvents(2),
              UnorderedElementsAre("add Service data/db", "add Service data/cache"));
  EXPECT_EQ(source->snapshot("Service").size(), 3u);

  // Removing a file deletes its objects.
  ASSERT_EQ(std::remove(dir_.file("web.yaml").c_str()), 0);
  EXPECT_THAT(waitEvents(2), UnorderedElementsAre("delete Service default/web",
                                                  "delete EndpointSlice default/web-1"));
  EXPECT_FALSE(source->get("Service", "default", "web").has_value());

  // A rename into a non-manifest name counts as removal too.
  ASSERT_EQ(std::rename(dir_.file("more.json").c_str(), dir_.file("more.json.bak").c_str()), 0);
  EXPECT_THAT(waitEvents(2),
              UnorderedElementsAre("delete Service data/db", "delete Service data/cache"));
  source->stop();
}

TEST_F(ManifestSourceTest, BadFileKeepsItsPreviousObjects) {
  dir_.write("web.yaml", kWeb);
  dir_.write("other.yml", "kind: Service\nmetadata: {name: other, namespace: x}\n");
  auto source = make();
  source->start();
  ASSERT_TRUE(source->waitForSync(std::chrono::seconds(10)));
  EXPECT_EQ(recorder_.take().size(), 3u);
  uint64_t scans = source->scans();

  // A half-written file: syntax error. Nothing is deleted.
  dir_.write("web.yaml", "kind: Service\nmetadata: [unclosed\n");
  ASSERT_TRUE(waitFor([&] { return source->scans() > scans; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(recorder_.take().empty());
  EXPECT_TRUE(source->get("Service", "default", "web").has_value());
  EXPECT_TRUE(source->get("EndpointSlice", "default", "web-1").has_value());

  // A Service without a name is an error of the file as well.
  scans = source->scans();
  dir_.write("other.yml", "kind: Service\nmetadata: {namespace: x}\n");
  ASSERT_TRUE(waitFor([&] { return source->scans() > scans; }));
  EXPECT_TRUE(source->get("Service", "x", "other").has_value());

  // Fixed: the diff against the kept objects is delivered.
  std::string fixed = kWeb;
  fixed.replace(fixed.find("10.1.0.5"), 8, "10.1.0.6");
  dir_.write("web.yaml", fixed);
  EXPECT_THAT(waitEvents(1), ElementsAre("update EndpointSlice default/web-1"));
}

TEST_F(ManifestSourceTest, BadFileThatNeverParsedContributesNothing) {
  dir_.write("bad.yaml", "a: [\n");
  dir_.write("good.yaml", "kind: Service\nmetadata: {name: g}\n");
  auto source = make();
  source->rescanNow();
  EXPECT_TRUE(source->hasSynced());
  EXPECT_THAT(recorder_.take(), ElementsAre("add Service default/g"));
}

TEST_F(ManifestSourceTest, MissingDirectoryAppearsLaterAndPeriodicRescanFindsIt) {
  ManifestSourceOptions options;
  options.dir = dir_.file("later");
  options.kinds["Service"] = recorder_.handlers("Service");
  options.rescan_period = std::chrono::milliseconds(100);
  auto source = ManifestSource::create(options);
  ASSERT_TRUE(source.ok());
  (*source)->start();
  ASSERT_TRUE((*source)->waitForSync(std::chrono::seconds(10)));
  EXPECT_TRUE((*source)->snapshot("Service").empty());
  ASSERT_TRUE(fs::mkdirAll(dir_.file("later")).ok());
  dir_.write("later/s.yaml", "kind: Service\nmetadata: {name: s, namespace: n}\n");
  EXPECT_THAT(waitEvents(1), ElementsAre("add Service n/s"));
  // Once the directory is watched, changes arrive without waiting for a rescan.
  dir_.write("later/t.yaml", "kind: Service\nmetadata: {name: t, namespace: n}\n");
  EXPECT_THAT(waitEvents(1), ElementsAre("add Service n/t"));
}

TEST_F(ManifestSourceTest, ClusterScopedKindsGetNoNamespaceAndTypedListsWork) {
  ManifestSourceOptions options;
  options.dir = dir_.path();
  options.kinds["Node"] = recorder_.handlers("Node");
  options.kinds["Service"] = recorder_.handlers("Service");
  dir_.write("nodes.yaml", R"(kind: NodeList
items:
- metadata: {name: n1}
- metadata: {name: n2}
---
kind: ServiceList
items:
- metadata: {name: s}
)");
  auto source = ManifestSource::create(options);
  ASSERT_TRUE(source.ok());
  (*source)->rescanNow();
  EXPECT_THAT(recorder_.take(),
              UnorderedElementsAre("add Node n1", "add Node n2", "add Service default/s"));
  auto node = (*source)->get("Node", "", "n1");
  ASSERT_TRUE(node.has_value());
  EXPECT_FALSE((*node)["metadata"].contains("namespace"));
  EXPECT_EQ((*node)["kind"], "Node");
}

TEST_F(ManifestSourceTest, StopIsPrompt) {
  auto source = make(std::chrono::seconds(60));
  source->start();
  ASSERT_TRUE(source->waitForSync(std::chrono::seconds(10)));
  auto start = std::chrono::steady_clock::now();
  source->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
}

TEST(ManifestSourceOptionsTest, RequiresDirAndKinds) {
  EXPECT_FALSE(ManifestSource::create({}).ok());
  ManifestSourceOptions no_kinds;
  no_kinds.dir = "/tmp";
  EXPECT_FALSE(ManifestSource::create(no_kinds).ok());
}

}  // namespace
}  // namespace berth::kube
