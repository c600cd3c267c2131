// ConntrackCleaner against the kernel's conntrack table in fresh network namespaces
// (lo only; UDP datagrams to loopback addresses). An nftables table with a `ct state`
// rule makes conntrack track flows in the netns (conntrack hooks are registered per
// netns on first use), and a NAT chain in the output hook DNATs one port to another
// address, standing in for a Service and its endpoint.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/nftables.h"
#include "common/unique_fd.h"
#include "proxy/conntrack.h"
#include "tests/integration/proxy/netns_thread.h"

namespace berth::proxy {
namespace {

using testing::NetnsThread;
using testing::whyNoPrivileges;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kTracking[] =
    "table inet berth-ct-test {\n"
    "  chain out {\n"
    "    type filter hook output priority 0; policy accept;\n"
    "    ct state new counter\n"
    "  }\n"
    "  chain nat-out {\n"
    "    type nat hook output priority -100; policy accept;\n"
    "    ip daddr 127.0.0.1 udp dport 5000 dnat ip to 127.0.0.2:6000\n"
    "    ip6 daddr ::1 udp dport 5000 dnat ip6 to [::1]:6000\n"
    "  }\n"
    "}\n";

struct Address {
  int family;
  sockaddr_storage ss;
  socklen_t len;
};

Address addressOf(const std::string& ip, uint16_t port) {
  Address a{};
  if (ip.find(':') != std::string::npos) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    inet_pton(AF_INET6, ip.c_str(), &s6->sin6_addr);
    a.family = AF_INET6;
    a.len = sizeof(sockaddr_in6);
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&a.ss);
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    inet_pton(AF_INET, ip.c_str(), &s4->sin_addr);
    a.family = AF_INET;
    a.len = sizeof(sockaddr_in);
  }
  return a;
}

// A UDP socket bound to ip:port (so datagrams are delivered, not answered with ICMP).
UniqueFd udpListener(const std::string& ip, uint16_t port) {
  Address a = addressOf(ip, port);
  UniqueFd fd(::socket(a.family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  EXPECT_TRUE(fd.valid());
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a.ss), a.len), 0)
      << "bind " << ip << ":" << port << ": " << std::strerror(errno);
  return fd;
}

// Sends one datagram from a fresh socket (a fresh source port: one conntrack entry).
void sendUdp(const std::string& ip, uint16_t port) {
  Address a = addressOf(ip, port);
  UniqueFd fd(::socket(a.family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(fd.valid());
  ASSERT_EQ(::sendto(fd.get(), "ping", 4, 0, reinterpret_cast<sockaddr*>(&a.ss), a.len), 4)
      << "send to " << ip << ":" << port << ": " << std::strerror(errno);
}

// True if `fd` receives a datagram within a second.
bool received(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 1000) != 1) return false;
  char buf[64];
  return ::recv(fd, buf, sizeof(buf), 0) > 0;
}

ConntrackFilter origDst(const std::string& ip, uint16_t port) {
  ConntrackFilter f;
  f.orig_dst_ip = ip;
  f.orig_dst_port = port;
  return f;
}

class ConntrackPrivilegedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = whyNoPrivileges();
    if (!why.empty()) GTEST_SKIP() << why;
    if (!ns_.status().ok()) GTEST_SKIP() << "no fresh netns: " << ns_.status();
    ns_.run([this] {
      auto ctx = nft::Context::create();
      ASSERT_TRUE(ctx.ok()) << ctx.status();
      Status s = ctx->run(kTracking, "conntrack test table");
      ASSERT_TRUE(s.ok()) << s;
      auto cleaner = ConntrackCleaner::open();
      ASSERT_TRUE(cleaner.ok()) << cleaner.status();
      cleaner_ = std::move(*cleaner);
    });
    ASSERT_NE(cleaner_, nullptr);
  }
  void TearDown() override {
    ns_.run([this] {
      cleaner_.reset();
      sockets_.clear();
    });
  }

  // On the netns thread: a listener at ip:port kept for the test, and `count` datagrams
  // from distinct source ports to it.
  void flow(const std::string& ip, uint16_t port, int count = 1, const std::string& listen_ip = "") {
    ns_.run([&] {
      sockets_.push_back(udpListener(listen_ip.empty() ? ip : listen_ip, port));
      for (int i = 0; i < count; ++i) sendUdp(ip, port);
    });
  }
  std::vector<ConntrackEntry> entries(const ConntrackFilter& f) {
    auto list = cleaner_->list(f);
    EXPECT_TRUE(list.ok()) << list.status();
    return list.ok() ? *list : std::vector<ConntrackEntry>{};
  }

  NetnsThread ns_;
  std::unique_ptr<ConntrackCleaner> cleaner_;
  std::vector<UniqueFd> sockets_;
};

