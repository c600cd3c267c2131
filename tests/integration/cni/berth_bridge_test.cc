// berth-bridge and berth-ipam for real, root only, inside a throwaway "node" network
// namespace per test (the same scheme as reference_plugins_test.cc): pods are network
// namespaces pinned under the test's temp dir; IPAM data lives there too. Plugins run
// either through CniRuntime (the path berthd uses) or directly with execPlugin.
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cni/bridge/bridge_config.h"
#include "cni/nat/firewall.h"
#include "cni/nat/firewall_internal.h"
#include "cni/netns.h"
#include "cni/plugin_exec.h"
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

constexpr char kNetwork[] = "berth-bt";
constexpr char kBridge[] = "berthbt0";
constexpr char kGateway[] = "10.88.9.1";
constexpr char kRefPluginDir[] = "/usr/lib/cni";

int prefixLength(const std::string& cidr) {
  size_t slash = cidr.find('/');
  return slash == std::string::npos ? -1 : std::atoi(cidr.c_str() + slash + 1);
}

std::string binDir() {
  std::string path = BERTH_BRIDGE_BINARY;
  return path.substr(0, path.rfind('/'));
}

class BerthBridgePrivileged : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() == 0) mount_ns_ok_ = enterPrivateMountNamespace();
  }

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces, bind mounts)";
    if (!mount_ns_ok_) GTEST_SKIP() << "cannot create a private mount namespace";
    Status entered = enterFreshNetns(orig_netns_);
    ASSERT_TRUE(entered.ok()) << entered;
    in_node_ = true;
    ASSERT_EQ(links(), std::vector<std::string>{"lo"}) << "node netns must be fresh";
    if (::mount("sysfs", "/sys", "sysfs", 0, nullptr) == 0) sys_mounted_ = true;
    useConfig(pluginConf());
  }

  void TearDown() override {
    if (rt_) {
      for (const std::string& id : pods_) (void)rt_->tearDown(spec(id));
    }
    for (const std::string& id : pods_) destroyNetns(netnsPath(id));
    if (sys_mounted_) ::umount2("/sys", MNT_DETACH);
    if (in_node_) {
      ::unlink(nat::iptablesLockPath().c_str());  // the iptables backend's lock of this netns
      EXPECT_EQ(::setns(orig_netns_.get(), CLONE_NEWNET), 0);
    }
  }

  Json builtinIpam(const std::string& subnet = "10.88.9.0/24") {
    return {{"type", "berth-ipam"}, {"subnet", subnet}, {"dataDir", dir_.sub("ipam")}};
  }

  // berth-bridge's plugin object (no name/cniVersion: the list provides them).
  Json pluginConf(Json ipam = Json(), Json extra = Json::object()) {
    Json p = {{"type", "berth-bridge"}, {"bridge", kBridge},   {"isGateway", true},
              {"isDefaultGateway", true}, {"ipMasq", true},   {"hairpinMode", true},
              {"ipam", ipam.is_null() ? builtinIpam() : ipam}};
    for (auto& [k, v] : extra.items()) p[k] = v;
    return p;
  }

  // Writes a conflist of `plugins` and (re)creates the runtime on it.
  // (Debian's reference plugins 1.1.1 speak up to 1.0.0: tests chaining them pass that.)
  void useConfig(const Json& plugin, const std::vector<Json>& more = {},
                 const std::string& version = "1.1.0") {
    Json plugins = Json::array({plugin});
    for (const Json& p : more) plugins.push_back(p);
    Json conf = {{"cniVersion", version}, {"name", kNetwork}, {"plugins", plugins}};
    (void)fs::removeAll(dir_.sub("net.d"));
    testing::writeFile(dir_.sub("net.d/10-berth-bt.conflist"), conf.dump(2));
    CniOptions options;
    options.conf_dir = dir_.sub("net.d");
    options.bin_dirs = {binDir(), kRefPluginDir};
    options.cache_dir = dir_.sub("cache");
    options.plugin_timeout = std::chrono::seconds(30);
    auto rt = CniRuntime::create(options);
    ASSERT_TRUE(rt.ok()) << rt.status();
    rt_ = std::move(*rt);
  }

  std::string netnsPath(const std::string& id) { return dir_.sub("ns-" + id); }

  AttachmentSpec spec(const std::string& id) {
    AttachmentSpec s;
    s.container_id = id;
    s.netns_path = netnsPath(id);
    s.args = {{"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", id}};
    return s;
  }

  StatusOr<Result> startPod(const std::string& id, const std::vector<PortMapping>& ports = {}) {
    RETURN_IF_ERROR(createNetns(netnsPath(id)));
    pods_.push_back(id);
    AttachmentSpec s = spec(id);
    s.port_mappings = ports;
    return rt_->setUp(s);
  }

  // True if berth-ipam's store holds `ip` (cni/ipam/allocator.h: one line per address).
  bool allocated(const std::string& ip) {
    auto text = fs::readFile(dir_.sub(strCat("ipam/", kNetwork, "/allocations")));
    return text.ok() && (text->find("\n" + ip + " ") != std::string::npos);
  }

  bool hasLink(const std::string& name) { return ::if_nametoindex(name.c_str()) != 0; }

  // berth-bridge run directly (no runtime) with `command` and the plugin object `plugin`.
  StatusOr<PluginOutput> exec(const std::string& command, const std::string& id,
                              const Json& plugin, const std::string& netns_override = "",
                              std::string version = "1.1.0") {
    Json conf = plugin;
    conf["name"] = kNetwork;
    conf["cniVersion"] = version;
    PluginEnv env;
    env.command = command;
    env.container_id = id;
    env.netns = netns_override.empty() ? netnsPath(id) : netns_override;
    env.ifname = "eth0";
    env.bin_dirs = {binDir(), kRefPluginDir};
    return execPlugin(BERTH_BRIDGE_BINARY, "berth-bridge", env, conf.dump(),
                      std::chrono::seconds(30));
  }

  // bv* links on the node.
  std::vector<std::string> hostVeths() {
    std::vector<std::string> out;
    for (const std::string& l : links()) {
      if (l.rfind("bv", 0) == 0) out.push_back(l);
    }
    return out;
  }

  static inline bool mount_ns_ok_ = false;
  TempDir dir_;
  UniqueFd orig_netns_;
  bool in_node_ = false;
  bool sys_mounted_ = false;
  std::unique_ptr<CniRuntime> rt_;
  std::vector<std::string> pods_;
};

