// IptablesApplier with the real iptables-restore / iptables-save of each backend that is
// installed (iptables-nft-*, iptables-legacy-*), run from threads in fresh network
// namespaces: rules land in that netns only, a bad line fails naming its number and
// text and leaves the earlier ruleset intact, --noflush keeps other chains, large inputs
// go through the pipes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "proxy/iptables_apply.h"
#include "tests/integration/proxy/netns_thread.h"

namespace berth::proxy {
namespace {

using testing::NetnsThread;
using testing::whyNoPrivileges;
using ::testing::HasSubstr;
using ::testing::Not;

// iptables-save output without its timestamped comment lines and packet counters.
std::string rulesOnly(const std::string& save) {
  std::vector<std::string> keep;
  for (const std::string& line : split(save, '\n', true)) {
    if (line.starts_with("#")) continue;
    keep.push_back(line);
  }
  return joinStrings(keep, "\n");
}

struct Case {
  IptablesBackend backend;
  IpFamily family;
};

std::string caseName(const ::testing::TestParamInfo<Case>& info) {
  return strCat(info.param.backend == IptablesBackend::kNft ? "nft" : "legacy", "_",
                info.param.family == IpFamily::kIPv6 ? "ipv6" : "ipv4");
}

class IptablesApplierPrivilegedTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    std::string why = whyNoPrivileges();
    if (!why.empty()) GTEST_SKIP() << why;
    if (!ns_.status().ok()) GTEST_SKIP() << "no fresh netns: " << ns_.status();
    IptablesApplier::Options options;
    options.backend = GetParam().backend;
    auto applier = IptablesApplier::create(GetParam().family, options);
    if (!applier.ok()) GTEST_SKIP() << "backend not installed: " << applier.status();
    applier_.emplace(std::move(*applier));
  }

  // restore()/save() run in the netns of the calling thread: call them on ns_.
  Status restoreIn(NetnsThread& ns, const std::string& input) {
    Status s;
    ns.run([&] { s = applier_->restore(input); });
    return s;
  }
  std::string saveIn(NetnsThread& ns, const std::string& table) {
    StatusOr<std::string> out;
    ns.run([&] { out = applier_->save(table); });
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *out : "";
  }
  std::string v4or6(const std::string& v4, const std::string& v6) {
    return GetParam().family == IpFamily::kIPv6 ? v6 : v4;
  }

  NetnsThread ns_;
  std::optional<IptablesApplier> applier_;
};

TEST_P(IptablesApplierPrivilegedTest, RestoreCreatesChainsInThisNetnsOnly) {
  std::string input = strCat(
      "*filter\n"
      ":BERTH-SERVICES - [0:0]\n"
      "-A BERTH-SERVICES -d ", v4or6("10.96.0.10/32", "fd00:96::10/128"),
      " -p udp -m udp --dport 53 -m comment --comment \"kube-system/kube-dns:dns has no endpoints\" "
      "-j REJECT\n"
      "-A OUTPUT -j BERTH-SERVICES\n"
      "COMMIT\n"
      "*nat\n"
      ":BERTH-SVC-DNS - [0:0]\n"
      "-A BERTH-SVC-DNS -p udp -j DNAT --to-destination ", v4or6("10.244.1.5:53", "[fd00:244::5]:53"), "\n"
      "COMMIT\n");
  Status s = restoreIn(ns_, input);
  ASSERT_TRUE(s.ok()) << s;
  std::string filter = saveIn(ns_, "filter");
  EXPECT_THAT(filter, HasSubstr(":BERTH-SERVICES - [0:0]"));
  EXPECT_THAT(filter, HasSubstr("-A OUTPUT -j BERTH-SERVICES"));
  EXPECT_THAT(filter, HasSubstr("kube-system/kube-dns:dns has no endpoints"));
  std::string nat = saveIn(ns_, "nat");
  EXPECT_THAT(nat, HasSubstr(strCat("--to-destination ", v4or6("10.244.1.5:53", "[fd00:244::5]:53"))));
  // Another fresh netns sees none of it.
  NetnsThread other;
  ASSERT_TRUE(other.status().ok());
  EXPECT_THAT(saveIn(other, "filter"), Not(HasSubstr("BERTH-SERVICES")));
  EXPECT_THAT(saveIn(other, "nat"), Not(HasSubstr("BERTH-SVC-DNS")));
}

