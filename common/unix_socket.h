// Unix stream sockets by path, for any path length: sockaddr_un holds 107 bytes, so a
// longer path (deep state dirs: <state>/shims/<64-hex pod id>/shim.sock) is reached
// through an O_PATH descriptor of its directory as /proc/self/fd/<n>/<name>. The
// socket file itself is at `path` either way.
//
// Thread-safety: the functions are thread-safe (the directory fd is per call).
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"

namespace berth {

// Creates a listening SOCK_STREAM socket bound at `path` (an existing file there is
// removed first), with permissions `mode` and CLOEXEC (+ O_NONBLOCK if `nonblocking`).
// Errors: the failing syscall (socket, bind, listen) with the path; NotFound when the
// directory does not exist.
StatusOr<UniqueFd> listenUnixSocket(const std::string& path, mode_t mode = 0600,
                                    int backlog = 64, bool nonblocking = false);

// Connects a CLOEXEC SOCK_STREAM socket to `path`. Errors: the connect errno with the
// path (ENOENT / ECONNREFUSED when nothing listens there).
StatusOr<UniqueFd> connectUnixSocket(const std::string& path);

// Most descriptors one sendWithFds / recvWithFds message carries.
inline constexpr size_t kMaxPassedFds = 8;

// Sends all of `data` on the connected unix socket `sock`, with `fds` (at most
// kMaxPassedFds; the caller keeps its copies) attached to the first byte as
// SCM_RIGHTS (unix(7)). Blocks (poll) while the socket is full. Errors:
// InvalidArgument for empty data or too many fds; Unavailable when the peer is gone.
Status sendWithFds(int sock, std::string_view data, const std::vector<int>& fds);

// Receives up to `len` bytes into `buf` from `sock` (blocking per the socket's mode);
// descriptors that came with them are appended to `fds` (CLOEXEC). Returns the byte
// count, 0 at EOF. Errors: the recvmsg errno (EAGAIN as Unavailable "would block");
// DataLoss when the kernel truncated the descriptors (MSG_CTRUNC; `fds` is then cleared,
// closing what it held).
StatusOr<size_t> recvWithFds(int sock, char* buf, size_t len, std::vector<UniqueFd>* fds);

}  // namespace berth
