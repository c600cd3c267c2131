// Tests for runtime/oci/config.h: parsing, serialisation and validation.
#include "runtime/oci/config.h"

#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <functional>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/fs.h"

namespace berth::oci {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

// A realistic config.json as containerd's CRI plugin writes it (trimmed), plus every
// round-trip-only field the model keeps.
constexpr char kFullConfig[] = R"json({
  "ociVersion": "1.1.0",
  "process": {
    "terminal": true,
    "consoleSize": {"height": 24, "width": 80},
    "user": {"uid": 1000, "gid": 1000, "umask": 18, "additionalGids": [10, 20]},
    "args": ["/bin/app", "--port", "8080"],
    "env": ["PATH=/usr/bin:/bin", "HOME=/root"],
    "cwd": "/srv",
    "capabilities": {
      "bounding": ["CAP_CHOWN", "CAP_KILL"],
      "effective": ["CAP_CHOWN"],
      "inheritable": [],
      "permitted": ["CAP_CHOWN", "CAP_KILL"],
      "ambient": ["CAP_KILL"]
    },
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 1024}],
    "noNewPrivileges": true,
    "apparmorProfile": "cri-default",
    "oomScoreAdj": -500,
    "selinuxLabel": "system_u:system_r:container_t:s0",
    "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
    "scheduler": {"policy": "SCHED_OTHER", "nice": 5}
  },
  "root": {"path": "/run/berth/rootfs/abc", "readonly": true},
  "hostname": "web-0",
  "domainname": "example.org",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc",
     "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/data", "type": "bind", "source": "/var/lib/data",
     "options": ["rbind", "rprivate", "ro"]}
  ],
  "hooks": {
    "prestart": [{"path": "/usr/bin/old-hook"}],
    "createRuntime": [{"path": "/usr/bin/net-setup", "args": ["net-setup", "add"],
                       "env": ["A=1"], "timeout": 10}],
    "createContainer": [{"path": "/usr/bin/cc"}],
    "startContainer": [{"path": "/usr/bin/sc"}],
    "poststart": [{"path": "/usr/bin/ps"}],
    "poststop": [{"path": "/usr/bin/cleanup", "timeout": 5}]
  },
  "annotations": {"io.kubernetes.cri.container-type": "container", "a.b": "c"},
  "linux": {
    "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
    "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
    "sysctl": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "68719476736"},
    "resources": {
      "devices": [{"allow": false, "access": "rwm"},
                  {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"},
                  {"allow": true, "type": "c", "major": 136, "access": "rwm"}],
      "memory": {"limit": 536870912, "reservation": 268435456, "swap": -1,
                 "swappiness": 0, "disableOOMKiller": false, "checkBeforeUpdate": true},
      "cpu": {"shares": 512, "quota": 50000, "burst": 1000, "period": 100000,
              "realtimeRuntime": 0, "realtimePeriod": 0, "cpus": "0-1", "mems": "0",
              "idle": 0},
      "pids": {"limit": 100},
      "blockIO": {"weight": 500, "leafWeight": 300,
                  "weightDevice": [{"major": 8, "minor": 0, "weight": 600}],
                  "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                  "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 2097152}],
                  "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}],
                  "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 200}]},
      "hugepageLimits": [{"pageSize": "2MB", "limit": 209715200}],
      "network": {"classID": 1048577},
      "rdma": {"mlx5_1": {"hcaHandles": 3}},
      "unified": {"memory.high": "400000000", "io.weight": "default 100"}
    },
    "cgroupsPath": "/kubepods/burstable/pod1/abc",
    "namespaces": [{"type": "pid"}, {"type": "network", "path": "/run/berth/ns/p/net"},
                   {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
                   {"type": "user"}, {"type": "cgroup"}],
    "devices": [{"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229,
                 "fileMode": 438, "uid": 0, "gid": 0}],
    "seccomp": {
      "defaultAction": "SCMP_ACT_ERRNO",
      "defaultErrnoRet": 1,
      "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
      "flags": ["SECCOMP_FILTER_FLAG_LOG"],
      "listenerPath": "/run/seccomp-agent.sock",
      "listenerMetadata": "meta",
      "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 4294967295, "op": "SCMP_CMP_EQ"}]},
        {"names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
         "args": [{"index": 0, "value": 2114060288, "valueTwo": 0,
                   "op": "SCMP_CMP_MASKED_EQ"}]}
      ]
    },
    "rootfsPropagation": "rslave",
    "maskedPaths": ["/proc/kcore", "/sys/firmware"],
    "readonlyPaths": ["/proc/sys"],
    "mountLabel": "system_u:object_r:container_file_t:s0",
    "intelRdt": {"closID": "guaranteed"},
    "personality": {"domain": "LINUX32"},
    "timeOffsets": {"monotonic": {"secs": 1, "nanosecs": 0}}
  }
})json";

