// cni/nat (berth-bridge's masquerade and hostPort NAT) against the real kernel, for both
// backends. Root only. The host's firewall is never touched: the process enters a
// private mount namespace once (for the netns bind mounts), and every test runs on the
// main thread inside a fresh "node" network namespace made by unshare(CLONE_NEWNET) —
// SetUp asserts that the thread is no longer in the initial network namespace before
// anything talks to nftables or iptables. At the end the thread returns to its original
// namespace and the node namespace disappears with every rule in it.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <nftables/libnftables.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cni/nat/firewall.h"
#include "cni/nat/firewall_internal.h"
#include "cni/netns.h"
#include "common/fs.h"
#include "common/unique_fd.h"
#include "tests/integration/cni/net_test_util.h"
#include "tests/unit/cni/cni_test_util.h"

namespace berth::cni::nat {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using testing::TempDir;
using namespace testing::net;  // NOLINT: test helpers

constexpr char kNet[] = "podnet";
const std::vector<std::string> kSubnets = {"10.244.0.0/24", "fd44:0:0:1::/64"};

ino_t netnsInode(const char* path) {
  struct stat st {};
  return ::stat(path, &st) == 0 ? st.st_ino : 0;
}

size_t countOf(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// A raw libnftables context of the test's own, for reading the ruleset and for changes
// made behind the library's back.
class RawNft {
 public:
  RawNft() : ctx_(nft_ctx_new(NFT_CTX_DEFAULT)) {
    nft_ctx_buffer_output(ctx_);
    nft_ctx_buffer_error(ctx_);
  }
  ~RawNft() { nft_ctx_free(ctx_); }
  // Runs `cmd`; returns its output, or "ERROR: <message>".
  std::string run(const std::string& cmd) {
    if (nft_run_cmd_from_buffer(ctx_, cmd.c_str()) != 0) {
      return strCat("ERROR: ", nft_ctx_get_error_buffer(ctx_));
    }
    return nft_ctx_get_output_buffer(ctx_);
  }

 private:
  nft_ctx* ctx_;
};

// IPv6 counterparts of the net_test_util TCP helpers (those are IPv4 only).
StatusOr<UniqueFd> listenTcp6(uint16_t port) {
  UniqueFd fd(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return lastErrnoError("socket");
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  addr.sin6_port = htons(port);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return lastErrnoError("bind");
  if (::listen(fd.get(), 4) != 0) return lastErrnoError("listen");
  return fd;
}

Status connectAndSend6(const std::string& ip, uint16_t port, const std::string& message) {
  UniqueFd fd(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return lastErrnoError("socket");
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  addr.sin6_port = htons(port);
  ::inet_pton(AF_INET6, ip.c_str(), &addr.sin6_addr);
  std::string what = strCat("connect [", ip, "]:", port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 && errno != EINPROGRESS) {
    return lastErrnoError(what);
  }
  pollfd p{fd.get(), POLLOUT, 0};
  if (::poll(&p, 1, 5000) != 1) return absl::DeadlineExceededError(what + ": timeout");
  int err = 0;
  socklen_t len = sizeof(err);
  ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) return errnoError(err, what);
  if (::send(fd.get(), message.data(), message.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(message.size())) {
    return lastErrnoError("send");
  }
  return absl::OkStatus();
}

StatusOr<std::string> acceptAndRead6(int listener, std::string* peer) {
  pollfd p{listener, POLLIN, 0};
  if (::poll(&p, 1, 5000) != 1) return absl::DeadlineExceededError("accept: timeout");
  sockaddr_in6 from{};
  socklen_t from_len = sizeof(from);
  UniqueFd conn(::accept4(listener, reinterpret_cast<sockaddr*>(&from), &from_len, SOCK_CLOEXEC));
  if (!conn) return lastErrnoError("accept");
  char buf[INET6_ADDRSTRLEN];
  ::inet_ntop(AF_INET6, &from.sin6_addr, buf, sizeof(buf));
  *peer = buf;
  pollfd q{conn.get(), POLLIN, 0};
  if (::poll(&q, 1, 5000) != 1) return absl::DeadlineExceededError("read: timeout");
  char data[256];
  ssize_t n = ::read(conn.get(), data, sizeof(data));
  if (n < 0) return lastErrnoError("read");
  return std::string(data, static_cast<size_t>(n));
}

std::string backendName(Backend b) { return b == Backend::kNftables ? "nftables" : "iptables"; }

class NatPrivileged : public ::testing::TestWithParam<Backend> {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) return;
    // Once per process, while it is still single-threaded.
    if (::unshare(CLONE_NEWNS) == 0) {
      ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr);
      mount_ns_ok_ = true;
    }
  }

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces, nftables, iptables)";
    if (!mount_ns_ok_) GTEST_SKIP() << "cannot create a private mount namespace";
    if (GetParam() == Backend::kIptables &&
        (!runShell("command -v iptables-restore") || !runShell("command -v ip6tables-restore"))) {
      GTEST_SKIP() << "iptables-restore / ip6tables-restore not in PATH: install iptables";
    }
    orig_netns_.reset(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(orig_netns_.valid());
    ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << "unshare node netns: " << strerror(errno);
    in_node_ = true;
    // Never program the host's firewall: from here on the thread must be elsewhere.
    ino_t here = netnsInode("/proc/thread-self/ns/net");
    ASSERT_NE(here, 0u);
    ASSERT_NE(here, netnsInode("/proc/1/ns/net")) << "still in the initial network namespace";
    struct stat orig {};
    ASSERT_EQ(::fstat(orig_netns_.get(), &orig), 0);
    ASSERT_NE(here, orig.st_ino) << "unshare(CLONE_NEWNET) did not take effect";
    ASSERT_TRUE(setLinkUp("lo").ok());
    raw_ = std::make_unique<RawNft>();
    auto fw = Firewall::open(GetParam());
    ASSERT_TRUE(fw.ok()) << fw.status();
    fw_ = std::move(*fw);
    ASSERT_EQ(fw_->backend(), GetParam());
  }

