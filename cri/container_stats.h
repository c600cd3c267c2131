// The CRI stats reader (issue 6: ContainerStats, ListContainerStats, PodSandboxStats,
// ListPodSandboxStats): where a container's cgroup lives on this host, its CPU, memory
// and process counters, the CPU rate between two samples, a pod's network counters
// from /proc/<pid>/net/dev, and builders for runtime::v1::ContainerStats and
// runtime::v1::PodSandboxStats (cri-api pkg/apis/runtime/v1/api.proto, messages
// ContainerStats, CpuUsage, MemoryUsage, FilesystemUsage, PodSandboxStats,
// LinuxPodSandboxStats, NetworkUsage, NetworkInterfaceUsage, ProcessUsage).
//
// Cgroup layouts (kernel admin-guide cgroup-v2.rst and cgroup-v1/*.rst):
// - unified (pure v2): <root> is cgroup2; the cgroup is <root><path>.
// - hybrid: v1 controllers at <root>/<controller> (cpuacct may be co-mounted as
//   "cpu,cpuacct"), cgroup2 at <root>/unified with few controllers. berth-runtime's
//   cgroupfs driver (runtime/cgroups, Fs2Manager) creates the container's cgroup only
//   in the cgroup2 hierarchy, at <root>/unified<path>; its processes stay in their
//   parent's v1 cgroups. Checked on the build host (kernel 6.18, hybrid, v2 offers only
//   hugetlb): the v2 dir has cpu.stat (usage_usec is kept without the cpu controller)
//   and cgroup.procs, but no memory.* or pids.* files. So there CPU and the process
//   count are reported and memory stays unset. Runtimes that also place containers
//   in v1 (runc on hybrid hosts) leave <root>/memory<path> etc.; those are read too.
// - legacy (v1 only): the v1 controller dirs.
// A counter whose file is missing (controller absent) is left unset, never reported
// as zero (kubelet treats unset as "unknown").
//
// Counters (what kubelet's cadvisor/CRI stats providers and containerd compute):
//   cpu usage ns    v2 cpu.stat usage_usec * 1000       v1 cpuacct.usage
//   memory usage    v2 memory.current                   v1 memory.usage_in_bytes
//   working set     usage - inactive_file (v2 memory.stat inactive_file, v1
//                   total_inactive_file), floored at 0
//   rss             v2 memory.stat anon                 v1 total_rss
//   page faults     pgfault / pgmajfault                v1 total_pgfault / total_pgmajfault
//   limit           v2 memory.max (not "max")           v1 memory.limit_in_bytes (not the
//                                                       "unlimited" page-counter maximum)
//   available       limit - working set, floored at 0 (only with a limit)
//   processes       pids.current (v2, then v1), else the number of pids in cgroup.procs
//                   of the cgroup and its descendants
//
// Thread-safety: every function is thread-safe (they only read files); CpuRateTracker
// is internally locked.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "cri/proto/api.pb.h"

