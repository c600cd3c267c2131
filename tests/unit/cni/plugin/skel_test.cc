#include "cni/plugin/skel.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <map>

#include "cni/plugin_exec.h"

namespace berth::cni::plugin {
namespace {

using ::testing::HasSubstr;

constexpr char kConfig[] = R"({"cniVersion": "1.0.0", "name": "pods", "type": "berth-bridge"})";

std::function<const char*(const char*)> envOf(std::map<std::string, std::string> vars) {
  auto shared = std::make_shared<std::map<std::string, std::string>>(std::move(vars));
  return [shared](const char* name) -> const char* {
    auto it = shared->find(name);
    return it == shared->end() ? nullptr : it->second.c_str();
  };
}

std::map<std::string, std::string> addEnv() {
  return {{"CNI_COMMAND", "ADD"},
          {"CNI_CONTAINERID", "abc123"},
          {"CNI_NETNS", "/run/netns/x"},
          {"CNI_IFNAME", "eth0"},
          {"CNI_PATH", "/opt/cni/bin:/usr/lib/cni"},
          {"CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=web"}};
}

TEST(Skel, ParsesAddRequest) {
  auto r = parseRequest(envOf(addEnv()), kConfig);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->command, "ADD");
  EXPECT_EQ(r->container_id, "abc123");
  EXPECT_EQ(r->cni_version, "1.0.0");
  EXPECT_EQ(r->bin_dirs, (std::vector<std::string>{"/opt/cni/bin", "/usr/lib/cni"}));
  EXPECT_EQ(r->cni_args.at("K8S_POD_NAME"), "web");
  EXPECT_EQ(r->config["name"], "pods");
}

TEST(Skel, MissingEnvironmentNamesEveryVariableWithCode4) {
  auto env = addEnv();
  env.erase("CNI_CONTAINERID");
  env.erase("CNI_NETNS");
  auto r = parseRequest(envOf(env), kConfig);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(errorCodeFor(r.status()), 4);
  EXPECT_THAT(r.status().message(), HasSubstr("CNI_CONTAINERID is missing"));
  EXPECT_THAT(r.status().message(), HasSubstr("CNI_NETNS is missing"));
}

TEST(Skel, DelDoesNotNeedNetns) {
  auto env = addEnv();
  env["CNI_COMMAND"] = "DEL";
  env.erase("CNI_NETNS");
  EXPECT_TRUE(parseRequest(envOf(env), kConfig).ok());
}

TEST(Skel, RejectsBadIdsAndIfnames) {
  auto env = addEnv();
  env["CNI_CONTAINERID"] = "-bad/id";
  env["CNI_IFNAME"] = "much-too-long-ifname";
  auto r = parseRequest(envOf(env), kConfig);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(errorCodeFor(r.status()), 4);
  EXPECT_THAT(r.status().message(), HasSubstr("CNI_CONTAINERID \"-bad/id\""));
  EXPECT_THAT(r.status().message(), HasSubstr("CNI_IFNAME \"much-too-long-ifname\""));
  EXPECT_FALSE(validateIfname("a/b").ok());
  EXPECT_FALSE(validateIfname("..").ok());
  EXPECT_TRUE(validateIfname("eth0").ok());
}

TEST(Skel, UnknownCommandIsCode4) {
  auto env = addEnv();
  env["CNI_COMMAND"] = "FROB";
  auto r = parseRequest(envOf(env), kConfig);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(errorCodeFor(r.status()), 4);
  EXPECT_THAT(r.status().message(), HasSubstr("FROB"));
}

TEST(Skel, MalformedJsonIsCode6) {
  auto r = parseRequest(envOf(addEnv()), "{not json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(errorCodeFor(r.status()), 6);
}

TEST(Skel, UnsupportedVersionIsCode1ListingSupported) {
  auto r = parseRequest(envOf(addEnv()), R"({"cniVersion": "9.9.9", "name": "pods"})");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(errorCodeFor(r.status()), 1);
  EXPECT_THAT(r.status().message(), HasSubstr("1.1.0"));
}

TEST(Skel, MissingNameOrVersionIsCode7) {
  auto r = parseRequest(envOf(addEnv()), R"({"cniVersion": "1.0.0"})");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(errorCodeFor(r.status()), 7);
  r = parseRequest(envOf(addEnv()), R"({"name": "x"})");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(errorCodeFor(r.status()), 7);
}

TEST(Skel, StatusAndGcNeed110CheckNeeds040) {
  auto env = addEnv();
  env["CNI_COMMAND"] = "STATUS";
  auto r = parseRequest(envOf(env), kConfig);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(errorCodeFor(r.status()), 1);
  env["CNI_COMMAND"] = "CHECK";
  EXPECT_FALSE(parseRequest(envOf(env), R"({"cniVersion": "0.3.1", "name": "pods"})").ok());
  EXPECT_TRUE(parseRequest(envOf(env), R"({"cniVersion": "0.4.0", "name": "pods"})").ok());
  env["CNI_COMMAND"] = "GC";
  EXPECT_TRUE(parseRequest(envOf(env), R"({"cniVersion": "1.1.0", "name": "pods"})").ok());
}

TEST(Skel, ErrorJsonHasSpecFields) {
  Status st = withCniErrorCode(absl::UnavailableError("pod CIDR not yet known"), 11);
  json::Json j = errorJson(st, "1.1.0");
  EXPECT_EQ(j["cniVersion"], "1.1.0");
  EXPECT_EQ(j["code"], 11);
  EXPECT_EQ(j["msg"], "Try again later");
  EXPECT_EQ(j["details"], "pod CIDR not yet known");
  EXPECT_EQ(errorCodeFor(absl::InvalidArgumentError("x")), 7);
  EXPECT_EQ(errorCodeFor(absl::InternalError("x")), 999);
}

TEST(Skel, ValidAttachments) {
  Request r;
  r.config = json::Json::parse(R"({"cni.dev/valid-attachments": [
      {"containerID": "a", "ifname": "eth0"}, {"containerID": "b", "ifname": "net1"}]})");
  auto v = validAttachments(r);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->size(), 2u);
  EXPECT_EQ(v->count({"b", "net1"}), 1u);
  r.config = json::Json::parse(R"({"cni.dev/valid-attachments": [{"containerID": 5}]})");
  EXPECT_FALSE(validAttachments(r).ok());
}

