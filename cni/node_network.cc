#include "cni/node_network.h"

#include <sys/socket.h>

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

}  // namespace berth::cni