Spec parseOrDie(std::string_view text) {
  auto spec = parseSpec(text);
  EXPECT_TRUE(spec.ok()) << spec.status();
  return spec.ok() ? *spec : Spec{};
}

// A minimal valid spec, built in code, for the validation tests to break.
Spec minimalSpec() {
  Spec spec;
  spec.ociVersion = "1.1.0";
  spec.process.emplace();
  spec.process->args = {"sh"};
  spec.process->cwd = "/";
  spec.root = Root{"rootfs", true};
  spec.linux.emplace();
  for (const char* type : {"pid", "network", "ipc", "uts", "mount"}) {
    spec.linux->namespaces.push_back(Namespace{type, ""});
  }
  return spec;
}

std::string validationError(const Spec& spec) {
  berth::Status status = validateSpec(spec);
  EXPECT_FALSE(status.ok()) << "expected validateSpec to fail";
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  return std::string(status.message());
}

TEST(ParseSpecTest, ParsesFullConfig) {
  Spec spec = parseOrDie(kFullConfig);
  EXPECT_EQ(spec.ociVersion, "1.1.0");
  ASSERT_TRUE(spec.process.has_value());
  const Process& p = *spec.process;
  EXPECT_TRUE(p.terminal);
  ASSERT_TRUE(p.consoleSize.has_value());
  EXPECT_EQ(p.consoleSize->height, 24u);
  EXPECT_EQ(p.consoleSize->width, 80u);
  EXPECT_EQ(p.user.uid, 1000u);
  EXPECT_EQ(p.user.gid, 1000u);
  EXPECT_EQ(p.user.umask, 18u);
  EXPECT_THAT(p.user.additionalGids, ::testing::ElementsAre(10u, 20u));
  EXPECT_THAT(p.args, ::testing::ElementsAre("/bin/app", "--port", "8080"));
  EXPECT_EQ(p.cwd, "/srv");
  ASSERT_TRUE(p.capabilities.has_value());
  EXPECT_THAT(*p.capabilities->bounding, ::testing::ElementsAre("CAP_CHOWN", "CAP_KILL"));
  ASSERT_TRUE(p.capabilities->inheritable.has_value());
  EXPECT_TRUE(p.capabilities->inheritable->empty());
  EXPECT_THAT(*p.capabilities->ambient, ::testing::ElementsAre("CAP_KILL"));
  ASSERT_EQ(p.rlimits.size(), 1u);
  EXPECT_EQ(p.rlimits[0].type, "RLIMIT_NOFILE");
  EXPECT_EQ(p.rlimits[0].hard, 4096u);
  EXPECT_EQ(p.rlimits[0].soft, 1024u);
  EXPECT_TRUE(p.noNewPrivileges);
  EXPECT_EQ(p.oomScoreAdj, -500);
  EXPECT_EQ(p.apparmorProfile, "cri-default");
  ASSERT_TRUE(p.ioPriority.has_value());
  EXPECT_EQ((*p.ioPriority)["priority"], 4);

  ASSERT_TRUE(spec.root.has_value());
  EXPECT_EQ(spec.root->path, "/run/berth/rootfs/abc");
  EXPECT_TRUE(spec.root->readonly);
  EXPECT_EQ(spec.hostname, "web-0");
  EXPECT_EQ(spec.domainname, "example.org");
  ASSERT_EQ(spec.mounts.size(), 2u);
  EXPECT_EQ(spec.mounts[1].destination, "/data");
  EXPECT_EQ(spec.mounts[1].type, "bind");
  EXPECT_EQ(spec.mounts[1].source, "/var/lib/data");
  EXPECT_THAT(spec.mounts[1].options, ::testing::ElementsAre("rbind", "rprivate", "ro"));

  ASSERT_TRUE(spec.hooks.has_value());
  ASSERT_EQ(spec.hooks->createRuntime.size(), 1u);
  EXPECT_EQ(spec.hooks->createRuntime[0].path, "/usr/bin/net-setup");
  EXPECT_THAT(spec.hooks->createRuntime[0].args, ::testing::ElementsAre("net-setup", "add"));
  EXPECT_EQ(spec.hooks->createRuntime[0].timeout, 10);
  EXPECT_EQ(spec.hooks->poststop[0].timeout, 5);
  EXPECT_FALSE(spec.hooks->prestart[0].timeout.has_value());
  EXPECT_EQ(spec.annotations.at("a.b"), "c");

  ASSERT_TRUE(spec.linux.has_value());
  const Linux& l = *spec.linux;
  ASSERT_EQ(l.uidMappings.size(), 1u);
  EXPECT_EQ(l.uidMappings[0].hostID, 100000u);
  EXPECT_EQ(l.uidMappings[0].size, 65536u);
  EXPECT_EQ(l.sysctl.at("net.ipv4.ip_forward"), "1");
  ASSERT_EQ(l.namespaces.size(), 7u);
  EXPECT_EQ(l.namespaces[1].type, "network");
  EXPECT_EQ(l.namespaces[1].path, "/run/berth/ns/p/net");
  ASSERT_EQ(l.devices.size(), 1u);
  EXPECT_EQ(l.devices[0].major, 10);
  EXPECT_EQ(l.devices[0].minor, 229);
  EXPECT_EQ(l.devices[0].fileMode, 0666u);
  EXPECT_EQ(l.cgroupsPath, "/kubepods/burstable/pod1/abc");
  EXPECT_EQ(l.rootfsPropagation, "rslave");

  ASSERT_TRUE(l.resources.has_value());
  const Resources& r = *l.resources;
  ASSERT_EQ(r.devices.size(), 3u);
  EXPECT_FALSE(r.devices[0].allow);
  EXPECT_EQ(r.devices[0].type, "");
  EXPECT_FALSE(r.devices[0].major.has_value());
  EXPECT_EQ(r.devices[1].major, 1);
  EXPECT_EQ(r.devices[1].minor, 3);
  EXPECT_EQ(r.devices[1].access, "rw");
  EXPECT_FALSE(r.devices[2].minor.has_value());
  ASSERT_TRUE(r.memory.has_value());
  EXPECT_EQ(r.memory->limit, 536870912);
  EXPECT_EQ(r.memory->swap, -1);
  EXPECT_EQ(r.memory->swappiness, 0u);  // present and zero, not absent
  EXPECT_FALSE(r.memory->kernel.has_value());
  EXPECT_EQ(r.memory->disableOOMKiller, false);
  ASSERT_TRUE(r.cpu.has_value());
  EXPECT_EQ(r.cpu->shares, 512u);
  EXPECT_EQ(r.cpu->quota, 50000);
  EXPECT_EQ(r.cpu->period, 100000u);
  EXPECT_EQ(r.cpu->cpus, "0-1");
  ASSERT_TRUE(r.pids.has_value());
  EXPECT_EQ(r.pids->limit, 100);
  ASSERT_TRUE(r.blockIO.has_value());
  EXPECT_EQ(r.blockIO->weight, 500);
  EXPECT_EQ(r.blockIO->weightDevice[0].weight, 600);
  EXPECT_FALSE(r.blockIO->weightDevice[0].leafWeight.has_value());
  EXPECT_EQ(r.blockIO->throttleWriteIOPSDevice[0].rate, 200u);
  ASSERT_EQ(r.hugepageLimits.size(), 1u);
  EXPECT_EQ(r.hugepageLimits[0].pageSize, "2MB");
  EXPECT_EQ(r.unified.at("memory.high"), "400000000");

  ASSERT_TRUE(l.seccomp.has_value());
  const Seccomp& s = *l.seccomp;
  EXPECT_EQ(s.defaultAction, "SCMP_ACT_ERRNO");
  EXPECT_EQ(s.defaultErrnoRet, 1u);
  EXPECT_THAT(s.architectures, ::testing::ElementsAre("SCMP_ARCH_X86_64", "SCMP_ARCH_X86"));
  EXPECT_EQ(s.listenerPath, "/run/seccomp-agent.sock");
  ASSERT_EQ(s.syscalls.size(), 3u);
  EXPECT_THAT(s.syscalls[0].names, ::testing::ElementsAre("read", "write"));
  EXPECT_EQ(s.syscalls[1].args[0].value, 4294967295u);
  EXPECT_EQ(s.syscalls[2].errnoRet, 38u);
  EXPECT_EQ(s.syscalls[2].args[0].op, "SCMP_CMP_MASKED_EQ");
  EXPECT_THAT(l.maskedPaths, ::testing::ElementsAre("/proc/kcore", "/sys/firmware"));
  EXPECT_EQ(l.mountLabel, "system_u:object_r:container_file_t:s0");
  ASSERT_TRUE(l.timeOffsets.has_value());
  EXPECT_EQ((*l.timeOffsets)["monotonic"]["secs"], 1);
}

