// CniRuntime with Debian's reference plugins (/usr/lib/cni: bridge, host-local, portmap)
// for real. Root only. The host's network is never touched: the test process enters a
// private mount namespace once, and every test runs on the main thread inside a fresh
// "node" network namespace (unshare(CLONE_NEWNET)), where the plugins create their
// bridge, veths and iptables rules; at the end the thread returns to its original
// namespace and the node namespace, with everything in it, disappears. Pod namespaces
// are made by a helper thread (unshare + bind mount onto a file in the test's temp
// dir); host-local keeps its leases in the temp dir too.
#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cni/cache.h"
#include "cni/netns.h"
#include "cni/runtime.h"
#include "common/fs.h"
#include "common/unique_fd.h"
#include "tests/integration/cni/net_test_util.h"
#include "tests/unit/cni/cni_test_util.h"

namespace berth::cni {
namespace {

using json::Json;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing::TempDir;
using namespace testing::net;  // NOLINT: test helpers

constexpr char kPluginDir[] = "/usr/lib/cni";
constexpr char kBridge[] = "berthcnit0";
constexpr char kSubnetPrefix[] = "10.88.7.";
constexpr char kGateway[] = "10.88.7.1";

class ReferencePluginsPrivileged : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() == 0) mount_ns_ok_ = enterPrivateMountNamespace();
  }

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces, bind mounts)";
    if (!mount_ns_ok_) GTEST_SKIP() << "cannot create a private mount namespace";
    for (const char* p : {"bridge", "host-local", "portmap"}) {
      if (!fs::exists(strCat(kPluginDir, "/", p))) {
        GTEST_SKIP() << kPluginDir << "/" << p << " missing: install containernetworking-plugins";
      }
    }
    Status entered = enterFreshNetns(orig_netns_);
    ASSERT_TRUE(entered.ok()) << entered;
    in_node_ = true;
    ASSERT_EQ(links(), std::vector<std::string>{"lo"}) << "node netns must be fresh";
    // sysfs as seen from the node netns (the plugins may read /sys/class/net).
    if (::mount("sysfs", "/sys", "sysfs", 0, nullptr) == 0) sys_mounted_ = true;
    testing::writeFile(dir_.sub("bin/.keep"), "");
    useConfig(true);
    CniOptions options;
    options.conf_dir = dir_.sub("net.d");
    options.bin_dirs = {kPluginDir, dir_.sub("bin")};
    options.cache_dir = dir_.sub("cache");
    options.plugin_timeout = std::chrono::seconds(30);
    auto rt = CniRuntime::create(options);
    ASSERT_TRUE(rt.ok()) << rt.status();
    rt_ = std::move(*rt);
  }

  void TearDown() override {
    if (rt_) {
      for (const std::string& id : pods_) (void)rt_->tearDown(spec(id));
    }
    for (const std::string& id : pods_) destroyNetns(netnsPath(id));
    if (sys_mounted_) ::umount2("/sys", MNT_DETACH);
    if (in_node_) {
      // Back to the original netns: the node netns and all in it go away.
      EXPECT_EQ(::setns(orig_netns_.get(), CLONE_NEWNET), 0);
    }
  }

  // Writes the network config: bridge + host-local (+ portmap) (+ extra plugins).
  void useConfig(bool with_portmap, const std::string& extra_plugin = "",
                 const Json& extra_object = Json()) {
    Json bridge = {
        {"type", "bridge"}, {"bridge", kBridge}, {"isGateway", true}, {"ipMasq", false},
        {"hairpinMode", true},
        {"ipam",
         {{"type", "host-local"},
          {"ranges", Json::array({Json::array({{{"subnet", "10.88.7.0/24"}}})})},
          {"routes", Json::array({{{"dst", "0.0.0.0/0"}}})},
          {"dataDir", dir_.sub("ipam")}}}};
    Json plugins = Json::array({bridge});
    if (!extra_plugin.empty()) plugins.push_back({{"type", extra_plugin}});
    if (!extra_object.is_null()) plugins.push_back(extra_object);
    if (with_portmap) {
      plugins.push_back({{"type", "portmap"}, {"capabilities", {{"portMappings", true}}}});
    }
    Json conf = {{"cniVersion", "1.0.0"}, {"name", "berth-it"}, {"plugins", plugins}};
    testing::writeFile(dir_.sub("net.d/10-berth-it.conflist"), conf.dump(2));
  }

  std::string netnsPath(const std::string& id) { return dir_.sub("ns-" + id); }

  AttachmentSpec spec(const std::string& id) {
    AttachmentSpec s;
    s.container_id = id;
    s.netns_path = netnsPath(id);
    s.args = {{"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", id},
              {"K8S_POD_INFRA_CONTAINER_ID", id}};
    return s;
  }

  // Creates the pod's netns and sets the network up; returns the result.
  StatusOr<Result> startPod(const std::string& id, const std::vector<PortMapping>& ports = {},
                            std::optional<Bandwidth> bandwidth = std::nullopt) {
    RETURN_IF_ERROR(createNetns(netnsPath(id)));
    pods_.push_back(id);
    AttachmentSpec s = spec(id);
    s.port_mappings = ports;
    s.bandwidth = bandwidth;
    return rt_->setUp(s);
  }

  std::string leaseFile(const std::string& ip) { return dir_.sub("ipam/berth-it/" + ip); }

  bool iptablesWorks() { return runShell("iptables -w 5 -t nat -S").has_value(); }

  static inline bool mount_ns_ok_ = false;
  TempDir dir_;
  UniqueFd orig_netns_;
  bool in_node_ = false;
  bool sys_mounted_ = false;
  std::unique_ptr<CniRuntime> rt_;
  std::vector<std::string> pods_;
};