namespace berth::cri {

// Where the cgroup filesystems are mounted. Tests point mount_root at a temp dir laid
// out like /sys/fs/cgroup.
struct CgroupRoot {
  std::string mount_root = "/sys/fs/cgroup";
};

enum class CgroupHierarchy {
  kUnified,  // <mount_root> is cgroup2 (it has cgroup.controllers)
  kHybrid,   // v1 controllers + cgroup2 at <mount_root>/unified
  kLegacy,   // v1 controllers only
};

// The directories of one cgroup, per hierarchy. An entry is "" when the hierarchy or
// controller is not mounted or the cgroup has no directory there.
struct CgroupDirs {
  CgroupHierarchy hierarchy = CgroupHierarchy::kUnified;
  std::string relative_path;  // the cgroup below each hierarchy's root, e.g. "/berth/c1"
  std::string unified;        // cgroup2 dir (pure v2: <root><path>; hybrid: <root>/unified<path>)
  std::string cpuacct;        // v1 dirs
  std::string memory;
  std::string pids;
};

// Which layout `root` has, from the files present: <mount_root>/cgroup.controllers ->
// kUnified; <mount_root>/unified/cgroup.controllers -> kHybrid; any of the v1
// controller dirs cpuacct, "cpu,cpuacct", memory, pids -> kLegacy.
// Errors: NotFound naming mount_root when none of these exist.
StatusOr<CgroupHierarchy> detectCgroupHierarchy(const CgroupRoot& root);

// The cgroup path below a hierarchy root for an OCI linux.cgroupsPath of container
// `id` (what berth-runtime and containerCgroupsPath produce):
// - cgroupfs: "" -> "/berth/<id>"; "/a/b" stays; "a/b" -> "/a/b"; duplicate and
//   trailing slashes are removed;
// - systemd "slice:prefix:name" (systemd.slice(5) naming): the slice expands to its
//   parents ("kubepods-besteffort-pod1.slice" -> "/kubepods.slice/
//   kubepods-besteffort.slice/kubepods-besteffort-pod1.slice", "-.slice" is the root),
//   then the unit "<prefix>-<name>.scope" ("<name>.scope" with an empty prefix; a name
//   ending in ".slice" is used as is). "system.slice:berth:c1" -> "/system.slice/berth-c1.scope".
// Pure. Errors: InvalidArgument naming the path for ".." components, the root cgroup
// itself, a systemd path without exactly three ":" fields, or a slice that is not a
// valid slice name (no ".slice" suffix, "/" inside, empty dash-separated parts).
StatusOr<std::string> cgroupRelativePath(const std::string& cgroups_path, const std::string& id);

// Finds the directories of the cgroup for `cgroups_path` of container `id` (see
// cgroupRelativePath) under `root`, per the host's layout (detectCgroupHierarchy).
// v1 cpuacct is looked up at <root>/cpuacct, then <root>/cpu,cpuacct and
// <root>/cpuacct,cpu. Only stats directories.
// Errors: InvalidArgument from cgroupRelativePath; NotFound naming the path and every
// directory looked at when the cgroup exists in no hierarchy (the container is not
// running, or its cgroup was removed); NotFound from detectCgroupHierarchy.
StatusOr<CgroupDirs> findCgroupDirs(const CgroupRoot& root, const std::string& cgroups_path,
                                    const std::string& id);

// Raw counters of one cgroup (or a sum of several); nullopt = unknown on this host.
struct CgroupUsage {
  std::optional<uint64_t> cpu_usage_ns;        // cumulative CPU time, ns
  std::optional<uint64_t> memory_usage_bytes;  // incl. page cache
  std::optional<uint64_t> working_set_bytes;   // usage - inactive file
  std::optional<uint64_t> rss_bytes;           // anonymous memory
  std::optional<uint64_t> page_faults;
  std::optional<uint64_t> major_page_faults;
  std::optional<uint64_t> memory_limit_bytes;  // nullopt when unlimited
  std::optional<uint64_t> available_bytes;     // limit - working set
  std::optional<uint64_t> process_count;
};

// Reads the counters of `dirs` (see the file comment for files and formulas). For
// each counter the cgroup2 file is preferred, then the v1 one. A missing file, or one
// that vanishes while read (the cgroup is being removed), leaves its counter unset.
// Errors: a file that exists but cannot be read (the read error, with its path);
// Internal naming the file and its content when a number cannot be parsed.
StatusOr<CgroupUsage> readCgroupUsage(const CgroupDirs& dirs);

// findCgroupDirs + readCgroupUsage. Errors: those of both.
StatusOr<CgroupUsage> readContainerCgroupUsage(const CgroupRoot& root,
                                               const std::string& cgroups_path,
                                               const std::string& id);

// Sums the counters of several cgroups (a pod without its own cgroup = its
// containers): a counter is set when at least one input has it. memory limit and
// available bytes have no meaningful sum and stay unset. Pure.
CgroupUsage sumCgroupUsage(const std::vector<CgroupUsage>& usages);

// Turns successive cumulative CPU samples into a rate, per key (a container id, or
// "pod/<id>"), like kubelet and containerd: nano-cores = delta usage ns / delta wall
// ns * 1e9. Thread-safe (one mutex). Memory: one small entry per key until forget().
class CpuRateTracker {
 public:
  // Records (usage_ns at now_ns) for `key` and returns the rate since the previous
  // sample of that key: nullopt for the first sample, and after a counter reset (usage
  // went down: the cgroup was recreated), which starts a new baseline. A sample not
  // newer than the previous one (concurrent callers, same timestamp) does not replace
  // the baseline and returns the last rate computed for the key (nullopt if none).
  // now_ns: wall or monotonic ns, the same clock for every call of a key.
  std::optional<uint64_t> update(const std::string& key, uint64_t usage_ns, int64_t now_ns);

  // Drops the samples of `key` (the container or pod was removed). No-op if unknown.
  void forget(const std::string& key);

  // Drops every key not in `keep` (periodic cleanup after listing live objects).
  void retainOnly(const std::set<std::string>& keep);

