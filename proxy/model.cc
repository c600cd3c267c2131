#include "proxy/model.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <set>

namespace berth::proxy {
namespace {

using json::Json;

// ---------------------------------------------------------------------------
// JSON field access with the field's path in every error.

// The member `key` of `obj`, or nullptr when absent or JSON null.
const Json* member(const Json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

StatusOr<std::string> stringAt(const Json& obj, const char* key, const std::string& path) {
  const Json* v = member(obj, key);
  if (v == nullptr) return std::string();
  if (!v->is_string()) return invalidArgument(path, ": must be a string");
  return v->get<std::string>();
}

StatusOr<std::optional<int64_t>> intAt(const Json& obj, const char* key,
                                       const std::string& path) {
  const Json* v = member(obj, key);
  if (v == nullptr) return std::optional<int64_t>();
  if (!v->is_number_integer()) return invalidArgument(path, ": must be an integer");
  return std::optional<int64_t>(v->get<int64_t>());
}

StatusOr<std::optional<bool>> boolAt(const Json& obj, const char* key, const std::string& path) {
  const Json* v = member(obj, key);
  if (v == nullptr) return std::optional<bool>();
  if (!v->is_boolean()) return invalidArgument(path, ": must be a boolean");
  return std::optional<bool>(v->get<bool>());
}

// The array member `key` (empty when absent). Errors when it is not an array.
StatusOr<std::vector<const Json*>> arrayAt(const Json& obj, const char* key,
                                           const std::string& path) {
  std::vector<const Json*> out;
  const Json* v = member(obj, key);
  if (v == nullptr) return out;
  if (!v->is_array()) return invalidArgument(path, ": must be an array");
  for (const Json& item : *v) out.push_back(&item);
  return out;
}

StatusOr<std::vector<std::string>> stringArrayAt(const Json& obj, const char* key,
                                                 const std::string& path) {
  ASSIGN_OR_RETURN(auto items, arrayAt(obj, key, path));
  std::vector<std::string> out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!items[i]->is_string()) return invalidArgument(path, "[", i, "]: must be a string");
    out.push_back(items[i]->get<std::string>());
  }
  return out;
}

StatusOr<int> portAt(const Json& obj, const char* key, const std::string& path, bool required,
                     bool zero_ok) {
  ASSIGN_OR_RETURN(auto value, intAt(obj, key, path));
  if (!value) {
    if (required) return invalidArgument(path, ": missing (a port 1-65535 is required)");
    return 0;
  }
  if ((*value == 0 && zero_ok) || (*value >= 1 && *value <= 65535)) return int(*value);
  return invalidArgument(path, ": ", *value, " is not a valid port (1-65535)");
}

StatusOr<IpAddress> ipAt(const std::string& text, const std::string& path) {
  auto ip = IpAddress::parse(text);
  if (!ip.ok()) return withContext(ip.status(), path);
  return ip;
}

// Kubernetes name rules (apimachinery validation): a DNS label (RFC 1123: 1-63 of
// [a-z0-9-], alphanumeric at both ends) for namespaces, Service names and port names; a DNS
// subdomain (dot-separated labels, <= 253) for other object names. The proxy puts these
// names into nftables/iptables chain names, so nothing else may get through.
bool isDnsLabel(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return s.front() != '-' && s.back() != '-';
}

bool isDnsSubdomain(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (const std::string& label : split(s, '.')) {
    if (!isDnsLabel(label)) return false;
  }
  return true;
}

Status checkName(std::string_view value, bool subdomain, const std::string& path) {
  if (subdomain ? isDnsSubdomain(value) : isDnsLabel(value)) return absl::OkStatus();
  return invalidArgument(path, ": \"", value, "\" is not a valid name (",
                         subdomain ? "a DNS subdomain: lowercase letters, digits, '-' and '.'"
                                   : "a DNS label: 1-63 lowercase letters, digits and '-'",
                         ")");
}

StatusOr<NamespacedName> metadataName(const Json& object, std::string_view kind,
                                     bool subdomain) {
  if (!object.is_object()) return invalidArgument(kind, ": the object must be a JSON object");
  const Json* metadata = member(object, "metadata");
  if (metadata == nullptr || !metadata->is_object()) {
    return invalidArgument(kind, ": metadata: missing");
  }
  NamespacedName name;
  ASSIGN_OR_RETURN(name.name, stringAt(*metadata, "name", strCat(kind, ": metadata.name")));
  if (name.name.empty()) return invalidArgument(kind, ": metadata.name: missing");
  ASSIGN_OR_RETURN(name.ns,
                   stringAt(*metadata, "namespace", strCat(kind, " ", name.name, ": metadata.namespace")));
  if (name.ns.empty()) name.ns = "default";
  RETURN_IF_ERROR(checkName(name.name, subdomain, strCat(kind, " ", name.ns, "/", name.name, ": metadata.name")));
  RETURN_IF_ERROR(checkName(name.ns, false, strCat(kind, " ", name.ns, "/", name.name, ": metadata.namespace")));
  return name;
}

// ---------------------------------------------------------------------------
// Service

StatusOr<ServiceType> parseServiceType(const std::string& text) {
  if (text.empty() || text == "ClusterIP") return ServiceType::kClusterIP;
  if (text == "NodePort") return ServiceType::kNodePort;
  if (text == "LoadBalancer") return ServiceType::kLoadBalancer;
  if (text == "ExternalName") return ServiceType::kExternalName;
  return invalidArgument("spec.type: \"", text,
                         "\" is not a Service type (ClusterIP, NodePort, LoadBalancer, ExternalName)");
}

StatusOr<TrafficPolicy> parsePolicy(const std::string& text, const char* field) {
  // "Global" is the pre-1.18 spelling of "Cluster" for externalTrafficPolicy.
  if (text.empty() || text == "Cluster" || text == "Global") return TrafficPolicy::kCluster;
  if (text == "Local") return TrafficPolicy::kLocal;
  return invalidArgument(field, ": \"", text, "\" is not a traffic policy (Cluster, Local)");
}

StatusOr<ServicePort> parseServicePort(const Json& item, const std::string& path) {
  if (!item.is_object()) return invalidArgument(path, ": must be an object");
  ServicePort port;
  ASSIGN_OR_RETURN(port.name, stringAt(item, "name", path + ".name"));
  if (!port.name.empty()) RETURN_IF_ERROR(checkName(port.name, false, path + ".name"));
  ASSIGN_OR_RETURN(std::string protocol, stringAt(item, "protocol", path + ".protocol"));
  if (!protocol.empty()) {
    auto parsed = parseProtocol(protocol);
    if (!parsed.ok()) return withContext(parsed.status(), path + ".protocol");
    port.protocol = *parsed;
  }
  ASSIGN_OR_RETURN(port.port, portAt(item, "port", path + ".port", true, false));
  ASSIGN_OR_RETURN(port.node_port, portAt(item, "nodePort", path + ".nodePort", false, true));
  if (const Json* target = member(item, "targetPort")) {
    if (target->is_number_integer()) {
      int64_t n = target->get<int64_t>();
      if (n < 1 || n > 65535) {
        return invalidArgument(path, ".targetPort: ", n, " is not a valid port (1-65535)");
      }
      port.target_port.number = int(n);
    } else if (target->is_string()) {
      // A string holding digits is a number (intstr's JSON form is either).
      std::string s = target->get<std::string>();
      if (!s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        long n = s.size() <= 5 ? std::stol(s) : 0;
        if (n < 1 || n > 65535) {
          return invalidArgument(path, ".targetPort: ", s, " is not a valid port (1-65535)");
        }
        port.target_port.number = int(n);
      } else {
        port.target_port.name = s;
      }
    } else {
      return invalidArgument(path, ".targetPort: must be an integer or a port name");
    }
  }
  return port;
}

Status parseServiceSpec(const Json& object, Service& svc) {
  const Json* spec = member(object, "spec");
  if (spec == nullptr) return invalidArgument("spec: missing");
  if (!spec->is_object()) return invalidArgument("spec: must be an object");

  ASSIGN_OR_RETURN(std::string type, stringAt(*spec, "type", "spec.type"));
  ASSIGN_OR_RETURN(svc.type, parseServiceType(type));
  if (svc.type == ServiceType::kExternalName) return absl::OkStatus();

  ASSIGN_OR_RETURN(std::string cluster_ip, stringAt(*spec, "clusterIP", "spec.clusterIP"));
  ASSIGN_OR_RETURN(auto cluster_ips, stringArrayAt(*spec, "clusterIPs", "spec.clusterIPs"));
  if (cluster_ip == "None" || (!cluster_ips.empty() && cluster_ips[0] == "None")) {
    svc.headless = true;
    return absl::OkStatus();
  }
  if (cluster_ips.empty() && !cluster_ip.empty()) cluster_ips.push_back(cluster_ip);
  for (size_t i = 0; i < cluster_ips.size(); ++i) {
    ASSIGN_OR_RETURN(IpAddress ip, ipAt(cluster_ips[i], strCat("spec.clusterIPs[", i, "]")));
    for (const IpAddress& other : svc.cluster_ips) {
      if (other.family == ip.family) {
        return invalidArgument("spec.clusterIPs[", i, "]: a second ", ipFamilyName(ip.family),
                               " cluster IP (", ip.str(), ")");
      }
    }
    svc.cluster_ips.push_back(ip);
  }
  if (!cluster_ip.empty() && !svc.cluster_ips.empty() && cluster_ip != cluster_ips[0]) {
    auto primary = IpAddress::parse(cluster_ip);
    if (!primary.ok() || *primary != svc.cluster_ips[0]) {
      return invalidArgument("spec.clusterIP: ", cluster_ip, " differs from spec.clusterIPs[0] ",
                             cluster_ips[0]);
    }
  }

  ASSIGN_OR_RETURN(auto families, stringArrayAt(*spec, "ipFamilies", "spec.ipFamilies"));
  for (size_t i = 0; i < families.size(); ++i) {
    if (families[i] == "IPv4") {
      svc.ip_families.push_back(IpFamily::kIPv4);
    } else if (families[i] == "IPv6") {
      svc.ip_families.push_back(IpFamily::kIPv6);
    } else {
      return invalidArgument("spec.ipFamilies[", i, "]: \"", families[i],
                             "\" is not an IP family (IPv4, IPv6)");
    }
  }

  ASSIGN_OR_RETURN(auto ports, arrayAt(*spec, "ports", "spec.ports"));
  std::set<std::string> names;
  for (size_t i = 0; i < ports.size(); ++i) {
    std::string path = strCat("ports[", i, "]");
    ASSIGN_OR_RETURN(ServicePort port, parseServicePort(*ports[i], path));
    if (!names.insert(port.name).second) {
      return invalidArgument(path, ".name: \"", port.name, "\" is used by two ports");
    }
    svc.ports.push_back(std::move(port));
  }

  ASSIGN_OR_RETURN(auto external_ips, stringArrayAt(*spec, "externalIPs", "spec.externalIPs"));
  for (size_t i = 0; i < external_ips.size(); ++i) {
    ASSIGN_OR_RETURN(IpAddress ip, ipAt(external_ips[i], strCat("spec.externalIPs[", i, "]")));
    svc.external_ips.push_back(ip);
  }

  ASSIGN_OR_RETURN(auto ranges, stringArrayAt(*spec, "loadBalancerSourceRanges",
                                              "spec.loadBalancerSourceRanges"));
  std::string ranges_field = "spec.loadBalancerSourceRanges";
  if (ranges.empty()) {
    // The pre-field annotation, still honoured by kube-proxy.
    const Json* annotations = member(*member(object, "metadata"), "annotations");
    if (annotations != nullptr && annotations->is_object()) {
      ASSIGN_OR_RETURN(std::string value,
                       stringAt(*annotations, "service.beta.kubernetes.io/load-balancer-source-ranges",
                                "metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]"));
      ranges = split(value, ',', true);
      ranges_field = "metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]";
    }
  }
  for (size_t i = 0; i < ranges.size(); ++i) {
    std::string_view text = trim(ranges[i]);  // validation lets whitespace through
    if (text.empty()) continue;
    auto cidr = Cidr::parse(text);
    if (!cidr.ok()) return withContext(cidr.status(), strCat(ranges_field, "[", i, "]"));
    svc.load_balancer_source_ranges.push_back(*cidr);
  }

  ASSIGN_OR_RETURN(std::string affinity, stringAt(*spec, "sessionAffinity", "spec.sessionAffinity"));
  if (affinity == "ClientIP") {
    svc.session_affinity = SessionAffinity::kClientIP;
    const Json* config = member(*spec, "sessionAffinityConfig");
    const Json* client_ip = config ? member(*config, "clientIP") : nullptr;
    if (client_ip != nullptr) {
      const char* field = "spec.sessionAffinityConfig.clientIP.timeoutSeconds";
      ASSIGN_OR_RETURN(auto timeout, intAt(*client_ip, "timeoutSeconds", field));
      if (timeout) {
        if (*timeout < 1 || *timeout > kMaxAffinityTimeoutSeconds) {
          return invalidArgument(field, ": ", *timeout, " is out of range (1-",
                                 kMaxAffinityTimeoutSeconds, ")");
        }
        svc.affinity_timeout_seconds = int(*timeout);
      }
    }
  } else if (!affinity.empty() && affinity != "None") {
    return invalidArgument("spec.sessionAffinity: \"", affinity,
                           "\" is not a session affinity (None, ClientIP)");
  }

  ASSIGN_OR_RETURN(std::string etp, stringAt(*spec, "externalTrafficPolicy",
                                             "spec.externalTrafficPolicy"));
  ASSIGN_OR_RETURN(svc.external_traffic_policy, parsePolicy(etp, "spec.externalTrafficPolicy"));
  ASSIGN_OR_RETURN(std::string itp, stringAt(*spec, "internalTrafficPolicy",
                                             "spec.internalTrafficPolicy"));
  ASSIGN_OR_RETURN(svc.internal_traffic_policy, parsePolicy(itp, "spec.internalTrafficPolicy"));
  ASSIGN_OR_RETURN(svc.health_check_node_port,
                   portAt(*spec, "healthCheckNodePort", "spec.healthCheckNodePort", false, true));

  // status.loadBalancer.ingress[].ip
  const Json* status = member(object, "status");
  const Json* lb = status ? member(*status, "loadBalancer") : nullptr;
  if (lb != nullptr) {
    ASSIGN_OR_RETURN(auto ingress, arrayAt(*lb, "ingress", "status.loadBalancer.ingress"));
    for (size_t i = 0; i < ingress.size(); ++i) {
      std::string path = strCat("status.loadBalancer.ingress[", i, "]");
      ASSIGN_OR_RETURN(std::string ip, stringAt(*ingress[i], "ip", path + ".ip"));
      ASSIGN_OR_RETURN(std::string mode, stringAt(*ingress[i], "ipMode", path + ".ipMode"));
      if (ip.empty() || mode == "Proxy") continue;  // hostname-only or proxying LB
      ASSIGN_OR_RETURN(IpAddress parsed, ipAt(ip, path + ".ip"));
      svc.load_balancer_ips.push_back(parsed);
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// EndpointSlice

StatusOr<SliceEndpoint> parseSliceEndpoint(const Json& item, AddressType type,
                                           const std::string& path) {
  if (!item.is_object()) return invalidArgument(path, ": must be an object");
  SliceEndpoint ep;
  ASSIGN_OR_RETURN(ep.addresses, stringArrayAt(item, "addresses", path + ".addresses"));
  if (ep.addresses.empty()) return invalidArgument(path, ".addresses: at least one address is required");
  if (type != AddressType::kFQDN) {
    IpFamily want = type == AddressType::kIPv4 ? IpFamily::kIPv4 : IpFamily::kIPv6;
    for (size_t i = 0; i < ep.addresses.size(); ++i) {
      std::string field = strCat(path, ".addresses[", i, "]");
      ASSIGN_OR_RETURN(IpAddress ip, ipAt(ep.addresses[i], field));
      if (ip.family != want) {
        return invalidArgument(field, ": ", ep.addresses[i], " is not an ", ipFamilyName(want),
                               " address (the slice's addressType)");
      }
      if (i == 0) ep.ip = ip;
    }
  }
  if (const Json* cond = member(item, "conditions")) {
    std::string cpath = path + ".conditions";
    ASSIGN_OR_RETURN(auto ready, boolAt(*cond, "ready", cpath + ".ready"));
    ASSIGN_OR_RETURN(auto serving, boolAt(*cond, "serving", cpath + ".serving"));
    ASSIGN_OR_RETURN(auto terminating, boolAt(*cond, "terminating", cpath + ".terminating"));
    ep.conditions.ready = ready.value_or(true);
    ep.conditions.serving = serving.value_or(true);
    ep.conditions.terminating = terminating.value_or(false);
  }
  ASSIGN_OR_RETURN(ep.node_name, stringAt(item, "nodeName", path + ".nodeName"));
  ASSIGN_OR_RETURN(ep.zone, stringAt(item, "zone", path + ".zone"));
  return ep;
}

Status parseSliceBody(const Json& object, EndpointSlice& slice) {
  const Json* metadata = member(object, "metadata");
  const Json* labels = member(*metadata, "labels");
  if (labels != nullptr) {
    ASSIGN_OR_RETURN(slice.service_name,
                     stringAt(*labels, std::string(kServiceNameLabel).c_str(),
                              strCat("metadata.labels[", kServiceNameLabel, "]")));
  }
  if (slice.service_name.empty()) {
    return invalidArgument("metadata.labels: no ", kServiceNameLabel,
                           " label (the proxy cannot tell which Service this slice belongs to)");
  }
  RETURN_IF_ERROR(checkName(slice.service_name, false,
                            strCat("metadata.labels[", kServiceNameLabel, "]")));
  ASSIGN_OR_RETURN(std::string type, stringAt(object, "addressType", "addressType"));
  if (type == "IPv4") {
    slice.address_type = AddressType::kIPv4;
  } else if (type == "IPv6") {
    slice.address_type = AddressType::kIPv6;
  } else if (type == "FQDN") {
    slice.address_type = AddressType::kFQDN;
  } else if (type.empty()) {
    return invalidArgument("addressType: missing (IPv4, IPv6 or FQDN)");
  } else {
    return invalidArgument("addressType: \"", type, "\" is not an address type (IPv4, IPv6, FQDN)");
  }

  ASSIGN_OR_RETURN(auto endpoints, arrayAt(object, "endpoints", "endpoints"));
  for (size_t i = 0; i < endpoints.size(); ++i) {
    ASSIGN_OR_RETURN(SliceEndpoint ep,
                     parseSliceEndpoint(*endpoints[i], slice.address_type, strCat("endpoints[", i, "]")));
    slice.endpoints.push_back(std::move(ep));
  }
  ASSIGN_OR_RETURN(auto ports, arrayAt(object, "ports", "ports"));
  for (size_t i = 0; i < ports.size(); ++i) {
    std::string path = strCat("ports[", i, "]");
    if (!ports[i]->is_object()) return invalidArgument(path, ": must be an object");
    SlicePort port;
    ASSIGN_OR_RETURN(port.name, stringAt(*ports[i], "name", path + ".name"));
    if (!port.name.empty()) RETURN_IF_ERROR(checkName(port.name, false, path + ".name"));
    ASSIGN_OR_RETURN(std::string protocol, stringAt(*ports[i], "protocol", path + ".protocol"));
    if (!protocol.empty()) {
      auto parsed = parseProtocol(protocol);
      if (!parsed.ok()) return withContext(parsed.status(), path + ".protocol");
      port.protocol = *parsed;
    }
    ASSIGN_OR_RETURN(auto number, intAt(*ports[i], "port", path + ".port"));
    if (number) {
      if (*number < 1 || *number > 65535) {
        return invalidArgument(path, ".port: ", *number, " is not a valid port (1-65535)");
      }
      port.port = int(*number);
    }
    slice.ports.push_back(std::move(port));
  }
  return absl::OkStatus();
}

}  // namespace

// ---------------------------------------------------------------------------

StatusOr<IpAddress> IpAddress::parse(std::string_view text) {
  std::string s(text);
  IpAddress ip;
  if (s.find(':') == std::string::npos) {
    in_addr a{};
    if (inet_pton(AF_INET, s.c_str(), &a) == 1) {
      std::memcpy(ip.bytes.data(), &a, 4);
      ip.family = IpFamily::kIPv4;
      return ip;
    }
  } else {
    in6_addr a{};
    if (inet_pton(AF_INET6, s.c_str(), &a) == 1) {
      std::memcpy(ip.bytes.data(), &a, 16);
      ip.family = IpFamily::kIPv6;
      return ip;
    }
  }
  return invalidArgument("\"", text, "\" is not a valid IP address");
}

std::string IpAddress::str() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(family == IpFamily::kIPv4 ? AF_INET : AF_INET6, bytes.data(), buf, sizeof(buf));
  return buf;
}

bool IpAddress::isLoopback() const {
  if (family == IpFamily::kIPv4) return bytes[0] == 127;
  static const std::array<uint8_t, 16> kLoop6 = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return bytes == kLoop6;
}

StatusOr<Cidr> Cidr::parse(std::string_view text) {
  auto bad = [&] { return invalidArgument("\"", text, "\" is not a valid CIDR"); };
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) return bad();
  auto ip = IpAddress::parse(text.substr(0, slash));
  if (!ip.ok()) return bad();
  std::string_view len = text.substr(slash + 1);
  if (len.empty() || len.size() > 3) return bad();
  int n = 0;
  for (char c : len) {
    if (c < '0' || c > '9') return bad();
    n = n * 10 + (c - '0');
  }
  int max = ip->family == IpFamily::kIPv4 ? 32 : 128;
  if (n > max) return bad();
  Cidr cidr;
  cidr.prefix_len = n;
  cidr.address = *ip;
  for (int bit = n; bit < max; ++bit) cidr.address.bytes[bit / 8] &= uint8_t(~(0x80u >> (bit % 8)));
  return cidr;
}

bool Cidr::contains(const IpAddress& ip) const {
  if (ip.family != address.family) return false;
  for (int bit = 0; bit < prefix_len; ++bit) {
    uint8_t mask = uint8_t(0x80u >> (bit % 8));
    if ((ip.bytes[bit / 8] & mask) != (address.bytes[bit / 8] & mask)) return false;
  }
  return true;
}

std::string Cidr::str() const { return strCat(address.str(), "/", prefix_len); }

StatusOr<Protocol> parseProtocol(std::string_view text) {
  if (text == "TCP") return Protocol::kTCP;
  if (text == "UDP") return Protocol::kUDP;
  if (text == "SCTP") return Protocol::kSCTP;
  return invalidArgument("\"", text, "\" is not a supported protocol (TCP, UDP, SCTP)");
}

std::string ServicePortName::str() const {
  if (port.empty()) return service.str();
  return strCat(service.str(), ":", port);
}

std::string Service::skipReason() const {
  if (type == ServiceType::kExternalName) return "type ExternalName";
  if (headless) return "headless (clusterIP None)";
  if (cluster_ips.empty()) return "no cluster IP allocated";
  return "";
}

StatusOr<Service> parseService(const Json& object) {
  Service svc;
  ASSIGN_OR_RETURN(svc.name, metadataName(object, "service", false));
  Status st = parseServiceSpec(object, svc);
  if (!st.ok()) return withContext(st, strCat("service ", svc.name.str()));
  return svc;
}

StatusOr<Service> parseService(std::string_view json_text) {
  ASSIGN_OR_RETURN(Json object, json::parse(json_text, "service"));
  return parseService(object);
}

StatusOr<EndpointSlice> parseEndpointSlice(const Json& object) {
  EndpointSlice slice;
  ASSIGN_OR_RETURN(slice.name, metadataName(object, "endpointslice", true));
  Status st = parseSliceBody(object, slice);
  if (!st.ok()) return withContext(st, strCat("endpointslice ", slice.name.str()));
  return slice;
}

StatusOr<EndpointSlice> parseEndpointSlice(std::string_view json_text) {
  ASSIGN_OR_RETURN(Json object, json::parse(json_text, "endpointslice"));
  return parseEndpointSlice(object);
}

}  // namespace berth::proxy
