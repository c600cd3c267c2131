#include "runtime/cgroups/fs2_manager.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <map>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/strings.h"
#include "runtime/cgroups/convert.h"
#include "runtime/cgroups/devices_bpf.h"

namespace berth::cgroups {
namespace {

using Clock = std::chrono::steady_clock;

// Whitespace-separated words of a file such as cgroup.controllers.
std::vector<std::string> words(std::string_view text) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    size_t start = i;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i > start) out.emplace_back(text.substr(start, i - start));
  }
  return out;
}

// "key value" lines (cgroup.events, cpu.stat, memory.events).
std::map<std::string, std::string> parseKeyed(std::string_view text) {
  std::map<std::string, std::string> out;
  for (const std::string& line : split(text, '\n', true)) {
    std::vector<std::string> w = words(line);
    if (w.size() >= 2) out[w[0]] = w[1];
  }
  return out;
}

StatusOr<uint64_t> parseU64(std::string_view text, const std::string& where) {
  text = trim(text);
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    return internalError("parse \"", where, "\": expected an unsigned integer, got \"", text,
                         "\"");
  }
  return v;
}

// Reads a file that may be absent: nullopt when it does not exist.
StatusOr<std::optional<std::string>> readOptional(const std::string& path) {
  auto text = fs::readFile(path);
  if (!text.ok()) {
    if (absl::IsNotFound(text.status())) return std::optional<std::string>();
    return text.status();
  }
  return std::optional<std::string>(std::move(*text));
}

// A single-number file; nullopt when absent or "max".
StatusOr<std::optional<uint64_t>> readOptionalU64(const std::string& path) {
  ASSIGN_OR_RETURN(std::optional<std::string> text, readOptional(path));
  if (!text || trim(*text) == "max") return std::optional<uint64_t>();
  ASSIGN_OR_RETURN(uint64_t v, parseU64(*text, path));
  return std::optional<uint64_t>(v);
}

