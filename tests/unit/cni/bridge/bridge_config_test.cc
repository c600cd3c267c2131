#include "cni/bridge/bridge_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cni/plugin/skel.h"

namespace berth::cni::bridge {
namespace {

using ::testing::HasSubstr;

plugin::Request requestFor(const std::string& config, std::string args = "") {
  plugin::Request r;
  r.command = "ADD";
  r.container_id = "c1";
  r.ifname = "eth0";
  r.config = json::Json::parse(config);
  r.cni_version = r.config.value("cniVersion", "1.1.0");
  auto parsed = plugin::parseCniArgs(args);
  if (parsed.ok()) r.cni_args = *parsed;
  return r;
}

TEST(BridgeConfig, DefaultsAndReferenceKeys) {
  auto c = parseBridgeConfig(requestFor(R"({"cniVersion": "1.0.0", "name": "pods",
      "type": "berth-bridge", "isDefaultGateway": true, "ipMasq": true, "mtu": 1400,
      "hairpinMode": true, "ipam": {"type": "berth-ipam", "subnet": "10.244.0.0/24"}})"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->bridge, "berth0");
  EXPECT_TRUE(c->is_gateway);  // implied by isDefaultGateway
  EXPECT_TRUE(c->is_default_gateway);
  EXPECT_TRUE(c->ip_masq);
  EXPECT_TRUE(c->hairpin_mode);
  EXPECT_EQ(c->mtu, 1400);
  EXPECT_TRUE(c->builtinIpam());
  EXPECT_EQ(c->network, "pods");
}

TEST(BridgeConfig, DelegatedIpam) {
  auto c = parseBridgeConfig(requestFor(R"({"cniVersion": "1.0.0", "name": "pods",
      "bridge": "cni0", "ipam": {"type": "host-local", "subnet": "10.1.0.0/24"}})"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->bridge, "cni0");
  EXPECT_EQ(c->ipam_type, "host-local");
  EXPECT_FALSE(c->builtinIpam());
}

TEST(BridgeConfig, BadValuesNameTheKey) {
  struct Case {
    const char* config;
    const char* want;
  } cases[] = {
      {R"({"name": "n", "mtu": -5})", "\"mtu\": -5"},
      {R"({"name": "n", "vlan": 5000})", "\"vlan\": 5000"},
      {R"({"name": "n", "ipMasq": "yes"})", "\"ipMasq\""},
      {R"({"name": "n", "bridge": "this-name-is-too-long"})", "\"bridge\""},
      {R"({"name": "n", "ipam": {"type": "../evil"}})", "ipam.type"},
      {R"({"name": "n", "ipMasqBackend": "pf"})", "ipMasqBackend"},
      {R"({"name": "n", "runtimeConfig": {"portMappings": [{"hostPort": 0, "containerPort": 80}]}})",
       "portMappings[0].hostPort"},
      {R"({"name": "n", "runtimeConfig": {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "icmp"}]}})",
       "\"icmp\""},
      {R"({"name": "n", "runtimeConfig": {"mac": "zz:zz"}})", "zz:zz"},
      {R"({"name": "n", "runtimeConfig": {"ips": ["10.0.0.300"]}})", "10.0.0.300"},
  };
  for (const Case& c : cases) {
    auto r = parseBridgeConfig(requestFor(c.config));
    ASSERT_FALSE(r.ok()) << c.config;
    EXPECT_THAT(r.status().message(), HasSubstr(c.want)) << c.config;
    EXPECT_EQ(plugin::errorCodeFor(r.status()), 7) << c.config;
  }
}

TEST(BridgeConfig, CapabilitiesArgsAndCniArgs) {
  auto c = parseBridgeConfig(requestFor(R"({"name": "n", "runtimeConfig": {
      "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "TCP", "hostIP": "127.0.0.1"},
                       {"hostPort": 5353, "containerPort": 53, "protocol": "udp"}],
      "mac": "0a:58:0a:f4:00:05", "ips": ["10.244.0.9/24"]}})"));
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->port_mappings.size(), 2u);
  EXPECT_EQ(c->port_mappings[0].protocol, "tcp");
  EXPECT_EQ(c->port_mappings[0].host_ip, "127.0.0.1");
  EXPECT_EQ(c->port_mappings[1].container_port, 53);
  EXPECT_EQ(c->mac, "0a:58:0a:f4:00:05");
  EXPECT_EQ(c->requested_ips, (std::vector<std::string>{"10.244.0.9"}));

  auto a = parseBridgeConfig(requestFor(R"({"name": "n"})", "IgnoreUnknown=1;IP=10.1.0.7;MAC=0a:00:00:00:00:01"));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->requested_ips, (std::vector<std::string>{"10.1.0.7"}));
  EXPECT_EQ(a->mac, "0a:00:00:00:00:01");

  auto b = parseBridgeConfig(requestFor(R"({"name": "n", "args": {"cni": {"ips": ["fd00::5"]}}})",
                                        "IP=10.1.0.7"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->requested_ips, (std::vector<std::string>{"fd00::5"}));
}

TEST(BridgeConfig, PrevResultAndDns) {
  auto c = parseBridgeConfig(requestFor(R"({"cniVersion": "1.0.0", "name": "n",
      "dns": {"nameservers": ["10.96.0.10"], "search": ["svc.cluster.local"]},
      "prevResult": {"cniVersion": "1.0.0", "ips": [{"address": "10.1.0.5/24"}]}})"));
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->prev_result.has_value());
  EXPECT_EQ(c->prev_result->ips[0].address, "10.1.0.5/24");
  EXPECT_EQ(c->dns.nameservers, (std::vector<std::string>{"10.96.0.10"}));
}

TEST(BridgeConfig, HostVethNameIsStableShortAndDistinct) {
  std::string a = hostVethName("abc", "eth0");
  EXPECT_EQ(a, hostVethName("abc", "eth0"));
  EXPECT_EQ(a.size(), 13u);
  EXPECT_EQ(a.rfind("bv", 0), 0u);
  EXPECT_NE(a, hostVethName("abc", "eth1"));
  EXPECT_NE(a, hostVethName("abd", "eth0"));
}

}  // namespace
}  // namespace berth::cni::bridge
