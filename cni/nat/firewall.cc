#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "cni/nat/firewall.h"
#include "cni/nat/firewall_internal.h"

namespace berth::cni::nat {

Status checkName(std::string_view what, std::string_view name) {
  bool ok = !name.empty() && name.size() <= 64;
  for (char c : name) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-');
  }
  if (!ok) {
    return invalidArgument(what, " \"", name,
                           "\" cannot be used in firewall rules: use 1 to 64 letters, digits, "
                           "'_', '.' or '-'");
  }
  return absl::OkStatus();
}

Status checkCidr(std::string_view cidr) {
  size_t slash = cidr.find('/');
  std::string addr(cidr.substr(0, slash));
  unsigned char buf[16];
  bool ok = ::inet_pton(isV6(addr) ? AF_INET6 : AF_INET, addr.c_str(), buf) == 1;
  if (ok && slash != std::string_view::npos) {
    std::string len(cidr.substr(slash + 1));
    ok = !len.empty() && len.size() <= 3 &&
         std::all_of(len.begin(), len.end(),
                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }) &&
         std::atoi(len.c_str()) <= (isV6(addr) ? 128 : 32);
  }
  if (!ok) return invalidArgument("\"", cidr, "\" is not an address or CIDR");
  return absl::OkStatus();
}

StatusOr<std::string> canonicalCidr(std::string_view cidr) {
  RETURN_IF_ERROR(checkCidr(cidr));
  size_t slash = cidr.find('/');
  std::string addr(cidr.substr(0, slash));
  bool v6 = isV6(addr);
  int family = v6 ? AF_INET6 : AF_INET;
  int bits = v6 ? 128 : 32;
  int len = slash == std::string_view::npos ? bits : std::atoi(std::string(cidr.substr(slash + 1)).c_str());
  unsigned char buf[16] = {};
  ::inet_pton(family, addr.c_str(), buf);
  for (int i = 0; i < bits / 8; ++i) {
    int keep = std::clamp(len - i * 8, 0, 8);
    buf[i] &= static_cast<unsigned char>(0xff00u >> keep);
  }
  char text[INET6_ADDRSTRLEN];
  ::inet_ntop(family, buf, text, sizeof(text));
  return strCat(text, "/", len);
}

StatusOr<std::vector<std::string>> canonicalCidrs(const std::vector<std::string>& cidrs, bool v6) {
  std::vector<std::string> out;
  for (const std::string& c : cidrs) {
    ASSIGN_OR_RETURN(std::string canon, canonicalCidr(c));
    if (isV6(canon) == v6 && std::find(out.begin(), out.end(), canon) == out.end()) {
      out.push_back(std::move(canon));
    }
  }
  return out;
}

bool containsToken(std::string_view text, std::string_view token) {
  auto addrChar = [](char c) {
    return std::isxdigit(static_cast<unsigned char>(c)) || c == '.' || c == ':' || c == '/';
  };
  for (size_t at = text.find(token); at != std::string_view::npos; at = text.find(token, at + 1)) {
    size_t end = at + token.size();
    if ((at == 0 || !addrChar(text[at - 1])) && (end == text.size() || !addrChar(text[end]))) {
      return true;
    }
  }
  return false;
}

std::string fingerprint(std::string_view text) { return fnv1a64Hex(text); }

Status checkIp(std::string_view ip) {
  if (ip.find('/') != std::string_view::npos) return invalidArgument("\"", ip, "\" is not an IP address");
  return checkCidr(ip);
}

Status checkAttachment(const Attachment& a) {
  RETURN_IF_ERROR(checkName("network name", a.network));
  RETURN_IF_ERROR(checkName("container ID", a.container_id));
  RETURN_IF_ERROR(checkName("interface name", a.ifname));
  if (tagOf(a).size() > kMaxTagLength) {
    return invalidArgument("attachment \"", tagOf(a), "\": network name, container ID and interface "
                           "name together must not exceed ", kMaxTagLength - 2,
                           " characters (the tag of its firewall rules)");
  }
  return absl::OkStatus();
}

Status checkPortMappingInput(const std::vector<std::string>& pod_ips,
                             const std::vector<PortMapping>& mappings) {
  for (const std::string& ip : pod_ips) RETURN_IF_ERROR(checkIp(ip));
  for (const PortMapping& m : mappings) {
    if (m.host_port < 1 || m.host_port > 65535 || m.container_port < 1 || m.container_port > 65535) {
      return invalidArgument("port mapping ", m.host_port, " -> ", m.container_port,
                             ": ports must be 1..65535");
    }
    if (m.protocol != "tcp" && m.protocol != "udp" && m.protocol != "sctp") {
      return invalidArgument("port mapping ", m.host_port, ": protocol \"", m.protocol,
                             "\" is not supported; use tcp, udp or sctp");
    }
    if (!m.host_ip.empty()) RETURN_IF_ERROR(checkIp(m.host_ip));
  }
  return absl::OkStatus();
}

std::string tagOf(const Attachment& a) {
  return strCat(a.network, "/", a.container_id, "/", a.ifname);
}

std::optional<Attachment> attachmentInComment(std::string_view line, std::string_view network) {
  std::string prefix = strCat("comment \"", network, "/");
  size_t at = line.find(prefix);
  if (at == std::string_view::npos) return std::nullopt;
  size_t start = at + 9;  // after `comment "`
  size_t end = line.find('"', start);
  if (end == std::string_view::npos) return std::nullopt;
  std::vector<std::string> parts = split(line.substr(start, end - start), '/');
  if (parts.size() != 3) return std::nullopt;
  return Attachment{parts[0], parts[1], parts[2]};
}

StatusOr<std::unique_ptr<Firewall>> Firewall::open(std::optional<Backend> preferred) {
  if (preferred) {
    if (*preferred == Backend::kIptables) return newIptablesFirewall();
    return newNftablesFirewall(false);
  }
  auto nft = newNftablesFirewall(true);
  if (nft.ok() || !iptablesAvailable()) return nft;
  return newIptablesFirewall();
}

}  // namespace berth::cni::nat
