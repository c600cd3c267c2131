// Project quotas (xfs, or ext4 mounted with prjquota): how the driver enforces a mount
// volume's capacity when the filesystem under the base directory supports it. A
// volume directory gets its own project id with FS_XFLAG_PROJINHERIT (ioctl
// FS_IOC_FSSETXATTR, the interface `xfs_io -c chproj` and `chattr -p` use), so every
// file created below it is charged to the project, and the project's block hard limit
// is set with quotactl_fd(2) (Q_SETQUOTA on PRJQUOTA; Linux >= 5.14). Writes past the
// limit then fail with EDQUOT.
//
// Kernels built without CONFIG_QUOTA answer quotactl with ENOSYS; probe() reports that
// and the driver falls back to accounting (capacity reserved, not enforced).
//
// Thread-safety: the functions are thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace berth::csi {

struct QuotaProbe {
  bool available = false;
  std::string reason;  // why not (for the log), or the filesystem that has them
};

// Whether project quotas are enabled on the filesystem holding `dir`: it must be xfs
// or ext4 and answer Q_GETINFO for PRJQUOTA.
QuotaProbe probeProjectQuota(const std::string& dir);

// Gives directory `dir` project id `project_id` and FS_XFLAG_PROJINHERIT. Errors: the
// ioctl errno with the path.
Status setProjectId(const std::string& dir, uint32_t project_id);

// Sets the hard and soft block limit of `project_id` to `bytes` (rounded up to 1 KiB
// quota blocks) on the filesystem holding `path`; 0 removes the limit. Errors: the
// quotactl errno.
Status setProjectLimit(const std::string& path, uint32_t project_id, int64_t bytes);

struct ProjectUsage {
  int64_t used_bytes = 0;
  int64_t used_inodes = 0;
  int64_t limit_bytes = 0;
};

// What `project_id` uses on the filesystem holding `path` (Q_GETQUOTA).
StatusOr<ProjectUsage> projectUsage(const std::string& path, uint32_t project_id);

}  // namespace berth::csi
