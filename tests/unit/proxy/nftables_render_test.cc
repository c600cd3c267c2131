// NftablesRenderer's sync kinds (rebuild, full, partial), what a partial sync touches,
// stale chain deletion, failure handling. Every script is applied to the rule walker
// (a kernel stand-in with the kernel's reference checks), as the proxier applies it to
// the kernel, so an ordering mistake (deleting a chain still referenced, an element
// naming a missing chain) fails the test.
#include <chrono>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/strings.h"
#include "proxy/nftables_names.h"
#include "proxy/nftables_render.h"
#include "tests/unit/proxy/nft_walker.h"
#include "tests/unit/proxy/scenarios.h"

namespace berth::proxy {
namespace {

using testing::endpointJson;
using testing::NftWalker;
using testing::serviceJson;
using testing::sliceJson;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using namespace std::chrono_literals;

constexpr const char* kHttp = R"([{"name": "http", "port": 8080}])";

IpAddress ip(const char* s) { return IpAddress::parse(s).value(); }

std::vector<std::string> lines(const std::string& script) { return split(script, '\n', true); }

// A small cluster driven through a tracker, a renderer and the walker, with a fake clock.
class Harness {
 public:
  explicit Harness(StaleChainPolicy policy = StaleChainPolicy::kDeleteLater) {
    NftablesRendererOptions opts;
    opts.stale_chains = policy;
    opts.clock = [this] { return now_; };
    renderer_ = std::make_unique<NftablesRenderer>(opts);
    node_ = testing::testNode();
  }

  void service(const std::string& name, const std::string& spec, const std::string& status = "") {
    auto svc = parseService(std::string_view(serviceJson(name, spec, status)));
    ASSERT_TRUE(svc.ok()) << svc.status();
    tracker_.updateService(*svc);
  }
  void slice(const std::string& name, const std::string& svc, const std::vector<std::string>& eps,
             const std::string& ports = kHttp) {
    auto s = parseEndpointSlice(std::string_view(sliceJson(name, svc, eps, ports)));
    ASSERT_TRUE(s.ok()) << s.status();
    tracker_.updateEndpointSlice(*s);
  }
  ChangeTracker& tracker() { return tracker_; }
  NodeInfo& node() { return node_; }
  NftablesRenderer& renderer() { return *renderer_; }
  NftWalker& walker() { return walker_; }
  void advance(std::chrono::milliseconds d) { now_ += d; }

  // Renders (with the tracker's changes), applies to the walker, commits. Returns the
  // script.
  std::string sync(bool full = false) {
    ChangedSet changed = tracker_.takeChanged();
    std::string script = renderer_->renderSync(buildProxyState(tracker_.map(), node_), changed, full);
    Status st = walker_.apply(script);
    EXPECT_TRUE(st.ok()) << st << "\n" << script;
    if (st.ok()) {
      renderer_->committed();
    } else {
      renderer_->failed();
    }
    return script;
  }

  std::set<std::string> targets(const char* dst, int port) {
    NftWalker::Packet p{ip("10.244.1.50"), ip(dst), Protocol::kTCP, port, NftWalker::Origin::kPod};
    auto paths = walker_.trace(p, {ip("192.168.1.10"), ip("fd00:1::10")});
    EXPECT_TRUE(paths.ok()) << paths.status();
    std::set<std::string> out;
    if (paths.ok()) {
      for (const auto& path : *paths) {
        out.insert(path.verdict == NftWalker::Verdict::kAccept ? path.dnat
                                                                : (path.verdict == NftWalker::Verdict::kDrop ? "drop" : "reject"));
      }
    }
    return out;
  }

  std::vector<std::string> serviceChains(const std::string& svc) {
    std::vector<std::string> out;
    for (const std::string& c : walker_.chainNames()) {
      if (c.find("-default/" + svc + "/") != std::string::npos) out.push_back(c);
    }
    return out;
  }