bool isDirectory(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

StatusOr<std::vector<std::string>> childCgroups(const std::string& dir) {
  ASSIGN_OR_RETURN(std::vector<std::string> names, fs::listSubdirs(dir));
  std::vector<std::string> out;
  for (const std::string& n : names) out.push_back(fs::join(dir, n));
  std::sort(out.begin(), out.end());
  return out;
}

// cgroup.procs of `dir` and all its descendants.
Status collectPids(const std::string& dir, std::vector<pid_t>& out) {
  std::string procs = fs::join(dir, "cgroup.procs");
  ASSIGN_OR_RETURN(std::string text, fs::readFile(procs));
  for (const std::string& w : words(text)) {
    ASSIGN_OR_RETURN(uint64_t pid, parseU64(w, procs));
    out.push_back(static_cast<pid_t>(pid));
  }
  ASSIGN_OR_RETURN(std::vector<std::string> children, childCgroups(dir));
  for (const std::string& child : children) {
    Status st = collectPids(child, out);
    if (!st.ok() && !absl::IsNotFound(st)) return st;  // a child may vanish meanwhile
  }
  return absl::OkStatus();
}

bool onCgroup2(const std::string& path) {
  struct statfs sfs;
  return ::statfs(path.c_str(), &sfs) == 0 &&
         static_cast<unsigned long>(sfs.f_type) == CGROUP2_SUPER_MAGIC;
}

// A temp directory standing in for cgroupfs holds its "interface files" as plain
// files, which rmdir refuses; removes them (never on a real cgroup2 filesystem).
void removeStandInFiles(const std::string& dir) {
  auto names = fs::listDir(dir);
  if (!names.ok()) return;
  for (const std::string& n : *names) {
    std::string p = fs::join(dir, n);
    if (!isDirectory(p)) ::unlink(p.c_str());
  }
}

std::string pidList(const std::vector<pid_t>& pids) {
  std::vector<std::string> parts;
  for (pid_t p : pids) parts.push_back(std::to_string(p));
  return joinStrings(parts, ", ");
}

std::string describe(const std::vector<const Fs2Manager::Setting*>& settings) {
  std::vector<std::string> parts;
  for (const auto* s : settings) parts.push_back(strCat(s->file, "=", trim(s->value)));
  return joinStrings(parts, ", ");
}

// Settings for linux.resources.memory. `unsupported` collects set fields cgroup v2
// has no file for.
Status memorySettings(const oci::Memory& m, std::vector<Fs2Manager::Setting>& out,
                      std::vector<std::string>& unsupported) {
  if (m.limit && *m.limit != 0) out.push_back({"memory", "memory.max", memoryValue(*m.limit)});
  if (m.reservation && *m.reservation != 0) {
    out.push_back({"memory", "memory.low", memoryValue(*m.reservation)});
  }
  ASSIGN_OR_RETURN(std::optional<std::string> swap, swapMax(m.limit, m.swap));
  if (swap) out.push_back({"memory", "memory.swap.max", *swap});
  if (m.kernel) unsupported.push_back("memory.kernel");
  if (m.kernelTCP) unsupported.push_back("memory.kernelTCP");
  if (m.swappiness && *m.swappiness != 0) unsupported.push_back("memory.swappiness");
  if (m.disableOOMKiller && *m.disableOOMKiller) unsupported.push_back("memory.disableOOMKiller");
  return absl::OkStatus();
}

void blockIOSettings(const oci::BlockIO& b, bool bfq, std::vector<Fs2Manager::Setting>& out,
                     std::vector<std::string>& unsupported) {
  // BFQ takes the v1 range (1..1000) as is; io.weight has its own range.
  auto weightValue = [&](uint64_t w) {
    return bfq ? std::to_string(w) : std::to_string(blkioWeightToIoWeight(w));
  };
  const char* weight_file = bfq ? "io.bfq.weight" : "io.weight";
  if (b.weight && *b.weight != 0) out.push_back({"io", weight_file, weightValue(*b.weight)});
  if (b.leafWeight) unsupported.push_back("blockIO.leafWeight");
  for (const oci::WeightDevice& d : b.weightDevice) {
    if (d.weight) {
      std::string value = strCat(d.major, ":", d.minor, " ", weightValue(*d.weight));
      out.push_back({"io", weight_file, value});
    }
    if (d.leafWeight) unsupported.push_back("blockIO.weightDevice[].leafWeight");
  }
  // io.max takes several keys per device in one line: "8:0 rbps=1048576 wiops=max".
  std::vector<std::pair<std::string, std::string>> lines;  // device, keys
  auto add = [&](const std::vector<oci::ThrottleDevice>& devs, const char* key) {
    for (const oci::ThrottleDevice& d : devs) {
      std::string dev = strCat(d.major, ":", d.minor);
      std::string kv = strCat(key, "=", d.rate == 0 ? std::string("max") : std::to_string(d.rate));
      auto it = std::find_if(lines.begin(), lines.end(), [&](auto& l) { return l.first == dev; });
      if (it == lines.end()) {
        lines.emplace_back(dev, kv);
      } else {
        it->second += " " + kv;
      }
    }
  };
  add(b.throttleReadBpsDevice, "rbps");
  add(b.throttleWriteBpsDevice, "wbps");
  add(b.throttleReadIOPSDevice, "riops");
  add(b.throttleWriteIOPSDevice, "wiops");
  for (const auto& [dev, keys] : lines) out.push_back({"io", "io.max", strCat(dev, " ", keys)});
}

Status unifiedSettings(const std::map<std::string, std::string>& unified,
                       std::vector<Fs2Manager::Setting>& out) {
  for (const auto& [key, value] : unified) {
    if (key.empty() || key.find('/') != std::string::npos ||
        key.find("..") != std::string::npos) {
      return invalidArgument("linux.resources.unified: invalid key \"", key,
                             "\"; keys are cgroup v2 file names such as \"memory.high\"");
    }
    size_t dot = key.find('.');
    if (dot == std::string::npos || dot == 0) {
      return invalidArgument("linux.resources.unified: key \"", key,
                             "\" has no \"<controller>.\" prefix; keys are cgroup v2 file "
                             "names such as \"memory.high\"");
    }
    std::string controller = key.substr(0, dot);
    if (controller == "cgroup") controller.clear();  // core files: always present
    Fs2Manager::Setting s{controller, key, value};
    s.from_unified = true;
    out.push_back(std::move(s));
  }
  return absl::OkStatus();
}

}  // namespace

