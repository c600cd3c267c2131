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
// minor); return 1 allows, 0 denies. Semantics are the v1 devices controller's, per
// access bit: a rule applies to a device when its type is "a"/"" or equal and its
// major/minor are absent (or -1) or equal; for each requested bit (r, w, m) the last
// applying rule that names the bit decides (allow grants it, deny refuses it); a bit
// no rule names is denied. A request is allowed when all its bits are granted, so
// "allow c 1:3 rwm" then "deny c 1:3 w" allows reads but refuses read+write. Access ""
// means "rwm". The program walks the rules last to first and uses only LDX_MEM(W),
// ALU32 MOV/AND/RSH, JMP32 JNE/JEQ with an immediate, ALU64 MOV of an immediate into
// r0 and EXIT; a rule that matches every device with "rwm" ends it.
// Errors: InvalidArgument naming linux.resources.devices[i] for an unknown type or
// access letter or a device number outside 0..2^32-1.
StatusOr<std::vector<bpf_insn>> buildDeviceProgram(
    const std::vector<oci::DeviceCgroup>& rules);

// Loads `insns` (BPF_PROG_TYPE_CGROUP_DEVICE, license "Apache") and attaches it to the
// cgroup directory fd `cgroup_fd` (opened O_DIRECTORY by the caller, who keeps
// ownership) for BPF_CGROUP_DEVICE with BPF_F_ALLOW_MULTI, then detaches every device
// program that was attached before (the cgroup belongs to the container, so they can
// only be earlier versions of ours). If the cgroup has a single program attached
// without ALLOW_MULTI, it is replaced by attaching with the same flags instead.
// Never raises RLIMIT_MEMLOCK (kernel >= 5.11 charges BPF memory to the cgroup).
// Errors carry the bpf(2) command and errno; a verifier rejection includes its log.
Status attachDeviceProgram(Syscalls& sys, int cgroup_fd,
                           const std::vector<bpf_insn>& insns);

}  // namespace berth::cgroups
