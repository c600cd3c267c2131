// The rendered scripts against a real kernel, in a fresh network namespace on a dedicated
// thread (never the host's ruleset): every scenario's first sync passes the kernel's
// check (nft -c: libnftables dry run, a batch the kernel validates then aborts) and
// applies; sequences of full and partial syncs apply one after the other (stale chains
// are never "in use" when deleted); and, when the nft CLI is installed, `nft -c -f` accepts
// every golden file (run under `unshare --net`, so in a throwaway netns too; BERTH_NFT may
// name the binary).
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/nftables.h"
#include "proxy/nftables_render.h"
#include "tests/integration/proxy/netns_thread.h"
#include "tests/unit/proxy/nft_walker.h"
#include "tests/unit/proxy/scenarios.h"

namespace berth::proxy {
namespace {

using ::berth::proxy::testing::NetnsThread;
using ::berth::proxy::testing::whyNoPrivileges;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

class NftablesKernelPrivilegedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = whyNoPrivileges();
    if (!why.empty()) GTEST_SKIP() << why;
    if (!ns_.status().ok()) GTEST_SKIP() << "no fresh netns: " << ns_.status();
    ns_.run([&] {
      auto ctx = nft::Context::create();
      ASSERT_TRUE(ctx.ok()) << ctx.status();
      ctx_ = std::make_unique<nft::Context>(std::move(ctx).value());
    });
    if (!ctx_) GTEST_SKIP() << "no libnftables context";
  }
  void TearDown() override {
    // The context belongs to the netns thread's namespace; free it there.
    if (ctx_) ns_.run([&] { ctx_.reset(); });
  }

  Status check(const std::string& script) {
    Status st;
    ns_.run([&] { st = ctx_->check(script, "rendered sync"); });
    return st;
  }
  Status run(const std::string& script) {
    Status st;
    ns_.run([&] { st = ctx_->run(script, "rendered sync"); });
    return st;
  }
  std::string listing() {
    std::string out;
    ns_.run([&] {
      auto l = ctx_->list("list table inet berth-proxy");
      out = l.ok() ? *l : std::string();
    });
    return out;
  }

  NetnsThread ns_;
  std::unique_ptr<nft::Context> ctx_;
};

TEST_F(NftablesKernelPrivilegedTest, EveryScenarioPassesTheKernelCheckAndApplies) {
  for (const auto& s : testing::scenarios()) {
    SCOPED_TRACE(s.name);
    NftablesRenderer renderer;
    std::string script = renderer.renderSync(testing::stateOf(s), {}, true);
    Status checked = check(script);
    EXPECT_TRUE(checked.ok()) << checked;
    Status applied = run(script);
    ASSERT_TRUE(applied.ok()) << applied;
    // The next scenario's rebuild replaces this table in one transaction.
    std::string list = listing();
    EXPECT_THAT(list, HasSubstr("chain services"));
  }
}

TEST_F(NftablesKernelPrivilegedTest, AppliedTableMatchesTheWalkersChains) {
  const auto& s = testing::scenario("session_affinity");
  NftablesRenderer renderer;
  std::string script = renderer.renderSync(testing::stateOf(s), {}, true);
  ASSERT_TRUE(run(script).ok());
  testing::NftWalker walker;
  ASSERT_TRUE(walker.apply(script).ok());
  std::string list = listing();
  for (const std::string& chain : walker.chainNames()) {
    EXPECT_THAT(list, HasSubstr("chain " + chain + " {")) << list;
  }
  for (const std::string& c : walker.containerNames()) {
    EXPECT_THAT(list, ::testing::AnyOf(HasSubstr("set " + c + " {"), HasSubstr("map " + c + " {")));
  }
}