Fs2Manager::Fs2Manager(Options options) : options_(std::move(options)) {
  path_ = fs::join(options_.mount_root, options_.path);
  sys_ = options_.syscalls != nullptr ? options_.syscalls : &RealSyscalls::get();
  logger_ = options_.logger ? options_.logger : log::get("cgroups");
}

std::string Fs2Manager::file(std::string_view name) const { return fs::join(path_, name); }

void Fs2Manager::enableControllers(const std::string& dir) const {
  auto available = fs::readFile(fs::join(dir, "cgroup.controllers"));
  if (!available.ok()) {
    logger_->debug("cgroup \"{}\": cannot read cgroup.controllers: {}", dir,
                   std::string(available.status().message()));
    return;
  }
  std::string control = fs::join(dir, "cgroup.subtree_control");
  auto enabled_text = fs::readFile(control);
  std::vector<std::string> enabled = enabled_text.ok() ? words(*enabled_text)
                                                       : std::vector<std::string>();
  std::vector<std::string> wanted;
  for (const std::string& name : words(*available)) {
    // The kernel lists enabled controllers bare; a stand-in file keeps what we wrote.
    bool on = std::any_of(enabled.begin(), enabled.end(), [&](const std::string& e) {
      return e == name || e == "+" + name;
    });
    if (!on) wanted.push_back(strCat("+", name));
  }
  if (wanted.empty()) return;
  // One write enables all at once; if the kernel refuses one (EBUSY when the cgroup
  // has processes of its own, ENOTSUP, …) it refuses all, so retry one by one.
  Status st = fs::writeFile(control, joinStrings(wanted, " "));
  if (st.ok()) return;
  for (const std::string& w : wanted) {
    Status one = fs::writeFile(control, w);
    if (!one.ok()) {
      logger_->debug("container \"{}\": cannot enable controller {} in \"{}\": {}",
                     options_.container_id, w.substr(1), control, std::string(one.message()));
    }
  }
}

Status Fs2Manager::create() {
  if (options_.path.empty() || options_.path[0] != '/') {
    return invalidArgument("cgroup path \"", options_.path, "\" must start with \"/\"");
  }
  std::vector<std::string> parts = split(options_.path, '/', true);
  if (parts.empty()) return invalidArgument("cgroup path \"", options_.path, "\" names the root");
  for (const std::string& p : parts) {
    if (p == "..") {
      return invalidArgument("cgroup path \"", options_.path, "\": \"..\" is not allowed");
    }
  }
  std::string dir = options_.mount_root;
  if (!isDirectory(dir)) {
    return notFound("cgroup2 mount \"", dir, "\" does not exist or is not a directory");
  }
  for (const std::string& p : parts) {
    enableControllers(dir);  // ancestors only: mount root .. parent
    dir = fs::join(dir, p);
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      return lastErrnoError(strCat("create cgroup: mkdir \"", dir, "\""));
    }
  }
  return absl::OkStatus();
}

Status Fs2Manager::addProcess(pid_t pid) {
  return withContext(fs::writeFile(file("cgroup.procs"), std::to_string(pid)),
                     strCat("move pid ", pid, " into cgroup"));
}

StatusOr<std::vector<std::string>> Fs2Manager::controllers() const {
  ASSIGN_OR_RETURN(std::string text, fs::readFile(file("cgroup.controllers")));
  return words(text);
}

