#include "cni/runtime.h"

#include <unistd.h>

#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cni/cache.h"
#include "common/fs.h"
#include "tests/unit/cni/cni_test_util.h"
#include "tests/unit/cni/fake_pod_network.h"

namespace berth::cni {
namespace {

using json::Json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing::FakeBehavior;
using testing::TempDir;

Json resultA() {
  return Json::parse(R"({"cniVersion":"1.0.0",
    "interfaces":[{"name":"cni0"},{"name":"eth0","sandbox":"/ns","mac":"02:00:00:00:00:05"}],
    "ips":[{"address":"10.1.0.5/24","gateway":"10.1.0.1","interface":1}],
    "routes":[{"dst":"0.0.0.0/0","gw":"10.1.0.1"}]})");
}

Json resultB() {
  Json b = resultA();
  b["dns"] = {{"nameservers", {"10.96.0.10"}}};
  return b;
}

std::string conflist(const std::string& version, const std::string& plugins,
                     const std::string& extra = "") {
  return R"({"cniVersion":")" + version + R"(","name":"podnet",)" + extra + R"("plugins":[)" +
         plugins + "]}";
}

constexpr char kTwoPlugins[] =
    R"({"type":"first","ipam":{"type":"host-local"}},
       {"type":"second","capabilities":{"portMappings":true,"bandwidth":true}})";

class CniRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::writeFile(dir_.sub("netns"), "");
    writeConf(conflist("1.0.0", kTwoPlugins));
    fake("first", {.add = testing::printJson(resultA())});
    fake("second", {.add = testing::printJson(resultB())});
    CniOptions options;
    options.conf_dir = dir_.sub("net.d");
    options.bin_dirs = {dir_.sub("bin")};
    options.cache_dir = dir_.sub("cache");
    options.plugin_timeout = std::chrono::seconds(10);
    options.set_loopback_up = false;  // the "netns" is a plain file here
    auto rt = CniRuntime::create(options);
    ASSERT_TRUE(rt.ok()) << rt.status();
    rt_ = std::move(*rt);
  }

  void writeConf(const std::string& text, const std::string& name = "10-podnet.conflist") {
    testing::writeFile(dir_.sub("net.d/" + name), text);
  }
  void fake(const std::string& name, const FakeBehavior& b) {
    testing::writeFakePlugin(dir_.sub("bin"), name, dir_.sub("rec"), b);
  }
  std::vector<std::string> calls() { return testing::callSummary(dir_.sub("rec")); }
  std::vector<testing::RecordedCall> recorded() { return testing::recordedCalls(dir_.sub("rec")); }
  void clearCalls() {
    (void)fs::removeAll(dir_.sub("rec"));
    (void)fs::mkdirAll(dir_.sub("rec"));
  }
  AttachmentSpec spec(const std::string& id = "ctr1") {
    AttachmentSpec s;
    s.container_id = id;
    s.netns_path = dir_.sub("netns");
    s.args = {{"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", "web"},
              {"K8S_POD_INFRA_CONTAINER_ID", id}, {"K8S_POD_UID", "uid-1"}};
    s.port_mappings = {{8080, 80, "TCP", ""}};
    return s;
  }
  std::string cacheFile(const std::string& id = "ctr1") {
    return dir_.sub("cache/results/podnet-" + id + "-eth0");
  }

  TempDir dir_;
  std::unique_ptr<CniRuntime> rt_;
};

