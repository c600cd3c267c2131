// NftablesApplier against the kernel in fresh network namespaces: tables with maps and
// chains, atomic transactions (a failing command anywhere leaves the ruleset exactly as
// it was), table cleanup, and two appliers in two netns working at once.
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "proxy/nft_apply.h"
#include "tests/integration/proxy/netns_thread.h"

namespace berth::proxy {
namespace {

using testing::NetnsThread;
using testing::whyNoPrivileges;
using ::testing::HasSubstr;
using ::testing::Not;

// A small proxy-like table: a verdict map from address . port to per-service chains.
constexpr char kTable[] =
    "table ip berth-test {\n"
    "  map service-ips {\n"
    "    type ipv4_addr . inet_proto . inet_service : verdict\n"
    "  }\n"
    "  chain services {\n"
    "    ip daddr . meta l4proto . th dport vmap @service-ips\n"
    "  }\n"
    "  chain svc-web {\n"
    "    counter\n"
    "  }\n"
    "  chain svc-dns {\n"
    "    counter\n"
    "  }\n"
    "  chain nat-output {\n"
    "    type nat hook output priority -100; policy accept;\n"
    "    jump services\n"
    "  }\n"
    "}\n"
    "add element ip berth-test service-ips { 10.96.0.1 . tcp . 443 : goto svc-web }\n"
    "add element ip berth-test service-ips { 10.96.0.10 . udp . 53 : goto svc-dns }\n";

class NftablesApplierPrivilegedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = whyNoPrivileges();
    if (!why.empty()) GTEST_SKIP() << why;
    if (!ns_.status().ok()) GTEST_SKIP() << "no fresh netns: " << ns_.status();
    ns_.run([this] {
      auto a = NftablesApplier::create();
      ASSERT_TRUE(a.ok()) << a.status();
      applier_ = std::move(*a);
    });
    ASSERT_NE(applier_, nullptr);
  }
  void TearDown() override {
    // The applier's socket belongs to the thread's netns; drop it before the thread.
    if (applier_) ns_.run([this] { applier_.reset(); });
  }

  std::string listing() {
    auto text = applier_->listTable("ip", "berth-test");
    EXPECT_TRUE(text.ok()) << text.status();
    return text.ok() ? *text : "";
  }

  NetnsThread ns_;
  std::unique_ptr<NftablesApplier> applier_;
};

TEST_F(NftablesApplierPrivilegedTest, AppliesTableWithMapAndChains) {
  ASSERT_TRUE(applier_->apply(kTable, "test table").ok());
  auto exists = applier_->tableExists("ip", "berth-test");
  ASSERT_TRUE(exists.ok()) << exists.status();
  EXPECT_TRUE(*exists);
  std::string text = listing();
  EXPECT_THAT(text, HasSubstr("map service-ips {"));
  EXPECT_THAT(text, HasSubstr("10.96.0.1 . tcp . 443 : goto svc-web"));
  EXPECT_THAT(text, HasSubstr("10.96.0.10 . udp . 53 : goto svc-dns"));
  EXPECT_THAT(text, HasSubstr("chain nat-output {"));
  EXPECT_THAT(text, HasSubstr("type nat hook output priority -100; policy accept;"));
  auto other = applier_->tableExists("ip6", "berth-test");
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(*other);
}

TEST_F(NftablesApplierPrivilegedTest, TransactionReferencingMissingChainChangesNothing) {
  ASSERT_TRUE(applier_->apply(kTable, "test table").ok());
  std::string before = listing();
  ASSERT_FALSE(before.empty());
  // Like a sync: flush and refill a chain, add a chain and a map element, then one rule
  // referencing a chain that does not exist, then more.
  std::string sync =
      "flush chain ip berth-test svc-web\n"
      "add rule ip berth-test svc-web counter drop\n"
      "add chain ip berth-test svc-new\n"
      "add element ip berth-test service-ips { 10.96.0.20 . tcp . 80 : goto svc-new }\n"
      "delete element ip berth-test service-ips { 10.96.0.10 . udp . 53 }\n"
      "add rule ip berth-test svc-new goto svc-missing\n"
      "add chain ip berth-test svc-after\n";
  Status s = applier_->apply(sync, "sync of table ip berth-test");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(),
            "sync of table ip berth-test: nftables: line 6: Could not process rule: No such file or directory: "
            "\"add rule ip berth-test svc-new goto svc-missing\"");
  EXPECT_EQ(listing(), before);
  EXPECT_THAT(listing(), Not(HasSubstr("svc-new")));
  EXPECT_THAT(listing(), Not(HasSubstr("drop")));
}

TEST_F(NftablesApplierPrivilegedTest, FailingDeleteLateInScriptUndoesEarlierDeletes) {
  ASSERT_TRUE(applier_->apply(kTable, "test table").ok());
  std::string before = listing();
  Status s = applier_->apply(
      "delete element ip berth-test service-ips { 10.96.0.1 . tcp . 443 }\n"
      "flush chain ip berth-test svc-dns\n"
      "delete chain ip berth-test svc-gone\n",
      "cleanup");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()), HasSubstr("line 3: "));
  EXPECT_EQ(listing(), before);
}