StatusOr<std::vector<Fs2Manager::Setting>> Fs2Manager::settingsFor(
    const oci::Resources& r) const {
  std::vector<Setting> out;
  std::vector<std::string> unsupported;
  if (r.memory) RETURN_IF_ERROR(memorySettings(*r.memory, out, unsupported));
  if (r.cpu) {
    const oci::Cpu& c = *r.cpu;
    if (c.shares) {
      uint64_t w = cpuSharesToWeight(*c.shares);
      if (w != 0) out.push_back({"cpu", "cpu.weight", std::to_string(w)});
    }
    if (c.quota) {
      out.push_back({"cpu", "cpu.max", cpuMax(c.quota, c.period)});
    } else if (c.period && *c.period != 0) {
      // Only the period changes: keep the quota in force.
      std::string quota = "max";
      auto cur = fs::readFile(file("cpu.max"));
      if (cur.ok() && !words(*cur).empty()) quota = words(*cur)[0];
      out.push_back({"cpu", "cpu.max", strCat(quota, " ", *c.period)});
    }
    if (c.burst) out.push_back({"cpu", "cpu.max.burst", std::to_string(*c.burst)});
    if (c.idle) out.push_back({"cpu", "cpu.idle", std::to_string(*c.idle)});
    if (c.realtimeRuntime || c.realtimePeriod) unsupported.push_back("cpu.realtime*");
    if (!c.cpus.empty()) out.push_back({"cpuset", "cpuset.cpus", c.cpus});
    if (!c.mems.empty()) out.push_back({"cpuset", "cpuset.mems", c.mems});
  }
  if (r.pids) {
    out.push_back({"pids", "pids.max",
                   r.pids->limit <= 0 ? std::string("max") : std::to_string(r.pids->limit)});
  }
  if (r.blockIO) {
    blockIOSettings(*r.blockIO, fs::exists(file("io.bfq.weight")), out, unsupported);
  }
  for (const oci::HugepageLimit& h : r.hugepageLimits) {
    ASSIGN_OR_RETURN(std::string prefix, hugetlbPrefix(h.pageSize));
    out.push_back({"hugetlb", prefix + ".max", std::to_string(h.limit)});
    if (fs::exists(file(prefix + ".rsvd.max"))) {
      out.push_back({"hugetlb", prefix + ".rsvd.max", std::to_string(h.limit)});
    }
  }
  RETURN_IF_ERROR(unifiedSettings(r.unified, out));
  if (!unsupported.empty()) {
    logger_->warn("container \"{}\": linux.resources {} not supported by cgroup v2; ignored",
                  options_.container_id, joinStrings(unsupported, ", "));
  }
  return out;
}

Status Fs2Manager::apply(const oci::Resources& resources) {
  std::string ctx = strCat("container \"", options_.container_id, "\": apply resources");
  ASSIGN_OR_RETURN(std::vector<Setting> settings,
                   withContext(settingsFor(resources), ctx));
  std::optional<std::vector<bpf_insn>> program;
  if (!resources.devices.empty()) {
    ASSIGN_OR_RETURN(program, withContext(buildDeviceProgram(resources.devices), ctx));
  }

  // Which controllers this cgroup lacks, and which set limits need them.
  std::set<std::string> available;
  std::string available_text = "none";
  bool needs_controller = std::any_of(settings.begin(), settings.end(),
                                      [](const Setting& s) { return !s.controller.empty(); });
  if (needs_controller) {
    ASSIGN_OR_RETURN(std::vector<std::string> list, withContext(controllers(), ctx));
    available.insert(list.begin(), list.end());
    if (!list.empty()) available_text = joinStrings(list, ", ");
  }
  std::map<std::string, std::vector<const Setting*>> missing;
  for (const Setting& s : settings) {
    if (!s.controller.empty() && !available.count(s.controller)) {
      missing[s.controller].push_back(&s);
    }
  }
  for (const auto& [controller, needing] : missing) {
    if (options_.strict) {
      return failedPrecondition(
          "container \"", options_.container_id, "\": cgroup controller \"", controller,
          "\" is not available for cgroup \"", path_, "\" (available: ", available_text,
          ") but linux.resources sets ", describe(needing),
          "; enable the controller for this cgroup v2 hierarchy, or run without "
          "--cgroup-strict to skip limits whose controller is missing with a warning");
    }
  }
  for (const auto& [controller, needing] : missing) {
    logger_->warn(
        "container \"{}\": cgroup controller \"{}\" is not available on this host "
        "(available: {}); {} not applied",
        options_.container_id, controller, available_text, describe(needing));
  }

  for (const Setting& s : settings) {
    if (!s.controller.empty() && !available.count(s.controller)) continue;
    std::string path = file(s.file);
    Status st = fs::writeFile(path, s.value);
    if (st.ok()) continue;
    if (s.from_unified && errnoOf(st) == ENOENT) {
      return invalidArgument(ctx, ": linux.resources.unified[\"", s.file,
                             "\"]: no such file \"", path,
                             "\"; check the name against the kernel's cgroup v2 files");
    }
    return withContext(st, ctx);
  }

  if (program) {
    SysIntResult fd = sys_->open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (!fd.ok()) {
      return withContext(errnoError(fd.err, strCat("open cgroup \"", path_, "\"")), ctx);
    }
    Status st = attachDeviceProgram(*sys_, fd.value, *program);
    sys_->close(fd.value);
    RETURN_IF_ERROR_CTX(st, strCat(ctx, ": device rules on cgroup \"", path_, "\""));
  }
  return absl::OkStatus();
}

