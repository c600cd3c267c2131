#include "cni/ipam/ip_address.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/strings.h"

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

TEST(IpAddress, Rfc5952CanonicalText) {
  EXPECT_EQ(IpAddress::parse("2001:0db8:0000:0000:0001:0000:0000:0001")->toString(),
            "2001:db8::1:0:0:1");  // the first of two equal zero runs becomes "::"
  EXPECT_EQ(IpAddress::parse("2001:db8:0:1:1:1:1:1")->toString(), "2001:db8:0:1:1:1:1:1");
  EXPECT_EQ(IpAddress::parse("0:0:0:0:0:0:0:0")->toString(), "::");
  EXPECT_EQ(IpAddress::parse("::ffff:10.0.0.1")->toString(), "::ffff:10.0.0.1");
  EXPECT_FALSE(IpAddress::parse("::ffff:10.0.0.1")->isV4());  // mapped stays IPv6
  EXPECT_EQ(IpAddress::parse("fd00::1")->bits(), 128);
}

TEST(IpAddress, MalformedInputIsRejectedWithTheText) {
  for (const char* bad : {"", " 10.0.0.1", "10.0.0.1 ", "10.0.0", "10.0.0.1.2", "1.2.3.4%eth0",
                          "fe80::1%eth0", "fd00:::1", "fd00::1::2", "g::1", "10.0.0.01x",
                          "::/0", "localhost"}) {
    auto ip = IpAddress::parse(bad);
    ASSERT_FALSE(ip.ok()) << bad;
    EXPECT_EQ(ip.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(ip.status().message(), HasSubstr(strCat("\"", bad, "\" is not an IP address")));
  }
}

TEST(IpAddress, OffsetsAndDistance) {
  IpAddress a = *IpAddress::parse("10.1.0.10");
  EXPECT_EQ(a.plus(246).toString(), "10.1.1.0");
  EXPECT_EQ(a.plus(-11).toString(), "10.0.255.255");
  EXPECT_EQ(a.plus(0), a);
  EXPECT_EQ(IpAddress::parse("0.0.0.0")->prev().toString(), "255.255.255.255");  // wraps
  EXPECT_EQ(IpAddress::parse("::")->prev().toString(), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
  EXPECT_EQ(IpAddress::parse("fd00::")->plus(int64_t{1} << 40).toString(), "fd00::100:0:0");
  EXPECT_EQ(IpAddress::parse("fd00::1:0")->plus(-1).toString(), "fd00::ffff");
  EXPECT_EQ(IpAddress::distance(a, a), 0u);
  EXPECT_EQ(IpAddress::distance(a, a.plus(300)), 300u);
  EXPECT_EQ(IpAddress::distance(a.plus(300), a), 300u);  // symmetric
  EXPECT_EQ(IpAddress::distance(*IpAddress::parse("0.0.0.0"), *IpAddress::parse("255.255.255.255")),
            0xffffffffu);
  EXPECT_EQ(IpAddress::distance(*IpAddress::parse("::"), *IpAddress::parse("::1:0:0:0:0")),
            UINT64_MAX);  // 2^64 saturates
  EXPECT_EQ(IpAddress::distance(*IpAddress::parse("::"), *IpAddress::parse("::ffff:ffff:ffff:ffff")),
            UINT64_MAX);  // exactly 2^64 - 1
  EXPECT_EQ(IpAddress::distance(*IpAddress::parse("::"), *IpAddress::parse("::ffff:ffff:ffff:fffe")),
            UINT64_MAX - 1);
  EXPECT_EQ(IpAddress::distance(a, *IpAddress::parse("::1")), UINT64_MAX);  // families differ
  EXPECT_EQ(IpAddress::countInclusive(a, *IpAddress::parse("::1")), 0u);
  EXPECT_EQ(IpAddress::countInclusive(a, a), 1u);
}

TEST(IpAddress, ComparisonOperators) {
  IpAddress a = *IpAddress::parse("10.0.0.1"), b = *IpAddress::parse("10.0.0.2");
  EXPECT_TRUE(a < b);
  EXPECT_TRUE(b > a);
  EXPECT_TRUE(a <= a);
  EXPECT_TRUE(a != b);
  EXPECT_TRUE(a == *IpAddress::parse("10.0.0.1"));
  // Same 16 bytes, other family: not equal.
  EXPECT_NE(*IpAddress::parse("0.0.0.1"), *IpAddress::parse("::1"));
}

TEST(IpPrefix, MalformedPrefixes) {
  struct Case {
    const char* text;
    const char* want;
  } cases[] = {
      {"10.1.0.0", "is not a CIDR"},
      {"/24", "is not a CIDR"},
      {"10.1.0/24", "is not a CIDR"},
      {"10.1.0.0/", "prefix length must be a number 0..32"},
      {"10.1.0.0/+24", "prefix length must be a number 0..32"},
      {"10.1.0.0/ 24", "prefix length must be a number 0..32"},
      {"10.1.0.0/24/1", "prefix length must be a number"},
      {"10.1.0.0/-1", "prefix length must be a number"},
      {"10.1.0.0/0024", "prefix length must be a number"},
      {"fd00::/129", "prefix length must be a number 0..128"},
      {"10.1.0.1/31", "\"10.1.0.1/31\" has host bits set; did you mean 10.1.0.0/31?"},
      {"fd00::1/64", "did you mean fd00::/64?"},
  };
  for (const Case& c : cases) {
    auto p = IpPrefix::parse(c.text);
    ASSERT_FALSE(p.ok()) << c.text;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(p.status().message(), HasSubstr(c.want)) << c.text;
  }
}

TEST(IpPrefix, SizesAndStrings) {
  EXPECT_EQ(IpPrefix::parse("10.0.0.0/24")->size(), 256u);
  EXPECT_EQ(IpPrefix::parse("10.0.0.4/32")->size(), 1u);
  EXPECT_EQ(IpPrefix::parse("10.0.0.4/31")->size(), 2u);
  EXPECT_EQ(IpPrefix::parse("0.0.0.0/0")->size(), uint64_t{1} << 32);
  EXPECT_EQ(IpPrefix::parse("fd00::/120")->size(), 256u);
  EXPECT_EQ(IpPrefix::parse("fd00::/64")->size(), UINT64_MAX);  // 2^64 saturates
  EXPECT_EQ(IpPrefix::parse("::/0")->lastAddress().toString(),
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
  EXPECT_EQ(IpPrefix::parse("::/0")->networkAddress().toString(), "::");
  EXPECT_TRUE(IpPrefix::parse("::/0")->contains(*IpAddress::parse("fd00::1")));
  EXPECT_FALSE(IpPrefix::parse("::/0")->contains(*IpAddress::parse("10.0.0.1")));
  EXPECT_TRUE(IpPrefix::parse("0.0.0.0/0")->contains(*IpAddress::parse("10.0.0.1")));
  IpPrefix host = *IpPrefix::parse("10.0.0.5/32");
  EXPECT_TRUE(host.contains(*IpAddress::parse("10.0.0.5")));
  EXPECT_FALSE(host.contains(*IpAddress::parse("10.0.0.6")));
  EXPECT_EQ(host.networkAddress(), host.lastAddress());
  IpPrefix v6host = *IpPrefix::parse("fd00::5/128");
  EXPECT_EQ(v6host.lastAddress().toString(), "fd00::5");
  auto iface = IpPrefix::parse("10.1.0.5/24", /*strict=*/false);
  EXPECT_EQ(iface->toString(), "10.1.0.0/24");
  EXPECT_EQ(iface->addressString(), "10.1.0.5/24");
  EXPECT_EQ(IpPrefix::parse("FD00:0::/64")->toString(), "fd00::/64");
}

TEST(IpPrefix, OverlapsIsSymmetricAndFamilyAware) {
  IpPrefix a = *IpPrefix::parse("10.1.0.0/24");
  IpPrefix b = *IpPrefix::parse("10.1.0.128/25");
  IpPrefix c = *IpPrefix::parse("10.1.1.0/24");
  EXPECT_TRUE(a.overlaps(b));
  EXPECT_TRUE(b.overlaps(a));
  EXPECT_TRUE(a.overlaps(a));
  EXPECT_FALSE(a.overlaps(c));
  EXPECT_FALSE(c.overlaps(a));
  EXPECT_TRUE(IpPrefix::parse("0.0.0.0/0")->overlaps(c));
  EXPECT_FALSE(IpPrefix::parse("::/0")->overlaps(a));
  EXPECT_FALSE(a.overlaps(*IpPrefix::parse("::/0")));
  EXPECT_TRUE(IpPrefix::parse("fd00::/48")->overlaps(*IpPrefix::parse("fd00:0:0:5::/64")));
}

}  // namespace
}  // namespace berth::cni::ipam
