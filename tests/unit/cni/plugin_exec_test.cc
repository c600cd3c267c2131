#include "cni/plugin_exec.h"

#include <stdlib.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/cni/cni_test_util.h"

namespace berth::cni {
namespace {

using json::Json;
using ::testing::HasSubstr;
using testing::FakeBehavior;
using testing::TempDir;

NetworkConfList twoPluginList() {
  auto list = parseConfList(R"({"cniVersion":"1.0.0","name":"podnet","plugins":[
      {"type":"bridge","name":"ignored","cniVersion":"0.1.0","runtimeConfig":{"stale":1}},
      {"type":"portmap","capabilities":{"portMappings":true,"bandwidth":false}}]})",
                            "t", true);
  EXPECT_TRUE(list.ok()) << list.status();
  return *list;
}

TEST(PluginExec, StdinConfigInjectsNameVersionAndDeclaredCapabilities) {
  NetworkConfList list = twoPluginList();
  CapabilityArgs caps = {{"portMappings", Json::array({{{"hostPort", 8080}}})},
                         {"bandwidth", {{"ingressRate", 1000}}}};
  Json prev = {{"cniVersion", "1.0.0"}, {"ips", Json::array()}};
  Json first = pluginStdinConfig(list, list.plugins[0], caps, Json());
  EXPECT_EQ(first["name"], "podnet");
  EXPECT_EQ(first["cniVersion"], "1.0.0");
  EXPECT_FALSE(first.contains("runtimeConfig"));  // declares nothing; stale one dropped
  EXPECT_FALSE(first.contains("prevResult"));
  Json second = pluginStdinConfig(list, list.plugins[1], caps, prev);
  ASSERT_TRUE(second.contains("runtimeConfig"));
  EXPECT_EQ(second["runtimeConfig"]["portMappings"][0]["hostPort"], 8080);
  EXPECT_FALSE(second["runtimeConfig"].contains("bandwidth"));  // declared false
  EXPECT_EQ(second["prevResult"], prev);
  EXPECT_EQ(second["capabilities"]["portMappings"], true);
}

TEST(PluginExec, FindPluginSearchesDirsInOrder) {
  TempDir dir;
  testing::writeFile(dir.sub("a/p"), "#!/bin/sh\n", 0644);  // not executable: skipped
  testing::writeFile(dir.sub("b/p"), "#!/bin/sh\n", 0755);
  testing::writeFile(dir.sub("c/p"), "#!/bin/sh\n", 0755);
  auto path = findPlugin("p", {dir.sub("a"), dir.sub("b"), dir.sub("c")});
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(*path, dir.sub("b/p"));
  auto missing = findPlugin("bridge", {dir.sub("a"), dir.sub("b")});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(),
              HasSubstr("CNI plugin \"bridge\" not found in " + dir.sub("a") + ":" + dir.sub("b")));
  EXPECT_THAT(missing.status().message(), HasSubstr("--cni-bin-dir"));
}

TEST(PluginExec, PassesEnvironmentAndStdin) {
  TempDir dir;
  testing::writeFakePlugin(dir.sub("bin"), "fake", dir.sub("rec"),
                           {.add = testing::printJson({{"cniVersion", "1.0.0"}})});
  ::setenv("CNI_IFNAME", "leaked-from-parent", 1);
  PluginEnv env{"ADD", "ctr1", "/run/netns/x", "eth0", "IgnoreUnknown=1;A=b",
                {dir.sub("bin"), "/opt/other"}};
  auto out = execPlugin(dir.sub("bin/fake"), "fake", env, R"({"hello":"world"})",
                        std::chrono::seconds(10));
  ::unsetenv("CNI_IFNAME");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->result["cniVersion"], "1.0.0");
  auto calls = testing::recordedCalls(dir.sub("rec"));
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].env["CNI_COMMAND"], "ADD");
  EXPECT_EQ(calls[0].env["CNI_CONTAINERID"], "ctr1");
  EXPECT_EQ(calls[0].env["CNI_NETNS"], "/run/netns/x");
  EXPECT_EQ(calls[0].env["CNI_IFNAME"], "eth0");
  EXPECT_EQ(calls[0].env["CNI_ARGS"], "IgnoreUnknown=1;A=b");
  EXPECT_EQ(calls[0].env["CNI_PATH"], dir.sub("bin") + ":/opt/other");
  EXPECT_EQ(calls[0].stdin_conf["hello"], "world");

  // Empty fields are left out of the environment (DEL without a netns).
  PluginEnv del{"DEL", "ctr1", "", "eth0", "", {dir.sub("bin")}};
  auto out2 = execPlugin(dir.sub("bin/fake"), "fake", del, "{}", std::chrono::seconds(10));
  ASSERT_TRUE(out2.ok()) << out2.status();
  EXPECT_TRUE(out2->result.is_null());
  calls = testing::recordedCalls(dir.sub("rec"));
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[1].env.count("CNI_NETNS"), 0u);
  EXPECT_EQ(calls[1].env.count("CNI_ARGS"), 0u);
}

