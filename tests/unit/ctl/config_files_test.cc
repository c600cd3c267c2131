// crictl's pod and container config files, JSON and YAML, accepted unchanged.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "common/fs.h"
#include "ctl/config_files.h"

namespace berth::ctl {
namespace {

namespace v1 = runtime::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// cri-tools docs/crictl.md's sample files, verbatim in shape.
constexpr char kPodConfigJson[] = R"({
    "metadata": {
        "name": "nginx-sandbox",
        "namespace": "default",
        "attempt": 1,
        "uid": "hdishd83djaidwnduwk28bcsb"
    },
    "log_directory": "/tmp",
    "linux": {
    }
})";

constexpr char kContainerConfigJson[] = R"({
  "metadata": {
      "name": "busybox"
  },
  "image":{
      "image": "busybox"
  },
  "command": [
      "top"
  ],
  "log_path":"busybox.0.log",
  "linux": {
  }
})";

// A fuller pod, as critest and kubelet-like tools write them.
constexpr char kFullPodYaml[] = R"(metadata:
  name: web
  namespace: default
  uid: "1234"
  attempt: 0
hostname: web-host
log_directory: /var/log/pods/web
dns_config:
  servers: [10.96.0.10]
  searches:
  - default.svc.cluster.local
  options: ["ndots:5"]
port_mappings:
- protocol: TCP
  container_port: 80
  host_port: 8080
labels:
  app: web
  version: "2"
annotations:
  note: "true"
linux:
  cgroup_parent: /kubepods/besteffort
  sysctls:
    net.ipv4.ip_unprivileged_port_start: "0"
  security_context:
    namespace_options:
      network: 2
      pid: CONTAINER
    run_as_user:
      value: 1000
)";

TEST(ConfigFiles, CrictlSamplePodConfig) {
  auto pod = parsePodSandboxConfig(kPodConfigJson, "pod-config.json");
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_EQ(pod->metadata().name(), "nginx-sandbox");
  EXPECT_EQ(pod->metadata().namespace_(), "default");
  EXPECT_EQ(pod->metadata().attempt(), 1u);
  EXPECT_EQ(pod->metadata().uid(), "hdishd83djaidwnduwk28bcsb");
  EXPECT_EQ(pod->log_directory(), "/tmp");
  EXPECT_TRUE(pod->has_linux());
}

TEST(ConfigFiles, CrictlSampleContainerConfig) {
  auto c = parseContainerConfig(kContainerConfigJson, "container-config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->metadata().name(), "busybox");
  EXPECT_EQ(c->image().image(), "busybox");
  EXPECT_THAT(c->command(), ElementsAre("top"));
  EXPECT_EQ(c->log_path(), "busybox.0.log");
}

TEST(ConfigFiles, FullYamlPodWithEnumsByNumberAndName) {
  auto pod = parsePodSandboxConfig(kFullPodYaml, "pod.yaml");
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_EQ(pod->metadata().uid(), "1234") << "quoted scalar stays a string";
  EXPECT_EQ(pod->hostname(), "web-host");
  EXPECT_THAT(pod->dns_config().servers(), ElementsAre("10.96.0.10"));
  EXPECT_THAT(pod->dns_config().searches(), ElementsAre("default.svc.cluster.local"));
  EXPECT_THAT(pod->dns_config().options(), ElementsAre("ndots:5"));
  ASSERT_EQ(pod->port_mappings_size(), 1);
  EXPECT_EQ(pod->port_mappings(0).protocol(), v1::TCP);
  EXPECT_EQ(pod->port_mappings(0).container_port(), 80);
  EXPECT_EQ(pod->port_mappings(0).host_port(), 8080);
  EXPECT_EQ(pod->labels().at("version"), "2");
  EXPECT_EQ(pod->annotations().at("note"), "true");
  EXPECT_EQ(pod->linux().cgroup_parent(), "/kubepods/besteffort");
  EXPECT_EQ(pod->linux().sysctls().at("net.ipv4.ip_unprivileged_port_start"), "0");
  const auto& ns = pod->linux().security_context().namespace_options();
  EXPECT_EQ(ns.network(), v1::NODE);
  EXPECT_EQ(ns.pid(), v1::CONTAINER);
  EXPECT_EQ(pod->linux().security_context().run_as_user().value(), 1000);
}

TEST(ConfigFiles, YamlAndJsonGiveTheSameMessage) {
  constexpr char kYaml[] = R"(metadata:
  name: nginx-sandbox
  namespace: default
  attempt: 1
  uid: hdishd83djaidwnduwk28bcsb
log_directory: /tmp
linux: {}
)";
  auto from_yaml = parsePodSandboxConfig(kYaml, "pod.yaml");
  auto from_json = parsePodSandboxConfig(kPodConfigJson, "pod.json");
  ASSERT_TRUE(from_yaml.ok()) << from_yaml.status();
  ASSERT_TRUE(from_json.ok());
  EXPECT_EQ(from_yaml->SerializeAsString(), from_json->SerializeAsString());
}

