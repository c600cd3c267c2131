// berth-ipam's allocator: a crash-safe, multi-process-safe store of which attachment
// (container ID, ifname) holds which address of a network's range sets.
//
// On disk, per network: `<dataDir>/<network>/allocations`, a text file
//   # berth-ipam v1
//   last <set index> <address>          (round-robin cursor per range set)
//   <address> <container id> <ifname>   (one line per allocation)
// and `<dataDir>/<network>/lock`. Every operation holds flock(LOCK_EX) on `lock` (the
// kernel drops it when a process dies, so a crashed plugin never blocks the next), reads
// the file, and writes a changed state to `allocations.tmp` then rename(2)s it over
// `allocations`: a crash at any point leaves the old or the new state, never a mix, and
// never an address held twice. One small file keeps ADD flat as pods accumulate (one read
// and one write, no per-address files to scan).
//
// Thread-safety: an Allocator may be used from one thread at a time; any number of
// Allocators in any number of processes may work on one network concurrently.
#pragma once

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cni/ipam/ip_address.h"
#include "cni/ipam/ipam_config.h"
#include "cni/result.h"
#include "common/status.h"

namespace berth::cni::ipam {

struct Allocation {
  IpAddress ip;
  std::string container_id;
  std::string ifname;
};

class Allocator {
 public:
  // The allocator of `network` (its "name"; must be file-name safe). Creates nothing
  // until the first change. Errors: InvalidArgument for an unsafe network name.
  static StatusOr<Allocator> open(const IpamConfig& config, std::string_view network);

  // One address per range set for (container_id, ifname) — or the ones it already
  // holds (a retried ADD). `requested` addresses must lie in a range set (one per set)
  // and be free. Allocation goes round-robin from the last address handed out in each
  // set; network, gateway and IPv4 broadcast addresses are never handed out. Results
  // carry the subnet's prefix length and the range's gateway. Errors: InvalidArgument
  // (bad IDs, a requested address outside every range), FailedPrecondition (requested
  // address held by another attachment), ResourceExhausted naming the network, the
  // ranges and the counts when a set has no free address; I/O errors with the path.
  StatusOr<std::vector<IpConfig>> allocate(std::string_view container_id, std::string_view ifname,
                                           const std::vector<IpAddress>& requested = {});

  // Releases every address of (container_id, ifname); an unknown attachment is OK.
  Status release(std::string_view container_id, std::string_view ifname);

  // The addresses (container_id, ifname) holds, in range-set order.
  StatusOr<std::vector<IpAddress>> allocated(std::string_view container_id,
                                             std::string_view ifname);

  // OK if the attachment holds addresses and, when `expected` is not empty, holds each
  // of them. Errors: NotFound (holds nothing), FailedPrecondition naming a missing one.
  Status check(std::string_view container_id, std::string_view ifname,
               const std::vector<IpAddress>& expected);

  // Releases allocations whose (container_id, ifname) is not in `valid`; returns how
  // many addresses were released.
  StatusOr<int> gc(const std::set<std::pair<std::string, std::string>>& valid);

  // Every allocation of the network.
  StatusOr<std::vector<Allocation>> list();

  // OK while every range set has a free address; ResourceExhausted otherwise.
  Status checkCapacity();

  const std::string& dir() const { return dir_; }

 private:
  struct State;
  Allocator(IpamConfig config, std::string network, std::string dir)
      : config_(std::move(config)), network_(std::move(network)), dir_(std::move(dir)) {}

  // Takes the lock (creating the dir); the returned fd holds it until closed.
  StatusOr<int> lock(bool create);
  StatusOr<State> read();
  Status write(const State& state);
  uint64_t capacityOf(size_t set) const;
  bool reserved(const IpRange& range, const IpAddress& ip) const;

  IpamConfig config_;
  std::string network_;
  std::string dir_;
};

}  // namespace berth::cni::ipam
