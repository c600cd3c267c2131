#include "cni/bridge/bridge_config.h"

#include <arpa/inet.h>

#include <cctype>
#include <cstdint>

#include "cni/plugin_exec.h"

namespace berth::cni::bridge {
namespace {

using json::Json;

Status configError(std::string msg) {
  return withCniErrorCode(absl::InvalidArgumentError(std::move(msg)), kErrInvalidNetworkConfig);
}

Status readBool(const Json& conf, const char* key, bool& out) {
  if (!conf.contains(key) || conf[key].is_null()) return absl::OkStatus();
  if (!conf[key].is_boolean()) {
    return configError(strCat("\"", key, "\": ", conf[key].dump(), " is not a boolean; use true or false"));
  }
  out = conf[key].get<bool>();
  return absl::OkStatus();
}

Status readInt(const Json& conf, const char* key, int min, int max, int& out,
               std::string_view hint) {
  if (!conf.contains(key) || conf[key].is_null()) return absl::OkStatus();
  const Json& v = conf[key];
  if (!v.is_number_integer() || v.get<int64_t>() < min || v.get<int64_t>() > max) {
    return configError(strCat("\"", key, "\": ", v.dump(), " is out of range; ", hint));
  }
  out = static_cast<int>(v.get<int64_t>());
  return absl::OkStatus();
}

bool isValidMac(std::string_view mac) {
  if (mac.size() != 17) return false;
  for (size_t i = 0; i < mac.size(); ++i) {
    if (i % 3 == 2) {
      if (mac[i] != ':') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(mac[i]))) {
      return false;
    }
  }
  return true;
}

bool isIpAddress(const std::string& ip) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, ip.c_str(), buf) == 1 || ::inet_pton(AF_INET6, ip.c_str(), buf) == 1;
}

// A requested IP may come with a prefix length ("10.0.0.5/24"); the prefix is dropped.
StatusOr<std::string> requestedIp(std::string value, std::string_view where) {
  size_t slash = value.find('/');
  if (slash != std::string::npos) value.resize(slash);
  if (!isIpAddress(value)) {
    return configError(strCat(where, ": \"", value, "\" is not an IP address"));
  }
  return value;
}

Status parsePortMappings(const Json& list, BridgeConfig& c) {
  if (!list.is_array()) {
    return configError("runtimeConfig.portMappings is not a list");
  }
  for (size_t i = 0; i < list.size(); ++i) {
    const Json& m = list[i];
    std::string where = strCat("runtimeConfig.portMappings[", i, "]");
    if (!m.is_object()) return configError(strCat(where, " is not an object"));
    nat::PortMapping pm;
    auto port = [&](const char* key, int& out) -> Status {
      if (!m.contains(key) || !m[key].is_number_integer() || m[key].get<int64_t>() < 1 ||
          m[key].get<int64_t>() > 65535) {
        return configError(strCat(where, ".", key, ": ", m.contains(key) ? m[key].dump() : "missing",
                                  " is not a port; use 1..65535"));
      }
      out = static_cast<int>(m[key].get<int64_t>());
      return absl::OkStatus();
    };
    RETURN_IF_ERROR(port("hostPort", pm.host_port));
    RETURN_IF_ERROR(port("containerPort", pm.container_port));
    if (m.contains("protocol") && !m["protocol"].is_null()) {
      if (!m["protocol"].is_string()) return configError(strCat(where, ".protocol is not a string"));
      std::string p = m["protocol"].get<std::string>();
      for (char& ch : p) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (p != "tcp" && p != "udp" && p != "sctp") {
        return configError(strCat(where, ".protocol: \"", m["protocol"].get<std::string>(),
                                  "\" is not supported; use tcp, udp or sctp"));
      }
      pm.protocol = p;
    }
    if (m.contains("hostIP") && m["hostIP"].is_string() && !m["hostIP"].get<std::string>().empty()) {
      pm.host_ip = m["hostIP"].get<std::string>();
      if (!isIpAddress(pm.host_ip)) {
        return configError(strCat(where, ".hostIP: \"", pm.host_ip, "\" is not an IP address"));
      }
    }
    c.port_mappings.push_back(pm);
  }
  return absl::OkStatus();
}