  void TearDown() override {
    fw_.reset();
    raw_.reset();
    for (const std::string& p : netns_paths_) destroyNetns(p);
    if (in_node_) {
      ::unlink(iptablesLockPath().c_str());  // the iptables backend's lock of this netns
      ASSERT_EQ(::setns(orig_netns_.get(), CLONE_NEWNET), 0) << strerror(errno);
    }
  }

  bool nft() const { return GetParam() == Backend::kNftables; }

  // The node's NAT rules as text, without volatile parts (iptables-save headers).
  std::string dump() {
    if (nft()) return raw_->run("list ruleset");
    std::string out;
    for (const char* tool : {"iptables-save -t nat", "ip6tables-save -t nat"}) {
      for (const std::string& line : split(runShell(tool).value_or("<failed>"), '\n')) {
        if (!line.empty() && line[0] != '#') out += line + "\n";
      }
    }
    return out;
  }

  // Flushes every NAT rule of ours behind the library's back.
  void flushOutOfBand(const std::string& nft_chain) {
    if (nft()) {
      ASSERT_EQ(raw_->run(strCat("flush chain inet berth-cni ", nft_chain)), "");
    } else {
      ASSERT_TRUE(runShell("iptables -t nat -F && ip6tables -t nat -F"));
    }
  }

  std::string netnsPath(const std::string& name) { return dir_.sub("ns-" + name); }
  void makeNetns(const std::string& name) {
    ASSERT_TRUE(createNetns(netnsPath(name)).ok());
    netns_paths_.push_back(netnsPath(name));
  }
  // Runs a shell command in the netns `name`.
  void shellIn(const std::string& name, const std::string& cmd) {
    Status st = runInNetns(netnsPath(name), [&]() -> Status {
      if (!runShell(cmd)) return absl::InternalError("failed: " + cmd);
      return absl::OkStatus();
    });
    ASSERT_TRUE(st.ok()) << st;
  }

  static inline bool mount_ns_ok_ = false;
  TempDir dir_;
  UniqueFd orig_netns_;
  bool in_node_ = false;
  std::vector<std::string> netns_paths_;
  std::unique_ptr<RawNft> raw_;
  std::unique_ptr<Firewall> fw_;
};