TEST_F(BerthBridgePrivileged, TwoPodsTalkWithoutNatAndCheckPasses) {
  auto a = startPod("poda");
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = startPod("podb");
  ASSERT_TRUE(b.ok()) << b.status();
  std::string ip_a = a->sandboxIps("eth0").at(0);
  std::string ip_b = b->sandboxIps("eth0").at(0);
  EXPECT_THAT(ip_a, StartsWith("10.88.9."));
  EXPECT_NE(ip_a, ip_b);
  EXPECT_NE(ip_a, kGateway);
  // Result: bridge, host veth, pod interface; the IP points at the pod interface.
  ASSERT_EQ(a->interfaces.size(), 3u);
  EXPECT_EQ(a->interfaces[0].name, kBridge);
  EXPECT_EQ(a->interfaces[1].name, bridge::hostVethName("poda", "eth0"));
  EXPECT_EQ(a->interfaces[2].name, "eth0");
  EXPECT_EQ(a->interfaces[2].sandbox, netnsPath("poda"));
  EXPECT_EQ(a->ips.at(0).interface, 2);
  EXPECT_EQ(a->ips.at(0).gateway, kGateway);
  EXPECT_EQ(ipv4Of(kBridge), std::vector<std::string>{kGateway});
  EXPECT_TRUE(allocated(ip_a));

  auto peer = tcpExchange(netnsPath("poda"), 5000, netnsPath("podb"), ip_a, 5000);
  ASSERT_TRUE(peer.ok()) << peer.status();
  EXPECT_EQ(*peer, ip_b) << "pod-to-pod traffic must not be masqueraded";

  Status check = rt_->check(spec("poda"));
  EXPECT_TRUE(check.ok()) << check;

  ASSERT_TRUE(rt_->tearDown(spec("poda")).ok());
  EXPECT_FALSE(hasLink(bridge::hostVethName("poda", "eth0")));
  EXPECT_FALSE(allocated(ip_a));
  std::vector<std::string> pod_links;
  ASSERT_TRUE(runInNetns(netnsPath("poda"), [&] {
                pod_links = links();
                return Status();
              }).ok());
  EXPECT_EQ(pod_links, std::vector<std::string>{"lo"});
  // DEL again (and DEL of an attachment never added) succeeds.
  EXPECT_TRUE(exec("DEL", "poda", pluginConf()).ok());
  EXPECT_TRUE(exec("DEL", "never-added", pluginConf()).ok());
}

