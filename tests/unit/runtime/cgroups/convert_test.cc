#include "runtime/cgroups/convert.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace berth::cgroups {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kGiB = 1024LL * 1024 * 1024;

TEST(CpuSharesToWeight, MapsTheV1RangeOntoTheV2Range) {
  EXPECT_EQ(cpuSharesToWeight(0), 0u);  // unset
  EXPECT_EQ(cpuSharesToWeight(2), 1u);
  EXPECT_EQ(cpuSharesToWeight(262144), 10000u);
  // The default 1024 shares: 1 + (1022 * 9999) / 262142 = 39.
  EXPECT_EQ(cpuSharesToWeight(1024), 39u);
  EXPECT_EQ(cpuSharesToWeight(102), 4u);  // 1 + 999900 / 262142
}

TEST(CpuSharesToWeight, ClampsOutOfRangeValues) {
  EXPECT_EQ(cpuSharesToWeight(1), 1u);
  EXPECT_EQ(cpuSharesToWeight(262145), 10000u);
  EXPECT_EQ(cpuSharesToWeight(UINT64_MAX), 10000u);
}

TEST(BlkioWeightToIoWeight, MapsTheV1RangeOntoTheV2Range) {
  EXPECT_EQ(blkioWeightToIoWeight(0), 0u);  // unset
  EXPECT_EQ(blkioWeightToIoWeight(10), 1u);
  EXPECT_EQ(blkioWeightToIoWeight(1000), 10000u);
  EXPECT_EQ(blkioWeightToIoWeight(100), 910u);   // 1 + 90 * 9999 / 990
  EXPECT_EQ(blkioWeightToIoWeight(500), 4950u);  // 1 + 490 * 9999 / 990
}

TEST(BlkioWeightToIoWeight, ClampsOutOfRangeValues) {
  EXPECT_EQ(blkioWeightToIoWeight(1), 1u);
  EXPECT_EQ(blkioWeightToIoWeight(5000), 10000u);
}

TEST(CpuMax, FormatsQuotaAndPeriod) {
  EXPECT_EQ(cpuMax(std::nullopt, std::nullopt), "max 100000");
  EXPECT_EQ(cpuMax(50000, std::nullopt), "50000 100000");
  EXPECT_EQ(cpuMax(25000, 50000u), "25000 50000");
  EXPECT_EQ(cpuMax(-1, 200000u), "max 200000");
  EXPECT_EQ(cpuMax(-5, std::nullopt), "max 100000");
  EXPECT_EQ(cpuMax(std::nullopt, 250000u), "max 250000");
  EXPECT_EQ(cpuMax(1000, 0u), "1000 100000");  // period 0 = default
}

TEST(MemoryValue, UsesMaxForUnlimited) {
  EXPECT_EQ(memoryValue(-1), "max");
  EXPECT_EQ(memoryValue(0), "0");
  EXPECT_EQ(memoryValue(kGiB), "1073741824");
  EXPECT_EQ(memoryValue(INT64_MAX), "9223372036854775807");
}

TEST(SwapMax, LeavesUnsetWhenSwapIsAbsentOrZero) {
  auto r = swapMax(kGiB, std::nullopt);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->has_value());
  r = swapMax(kGiB, 0);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->has_value());
  r = swapMax(std::nullopt, std::nullopt);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
}

TEST(SwapMax, UnlimitedSwap) {
  for (std::optional<int64_t> limit : {std::optional<int64_t>(kGiB), std::optional<int64_t>(-1),
                                       std::optional<int64_t>()}) {
    auto r = swapMax(limit, -1);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->value_or("unset"), "max");
  }
}

TEST(SwapMax, SubtractsTheMemoryLimit) {
  auto r = swapMax(kGiB, 3 * kGiB);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->value_or("unset"), std::to_string(2 * kGiB));
  r = swapMax(kGiB, kGiB);  // memory+swap == memory: no swap at all
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->value_or("unset"), "0");
}

TEST(SwapMax, RejectsSwapBelowTheLimit) {
  auto r = swapMax(2 * kGiB, kGiB);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("memory.swap"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(">= memory.limit"));
}

TEST(SwapMax, RejectsSwapWithoutALimit) {
  for (std::optional<int64_t> limit :
       {std::optional<int64_t>(), std::optional<int64_t>(-1), std::optional<int64_t>(0)}) {
    auto r = swapMax(limit, kGiB);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("needs a memory limit"));
  }
}

TEST(SwapMax, RejectsNegativeValuesOtherThanMinusOne) {
  EXPECT_EQ(swapMax(kGiB, -2).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(swapMax(-7, kGiB).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(HugetlbPrefix, AcceptsKernelPageSizeNames) {
  EXPECT_EQ(hugetlbPrefix("2MB").value(), "hugetlb.2MB");
  EXPECT_EQ(hugetlbPrefix("1GB").value(), "hugetlb.1GB");
  EXPECT_EQ(hugetlbPrefix("64KB").value(), "hugetlb.64KB");
  EXPECT_EQ(hugetlbPrefix("512MB").value(), "hugetlb.512MB");
}

TEST(HugetlbPrefix, RejectsMalformedSizes) {
  for (const char* bad : {"", "MB", "2", "2mb", "2MiB", "02MB", "-2MB", "2 MB", "2MB.max",
                          "../2MB", "2XB"}) {
    auto r = hugetlbPrefix(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("pageSize")) << bad;
  }
}

}  // namespace
}  // namespace berth::cgroups
