// `exec` into running containers and terminals through --console-socket (runc CLI
// conventions; OCI runtime-spec config.md "process.terminal", runtime.md "Operations").
// The pty master is received over a unix socket with SCM_RIGHTS, as a shim does.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>

#include "common/fs.h"
#include "common/strings.h"
#include "tests/integration/runtime/bundle_fixture.h"

namespace berth::itest {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using namespace std::chrono_literals;

class ExecTest : public RuntimeTest {
 protected:
  // Starts a long-running container from the default bundle; returns its init pid.
  pid_t startSleeper(const std::string& id) {
    bundle().setArgs({"sleep", "100"});
    return startOrFail(bundle(), id);
  }
  std::unique_ptr<ConsoleSocket> consoleSocket() {
    auto s = ConsoleSocket::listen(tmp() + "/console.sock");
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }
};

TEST_F(ExecTest, ExecRunsCommandAndCapturesOutput) {
  std::string id = newId("exec");
  ASSERT_GT(startSleeper(id), 0);
  CmdResult r = exec(id, {"sh", "-c", "echo hi; echo err >&2"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, "hi\n");
  EXPECT_THAT(r.err, HasSubstr("err\n"));
}

TEST_F(ExecTest, ExecPropagatesExitCode) {
  std::string id = newId("exec-code");
  ASSERT_GT(startSleeper(id), 0);
  CmdResult r = exec(id, {"sh", "-c", "exit 7"});
  EXPECT_EQ(r.exit_code, 7) << r.describe();
  r = exec(id, {"false"});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
}

TEST_F(ExecTest, ExecJoinsContainerNamespaces) {
  std::string id = newId("exec-ns");
  pid_t pid = startSleeper(id);
  ASSERT_GT(pid, 0);
  CmdResult r = exec(id, {"sh", "-c",
                          "for n in pid net ipc uts mnt; do readlink /proc/self/ns/$n; done; "
                          "cat /proc/1/cmdline; echo; hostname"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  auto lines = split(r.out, '\n', true);
  ASSERT_EQ(lines.size(), 7u) << r.out;
  const char* names[] = {"pid", "net", "ipc", "uts", "mnt"};
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(lines[i], nsLink(strCat("/proc/", pid, "/ns/", names[i]))) << names[i];
  }
  // pid 1 in the exec'd process's pid namespace is the container's init.
  EXPECT_EQ(lines[5], std::string("sleep") + '\0' + "100" + '\0') << "init is sleep 100";
  EXPECT_EQ(lines[6], "berth-itest");
}

TEST_F(ExecTest, ExecWithProcessJson) {
  std::string id = newId("exec-json");
  ASSERT_GT(startSleeper(id), 0);
  Json process = {
      {"terminal", false},
      {"user", {{"uid", 1000}, {"gid", 1000}}},
      {"args", {"sh", "-c", "id -u; id -g; pwd; echo $FROM_JSON"}},
      {"env", {"PATH=/bin:/usr/bin", "FROM_JSON=yes"}},
      {"cwd", "/tmp"},
      {"noNewPrivileges", true}};
  std::string path = tmp() + "/process.json";
  ASSERT_TRUE(fs::writeFileAtomic(path, process.dump()).ok());
  CmdResult r = runtime({"exec", "--process", path, id});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, "1000\n1000\n/tmp\nyes\n");
}

TEST_F(ExecTest, ExecEnvCwdAndUserFlags) {
  std::string id = newId("exec-flags");
  ASSERT_GT(startSleeper(id), 0);
  CmdResult r = exec(id, {"sh", "-c", "echo $FOO; pwd; id -u; id -g"},
                     {"-e", "FOO=bar", "--cwd", "/tmp", "-u", "1000:1000"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, "bar\n/tmp\n1000\n1000\n");
}

TEST_F(ExecTest, ExecDetachWritesPidFile) {
  std::string id = newId("exec-detach");
  pid_t init = startSleeper(id);
  ASSERT_GT(init, 0);
  std::string pid_file = tmp() + "/exec.pid";
  auto t0 = std::chrono::steady_clock::now();
  CmdResult r = exec(id, {"sleep", "50"}, {"--detach", "--pid-file", pid_file});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s) << "--detach must not wait";
  auto text = fs::readFile(pid_file);
  ASSERT_TRUE(text.ok()) << text.status();
  pid_t pid = std::atoi(std::string(trim(*text)).c_str());
  ASSERT_GT(pid, 0) << *text;
  EXPECT_NE(pid, init);
  EXPECT_EQ(::kill(pid, 0), 0) << "the detached process must be running";
  EXPECT_EQ(nsLink(strCat("/proc/", pid, "/ns/pid")), nsLink(strCat("/proc/", init, "/ns/pid")));
  auto cmdline = fs::readFile(strCat("/proc/", pid, "/cmdline"));
  ASSERT_TRUE(cmdline.ok());
  EXPECT_EQ(*cmdline, std::string("sleep\0" "50\0", 9));
  // `ps` lists it with the init.
  CmdResult ps = runtime({"ps", "--format", "json", id});
  ASSERT_EQ(ps.exit_code, 0) << ps.describe();
  EXPECT_THAT(Json::parse(ps.out, nullptr, false).get<std::vector<int>>(),
              ::testing::UnorderedElementsAre(init, pid));
}

TEST_F(ExecTest, ExecIntoStoppedContainerFails) {
  bundle().setArgs({"true"});
  std::string id = newId("exec-stopped");
  pid_t pid = startOrFail(bundle(), id);
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(waitForExit(pid).has_value());
  ASSERT_EQ(waitForStatus(id, "stopped"), "stopped");
  CmdResult r = exec(id, {"true"});
  EXPECT_NE(r.exit_code, 0) << r.describe();
  EXPECT_FALSE(r.err.empty());
}

TEST_F(ExecTest, CreateWithTerminalSendsPtyMaster) {
  auto sock = consoleSocket();
  ASSERT_NE(sock, nullptr);
  bundle().config["process"]["terminal"] = true;
  bundle().setArgs({"sh", "-c", "tty; echo hello-tty; exit 4"});
  std::string id = newId("tty");
  CmdResult c = create(bundle(), id, {"--console-socket", sock->path()});
  ASSERT_EQ(c.exit_code, 0) << c.describe();
  auto master = sock->receiveMaster(5s);
  ASSERT_TRUE(master.ok()) << master.status();
  auto st = state(id);
  ASSERT_TRUE(st.ok()) << st.status();
  pid_t pid = (*st).value("pid", 0);
  ASSERT_EQ(start(id).exit_code, 0);
  std::string out = readPty(master->get(), "", 5s);
  EXPECT_THAT(out, MatchesRegex("/dev/pts/[0-9]+\r\nhello-tty\r\n")) << out;
  auto code = waitForExit(pid);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 4);
  EXPECT_EQ(containerStdout(id), "") << "with a terminal, stdout goes to the pty";
}

TEST_F(ExecTest, InteractiveShellOverPty) {
  auto sock = consoleSocket();
  ASSERT_NE(sock, nullptr);
  bundle().config["process"]["terminal"] = true;
  bundle().setArgs({"sh"});
  std::string id = newId("tty-sh");
  CmdResult c = create(bundle(), id, {"--console-socket", sock->path()});
  ASSERT_EQ(c.exit_code, 0) << c.describe();
  auto master = sock->receiveMaster(5s);
  ASSERT_TRUE(master.ok()) << master.status();
  pid_t pid = state(id)->value("pid", 0);
  ASSERT_EQ(start(id).exit_code, 0);
  // The pty echoes our input, so look for the computed result, not the command text.
  std::string cmd = "echo $((6*7))x; exit 3\n";
  ASSERT_EQ(::write(master->get(), cmd.data(), cmd.size()), static_cast<ssize_t>(cmd.size()));
  std::string out = readPty(master->get(), "42x", 5s);
  EXPECT_THAT(out, HasSubstr("42x")) << out;
  auto code = waitForExit(pid);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 3);
}

