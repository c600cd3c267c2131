#include "cni/ipam/ip_address.h"

#include <arpa/inet.h>

#include <cstdlib>
#include <cstring>
#include <limits>

namespace berth::cni::ipam {
namespace {

// The address as a 128-bit unsigned value (IPv4 in the low 32 bits).
unsigned __int128 toInt(const std::array<uint8_t, 16>& b) {
  unsigned __int128 v = 0;
  for (uint8_t x : b) v = (v << 8) | x;
  return v;
}

std::array<uint8_t, 16> fromInt(unsigned __int128 v) {
  std::array<uint8_t, 16> b{};
  for (int i = 15; i >= 0; --i) {
    b[static_cast<size_t>(i)] = static_cast<uint8_t>(v & 0xff);
    v >>= 8;
  }
  return b;
}

unsigned __int128 hostMask(int bits, int length) {
  int host = bits - length;
  if (host <= 0) return 0;
  if (host >= 128) return ~static_cast<unsigned __int128>(0);
  return (static_cast<unsigned __int128>(1) << host) - 1;
}

}  // namespace

StatusOr<IpAddress> IpAddress::parse(std::string_view text) {
  std::string s(text);
  IpAddress ip;
  in_addr v4;
  in6_addr v6;
  if (::inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    ip.v4_ = true;
    std::memcpy(ip.bytes_.data() + 12, &v4, 4);
    return ip;
  }
  if (::inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
    ip.v4_ = false;
    std::memcpy(ip.bytes_.data(), &v6, 16);
    return ip;
  }
  return invalidArgument("\"", text, "\" is not an IP address");
}

std::string IpAddress::toString() const {
  char buf[INET6_ADDRSTRLEN];
  if (v4_) {
    ::inet_ntop(AF_INET, bytes_.data() + 12, buf, sizeof(buf));
  } else {
    ::inet_ntop(AF_INET6, bytes_.data(), buf, sizeof(buf));
  }
  return buf;
}

IpAddress IpAddress::plus(int64_t n) const {
  unsigned __int128 v = toInt(bytes_);
  if (n >= 0) {
    v += static_cast<unsigned __int128>(n);
  } else {
    v -= static_cast<unsigned __int128>(-(n + 1)) + 1;
  }
  if (v4_) v &= 0xffffffffu;
  IpAddress out = *this;
  out.bytes_ = fromInt(v);
  return out;
}

uint64_t IpAddress::countInclusive(const IpAddress& a, const IpAddress& b) {
  if (a.v4_ != b.v4_ || b < a) return 0;
  unsigned __int128 d = toInt(b.bytes_) - toInt(a.bytes_);
  if (d >= std::numeric_limits<uint64_t>::max()) return std::numeric_limits<uint64_t>::max();
  return static_cast<uint64_t>(d) + 1;
}

StatusOr<IpPrefix> IpPrefix::parse(std::string_view text, bool strict) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) {
    return invalidArgument("\"", text, "\" is not a CIDR (write it as 10.1.0.0/24 or fd00::/64)");
  }
  auto ip = IpAddress::parse(text.substr(0, slash));
  if (!ip.ok()) {
    return invalidArgument("\"", text, "\" is not a CIDR (write it as 10.1.0.0/24 or fd00::/64)");
  }
  std::string len(text.substr(slash + 1));
  char* end = nullptr;
  long n = std::strtol(len.c_str(), &end, 10);
  if (len.empty() || *end != '\0' || n < 0 || n > ip->bits()) {
    return invalidArgument("\"", text, "\": prefix length must be 0..", ip->bits());
  }
  IpPrefix p{*ip, static_cast<int>(n)};
  if (strict && !(p.networkAddress() == p.address)) {
    return invalidArgument("\"", text, "\" has host bits set; did you mean ", p.toString(), "?");
  }
  return p;
}

IpAddress IpPrefix::networkAddress() const {
  IpAddress out = address;
  out.bytes_ = fromInt(toInt(address.bytes_) & ~hostMask(address.bits(), length));
  return out;
}

IpAddress IpPrefix::lastAddress() const {
  IpAddress out = address;
  out.bytes_ = fromInt(toInt(address.bytes_) | hostMask(address.bits(), length));
  return out;
}

bool IpPrefix::contains(const IpAddress& ip) const {
  if (ip.isV4() != isV4()) return false;
  return !(ip < networkAddress()) && !(lastAddress() < ip);
}

bool IpPrefix::overlaps(const IpPrefix& other) const {
  return contains(other.networkAddress()) || other.contains(networkAddress());
}

std::string IpPrefix::toString() const {
  return strCat(networkAddress().toString(), "/", length);
}

}  // namespace berth::cni::ipam
