#include "cni/result.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace berth::cni {
namespace {

using json::Json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

Json v1Result() {
  return Json::parse(R"({
    "cniVersion": "1.0.0",
    "interfaces": [
      {"name": "cni0", "mac": "aa:bb:cc:00:00:01"},
      {"name": "veth1", "mac": "aa:bb:cc:00:00:02"},
      {"name": "eth0", "mac": "aa:bb:cc:00:00:03", "sandbox": "/run/netns/p", "mtu": 1500}
    ],
    "ips": [
      {"address": "fd00::5/64", "gateway": "fd00::1", "interface": 2},
      {"address": "10.1.0.5/24", "gateway": "10.1.0.1", "interface": 2},
      {"address": "10.9.9.9/32", "interface": 0}
    ],
    "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}, {"dst": "::/0"}],
    "dns": {"nameservers": ["10.96.0.10"], "search": ["svc.cluster.local"], "options": ["ndots:5"]},
    "x-extra": 42
  })");
}

TEST(Result, ParsesV1) {
  auto r = parseResult(v1Result(), "r");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->cni_version, "1.0.0");
  ASSERT_EQ(r->interfaces.size(), 3u);
  EXPECT_EQ(r->interfaces[2].sandbox, "/run/netns/p");
  EXPECT_EQ(r->interfaces[2].mtu, 1500);
  ASSERT_EQ(r->ips.size(), 3u);
  EXPECT_EQ(r->ips[1].address, "10.1.0.5/24");
  EXPECT_EQ(r->ips[1].ip(), "10.1.0.5");
  EXPECT_EQ(r->ips[1].interface, 2);
  EXPECT_EQ(r->routes.size(), 2u);
  EXPECT_THAT(r->dns.nameservers, ElementsAre("10.96.0.10"));
  // Pod IPs: only the sandbox's eth0, IPv4 first.
  EXPECT_THAT(r->sandboxIps("eth0"), ElementsAre("10.1.0.5", "fd00::5"));
  EXPECT_TRUE(r->sandboxIps("eth1").empty());
}

TEST(Result, SameVersionKeepsUnknownFields) {
  auto r = parseResult(v1Result(), "r");
  ASSERT_TRUE(r.ok());
  auto out = resultToJson(*r, "1.0.0");
  ASSERT_TRUE(out.ok());
  EXPECT_EQ((*out)["x-extra"], 42);
}

TEST(Result, ConvertsV1To040AndBack) {
  auto r = parseResult(v1Result(), "r");
  ASSERT_TRUE(r.ok());
  auto old = resultToJson(*r, "0.4.0");
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ((*old)["cniVersion"], "0.4.0");
  EXPECT_EQ((*old)["ips"][0]["version"], "6");
  EXPECT_EQ((*old)["ips"][1]["version"], "4");
  EXPECT_EQ((*old)["ips"][1]["interface"], 2);
  EXPECT_FALSE(old->contains("x-extra"));
  auto back = parseResult(*old, "old");
  ASSERT_TRUE(back.ok()) << back.status();
  auto v1 = resultToJson(*back, "1.1.0");
  ASSERT_TRUE(v1.ok());
  EXPECT_FALSE((*v1)["ips"][0].contains("version"));
  EXPECT_EQ((*v1)["ips"][1]["address"], "10.1.0.5/24");
  EXPECT_EQ((*v1)["interfaces"][2]["sandbox"], "/run/netns/p");
  EXPECT_EQ((*v1)["dns"]["options"][0], "ndots:5");
}

TEST(Result, Converts020BothWays) {
  Json v02 = Json::parse(R"({"cniVersion":"0.2.0",
    "ip4":{"ip":"10.2.0.7/16","gateway":"10.2.0.1","routes":[{"dst":"0.0.0.0/0"}]},
    "dns":{"nameservers":["1.1.1.1"]}})");
  auto r = parseResult(v02, "old plugin");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->ips.size(), 1u);
  EXPECT_FALSE(r->ips[0].interface.has_value());
  EXPECT_THAT(r->sandboxIps("eth0"), ElementsAre("10.2.0.7"));
  auto v1 = resultToJson(*r, "1.0.0");
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ((*v1)["ips"][0]["address"], "10.2.0.7/16");
  EXPECT_EQ((*v1)["routes"][0]["dst"], "0.0.0.0/0");
  auto parsed = parseResult(v1Result(), "r");
  auto down = resultToJson(*parsed, "0.2.0");
  ASSERT_TRUE(down.ok());
  EXPECT_EQ((*down)["ip4"]["ip"], "10.1.0.5/24");
  EXPECT_EQ((*down)["ip6"]["ip"], "fd00::5/64");
  EXPECT_EQ((*down)["ip4"]["routes"][0]["gw"], "10.1.0.1");
  EXPECT_FALSE(down->contains("interfaces"));
}

TEST(Result, RejectsBadDocuments) {
  struct Case {
    const char* doc;
    const char* want;
  } cases[] = {
      {R"({"ips":[]})", "\"cniVersion\" is missing"},
      {R"({"cniVersion":"7.0.0"})", "unsupported result cniVersion \"7.0.0\""},
      {R"({"cniVersion":"1.0.0","ips":[{"address":"10.0.0.1"}]})", "\"ips[0].address\""},
      {R"({"cniVersion":"1.0.0","ips":[{"address":"10.0.0.1/24","interface":3}]})",
       "\"ips[0].interface\" index 3 is out of range"},
      {R"({"cniVersion":"0.4.0","ips":[{"version":"6","address":"10.0.0.1/24"}]})",
       "\"ips[0].version\" is \"6\" but the address is IPv4"},
      {R"({"cniVersion":"1.0.0","routes":[{"dst":"nowhere"}]})", "\"routes[0].dst\" must be a CIDR"},
      {R"({"cniVersion":"1.0.0","interfaces":[{"mac":"x"}]})", "\"interfaces[0].name\" is required"},
      {R"({"cniVersion":"1.0.0","dns":{"nameservers":"1.1.1.1"}})",
       "\"dns.nameservers\" must be an array of strings"},
  };
  for (const Case& c : cases) {
    auto r = parseResult(Json::parse(c.doc), "result of CNI plugin \"p\"");
    ASSERT_FALSE(r.ok()) << c.doc;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr("result of CNI plugin \"p\"")) << c.doc;
    EXPECT_THAT(r.status().message(), HasSubstr(c.want)) << c.doc;
  }
  auto r = parseResult(v1Result(), "r");
  EXPECT_FALSE(resultToJson(*r, "0.9.0").ok());
}

TEST(Result, CompareVersions) {
  EXPECT_LT(compareVersions("0.4.0", "1.0.0"), 0);
  EXPECT_EQ(compareVersions("1.1.0", "1.1.0"), 0);
  EXPECT_GT(compareVersions("1.10.0", "1.9.0"), 0);
  EXPECT_GT(compareVersions("0.3.1", "0.3.0"), 0);
}

}  // namespace
}  // namespace berth::cni
