// Cross-node pod networking (issue 5, "Cross-node routing"), root only: three "node"
// network namespaces joined by veth pairs to a switch (a bridge in the test's own fresh
// netns, which also plays the world outside the cluster at 192.168.50.1). Each node
// gets its pod subnet (10.244.<i>.0/24) written as berth-ipam's podCIDRFile, routes to
// the other nodes' subnets via reconcileNodeRoutes(), and a pod attached by the real
// berth-bridge plugin run inside the node's netns.
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cni/link/netlink.h"
#include "cni/netns.h"
#include "cni/node_network.h"
#include "cni/plugin_exec.h"
#include "cni/result.h"
#include "common/fs.h"
#include "tests/integration/cni/net_test_util.h"
#include "tests/unit/cni/cni_test_util.h"

namespace berth::cni {
namespace {

using json::Json;
using testing::TempDir;
using namespace testing::net;  // NOLINT: test helpers

constexpr int kNodes = 3;

std::string nodeIp(int i) { return strCat("192.168.50.", 10 + i); }
std::string podSubnet(int i) { return strCat("10.244.", i, ".0/24"); }

class MultiNodePrivileged : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() == 0) mount_ns_ok_ = enterPrivateMountNamespace();
  }

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces)";
    if (!mount_ns_ok_) GTEST_SKIP() << "cannot create a private mount namespace";
    Status entered = enterFreshNetns(orig_netns_);
    ASSERT_TRUE(entered.ok()) << entered;
    in_hub_ = true;
    auto hub = link::RouteSocket::open();
    ASSERT_TRUE(hub.ok());
    auto sw = hub->ensureBridge({"switch0", 0, false, false});
    ASSERT_TRUE(sw.ok()) << sw.status();
    ASSERT_TRUE(hub->addAddress(sw->index, "192.168.50.1/24").ok());
    for (int i = 0; i < kNodes; ++i) {
      ASSERT_TRUE(createNetns(nodePath(i)).ok());
      auto fd = openNetns(nodePath(i));
      ASSERT_TRUE(fd.ok());
      link::VethSpec veth;
      veth.host_name = strCat("sw-node", i);
      veth.peer_name = "eth0";
      veth.peer_netns_fd = fd->get();
      ASSERT_TRUE(hub->createVeth(veth).ok());
      auto port = hub->link(veth.host_name);
      ASSERT_TRUE(port.ok());
      ASSERT_TRUE(hub->setMaster(port->index, sw->index).ok());
      ASSERT_TRUE(hub->setUp(port->index).ok());
      Status st = runInNetns(nodePath(i), [&]() -> Status {
        RETURN_IF_ERROR(setLinkUp("lo"));
        ASSIGN_OR_RETURN(link::RouteSocket node, link::RouteSocket::open());
        ASSIGN_OR_RETURN(link::LinkInfo eth, node.link("eth0"));
        RETURN_IF_ERROR(node.addAddress(eth.index, nodeIp(i) + "/24"));
        RETURN_IF_ERROR(node.setUp(eth.index));
        return node.addRoute({"0.0.0.0/0", "192.168.50.1", eth.index});
      });
      ASSERT_TRUE(st.ok()) << st;
      ASSERT_TRUE(writePodCidrFile(dir_.sub(strCat("node", i, "/pod-cidr")), {podSubnet(i)}).ok());
      ASSERT_TRUE(reconcileRoutes(i).ok());
    }
  }

  void TearDown() override {
    for (const std::string& p : pods_) destroyNetns(p);
    for (int i = 0; i < kNodes; ++i) destroyNetns(nodePath(i));
    if (in_hub_) {
      EXPECT_EQ(::setns(orig_netns_.get(), CLONE_NEWNET), 0);
    }
  }

  std::string nodePath(int i) { return dir_.sub(strCat("node", i, ".netns")); }

  // Node i's routes to every other node's pod subnet.
  Status reconcileRoutes(int i, int skip = -1) {
    std::vector<std::string> entries;
    for (int k = 0; k < kNodes; ++k) {
      if (k != i && k != skip) entries.push_back(strCat(podSubnet(k), " via ", nodeIp(k)));
    }
    return runInNetns(nodePath(i), [&]() -> Status {
      ASSIGN_OR_RETURN(std::vector<NodeRoute> routes, parseNodeRoutes(entries));
      return reconcileNodeRoutes(routes);
    });
  }

  // A pod on node i attached by berth-bridge run inside the node's netns; its IP.
  StatusOr<std::string> startPod(int i, const std::string& id) {
    std::string path = dir_.sub(id + ".netns");
    RETURN_IF_ERROR(createNetns(path));
    pods_.push_back(path);
    Json conf = {{"cniVersion", "1.1.0"},
                 {"name", "pods"},
                 {"type", "berth-bridge"},
                 {"bridge", "cbr0"},
                 {"isDefaultGateway", true},
                 {"ipMasq", true},
                 {"nonMasqueradeCIDRs", {"10.244.0.0/16"}},
                 {"ipam",
                  {{"type", "berth-ipam"},
                   {"podCIDRFile", dir_.sub(strCat("node", i, "/pod-cidr"))},
                   {"dataDir", dir_.sub(strCat("node", i, "/ipam"))}}}};
    std::string ip;
    Status st = runInNetns(nodePath(i), [&]() -> Status {
      PluginEnv env;
      env.command = "ADD";
      env.container_id = id;
      env.netns = path;
      env.ifname = "eth0";
      ASSIGN_OR_RETURN(PluginOutput out, execPlugin(BERTH_BRIDGE_BINARY, "berth-bridge", env,
                                                    conf.dump(), std::chrono::seconds(30)));
      ASSIGN_OR_RETURN(Result result, parseResult(out.result, "berth-bridge result"));
      ip = result.sandboxIps("eth0").at(0);
      return Status();
    });
    RETURN_IF_ERROR(st);
    return ip;
  }

  static inline bool mount_ns_ok_ = false;
  TempDir dir_;
  UniqueFd orig_netns_;
  bool in_hub_ = false;
  std::vector<std::string> pods_;
};

