// Isolation set up by the runtime (OCI runtime-spec config-linux.md "Namespaces",
// "User namespace mappings", config.md "Mounts", "Root", "Process", "Hostname",
// config-linux.md "Masked Paths", "Readonly Paths"): each namespace is really new or
// really joined, mounts behave as configured, and the process gets its user, env, cwd,
// umask and rlimits.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/strings.h"
#include "tests/integration/runtime/bundle_fixture.h"

namespace berth::itest {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

class IsolationTest : public RuntimeTest {
 protected:
  // Runs `sh -c script` in a fresh container with the default bundle; expects exit 0.
  std::string shell(const std::string& script) {
    CmdResult r = runArgs({"sh", "-c", script});
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    return r.out;
  }
  void addNamespace(Bundle& b, const std::string& type, const std::string& path = "") {
    Json entry = {{"type", type}};
    if (!path.empty()) entry["path"] = path;
    auto& ns = b.config["linux"]["namespaces"];
    for (auto& e : ns) {
      if (e["type"] == type) {
        e = entry;
        return;
      }
    }
    ns.push_back(entry);
  }
  std::string hostHostname() {
    char buf[256] = {};
    ::gethostname(buf, sizeof buf - 1);
    return buf;
  }
};

TEST_F(IsolationTest, PidNamespaceMakesShellPidOne) {
  EXPECT_EQ(shell("echo $$"), "1\n");
}

TEST_F(IsolationTest, NamespacesDifferFromHost) {
  std::string out = shell(
      "for n in pid net ipc uts mnt; do readlink /proc/self/ns/$n; done");
  std::vector<std::string> inside = split(out, '\n', true);
  ASSERT_EQ(inside.size(), 5u) << out;
  const char* names[] = {"pid", "net", "ipc", "uts", "mnt"};
  for (size_t i = 0; i < 5; ++i) {
    std::string host = nsLink(strCat("/proc/self/ns/", names[i]));
    EXPECT_THAT(inside[i], HasSubstr(strCat(names[i], ":["))) << out;
    EXPECT_NE(inside[i], host) << names[i] << " namespace is the host's";
  }
}

TEST_F(IsolationTest, UtsNamespaceHostname) {
  std::string before = hostHostname();
  bundle().config["hostname"] = "itest-host";
  EXPECT_EQ(shell("hostname"), "itest-host\n");
  EXPECT_EQ(hostHostname(), before) << "the host's hostname changed";
}

TEST_F(IsolationTest, NetworkNamespaceHasOnlyLoopback) {
  std::string out = shell("cat /proc/net/dev");
  std::vector<std::string> ifaces;
  auto lines = split(out, '\n', true);
  for (size_t i = 2; i < lines.size(); ++i) {  // two header lines
    auto colon = lines[i].find(':');
    if (colon != std::string::npos) ifaces.emplace_back(trim(lines[i].substr(0, colon)));
  }
  EXPECT_THAT(ifaces, ElementsAre("lo")) << out;
}

TEST_F(IsolationTest, IpcNamespaceDiffers) {
  std::string inside = shell("readlink /proc/self/ns/ipc");
  EXPECT_THAT(inside, HasSubstr("ipc:["));
  EXPECT_NE(inside, nsLink("/proc/self/ns/ipc") + "\n");
}

TEST_F(IsolationTest, MountNamespaceHidesContainerMounts) {
  bundle().config["mounts"].push_back(
      {{"destination", "/scratch"}, {"type", "tmpfs"}, {"source", "tmpfs"},
       {"options", {"size=1m"}}});
  bundle().setArgs({"sleep", "100"});
  std::string id = newId("mnt");
  pid_t pid = startOrFail(bundle(), id);
  ASSERT_GT(pid, 0);
  auto host_mounts = fs::readFile("/proc/self/mountinfo");
  ASSERT_TRUE(host_mounts.ok());
  EXPECT_THAT(*host_mounts, Not(HasSubstr(bundle().rootfs())))
      << "container mounts leaked into the host mount namespace";
  auto inside = fs::readFile(strCat("/proc/", pid, "/mountinfo"));
  ASSERT_TRUE(inside.ok());
  EXPECT_THAT(*inside, HasSubstr(" /scratch "));
  EXPECT_THAT(*inside, HasSubstr(" /proc "));
}

TEST_F(IsolationTest, CgroupNamespaceShowsRootCgroup) {
  addNamespace(bundle(), "cgroup");
  std::string out = shell("readlink /proc/self/ns/cgroup; cat /proc/self/cgroup");
  auto lines = split(out, '\n', true);
  ASSERT_GE(lines.size(), 2u) << out;
  EXPECT_NE(lines[0], nsLink("/proc/self/ns/cgroup")) << "cgroup namespace is the host's";
  for (size_t i = 1; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i].substr(lines[i].rfind(':')), ":/")
        << "inside a cgroup namespace the container's cgroup is its root: " << out;
  }
}

