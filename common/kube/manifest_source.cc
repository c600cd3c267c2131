#include "common/kube/manifest_source.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>

#include <algorithm>

#include "common/fs.h"
#include "common/kube/yaml_json.h"
#include "common/log.h"
#include "common/strings.h"

namespace berth::kube {
namespace {

std::shared_ptr<spdlog::logger> logger() { return log::get("kube"); }

constexpr uint32_t kWatchMask = IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |
                                IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ATTRIB;

bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool isManifestName(const std::string& name) {
  if (name.empty() || name[0] == '.') return false;
  return endsWith(name, ".yaml") || endsWith(name, ".yml") || endsWith(name, ".json");
}

bool isClusterScoped(std::string_view kind) {
  static const std::set<std::string, std::less<>> kKinds = {
      "Node", "Namespace", "PersistentVolume", "StorageClass", "CSIDriver", "CSINode",
      "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PriorityClass",
      "RuntimeClass", "IngressClass", "VolumeAttachment"};
  return kKinds.find(kind) != kKinds.end();
}

// Drains pending inotify events; returns false when the watched directory went away.
bool drainInotify(int fd, int& wd) {
  alignas(inotify_event) char buf[8192];
  bool alive = true;
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      if ((ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) != 0 && ev->wd == wd) {
        alive = false;
      }
      p += sizeof(inotify_event) + ev->len;
    }
  }
  if (!alive) {
    if (wd >= 0) ::inotify_rm_watch(fd, wd);
    wd = -1;
  }
  return alive;
}

}  // namespace

StatusOr<std::unique_ptr<ManifestSource>> ManifestSource::create(ManifestSourceOptions options) {
  if (options.dir.empty()) return invalidArgument("manifest source: no directory given");
  if (options.kinds.empty()) {
    return invalidArgument("manifest source ", options.dir, ": no kinds to deliver were given");
  }
  if (options.rescan_period.count() <= 0) options.rescan_period = std::chrono::seconds(30);
  std::unique_ptr<ManifestSource> source(new ManifestSource(std::move(options)));
  source->inotify_fd_.reset(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!source->inotify_fd_) return lastErrnoError("manifest source: inotify_init1");
  source->wake_fd_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!source->wake_fd_) return lastErrnoError("manifest source: eventfd");
  return source;
}

ManifestSource::ManifestSource(ManifestSourceOptions options) : options_(std::move(options)) {}

ManifestSource::~ManifestSource() { stop(); }

void ManifestSource::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { run(); });
}

void ManifestSource::stop() {
  stopping_ = true;
  if (wake_fd_) {
    uint64_t one = 1;
    (void)!::write(wake_fd_.get(), &one, sizeof(one));
  }
  if (thread_.joinable()) thread_.join();
}

bool ManifestSource::hasSynced() const {
  std::lock_guard<std::mutex> lock(mu_);
  return scans_ > 0;
}

bool ManifestSource::waitForSync(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return scans_ > 0; });
}

uint64_t ManifestSource::scans() const {
  std::lock_guard<std::mutex> lock(mu_);
  return scans_;
}

std::optional<Json> ManifestSource::get(std::string_view kind, std::string_view ns,
                                        std::string_view name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = cache_.find(ObjectId(std::string(kind), objectKey(ns, name)));
  if (it == cache_.end()) return std::nullopt;
  return it->second;
}

std::vector<Json> ManifestSource::snapshot(std::string_view kind) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Json> out;
  for (const auto& [id, obj] : cache_) {
    if (id.first == kind) out.push_back(obj);
  }
  return out;
}

void ManifestSource::addWatch() {
  if (watch_descriptor_ >= 0) return;
  int wd = ::inotify_add_watch(inotify_fd_.get(), options_.dir.c_str(), kWatchMask);
  if (wd >= 0) watch_descriptor_ = wd;
}

void ManifestSource::run() {
  addWatch();
  scan();
  while (!stopping_) {
    pollfd fds[2] = {{inotify_fd_.get(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}};
    int n = ::poll(fds, 2, static_cast<int>(options_.rescan_period.count()));
    if (stopping_) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      logger()->error("manifest source {}: poll: {}", options_.dir, std::strerror(errno));
      break;
    }
    if (n > 0 && (fds[0].revents & POLLIN) != 0) {
      drainInotify(inotify_fd_.get(), watch_descriptor_);
      // Fold a burst of changes (an editor's save, a kubectl cp) into one scan.
      pollfd wake = {wake_fd_.get(), POLLIN, 0};
      ::poll(&wake, 1, static_cast<int>(options_.debounce.count()));
      if (stopping_) break;
      drainInotify(inotify_fd_.get(), watch_descriptor_);
    }
    addWatch();
    scan();
  }
}

void ManifestSource::rescanNow() { scan(); }

