#include "proxy/nftables_names.h"

#include "common/strings.h"

namespace berth::proxy::nftnames {
namespace {

constexpr size_t kMaxNameLen = 255;  // NFT_NAME_MAXLEN 256 with the terminating NUL

// Keeps [A-Za-z0-9_.-]; anything else becomes '_'. ('/' is added by us only.)
std::string sanitize(std::string_view part) {
  std::string out(part);
  for (char& c : out) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) c = '_';
  }
  return out;
}

std::string readable(const ServicePortName& name, IpFamily family) {
  std::string proto(protocolLower(name.protocol));
  if (family == IpFamily::kIPv6) proto += "6";
  return strCat(sanitize(name.service.ns), "/", sanitize(name.service.name), "/", proto, "/",
                sanitize(name.port));
}

std::string endpointReadable(const ServicePortName& name, const Endpoint& ep) {
  std::string ip = ep.ip.str();
  for (char& c : ip) {
    if (c == ':') c = '.';
  }
  return strCat(readable(name, ep.ip.family), "__", ip, "/", ep.port);
}

// "<prefix><hash8>-<text>", cut to the nft limit.
std::string hashed(std::string_view prefix, const std::string& text) {
  std::string out = strCat(prefix, fnv1a64Hex(text).substr(0, 8), "-", text);
  if (out.size() > kMaxNameLen) out.resize(kMaxNameLen);
  return out;
}

}  // namespace

std::string_view familySuffix(IpFamily family) { return family == IpFamily::kIPv4 ? "v4" : "v6"; }
std::string_view ipKeyword(IpFamily family) { return family == IpFamily::kIPv4 ? "ip" : "ip6"; }
std::string_view addrType(IpFamily family) {
  return family == IpFamily::kIPv4 ? "ipv4_addr" : "ipv6_addr";
}

std::string serviceIpsMap(IpFamily f) { return strCat("service-ips-", familySuffix(f)); }
std::string serviceNodePortsMap(IpFamily f) { return strCat("service-nodeports-", familySuffix(f)); }
std::string noEndpointServicesMap(IpFamily f) {
  return strCat("no-endpoint-services-", familySuffix(f));
}
std::string noEndpointNodePortsMap(IpFamily f) {
  return strCat("no-endpoint-nodeports-", familySuffix(f));
}
std::string firewallIpsMap(IpFamily f) { return strCat("firewall-ips-", familySuffix(f)); }
std::string clusterIpsSet(IpFamily f) { return strCat("cluster-ips-", familySuffix(f)); }
std::string nodePortAddressesSet(IpFamily f) {
  return strCat("nodeport-addresses-", familySuffix(f));
}

std::string servicePortBase(const ServicePortName& name, IpFamily family) {
  return hashed("", readable(name, family));
}

std::string clusterChain(const ServicePortName& n, IpFamily f) {
  return hashed("service-", readable(n, f));
}
std::string localChain(const ServicePortName& n, IpFamily f) {
  return hashed("local-", readable(n, f));
}
std::string externalChain(const ServicePortName& n, IpFamily f) {
  return hashed("external-", readable(n, f));
}
std::string firewallChain(const ServicePortName& n, IpFamily f) {
  return hashed("firewall-", readable(n, f));
}
std::string endpointChain(const ServicePortName& n, const Endpoint& ep) {
  return hashed("endpoint-", endpointReadable(n, ep));
}
std::string affinitySet(const ServicePortName& n, const Endpoint& ep) {
  return hashed("affinity-", endpointReadable(n, ep));
}

bool isServiceObject(std::string_view name) { return name.find('/') != std::string_view::npos; }

}  // namespace berth::proxy::nftnames