TEST_P(NatPrivileged, EnsureMasqueradeIsIdempotentAndChecked) {
  ASSERT_THAT(fw_->checkMasquerade(kNet, kSubnets),
              ::testing::Property(&Status::code, ::testing::AnyOf(absl::StatusCode::kNotFound,
                                                                  absl::StatusCode::kFailedPrecondition)));
  ASSERT_TRUE(fw_->ensureMasquerade(kNet, kSubnets).ok());
  std::string once = dump();
  for (int i = 0; i < 2; ++i) {
    Status st = fw_->ensureMasquerade(kNet, kSubnets);
    ASSERT_TRUE(st.ok()) << st;
  }
  std::string thrice = dump();
  EXPECT_EQ(once, thrice);
  // One rule per family, whichever backend.
  EXPECT_EQ(countOf(lower(thrice), "masquerade"), 2u) << thrice;
  EXPECT_THAT(thrice, HasSubstr("10.244.0.0/24"));
  EXPECT_THAT(thrice, HasSubstr("fd44:0:0:1::/64"));
  EXPECT_THAT(thrice, HasSubstr(nft() ? "224.0.0.0/4" : "224.0.0.0/4"));
  EXPECT_THAT(thrice, HasSubstr("ff00::/8"));
  Status st = fw_->checkMasquerade(kNet, kSubnets);
  EXPECT_TRUE(st.ok()) << st;
  // A subnet the rules do not cover is reported by name.
  st = fw_->checkMasquerade(kNet, {"10.244.0.0/24", "10.99.0.0/16"});
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(st.message()), HasSubstr("10.99.0.0/16"));
  // A subnet that merely contains a configured one as a substring is not covered.
  st = fw_->checkMasquerade(kNet, {"0.244.0.0/24"});
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;

  // Rules removed behind our back: CHECK notices, the next ADD repairs.
  flushOutOfBand(strCat("masq-", kNet));
  st = fw_->checkMasquerade(kNet, kSubnets);
  EXPECT_THAT(st.code(), ::testing::AnyOf(absl::StatusCode::kNotFound,
                                          absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(std::string(st.message()), HasSubstr(kNet));
  ASSERT_TRUE(fw_->ensureMasquerade(kNet, kSubnets).ok());
  st = fw_->checkMasquerade(kNet, kSubnets);
  EXPECT_TRUE(st.ok()) << st;
}

TEST_P(NatPrivileged, EnsureMasqueradeFollowsChangedSubnetsAndHostBits) {
  // Host bits set in the CIDR: the rule is written for the network and checks pass.
  ASSERT_TRUE(fw_->ensureMasquerade(kNet, {"10.244.0.7/24"}).ok());
  Status st = fw_->checkMasquerade(kNet, {"10.244.0.7/24"});
  EXPECT_TRUE(st.ok()) << st;
  EXPECT_TRUE(fw_->checkMasquerade(kNet, {"10.244.0.0/24"}).ok());
  // A different subnet list replaces the network's rules (not added beside them).
  ASSERT_TRUE(fw_->ensureMasquerade(kNet, {"10.245.0.0/24"}).ok());
  std::string text = dump();
  EXPECT_EQ(countOf(lower(text), "masquerade"), 1u) << text;
  EXPECT_THAT(text, HasSubstr("10.245.0.0/24"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("10.244.0.0/24")));
  // Kept CIDRs (reached without NAT) are part of the rule set too.
  ASSERT_TRUE(fw_->ensureMasquerade(kNet, {"10.245.0.0/24"}, {"10.0.0.0/8"}).ok());
  EXPECT_THAT(dump(), HasSubstr("10.0.0.0/8"));
  ASSERT_TRUE(fw_->ensureMasquerade(kNet, {"10.245.0.0/24"}).ok());
  EXPECT_THAT(dump(), ::testing::Not(HasSubstr("10.0.0.0/8")));
}

TEST_P(NatPrivileged, RemoveMasqueradeIsIdempotentAndPerNetwork) {
  EXPECT_TRUE(fw_->removeMasquerade(kNet).ok());  // nothing there yet
  ASSERT_TRUE(fw_->ensureMasquerade(kNet, kSubnets).ok());
  ASSERT_TRUE(fw_->ensureMasquerade("othernet", {"10.250.0.0/24"}).ok());
  for (int i = 0; i < 2; ++i) {
    Status st = fw_->removeMasquerade(kNet);
    ASSERT_TRUE(st.ok()) << st;
  }
  EXPECT_FALSE(fw_->checkMasquerade(kNet, kSubnets).ok());
  Status st = fw_->checkMasquerade("othernet", {"10.250.0.0/24"});
  EXPECT_TRUE(st.ok()) << st;
  std::string text = dump();
  EXPECT_EQ(countOf(lower(text), "masquerade"), 1u) << text;
  EXPECT_THAT(text, ::testing::Not(HasSubstr("10.244.0.0/24")));
}

const Attachment kA{kNet, "c0ffee0001", "eth0"};
const Attachment kB{kNet, "c0ffee0002", "eth0"};

TEST_P(NatPrivileged, PortMappingsAddCheckListRemove) {
  std::vector<PortMapping> a_maps = {{8080, 80, "tcp", ""}, {5353, 53, "udp", "192.168.77.1"}};
  std::vector<std::string> a_ips = {"10.244.0.2", "fd44:0:0:1::2"};
  Status st = fw_->addPortMappings(kA, a_ips, a_maps);
  ASSERT_TRUE(st.ok()) << st;
  st = fw_->checkPortMappings(kA, a_ips, a_maps);
  EXPECT_TRUE(st.ok()) << st;
  ASSERT_TRUE(fw_->addPortMappings(kB, {"10.244.0.3"}, {{9090, 90, "sctp", ""}}).ok());
  auto list = fw_->portMappingAttachments(kNet);
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_THAT(*list, UnorderedElementsAre(kA, kB));
  auto other = fw_->portMappingAttachments("othernet");
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->empty());
  std::string text = dump();
  EXPECT_THAT(text, HasSubstr("10.244.0.2:80"));
  EXPECT_THAT(text, HasSubstr("[fd44:0:0:1::2]:80"));
  EXPECT_THAT(text, HasSubstr("10.244.0.3:90"));
  EXPECT_THAT(text, HasSubstr(strCat(kNet, "/c0ffee0001/eth0")));

  // Re-ADD replaces: the old hostPort is gone, the new one is there, nothing doubled.
  std::vector<PortMapping> a_new = {{8443, 443, "tcp", ""}};
  ASSERT_TRUE(fw_->addPortMappings(kA, a_ips, a_new).ok());
  ASSERT_TRUE(fw_->addPortMappings(kA, a_ips, a_new).ok());
  text = dump();
  EXPECT_THAT(text, ::testing::Not(HasSubstr("10.244.0.2:80")));
  EXPECT_EQ(countOf(text, "10.244.0.2:443"), 1u) << text;
  EXPECT_EQ(countOf(text, "]:443"), 1u) << text;
  EXPECT_TRUE(fw_->checkPortMappings(kA, a_ips, a_new).ok());
  st = fw_->checkPortMappings(kA, a_ips, a_maps);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("8080"));

  // Remove is per attachment and idempotent.
  for (int i = 0; i < 2; ++i) {
    st = fw_->removePortMappings(kA);
    ASSERT_TRUE(st.ok()) << st;
  }
  list = fw_->portMappingAttachments(kNet);
  ASSERT_TRUE(list.ok());
  EXPECT_THAT(*list, UnorderedElementsAre(kB));
  EXPECT_FALSE(fw_->checkPortMappings(kA, a_ips, a_new).ok());
  EXPECT_TRUE(fw_->checkPortMappings(kB, {"10.244.0.3"}, {{9090, 90, "sctp", ""}}).ok());
  EXPECT_THAT(dump(), ::testing::Not(HasSubstr("c0ffee0001")));
  EXPECT_TRUE(fw_->removePortMappings(Attachment{kNet, "neverseen", "eth0"}).ok());

  // Rules removed behind our back: CHECK notices.
  flushOutOfBand("hostports");
  st = fw_->checkPortMappings(kB, {"10.244.0.3"}, {{9090, 90, "sctp", ""}});
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("c0ffee0002"));
}

