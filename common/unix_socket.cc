#include "common/unix_socket.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/strings.h"

namespace berth {
namespace {

// Fills `addr` for `path`; for a path too long for sun_path, `dir` receives an O_PATH
// fd of the parent directory and the address names it through /proc/self/fd.
Status address(const std::string& path, sockaddr_un& addr, UniqueFd& dir) {
  addr = {};
  addr.sun_family = AF_UNIX;
  std::string name = path;
  if (path.size() >= sizeof(addr.sun_path)) {
    size_t slash = path.rfind('/');
    if (slash == std::string::npos || slash == 0) {
      return invalidArgument("unix socket path \"", path, "\" is too long");
    }
    std::string parent = path.substr(0, slash);
    dir = UniqueFd(::open(parent.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dir) return lastErrnoError(strCat("open the directory of socket \"", path, "\""));
    name = strCat("/proc/self/fd/", dir.get(), path.substr(slash));
    if (name.size() >= sizeof(addr.sun_path)) {
      return invalidArgument("unix socket name \"", path.substr(slash + 1), "\" is too long");
    }
  }
  std::memcpy(addr.sun_path, name.c_str(), name.size() + 1);
  return absl::OkStatus();
}

}  // namespace

StatusOr<UniqueFd> listenUnixSocket(const std::string& path, mode_t mode, int backlog,
                                    bool nonblocking) {
  sockaddr_un addr;
  UniqueFd dir;
  RETURN_IF_ERROR(address(path, addr, dir));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0));
  if (!fd) return lastErrnoError("socket(AF_UNIX)");
  ::unlink(path.c_str());
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return lastErrnoError(strCat("bind unix socket \"", path, "\""));
  }
  if (::chmod(path.c_str(), mode) != 0) return lastErrnoError(strCat("chmod \"", path, "\""));
  if (::listen(fd.get(), backlog) != 0) return lastErrnoError(strCat("listen on \"", path, "\""));
  return fd;
}

StatusOr<UniqueFd> connectUnixSocket(const std::string& path) {
  sockaddr_un addr;
  UniqueFd dir;
  RETURN_IF_ERROR(address(path, addr, dir));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return lastErrnoError("socket(AF_UNIX)");
  int rc;
  do {
    rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return lastErrnoError(strCat("connect to unix socket \"", path, "\""));
  return fd;
}

}  // namespace berth
