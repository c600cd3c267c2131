// Unit tests for cri/container_spec.h and cri/seccomp_default.h: CRI ContainerConfig +
// PodSandboxConfig + image config -> OCI spec.
#include "cri/container_spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/fs.h"
#include "cri/seccomp_default.h"
#include "runtime/linux/seccomp.h"
#include "tests/unit/cri/container_spec_test_util.h"

namespace berth::cri {
namespace {

namespace v1 = ::runtime::v1;
using namespace testutil;  // NOLINT(build/namespaces): the shared test helpers
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::UnorderedElementsAreArray;

TEST(ContainerSpec, DefaultsForMinimalBusybox) {
  ContainerSpecInput in = minimalInput();
  oci::Spec spec = build(in);
  ASSERT_TRUE(spec.process && spec.linux && spec.root);
  EXPECT_TRUE(oci::validateSpec(spec).ok()) << oci::validateSpec(spec);

  const oci::Process& p = *spec.process;
  EXPECT_THAT(p.args, ElementsAre("sh"));
  EXPECT_THAT(p.env, ElementsAre(kPath, "HOSTNAME=web"));
  EXPECT_EQ(p.cwd, "/");
  EXPECT_FALSE(p.terminal);
  EXPECT_EQ(p.user.uid, 0u);
  EXPECT_EQ(p.user.gid, 0u);
  EXPECT_FALSE(p.noNewPrivileges);
  EXPECT_THAT(p.rlimits, IsEmpty());
  EXPECT_FALSE(p.oomScoreAdj.has_value());
  ASSERT_TRUE(p.capabilities);
  EXPECT_THAT(*p.capabilities->bounding, UnorderedElementsAreArray(defaultCapabilities()));
  EXPECT_EQ(*p.capabilities->effective, *p.capabilities->bounding);
  EXPECT_EQ(*p.capabilities->permitted, *p.capabilities->bounding);
  EXPECT_THAT(*p.capabilities->ambient, IsEmpty());
  EXPECT_THAT(*p.capabilities->inheritable, IsEmpty());
  EXPECT_EQ(defaultCapabilities().size(), 14u);

  EXPECT_EQ(spec.hostname, "");
  EXPECT_EQ(spec.root->path, "/var/lib/berth/c1/rootfs");
  EXPECT_FALSE(spec.root->readonly);
  EXPECT_THAT(namespaces(spec),
              ElementsAre("network=/run/berth/ns/p1/net", "ipc=/run/berth/ns/p1/ipc",
                          "uts=/run/berth/ns/p1/uts", "pid", "mount"));
  EXPECT_THAT(destinations(spec),
              ElementsAre("/proc", "/dev", "/dev/pts", "/dev/mqueue", "/sys", "/sys/fs/cgroup",
                          "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/dev/shm"));
  const oci::Mount* shm = findMount(spec, "/dev/shm");
  ASSERT_NE(shm, nullptr);
  EXPECT_EQ(shm->type, "bind");
  EXPECT_EQ(shm->source, "/run/berth/pods/p1/shm");
  EXPECT_THAT(shm->options, ElementsAre("rbind", "rprivate", "rw"));
  const oci::Mount* resolv = findMount(spec, "/etc/resolv.conf");
  ASSERT_NE(resolv, nullptr);
  EXPECT_EQ(resolv->source, "/run/berth/pods/p1/resolv.conf");
  EXPECT_THAT(resolv->options, ElementsAre("rbind", "rprivate", "rw"));
  EXPECT_THAT(findMount(spec, "/sys")->options, Contains("ro"));

  EXPECT_THAT(spec.linux->maskedPaths, Contains("/proc/kcore"));
  EXPECT_THAT(spec.linux->readonlyPaths, Contains("/proc/sys"));
  EXPECT_FALSE(spec.linux->seccomp.has_value());
  EXPECT_EQ(spec.linux->cgroupsPath, "/kubepods/pod1/c1");
  EXPECT_THAT(spec.linux->devices, IsEmpty());
  ASSERT_TRUE(spec.linux->resources);
  ASSERT_EQ(spec.linux->resources->devices.size(), 1u);
  EXPECT_FALSE(spec.linux->resources->devices[0].allow);
  EXPECT_FALSE(spec.linux->resources->cpu.has_value());
  EXPECT_FALSE(spec.linux->resources->memory.has_value());
  EXPECT_EQ(spec.linux->rootfsPropagation, "");

  EXPECT_EQ(spec.annotations.at("io.kubernetes.cri.container-type"), "container");
  EXPECT_EQ(spec.annotations.at("io.kubernetes.cri.sandbox-id"), "p1");
  EXPECT_EQ(spec.annotations.at("io.kubernetes.cri.sandbox-name"), "web");
  EXPECT_EQ(spec.annotations.at("io.kubernetes.cri.sandbox-namespace"), "default");
  EXPECT_EQ(spec.annotations.at("io.kubernetes.cri.sandbox-uid"), "uid-1");
  EXPECT_EQ(spec.annotations.at("io.kubernetes.cri.container-name"), "app");
  EXPECT_EQ(spec.annotations.at("io.kubernetes.cri.image-name"),
            "docker.io/library/busybox:1.36");

  // The serialised spec parses back to the same JSON.
  auto json = oci::toJson(spec);
  auto back = oci::parseSpec(json.dump());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(oci::toJson(*back), json);
}

struct CommandCase {
  const char* name;
  std::vector<std::string> entrypoint, cmd, command, args, want;
};

TEST(ContainerSpec, CommandAndArgsMerging) {
  const std::vector<CommandCase> cases = {
      {"image only", {"/entry"}, {"serve", "-v"}, {}, {}, {"/entry", "serve", "-v"}},
      {"command replaces both", {"/entry"}, {"serve"}, {"/bin/echo"}, {}, {"/bin/echo"}},
      {"command and args", {"/entry"}, {"serve"}, {"/bin/echo"}, {"hi"}, {"/bin/echo", "hi"}},
      {"args replace cmd", {"/entry"}, {"serve"}, {}, {"run", "x"}, {"/entry", "run", "x"}},
      {"args without entrypoint", {}, {"sh"}, {}, {"ls", "/"}, {"ls", "/"}},
  };
  for (const CommandCase& c : cases) {
    SCOPED_TRACE(c.name);
    ContainerSpecInput in = minimalInput();
    in.image.config.entrypoint = c.entrypoint;
    in.image.config.cmd = c.cmd;
    for (const auto& s : c.command) in.config.add_command(s);
    for (const auto& s : c.args) in.config.add_args(s);
    EXPECT_EQ(build(in).process->args, c.want);
  }
  ContainerSpecInput in = minimalInput();
  in.image.config.cmd.clear();
  auto spec = buildContainerSpec(in);
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(spec.status().message()), HasSubstr("no command specified"));
}

TEST(ContainerSpec, EnvironmentWorkingDirAndTty) {
  ContainerSpecInput in = minimalInput();
  in.image.config.env = {"PATH=/app/bin:/bin", "FOO=image", "BAR=2"};
  in.image.config.workingDir = "/srv";
  auto add = [&](const std::string& k, const std::string& v) {
    auto* kv = in.config.add_envs();
    kv->set_key(k);
    kv->set_value(v);
  };
  add("FOO", "cri");
  add("NEW", "a=b");
  in.config.set_tty(true);
  oci::Spec spec = build(in);
  EXPECT_THAT(spec.process->env, ElementsAre("PATH=/app/bin:/bin", "HOSTNAME=web", "TERM=xterm",
                                             "FOO=cri", "BAR=2", "NEW=a=b"));
  EXPECT_TRUE(spec.process->terminal);
  EXPECT_EQ(spec.process->cwd, "/srv");

  in.config.set_working_dir("/work");
  EXPECT_EQ(build(in).process->cwd, "/work");
  in.config.set_working_dir("relative");
  auto bad = buildContainerSpec(in);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("ContainerConfig.working_dir"));