// Eight plugins at once on an empty node: one masquerade rule set, one set of jumps,
// every attachment's hostPort in place.
TEST_P(NatPrivileged, ConcurrentAddsLeaveOneRuleSetAndEveryAttachment) {
  constexpr int kN = 8;
  std::vector<Status> results(kN);
  std::vector<std::thread> threads;
  for (int i = 0; i < kN; ++i) {
    // Threads start in the creating thread's netns: the node's.
    threads.emplace_back([&, i] {
      auto fw = Firewall::open(GetParam());
      if (!fw.ok()) {
        results[i] = fw.status();
        return;
      }
      Status st = (*fw)->ensureMasquerade(kNet, kSubnets);
      if (st.ok()) {
        st = (*fw)->addPortMappings({kNet, strCat("conc", i), "eth0"}, {strCat("10.244.0.", 10 + i)},
                                    {{20000 + i, 80, "tcp", ""}});
      }
      results[i] = st;
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kN; ++i) EXPECT_TRUE(results[i].ok()) << i << ": " << results[i];
  auto list = fw_->portMappingAttachments(kNet);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), static_cast<size_t>(kN));
  for (int i = 0; i < kN; ++i) {
    Status st = fw_->checkPortMappings({kNet, strCat("conc", i), "eth0"}, {strCat("10.244.0.", 10 + i)},
                                       {{20000 + i, 80, "tcp", ""}});
    EXPECT_TRUE(st.ok()) << st;
  }
  EXPECT_TRUE(fw_->checkMasquerade(kNet, kSubnets).ok());
  std::string text = dump();
  if (nft()) {
    EXPECT_EQ(countOf(text, "jump hostports"), 2u) << text;
    EXPECT_EQ(countOf(text, "masquerade comment \"berth-cni "), 2u) << text;
  } else {
    EXPECT_EQ(countOf(text, "-j BERTH-HOSTPORTS\n"), 2u) << text;
    EXPECT_EQ(countOf(text, "-j BERTH-HOSTPORT-MASQ\n"), 1u) << text;
    EXPECT_EQ(countOf(text, "-A POSTROUTING -s 10.244.0.0/24 "), 1u) << text;
  }

  // The jumps flushed behind our back: CHECK says so, the next ADD restores them.
  if (nft()) {
    ASSERT_EQ(raw_->run("flush chain inet berth-cni prerouting"), "");
  } else {
    ASSERT_TRUE(runShell("iptables -t nat -F PREROUTING"));
  }
  Attachment a0{kNet, "conc0", "eth0"};
  Status st = fw_->checkPortMappings(a0, {"10.244.0.10"}, {{20000, 80, "tcp", ""}});
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  ASSERT_TRUE(fw_->addPortMappings(a0, {"10.244.0.10"}, {{20000, 80, "tcp", ""}}).ok());
  st = fw_->checkPortMappings(a0, {"10.244.0.10"}, {{20000, 80, "tcp", ""}});
  EXPECT_TRUE(st.ok()) << st;
  text = dump();
  EXPECT_EQ(countOf(text, nft() ? "jump hostports" : "-j BERTH-HOSTPORTS\n"), 2u) << text;
  list = fw_->portMappingAttachments(kNet);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), static_cast<size_t>(kN));
}