TEST_F(CniRuntimeTest, SetUpChainsPrevResultAndPassesCapabilities) {
  auto result = rt_->setUp(spec());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->sandboxIps("eth0"), ElementsAre("10.1.0.5"));
  EXPECT_THAT(result->dns.nameservers, ElementsAre("10.96.0.10"));  // last plugin's result
  EXPECT_THAT(calls(), ElementsAre("first:ADD", "second:ADD"));
  auto rec = recorded();
  EXPECT_EQ(rec[0].stdin_conf["name"], "podnet");
  EXPECT_EQ(rec[0].stdin_conf["cniVersion"], "1.0.0");
  EXPECT_FALSE(rec[0].stdin_conf.contains("prevResult"));
  EXPECT_FALSE(rec[0].stdin_conf.contains("runtimeConfig"));
  EXPECT_EQ(rec[1].stdin_conf["prevResult"], resultA());
  EXPECT_EQ(rec[1].stdin_conf["runtimeConfig"]["portMappings"],
            Json::parse(R"([{"hostPort":8080,"containerPort":80,"protocol":"tcp"}])"));
  EXPECT_FALSE(rec[1].stdin_conf["runtimeConfig"].contains("bandwidth"));  // none requested
  EXPECT_EQ(rec[0].env["CNI_ARGS"],
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;"
            "K8S_POD_INFRA_CONTAINER_ID=ctr1;K8S_POD_UID=uid-1");
  EXPECT_EQ(rec[0].env["CNI_NETNS"], dir_.sub("netns"));
  EXPECT_EQ(rec[0].env["CNI_IFNAME"], "eth0");
  EXPECT_EQ(rec[0].env["CNI_CONTAINERID"], "ctr1");
  EXPECT_EQ(rec[0].env["CNI_PATH"], dir_.sub("bin"));
}

TEST_F(CniRuntimeTest, SetUpWritesLibcniStyleCache) {
  ASSERT_TRUE(rt_->setUp(spec()).ok());
  auto doc = json::parseFile(cacheFile());
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ((*doc)["kind"], "cniCacheV1");
  EXPECT_EQ((*doc)["containerId"], "ctr1");
  EXPECT_EQ((*doc)["ifName"], "eth0");
  EXPECT_EQ((*doc)["networkName"], "podnet");
  EXPECT_EQ((*doc)["netns"], dir_.sub("netns"));
  EXPECT_EQ((*doc)["result"], resultB());
  EXPECT_EQ((*doc)["cniArgs"][0], Json::array({"IgnoreUnknown", "1"}));
  EXPECT_EQ((*doc)["capabilityArgs"]["portMappings"][0]["hostPort"], 8080);
  auto config = base64Decode((*doc)["config"].get<std::string>());
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(*config, conflist("1.0.0", kTwoPlugins));
}

TEST_F(CniRuntimeTest, TearDownDeletesInReverseWithCachedResult) {
  ASSERT_TRUE(rt_->setUp(spec()).ok());
  clearCalls();
  AttachmentSpec del = spec();
  del.port_mappings.clear();  // CRI does not repeat them on stop: the cache has them
  ASSERT_TRUE(rt_->tearDown(del).ok());
  EXPECT_THAT(calls(), ElementsAre("second:DEL", "first:DEL"));
  auto rec = recorded();
  EXPECT_EQ(rec[0].stdin_conf["prevResult"], resultB());
  EXPECT_EQ(rec[1].stdin_conf["prevResult"], resultB());
  EXPECT_EQ(rec[0].stdin_conf["runtimeConfig"]["portMappings"][0]["containerPort"], 80);
  EXPECT_FALSE(fs::exists(cacheFile()));

  // Idempotent: a second DEL runs without prevResult and succeeds.
  clearCalls();
  ASSERT_TRUE(rt_->tearDown(del).ok());
  EXPECT_THAT(calls(), ElementsAre("second:DEL", "first:DEL"));
  EXPECT_FALSE(recorded()[0].stdin_conf.contains("prevResult"));
}

TEST_F(CniRuntimeTest, TearDownUsesTheConfigTheAttachmentWasSetUpWith) {
  ASSERT_TRUE(rt_->setUp(spec()).ok());
  fake("third", {});
  ::unlink(dir_.sub("net.d/10-podnet.conflist").c_str());
  writeConf(R"({"cniVersion":"1.0.0","name":"othernet","plugins":[{"type":"third"}]})",
            "05-other.conflist");
  clearCalls();
  ASSERT_TRUE(rt_->tearDown(spec()).ok());
  EXPECT_THAT(calls(), ElementsAre("second:DEL", "first:DEL"));
  EXPECT_EQ(recorded()[0].stdin_conf["name"], "podnet");
  EXPECT_FALSE(fs::exists(cacheFile()));
}

TEST_F(CniRuntimeTest, TearDownAfterNetnsVanishedOmitsCniNetns) {
  ASSERT_TRUE(rt_->setUp(spec()).ok());
  ::unlink(dir_.sub("netns").c_str());
  clearCalls();
  ASSERT_TRUE(rt_->tearDown(spec()).ok());
  auto rec = recorded();
  ASSERT_EQ(rec.size(), 2u);
  EXPECT_EQ(rec[0].env.count("CNI_NETNS"), 0u);
  EXPECT_EQ(rec[0].env["CNI_CONTAINERID"], "ctr1");
}