TEST(ParseSpecTest, FullConfigIsValid) {
  // User namespace + mappings, joined netns with net.* sysctl, UTS for hostname.
  EXPECT_TRUE(validateSpec(parseOrDie(kFullConfig)).ok())
      << validateSpec(parseOrDie(kFullConfig));
}

TEST(ParseSpecTest, RoundTripKeepsEveryField) {
  Json original = Json::parse(kFullConfig);
  Json again = toJson(parseOrDie(kFullConfig));
  // valueTwo 0 is omitempty in specs-go; everything else must come back unchanged.
  original["linux"]["seccomp"]["syscalls"][2]["args"][0].erase("valueTwo");
  EXPECT_EQ(again, original) << "diff: " << Json::diff(original, again).dump(1);
  // And a second trip is a fixed point.
  auto reparsed = parseSpec(again.dump());
  ASSERT_TRUE(reparsed.ok()) << reparsed.status();
  EXPECT_EQ(toJson(*reparsed), again);
}

TEST(ParseSpecTest, AbsentAndZeroStayDifferent) {
  Spec spec = parseOrDie(R"({"ociVersion":"1.1.0","linux":{"resources":{
      "memory":{"limit":0},"cpu":{}}}})");
  ASSERT_TRUE(spec.linux && spec.linux->resources && spec.linux->resources->memory);
  EXPECT_EQ(spec.linux->resources->memory->limit, 0);
  EXPECT_FALSE(spec.linux->resources->memory->reservation.has_value());
  EXPECT_FALSE(spec.linux->resources->cpu->shares.has_value());
  Json out = toJson(spec);
  EXPECT_EQ(out["linux"]["resources"]["memory"], Json::parse(R"({"limit":0})"));
  EXPECT_FALSE(out.contains("process"));
  EXPECT_FALSE(out.contains("hooks"));
}

