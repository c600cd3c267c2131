// Privileged integration test of cri/container_spec.h and cri/pod_files.h: a spec
// generated from CRI configs runs with the real berth-runtime (`run`) in pod namespaces
// pinned by a holder process, and the container sees the environment, working
// directory, user, groups, hostname, resolv.conf, mounts and seccomp the CRI asked for.
#include <fcntl.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/fs.h"
#include "common/strings.h"
#include "cri/container_spec.h"
#include "cri/pod_files.h"
#include "tests/integration/runtime/bundle_fixture.h"

namespace berth::cri {
namespace {

namespace v1 = ::runtime::v1;
using ::testing::HasSubstr;

// A process in new network, IPC and UTS namespaces (hostname set) standing in for
// berthd's pinned pod namespaces. Killed and reaped by the destructor.
class PodNamespaces {
 public:
  explicit PodNamespaces(const std::string& hostname) {
    pid_ = ::fork();
    if (pid_ == 0) {
      const std::string script = "/bin/busybox hostname " + hostname +
                                 " && exec /bin/busybox sleep 300";
      ::execlp("unshare", "unshare", "--net", "--ipc", "--uts", "/bin/busybox", "sh", "-c",
               script.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  ~PodNamespaces() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  // Waits until the holder runs sleep (namespaces made, hostname set).
  bool ready() {
    for (int i = 0; i < 200; ++i) {
      auto cmdline = fs::readFile(strCat("/proc/", pid_, "/cmdline"));
      const std::string want("/bin/busybox\0sleep\0" "300\0", 23);
      if (cmdline.ok() && *cmdline == want) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  std::string path(const char* ns) const { return strCat("/proc/", pid_, "/ns/", ns); }

 private:
  pid_t pid_ = -1;
};

class CriSpecRunTest : public itest::RuntimeTest {
 protected:
  // A CRI request for a pod "web-0" in namespace "shop" (kubelet's DNS settings) and a
  // container "app" of a busybox image whose User is "app".
  void SetUp() override {
    itest::RuntimeTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    const std::string rootfs = bundle().rootfs();
    ASSERT_TRUE(fs::writeFileAtomic(rootfs + "/etc/passwd",
                                    "root:x:0:0:root:/root:/bin/sh\n"
                                    "app:x:1001:1001:app:/tmp:/bin/sh\n")
                    .ok());
    ASSERT_TRUE(fs::writeFileAtomic(rootfs + "/etc/group",
                                    "root:x:0:\napp:x:1001:\nextra:x:2000:app\n")
                    .ok());

    auto* md = pod_.mutable_metadata();
    md->set_name("web-0");
    md->set_namespace_("shop");
    md->set_uid("0b7c");
    pod_.set_hostname("web-0");
    auto* dns = pod_.mutable_dns_config();
    dns->add_servers("10.96.0.10");
    dns->add_searches("shop.svc.cluster.local");
    dns->add_searches("svc.cluster.local");
    dns->add_searches("cluster.local");
    dns->add_options("ndots:5");
    pod_.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(
        v1::CONTAINER);

    in_.container_id = "c-app";
    in_.sandbox_id = "p-web";
    in_.config.mutable_metadata()->set_name("app");
    in_.config.mutable_image()->set_image("busybox");
    auto* sc = in_.config.mutable_linux()->mutable_security_context();
    sc->mutable_namespace_options()->set_pid(v1::CONTAINER);
    sc->add_supplemental_groups(3000);
    sc->mutable_seccomp()->set_profile_type(v1::SecurityProfile::RuntimeDefault);
    auto* env = in_.config.add_envs();
    env->set_key("GREETING");
    env->set_value("hello world");
    in_.image.architecture = "amd64";
    in_.image.os = "linux";
    in_.image.config.user = "app";
    in_.image.config.workingDir = "/tmp";
    in_.image.config.env = {"PATH=/bin"};
    in_.image.config.cmd = {"sh"};
    in_.image_name = "busybox";
    in_.rootfs = rootfs;
  }

  // Fills in the pod's files and namespaces and returns the spec as JSON.
  void generate(PodNamespaces& pod_ns) {
    ASSERT_TRUE(pod_ns.ready()) << "namespace holder did not start";
    in_.sandbox_config = pod_;
    in_.namespaces = {pod_ns.path("net"), pod_ns.path("ipc"), pod_ns.path("uts"), ""};
    SandboxFilesOptions opts;
    opts.pod_ips = {"10.244.0.9"};
    auto files = buildSandboxFiles(pod_, opts);
    ASSERT_TRUE(files.ok()) << files.status();
    auto paths = writeSandboxFiles(*files, tmp() + "/pod");
    ASSERT_TRUE(paths.ok()) << paths.status();
    ASSERT_TRUE(fs::mkdirAll(tmp() + "/pod/shm").ok());
    ASSERT_EQ(::chmod((tmp() + "/pod/shm").c_str(), 01777), 0);  // like a shm tmpfs
    in_.files = {paths->hostname, paths->hosts, paths->resolv_conf, tmp() + "/pod/shm"};
    auto user = resolveContainerUser(in_.config, in_.image.config, in_.rootfs, "busybox");
    ASSERT_TRUE(user.ok()) << user.status();
    in_.user = *user;
    auto spec = buildContainerSpec(in_);
    ASSERT_TRUE(spec.ok()) << spec.status();
    bundle().config = oci::toJson(*spec);
  }

  v1::PodSandboxConfig pod_;
  ContainerSpecInput in_;
};

TEST_F(CriSpecRunTest, GeneratedSpecRunsAndProcessSeesWhatCriAsked) {
  in_.config.add_command("/bin/sh");
  in_.config.add_args("-c");
  in_.config.add_args(
      "echo \"ids=$(id -u) $(id -g) groups=$(id -G)\"; echo \"cwd=$(pwd)\"; "
      "echo \"greeting=$GREETING host=$HOSTNAME path=$PATH\"; echo \"uts=$(hostname)\"; "
      "echo \"netns=$(readlink /proc/self/ns/net)\"; grep '^Seccomp:' /proc/self/status; "
      "grep '^CapEff:' /proc/self/status; "
      "echo ---; cat /etc/resolv.conf; echo ---; cat /etc/hosts; echo ---; "
      "touch /dev/shm/ok && echo shm-ok");
  PodNamespaces pod_ns("web-0");
  generate(pod_ns);
  if (HasFatalFailure()) return;

  itest::CmdResult r = run(bundle(), newId("cri"));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_THAT(r.out, HasSubstr("ids=1001 1001 groups=1001 2000 3000\n"));
  EXPECT_THAT(r.out, HasSubstr("cwd=/tmp\n"));
  EXPECT_THAT(r.out, HasSubstr("greeting=hello world host=web-0 path=/bin\n"));
  EXPECT_THAT(r.out, HasSubstr("uts=web-0\n"));
  EXPECT_THAT(r.out, HasSubstr("netns=" + itest::nsLink(pod_ns.path("net")) + "\n"));
  EXPECT_THAT(r.out, HasSubstr("Seccomp:\t2\n"));
  // A non-root process keeps no effective capabilities after exec.
  EXPECT_THAT(r.out, HasSubstr("CapEff:\t0000000000000000\n"));
  EXPECT_THAT(r.out, HasSubstr("---\n"
                               "search shop.svc.cluster.local svc.cluster.local cluster.local\n"
                               "nameserver 10.96.0.10\n"
                               "options ndots:5\n"
                               "---\n"));
  EXPECT_THAT(r.out, HasSubstr("10.244.0.9\tweb-0\n"));
  EXPECT_THAT(r.out, HasSubstr("shm-ok\n"));
  EXPECT_TRUE(fs::exists(tmp() + "/pod/shm/ok"));
}

TEST_F(CriSpecRunTest, SeccompRefusesMountAndNamespacesForRoot) {
  auto* sc = in_.config.mutable_linux()->mutable_security_context();
  sc->mutable_run_as_user()->set_value(0);
  in_.config.add_command("/bin/sh");
  in_.config.add_args("-c");
  in_.config.add_args(
      "mount -t tmpfs none /mnt 2>/dev/null && echo mount-allowed || echo mount-refused; "
      "unshare -n true 2>/dev/null && echo unshare-allowed || echo unshare-refused; "
      "id -u");
  PodNamespaces pod_ns("web-0");
  ASSERT_TRUE(fs::mkdirAll(bundle().rootfs() + "/mnt").ok());
  generate(pod_ns);
  if (HasFatalFailure()) return;
  itest::CmdResult r = run(bundle(), newId("seccomp"));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_THAT(r.out, HasSubstr("mount-refused\n"));
  EXPECT_THAT(r.out, HasSubstr("unshare-refused\n"));
  EXPECT_THAT(r.out, HasSubstr("0\n"));
}

TEST_F(CriSpecRunTest, ReadonlyRootfsMountsAndDevices) {
  const std::string vol = tmp() + "/volume";
  ASSERT_TRUE(fs::mkdirAll(vol).ok());
  ASSERT_TRUE(fs::writeFileAtomic(vol + "/data.txt", "from the host\n").ok());
  ASSERT_EQ(::chmod(vol.c_str(), 0777), 0);
  auto* sc = in_.config.mutable_linux()->mutable_security_context();
  sc->set_readonly_rootfs(true);
  sc->set_no_new_privs(true);
  auto* ro = in_.config.add_mounts();
  ro->set_container_path("/data");
  ro->set_host_path(vol);
  ro->set_readonly(true);
  ro->set_propagation(v1::PROPAGATION_HOST_TO_CONTAINER);
  auto* rw = in_.config.add_mounts();
  rw->set_container_path("/scratch");
  rw->set_host_path(vol);
  auto* dev = in_.config.add_devices();
  dev->set_host_path("/dev/zero");
  dev->set_container_path("/dev/myzero");
  dev->set_permissions("rw");
  in_.config.add_command("/bin/sh");
  in_.config.add_args("-c");
  in_.config.add_args(
      "cat /data/data.txt; touch /data/x 2>/dev/null && echo data-writable || echo data-ro; "
      "touch /etc/x 2>/dev/null && echo root-writable || echo root-ro; "
      "echo hi > /scratch/written && echo scratch-rw; "
      "head -c 4 /dev/myzero | od -An -tx1; "
      "grep -c NoNewPrivs:.1 /proc/self/status");
  PodNamespaces pod_ns("web-0");
  generate(pod_ns);
  if (HasFatalFailure()) return;
  itest::CmdResult r = run(bundle(), newId("ro"));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_THAT(r.out, HasSubstr("from the host\n"));
  EXPECT_THAT(r.out, HasSubstr("data-ro\n"));
  EXPECT_THAT(r.out, HasSubstr("root-ro\n"));
  EXPECT_THAT(r.out, HasSubstr("scratch-rw\n"));
  EXPECT_THAT(r.out, HasSubstr("00 00 00 00"));
  EXPECT_THAT(r.out, HasSubstr("1\n"));
  EXPECT_EQ(*fs::readFile(vol + "/written"), "hi\n");
}

TEST_F(CriSpecRunTest, PrivilegedContainerGetsHostDevicesAndWritableSys) {
  pod_.mutable_linux()->mutable_security_context()->set_privileged(true);
  auto* sc = in_.config.mutable_linux()->mutable_security_context();
  sc->set_privileged(true);
  sc->mutable_run_as_user()->set_value(0);
  in_.config.add_command("/bin/sh");
  in_.config.add_args("-c");
  in_.config.add_args(
      "grep '^Seccomp:' /proc/self/status; grep '^CapBnd:' /proc/self/status; "
      "grep ' /sys sysfs ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1; "
      "test -c /dev/null && echo has-null; test -e /dev/ptmx && echo has-ptmx");
  PodNamespaces pod_ns("web-0");
  generate(pod_ns);
  if (HasFatalFailure()) return;
  itest::CmdResult r = run(bundle(), newId("priv"));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_THAT(r.out, HasSubstr("Seccomp:\t0\n"));
  // Every capability berth-runtime itself holds (at least CAP_SYS_ADMIN, bit 21).
  auto bnd = r.out.find("CapBnd:\t");
  ASSERT_NE(bnd, std::string::npos) << r.out;
  uint64_t mask = std::stoull(r.out.substr(bnd + 8, 16), nullptr, 16);
  EXPECT_NE(mask & (1ULL << 21), 0u) << r.out;
  EXPECT_NE(mask & (1ULL << 12), 0u) << r.out;  // CAP_NET_ADMIN
  EXPECT_THAT(r.out, HasSubstr("\nrw\n"));
  EXPECT_THAT(r.out, HasSubstr("has-null\n"));
  EXPECT_THAT(r.out, HasSubstr("has-ptmx\n"));
}

}  // namespace
}  // namespace berth::cri