TEST_F(ExecTest, ExecDetachedWithTerminal) {
  // runc accepts --console-socket only together with --detach and --tty.
  std::string id = newId("exec-tty");
  ASSERT_GT(startSleeper(id), 0);
  auto sock = consoleSocket();
  ASSERT_NE(sock, nullptr);
  std::string pid_file = tmp() + "/exec-tty.pid";
  CmdResult r = exec(id, {"sh", "-c", "tty; echo exec-tty; exit 6"},
                     {"-t", "-d", "--console-socket", sock->path(), "--pid-file", pid_file});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  auto master = sock->receiveMaster(5s);
  ASSERT_TRUE(master.ok()) << master.status();
  std::string out = readPty(master->get(), "", 5s);
  EXPECT_THAT(out, MatchesRegex("/dev/pts/[0-9]+\r\nexec-tty\r\n")) << out;
  auto text = fs::readFile(pid_file);
  ASSERT_TRUE(text.ok()) << text.status();
  pid_t pid = std::atoi(text->c_str());
  ASSERT_GT(pid, 0);
  auto code = waitForExit(pid);
  ASSERT_TRUE(code.has_value());
  // The exec'd process is reparented to us (a subreaper) when it is not the runtime's
  // child any more; -1 means another reaper got it.
  if (*code != -1) {
    EXPECT_EQ(*code, 6);
  }
}

TEST_F(ExecTest, RunDetachedWithTerminal) {
  auto sock = consoleSocket();
  ASSERT_NE(sock, nullptr);
  bundle().config["process"]["terminal"] = true;
  bundle().setArgs({"sh", "-c", "echo run-tty; sleep 100"});
  std::string id = newId("run-tty");
  bundle().config["linux"]["cgroupsPath"] = cgroupsPathFor(id);
  ASSERT_TRUE(bundle().writeConfig().ok());
  CmdResult r = runtime({"run", "--detach", "--console-socket", sock->path(), "--bundle",
                         bundle().dir(), id});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  auto master = sock->receiveMaster(5s);
  ASSERT_TRUE(master.ok()) << master.status();
  EXPECT_EQ(status(id), "running");
  std::string out = readPty(master->get(), "run-tty\r\n", 5s);
  EXPECT_THAT(out, HasSubstr("run-tty\r\n"));
}

}  // namespace
}  // namespace berth::itest