TEST(ParseSpecTest, UnknownKeysAndNullsAreIgnored) {
  Spec spec = parseOrDie(R"({"ociVersion":"1.1.0","vm":{"x":1},"hostname":null,
      "process":{"args":["sh"],"cwd":"/","futureField":[1,2],"rlimits":null},
      "linux":{"netDevices":{"eth0":{}}}})");
  EXPECT_EQ(spec.hostname, "");
  ASSERT_TRUE(spec.process.has_value());
  EXPECT_TRUE(spec.process->rlimits.empty());
}

TEST(ParseSpecTest, WrongTypeNamesTheKeyPath) {
  struct Case {
    const char* json;
    const char* message;
  };
  const Case cases[] = {
      {R"({"process":{"user":{"uid":"0"}}})",
       R"(config.json: "process.user.uid": expected unsigned integer, got string)"},
      {R"({"process":{"user":{"uid":-1}}})",
       R"("process.user.uid": expected unsigned integer, got negative number -1)"},
      {R"({"process":{"user":{"uid":4294967296}}})",
       R"("process.user.uid": 4294967296 is out of range (at most 4294967295))"},
      {R"({"process":{"args":"sh"}})", R"("process.args": expected array, got string)"},
      {R"({"process":{"args":["sh", 1]}})", R"("process.args[1]": expected string, got integer)"},
      {R"({"process":{"terminal":"yes"}})", R"("process.terminal": expected boolean, got string)"},
      {R"({"linux":{"namespaces":[{"type":"pid"},{"type":7}]}})",
       R"("linux.namespaces[1].type": expected string, got integer)"},
      {R"({"linux":{"devices":[{"type":"c","path":"/dev/x","fileMode":"0666"}]}})",
       R"("linux.devices[0].fileMode": expected unsigned integer, got string)"},
      {R"({"linux":{"resources":{"memory":{"limit":1.5}}}})",
       R"("linux.resources.memory.limit": expected integer, got floating-point number 1.5)"},
      {R"({"annotations":{"a":1}})", R"("annotations["a"]": expected string, got integer)"},
      {R"({"hooks":{"poststop":[{"path":"/x","timeout":"5"}]}})",
       R"("hooks.poststop[0].timeout": expected integer, got string)"},
      {R"({"mounts":{}})", R"("mounts": expected array, got object)"},
      {R"({"root":"rootfs"})", R"("root": expected object, got string)"},
  };
  for (const Case& c : cases) {
    auto spec = parseSpec(c.json);
    ASSERT_FALSE(spec.ok()) << c.json;
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(spec.status().message()), HasSubstr(c.message)) << c.json;
  }
}

