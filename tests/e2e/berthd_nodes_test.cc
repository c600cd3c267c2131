// e2e: the pod network from the Node objects. berthd (components cri,cni) watches a
// test API server's Nodes: this node's spec.podCIDRs land in its pod-cidr-file (what
// berth-ipam allocates from) and every other node's pod CIDR becomes a host-gw route
// via that node's InternalIP — and follows Nodes being added, changed and deleted,
// keeping configured node-routes. The test runs in its own network namespace, where it
// makes the "uplink" bridge the other nodes' addresses are on.
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cni/link/netlink.h"
#include "cni/node_network.h"
#include "tests/e2e/berthd_process.h"
#include "tests/fixtures/fake_apiserver.h"

namespace berth::testing {
namespace {

using nlohmann::json;

constexpr char kNodes[] = "/api/v1/nodes";
constexpr char kSelf[] = "e2e-node";

json node(const std::string& name, const std::vector<std::string>& cidrs, const std::string& ip) {
  return {{"apiVersion", "v1"},
          {"kind", "Node"},
          {"metadata", {{"name", name}}},
          {"spec", {{"podCIDRs", cidrs}}},
          {"status", {{"addresses", {{{"type", "InternalIP"}, {"address", ip}}}}}}};
}

// "SUBNET via GW" of berthd's routes (protocol kNodeRouteProtocol), sorted.
std::vector<std::string> nodeRoutes() {
  std::vector<std::string> out;
  auto sock = cni::link::RouteSocket::open();
  if (!sock.ok()) return {"error: " + std::string(sock.status().message())};
  auto routes = sock->routes(AF_UNSPEC);
  if (!routes.ok()) return {"error: " + std::string(routes.status().message())};
  for (const auto& r : *routes) {
    if (r.protocol == cni::kNodeRouteProtocol) out.push_back(r.dst + " via " + r.gw);
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool eventually(const std::function<bool()>& done) {
  for (int i = 0; i < 1000 && !done(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return done();
}

class BerthdNodesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) {
      skip_ = "needs root (network namespace, routes)";
      return;
    }
    if (Status st = enterOwnNetworkNamespace(); !st.ok()) skip_ = std::string(st.message());
  }

  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    // The link the other nodes are reached on (routes need an on-link gateway).
    auto sock = cni::link::RouteSocket::open();
    ASSERT_TRUE(sock.ok()) << sock.status();
    auto uplink = sock->ensureBridge({"uplink0", 0, false, false});
    ASSERT_TRUE(uplink.ok()) << uplink.status();
    (void)sock->addAddress(uplink->index, "192.168.60.1/24");
    ASSERT_TRUE(sock->setUp(uplink->index).ok());
    auto api = FakeApiServer::start();
    ASSERT_TRUE(api.ok()) << api.status();
    api_ = std::move(*api);
    char tmpl[] = "/tmp/berth-e2e-nodes-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    kubeconfig_ = dir_ + "/kubeconfig";
    ASSERT_TRUE(fs::writeFileAtomic(kubeconfig_,
                                    strCat("apiVersion: v1\nkind: Config\n"
                                           "clusters: [{name: e2e, cluster: {server: \"",
                                           api_->url(), "\"}}]\n"
                                           "users: [{name: e2e, user: {}}]\n"
                                           "contexts: [{name: e2e, context: {cluster: e2e, user: e2e}}]\n"
                                           "current-context: e2e\n"))
                    .ok());
  }

  void TearDown() override {
    if (berthd_ && HasFailure()) std::fprintf(stderr, "berthd log:\n%s\n", berthd_->log().c_str());
    berthd_.reset();
    api_.reset();
    (void)cni::reconcileNodeRoutes({});
    if (!dir_.empty()) (void)fs::removeAll(dir_);
  }

  void startBerthd(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"--kubeconfig", kubeconfig_, "--node-name", kSelf,
                                     "--components", "cri,cni"};
    args.insert(args.end(), extra.begin(), extra.end());
    berthd_ = std::make_unique<Berthd>(args);
    ASSERT_TRUE(berthd_->ready()) << berthd_->log();
  }

  std::string podCidrFile() {
    auto text = fs::readFile(berthd_->dir() + "/state/pod-cidr");
    return text.ok() ? *text : "";
  }

  static inline std::string skip_;
  std::unique_ptr<FakeApiServer> api_;
  std::unique_ptr<Berthd> berthd_;
  std::string dir_;
  std::string kubeconfig_;
};

TEST_F(BerthdNodesTest, PodCidrAndRoutesFollowTheNodeObjects) {
  api_->upsert(kNodes, node(kSelf, {"10.77.5.0/24", "fd00:77:5::/64"}, "192.168.60.1"));
  api_->upsert(kNodes, node("node-b", {"10.244.9.0/24"}, "192.168.60.2"));
  startBerthd();
  // Routes are applied after the first list, before berthd serves CRI.
  EXPECT_THAT(podCidrFile(), ::testing::AllOf(::testing::HasSubstr("10.77.5.0/24\n"),
                                              ::testing::HasSubstr("fd00:77:5::/64\n")));
  EXPECT_THAT(nodeRoutes(), ::testing::ElementsAre("10.244.9.0/24 via 192.168.60.2"));

  // A node joins, another one moves to a new address, then leaves.
  api_->upsert(kNodes, node("node-c", {"10.244.10.0/24"}, "192.168.60.3"));
  api_->upsert(kNodes, node("node-b", {"10.244.9.0/24"}, "192.168.60.20"));
  EXPECT_TRUE(eventually([] {
    return nodeRoutes() == std::vector<std::string>{"10.244.10.0/24 via 192.168.60.3",
                                                    "10.244.9.0/24 via 192.168.60.20"};
  })) << ::testing::PrintToString(nodeRoutes());
  ASSERT_TRUE(api_->remove(kNodes, "", "node-b"));
  EXPECT_TRUE(eventually([] {
    return nodeRoutes() == std::vector<std::string>{"10.244.10.0/24 via 192.168.60.3"};
  })) << ::testing::PrintToString(nodeRoutes());
}

TEST_F(BerthdNodesTest, ConfiguredEntriesWinOverTheNodeObjects) {
  api_->upsert(kNodes, node(kSelf, {"10.77.5.0/24"}, "192.168.60.1"));
  api_->upsert(kNodes, node("node-b", {"10.244.9.0/24"}, "192.168.60.2"));
  api_->upsert(kNodes, node("node-c", {"10.244.10.0/24"}, "192.168.60.3"));
  startBerthd({"--pod-cidr", "10.77.6.0/24", "--node-route", "10.244.9.0/24 via 192.168.60.9"});
  EXPECT_EQ(podCidrFile().find("10.77.5.0/24"), std::string::npos) << podCidrFile();
  EXPECT_THAT(podCidrFile(), ::testing::HasSubstr("10.77.6.0/24\n"));
  EXPECT_THAT(nodeRoutes(), ::testing::ElementsAre("10.244.10.0/24 via 192.168.60.3",
                                                   "10.244.9.0/24 via 192.168.60.9"));
  EXPECT_THAT(berthd_->log(), ::testing::HasSubstr("the config's pod-cidr 10.77.6.0/24 is kept"));
}

}  // namespace
}  // namespace berth::testing
