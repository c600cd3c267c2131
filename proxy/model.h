// The Service proxy's input model: v1 Services and discovery.k8s.io/v1 EndpointSlices as
// kube-proxy reads them, parsed from the API server's JSON and validated, plus the small
// IP address / CIDR types the proxy works with.
//
// What is kept is what kube-proxy's service and endpoint change trackers use
// (kubernetes pkg/proxy/serviceport.go newBaseServiceInfo, endpointslicecache.go); other
// fields are ignored. Services the proxy does not program are still parsed (so a change
// of type can be tracked) but report a skipReason(): type ExternalName, headless
// (clusterIP "None"), or no cluster IP allocated. EndpointSlices of addressType FQDN are
// parsed without address validation and report ignored().
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "proxy/protocol.h"

namespace berth::proxy {

// ---------------------------------------------------------------------------
// Addresses

// IpFamily, Protocol and their spellings: proxy/protocol.h.

struct IpAddress {
  IpFamily family = IpFamily::kIPv4;
  // Network byte order; an IPv4 address uses bytes[0..3], the rest are zero.
  std::array<uint8_t, 16> bytes{};

  // Parses a literal IPv4 ("10.0.0.1") or IPv6 ("fd00::1") address, without zone or
  // brackets. An IPv4-mapped IPv6 literal ("::ffff:10.0.0.1") is kept as IPv6.
  // Errors: InvalidArgument "<text> is not a valid IP address".
  static StatusOr<IpAddress> parse(std::string_view text);

  // Canonical text (inet_ntop: RFC 5952 for IPv6).
  std::string str() const;
  bool isLoopback() const;  // 127.0.0.0/8 or ::1

  auto operator<=>(const IpAddress&) const = default;
  bool operator==(const IpAddress&) const = default;
};

struct Cidr {
  IpAddress address;  // the network address (host bits cleared)
  int prefix_len = 0;

  // Parses "10.0.0.0/8" or "fd00::/64"; host bits are cleared as Go's net.ParseCIDR
  // does ("10.1.2.3/8" -> 10.0.0.0/8). A bare address is not accepted.
  // Errors: InvalidArgument "<text> is not a valid CIDR".
  static StatusOr<Cidr> parse(std::string_view text);

  bool contains(const IpAddress& ip) const;
  std::string str() const;  // "10.0.0.0/8"

  auto operator<=>(const Cidr&) const = default;
  bool operator==(const Cidr&) const = default;
};

// ---------------------------------------------------------------------------
// Names

// Parses the API spelling. Errors: InvalidArgument "<text> is not a supported protocol
// (TCP, UDP, SCTP)".
StatusOr<Protocol> parseProtocol(std::string_view text);

struct NamespacedName {
  std::string ns;
  std::string name;

  std::string str() const { return ns + "/" + name; }  // "default/web"
  auto operator<=>(const NamespacedName&) const = default;
  bool operator==(const NamespacedName&) const = default;
};

// One port of one Service: what kube-proxy's ServicePortName identifies (the port name,
// not its number, so renumbering a port keeps its identity).
struct ServicePortName {
  NamespacedName service;
  std::string port;  // spec.ports[].name; "" for a Service's single unnamed port
  Protocol protocol = Protocol::kTCP;

  // "default/web:http" ("default/web" for an unnamed port), as kube-proxy prints it.
  std::string str() const;
  auto operator<=>(const ServicePortName&) const = default;
  bool operator==(const ServicePortName&) const = default;
};

// ---------------------------------------------------------------------------
// v1 Service

enum class ServiceType { kClusterIP, kNodePort, kLoadBalancer, kExternalName };
enum class SessionAffinity { kNone, kClientIP };
enum class TrafficPolicy { kCluster, kLocal };

// spec.sessionAffinityConfig.clientIP.timeoutSeconds when absent (3 hours).
inline constexpr int kDefaultAffinityTimeoutSeconds = 10800;
// The API's upper bound for that timeout (1 day).
inline constexpr int kMaxAffinityTimeoutSeconds = 86400;

// spec.ports[].targetPort: an int-or-string. Not used to find endpoints (the
// EndpointSlice controller resolves named target ports into the slices' port numbers,
// which the proxy matches by port name); kept for diagnostics.
struct TargetPort {
  int number = 0;    // 0 when absent or named
  std::string name;  // non-empty for a named port ("http")
  bool operator==(const TargetPort&) const = default;
};

struct ServicePort {
  std::string name;
  Protocol protocol = Protocol::kTCP;
  int port = 0;       // 1-65535
  TargetPort target_port;
  int node_port = 0;  // 0 = none; 1-65535
  bool operator==(const ServicePort&) const = default;
};

struct Service {
  NamespacedName name;
  ServiceType type = ServiceType::kClusterIP;
  bool headless = false;               // spec.clusterIP == "None"
  std::vector<IpAddress> cluster_ips;  // spec.clusterIPs (or spec.clusterIP), primary first
  std::vector<IpFamily> ip_families;   // spec.ipFamilies (may be empty in old objects)
  std::vector<ServicePort> ports;
  std::vector<IpAddress> external_ips;
  // status.loadBalancer.ingress[].ip, except ingress points with ipMode "Proxy" (those
  // load balancers proxy to node ports themselves; kube-proxy skips them too).
  std::vector<IpAddress> load_balancer_ips;
  // spec.loadBalancerSourceRanges (entries trimmed), or when that is empty the
  // service.beta.kubernetes.io/load-balancer-source-ranges annotation (comma-separated).
  std::vector<Cidr> load_balancer_source_ranges;
  SessionAffinity session_affinity = SessionAffinity::kNone;
  int affinity_timeout_seconds = kDefaultAffinityTimeoutSeconds;  // ClientIP only
  TrafficPolicy external_traffic_policy = TrafficPolicy::kCluster;
  TrafficPolicy internal_traffic_policy = TrafficPolicy::kCluster;
  int health_check_node_port = 0;

