// Terminals for containers (runtime-spec config.md "Console"; runc's console-socket
// protocol): the PTY is allocated inside the container (its /dev/ptmx), the master
// is sent over a unix socket with SCM_RIGHTS (payload: the PTY's name, as runc sends),
// and the slave becomes the process's controlling terminal and stdio.
// Thread-safety: functions act on the given fds only; setControllingTerminal affects
// the calling process.
#pragma once

#include <string>

#include "common/status.h"
#include "common/unique_fd.h"

namespace berth::console {

struct Pty {
  UniqueFd master;
  UniqueFd slave;
  std::string slave_name;   // "/dev/pts/N" as seen in the container
};

// Opens a new PTY pair from `ptmx_path` (default the container's /dev/ptmx, which
// must point at its devpts' ptmx). Errors name the path.
StatusOr<Pty> openPty(const std::string& ptmx_path = "/dev/ptmx");

// Sets the window size (rows, columns) of a terminal fd. 0×0 is a no-op.
Status setSize(int fd, unsigned rows, unsigned cols);

// Connects to the unix stream socket at `path`. Errors name the path.
StatusOr<UniqueFd> connectSocket(const std::string& path);

// Sends `fd` over unix socket `sock` with SCM_RIGHTS and `name` as the data payload.
Status sendFd(int sock, int fd, const std::string& name);

// Receives one fd sent with SCM_RIGHTS. Errors: the peer closed, or no fd arrived.
StatusOr<UniqueFd> receiveFd(int sock);

// Makes `slave` the controlling terminal of a new session and dup2s it onto 0, 1, 2.
Status setControllingTerminal(int slave);

// The two ends of a console hand-off, made by the runtime before it forks: `child` is
// what the container side sends the PTY master over (a connected console socket, or
// one end of a local socketpair), `local` is the runtime's end of that socketpair when
// it keeps the terminal itself (`run`/`exec` in the foreground without a socket).
struct ConsoleEnds {
  UniqueFd child;
  UniqueFd local;
};

// Connects to `socket_path` when given; otherwise, with `allow_local`, makes a local
// socketpair. Errors: the connect failure (path named), or InvalidArgument
// `missing_message` when neither is possible.
StatusOr<ConsoleEnds> openConsoleEnds(const std::string& socket_path, bool allow_local,
                                      const std::string& missing_message);

// Container side: allocates a PTY from the container's /dev/ptmx, sets its size
// (rows × cols; 0×0 leaves it), sends the master over `console_fd` and makes the slave
// the calling process's controlling terminal and stdio. Closes `console_fd`.
Status attachNewPty(int console_fd, unsigned rows, unsigned cols);

}  // namespace berth::console