TEST_F(ConntrackPrivilegedTest, DeleteByOrigDstRemovesOnlyThatServicePortV4) {
  flow("127.0.0.1", 7001);
  flow("127.0.0.1", 7002);
  auto flows = entries(origDst("127.0.0.1", 7001));
  ASSERT_THAT(flows, SizeIs(1));
  EXPECT_EQ(flows[0].family, AF_INET);
  EXPECT_EQ(flows[0].protocol, L4Protocol::kUDP);
  EXPECT_EQ(flows[0].orig_dst_ip, "127.0.0.1");
  EXPECT_EQ(flows[0].reply_src_port, 7001);
  ASSERT_THAT(entries(origDst("127.0.0.1", 7002)), SizeIs(1));

  auto deleted = cleaner_->deleteByOrigDst(L4Protocol::kUDP, "127.0.0.1", 7001);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 1u);
  EXPECT_THAT(entries(origDst("127.0.0.1", 7001)), IsEmpty());
  EXPECT_THAT(entries(origDst("127.0.0.1", 7002)), SizeIs(1));
  // Again: nothing left to delete.
  deleted = cleaner_->deleteByOrigDst(L4Protocol::kUDP, "127.0.0.1", 7001);
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 0u);
}

TEST_F(ConntrackPrivilegedTest, DeleteByOrigDstRemovesOnlyThatServicePortV6) {
  flow("::1", 7001, 3);
  flow("::1", 7002);
  flow("127.0.0.1", 7001);
  ASSERT_THAT(entries(origDst("::1", 7001)), SizeIs(3));
  EXPECT_EQ(entries(origDst("0:0::1", 7001)).size(), 3u) << "addresses compare as addresses";
  auto deleted = cleaner_->deleteByOrigDst(L4Protocol::kUDP, "::1", 7001);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 3u);
  EXPECT_THAT(entries(origDst("::1", 7001)), IsEmpty());
  EXPECT_THAT(entries(origDst("::1", 7002)), SizeIs(1));
  EXPECT_THAT(entries(origDst("127.0.0.1", 7001)), SizeIs(1)) << "IPv4 entries are another family";
}

TEST_F(ConntrackPrivilegedTest, DeleteByReplySrcRemovesFlowsDnatedToEndpointV4) {
  // 127.0.0.1:5000 is DNATed to 127.0.0.2:6000, where the "endpoint" listens.
  UniqueFd* endpoint = nullptr;
  ns_.run([&] {
    sockets_.push_back(udpListener("127.0.0.2", 6000));
    endpoint = &sockets_.back();
    sendUdp("127.0.0.1", 5000);
    sendUdp("127.0.0.1", 5000);
    EXPECT_TRUE(received(endpoint->get())) << "DNAT to the endpoint did not happen";
  });
  flow("127.0.0.1", 7002);
  auto natted = entries(origDst("127.0.0.1", 5000));
  ASSERT_THAT(natted, SizeIs(2));
  EXPECT_EQ(natted[0].reply_src_ip, "127.0.0.2");
  EXPECT_EQ(natted[0].reply_src_port, 6000);

  auto deleted = cleaner_->deleteByReplySrc(L4Protocol::kUDP, "127.0.0.2", 6000);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 2u);
  EXPECT_THAT(entries(origDst("127.0.0.1", 5000)), IsEmpty());
  EXPECT_THAT(entries(origDst("127.0.0.1", 7002)), SizeIs(1));
}

TEST_F(ConntrackPrivilegedTest, DeleteByReplySrcRemovesFlowsDnatedToEndpointV6) {
  ns_.run([&] {
    sockets_.push_back(udpListener("::1", 6000));
    sendUdp("::1", 5000);
    EXPECT_TRUE(received(sockets_.back().get())) << "DNAT to the endpoint did not happen";
  });
  flow("::1", 7002);
  ConntrackFilter endpoint;
  endpoint.reply_src_ip = "::1";
  endpoint.reply_src_port = 6000;
  auto natted = entries(endpoint);
  ASSERT_THAT(natted, SizeIs(1));
  EXPECT_EQ(natted[0].orig_dst_port, 5000);
  auto deleted = cleaner_->deleteByReplySrc(L4Protocol::kUDP, "::1", 6000);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 1u);
  EXPECT_THAT(entries(endpoint), IsEmpty());
  EXPECT_THAT(entries(origDst("::1", 7002)), SizeIs(1));
}

TEST_F(ConntrackPrivilegedTest, DeleteByOrigDstPortCoversEveryAddressAndFamily) {
  flow("127.0.0.1", 7003);
  flow("127.0.0.2", 7003);
  flow("::1", 7003);
  flow("127.0.0.1", 7004);
  ConntrackFilter port;
  port.orig_dst_port = 7003;
  ASSERT_THAT(entries(port), SizeIs(3));
  auto deleted = cleaner_->deleteByOrigDstPort(L4Protocol::kUDP, 7003);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 3u);
  EXPECT_THAT(entries(port), IsEmpty());
  EXPECT_THAT(entries(origDst("127.0.0.1", 7004)), SizeIs(1));
}

