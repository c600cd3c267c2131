// berthd: the node daemon. Its components (config key `components`):
//   cri    CRI v1 over gRPC on a unix socket: the ImageService and the RuntimeService
//          (pods run by one berth-shim each); on start it adopts the pods a previous
//          berthd left running;
//   cni    pod networking through CNI plugins, this node's pod subnets and the routes
//          to other nodes' (without it only host-network pods run);
//   proxy  the Service proxy (nftables or iptables);
//   csi    the hostPath CSI driver, registered with kubelet, and its provisioner.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>

#include <grpcpp/grpcpp.h>

#include "CLI/CLI.hpp"
#include "common/fs.h"
#include "common/log.h"
#include "common/sqlite.h"
#include "cni/node_network.h"
#include "daemon/node_network_component.h"
#include "cni/runtime.h"
#include "common/unique_fd.h"
#include "cri/image_service.h"
#include "cri/pod_manager.h"
#include "cri/pod_store.h"
#include "cri/runtime_service.h"
#include "daemon/config.h"
#include "daemon/csi_component.h"
#include "daemon/proxy_component.h"

namespace berth::daemon {
namespace {

constexpr char kVersion[] = "0.1.0";

// Holds <state>/berthd.lock for the daemon's life, so a second berthd on the same
// state dir refuses to start instead of corrupting it.
StatusOr<UniqueFd> lockStateDir(const std::string& state) {
  std::string path = fs::join(state, "berthd.lock");
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return lastErrnoError(strCat("open \"", path, "\""));
  UniqueFd owned(fd);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return failedPrecondition("another berthd is running with state dir \"", state,
                                "\"; stop it or give this one its own --state, --root and --listen");
    }
    return lastErrnoError(strCat("lock \"", path, "\""));
  }
  return owned;
}

// A program installed next to berthd (berth-runtime, berth-shim).
std::string sibling(const char* name) {
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return name;
  self[n] = '\0';
  std::string dir(self);
  dir = dir.substr(0, dir.rfind('/'));
  return fs::join(dir, name);
}

int fail(const Status& st) {
  std::fprintf(stderr, "berthd: %s\n", std::string(st.message()).c_str());
  return 1;
}

}  // namespace

