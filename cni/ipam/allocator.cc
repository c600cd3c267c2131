#include "cni/ipam/allocator.h"

#include <algorithm>
#include <limits>
#include <map>
#include <optional>

#include "common/fs.h"

namespace berth::cni::ipam {
namespace {

Status checkAttachment(std::string_view container_id, std::string_view ifname) {
  RETURN_IF_ERROR(checkStoreName("container ID", container_id));
  return checkStoreName("interface name", ifname);
}

uint64_t saturatingAdd(uint64_t a, uint64_t b) {
  return a > std::numeric_limits<uint64_t>::max() - b ? std::numeric_limits<uint64_t>::max()
                                                      : a + b;
}

}  // namespace

StatusOr<Allocator> Allocator::open(const IpamConfig& config, std::string_view network_name) {
  Status name_ok = checkStoreName("network name", network_name);
  if (!name_ok.ok()) {
    return invalidArgument(name_ok.message(), " (the network's \"name\" names its IPAM directory)");
  }
  if (config.range_sets.empty()) {
    return invalidArgument("IPAM configuration of network \"", network_name,
                           "\" has no range set to allocate from");
  }
  return Allocator(config, std::string(network_name),
                   fs::join(config.data_dir, std::string(network_name)));
}

bool Allocator::locate(const IpAddress& ip, size_t* set, const IpRange** range) const {
  for (size_t s = 0; s < config_.range_sets.size(); ++s) {
    for (const IpRange& r : config_.range_sets[s]) {
      if (r.inRange(ip)) {
        if (set != nullptr) *set = s;
        if (range != nullptr) *range = &r;
        return true;
      }
    }
  }
  return false;
}

IpConfig Allocator::toIpConfig(const IpAddress& ip) const {
  const IpRange* r = nullptr;
  IpConfig c;
  if (locate(ip, nullptr, &r)) {
    c.address = strCat(ip.toString(), "/", r->subnet.length);
    c.gateway = r->gateway.toString();
  } else {
    c.address = strCat(ip.toString(), "/", ip.bits());
  }
  return c;
}

uint64_t Allocator::usedIn(size_t s, const std::vector<Allocation>& all) const {
  uint64_t used = 0;
  for (const Allocation& a : all) {
    for (const IpRange& r : config_.range_sets[s]) {
      if (r.inRange(a.ip) && !r.isReserved(a.ip)) {
        ++used;
        break;
      }
    }
  }
  return used;
}

uint64_t Allocator::capacityOf(size_t s) const {
  uint64_t total = 0;
  for (const IpRange& r : config_.range_sets[s]) total = saturatingAdd(total, r.capacity());
  return total;
}

Status Allocator::exhausted(size_t s, uint64_t used) const {
  std::vector<std::string> ranges;
  for (const IpRange& r : config_.range_sets[s]) ranges.push_back(r.describeUsable());
  return absl::ResourceExhaustedError(strCat(
      "network \"", network_, "\": no free IP address in range ", joinStrings(ranges, ", "),
      " (range set ", s, "): ", used, " of ", capacityOf(s),
      " addresses are allocated; free addresses by removing pods that no longer run (CNI DEL "
      "or GC releases their IPs) or widen the range (ipam subnet/rangeStart/rangeEnd, or the "
      "node's pod CIDR)"));
}

StatusOr<std::vector<IpAddress>> Allocator::heldBy(std::string_view container_id,
                                                   std::string_view ifname) {
  auto index = store_.readOwner(container_id, ifname);
  std::vector<IpAddress> listed;
  if (index.ok()) {
    if (*index) listed = std::move(**index);
  } else if (absl::IsDataLoss(index.status())) {
    // A damaged owner file (other hands): find the attachment's addresses the slow way.
    ASSIGN_OR_RETURN(std::vector<Allocation> all, store_.scan(/*read_owners=*/true));
    for (const Allocation& a : all) {
      if (a.ownedBy(container_id, ifname)) listed.push_back(a.ip);
    }
  } else {
    return index.status();
  }
  std::vector<IpAddress> held;
  for (const IpAddress& ip : listed) {
    if (std::find(held.begin(), held.end(), ip) != held.end()) continue;
    ASSIGN_OR_RETURN(std::optional<Allocation> a, store_.readAddress(ip));
    if (a && a->ownedBy(container_id, ifname)) held.push_back(ip);  // else a stale entry
  }
  return held;
}

StatusOr<IpAddress> Allocator::nextFree(size_t s, const std::set<IpAddress>& claimed) {
  const std::vector<IpRange>& ranges = config_.range_sets[s];
  // Start after the set's cursor when it lies in one of its ranges, else at the start.
  size_t start_ri = 0;
  IpAddress start = ranges[0].range_start;
  if (std::optional<IpAddress> last = store_.lastReserved(s)) {
    for (size_t k = 0; k < ranges.size(); ++k) {
      if (!ranges[k].inRange(*last)) continue;
      if (*last == ranges[k].range_end) {
        start_ri = (k + 1) % ranges.size();
        start = ranges[start_ri].range_start;
      } else {
        start_ri = k;
        start = last->next();
      }
      break;
    }
  }
  size_t ri = start_ri;
  IpAddress cursor = start;
  auto advance = [&] {
    if (cursor == ranges[ri].range_end) {
      ri = (ri + 1) % ranges.size();
      cursor = ranges[ri].range_start;
    } else {
      cursor = cursor.next();
    }
  };
  // Round-robin usually finds a free address right after the cursor: probe a few
  // candidates with one stat each.
  uint64_t span = 0;
  for (const IpRange& r : ranges) {
    span = saturatingAdd(span, IpAddress::countInclusive(r.range_start, r.range_end));
  }
  constexpr uint64_t kProbes = 64;
  for (uint64_t i = 0; i < std::min(span, kProbes); ++i, advance()) {
    if (ranges[ri].isReserved(cursor) || claimed.count(cursor) != 0) continue;
    ASSIGN_OR_RETURN(bool has, store_.hasAddress(cursor));
    if (!has) return cursor;
  }
  // Crowded: list the address files once and search in memory.
  ASSIGN_OR_RETURN(std::vector<Allocation> all, store_.scan(/*read_owners=*/false));
  uint64_t used = usedIn(s, all);
  if (used >= capacityOf(s)) return exhausted(s, used);
  std::set<IpAddress> taken = claimed;
  for (const Allocation& a : all) taken.insert(a.ip);
  // Each step passes a taken or reserved address or finds a free one, so a set with a
  // free address yields it within this many steps.
  ri = start_ri;
  cursor = start;
  uint64_t budget = saturatingAdd(taken.size(), 3 * ranges.size() + 2);
  for (uint64_t step = 0; step < budget; ++step, advance()) {
    if (!ranges[ri].isReserved(cursor) && taken.count(cursor) == 0) return cursor;
  }
  return exhausted(s, used);
}

StatusOr<std::vector<IpConfig>> Allocator::allocate(std::string_view container_id,
                                                    std::string_view ifname,
                                                    const std::vector<IpAddress>& requested) {
  RETURN_IF_ERROR(checkAttachment(container_id, ifname));
  ASSIGN_OR_RETURN(Store::Lock lock, store_.lock(/*create=*/true));

  const size_t sets = config_.range_sets.size();
  std::vector<std::optional<IpAddress>> chosen(sets);
  std::vector<bool> fresh(sets, false);
  // What the attachment already holds (a retried ADD, or one a crash cut short).
  ASSIGN_OR_RETURN(std::vector<IpAddress> held, heldBy(container_id, ifname));
  for (const IpAddress& ip : held) {
    size_t s = 0;
    if (locate(ip, &s, nullptr) && (!chosen[s] || ip < *chosen[s])) chosen[s] = ip;
  }

  for (const IpAddress& want : requested) {
    size_t s = 0;
    const IpRange* r = nullptr;
    if (!locate(want, &s, &r)) {
      std::vector<std::string> ranges;
      for (const auto& set : config_.range_sets) {
        for (const IpRange& x : set) ranges.push_back(x.describeUsable());
      }
      return invalidArgument("requested IP ", want.toString(), " is outside the ranges of network \"",
                             network_, "\" (", joinStrings(ranges, ", "), ")");
    }
    if (chosen[s] && *chosen[s] == want) continue;  // already held (a retried ADD)
    if (chosen[s] && !fresh[s]) continue;  // the attachment holds another one: keep it
    if (chosen[s]) {
      return invalidArgument("requested IPs ", chosen[s]->toString(), " and ", want.toString(),
                             " fall in the same range set of network \"", network_,
                             "\"; request at most one address per range set (IP family)");
    }
    if (r->isReserved(want)) {
      return invalidArgument("requested IP ", want.toString(),
                             " is the network, gateway or broadcast address of ",
                             r->subnet.toString(), " and is never handed out");
    }
    ASSIGN_OR_RETURN(std::optional<Allocation> owner, store_.readAddress(want));
    if (owner) {
      std::string who = owner->corrupt()
                            ? strCat("a damaged entry (", owner->problem, "; GC removes it)")
                            : strCat(owner->container_id, "/", owner->ifname);
      return failedPrecondition("requested IP ", want.toString(), " of network \"", network_,
                                "\" is already allocated to ", who);
    }
    chosen[s] = want;
    fresh[s] = true;
  }

  // Pick every missing address before creating any file, so exhaustion leaves nothing.
  std::set<IpAddress> claimed;
  for (const auto& c : chosen) {
    if (c) claimed.insert(*c);
  }
  for (size_t s = 0; s < sets; ++s) {
    if (chosen[s]) continue;
    ASSIGN_OR_RETURN(IpAddress ip, nextFree(s, claimed));
    chosen[s] = ip;
    claimed.insert(ip);
    fresh[s] = true;
  }

  if (std::find(fresh.begin(), fresh.end(), true) != fresh.end()) {
    // The owner file first, listing every address: each address file is a link of it.
    std::vector<IpAddress> listed = held;
    for (size_t s = 0; s < sets; ++s) {
      if (fresh[s]) listed.push_back(*chosen[s]);
    }
    std::string context = strCat("allocate in network \"", network_, "\"");
    RETURN_IF_ERROR_CTX(store_.writeOwner(container_id, ifname, listed), context);
    std::vector<IpAddress> created;
    auto rollback = [&] {
      for (const IpAddress& ip : created) (void)store_.remove(ip);
      (void)store_.writeOwner(container_id, ifname, held);
    };
    for (size_t s = 0; s < sets; ++s) {
      if (!fresh[s]) continue;
      auto ok = store_.linkAddress(container_id, ifname, *chosen[s]);
      if (!ok.ok()) {
        rollback();
        return withContext(ok.status(), context);
      }
      if (!*ok) {
        // Only a file made behind the lock's back gets here.
        rollback();
        return absl::AbortedError(strCat("network \"", network_, "\": address file of ",
                                         chosen[s]->toString(),
                                         " appeared during allocation; retry"));
      }
      created.push_back(*chosen[s]);
    }
    for (size_t s = 0; s < sets; ++s) {
      // The cursor only steers round-robin: losing it (a crash) is harmless.
      if (fresh[s]) RETURN_IF_ERROR(store_.setLastReserved(s, *chosen[s]));
    }
  }
  std::vector<IpConfig> out;
  for (size_t s = 0; s < sets; ++s) out.push_back(toIpConfig(*chosen[s]));
  return out;
}

Status Allocator::release(std::string_view container_id, std::string_view ifname) {
  RETURN_IF_ERROR(checkAttachment(container_id, ifname));
  ASSIGN_OR_RETURN(Store::Lock lock, store_.lock(/*create=*/false));
  if (!lock.held()) return absl::OkStatus();  // nothing was ever allocated
  ASSIGN_OR_RETURN(std::vector<IpAddress> held, heldBy(container_id, ifname));
  for (const IpAddress& ip : held) RETURN_IF_ERROR(store_.remove(ip));
  // The owner file last, so a crash before this point leaves it listing what remains.
  return store_.removeOwnerFile(Store::ownerName(container_id, ifname));
}

StatusOr<std::vector<IpAddress>> Allocator::allocated(std::string_view container_id,
                                                      std::string_view ifname) {
  RETURN_IF_ERROR(checkAttachment(container_id, ifname));
  ASSIGN_OR_RETURN(Store::Lock lock, store_.lock(/*create=*/false));
  if (!lock.held()) return std::vector<IpAddress>{};
  ASSIGN_OR_RETURN(std::vector<IpAddress> ips, heldBy(container_id, ifname));
  std::vector<std::pair<size_t, IpAddress>> held;
  for (const IpAddress& ip : ips) {
    size_t s = std::numeric_limits<size_t>::max();
    locate(ip, &s, nullptr);
    held.emplace_back(s, ip);
  }
  std::sort(held.begin(), held.end());
  std::vector<IpAddress> out;
  for (const auto& [s, ip] : held) out.push_back(ip);
  return out;
}

Status Allocator::check(std::string_view container_id, std::string_view ifname,
                        const std::vector<IpAddress>& expected) {
  ASSIGN_OR_RETURN(std::vector<IpAddress> have, allocated(container_id, ifname));
  if (have.empty()) {
    return notFound("network \"", network_, "\": no IP address is allocated to ", container_id,
                    "/", ifname);
  }
  for (const IpAddress& want : expected) {
    if (std::find(have.begin(), have.end(), want) == have.end()) {
      std::vector<std::string> names;
      for (const IpAddress& ip : have) names.push_back(ip.toString());
      return failedPrecondition("network \"", network_, "\": IP ", want.toString(),
                                " is not allocated to ", container_id, "/", ifname,
                                " (it holds ", joinStrings(names, ", "), ")");
    }
  }
  return absl::OkStatus();
}

StatusOr<int> Allocator::gc(const std::set<std::pair<std::string, std::string>>& valid) {
  ASSIGN_OR_RETURN(Store::Lock lock, store_.lock(/*create=*/false));
  if (!lock.held()) return 0;
  ASSIGN_OR_RETURN(std::vector<Allocation> all, store_.scan(/*read_owners=*/true));
  int removed = 0;
  std::map<std::pair<std::string, std::string>, std::vector<IpAddress>> kept;
  for (const Allocation& a : all) {
    if (!a.corrupt() && valid.count({a.container_id, a.ifname}) != 0) {
      kept[{a.container_id, a.ifname}].push_back(a.ip);
      continue;
    }
    RETURN_IF_ERROR(store_.remove(a.ip));
    ++removed;
  }
  ASSIGN_OR_RETURN(std::vector<OwnerFile> indexes, store_.scanOwners());
  for (const OwnerFile& index : indexes) {
    if (!index.corrupt && valid.count({index.container_id, index.ifname}) != 0) continue;
    RETURN_IF_ERROR(store_.removeOwnerFile(index.file));
  }
  // Every kept address must be listed in its owner file (repairs hand-made damage).
  for (const auto& [owner, ips] : kept) {
    auto index = store_.readOwner(owner.first, owner.second);
    std::vector<IpAddress> listed;
    if (index.ok() && *index) listed = **index;
    bool complete = index.ok() && std::all_of(ips.begin(), ips.end(), [&](const IpAddress& ip) {
      return std::find(listed.begin(), listed.end(), ip) != listed.end();
    });
    if (!complete) RETURN_IF_ERROR(store_.writeOwner(owner.first, owner.second, ips));
  }
  return removed;
}

StatusOr<std::vector<Allocation>> Allocator::list() {
  ASSIGN_OR_RETURN(Store::Lock lock, store_.lock(/*create=*/false));
  if (!lock.held()) return std::vector<Allocation>{};
  ASSIGN_OR_RETURN(std::vector<Allocation> all, store_.scan(/*read_owners=*/true));
  std::sort(all.begin(), all.end(),
            [](const Allocation& a, const Allocation& b) { return a.ip < b.ip; });
  return all;
}

Status Allocator::checkCapacity() {
  ASSIGN_OR_RETURN(Store::Lock lock, store_.lock(/*create=*/false));
  if (!lock.held()) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::vector<Allocation> all, store_.scan(/*read_owners=*/false));
  for (size_t s = 0; s < config_.range_sets.size(); ++s) {
    uint64_t used = usedIn(s, all);
    if (used >= capacityOf(s)) return exhausted(s, used);
  }
  return absl::OkStatus();
}

}  // namespace berth::cni::ipam