TEST_P(NatPrivileged, BadInputIsRejectedAndChangesNothing) {
  ASSERT_TRUE(fw_->ensureMasquerade(kNet, kSubnets).ok());
  ASSERT_TRUE(fw_->addPortMappings(kA, {"10.244.0.2"}, {{8080, 80, "tcp", ""}}).ok());
  std::string before = dump();
  auto invalid = [](const Status& st) { return st.code() == absl::StatusCode::kInvalidArgument; };
  for (const char* net : {"x; flush ruleset", "a\"b", "net work", "n\nflush ruleset", "", "../x",
                          "x}", "verylongnetworkname-verylongnetworkname-verylongnetworkname-verylong"}) {
    SCOPED_TRACE(net);
    Status st = fw_->ensureMasquerade(net, kSubnets);
    EXPECT_TRUE(invalid(st)) << st;
    EXPECT_TRUE(invalid(fw_->removeMasquerade(net)));
    EXPECT_TRUE(invalid(fw_->checkMasquerade(net, kSubnets)));
    EXPECT_TRUE(invalid(fw_->addPortMappings({net, "c1", "eth0"}, {"10.244.0.2"}, {{1, 1, "tcp", ""}})));
    EXPECT_TRUE(invalid(fw_->removePortMappings({net, "c1", "eth0"})));
    EXPECT_TRUE(invalid(fw_->portMappingAttachments(net).status()));
  }
  EXPECT_TRUE(invalid(fw_->addPortMappings({kNet, "c1\" ; flush ruleset", "eth0"}, {"10.244.0.2"}, {})));
  EXPECT_TRUE(invalid(fw_->addPortMappings({kNet, "a/b", "eth0"}, {"10.244.0.2"}, {})));
  EXPECT_TRUE(invalid(fw_->ensureMasquerade(kNet, {"10.244.0.0/33"})));
  EXPECT_TRUE(invalid(fw_->ensureMasquerade(kNet, {"10.244.0.0/24; flush ruleset"})));
  EXPECT_TRUE(invalid(fw_->ensureMasquerade(kNet, {"10.244.0.0/24"}, {"bogus"})));
  std::vector<std::vector<PortMapping>> bad = {
      {{0, 80, "tcp", ""}},     {{70000, 80, "tcp", ""}}, {{80, 0, "tcp", ""}},
      {{80, 70000, "udp", ""}}, {{80, 80, "icmp", ""}},   {{80, 80, "tcp\" ; flush ruleset", ""}},
      {{80, 80, "tcp", "1.2.3"}}, {{80, 80, "tcp", "1.2.3.4/24"}},
  };
  for (const auto& maps : bad) {
    Status st = fw_->addPortMappings(kB, {"10.244.0.3"}, maps);
    EXPECT_TRUE(invalid(st)) << st;
  }
  Status st = fw_->addPortMappings(kB, {"10.244.0.3"}, {{0, 80, "tcp", ""}});
  EXPECT_THAT(std::string(st.message()), HasSubstr("1..65535"));
  st = fw_->addPortMappings(kB, {"10.244.0.3"}, {{80, 80, "icmp", ""}});
  EXPECT_THAT(std::string(st.message()), HasSubstr("icmp"));
  EXPECT_TRUE(invalid(fw_->addPortMappings(kB, {"10.244.0.300"}, {{80, 80, "tcp", ""}})));
  EXPECT_EQ(dump(), before);
}

