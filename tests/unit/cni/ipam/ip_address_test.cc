#include "cni/ipam/ip_address.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace berth::cni::ipam {
namespace {

using ::testing::HasSubstr;

TEST(IpAddress, ParsesAndPrintsBothFamilies) {
  auto v4 = IpAddress::parse("10.1.0.5");
  ASSERT_TRUE(v4.ok());
  EXPECT_TRUE(v4->isV4());
  EXPECT_EQ(v4->toString(), "10.1.0.5");
  auto v6 = IpAddress::parse("FD00:0:0:0::5");
  ASSERT_TRUE(v6.ok());
  EXPECT_FALSE(v6->isV4());
  EXPECT_EQ(v6->toString(), "fd00::5");  // RFC 5952 canonical
  EXPECT_FALSE(IpAddress::parse("10.1.0.300").ok());
  EXPECT_FALSE(IpAddress::parse("10.1.0.0/24").ok());
  EXPECT_FALSE(IpAddress::parse("").ok());
}

TEST(IpAddress, ArithmeticAndOrdering) {
  IpAddress a = *IpAddress::parse("10.1.0.255");
  EXPECT_EQ(a.next().toString(), "10.1.1.0");
  EXPECT_EQ(a.next().prev(), a);
  EXPECT_EQ(IpAddress::parse("255.255.255.255")->next().toString(), "0.0.0.0");
  EXPECT_EQ(IpAddress::parse("fd00::ffff")->next().toString(), "fd00::1:0");
  EXPECT_LT(*IpAddress::parse("10.0.0.9"), *IpAddress::parse("10.0.0.10"));
  EXPECT_LT(*IpAddress::parse("255.0.0.0"), *IpAddress::parse("::1"));  // v4 sorts first
  EXPECT_EQ(IpAddress::countInclusive(*IpAddress::parse("10.0.0.2"), *IpAddress::parse("10.0.0.254")), 253u);
  EXPECT_EQ(IpAddress::countInclusive(*IpAddress::parse("10.0.0.2"), *IpAddress::parse("10.0.0.1")), 0u);
  EXPECT_EQ(IpAddress::countInclusive(*IpAddress::parse("::"), *IpAddress::parse("ffff::")), UINT64_MAX);
}

TEST(IpPrefix, ParseStrictAndLoose) {
  auto p = IpPrefix::parse("10.1.0.0/24");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->toString(), "10.1.0.0/24");
  EXPECT_EQ(p->lastAddress().toString(), "10.1.0.255");
  auto bad = IpPrefix::parse("10.1.0.5/24");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("did you mean 10.1.0.0/24"));
  auto loose = IpPrefix::parse("10.1.0.5/24", /*strict=*/false);
  ASSERT_TRUE(loose.ok());
  EXPECT_EQ(loose->address.toString(), "10.1.0.5");
  EXPECT_EQ(loose->networkAddress().toString(), "10.1.0.0");
  EXPECT_FALSE(IpPrefix::parse("10.1.0.0/33").ok());
  EXPECT_FALSE(IpPrefix::parse("10.1.0.0").ok());
  EXPECT_FALSE(IpPrefix::parse("10.1.0.0/").ok());
}

TEST(IpPrefix, EdgeLengthsContainsOverlaps) {
  EXPECT_EQ(IpPrefix::parse("0.0.0.0/0")->lastAddress().toString(), "255.255.255.255");
  EXPECT_EQ(IpPrefix::parse("10.0.0.7/32")->lastAddress().toString(), "10.0.0.7");
  EXPECT_EQ(IpPrefix::parse("10.0.0.6/31")->lastAddress().toString(), "10.0.0.7");
  EXPECT_EQ(IpPrefix::parse("fd00::/64")->lastAddress().toString(), "fd00::ffff:ffff:ffff:ffff");
  EXPECT_EQ(IpPrefix::parse("::1/128")->lastAddress().toString(), "::1");
  IpPrefix p = *IpPrefix::parse("10.1.0.0/16");
  EXPECT_TRUE(p.contains(*IpAddress::parse("10.1.255.3")));
  EXPECT_FALSE(p.contains(*IpAddress::parse("10.2.0.0")));
  EXPECT_FALSE(p.contains(*IpAddress::parse("::1")));
  EXPECT_TRUE(p.overlaps(*IpPrefix::parse("10.1.7.0/24")));
  EXPECT_TRUE(IpPrefix::parse("10.1.7.0/24")->overlaps(p));
  EXPECT_FALSE(p.overlaps(*IpPrefix::parse("10.2.0.0/16")));
}

}  // namespace
}  // namespace berth::cni::ipam