Status parseIps(const Json& list, std::string_view where, BridgeConfig& c) {
  if (!list.is_array()) return configError(strCat(where, " is not a list"));
  for (size_t i = 0; i < list.size(); ++i) {
    if (!list[i].is_string()) return configError(strCat(where, "[", i, "] is not a string"));
    ASSIGN_OR_RETURN(std::string ip, requestedIp(list[i].get<std::string>(), strCat(where, "[", i, "]")));
    c.requested_ips.push_back(std::move(ip));
  }
  return absl::OkStatus();
}

Status parseDns(const Json& conf, BridgeConfig& c) {
  if (!conf.contains("dns") || conf["dns"].is_null()) return absl::OkStatus();
  const Json& d = conf["dns"];
  if (!d.is_object()) return configError("\"dns\" is not an object");
  auto list = [&](const char* key, std::vector<std::string>& out) -> Status {
    if (!d.contains(key)) return absl::OkStatus();
    if (!d[key].is_array()) return configError(strCat("dns.", key, " is not a list of strings"));
    for (const Json& v : d[key]) {
      if (!v.is_string()) return configError(strCat("dns.", key, " is not a list of strings"));
      out.push_back(v.get<std::string>());
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(list("nameservers", c.dns.nameservers));
  RETURN_IF_ERROR(list("search", c.dns.search));
  RETURN_IF_ERROR(list("options", c.dns.options));
  if (d.contains("domain") && d["domain"].is_string()) c.dns.domain = d["domain"].get<std::string>();
  return absl::OkStatus();
}

}  // namespace

StatusOr<BridgeConfig> parseBridgeConfig(const plugin::Request& request) {
  const Json& conf = request.config;
  BridgeConfig c;
  c.network = conf.value("name", "");
  c.cni_version = request.cni_version;
  if (conf.contains("bridge") && !conf["bridge"].is_null()) {
    if (!conf["bridge"].is_string()) return configError("\"bridge\" is not a string");
    c.bridge = conf["bridge"].get<std::string>();
    if (c.bridge.empty()) c.bridge = kDefaultBridge;
    if (Status st = plugin::validateIfname(c.bridge); !st.ok()) {
      return configError(strCat("\"bridge\": \"", c.bridge,
                                "\" is not a valid interface name (1 to 15 characters, no '/', "
                                "':' or whitespace)"));
    }
  }
  RETURN_IF_ERROR(readBool(conf, "isGateway", c.is_gateway));
  RETURN_IF_ERROR(readBool(conf, "isDefaultGateway", c.is_default_gateway));
  if (c.is_default_gateway) c.is_gateway = true;
  RETURN_IF_ERROR(readBool(conf, "forceAddress", c.force_address));
  RETURN_IF_ERROR(readBool(conf, "ipMasq", c.ip_masq));
  RETURN_IF_ERROR(readBool(conf, "hairpinMode", c.hairpin_mode));
  RETURN_IF_ERROR(readBool(conf, "promiscMode", c.promisc_mode));
  RETURN_IF_ERROR(readBool(conf, "macspoofchk", c.macspoofchk));
  RETURN_IF_ERROR(readInt(conf, "mtu", 68, 65535, c.mtu, "use 68..65535 or leave it out"));
  RETURN_IF_ERROR(readInt(conf, "vlan", 0, 4094, c.vlan, "use 1..4094, or 0 for no VLAN"));
  if (conf.contains("ipMasqBackend") && !conf["ipMasqBackend"].is_null()) {
    const Json& b = conf["ipMasqBackend"];
    if (!b.is_string() || (b.get<std::string>() != "nftables" && b.get<std::string>() != "iptables" &&
                           !b.get<std::string>().empty())) {
      return configError(strCat("\"ipMasqBackend\": ", b.dump(),
                                " is not a backend; use \"nftables\" or \"iptables\""));
    }
    c.ip_masq_backend = b.get<std::string>();
  }
  if (conf.contains("nonMasqueradeCIDRs") && !conf["nonMasqueradeCIDRs"].is_null()) {
    const Json& list = conf["nonMasqueradeCIDRs"];
    if (!list.is_array()) return configError("\"nonMasqueradeCIDRs\" is not a list of CIDRs");
    for (size_t i = 0; i < list.size(); ++i) {
      std::string v = list[i].is_string() ? list[i].get<std::string>() : "";
      std::string addr = v.substr(0, v.find('/'));
      if (v.find('/') == std::string::npos || !isIpAddress(addr)) {
        return configError(strCat("\"nonMasqueradeCIDRs\"[", i, "]: ", list[i].dump(),
                                  " is not a CIDR (write it as 10.244.0.0/16)"));
      }
      c.non_masquerade_cidrs.push_back(v);
    }
  }
  if (conf.contains("ipam") && !conf["ipam"].is_null()) {
    if (!conf["ipam"].is_object()) return configError("\"ipam\" is not an object");
    c.ipam = conf["ipam"];
    if (c.ipam.contains("type") && c.ipam["type"].is_string()) {
      c.ipam_type = c.ipam["type"].get<std::string>();
    }
    if (c.ipam_type.empty() || c.ipam_type.find('/') != std::string::npos) {
      return configError(strCat("\"ipam.type\": ", c.ipam.value("type", Json()).dump(),
                                " is not a plugin name; use \"", kBuiltinIpam,
                                "\" or an IPAM plugin such as \"host-local\""));
    }
  }
  RETURN_IF_ERROR(parseDns(conf, c));

  // Requested MAC and IPs: CNI_ARGS, then args.cni, then runtimeConfig (the later wins,
  // as the reference plugins order them).
  if (auto it = request.cni_args.find("MAC"); it != request.cni_args.end()) c.mac = it->second;
  if (auto it = request.cni_args.find("IP"); it != request.cni_args.end()) {
    for (const std::string& ip : split(it->second, ',', true)) {
      ASSIGN_OR_RETURN(std::string v, requestedIp(ip, "CNI_ARGS IP"));
      c.requested_ips.push_back(std::move(v));
    }
  }
  if (conf.contains("args") && conf["args"].is_object() && conf["args"].contains("cni") &&
      conf["args"]["cni"].is_object()) {
    const Json& a = conf["args"]["cni"];
    if (a.contains("mac") && a["mac"].is_string()) c.mac = a["mac"].get<std::string>();
    if (a.contains("ips")) {
      c.requested_ips.clear();
      RETURN_IF_ERROR(parseIps(a["ips"], "args.cni.ips", c));
    }
  }
  if (conf.contains("runtimeConfig") && conf["runtimeConfig"].is_object()) {
    const Json& rc = conf["runtimeConfig"];
    if (rc.contains("mac") && rc["mac"].is_string()) c.mac = rc["mac"].get<std::string>();
    if (rc.contains("ips") && !rc["ips"].is_null()) {
      c.requested_ips.clear();
      RETURN_IF_ERROR(parseIps(rc["ips"], "runtimeConfig.ips", c));
    }
    if (rc.contains("portMappings") && !rc["portMappings"].is_null()) {
      RETURN_IF_ERROR(parsePortMappings(rc["portMappings"], c));
    }
  }
  if (!c.mac.empty() && !isValidMac(c.mac)) {
    return configError(strCat("requested MAC \"", c.mac,
                              "\" is not a MAC address; write it as 0a:58:0a:f4:00:05"));
  }
  if (conf.contains("prevResult") && !conf["prevResult"].is_null()) {
    auto prev = parseResult(conf["prevResult"], "prevResult");
    if (!prev.ok()) return configError(std::string(prev.status().message()));
    c.prev_result = std::move(*prev);
  }
  return c;
}

std::string hostVethName(std::string_view container_id, std::string_view ifname) {
  // FNV-1a: enough to keep one node's attachments apart, and cheap (no crypto library
  // in a plugin that is exec'd per pod).
  return "bv" + fnv1a64Hex(strCat(container_id, "/", ifname)).substr(0, 11);
}

}  // namespace berth::cni::bridge