// Real packets: pod --veth-- node --veth-- outside, three network namespaces.
//   pod      eth0   10.244.0.2/24, default via 10.244.0.1
//   node     vpod   10.244.0.1/24       vout 192.168.77.1/24
//   outside  eth0   192.168.77.2/24     (no route to the pod subnet)
TEST_P(NatPrivileged, TrafficIsMasqueradedAndHostPortsReachThePod) {
  makeNetns("pod");
  makeNetns("out");
  if (HasFatalFailure()) return;
  ASSERT_TRUE(runShell(strCat("ip link add vpod type veth peer name eth0 netns ", netnsPath("pod"),
                              " && ip link add vout type veth peer name eth0 netns ",
                              netnsPath("out"),
                              " && ip addr add 10.244.0.1/24 dev vpod && ip link set vpod up"
                              " && ip addr add 192.168.77.1/24 dev vout && ip link set vout up"
                              " && echo 1 > /proc/sys/net/ipv4/ip_forward")))
      << "ip (iproute2) is needed to make the test's veths";
  shellIn("pod", "ip link set lo up && ip addr add 10.244.0.2/24 dev eth0 && ip link set eth0 up"
                 " && ip route add default via 10.244.0.1");
  shellIn("out", "ip link set lo up && ip addr add 192.168.77.2/24 dev eth0 && ip link set eth0 up");
  if (HasFatalFailure()) return;

  // Masquerade: pod -> outside arrives from the node's address.
  ASSERT_TRUE(fw_->ensureMasquerade(kNet, {"10.244.0.0/24"}).ok());
  UniqueFd out_listener;
  ASSERT_TRUE(runInNetns(netnsPath("out"), [&]() -> Status {
                ASSIGN_OR_RETURN(out_listener, listenTcp(7070));
                return absl::OkStatus();
              }).ok());
  Status st = runInNetns(netnsPath("pod"), [] { return connectAndSend("192.168.77.2", 7070, "masq"); });
  ASSERT_TRUE(st.ok()) << st;
  std::string peer;
  auto got = acceptAndRead(out_listener.get(), &peer);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "masq");
  EXPECT_EQ(peer, "192.168.77.1");

  // hostPort 18080 -> pod:8080, from outside, from the node itself, and from the pod
  // to its own hostPort (hairpin: masqueraded, so the reply comes back).
  Attachment a{kNet, "trafficpod", "eth0"};
  ASSERT_TRUE(fw_->addPortMappings(a, {"10.244.0.2"}, {{18080, 8080, "tcp", ""}}).ok());
  UniqueFd pod_listener;
  ASSERT_TRUE(runInNetns(netnsPath("pod"), [&]() -> Status {
                ASSIGN_OR_RETURN(pod_listener, listenTcp(8080));
                return absl::OkStatus();
              }).ok());
  st = runInNetns(netnsPath("out"), [] { return connectAndSend("192.168.77.1", 18080, "from-out"); });
  ASSERT_TRUE(st.ok()) << st;
  got = acceptAndRead(pod_listener.get(), &peer);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "from-out");
  EXPECT_EQ(peer, "192.168.77.2");  // DNAT only: the pod sees the real client

  st = connectAndSend("192.168.77.1", 18080, "from-node");
  ASSERT_TRUE(st.ok()) << st;
  got = acceptAndRead(pod_listener.get(), &peer);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "from-node");

  st = runInNetns(netnsPath("pod"), [] { return connectAndSend("192.168.77.1", 18080, "hairpin"); });
  ASSERT_TRUE(st.ok()) << st;
  got = acceptAndRead(pod_listener.get(), &peer);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "hairpin");
  EXPECT_EQ(peer, "10.244.0.1");

  // After removal the hostPort no longer leads to the pod.
  ASSERT_TRUE(fw_->removePortMappings(a).ok());
  st = runInNetns(netnsPath("out"), [] { return connectAndSend("192.168.77.1", 18080, "gone"); });
  EXPECT_FALSE(st.ok());
}

