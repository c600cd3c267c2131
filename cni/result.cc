#include "cni/result.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstdlib>

namespace berth::cni {

namespace {

using json::Json;

std::array<long, 3> versionParts(std::string_view v) {
  std::array<long, 3> parts{0, 0, 0};
  std::vector<std::string> pieces = split(v, '.');
  for (size_t i = 0; i < pieces.size() && i < 3; ++i) {
    char* end = nullptr;
    long n = std::strtol(pieces[i].c_str(), &end, 10);
    if (end == pieces[i].c_str() || *end != '\0' || n < 0) return {0, 0, 0};
    parts[i] = n;
  }
  return parts;
}

// Result layouts: 0.1.0/0.2.0, 0.3.0-0.4.0, 1.x.
enum class Layout { kV02, kV04, kV1 };

Layout layoutOf(std::string_view version) {
  if (compareVersions(version, "0.3.0") < 0) return Layout::kV02;
  if (compareVersions(version, "1.0.0") < 0) return Layout::kV04;
  return Layout::kV1;
}

// Checks "a.b.c.d/n" or "x::y/n".
bool validCidr(const std::string& cidr) {
  size_t slash = cidr.find('/');
  if (slash == std::string::npos) return false;
  std::string addr = cidr.substr(0, slash);
  std::string prefix = cidr.substr(slash + 1);
  if (prefix.empty() || prefix.size() > 3 ||
      !std::all_of(prefix.begin(), prefix.end(), ::isdigit)) {
    return false;
  }
  int bits = std::atoi(prefix.c_str());
  unsigned char buf[16];
  if (inet_pton(AF_INET, addr.c_str(), buf) == 1) return bits <= 32;
  if (inet_pton(AF_INET6, addr.c_str(), buf) == 1) return bits <= 128;
  return false;
}

bool validIp(const std::string& ip) {
  unsigned char buf[16];
  return inet_pton(AF_INET, ip.c_str(), buf) == 1 || inet_pton(AF_INET6, ip.c_str(), buf) == 1;
}

Status keyError(std::string_view what, std::string_view version, std::string_view key,
                std::string_view problem) {
  return invalidArgument(what, " (cniVersion ", version, "): \"", key, "\" ", problem);
}

StatusOr<std::optional<int>> optInt(const Json& obj, const char* key, std::string_view what,
                                    std::string_view version, const std::string& path) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<int>();
  if (!it->is_number_integer()) {
    return keyError(what, version, strCat(path, ".", key), "must be an integer");
  }
  return std::optional<int>(it->get<int>());
}

StatusOr<std::string> str(const Json& obj, const char* key, std::string_view what,
                          std::string_view version, const std::string& path) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_string()) {
    return keyError(what, version, strCat(path, key), "must be a string");
  }
  return it->get<std::string>();
}

StatusOr<std::vector<std::string>> strList(const Json& obj, const char* key,
                                           std::string_view what, std::string_view version,
                                           const std::string& path) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_array()) {
    return keyError(what, version, strCat(path, key), "must be an array of strings");
  }
  for (const Json& v : *it) {
    if (!v.is_string()) {
      return keyError(what, version, strCat(path, key), "must be an array of strings");
    }
    out.push_back(v.get<std::string>());
  }
  return out;
}

StatusOr<Route> parseRoute(const Json& j, std::string_view what, std::string_view version,
                           const std::string& path) {
  if (!j.is_object()) return keyError(what, version, path, "must be an object");
  Route r;
  ASSIGN_OR_RETURN(r.dst, str(j, "dst", what, version, path + "."));
  if (!validCidr(r.dst)) return keyError(what, version, path + ".dst", "must be a CIDR");
  ASSIGN_OR_RETURN(r.gw, str(j, "gw", what, version, path + "."));
  if (!r.gw.empty() && !validIp(r.gw)) {
    return keyError(what, version, path + ".gw", "must be an IP address");
  }
  ASSIGN_OR_RETURN(r.mtu, optInt(j, "mtu", what, version, path));
  ASSIGN_OR_RETURN(r.advmss, optInt(j, "advmss", what, version, path));
  ASSIGN_OR_RETURN(r.priority, optInt(j, "priority", what, version, path));
  ASSIGN_OR_RETURN(r.table, optInt(j, "table", what, version, path));
  ASSIGN_OR_RETURN(r.scope, optInt(j, "scope", what, version, path));
  return r;
}

