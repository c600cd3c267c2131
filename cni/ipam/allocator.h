// berth-ipam's allocator: a crash-safe, multi-process-safe record of which attachment
// (container ID, ifname) holds which address of a network's range sets, kept by
// cni/ipam/store.h as one file per address under `<dataDir>/<network>/` plus one owner
// file per attachment listing its addresses (layout and crash behaviour in
// cni/ipam/README.md).
//
// Every operation takes the network's lock and changes only whole files (link, unlink,
// rename; the round-robin cursor aside), so any number of plugin processes may work on one network at once and a
// crash between any two steps leaves no address held twice. allocate() and release()
// read only the attachment's own owner and address files and probe candidate addresses
// one by one, so they stay flat as pods accumulate; gc() and list() read every file. An
// address whose owner file is damaged stays taken until gc() removes it.
//
// Round-robin (like host-local's last_reserved_ip): each range set remembers the last
// address it handed out and the next allocation starts after it, so a released address
// is not reused at once. The network address, every range's gateway and the IPv4
// broadcast address are never handed out.
//
// Thread-safety: an Allocator is used by one thread at a time; any number of
// Allocators in any number of processes may work on one network concurrently.
#pragma once

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cni/ipam/ip_address.h"
#include "cni/ipam/ipam_config.h"
#include "cni/ipam/store.h"
#include "cni/result.h"
#include "common/status.h"

namespace berth::cni::ipam {

class Allocator {
 public:
  // The allocator of network `network_name` (the configuration's "name") with the
  // store `<config.data_dir>/<network_name>`. Creates nothing until the first
  // allocation. Errors: InvalidArgument when the name cannot be a directory name (empty,
  // '/', ".", "..", spaces or control characters) or the config has no range set.
  static StatusOr<Allocator> open(const IpamConfig& config, std::string_view network_name);

  // One address per range set for (container_id, ifname), from the first range of the
  // set with a free address, with the range's gateway and the subnet's prefix length
  // ("10.1.0.5/24"); `interface` is left unset. Idempotent: the addresses the
  // attachment already holds are returned again (an ADD retried after a crash), and
  // only the range sets it holds nothing in get a new one. `requested` addresses (CNI
  // "ips" capability / args, at most one per range set) are handed out instead of the
  // next free one. Errors: InvalidArgument for a malformed ID/ifname or a requested
  // address outside every range, reserved, or two in one set; FailedPrecondition when a
  // requested address is held by another attachment; ResourceExhausted naming the
  // network, the ranges and the counts when a set has no free address (nothing is
  // allocated then); I/O errors naming the path.
  StatusOr<std::vector<IpConfig>> allocate(std::string_view container_id, std::string_view ifname,
                                           const std::vector<IpAddress>& requested = {});

  // Releases every address of (container_id, ifname); an unknown attachment (or a store
  // that does not exist) is OK. Errors: InvalidArgument for a malformed ID/ifname; I/O.
  Status release(std::string_view container_id, std::string_view ifname);

  // The addresses (container_id, ifname) holds: those of range sets in set order, then
  // any outside the configured ranges. Empty when it holds none. Errors: as release().
  StatusOr<std::vector<IpAddress>> allocated(std::string_view container_id,
                                             std::string_view ifname);

  // OK if the attachment holds addresses and each of `expected` (may be empty). Errors:
  // NotFound (holds nothing), FailedPrecondition naming the first expected address it
  // does not hold; I/O.
  Status check(std::string_view container_id, std::string_view ifname,
               const std::vector<IpAddress>& expected);

  // Removes every address file whose (container_id, ifname) is not in `valid`, damaged
  // ones included, and the owner files of those attachments; repairs the owner file of a
  // valid attachment that misses one of its addresses. Returns how many address files
  // were removed (CNI GC, SPEC.md "GC"). Errors: I/O.
  StatusOr<int> gc(const std::set<std::pair<std::string, std::string>>& valid);

  // Every address file of the network, damaged ones flagged (Allocation::problem),
  // sorted by address. Errors: I/O.
  StatusOr<std::vector<Allocation>> list();

  // OK while every range set has a free address; ResourceExhausted (same message as
  // allocate()) otherwise. Used for CNI STATUS. Errors: I/O.
  Status checkCapacity();

  // `<dataDir>/<network>`.
  const std::string& dir() const { return store_.dir(); }

 private:
  Allocator(IpamConfig config, std::string network, std::string dir)
      : config_(std::move(config)), network_(std::move(network)), store_(std::move(dir)) {}

  // The range set and range containing `ip`, or false.
  bool locate(const IpAddress& ip, size_t* set, const IpRange** range) const;
  IpConfig toIpConfig(const IpAddress& ip) const;
  // How many addresses of set `s` are taken (excluding reserved ones).
  uint64_t usedIn(size_t s, const std::vector<Allocation>& all) const;
  uint64_t capacityOf(size_t s) const;
  Status exhausted(size_t s, uint64_t used) const;
  // The addresses (container_id, ifname) holds, verified against their files (store
  // lock held; falls back to a full scan when the owner file is damaged).
  StatusOr<std::vector<IpAddress>> heldBy(std::string_view container_id, std::string_view ifname);
  // The next free address of set `s` after the cursor (round-robin), not in `claimed`;
  // ResourceExhausted when the set is full (store lock held).
  StatusOr<IpAddress> nextFree(size_t s, const std::set<IpAddress>& claimed);

  IpamConfig config_;
  std::string network_;
  Store store_;
};

}  // namespace berth::cni::ipam