// The same over IPv6 (addresses without DAD so they are usable at once):
//   pod  eth0 fd44:0:0:1::2/64 (default via fd44:0:0:1::1)   node vpod fd44:0:0:1::1/64
//   node vout fd77::1/64                                       out  eth0 fd77::2/64
TEST_P(NatPrivileged, Ipv6TrafficIsMasqueradedAndHostPortsReachThePod) {
  makeNetns("pod");
  makeNetns("out");
  if (HasFatalFailure()) return;
  ASSERT_TRUE(runShell(strCat("ip link add vpod type veth peer name eth0 netns ", netnsPath("pod"),
                              " && ip link add vout type veth peer name eth0 netns ",
                              netnsPath("out"),
                              " && ip addr add fd44:0:0:1::1/64 dev vpod nodad && ip link set vpod up"
                              " && ip addr add fd77::1/64 dev vout nodad && ip link set vout up"
                              " && echo 1 > /proc/sys/net/ipv6/conf/all/forwarding")))
      << "ip (iproute2) is needed to make the test's veths";
  shellIn("pod", "ip link set lo up && ip addr add fd44:0:0:1::2/64 dev eth0 nodad"
                 " && ip link set eth0 up && ip -6 route add default via fd44:0:0:1::1");
  shellIn("out", "ip link set lo up && ip addr add fd77::2/64 dev eth0 nodad && ip link set eth0 up");
  if (HasFatalFailure()) return;

  ASSERT_TRUE(fw_->ensureMasquerade(kNet, kSubnets).ok());
  UniqueFd out_listener;
  ASSERT_TRUE(runInNetns(netnsPath("out"), [&]() -> Status {
                ASSIGN_OR_RETURN(out_listener, listenTcp6(7070));
                return absl::OkStatus();
              }).ok());
  Status st = runInNetns(netnsPath("pod"), [] { return connectAndSend6("fd77::2", 7070, "masq6"); });
  ASSERT_TRUE(st.ok()) << st;
  std::string peer;
  auto got = acceptAndRead6(out_listener.get(), &peer);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "masq6");
  EXPECT_EQ(peer, "fd77::1");

  Attachment a{kNet, "trafficpod6", "eth0"};
  ASSERT_TRUE(fw_->addPortMappings(a, {"10.244.0.2", "fd44:0:0:1::2"}, {{18080, 8080, "tcp", ""}}).ok());
  UniqueFd pod_listener;
  ASSERT_TRUE(runInNetns(netnsPath("pod"), [&]() -> Status {
                ASSIGN_OR_RETURN(pod_listener, listenTcp6(8080));
                return absl::OkStatus();
              }).ok());
  st = runInNetns(netnsPath("out"), [] { return connectAndSend6("fd77::1", 18080, "from-out6"); });
  ASSERT_TRUE(st.ok()) << st;
  got = acceptAndRead6(pod_listener.get(), &peer);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "from-out6");
  EXPECT_EQ(peer, "fd77::2");
}

