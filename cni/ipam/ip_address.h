// IPv4/IPv6 addresses and prefixes with the arithmetic an allocator needs: parse,
// canonical text (RFC 5952 for IPv6, via inet_ntop), ordering, next/previous, offsets
// and the size of a range.
//
// Thread-safety: values; all functions are pure.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace berth::cni::ipam {

class IpAddress {
 public:
  IpAddress() = default;

  // Parses "10.1.0.5" or "fd00::5" (no prefix length). Errors: InvalidArgument
  // `"x" is not an IP address`.
  static StatusOr<IpAddress> parse(std::string_view text);

  bool isV4() const { return v4_; }
  int bits() const { return v4_ ? 32 : 128; }
  // Canonical text.
  std::string toString() const;

  // The address `n` after (or, negative, before) this one, wrapping within the family.
  IpAddress plus(int64_t n) const;
  IpAddress next() const { return plus(1); }
  IpAddress prev() const { return plus(-1); }

  // Number of addresses from `a` to `b` inclusive (b >= a, same family), saturating at
  // UINT64_MAX; 0 when b < a or the families differ.
  static uint64_t countInclusive(const IpAddress& a, const IpAddress& b);

  // Network-order bytes: 4 significant bytes for IPv4 (stored at [12..15]), 16 for IPv6.
  const std::array<uint8_t, 16>& bytes() const { return bytes_; }

  std::strong_ordering operator<=>(const IpAddress& o) const {
    if (v4_ != o.v4_) return v4_ ? std::strong_ordering::less : std::strong_ordering::greater;
    return bytes_ <=> o.bytes_;
  }
  bool operator==(const IpAddress& o) const = default;

 private:
  friend struct IpPrefix;
  bool v4_ = true;
  std::array<uint8_t, 16> bytes_{};
};

struct IpPrefix {
  IpAddress address;  // the network address when parsed strictly
  int length = 0;

  // Parses "10.1.0.0/24". With `strict`, host bits must be zero (InvalidArgument
  // `"10.1.0.5/24" has host bits set; did you mean 10.1.0.0/24?`); otherwise they are
  // kept in `address` (an interface address in CIDR form).
  static StatusOr<IpPrefix> parse(std::string_view text, bool strict = true);

  bool isV4() const { return address.isV4(); }
  IpAddress networkAddress() const;
  // The last address (the IPv4 broadcast address).
  IpAddress lastAddress() const;
  bool contains(const IpAddress& ip) const;
  bool overlaps(const IpPrefix& other) const;
  // "10.1.0.0/24" (the network address, not the host address).
  std::string toString() const;
};

}  // namespace berth::cni::ipam
