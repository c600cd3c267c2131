// PodManager: ContainerStats, ListContainerStats, PodSandboxStats,
// ListPodSandboxStats. CPU and memory come from the container's cgroup on the cgroup2
// hierarchy berth-runtime places it in (cpu.stat, memory.current, memory.stat,
// memory.max, pids.current); a counter whose file the host lacks (hybrid hosts have
// few v2 controllers) is left unset rather than reported as zero. The writable layer
// is the container's active snapshot; pod network usage is /proc/<pid>/net/dev of a
// process inside the pod's network namespace. See pod_manager.h.
#include <cinttypes>
#include <cstdlib>

#include "common/fs.h"
#include "common/strings.h"
#include "cri/pod_manager.h"
#include "cri/pod_manager_internal.h"
#include "runtime/cgroups/manager.h"

namespace berth::cri {

namespace v1 = ::runtime::v1;

namespace {

// "key value" lines (cpu.stat, memory.stat) into a map.
std::map<std::string, uint64_t> readKeyedFile(const std::string& path) {
  std::map<std::string, uint64_t> out;
  auto text = fs::readFile(path);
  if (!text.ok()) return out;
  for (const std::string& line : split(*text, '\n')) {
    auto fields = split(line, ' ');
    if (fields.size() == 2) out[fields[0]] = std::strtoull(fields[1].c_str(), nullptr, 10);
  }
  return out;
}

std::optional<uint64_t> readNumber(const std::string& path) {
  auto text = fs::readFile(path);
  if (!text.ok()) return std::nullopt;
  std::string t(trim(*text));
  if (t.empty() || t == "max") return std::nullopt;
  return std::strtoull(t.c_str(), nullptr, 10);
}

// The cgroup directory of a cgroupfs-driver cgroups path, "" when unknown.
std::string cgroupDir(const std::string& cgroups_path, const std::string& id) {
  auto mount = cgroups::detectCgroup2Mount();
  if (!mount.ok()) return "";
  auto path = cgroups::resolveCgroupsPath(cgroups_path, id);
  if (!path.ok()) return "";
  return *mount + *path;
}

struct CgroupSample {
  std::optional<uint64_t> cpu_ns;
  std::optional<uint64_t> memory_usage;
  std::optional<uint64_t> working_set;
  std::optional<uint64_t> rss;
  std::optional<uint64_t> page_faults;
  std::optional<uint64_t> major_page_faults;
  std::optional<uint64_t> memory_limit;
  std::optional<uint64_t> processes;
};

CgroupSample sampleCgroup(const std::string& dir) {
  CgroupSample s;
  if (dir.empty() || !fs::exists(dir)) return s;
  auto cpu = readKeyedFile(fs::join(dir, "cpu.stat"));
  if (auto it = cpu.find("usage_usec"); it != cpu.end()) s.cpu_ns = it->second * 1000;
  s.memory_usage = readNumber(fs::join(dir, "memory.current"));
  if (s.memory_usage) {
    auto stat = readKeyedFile(fs::join(dir, "memory.stat"));
    uint64_t inactive = stat.count("inactive_file") ? stat["inactive_file"] : 0;
    s.working_set = *s.memory_usage > inactive ? *s.memory_usage - inactive : 0;
    if (stat.count("anon")) s.rss = stat["anon"];
    if (stat.count("pgfault")) s.page_faults = stat["pgfault"];
    if (stat.count("pgmajfault")) s.major_page_faults = stat["pgmajfault"];
    s.memory_limit = readNumber(fs::join(dir, "memory.max"));
  }
  s.processes = readNumber(fs::join(dir, "pids.current"));
  if (!s.processes) {
    if (auto procs = fs::readFile(fs::join(dir, "cgroup.procs")); procs.ok()) {
      uint64_t n = 0;
      for (const auto& line : split(*procs, '\n')) n += trim(line).empty() ? 0 : 1;
      s.processes = n;
    }
  }
  return s;
}

void setU64(v1::UInt64Value* field, uint64_t v) { field->set_value(v); }

void fillCpuMemory(const CgroupSample& s, int64_t now, std::optional<uint64_t> nano_cores,
                   v1::CpuUsage* cpu, v1::MemoryUsage* memory) {
  cpu->set_timestamp(now);
  if (s.cpu_ns) setU64(cpu->mutable_usage_core_nano_seconds(), *s.cpu_ns);
  if (nano_cores) setU64(cpu->mutable_usage_nano_cores(), *nano_cores);
  memory->set_timestamp(now);
  if (s.working_set) setU64(memory->mutable_working_set_bytes(), *s.working_set);
  if (s.memory_usage) setU64(memory->mutable_usage_bytes(), *s.memory_usage);
  if (s.rss) setU64(memory->mutable_rss_bytes(), *s.rss);
  if (s.page_faults) setU64(memory->mutable_page_faults(), *s.page_faults);
  if (s.major_page_faults) setU64(memory->mutable_major_page_faults(), *s.major_page_faults);
  if (s.memory_limit && s.working_set) {
    setU64(memory->mutable_available_bytes(),
           *s.memory_limit > *s.working_set ? *s.memory_limit - *s.working_set : 0);
  }
}

// /proc/<pid>/net/dev: per interface rx bytes, rx errs, ..., tx bytes, tx errs.
void fillNetwork(int pid, int64_t now, v1::NetworkUsage* net) {
  net->set_timestamp(now);
  auto text = fs::readFile(strCat("/proc/", pid, "/net/dev"));
  if (!text.ok()) return;
  for (const std::string& line : split(*text, '\n')) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name(trim(line.substr(0, colon)));
    if (name == "lo" || name.empty()) continue;
    std::vector<std::string> fields;
    for (const auto& f : split(line.substr(colon + 1), ' ')) {
      if (!f.empty()) fields.push_back(f);
    }
    if (fields.size() < 11) continue;
    v1::NetworkInterfaceUsage* i = net->add_interfaces();
    i->set_name(name);
    setU64(i->mutable_rx_bytes(), std::strtoull(fields[0].c_str(), nullptr, 10));
    setU64(i->mutable_rx_errors(), std::strtoull(fields[2].c_str(), nullptr, 10));
    setU64(i->mutable_tx_bytes(), std::strtoull(fields[8].c_str(), nullptr, 10));
    setU64(i->mutable_tx_errors(), std::strtoull(fields[10].c_str(), nullptr, 10));
    if (name == "eth0") *net->mutable_default_interface() = *i;
  }
}

}  // namespace