  ContainerSpecInput in2 = minimalInput();
  in2.config.add_envs()->set_key("");
  auto empty_key = buildContainerSpec(in2);
  ASSERT_FALSE(empty_key.ok());
  EXPECT_THAT(std::string(empty_key.status().message()), HasSubstr("ContainerConfig.envs[0].key"));
}

class UserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-spec-user-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    rootfs_ = tmpl;
    ASSERT_TRUE(fs::mkdirAll(rootfs_ + "/etc").ok());
    ASSERT_TRUE(fs::writeFileAtomic(rootfs_ + "/etc/passwd",
                                    "root:x:0:0:root:/root:/bin/sh\n"
                                    "app:x:1000:1000:app:/home/app:/bin/sh\n")
                    .ok());
    ASSERT_TRUE(fs::writeFileAtomic(rootfs_ + "/etc/group",
                                    "root:x:0:\napp:x:1000:\nextra:x:2000:app\nwheel:x:10:root\n")
                    .ok());
    image_.user = "app";
  }
  void TearDown() override { (void)fs::removeAll(rootfs_); }

  StatusOr<image::ResolvedUser> resolve(const v1::ContainerConfig& config) {
    return resolveContainerUser(config, image_, rootfs_, "busybox");
  }

  std::string rootfs_;
  image::ContainerDefaults image_;
};

