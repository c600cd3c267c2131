// Process identity helpers. A stored pid is always paired with the process start time
// (field 22 of /proc/<pid>/stat, in clock ticks since boot) so a reused pid is never
// mistaken for ours.
// Thread-safety: pure functions over procfs, thread-safe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace berth::proc {

// Start time of `pid` in clock ticks since boot. Errors: NotFound if no such process.
StatusOr<uint64_t> startTime(pid_t pid);

// True if `pid` is alive (not a zombie) and, when `start_time` != 0, started at
// `start_time` — i.e. it is still the same process.
bool isAlive(pid_t pid, uint64_t start_time);

// The one-letter state from /proc/<pid>/stat ('R', 'S', 'Z', …), or 0 if gone.
char state(pid_t pid);

}  // namespace berth::proc