TEST(ParseSpecTest, SyntaxErrorNamesDocument) {
  auto spec = parseSpec("{\"ociVersion\": ");
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(spec.status().message()), HasSubstr("config.json"));
  EXPECT_FALSE(parseSpec("[1,2]").ok());
}

TEST(LoadSpecTest, ReadsBundleConfigAndNamesFile) {
  char dir_template[] = "/tmp/berth-oci-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  std::string dir = dir_template;
  auto missing = loadSpec(dir);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr(dir + "/config.json"));

  {
    std::ofstream out(dir + "/config.json");
    out << R"({"ociVersion":"1.0.2","process":{"args":["true"],"cwd":"/","user":{"gid":"x"}}})";
  }
  auto bad = loadSpec(dir);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr(dir + "/config.json\": \"process.user.gid\": expected unsigned"));
  {
    std::ofstream out(dir + "/config.json");
    out << R"({"ociVersion":"1.0.2","process":{"args":["true"],"cwd":"/"},"root":{"path":"r"}})";
  }
  auto good = loadSpec(dir);
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(good->ociVersion, "1.0.2");
  EXPECT_EQ(good->root->path, "r");
  ASSERT_TRUE(fs::removeAll(dir).ok());
}

TEST(ParseProcessTest, ParsesExecProcess) {
  auto process = parseProcess(R"({"terminal":false,"user":{"uid":33,"gid":33},
      "args":["ps","aux"],"env":["PATH=/bin"],"cwd":"/tmp",
      "capabilities":{"bounding":["CAP_KILL"]},"noNewPrivileges":true})");
  ASSERT_TRUE(process.ok()) << process.status();
  EXPECT_EQ(process->user.uid, 33u);
  EXPECT_THAT(process->args, ::testing::ElementsAre("ps", "aux"));
  EXPECT_EQ(process->cwd, "/tmp");
  EXPECT_THAT(*process->capabilities->bounding, ::testing::ElementsAre("CAP_KILL"));
  EXPECT_FALSE(process->capabilities->effective.has_value());
  EXPECT_TRUE(validateProcess(*process).ok());

  Json out = toJson(*process);
  EXPECT_EQ(out["user"], Json::parse(R"({"uid":33,"gid":33})"));
  EXPECT_FALSE(out.contains("terminal"));
  EXPECT_EQ(out["capabilities"], Json::parse(R"({"bounding":["CAP_KILL"]})"));
}

TEST(ParseProcessTest, ErrorsAndMissingCwd) {
  auto bad = parseProcess(R"({"args":[1]})");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr(R"(process.json: "process.args[0]": expected string, got integer)"));
  auto no_cwd = parseProcess(R"({"args":["ls"]})");
  ASSERT_TRUE(no_cwd.ok());
  berth::Status status = validateProcess(*no_cwd);
  EXPECT_THAT(std::string(status.message()), HasSubstr("process.cwd: required"));
}

TEST(NamespaceTest, FlagsAndProcNames) {
  EXPECT_EQ(*namespaceFlag("pid"), CLONE_NEWPID);
  EXPECT_EQ(*namespaceFlag("network"), CLONE_NEWNET);
  EXPECT_EQ(*namespaceFlag("mount"), CLONE_NEWNS);
  EXPECT_EQ(*namespaceFlag("ipc"), CLONE_NEWIPC);
  EXPECT_EQ(*namespaceFlag("uts"), CLONE_NEWUTS);
  EXPECT_EQ(*namespaceFlag("user"), CLONE_NEWUSER);
  EXPECT_EQ(*namespaceFlag("cgroup"), CLONE_NEWCGROUP);
  EXPECT_EQ(*namespaceFlag("time"), 0x80);
  auto bad = namespaceFlag("net");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("unknown namespace type \"net\""));
  EXPECT_EQ(namespaceProcName("network"), "net");
  EXPECT_EQ(namespaceProcName("mount"), "mnt");
  EXPECT_EQ(namespaceProcName("pid"), "pid");
  EXPECT_EQ(namespaceProcName("time"), "time");
}

// ---------------------------------------------------------------------------
// validateSpec: each rule fails on a broken spec and passes on a fixed one.

struct RuleCase {
  const char* name;
  std::function<void(Spec&)> breakIt;
  const char* message;
  std::function<void(Spec&)> fixIt;  // applied to the broken spec; must make it valid
};

// Names the case in test listings instead of gtest's byte dump of the struct.
void PrintTo(const RuleCase& c, std::ostream* os) { *os << c.name; }

