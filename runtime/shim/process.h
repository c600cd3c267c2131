// Child processes of the shim: fork+exec with chosen stdio, waiting with a timeout
// through a pidfd, and the wait-status convention (128+N for signal N).
// Thread-safety: forks; use from the single-threaded shim only.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/status.h"

namespace berth::shim {

// Converts a waitpid(2) status into a shell-style exit code: the exit status, or
// 128+N when killed by signal N.
int exitCodeFromWaitStatus(int wait_status);

// Forks and execs argv[0] (a path) with stdin/stdout/stderr = `in`/`out`/`err`
// (-1 = /dev/null). The child gets a clean signal mask and default dispositions, and
// no other fds (they are close-on-exec or closed). Errors: fork/pipe failures; an
// exec failure is reported as the child's exit code 127.
StatusOr<pid_t> spawnProcess(const std::vector<std::string>& argv, int in, int out, int err);

struct RunResult {
  int exit_code = -1;
  bool timed_out = false;
  std::string output;  // what the command wrote to the captured fds (capped at 1 MiB)
};

// Runs argv to completion with stdin from `in` (-1 = /dev/null); stdout goes to `out`
// and stderr to `err`, or, when -1, into RunResult::output. After `timeout_ms` the
// child is SIGKILLed and timed_out set. Waits for this pid only (never reaps others).
// Errors: spawn failures.
StatusOr<RunResult> runProcess(const std::vector<std::string>& argv, int timeout_ms,
                               int in = -1, int out = -1, int err = -1);

// Reads what is available from a non-blocking fd into `buf` (up to `cap` bytes in
// total; the rest is read and dropped, setting *truncated). Returns false at EOF or on
// a read error other than EAGAIN.
bool drainFd(int fd, std::string& buf, size_t cap, bool* truncated);

// Sets O_NONBLOCK. Errors: fcntl failure.
Status setNonBlocking(int fd);

}  // namespace berth::shim
