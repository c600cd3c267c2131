// e2e: pods and containers on a real berthd over its CRI socket. The test process
// moves into its own network namespace first, so the registry, berthd, the CNI bridge
// (Debian's reference bridge + host-local plugins) and the pods all live there and the
// host's network is never touched.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <grpcpp/generic/generic_stub.h>

#include <gmock/gmock.h>
#include <nlohmann/json.hpp>
#include <gtest/gtest.h>

#include "common/fs.h"
#include "common/proc.h"
#include "common/scope_guard.h"
#include "common/strings.h"

#include "tests/e2e/berthd_pods_fixture.h"

namespace berth::testing {
namespace {

namespace v1 = ::runtime::v1;
using ::testing::HasSubstr;

TEST_F(BerthdPodsTest, TwoContainerPodServesHttpOverLocalhostAndToTheNode) {
  pull();
  if (HasFatalFailure()) return;
  v1::PodSandboxConfig config = podConfig("web");
  std::string pod = runPod(config);
  ASSERT_FALSE(pod.empty());
  v1::PodSandboxStatus ps = podStatus(pod);
  EXPECT_EQ(ps.state(), v1::SANDBOX_READY);
  EXPECT_THAT(ps.network().ip(), ::testing::StartsWith("10.77.0."));
  EXPECT_EQ(ps.metadata().name(), "web");
  EXPECT_EQ(ps.labels().at("app"), "web");

  std::string server = createContainer(
      pod, config, "server",
      "mkdir -p /tmp/www && echo hello from the pod > /tmp/www/index.html && "
      "exec httpd -f -p 8080 -h /tmp/www");
  std::string client = createContainer(
      pod, config, "client",
      "for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://127.0.0.1:8080/ && exit 0; "
      "sleep 0.2; done; exit 1");
  ASSERT_FALSE(server.empty());
  ASSERT_FALSE(client.empty());
  EXPECT_EQ(containerStatus(server).state(), v1::CONTAINER_CREATED);
  ASSERT_TRUE(startContainer(server).ok());
  ASSERT_TRUE(startContainer(client).ok());
  EXPECT_EQ(containerStatus(server).state(), v1::CONTAINER_RUNNING);

  v1::ContainerStatus cs = waitExited(client);
  EXPECT_EQ(cs.state(), v1::CONTAINER_EXITED);
  EXPECT_EQ(cs.exit_code(), 0);
  EXPECT_EQ(cs.reason(), "Completed");
  EXPECT_GT(cs.finished_at(), cs.started_at());
  auto log = fs::readFile(cs.log_path());
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_THAT(*log, ::testing::ContainsRegex(
                        "^[0-9T:.-]+Z stdout F hello from the pod\n"));

  // The node reaches the pod over the bridge.
  EXPECT_THAT(httpGet(ps.network().ip(), 8080, "/"), HasSubstr("hello from the pod"));

  // ExecSync sees the pod's DNS settings and hostname, and exit codes.
  auto r = execSync(server, {"cat", "/etc/resolv.conf"});
  EXPECT_EQ(r.exit_code(), 0);
  EXPECT_EQ(r.stdout(),
            "search shop.svc.cluster.local svc.cluster.local cluster.local\n"
            "nameserver 10.96.0.10\n"
            "options ndots:5\n");
  EXPECT_EQ(execSync(server, {"hostname"}).stdout(), "web\n");
  EXPECT_EQ(execSync(server, {"sh", "-c", "echo oops >&2; exit 3"}).exit_code(), 3);

  // Both containers share the pod's IPC namespace.
  std::string peer = createContainer(pod, config, "peer", "exec sleep 600");
  ASSERT_TRUE(startContainer(peer).ok());
  for (const char* ns : {"ipc", "net", "uts"}) {
    std::string link = strCat("/proc/self/ns/", ns);
    auto a = execSync(server, {"readlink", link}).stdout();
    EXPECT_FALSE(a.empty());
    EXPECT_EQ(a, execSync(peer, {"readlink", link}).stdout()) << ns;
  }
  // The pod's /dev/shm is one tmpfs for all its containers.
  EXPECT_EQ(execSync(server, {"sh", "-c", "echo shared > /dev/shm/note"}).exit_code(), 0);
  EXPECT_EQ(execSync(peer, {"cat", "/dev/shm/note"}).stdout(), "shared\n");
  // The shim that owns the pod (for the cleanup check below).
  int shim_pid = 0;
  {
    grpc::ClientContext ctx;
    v1::PodSandboxStatusRequest req;
    req.set_pod_sandbox_id(pod);
    req.set_verbose(true);
    v1::PodSandboxStatusResponse resp;
    ASSERT_TRUE(berthd_->runtime().PodSandboxStatus(&ctx, req, &resp).ok());
    auto info = nlohmann::json::parse(resp.info().at("info"));
    shim_pid = info.value("shimPid", 0);
  }
  EXPECT_GT(shim_pid, 0);

  // ListContainers filters by pod and state.
  {
    grpc::ClientContext ctx;
    v1::ListContainersRequest req;
    req.mutable_filter()->set_pod_sandbox_id(pod);
    req.mutable_filter()->mutable_state()->set_state(v1::CONTAINER_RUNNING);
    v1::ListContainersResponse resp;
    ASSERT_TRUE(berthd_->runtime().ListContainers(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.containers_size(), 2);
  }

  // Stop and remove: nothing stays mounted, the shim is gone.
  {
    grpc::Status st = stopPod(pod);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  EXPECT_EQ(podStatus(pod).state(), v1::SANDBOX_NOTREADY);
  EXPECT_EQ(containerStatus(server).state(), v1::CONTAINER_EXITED);
  EXPECT_EQ(containerStatus(server).exit_code(), 137);
  {
    grpc::Status st = removePod(pod);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  EXPECT_THAT(mountsUnder(berthd_->dir()), ::testing::IsEmpty());
  EXPECT_FALSE(fs::exists(berthd_->dir() + "/state/shims/" + pod));
  const char shim_state = proc::state(shim_pid);  // 0 once gone; 'Z' until init reaps it
  EXPECT_TRUE(shim_state == 0 || shim_state == 'Z') << "shim still running: " << shim_state;
  for (const std::string& id : {server, client, peer}) {
    for (const char* root : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
      EXPECT_FALSE(fs::exists(strCat(root, cgroupParent(), "/", id))) << root << " " << id;
    }
  }
  EXPECT_FALSE(fs::exists(berthd_->dir() + "/state/containers/" + server));
  // host-local released the address.
  auto leases = fs::listDir(berthd_->dir() + "/ipam/e2e");
  if (leases.ok()) {
    for (const auto& f : *leases) EXPECT_EQ(f.find("10.77.0."), std::string::npos) << f;
  }
}

// berthd's Service proxy on a manifest directory: a ClusterIP Service and its
// EndpointSlice written as YAML make the pod reachable through the cluster IP from the
// node (nftables by default, then iptables after a restart with --proxy-mode); a
// Service removed from the directory stops answering; /healthz answers.
TEST_F(BerthdPodsTest, ServiceProxyFromManifestsReachesThePod) {
  char tmpl[] = "/tmp/berth-e2e-services-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string services = tmpl;
  ScopeGuard remove_services([&] { (void)fs::removeAll(services); });
  for (std::string mode : {"nftables", "iptables"}) {
    SCOPED_TRACE(mode);
    berthd_.reset();
    start("", {"--proxy-manifests", services, "--proxy-mode", mode, "--proxy-healthz-address",
                "127.0.0.1:10256", "--proxy-metrics-address", "", "--cluster-cidr", "10.77.0.0/16",
                "--node-name", "e2e-node"});
    if (HasFatalFailure()) return;
    pull();
    if (HasFatalFailure()) return;
    v1::PodSandboxConfig config = podConfig("svc-" + mode);
    std::string pod = runPod(config);
    ASSERT_FALSE(pod.empty());
    std::string ip = podStatus(pod).network().ip();
    std::string server = createContainer(
        pod, config, "server",
        "mkdir -p /tmp/www && echo hello through a service > /tmp/www/index.html && "
        "exec httpd -f -p 8080 -h /tmp/www");
    ASSERT_TRUE(startContainer(server).ok());
    // The node needs a route covering the Service range (real nodes have a default route).
    (void)std::system("ip route replace 10.96.0.0/16 dev e2e0 2>/dev/null");
    std::string yaml = strCat(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: shop\n"
        "spec:\n  clusterIP: 10.96.50.5\n  ports:\n  - name: http\n    port: 80\n"
        "    targetPort: 8080\n---\n"
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-1\n"
        "  namespace: shop\n  labels:\n    kubernetes.io/service-name: web\naddressType: IPv4\n"
        "endpoints:\n- addresses: [\"", ip, "\"]\n  nodeName: e2e-node\nports:\n- name: http\n  port: 8080\n");
    ASSERT_TRUE(fs::writeFileAtomic(services + "/web.yaml", yaml).ok());
    std::string got;
    for (int i = 0; i < 50 && got.find("hello through a service") == std::string::npos; ++i) {
      got = httpGet("10.96.50.5", 80, "/");
      if (got.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_THAT(got, HasSubstr("hello through a service")) << berthd_->log();
    EXPECT_THAT(httpGet("127.0.0.1", 10256, "/healthz"), HasSubstr("\"lastUpdated\""));
    ASSERT_EQ(::unlink((services + "/web.yaml").c_str()), 0);
    bool stopped = false;
    for (int i = 0; i < 50 && !stopped; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in addr = {};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(80);
      ::inet_pton(AF_INET, "10.96.50.5", &addr.sin_addr);
      timeval tv{0, 300000};
      ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
      stopped = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0;
      ::close(fd);
    }
    EXPECT_TRUE(stopped) << "the removed Service still answers";
    stopPod(pod);
    removePod(pod);
  }
}

TEST_F(BerthdPodsTest, StopTimeoutEscalatesToSigkillAndExitReasons) {
  pull();
  if (HasFatalFailure()) return;
  v1::PodSandboxConfig config = podConfig("stop");
  std::string pod = runPod(config);
  ASSERT_FALSE(pod.empty());
  std::string stubborn = createContainer(pod, config, "stubborn",
                                         "trap '' TERM; while true; do sleep 0.1; done");
  std::string failing = createContainer(pod, config, "failing", "exit 7");
  ASSERT_TRUE(startContainer(stubborn).ok());
  ASSERT_TRUE(startContainer(failing).ok());
  v1::ContainerStatus f = waitExited(failing);
  EXPECT_EQ(f.exit_code(), 7);
  EXPECT_EQ(f.reason(), "Error");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the trap is set
  auto t0 = std::chrono::steady_clock::now();
  {
    grpc::Status st = stopContainer(stubborn, 1);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, std::chrono::milliseconds(900));
  v1::ContainerStatus s = containerStatus(stubborn);
  EXPECT_EQ(s.state(), v1::CONTAINER_EXITED);
  EXPECT_EQ(s.exit_code(), 137);
  // Stopping again is fine; starting an exited container is not.
  EXPECT_TRUE(stopContainer(stubborn).ok());
  grpc::Status again = startContainer(stubborn);
  EXPECT_EQ(again.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  // RemoveContainer twice is fine.
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(removeContainer(stubborn).ok());
  }
  grpc::ClientContext ctx;
  v1::ContainerStatusRequest req;
  req.set_container_id(stubborn);
  v1::ContainerStatusResponse resp;
  EXPECT_EQ(berthd_->runtime().ContainerStatus(&ctx, req, &resp).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(BerthdPodsTest, RestartAfterKill9AdoptsPodsAndReportsExitsThatHappenedMeanwhile) {
  pull();
  if (HasFatalFailure()) return;
  v1::PodSandboxConfig config = podConfig("crash");
  std::string pod = runPod(config);
  ASSERT_FALSE(pod.empty());
  std::string lives = createContainer(pod, config, "lives", "exec sleep 600");
  std::string dies = createContainer(pod, config, "dies", "sleep 1; exit 3");
  ASSERT_TRUE(startContainer(lives).ok());
  ASSERT_TRUE(startContainer(dies).ok());

  std::string dir = berthd_->dir();
  berthd_->kill9();
  berthd_.reset();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // "dies" exits meanwhile
  start(dir);
  if (HasFatalFailure()) return;

  EXPECT_EQ(podStatus(pod).state(), v1::SANDBOX_READY);
  v1::ContainerStatus d = containerStatus(dies);
  EXPECT_EQ(d.state(), v1::CONTAINER_EXITED);
  EXPECT_EQ(d.exit_code(), 3);
  EXPECT_EQ(containerStatus(lives).state(), v1::CONTAINER_RUNNING);
  // The adopted pod still works: exec, and a new container.
  EXPECT_EQ(execSync(lives, {"echo", "still here"}).stdout(), "still here\n");
  std::string more = createContainer(pod, config, "more", "echo after restart");
  ASSERT_TRUE(startContainer(more).ok());
  EXPECT_EQ(waitExited(more).exit_code(), 0);
  // And a container stopped now is reported by the new berthd's monitor.
  ASSERT_TRUE(stopContainer(lives, 5).ok());
  EXPECT_EQ(containerStatus(lives).state(), v1::CONTAINER_EXITED);
}

TEST_F(BerthdPodsTest, BadRequestsGetClearErrorsAndLeaveNothing) {
  pull();
  if (HasFatalFailure()) return;
  {
    grpc::ClientContext ctx;
    v1::RunPodSandboxRequest req;  // no metadata
    v1::RunPodSandboxResponse resp;
    grpc::Status st = berthd_->runtime().RunPodSandbox(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(st.error_message(), HasSubstr("metadata"));
  }
  v1::PodSandboxConfig config = podConfig("dup");
  std::string pod = runPod(config);
  ASSERT_FALSE(pod.empty());
  {
    grpc::ClientContext ctx;
    v1::RunPodSandboxRequest req;
    *req.mutable_config() = config;
    v1::RunPodSandboxResponse resp;
    grpc::Status st = berthd_->runtime().RunPodSandbox(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::ALREADY_EXISTS) << st.error_message();
  }
  {
    // A sysctl that is not namespaced fails the whole pod, which leaves nothing.
    v1::PodSandboxConfig bad = podConfig("badsysctl");
    (*bad.mutable_linux()->mutable_sysctls())["kernel.panic"] = "1";
    grpc::ClientContext ctx;
    v1::RunPodSandboxRequest req;
    *req.mutable_config() = bad;
    v1::RunPodSandboxResponse resp;
    grpc::Status st = berthd_->runtime().RunPodSandbox(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
    EXPECT_THAT(st.error_message(), HasSubstr("kernel.panic"));
  }
  {
    grpc::ClientContext ctx;
    v1::CreateContainerRequest req;
    req.set_pod_sandbox_id(pod);
    req.mutable_config()->mutable_metadata()->set_name("x");
    req.mutable_config()->mutable_image()->set_image("not-pulled:1");
    v1::CreateContainerResponse resp;
    grpc::Status st = berthd_->runtime().CreateContainer(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_THAT(st.error_message(), HasSubstr("pull it first"));
  }
  std::string c1 = createContainer(pod, config, "same", "true");
  ASSERT_FALSE(c1.empty());
  {
    grpc::ClientContext ctx;
    v1::CreateContainerRequest req;
    req.set_pod_sandbox_id(pod);
    req.mutable_config()->mutable_metadata()->set_name("same");
    req.mutable_config()->mutable_image()->set_image(image());
    v1::CreateContainerResponse resp;
    grpc::Status st = berthd_->runtime().CreateContainer(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::ALREADY_EXISTS) << st.error_message();
  }
  // Only the one pod and one container exist; nothing of the failed calls is left.
  grpc::ClientContext ctx;
  v1::ListPodSandboxRequest req;
  v1::ListPodSandboxResponse resp;
  ASSERT_TRUE(berthd_->runtime().ListPodSandbox(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.items_size(), 1);
  auto shims = fs::listSubdirs(berthd_->dir() + "/state/shims");
  ASSERT_TRUE(shims.ok());
  EXPECT_EQ(shims->size(), 1u);
  auto bundles = fs::listSubdirs(berthd_->dir() + "/state/containers");
  ASSERT_TRUE(bundles.ok());
  EXPECT_EQ(bundles->size(), 1u);
}

TEST_F(BerthdPodsTest, FailedNetworkSetupRollsBackEverything) {
  // A second plugin that does not exist: bridge's ADD succeeds, then the chain fails,
  // so berthd must undo the bridge attachment, the namespaces, the shim and the record.
  ASSERT_TRUE(fs::writeFileAtomic(
                  berthd_->dir() + "/net.d/10-bridge.conflist",
                  strCat(R"({"cniVersion":"1.0.0","name":"e2e","plugins":[{"type":"bridge",)",
                         R"("bridge":"e2e0","isGateway":true,"ipam":{"type":"host-local",)",
                         R"("dataDir":")", berthd_->dir(), R"(/ipam","ranges":[[{"subnet":)",
                         R"("10.77.0.0/24"}]]}},{"type":"no-such-plugin"}]})"))
                  .ok());
  grpc::ClientContext ctx;
  v1::RunPodSandboxRequest req;
  *req.mutable_config() = podConfig("broken");
  v1::RunPodSandboxResponse resp;
  grpc::Status st = berthd_->runtime().RunPodSandbox(&ctx, req, &resp);
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(st.error_message(), HasSubstr("no-such-plugin"));
  EXPECT_THAT(mountsUnder(berthd_->dir()), ::testing::IsEmpty());
  for (const char* sub : {"shims", "ns", "pods", "containers"}) {
    auto dirs = fs::listSubdirs(berthd_->dir() + "/state/" + sub);
    ASSERT_TRUE(dirs.ok()) << sub;
    EXPECT_THAT(*dirs, ::testing::IsEmpty()) << sub;
  }
  auto leases = fs::listDir(berthd_->dir() + "/ipam/e2e");
  if (leases.ok()) {
    for (const auto& f : *leases) EXPECT_EQ(f.find("10.77.0."), std::string::npos) << f;
  }
  grpc::ClientContext ctx2;
  v1::ListPodSandboxRequest list;
  v1::ListPodSandboxResponse pods;
  ASSERT_TRUE(berthd_->runtime().ListPodSandbox(&ctx2, list, &pods).ok());
  EXPECT_EQ(pods.items_size(), 0);
}

TEST_F(BerthdPodsTest, BerthBridgeOnThePodCidrFromBerthdsConfig) {
  // A berthd whose network is berth-bridge + berth-ipam, the pod subnet coming from
  // berthd's own pod-cidr setting (written to pod-cidr-file for berth-ipam).
  std::string bin = BERTH_BRIDGE_BINARY;
  bin = bin.substr(0, bin.rfind('/'));
  berthd_.reset();
  char tmpl[] = "/tmp/berth-e2e-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  writeInsecureRegistriesConf(dir, registry->hostPort());
  ASSERT_TRUE(fs::mkdirAll(dir + "/net.d").ok());
  ASSERT_TRUE(fs::writeFileAtomic(
                  dir + "/net.d/10-bridge.conflist",
                  strCat(R"({"cniVersion":"1.1.0","name":"e2e","plugins":[{"type":"berth-bridge",)",
                         R"("bridge":"e2eb0","isDefaultGateway":true,"ipMasq":true,)",
                         R"("ipam":{"type":"berth-ipam","dataDir":")", dir, R"(/berth-ipam",)",
                         R"("podCIDRFile":")", dir, R"(/state/pod-cidr"}}]})"))
                  .ok());
  berthd_ = std::make_unique<Berthd>(
      std::vector<std::string>{"--cni-bin-dir", bin, "--registries-conf", dir + "/registries.conf",
                               "--pod-cidr", "10.78.0.0/24"},
      dir);
  ASSERT_TRUE(berthd_->ready()) << berthd_->log();
  std::string pod = runPod(podConfig("bb"));
  ASSERT_FALSE(pod.empty());
  v1::PodSandboxStatus ps = podStatus(pod);
  EXPECT_THAT(ps.network().ip(), ::testing::StartsWith("10.78.0."));
  auto allocations = fs::readFile(dir + "/berth-ipam/e2e/allocations");
  ASSERT_TRUE(allocations.ok()) << allocations.status();
  EXPECT_THAT(*allocations, HasSubstr(ps.network().ip() + " "));
  ASSERT_TRUE(stopPod(pod).ok());
  allocations = fs::readFile(dir + "/berth-ipam/e2e/allocations");
  ASSERT_TRUE(allocations.ok());
  EXPECT_THAT(*allocations, ::testing::Not(HasSubstr(ps.network().ip() + " ")));
}

TEST_F(BerthdPodsTest, NodeRoutesFollowTheConfigFileOnSighup) {
  // The suite runs in a netns of its own: give it a link to another "node" subnet.
  ASSERT_EQ(std::system("ip link add bte2e0 type veth peer name bte2e1 && "
                        "ip addr add 192.168.77.1/24 dev bte2e0 && ip link set bte2e0 up && "
                        "ip link set bte2e1 up"),
            0);
  auto routes = [] {
    std::string out;
    FILE* f = ::popen("ip route show proto 98", "r");
    char buf[512];
    size_t n;
    while (f && (n = fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
    if (f) ::pclose(f);
    return out;
  };
  berthd_.reset();
  char tmpl[] = "/tmp/berth-e2e-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  writeBridgeConflist(dir, "10.77.0.0/24");
  std::string config = dir + "/berthd.toml";
  auto writeConfig = [&](const std::string& routes_toml) {
    ASSERT_TRUE(fs::writeFileAtomic(config, strCat("pod-cidr = [\"10.79.0.0/24\"]\n",
                                                   "node-route = [", routes_toml, "]\n"))
                    .ok());
  };
  writeConfig(R"("10.79.1.0/24 via 192.168.77.2", "10.79.2.0/24 via 192.168.77.3")");
  berthd_ = std::make_unique<Berthd>(
      std::vector<std::string>{"--config", config, "--cni-bin-dir", kCniBin}, dir);
  ASSERT_TRUE(berthd_->ready()) << berthd_->log();
  EXPECT_THAT(*fs::readFile(dir + "/state/pod-cidr"), HasSubstr("10.79.0.0/24"));
  EXPECT_THAT(routes(), HasSubstr("10.79.1.0/24 via 192.168.77.2"));
  EXPECT_THAT(routes(), HasSubstr("10.79.2.0/24 via 192.168.77.3"));
  // Node 2 leaves, node 3 comes.
  writeConfig(R"("10.79.1.0/24 via 192.168.77.2", "10.79.3.0/24 via 192.168.77.4")");
  ASSERT_EQ(::kill(berthd_->pid(), SIGHUP), 0);
  std::string now;
  for (int i = 0; i < 100; ++i) {
    now = routes();
    if (now.find("10.79.3.0/24") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_THAT(now, HasSubstr("10.79.3.0/24 via 192.168.77.4"));
  EXPECT_THAT(now, HasSubstr("10.79.1.0/24 via 192.168.77.2"));
  EXPECT_THAT(now, ::testing::Not(HasSubstr("10.79.2.0/24")));
  // A bad entry is refused with a log line and changes nothing.
  writeConfig(R"("10.79.1.0/24 to 192.168.77.2")");
  ASSERT_EQ(::kill(berthd_->pid(), SIGHUP), 0);
  for (int i = 0; i < 100 && berthd_->log().find("not reloaded") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_THAT(berthd_->log(), HasSubstr("SUBNET via NODE_IP"));
  EXPECT_THAT(routes(), HasSubstr("10.79.3.0/24 via 192.168.77.4"));
  (void)std::system("ip link del bte2e0");
}

TEST_F(BerthdPodsTest, LogRotationWithReopenContainerLog) {
  pull();
  if (HasFatalFailure()) return;
  v1::PodSandboxConfig config = podConfig("logs");
  std::string pod = runPod(config);
  std::string id = createContainer(
      pod, config, "ticker",
      "i=0; while true; do i=$((i+1)); echo tick $i; echo err $i >&2; sleep 0.05; done");
  ASSERT_TRUE(startContainer(id).ok());
  std::string path = containerStatus(id).log_path();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_EQ(::rename(path.c_str(), (path + ".1").c_str()), 0);  // what kubelet does
  {
    grpc::ClientContext ctx;
    v1::ReopenContainerLogRequest req;
    req.set_container_id(id);
    v1::ReopenContainerLogResponse resp;
    grpc::Status st = berthd_->runtime().ReopenContainerLog(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto rotated = fs::readFile(path + ".1");
  auto fresh = fs::readFile(path);
  ASSERT_TRUE(rotated.ok() && fresh.ok());
  EXPECT_THAT(*rotated, ::testing::ContainsRegex("Z stdout F tick 1\n"));
  EXPECT_THAT(*rotated, ::testing::ContainsRegex("Z stderr F err 1\n"));
  EXPECT_THAT(*fresh, ::testing::ContainsRegex("^[0-9T:.-]+Z std(out|err) F (tick|err) [0-9]+\n"));
  // Every line is in exactly one of the two files, none lost across the reopen.
  for (int i = 1; i <= 8; ++i) {
    std::string line = strCat(" stdout F tick ", i, "\n");
    EXPECT_NE((*rotated + *fresh).find(line), std::string::npos) << line;
  }
  // A container that is not running cannot reopen its log.
  ASSERT_TRUE(stopContainer(id).ok());
  grpc::ClientContext ctx;
  v1::ReopenContainerLogRequest req;
  req.set_container_id(id);
  v1::ReopenContainerLogResponse resp;
  EXPECT_EQ(berthd_->runtime().ReopenContainerLog(&ctx, req, &resp).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(BerthdPodsTest, ContainerAndPodStats) {
  pull();
  if (HasFatalFailure()) return;
  v1::PodSandboxConfig config = podConfig("stats");
  std::string pod = runPod(config);
  std::string id = createContainer(
      pod, config, "busy",
      "dd if=/dev/zero of=/tmp/filler bs=1024 count=2048 2>/dev/null; "
      "while true; do i=$((i+1)); done");
  ASSERT_TRUE(startContainer(id).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto stats = [&] {
    grpc::ClientContext ctx;
    v1::ContainerStatsRequest req;
    req.set_container_id(id);
    v1::ContainerStatsResponse resp;
    grpc::Status st = berthd_->runtime().ContainerStats(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.stats();
  };
  v1::ContainerStats first = stats();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  v1::ContainerStats second = stats();
  EXPECT_EQ(second.attributes().id(), id);
  EXPECT_EQ(second.attributes().metadata().name(), "busy");
  // cpu.stat exists on every cgroup2 hierarchy: a busy loop shows up as usage.
  ASSERT_TRUE(second.cpu().has_usage_core_nano_seconds());
  EXPECT_GT(second.cpu().usage_core_nano_seconds().value(),
            first.cpu().usage_core_nano_seconds().value());
  ASSERT_TRUE(second.cpu().has_usage_nano_cores());
  EXPECT_GT(second.cpu().usage_nano_cores().value(), 100'000'000u);  // > 0.1 core
  // The 2 MiB written to /tmp is in the writable layer.
  EXPECT_GE(second.writable_layer().used_bytes().value(), 2u << 20);
  EXPECT_GT(second.writable_layer().inodes_used().value(), 0u);
  if (fs::exists("/sys/fs/cgroup/cgroup.controllers")) {  // pure cgroup v2 host
    EXPECT_TRUE(second.memory().has_working_set_bytes());
  }

  grpc::ClientContext ctx;
  v1::PodSandboxStatsRequest req;
  req.set_pod_sandbox_id(pod);
  v1::PodSandboxStatsResponse resp;
  grpc::Status st = berthd_->runtime().PodSandboxStats(&ctx, req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  const auto& linux = resp.stats().linux();
  EXPECT_EQ(resp.stats().attributes().id(), pod);
  ASSERT_EQ(linux.containers_size(), 1);
  EXPECT_EQ(linux.network().default_interface().name(), "eth0");
  EXPECT_GT(linux.network().default_interface().tx_bytes().value(), 0u);  // DAD/ARP at least
  EXPECT_GE(linux.process().process_count().value(), 1u);
  EXPECT_GT(linux.cpu().usage_core_nano_seconds().value(), 0u);

  grpc::ClientContext ctx2;
  v1::ListContainerStatsRequest list;
  list.mutable_filter()->set_pod_sandbox_id(pod);
  v1::ListContainerStatsResponse all;
  ASSERT_TRUE(berthd_->runtime().ListContainerStats(&ctx2, list, &all).ok());
  ASSERT_EQ(all.stats_size(), 1);
  EXPECT_EQ(all.stats(0).attributes().id(), id);
}

TEST_F(BerthdPodsTest, ContainerEventsStreamCreateStartStopDelete) {
  pull();
  if (HasFatalFailure()) return;
  grpc::ClientContext events_ctx;
  v1::GetEventsRequest events_req;
  auto reader = berthd_->runtime().GetContainerEvents(&events_ctx, events_req);
  std::vector<v1::ContainerEventResponse> events;
  std::thread collector([&] {
    v1::ContainerEventResponse e;
    while (reader->Read(&e)) events.push_back(e);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // subscribed
  v1::PodSandboxConfig config = podConfig("events");
  std::string pod = runPod(config);
  std::string id = createContainer(pod, config, "short", "exit 0");
  ASSERT_TRUE(startContainer(id).ok());
  EXPECT_EQ(waitExited(id).exit_code(), 0);
  {
    ASSERT_TRUE(removeContainer(id).ok());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  events_ctx.TryCancel();
  collector.join();
  std::vector<v1::ContainerEventType> types;
  for (const auto& e : events) {
    EXPECT_EQ(e.container_id(), id);
    EXPECT_EQ(e.pod_sandbox_status().id(), pod);
    EXPECT_GT(e.created_at(), 0);
    types.push_back(e.container_event_type());
  }
  EXPECT_THAT(types, ::testing::ElementsAre(v1::CONTAINER_CREATED_EVENT,
                                            v1::CONTAINER_STARTED_EVENT,
                                            v1::CONTAINER_STOPPED_EVENT,
                                            v1::CONTAINER_DELETED_EVENT));
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events[2].containers_statuses(0).state(), v1::CONTAINER_EXITED);
}

// 100 malformed requests (undecodable bytes, missing and unknown IDs, wrong states)
// all get errors, and berthd keeps serving.
TEST_F(BerthdPodsTest, HundredMalformedRequestsGetErrorsAndBerthdKeepsServing) {
  grpc::GenericStub generic(grpc::CreateChannel("unix://" + berthd_->socket(),
                                                grpc::InsecureChannelCredentials()));
  const char* methods[] = {"RunPodSandbox", "CreateContainer", "ExecSync", "PodSandboxStatus",
                           "UpdateContainerResources"};
  int errors = 0;
  for (int i = 0; i < 100; ++i) {
    grpc::Status st;
    switch (i % 5) {
      case 0: {  // bytes that are no protobuf message
        std::string junk(16 + i, static_cast<char>(0xff));
        grpc::Slice slice(junk);
        grpc::ByteBuffer request(&slice, 1), response;
        grpc::ClientContext ctx;
        std::mutex mu;
        std::condition_variable cv;
        bool done = false;
        generic.UnaryCall(&ctx, strCat("/runtime.v1.RuntimeService/", methods[(i / 5) % 5]),
                          grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
                            std::lock_guard<std::mutex> lock(mu);
                            st = s;
                            done = true;
                            cv.notify_one();
                          });
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return done; });
        break;
      }
      case 1: {
        grpc::ClientContext ctx;
        v1::CreateContainerRequest req;  // no pod, no config
        if (i % 2) req.set_pod_sandbox_id(strCat("nope", i));
        v1::CreateContainerResponse resp;
        st = berthd_->runtime().CreateContainer(&ctx, req, &resp);
        break;
      }
      case 2: {
        grpc::ClientContext ctx;
        v1::ExecSyncRequest req;
        req.set_container_id(i % 2 ? "" : "ffff");
        v1::ExecSyncResponse resp;
        st = berthd_->runtime().ExecSync(&ctx, req, &resp);
        break;
      }
      case 3: {
        grpc::ClientContext ctx;
        v1::StartContainerRequest req;
        req.set_container_id(strCat("missing-", i));
        v1::StartContainerResponse resp;
        st = berthd_->runtime().StartContainer(&ctx, req, &resp);
        break;
      }
      default: {
        grpc::ClientContext ctx;
        v1::RunPodSandboxRequest req;
        req.mutable_config()->mutable_metadata()->set_name(i % 2 ? "" : "x");
        req.set_runtime_handler(i % 3 ? "no-such-handler" : "");
        v1::RunPodSandboxResponse resp;
        st = berthd_->runtime().RunPodSandbox(&ctx, req, &resp);
        break;
      }
    }
    EXPECT_FALSE(st.ok()) << i;
    // gRPC itself rejects undecodable bytes (INTERNAL, no message); berthd's own
    // errors say what is wrong.
    if (i % 5 != 0) {
      EXPECT_FALSE(st.error_message().empty()) << i;
    }
    if (!st.ok()) ++errors;
  }
  EXPECT_EQ(errors, 100);
  grpc::ClientContext ctx;
  v1::VersionRequest req;
  v1::VersionResponse resp;
  ASSERT_TRUE(berthd_->runtime().Version(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.runtime_name(), "berth");
  EXPECT_EQ(::kill(berthd_->pid(), 0), 0);
}

}  // namespace
}  // namespace berth::testing
