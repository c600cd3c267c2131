#include "csi/project_quota.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <linux/quota.h>
#include <sys/ioctl.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/unique_fd.h"

#ifndef SYS_quotactl_fd
#define SYS_quotactl_fd 443  // the same number on every architecture (asm-generic)
#endif
#ifndef XFS_SUPER_MAGIC
#define XFS_SUPER_MAGIC 0x58465342
#endif

namespace berth::csi {
namespace {

long quotactlFd(int fd, unsigned cmd, uint32_t id, void* addr) {
  return ::syscall(SYS_quotactl_fd, fd, cmd, static_cast<long>(id), addr);
}

StatusOr<UniqueFd> openDir(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return lastErrnoError(strCat("open \"", path, "\""));
  return fd;
}

}  // namespace

QuotaProbe probeProjectQuota(const std::string& dir) {
  QuotaProbe probe;
  struct statfs st;
  if (::statfs(dir.c_str(), &st) != 0) {
    probe.reason = strCat("statfs \"", dir, "\": ", std::strerror(errno));
    return probe;
  }
  std::string fstype;
  if (st.f_type == XFS_SUPER_MAGIC) {
    fstype = "xfs";
  } else if (st.f_type == EXT4_SUPER_MAGIC) {
    fstype = "ext4";
  } else {
    probe.reason = strCat("\"", dir, "\" is on a filesystem without project quotas (magic 0x",
                          hex(static_cast<unsigned long long>(st.f_type)), "; xfs or ext4 needed)");
    return probe;
  }
  auto fd = openDir(dir);
  if (!fd.ok()) {
    probe.reason = std::string(fd.status().message());
    return probe;
  }
  if_dqinfo info;
  std::memset(&info, 0, sizeof(info));
  if (quotactlFd(fd->get(), QCMD(Q_GETINFO, PRJQUOTA), 0, &info) != 0) {
    int err = errno;
    if (err == ENOSYS) {
      probe.reason = "the kernel has no quota support (quotactl_fd: ENOSYS; CONFIG_QUOTA off or "
                     "Linux < 5.14)";
    } else {
      probe.reason = strCat(fstype, " at \"", dir, "\" has no project quota enabled (",
                            errnoName(err), "; mount xfs with prjquota, or ext4 made with "
                            "-O project,quota and mounted with prjquota)");
    }
    return probe;
  }
  probe.available = true;
  probe.reason = strCat(fstype, " project quotas");
  return probe;
}

Status setProjectId(const std::string& dir, uint32_t project_id) {
  ASSIGN_OR_RETURN(UniqueFd fd, openDir(dir));
  fsxattr attr;
  std::memset(&attr, 0, sizeof(attr));
  if (::ioctl(fd.get(), FS_IOC_FSGETXATTR, &attr) != 0) {
    return lastErrnoError(strCat("read project id of \"", dir, "\" (FS_IOC_FSGETXATTR)"));
  }
  attr.fsx_projid = project_id;
  attr.fsx_xflags |= FS_XFLAG_PROJINHERIT;
  if (::ioctl(fd.get(), FS_IOC_FSSETXATTR, &attr) != 0) {
    return lastErrnoError(strCat("set project id ", project_id, " on \"", dir,
                                 "\" (FS_IOC_FSSETXATTR)"));
  }
  return absl::OkStatus();
}

Status setProjectLimit(const std::string& path, uint32_t project_id, int64_t bytes) {
  ASSIGN_OR_RETURN(UniqueFd fd, openDir(path));
  if_dqblk q;
  std::memset(&q, 0, sizeof(q));
  uint64_t blocks = bytes <= 0 ? 0 : (static_cast<uint64_t>(bytes) + 1023) / 1024;
  q.dqb_bhardlimit = blocks;
  q.dqb_bsoftlimit = blocks;
  q.dqb_valid = QIF_BLIMITS;
  if (quotactlFd(fd.get(), QCMD(Q_SETQUOTA, PRJQUOTA), project_id, &q) != 0) {
    return lastErrnoError(strCat("set the quota of project ", project_id, " to ", bytes,
                                 " bytes on \"", path, "\""));
  }
  return absl::OkStatus();
}

StatusOr<ProjectUsage> projectUsage(const std::string& path, uint32_t project_id) {
  ASSIGN_OR_RETURN(UniqueFd fd, openDir(path));
  if_dqblk q;
  std::memset(&q, 0, sizeof(q));
  if (quotactlFd(fd.get(), QCMD(Q_GETQUOTA, PRJQUOTA), project_id, &q) != 0) {
    return lastErrnoError(strCat("read the quota of project ", project_id, " on \"", path, "\""));
  }
  ProjectUsage usage;
  usage.used_bytes = static_cast<int64_t>(q.dqb_curspace);
  usage.used_inodes = static_cast<int64_t>(q.dqb_curinodes);
  usage.limit_bytes = static_cast<int64_t>(q.dqb_bhardlimit * 1024);
  return usage;
}

}  // namespace berth::csi
