#include "runtime/linux/process_setup.h"

#include <grp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "common/fs.h"
#include "common/strings.h"
#include "runtime/linux/capabilities.h"
#include "runtime/linux/seccomp.h"

namespace berth::process {
namespace {

constexpr char kDefaultPath[] =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

struct RlimitName {
  const char* name;
  int resource;
};
constexpr RlimitName kRlimits[] = {
    {"RLIMIT_AS", RLIMIT_AS},         {"RLIMIT_CORE", RLIMIT_CORE},
    {"RLIMIT_CPU", RLIMIT_CPU},       {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_FSIZE", RLIMIT_FSIZE},   {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"RLIMIT_NICE", RLIMIT_NICE},     {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_NPROC", RLIMIT_NPROC},   {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO}, {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING}, {"RLIMIT_STACK", RLIMIT_STACK},
};

std::string envValue(const std::vector<std::string>& env, const std::string& key) {
  std::string prefix = key + "=";
  for (auto it = env.rbegin(); it != env.rend(); ++it) {
    if (it->rfind(prefix, 0) == 0) return it->substr(prefix.size());
  }
  return {};
}

bool isExecutableFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

}  // namespace

Status setRlimits(const std::vector<oci::Rlimit>& rlimits, spdlog::logger& logger) {
  for (const auto& r : rlimits) {
    int resource = -1;
    for (const auto& known : kRlimits) {
      if (r.type == known.name) resource = known.resource;
    }
    if (resource < 0) {
      return invalidArgument("process.rlimits: unknown rlimit type \"", r.type, "\"");
    }
    struct rlimit lim = {r.soft, r.hard};
    if (::setrlimit(resource, &lim) == 0) continue;
    int err = errno;
    struct rlimit cur {};
    ::getrlimit(resource, &cur);
    if (err == EPERM && r.hard > cur.rlim_max) {
      struct rlimit clamped = {std::min<rlim_t>(r.soft, cur.rlim_max), cur.rlim_max};
      if (::setrlimit(resource, &clamped) == 0) {
        logger.warn("{}: hard limit {} is above this runtime's own hard limit {} and cannot "
                    "be raised without CAP_SYS_RESOURCE; using soft {} hard {}",
                    r.type, r.hard, cur.rlim_max, clamped.rlim_cur, clamped.rlim_max);
        continue;
      }
      err = errno;
    }
    return errnoError(err, strCat("set ", r.type, " to soft ", r.soft, " hard ", r.hard));
  }
  return absl::OkStatus();
}

Status setOomScoreAdj(pid_t pid, int value, spdlog::logger& logger) {
  std::string path = strCat("/proc/", pid, "/oom_score_adj");
  Status st = fs::writeFile(path, std::to_string(value));
  if (st.ok()) return st;
  int err = errnoOf(st);
  if (err != EACCES && err != EPERM) return withContext(st, "process.oomScoreAdj");
  auto current = fs::readFile(path);
  std::string cur = current.ok() ? std::string(trim(*current)) : "?";
  logger.warn("process.oomScoreAdj {} is below the current value {} and this runtime may not "
              "lower it (no CAP_SYS_RESOURCE); keeping {}",
              value, cur, cur);
  return absl::OkStatus();
}

Status writeSysctls(const std::map<std::string, std::string>& sysctl) {
  for (const auto& [key, value] : sysctl) {
    std::string path = "/proc/sys/";
    for (char c : key) path.push_back(c == '.' ? '/' : c);
    RETURN_IF_ERROR_CTX(fs::writeFile(path, value), strCat("linux.sysctl \"", key, "\""));
  }
  return absl::OkStatus();
}

StatusOr<std::string> lookPath(const std::string& file, const std::vector<std::string>& env) {
  if (file.empty()) return invalidArgument("process.args[0] is empty; give the program to run");
  if (file.find('/') != std::string::npos) {
    if (isExecutableFile(file)) return file;
    struct stat st;
    if (::stat(file.c_str(), &st) != 0) {
      return lastErrnoError(strCat("exec \"", file, "\""));
    }
    return errnoError(EACCES, strCat("exec \"", file, "\": not an executable file"));
  }
  std::string path_var = envValue(env, "PATH");
  if (path_var.empty()) path_var = kDefaultPath;
  for (const auto& dir : split(path_var, ':')) {
    std::string candidate = fs::join(dir.empty() ? "." : dir, file);
    if (isExecutableFile(candidate)) return candidate;
  }
  return notFound("exec \"", file, "\": executable file not found in $PATH (", path_var, ")");
}

StatusOr<UniqueFd> loadSeccomp(const oci::Seccomp& profile) {
  ASSIGN_OR_RETURN(auto filter, seccomp::buildFilter(profile));
  return seccomp::loadFilter(filter, profile);
}

StatusOr<std::optional<oci::Seccomp>> finalize(const oci::Process& process,
                                               const std::optional<oci::Seccomp>& seccomp,
                                               bool in_user_ns, spdlog::logger& logger) {
  if (seccomp && !process.noNewPrivileges) {
    auto fd = loadSeccomp(*seccomp);
    if (!fd.ok()) return withContext(fd.status(), "load seccomp profile");
  }
  // The first chdir as root can reach directories the container user cannot search.
  bool cwd_done = ::chdir(process.cwd.c_str()) == 0;

  oci::Capabilities caps = process.capabilities.value_or(oci::Capabilities{});
  RETURN_IF_ERROR(caps::dropBounding(caps, logger));

  if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return lastErrnoError("prctl(PR_SET_KEEPCAPS)");
  const auto& user = process.user;
  std::vector<gid_t> groups(user.additionalGids.begin(), user.additionalGids.end());
  bool setgroups_allowed = true;
  if (in_user_ns) {
    auto sg = fs::readFile("/proc/self/setgroups");
    setgroups_allowed = !sg.ok() || trim(*sg) != "deny";
  }
  if (setgroups_allowed && ::setgroups(groups.size(), groups.data()) != 0) {
    return lastErrnoError("setgroups to process.user.additionalGids");
  }
  if (::setresgid(user.gid, user.gid, user.gid) != 0) {
    return lastErrnoError(strCat("setgid to ", user.gid, " (process.user.gid)"));
  }
  if (::setresuid(user.uid, user.uid, user.uid) != 0) {
    return lastErrnoError(strCat("setuid to ", user.uid, " (process.user.uid)"));
  }
  if (::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) return lastErrnoError("prctl(PR_SET_KEEPCAPS)");
  RETURN_IF_ERROR(caps::applySets(caps, logger));

  if (!cwd_done && ::chdir(process.cwd.c_str()) != 0) {
    return lastErrnoError(strCat("chdir to process.cwd \"", process.cwd, "\""));
  }
  if (user.umask) ::umask(static_cast<mode_t>(*user.umask));
  if (process.noNewPrivileges && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return lastErrnoError("prctl(PR_SET_NO_NEW_PRIVS)");
  }
  if (seccomp && process.noNewPrivileges) return std::optional<oci::Seccomp>(*seccomp);
  return std::optional<oci::Seccomp>();
}

Status exec(const std::string& path, const oci::Process& process) {
  std::vector<std::string> args = process.args;
  std::vector<std::string> env = process.env;
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  ::execve(path.c_str(), argv.data(), envp.data());
  return lastErrnoError(strCat("exec \"", path, "\""));
}

}  // namespace berth::process
