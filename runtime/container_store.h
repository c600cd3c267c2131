// On-disk state of berth-runtime containers: one directory per container under the
// runtime root (--root, default /run/berth-runtime), mode 0711 so a container process
// that already dropped to its own uid can still open the exec FIFO:
//   <root>/<id>/state.json   ContainerRecord, written atomically (temp + rename)
//   <root>/<id>/config.json  the spec as created (exec reuses it)
//   <root>/<id>/exec.fifo    present from create until start (created state)
// Operations on one container serialise with flock(2) on its directory.
// Thread-safety: instances are immutable after open(); locking is per process.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "common/unique_fd.h"
#include "runtime/oci/state.h"

namespace berth::runtime {

// What the runtime remembers about a container beyond config.json.
struct ContainerRecord {
  oci::State state;               // status is the one at the time of writing
  uint64_t init_start_time = 0;   // pairs state.pid against pid reuse
  std::string cgroup_mount;       // the cgroup2 mount point
  std::string cgroup_path;        // the container's cgroup below cgroup_mount
  bool cgroup_strict = false;
  bool new_pid_ns = true;         // killing init kills everything when true
};

class ContainerStore {
 public:
  // Opens (creating with mode 0700 if needed) the runtime root. Errors name the path.
  static StatusOr<ContainerStore> open(const std::string& root);

  const std::string& root() const { return root_; }
  std::string dir(const std::string& id) const;

  // Container ids are 1..1024 characters of [A-Za-z0-9_+.-] and not "." or "..",
  // like runc's. Errors: InvalidArgument explaining the rule.
  static Status validateId(const std::string& id);

  // Creates the container directory. Errors: AlreadyExists
  // "container \"id\" already exists; delete it first or use another id".
  Status createDir(const std::string& id) const;

  // Takes an exclusive flock on the container's directory; released with the fd.
  // Errors: NotFound "container \"id\" does not exist".
  StatusOr<UniqueFd> lock(const std::string& id) const;

  Status save(const ContainerRecord& record) const;
  // Errors: NotFound "container \"id\" does not exist".
  StatusOr<ContainerRecord> load(const std::string& id) const;

  Status saveConfig(const std::string& id, const nlohmann::json& config) const;
  StatusOr<nlohmann::json> loadConfig(const std::string& id) const;

  // Ids of every container directory (including ones still being created).
  StatusOr<std::vector<std::string>> list() const;

  // Removes the container directory. OK if already gone.
  Status remove(const std::string& id) const;

 private:
  explicit ContainerStore(std::string root) : root_(std::move(root)) {}
  std::string root_;
};

nlohmann::json toJson(const ContainerRecord& record);
StatusOr<ContainerRecord> recordFromJson(const nlohmann::json& j);

}  // namespace berth::runtime