TEST_F(ReferencePluginsPrivileged, AddGivesAddressInSubnetWithEth0AndLoUp) {
  useConfig(false);
  auto result = startPod("poda");
  ASSERT_TRUE(result.ok()) << result.status();
  std::vector<std::string> ips = result->sandboxIps("eth0");
  ASSERT_EQ(ips.size(), 1u);
  EXPECT_THAT(ips[0], StartsWith(kSubnetPrefix));
  EXPECT_NE(ips[0], kGateway);
  EXPECT_TRUE(fs::exists(leaseFile(ips[0])));

  std::vector<std::string> eth0_ips;
  bool lo_up = false, eth0_up = false;
  ASSERT_TRUE(runInNetns(netnsPath("poda"), [&] {
                eth0_ips = ipv4Of("eth0");
                lo_up = linkIsUp("lo");
                eth0_up = linkIsUp("eth0");
                return Status();
              }).ok());
  EXPECT_EQ(eth0_ips, std::vector<std::string>{ips[0]});
  EXPECT_TRUE(lo_up);
  EXPECT_TRUE(eth0_up);
  EXPECT_TRUE(linkIsUp(kBridge));  // in the node netns
  EXPECT_EQ(ipv4Of(kBridge), std::vector<std::string>{kGateway});

  // The cache holds the bridge's result.
  auto cached = readCache(dir_.sub("cache/results/berth-it-poda-eth0"));
  ASSERT_TRUE(cached.ok()) << cached.status();
  EXPECT_EQ(cached->network_name, "berth-it");
  EXPECT_EQ(cached->netns, netnsPath("poda"));
  EXPECT_EQ(cached->result["ips"][0]["address"], ips[0] + "/24");
  EXPECT_THAT(cached->config, HasSubstr(kBridge));

  EXPECT_TRUE(rt_->check(spec("poda")).ok()) << rt_->check(spec("poda"));
  NetworkStatus st = rt_->status();
  EXPECT_TRUE(st.ready) << st.message;
}

TEST_F(ReferencePluginsPrivileged, TwoPodsTalkOverTcp) {
  useConfig(false);
  auto a = startPod("poda");
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = startPod("podb");
  ASSERT_TRUE(b.ok()) << b.status();
  std::string ip_a = a->sandboxIps("eth0").at(0);
  std::string ip_b = b->sandboxIps("eth0").at(0);
  EXPECT_NE(ip_a, ip_b);

  UniqueFd listener;
  ASSERT_TRUE(runInNetns(netnsPath("poda"), [&]() -> Status {
                ASSIGN_OR_RETURN(listener, listenTcp(5000));
                return Status();
              }).ok());
  Status sent = runInNetns(netnsPath("podb"), [&] { return connectAndSend(ip_a, 5000, "hello from b"); });
  ASSERT_TRUE(sent.ok()) << sent;
  auto got = acceptAndRead(listener.get());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "hello from b");
}

