#include "runtime/cgroups/convert.h"

#include <algorithm>
#include <cctype>

#include "common/strings.h"

namespace berth::cgroups {
namespace {

constexpr uint64_t kMinShares = 2;
constexpr uint64_t kMaxShares = 262144;
constexpr uint64_t kMinBlkioWeight = 10;
constexpr uint64_t kMaxBlkioWeight = 1000;
constexpr uint64_t kDefaultCpuPeriod = 100000;

}  // namespace

uint64_t cpuSharesToWeight(uint64_t shares) {
  if (shares == 0) return 0;
  shares = std::clamp(shares, kMinShares, kMaxShares);
  return 1 + ((shares - 2) * 9999) / 262142;
}

uint64_t blkioWeightToIoWeight(uint64_t weight) {
  if (weight == 0) return 0;
  weight = std::clamp(weight, kMinBlkioWeight, kMaxBlkioWeight);
  return 1 + (weight - 10) * 9999 / 990;
}

std::string cpuMax(std::optional<int64_t> quota, std::optional<uint64_t> period) {
  uint64_t p = period.value_or(0);
  if (p == 0) p = kDefaultCpuPeriod;
  if (!quota.has_value() || *quota < 0) return strCat("max ", p);
  return strCat(*quota, " ", p);
}

std::string memoryValue(int64_t bytes) {
  if (bytes < 0) return "max";
  return std::to_string(bytes);
}

StatusOr<std::optional<std::string>> swapMax(std::optional<int64_t> limit,
                                             std::optional<int64_t> swap) {
  if (!swap.has_value() || *swap == 0) return std::optional<std::string>();
  if (*swap == -1) return std::optional<std::string>("max");
  if (*swap < -1) {
    return invalidArgument("linux.resources.memory.swap: invalid value ", *swap,
                           "; use -1 for unlimited or a byte count >= memory.limit");
  }
  if (!limit.has_value() || *limit == 0 || *limit == -1) {
    return invalidArgument(
        "linux.resources.memory.swap: ", *swap,
        " needs a memory limit (memory.limit is unset or unlimited); set "
        "linux.resources.memory.limit or use swap -1");
  }
  if (*limit < -1) {
    return invalidArgument("linux.resources.memory.limit: invalid value ", *limit);
  }
  if (*swap < *limit) {
    return invalidArgument("linux.resources.memory.swap (", *swap,
                           ") is memory+swap and must be >= memory.limit (", *limit, ")");
  }
  return std::optional<std::string>(std::to_string(*swap - *limit));
}

StatusOr<std::string> hugetlbPrefix(const std::string& page_size) {
  size_t digits = 0;
  while (digits < page_size.size() && std::isdigit(static_cast<unsigned char>(page_size[digits]))) {
    ++digits;
  }
  std::string unit = page_size.substr(digits);
  bool unit_ok = unit == "KB" || unit == "MB" || unit == "GB" || unit == "TB" || unit == "PB";
  if (digits == 0 || !unit_ok || page_size[0] == '0') {
    return invalidArgument("linux.resources.hugepageLimits: invalid pageSize \"", page_size,
                           "\"; use a size like \"2MB\", \"1GB\" or \"64KB\"");
  }
  return strCat("hugetlb.", page_size);
}

}  // namespace berth::cgroups
