#include "daemon/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include "common/fs.h"

namespace berth::daemon {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-config-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { (void)fs::removeAll(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    EXPECT_TRUE(fs::writeFileAtomic(path, text).ok());
    return path;
  }

  std::string dir_;
};

TEST_F(ConfigTest, DefaultsFinalizeListenUnderState) {
  Config c;
  ASSERT_TRUE(finalize(c).ok());
  EXPECT_EQ(c.root, "/var/lib/berth");
  EXPECT_EQ(c.listen, "/run/berth/berth.sock");
  EXPECT_THAT(c.cni_bin_dirs, ElementsAre("/opt/cni/bin"));
  EXPECT_EQ(c.cgroup_driver, CgroupDriver::kCgroupfs);
}

TEST_F(ConfigTest, TomlKeysApplyWithDashesOrUnderscores) {
  std::string path = write("berth.toml",
                           "root = \"/srv/berth\"\n"
                           "state = \"/run/berth-2\"\n"
                           "cni_bin_dir = [\"/opt/cni/bin\", \"/usr/lib/cni\"]\n"
                           "cgroup-driver = \"systemd\"\n"
                           "log_level = \"debug\"\n");
  Config c;
  ASSERT_TRUE(applyConfigFile(path, {}, c).ok());
  ASSERT_TRUE(finalize(c).ok());
  EXPECT_EQ(c.root, "/srv/berth");
  EXPECT_EQ(c.listen, "/run/berth-2/berth.sock");
  EXPECT_THAT(c.cni_bin_dirs, ElementsAre("/opt/cni/bin", "/usr/lib/cni"));
  EXPECT_EQ(c.cgroup_driver, CgroupDriver::kSystemd);
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.config_file, path);
}

TEST_F(ConfigTest, YamlWorksAndFlagsWin) {
  std::string path = write("berth.yaml",
                           "root: /srv/berth\n"
                           "listen: /tmp/x.sock\n"
                           "cni-bin-dir: /usr/lib/cni\n");
  Config c;
  c.root = "/from/flag";
  ASSERT_TRUE(applyConfigFile(path, {"root"}, c).ok());
  EXPECT_EQ(c.root, "/from/flag");
  EXPECT_EQ(c.listen, "/tmp/x.sock");
  EXPECT_THAT(c.cni_bin_dirs, ElementsAre("/usr/lib/cni"));
}

TEST_F(ConfigTest, PodNetworkKeys) {
  std::string path = write("berth.toml",
                           "pod_cidr = [\"10.244.0.0/24\", \"fd00:10:244::/64\"]\n"
                           "node-route = [\"10.244.1.0/24 via 192.168.0.2\"]\n");
  Config c;
  c.state = "/run/berth-n0";
  ASSERT_TRUE(applyConfigFile(path, {}, c).ok());
  ASSERT_TRUE(finalize(c).ok());
  EXPECT_THAT(c.pod_cidrs, ElementsAre("10.244.0.0/24", "fd00:10:244::/64"));
  EXPECT_THAT(c.node_routes, ElementsAre("10.244.1.0/24 via 192.168.0.2"));
  EXPECT_EQ(c.pod_cidr_file, "/run/berth-n0/pod-cidr");
}

TEST_F(ConfigTest, UnknownKeyIsNamedWithTheAcceptedOnes) {
  std::string path = write("berth.toml", "roots = \"/x\"\n");
  Config c;
  Status st = applyConfigFile(path, {}, c);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("unknown key \"roots\""));
  EXPECT_THAT(std::string(st.message()), HasSubstr("cni-conf-dir"));
}

TEST_F(ConfigTest, SyntaxErrorsCarryTheLine) {
  std::string toml = write("bad.toml", "root = \"/x\"\nstate = \n");
  Config c;
  Status st = applyConfigFile(toml, {}, c);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("bad.toml:2"));
  std::string yaml = write("bad.yaml", "root: /x\n  state: [\n");
  st = applyConfigFile(yaml, {}, c);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("bad.yaml:"));
}