TEST_F(UserTest, ImageUserResolvedThroughRootfs) {
  v1::ContainerConfig config;
  auto user = resolve(config);
  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_EQ(user->uid, 1000u);
  EXPECT_EQ(user->gid, 1000u);
  EXPECT_THAT(user->additionalGids, ElementsAre(1000u, 2000u));

  ContainerSpecInput in = minimalInput();
  in.user = *user;
  oci::Spec spec = build(in);
  EXPECT_EQ(spec.process->user.uid, 1000u);
  EXPECT_EQ(spec.process->user.gid, 1000u);
  EXPECT_THAT(spec.process->user.additionalGids, ElementsAre(1000u, 2000u));
}

TEST_F(UserTest, RunAsOverrides) {
  struct Case {
    const char* name;
    std::optional<int64_t> uid;
    std::string username;
    std::optional<int64_t> gid;
    std::vector<int64_t> supplemental;
    bool strict;
    uint32_t want_uid, want_gid;
    std::vector<uint32_t> want_groups;
  };
  const std::vector<Case> cases = {
      {"run_as_user unknown uid", 1234, "", {}, {}, false, 1234, 0, {0}},
      {"run_as_user known uid", 1000, "", {}, {}, false, 1000, 1000, {1000, 2000}},
      {"run_as_user root", 0, "", {}, {}, false, 0, 0, {0, 10}},
      {"run_as_user wins over username", 1234, "app", {}, {}, false, 1234, 0, {0}},
      {"username + group", {}, "app", 3000, {}, false, 1000, 3000, {3000, 2000}},
      {"supplemental merge", 1000, "", {}, {5, 2000}, false, 1000, 1000, {1000, 2000, 5}},
      {"supplemental strict", 1000, "", {}, {5, 2000}, true, 1000, 1000, {1000, 5, 2000}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::ContainerConfig config;
    auto* s = config.mutable_linux()->mutable_security_context();
    if (c.uid) s->mutable_run_as_user()->set_value(*c.uid);
    s->set_run_as_username(c.username);
    if (c.gid) s->mutable_run_as_group()->set_value(*c.gid);
    for (int64_t g : c.supplemental) s->add_supplemental_groups(g);
    if (c.strict) s->set_supplemental_groups_policy(v1::Strict);
    auto user = resolve(config);
    ASSERT_TRUE(user.ok()) << user.status();
    EXPECT_EQ(user->uid, c.want_uid);
    EXPECT_EQ(user->gid, c.want_gid);
    EXPECT_EQ(user->additionalGids, c.want_groups);
  }
}

TEST_F(UserTest, Errors) {
  v1::ContainerConfig config;
  auto* s = config.mutable_linux()->mutable_security_context();
  s->mutable_run_as_group()->set_value(5);
  auto r = resolve(config);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("ContainerConfig.linux.security_context.run_as_group: set without "
                        "run_as_user or run_as_username"));

  s->clear_run_as_group();
  s->set_run_as_username("nobody-here");
  r = resolve(config);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);

  s->set_run_as_username("");
  s->mutable_run_as_user()->set_value(-3);
  r = resolve(config);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("run_as_user.value: -3"));
}

struct CapsCase {
  const char* name;
  std::vector<std::string> add, drop;
  std::vector<std::string> must_have, must_lack;
  size_t want_size;
};

