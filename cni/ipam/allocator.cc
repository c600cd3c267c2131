#include "cni/ipam/allocator.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cctype>
#include <map>

#include "common/fs.h"
#include "common/unique_fd.h"

namespace berth::cni::ipam {

struct Allocator::State {
  std::map<size_t, IpAddress> last;   // range set index -> last address handed out
  std::vector<Allocation> allocations;
};

namespace {

constexpr char kHeader[] = "# berth-ipam v1";

bool isSafeToken(std::string_view s) {
  if (s.empty() || s == "." || s == ".." || s.size() > 253) return false;
  for (char c : s) {
    if (c == '/' || std::isspace(static_cast<unsigned char>(c)) ||
        !std::isprint(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

Status checkIds(std::string_view container_id, std::string_view ifname) {
  if (!isSafeToken(container_id)) {
    return invalidArgument("container ID \"", container_id,
                           "\" is not usable (empty, '/', whitespace or control characters)");
  }
  if (!isSafeToken(ifname)) {
    return invalidArgument("interface name \"", ifname, "\" is not usable");
  }
  return absl::OkStatus();
}

// Closes the lock fd (releasing the flock) when it goes out of scope.
struct LockGuard {
  int fd;
  ~LockGuard() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

StatusOr<Allocator> Allocator::open(const IpamConfig& config, std::string_view network) {
  if (!isSafeToken(network)) {
    return invalidArgument("network name \"", network,
                           "\" cannot name an IPAM directory (empty, '/', whitespace)");
  }
  return Allocator(config, std::string(network), fs::join(config.data_dir, std::string(network)));
}

StatusOr<int> Allocator::lock(bool create) {
  if (create) RETURN_IF_ERROR_CTX(fs::mkdirAll(dir_, 0700), "create IPAM data dir");
  std::string path = fs::join(dir_, "lock");
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
  if (fd < 0) return lastErrnoError(strCat("open IPAM lock \"", path, "\""));
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    Status st = lastErrnoError(strCat("lock \"", path, "\""));
    ::close(fd);
    return st;
  }
  return fd;
}

StatusOr<Allocator::State> Allocator::read() {
  State s;
  std::string path = fs::join(dir_, "allocations");
  auto text = fs::readFile(path);
  if (!text.ok()) {
    if (absl::IsNotFound(text.status())) return s;
    return withContext(text.status(), "read IPAM allocations");
  }
  for (const std::string& line : split(*text, '\n', /*skip_empty=*/true)) {
    if (line[0] == '#') continue;
    std::vector<std::string> f = split(line, ' ', /*skip_empty=*/true);
    if (f.size() == 3 && f[0] == "last") {
      auto ip = IpAddress::parse(f[2]);
      if (ip.ok()) s.last[static_cast<size_t>(std::atoi(f[1].c_str()))] = *ip;
      continue;
    }
    auto ip = f.size() == 3 ? IpAddress::parse(f[0]) : StatusOr<IpAddress>(absl::UnknownError(""));
    if (!ip.ok()) continue;  // a torn line cannot happen (rename); skip anything odd
    s.allocations.push_back({*ip, f[1], f[2]});
  }
  return s;
}

Status Allocator::write(const State& s) {
  std::string out = strCat(kHeader, "\n");
  for (const auto& [set, ip] : s.last) out += strCat("last ", set, " ", ip.toString(), "\n");
  for (const Allocation& a : s.allocations) {
    out += strCat(a.ip.toString(), " ", a.container_id, " ", a.ifname, "\n");
  }
  std::string tmp = fs::join(dir_, "allocations.tmp");
  std::string path = fs::join(dir_, "allocations");
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return lastErrnoError(strCat("write \"", tmp, "\""));
  UniqueFd guard(fd);
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::write(fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return lastErrnoError(strCat("write \"", tmp, "\""));
    done += static_cast<size_t>(n);
  }
  guard.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return lastErrnoError(strCat("rename \"", tmp, "\" to \"", path, "\""));
  }
  return absl::OkStatus();
}

bool Allocator::reserved(const IpRange& range, const IpAddress& ip) const {
  if (ip == range.gateway || ip == range.subnet.networkAddress()) return true;
  return range.subnet.isV4() && ip == range.subnet.lastAddress();
}

uint64_t Allocator::capacityOf(size_t set) const {
  uint64_t total = 0;
  for (const IpRange& r : config_.range_sets[set]) {
    uint64_t n = IpAddress::countInclusive(r.range_start, r.range_end);
    for (const IpAddress& ip : {r.gateway, r.subnet.networkAddress(), r.subnet.lastAddress()}) {
      if (n > 0 && !(ip < r.range_start) && !(r.range_end < ip) && reserved(r, ip)) --n;
    }
    total = total > UINT64_MAX - n ? UINT64_MAX : total + n;
  }
  return total;
}

StatusOr<std::vector<IpConfig>> Allocator::allocate(std::string_view container_id,
                                                    std::string_view ifname,
                                                    const std::vector<IpAddress>& requested) {
  RETURN_IF_ERROR(checkIds(container_id, ifname));
  ASSIGN_OR_RETURN(int fd, lock(/*create=*/true));
  LockGuard guard{fd};
  ASSIGN_OR_RETURN(State state, read());

  auto rangeOf = [&](const IpAddress& ip, size_t* set_out) -> const IpRange* {
    for (size_t s = 0; s < config_.range_sets.size(); ++s) {
      for (const IpRange& r : config_.range_sets[s]) {
        if (!(ip < r.range_start) && !(r.range_end < ip)) {
          if (set_out) *set_out = s;
          return &r;
        }
      }
    }
    return nullptr;
  };
  auto toConfig = [&](const IpAddress& ip) {
    const IpRange* r = rangeOf(ip, nullptr);
    IpConfig c;
    c.address = strCat(ip.toString(), "/", r ? r->subnet.length : ip.bits());
    if (r) c.gateway = r->gateway.toString();
    return c;
  };

  // A retried ADD gets what the attachment already holds.
  std::vector<IpConfig> held;
  for (const Allocation& a : state.allocations) {
    if (a.container_id == container_id && a.ifname == ifname) held.push_back(toConfig(a.ip));
  }
  if (!held.empty()) return held;

  std::map<IpAddress, const Allocation*> taken;
  for (const Allocation& a : state.allocations) taken[a.ip] = &a;
  std::vector<std::optional<IpAddress>> chosen(config_.range_sets.size());
  for (const IpAddress& want : requested) {
    size_t set = 0;
    const IpRange* r = rangeOf(want, &set);
    if (r == nullptr) {
      std::vector<std::string> ranges;
      for (const auto& s : config_.range_sets) {
        for (const IpRange& x : s) ranges.push_back(x.describe());
      }
      return invalidArgument("requested IP ", want.toString(), " is outside the ranges of network \"",
                             network_, "\" (", joinStrings(ranges, ", "), ")");
    }
    if (chosen[set]) {
      return invalidArgument("requested IPs ", chosen[set]->toString(), " and ", want.toString(),
                             " fall in the same range set; request one address per IP family");
    }
    if (reserved(*r, want)) {
      return invalidArgument("requested IP ", want.toString(),
                             " is the network, gateway or broadcast address of ", r->subnet.toString());
    }
    if (auto it = taken.find(want); it != taken.end()) {
      return failedPrecondition("requested IP ", want.toString(), " of network \"", network_,
                                "\" is already allocated to ", it->second->container_id, "/",
                                it->second->ifname);
    }
    chosen[set] = want;
  }

  for (size_t s = 0; s < config_.range_sets.size(); ++s) {
    if (chosen[s]) continue;
    const std::vector<IpRange>& ranges = config_.range_sets[s];
    uint64_t used = 0;
    for (const auto& [ip, owner] : taken) {
      size_t set = 0;
      if (rangeOf(ip, &set) && set == s) ++used;
    }
    uint64_t capacity = capacityOf(s);
    auto exhausted = [&] {
      std::vector<std::string> names;
      for (const IpRange& r : ranges) names.push_back(r.describe());
      return absl::ResourceExhaustedError(strCat(
          "no free IP address in network \"", network_, "\" range ", joinStrings(names, ", "),
          ": ", used, " of ", capacity,
          " addresses in use; remove unused pods (their IPs are freed on CNI DEL/GC) or widen "
          "the range"));
    };
    if (used >= capacity) return exhausted();
    // Start after the last address handed out in this set (round-robin), else at the
    // start of the first range; walk the ranges in order, wrapping around.
    size_t ri = 0;
    IpAddress cursor = ranges[0].range_start;
    if (auto it = state.last.find(s); it != state.last.end()) {
      for (size_t k = 0; k < ranges.size(); ++k) {
        if (!(it->second < ranges[k].range_start) && !(ranges[k].range_end < it->second)) {
          ri = k;
          cursor = it->second.next();
          if (ranges[k].range_end < cursor || cursor < ranges[k].range_start /*wrapped*/) {
            ri = (k + 1) % ranges.size();
            cursor = ranges[ri].range_start;
          }
          break;
        }
      }
    }
    // Every step lands on a used, reserved or free address; a free one exists (used <
    // capacity), so the walk ends within used + reserved + 1 steps.
    uint64_t budget = used + 3 * ranges.size() + 2;
    std::optional<IpAddress> found;
    for (uint64_t step = 0; step <= budget && !found; ++step) {
      if (!reserved(ranges[ri], cursor) && taken.count(cursor) == 0) {
        found = cursor;
        break;
      }
      if (cursor == ranges[ri].range_end) {
        ri = (ri + 1) % ranges.size();
        cursor = ranges[ri].range_start;
      } else {
        cursor = cursor.next();
      }
    }
    if (!found) return exhausted();
    chosen[s] = *found;
  }

  std::vector<IpConfig> out;
  for (size_t s = 0; s < chosen.size(); ++s) {
    state.allocations.push_back({*chosen[s], std::string(container_id), std::string(ifname)});
    state.last[s] = *chosen[s];
    out.push_back(toConfig(*chosen[s]));
  }
  RETURN_IF_ERROR(write(state));
  return out;
}

Status Allocator::release(std::string_view container_id, std::string_view ifname) {
  RETURN_IF_ERROR(checkIds(container_id, ifname));
  if (!fs::exists(fs::join(dir_, "lock"))) return absl::OkStatus();  // nothing ever allocated
  ASSIGN_OR_RETURN(int fd, lock(/*create=*/false));
  LockGuard guard{fd};
  ASSIGN_OR_RETURN(State state, read());
  size_t before = state.allocations.size();
  std::erase_if(state.allocations, [&](const Allocation& a) {
    return a.container_id == container_id && a.ifname == ifname;
  });
  if (state.allocations.size() == before) return absl::OkStatus();
  return write(state);
}

StatusOr<std::vector<IpAddress>> Allocator::allocated(std::string_view container_id,
                                                      std::string_view ifname) {
  std::vector<IpAddress> out;
  if (!fs::exists(fs::join(dir_, "lock"))) return out;
  ASSIGN_OR_RETURN(int fd, lock(/*create=*/false));
  LockGuard guard{fd};
  ASSIGN_OR_RETURN(State state, read());
  for (const Allocation& a : state.allocations) {
    if (a.container_id == container_id && a.ifname == ifname) out.push_back(a.ip);
  }
  return out;
}

Status Allocator::check(std::string_view container_id, std::string_view ifname,
                        const std::vector<IpAddress>& expected) {
  ASSIGN_OR_RETURN(std::vector<IpAddress> have, allocated(container_id, ifname));
  if (have.empty()) {
    return notFound("no IP address of network \"", network_, "\" is allocated to ", container_id,
                    "/", ifname);
  }
  for (const IpAddress& want : expected) {
    if (std::find(have.begin(), have.end(), want) == have.end()) {
      return failedPrecondition("IP ", want.toString(), " of network \"", network_,
                                "\" is not allocated to ", container_id, "/", ifname);
    }
  }
  return absl::OkStatus();
}

StatusOr<int> Allocator::gc(const std::set<std::pair<std::string, std::string>>& valid) {
  if (!fs::exists(fs::join(dir_, "lock"))) return 0;
  ASSIGN_OR_RETURN(int fd, lock(/*create=*/false));
  LockGuard guard{fd};
  ASSIGN_OR_RETURN(State state, read());
  size_t before = state.allocations.size();
  std::erase_if(state.allocations, [&](const Allocation& a) {
    return valid.count({a.container_id, a.ifname}) == 0;
  });
  int removed = static_cast<int>(before - state.allocations.size());
  if (removed > 0) RETURN_IF_ERROR(write(state));
  return removed;
}

StatusOr<std::vector<Allocation>> Allocator::list() {
  if (!fs::exists(fs::join(dir_, "lock"))) return std::vector<Allocation>{};
  ASSIGN_OR_RETURN(int fd, lock(/*create=*/false));
  LockGuard guard{fd};
  ASSIGN_OR_RETURN(State state, read());
  return state.allocations;
}

Status Allocator::checkCapacity() {
  ASSIGN_OR_RETURN(std::vector<Allocation> all, list());
  for (size_t s = 0; s < config_.range_sets.size(); ++s) {
    uint64_t used = 0;
    for (const Allocation& a : all) {
      for (const IpRange& r : config_.range_sets[s]) {
        if (!(a.ip < r.range_start) && !(r.range_end < a.ip)) {
          ++used;
          break;
        }
      }
    }
    uint64_t capacity = capacityOf(s);
    if (used >= capacity) {
      std::vector<std::string> names;
      for (const IpRange& r : config_.range_sets[s]) names.push_back(r.describe());
      return absl::ResourceExhaustedError(strCat("network \"", network_, "\" range ",
                                                 joinStrings(names, ", "), " is full (", used,
                                                 " of ", capacity, " addresses in use)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace berth::cni::ipam