TEST_F(BerthBridgePrivileged, HundredPodsGetUniqueAddressesAndReachEachOther) {
  constexpr int kPods = 100;
  std::set<std::string> ips;
  std::vector<std::string> ip_of(kPods);
  for (int i = 0; i < kPods; ++i) {
    auto r = startPod(strCat("pod", i));
    ASSERT_TRUE(r.ok()) << "pod " << i << ": " << r.status();
    ip_of[i] = r->sandboxIps("eth0").at(0);
    ips.insert(ip_of[i]);
  }
  EXPECT_EQ(ips.size(), static_cast<size_t>(kPods));
  // Each pod reaches the next one (a ring over all 100).
  for (int i = 0; i < kPods; ++i) {
    int next = (i + 1) % kPods;
    auto peer = tcpExchange(netnsPath(strCat("pod", next)), 7000, netnsPath(strCat("pod", i)),
                            ip_of[next], 7000);
    ASSERT_TRUE(peer.ok()) << "pod" << i << " -> pod" << next << ": " << peer.status();
    EXPECT_EQ(*peer, ip_of[i]);
  }
  for (int i = 0; i < kPods; ++i) ASSERT_TRUE(rt_->tearDown(spec(strCat("pod", i))).ok());
  EXPECT_TRUE(hostVeths().empty());
  for (const std::string& ip : ips) EXPECT_FALSE(allocated(ip)) << ip;
}

TEST_F(BerthBridgePrivileged, CheckCatchesRemovedAddressVethOffBridgeAndMissingMasquerade) {
  auto a = startPod("poda");
  ASSERT_TRUE(a.ok()) << a.status();
  std::string cidr = a->ips.at(0).address;
  ASSERT_TRUE(runInNetns(netnsPath("poda"), [&]() -> Status {
                if (!runShell("ip addr del " + cidr + " dev eth0")) {
                  return internalError("ip addr del failed");
                }
                return Status();
              }).ok());
  Status check = rt_->check(spec("poda"));
  ASSERT_FALSE(check.ok());
  EXPECT_THAT(check.message(), HasSubstr(cidr));

  auto b = startPod("podb");
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_TRUE(runShell("ip link set dev " + bridge::hostVethName("podb", "eth0") + " nomaster"));
  check = rt_->check(spec("podb"));
  ASSERT_FALSE(check.ok());
  EXPECT_THAT(check.message(), HasSubstr("not attached"));

  auto c = startPod("podc");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(rt_->check(spec("podc")).ok());
  auto firewall = nat::Firewall::open();
  ASSERT_TRUE(firewall.ok()) << firewall.status();
  ASSERT_TRUE((*firewall)->removeMasquerade(kNetwork).ok());
  check = rt_->check(spec("podc"));
  ASSERT_FALSE(check.ok());
  EXPECT_THAT(check.message(), HasSubstr(kNetwork));
}

TEST_F(BerthBridgePrivileged, GcAfterPodNetnsVanishedFreesAddressVethAndHostPortRules) {
  Json plugin = pluginConf(Json(), {{"capabilities", {{"portMappings", true}}}});
  useConfig(plugin);
  auto a = startPod("poda", {{18081, 80, "tcp", ""}});
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = startPod("podb");
  ASSERT_TRUE(b.ok()) << b.status();
  std::string ip_a = a->sandboxIps("eth0").at(0), ip_b = b->sandboxIps("eth0").at(0);
  auto firewall = nat::Firewall::open();
  ASSERT_TRUE(firewall.ok());
  ASSERT_EQ((*firewall)->portMappingAttachments(kNetwork)->size(), 1u);

  destroyNetns(netnsPath("poda"));  // gone without DEL
  Json gc = pluginConf();
  gc["cni.dev/valid-attachments"] = Json::array({{{"containerID", "podb"}, {"ifname", "eth0"}}});
  auto out = exec("GC", "", gc);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_FALSE(allocated(ip_a));
  EXPECT_TRUE(allocated(ip_b));
  EXPECT_FALSE(hasLink(bridge::hostVethName("poda", "eth0")));
  EXPECT_TRUE(hasLink(bridge::hostVethName("podb", "eth0")));
  EXPECT_TRUE((*firewall)->portMappingAttachments(kNetwork)->empty());
}