TEST(ConfigFiles, CamelCaseNamesAreAcceptedToo) {
  auto c = parseContainerConfig(R"({"metadata": {"name": "x"}, "image": {"image": "b"},
                                    "logPath": "x.log", "workingDir": "/w"})",
                                "c.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->log_path(), "x.log");
  EXPECT_EQ(c->working_dir(), "/w");
}

TEST(ConfigFiles, UnknownFieldsAndBadTypesAreErrorsNamingTheFile) {
  auto typo = parsePodSandboxConfig(R"({"metadata": {"name": "a", "namespace": "b"},
                                        "log_dir": "/tmp"})",
                                    "pod \"p.json\"");
  ASSERT_FALSE(typo.ok());
  EXPECT_THAT(std::string(typo.status().message()), HasSubstr("pod \"p.json\""));
  EXPECT_THAT(std::string(typo.status().message()), HasSubstr("log_dir"));

  auto type = parseContainerConfig("metadata:\n  name: x\nimage:\n  image: b\ntty: maybe\n",
                                   "c.yaml");
  ASSERT_FALSE(type.ok());
  EXPECT_THAT(std::string(type.status().message()), HasSubstr("c.yaml"));

  auto yaml = parseContainerConfig("metadata: [\n", "c.yaml");
  ASSERT_FALSE(yaml.ok());
  EXPECT_THAT(std::string(yaml.status().message()), HasSubstr("line"));
}

TEST(ConfigFiles, CrictlsRequiredFields) {
  auto no_ns = parsePodSandboxConfig(R"({"metadata": {"name": "a"}})", "p");
  ASSERT_FALSE(no_ns.ok());
  EXPECT_THAT(std::string(no_ns.status().message()), HasSubstr("metadata.namespace"));
  auto no_meta = parsePodSandboxConfig("{}", "p");
  ASSERT_FALSE(no_meta.ok());
  EXPECT_THAT(std::string(no_meta.status().message()), HasSubstr("metadata is not set"));
  auto no_image = parseContainerConfig(R"({"metadata": {"name": "a"}})", "c");
  ASSERT_FALSE(no_image.ok());
  EXPECT_THAT(std::string(no_image.status().message()), HasSubstr("image.image"));

  auto no_uid = parsePodSandboxConfig(R"({"metadata": {"name": "a", "namespace": "b"}})", "p");
  ASSERT_TRUE(no_uid.ok());
  EXPECT_EQ(no_uid->metadata().uid().size(), 36u) << "a random UUID, as crictl fills in";
}

TEST(ConfigFiles, EmptyOrNonObjectDocuments) {
  auto empty = parsePodSandboxConfig("  \n", "pod \"p.yaml\"");
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(std::string(empty.status().message()), HasSubstr("pod \"p.yaml\" is empty"));
  auto list = parsePodSandboxConfig("- a\n- b\n", "p.yaml");
  ASSERT_FALSE(list.ok());
  EXPECT_THAT(std::string(list.status().message()), HasSubstr("p.yaml"));
}

TEST(ConfigFiles, LoadFromFiles) {
  char tmpl[] = "/tmp/berthctl-config-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  ASSERT_TRUE(fs::writeFileAtomic(dir + "/pod-config.json", kPodConfigJson).ok());
  ASSERT_TRUE(fs::writeFileAtomic(dir + "/container-config.json", kContainerConfigJson).ok());
  EXPECT_TRUE(loadPodSandboxConfig(dir + "/pod-config.json").ok());
  EXPECT_TRUE(loadContainerConfig(dir + "/container-config.json").ok());
  auto missing = loadPodSandboxConfig(dir + "/nope.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(absl::IsNotFound(missing.status()));
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("nope.json\" not found"));
  (void)fs::removeAll(dir);
}

TEST(ConfigFiles, YamlToJsonScalars) {
  auto j = yamlToJson("a: 1\nb: -2\nc: 1.5\nd: true\ne: ~\nf: '7'\ng: text\nh: 0x10\n", "t");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ((*j)["a"], 1);
  EXPECT_EQ((*j)["b"], -2);
  EXPECT_EQ((*j)["c"], 1.5);
  EXPECT_EQ((*j)["d"], true);
  EXPECT_TRUE((*j)["e"].is_null());
  EXPECT_EQ((*j)["f"], "7");
  EXPECT_EQ((*j)["g"], "text");
  EXPECT_EQ((*j)["h"], "0x10");
}

}  // namespace
}  // namespace berth::ctl
