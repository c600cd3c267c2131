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

  // True for IPv4 (also for a default-constructed address, 0.0.0.0).
  bool isV4() const { return v4_; }
  // 32 for IPv4, 128 for IPv6.
  int bits() const { return v4_ ? 32 : 128; }
  // Canonical text: dotted quad for IPv4, RFC 5952 for IPv6 (lower case, longest run of
  // zero groups as "::", "::ffff:1.2.3.4" for IPv4-mapped addresses).
  std::string toString() const;

  // The address `n` after (or, negative, before) this one, wrapping around within the
  // family (255.255.255.255 + 1 = 0.0.0.0).
  IpAddress plus(int64_t n) const;
  IpAddress next() const { return plus(1); }
  IpAddress prev() const { return plus(-1); }

  // Number of addresses from `a` to `b` inclusive (b >= a, same family), saturating at
  // UINT64_MAX; 0 when b < a or the families differ.
  static uint64_t countInclusive(const IpAddress& a, const IpAddress& b);

  // |b - a|: how many next() steps lead from the lower to the higher address,
  // saturating at UINT64_MAX (also when the families differ).
  static uint64_t distance(const IpAddress& a, const IpAddress& b);

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

// An address with a prefix length ("CIDR"): a subnet, or an interface address when
// parsed with strict = false.
struct IpPrefix {
  IpAddress address;  // the network address when parsed strictly
  int length = 0;     // 0..32 (IPv4) or 0..128 (IPv6)

  // Parses "10.1.0.0/24" or "fd00::/64"; the length is decimal digits only. With
  // `strict`, host bits must be zero (InvalidArgument `"10.1.0.5/24" has host bits set;
  // did you mean 10.1.0.0/24?`); otherwise they are kept in `address` (an interface
  // address in CIDR form). Errors: InvalidArgument naming the text for a missing '/',
  // a bad address or a length out of range.
  static StatusOr<IpPrefix> parse(std::string_view text, bool strict = true);

  bool isV4() const { return address.isV4(); }
  // The first address (host bits zero).
  IpAddress networkAddress() const;
  // The last address (host bits one; the IPv4 broadcast address).
  IpAddress lastAddress() const;
  // Number of addresses in the prefix, saturating at UINT64_MAX.
  uint64_t size() const;
  // True if `ip` is of the same family and inside the prefix.
  bool contains(const IpAddress& ip) const;
  // True if the two prefixes share an address (always false across families).
  bool overlaps(const IpPrefix& other) const;
  // "10.1.0.0/24" (the network address, not the host address).
  std::string toString() const;
  // The address as given with its length ("10.1.0.5/24" for an interface address).
  std::string addressString() const;
  bool operator==(const IpPrefix& o) const = default;
};

}  // namespace berth::cni::ipam
