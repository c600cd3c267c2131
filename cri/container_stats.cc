// The CRI stats reader: cgroup discovery and counters, CPU rate, pod network counters,
// and the ContainerStats / PodSandboxStats builders. See container_stats.h.
#include "cri/container_stats.h"

#include <sys/stat.h>
#include <time.h>

#include <cerrno>
#include <charconv>
#include <utility>

#include "common/fs.h"
#include "common/strings.h"

namespace berth::cri {

namespace v1 = ::runtime::v1;

namespace {

// Deeper cgroup trees than this are not walked when counting processes.
constexpr int kMaxProcsDepth = 32;
// v1 reports "no limit" as the page counter's maximum (LONG_MAX rounded down to a
// page, 9223372036854771712 with 4 KiB pages); anything this large is no limit.
constexpr uint64_t kUnlimitedMemory = uint64_t{1} << 62;

bool isDir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// A read failing like this means the file (or its cgroup) is gone: unset, not an error.
bool isMissing(const Status& status) {
  int err = errnoOf(status);
  return absl::IsNotFound(status) || err == ENOENT || err == ENODEV;
}

// The content of `path`, nullopt when it does not exist. Errors: other read failures.
StatusOr<std::optional<std::string>> readOptional(const std::string& path) {
  auto text = fs::readFile(path);
  if (!text.ok()) {
    if (isMissing(text.status())) return std::optional<std::string>();
    return withContext(text.status(), strCat("read ", path));
  }
  return std::optional<std::string>(std::move(*text));
}

std::optional<uint64_t> parseU64(std::string_view s) {
  s = trim(s);
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

Status badNumber(const std::string& path, std::string_view text) {
  std::string shown(trim(text));
  if (shown.size() > 64) shown = shown.substr(0, 64) + "...";
  return internalError("cgroup file ", path, ": cannot parse \"", shown, "\" as a number");
}

// A file holding one number. nullopt when the file is missing, or when it holds
// `unlimited_word` ("max").
StatusOr<std::optional<uint64_t>> readNumber(const std::string& path,
                                             std::string_view unlimited_word = "") {
  ASSIGN_OR_RETURN(auto text, readOptional(path));
  if (!text) return std::optional<uint64_t>();
  if (!unlimited_word.empty() && trim(*text) == unlimited_word) return std::optional<uint64_t>();
  auto v = parseU64(*text);
  if (!v) return badNumber(path, *text);
  return v;
}

// "key value" lines (cpu.stat, memory.stat), values kept as text: only the keys a
// caller asks for must be numbers (newer kernels add lines of other shapes).
struct KeyedFile {
  std::string path;
  std::map<std::string, std::string> values;

  // The first of `keys` present. Errors: Internal when its value is not a number.
  StatusOr<std::optional<uint64_t>> get(std::initializer_list<const char*> keys) const {
    for (const char* k : keys) {
      auto it = values.find(k);
      if (it == values.end()) continue;
      auto v = parseU64(it->second);
      if (!v) return badNumber(path, strCat(k, " ", it->second));
      return v;
    }
    return std::optional<uint64_t>();
  }
};

// nullopt when the file is missing.
StatusOr<std::optional<KeyedFile>> readKeyed(const std::string& path) {
  ASSIGN_OR_RETURN(auto text, readOptional(path));
  if (!text) return std::optional<KeyedFile>();
  KeyedFile out{path, {}};
  for (const std::string& line : split(*text, '\n', true)) {
    auto fields = split(line, ' ', true);
    if (fields.size() == 2) out.values[fields[0]] = fields[1];
  }
  return std::optional<KeyedFile>(std::move(out));
}

// Pids in cgroup.procs of `dir` and its descendants; nullopt when `dir` has no
// cgroup.procs.
StatusOr<std::optional<uint64_t>> countProcs(const std::string& dir, int depth = 0) {
  ASSIGN_OR_RETURN(auto text, readOptional(fs::join(dir, "cgroup.procs")));
  if (!text) return std::optional<uint64_t>();
  uint64_t n = 0;
  for (const std::string& line : split(*text, '\n', true)) n += trim(line).empty() ? 0 : 1;
  if (depth < kMaxProcsDepth) {
    auto subdirs = fs::listSubdirs(dir);
    if (subdirs.ok()) {
      for (const std::string& sub : *subdirs) {
        ASSIGN_OR_RETURN(auto child, countProcs(fs::join(dir, sub), depth + 1));
        n += child.value_or(0);
      }
    }
  }
  return std::optional<uint64_t>(n);
}

// "kubepods-besteffort-pod1.slice" -> "/kubepods.slice/kubepods-besteffort.slice/
// kubepods-besteffort-pod1.slice"; "-.slice" -> "".
StatusOr<std::string> expandSlice(const std::string& slice, const std::string& cgroups_path) {
  constexpr std::string_view kSuffix = ".slice";
  auto bad = [&](std::string_view why) {
    return invalidArgument("linux.cgroupsPath \"", cgroups_path, "\": slice \"", slice, "\" ",
                           why, "; use a systemd slice name like \"kubepods-besteffort.slice\"");
  };
  if (slice == "-.slice") return std::string();
  if (slice.size() <= kSuffix.size() ||
      slice.compare(slice.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) {
    return bad("does not end in \".slice\"");
  }
  if (slice.find('/') != std::string::npos) return bad("contains \"/\"");
  std::string name = slice.substr(0, slice.size() - kSuffix.size());
  std::string path, prefix;
  for (const std::string& part : split(name, '-')) {
    if (part.empty()) return bad("has an empty dash-separated part");
    prefix = prefix.empty() ? part : strCat(prefix, "-", part);
    path += strCat("/", prefix, kSuffix);
  }
  return path;
}

const char* const kCpuacctMounts[] = {"cpuacct", "cpu,cpuacct", "cpuacct,cpu"};

}  // namespace

StatusOr<CgroupHierarchy> detectCgroupHierarchy(const CgroupRoot& root) {
  const std::string& r = root.mount_root;
  if (fs::exists(fs::join(r, "cgroup.controllers"))) return CgroupHierarchy::kUnified;
  if (fs::exists(fs::join(r, "unified/cgroup.controllers"))) return CgroupHierarchy::kHybrid;
  for (const char* c : {"cpuacct", "cpu,cpuacct", "memory", "pids"}) {
    if (isDir(fs::join(r, c))) return CgroupHierarchy::kLegacy;
  }
  return notFound("no cgroup hierarchy at ", r,
                  ": neither cgroup2 (cgroup.controllers) nor v1 controller directories "
                  "(cpuacct, memory, pids); mount cgroupfs there");
}

StatusOr<std::string> cgroupRelativePath(const std::string& cgroups_path, const std::string& id) {
  if (cgroups_path.find(':') != std::string::npos && cgroups_path.front() != '/') {
    auto fields = split(cgroups_path, ':');
    if (fields.size() != 3) {
      return invalidArgument("linux.cgroupsPath \"", cgroups_path,
                             "\": a systemd cgroups path has three fields, \"slice:prefix:name\"");
    }
    const std::string slice = fields[0].empty() ? "system.slice" : fields[0];
    const std::string& prefix = fields[1];
    const std::string& name = fields[2];
    if (name.empty() || name.find('/') != std::string::npos || name == "..") {
      return invalidArgument("linux.cgroupsPath \"", cgroups_path,
                             "\": the unit name (third field) must be non-empty, without \"/\"");
    }
    ASSIGN_OR_RETURN(std::string path, expandSlice(slice, cgroups_path));
    std::string unit;
    const bool is_slice = name.size() > 6 && name.compare(name.size() - 6, 6, ".slice") == 0;
    if (is_slice) {
      unit = name;
    } else {
      unit = prefix.empty() ? strCat(name, ".scope") : strCat(prefix, "-", name, ".scope");
    }
    return strCat(path, "/", unit);
  }
  const std::string raw = cgroups_path.empty() ? strCat("/berth/", id) : cgroups_path;
  std::string out;
  for (const std::string& part : split(raw, '/', true)) {
    if (part == ".." || part == ".") {
      return invalidArgument("linux.cgroupsPath \"", cgroups_path,
                             "\": \".\" and \"..\" components are not allowed");
    }
    out += "/" + part;
  }
  if (out.empty()) {
    return invalidArgument("linux.cgroupsPath \"", cgroups_path,
                           "\" names the root cgroup; a container needs its own cgroup");
  }
  return out;
}

StatusOr<CgroupDirs> findCgroupDirs(const CgroupRoot& root, const std::string& cgroups_path,
                                    const std::string& id) {
  ASSIGN_OR_RETURN(std::string rel, cgroupRelativePath(cgroups_path, id));
  ASSIGN_OR_RETURN(CgroupHierarchy hierarchy, detectCgroupHierarchy(root));
  const std::string& r = root.mount_root;
  CgroupDirs dirs;
  dirs.hierarchy = hierarchy;
  dirs.relative_path = rel;
  std::vector<std::string> looked;
  auto probe = [&](const std::string& dir) -> std::string {
    looked.push_back(dir);
    return isDir(dir) ? dir : std::string();
  };
  if (hierarchy == CgroupHierarchy::kUnified) {
    dirs.unified = probe(r + rel);
  } else {
    if (hierarchy == CgroupHierarchy::kHybrid) dirs.unified = probe(fs::join(r, "unified") + rel);
    for (const char* mount : kCpuacctMounts) {
      if (!isDir(fs::join(r, mount))) continue;
      dirs.cpuacct = probe(fs::join(r, mount) + rel);
      break;
    }
    if (isDir(fs::join(r, "memory"))) dirs.memory = probe(fs::join(r, "memory") + rel);
    if (isDir(fs::join(r, "pids"))) dirs.pids = probe(fs::join(r, "pids") + rel);
  }
  if (dirs.unified.empty() && dirs.cpuacct.empty() && dirs.memory.empty() && dirs.pids.empty()) {
    return notFound("cgroup ", rel, " (linux.cgroupsPath \"", cgroups_path,
                    "\") not found; looked in ", joinStrings(looked, ", "),
                    "; the container is not running or its cgroup was removed");
  }
  return dirs;
}

StatusOr<CgroupUsage> readCgroupUsage(const CgroupDirs& dirs) {
  CgroupUsage u;
  // CPU.
  if (!dirs.unified.empty()) {
    ASSIGN_OR_RETURN(auto stat, readKeyed(fs::join(dirs.unified, "cpu.stat")));
    if (stat) {
      ASSIGN_OR_RETURN(auto usec, stat->get({"usage_usec"}));
      if (usec) u.cpu_usage_ns = *usec * 1000;
    }
  }
  if (!u.cpu_usage_ns && !dirs.cpuacct.empty()) {
    ASSIGN_OR_RETURN(u.cpu_usage_ns, readNumber(fs::join(dirs.cpuacct, "cpuacct.usage")));
  }

  // Memory: v2 when the unified dir has the memory controller's files, else v1.
  std::optional<KeyedFile> mstat;
  bool v1_memory = false;
  if (!dirs.unified.empty()) {
    ASSIGN_OR_RETURN(u.memory_usage_bytes, readNumber(fs::join(dirs.unified, "memory.current")));
    if (u.memory_usage_bytes) {
      ASSIGN_OR_RETURN(mstat, readKeyed(fs::join(dirs.unified, "memory.stat")));
      ASSIGN_OR_RETURN(u.memory_limit_bytes,
                       readNumber(fs::join(dirs.unified, "memory.max"), "max"));
    }
  }
  if (!u.memory_usage_bytes && !dirs.memory.empty()) {
    ASSIGN_OR_RETURN(u.memory_usage_bytes,
                     readNumber(fs::join(dirs.memory, "memory.usage_in_bytes")));
    if (u.memory_usage_bytes) {
      v1_memory = true;
      ASSIGN_OR_RETURN(mstat, readKeyed(fs::join(dirs.memory, "memory.stat")));
      ASSIGN_OR_RETURN(u.memory_limit_bytes,
                       readNumber(fs::join(dirs.memory, "memory.limit_in_bytes")));
      if (u.memory_limit_bytes && *u.memory_limit_bytes >= kUnlimitedMemory) {
        u.memory_limit_bytes.reset();
      }
    }
  }
  if (u.memory_usage_bytes) {
    uint64_t inactive = 0;
    if (mstat) {
      // v1 "total_*" counters include descendants, like v2's.
      auto pick = [&](const char* v2_key, const char* v1_total, const char* v1_local) {
        return v1_memory ? mstat->get({v1_total, v1_local}) : mstat->get({v2_key});
      };
      ASSIGN_OR_RETURN(auto inactive_file,
                       pick("inactive_file", "total_inactive_file", "inactive_file"));
      inactive = inactive_file.value_or(0);
      ASSIGN_OR_RETURN(u.rss_bytes, pick("anon", "total_rss", "rss"));
      ASSIGN_OR_RETURN(u.page_faults, pick("pgfault", "total_pgfault", "pgfault"));
      ASSIGN_OR_RETURN(u.major_page_faults, pick("pgmajfault", "total_pgmajfault", "pgmajfault"));
    }
    u.working_set_bytes = *u.memory_usage_bytes > inactive ? *u.memory_usage_bytes - inactive : 0;
    if (u.memory_limit_bytes) {
      u.available_bytes = *u.memory_limit_bytes > *u.working_set_bytes
                              ? *u.memory_limit_bytes - *u.working_set_bytes
                              : 0;
    }
  }

  // Processes.
  if (!dirs.unified.empty()) {
    ASSIGN_OR_RETURN(u.process_count, readNumber(fs::join(dirs.unified, "pids.current")));
  }
  if (!u.process_count && !dirs.pids.empty()) {
    ASSIGN_OR_RETURN(u.process_count, readNumber(fs::join(dirs.pids, "pids.current")));
  }
  for (const std::string* dir : {&dirs.unified, &dirs.pids, &dirs.memory, &dirs.cpuacct}) {
    if (u.process_count) break;
    if (!dir->empty()) {
      ASSIGN_OR_RETURN(u.process_count, countProcs(*dir));
    }
  }
  return u;
}

StatusOr<CgroupUsage> readContainerCgroupUsage(const CgroupRoot& root,
                                               const std::string& cgroups_path,
                                               const std::string& id) {
  ASSIGN_OR_RETURN(CgroupDirs dirs, findCgroupDirs(root, cgroups_path, id));
  return readCgroupUsage(dirs);
}

CgroupUsage sumCgroupUsage(const std::vector<CgroupUsage>& usages) {
  CgroupUsage total;
  auto add = [](std::optional<uint64_t>& sum, const std::optional<uint64_t>& v) {
    if (v) sum = sum.value_or(0) + *v;
  };
  for (const CgroupUsage& u : usages) {
    add(total.cpu_usage_ns, u.cpu_usage_ns);
    add(total.memory_usage_bytes, u.memory_usage_bytes);
    add(total.working_set_bytes, u.working_set_bytes);
    add(total.rss_bytes, u.rss_bytes);
    add(total.page_faults, u.page_faults);
    add(total.major_page_faults, u.major_page_faults);
    add(total.process_count, u.process_count);
  }
  return total;
}

std::optional<uint64_t> CpuRateTracker::update(const std::string& key, uint64_t usage_ns,
                                               int64_t now_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = samples_.try_emplace(key);
  Sample& s = it->second;
  if (inserted) {
    s.time_ns = now_ns;
    s.usage_ns = usage_ns;
    return std::nullopt;
  }
  if (now_ns <= s.time_ns) return s.last_rate;
  if (usage_ns < s.usage_ns) {  // counter reset: the cgroup was recreated
    s = Sample{now_ns, usage_ns, std::nullopt};
    return std::nullopt;
  }
  // 128-bit so that a large delta times 1e9 cannot overflow.
  unsigned __int128 rate = static_cast<unsigned __int128>(usage_ns - s.usage_ns) * 1000000000u /
                           static_cast<unsigned __int128>(now_ns - s.time_ns);
  s.time_ns = now_ns;
  s.usage_ns = usage_ns;
  s.last_rate = static_cast<uint64_t>(rate);
  return s.last_rate;
}

void CpuRateTracker::forget(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  samples_.erase(key);
}

void CpuRateTracker::retainOnly(const std::set<std::string>& keep) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = samples_.begin(); it != samples_.end();) {
    it = keep.count(it->first) ? std::next(it) : samples_.erase(it);
  }
}

size_t CpuRateTracker::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return samples_.size();
}

