#include "runtime/container_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <cerrno>

#include "common/fs.h"
#include "common/json.h"
#include "common/strings.h"

namespace berth::runtime {

StatusOr<ContainerStore> ContainerStore::open(const std::string& root) {
  if (root.empty() || root[0] != '/') {
    return invalidArgument("--root \"", root, "\" must be an absolute path");
  }
  RETURN_IF_ERROR_CTX(fs::mkdirAll(root, 0700), "open runtime root");
  return ContainerStore(root);
}

std::string ContainerStore::dir(const std::string& id) const { return fs::join(root_, id); }

Status ContainerStore::validateId(const std::string& id) {
  auto bad = [&] {
    return invalidArgument("invalid container id \"", id,
                           "\": use 1 to 1024 characters of letters, digits, '_', '+', "
                           "'-' and '.', not \".\" or \"..\"");
  };
  if (id.empty() || id.size() > 1024 || id == "." || id == "..") return bad();
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '+' || c == '-' || c == '.';
    if (!ok) return bad();
  }
  return absl::OkStatus();
}

Status ContainerStore::createDir(const std::string& id) const {
  std::string d = dir(id);
  if (::mkdir(d.c_str(), 0711) != 0) {
    if (errno == EEXIST) {
      return alreadyExists("container \"", id, "\" already exists; delete it first or use another id");
    }
    return lastErrnoError(strCat("create state directory \"", d, "\""));
  }
  ::chmod(d.c_str(), 0711);  // not subject to umask
  return absl::OkStatus();
}

StatusOr<UniqueFd> ContainerStore::lock(const std::string& id) const {
  std::string d = dir(id);
  UniqueFd fd(::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return notFound("container \"", id, "\" does not exist");
    return lastErrnoError(strCat("open state directory \"", d, "\""));
  }
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return lastErrnoError(strCat("lock \"", d, "\""));
  }
  return fd;
}

nlohmann::json toJson(const ContainerRecord& record) {
  nlohmann::json j;
  j["state"] = oci::toJson(record.state);
  j["initStartTime"] = record.init_start_time;
  j["cgroupMount"] = record.cgroup_mount;
  j["cgroupPath"] = record.cgroup_path;
  j["cgroupStrict"] = record.cgroup_strict;
  j["newPidNamespace"] = record.new_pid_ns;
  return j;
}

StatusOr<ContainerRecord> recordFromJson(const nlohmann::json& j) {
  try {
    ContainerRecord r;
    const auto& s = j.at("state");
    r.state.ociVersion = s.value("ociVersion", "");
    r.state.id = s.at("id").get<std::string>();
    r.state.pid = s.value("pid", 0);
    auto status = oci::parseStatus(s.value("status", "creating"));
    if (status.ok()) r.state.status = *status;
    r.state.bundle = s.value("bundle", "");
    r.state.rootfs = s.value("rootfs", "");
    r.state.created = s.value("created", "");
    r.state.owner = s.value("owner", "");
    if (s.contains("annotations")) {
      r.state.annotations = s.at("annotations").get<std::map<std::string, std::string>>();
    }
    r.init_start_time = j.value("initStartTime", uint64_t{0});
    r.cgroup_mount = j.value("cgroupMount", "");
    r.cgroup_path = j.value("cgroupPath", "");
    r.cgroup_strict = j.value("cgroupStrict", false);
    r.new_pid_ns = j.value("newPidNamespace", true);
    return r;
  } catch (const nlohmann::json::exception& e) {
    return internalError("malformed container state: ", e.what());
  }
}

Status ContainerStore::save(const ContainerRecord& record) const {
  std::string path = fs::join(dir(record.state.id), "state.json");
  return fs::writeFileAtomic(path, json::dump(toJson(record)), 0600,
                             fs::Durability::kVolatile);
}

StatusOr<ContainerRecord> ContainerStore::load(const std::string& id) const {
  RETURN_IF_ERROR(validateId(id));
  std::string path = fs::join(dir(id), "state.json");
  auto j = json::parseFile(path);
  if (!j.ok()) {
    if (j.status().code() == absl::StatusCode::kNotFound) {
      return notFound("container \"", id, "\" does not exist");
    }
    return j.status();
  }
  auto record = recordFromJson(*j);
  if (!record.ok()) return withContext(record.status(), strCat("\"", path, "\""));
  return record;
}

Status ContainerStore::saveConfig(const std::string& id, const nlohmann::json& config) const {
  return fs::writeFileAtomic(fs::join(dir(id), "config.json"), json::dump(config), 0600,
                             fs::Durability::kVolatile);
}

StatusOr<nlohmann::json> ContainerStore::loadConfig(const std::string& id) const {
  return json::parseFile(fs::join(dir(id), "config.json"));
}

StatusOr<std::vector<std::string>> ContainerStore::list() const {
  ASSIGN_OR_RETURN(auto names, fs::listDir(root_));
  std::vector<std::string> ids;
  for (auto& n : names) {
    struct stat st;
    if (::stat(dir(n).c_str(), &st) == 0 && S_ISDIR(st.st_mode) && validateId(n).ok()) {
      ids.push_back(std::move(n));
    }
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

Status ContainerStore::remove(const std::string& id) const { return fs::removeAll(dir(id)); }

}  // namespace berth::runtime