  // Number of keys tracked.
  size_t size() const;

 private:
  struct Sample {
    int64_t time_ns = 0;
    uint64_t usage_ns = 0;
    std::optional<uint64_t> last_rate;
  };
  mutable std::mutex mu_;
  std::map<std::string, Sample> samples_;  // guarded by mu_
};

struct NetDevOptions {
  std::string proc_root = "/proc";        // /proc/<pid>/net/dev is read below it
  std::string default_interface = "eth0";  // reported as NetworkUsage.default_interface
};

// Parses the text of /proc/<pid>/net/dev (proc(5): two header lines, then
// "<iface>: rx_bytes rx_packets rx_errs rx_drop rx_fifo rx_frame rx_compressed
// rx_multicast tx_bytes tx_packets tx_errs ..." with 16 numbers) into a NetworkUsage
// with `timestamp_ns`: every interface except "lo" in file order, with rx/tx bytes and
// errors; `default_interface` (when present) is copied into default_interface.
// Pure. Errors: InvalidArgument naming the interface line when it has fewer than 16
// fields or a field is not a number.
StatusOr<::runtime::v1::NetworkUsage> parseNetDev(std::string_view text, int64_t timestamp_ns,
                                                  const std::string& default_interface = "eth0");

// Reads <proc_root>/<pid>/net/dev of a process inside the pod's network namespace
// (/proc/<pid>/net shows the network namespace of <pid>, not of the reader, so no
// setns is needed) and parses it. Errors: NotFound naming the pid when the process is
// gone; the read error with the path; parseNetDev's errors with the path prepended.
StatusOr<::runtime::v1::NetworkUsage> readNetworkUsage(pid_t pid, int64_t timestamp_ns,
                                                       const NetDevOptions& options = {});

// The writable layer of a container, as measured by the caller (the snapshotter).
struct WritableLayerUsage {
  std::string mountpoint;  // FilesystemIdentifier.mountpoint (the snapshotter's root)
  std::optional<uint64_t> used_bytes;
  std::optional<uint64_t> inodes_used;
};

// Wall-clock now in ns since the Unix epoch: the timestamp of CRI stats messages.
int64_t statsTimestampNow();

// Fills a CpuUsage: timestamp, usage_core_nano_seconds from usage.cpu_usage_ns,
// usage_nano_cores from `nano_cores` (CpuRateTracker::update); unset values stay unset.
void fillCpuUsage(const CgroupUsage& usage, std::optional<uint64_t> nano_cores,
                  int64_t timestamp_ns, ::runtime::v1::CpuUsage* out);

// Fills a MemoryUsage: timestamp, working_set, available, usage, rss, page faults,
// major page faults from `usage`; unset values stay unset.
void fillMemoryUsage(const CgroupUsage& usage, int64_t timestamp_ns,
                     ::runtime::v1::MemoryUsage* out);

struct ContainerStatsInput {
  ::runtime::v1::ContainerAttributes attributes;  // id, metadata, labels, annotations
  // nullopt when the container is not running (or its cgroup is gone): cpu and
  // memory then carry only their timestamps, as containerd reports them.
  std::optional<CgroupUsage> usage;
  std::optional<uint64_t> usage_nano_cores;
  // nullopt: no writable_layer message (the snapshot is gone).
  std::optional<WritableLayerUsage> writable_layer;
  int64_t timestamp_ns = 0;  // statsTimestampNow() by the caller, for every part
};

// Builds ContainerStats: attributes, cpu, memory, writable_layer (timestamp, fs_id
// mountpoint, used_bytes, inodes_used). Pure.
::runtime::v1::ContainerStats buildContainerStats(const ContainerStatsInput& input);

struct PodSandboxStatsInput {
  ::runtime::v1::PodSandboxAttributes attributes;
  // The pod's cgroup counters, or sumCgroupUsage of its running containers; nullopt
  // when nothing is running.
  std::optional<CgroupUsage> usage;
  std::optional<uint64_t> usage_nano_cores;
  // readNetworkUsage of a process in the pod's netns; nullopt: no network message
  // (host-network pod or nothing running).
  std::optional<::runtime::v1::NetworkUsage> network;
  std::vector<::runtime::v1::ContainerStats> containers;
  int64_t timestamp_ns = 0;
};

// Builds PodSandboxStats with its linux part: cpu, memory, network, process
// (timestamp, process_count from usage.process_count), containers (moved in). Pure.
::runtime::v1::PodSandboxStats buildPodSandboxStats(PodSandboxStatsInput input);

}  // namespace berth::cri