StatusOr<v1::NetworkUsage> parseNetDev(std::string_view text, int64_t timestamp_ns,
                                       const std::string& default_interface) {
  v1::NetworkUsage out;
  out.set_timestamp(timestamp_ns);
  for (const std::string& line : split(text, '\n', true)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;  // header lines
    std::string name(trim(std::string_view(line).substr(0, colon)));
    if (name.find('|') != std::string::npos) continue;  // header with a colon (defensive)
    auto fields = split(std::string_view(line).substr(colon + 1), ' ', true);
    std::vector<uint64_t> values;
    for (const std::string& f : fields) {
      auto v = parseU64(f);
      if (!v) {
        return invalidArgument("net/dev: interface \"", name, "\": field \"", f,
                               "\" is not a number in line \"", trim(line), "\"");
      }
      values.push_back(*v);
    }
    if (values.size() < 16) {
      return invalidArgument("net/dev: interface \"", name, "\": ", values.size(),
                             " fields, expected 16, in line \"", trim(line), "\"");
    }
    if (name == "lo") continue;
    v1::NetworkInterfaceUsage* iface = out.add_interfaces();
    iface->set_name(name);
    iface->mutable_rx_bytes()->set_value(values[0]);
    iface->mutable_rx_errors()->set_value(values[2]);
    iface->mutable_tx_bytes()->set_value(values[8]);
    iface->mutable_tx_errors()->set_value(values[10]);
    if (name == default_interface) *out.mutable_default_interface() = *iface;
  }
  return out;
}

