// common/nftables.h against the kernel, each test in fresh network namespaces made on
// dedicated threads: which netns a context acts on, errors naming the failing line,
// check-only mode, listings (text, JSON, handles).
#include <sched.h>

#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/nftables.h"
#include "tests/integration/proxy/netns_thread.h"

namespace berth::nft {
namespace {

using ::berth::proxy::testing::bringLoopbackUp;
using ::berth::proxy::testing::currentNetnsInode;
using ::berth::proxy::testing::NetnsThread;
using ::berth::proxy::testing::whyNoPrivileges;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

class NftablesContextPrivilegedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = whyNoPrivileges();
    if (!why.empty()) GTEST_SKIP() << why;
    if (!ns_.status().ok()) GTEST_SKIP() << "no fresh netns: " << ns_.status();
  }
  NetnsThread ns_;
};

// The fact the whole apply layer relies on: libnftables opens its netlink socket in
// nft_ctx_new(), so a context keeps acting on the netns it was made in after its thread
// moves to another one.
TEST_F(NftablesContextPrivilegedTest, ContextStaysInTheNetnsItWasCreatedIn) {
  std::thread t([] {
    ASSERT_EQ(::unshare(CLONE_NEWNET), 0);
    ino_t first = currentNetnsInode();
    auto a = Context::create();
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_EQ(a->netnsInode(), first);
    // Move this thread into a second fresh netns, then use the first context.
    ASSERT_EQ(::unshare(CLONE_NEWNET), 0);
    ino_t second = currentNetnsInode();
    ASSERT_NE(first, second);
    ASSERT_TRUE(a->run("add table ip berth-bound\n", "test table").ok());
    auto b = Context::create();
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_EQ(b->netnsInode(), second);
    auto in_second = b->list("list tables");
    ASSERT_TRUE(in_second.ok()) << in_second.status();
    EXPECT_THAT(*in_second, Not(HasSubstr("berth-bound")));
    auto in_first = a->list("list tables");
    ASSERT_TRUE(in_first.ok()) << in_first.status();
    EXPECT_THAT(*in_first, HasSubstr("table ip berth-bound"));
  });
  t.join();
}

TEST_F(NftablesContextPrivilegedTest, RunErrorNamesFailingLineAndWhat) {
  ns_.run([] {
    auto ctx = Context::create();
    ASSERT_TRUE(ctx.ok()) << ctx.status();
    ASSERT_TRUE(ctx->run("add table ip t\nadd chain ip t a\n", "setup").ok());
    Status s = ctx->run("add chain ip t b\nadd rule ip t b counter\nadd rule ip t b jump nochain\n",
                        "sync of table ip t");
    EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(s.message(),
              "sync of table ip t: nftables: line 3: Could not process rule: No such file or directory: "
              "\"add rule ip t b jump nochain\"");
    Status parse = ctx->run("add chain ip t d\n\nadd rule ip t d foo bar\n", "bad script");
    EXPECT_EQ(parse.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(parse.message()), StartsWith("bad script: nftables: line 3: "));
    EXPECT_THAT(std::string(parse.message()), HasSubstr("\"add rule ip t d foo bar\""));
    // Nothing of either failed script was applied.
    auto text = ctx->list("list table ip t");
    ASSERT_TRUE(text.ok()) << text.status();
    EXPECT_THAT(*text, Not(HasSubstr("chain b")));
    EXPECT_THAT(*text, Not(HasSubstr("chain d")));
  });
}

TEST_F(NftablesContextPrivilegedTest, CheckValidatesWithoutApplying) {
  ns_.run([] {
    auto ctx = Context::create();
    ASSERT_TRUE(ctx.ok()) << ctx.status();
    ASSERT_TRUE(ctx->run("add table ip t\n", "setup").ok());
    Status ok = ctx->check("add chain ip t c\nadd rule ip t c counter accept\n", "new chain");
    EXPECT_TRUE(ok.ok()) << ok;
    auto text = ctx->list("list table ip t");
    ASSERT_TRUE(text.ok()) << text.status();
    EXPECT_THAT(*text, Not(HasSubstr("chain c")));
    // The kernel sees the batch (and aborts it): a missing jump target is reported.
    Status bad = ctx->check("add chain ip t c\nadd rule ip t c jump nochain\n", "new chain");
    EXPECT_EQ(bad.code(), absl::StatusCode::kNotFound);
    EXPECT_THAT(std::string(bad.message()), StartsWith("check new chain: nftables: line 2: Could not process rule"));
    // Dry-run mode is off again afterwards.
    ASSERT_TRUE(ctx->run("add chain ip t c\n", "apply").ok());
    text = ctx->list("list table ip t");
    ASSERT_TRUE(text.ok()) << text.status();
    EXPECT_THAT(*text, HasSubstr("chain c"));
  });
}

TEST_F(NftablesContextPrivilegedTest, ListMissingObjectIsNotFound) {
  ns_.run([] {
    auto ctx = Context::create();
    ASSERT_TRUE(ctx.ok()) << ctx.status();
    auto text = ctx->list("list table ip nosuch");
    EXPECT_EQ(text.status().code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(text.status().message(), "nftables: list table ip nosuch: No such file or directory");
    auto empty = ctx->list("list ruleset");
    ASSERT_TRUE(empty.ok()) << empty.status();
    EXPECT_EQ(*empty, "");
  });
}

TEST_F(NftablesContextPrivilegedTest, JsonAndHandleOutput) {
  ns_.run([] {
    Options json;
    json.json_output = true;
    auto j = Context::create(json);
    ASSERT_TRUE(j.ok()) << j.status();
    ASSERT_TRUE(j->run("add table inet t\nadd chain inet t c\nadd rule inet t c counter\n", "setup").ok());
    auto text = j->list("list table inet t");
    ASSERT_TRUE(text.ok()) << text.status();
    EXPECT_THAT(*text, StartsWith("{\"nftables\": ["));
    EXPECT_THAT(*text, HasSubstr("\"chain\": {\"family\": \"inet\", \"table\": \"t\", \"name\": \"c\""));
    Options handles;
    handles.handles = true;
    auto h = Context::create(handles);
    ASSERT_TRUE(h.ok()) << h.status();
    text = h->list("list chain inet t c");
    ASSERT_TRUE(text.ok()) << text.status();
    EXPECT_THAT(*text, HasSubstr("counter packets 0 bytes 0 # handle "));
  });
}

TEST_F(NftablesContextPrivilegedTest, OutputOfOneCommandDoesNotLeakIntoTheNext) {
  ns_.run([] {
    auto ctx = Context::create();
    ASSERT_TRUE(ctx.ok()) << ctx.status();
    ASSERT_TRUE(ctx->run("add table ip one\nadd table ip two\n", "setup").ok());
    auto first = ctx->list("list table ip one");
    ASSERT_TRUE(first.ok());
    auto second = ctx->list("list table ip two");
    ASSERT_TRUE(second.ok());
    EXPECT_THAT(*second, Not(HasSubstr("table ip one")));
    EXPECT_THAT(*second, HasSubstr("table ip two"));
    // A failure's error text does not stick to the next success or failure either.
    EXPECT_FALSE(ctx->run("add rule ip one nochain counter\n", "bad").ok());
    Status again = ctx->run("add chain ip two c\nadd rule ip two c jump nochain\n", "bad2");
    EXPECT_THAT(std::string(again.message()), Not(HasSubstr("ip one")));
  });
}

}  // namespace
}  // namespace berth::nft
