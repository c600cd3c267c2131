// Entering a network namespace, explicitly and scoped (STYLE.md): the function runs on
// a dedicated thread that joins the namespace with setns(2) — which changes only the
// calling thread — and the thread ends afterwards, so no other thread ever runs in it.
//
// Thread-safety: thread-safe; each call uses its own thread.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "common/unique_fd.h"

namespace berth::cni {

// Runs `fn` on a new thread inside the network namespace bound at `netns_path` (a
// /proc/<pid>/ns/net path or a bind mount of one) and returns its status. Errors:
// NotFound if the path does not exist, InvalidArgument if it is not a network
// namespace (setns EINVAL), otherwise fn's error.
Status runInNetns(const std::string& netns_path, const std::function<Status()>& fn);

// Opens the network namespace bound at `netns_path` (O_RDONLY, close-on-exec) and
// checks with ioctl(NS_GET_NSTYPE) that it is one. Errors: NotFound when the path does
// not exist; InvalidArgument `"<path>" is not a network namespace (it is a regular
// file/another namespace type); pass a /proc/<pid>/ns/net path or a bind mount of one`.
StatusOr<UniqueFd> openNetns(const std::string& netns_path);

// Sets the link `ifname` up (SIOCSIFFLAGS with IFF_UP) in the calling thread's network
// namespace. Errors: NotFound for an unknown link, the ioctl errno otherwise.
Status setLinkUp(std::string_view ifname);

// True if the link `ifname` exists and is up in the calling thread's network namespace.
bool linkIsUp(std::string_view ifname);

}  // namespace berth::cni