TEST_F(CniRuntimeTest, TearDownIgnoresUnknownContainerButReportsOtherErrors) {
  ASSERT_TRUE(rt_->setUp(spec()).ok());
  fake("first", {.add = testing::printJson(resultA()),
                 .del = testing::failWith(3, "container unknown")});
  ASSERT_TRUE(rt_->tearDown(spec()).ok());
  EXPECT_FALSE(fs::exists(cacheFile()));

  ASSERT_TRUE(rt_->setUp(spec()).ok());
  fake("second", {.add = testing::printJson(resultB()), .del = testing::failWith(5, "iptables busy")});
  clearCalls();
  Status s = rt_->tearDown(spec());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(s.message(), HasSubstr("tear down network \"podnet\" for container ctr1"));
  EXPECT_THAT(s.message(), HasSubstr("CNI plugin \"second\" DEL failed (code 5): iptables busy"));
  EXPECT_THAT(calls(), ElementsAre("second:DEL", "first:DEL"));  // kept going
  EXPECT_TRUE(fs::exists(cacheFile()));  // kept for the retry
}

TEST_F(CniRuntimeTest, FailedAddRollsBackInReverse) {
  fake("second", {.add = testing::failWith(11, "try again", "lock held")});
  auto result = rt_->setUp(spec());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(result.status().message(),
            "set up network \"podnet\" for container ctr1: CNI plugin \"second\" ADD failed "
            "(code 11): try again: lock held");
  EXPECT_THAT(calls(), ElementsAre("first:ADD", "second:ADD", "second:DEL", "first:DEL"));
  EXPECT_EQ(recorded()[3].stdin_conf["prevResult"], resultA());
  EXPECT_FALSE(fs::exists(cacheFile()));
}

TEST_F(CniRuntimeTest, AddWithoutResultIsAnError) {
  fake("first", {.add = "exit 0"});
  auto result = rt_->setUp(spec());
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.status().message(), HasSubstr("CNI plugin \"first\" ADD succeeded but printed no result"));
  EXPECT_THAT(calls(), ElementsAre("first:ADD", "first:DEL"));
}

TEST_F(CniRuntimeTest, MissingPluginFailsBeforeAnyAdd) {
  writeConf(conflist("1.0.0", std::string(kTwoPlugins) + R"(,{"type":"nonexistent"})"));
  auto result = rt_->setUp(spec());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(result.status().message(), HasSubstr("CNI plugin \"nonexistent\" not found"));
  EXPECT_TRUE(calls().empty());
  NetworkStatus st = rt_->status();
  EXPECT_FALSE(st.ready);
  EXPECT_THAT(st.message, HasSubstr("CNI plugin \"nonexistent\" not found"));
}

TEST_F(CniRuntimeTest, ResultsAreConvertedToTheListVersion) {
  writeConf(conflist("0.4.0", kTwoPlugins));
  auto result = rt_->setUp(spec());  // plugins answer 1.0.0 results
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->cni_version, "0.4.0");
  auto rec = recorded();
  EXPECT_EQ(rec[1].stdin_conf["prevResult"]["cniVersion"], "0.4.0");
  EXPECT_EQ(rec[1].stdin_conf["prevResult"]["ips"][0]["version"], "4");
}

TEST_F(CniRuntimeTest, NoConfigMeansNotReady) {
  ::unlink(dir_.sub("net.d/10-podnet.conflist").c_str());
  NetworkStatus st = rt_->status();
  EXPECT_FALSE(st.ready);
  EXPECT_EQ(st.reason, "NetworkPluginNotReady");
  EXPECT_EQ(st.message, "no network config found in " + dir_.sub("net.d"));
  auto result = rt_->setUp(spec());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(result.status().message(), HasSubstr("no network config found in"));
  EXPECT_TRUE(rt_->tearDown(spec()).ok());  // nothing to do
  EXPECT_TRUE(calls().empty());

  // Reloaded without a restart once a config appears.
  writeConf(conflist("1.0.0", kTwoPlugins));
  EXPECT_TRUE(rt_->status().ready);
  writeConf("{broken", "01-broken.conflist");
  st = rt_->status();
  EXPECT_FALSE(st.ready);
  EXPECT_THAT(st.message, HasSubstr("01-broken.conflist"));
}