TEST(PluginExec, ErrorObjectBecomesStatusWithCode) {
  TempDir dir;
  testing::writeFakePlugin(dir.sub("bin"), "bridge", dir.sub("rec"),
                           {.add = testing::failWith(7, "bad bridge name", "too long")});
  PluginEnv env{"ADD", "c", "/x", "eth0", "", {dir.sub("bin")}};
  auto out = execPlugin(dir.sub("bin/bridge"), "bridge", env, "{}", std::chrono::seconds(10));
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(out.status().message(),
            "CNI plugin \"bridge\" ADD failed (code 7): bad bridge name: too long");
  EXPECT_EQ(cniErrorCode(out.status()), 7);
}

TEST(PluginExec, ErrorCodeMapping) {
  struct Case {
    int code;
    absl::StatusCode want;
  } cases[] = {{1, absl::StatusCode::kFailedPrecondition}, {2, absl::StatusCode::kInvalidArgument},
               {3, absl::StatusCode::kNotFound},           {4, absl::StatusCode::kInvalidArgument},
               {5, absl::StatusCode::kInternal},           {6, absl::StatusCode::kInvalidArgument},
               {7, absl::StatusCode::kInvalidArgument},    {11, absl::StatusCode::kUnavailable},
               {50, absl::StatusCode::kUnavailable},       {51, absl::StatusCode::kUnavailable},
               {100, absl::StatusCode::kUnknown}};
  for (const Case& c : cases) {
    Status s = pluginError("p", "DEL", c.code, "m", "");
    EXPECT_EQ(s.code(), c.want) << c.code;
    EXPECT_EQ(cniErrorCode(s), c.code);
  }
  EXPECT_EQ(cniErrorCode(Status()), 0);
  EXPECT_EQ(cniErrorCode(absl::InternalError("x")), 0);
}

TEST(PluginExec, CrashWithoutErrorObjectReportsExitAndStderr) {
  TempDir dir;
  testing::writeFakePlugin(dir.sub("bin"), "crashy", dir.sub("rec"),
                           {.add = "echo 'panic: nil map' >&2; exit 2"});
  PluginEnv env{"ADD", "c", "/x", "eth0", "", {dir.sub("bin")}};
  auto out = execPlugin(dir.sub("bin/crashy"), "crashy", env, "{}", std::chrono::seconds(10));
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kUnknown);
  EXPECT_THAT(out.status().message(), HasSubstr("CNI plugin \"crashy\" ADD failed with exit status 2"));
  EXPECT_THAT(out.status().message(), HasSubstr("stderr: panic: nil map"));
}

TEST(PluginExec, BadJsonOnSuccessIsAnError) {
  TempDir dir;
  testing::writeFakePlugin(dir.sub("bin"), "p", dir.sub("rec"), {.add = "echo 'not json'"});
  PluginEnv env{"ADD", "c", "/x", "eth0", "", {dir.sub("bin")}};
  auto out = execPlugin(dir.sub("bin/p"), "p", env, "{}", std::chrono::seconds(10));
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.status().message(), HasSubstr("output of CNI plugin \"p\" ADD"));
}

TEST(PluginExec, TimeoutKillsThePlugin) {
  TempDir dir;
  testing::writeFakePlugin(dir.sub("bin"), "slow", dir.sub("rec"), {.add = "exec sleep 30"});
  PluginEnv env{"ADD", "c", "/x", "eth0", "", {dir.sub("bin")}};
  auto start = std::chrono::steady_clock::now();
  auto out = execPlugin(dir.sub("bin/slow"), "slow", env, "{}", std::chrono::milliseconds(300));
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(out.status().message(), HasSubstr("no answer within 300 ms"));
  EXPECT_LT(took, std::chrono::seconds(5));
}

TEST(PluginExec, PluginIgnoringLargeStdinDoesNotHang) {
  TempDir dir;
  testing::writeFile(dir.sub("bin/deaf"),
                     "#!/bin/sh\necho '{\"cniVersion\":\"1.0.0\"}'\nexit 0\n", 0755);
  PluginEnv env{"ADD", "c", "/x", "eth0", "", {dir.sub("bin")}};
  std::string big(4 << 20, ' ');
  auto out = execPlugin(dir.sub("bin/deaf"), "deaf", env, big, std::chrono::seconds(10));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->result["cniVersion"], "1.0.0");
}

TEST(PluginExec, MissingBinaryIsSpawnError) {
  PluginEnv env{"ADD", "c", "/x", "eth0", "", {"/nonexistent"}};
  auto out = execPlugin("/nonexistent/p", "p", env, "{}", std::chrono::seconds(1));
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.status().message(), HasSubstr("spawn /nonexistent/p"));
}

}  // namespace
}  // namespace berth::cni
