#include "cni/link/sysctl.h"

#include <fcntl.h>
#include <unistd.h>

#include "common/unique_fd.h"

namespace berth::cni::link {

Status writeSysctl(std::string_view key, std::string_view value) {
  if (key.find("..") != std::string_view::npos || key.empty() || key[0] == '/') {
    return invalidArgument("sysctl key \"", key, "\" is not a relative /proc/sys path");
  }
  std::string path = strCat("/proc/sys/", key);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return lastErrnoError(strCat("open sysctl ", key));
  if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
    return lastErrnoError(strCat("write sysctl ", key, " = ", value));
  }
  return absl::OkStatus();
}

StatusOr<std::string> readSysctl(std::string_view key) {
  std::string path = strCat("/proc/sys/", key);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return lastErrnoError(strCat("open sysctl ", key));
  char buf[256];
  ssize_t n = ::read(fd.get(), buf, sizeof(buf));
  if (n < 0) return lastErrnoError(strCat("read sysctl ", key));
  std::string out(buf, static_cast<size_t>(n));
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

}  // namespace berth::cni::link