class ValidateSpecRuleTest : public ::testing::TestWithParam<RuleCase> {};

TEST_P(ValidateSpecRuleTest, FailsThenPasses) {
  const RuleCase& c = GetParam();
  Spec spec = minimalSpec();
  ASSERT_TRUE(validateSpec(spec).ok()) << validateSpec(spec);
  c.breakIt(spec);
  EXPECT_THAT(validationError(spec), HasSubstr(c.message));
  c.fixIt(spec);
  EXPECT_TRUE(validateSpec(spec).ok()) << validateSpec(spec);
}

void addNs(Spec& s, const char* type, const char* path = "") {
  s.linux->namespaces.push_back(Namespace{type, path});
}
void removeNs(Spec& s, const std::string& type) {
  auto& list = s.linux->namespaces;
  std::erase_if(list, [&](const Namespace& ns) { return ns.type == type; });
}

const RuleCase kRuleCases[] = {
    {"VersionMissing", [](Spec& s) { s.ociVersion = ""; }, "ociVersion: required",
     [](Spec& s) { s.ociVersion = "1.0.2-dev"; }},
    {"VersionMajor", [](Spec& s) { s.ociVersion = "2.0.0"; },
     "ociVersion: unsupported version \"2.0.0\"", [](Spec& s) { s.ociVersion = "1.2.0"; }},
    {"ProcessMissing", [](Spec& s) { s.process.reset(); }, "process: required",
     [](Spec& s) {
       s.process.emplace();
       s.process->args = {"true"};
     }},
    {"ArgsEmpty", [](Spec& s) { s.process->args.clear(); }, "process.args: must not be empty",
     [](Spec& s) { s.process->args = {"sh"}; }},
    {"CwdRelative", [](Spec& s) { s.process->cwd = "srv"; },
     "process.cwd: \"srv\" is not an absolute path", [](Spec& s) { s.process->cwd = "/srv"; }},
    {"RootMissing", [](Spec& s) { s.root.reset(); }, "root.path: required",
     [](Spec& s) { s.root = Root{"/abs/rootfs", false}; }},
    {"RootPathEmpty", [](Spec& s) { s.root->path = ""; }, "root.path: required",
     [](Spec& s) { s.root->path = "rootfs"; }},
    {"MountRelative",
     [](Spec& s) { s.mounts = {Mount{"/proc", "proc", "proc", {}, {}, {}}, Mount{"data", "bind", "/d", {"rbind"}, {}, {}}}; },
     "mounts[1].destination: \"data\" is not an absolute path",
     [](Spec& s) { s.mounts[1].destination = "/data"; }},
    {"IdmappedMount",
     [](Spec& s) { s.mounts = {Mount{"/data", "bind", "/d", {"rbind"}, {IdMapping{0, 1000, 1}}, {}}}; },
     "mounts[0]: idmapped mounts", [](Spec& s) { s.mounts[0].uidMappings.clear(); }},
    {"UnknownNamespace", [](Spec& s) { addNs(s, "foo"); },
     "linux.namespaces[5].type: unknown namespace type \"foo\"; use one of pid, network, "
     "mount, ipc, uts, user, cgroup, time",
     [](Spec& s) { s.linux->namespaces[5].type = "cgroup"; }},
    {"DuplicateNamespace", [](Spec& s) { addNs(s, "pid", "/proc/1/ns/pid"); },
     "linux.namespaces[5].type: duplicate namespace \"pid\" (also at linux.namespaces[0])",
     [](Spec& s) { s.linux->namespaces.pop_back(); }},
    {"NamespacePathRelative", [](Spec& s) { s.linux->namespaces[1].path = "net"; },
     "linux.namespaces[1].path: \"net\" is not an absolute path",
     [](Spec& s) { s.linux->namespaces[1].path = "/run/netns/x"; }},
    {"UserNsWithoutMappings", [](Spec& s) { addNs(s, "user"); },
     "linux.uidMappings: required when a new user namespace is requested",
     [](Spec& s) {
       s.linux->uidMappings = {IdMapping{0, 100000, 65536}};
       s.linux->gidMappings = {IdMapping{0, 100000, 65536}};
     }},
    {"UserNsWithoutGidMappings",
     [](Spec& s) {
       addNs(s, "user");
       s.linux->uidMappings = {IdMapping{0, 100000, 65536}};
     },
     "linux.gidMappings: required",
     [](Spec& s) { s.linux->gidMappings = {IdMapping{0, 100000, 65536}}; }},
    {"MappingsWithoutUserNs",
     [](Spec& s) { s.linux->uidMappings = {IdMapping{0, 1000, 1}}; },
     "linux.uidMappings: mappings need a new user namespace",
     [](Spec& s) {
       addNs(s, "user");
       s.linux->gidMappings = {IdMapping{0, 1000, 1}};
     }},
    {"MappingsWithJoinedUserNs",
     [](Spec& s) {
       addNs(s, "user", "/proc/1/ns/user");
       s.linux->uidMappings = {IdMapping{0, 1000, 1}};
     },
     "a joined user namespace keeps its own mappings",
     [](Spec& s) { s.linux->uidMappings.clear(); }},
    {"MappingSizeZero",
     [](Spec& s) {
       addNs(s, "user");
       s.linux->uidMappings = {IdMapping{0, 1000, 0}};
       s.linux->gidMappings = {IdMapping{0, 1000, 1}};
     },
     "linux.uidMappings[0].size: must be greater than zero",
     [](Spec& s) { s.linux->uidMappings[0].size = 1; }},
    {"RlimitUnknown", [](Spec& s) { s.process->rlimits = {Rlimit{"RLIMIT_FOO", 1, 1}}; },
     "process.rlimits[0].type: unknown rlimit type \"RLIMIT_FOO\"; use one of RLIMIT_AS",
     [](Spec& s) { s.process->rlimits[0].type = "RLIMIT_SIGPENDING"; }},
    {"RlimitSoftAboveHard",
     [](Spec& s) { s.process->rlimits = {Rlimit{"RLIMIT_NOFILE", 1024, 4096}}; },
     "process.rlimits[0]: soft limit 4096 is above hard limit 1024",
     [](Spec& s) { s.process->rlimits[0].hard = 4096; }},
    {"RlimitDuplicate",
     [](Spec& s) {
       s.process->rlimits = {Rlimit{"RLIMIT_CORE", 0, 0}, Rlimit{"RLIMIT_CORE", 1, 1}};
     },
     "process.rlimits[1].type: duplicate rlimit \"RLIMIT_CORE\"",
     [](Spec& s) { s.process->rlimits.pop_back(); }},
    {"OomScoreAdjRange", [](Spec& s) { s.process->oomScoreAdj = 1001; },
     "process.oomScoreAdj: 1001 is out of range", [](Spec& s) { s.process->oomScoreAdj = -1000; }},
    {"HookPathRelative",
     [](Spec& s) {
       s.hooks.emplace();
       s.hooks->poststop = {Hook{"/bin/ok", {}, {}, {}}, Hook{"cleanup", {}, {}, {}}};
     },
     "hooks.poststop[1].path: \"cleanup\" is not an absolute path",
     [](Spec& s) { s.hooks->poststop[1].path = "/usr/bin/cleanup"; }},
    {"HookTimeoutZero",
     [](Spec& s) {
       s.hooks.emplace();
       s.hooks->createRuntime = {Hook{"/bin/hook", {}, {}, 0}};
     },
     "hooks.createRuntime[0].timeout: 0 must be greater than zero",
     [](Spec& s) { s.hooks->createRuntime[0].timeout = 1; }},
    {"DeviceType",
     [](Spec& s) { s.linux->devices = {Device{"x", "/dev/foo", 1, 2, {}, {}, {}}}; },
     "linux.devices[0].type: unknown device type \"x\"",
     [](Spec& s) { s.linux->devices[0].type = "u"; }},
    {"DevicePathRelative",
     [](Spec& s) { s.linux->devices = {Device{"p", "dev/fifo", 0, 0, {}, {}, {}}}; },
     "linux.devices[0].path: \"dev/fifo\" is not an absolute path",
     [](Spec& s) { s.linux->devices[0].path = "/dev/fifo"; }},
    {"HostnameWithoutUts",
     [](Spec& s) {
       removeNs(s, "uts");
       s.hostname = "web";
     },
     "hostname: setting \"web\" needs a private UTS namespace",
     [](Spec& s) { addNs(s, "uts", "/run/berth/ns/pod/uts"); }},
    {"DomainnameWithoutUts",
     [](Spec& s) {
       removeNs(s, "uts");
       s.domainname = "example.org";
     },
     "domainname: setting \"example.org\" needs a private UTS namespace",
     [](Spec& s) { addNs(s, "uts"); }},
    {"NetSysctlWithoutNetns",
     [](Spec& s) {
       removeNs(s, "network");
       s.linux->sysctl["net.ipv4.ip_forward"] = "1";
     },
     "linux.sysctl[\"net.ipv4.ip_forward\"]: needs a private network namespace",
     [](Spec& s) { addNs(s, "network"); }},
    {"SlashSysctlWithoutNetns",
     [](Spec& s) {
       removeNs(s, "network");
       s.linux->sysctl["net/core/somaxconn"] = "1024";
     },
     "needs a private network namespace", [](Spec& s) { addNs(s, "network", "/run/netns/a"); }},
    {"IpcSysctlWithoutIpcns",
     [](Spec& s) {
       removeNs(s, "ipc");
       s.linux->sysctl["kernel.shmmax"] = "1";
       s.linux->sysctl["fs.mqueue.msg_max"] = "10";
     },
     "needs a private IPC namespace", [](Spec& s) { addNs(s, "ipc"); }},
    {"UtsSysctlWithoutUtsns",
     [](Spec& s) {
       removeNs(s, "uts");
       s.linux->sysctl["kernel.domainname"] = "example.org";
     },
     "linux.sysctl[\"kernel.domainname\"]: needs a private UTS namespace",
     [](Spec& s) { addNs(s, "uts"); }},
    {"HostnameSysctlConflicts",
     [](Spec& s) {
       s.hostname = "a";
       s.linux->sysctl["kernel.hostname"] = "b";
     },
     "conflicts with the \"hostname\" field", [](Spec& s) { s.hostname.clear(); }},
    {"NonNamespacedSysctl", [](Spec& s) { s.linux->sysctl["vm.swappiness"] = "10"; },
     "linux.sysctl[\"vm.swappiness\"]: \"vm.swappiness\" is not a namespaced sysctl",
     [](Spec& s) { s.linux->sysctl.erase("vm.swappiness"); }},
    {"RootfsPropagation", [](Spec& s) { s.linux->rootfsPropagation = "recursive"; },
     "linux.rootfsPropagation: unknown propagation \"recursive\"; use one of shared, slave",
     [](Spec& s) { s.linux->rootfsPropagation = "runbindable"; }},
    {"DeviceRuleType",
     [](Spec& s) {
       s.linux->resources.emplace();
       s.linux->resources->devices = {DeviceCgroup{false, "a", {}, {}, "rwm"},
                                      DeviceCgroup{true, "p", 1, 3, "rw"}};
     },
     "linux.resources.devices[1].type: unknown device rule type \"p\"",
     [](Spec& s) { s.linux->resources->devices[1].type = "c"; }},
    {"DeviceRuleAccess",
     [](Spec& s) {
       s.linux->resources.emplace();
       s.linux->resources->devices = {DeviceCgroup{true, "c", 1, 3, "rwx"}};
     },
     "linux.resources.devices[0].access: invalid character 'x' in \"rwx\"",
     [](Spec& s) { s.linux->resources->devices[0].access = "m"; }},
    {"MaskedPathRelative", [](Spec& s) { s.linux->maskedPaths = {"proc/kcore"}; },
     "linux.maskedPaths[0]: \"proc/kcore\" is not an absolute path",
     [](Spec& s) { s.linux->maskedPaths = {"/proc/kcore"}; }},
};

