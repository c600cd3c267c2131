// PodManager: pod sandboxes (RunPodSandbox, StopPodSandbox, RemovePodSandbox,
// PodSandboxStatus, ListPodSandbox). See pod_manager.h.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>

#include "common/fs.h"
#include "common/log.h"
#include "common/scope_guard.h"
#include "common/strings.h"
#include "cri/pod_files.h"
#include "cri/pod_manager.h"
#include "cri/pod_manager_internal.h"
#include "runtime/shim/pod_namespaces.h"

namespace berth::cri {

namespace v1 = ::runtime::v1;

namespace {

const v1::NamespaceOption& namespaceOptions(const v1::PodSandboxConfig& config) {
  return config.linux().security_context().namespace_options();
}

Status validatePodConfig(const v1::PodSandboxConfig& config, const std::string& handler) {
  if (!config.has_metadata()) {
    return invalidArgument("PodSandboxConfig.metadata is required (name, namespace, uid)");
  }
  const auto& m = config.metadata();
  if (m.name().empty()) return invalidArgument("PodSandboxConfig.metadata.name is empty");
  if (m.namespace_().empty()) {
    return invalidArgument("PodSandboxConfig.metadata.namespace of pod \"", m.name(), "\" is empty");
  }
  if (m.attempt() > 0 && m.uid().empty()) {
    return invalidArgument("PodSandboxConfig.metadata.uid of pod \"", m.name(), "\" is empty");
  }
  if (!handler.empty() && handler != "berth" && handler != "runc") {
    return invalidArgument("runtime handler \"", handler,
                           "\" is not configured; berthd serves the default handler \"\" "
                           "(also accepted as \"berth\" or \"runc\")");
  }
  const auto& ns = namespaceOptions(config);
  if (ns.network() == v1::CONTAINER || ns.network() == v1::TARGET) {
    return invalidArgument("namespace_options.network must be POD or NODE for pod \"",
                           m.name(), "\"");
  }
  if (ns.ipc() == v1::CONTAINER || ns.ipc() == v1::TARGET) {
    return invalidArgument("namespace_options.ipc must be POD or NODE for pod \"", m.name(), "\"");
  }
  if (ns.has_userns_options() && ns.userns_options().mode() != v1::NODE) {
    return unimplemented("user namespaces (namespace_options.userns_options) are not supported "
                         "yet; leave userns_options unset for pod \"", m.name(), "\"");
  }
  for (const auto& pm : config.port_mappings()) {
    if (pm.container_port() <= 0 || pm.container_port() > 65535 || pm.host_port() < 0 ||
        pm.host_port() > 65535) {
      return invalidArgument("port mapping ", pm.host_port(), "->", pm.container_port(),
                             " of pod \"", m.name(), "\" is out of range 1-65535");
    }
  }
  return absl::OkStatus();
}

std::string protocolName(v1::Protocol p) {
  switch (p) {
    case v1::UDP: return "udp";
    case v1::SCTP: return "sctp";
    default: return "tcp";
  }
}


}  // namespace

cni::AttachmentSpec PodManager::attachment(const PodRecord& pod) const {
  cni::AttachmentSpec spec;
  spec.container_id = pod.id;
  spec.netns_path = pod.netns_path.empty() ? fs::join(nsDir(pod.id), "net") : pod.netns_path;
  const auto& m = pod.config.metadata();
  spec.args = {{"K8S_POD_NAMESPACE", m.namespace_()},
               {"K8S_POD_NAME", m.name()},
               {"K8S_POD_INFRA_CONTAINER_ID", pod.id},
               {"K8S_POD_UID", m.uid()}};
  for (const auto& pm : pod.config.port_mappings()) {
    if (pm.host_port() <= 0) continue;
    spec.port_mappings.push_back(
        {pm.host_port(), pm.container_port(), protocolName(pm.protocol()), pm.host_ip()});
  }
  return spec;
}

StatusOr<std::string> PodManager::runPodSandbox(const v1::PodSandboxConfig& config,
                                                const std::string& runtime_handler) {
  RETURN_IF_ERROR(validatePodConfig(config, runtime_handler));
  const auto& ns = namespaceOptions(config);
  const bool host_network = ns.network() == v1::NODE;
  const bool host_ipc = ns.ipc() == v1::NODE;
  const std::string pod_name = PodStore::podName(config.metadata());
  const std::string ctx = strCat("run pod sandbox \"", pod_name, "\"");
  if (!host_network && network_ == nullptr) {
    return failedPrecondition(ctx, ": berthd runs without its cni component, so only "
                              "host-network pods can run; add cni to components");
  }

  PodRecord pod;
  pod.id = newId();
  pod.config = config;
  pod.state = v1::SANDBOX_NOTREADY;
  pod.created_at = nowNanos();
  pod.runtime_handler = runtime_handler;
  pod.shim_dir = shimDir(pod.id);
  pod.cgroup_parent = config.linux().cgroup_parent().empty() ? options_.default_cgroup_parent
                                                             : config.linux().cgroup_parent();
  auto lock = podLock(pod.id);
  std::lock_guard<std::mutex> guard(*lock);
  // The record reserves the name first (AlreadyExists for a duplicate, before any work).
  RETURN_IF_ERROR(store_->addPod(pod));
  Rollback rollback;
  rollback.add([&] { (void)store_->removePod(pod.id); });

  // 1. The pod's shim.
  shim::StartOptions start;
  start.shim_binary = options_.shim_binary;
  start.pod_id = pod.id;
  start.state_dir = pod.shim_dir;
  start.runtime = options_.runtime;
  start.runtime_root = options_.runtime_root;
  start.log_level = options_.shim_log_level;
  auto started = shim::startShim(start);
  if (!started.ok()) {
    (void)fs::removeAll(pod.shim_dir);
    return withContext(started.status(), ctx);
  }
  shim::ShimClient client(started->socket);
  rollback.add([client, pid = started->pid, dir = pod.shim_dir] {
    (void)client.shutdown(/*force=*/true);
    waitGone(pid, std::chrono::seconds(5));
    (void)fs::removeAll(dir);
  });

  // 2. Namespaces, pinned under ns/<pod-id>. A pod without a hostname gets the node's.
  char node_hostname[256] = {};
  (void)::gethostname(node_hostname, sizeof(node_hostname) - 1);
  shim::SandboxSpec spec;
  spec.ns_dir = nsDir(pod.id);
  spec.hostname = config.hostname().empty() ? std::string(node_hostname) : config.hostname();
  spec.share_pid = ns.pid() == v1::POD;
  spec.host_network = host_network;
  spec.host_ipc = host_ipc;
  spec.host_uts = host_network;
  for (const auto& [k, v] : config.linux().sysctls()) spec.sysctls[k] = v;
  auto pinned = client.createSandbox(spec);
  if (!pinned.ok()) return withContext(pinned.status(), ctx);
  rollback.add([client, ns_dir = spec.ns_dir, shim_dir = pod.shim_dir] {
    if (!client.removeSandbox(ns_dir).ok()) (void)removeNamespacesWithoutShim(ns_dir, shim_dir);
  });
  pod.netns_path = host_network ? "" : pinned->net;

  // 3. The network (CNI ADD) in the pinned netns.
  if (!host_network) {
    cni::AttachmentSpec net = attachment(pod);
    auto result = network_->setUp(net);
    if (!result.ok()) return withContext(result.status(), ctx);
    rollback.add([this, net] { (void)network_->tearDown(net); });
    pod.ips = result->sandboxIps(net.ifname);
  }

  // 4. hostname, hosts, resolv.conf and the shm tmpfs.
  SandboxFilesOptions file_options;
  file_options.pod_ips = pod.ips;
  file_options.node_hostname = node_hostname;
  file_options.host_hosts = options_.host_hosts;
  file_options.host_resolv_conf = options_.host_resolv_conf;
  auto files = buildSandboxFiles(config, file_options);
  if (!files.ok()) return withContext(files.status(), ctx);
  const std::string dir = podDir(pod.id);
  rollback.add([dir] { (void)removePodDir(dir); });
  auto written = writeSandboxFiles(*files, dir);
  if (!written.ok()) return withContext(written.status(), ctx);
  if (!host_ipc) {
    const std::string shm = fs::join(dir, "shm");
    RETURN_IF_ERROR_CTX(fs::mkdirAll(shm, 0755), ctx);
    std::string data = strCat("mode=1777,size=", options_.shm_size_bytes);
    if (::mount("shm", shm.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, data.c_str()) != 0) {
      return lastErrnoError(strCat(ctx, ": mount the pod's shm tmpfs on \"", shm, "\""));
    }
  }

  // 5. Ready.
  pod.state = v1::SANDBOX_READY;
  RETURN_IF_ERROR_CTX(store_->updatePod(pod), ctx);
  rollback.commit();
  watchPod(pod);
  log::get("berthd")->info("pod {} ({}) ready, ips [{}]", pod.id.substr(0, 13), pod_name,
                           joinStrings(pod.ips, ","));
  return pod.id;
}

Status PodManager::stopPodLocked(PodRecord& pod) {
  Status first;
  auto keep = [&first](Status st) {
    if (first.ok() && !st.ok()) first = std::move(st);
  };
  // Containers first (SIGKILL: CRI asks for a forcible stop).
  auto containers = store_->listContainers(containersOf(pod.id));
  if (containers.ok()) {
    for (ContainerRecord& c : *containers) {
      if (c.state != v1::CONTAINER_RUNNING && c.state != v1::CONTAINER_CREATED) continue;
      auto clock = containerLock(c.id);
      std::lock_guard<std::mutex> cguard(*clock);
      auto fresh = store_->getContainer(c.id);
      if (!fresh.ok()) continue;
      c = *fresh;
      if (c.state != v1::CONTAINER_RUNNING && c.state != v1::CONTAINER_CREATED) continue;
      auto st = shimClient(pod).stopContainer(c.id, 0);
      if (st.ok()) {
        applyState(c, *st);
      } else if (absl::IsUnavailable(st.status()) || absl::IsNotFound(st.status())) {
        // The shim is gone: the container died with it (or never started).
        auto exit = shim::readExitRecord(pod.shim_dir, c.id);
        if (exit.ok()) {
          applyState(c, *exit);
        } else {
          c.state = v1::CONTAINER_EXITED;
          c.finished_at = c.finished_at ? c.finished_at : nowNanos();
          c.exit_code = 255;
          c.reason = "Unknown";
          c.message = "the pod's shim exited; the container's exit status is unknown";
          (void)store_->updateContainer(c);
        }
        (void)runtimeDelete(c.id);
      } else {
        keep(withContext(st.status(), strCat("stop container ", c.id)));
      }
    }
  } else {
    keep(containers.status());
  }
  if (!first.ok()) return first;

  // The network, then the namespaces it lived in.
  if (namespaceOptions(pod.config).network() != v1::NODE && network_ != nullptr) {
    keep(withContext(network_->tearDown(attachment(pod)),
                     strCat("tear down the network of pod ", pod.id)));
  }
  if (!first.ok()) return first;
  Status ns = shimClient(pod).removeSandbox(nsDir(pod.id));
  if (!ns.ok()) keep(removeNamespacesWithoutShim(nsDir(pod.id), pod.shim_dir));
  const std::string shm = fs::join(podDir(pod.id), "shm");
  if (::umount2(shm.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    keep(lastErrnoError(strCat("unmount the shm of pod ", pod.id, " at \"", shm, "\"")));
  }
  if (!first.ok()) return first;
  if (pod.state != v1::SANDBOX_NOTREADY) {
    pod.state = v1::SANDBOX_NOTREADY;
    RETURN_IF_ERROR(store_->updatePod(pod));
  }
  return absl::OkStatus();
}

Status PodManager::stopPodSandbox(const std::string& pod_id) {
  ASSIGN_OR_RETURN(PodRecord pod, store_->getPod(pod_id));
  auto lock = podLock(pod.id);
  std::lock_guard<std::mutex> guard(*lock);
  ASSIGN_OR_RETURN(pod, store_->getPod(pod.id));
  return withContext(stopPodLocked(pod), strCat("stop pod sandbox ", pod.id));
}

Status PodManager::removePodSandbox(const std::string& pod_id) {
  auto found = store_->getPod(pod_id);
  if (absl::IsNotFound(found.status())) return absl::OkStatus();
  if (!found.ok()) return found.status();
  PodRecord pod = *found;
  auto lock = podLock(pod.id);
  std::lock_guard<std::mutex> guard(*lock);
  found = store_->getPod(pod.id);
  if (absl::IsNotFound(found.status())) return absl::OkStatus();
  if (!found.ok()) return found.status();
  pod = *found;
  const std::string ctx = strCat("remove pod sandbox ", pod.id);
  RETURN_IF_ERROR_CTX(stopPodLocked(pod), ctx);
  ASSIGN_OR_RETURN(auto containers, store_->listContainers(containersOf(pod.id)));
  for (const ContainerRecord& c : containers) {
    auto clock = containerLock(c.id);
    std::lock_guard<std::mutex> cguard(*clock);
    RETURN_IF_ERROR_CTX(removeContainerLocked(pod, c), ctx);
  }
  unwatchPod(pod.id);
  auto proc = shim::findShim(pod.shim_dir);
  if (proc.ok()) {
    Status st = shimClient(pod).shutdown(/*force=*/true);
    if (!st.ok() && !absl::IsUnavailable(st)) return withContext(st, ctx);
    waitGone(proc->pid, std::chrono::seconds(5));
  }
  RETURN_IF_ERROR_CTX(removePodDir(podDir(pod.id)), ctx);
  RETURN_IF_ERROR_CTX(fs::removeAll(pod.shim_dir), ctx);
  RETURN_IF_ERROR_CTX(store_->removePod(pod.id), ctx);
  cpu_rates_.forget("pod/" + pod.id);
  log::get("berthd")->info("pod {} removed", pod.id.substr(0, 13));
  return absl::OkStatus();
}

StatusOr<v1::PodSandboxStatusResponse> PodManager::podSandboxStatus(const std::string& pod_id,
                                                                    bool verbose) {
  ASSIGN_OR_RETURN(PodRecord pod, store_->getPod(pod_id));
  v1::PodSandboxStatusResponse response;
  v1::PodSandboxStatus* s = response.mutable_status();
  s->set_id(pod.id);
  *s->mutable_metadata() = pod.config.metadata();
  s->set_state(pod.state);
  s->set_created_at(pod.created_at);
  if (!pod.ips.empty()) {
    s->mutable_network()->set_ip(pod.ips[0]);
    for (size_t i = 1; i < pod.ips.size(); ++i) {
      s->mutable_network()->add_additional_ips()->set_ip(pod.ips[i]);
    }
  }
  *s->mutable_linux()->mutable_namespaces()->mutable_options() = namespaceOptions(pod.config);
  *s->mutable_labels() = pod.config.labels();
  *s->mutable_annotations() = pod.config.annotations();
  s->set_runtime_handler(pod.runtime_handler);
  response.set_timestamp(nowNanos());
  if (verbose) {
    shim::Json info = {{"id", pod.id},
                       {"netnsPath", pod.netns_path},
                       {"shimDir", pod.shim_dir},
                       {"cgroupParent", pod.cgroup_parent},
                       {"runtimeHandler", pod.runtime_handler}};
    auto proc = shim::findShim(pod.shim_dir);
    info["shimPid"] = proc.ok() ? proc->pid : 0;
    (*response.mutable_info())["info"] = info.dump();
  }
  return response;
}

StatusOr<std::vector<v1::PodSandbox>> PodManager::listPodSandbox(
    const v1::PodSandboxFilter& filter) {
  PodFilter f;
  f.id_prefix = filter.id();
  if (filter.has_state()) f.state = filter.state().state();
  for (const auto& [k, v] : filter.label_selector()) f.labels.emplace_back(k, v);
  auto pods = store_->listPods(f);
  if (!pods.ok()) return pods.status();
  std::vector<v1::PodSandbox> out;
  out.reserve(pods->size());
  for (const PodRecord& pod : *pods) {
    v1::PodSandbox p;
    p.set_id(pod.id);
    *p.mutable_metadata() = pod.config.metadata();
    p.set_state(pod.state);
    p.set_created_at(pod.created_at);
    *p.mutable_labels() = pod.config.labels();
    *p.mutable_annotations() = pod.config.annotations();
    p.set_runtime_handler(pod.runtime_handler);
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace berth::cri
