// PodManager: ContainerStats, ListContainerStats, PodSandboxStats,
// ListPodSandboxStats, on top of cri/container_stats.h (where a container's cgroup is
// on this host and what its counters are; counters the host lacks stay unset). The
// writable layer is the container's active snapshot; pod network usage is
// /proc/<pid>/net/dev of a process inside the pod's network namespace. See
// pod_manager.h.

#include "common/fs.h"
#include "common/strings.h"
#include "cri/pod_manager.h"
#include "cri/pod_manager_internal.h"
#include "cri/container_stats.h"

namespace berth::cri {

namespace v1 = ::runtime::v1;

namespace {

// The cgroup counters of a running container; nullopt when it is not running or its
// cgroup is gone (cpu and memory then carry only their timestamps).
std::optional<CgroupUsage> containerUsage(const std::string& cgroups_path, const ContainerRecord& c) {
  if (c.state != v1::CONTAINER_RUNNING) return std::nullopt;
  auto usage = readContainerCgroupUsage(CgroupRoot{}, cgroups_path, c.id);
  if (!usage.ok()) return std::nullopt;
  return *usage;
}

}  // namespace

std::optional<uint64_t> PodManager::nanoCores(const std::string& key,
                                              const std::optional<CgroupUsage>& usage,
                                              int64_t now) {
  if (!usage || !usage->cpu_usage_ns) return std::nullopt;
  return cpu_rates_.update(key, *usage->cpu_usage_ns, now);
}

v1::ContainerStats PodManager::containerStatsFor(const PodRecord& pod, const ContainerRecord& c,
                                                std::optional<CgroupUsage>* usage) {
  ContainerStatsInput in;
  in.timestamp_ns = statsTimestampNow();
  in.attributes.set_id(c.id);
  *in.attributes.mutable_metadata() = c.config.metadata();
  *in.attributes.mutable_labels() = c.config.labels();
  *in.attributes.mutable_annotations() = c.config.annotations();
  in.usage = containerUsage(containerCgroupsPath(pod, c.id), c);
  in.usage_nano_cores = nanoCores(c.id, in.usage, in.timestamp_ns);
  if (auto layer = images_->snapshotter().usage(c.snapshot_key); layer.ok()) {
    in.writable_layer = WritableLayerUsage{images_->snapshotter().root(),
                                           static_cast<uint64_t>(layer->bytes),
                                           static_cast<uint64_t>(layer->inodes)};
  }
  if (usage != nullptr) *usage = in.usage;
  return buildContainerStats(in);
}

StatusOr<v1::ContainerStats> PodManager::containerStats(const std::string& id) {
  ASSIGN_OR_RETURN(ContainerRecord c, store_->getContainer(id));
  ASSIGN_OR_RETURN(PodRecord pod, store_->getPod(c.pod_id));
  return containerStatsFor(pod, c, nullptr);
}

StatusOr<std::vector<v1::ContainerStats>> PodManager::listContainerStats(
    const v1::ContainerStatsFilter& filter) {
  ContainerFilter f;
  f.id_prefix = filter.id();
  f.pod_id_prefix = filter.pod_sandbox_id();
  for (const auto& [k, v] : filter.label_selector()) f.labels.emplace_back(k, v);
  ASSIGN_OR_RETURN(auto records, store_->listContainers(f));
  std::map<std::string, PodRecord> pods;  // each pod read once
  std::vector<v1::ContainerStats> out;
  for (const ContainerRecord& c : records) {
    auto it = pods.find(c.pod_id);
    if (it == pods.end()) {
      auto pod = store_->getPod(c.pod_id);
      if (!pod.ok()) continue;  // removed meanwhile
      it = pods.emplace(c.pod_id, std::move(*pod)).first;
    }
    out.push_back(containerStatsFor(it->second, c, nullptr));
  }
  return out;
}

StatusOr<v1::PodSandboxStats> PodManager::podSandboxStats(const std::string& pod_id) {
  ASSIGN_OR_RETURN(PodRecord pod, store_->getPod(pod_id));
  PodSandboxStatsInput in;
  in.timestamp_ns = statsTimestampNow();
  in.attributes.set_id(pod.id);
  *in.attributes.mutable_metadata() = pod.config.metadata();
  *in.attributes.mutable_labels() = pod.config.labels();
  *in.attributes.mutable_annotations() = pod.config.annotations();
  ASSIGN_OR_RETURN(auto containers, store_->listContainers(containersOf(pod.id)));
  std::vector<CgroupUsage> usages;
  int net_pid = 0;
  for (const ContainerRecord& c : containers) {
    std::optional<CgroupUsage> usage;
    in.containers.push_back(containerStatsFor(pod, c, &usage));  // cgroup files read once
    if (usage) usages.push_back(*usage);
    if (net_pid == 0 && c.state == v1::CONTAINER_RUNNING) net_pid = containerPid(c);
  }
  // berth has no pod-level cgroup of its own: the pod is the sum of its containers.
  if (!usages.empty()) in.usage = sumCgroupUsage(usages);
  in.usage_nano_cores = nanoCores("pod/" + pod.id, in.usage, in.timestamp_ns);
  if (net_pid > 0 && !pod.netns_path.empty()) {
    if (auto net = readNetworkUsage(net_pid, in.timestamp_ns); net.ok()) in.network = *net;
  }
  return buildPodSandboxStats(std::move(in));
}

StatusOr<std::vector<v1::PodSandboxStats>> PodManager::listPodSandboxStats(
    const v1::PodSandboxStatsFilter& filter) {
  PodFilter f;
  f.id_prefix = filter.id();
  for (const auto& [k, v] : filter.label_selector()) f.labels.emplace_back(k, v);
  ASSIGN_OR_RETURN(auto pods, store_->listPods(f));
  std::vector<v1::PodSandboxStats> out;
  for (const PodRecord& p : pods) {
    auto s = podSandboxStats(p.id);
    if (s.ok()) out.push_back(std::move(*s));
  }
  return out;
}

}  // namespace berth::cri
