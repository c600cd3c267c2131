// Tests for runtime/oci/default_spec.h, runtime/oci/state.h and runtime/features.h.
#include "runtime/oci/default_spec.h"

#include <unistd.h>

#include <algorithm>
#include <regex>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runtime/features.h"
#include "runtime/oci/config.h"
#include "runtime/oci/state.h"

namespace berth::oci {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using OrderedJson = nlohmann::ordered_json;

std::vector<std::string> keysOf(const OrderedJson& j) {
  std::vector<std::string> keys;
  for (const auto& item : j.items()) keys.push_back(item.key());
  return keys;
}

const Mount* findMount(const Spec& spec, const std::string& destination) {
  for (const Mount& m : spec.mounts) {
    if (m.destination == destination) return &m;
  }
  return nullptr;
}

std::vector<std::string> namespaceTypes(const Spec& spec) {
  std::vector<std::string> types;
  for (const Namespace& ns : spec.linux->namespaces) types.push_back(ns.type);
  return types;
}

TEST(DefaultSpecTest, ParsesAndValidates) {
  OrderedJson doc = defaultSpec(false);
  EXPECT_THAT(keysOf(doc),
              ElementsAre("ociVersion", "process", "root", "hostname", "mounts", "linux"));
  auto spec = parseSpec(doc.dump());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(validateSpec(*spec).ok()) << validateSpec(*spec);

  EXPECT_EQ(spec->ociVersion, kOciVersion);
  const Process& p = *spec->process;
  EXPECT_TRUE(p.terminal);
  EXPECT_EQ(p.user.uid, 0u);
  EXPECT_THAT(p.args, ElementsAre("sh"));
  EXPECT_THAT(p.env, ElementsAre(
                         "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                         "TERM=xterm"));
  EXPECT_EQ(p.cwd, "/");
  EXPECT_THAT(*p.capabilities->bounding,
              ElementsAre("CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"));
  EXPECT_EQ(*p.capabilities->effective, *p.capabilities->bounding);
  EXPECT_EQ(*p.capabilities->permitted, *p.capabilities->bounding);
  ASSERT_EQ(p.rlimits.size(), 1u);
  EXPECT_EQ(p.rlimits[0].type, "RLIMIT_NOFILE");
  EXPECT_EQ(p.rlimits[0].hard, 1024u);
  EXPECT_EQ(p.rlimits[0].soft, 1024u);
  EXPECT_TRUE(p.noNewPrivileges);
  EXPECT_EQ(spec->root->path, "rootfs");
  EXPECT_TRUE(spec->root->readonly);
  EXPECT_EQ(spec->hostname, "berth");

  std::vector<std::string> destinations;
  for (const Mount& m : spec->mounts) destinations.push_back(m.destination);
  EXPECT_THAT(destinations, ElementsAre("/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue",
                                        "/sys", "/sys/fs/cgroup"));
  EXPECT_THAT(findMount(*spec, "/dev")->options,
              ElementsAre("nosuid", "strictatime", "mode=755", "size=65536k"));
  EXPECT_THAT(findMount(*spec, "/dev/pts")->options,
              ElementsAre("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                          "gid=5"));
  EXPECT_EQ(findMount(*spec, "/dev/shm")->source, "shm");
  EXPECT_EQ(findMount(*spec, "/sys")->type, "sysfs");
  EXPECT_THAT(findMount(*spec, "/sys/fs/cgroup")->options,
              ElementsAre("nosuid", "noexec", "nodev", "relatime", "ro"));

  EXPECT_THAT(namespaceTypes(*spec),
              ElementsAre("pid", "network", "ipc", "uts", "mount", "cgroup"));
  ASSERT_TRUE(spec->linux->resources.has_value());
  ASSERT_EQ(spec->linux->resources->devices.size(), 1u);
  EXPECT_FALSE(spec->linux->resources->devices[0].allow);
  EXPECT_EQ(spec->linux->resources->devices[0].access, "rwm");
  EXPECT_EQ(spec->linux->maskedPaths.size(), 11u);
  EXPECT_EQ(spec->linux->maskedPaths.back(), "/sys/devices/virtual/powercap");
  EXPECT_THAT(spec->linux->readonlyPaths,
              ElementsAre("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                          "/proc/sysrq-trigger"));
  EXPECT_TRUE(spec->linux->uidMappings.empty());
}

TEST(DefaultSpecTest, RootlessHasUserNamespaceMappings) {
  auto spec = parseSpec(defaultSpec(true).dump());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(validateSpec(*spec).ok()) << validateSpec(*spec);

  std::vector<std::string> types = namespaceTypes(*spec);
  EXPECT_THAT(types, ::testing::Contains("user"));
  EXPECT_THAT(types, ::testing::Not(::testing::Contains("network")));
  ASSERT_EQ(spec->linux->uidMappings.size(), 1u);
  EXPECT_EQ(spec->linux->uidMappings[0].containerID, 0u);
  EXPECT_EQ(spec->linux->uidMappings[0].hostID, geteuid());
  EXPECT_EQ(spec->linux->uidMappings[0].size, 1u);
  ASSERT_EQ(spec->linux->gidMappings.size(), 1u);
  EXPECT_EQ(spec->linux->gidMappings[0].hostID, getegid());

  const Mount* sys = findMount(*spec, "/sys");
  ASSERT_NE(sys, nullptr);
  EXPECT_EQ(sys->source, "/sys");
  EXPECT_THAT(sys->options, ElementsAre("rbind", "nosuid", "noexec", "nodev", "ro"));
  EXPECT_EQ(findMount(*spec, "/sys/fs/cgroup"), nullptr);
  EXPECT_FALSE(spec->linux->resources.has_value());
  for (const Mount& m : spec->mounts) {
    for (const std::string& option : m.options) {
      EXPECT_NE(option.rfind("gid=", 0), 0u) << m.destination << " keeps " << option;
    }
  }
}

// ---------------------------------------------------------------------------
// state.h

State sampleState() {
  State state;
  state.ociVersion = "1.1.0";
  state.id = "web";
  state.pid = 4242;
  state.status = Status::kRunning;
  state.bundle = "/run/bundles/web";
  state.rootfs = "/run/bundles/web/rootfs";
  state.created = "2026-01-02T03:04:05.000000006Z";
  state.owner = "";
  return state;
}

TEST(StateTest, JsonKeyOrderMatchesRunc) {
  State state = sampleState();
  OrderedJson j = toJson(state);
  EXPECT_THAT(keysOf(j), ElementsAre("ociVersion", "id", "pid", "status", "bundle", "rootfs",
                                     "created", "owner"));
  EXPECT_EQ(j.dump(),
            R"({"ociVersion":"1.1.0","id":"web","pid":4242,"status":"running",)"
            R"("bundle":"/run/bundles/web","rootfs":"/run/bundles/web/rootfs",)"
            R"("created":"2026-01-02T03:04:05.000000006Z","owner":""})");

  state.annotations = {{"b", "2"}, {"a", "1"}};
  j = toJson(state);
  EXPECT_THAT(keysOf(j), ElementsAre("ociVersion", "id", "pid", "status", "bundle", "rootfs",
                                     "created", "annotations", "owner"));
  EXPECT_EQ(j["annotations"].dump(), R"({"a":"1","b":"2"})");
  // Converts to unordered json where order does not matter.
  nlohmann::json plain = toJson(state);
  EXPECT_EQ(plain["pid"], 4242);
}

TEST(StateTest, StoppedPrintsPidZero) {
  State state = sampleState();
  state.pid = 0;
  state.status = Status::kStopped;
  OrderedJson j = toJson(state);
  EXPECT_EQ(j["pid"], 0);
  EXPECT_EQ(j["status"], "stopped");
}

TEST(StateTest, RoundTripThroughStateFromJson) {
  State state = sampleState();
  state.annotations = {{"io.kubernetes.cri.sandbox-id", "abc"}};
  state.status = Status::kPaused;
  auto back = stateFromJson(toJson(state), "state.json");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->id, "web");
  EXPECT_EQ(back->pid, 4242);
  EXPECT_EQ(back->status, Status::kPaused);
  EXPECT_EQ(back->rootfs, state.rootfs);
  EXPECT_EQ(back->created, state.created);
  EXPECT_EQ(back->annotations, state.annotations);

  auto bad = stateFromJson(nlohmann::json::parse(R"({"id":"x","status":"zombie"})"), "s.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("s.json"));
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("\"zombie\""));
  EXPECT_FALSE(stateFromJson(nlohmann::json::parse(R"({"pid":-3})"), "s").ok());
  EXPECT_FALSE(stateFromJson(nlohmann::json::parse(R"({"id":3})"), "s").ok());
}

TEST(StateTest, StatusNames) {
  for (Status s : {Status::kCreating, Status::kCreated, Status::kRunning, Status::kPaused,
                   Status::kStopped}) {
    auto parsed = parseStatus(statusName(s));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, s);
  }
  EXPECT_STREQ(statusName(Status::kCreated), "created");
  EXPECT_FALSE(parseStatus("Running").ok());
}

TEST(StateTest, HookStateJson) {
  State state = sampleState();
  state.status = Status::kCreated;
  OrderedJson j = hookStateJson(state);
  EXPECT_THAT(keysOf(j), ElementsAre("ociVersion", "id", "status", "pid", "bundle"));
  EXPECT_EQ(j["status"], "created");
  EXPECT_EQ(j["pid"], 4242);
  EXPECT_FALSE(j.contains("rootfs"));

  state.pid = 0;
  state.status = Status::kStopped;
  state.annotations = {{"k", "v"}};
  j = hookStateJson(state);
  EXPECT_THAT(keysOf(j), ElementsAre("ociVersion", "id", "status", "bundle", "annotations"));
  EXPECT_EQ(j["annotations"]["k"], "v");
}

TEST(StateTest, Rfc3339NowHasNanosecondsInUtc) {
  std::string now = rfc3339Now();
  EXPECT_TRUE(std::regex_match(now, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z)")))
      << now;
  EXPECT_GE(now.substr(0, 4), std::string("2024"));
}

// ---------------------------------------------------------------------------
// features.h

TEST(FeaturesTest, DocumentShape) {
  OrderedJson f = runtime::featuresJson();
  EXPECT_THAT(keysOf(f), ElementsAre("ociVersionMin", "ociVersionMax", "hooks", "mountOptions",
                                     "linux", "annotations"));
  EXPECT_EQ(f["ociVersionMin"], "1.0.0");
  EXPECT_EQ(f["ociVersionMax"], "1.1.0");
  EXPECT_EQ(f["hooks"].size(), 6u);
  auto options = f["mountOptions"].get<std::vector<std::string>>();
  EXPECT_TRUE(std::is_sorted(options.begin(), options.end()));
  for (const char* option : {"rbind", "rprivate", "nosymfollow", "tmpcopyup", "ro", "rro"}) {
    EXPECT_THAT(options, ::testing::Contains(option));
  }
  const OrderedJson& linux_features = f["linux"];
  EXPECT_THAT(keysOf(linux_features),
              ElementsAre("namespaces", "capabilities", "cgroup", "seccomp", "apparmor",
                          "selinux", "intelRdt", "mountExtensions"));
  EXPECT_THAT(linux_features["namespaces"].get<std::vector<std::string>>(),
              ElementsAre("cgroup", "ipc", "mount", "network", "pid", "user", "uts"));
  EXPECT_THAT(linux_features["capabilities"].get<std::vector<std::string>>(),
              ::testing::Contains("CAP_SYS_ADMIN"));
  EXPECT_EQ(linux_features["cgroup"]["v2"], true);
  EXPECT_EQ(linux_features["cgroup"]["v1"], false);
  EXPECT_EQ(linux_features["seccomp"]["enabled"], true);
  EXPECT_THAT(keysOf(linux_features["seccomp"]),
              ElementsAre("enabled", "actions", "operators", "archs", "knownFlags",
                          "supportedFlags"));
  EXPECT_THAT(linux_features["seccomp"]["actions"].get<std::vector<std::string>>(),
              ::testing::Contains("SCMP_ACT_ERRNO"));
  EXPECT_EQ(linux_features["mountExtensions"]["idmap"]["enabled"], false);
  EXPECT_EQ(f["annotations"]["io.github.berth.runtime.version"], "0.1.0");
}

}  // namespace
}  // namespace berth::oci