TEST(ContainerSpec, CapabilitiesAddDropAll) {
  const size_t all = allCapabilities().size();
  const std::vector<CapsCase> cases = {
      {"add short name", {"NET_ADMIN"}, {}, {"CAP_NET_ADMIN", "CAP_CHOWN"}, {}, 15},
      {"add prefixed lower case", {"cap_sys_time"}, {}, {"CAP_SYS_TIME"}, {}, 15},
      {"add existing", {"KILL"}, {}, {"CAP_KILL"}, {}, 14},
      {"drop", {}, {"KILL", "cap_chown"}, {"CAP_SETUID"}, {"CAP_KILL", "CAP_CHOWN"}, 12},
      {"add ALL", {"ALL"}, {}, {"CAP_SYS_ADMIN", "CAP_BPF"}, {}, all},
      {"add ALL drop one", {"all"}, {"CHOWN"}, {"CAP_SYS_ADMIN"}, {"CAP_CHOWN"}, all - 1},
      {"drop ALL add one", {"NET_BIND_SERVICE"}, {"ALL"}, {"CAP_NET_BIND_SERVICE"},
       {"CAP_CHOWN"}, 1},
      {"drop ALL", {}, {"ALL"}, {}, {"CAP_KILL"}, 0},
  };
  for (const CapsCase& c : cases) {
    SCOPED_TRACE(c.name);
    ContainerSpecInput in = minimalInput();
    auto* caps = sc(in)->mutable_capabilities();
    for (const auto& a : c.add) caps->add_add_capabilities(a);
    for (const auto& d : c.drop) caps->add_drop_capabilities(d);
    oci::Spec spec = build(in);
    const auto& bounding = *spec.process->capabilities->bounding;
    EXPECT_EQ(bounding.size(), c.want_size);
    for (const auto& m : c.must_have) EXPECT_THAT(bounding, Contains(m));
    for (const auto& m : c.must_lack) EXPECT_THAT(bounding, Not(Contains(m)));
    EXPECT_EQ(*spec.process->capabilities->effective, bounding);
  }

  ContainerSpecInput in = minimalInput();
  auto* caps = sc(in)->mutable_capabilities();
  caps->add_add_capabilities("NET_ADMIN");
  caps->add_add_capabilities("SYS_TIME");
  caps->add_add_capabilities("FOO");
  auto bad = buildContainerSpec(in);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("ContainerConfig.linux.security_context.capabilities."
                        "add_capabilities[2]: unknown capability \"CAP_FOO\""));

  ContainerSpecInput amb = minimalInput();
  sc(amb)->mutable_capabilities()->add_add_ambient_capabilities("NET_RAW");
  oci::Spec spec = build(amb);
  EXPECT_THAT(*spec.process->capabilities->ambient, ElementsAre("CAP_NET_RAW"));
  EXPECT_THAT(*spec.process->capabilities->inheritable, ElementsAre("CAP_NET_RAW"));
}

TEST(ContainerSpec, Privileged) {
  ContainerSpecInput in = minimalInput();
  sc(in)->set_privileged(true);
  sc(in)->mutable_seccomp()->set_profile_type(v1::SecurityProfile::RuntimeDefault);
  in.cgroup_v2 = true;
  auto refused = buildContainerSpec(in);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("ContainerConfig.linux.security_context.privileged"));

  in.sandbox_config.mutable_linux()->mutable_security_context()->set_privileged(true);
  oci::Spec spec = build(in);
  EXPECT_THAT(*spec.process->capabilities->bounding, ElementsAreArray(allCapabilities()));
  EXPECT_THAT(spec.linux->maskedPaths, IsEmpty());
  EXPECT_THAT(spec.linux->readonlyPaths, IsEmpty());
  EXPECT_FALSE(spec.linux->seccomp.has_value());
  EXPECT_THAT(findMount(spec, "/sys")->options, Contains("rw"));
  EXPECT_THAT(findMount(spec, "/sys")->options, Not(Contains("ro")));
  EXPECT_THAT(findMount(spec, "/sys/fs/cgroup")->options, Not(Contains("ro")));
  ASSERT_EQ(spec.linux->resources->devices.size(), 1u);
  EXPECT_TRUE(spec.linux->resources->devices[0].allow);
  EXPECT_EQ(spec.linux->resources->devices[0].access, "rwm");
  bool has_null = false;
  for (const oci::Device& d : spec.linux->devices) {
    if (d.path == "/dev/null") has_null = d.type == "c" && d.major == 1 && d.minor == 3;
    EXPECT_NE(d.path, "/dev/ptmx");
    EXPECT_NE(d.path, "/dev/console");
  }
  EXPECT_TRUE(has_null);
  EXPECT_THAT(namespaces(spec), Not(Contains("cgroup")));  // no cgroupns when privileged
}