StatusOr<IpConfig> parseIp(const Json& j, std::string_view what, std::string_view version,
                           const std::string& path) {
  if (!j.is_object()) return keyError(what, version, path, "must be an object");
  IpConfig ip;
  ASSIGN_OR_RETURN(ip.address, str(j, "address", what, version, path + "."));
  if (!validCidr(ip.address)) {
    return keyError(what, version, path + ".address",
                    strCat("must be an address in CIDR form, got \"", ip.address, "\""));
  }
  ASSIGN_OR_RETURN(ip.gateway, str(j, "gateway", what, version, path + "."));
  if (!ip.gateway.empty() && !validIp(ip.gateway)) {
    return keyError(what, version, path + ".gateway", "must be an IP address");
  }
  ASSIGN_OR_RETURN(ip.interface, optInt(j, "interface", what, version, path));
  return ip;
}

Json routeToJson(const Route& r) {
  Json j = Json::object();
  j["dst"] = r.dst;
  if (!r.gw.empty()) j["gw"] = r.gw;
  if (r.mtu) j["mtu"] = *r.mtu;
  if (r.advmss) j["advmss"] = *r.advmss;
  if (r.priority) j["priority"] = *r.priority;
  if (r.table) j["table"] = *r.table;
  if (r.scope) j["scope"] = *r.scope;
  return j;
}

Json dnsToJson(const Dns& d) {
  Json j = Json::object();
  if (!d.nameservers.empty()) j["nameservers"] = d.nameservers;
  if (!d.domain.empty()) j["domain"] = d.domain;
  if (!d.search.empty()) j["search"] = d.search;
  if (!d.options.empty()) j["options"] = d.options;
  return j;
}

}  // namespace

const std::vector<std::string>& supportedVersions() {
  static const std::vector<std::string> kVersions = {"0.1.0", "0.2.0", "0.3.0", "0.3.1",
                                                     "0.4.0", "1.0.0", "1.1.0"};
  return kVersions;
}

bool isSupportedVersion(std::string_view version) {
  const auto& v = supportedVersions();
  return std::find(v.begin(), v.end(), version) != v.end();
}

int compareVersions(std::string_view a, std::string_view b) {
  auto pa = versionParts(a);
  auto pb = versionParts(b);
  for (int i = 0; i < 3; ++i) {
    if (pa[i] != pb[i]) return pa[i] < pb[i] ? -1 : 1;
  }
  return 0;
}

std::string IpConfig::ip() const { return address.substr(0, address.find('/')); }

std::vector<std::string> Result::sandboxIps(std::string_view ifname) const {
  std::vector<std::string> v4, v6;
  bool any_index = std::any_of(ips.begin(), ips.end(),
                               [](const IpConfig& ip) { return ip.interface.has_value(); });
  for (const IpConfig& ip : ips) {
    if (any_index) {
      if (!ip.interface || *ip.interface < 0 ||
          static_cast<size_t>(*ip.interface) >= interfaces.size()) {
        continue;
      }
      const Interface& intf = interfaces[*ip.interface];
      if (intf.name != ifname || intf.sandbox.empty()) continue;
    }
    (ip.isV6() ? v6 : v4).push_back(ip.ip());
  }
  v4.insert(v4.end(), v6.begin(), v6.end());
  return v4;
}

