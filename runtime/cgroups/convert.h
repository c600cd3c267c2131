// Conversions from OCI (cgroup v1 flavoured) resource values to cgroup v2 file values,
// the same ones runc and crun use, so the same pod spec gives the same limits.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/status.h"

namespace berth::cgroups {

// cpu.shares (2..262144) -> cpu.weight (1..10000): 1 + ((shares - 2) * 9999) / 262142.
// 0 -> 0 meaning "unset"; values are clamped to the v1 range first.
uint64_t cpuSharesToWeight(uint64_t shares);

// blkio.weight (10..1000) -> io.weight (1..10000): 1 + (weight - 10) * 9999 / 990.
// 0 -> 0 meaning "unset"; values are clamped to the v1 range first.
uint64_t blkioWeightToIoWeight(uint64_t weight);

// cpu quota/period (µs) -> cpu.max content: "max 100000", "50000 100000".
// quota absent or < 0 -> "max"; period absent or 0 -> 100000. If only the period is set the
// current quota must be kept, which the caller handles; here quota is given.
std::string cpuMax(std::optional<int64_t> quota, std::optional<uint64_t> period);

// memory limit (bytes, -1 = unlimited) -> memory.max content ("max" for any negative
// value, else the number).
std::string memoryValue(int64_t bytes);

// OCI memory.swap is memory+swap (v1). memory.swap.max = swap - limit.
// swap absent or 0 -> nullopt (leave unset); swap == -1 -> "max";
// Errors (InvalidArgument, naming the fields): swap < -1; limit unset, 0 or -1 with a
// positive swap; swap < limit.
StatusOr<std::optional<std::string>> swapMax(std::optional<int64_t> limit,
                                             std::optional<int64_t> swap);

// Hugepage size "2MB"/"1GB"/"64KB" -> the cgroup v2 file prefix "hugetlb.2MB".
// Errors: InvalidArgument for a malformed size.
StatusOr<std::string> hugetlbPrefix(const std::string& page_size);

}  // namespace berth::cgroups