TEST_F(BerthBridgePrivileged, EightConcurrentAddProcessesGetUniqueAddresses) {
  constexpr int kProcs = 8;
  for (int i = 0; i < kProcs; ++i) {
    ASSERT_TRUE(createNetns(netnsPath(strCat("c", i))).ok());
    pods_.push_back(strCat("c", i));
  }
  std::vector<std::string> got(kProcs);
  std::vector<Status> errors(kProcs);
  std::vector<std::thread> threads;
  for (int i = 0; i < kProcs; ++i) {
    threads.emplace_back([&, i] {
      auto out = exec("ADD", strCat("c", i), pluginConf());
      if (!out.ok()) {
        errors[i] = out.status();
        return;
      }
      got[i] = out->result["ips"][0]["address"].get<std::string>();
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> unique;
  for (int i = 0; i < kProcs; ++i) {
    ASSERT_TRUE(errors[i].ok()) << errors[i];
    unique.insert(got[i]);
  }
  EXPECT_EQ(unique.size(), static_cast<size_t>(kProcs));
  for (int i = 0; i < kProcs; ++i) EXPECT_TRUE(exec("DEL", strCat("c", i), pluginConf()).ok());
}

TEST_F(BerthBridgePrivileged, FailedAddLeavesNothingBehind) {
  // A route via a gateway the pod cannot reach fails after the veth and the IP exist.
  Json ipam = builtinIpam();
  ipam["routes"] = Json::array({{{"dst", "192.168.77.0/24"}, {"gw", "10.99.99.1"}}});
  ASSERT_TRUE(createNetns(netnsPath("bad")).ok());
  pods_.push_back("bad");
  auto out = exec("ADD", "bad", pluginConf(ipam));
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.status().message(), HasSubstr("192.168.77.0/24"));
  EXPECT_TRUE(hostVeths().empty());
  std::vector<std::string> pod_links;
  ASSERT_TRUE(runInNetns(netnsPath("bad"), [&] {
                pod_links = links();
                return Status();
              }).ok());
  EXPECT_EQ(pod_links, std::vector<std::string>{"lo"});
  auto left = fs::readFile(dir_.sub(strCat("ipam/", kNetwork, "/allocations")));
  if (left.ok()) {
    EXPECT_EQ(left->find(" bad "), std::string::npos) << "allocation left: " << *left;
  }
}

TEST_F(BerthBridgePrivileged, ReferenceBridgeConflistGivesEquivalentResult) {
  // The reference plugin's configuration with only "type" changed.
  Json reference = {
      {"type", "bridge"}, {"bridge", kBridge}, {"isGateway", true}, {"ipMasq", false},
      {"hairpinMode", true},
      {"ipam",
       {{"type", "host-local"},
        {"ranges", Json::array({Json::array({{{"subnet", "10.88.9.0/24"}}})})},
        {"routes", Json::array({{{"dst", "0.0.0.0/0"}}})},
        {"dataDir", dir_.sub("host-local")}}}};
  if (!fs::exists(strCat(kRefPluginDir, "/bridge"))) GTEST_SKIP() << "no reference plugins";
  useConfig(reference, {}, "1.0.0");
  auto ref = startPod("ref");
  ASSERT_TRUE(ref.ok()) << ref.status();
  Json ours = reference;
  ours["type"] = "berth-bridge";
  useConfig(ours, {}, "1.0.0");  // host-local delegated from berth-bridge
  auto got = startPod("ours");
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->interfaces.size(), ref->interfaces.size());
  for (size_t i = 0; i < got->interfaces.size(); ++i) {
    EXPECT_EQ(got->interfaces[i].sandbox.empty(), ref->interfaces[i].sandbox.empty());
  }
  EXPECT_EQ(got->interfaces[0].name, ref->interfaces[0].name);
  EXPECT_EQ(got->interfaces[2].name, ref->interfaces[2].name);
  ASSERT_EQ(got->ips.size(), ref->ips.size());
  EXPECT_EQ(got->ips[0].gateway, ref->ips[0].gateway);
  EXPECT_EQ(got->ips[0].interface, ref->ips[0].interface);
  EXPECT_EQ(prefixLength(got->ips[0].address), prefixLength(ref->ips[0].address));
  ASSERT_EQ(got->routes.size(), ref->routes.size());
  EXPECT_EQ(got->routes[0].dst, ref->routes[0].dst);
  // And with berth-ipam the same shape again.
  ours["ipam"] = builtinIpam();
  ours["ipam"]["routes"] = Json::array({{{"dst", "0.0.0.0/0"}}});
  useConfig(ours);
  auto builtin = startPod("builtin");
  ASSERT_TRUE(builtin.ok()) << builtin.status();
  EXPECT_EQ(builtin->interfaces.size(), ref->interfaces.size());
  EXPECT_EQ(builtin->ips[0].gateway, ref->ips[0].gateway);
  ASSERT_EQ(builtin->routes.size(), 1u);
}

TEST_F(BerthBridgePrivileged, ChainsWithReferencePortmapAndBandwidth) {
  for (const char* p : {"portmap", "bandwidth"}) {
    if (!fs::exists(strCat(kRefPluginDir, "/", p))) GTEST_SKIP() << "no reference " << p;
  }
  if (!runShell("iptables -w 5 -t nat -S")) GTEST_SKIP() << "iptables unusable here";
  useConfig(pluginConf(), {{{"type", "portmap"}, {"capabilities", {{"portMappings", true}}}},
                           {{"type", "bandwidth"}, {"capabilities", {{"bandwidth", true}}}}},
            "1.0.0");
  ASSERT_TRUE(createNetns(netnsPath("poda")).ok());
  pods_.push_back("poda");
  AttachmentSpec s = spec("poda");
  s.port_mappings = {{18082, 5000, "tcp", ""}};
  s.bandwidth = Bandwidth{1000000, 1000000, 1000000, 1000000};
  auto a = rt_->setUp(s);
  ASSERT_TRUE(a.ok()) << a.status();
  auto reached = tcpExchange(netnsPath("poda"), 5000, "", kGateway, 18082);
  ASSERT_TRUE(reached.ok()) << reached.status();
  EXPECT_TRUE(rt_->tearDown(s).ok());
  EXPECT_TRUE(hostVeths().empty());
}

TEST_F(BerthBridgePrivileged, BuiltInHostPortReachableFromNode) {
  useConfig(pluginConf(Json(), {{"capabilities", {{"portMappings", true}}}}));
  auto a = startPod("poda", {{18083, 5000, "tcp", ""}});
  ASSERT_TRUE(a.ok()) << a.status();
  auto reached = tcpExchange(netnsPath("poda"), 5000, "", kGateway, 18083);
  ASSERT_TRUE(reached.ok()) << reached.status();
  EXPECT_TRUE(rt_->check(spec("poda")).ok());
  EXPECT_TRUE(rt_->tearDown(spec("poda")).ok());
  auto firewall = nat::Firewall::open();
  ASSERT_TRUE(firewall.ok());
  EXPECT_TRUE((*firewall)->portMappingAttachments(kNetwork)->empty());
}

TEST_F(BerthBridgePrivileged, IptablesBackendMasqueradesAndMapsHostPorts) {
  if (!runShell("iptables-save -t nat")) GTEST_SKIP() << "iptables unusable here";
  useConfig(pluginConf(Json(), {{"ipMasqBackend", "iptables"},
                                {"capabilities", {{"portMappings", true}}}}));
  auto a = startPod("poda", {{18084, 5000, "tcp", ""}});
  ASSERT_TRUE(a.ok()) << a.status();
  auto rules = runShell("iptables-save -t nat");
  ASSERT_TRUE(rules.has_value());
  EXPECT_THAT(*rules, HasSubstr("-j BERTH-MASQ-"));
  EXPECT_THAT(*rules, HasSubstr("--dport 18084"));
  auto reached = tcpExchange(netnsPath("poda"), 5000, "", kGateway, 18084);
  ASSERT_TRUE(reached.ok()) << reached.status();
  EXPECT_TRUE(rt_->check(spec("poda")).ok());
  // A second pod finds the rules in place and leaves one rule set for the network.
  ASSERT_TRUE(startPod("podb").ok());
  rules = runShell("iptables-save -t nat");
  size_t first = rules->find("-j MASQUERADE\n-A BERTH-MASQ");
  EXPECT_EQ(first, std::string::npos);
  auto firewall = nat::Firewall::open(nat::Backend::kIptables);
  ASSERT_TRUE(firewall.ok());
  EXPECT_EQ((*firewall)->portMappingAttachments(kNetwork)->size(), 1u);
  ASSERT_TRUE((*firewall)->removeMasquerade(kNetwork).ok());
  Status check = rt_->check(spec("poda"));
  ASSERT_FALSE(check.ok());
  EXPECT_THAT(check.message(), HasSubstr("masquerade"));
  ASSERT_TRUE(rt_->tearDown(spec("poda")).ok());
  rules = runShell("iptables-save -t nat");
  EXPECT_THAT(*rules, ::testing::Not(HasSubstr("--dport 18084")));
}

TEST_F(BerthBridgePrivileged, MtuPromiscRequestedMacAndIpApply) {
  useConfig(pluginConf(Json(), {{"mtu", 1400}, {"promiscMode", true},
                                {"capabilities", {{"mac", true}, {"ips", true}}}}));
  ASSERT_TRUE(createNetns(netnsPath("poda")).ok());
  pods_.push_back("poda");
  AttachmentSpec s = spec("poda");
  s.ips = {"10.88.9.77"};
  s.extra_capabilities["mac"] = "0a:58:0a:58:09:4d";
  auto a = rt_->setUp(s);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->sandboxIps("eth0"), std::vector<std::string>{"10.88.9.77"});
  EXPECT_EQ(a->interfaces[2].mac, "0a:58:0a:58:09:4d");
  std::string host = bridge::hostVethName("poda", "eth0");
  auto br = runShell(std::string("ip -d link show ") + kBridge);
  ASSERT_TRUE(br.has_value());
  EXPECT_THAT(*br, HasSubstr("PROMISC"));
  auto veth = runShell("ip link show " + host);
  ASSERT_TRUE(veth.has_value());
  EXPECT_THAT(*veth, HasSubstr("mtu 1400"));
  std::optional<std::string> pod;
  ASSERT_TRUE(runInNetns(netnsPath("poda"), [&] {
                pod = runShell("ip link show eth0");
                return Status();
              }).ok());
  ASSERT_TRUE(pod.has_value());
  EXPECT_THAT(*pod, HasSubstr("mtu 1400"));
  EXPECT_TRUE(rt_->check(s).ok());
}