INSTANTIATE_TEST_SUITE_P(Rules, ValidateSpecRuleTest, ::testing::ValuesIn(kRuleCases),
                         [](const ::testing::TestParamInfo<RuleCase>& info) {
                           return std::string(info.param.name);
                         });

TEST(ValidateSpecTest, SpecWithoutLinuxSectionIsValid) {
  Spec spec = minimalSpec();
  spec.linux.reset();
  EXPECT_TRUE(validateSpec(spec).ok());
  spec.hostname = "x";  // no linux section = no UTS namespace
  EXPECT_THAT(validationError(spec), HasSubstr("hostname"));
}

TEST(ValidateProcessTest, ChecksArgsCwdAndRlimits) {
  Process p;
  p.cwd = "/";
  EXPECT_THAT(std::string(validateProcess(p).message()), HasSubstr("process.args"));
  p.args = {"ls"};
  EXPECT_TRUE(validateProcess(p).ok());
  p.rlimits = {Rlimit{"RLIMIT_NPROC", 10, 20}};
  EXPECT_THAT(std::string(validateProcess(p).message()), HasSubstr("soft limit 20"));
  p.rlimits[0].soft = 10;
  p.cwd = "relative";
  EXPECT_THAT(std::string(validateProcess(p).message()), HasSubstr("process.cwd"));
}

}  // namespace
}  // namespace berth::oci