TEST_F(MultiNodePrivileged, PodsOnDifferentNodesTalkByPodIpWithoutNat) {
  auto a = startPod(0, "pod-a");
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = startPod(1, "pod-b");
  ASSERT_TRUE(b.ok()) << b.status();
  auto c = startPod(2, "pod-c");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(*a, ::testing::StartsWith("10.244.0."));
  EXPECT_THAT(*b, ::testing::StartsWith("10.244.1."));
  auto seen = tcpExchange(dir_.sub("pod-b.netns"), 7100, dir_.sub("pod-a.netns"), *b, 7100);
  ASSERT_TRUE(seen.ok()) << seen.status();
  EXPECT_EQ(*seen, *a) << "pod-to-pod traffic across nodes must keep the pod IP";
  seen = tcpExchange(dir_.sub("pod-a.netns"), 7101, dir_.sub("pod-c.netns"), *a, 7101);
  ASSERT_TRUE(seen.ok()) << seen.status();
  EXPECT_EQ(*seen, *c);
}

TEST_F(MultiNodePrivileged, TrafficLeavingTheClusterIsMasqueraded) {
  auto a = startPod(0, "pod-a");
  ASSERT_TRUE(a.ok()) << a.status();
  // The switch's netns is "outside": 192.168.50.1 is not in any pod subnet.
  UniqueFd listener;
  auto l = listenTcp(7200);
  ASSERT_TRUE(l.ok());
  Status sent = runInNetns(dir_.sub("pod-a.netns"), [&] { return connectAndSend("192.168.50.1", 7200, "out"); });
  ASSERT_TRUE(sent.ok()) << sent;
  std::string peer;
  auto got = acceptAndRead(l->get(), &peer);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(peer, nodeIp(0));
}

TEST_F(MultiNodePrivileged, ReconcileFollowsNodesComingAndGoingAndKeepsForeignRoutes) {
  auto routesOf = [&](int i) {
    std::vector<link::RouteSpec> out;
    EXPECT_TRUE(runInNetns(nodePath(i), [&]() -> Status {
                  ASSIGN_OR_RETURN(link::RouteSocket s, link::RouteSocket::open());
                  ASSIGN_OR_RETURN(out, s.routes(AF_INET));
                  return Status();
                }).ok());
    return out;
  };
  auto has = [](const std::vector<link::RouteSpec>& rs, const std::string& dst) {
    for (const auto& r : rs) {
      if (r.dst == dst) return true;
    }
    return false;
  };
  auto r0 = routesOf(0);
  EXPECT_TRUE(has(r0, podSubnet(1)));
  EXPECT_TRUE(has(r0, podSubnet(2)));
  // A route someone else made stays.
  ASSERT_TRUE(runInNetns(nodePath(0), [&]() -> Status {
                ASSIGN_OR_RETURN(link::RouteSocket s, link::RouteSocket::open());
                return s.addRoute({"172.31.0.0/16", "192.168.50.1"});
              }).ok());
  ASSERT_TRUE(reconcileRoutes(0, /*skip=*/2).ok());  // node 2 left
  r0 = routesOf(0);
  EXPECT_TRUE(has(r0, podSubnet(1)));
  EXPECT_FALSE(has(r0, podSubnet(2)));
  EXPECT_TRUE(has(r0, "172.31.0.0/16"));
  ASSERT_TRUE(reconcileRoutes(0).ok());  // and came back
  EXPECT_TRUE(has(routesOf(0), podSubnet(2)));
}

TEST(NodeNetwork, ParsesRoutesAndRejectsBadOnes) {
  auto r = parseNodeRoutes({"10.244.1.0/24 via 192.168.0.2", "fd00:1::/64 via fd00::2"});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].subnet, "10.244.1.0/24");
  EXPECT_EQ((*r)[1].via, "fd00::2");
  EXPECT_FALSE(parseNodeRoutes({"10.244.1.0/24 192.168.0.2"}).ok());
  EXPECT_FALSE(parseNodeRoutes({"10.244.1.5/24 via 192.168.0.2"}).ok());
  EXPECT_FALSE(parseNodeRoutes({"10.244.1.0/24 via fd00::2"}).ok());
}

}  // namespace
}  // namespace berth::cni