TEST_F(BerthBridgePrivileged, VlanPutsThePortInTheVlanOrSaysTheKernelCannot) {
  bool kernel_has_vlans =
      runShell("ip link add btvlantest type bridge && ip link set btvlantest type bridge "
               "vlan_filtering 1").has_value();
  (void)runShell("ip link del btvlantest");
  useConfig(pluginConf(Json(), {{"vlan", 100}}));
  auto a = startPod("poda");
  if (!kernel_has_vlans) {
    ASSERT_FALSE(a.ok());
    EXPECT_THAT(a.status().message(), HasSubstr("CONFIG_BRIDGE_VLAN_FILTERING"));
    EXPECT_TRUE(hostVeths().empty());
    GTEST_SKIP() << "this kernel has no bridge VLAN filtering; checked the error instead";
  }
  ASSERT_TRUE(a.ok()) << a.status();
  auto vlans = runShell("bridge vlan show dev " + bridge::hostVethName("poda", "eth0"));
  ASSERT_TRUE(vlans.has_value());
  EXPECT_THAT(*vlans, HasSubstr("100 PVID"));
}

TEST_F(BerthBridgePrivileged, MacSpoofCheckDropsFramesFromAnotherMac) {
  useConfig(pluginConf(Json(), {{"macspoofchk", true}}));
  auto a = startPod("poda");
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = startPod("podb");
  ASSERT_TRUE(b.ok()) << b.status();
  std::string ip_a = a->sandboxIps("eth0").at(0);
  EXPECT_TRUE(rt_->check(spec("poda")).ok());
  // Traffic with the pod's own MAC passes.
  auto peer = tcpExchange(netnsPath("poda"), 5000, netnsPath("podb"), ip_a, 5000);
  ASSERT_TRUE(peer.ok()) << peer.status();
  // Pod b changes its MAC: its frames are dropped, so it cannot reach pod a any more.
  ASSERT_TRUE(runInNetns(netnsPath("podb"), [&]() -> Status {
                if (!runShell("ip link set eth0 address 0a:58:de:ad:be:ef")) return internalError("set mac");
                (void)runShell("ip neigh flush all");
                return Status();
              }).ok());
  (void)runShell(std::string("ip neigh flush dev ") + kBridge);
  auto spoofed = tcpExchange(netnsPath("poda"), 5001, netnsPath("podb"), ip_a, 5001);
  EXPECT_FALSE(spoofed.ok()) << "a spoofed MAC got through";
  ASSERT_TRUE(rt_->tearDown(spec("podb")).ok());
  auto left = nat::macSpoofAttachments(kNetwork);
  ASSERT_TRUE(left.ok()) << left.status();
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].container_id, "poda");
}

