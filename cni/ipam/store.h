// berth-ipam's on-disk store for one network: which attachment (container ID, ifname)
// holds which address. Layout (also in cni/ipam/README.md):
//
//   <dataDir>/<network>/lock                  flock(LOCK_EX) held for every operation
//   <dataDir>/<network>/owner.<key>           "<container id>\n<ifname>\n<ip>\n...": the
//                                             attachment's owner file, listing its addresses
//   <dataDir>/<network>/<ip>                  one per allocated address: a hard link of
//                                             its owner file (so it starts with the owner)
//   <dataDir>/<network>/last_reserved_ip.<N>  round-robin cursor of range set N
//   <dataDir>/<network>/.tmp                  a write in progress (stray after a crash)
//
// <key> is "<length of container id>.<container id>.<ifname>" (unambiguous), or
// "h.<64-bit FNV-1a of both>" when that would not fit in a file name.
//
// Steps: the owner file is written complete under `.tmp` and rename(2)d to
// `owner.<key>`, listing every address the attachment will hold; then each new address
// is link(2)ed from it to the address's canonical text (EEXIST: taken). So an address
// file is never half-written, every address file is listed by its owner file (lookups
// by owner read one file), and a crash leaves at most listed-but-unlinked addresses
// (ignored: each is verified against its address file) and a stray `.tmp` (removed when
// the next operation takes the lock). One new inode per allocation, however many
// families: inode creation is the expensive step on ext4. The cursor is a fixed-width
// record rewritten in place (a torn cursor only restarts round-robin). No fsync: pod
// network namespaces do not survive a reboot, and neither need their addresses.
//
// Thread-safety: a Store is used by one thread at a time; the lock serialises Stores of
// the same directory across threads and processes (the kernel drops a dead process's
// flock, so a crash never blocks the next operation).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cni/ipam/ip_address.h"
#include "common/status.h"
#include "common/unique_fd.h"

namespace berth::cni::ipam {

// One address file of the store.
struct Allocation {
  IpAddress ip;
  std::string container_id;  // empty when `problem` is set
  std::string ifname;        // empty when `problem` is set
  // Set when the file's content is not a valid owner ("<id>\n<ifname>\n" and address
  // lines): what is wrong with it. Such an address stays taken (never handed out) until gc removes it.
  std::string problem;
  bool corrupt() const { return !problem.empty(); }
  bool ownedBy(std::string_view id, std::string_view ifn) const {
    return !corrupt() && container_id == id && ifname == ifn;
  }
};

// One owner file found by scanOwners().
struct OwnerFile {
  std::string file;          // "owner.<key>"
  std::string container_id;  // empty when `corrupt`
  std::string ifname;
  bool corrupt = false;
};

// OK if `value` can be a file name and an owner line: non-empty, printable ASCII without
// spaces or '/', not "." or "..", at most 255 bytes. `what` names it in the error
// (`container ID "a/b" is not usable: contains '/'`). Errors: InvalidArgument.
Status checkStoreName(std::string_view what, std::string_view value);

class Store {
 public:
  // The store in `dir` (<dataDir>/<network>); nothing is touched until lock().
  explicit Store(std::string dir) : dir_(std::move(dir)) {}

  // Holds the store's lock while alive; all other calls require a held lock.
  class Lock {
   public:
    Lock() = default;
    explicit Lock(UniqueFd fd) : fd_(std::move(fd)) {}
    // False when lock(create=false) found no store (nothing was ever allocated).
    bool held() const { return fd_.valid(); }

   private:
    UniqueFd fd_;
  };

  // Takes flock(LOCK_EX) on `<dir>/lock`, waiting for other holders, and removes a stray
  // `.tmp`. With `create`, the directory (mode 0700, parents 0755) and the lock file are
  // created first; without, a missing store gives an unheld Lock. Errors: I/O errors
  // naming the path.
  StatusOr<Lock> lock(bool create);

  // The owner of `ip`'s address file: nullopt when there is none, an Allocation with
  // `problem` set when its content is damaged. Errors: I/O other than ENOENT.
  StatusOr<std::optional<Allocation>> readAddress(const IpAddress& ip);

  // True if `ip` has an address file (one fstatat). Errors: I/O other than ENOENT.
  StatusOr<bool> hasAddress(const IpAddress& ip);

  // Replaces the owner file of (container_id, ifname) atomically (temp + rename) with
  // one listing `ips`; an empty list removes it. Errors: I/O errors naming the path.
  Status writeOwner(std::string_view container_id, std::string_view ifname,
                    const std::vector<IpAddress>& ips);

  // Links the owner file of (container_id, ifname) (written by writeOwner) to `ip`'s
  // address file. Returns false if the address file already exists. Errors: I/O.
  StatusOr<bool> linkAddress(std::string_view container_id, std::string_view ifname,
                             const IpAddress& ip);

  // Removes the file of `ip`; a missing file is OK.
  Status remove(const IpAddress& ip);

  // The addresses listed in the owner file: nullopt when there is none. Errors:
  // DataLoss when it is damaged (callers fall back to scan()); I/O.
  StatusOr<std::optional<std::vector<IpAddress>>> readOwner(std::string_view container_id,
                                                           std::string_view ifname);

  // Removes an owner file by name (from scanOwners()); missing is OK.
  Status removeOwnerFile(const std::string& file);

  // Every address file, in directory order. With `read_owners`, each file is read and
  // damaged ones flagged; without, only names are listed (owner fields empty). Also
  // removes temp files of any name (".tmp*"). Errors: I/O errors naming the path.
  StatusOr<std::vector<Allocation>> scan(bool read_owners);

  // Every owner file, damaged ones flagged. Errors: I/O.
  StatusOr<std::vector<OwnerFile>> scanOwners();

  // The cursor of range set `set`, or nullopt when unset or unreadable (the cursor only
  // steers round-robin, so a bad one is ignored).
  std::optional<IpAddress> lastReserved(size_t set);

  // Rewrites the cursor of range set `set` in place (one fixed-width pwrite; readers
  // hold the lock, and a record torn by a crash reads as unset).
  Status setLastReserved(size_t set, const IpAddress& ip);

  const std::string& dir() const { return dir_; }

  // The owner file name of an attachment ("owner.<key>").
  static std::string ownerName(std::string_view container_id, std::string_view ifname);

 private:
  // Writes `data` to a new `.tmp`.
  Status writeTemp(std::string_view data);
  std::string path(std::string_view name) const;

  std::string dir_;
  UniqueFd dir_fd_;  // opened by lock(); used with the *at() calls
};

}  // namespace berth::cni::ipam
