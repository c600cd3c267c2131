// Unit tests for cri/pod_files.h: the pod's hostname, /etc/hosts and /etc/resolv.conf.
#include "cri/pod_files.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "common/fs.h"

namespace berth::cri {
namespace {

namespace v1 = ::runtime::v1;
using ::testing::HasSubstr;

class PodFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-pod-files-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    options_.host_hosts = dir_ + "/host-hosts";
    options_.host_resolv_conf = dir_ + "/host-resolv.conf";
    options_.node_hostname = "node-1";
    ASSERT_TRUE(fs::writeFileAtomic(options_.host_hosts, "127.0.0.1 localhost\n10.0.0.5 node-1\n")
                    .ok());
    ASSERT_TRUE(
        fs::writeFileAtomic(options_.host_resolv_conf, "nameserver 192.0.2.53\nsearch lan\n")
            .ok());
    config_.mutable_metadata()->set_name("web-0");
    config_.mutable_metadata()->set_namespace_("shop");
    config_.set_hostname("web-0");  // kubelet sets the pod's hostname
  }
  void TearDown() override { (void)fs::removeAll(dir_); }

  // The DNS config kubelet sends for a ClusterFirst pod in namespace "shop".
  void clusterDns() {
    auto* dns = config_.mutable_dns_config();
    dns->add_servers("10.96.0.10");
    dns->add_searches("shop.svc.cluster.local");
    dns->add_searches("svc.cluster.local");
    dns->add_searches("cluster.local");
    dns->add_options("ndots:5");
  }

  void hostNetwork() {
    config_.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(
        v1::NODE);
  }

  std::string dir_;
  SandboxFilesOptions options_;
  v1::PodSandboxConfig config_;
};

TEST_F(PodFilesTest, ResolvConfFromClusterDnsExactly) {
  clusterDns();
  auto files = buildSandboxFiles(config_, options_);
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(files->resolv_conf,
            "search shop.svc.cluster.local svc.cluster.local cluster.local\n"
            "nameserver 10.96.0.10\n"
            "options ndots:5\n");
}

TEST_F(PodFilesTest, ResolvConfCases) {
  struct Case {
    const char* name;
    std::vector<std::string> servers, searches, options;
    std::string want;
  };
  const std::vector<Case> cases = {
      {"two servers", {"10.96.0.10", "fd00::a"}, {}, {}, "nameserver 10.96.0.10\nnameserver fd00::a\n"},
      {"options only", {}, {}, {"ndots:2", "edns0"}, "options ndots:2 edns0\n"},
      {"search only", {}, {"a.example"}, {}, "search a.example\n"},
      {"empty", {}, {}, {}, ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::DNSConfig dns;
    for (const auto& s : c.servers) dns.add_servers(s);
    for (const auto& s : c.searches) dns.add_searches(s);
    for (const auto& s : c.options) dns.add_options(s);
    auto text = resolvConfFromDns(dns);
    ASSERT_TRUE(text.ok()) << text.status();
    EXPECT_EQ(*text, c.want);
  }

  v1::DNSConfig bad;
  bad.add_searches("ok.example");
  bad.add_searches("a b");
  auto r = resolvConfFromDns(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("PodSandboxConfig.dns_config.searches[1]: \"a b\" contains whitespace"));
  v1::DNSConfig injected;
  injected.add_servers("10.0.0.1\nnameserver 6.6.6.6");
  EXPECT_THAT(std::string(resolvConfFromDns(injected).status().message()),
              HasSubstr("dns_config.servers[0]"));
  v1::DNSConfig empty_entry;
  empty_entry.add_options("");
  EXPECT_THAT(std::string(resolvConfFromDns(empty_entry).status().message()),
              HasSubstr("dns_config.options[0]: empty"));
}

TEST_F(PodFilesTest, NoDnsConfigCopiesTheNodesResolvConf) {
  auto files = buildSandboxFiles(config_, options_);
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(files->resolv_conf, "nameserver 192.0.2.53\nsearch lan\n");
  hostNetwork();
  files = buildSandboxFiles(config_, options_);
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(files->resolv_conf, "nameserver 192.0.2.53\nsearch lan\n");
  // ClusterFirstWithHostNet: the DNS config wins for host-network pods too.
  clusterDns();
  files = buildSandboxFiles(config_, options_);
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_THAT(files->resolv_conf, HasSubstr("nameserver 10.96.0.10\n"));
}

TEST_F(PodFilesTest, Hostname) {
  config_.clear_hostname();
  auto files = buildSandboxFiles(config_, options_);
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(files->hostname, "node-1");  // none given: the node's, as containerd does

  config_.set_hostname("web-0.web.shop");
  files = buildSandboxFiles(config_, options_);
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(files->hostname, "web-0.web.shop");

  config_.clear_hostname();
  hostNetwork();
  files = buildSandboxFiles(config_, options_);
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(files->hostname, "node-1");

  config_.set_hostname("bad host");
  auto r = buildSandboxFiles(config_, options_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("PodSandboxConfig.hostname"));
  config_.set_hostname(std::string(65, 'a'));
  EXPECT_FALSE(buildSandboxFiles(config_, options_).ok());
}

TEST_F(PodFilesTest, Hosts) {
  options_.pod_ips = {"10.244.1.7", "fd00:10:244::7"};
  config_.set_hostname("web-0");
  auto files = buildSandboxFiles(config_, options_);
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(files->hosts,
            "# berth-managed hosts file.\n"
            "127.0.0.1\tlocalhost\n"
            "::1\tlocalhost ip6-localhost ip6-loopback\n"
            "fe00::0\tip6-localnet\n"
            "fe00::0\tip6-mcastprefix\n"
            "fe00::1\tip6-allnodes\n"
            "fe00::2\tip6-allrouters\n"
            "10.244.1.7\tweb-0\n"
            "fd00:10:244::7\tweb-0\n");

  options_.pod_ips.clear();
  files = buildSandboxFiles(config_, options_);
  ASSERT_TRUE(files.ok());
  EXPECT_THAT(files->hosts, HasSubstr("127.0.0.1\tlocalhost\n"));
  EXPECT_THAT(files->hosts, ::testing::Not(HasSubstr("web-0")));

  hostNetwork();
  files = buildSandboxFiles(config_, options_);
  ASSERT_TRUE(files.ok());
  EXPECT_EQ(files->hosts, "127.0.0.1 localhost\n10.0.0.5 node-1\n");

  options_.host_hosts = dir_ + "/missing";
  EXPECT_EQ(buildSandboxFiles(config_, options_).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(PodFilesTest, WriteSandboxFiles) {
  clusterDns();
  options_.pod_ips = {"10.244.1.7"};
  auto files = buildSandboxFiles(config_, options_);
  ASSERT_TRUE(files.ok()) << files.status();
  auto paths = writeSandboxFiles(*files, dir_ + "/pods/p1");
  ASSERT_TRUE(paths.ok()) << paths.status();
  EXPECT_EQ(paths->hostname, dir_ + "/pods/p1/hostname");
  EXPECT_EQ(*fs::readFile(paths->hostname), "web-0\n");
  EXPECT_EQ(*fs::readFile(paths->hosts), files->hosts);
  EXPECT_EQ(*fs::readFile(paths->resolv_conf), files->resolv_conf);
  struct stat st {};
  ASSERT_EQ(::stat(paths->resolv_conf.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
}

}  // namespace
}  // namespace berth::cri