// Full, then partial syncs that add and remove Services and endpoints, with both stale
// chain policies: each script is one transaction the kernel accepts.
void runSequence(NftablesKernelPrivilegedTest& t, StaleChainPolicy policy,
                 const std::function<Status(const std::string&)>& run,
                 const std::function<std::string()>& listing) {
  std::chrono::steady_clock::time_point now{};
  NftablesRendererOptions opts;
  opts.stale_chains = policy;
  opts.clock = [&] { return now; };
  NftablesRenderer renderer(opts);
  ChangeTracker tracker;
  NodeInfo node = testing::testNode();
  auto sync = [&](bool full = false) {
    ChangedSet changed = tracker.takeChanged();
    std::string script = renderer.renderSync(buildProxyState(tracker.map(), node), changed, full);
    Status st = run(script);
    EXPECT_TRUE(st.ok()) << st << "\n" << script;
    if (st.ok()) {
      renderer.committed();
    } else {
      renderer.failed();
    }
  };
  // Start from every scenario's objects at once.
  for (const auto& s : testing::scenarios()) testing::load(s, tracker);
  sync();
  std::string first = listing();
  EXPECT_THAT(first, HasSubstr("default/web/tcp/http"));

  // Scale web down to one endpoint, turn affinity on for np, delete sticky.
  tracker.updateEndpointSlice(*parseEndpointSlice(std::string_view(testing::sliceJson(
      "web-2", "web", {}, R"([{"name": "http", "port": 8080}])"))));
  tracker.updateService(*parseService(std::string_view(testing::serviceJson(
      "np", R"("type": "NodePort", "clusterIP": "10.96.0.30", "sessionAffinity": "ClientIP",
          "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080}])"))));
  tracker.deleteService({"default", "sticky"});
  sync();
  now += 2s;
  // Delete the eTP Local Services and the endpoints of another one.
  tracker.deleteService({"default", "loc"});
  tracker.deleteService({"default", "far"});
  tracker.deleteEndpointSlice({"default", "ext-1"});
  sync();
  now += 2s;
  sync();  // deletes what the previous sync left flushed
  sync(/*full=*/true);
  std::string last = listing();
  EXPECT_THAT(last, Not(HasSubstr("default/sticky/")));
  EXPECT_THAT(last, Not(HasSubstr("default/loc/")));
  EXPECT_THAT(last, Not(HasSubstr("default/far/")));
  EXPECT_THAT(last, HasSubstr("default/np/"));
  EXPECT_EQ(renderer.pendingStaleChains(), 0u);
  (void)t;
}

TEST_F(NftablesKernelPrivilegedTest, PartialSyncsApplyWithStaleChainsDeletedLater) {
  runSequence(*this, StaleChainPolicy::kDeleteLater, [&](const std::string& s) { return run(s); },
              [&] { return listing(); });
}

TEST_F(NftablesKernelPrivilegedTest, PartialSyncsApplyWithStaleChainsDeletedAtOnce) {
  runSequence(*this, StaleChainPolicy::kDeleteInSameTransaction,
              [&](const std::string& s) { return run(s); }, [&] { return listing(); });
}

TEST_F(NftablesKernelPrivilegedTest, RebuildReplacesWhateverTableWasThere) {
  // A leftover table with a chain of ours referenced by a map, and a foreign chain.
  ASSERT_TRUE(run("add table inet berth-proxy\nadd chain inet berth-proxy services\n"
                  "add chain inet berth-proxy leftover\n"
                  "add map inet berth-proxy service-ips-v4 { type ipv4_addr . inet_proto . inet_service : verdict; }\n"
                  "add element inet berth-proxy service-ips-v4 { 10.1.1.1 . tcp . 1 : goto leftover }\n")
                  .ok());
  NftablesRenderer renderer;
  Status st = run(renderer.renderSync(testing::stateOf(testing::scenario("nodeport")), {}, true));
  ASSERT_TRUE(st.ok()) << st;
  std::string list = listing();
  EXPECT_THAT(list, Not(HasSubstr("leftover")));
  EXPECT_THAT(list, HasSubstr("default/np/tcp/http"));
}

// `nft -c -f` on every golden file, when the nft CLI is installed.
TEST(NftablesCliPrivilegedTest, NftCheckAcceptsEveryGoldenFile) {
  std::string why = whyNoPrivileges();
  if (!why.empty()) GTEST_SKIP() << why;
  // BERTH_NFT names another nft binary (e.g. one unpacked from the .deb).
  std::string nft;
  const char* env = std::getenv("BERTH_NFT");
  for (const char* p : {env, "/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"}) {
    if (nft.empty() && p != nullptr && access(p, X_OK) == 0) nft = p;
  }
  if (nft.empty()) {
    GTEST_SKIP() << "the nft CLI is not installed (Debian package nftables); the libnftables "
                    "check above covers the same parser and kernel validation";
  }
  for (const auto& s : testing::scenarios()) {
    std::string path = std::string(BERTH_PROXY_GOLDEN_DIR) + "/" + s.name + ".nft";
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      execl("/usr/bin/unshare", "unshare", "--net", "--", nft.c_str(), "-c", "-f", path.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "nft -c -f " << path;
  }
}

}  // namespace
}  // namespace berth::proxy