Status Fs2Manager::setFrozen(bool frozen) {
  std::string freeze_file = file("cgroup.freeze");
  Status st = fs::writeFile(freeze_file, frozen ? "1" : "0");
  if (!st.ok()) {
    if (errnoOf(st) == ENOENT && isDirectory(path_)) {
      return unimplemented("cgroup \"", path_,
                           "\" has no cgroup.freeze: the kernel's cgroup v2 freezer (Linux "
                           ">= 5.2) is needed to pause containers");
    }
    return st;
  }
  auto deadline = Clock::now() + options_.freeze_timeout;
  auto delay = std::chrono::milliseconds(1);
  while (true) {
    ASSIGN_OR_RETURN(bool now_frozen, isFrozen());
    if (now_frozen == frozen) return absl::OkStatus();
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(50));
  }
  std::string what = frozen ? "frozen 1" : "frozen 0";
  if (frozen) {
    // Do not leave the container half frozen.
    Status undo = fs::writeFile(freeze_file, "0");
    if (!undo.ok()) {
      logger_->warn("cgroup \"{}\": undo freeze: {}", path_, std::string(undo.message()));
    }
  }
  return absl::DeadlineExceededError(strCat(
      "cgroup \"", path_, "\": ", frozen ? "freeze" : "thaw", ": cgroup.events did not report \"",
      what, "\" within ", options_.freeze_timeout.count(), "ms",
      frozen ? "; the cgroup was thawed again" : ""));
}

Status Fs2Manager::freeze() { return setFrozen(true); }
Status Fs2Manager::thaw() { return setFrozen(false); }

StatusOr<bool> Fs2Manager::isFrozen() const {
  ASSIGN_OR_RETURN(std::string text, fs::readFile(file("cgroup.events")));
  auto keys = parseKeyed(text);
  auto it = keys.find("frozen");
  return it != keys.end() && it->second == "1";
}

Status Fs2Manager::killAll(int signal) {
  std::string kill_file = file("cgroup.kill");
  if (signal == SIGKILL && fs::exists(kill_file)) {
    return fs::writeFile(kill_file, "1");
  }
  ASSIGN_OR_RETURN(std::vector<pid_t> list, pids());
  for (pid_t pid : list) {
    SysIntResult r = sys_->kill(pid, signal);
    if (!r.ok() && r.err != ESRCH) {
      return errnoError(r.err, strCat("kill pid ", pid, " of cgroup \"", path_, "\" with signal ",
                                      signal));
    }
  }
  return absl::OkStatus();
}

StatusOr<std::vector<pid_t>> Fs2Manager::pids() const {
  std::vector<pid_t> out;
  RETURN_IF_ERROR(collectPids(path_, out));
  return out;
}