TEST(Skel, CniArgs) {
  auto a = parseCniArgs("IP=10.0.0.5;MAC=0a:58:00:00:00:01");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->at("IP"), "10.0.0.5");
  EXPECT_FALSE(parseCniArgs("justakey").ok());
}

// runPlugin end to end through a pipe and a temp file, as the runtime sees it.
std::string runWith(const std::map<std::string, std::string>& env, const std::string& in,
                    const Handlers& handlers, int& exit_code) {
  for (const char* v : {"CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS",
                        "CNI_PATH"}) {
    ::unsetenv(v);
  }
  for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
  FILE* inf = tmpfile();
  fwrite(in.data(), 1, in.size(), inf);
  rewind(inf);
  FILE* outf = tmpfile();
  exit_code = runPlugin(handlers, inf, outf);
  rewind(outf);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), outf)) > 0) out.append(buf, n);
  fclose(inf);
  fclose(outf);
  return out;
}

TEST(Skel, RunPluginVersion) {
  int code = -1;
  std::string out = runWith({{"CNI_COMMAND", "VERSION"}}, R"({"cniVersion": "1.0.0"})", {}, code);
  EXPECT_EQ(code, 0);
  json::Json j = json::Json::parse(out);
  EXPECT_EQ(j["cniVersion"], "1.0.0");
  EXPECT_EQ(j["supportedVersions"].size(), supportedVersions().size());
}

TEST(Skel, RunPluginWritesResultInRequestVersion) {
  Handlers h;
  h.add = [](const Request&) -> StatusOr<Result> {
    Result r;
    r.ips.push_back(IpConfig{"10.1.0.5/24", "10.1.0.1", std::nullopt});
    return r;
  };
  int code = -1;
  std::string out = runWith(addEnv(), R"({"cniVersion": "0.3.1", "name": "pods"})", h, code);
  EXPECT_EQ(code, 0) << out;
  json::Json j = json::Json::parse(out);
  EXPECT_EQ(j["cniVersion"], "0.3.1");
  EXPECT_EQ(j["ips"][0]["version"], "4");
  EXPECT_EQ(j["ips"][0]["address"], "10.1.0.5/24");
}

TEST(Skel, RunPluginWritesErrorObject) {
  Handlers h;
  h.del = [](const Request&) { return withCniErrorCode(absl::UnavailableError("busy"), 11); };
  auto env = addEnv();
  env["CNI_COMMAND"] = "DEL";
  int code = -1;
  std::string out = runWith(env, kConfig, h, code);
  EXPECT_EQ(code, 1);
  json::Json j = json::Json::parse(out);
  EXPECT_EQ(j["code"], 11);
  EXPECT_EQ(j["cniVersion"], "1.0.0");
  // A command the plugin has no handler for is code 4.
  env["CNI_COMMAND"] = "CHECK";
  out = runWith(env, kConfig, h, code);
  EXPECT_EQ(code, 1);
  EXPECT_EQ(json::Json::parse(out)["code"], 4);
}

}  // namespace
}  // namespace berth::cni::plugin
