#include "runtime/linux/namespaces.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

#include "common/fs.h"
#include "common/strings.h"

namespace berth::ns {
namespace {

int order(const std::string& type) {
  if (type == "user") return 0;
  if (type == "mount") return 2;
  return 1;
}

}  // namespace

StatusOr<Plan> makePlan(const std::vector<oci::Namespace>& namespaces) {
  Plan plan;
  for (size_t i = 0; i < namespaces.size(); ++i) {
    const auto& n = namespaces[i];
    auto flag = oci::namespaceFlag(n.type);
    if (!flag.ok()) return withContext(flag.status(), strCat("linux.namespaces[", i, "].type"));
    if (n.path.empty()) {
      if (*flag == CLONE_NEWUSER) {
        plan.create_user = true;
      } else {
        plan.create_flags |= *flag;
      }
      continue;
    }
    std::string field = strCat("linux.namespaces[", i, "].path");
    UniqueFd fd(::open(n.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
      return withContext(lastErrnoError(strCat("open \"", n.path, "\"")),
                         strCat(field, " (", n.type, " namespace)"));
    }
    int actual = ::ioctl(fd.get(), NS_GET_NSTYPE);
    if (actual >= 0 && actual != *flag) {
      return invalidArgument(field, ": \"", n.path, "\" is not a ", n.type,
                             " namespace; give the path of a ", n.type,
                             " namespace such as /proc/<pid>/ns/",
                             oci::namespaceProcName(n.type));
    }
    plan.join.push_back({n.type, n.path, *flag, std::move(fd)});
  }
  std::stable_sort(plan.join.begin(), plan.join.end(),
                   [](const JoinTarget& a, const JoinTarget& b) {
                     return order(a.type) < order(b.type);
                   });
  return plan;
}

StatusOr<Plan> planJoinProcess(pid_t pid, const std::vector<std::string>& types) {
  Plan plan;
  for (const auto& type : types) {
    auto flag = oci::namespaceFlag(type);
    if (!flag.ok()) return flag.status();
    std::string name = oci::namespaceProcName(type);
    std::string path = strCat("/proc/", pid, "/ns/", name);
    struct stat theirs, ours;
    if (::stat(path.c_str(), &theirs) != 0) {
      if (errno == ENOENT && type == "time") continue;  // kernel without time ns
      return lastErrnoError(strCat("stat \"", path, "\""));
    }
    std::string self = strCat("/proc/self/ns/", name);
    if (::stat(self.c_str(), &ours) == 0 && ours.st_ino == theirs.st_ino &&
        ours.st_dev == theirs.st_dev) {
      continue;  // already there; setns into our own user ns would fail with EINVAL
    }
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return lastErrnoError(strCat("open \"", path, "\""));
    plan.join.push_back({type, path, *flag, std::move(fd)});
  }
  std::stable_sort(plan.join.begin(), plan.join.end(),
                   [](const JoinTarget& a, const JoinTarget& b) {
                     return order(a.type) < order(b.type);
                   });
  return plan;
}

Status joinAll(Plan& plan) {
  for (auto& target : plan.join) {
    if (::setns(target.fd.get(), target.flag) != 0) {
      return lastErrnoError(strCat("join ", target.type, " namespace \"", target.path, "\""));
    }
    target.fd.reset();
  }
  return absl::OkStatus();
}

namespace {
std::string mapText(const std::vector<oci::IdMapping>& mappings) {
  std::string out;
  for (const auto& m : mappings) out += strCat(m.containerID, " ", m.hostID, " ", m.size, "\n");
  return out;
}
}  // namespace

Status writeIdMappings(pid_t pid, const std::vector<oci::IdMapping>& uid_mappings,
                       const std::vector<oci::IdMapping>& gid_mappings) {
  std::string uid_path = strCat("/proc/", pid, "/uid_map");
  std::string gid_path = strCat("/proc/", pid, "/gid_map");
  if (!uid_mappings.empty()) {
    RETURN_IF_ERROR_CTX(fs::writeFile(uid_path, mapText(uid_mappings)),
                        "linux.uidMappings: check the ranges (hostID + size within the "
                        "ids this user may map)");
  }
  if (!gid_mappings.empty()) {
    RETURN_IF_ERROR_CTX(fs::writeFile(gid_path, mapText(gid_mappings)),
                        "linux.gidMappings: check the ranges (hostID + size within the "
                        "ids this user may map)");
  }
  return absl::OkStatus();
}

}  // namespace berth::ns
