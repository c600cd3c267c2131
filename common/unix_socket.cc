#include "common/unix_socket.h"

#include <fcntl.h>
#include <poll.h>
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

Status sendWithFds(int sock, std::string_view data, const std::vector<int>& fds) {
  if (data.empty()) return invalidArgument("sendWithFds: descriptors need at least one data byte");
  if (fds.size() > kMaxPassedFds) {
    return invalidArgument("sendWithFds: ", fds.size(), " descriptors, at most ", kMaxPassedFds);
  }
  bool first = true;
  while (!data.empty()) {
    struct iovec iov = {const_cast<char*>(data.data()), data.size()};
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)];
    struct msghdr msg {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (first && !fds.empty()) {
      std::memset(control, 0, sizeof(control));
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
      struct cmsghdr* cm = CMSG_FIRSTHDR(&msg);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      std::memcpy(CMSG_DATA(cm), fds.data(), sizeof(int) * fds.size());
    }
    ssize_t n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      struct pollfd p = {sock, POLLOUT, 0};
      (void)::poll(&p, 1, -1);
      continue;
    }
    if (n < 0) return absl::UnavailableError(strCat("send on unix socket: ", std::strerror(errno)));
    first = false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

StatusOr<size_t> recvWithFds(int sock, char* buf, size_t len, std::vector<UniqueFd>* fds) {
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)];
  for (;;) {
    struct iovec iov = {buf, len};
    struct msghdr msg {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return absl::UnavailableError("would block");
    if (n < 0) return lastErrnoError("recvmsg on unix socket");
    for (struct cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm != nullptr; cm = CMSG_NXTHDR(&msg, cm)) {
      if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
        fds->emplace_back(fd);
      }
    }
    if ((msg.msg_flags & MSG_CTRUNC) != 0) {
      fds->clear();
      return absl::DataLossError("recvmsg: passed descriptors were truncated (too many sent)");
    }
    return static_cast<size_t>(n);
  }
}

}  // namespace berth
