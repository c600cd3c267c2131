#include <arpa/inet.h>

#include <cstring>

#include "cni/bridge/bridge_internal.h"

namespace berth::cni::bridge {
namespace {

struct Parsed {
  int family = AF_INET;
  unsigned char bytes[16] = {};
  int prefix = 0;
};

StatusOr<Parsed> parseCidr(std::string_view cidr) {
  Parsed p;
  size_t slash = cidr.find('/');
  std::string addr(cidr.substr(0, slash));
  p.family = addr.find(':') != std::string::npos ? AF_INET6 : AF_INET;
  int bits = p.family == AF_INET ? 32 : 128;
  p.prefix = bits;
  if (slash != std::string_view::npos) {
    std::string len(cidr.substr(slash + 1));
    char* end = nullptr;
    long v = std::strtol(len.c_str(), &end, 10);
    if (len.empty() || *end != '\0' || v < 0 || v > bits) {
      return invalidArgument("\"", cidr, "\" is not an address in CIDR form");
    }
    p.prefix = static_cast<int>(v);
  }
  if (::inet_pton(p.family, addr.c_str(), p.bytes) != 1) {
    return invalidArgument("\"", cidr, "\" is not an address in CIDR form");
  }
  return p;
}

std::string format(const Parsed& p) {
  char buf[INET6_ADDRSTRLEN];
  ::inet_ntop(p.family, p.bytes, buf, sizeof(buf));
  return buf;
}

void maskTo(Parsed& p) {
  int bytes = p.family == AF_INET ? 4 : 16;
  for (int i = 0; i < bytes; ++i) {
    int keep = std::max(0, std::min(8, p.prefix - 8 * i));
    p.bytes[i] &= static_cast<unsigned char>(keep == 0 ? 0 : 0xff << (8 - keep));
  }
}

}  // namespace

StatusOr<std::string> subnetOf(std::string_view cidr) {
  ASSIGN_OR_RETURN(Parsed p, parseCidr(cidr));
  maskTo(p);
  return strCat(format(p), "/", p.prefix);
}

StatusOr<std::string> firstHostOf(std::string_view cidr) {
  ASSIGN_OR_RETURN(Parsed p, parseCidr(cidr));
  maskTo(p);
  int last = p.family == AF_INET ? 3 : 15;
  p.bytes[last] |= 1;
  return format(p);
}

int prefixLengthOf(std::string_view cidr) {
  auto p = parseCidr(cidr);
  return p.ok() ? p->prefix : 0;
}

StatusOr<std::unique_ptr<nat::Firewall>> openFirewall(const BridgeConfig& config) {
  std::optional<nat::Backend> backend;
  if (config.ip_masq_backend == "nftables") backend = nat::Backend::kNftables;
  if (config.ip_masq_backend == "iptables") backend = nat::Backend::kIptables;
  return nat::Firewall::open(backend);
}

}  // namespace berth::cni::bridge
