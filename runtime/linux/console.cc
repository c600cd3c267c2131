#include "runtime/linux/console.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/unix_socket.h"
#include "common/strings.h"

namespace berth::console {

StatusOr<Pty> openPty(const std::string& ptmx_path) {
  Pty pty;
  pty.master.reset(::open(ptmx_path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!pty.master) return lastErrnoError(strCat("open \"", ptmx_path, "\""));
  int unlock = 0;
  if (::ioctl(pty.master.get(), TIOCSPTLCK, &unlock) != 0) {
    return lastErrnoError(strCat("unlock pty from \"", ptmx_path, "\""));
  }
  int n = 0;
  if (::ioctl(pty.master.get(), TIOCGPTN, &n) != 0) {
    return lastErrnoError(strCat("get pty number from \"", ptmx_path, "\""));
  }
  pty.slave_name = strCat("/dev/pts/", n);
  int slave = ::ioctl(pty.master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) {
    slave = ::open(pty.slave_name.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) return lastErrnoError(strCat("open pty slave \"", pty.slave_name, "\""));
  }
  pty.slave.reset(slave);
  return pty;
}

Status setSize(int fd, unsigned rows, unsigned cols) {
  if (rows == 0 && cols == 0) return absl::OkStatus();
  struct winsize ws {};
  ws.ws_row = static_cast<unsigned short>(rows);
  ws.ws_col = static_cast<unsigned short>(cols);
  if (::ioctl(fd, TIOCSWINSZ, &ws) != 0) return lastErrnoError("set terminal size");
  return absl::OkStatus();
}

StatusOr<UniqueFd> connectSocket(const std::string& path) {
  return withContext(connectUnixSocket(path), "console socket");
}

Status sendFd(int sock, int fd, const std::string& name) {
  struct msghdr msg {};
  std::string payload = name.empty() ? std::string("pty") : name;
  struct iovec iov = {payload.data(), payload.size()};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
  ssize_t n;
  do {
    n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return lastErrnoError("send pty master over the console socket");
  return absl::OkStatus();
}

StatusOr<UniqueFd> receiveFd(int sock) {
  char data[4096];
  struct iovec iov = {data, sizeof(data)};
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return lastErrnoError("receive fd");
  struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  if (n == 0 || cmsg == nullptr || cmsg->cmsg_type != SCM_RIGHTS) {
    return failedPrecondition("receive fd: the peer sent no file descriptor");
  }
  int fd;
  std::memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
  return UniqueFd(fd);
}

Status setControllingTerminal(int slave) {
  if (::setsid() < 0) return lastErrnoError("setsid");
  if (::ioctl(slave, TIOCSCTTY, 0) != 0) return lastErrnoError("make the pty the controlling terminal");
  for (int target = 0; target < 3; ++target) {
    if (::dup2(slave, target) < 0) return lastErrnoError(strCat("dup2 pty onto fd ", target));
  }
  return absl::OkStatus();
}

StatusOr<ConsoleEnds> openConsoleEnds(const std::string& socket_path, bool allow_local,
                                      const std::string& missing_message) {
  ConsoleEnds ends;
  if (!socket_path.empty()) {
    ASSIGN_OR_RETURN(ends.child, connectSocket(socket_path));
    return ends;
  }
  if (!allow_local) return invalidArgument(missing_message);
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    return lastErrnoError("console socketpair");
  }
  ends.local.reset(pair[0]);
  ends.child.reset(pair[1]);
  return ends;
}

Status attachNewPty(int console_fd, unsigned rows, unsigned cols) {
  UniqueFd sock(console_fd);
  auto pty = openPty();
  if (!pty.ok()) return withContext(pty.status(), "allocate terminal");
  RETURN_IF_ERROR(setSize(pty->slave.get(), rows, cols));
  RETURN_IF_ERROR(sendFd(sock.get(), pty->master.get(), pty->slave_name));
  pty->master.reset();
  sock.reset();
  return setControllingTerminal(pty->slave.get());
}

}  // namespace berth::console
