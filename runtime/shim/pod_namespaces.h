// A pod's namespaces without a pause image (DESIGN.md "Processes"): the network, IPC
// and UTS namespaces are created by a short-lived child and pinned by bind mounts of
// its /proc/<pid>/ns/* files under the pod's ns dir (berthd uses
// /run/berth/ns/<pod-id>):
//
//   <ns_dir>/net  <ns_dir>/ipc  <ns_dir>/uts   [<ns_dir>/pid]
//
// The ns dir is bind-mounted on itself and made MS_PRIVATE so the pins neither
// propagate into other mount namespaces nor receive mounts from them. When the pod
// shares one PID namespace, the child also unshares the PID namespace and forks and
// execs the pause program (berth-pause, runtime/shim/pause_main.cc: a libc-free binary
// of a few pages; PID 1 there, reaping orphans); its
// /proc/<pid>/ns/pid is pinned too and the pause keeps running (as a child of the
// shim, a subreaper) until removePodNamespaces kills it.
//
// In the new UTS namespace the child sets the hostname; it writes the pod's sysctls
// (only namespaced ones: net.* with a pod network, kernel.{shm*,msg*,sem} and
// fs.mqueue.* with a pod IPC namespace) and brings `lo` up in the new network
// namespace.
//
// Thread-safety: createPodNamespaces forks; call it only from a single-threaded
// process (the shim). removePodNamespaces is safe anywhere (berthd uses it to clean
// up after a dead shim).
#pragma once

#include <sys/types.h>

#include <string>

#include "common/status.h"
#include "runtime/shim/protocol.h"

namespace berth::shim {

// Validates a sysctl against the pod's namespaces. Errors: InvalidArgument naming the
// sysctl and why ("sysctl \"kernel.panic\" is not namespaced; ...").
Status checkSysctl(const std::string& key, const SandboxSpec& spec);

// Creates and pins the namespaces of `spec` (see above). `pause_binary` is the absolute
// path of berth-pause, exec'd only when spec.share_pid (see pauseBinaryNextTo()). On
// failure nothing is left mounted and no process remains. Errors: InvalidArgument (bad
// sysctl, empty ns_dir), FailedPrecondition (share_pid and `pause_binary` is not
// executable), the failing syscall with its object (unshare, sethostname, sysctl
// write, exec of the pause, bind mount).
StatusOr<SandboxNamespaces> createPodNamespaces(const SandboxSpec& spec,
                                                const std::string& pause_binary);

// "<dir of `program`>/berth-pause": where the pause program is installed, next to
// berth-shim. `program` is an absolute path (the shim passes /proc/self/exe resolved).
std::string pauseBinaryNextTo(const std::string& program);

// Unmounts and removes every pin under `ns_dir` and the dir itself; kills the pause
// process `pause_pid` (when > 0 and still alive with `pause_start_time`, 0 = don't
// check) with SIGKILL. Idempotent: a missing dir or pin is OK. Errors: an unmount or
// rmdir failure other than "not mounted"/"missing".
Status removePodNamespaces(const std::string& ns_dir, pid_t pause_pid = 0,
                           uint64_t pause_start_time = 0);

// True if `path` is a mount point of an nsfs file (a pinned namespace).
bool isNsfsMount(const std::string& path);


}  // namespace berth::shim
