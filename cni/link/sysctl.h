// Network sysctls of the calling thread's network namespace: /proc/sys/net follows the
// netns of the thread that opens the file, so a thread inside a pod's netns (cni/netns.h
// runInNetns) changes that pod's settings only.
//
// Thread-safety: thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace berth::cni::link {

// Writes `value` to /proc/sys/<key> (key like "net/ipv6/conf/eth0/accept_dad").
// Errors: InvalidArgument for a key with ".."; the open/write errno naming the key.
Status writeSysctl(std::string_view key, std::string_view value);

// Reads /proc/sys/<key>, trailing newline removed.
StatusOr<std::string> readSysctl(std::string_view key);

}  // namespace berth::cni::link