int run(int argc, char** argv) {
  CLI::App app{"berthd: the berth node daemon (CRI v1 runtime and image service)"};
  Config config;
  std::string config_file;
  std::string driver = "cgroupfs";
  app.set_version_flag("--version", kVersion);
  app.add_option("--config", config_file, "config file (TOML or YAML) with the same keys");
  app.add_option("--root", config.root, "persistent state")->capture_default_str();
  app.add_option("--state", config.state, "runtime state")->capture_default_str();
  app.add_option("--listen", config.listen, "CRI socket (default <state>/berth.sock)");
  app.add_option("--cni-conf-dir", config.cni_conf_dir, "CNI network configs")
      ->capture_default_str();
  app.add_option("--cni-bin-dir", config.cni_bin_dirs, "CNI plugin dirs (repeatable)")
      ->capture_default_str();
  app.add_option("--cgroup-driver", driver, "cgroupfs or systemd")->capture_default_str();
  app.add_option("--log-level", config.log_level, "debug, info, warn, error")
      ->capture_default_str();
  app.add_option("--registries-conf", config.registries_conf,
                 "containers-registries.conf(5) file");
  app.add_option("--registry-certs-dir", config.registry_certs_dir, "per-registry TLS files")
      ->capture_default_str();
  app.add_option("--runtime", config.runtime, "OCI runtime of the default handler");
  app.add_option("--pod-cidr", config.pod_cidrs, "this node's pod subnet (repeatable)");
  app.add_option("--pod-cidr-file", config.pod_cidr_file,
                 "where the pod subnets are written for berth-ipam (default <state>/pod-cidr)");
  app.add_option("--node-route", config.node_routes,
                 "another node's pod subnet: \"SUBNET via NODE_IP\" (repeatable)");
  std::string proxy_mode = "nftables", sync_period = "30";
  app.add_option("--components", config.components,
                 "parts to run: cri, cni, proxy, csi (repeatable; default all)")
      ->delimiter(',');
  app.add_option("--kubeconfig", config.kubeconfig, "kubeconfig of the API server");
  app.add_option("--proxy-manifests", config.proxy_manifests,
                 "directory of Service/EndpointSlice manifests (standalone nodes)");
  app.add_option("--proxy-mode", proxy_mode, "nftables, iptables or off")->capture_default_str();
  app.add_option("--cluster-cidr", config.cluster_cidrs, "the cluster's pod CIDRs (repeatable)")
      ->delimiter(',');
  app.add_option("--node-name", config.node_name, "this node's Node name (default hostname)");
  app.add_option("--node-ip", config.node_ips, "this node's addresses (repeatable)")
      ->delimiter(',');
  app.add_option("--nodeport-addresses", config.nodeport_addresses,
                 "CIDRs of the node addresses that accept NodePorts (repeatable)")
      ->delimiter(',');
  app.add_option("--proxy-healthz-address", config.proxy_healthz_address,
                 "host:port of the proxy's /healthz (\"\" to disable)")
      ->capture_default_str();
  app.add_option("--proxy-metrics-address", config.proxy_metrics_address,
                 "host:port of /metrics (\"\" to disable)")
      ->capture_default_str();
  app.add_option("--proxy-sync-period", sync_period, "full resync period in seconds")
      ->capture_default_str();
  app.add_option("--kubelet-root-dir", config.kubelet_root_dir,
                 "kubelet's root dir (CSI plugin and registration sockets)")
      ->capture_default_str();
  app.add_option("--csi-base-dir", config.csi_base_dir,
                 "CSI volumes and their metadata (default <root>/volumes)");
  app.add_option("--csi-endpoint", config.csi_endpoint,
                 "CSI socket (default <kubelet-root-dir>/plugins/hostpath.berth.dev/csi.sock)");
  CLI11_PARSE(app, argc, argv);

  std::vector<std::string> set_by_flags;
  for (const char* name : {"root", "state", "listen", "cni-conf-dir", "cni-bin-dir",
                           "cgroup-driver", "log-level", "registries-conf", "registry-certs-dir",
                           "runtime", "pod-cidr", "pod-cidr-file", "node-route", "components",
                           "kubeconfig", "proxy-manifests", "proxy-mode", "cluster-cidr",
                           "node-name", "node-ip", "nodeport-addresses", "proxy-healthz-address",
                           "proxy-metrics-address", "proxy-sync-period", "kubelet-root-dir",
                           "csi-base-dir", "csi-endpoint"}) {
    if (app.count(std::string("--") + name) > 0) set_by_flags.emplace_back(name);
  }
  if (app.count("--cgroup-driver") > 0) {
    auto d = parseCgroupDriver(driver);
    if (!d.ok()) return fail(d.status());
    config.cgroup_driver = *d;
  }
  if (app.count("--proxy-mode") > 0) {
    auto m = parseProxyMode(proxy_mode);
    if (!m.ok()) return fail(m.status());
    config.proxy_mode = *m;
  }
  if (app.count("--proxy-sync-period") > 0) {
    auto p = parseSyncPeriod(sync_period);
    if (!p.ok()) return fail(p.status());
    config.proxy_sync_period_s = *p;
  }
  if (!config_file.empty()) {
    Status st = applyConfigFile(config_file, set_by_flags, config);
    if (!st.ok()) return fail(st);
  }
  if (Status st = finalize(config); !st.ok()) return fail(st);
  if (config.runtime.empty()) config.runtime = sibling("berth-runtime");

  log::Options log_options;
  log_options.level = *log::parseLevel(config.log_level);
  if (Status st = log::init(log_options); !st.ok()) return fail(st);
  auto logger = log::get("berthd");

  for (const std::string& dir : {config.root, config.state}) {
    if (Status st = fs::mkdirAll(dir, 0711); !st.ok()) return fail(st);
  }
  auto lock = lockStateDir(config.state);
  if (!lock.ok()) return fail(lock.status());

  // Signals are taken synchronously by the main thread; block them before gRPC starts
  // its threads so they inherit the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const bool run_cri = runs(config, "cri");
  const bool run_cni = runs(config, "cni");
  logger->info("berthd {} components: {}", kVersion, joinStrings(config.components, ", "));

  // The node side of the pod network: this node's pod subnets for berth-ipam
  // (podCIDRFile) and one route per other node's pod subnet (host-gw), from the config
  // (again on SIGHUP) and the Node objects when an API server is reachable.
  std::unique_ptr<NodeNetworkComponent> node_network;
  std::unique_ptr<cni::CniRuntime> network;
  if (run_cni) {
    auto started = NodeNetworkComponent::start(config);
    if (!started.ok()) return fail(withContext(started.status(), "set up the node's pod network"));
    node_network = std::move(*started);
    cni::CniOptions cni_options;
    cni_options.conf_dir = config.cni_conf_dir;
    cni_options.bin_dirs = config.cni_bin_dirs;
    cni_options.cache_dir = fs::join(config.root, "cni");
    auto created = cni::CniRuntime::create(cni_options);
    if (!created.ok()) return fail(created.status());
    network = std::move(*created);
  }

  // CRI: images and pods, with their records in one database.
  std::unique_ptr<Database> db;
  std::unique_ptr<image::ImageService> images;
  std::unique_ptr<cri::PodStore> pod_store;
  std::unique_ptr<cri::PodManager> pods;
  std::unique_ptr<cri::CriRuntimeService> runtime_service;
  std::unique_ptr<cri::CriImageService> image_service;
  std::unique_ptr<grpc::Server> server;
  if (run_cri) {
    auto opened = Database::open(fs::join(config.root, "berth.db"));
    if (!opened.ok()) return fail(opened.status());
    db = std::move(*opened);
    image::ImageServiceOptions image_options;
    image_options.root = config.root;
    image_options.registries_conf = config.registries_conf;
    image_options.certs_dir = config.registry_certs_dir;
    auto image_store = image::ImageService::open(image_options, db.get());
    if (!image_store.ok()) return fail(image_store.status());
    images = std::move(*image_store);

    cri::RuntimeInfo info;
    info.runtime_version = kVersion;
    info.systemd_cgroup_driver = config.cgroup_driver == CgroupDriver::kSystemd;
    if (network) {
      info.network_ready = [net = network.get()]() -> Status {
        cni::NetworkStatus st = net->status();
        if (st.ready) return absl::OkStatus();
        return failedPrecondition(st.message);
      };
    } else {
      info.network_ready = [] {
        return failedPrecondition(
            "berthd runs without its cni component: only host-network pods can run");
      };
    }
    // Pods: one shim per pod, adoption of what runs.
    auto store = cri::PodStore::open(db.get());
    if (!store.ok()) return fail(store.status());
    pod_store = std::move(*store);
    cri::PodManagerOptions pod_options;
    pod_options.state_dir = config.state;
    pod_options.shim_binary = sibling("berth-shim");
    pod_options.runtime = config.runtime;
    pod_options.systemd_cgroup = config.cgroup_driver == CgroupDriver::kSystemd;
    pod_options.shim_log_level = config.log_level;
    auto manager = cri::PodManager::create(pod_options, pod_store.get(), images.get(),
                                           network.get());
    if (!manager.ok()) {
      // Serve images and status anyway; RuntimeReady says why pods cannot run.
      logger->error("pods cannot run: {}", std::string(manager.status().message()));
      info.runtime_ready = [st = manager.status()] { return st; };
    } else {
      pods = std::move(*manager);
      if (Status st = pods->recover(); !st.ok()) {
        logger->error("adopting the pods of a previous berthd failed: {}",
                      std::string(st.message()));
      }
    }
    runtime_service = std::make_unique<cri::CriRuntimeService>(info, pods.get());
    image_service = std::make_unique<cri::CriImageService>(*images);

    // A socket left by a berthd that died is removed; the state-dir lock says it is ours.
    ::unlink(config.listen.c_str());
    if (Status st = fs::mkdirAll(config.listen.substr(0, config.listen.rfind('/')), 0711);
        !st.ok()) {
      return fail(st);
    }
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix://" + config.listen, grpc::InsecureServerCredentials());
    builder.SetMaxReceiveMessageSize(16 << 20);
    builder.SetMaxSendMessageSize(16 << 20);
    builder.RegisterService(runtime_service.get());
    builder.RegisterService(image_service.get());
    server = builder.BuildAndStart();
    if (!server) {
      return fail(internalError("serve CRI on \"", config.listen,
                                "\" failed (see the gRPC log above); check the path is writable"));
    }
    if (::chmod(config.listen.c_str(), 0660) != 0) {
      return fail(lastErrnoError(strCat("chmod 0660 \"", config.listen, "\"")));
    }
    logger->info("berthd {} serving CRI v1 on unix://{} (root {}, state {}, cgroup driver {})",
                 kVersion, config.listen, config.root, config.state,
                 cgroupDriverName(config.cgroup_driver));
  }
  auto stopCri = [&] {
    if (pods) pods->closeEventStreams();  // event streams end now, not at the deadline
    if (server) {
      server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
      server->Wait();
      ::unlink(config.listen.c_str());
    }
  };

  // Storage: the CSI driver (and its provisioner with an API server).
  auto csi_component = CsiComponent::start(config);
  if (!csi_component.ok()) {
    stopCri();
    return fail(withContext(csi_component.status(),
                            "remove csi from components to run without the CSI driver"));
  }

  // The Service proxy (nftables or iptables), when configured with a source.
  auto proxy_component = ProxyComponent::start(config);
  if (!proxy_component.ok()) {
    csi_component->reset();
    stopCri();
    return fail(withContext(proxy_component.status(),
                            "start the service proxy (set proxy-mode off to run without it)"));
  }

  int sig = 0;
  for (;;) {
    sigwait(&signals, &sig);
    if (sig != SIGHUP) break;
    // SIGHUP: re-read the pod network keys of the config file (flags still win).
    Config fresh = config;
    for (auto [key, field] : {std::pair{"pod-cidr", &fresh.pod_cidrs},
                              std::pair{"node-route", &fresh.node_routes}}) {
      if (std::find(set_by_flags.begin(), set_by_flags.end(), key) == set_by_flags.end()) {
        field->clear();
      }
    }
    Status st = config.config_file.empty()
                    ? absl::OkStatus()
                    : applyConfigFile(config.config_file, set_by_flags, fresh);
    if (st.ok()) st = finalize(fresh);
    if (st.ok() && node_network) st = node_network->reload(fresh);
    if (st.ok()) {
      config.pod_cidrs = fresh.pod_cidrs;
      config.node_routes = fresh.node_routes;
    } else {
      logger->error("SIGHUP: pod network not reloaded: {}", std::string(st.message()));
    }
  }
  logger->info("received {}; shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  proxy_component->reset();  // rules stay in place: Services keep working while berthd is down
  csi_component->reset();    // mounts stay: pods keep their volumes while berthd is down
  stopCri();
  return 0;
}

}  // namespace berth::daemon

int main(int argc, char** argv) { return berth::daemon::run(argc, argv); }