// A transaction too big for one netlink message (libnftables sends it as several) is
// still one batch: a failure on its last line undoes 6000 element and chain additions.
TEST_F(NftablesApplierPrivilegedTest, LargeTransactionIsAtomicToo) {
  ASSERT_TRUE(applier_->apply(kTable, "test table").ok());
  std::string before = listing();
  std::string big;
  for (int i = 0; i < 6000; ++i) {
    big += strCat("add element ip berth-test service-ips { 10.", 100 + i / 250, ".", i % 250,
                  ".1 . tcp . 80 : goto svc-web }\n");
    if (i % 10 == 0) big += strCat("add chain ip berth-test svc-", i, "\nadd rule ip berth-test svc-", i, " counter\n");
  }
  ASSERT_GT(big.size(), 300000u);
  Status s = applier_->apply(big + "add rule ip berth-test svc-web goto svc-missing\n", "big sync");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()), HasSubstr(strCat("line ", 6000 + 2 * 600 + 1, ": ")));
  EXPECT_EQ(listing(), before);
  // The same without the bad line applies all of it.
  s = applier_->apply(big, "big sync");
  ASSERT_TRUE(s.ok()) << s;
  std::string text = listing();
  EXPECT_THAT(text, HasSubstr("10.123.249.1 . tcp . 80 : goto svc-web"));
  EXPECT_THAT(text, HasSubstr("chain svc-5990 {"));
}

TEST_F(NftablesApplierPrivilegedTest, SuccessfulSyncReplacesContent) {
  ASSERT_TRUE(applier_->apply(kTable, "test table").ok());
  ASSERT_TRUE(applier_
                  ->apply("flush map ip berth-test service-ips\n"
                          "add element ip berth-test service-ips { 10.96.0.99 . tcp . 8080 : goto svc-web }\n",
                          "sync")
                  .ok());
  std::string text = listing();
  EXPECT_THAT(text, HasSubstr("10.96.0.99 . tcp . 8080 : goto svc-web"));
  EXPECT_THAT(text, Not(HasSubstr("10.96.0.1 . tcp . 443")));
}

TEST_F(NftablesApplierPrivilegedTest, CheckDoesNotApply) {
  ASSERT_TRUE(applier_->check(kTable, "test table").ok());
  auto exists = applier_->tableExists("ip", "berth-test");
  ASSERT_TRUE(exists.ok());
  EXPECT_FALSE(*exists);
}

TEST_F(NftablesApplierPrivilegedTest, DeleteTableRemovesItAndIsIdempotent) {
  ASSERT_TRUE(applier_->apply(kTable, "test table").ok());
  ASSERT_TRUE(applier_->apply("add table ip6 berth-test\n", "v6 table").ok());
  Status s = applier_->deleteTable("ip", "berth-test");
  ASSERT_TRUE(s.ok()) << s;
  auto exists = applier_->tableExists("ip", "berth-test");
  ASSERT_TRUE(exists.ok());
  EXPECT_FALSE(*exists);
  auto v6 = applier_->tableExists("ip6", "berth-test");
  ASSERT_TRUE(v6.ok());
  EXPECT_TRUE(*v6) << "only the named family's table goes";
  EXPECT_TRUE(applier_->deleteTable("ip", "berth-test").ok());
  EXPECT_EQ(applier_->listTable("ip", "berth-test").value_or("x"), "");
  EXPECT_EQ(applier_->deleteTable("ipx", "berth-test").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(applier_->deleteTable("ip", "a b").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(applier_->tableExists("ip", "t;x").status().code(), absl::StatusCode::kInvalidArgument);
}

// An applier is bound to the netns it was created in, whichever thread calls it.
TEST_F(NftablesApplierPrivilegedTest, CallsFromOtherThreadsActOnItsNetns) {
  EXPECT_EQ(applier_->netnsInode(), ns_.inode());
  std::thread t([this] { EXPECT_TRUE(applier_->apply("add table inet berth-from-thread\n", "t").ok()); });
  t.join();
  ns_.run([] {
    auto check = NftablesApplier::create();
    ASSERT_TRUE(check.ok());
    auto exists = (*check)->tableExists("inet", "berth-from-thread");
    ASSERT_TRUE(exists.ok());
    EXPECT_TRUE(*exists);
  });
}

// Two appliers in two netns, syncing the same table name at the same time, each see
// only their own rules.
TEST(NftablesApplierIsolationPrivilegedTest, TwoNetnsDoNotSeeEachOther) {
  std::string why = whyNoPrivileges();
  if (!why.empty()) GTEST_SKIP() << why;
  NetnsThread a, b;
  if (!a.status().ok() || !b.status().ok()) GTEST_SKIP() << "no fresh netns";
  ASSERT_NE(a.inode(), b.inode());
  auto worker = [](const std::string& addr) {
    auto applier = NftablesApplier::create();
    ASSERT_TRUE(applier.ok()) << applier.status();
    ASSERT_TRUE((*applier)->apply(kTable, "test table").ok());
    for (int i = 0; i < 30; ++i) {
      std::string sync = strCat("flush map ip berth-test service-ips\n",
                                "add element ip berth-test service-ips { ", addr, " . tcp . ", 1000 + i,
                                " : goto svc-web }\n");
      Status s = (*applier)->apply(sync, "sync");
      ASSERT_TRUE(s.ok()) << s;
    }
    auto text = (*applier)->listTable("ip", "berth-test");
    ASSERT_TRUE(text.ok());
    EXPECT_THAT(*text, HasSubstr(strCat(addr, " . tcp . 1029 : goto svc-web")));
    std::string other = addr == "10.0.0.1" ? "10.0.0.2" : "10.0.0.1";
    EXPECT_THAT(*text, Not(HasSubstr(other)));
  };
  std::future<void> fa = a.post([&] { worker("10.0.0.1"); });
  std::future<void> fb = b.post([&] { worker("10.0.0.2"); });
  fa.get();
  fb.get();
}

}  // namespace
}  // namespace berth::proxy