TEST_F(BerthBridgePrivileged, BerthIpamExecutableServesTheReferenceBridge) {
  if (!fs::exists(strCat(kRefPluginDir, "/bridge"))) GTEST_SKIP() << "no reference bridge";
  Json reference = {{"type", "bridge"}, {"bridge", kBridge}, {"isGateway", true},
                    {"ipam", builtinIpam()}};
  useConfig(reference, {}, "1.0.0");
  auto a = startPod("poda");
  ASSERT_TRUE(a.ok()) << a.status();
  std::string ip = a->sandboxIps("eth0").at(0);
  EXPECT_THAT(ip, StartsWith("10.88.9."));
  EXPECT_TRUE(allocated(ip));
  EXPECT_TRUE(rt_->check(spec("poda")).ok());
  ASSERT_TRUE(rt_->tearDown(spec("poda")).ok());
  EXPECT_FALSE(allocated(ip));
}

TEST_F(BerthBridgePrivileged, MasqueradesTrafficLeavingThePodSubnet) {
  // An "outside" netns on a veth from the node: 192.0.2.1 (node) <-> 192.0.2.2 (ext).
  ASSERT_TRUE(createNetns(netnsPath("ext")).ok());
  pods_.push_back("ext");
  ASSERT_TRUE(runShell("ip link add bt-ext type veth peer name eth0 netns " + netnsPath("ext")));
  ASSERT_TRUE(runShell("ip addr add 192.0.2.1/24 dev bt-ext && ip link set bt-ext up"));
  ASSERT_TRUE(runInNetns(netnsPath("ext"), [&]() -> Status {
                if (!runShell("ip addr add 192.0.2.2/24 dev eth0 && ip link set eth0 up && "
                              "ip link set lo up")) {
                  return internalError("configure ext");
                }
                return Status();
              }).ok());
  auto a = startPod("poda");
  ASSERT_TRUE(a.ok()) << a.status();
  auto peer = tcpExchange(netnsPath("ext"), 6000, netnsPath("poda"), "192.0.2.2", 6000);
  ASSERT_TRUE(peer.ok()) << peer.status();
  EXPECT_EQ(*peer, "192.0.2.1") << "traffic leaving the pod subnet must be masqueraded";
}

