// PodManager: containers (CreateContainer, StartContainer, StopContainer,
// RemoveContainer, ContainerStatus, ListContainers, ExecSync, ReopenContainerLog).
// See pod_manager.h.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "common/fs.h"
#include "common/log.h"
#include "common/scope_guard.h"
#include "common/strings.h"
#include "cri/container_spec.h"
#include "cri/pod_manager.h"
#include "cri/pod_manager_internal.h"
#include "runtime/cgroups/manager.h"
#include "runtime/oci/config.h"

namespace berth::cri {

namespace v1 = ::runtime::v1;

v1::ContainerStatus PodManager::containerStatusFromRecord(const ContainerRecord& c) const {
  v1::ContainerStatus s;
  s.set_id(c.id);
  *s.mutable_metadata() = c.config.metadata();
  s.set_state(c.state);
  s.set_created_at(c.created_at);
  s.set_started_at(c.started_at);
  s.set_finished_at(c.finished_at);
  s.set_exit_code(c.exit_code);
  *s.mutable_image() = c.config.image();
  s.set_image_ref(c.image_ref);
  s.set_image_id(c.image_ref);
  s.set_reason(c.reason);
  s.set_message(c.message);
  *s.mutable_labels() = c.config.labels();
  *s.mutable_annotations() = c.config.annotations();
  for (const auto& m : c.config.mounts()) *s.add_mounts() = m;
  s.set_log_path(c.log_path);
  if (c.config.has_linux() && c.config.linux().has_resources()) {
    *s.mutable_resources()->mutable_linux() = c.config.linux().resources();
  }
  return s;
}

StatusOr<std::string> PodManager::createContainer(const std::string& pod_id,
                                                  const v1::ContainerConfig& config,
                                                  const v1::PodSandboxConfig& sandbox_config) {
  if (!config.has_metadata() || config.metadata().name().empty()) {
    return invalidArgument("ContainerConfig.metadata.name is required");
  }
  const std::string& name = config.metadata().name();
  if (config.image().image().empty()) {
    return invalidArgument("ContainerConfig.image.image of container \"", name, "\" is empty");
  }
  ASSIGN_OR_RETURN(PodRecord pod, store_->getPod(pod_id));
  auto lock = podLock(pod.id);
  std::lock_guard<std::mutex> guard(*lock);
  ASSIGN_OR_RETURN(pod, store_->getPod(pod.id));
  const std::string ctx = strCat("create container \"", name, "\" in pod ", pod.id.substr(0, 13));
  if (pod.state != v1::SANDBOX_READY) {
    return failedPrecondition(ctx, ": the pod sandbox is not ready (stopped or failed); "
                              "create a new pod sandbox");
  }
  auto image = images_->status(config.image().image());
  if (!image.ok()) {
    if (absl::IsNotFound(image.status())) {
      return notFound(ctx, ": image \"", config.image().image(),
                      "\" is not present; pull it first (PullImage / berthctl pull)");
    }
    return withContext(image.status(), ctx);
  }
  ASSIGN_OR_RETURN(image::ImageConfig image_config,
                   withContext(images_->config(*image), ctx));

  ContainerRecord rec;
  rec.id = newId();
  rec.pod_id = pod.id;
  rec.config = config;
  rec.state = v1::CONTAINER_CREATED;
  rec.created_at = nowNanos();
  rec.image_ref = image->id;
  rec.bundle = bundleDir(rec.id);
  rec.snapshot_key = rec.id;
  if (!pod.config.log_directory().empty() && !config.log_path().empty()) {
    rec.log_path = fs::join(pod.config.log_directory(), config.log_path());
  }
  auto clock = containerLock(rec.id);
  std::lock_guard<std::mutex> cguard(*clock);
  Rollback rollback;

  // 1. The writable snapshot, mounted as the bundle's rootfs.
  const std::string parent = image->chain_ids.empty() ? "" : image->chain_ids.back();
  auto mounts = images_->snapshotter().prepareActive(rec.snapshot_key, parent);
  if (!mounts.ok()) return withContext(mounts.status(), ctx);
  rollback.add([this, key = rec.snapshot_key] { (void)images_->snapshotter().removeActive(key); });
  const std::string rootfs = fs::join(rec.bundle, "rootfs");
  rollback.add([bundle = rec.bundle] { (void)fs::removeAll(bundle); });
  RETURN_IF_ERROR_CTX(fs::mkdirAll(rootfs, 0755), ctx);
  RETURN_IF_ERROR_CTX(images_->snapshotter().mount(rec.snapshot_key, rootfs), ctx);
  rollback.add([rootfs] { (void)unmountIfMounted(rootfs); });

  // 2. The OCI spec.
  ContainerSpecInput in;
  in.container_id = rec.id;
  in.sandbox_id = pod.id;
  in.config = config;
  in.sandbox_config = sandbox_config.has_metadata() ? sandbox_config : pod.config;
  in.image = image_config;
  in.image_name = image->repo_tags.empty() ? config.image().image() : image->repo_tags.front();
  in.rootfs = rootfs;
  const std::string ns = nsDir(pod.id);
  in.namespaces.network = pod.netns_path.empty() ? fs::join(ns, "net") : pod.netns_path;
  in.namespaces.ipc = fs::join(ns, "ipc");
  in.namespaces.uts = fs::join(ns, "uts");
  in.namespaces.pid = fs::join(ns, "pid");
  const auto& pid_mode = config.linux().security_context().namespace_options().pid();
  if (pid_mode == v1::TARGET) {
    const std::string& target = config.linux().security_context().namespace_options().target_id();
    auto t = store_->getContainer(target);
    if (!t.ok() || t->pod_id != pod.id) {
      return notFound(ctx, ": namespace_options.target_id \"", target,
                      "\" is not a container of this pod");
    }
    int pid = containerPid(*t);
    if (pid == 0) return failedPrecondition(ctx, ": target container ", target, " is not running");
    in.target_pid_namespace = strCat("/proc/", pid, "/ns/pid");
  }
  const std::string files = podDir(pod.id);
  in.files.hostname = fs::join(files, "hostname");
  in.files.hosts = fs::join(files, "hosts");
  in.files.resolv_conf = fs::join(files, "resolv.conf");
  in.files.shm = fs::join(files, "shm");
  in.hostname = pod.config.hostname();
  in.cgroups_path = containerCgroupsPath(pod, rec.id);
  in.cgroup_v2 = host_.cgroup_v2;
  in.min_oom_score_adj = host_.min_oom_score_adj;
  in.swap_available = host_.swap_available;
  ASSIGN_OR_RETURN(in.user, withContext(resolveContainerUser(config, image_config.config, rootfs,
                                                             config.image().image()),
                                        ctx));
  ASSIGN_OR_RETURN(oci::Spec spec, withContext(buildContainerSpec(in), ctx));
  RETURN_IF_ERROR_CTX(fs::writeFileAtomic(fs::join(rec.bundle, "config.json"),
                                          oci::toJson(spec).dump(), 0600),
                      ctx);
  // The stop signal is decided now, from the image this container was created from.
  auto stop_signal = containerStopSignal(config, image_config.config);
  RETURN_IF_ERROR_CTX(stop_signal.status(), ctx);
  RETURN_IF_ERROR_CTX(fs::writeFileAtomic(fs::join(rec.bundle, "stop-signal"),
                                          std::to_string(*stop_signal), 0600),
                      ctx);

  // 3. The runtime's container, owned by the pod's shim.
  if (!rec.log_path.empty()) {
    RETURN_IF_ERROR_CTX(fs::mkdirAll(rec.log_path.substr(0, rec.log_path.rfind('/')), 0755), ctx);
  }
  shim::ContainerSpec cs;
  cs.id = rec.id;
  cs.bundle = rec.bundle;
  cs.log_path = rec.log_path;
  cs.tty = config.tty();
  cs.stdin = config.stdin();
  cs.stdin_once = config.stdin_once();
  shim::ShimClient client = shimClient(pod);
  auto created = client.createContainer(cs);
  if (!created.ok()) return withContext(created.status(), ctx);
  rollback.add([this, client, id = rec.id] {
    if (!client.deleteContainer(id, /*force=*/true).ok()) (void)runtimeDelete(id);
  });

  // 4. The record (AlreadyExists for a duplicate name undoes all of the above).
  RETURN_IF_ERROR_CTX(store_->addContainer(rec), ctx);
  rollback.commit();
  emit(v1::CONTAINER_CREATED_EVENT, rec);
  return rec.id;
}

Status PodManager::startContainer(const std::string& id) {
  ASSIGN_OR_RETURN(ContainerRecord c, store_->getContainer(id));
  auto lock = containerLock(c.id);
  std::lock_guard<std::mutex> guard(*lock);
  ASSIGN_OR_RETURN(c, store_->getContainer(c.id));
  const std::string ctx = strCat("start container ", c.id.substr(0, 13), " (\"",
                                 c.config.metadata().name(), "\")");
  if (c.state != v1::CONTAINER_CREATED) {
    return failedPrecondition(ctx, ": it is ", v1::ContainerState_Name(c.state),
                              "; only a CREATED container can be started");
  }
  ASSIGN_OR_RETURN(PodRecord pod, store_->getPod(c.pod_id));
  auto st = shimClient(pod).startContainer(c.id);
  if (!st.ok()) {
    // A failed start leaves the container exited with the runtime's message.
    c.state = v1::CONTAINER_EXITED;
    c.finished_at = nowNanos();
    c.exit_code = 128;
    c.reason = "StartError";
    c.message = std::string(st.status().message());
    (void)store_->updateContainer(c);
    emit(v1::CONTAINER_STOPPED_EVENT, c);
    return withContext(st.status(), ctx);
  }
  applyState(c, *st);
  return absl::OkStatus();
}

Status PodManager::stopContainer(const std::string& id, int64_t timeout_s) {
  ASSIGN_OR_RETURN(ContainerRecord c, store_->getContainer(id));
  auto lock = containerLock(c.id);
  std::lock_guard<std::mutex> guard(*lock);
  ASSIGN_OR_RETURN(c, store_->getContainer(c.id));
  if (c.state != v1::CONTAINER_RUNNING && c.state != v1::CONTAINER_CREATED) {
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(PodRecord pod, store_->getPod(c.pod_id));
  int signal = SIGTERM;
  if (auto text = fs::readFile(fs::join(c.bundle, "stop-signal")); text.ok()) {
    signal = std::atoi(text->c_str());
  }
  auto st = shimClient(pod).stopContainer(c.id, std::max<int64_t>(timeout_s, 0), signal);
  if (!st.ok()) {
    if (absl::IsUnavailable(st.status())) {
      reconcileWithoutShim(pod, c);
      return absl::OkStatus();
    }
    return withContext(st.status(), strCat("stop container ", c.id.substr(0, 13)));
  }
  applyState(c, *st);
  return absl::OkStatus();
}

Status PodManager::removeContainerLocked(const PodRecord& pod, const ContainerRecord& c) {
  const std::string ctx = strCat("remove container ", c.id.substr(0, 13));
  Status st = shimClient(pod).deleteContainer(c.id, /*force=*/true);
  if (!st.ok() && !absl::IsNotFound(st)) {
    if (!absl::IsUnavailable(st)) return withContext(st, ctx);
    RETURN_IF_ERROR_CTX(runtimeDelete(c.id), ctx);
  }
  RETURN_IF_ERROR_CTX(unmountIfMounted(fs::join(c.bundle, "rootfs")), ctx);
  RETURN_IF_ERROR_CTX(images_->snapshotter().removeActive(c.snapshot_key), ctx);
  RETURN_IF_ERROR_CTX(fs::removeAll(c.bundle), ctx);
  // The cgroup the runtime left (cgroupfs driver; berth-runtime delete removes it too).
  RETURN_IF_ERROR_CTX(store_->removeContainer(c.id), ctx);
  cpu_rates_.forget(c.id);
  emit(v1::CONTAINER_DELETED_EVENT, c);
  return absl::OkStatus();
}

Status PodManager::removeContainer(const std::string& id) {
  auto found = store_->getContainer(id);
  if (absl::IsNotFound(found.status())) return absl::OkStatus();
  if (!found.ok()) return found.status();
  ContainerRecord c = *found;
  ASSIGN_OR_RETURN(PodRecord pod, store_->getPod(c.pod_id));
  auto plock = podLock(pod.id);
  std::lock_guard<std::mutex> pguard(*plock);
  auto lock = containerLock(c.id);
  std::lock_guard<std::mutex> guard(*lock);
  found = store_->getContainer(c.id);
  if (absl::IsNotFound(found.status())) return absl::OkStatus();
  if (!found.ok()) return found.status();
  return removeContainerLocked(pod, *found);
}

StatusOr<ContainerRecord> PodManager::freshContainer(const std::string& id) {
  ASSIGN_OR_RETURN(ContainerRecord c, store_->getContainer(id));
  if (c.state != v1::CONTAINER_RUNNING && c.state != v1::CONTAINER_CREATED) return c;
  auto lock = containerLock(c.id);
  std::lock_guard<std::mutex> guard(*lock);
  ASSIGN_OR_RETURN(c, store_->getContainer(c.id));
  if (c.state != v1::CONTAINER_RUNNING && c.state != v1::CONTAINER_CREATED) return c;
  auto pod = store_->getPod(c.pod_id);
  if (!pod.ok()) return c;
  auto st = shimClient(*pod).state(c.id);
  if (st.ok()) {
    applyState(c, *st);
  } else if (absl::IsUnavailable(st.status()) || absl::IsNotFound(st.status())) {
    reconcileWithoutShim(*pod, c);
  }
  return c;
}

StatusOr<v1::ContainerStatusResponse> PodManager::containerStatus(const std::string& id,
                                                                  bool verbose) {
  ASSIGN_OR_RETURN(ContainerRecord c, freshContainer(id));
  v1::ContainerStatusResponse response;
  *response.mutable_status() = containerStatusFromRecord(c);
  if (verbose) {
    shim::Json info = {{"sandboxID", c.pod_id}, {"bundle", c.bundle},
                       {"snapshotKey", c.snapshot_key}, {"pid", containerPid(c)}};
    if (auto spec = fs::readFile(fs::join(c.bundle, "config.json")); spec.ok()) {
      info["runtimeSpec"] = shim::Json::parse(*spec, nullptr, false);
    }
    (*response.mutable_info())["info"] = info.dump();
  }
  return response;
}

StatusOr<std::vector<v1::Container>> PodManager::listContainers(const v1::ContainerFilter& filter) {
  ContainerFilter f;
  f.id_prefix = filter.id();
  f.pod_id_prefix = filter.pod_sandbox_id();
  if (filter.has_state()) f.state = filter.state().state();
  for (const auto& [k, v] : filter.label_selector()) f.labels.emplace_back(k, v);
  ASSIGN_OR_RETURN(auto records, store_->listContainers(f));
  std::vector<v1::Container> out;
  out.reserve(records.size());
  for (const ContainerRecord& c : records) {
    v1::Container x;
    x.set_id(c.id);
    x.set_pod_sandbox_id(c.pod_id);
    *x.mutable_metadata() = c.config.metadata();
    *x.mutable_image() = c.config.image();
    x.set_image_ref(c.image_ref);
    x.set_image_id(c.image_ref);
    x.set_state(c.state);
    x.set_created_at(c.created_at);
    *x.mutable_labels() = c.config.labels();
    *x.mutable_annotations() = c.config.annotations();
    out.push_back(std::move(x));
  }
  return out;
}

StatusOr<v1::ExecSyncResponse> PodManager::execSync(const std::string& id,
                                                    const std::vector<std::string>& cmd,
                                                    int64_t timeout_s) {
  if (cmd.empty()) return invalidArgument("ExecSync: cmd is empty");
  ASSIGN_OR_RETURN(ContainerRecord c, freshContainer(id));
  if (c.state != v1::CONTAINER_RUNNING) {
    return failedPrecondition("exec in container ", c.id.substr(0, 13), ": it is ",
                              v1::ContainerState_Name(c.state), ", not running");
  }
  ASSIGN_OR_RETURN(PodRecord pod, store_->getPod(c.pod_id));
  shim::ExecSpec spec;
  spec.id = c.id;
  spec.argv = cmd;
  spec.timeout_s = std::max<int64_t>(timeout_s, 0);
  auto r = shimClient(pod).execSync(spec);
  if (!r.ok()) return withContext(r.status(), strCat("exec in container ", c.id.substr(0, 13)));
  if (r->timed_out) {
    return absl::DeadlineExceededError(strCat("command \"", joinStrings(cmd, " "), "\" in container ",
                            c.id.substr(0, 13), " timed out after ", timeout_s, "s"));
  }
  v1::ExecSyncResponse out;
  out.set_stdout(r->stdout_data);
  out.set_stderr(r->stderr_data);
  out.set_exit_code(r->exit_code);
  return out;
}

Status PodManager::updateContainerResources(const std::string& id,
                                            const v1::LinuxContainerResources& resources) {
  ASSIGN_OR_RETURN(ContainerRecord c, freshContainer(id));
  auto lock = containerLock(c.id);
  std::lock_guard<std::mutex> guard(*lock);
  ASSIGN_OR_RETURN(c, store_->getContainer(c.id));
  const std::string ctx = strCat("update resources of container ", c.id.substr(0, 13));
  if (c.state != v1::CONTAINER_RUNNING && c.state != v1::CONTAINER_CREATED) {
    return failedPrecondition(ctx, ": it is ", v1::ContainerState_Name(c.state),
                              "; only created or running containers can be updated");
  }
  ASSIGN_OR_RETURN(PodRecord pod, store_->getPod(c.pod_id));
  const std::string config_path = fs::join(c.bundle, "config.json");
  ASSIGN_OR_RETURN(std::string text, withContext(fs::readFile(config_path), ctx));
  ASSIGN_OR_RETURN(oci::Spec spec, withContext(oci::parseSpec(text), ctx));
  if (!spec.linux) spec.linux = oci::Linux{};
  oci::Resources base = spec.linux->resources.value_or(oci::Resources{});
  // Structured limits are replaced as a whole; devices stay as created.
  base.cpu.reset();
  base.memory.reset();
  base.hugepageLimits.clear();
  base.unified.clear();
  ASSIGN_OR_RETURN(oci::Resources updated,
                   withContext(convertResources(resources, host_.swap_available, base), ctx));
  if (options_.systemd_cgroup) {
    return unimplemented(ctx, ": the systemd cgroup driver cannot update resources yet; use "
                              "--cgroup-driver cgroupfs");
  }
  ASSIGN_OR_RETURN(std::string mount_root, withContext(cgroups::detectCgroup2Mount(), ctx));
  ASSIGN_OR_RETURN(std::string path,
                   withContext(cgroups::resolveCgroupsPath(containerCgroupsPath(pod, c.id), c.id),
                               ctx));
  cgroups::Options copts;
  copts.mount_root = mount_root;
  copts.path = path;
  copts.container_id = c.id;
  auto manager = cgroups::newFs2Manager(copts);
  RETURN_IF_ERROR_CTX(manager->apply(updated), ctx);
  // Keep the bundle and the record in step, so status and a later update see it.
  spec.linux->resources = updated;
  RETURN_IF_ERROR_CTX(fs::writeFileAtomic(config_path, oci::toJson(spec).dump(), 0600), ctx);
  *c.config.mutable_linux()->mutable_resources() = resources;
  RETURN_IF_ERROR_CTX(store_->updateContainerConfig(c), ctx);
  return absl::OkStatus();
}

Status PodManager::reopenContainerLog(const std::string& id) {
  ASSIGN_OR_RETURN(ContainerRecord c, freshContainer(id));
  if (c.state != v1::CONTAINER_RUNNING) {
    return failedPrecondition("reopen the log of container ", c.id.substr(0, 13), ": it is ",
                              v1::ContainerState_Name(c.state), ", not running");
  }
  ASSIGN_OR_RETURN(PodRecord pod, store_->getPod(c.pod_id));
  return shimClient(pod).reopenLog(c.id);
}

}  // namespace berth::cri