TEST_F(IsolationTest, JoinsNamespacesByPath) {
  bundle().config["hostname"] = "ns-owner";
  bundle().setArgs({"sleep", "100"});
  std::string a = newId("nsA");
  pid_t pid_a = startOrFail(bundle(), a);
  ASSERT_GT(pid_a, 0);

  Bundle& b = newBundle();
  b.config.erase("hostname");  // the UTS namespace is A's
  for (auto [type, file] : {std::pair{"network", "net"}, {"uts", "uts"}, {"ipc", "ipc"}})
    addNamespace(b, type, strCat("/proc/", pid_a, "/ns/", file));
  b.setArgs({"sh", "-c",
             "readlink /proc/self/ns/net; readlink /proc/self/ns/uts; "
             "readlink /proc/self/ns/ipc; readlink /proc/self/ns/pid; hostname"});
  CmdResult r = run(b, newId("nsB"));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  auto lines = split(r.out, '\n', true);
  ASSERT_EQ(lines.size(), 5u) << r.out;
  EXPECT_EQ(lines[0], nsLink(strCat("/proc/", pid_a, "/ns/net")));
  EXPECT_EQ(lines[1], nsLink(strCat("/proc/", pid_a, "/ns/uts")));
  EXPECT_EQ(lines[2], nsLink(strCat("/proc/", pid_a, "/ns/ipc")));
  EXPECT_NE(lines[3], nsLink(strCat("/proc/", pid_a, "/ns/pid")))
      << "B asked for a new pid namespace";
  EXPECT_EQ(lines[4], "ns-owner");
}

