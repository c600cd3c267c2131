// The two small vocabularies every part of the proxy shares: IP family and L4
// protocol, with their spellings (the API's "IPv4"/"TCP", nft's and iptables' "tcp").
// One definition for the model, the renderers, the appliers and conntrack cleanup.
//
// Thread-safety: constants and pure functions.
#pragma once

#include <string_view>

namespace berth::proxy {

enum class IpFamily { kIPv4, kIPv6 };
enum class Protocol { kTCP, kUDP, kSCTP };

// "IPv4" / "IPv6" (the API's spec.ipFamilies spelling).
inline std::string_view ipFamilyName(IpFamily family) {
  return family == IpFamily::kIPv4 ? "IPv4" : "IPv6";
}

// "TCP" / "UDP" / "SCTP" as in the API.
inline std::string_view protocolName(Protocol protocol) {
  switch (protocol) {
    case Protocol::kTCP: return "TCP";
    case Protocol::kUDP: return "UDP";
    case Protocol::kSCTP: return "SCTP";
  }
  return "TCP";
}

// "tcp" / "udp" / "sctp" as nft, iptables and conntrack spell them.
inline std::string_view protocolLower(Protocol protocol) {
  switch (protocol) {
    case Protocol::kTCP: return "tcp";
    case Protocol::kUDP: return "udp";
    case Protocol::kSCTP: return "sctp";
  }
  return "tcp";
}

}  // namespace berth::proxy
