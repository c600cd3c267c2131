// Gratuitous ARP (RFC 5227 "ARP Announcement"): tells the neighbours on a link that an
// IPv4 address now lives at a MAC, so a pod whose address was just (re)assigned is
// reachable at once instead of after stale neighbour entries expire.
//
// Thread-safety: thread-safe; works in the calling thread's network namespace.
#pragma once

#include <string_view>

#include "common/status.h"

namespace berth::cni::link {

// Broadcasts one ARP request with sender = target = `ipv4` from `mac` on `ifname`
// (AF_PACKET). Errors: InvalidArgument for a bad address or MAC; the socket errno.
Status sendGratuitousArp(std::string_view ifname, std::string_view ipv4, std::string_view mac);

}  // namespace berth::cni::link