TEST(ContainerSpec, ReadonlyRootfsAndNoNewPrivs) {
  ContainerSpecInput in = minimalInput();
  sc(in)->set_readonly_rootfs(true);
  sc(in)->set_no_new_privs(true);
  oci::Spec spec = build(in);
  EXPECT_TRUE(spec.root->readonly);
  EXPECT_TRUE(spec.process->noNewPrivileges);
  for (const char* f : {"/etc/hosts", "/etc/hostname", "/etc/resolv.conf"}) {
    EXPECT_THAT(findMount(spec, f)->options, Contains("ro")) << f;
  }
  EXPECT_THAT(findMount(spec, "/dev/shm")->options, Contains("rw"));
}

TEST(ContainerSpec, MaskedAndReadonlyPathsFromCri) {
  ContainerSpecInput in = minimalInput();
  sc(in)->add_masked_paths("/proc/secret");
  sc(in)->add_readonly_paths("/proc/ro");
  oci::Spec spec = build(in);
  EXPECT_THAT(spec.linux->maskedPaths, ElementsAre("/proc/secret"));
  EXPECT_THAT(spec.linux->readonlyPaths, ElementsAre("/proc/ro"));
}

TEST(ContainerSpec, ResourcesMapping) {
  ContainerSpecInput in = minimalInput();
  auto* r = in.config.mutable_linux()->mutable_resources();
  r->set_cpu_shares(512);
  r->set_cpu_quota(50000);
  r->set_cpu_period(100000);
  r->set_memory_limit_in_bytes(64 << 20);
  r->set_cpuset_cpus("0-1");
  r->set_cpuset_mems("0");
  r->set_oom_score_adj(900);
  auto* h = r->add_hugepage_limits();
  h->set_page_size("2MB");
  h->set_limit(4 << 20);
  (*r->mutable_unified())["memory.high"] = "50000000";
  oci::Spec spec = build(in);
  const oci::Resources& res = *spec.linux->resources;
  ASSERT_TRUE(res.cpu);
  EXPECT_EQ(res.cpu->shares, 512u);
  EXPECT_EQ(res.cpu->quota, 50000);
  EXPECT_EQ(res.cpu->period, 100000u);
  EXPECT_EQ(res.cpu->cpus, "0-1");
  EXPECT_EQ(res.cpu->mems, "0");
  ASSERT_TRUE(res.memory);
  EXPECT_EQ(res.memory->limit, 64 << 20);
  EXPECT_EQ(res.memory->swap, 64 << 20);  // no swap beyond the limit
  ASSERT_EQ(res.hugepageLimits.size(), 1u);
  EXPECT_EQ(res.hugepageLimits[0].pageSize, "2MB");
  EXPECT_EQ(res.hugepageLimits[0].limit, 4u << 20);
  EXPECT_EQ(res.unified.at("memory.high"), "50000000");
  EXPECT_EQ(spec.process->oomScoreAdj, 900);

  r->set_memory_swap_limit_in_bytes(128 << 20);
  EXPECT_EQ(build(in).linux->resources->memory->swap, 128 << 20);
  in.swap_available = false;
  EXPECT_FALSE(build(in).linux->resources->memory->swap.has_value());

  // oom_score_adj is raised to what berthd itself may set.
  ContainerSpecInput oom = minimalInput();
  oom.config.mutable_linux()->mutable_resources()->set_oom_score_adj(-998);
  oom.min_oom_score_adj = -500;
  EXPECT_EQ(build(oom).process->oomScoreAdj, -500);

  struct ErrorCase {
    std::function<void(v1::LinuxContainerResources*)> edit;
    std::string message;
  };
  for (const ErrorCase& e : std::vector<ErrorCase>{
           {[](auto* x) { x->set_cpu_shares(-1); }, "resources.cpu_shares"},
           {[](auto* x) { x->set_cpu_quota(-5); }, "resources.cpu_quota: -5"},
           {[](auto* x) { x->set_oom_score_adj(1001); }, "resources.oom_score_adj: 1001"},
           {[](auto* x) { x->add_hugepage_limits()->set_page_size("2M"); },
            "resources.hugepage_limits[0].page_size: \"2M\""},
           {[](auto* x) { (*x->mutable_unified())["../x"] = "1"; }, "resources.unified"}}) {
    ContainerSpecInput bad = minimalInput();
    e.edit(bad.config.mutable_linux()->mutable_resources());
    auto res2 = buildContainerSpec(bad);
    ASSERT_FALSE(res2.ok()) << e.message;
    EXPECT_EQ(res2.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(res2.status().message()),
                HasSubstr("ContainerConfig.linux." + e.message));
  }
}

class SeccompTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-spec-seccomp-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { (void)fs::removeAll(dir_); }
  std::string dir_;
};

bool allows(const oci::Seccomp& p, const std::string& name) {
  for (const auto& rule : p.syscalls) {
    if (rule.action == "SCMP_ACT_ALLOW" &&
        std::find(rule.names.begin(), rule.names.end(), name) != rule.names.end()) {
      return true;
    }
  }
  return false;
}

TEST_F(SeccompTest, RuntimeDefault) {
  ContainerSpecInput in = minimalInput();
  sc(in)->mutable_seccomp()->set_profile_type(v1::SecurityProfile::RuntimeDefault);
  oci::Spec spec = build(in);
  ASSERT_TRUE(spec.linux->seccomp);
  const oci::Seccomp& p = *spec.linux->seccomp;
  EXPECT_EQ(p.defaultAction, "SCMP_ACT_ERRNO");
  EXPECT_EQ(p.defaultErrnoRet, 1u);
  for (const char* ok : {"read", "write", "execve", "openat", "futex", "socket", "chroot",
                         "personality", "clone", "ptrace"}) {
    EXPECT_TRUE(allows(p, ok)) << ok;
  }
  for (const char* refused : {"mount", "umount2", "unshare", "setns", "reboot", "bpf",
                              "init_module", "kexec_load", "keyctl", "settimeofday",
                              "open_by_handle_at"}) {
    EXPECT_FALSE(allows(p, refused)) << refused;
  }
  // clone is limited to flags without namespaces; clone3 answers ENOSYS.
  bool clone3_enosys = false;
  for (const auto& rule : p.syscalls) {
    if (rule.names == std::vector<std::string>{"clone"}) {
      ASSERT_EQ(rule.args.size(), 1u);
      EXPECT_EQ(rule.args[0].op, "SCMP_CMP_MASKED_EQ");
      EXPECT_EQ(rule.args[0].value, 0x7E020000u);
      EXPECT_EQ(rule.args[0].valueTwo, 0u);
    }
    if (rule.names == std::vector<std::string>{"clone3"}) {
      clone3_enosys = rule.action == "SCMP_ACT_ERRNO" && rule.errnoRet == 38u;
    }
  }
  EXPECT_TRUE(clone3_enosys);
  // The runtime's own seccomp code accepts and compiles the profile.
  EXPECT_TRUE(seccomp::validateProfile(p).ok()) << seccomp::validateProfile(p);
  auto filter = seccomp::buildFilter(p);
  EXPECT_TRUE(filter.ok()) << filter.status();

  // Capabilities open their syscalls.
  sc(in)->mutable_capabilities()->add_add_capabilities("SYS_ADMIN");
  sc(in)->mutable_capabilities()->add_add_capabilities("SYS_TIME");
  sc(in)->mutable_capabilities()->add_drop_capabilities("SYS_CHROOT");
  oci::Spec admin = build(in);
  EXPECT_TRUE(allows(*admin.linux->seccomp, "mount"));
  EXPECT_TRUE(allows(*admin.linux->seccomp, "clone3"));
  EXPECT_TRUE(allows(*admin.linux->seccomp, "settimeofday"));
  EXPECT_FALSE(allows(*admin.linux->seccomp, "chroot"));

  // The deprecated string form.
  ContainerSpecInput legacy = minimalInput();
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  sc(legacy)->set_seccomp_profile_path("runtime/default");
#pragma GCC diagnostic pop
  EXPECT_TRUE(build(legacy).linux->seccomp.has_value());
}