Status ManifestSource::addObject(const Json& obj, const std::string& where,
                                 std::map<ObjectId, Json>& out) const {
  if (!obj.is_object()) return invalidArgument(where, ": a manifest must be a mapping");
  std::string kind;
  if (auto k = obj.find("kind"); k != obj.end() && k->is_string()) kind = *k;
  if (kind.empty()) return invalidArgument(where, ": the object has no \"kind\"");
  if (endsWith(kind, "List")) {
    auto items = obj.find("items");
    if (items != obj.end() && items->is_array()) {
      std::string item_kind = kind == "List" ? "" : kind.substr(0, kind.size() - 4);
      size_t index = 0;
      for (const Json& item : *items) {
        std::string item_where = strCat(where, " items[", index++, "]");
        if (!item_kind.empty() && item.is_object() && !item.contains("kind")) {
          Json copy = item;
          copy["kind"] = item_kind;
          RETURN_IF_ERROR(addObject(copy, item_where, out));
        } else {
          RETURN_IF_ERROR(addObject(item, item_where, out));
        }
      }
      return absl::OkStatus();
    }
  }
  if (options_.kinds.find(kind) == options_.kinds.end()) return absl::OkStatus();
  if (objectName(obj).empty()) {
    return invalidArgument(where, ": ", kind, " has no metadata.name");
  }
  Json copy = obj;
  if (!isClusterScoped(kind) && objectNamespace(copy).empty()) {
    copy["metadata"]["namespace"] = options_.default_namespace;
  }
  ObjectId id(kind, objectKey(copy));
  out[id] = std::move(copy);
  return absl::OkStatus();
}

StatusOr<std::map<ManifestSource::ObjectId, Json>> ManifestSource::readFile(
    const std::string& path) const {
  ASSIGN_OR_RETURN(std::string text, fs::readFile(path));
  std::map<ObjectId, Json> objects;
  if (endsWith(path, ".json")) {
    ASSIGN_OR_RETURN(Json doc, json::parse(text, path));
    RETURN_IF_ERROR(addObject(doc, path, objects));
    return objects;
  }
  ASSIGN_OR_RETURN(std::vector<YamlDocument> docs, parseYamlDocuments(text, path));
  for (const YamlDocument& doc : docs) {
    RETURN_IF_ERROR(addObject(doc.value, strCat(path, ":", doc.line), objects));
  }
  return objects;
}

void ManifestSource::scan() {
  std::lock_guard<std::mutex> scan_lock(scan_mu_);
  std::vector<std::string> names;
  StatusOr<std::vector<std::string>> listing = fs::listDir(options_.dir);
  if (listing.ok()) {
    dir_missing_logged_ = false;
    for (std::string& name : *listing) {
      if (isManifestName(name)) names.push_back(std::move(name));
    }
  } else if (!dir_missing_logged_) {
    logger()->warn("manifest source: {} (treated as empty until it can be read)",
                   std::string(listing.status().message()));
    dir_missing_logged_ = true;
  }
  std::sort(names.begin(), names.end());

  std::map<std::string, FileObjects> next;
  for (const std::string& name : names) {
    std::string path = fs::join(options_.dir, name);
    StatusOr<std::map<ObjectId, Json>> objects = readFile(path);
    if (objects.ok()) {
      next[name].objects = std::move(*objects);
      continue;
    }
    if (objects.status().code() == absl::StatusCode::kNotFound) continue;  // removed meanwhile
    auto previous = files_.find(name);
    logger()->warn("manifest source: skipping {}: {}{}", path, std::string(objects.status().message()),
                   previous != files_.end() ? " (keeping the objects it defined before)" : "");
    if (previous != files_.end()) next[name] = std::move(previous->second);
  }
  files_ = std::move(next);

  std::map<ObjectId, Json> wanted;
  std::map<ObjectId, std::string> origin;
  for (const auto& [name, file] : files_) {
    for (const auto& [id, obj] : file.objects) {
      auto [it, inserted] = origin.emplace(id, name);
      if (!inserted) {
        logger()->warn("manifest source {}: {} {} is defined in {} and {}; using {}", options_.dir,
                       id.first, id.second, it->second, name, name);
        it->second = name;
      }
      wanted[id] = obj;
    }
  }

  struct Change {
    std::string kind;
    int type;  // 0 add, 1 update, 2 delete
    Json old_obj;
    Json new_obj;
  };
  std::vector<Change> changes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, obj] : cache_) {
      if (wanted.find(id) == wanted.end()) changes.push_back({id.first, 2, obj, nullptr});
    }
    for (const auto& [id, obj] : wanted) {
      auto it = cache_.find(id);
      if (it == cache_.end()) {
        changes.push_back({id.first, 0, nullptr, obj});
      } else if (it->second != obj) {
        changes.push_back({id.first, 1, it->second, obj});
      }
    }
    cache_ = std::move(wanted);
  }
  for (const Change& change : changes) {
    const ObjectHandlers& handlers = options_.kinds.at(change.kind);
    if (change.type == 0 && handlers.on_add) handlers.on_add(change.new_obj);
    if (change.type == 1 && handlers.on_update) handlers.on_update(change.old_obj, change.new_obj);
    if (change.type == 2 && handlers.on_delete) handlers.on_delete(change.old_obj);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++scans_;
  }
  cv_.notify_all();
}

}  // namespace berth::kube