TEST_F(ReferencePluginsPrivileged, PortmapMakesHostPortReachableFromNode) {
  if (!iptablesWorks()) GTEST_SKIP() << "iptables does not work inside a network namespace here";
  useConfig(true);
  auto a = startPod("poda", {{18080, 5000, "tcp", ""}});
  ASSERT_TRUE(a.ok()) << a.status();
  auto rules = runShell("iptables -w 5 -t nat -S");
  ASSERT_TRUE(rules.has_value());
  EXPECT_THAT(*rules, HasSubstr("--dport 18080"));
  EXPECT_THAT(*rules, HasSubstr("CNI-HOSTPORT-DNAT"));

  UniqueFd listener;
  ASSERT_TRUE(runInNetns(netnsPath("poda"), [&]() -> Status {
                ASSIGN_OR_RETURN(listener, listenTcp(5000));
                return Status();
              }).ok());
  Status sent = connectAndSend(kGateway, 18080, "via hostPort");
  ASSERT_TRUE(sent.ok()) << sent;
  auto got = acceptAndRead(listener.get());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "via hostPort");

  ASSERT_TRUE(rt_->tearDown(spec("poda")).ok());
  rules = runShell("iptables -w 5 -t nat -S");
  ASSERT_TRUE(rules.has_value());
  EXPECT_THAT(*rules, ::testing::Not(HasSubstr("--dport 18080")));
}

TEST_F(ReferencePluginsPrivileged, DelRemovesVethAndFreesAddressAndIsIdempotent) {
  useConfig(true);
  if (!iptablesWorks()) useConfig(false);
  auto a = startPod("poda");
  ASSERT_TRUE(a.ok()) << a.status();
  std::string ip = a->sandboxIps("eth0").at(0);
  ASSERT_GE(a->interfaces.size(), 2u);
  std::string host_veth = a->interfaces[1].name;
  EXPECT_NE(::if_nametoindex(host_veth.c_str()), 0u) << host_veth;
  ASSERT_TRUE(fs::exists(leaseFile(ip)));

  Status del = rt_->tearDown(spec("poda"));
  ASSERT_TRUE(del.ok()) << del;
  EXPECT_EQ(::if_nametoindex(host_veth.c_str()), 0u) << host_veth << " still exists";
  EXPECT_FALSE(fs::exists(leaseFile(ip)));
  EXPECT_FALSE(fs::exists(dir_.sub("cache/results/berth-it-poda-eth0")));
  std::vector<std::string> pod_links;
  ASSERT_TRUE(runInNetns(netnsPath("poda"), [&] {
                pod_links = links();
                return Status();
              }).ok());
  EXPECT_EQ(pod_links, std::vector<std::string>{"lo"});
  Status again = rt_->tearDown(spec("poda"));
  EXPECT_TRUE(again.ok()) << again;

  // The address is handed out again after the release.
  auto b = startPod("podb");
  ASSERT_TRUE(b.ok()) << b.status();
}

TEST_F(ReferencePluginsPrivileged, DelAfterPodNetnsVanished) {
  useConfig(false);
  auto a = startPod("poda");
  ASSERT_TRUE(a.ok()) << a.status();
  std::string ip = a->sandboxIps("eth0").at(0);
  destroyNetns(netnsPath("poda"));  // the netns dies, and its veth pair with it
  Status del = rt_->tearDown(spec("poda"));
  ASSERT_TRUE(del.ok()) << del;
  EXPECT_FALSE(fs::exists(leaseFile(ip)));
  EXPECT_FALSE(fs::exists(dir_.sub("cache/results/berth-it-poda-eth0")));
  EXPECT_TRUE(rt_->tearDown(spec("poda")).ok());
}

