// The Service test topology itself (no proxy yet): pods are reachable by their IPs from
// the client and the node namespaces over IPv4 and IPv6, their echo servers answer TCP
// and UDP with their name and the peer address, and refused/closed ports fail fast.
#include "tests/integration/proxy/service_topology.h"

#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace berth::proxy::testing {
namespace {

class ServiceTopologyPrivileged : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces)";
    if (::access("/usr/sbin/ip", X_OK) != 0 && ::access("/sbin/ip", X_OK) != 0 &&
        ::access("/usr/bin/ip", X_OK) != 0) {
      GTEST_SKIP() << "needs iproute2's ip";
    }
    auto t = ServiceTopology::create(2);
    ASSERT_TRUE(t.ok()) << t.status();
    topo_ = std::move(*t);
    ASSERT_TRUE(topo_->startEchoServers(8080).ok());
  }
  std::unique_ptr<ServiceTopology> topo_;
};

TEST_F(ServiceTopologyPrivileged, PodsAnswerByIpFromClientAndNode) {
  for (int i = 0; i < 2; ++i) {
    auto r = tcpAsk(topo_->clientNs(), topo_->podIp(i), 8080);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->pod, topo_->podName(i));
    EXPECT_EQ(r->peer, topo_->clientIp()) << "routed, no NAT";
    auto u = udpAsk(topo_->nodeNs(), topo_->podIp(i), 8080);
    ASSERT_TRUE(u.ok()) << u.status();
    EXPECT_EQ(u->pod, topo_->podName(i));
    auto r6 = tcpAsk(topo_->clientNs(), topo_->podIp6(i), 8080);
    ASSERT_TRUE(r6.ok()) << r6.status();
    EXPECT_EQ(r6->peer, topo_->clientIp6());
  }
  auto p2p = tcpAsk(topo_->podNs(0), topo_->podIp(1), 8080);
  ASSERT_TRUE(p2p.ok()) << p2p.status();
  EXPECT_EQ(p2p->peer, topo_->podIp(0));
}

TEST_F(ServiceTopologyPrivileged, ClosedPortsAreRefusedAtOnce) {
  auto r = tcpAsk(topo_->clientNs(), topo_->podIp(0), 9999);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  auto u = udpAsk(topo_->clientNs(), topo_->podIp(0), 9999);
  EXPECT_EQ(u.status().code(), absl::StatusCode::kUnavailable) << u.status();
}

}  // namespace
}  // namespace berth::proxy::testing
