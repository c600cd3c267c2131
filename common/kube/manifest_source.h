// Objects from a directory of manifests instead of an API server, for standalone
// nodes and tests: the same on_add / on_update / on_delete an Informer delivers, for
// the kinds asked for (e.g. Service, EndpointSlice).
//
// The directory (not recursive) is read in file-name order; files named *.yaml,
// *.yml or *.json count, hidden files (".x") do not. A file may hold several YAML
// documents ("---") and a document of kind "List" (or "<Kind>List") contributes its
// items. Objects are identified by (kind, namespace, name); a namespaced object
// without metadata.namespace gets `default_namespace` (cluster-scoped kinds — Node,
// Namespace, PersistentVolume, StorageClass, CSIDriver, CSINode,
// ClusterRole(Binding), CustomResourceDefinition, PriorityClass, RuntimeClass,
// IngressClass, VolumeAttachment — never get one). When two files define the same
// object the later file wins and a warning names both.
//
// Changes are noticed with inotify (create, write-close, rename, delete of entries)
// plus a full rescan every `rescan_period` (inotify can overflow, the directory may
// appear later). After each scan the wanted set is diffed against the cache: on_add
// for new objects, on_update(old, new) when the JSON differs, on_delete for objects
// no file defines any more. A file that fails to read or parse is logged with its
// name and line and skipped: the objects it defined before stay (a half-written file
// does not delete Services).
//
// Thread-safety: create/start/stop from one owner thread; get, snapshot, hasSynced,
// waitForSync and rescanNow from any thread. Handlers run on the source's thread (or
// the caller of rescanNow), one at a time, with the cache already updated.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/kube/object.h"
#include "common/unique_fd.h"

namespace berth::kube {

struct ManifestSourceOptions {
  std::string dir;
  // Kind -> handlers; objects of other kinds are ignored.
  std::map<std::string, ObjectHandlers> kinds;
  std::chrono::milliseconds rescan_period{30000};
  // Changes within this window after an inotify event are folded into one scan.
  std::chrono::milliseconds debounce{50};
  std::string default_namespace = "default";
};

class ManifestSource {
 public:
  // Errors: InvalidArgument when dir or kinds is empty; Internal when inotify cannot
  // be set up. A missing directory is not an error (it counts as empty until it
  // appears).
  static StatusOr<std::unique_ptr<ManifestSource>> create(ManifestSourceOptions options);
  ~ManifestSource();
  ManifestSource(const ManifestSource&) = delete;
  ManifestSource& operator=(const ManifestSource&) = delete;

  // Starts the watcher thread; the first scan runs on it right away.
  void start();
  // Stops and joins the thread. Idempotent.
  void stop();

  // Scans the directory now on the calling thread and delivers the differences.
  void rescanNow();

  // True after the first scan.
  bool hasSynced() const;
  bool waitForSync(std::chrono::milliseconds timeout) const;

  // The cached object; nullopt when no file defines it.
  std::optional<Json> get(std::string_view kind, std::string_view ns,
                          std::string_view name) const;
  // Every cached object of `kind`, sorted by key.
  std::vector<Json> snapshot(std::string_view kind) const;

  // Number of completed scans (tests wait on it).
  uint64_t scans() const;

 private:
  // (kind, key)
  using ObjectId = std::pair<std::string, std::string>;
  struct FileObjects {
    std::map<ObjectId, Json> objects;
  };

  explicit ManifestSource(ManifestSourceOptions options);

  void run();
  void addWatch();
  void scan();
  // Objects of the wanted kinds in `path`. Errors: read or parse errors naming the
  // file and line.
  StatusOr<std::map<ObjectId, Json>> readFile(const std::string& path) const;
  Status addObject(const Json& obj, const std::string& where,
                   std::map<ObjectId, Json>& out) const;

  ManifestSourceOptions options_;
  UniqueFd inotify_fd_;
  UniqueFd wake_fd_;  // eventfd: stop() writes to it
  int watch_descriptor_ = -1;
  std::thread thread_;
  std::atomic<bool> stopping_{false};

  std::mutex scan_mu_;                        // one scan at a time
  std::map<std::string, FileObjects> files_;  // last good parse per file; scan_mu_

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::map<ObjectId, Json> cache_;  // guarded by mu_
  uint64_t scans_ = 0;              // guarded by mu_
  bool dir_missing_logged_ = false;  // scan_mu_
};

}  // namespace berth::kube