TEST_F(ReferencePluginsPrivileged, FailingSecondPluginRollsBackBridge) {
  testing::writeFakePlugin(dir_.sub("bin"), "failer", dir_.sub("rec"),
                           {.add = testing::failWith(7, "refusing on purpose")});
  useConfig(false, "failer");
  auto a = startPod("poda");
  ASSERT_FALSE(a.ok());
  EXPECT_THAT(a.status().message(),
              HasSubstr("set up network \"berth-it\" for container poda: CNI plugin \"failer\" ADD "
                        "failed (code 7): refusing on purpose"));
  EXPECT_THAT(testing::callSummary(dir_.sub("rec")),
              ::testing::ElementsAre("failer:ADD", "failer:DEL"));
  // The bridge's DEL ran: no veth left in the node, no eth0 in the pod, no lease.
  for (const std::string& l : links()) EXPECT_THAT(l, ::testing::AnyOf("lo", kBridge)) << l;
  std::vector<std::string> pod_links;
  ASSERT_TRUE(runInNetns(netnsPath("poda"), [&] {
                pod_links = links();
                return Status();
              }).ok());
  EXPECT_EQ(pod_links, std::vector<std::string>{"lo"});
  auto leases = fs::listDir(dir_.sub("ipam/berth-it"));
  if (leases.ok()) {
    for (const std::string& f : *leases) EXPECT_THAT(f, ::testing::Not(StartsWith(kSubnetPrefix)));
  }
  EXPECT_FALSE(fs::exists(dir_.sub("cache/results/berth-it-poda-eth0")));
}

TEST_F(ReferencePluginsPrivileged, BandwidthCapabilityReachesThePlugin) {
  if (!fs::exists(strCat(kPluginDir, "/bandwidth"))) GTEST_SKIP() << "no bandwidth plugin";
  if (!runShell("tc qdisc show").has_value()) GTEST_SKIP() << "tc (iproute2) unavailable";
  useConfig(false, "", {{"type", "bandwidth"}, {"capabilities", {{"bandwidth", true}}}});
  // 1 Mbit/s egress from the pod, shaped on the host side by an ifb device.
  auto a = startPod("poda", {}, Bandwidth{0, 0, 1000000, 1000000});
  ASSERT_TRUE(a.ok()) << a.status();
  std::string host_veth = a->interfaces.at(1).name;
  auto qdiscs = runShell("tc qdisc show");
  ASSERT_TRUE(qdiscs.has_value());
  EXPECT_THAT(*qdiscs, HasSubstr("tbf")) << *qdiscs;
  auto ingress = runShell("tc qdisc show dev " + host_veth);
  ASSERT_TRUE(ingress.has_value());
  EXPECT_THAT(*ingress, HasSubstr("ingress")) << *ingress;
  ASSERT_TRUE(rt_->tearDown(spec("poda")).ok());
  qdiscs = runShell("tc qdisc show");
  ASSERT_TRUE(qdiscs.has_value());
  EXPECT_THAT(*qdiscs, ::testing::Not(HasSubstr("tbf"))) << *qdiscs;
}

TEST_F(ReferencePluginsPrivileged, SinglePluginConfWithLoopbackPlugin) {
  if (!fs::exists(strCat(kPluginDir, "/loopback"))) GTEST_SKIP() << "no loopback plugin";
  ::unlink(dir_.sub("net.d/10-berth-it.conflist").c_str());
  testing::writeFile(dir_.sub("net.d/99-loopback.conf"),
                     R"({"cniVersion":"1.0.0","name":"lo-only","type":"loopback"})");
  auto a = startPod("poda");
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_FALSE(a->interfaces.empty());
  EXPECT_EQ(a->interfaces[0].name, "lo");
  std::vector<std::string> lo_ips;
  ASSERT_TRUE(runInNetns(netnsPath("poda"), [&] {
                lo_ips = ipv4Of("lo");
                return Status();
              }).ok());
  EXPECT_EQ(lo_ips, std::vector<std::string>{"127.0.0.1"});
  auto cached = readCache(dir_.sub("cache/results/lo-only-poda-eth0"));
  ASSERT_TRUE(cached.ok()) << cached.status();
  EXPECT_THAT(cached->config, HasSubstr("\"plugins\""));  // wrapped into a list
  EXPECT_TRUE(rt_->tearDown(spec("poda")).ok());
}

TEST_F(ReferencePluginsPrivileged, StatusReportsMissingPlugin) {
  useConfig(false, "no-such-plugin");
  NetworkStatus st = rt_->status();
  EXPECT_FALSE(st.ready);
  EXPECT_EQ(st.reason, "NetworkPluginNotReady");
  EXPECT_THAT(st.message, HasSubstr("CNI plugin \"no-such-plugin\" not found"));
  useConfig(false);
  EXPECT_TRUE(rt_->status().ready);
}

}  // namespace
}  // namespace berth::cni