std::optional<uint64_t> PodManager::nanoCores(const std::string& key, std::optional<uint64_t> cpu_ns,
                                              int64_t now) {
  if (!cpu_ns) return std::nullopt;
  std::lock_guard<std::mutex> lock(cpu_mu_);
  auto& prev = cpu_samples_[key];
  std::optional<uint64_t> rate;
  if (prev.first > 0 && now > prev.first && *cpu_ns >= prev.second) {
    rate = static_cast<uint64_t>(static_cast<double>(*cpu_ns - prev.second) * 1e9 /
                                 static_cast<double>(now - prev.first));
  }
  prev = {now, *cpu_ns};
  if (cpu_samples_.size() > 4096) cpu_samples_.clear();
  return rate;
}

StatusOr<v1::ContainerStats> PodManager::containerStats(const std::string& id) {
  ASSIGN_OR_RETURN(ContainerRecord c, store_->getContainer(id));
  ASSIGN_OR_RETURN(PodRecord pod, store_->getPod(c.pod_id));
  v1::ContainerStats stats;
  auto* attrs = stats.mutable_attributes();
  attrs->set_id(c.id);
  *attrs->mutable_metadata() = c.config.metadata();
  *attrs->mutable_labels() = c.config.labels();
  *attrs->mutable_annotations() = c.config.annotations();
  const int64_t now = nowNanos();
  CgroupSample s;
  if (c.state == v1::CONTAINER_RUNNING && !options_.systemd_cgroup) {
    s = sampleCgroup(cgroupDir(containerCgroupsPath(pod, c.id), c.id));
  }
  fillCpuMemory(s, now, nanoCores(c.id, s.cpu_ns, now), stats.mutable_cpu(),
                stats.mutable_memory());
  auto* layer = stats.mutable_writable_layer();
  layer->set_timestamp(now);
  layer->mutable_fs_id()->set_mountpoint(images_->snapshotter().root());
  if (auto usage = images_->snapshotter().usage(c.snapshot_key); usage.ok()) {
    setU64(layer->mutable_used_bytes(), static_cast<uint64_t>(usage->bytes));
    setU64(layer->mutable_inodes_used(), static_cast<uint64_t>(usage->inodes));
  }
  return stats;
}

StatusOr<std::vector<v1::ContainerStats>> PodManager::listContainerStats(
    const v1::ContainerStatsFilter& filter) {
  ContainerFilter f;
  f.id_prefix = filter.id();
  f.pod_id_prefix = filter.pod_sandbox_id();
  for (const auto& [k, v] : filter.label_selector()) f.labels.emplace_back(k, v);
  ASSIGN_OR_RETURN(auto records, store_->listContainers(f));
  std::vector<v1::ContainerStats> out;
  for (const ContainerRecord& c : records) {
    auto s = containerStats(c.id);
    if (s.ok()) out.push_back(std::move(*s));  // removed meanwhile: skipped
  }
  return out;
}

StatusOr<v1::PodSandboxStats> PodManager::podSandboxStats(const std::string& pod_id) {
  ASSIGN_OR_RETURN(PodRecord pod, store_->getPod(pod_id));
  v1::PodSandboxStats stats;
  auto* attrs = stats.mutable_attributes();
  attrs->set_id(pod.id);
  *attrs->mutable_metadata() = pod.config.metadata();
  *attrs->mutable_labels() = pod.config.labels();
  *attrs->mutable_annotations() = pod.config.annotations();
  auto* linux = stats.mutable_linux();
  const int64_t now = nowNanos();
  ASSIGN_OR_RETURN(auto containers, store_->listContainers(containersOf(pod.id)));
  CgroupSample total;
  auto add = [](std::optional<uint64_t>& sum, const std::optional<uint64_t>& v) {
    if (v) sum = sum.value_or(0) + *v;
  };
  int net_pid = 0;
  for (const ContainerRecord& c : containers) {
    auto cs = containerStats(c.id);
    if (!cs.ok()) continue;
    *linux->add_containers() = *cs;
    if (c.state != v1::CONTAINER_RUNNING || options_.systemd_cgroup) continue;
    CgroupSample s = sampleCgroup(cgroupDir(containerCgroupsPath(pod, c.id), c.id));
    add(total.cpu_ns, s.cpu_ns);
    add(total.memory_usage, s.memory_usage);
    add(total.working_set, s.working_set);
    add(total.rss, s.rss);
    add(total.page_faults, s.page_faults);
    add(total.major_page_faults, s.major_page_faults);
    add(total.processes, s.processes);
    if (net_pid == 0) net_pid = containerPid(c);
  }
  fillCpuMemory(total, now, nanoCores("pod/" + pod.id, total.cpu_ns, now), linux->mutable_cpu(),
                linux->mutable_memory());
  linux->mutable_process()->set_timestamp(now);
  if (total.processes) setU64(linux->mutable_process()->mutable_process_count(), *total.processes);
  if (net_pid > 0 && !pod.netns_path.empty()) fillNetwork(net_pid, now, linux->mutable_network());
  return stats;
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