StatusOr<Stats> Fs2Manager::stats() const {
  Stats s;
  ASSIGN_OR_RETURN(s.memory_current, readOptionalU64(file("memory.current")));
  ASSIGN_OR_RETURN(s.memory_max, readOptionalU64(file("memory.max")));
  ASSIGN_OR_RETURN(s.pids_current, readOptionalU64(file("pids.current")));

  std::string cpu_stat = file("cpu.stat");
  ASSIGN_OR_RETURN(std::optional<std::string> cpu, readOptional(cpu_stat));
  if (cpu) {
    auto keys = parseKeyed(*cpu);
    auto get = [&](const char* key) -> StatusOr<std::optional<uint64_t>> {
      auto it = keys.find(key);
      if (it == keys.end()) return std::optional<uint64_t>();
      ASSIGN_OR_RETURN(uint64_t v, parseU64(it->second, strCat(cpu_stat, " ", key)));
      return std::optional<uint64_t>(v);
    };
    ASSIGN_OR_RETURN(s.cpu_usage_usec, get("usage_usec"));
    ASSIGN_OR_RETURN(s.cpu_user_usec, get("user_usec"));
    ASSIGN_OR_RETURN(s.cpu_system_usec, get("system_usec"));
  }

  std::string events_file = file("memory.events");
  ASSIGN_OR_RETURN(std::optional<std::string> events, readOptional(events_file));
  if (events) {
    MemoryEvents ev;
    auto keys = parseKeyed(*events);
    std::pair<const char*, uint64_t*> fields[] = {{"low", &ev.low},
                                                  {"high", &ev.high},
                                                  {"max", &ev.max},
                                                  {"oom", &ev.oom},
                                                  {"oom_kill", &ev.oom_kill}};
    for (auto& [key, dest] : fields) {
      auto it = keys.find(key);
      if (it == keys.end()) continue;
      ASSIGN_OR_RETURN(*dest, parseU64(it->second, strCat(events_file, " ", key)));
    }
    s.memory_events = ev;
  }
  return s;
}

StatusOr<bool> Fs2Manager::empty() const {
  auto text = fs::readFile(file("cgroup.events"));
  if (!text.ok()) {
    if (absl::IsNotFound(text.status()) && !fs::exists(path_)) return true;
    return text.status();
  }
  auto keys = parseKeyed(*text);
  auto it = keys.find("populated");
  return it == keys.end() || it->second == "0";
}

Status Fs2Manager::removeCgroup(const std::string& dir) const {
  auto children = childCgroups(dir);
  if (!children.ok()) {
    if (absl::IsNotFound(children.status())) return absl::OkStatus();
    return children.status();
  }
  for (const std::string& child : *children) RETURN_IF_ERROR(removeCgroup(child));

  auto deadline = Clock::now() + options_.destroy_timeout;
  bool stand_in_cleared = false;
  std::chrono::microseconds busy_wait(250);
  while (true) {
    if (::rmdir(dir.c_str()) == 0) return absl::OkStatus();
    int err = errno;
    if (err == ENOENT) return absl::OkStatus();
    if (err == ENOTEMPTY && !stand_in_cleared && !onCgroup2(dir)) {
      removeStandInFiles(dir);
      stand_in_cleared = true;
      continue;
    }
    if (err == EBUSY && Clock::now() < deadline) {
      // The last task may still be exiting: retry soon, backing off to 20 ms.
      std::this_thread::sleep_for(busy_wait);
      busy_wait = std::min(busy_wait * 2, std::chrono::microseconds(20000));
      continue;
    }
    if (err == EBUSY) {
      std::vector<pid_t> left;
      Status st = collectPids(dir, left);
      return failedPrecondition(
          "remove cgroup \"", dir, "\": still busy after ", options_.destroy_timeout.count(),
          "ms; ", left.empty() ? std::string("no pid listed (processes may be exiting)")
                               : strCat("processes remain: ", pidList(left)),
          st.ok() ? "" : strCat(" (listing pids: ", st.message(), ")"),
          "; kill them (berth-runtime kill --all) and retry");
    }
    return errnoError(err, strCat("remove cgroup: rmdir \"", dir, "\""));
  }
}

Status Fs2Manager::destroy() { return removeCgroup(path_); }

}  // namespace berth::cgroups
