// Loop devices for block volumes: a volume's sparse file is attached to a free
// /dev/loopN when it is staged or published and detached when its last user goes.
// Implements the loop(4) ioctls: LOOP_CTL_GET_FREE on /dev/loop-control, then
// LOOP_CONFIGURE (Linux >= 5.8; one atomic call), falling back to LOOP_SET_FD +
// LOOP_SET_STATUS64 on older kernels; LOOP_SET_CAPACITY after the file grows;
// LOOP_CLR_FD to detach. Devices are not autoclear: a bind mount of the device node
// holds no reference, so the device stays bound until detachLoop().
//
// Thread-safety: the functions are thread-safe; two attaches racing for the same free
// device retry (the loser gets EBUSY from the kernel).
#pragma once

#include <string>

#include "common/status.h"

namespace berth::csi {

// Attaches `backing_file` (an existing regular file) to a free loop device and
// returns its node, "/dev/loopN". Errors: the failing open/ioctl with the device and
// file named (e.g. ENOENT for /dev/loop-control when the loop module is missing).
StatusOr<std::string> attachLoop(const std::string& backing_file, bool readonly = false);

// Detaches `device` (LOOP_CLR_FD). OK when it is not bound (ENXIO) or missing.
// Errors: EBUSY while the device is still open somewhere (e.g. mounted).
Status detachLoop(const std::string& device);

// Makes `device` pick up its backing file's current size (LOOP_SET_CAPACITY).
Status refreshLoopCapacity(const std::string& device);

// The read-write loop device currently bound to `backing_file` (same st_dev and inode,
// as LOOP_GET_STATUS64 reports), or "" when none is. Read-only devices bound to the file
// (a readonly publication's own, LO_FLAGS_READ_ONLY) are skipped. Scans /sys/block/loop*.
StatusOr<std::string> findLoop(const std::string& backing_file);

// The size in bytes the loop device presents (BLKGETSIZE64).
StatusOr<int64_t> blockDeviceSize(const std::string& device);

}  // namespace berth::csi