 private:
  ChangeTracker tracker_;
  NodeInfo node_;
  std::unique_ptr<NftablesRenderer> renderer_;
  NftWalker walker_;
  std::chrono::steady_clock::time_point now_{};
};

void twoServices(Harness& h) {
  h.service("web", R"("clusterIP": "10.96.0.10", "ports": [{"name": "http", "port": 80}])");
  h.slice("web-1", "web", {endpointJson("10.244.1.5", "node-a")});
  h.service("api", R"("type": "NodePort", "clusterIP": "10.96.0.11", "ports": [{"name": "http", "port": 80, "nodePort": 30011}])");
  h.slice("api-1", "api", {endpointJson("10.244.2.6", "node-b")});
}

TEST(NftablesRendererTest, FirstSyncIsARebuild) {
  Harness h;
  twoServices(h);
  std::string script = h.sync();
  auto l = lines(script);
  ASSERT_GE(l.size(), 3u);
  EXPECT_EQ(l[0], "add table inet berth-proxy");
  EXPECT_EQ(l[1], "delete table inet berth-proxy");
  EXPECT_EQ(h.renderer().lastStats().kind, RenderStats::Kind::kRebuild);
  EXPECT_EQ(h.targets("10.96.0.10", 80), (std::set<std::string>{"10.244.1.5:8080"}));
  EXPECT_FALSE(h.renderer().needsRebuild());
  // web: service + endpoint chain; api: service, external, endpoint chain.
  EXPECT_EQ(h.renderer().programmedChains(), 5u);
  size_t elements = 0;
  for (const std::string& c : h.walker().containerNames()) elements += h.walker().elements(c).size();
  EXPECT_EQ(h.renderer().programmedElements(), elements);
}

TEST(NftablesRendererTest, NothingChangedRendersNothing) {
  Harness h;
  twoServices(h);
  h.sync();
  std::string script = h.sync();
  EXPECT_EQ(script, "");
  EXPECT_EQ(h.renderer().lastStats().kind, RenderStats::Kind::kPartial);
}

TEST(NftablesRendererTest, PartialSyncTouchesOnlyTheChangedService) {
  Harness h;
  twoServices(h);
  h.sync();
  h.slice("web-1", "web", {endpointJson("10.244.1.5", "node-a"), endpointJson("10.244.2.7", "node-b")});
  std::string script = h.sync();
  ASSERT_FALSE(script.empty());
  for (const std::string& line : lines(script)) {
    EXPECT_THAT(line, AllOf(HasSubstr("default/web/"), Not(HasSubstr("default/api/"))))
        << "a partial sync of default/web wrote: " << line << "\n" << script;
    EXPECT_THAT(line, Not(HasSubstr("flush map")));
    EXPECT_THAT(line, Not(HasSubstr("table")));
  }
  EXPECT_EQ(h.renderer().lastStats().kind, RenderStats::Kind::kPartial);
  EXPECT_EQ(h.renderer().lastStats().services_rendered, 1u);
  EXPECT_EQ(h.targets("10.96.0.10", 80), (std::set<std::string>{"10.244.1.5:8080", "10.244.2.7:8080"}));
  EXPECT_EQ(h.targets("10.96.0.11", 80), (std::set<std::string>{"10.244.2.6:8080"}));
}

TEST(NftablesRendererTest, RemovedServiceChainsAreFlushedThenDeletedLater) {
  Harness h;
  twoServices(h);
  h.sync();
  ASSERT_FALSE(h.serviceChains("api").empty());
  h.tracker().deleteService({"default", "api"});
  std::string script = h.sync();
  // Its elements go, its chains are emptied in the same transaction...
  EXPECT_THAT(script, HasSubstr("delete element inet berth-proxy service-ips-v4 { 10.96.0.11 . tcp . 80 }"));
  EXPECT_THAT(script, HasSubstr("delete element inet berth-proxy service-nodeports-v4 { tcp . 30011 }"));
  EXPECT_THAT(script, Not(HasSubstr("delete chain")));
  for (const std::string& c : h.serviceChains("api")) EXPECT_THAT(h.walker().rules(c), IsEmpty()) << c;
  EXPECT_EQ(h.renderer().pendingStaleChains(), h.serviceChains("api").size());
  EXPECT_EQ(h.targets("10.96.0.11", 80), (std::set<std::string>{""}));

  // ... and deleted by a later sync once they are old enough.
  h.sync();
  EXPECT_FALSE(h.serviceChains("api").empty());  // too soon
  h.advance(1500ms);
  script = h.sync();
  EXPECT_THAT(script, HasSubstr("delete chain inet berth-proxy service-"));
  EXPECT_THAT(h.serviceChains("api"), IsEmpty());
  EXPECT_EQ(h.renderer().pendingStaleChains(), 0u);
  EXPECT_EQ(h.targets("10.96.0.10", 80), (std::set<std::string>{"10.244.1.5:8080"}));
}

TEST(NftablesRendererTest, SameTransactionPolicyDeletesStaleChainsAtOnce) {
  Harness h(StaleChainPolicy::kDeleteInSameTransaction);
  twoServices(h);
  h.sync();
  h.tracker().deleteService({"default", "api"});
  std::string script = h.sync();
  EXPECT_THAT(script, HasSubstr("delete chain inet berth-proxy endpoint-"));
  EXPECT_THAT(h.serviceChains("api"), IsEmpty());
  EXPECT_EQ(h.renderer().pendingStaleChains(), 0u);
}

TEST(NftablesRendererTest, RemovedEndpointsChainGoesAndTheServiceKeepsWorking) {
  Harness h(StaleChainPolicy::kDeleteInSameTransaction);
  h.service("web", R"("clusterIP": "10.96.0.10", "ports": [{"name": "http", "port": 80}])");
  h.slice("web-1", "web", {endpointJson("10.244.1.5", "node-a"), endpointJson("10.244.2.5", "node-b")});
  h.sync();
  ASSERT_EQ(h.serviceChains("web").size(), 3u);
  h.slice("web-1", "web", {endpointJson("10.244.2.5", "node-b")});
  h.sync();
  EXPECT_EQ(h.serviceChains("web").size(), 2u);
  EXPECT_EQ(h.targets("10.96.0.10", 80), (std::set<std::string>{"10.244.2.5:8080"}));
}

TEST(NftablesRendererTest, ServiceGoingFromNoEndpointsToEndpointsAndBack) {
  Harness h;
  h.service("web", R"("clusterIP": "10.96.0.10", "ports": [{"name": "http", "port": 80}])");
  h.sync();
  EXPECT_EQ(h.targets("10.96.0.10", 80), (std::set<std::string>{"reject"}));
  h.slice("web-1", "web", {endpointJson("10.244.1.5", "node-a")});
  std::string script = h.sync();
  EXPECT_THAT(script, HasSubstr("delete element inet berth-proxy no-endpoint-services-v4 { 10.96.0.10 . tcp . 80 }"));
  EXPECT_EQ(h.targets("10.96.0.10", 80), (std::set<std::string>{"10.244.1.5:8080"}));
  h.tracker().deleteEndpointSlice({"default", "web-1"});
  h.sync();
  EXPECT_EQ(h.targets("10.96.0.10", 80), (std::set<std::string>{"reject"}));
}

TEST(NftablesRendererTest, ChangedAffinityTimeoutRecreatesTheSets) {
  Harness h;
  h.service("web", R"("clusterIP": "10.96.0.10", "sessionAffinity": "ClientIP", "ports": [{"name": "http", "port": 80}])");
  h.slice("web-1", "web", {endpointJson("10.244.1.5", "node-a")});
  std::string first = h.sync();
  EXPECT_THAT(first, HasSubstr("timeout 10800s; }"));
  h.service("web", R"("clusterIP": "10.96.0.10", "sessionAffinity": "ClientIP",
      "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}, "ports": [{"name": "http", "port": 80}])");
  std::string second = h.sync();
  EXPECT_THAT(second, HasSubstr("delete set inet berth-proxy affinity-"));
  EXPECT_THAT(second, HasSubstr("timeout 60s; }"));
  // Affinity off: the sets go.
  h.service("web", R"("clusterIP": "10.96.0.10", "ports": [{"name": "http", "port": 80}])");
  std::string third = h.sync();
  EXPECT_THAT(third, HasSubstr("delete set inet berth-proxy affinity-"));
  for (const std::string& c : h.walker().containerNames()) EXPECT_THAT(c, Not(HasSubstr("affinity-")));
}

TEST(NftablesRendererTest, AServiceChangedWithoutBeingReportedIsStillRendered) {
  Harness h;
  twoServices(h);
  h.sync();
  h.slice("api-1", "api", {endpointJson("10.244.2.6", "node-b"), endpointJson("10.244.2.8", "node-b")});
  h.tracker().takeChanged();  // lose the change report
  h.sync();
  EXPECT_EQ(h.renderer().lastStats().services_rendered, 1u);
  EXPECT_EQ(h.targets("10.96.0.11", 80), (std::set<std::string>{"10.244.2.6:8080", "10.244.2.8:8080"}));
}

TEST(NftablesRendererTest, AfterAFailureTheNextSyncIsARebuild) {
  Harness h;
  twoServices(h);
  h.sync();
  h.slice("web-1", "web", {endpointJson("10.244.1.9", "node-a")});
  ChangedSet changed = h.tracker().takeChanged();
  std::string partial = h.renderer().renderSync(buildProxyState(h.tracker().map(), h.node()), changed, false);
  EXPECT_THAT(partial, Not(HasSubstr("table")));
  h.renderer().failed();  // e.g. the kernel refused it
  EXPECT_TRUE(h.renderer().needsRebuild());
  std::string next = h.sync();
  auto l = lines(next);
  EXPECT_EQ(l[0], "add table inet berth-proxy");
  EXPECT_EQ(l[1], "delete table inet berth-proxy");
  EXPECT_THAT(next, HasSubstr("default/api/"));  // everything, not only the changed Service
  EXPECT_EQ(h.renderer().lastStats().kind, RenderStats::Kind::kRebuild);
  EXPECT_EQ(h.targets("10.96.0.10", 80), (std::set<std::string>{"10.244.1.9:8080"}));
}

TEST(NftablesRendererTest, ARebuildRepairsATableChangedBehindOurBack) {
  Harness h;
  twoServices(h);
  h.sync();
  // Someone deletes one of our chains' rules and adds a chain of their own.
  ASSERT_TRUE(h.walker().apply("flush chain inet berth-proxy services\nadd chain inet berth-proxy intruder\n").ok());
  h.renderer().failed();
  h.sync();
  EXPECT_FALSE(h.walker().hasChain("intruder"));
  EXPECT_EQ(h.targets("10.96.0.10", 80), (std::set<std::string>{"10.244.1.5:8080"}));
}

TEST(NftablesRendererTest, FullSyncRewritesEverythingWithoutRecreatingTheTable) {
  Harness h;
  twoServices(h);
  h.sync();
  std::string script = h.sync(/*full=*/true);
  EXPECT_EQ(h.renderer().lastStats().kind, RenderStats::Kind::kFull);
  EXPECT_THAT(script, Not(HasSubstr("delete table")));
  EXPECT_THAT(script, HasSubstr("flush map inet berth-proxy service-ips-v4"));
  EXPECT_THAT(script, HasSubstr("flush chain inet berth-proxy services"));
  EXPECT_THAT(script, HasSubstr("default/api/"));
  EXPECT_THAT(script, HasSubstr("default/web/"));
  EXPECT_EQ(h.targets("10.96.0.11", 80), (std::set<std::string>{"10.244.2.6:8080"}));
}

TEST(NftablesRendererTest, NodeChangesForceAFullSync) {
  Harness h;
  twoServices(h);
  h.sync();
  h.node().cluster_cidrs = {Cidr::parse("10.200.0.0/16").value()};
  std::string script = h.sync();
  EXPECT_EQ(h.renderer().lastStats().kind, RenderStats::Kind::kFull);
  EXPECT_THAT(script, HasSubstr("ip saddr != 10.200.0.0/16 jump mark-for-masquerade"));
}

TEST(NftablesRendererTest, ServiceReturningBeforeItsStaleChainsAreDeletedReusesThem) {
  Harness h;
  twoServices(h);
  h.sync();
  auto api = h.tracker().map().services.at({"default", "api"});
  h.tracker().deleteService({"default", "api"});
  h.sync();
  EXPECT_GT(h.renderer().pendingStaleChains(), 0u);
  h.tracker().updateService(api);
  h.advance(5s);
  std::string script = h.sync();
  EXPECT_THAT(script, Not(HasSubstr("delete chain")));
  EXPECT_EQ(h.renderer().pendingStaleChains(), 0u);
  EXPECT_EQ(h.targets("10.96.0.11", 80), (std::set<std::string>{"10.244.2.6:8080"}));
}

TEST(NftablesRendererTest, ASecondRenderWithoutCommitReplacesTheFirst) {
  Harness h;
  twoServices(h);
  h.sync();
  h.slice("web-1", "web", {endpointJson("10.244.1.9", "node-a")});
  ChangedSet changed = h.tracker().takeChanged();
  ProxyState state = buildProxyState(h.tracker().map(), h.node());
  std::string a = h.renderer().renderSync(state, changed, false);
  std::string b = h.renderer().renderSync(state, changed, false);
  EXPECT_EQ(a, b);  // both relative to the last committed sync
  ASSERT_TRUE(h.walker().apply(b).ok());
  h.renderer().committed();
  EXPECT_EQ(h.targets("10.96.0.10", 80), (std::set<std::string>{"10.244.1.9:8080"}));
}

TEST(NftablesRendererTest, TwoServicesClaimingOneExternalIpPortDoNotBreakTheSync) {
  Harness h;
  h.service("a", R"("clusterIP": "10.96.0.20", "externalIPs": ["192.0.2.9"], "ports": [{"name": "http", "port": 80}])");
  h.service("b", R"("clusterIP": "10.96.0.21", "externalIPs": ["192.0.2.9"], "ports": [{"name": "http", "port": 80}])");
  h.slice("a-1", "a", {endpointJson("10.244.1.5", "node-a")});
  h.slice("b-1", "b", {endpointJson("10.244.1.6", "node-a")});
  h.sync();
  EXPECT_EQ(h.targets("192.0.2.9", 80), (std::set<std::string>{"10.244.1.5:8080"}));  // a sorts first
  h.tracker().deleteService({"default", "a"});
  h.sync();
  EXPECT_EQ(h.targets("192.0.2.9", 80), (std::set<std::string>{"10.244.1.6:8080"}));
}

TEST(NftablesRendererTest, CleanupRemovesTheTableAndForgets) {
  Harness h;
  twoServices(h);
  h.sync();
  std::string cleanup = h.renderer().renderCleanup();
  EXPECT_EQ(cleanup, "add table inet berth-proxy\ndelete table inet berth-proxy\n");
  ASSERT_TRUE(h.walker().apply(cleanup).ok());
  EXPECT_FALSE(h.walker().hasTable());
  EXPECT_TRUE(h.renderer().needsRebuild());
}

TEST(NftablesNamesTest, StableReadableAndWithinNftLimits) {
  ServicePortName n{{"default", "web"}, "http", Protocol::kTCP};
  EXPECT_EQ(nftnames::clusterChain(n, IpFamily::kIPv4), nftnames::clusterChain(n, IpFamily::kIPv4));
  EXPECT_THAT(nftnames::clusterChain(n, IpFamily::kIPv4), AllOf(HasSubstr("service-"), HasSubstr("-default/web/tcp/http")));
  EXPECT_THAT(nftnames::clusterChain(n, IpFamily::kIPv6), HasSubstr("-default/web/tcp6/http"));
  EXPECT_NE(nftnames::clusterChain(n, IpFamily::kIPv4), nftnames::clusterChain(n, IpFamily::kIPv6));
  Endpoint ep;
  ep.ip = ip("fd00::1:2");
  ep.port = 8080;
  EXPECT_THAT(nftnames::endpointChain(n, ep), HasSubstr("__fd00..1.2/8080"));
  EXPECT_TRUE(nftnames::isServiceObject(nftnames::endpointChain(n, ep)));
  EXPECT_FALSE(nftnames::isServiceObject(nftnames::kServices));
  ServicePortName big{{std::string(63, 'n'), std::string(63, 's')}, std::string(63, 'p'), Protocol::kSCTP};
  Endpoint ep6;
  ep6.ip = ip("fd00:1234:5678:9abc:def0:1234:5678:9abc");
  ep6.port = 65535;
  EXPECT_LE(nftnames::affinitySet(big, ep6).size(), 255u);
  EXPECT_EQ(nftnames::affinitySet(big, ep6).size(), 255u);  // cut, the hash keeps it unique
}

}  // namespace
}  // namespace berth::proxy