TEST_F(IsolationTest, UserNamespaceWithMappings) {
  addNamespace(bundle(), "user");
  Json mapping = Json::array({{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}});
  bundle().config["linux"]["uidMappings"] = mapping;
  bundle().config["linux"]["gidMappings"] = mapping;
  bundle().setArgs({"sleep", "100"});
  std::string id = newId("userns");
  pid_t pid = startOrFail(bundle(), id);
  ASSERT_GT(pid, 0);
  CmdResult r = exec(id, {"sh", "-c", "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  auto lines = split(r.out, '\n', true);
  ASSERT_EQ(lines.size(), 4u) << r.out;
  EXPECT_EQ(lines[0], "0");
  EXPECT_EQ(lines[1], "0");
  for (int i = 2; i < 4; ++i) {
    auto fields = split(lines[i], ' ', true);
    EXPECT_THAT(fields, ElementsAre("0", "100000", "65536")) << lines[i];
  }
  // Seen from the host, the container's root is the mapped uid.
  auto status = fs::readFile(strCat("/proc/", pid, "/status"));
  ASSERT_TRUE(status.ok());
  EXPECT_THAT(*status, HasSubstr("Uid:\t100000\t100000\t100000\t100000"));
}

TEST_F(IsolationTest, ReadOnlyBindMount) {
  std::string share = tmp() + "/share";
  ASSERT_TRUE(fs::mkdirAll(share).ok());
  ASSERT_TRUE(fs::writeFileAtomic(share + "/hostfile", "from-host\n").ok());
  bundle().config["mounts"].push_back({{"destination", "/mnt/share"},
                                       {"type", "bind"},
                                       {"source", share},
                                       {"options", {"rbind", "ro"}}});
  std::string out = shell(
      "cat /mnt/share/hostfile; if touch /mnt/share/new 2>/dev/null; then echo WROTE; "
      "else echo denied; fi");
  EXPECT_EQ(out, "from-host\ndenied\n");
  EXPECT_FALSE(fs::exists(share + "/new"));
}

TEST_F(IsolationTest, ReadWriteBindMountWritesReachHost) {
  std::string share = tmp() + "/rw";
  ASSERT_TRUE(fs::mkdirAll(share).ok());
  bundle().config["mounts"].push_back({{"destination", "/data"},
                                       {"type", "bind"},
                                       {"source", share},
                                       {"options", {"bind", "rw"}}});
  shell("echo from-container > /data/out");
  auto text = fs::readFile(share + "/out");
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "from-container\n");
}

TEST_F(IsolationTest, TmpfsMount) {
  bundle().config["mounts"].push_back({{"destination", "/scratch"},
                                       {"type", "tmpfs"},
                                       {"source", "tmpfs"},
                                       {"options", {"nosuid", "size=1m", "mode=1777"}}});
  std::string out = shell("grep ' /scratch ' /proc/mounts; echo x > /scratch/f && cat /scratch/f");
  EXPECT_THAT(out, HasSubstr("tmpfs /scratch tmpfs "));
  EXPECT_THAT(out, HasSubstr("nosuid"));
  EXPECT_THAT(out, HasSubstr("\nx\n"));
  EXPECT_FALSE(fs::exists(bundle().rootfs() + "/scratch/f"));
}

TEST_F(IsolationTest, ReadonlyRootfs) {
  bundle().config["root"]["readonly"] = true;
  std::string out = shell(
      "if touch /newfile 2>/dev/null; then echo WROTE; else echo denied; fi; "
      "echo x > /dev/shm/ok && echo shm-writable");
  EXPECT_EQ(out, "denied\nshm-writable\n");
  EXPECT_FALSE(fs::exists(bundle().rootfs() + "/newfile"));
}

TEST_F(IsolationTest, WritableRootfsByDefault) {
  shell("touch /newfile");
  EXPECT_TRUE(fs::exists(bundle().rootfs() + "/newfile"));
}

TEST_F(IsolationTest, MaskedPaths) {
  // Not every kernel has every masked file (this host has no /proc/kcore): check the
  // ones that exist; /proc/timer_list exists whenever timers are built in.
  ASSERT_TRUE(fs::exists("/proc/timer_list"));
  std::string out = shell(
      "for f in /proc/kcore /proc/keys /proc/timer_list; do "
      "  if [ -e $f ]; then echo $f $(wc -c < $f); fi; done; "
      "echo /sys/firmware $(ls -A /sys/firmware | wc -l)");
  auto lines = split(out, '\n', true);
  EXPECT_THAT(out, HasSubstr("/proc/timer_list 0\n"));
  EXPECT_THAT(out, HasSubstr("/sys/firmware 0\n"));
  for (auto& line : lines) EXPECT_EQ(line.substr(line.rfind(' ')), " 0") << line;
}

TEST_F(IsolationTest, ReadonlyPaths) {
  std::string out = shell(
      "grep ' /proc/sys ' /proc/mounts; "
      "if echo 1 > /proc/sys/vm/drop_caches; then echo WROTE; else echo denied; fi");
  auto lines = split(out, '\n', true);
  ASSERT_FALSE(lines.empty()) << out;
  EXPECT_THAT(lines[0], HasSubstr(" ro,")) << "/proc/sys must be mounted read-only";
  EXPECT_EQ(lines.back(), "denied");
}

TEST_F(IsolationTest, EnvAndCwd) {
  bundle().config["process"]["env"].push_back("BERTH_TEST=value with spaces");
  bundle().config["process"]["cwd"] = "/tmp";
  EXPECT_EQ(shell("echo \"$BERTH_TEST\"; pwd; echo $PATH"),
            "value with spaces\n/tmp\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n");
}

TEST_F(IsolationTest, UserUidGidAndAdditionalGids) {
  bundle().config["process"]["user"] = {{"uid", 1000}, {"gid", 1000},
                                        {"additionalGids", {5, 100}}};
  std::string out = shell("grep -E '^(Uid|Gid|Groups):' /proc/self/status; id -u; id -g");
  EXPECT_THAT(out, HasSubstr("Uid:\t1000\t1000\t1000\t1000\n"));
  EXPECT_THAT(out, HasSubstr("Gid:\t1000\t1000\t1000\t1000\n"));
  auto pos = out.find("Groups:");
  ASSERT_NE(pos, std::string::npos) << out;
  std::string groups_line = out.substr(pos + 7, out.find('\n', pos) - pos - 7);
  auto groups = split(groups_line, ' ', true);
  std::vector<std::string> cleaned;
  for (auto& g : groups) cleaned.emplace_back(trim(g));
  EXPECT_THAT(cleaned, ::testing::IsSupersetOf({"5", "100"})) << out;
  EXPECT_THAT(out, HasSubstr("\n1000\n1000\n"));
}

TEST_F(IsolationTest, Umask) {
  bundle().config["process"]["user"]["umask"] = 63;  // 0077
  std::string out = shell("umask; touch /tmp/f; stat -c %a /tmp/f");
  EXPECT_EQ(out, "0077\n600\n");
}

TEST_F(IsolationTest, Rlimits) {
  // Root cannot raise a hard limit above its own on this host: stay below it.
  bundle().config["process"]["rlimits"] = {
      {{"type", "RLIMIT_NOFILE"}, {"soft", 512}, {"hard", 1000}},
      {{"type", "RLIMIT_CORE"}, {"soft", 0}, {"hard", 0}}};
  EXPECT_EQ(shell("ulimit -n; ulimit -Hn; ulimit -c"), "512\n1000\n0\n");
}

}  // namespace
}  // namespace berth::itest