StatusOr<Result> parseResult(const Json& doc, std::string_view what) {
  if (!doc.is_object()) return invalidArgument(what, ": result must be a JSON object");
  Result r;
  auto v = doc.find("cniVersion");
  if (v == doc.end() || !v->is_string()) {
    return invalidArgument(what, ": \"cniVersion\" is missing or not a string");
  }
  r.cni_version = v->get<std::string>();
  if (!isSupportedVersion(r.cni_version)) {
    return invalidArgument(what, ": unsupported result cniVersion \"", r.cni_version,
                           "\"; supported: ", joinStrings(supportedVersions(), ", "));
  }
  const std::string& ver = r.cni_version;
  r.raw = doc;
  Layout layout = layoutOf(ver);
  if (layout == Layout::kV02) {
    for (const char* key : {"ip4", "ip6"}) {
      auto it = doc.find(key);
      if (it == doc.end() || it->is_null()) continue;
      if (!it->is_object()) return keyError(what, ver, key, "must be an object");
      IpConfig ip;
      ASSIGN_OR_RETURN(ip.address, str(*it, "ip", what, ver, strCat(key, ".")));
      if (!validCidr(ip.address)) return keyError(what, ver, strCat(key, ".ip"), "must be a CIDR");
      ASSIGN_OR_RETURN(ip.gateway, str(*it, "gateway", what, ver, strCat(key, ".")));
      r.ips.push_back(ip);
      auto routes = it->find("routes");
      if (routes != it->end() && routes->is_array()) {
        for (size_t i = 0; i < routes->size(); ++i) {
          ASSIGN_OR_RETURN(Route route,
                           parseRoute((*routes)[i], what, ver, strCat(key, ".routes[", i, "]")));
          r.routes.push_back(route);
        }
      }
    }
  } else {
    auto ifs = doc.find("interfaces");
    if (ifs != doc.end() && !ifs->is_null()) {
      if (!ifs->is_array()) return keyError(what, ver, "interfaces", "must be an array");
      for (size_t i = 0; i < ifs->size(); ++i) {
        const Json& j = (*ifs)[i];
        std::string path = strCat("interfaces[", i, "]");
        if (!j.is_object()) return keyError(what, ver, path, "must be an object");
        Interface intf;
        ASSIGN_OR_RETURN(intf.name, str(j, "name", what, ver, path + "."));
        if (intf.name.empty()) return keyError(what, ver, path + ".name", "is required");
        ASSIGN_OR_RETURN(intf.mac, str(j, "mac", what, ver, path + "."));
        ASSIGN_OR_RETURN(intf.mtu, optInt(j, "mtu", what, ver, path));
        ASSIGN_OR_RETURN(intf.sandbox, str(j, "sandbox", what, ver, path + "."));
        ASSIGN_OR_RETURN(intf.socket_path, str(j, "socketPath", what, ver, path + "."));
        ASSIGN_OR_RETURN(intf.pci_id, str(j, "pciID", what, ver, path + "."));
        r.interfaces.push_back(intf);
      }
    }
    auto ips = doc.find("ips");
    if (ips != doc.end() && !ips->is_null()) {
      if (!ips->is_array()) return keyError(what, ver, "ips", "must be an array");
      for (size_t i = 0; i < ips->size(); ++i) {
        std::string path = strCat("ips[", i, "]");
        ASSIGN_OR_RETURN(IpConfig ip, parseIp((*ips)[i], what, ver, path));
        if (ip.interface && (*ip.interface < 0 ||
                             static_cast<size_t>(*ip.interface) >= r.interfaces.size())) {
          return keyError(what, ver, path + ".interface",
                          strCat("index ", *ip.interface, " is out of range (",
                                 r.interfaces.size(), " interfaces)"));
        }
        if (layout == Layout::kV04) {
          ASSIGN_OR_RETURN(std::string family, str((*ips)[i], "version", what, ver, path + "."));
          if (!family.empty() && family != (ip.isV6() ? "6" : "4")) {
            return keyError(what, ver, path + ".version",
                            strCat("is \"", family, "\" but the address is ",
                                   ip.isV6() ? "IPv6" : "IPv4"));
          }
        }
        r.ips.push_back(ip);
      }
    }
    auto routes = doc.find("routes");
    if (routes != doc.end() && !routes->is_null()) {
      if (!routes->is_array()) return keyError(what, ver, "routes", "must be an array");
      for (size_t i = 0; i < routes->size(); ++i) {
        ASSIGN_OR_RETURN(Route route, parseRoute((*routes)[i], what, ver, strCat("routes[", i, "]")));
        r.routes.push_back(route);
      }
    }
  }
  auto dns = doc.find("dns");
  if (dns != doc.end() && !dns->is_null()) {
    if (!dns->is_object()) return keyError(what, ver, "dns", "must be an object");
    ASSIGN_OR_RETURN(r.dns.nameservers, strList(*dns, "nameservers", what, ver, "dns."));
    ASSIGN_OR_RETURN(r.dns.domain, str(*dns, "domain", what, ver, "dns."));
    ASSIGN_OR_RETURN(r.dns.search, strList(*dns, "search", what, ver, "dns."));
    ASSIGN_OR_RETURN(r.dns.options, strList(*dns, "options", what, ver, "dns."));
  }
  return r;
}