TEST_F(ConntrackPrivilegedTest, OtherProtocolIsNotTouched) {
  flow("127.0.0.1", 7001);
  auto deleted = cleaner_->deleteByOrigDst(L4Protocol::kTCP, "127.0.0.1", 7001);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 0u);
  deleted = cleaner_->deleteByOrigDstPort(L4Protocol::kSCTP, 7001);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 0u);
  EXPECT_THAT(entries(origDst("127.0.0.1", 7001)), SizeIs(1));
}

TEST_F(ConntrackPrivilegedTest, CombinedFilterMatchesServiceAndEndpoint) {
  ns_.run([&] {
    sockets_.push_back(udpListener("127.0.0.2", 6000));
    sendUdp("127.0.0.1", 5000);
  });
  ConntrackFilter f = origDst("127.0.0.1", 5000);
  f.reply_src_ip = "127.0.0.3";  // another endpoint: no match
  auto deleted = cleaner_->deleteMatching(f);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 0u);
  f.reply_src_ip = "127.0.0.2";
  deleted = cleaner_->deleteMatching(f);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 1u);
}

TEST_F(ConntrackPrivilegedTest, DeleteAnyCleansSeveralFiltersAtOnce) {
  ns_.run([&] {
    sockets_.push_back(udpListener("127.0.0.2", 6000));
    sendUdp("127.0.0.1", 5000);  // DNATed to the "endpoint" 127.0.0.2:6000
  });
  flow("127.0.0.1", 7001);  // a removed Service IP:port
  flow("::1", 7003);        // a removed NodePort
  flow("127.0.0.1", 7003);
  flow("127.0.0.1", 7002);  // stays
  flow("::1", 7002);        // stays
  ConntrackFilter endpoint;
  endpoint.reply_src_ip = "127.0.0.2";
  endpoint.reply_src_port = 6000;
  ConntrackFilter node_port;
  node_port.orig_dst_port = 7003;
  auto deleted = cleaner_->deleteAny({endpoint, origDst("127.0.0.1", 7001), node_port});
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 4u);
  ConntrackFilter all;
  auto left = entries(all);
  ASSERT_THAT(left, SizeIs(2));
  EXPECT_EQ(left[0].orig_dst_port, 7002);
  EXPECT_EQ(left[1].orig_dst_port, 7002);
  // One bad filter: nothing is deleted, the error names it.
  auto bad = cleaner_->deleteAny({origDst("127.0.0.1", 7002), origDst("not-an-ip", 1)});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("\"not-an-ip\""));
  EXPECT_THAT(entries(all), SizeIs(2));
  auto none = cleaner_->deleteAny({});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0u);
}

// A cleaner is bound to the netns it was opened in, whichever thread calls it.
TEST_F(ConntrackPrivilegedTest, ActsOnTheNetnsItWasOpenedIn) {
  EXPECT_EQ(cleaner_->netnsInode(), ns_.inode());
  flow("127.0.0.1", 7005);
  NetnsThread other;
  ASSERT_TRUE(other.status().ok());
  other.run([&] {
    auto found = cleaner_->list(origDst("127.0.0.1", 7005));
    ASSERT_TRUE(found.ok()) << found.status();
    EXPECT_THAT(*found, SizeIs(1));
    auto deleted = cleaner_->deleteByOrigDst(L4Protocol::kUDP, "127.0.0.1", 7005);
    ASSERT_TRUE(deleted.ok()) << deleted.status();
    EXPECT_EQ(*deleted, 1u);
  });
  EXPECT_THAT(entries(origDst("127.0.0.1", 7005)), IsEmpty());
}

TEST_F(ConntrackPrivilegedTest, BadInputIsRejectedNamingIt) {
  auto bad_ip = cleaner_->deleteByOrigDst(L4Protocol::kUDP, "10.96.0.300", 53);
  EXPECT_EQ(bad_ip.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad_ip.status().message()), HasSubstr("delete conntrack entries udp orig dst 10.96.0.300:53"));
  EXPECT_THAT(std::string(bad_ip.status().message()), HasSubstr("\"10.96.0.300\" is not an IPv4 or IPv6 address"));
  auto port0 = cleaner_->deleteByReplySrc(L4Protocol::kUDP, "10.244.0.5", 0);
  EXPECT_EQ(port0.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(port0.status().message()), HasSubstr("port 0"));
  ConntrackFilter mixed = origDst("10.96.0.10", 53);
  mixed.reply_src_ip = "fd00::5";
  auto mix = cleaner_->deleteMatching(mixed);
  EXPECT_EQ(mix.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(mix.status().message()), HasSubstr("mix IPv4 and IPv6"));
  auto everything = cleaner_->deleteMatching(ConntrackFilter{});
  EXPECT_EQ(everything.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(everything.status().message()), HasSubstr("refusing"));
}

}  // namespace
}  // namespace berth::proxy