StatusOr<v1::NetworkUsage> readNetworkUsage(pid_t pid, int64_t timestamp_ns,
                                            const NetDevOptions& options) {
  const std::string path = strCat(options.proc_root, "/", pid, "/net/dev");
  auto text = fs::readFile(path);
  if (!text.ok()) {
    if (isMissing(text.status())) {
      return notFound("network usage: process ", pid, " is gone (", path,
                      " does not exist); pick another process of the pod");
    }
    return withContext(text.status(), strCat("read ", path));
  }
  return withContext(parseNetDev(*text, timestamp_ns, options.default_interface), path);
}

int64_t statsTimestampNow() {
  struct timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void fillCpuUsage(const CgroupUsage& usage, std::optional<uint64_t> nano_cores,
                  int64_t timestamp_ns, v1::CpuUsage* out) {
  out->set_timestamp(timestamp_ns);
  if (usage.cpu_usage_ns) out->mutable_usage_core_nano_seconds()->set_value(*usage.cpu_usage_ns);
  if (nano_cores) out->mutable_usage_nano_cores()->set_value(*nano_cores);
}

void fillMemoryUsage(const CgroupUsage& usage, int64_t timestamp_ns, v1::MemoryUsage* out) {
  out->set_timestamp(timestamp_ns);
  // Only set values create their UInt64Value message (unset = unknown to kubelet).
  auto set = [out](const std::optional<uint64_t>& v,
                   v1::UInt64Value* (v1::MemoryUsage::*field)()) {
    if (v) (out->*field)()->set_value(*v);
  };
  set(usage.working_set_bytes, &v1::MemoryUsage::mutable_working_set_bytes);
  set(usage.available_bytes, &v1::MemoryUsage::mutable_available_bytes);
  set(usage.memory_usage_bytes, &v1::MemoryUsage::mutable_usage_bytes);
  set(usage.rss_bytes, &v1::MemoryUsage::mutable_rss_bytes);
  set(usage.page_faults, &v1::MemoryUsage::mutable_page_faults);
  set(usage.major_page_faults, &v1::MemoryUsage::mutable_major_page_faults);
}

v1::ContainerStats buildContainerStats(const ContainerStatsInput& input) {
  v1::ContainerStats stats;
  *stats.mutable_attributes() = input.attributes;
  const CgroupUsage none;
  const CgroupUsage& usage = input.usage ? *input.usage : none;
  fillCpuUsage(usage, input.usage ? input.usage_nano_cores : std::nullopt, input.timestamp_ns,
               stats.mutable_cpu());
  fillMemoryUsage(usage, input.timestamp_ns, stats.mutable_memory());
  if (input.writable_layer) {
    v1::FilesystemUsage* layer = stats.mutable_writable_layer();
    layer->set_timestamp(input.timestamp_ns);
    layer->mutable_fs_id()->set_mountpoint(input.writable_layer->mountpoint);
    if (input.writable_layer->used_bytes) {
      layer->mutable_used_bytes()->set_value(*input.writable_layer->used_bytes);
    }
    if (input.writable_layer->inodes_used) {
      layer->mutable_inodes_used()->set_value(*input.writable_layer->inodes_used);
    }
  }
  return stats;
}

v1::PodSandboxStats buildPodSandboxStats(PodSandboxStatsInput input) {
  v1::PodSandboxStats stats;
  *stats.mutable_attributes() = std::move(input.attributes);
  v1::LinuxPodSandboxStats* lx = stats.mutable_linux();
  const CgroupUsage none;
  const CgroupUsage& usage = input.usage ? *input.usage : none;
  fillCpuUsage(usage, input.usage ? input.usage_nano_cores : std::nullopt, input.timestamp_ns,
               lx->mutable_cpu());
  fillMemoryUsage(usage, input.timestamp_ns, lx->mutable_memory());
  if (input.network) *lx->mutable_network() = std::move(*input.network);
  lx->mutable_process()->set_timestamp(input.timestamp_ns);
  if (usage.process_count) {
    lx->mutable_process()->mutable_process_count()->set_value(*usage.process_count);
  }
  for (v1::ContainerStats& c : input.containers) *lx->add_containers() = std::move(c);
  return stats;
}

}  // namespace berth::cri