StatusOr<Json> resultToJson(const Result& result, std::string_view version) {
  if (!isSupportedVersion(version)) {
    return invalidArgument("cannot write a CNI result as cniVersion \"", version,
                           "\"; supported: ", joinStrings(supportedVersions(), ", "));
  }
  if (result.raw.is_object() && result.cni_version == version) {
    Json out = result.raw;
    out["cniVersion"] = std::string(version);
    return out;
  }
  Json out = Json::object();
  out["cniVersion"] = std::string(version);
  Layout layout = layoutOf(version);
  if (layout == Layout::kV02) {
    // One address per family; routes go with the family of their destination.
    for (const IpConfig& ip : result.ips) {
      const char* key = ip.isV6() ? "ip6" : "ip4";
      if (out.contains(key)) continue;
      Json j = Json::object();
      j["ip"] = ip.address;
      if (!ip.gateway.empty()) j["gateway"] = ip.gateway;
      Json routes = Json::array();
      for (const Route& r : result.routes) {
        if ((r.dst.find(':') != std::string::npos) == ip.isV6()) {
          Json rj = Json::object();
          rj["dst"] = r.dst;
          if (!r.gw.empty()) rj["gw"] = r.gw;
          routes.push_back(rj);
        }
      }
      if (!routes.empty()) j["routes"] = routes;
      out[key] = j;
    }
  } else {
    if (!result.interfaces.empty()) {
      Json ifs = Json::array();
      for (const Interface& i : result.interfaces) {
        Json j = Json::object();
        j["name"] = i.name;
        if (!i.mac.empty()) j["mac"] = i.mac;
        if (i.mtu) j["mtu"] = *i.mtu;
        if (!i.sandbox.empty()) j["sandbox"] = i.sandbox;
        if (layout == Layout::kV1 && compareVersions(version, "1.1.0") >= 0) {
          if (!i.socket_path.empty()) j["socketPath"] = i.socket_path;
          if (!i.pci_id.empty()) j["pciID"] = i.pci_id;
        }
        ifs.push_back(j);
      }
      out["interfaces"] = ifs;
    }
    if (!result.ips.empty()) {
      Json ips = Json::array();
      for (const IpConfig& ip : result.ips) {
        Json j = Json::object();
        if (layout == Layout::kV04) j["version"] = ip.isV6() ? "6" : "4";
        j["address"] = ip.address;
        if (!ip.gateway.empty()) j["gateway"] = ip.gateway;
        if (ip.interface) j["interface"] = *ip.interface;
        ips.push_back(j);
      }
      out["ips"] = ips;
    }
    if (!result.routes.empty()) {
      Json routes = Json::array();
      for (const Route& r : result.routes) routes.push_back(routeToJson(r));
      out["routes"] = routes;
    }
  }
  if (!result.dns.empty()) out["dns"] = dnsToJson(result.dns);
  return out;
}

}  // namespace berth::cni