TEST_P(NatPrivileged, EnsureMasqueradeLatency) {
  using Clock = std::chrono::steady_clock;
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::vector<double> steady, changing;
  ASSERT_TRUE(fw_->ensureMasquerade(kNet, kSubnets).ok());
  for (int i = 0; i < 50; ++i) {
    auto t0 = Clock::now();
    ASSERT_TRUE(fw_->ensureMasquerade(kNet, kSubnets).ok());
    steady.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  for (int i = 0; i < 50; ++i) {
    auto t0 = Clock::now();
    ASSERT_TRUE(fw_->ensureMasquerade(kNet, {strCat("10.", 100 + i, ".0.0/24")}).ok());
    changing.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  // A fresh Firewall per call, as each plugin process has.
  std::vector<double> fresh;
  for (int i = 0; i < 50; ++i) {
    auto t0 = Clock::now();
    auto fw = Firewall::open(GetParam());
    ASSERT_TRUE(fw.ok());
    ASSERT_TRUE((*fw)->ensureMasquerade(kNet, kSubnets).ok());
    fw->reset();
    fresh.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  // A fresh Firewall that has to write (the first ADD on a node, or after a change).
  std::vector<double> fresh_write;
  for (int i = 0; i < 50; ++i) {
    auto t0 = Clock::now();
    auto fw = Firewall::open(GetParam());
    ASSERT_TRUE(fw.ok());
    ASSERT_TRUE((*fw)->ensureMasquerade(kNet, {strCat("10.", 100 + i % 2, ".0.0/24")}).ok());
    fw->reset();
    fresh_write.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::printf("[ latency  ] %s ensureMasquerade median of 50: %.3f ms in place, %.3f ms rewriting; "
              "with open()+close per call: %.3f ms in place, %.3f ms rewriting\n",
              backendName(GetParam()).c_str(), median(steady), median(changing), median(fresh),
              median(fresh_write));
}

TEST_P(NatPrivileged, OpenWithoutPreferenceUsesNftablesWhenItWorks) {
  auto fw = Firewall::open();
  ASSERT_TRUE(fw.ok()) << fw.status();
  EXPECT_EQ((*fw)->backend(), Backend::kNftables);  // nf_tables works in this kernel
  Status st = (*fw)->ensureMasquerade(kNet, kSubnets);
  EXPECT_TRUE(st.ok()) << st;
  // A probing open() on an existing table must not leave its read in the context's
  // output buffer for the next listing to parse (rules would be seen twice).
  ASSERT_TRUE((*fw)->addPortMappings(kA, {"10.244.0.2"}, {{8080, 80, "tcp", ""}}).ok());
  auto again = Firewall::open();
  ASSERT_TRUE(again.ok());
  st = (*again)->removePortMappings(kA);
  EXPECT_TRUE(st.ok()) << st;
  auto list = (*again)->portMappingAttachments(kNet);
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
  EXPECT_THAT(raw_->run("list tables"), ::testing::Eq("table inet berth-cni\n"));
}

INSTANTIATE_TEST_SUITE_P(Backends, NatPrivileged,
                         ::testing::Values(Backend::kNftables, Backend::kIptables),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return backendName(info.param);
                         });

}  // namespace
}  // namespace berth::cni::nat
