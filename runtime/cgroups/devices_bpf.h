// Device access control on cgroup v2: a BPF_PROG_TYPE_CGROUP_DEVICE program built
// from linux.resources.devices (last matching rule wins, like the v1 devices
// controller), loaded with bpf(2) and attached to the container's cgroup with
// BPF_F_ALLOW_MULTI, replacing a program we attached before.
// Thread-safety: pure builders; load/attach use the given Syscalls.
#pragma once

#include <linux/bpf.h>

#include <vector>

#include "common/status.h"
#include "common/syscalls.h"
#include "runtime/oci/config.h"

namespace berth::cgroups {

// Builds the program's instructions. The context is struct bpf_cgroup_dev_ctx
// (access_type: low 16 bits BPF_DEVCG_DEV_*, high 16 bits BPF_DEVCG_ACC_*; major;
// minor); return 1 allows, 0 denies. Rules are evaluated last-to-first so the last
// matching rule decides; no match denies. Errors: InvalidArgument for a rule with an
// unknown type or access letter.
StatusOr<std::vector<bpf_insn>> buildDeviceProgram(
    const std::vector<oci::DeviceCgroup>& rules);

// Loads `insns` (license "Apache-2.0"? no: "GPL" is not needed for this type; we use
// "Apache") and attaches it to the cgroup directory `cgroup_fd`, detaching programs
// previously attached by us. Never raises RLIMIT_MEMLOCK (kernel 6.x charges BPF memory
// to the cgroup). Errors carry the bpf(2) command and errno, plus the verifier log.
Status attachDeviceProgram(Syscalls& sys, int cgroup_fd,
                           const std::vector<bpf_insn>& insns);

}  // namespace berth::cgroups