TEST_F(BerthBridgePrivileged, DualStackPodGetsBothFamiliesWithoutTentativeAddress) {
  Json ipam = {{"type", "berth-ipam"},
               {"ranges", Json::array({Json::array({{{"subnet", "10.88.9.0/24"}}}),
                                       Json::array({{{"subnet", "fd00:88:9::/64"}}})})},
               {"dataDir", dir_.sub("ipam")}};
  useConfig(pluginConf(ipam));
  auto a = startPod("poda");
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ(a->ips.size(), 2u);
  EXPECT_FALSE(a->ips[0].isV6());
  EXPECT_TRUE(a->ips[1].isV6());
  std::optional<std::string> addrs;
  ASSERT_TRUE(runInNetns(netnsPath("poda"), [&] {
                addrs = runShell("ip -6 addr show dev eth0 scope global");
                return Status();
              }).ok());
  ASSERT_TRUE(addrs.has_value());
  EXPECT_THAT(*addrs, HasSubstr(a->ips[1].address));
  EXPECT_THAT(*addrs, ::testing::Not(HasSubstr("tentative")));
  EXPECT_TRUE(rt_->check(spec("poda")).ok());
}

TEST_F(BerthBridgePrivileged, BadInputGetsSpecErrorCodesAndLeavesNothing) {
  ASSERT_TRUE(createNetns(netnsPath("x")).ok());
  pods_.push_back("x");
  // Unknown cniVersion: code 1.
  auto out = exec("ADD", "x", pluginConf(), "", "9.9.9");
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(cniErrorCode(out.status()), 1);
  // Missing environment: code 4.
  PluginEnv env;
  env.command = "ADD";
  env.ifname = "eth0";
  Json conf = pluginConf();
  conf["name"] = kNetwork;
  conf["cniVersion"] = "1.1.0";
  out = execPlugin(BERTH_BRIDGE_BINARY, "berth-bridge", env, conf.dump(), std::chrono::seconds(10));
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(cniErrorCode(out.status()), 4);
  EXPECT_THAT(out.status().message(), HasSubstr("CNI_CONTAINERID"));
  // Malformed JSON: code 6.
  env.container_id = "x";
  env.netns = netnsPath("x");
  out = execPlugin(BERTH_BRIDGE_BINARY, "berth-bridge", env, "{oops", std::chrono::seconds(10));
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(cniErrorCode(out.status()), 6);
  // A netns path that is not a netns: code 4.
  testing::writeFile(dir_.sub("not-a-netns"), "");
  out = exec("ADD", "x", pluginConf(), dir_.sub("not-a-netns"));
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(cniErrorCode(out.status()), 4);
  EXPECT_THAT(out.status().message(), HasSubstr("not a network namespace"));
  // Bridge name taken by a non-bridge link.
  ASSERT_TRUE(runShell("ip link add btnotbr type veth peer name btnotbr-p"));
  out = exec("ADD", "x", pluginConf(Json(), {{"bridge", "btnotbr"}}));
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.status().message(), HasSubstr("btnotbr"));
  EXPECT_THAT(out.status().message(), HasSubstr("not a bridge"));
  EXPECT_TRUE(hostVeths().empty());
  // Subnet exhausted: a /30 has one address besides network, gateway and broadcast.
  ASSERT_TRUE(createNetns(netnsPath("y")).ok());
  pods_.push_back("y");
  Json small = pluginConf(builtinIpam("10.88.10.0/30"));
  out = exec("ADD", "x", small);
  ASSERT_TRUE(out.ok()) << out.status();
  out = exec("ADD", "y", small);
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.status().message(), HasSubstr("10.88.10.2"));
  EXPECT_EQ(hostVeths().size(), 1u);
  EXPECT_TRUE(exec("DEL", "x", small).ok());
  EXPECT_TRUE(hostVeths().empty());
}

TEST_F(BerthBridgePrivileged, VersionAndStatus) {
  PluginEnv env;
  env.command = "VERSION";
  auto out = execPlugin(BERTH_BRIDGE_BINARY, "berth-bridge", env, R"({"cniVersion":"1.1.0"})",
                        std::chrono::seconds(10));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->result["cniVersion"], "1.1.0");
  EXPECT_EQ(out->result["supportedVersions"].size(), supportedVersions().size());
  auto status = exec("STATUS", "", pluginConf());
  EXPECT_TRUE(status.ok()) << status.status();
  // An IPAM whose pod CIDR file is not written yet cannot serve ADD: code 50.
  Json waiting = {{"type", "berth-ipam"}, {"podCIDRFile", dir_.sub("no-such-file")},
                  {"dataDir", dir_.sub("ipam")}};
  status = exec("STATUS", "", pluginConf(waiting));
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(cniErrorCode(status.status()), 50);
  ASSERT_TRUE(createNetns(netnsPath("w")).ok());
  pods_.push_back("w");
  auto add = exec("ADD", "w", pluginConf(waiting));
  ASSERT_FALSE(add.ok());
  EXPECT_EQ(cniErrorCode(add.status()), 11);
}

}  // namespace
}  // namespace berth::cni