TEST_F(CniRuntimeTest, StatusRunsPluginStatusFrom11) {
  EXPECT_TRUE(rt_->status().ready);
  EXPECT_TRUE(calls().empty());  // 1.0.0 has no STATUS
  writeConf(conflist("1.1.0", kTwoPlugins));
  fake("second", {.status = testing::failWith(50, "bridge plugin not ready", "no uplink")});
  NetworkStatus st = rt_->status();
  EXPECT_FALSE(st.ready);
  EXPECT_EQ(st.reason, "NetworkPluginNotReady");
  EXPECT_THAT(st.message, HasSubstr("CNI plugin \"second\" STATUS failed (code 50): bridge plugin not ready"));
  EXPECT_THAT(calls(), ElementsAre("first:STATUS", "second:STATUS"));
  auto rec = recorded();
  EXPECT_EQ(rec[0].env.count("CNI_CONTAINERID"), 0u);
  EXPECT_EQ(rec[0].stdin_conf["name"], "podnet");
  fake("second", {});
  EXPECT_TRUE(rt_->status().ready);
}

TEST_F(CniRuntimeTest, CheckUsesCachedResult) {
  EXPECT_EQ(rt_->check(spec()).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(rt_->setUp(spec()).ok());
  clearCalls();
  ASSERT_TRUE(rt_->check(spec()).ok());
  EXPECT_THAT(calls(), ElementsAre("first:CHECK", "second:CHECK"));
  EXPECT_EQ(recorded()[0].stdin_conf["prevResult"], resultB());
  fake("second", {.add = testing::printJson(resultB()), .check = testing::failWith(100, "veth gone")});
  Status s = rt_->check(spec());
  EXPECT_THAT(s.message(), HasSubstr("check network \"podnet\" of container ctr1: CNI plugin \"second\" CHECK failed"));
  // disableCheck turns CHECK off.
  writeConf(conflist("1.0.0", kTwoPlugins, R"("disableCheck":true,)"));
  clearCalls();
  EXPECT_TRUE(rt_->check(spec()).ok());
  EXPECT_TRUE(calls().empty());
}

TEST_F(CniRuntimeTest, GcDeletesStaleAttachmentsAndCallsPluginGc) {
  writeConf(conflist("1.1.0", kTwoPlugins));
  ASSERT_TRUE(rt_->setUp(spec("ctr1")).ok());
  ASSERT_TRUE(rt_->setUp(spec("ctr2")).ok());
  clearCalls();
  ASSERT_TRUE(rt_->gc({{"ctr1", "eth0"}}).ok());
  EXPECT_THAT(calls(), ElementsAre("second:DEL", "first:DEL", "first:GC", "second:GC"));
  auto rec = recorded();
  EXPECT_EQ(rec[0].env["CNI_CONTAINERID"], "ctr2");
  EXPECT_EQ(rec[2].stdin_conf["cni.dev/valid-attachments"],
            Json::parse(R"([{"containerID":"ctr1","ifname":"eth0"}])"));
  EXPECT_TRUE(fs::exists(cacheFile("ctr1")));
  EXPECT_FALSE(fs::exists(cacheFile("ctr2")));
  // disableGC: only the cache-driven cleanup runs.
  writeConf(conflist("1.1.0", kTwoPlugins, R"("disableGC":true,)"));
  clearCalls();
  ASSERT_TRUE(rt_->gc({{"ctr1", "eth0"}}).ok());
  EXPECT_TRUE(calls().empty());
}

TEST_F(CniRuntimeTest, RejectsBadSpecs) {
  AttachmentSpec s = spec();
  s.container_id = "";
  EXPECT_EQ(rt_->setUp(s).status().code(), absl::StatusCode::kInvalidArgument);
  s = spec();
  s.netns_path = dir_.sub("no-such-netns");
  auto r = rt_->setUp(s);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("does not exist"));
  s = spec();
  s.ifname = "a-very-long-interface-name";
  EXPECT_EQ(rt_->setUp(s).status().code(), absl::StatusCode::kInvalidArgument);
  s = spec();
  s.args.push_back({"BAD", "a;b"});
  EXPECT_THAT(rt_->setUp(s).status().message(), HasSubstr("CNI_ARGS entry \"BAD=a;b\" is invalid"));
  EXPECT_TRUE(calls().empty());
}