  // Why the proxy does not program this Service ("type ExternalName", "headless
  // (clusterIP None)", "no cluster IP allocated"), or "" when it does.
  std::string skipReason() const;

  bool operator==(const Service&) const = default;
};

// Parses a v1 Service object (as the API server returns it, or one watch event's
// "object"). Required: metadata.name; metadata.namespace defaults to "default".
// Validated (InvalidArgument naming the object and the field, e.g. "service default/web:
// ports[1].port: 0 is not a valid port (1-65535)"): cluster IPs, external IPs, ingress IPs
// and source ranges must parse; ports 1-65535; nodePort/healthCheckNodePort 0-65535;
// protocol TCP/UDP/SCTP; known type, sessionAffinity and traffic policies; affinity timeout
// 1-86400; port names unique; metadata.name, metadata.namespace and port names are DNS
// labels (they end up in chain names, so nothing else may pass). ExternalName and headless Services are parsed up to their
// type and clusterIP only (the rest is never used) and never fail on the rest.
StatusOr<Service> parseService(const json::Json& object);
StatusOr<Service> parseService(std::string_view json_text);

// ---------------------------------------------------------------------------
// discovery.k8s.io/v1 EndpointSlice

enum class AddressType { kIPv4, kIPv6, kFQDN };

// The label that ties a slice to its Service.
inline constexpr std::string_view kServiceNameLabel = "kubernetes.io/service-name";

// endpoints[].conditions with the API's defaults for absent (nil) values: ready and
// serving nil mean true ("unknown state, interpret as ready"), terminating nil means false.
struct EndpointConditions {
  bool ready = true;
  bool serving = true;
  bool terminating = false;
  bool operator==(const EndpointConditions&) const = default;
};

struct SliceEndpoint {
  std::vector<std::string> addresses;  // as given (IP literals unless FQDN)
  std::optional<IpAddress> ip;         // addresses[0] parsed (the one the proxy uses)
  EndpointConditions conditions;
  std::string node_name;  // "" when absent
  std::string zone;
  bool operator==(const SliceEndpoint&) const = default;
};

struct SlicePort {
  std::string name;         // "" when absent (matches the Service's unnamed port)
  std::optional<int> port;  // absent = "all ports" in the API; the proxy skips such ports
  Protocol protocol = Protocol::kTCP;
  bool operator==(const SlicePort&) const = default;
};

struct EndpointSlice {
  NamespacedName name;        // the slice's own namespace/name
  std::string service_name;   // label kubernetes.io/service-name (same namespace)
  AddressType address_type = AddressType::kIPv4;
  std::vector<SliceEndpoint> endpoints;
  std::vector<SlicePort> ports;

  NamespacedName service() const { return {name.ns, service_name}; }
  bool ignored() const { return address_type == AddressType::kFQDN; }
  bool operator==(const EndpointSlice&) const = default;
};

// Parses an EndpointSlice object. Required: metadata.name, addressType, the
// kubernetes.io/service-name label. Validated (InvalidArgument "endpointslice
// default/web-abc12: <field>: <problem>"): every address of an IPv4/IPv6 slice is an IP of
// that family; ports 1-65535; protocol TCP/UDP/SCTP; each endpoint has >= 1 address; the
// slice name is a DNS subdomain, its namespace, service-name label and port names DNS labels.
StatusOr<EndpointSlice> parseEndpointSlice(const json::Json& object);
StatusOr<EndpointSlice> parseEndpointSlice(std::string_view json_text);

}  // namespace berth::proxy