TEST_F(SeccompTest, UnconfinedAndLocalhost) {
  ContainerSpecInput in = minimalInput();
  sc(in)->mutable_seccomp()->set_profile_type(v1::SecurityProfile::Unconfined);
  EXPECT_FALSE(build(in).linux->seccomp.has_value());

  const std::string path = dir_ + "/profile.json";
  ASSERT_TRUE(fs::writeFileAtomic(path, R"({"defaultAction":"SCMP_ACT_ALLOW",
      "architectures":["SCMP_ARCH_X86_64"],
      "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]})")
                  .ok());
  sc(in)->mutable_seccomp()->set_profile_type(v1::SecurityProfile::Localhost);
  sc(in)->mutable_seccomp()->set_localhost_ref(path);
  oci::Spec spec = build(in);
  ASSERT_TRUE(spec.linux->seccomp);
  EXPECT_EQ(spec.linux->seccomp->defaultAction, "SCMP_ACT_ALLOW");
  ASSERT_EQ(spec.linux->seccomp->syscalls.size(), 1u);
  EXPECT_THAT(spec.linux->seccomp->syscalls[0].names, ElementsAre("mkdir"));
  EXPECT_EQ(spec.linux->seccomp->syscalls[0].errnoRet, 13u);

  const std::string field = "ContainerConfig.linux.security_context.seccomp.localhost_ref";
  struct ErrorCase {
    std::string ref, content;
    absl::StatusCode code;
    std::string message;
  };
  for (const ErrorCase& e : std::vector<ErrorCase>{
           {dir_ + "/missing.json", "", absl::StatusCode::kNotFound, field},
           {"profile.json", "", absl::StatusCode::kInvalidArgument, "must be absolute"},
           {dir_ + "/bad.json", "{not json", absl::StatusCode::kInvalidArgument,
            "is not a JSON object"},
           {dir_ + "/nodefault.json", "{\"syscalls\":[]}", absl::StatusCode::kInvalidArgument,
            "has no \"defaultAction\""},
           {dir_ + "/type.json", "{\"defaultAction\":7}", absl::StatusCode::kInvalidArgument,
            "defaultAction"}}) {
    SCOPED_TRACE(e.ref);
    if (!e.content.empty()) {
      ASSERT_TRUE(fs::writeFileAtomic(e.ref, e.content).ok());
    }
    ContainerSpecInput bad = minimalInput();
    sc(bad)->mutable_seccomp()->set_profile_type(v1::SecurityProfile::Localhost);
    sc(bad)->mutable_seccomp()->set_localhost_ref(e.ref);
    auto r = buildContainerSpec(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), e.code) << r.status();
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(field));
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(e.message));
  }
}

struct NamespaceCase {
  const char* name;
  v1::NamespaceMode network, ipc, pid;
  std::string pod_pid;
  bool cgroup_v2;
  std::vector<std::string> want;
};

TEST(ContainerSpec, NamespacesPerMode) {
  const std::string net = "network=/run/berth/ns/p1/net", ipc = "ipc=/run/berth/ns/p1/ipc",
                    uts = "uts=/run/berth/ns/p1/uts";
  const std::vector<NamespaceCase> cases = {
      {"pod net/ipc, own pid", v1::POD, v1::POD, v1::CONTAINER, "", false,
       {net, ipc, uts, "pid", "mount"}},
      {"shared pid", v1::POD, v1::POD, v1::POD, "/proc/42/ns/pid", false,
       {net, ipc, uts, "pid=/proc/42/ns/pid", "mount"}},
      {"host pid", v1::POD, v1::POD, v1::NODE, "", false, {net, ipc, uts, "mount"}},
      {"host network", v1::NODE, v1::POD, v1::CONTAINER, "", false, {ipc, "pid", "mount"}},
      {"host ipc", v1::POD, v1::NODE, v1::CONTAINER, "", false, {net, uts, "pid", "mount"}},
      {"everything host", v1::NODE, v1::NODE, v1::NODE, "", false, {"mount"}},
      {"cgroup v2", v1::POD, v1::POD, v1::CONTAINER, "", true,
       {net, ipc, uts, "pid", "mount", "cgroup"}},
  };
  for (const NamespaceCase& c : cases) {
    SCOPED_TRACE(c.name);
    ContainerSpecInput in = minimalInput();
    auto* pod_ns = in.sandbox_config.mutable_linux()->mutable_security_context()
                       ->mutable_namespace_options();
    pod_ns->set_network(c.network);
    pod_ns->set_ipc(c.ipc);
    pod_ns->set_pid(c.pid);
    auto* ns = sc(in)->mutable_namespace_options();
    ns->set_network(c.network);
    ns->set_ipc(c.ipc);
    ns->set_pid(c.pid);
    in.namespaces.pid = c.pod_pid;
    in.cgroup_v2 = c.cgroup_v2;
    oci::Spec spec = build(in);
    EXPECT_EQ(namespaces(spec), c.want);
    if (c.ipc == v1::NODE) {
      EXPECT_EQ(findMount(spec, "/dev/shm")->source, "/dev/shm");
    }
    EXPECT_TRUE(oci::validateSpec(spec).ok()) << oci::validateSpec(spec);
  }

  ContainerSpecInput target = minimalInput();
  sc(target)->mutable_namespace_options()->set_pid(v1::TARGET);
  sc(target)->mutable_namespace_options()->set_target_id("c0");
  auto r = buildContainerSpec(target);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  target.target_pid_namespace = "/proc/77/ns/pid";
  EXPECT_THAT(namespaces(build(target)), Contains("pid=/proc/77/ns/pid"));

  ContainerSpecInput missing = minimalInput();
  sc(missing)->mutable_namespace_options()->set_pid(v1::POD);
  r = buildContainerSpec(missing);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("no pinned PID namespace"));

  ContainerSpecInput no_net = minimalInput();
  no_net.namespaces.network.clear();
  EXPECT_EQ(buildContainerSpec(no_net).status().code(), absl::StatusCode::kFailedPrecondition);

  ContainerSpecInput userns = minimalInput();
  auto* u = userns.sandbox_config.mutable_linux()->mutable_security_context()
                ->mutable_namespace_options()->mutable_userns_options();
  u->set_mode(v1::POD);
  u->add_uids()->set_length(65536);
  EXPECT_EQ(buildContainerSpec(userns).status().code(), absl::StatusCode::kUnimplemented);
  u->set_mode(v1::NODE);
  u->clear_uids();
  EXPECT_TRUE(buildContainerSpec(userns).ok());
}