TEST_P(IptablesApplierPrivilegedTest, BadLineFailsWithItsNumberAndKeepsEarlierRuleset) {
  std::string good =
      "*filter\n"
      ":BERTH-A - [0:0]\n"
      "-A BERTH-A -j ACCEPT\n"
      "COMMIT\n";
  ASSERT_TRUE(restoreIn(ns_, good).ok());
  std::string before = rulesOnly(saveIn(ns_, "filter"));
  ASSERT_THAT(before, HasSubstr("-A BERTH-A -j ACCEPT"));
  // Line 4 is malformed: rejected while parsing, by both backends, naming line 4.
  std::string bad =
      "*filter\n"
      ":BERTH-A - [0:0]\n"
      ":BERTH-B - [0:0]\n"
      "-A BERTH-B --no-such-option 1 -j ACCEPT\n"
      "-A BERTH-A -j RETURN\n"
      "COMMIT\n";
  Status s = restoreIn(ns_, bad);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("line 4 failed: "));
  EXPECT_THAT(std::string(s.message()), HasSubstr("--no-such-option"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("\"-A BERTH-B --no-such-option 1 -j ACCEPT\""));
  EXPECT_THAT(std::string(s.message()), HasSubstr(strCat("(", backendName(GetParam().backend), ")")));
  // The flush of BERTH-A (line 2) and the new chain BERTH-B were not committed.
  EXPECT_EQ(rulesOnly(saveIn(ns_, "filter")), before);
}

TEST_P(IptablesApplierPrivilegedTest, JumpToMissingChainFailsAndKeepsRuleset) {
  ASSERT_TRUE(restoreIn(ns_, "*filter\n:BERTH-A - [0:0]\n-A BERTH-A -j ACCEPT\nCOMMIT\n").ok());
  std::string before = rulesOnly(saveIn(ns_, "filter"));
  std::string bad =
      "*filter\n"
      ":BERTH-A - [0:0]\n"
      "-A BERTH-A -j BERTH-NOT-DECLARED\n"
      "COMMIT\n";
  Status s = restoreIn(ns_, bad);
  ASSERT_FALSE(s.ok());
  // legacy names line 3 (the rule), nft line 4 (the COMMIT, where the kernel refused).
  EXPECT_THAT(std::string(s.message()), HasSubstr(GetParam().backend == IptablesBackend::kLegacy ? "line 3 failed: "
                                                                                      : "line 4 failed: "));
  EXPECT_THAT(std::string(s.message()), HasSubstr("BERTH-NOT-DECLARED"));
  EXPECT_EQ(rulesOnly(saveIn(ns_, "filter")), before);
}

TEST_P(IptablesApplierPrivilegedTest, NoflushKeepsChainsTheInputDoesNotMention) {
  ASSERT_TRUE(restoreIn(ns_, "*filter\n:BERTH-A - [0:0]\n-A BERTH-A -j ACCEPT\nCOMMIT\n").ok());
  ASSERT_TRUE(restoreIn(ns_, "*filter\n:BERTH-B - [0:0]\n-A BERTH-B -j RETURN\nCOMMIT\n").ok());
  std::string filter = saveIn(ns_, "filter");
  EXPECT_THAT(filter, HasSubstr("-A BERTH-A -j ACCEPT"));
  EXPECT_THAT(filter, HasSubstr("-A BERTH-B -j RETURN"));
  // Declaring a chain flushes it; a declared (so empty) chain can be removed with -X in
  // the same transaction, kube-proxy's way of dropping stale chains.
  Status s = restoreIn(ns_, "*filter\n:BERTH-A - [0:0]\n:BERTH-B - [0:0]\n-A BERTH-A -j DROP\n-X BERTH-B\nCOMMIT\n");
  ASSERT_TRUE(s.ok()) << s;
  filter = saveIn(ns_, "filter");
  EXPECT_THAT(filter, HasSubstr("-A BERTH-A -j DROP"));
  EXPECT_THAT(filter, Not(HasSubstr("-A BERTH-A -j ACCEPT")));
  EXPECT_THAT(filter, Not(HasSubstr("BERTH-B")));
}

