#include "cni/node_network.h"

#include <sys/socket.h>

#include <algorithm>
#include <map>

#include "cni/ipam/ip_address.h"
#include "cni/link/netlink.h"
#include "common/fs.h"

namespace berth::cni {

StatusOr<std::vector<NodeRoute>> parseNodeRoutes(const std::vector<std::string>& entries) {
  std::vector<NodeRoute> out;
  for (const std::string& entry : entries) {
    std::vector<std::string> f = split(entry, ' ', /*skip_empty=*/true);
    if (f.size() != 3 || f[1] != "via") {
      return invalidArgument("node-route \"", entry,
                             "\" is not \"SUBNET via NODE_IP\" (e.g. \"10.244.1.0/24 via 192.168.0.2\")");
    }
    auto subnet = ipam::IpPrefix::parse(f[0]);
    if (!subnet.ok()) return invalidArgument("node-route \"", entry, "\": ", subnet.status().message());
    auto via = ipam::IpAddress::parse(f[2]);
    if (!via.ok()) return invalidArgument("node-route \"", entry, "\": ", via.status().message());
    if (via->isV4() != subnet->isV4()) {
      return invalidArgument("node-route \"", entry, "\": the node address and the subnet are of "
                             "different IP families");
    }
    out.push_back({subnet->toString(), via->toString()});
  }
  return out;
}

Status writePodCidrFile(const std::string& path, const std::vector<std::string>& cidrs) {
  if (cidrs.empty()) return absl::OkStatus();
  std::string text = "# this node's pod subnets, written by berthd (pod-cidr)\n";
  for (const std::string& c : cidrs) {
    auto prefix = ipam::IpPrefix::parse(c);
    if (!prefix.ok()) return invalidArgument("pod-cidr \"", c, "\": ", prefix.status().message());
    text += prefix->toString() + "\n";
  }
  size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) RETURN_IF_ERROR(fs::mkdirAll(path.substr(0, slash), 0755));
  return withContext(fs::writeFileAtomic(path, text, 0644), strCat("write pod-cidr-file \"", path, "\""));
}

Status reconcileNodeRoutes(const std::vector<NodeRoute>& routes) {
  ASSIGN_OR_RETURN(link::RouteSocket sock, link::RouteSocket::open());
  ASSIGN_OR_RETURN(std::vector<link::RouteSpec> current, sock.routes(AF_UNSPEC));
  Status first;
  auto note = [&first](const Status& st) {
    if (!st.ok() && first.ok()) first = st;
  };
  for (const link::RouteSpec& r : current) {
    if (r.protocol != kNodeRouteProtocol) continue;
    bool wanted = false;
    for (const NodeRoute& w : routes) wanted = wanted || (w.subnet == r.dst && w.via == r.gw);
    if (!wanted) note(sock.deleteRoute(r));
  }
  for (const NodeRoute& w : routes) {
    bool present = false;
    for (const link::RouteSpec& r : current) {
      present = present || (r.protocol == kNodeRouteProtocol && r.dst == w.subnet && r.gw == w.via);
    }
    if (present) continue;
    link::RouteSpec spec;
    spec.dst = w.subnet;
    spec.gw = w.via;
    spec.protocol = kNodeRouteProtocol;
    spec.replace = true;
    note(withContext(sock.addRoute(spec), strCat("node route ", w.subnet, " via ", w.via)));
  }
  return first;
}

namespace {

// The string members of `arr` (an array of strings, else empty).
std::vector<std::string> strings(const json::Json* arr) {
  std::vector<std::string> out;
  if (arr == nullptr || !arr->is_array()) return out;
  for (const auto& v : *arr) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

const json::Json* member(const json::Json& obj, const char* a, const char* b) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(a);
  if (it == obj.end() || !it->is_object()) return nullptr;
  auto jt = it->find(b);
  return jt == it->end() ? nullptr : &*jt;
}

// spec.podCIDRs, or [spec.podCIDR] from clusters older than dual-stack.
std::vector<std::string> nodePodCidrs(const json::Json& node) {
  std::vector<std::string> cidrs = strings(member(node, "spec", "podCIDRs"));
  if (cidrs.empty()) {
    const json::Json* one = member(node, "spec", "podCIDR");
    if (one != nullptr && one->is_string() && !one->get<std::string>().empty()) {
      cidrs.push_back(one->get<std::string>());
    }
  }
  return cidrs;
}

// The node's first address of `type` ("InternalIP") in the family of `v4`.
std::string nodeAddress(const json::Json& node, const char* type, bool v4) {
  const json::Json* addrs = member(node, "status", "addresses");
  if (addrs == nullptr || !addrs->is_array()) return "";
  for (const auto& a : *addrs) {
    if (!a.is_object() || a.value("type", "") != type) continue;
    auto ip = ipam::IpAddress::parse(a.value("address", ""));
    if (ip.ok() && ip->isV4() == v4) return ip->toString();
  }
  return "";
}

}  // namespace

NodesPodNetwork podNetworkFromNodes(const std::vector<json::Json>& nodes, std::string_view self) {
  NodesPodNetwork out;
  std::vector<const json::Json*> sorted;
  for (const auto& n : nodes) sorted.push_back(&n);
  auto name = [](const json::Json* n) {
    const json::Json* v = member(*n, "metadata", "name");
    return v != nullptr && v->is_string() ? v->get<std::string>() : std::string();
  };
  std::sort(sorted.begin(), sorted.end(),
            [&](const json::Json* a, const json::Json* b) { return name(a) < name(b); });
  std::map<std::string, std::string> owner;  // subnet -> node name
  for (const json::Json* node : sorted) {
    std::string node_name = name(node);
    for (const std::string& text : nodePodCidrs(*node)) {
      auto prefix = ipam::IpPrefix::parse(text);
      if (!prefix.ok()) {
        out.problems.push_back(strCat("node \"", node_name, "\": pod CIDR \"", text,
                                      "\" skipped: ", prefix.status().message()));
        continue;
      }
      std::string subnet = prefix->toString();
      if (node_name == self) {
        out.pod_cidrs.push_back(subnet);
        continue;
      }
      auto [it, inserted] = owner.emplace(subnet, node_name);
      if (!inserted) {
        out.problems.push_back(strCat("node \"", node_name, "\": pod CIDR ", subnet,
                                      " is also node \"", it->second, "\"'s; not routed to it"));
        continue;
      }
      bool v4 = prefix->isV4();
      std::string via = nodeAddress(*node, "InternalIP", v4);
      if (via.empty()) via = nodeAddress(*node, "ExternalIP", v4);
      if (via.empty()) {
        out.problems.push_back(strCat("node \"", node_name, "\": pod CIDR ", subnet, " has no ",
                                      v4 ? "IPv4" : "IPv6",
                                      " InternalIP or ExternalIP to route it through"));
        owner.erase(subnet);
        continue;
      }
      out.routes.push_back({subnet, via});
    }
  }
  std::sort(out.routes.begin(), out.routes.end(),
            [](const NodeRoute& a, const NodeRoute& b) { return a.subnet < b.subnet; });
  return out;
}

}  // namespace berth::cni