TEST_F(ConfigTest, BadValuesAreRefused) {
  Config c;
  EXPECT_EQ(applyConfigFile(write("a.toml", "cgroup-driver = \"cgroupv1\"\n"), {}, c).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(applyConfigFile(write("b.toml", "root = [\"/a\"]\n"), {}, c).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(applyConfigFile(write("c.toml", "root = 3\n"), {}, c).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(applyConfigFile(write("d.json", "{}"), {}, c).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(applyConfigFile(dir_ + "/missing.toml", {}, c).code(), absl::StatusCode::kNotFound);

  Config relative;
  relative.root = "var/lib/berth";
  Status st = finalize(relative);
  EXPECT_THAT(std::string(st.message()), HasSubstr("root \"var/lib/berth\" must be an absolute"));
  Config level;
  level.log_level = "loud";
  EXPECT_EQ(finalize(level).code(), absl::StatusCode::kInvalidArgument);
  Config same;
  same.state = same.root;
  EXPECT_EQ(finalize(same).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ConfigTest, ProxyKeysFromYamlAndDefaults) {
  Config d;
  ASSERT_TRUE(finalize(d).ok());
  EXPECT_EQ(d.proxy_mode, ProxyMode::kNftables);
  EXPECT_TRUE(runs(d, "proxy"));
  EXPECT_FALSE(d.node_name.empty()) << "node-name defaults to the hostname";
  EXPECT_EQ(d.proxy_healthz_address, "0.0.0.0:10256");
  EXPECT_EQ(d.proxy_sync_period_s, 30);

  std::string path = write("c.yaml",
                           "components: [cri, proxy]\n"
                           "proxy-mode: iptables\n"
                           "proxy_manifests: /etc/berth/services\n"
                           "cluster-cidr: [10.244.0.0/16, fd00:10:244::/56]\n"
                           "node-name: worker-1\n"
                           "node-ip: [192.168.0.10]\n"
                           "nodeport-addresses: [192.168.0.0/24]\n"
                           "proxy-sync-period: 15s\n");
  Config c;
  ASSERT_TRUE(applyConfigFile(path, {}, c).ok());
  ASSERT_TRUE(finalize(c).ok());
  EXPECT_THAT(c.components, ElementsAre("cri", "proxy"));
  EXPECT_FALSE(runs(c, "csi"));
  EXPECT_EQ(c.proxy_mode, ProxyMode::kIptables);
  EXPECT_EQ(c.proxy_manifests, "/etc/berth/services");
  EXPECT_THAT(c.cluster_cidrs, ElementsAre("10.244.0.0/16", "fd00:10:244::/56"));
  EXPECT_EQ(c.node_name, "worker-1");
  EXPECT_THAT(c.node_ips, ElementsAre("192.168.0.10"));
  EXPECT_EQ(c.proxy_sync_period_s, 15);
}

TEST_F(ConfigTest, BadProxyValuesAreNamed) {
  auto bad = [&](const std::string& text) {
    std::string path = write("bad.yaml", text);
    Config c;
    Status st = applyConfigFile(path, {}, c);
    if (st.ok()) st = finalize(c);
    return st;
  };
  EXPECT_THAT(std::string(bad("proxy-mode: ipvs\n").message()), HasSubstr("nftables, iptables or off"));
  EXPECT_THAT(std::string(bad("components: [cri, dns]\n").message()), HasSubstr("\"dns\" is unknown"));
  EXPECT_THAT(std::string(bad("cluster-cidr: [10.244.0.0]\n").message()),
              HasSubstr("cluster-cidr \"10.244.0.0\" is not a CIDR"));
  EXPECT_THAT(std::string(bad("node-ip: [10.0.0.300]\n").message()), HasSubstr("not an IP address"));
  EXPECT_THAT(std::string(bad("nodeport-addresses: [x/24]\n").message()), HasSubstr("nodeport-addresses"));
  EXPECT_THAT(std::string(bad("proxy-sync-period: -1\n").message()), HasSubstr("positive number"));
  EXPECT_THAT(std::string(bad("kubeconfig: admin.conf\n").message()), HasSubstr("absolute path"));
}

TEST_F(ConfigTest, CsiKeysDefaultsAndToml) {
  Config d;
  d.root = "/srv/berth";
  ASSERT_TRUE(finalize(d).ok());
  EXPECT_TRUE(runs(d, "csi"));
  EXPECT_EQ(d.kubelet_root_dir, "/var/lib/kubelet");
  EXPECT_EQ(d.csi_base_dir, "/srv/berth/volumes") << "csi-base-dir follows root";
  EXPECT_EQ(d.csi_endpoint, "");

  std::string path = write("c.toml",
                           "kubelet_root_dir = \"/data/kubelet\"\n"
                           "csi-base-dir = \"/data/volumes\"\n"
                           "csi-endpoint = \"unix:///run/berth/csi.sock\"\n");
  Config c;
  ASSERT_TRUE(applyConfigFile(path, {"csi-base-dir"}, c).ok());
  ASSERT_TRUE(finalize(c).ok());
  EXPECT_EQ(c.kubelet_root_dir, "/data/kubelet");
  EXPECT_EQ(c.csi_base_dir, "/var/lib/berth/volumes") << "a flag beats the file";
  EXPECT_EQ(c.csi_endpoint, "/run/berth/csi.sock") << "unix:// stripped";

  Config rel;
  rel.csi_endpoint = "csi.sock";
  Status st = finalize(rel);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("csi-endpoint \"csi.sock\""));
  Config rel_base;
  rel_base.kubelet_root_dir = "kubelet";
  EXPECT_THAT(std::string(finalize(rel_base).message()), HasSubstr("kubelet-root-dir"));
}

}  // namespace
}  // namespace berth::daemon