TEST_F(CniRuntimeTest, ConcurrentAttachmentsAreIndependent) {
  constexpr int kPods = 8;
  std::vector<Status> results(kPods);
  std::vector<std::thread> threads;
  for (int i = 0; i < kPods; ++i) {
    threads.emplace_back([&, i] {
      auto r = rt_->setUp(spec("pod" + std::to_string(i)));
      results[i] = r.status();
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kPods; ++i) {
    EXPECT_TRUE(results[i].ok()) << i << ": " << results[i];
    EXPECT_TRUE(fs::exists(cacheFile("pod" + std::to_string(i)))) << i;
  }
  threads.clear();
  for (int i = 0; i < kPods; ++i) {
    threads.emplace_back([&, i] { results[i] = rt_->tearDown(spec("pod" + std::to_string(i))); });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kPods; ++i) {
    EXPECT_TRUE(results[i].ok()) << i << ": " << results[i];
    EXPECT_FALSE(fs::exists(cacheFile("pod" + std::to_string(i)))) << i;
  }
}

TEST(CniRuntimeArgs, CapabilityArgsFollowConventions) {
  AttachmentSpec s;
  s.port_mappings = {{80, 8080, "UDP", "127.0.0.1"}, {443, 443, "", ""}};
  s.bandwidth = Bandwidth{1000000, 2000000, 0, 0};
  s.ips = {"10.1.0.9/24"};
  s.extra_capabilities["mac"] = "02:00:00:00:00:09";
  CapabilityArgs caps = capabilityArgs(s);
  EXPECT_EQ(caps["portMappings"], Json::parse(R"([
      {"hostPort":80,"containerPort":8080,"protocol":"udp","hostIP":"127.0.0.1"},
      {"hostPort":443,"containerPort":443,"protocol":"tcp"}])"));
  EXPECT_EQ(caps["bandwidth"], Json::parse(R"({"ingressRate":1000000,"ingressBurst":2000000})"));
  EXPECT_EQ(caps["ips"], Json::parse(R"(["10.1.0.9/24"])"));
  EXPECT_EQ(caps["mac"], "02:00:00:00:00:09");
  EXPECT_TRUE(capabilityArgs(AttachmentSpec{}).empty());
}

TEST(CniRuntimeArgs, BuildCniArgs) {
  EXPECT_EQ(*buildCniArgs({}), "IgnoreUnknown=1");
  EXPECT_EQ(*buildCniArgs({{"IgnoreUnknown", "0"}, {"A", "b=c"}}), "IgnoreUnknown=0;A=b=c");
  EXPECT_FALSE(buildCniArgs({{"A=", "b"}}).ok());
  EXPECT_FALSE(buildCniArgs({{"", "b"}}).ok());
}

TEST(FakePodNetwork, BehavesLikeTheRuntime) {
  testing::FakePodNetwork net;
  AttachmentSpec s;
  s.container_id = "p1";
  s.netns_path = "/run/ns/p1";
  auto r = net.setUp(s);
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(r->sandboxIps("eth0"), ElementsAre("10.99.0.2"));
  EXPECT_TRUE(net.check(s).ok());
  net.failNextDel(absl::UnavailableError("busy"));
  EXPECT_FALSE(net.tearDown(s).ok());
  EXPECT_TRUE(net.tearDown(s).ok());
  EXPECT_EQ(net.check(s).code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(net.calls(), ElementsAre("ADD p1", "CHECK p1", "DEL p1", "DEL p1", "CHECK p1"));
}

TEST(CniCache, RejectsOtherKinds) {
  TempDir dir;
  testing::writeFile(dir.sub("results/n-c-eth0"), R"({"kind":"cniCacheV2","containerId":"c"})");
  auto e = readCache(dir.sub("results/n-c-eth0"));
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(e.status().message(), HasSubstr("\"kind\" is not \"cniCacheV1\""));
  EXPECT_TRUE(listCache(dir.path()).empty());
}

}  // namespace
}  // namespace berth::cni