TEST_P(IptablesApplierPrivilegedTest, LargeInputGoesThroughThePipes) {
  // ~4000 rules (~400 KB): more than a pipe buffer in both directions.
  std::string input = "*filter\n:BERTH-BIG - [0:0]\n";
  for (int i = 0; i < 4000; ++i) {
    input += strCat("-A BERTH-BIG -d ",
                    v4or6(strCat("10.", (i / 250) % 250, ".", i % 250, ".1/32"),
                          strCat("fd00::", i / 250, ":", i % 250, "/128")),
                    " -p tcp -m tcp --dport ", 1000 + i, " -m comment --comment \"svc-", i,
                    " padding padding padding padding\" -j ACCEPT\n");
  }
  input += "COMMIT\n";
  Status s = restoreIn(ns_, input);
  ASSERT_TRUE(s.ok()) << s;
  std::string filter = saveIn(ns_, "filter");
  size_t rules = 0;
  for (size_t at = filter.find("-A BERTH-BIG "); at != std::string::npos;
       at = filter.find("-A BERTH-BIG ", at + 1)) {
    ++rules;
  }
  EXPECT_EQ(rules, 4000u);
}

// The child exits at the bad line 3 while we are still writing megabytes after it: the
// write fails with EPIPE (SIGPIPE is blocked meanwhile, or it would kill the test), and
// the error still names line 3.
TEST_P(IptablesApplierPrivilegedTest, ChildExitingEarlyDoesNotKillUs) {
  std::string input = "*filter\n:BERTH-EARLY - [0:0]\n-A BERTH-EARLY --no-such-option -j ACCEPT\n";
  while (input.size() < (4u << 20)) input += "-A BERTH-EARLY -m comment --comment \"filler filler filler\" -j ACCEPT\n";
  input += "COMMIT\n";
  Status s = restoreIn(ns_, input);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("line 3 failed: "));
  EXPECT_THAT(saveIn(ns_, "filter"), Not(HasSubstr("BERTH-EARLY")));
}

std::vector<Case> allCases() {
  std::vector<Case> out;
  for (IptablesBackend b : {IptablesBackend::kNft, IptablesBackend::kLegacy}) {
    for (IpFamily f : {IpFamily::kIPv4, IpFamily::kIPv6}) out.push_back({b, f});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Backends, IptablesApplierPrivilegedTest, ::testing::ValuesIn(allCases()), caseName);

TEST(IptablesDetectPrivilegedTest, DetectedBackendMatchesVersionAndRestores) {
  std::string why = whyNoPrivileges();
  if (!why.empty()) GTEST_SKIP() << why;
  auto detected = detectBackend(IpFamily::kIPv4);
  if (absl::IsNotFound(detected.status())) GTEST_SKIP() << detected.status();
  ASSERT_TRUE(detected.ok()) << detected.status();
  auto applier = IptablesApplier::create(IpFamily::kIPv4);
  ASSERT_TRUE(applier.ok()) << applier.status();
  EXPECT_EQ(applier->backend(), *detected);
  NetnsThread ns;
  ASSERT_TRUE(ns.status().ok());
  ns.run([&] {
    ASSERT_TRUE(applier->restore("*nat\n:BERTH-DETECT - [0:0]\nCOMMIT\n").ok());
    auto nat = applier->save("nat");
    ASSERT_TRUE(nat.ok());
    EXPECT_THAT(*nat, HasSubstr(":BERTH-DETECT - [0:0]"));
  });
}

}  // namespace
}  // namespace berth::proxy