TEST(ContainerSpec, SysctlsCgroupsAndStopSignal) {
  ContainerSpecInput in = minimalInput();
  (*in.sandbox_config.mutable_linux()->mutable_sysctls())["net.ipv4.ip_unprivileged_port_start"] =
      "0";
  (*in.sandbox_config.mutable_linux()->mutable_sysctls())["kernel.shm_rmid_forced"] = "1";
  oci::Spec spec = build(in);
  EXPECT_EQ(spec.linux->sysctl.at("net.ipv4.ip_unprivileged_port_start"), "0");
  EXPECT_EQ(spec.linux->sysctl.at("kernel.shm_rmid_forced"), "1");
  EXPECT_TRUE(oci::validateSpec(spec).ok()) << oci::validateSpec(spec);

  EXPECT_EQ(containerCgroupsPath("/kubepods/besteffort/pod1", "abc", false),
            "/kubepods/besteffort/pod1/abc");
  EXPECT_EQ(containerCgroupsPath("kubepods/", "abc", false), "/kubepods/abc");
  EXPECT_EQ(containerCgroupsPath("", "abc", false), "/berth/abc");
  EXPECT_EQ(containerCgroupsPath("kubepods-besteffort-pod1.slice", "abc", true),
            "kubepods-besteffort-pod1.slice:berth:abc");
  EXPECT_EQ(containerCgroupsPath("/kubepods.slice/kubepods-pod1.slice", "abc", true),
            "kubepods-pod1.slice:berth:abc");

  v1::ContainerConfig config;
  image::ContainerDefaults img;
  EXPECT_EQ(*containerStopSignal(config, img), 15);
  img.stopSignal = "SIGQUIT";
  EXPECT_EQ(*containerStopSignal(config, img), 3);
  config.set_stop_signal(v1::SIGNAL_SIGUSR1);
  EXPECT_EQ(*containerStopSignal(config, img), 10);
  img.stopSignal = "SIGNOPE";
  config.clear_stop_signal();
  EXPECT_EQ(containerStopSignal(config, img).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ContainerSpec, MissingPodFilesAreLeftOut) {
  ContainerSpecInput in = minimalInput();
  in.files = {};
  oci::Spec spec = build(in);
  EXPECT_EQ(findMount(spec, "/etc/hosts"), nullptr);
  EXPECT_EQ(findMount(spec, "/etc/resolv.conf"), nullptr);
  ASSERT_NE(findMount(spec, "/dev/shm"), nullptr);
  EXPECT_EQ(findMount(spec, "/dev/shm")->type, "tmpfs");  // the default private one
}

}  // namespace
}  // namespace berth::cri