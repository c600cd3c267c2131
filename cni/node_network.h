// The node side of the pod network that berthd owns (issue 5, "Cross-node routing"):
// the node's pod subnets written for berth-ipam's `podCIDRFile`, and one route per
// remote node's pod subnet via that node's address (host-gw), so pods on every node
// reach each other by pod IP without NAT.
//
// Routes berthd made carry the route protocol kNodeRouteProtocol, so reconciling
// removes exactly the ones no longer wanted and never touches anyone else's.
//
// Thread-safety: functions work in the calling thread's network namespace; concurrent
// calls on one namespace are not coordinated (berthd calls them from one thread).
#pragma once

#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace berth::cni {

// rtm_protocol of berthd's node routes (unassigned in iproute2's rt_protos list).
inline constexpr int kNodeRouteProtocol = 98;

// A remote node's pod subnet and the node address it is reached by.
struct NodeRoute {
  std::string subnet;  // canonical CIDR, "10.244.1.0/24"
  std::string via;     // node address, "192.168.0.2"
  bool operator==(const NodeRoute&) const = default;
};

// Parses "SUBNET via ADDRESS" entries (the `node-route` config key). Errors:
// InvalidArgument naming the entry: not of that form, a subnet with host bits, an
// address of the other family.
StatusOr<std::vector<NodeRoute>> parseNodeRoutes(const std::vector<std::string>& entries);

// Validates `cidrs` (this node's pod subnets, like Node spec.podCIDRs) and writes them,
// one per line, atomically to `path` (berth-ipam reads it as podCIDRFile). An empty
// list leaves the file alone. Errors: InvalidArgument naming a bad CIDR; the write's
// errno error.
Status writePodCidrFile(const std::string& path, const std::vector<std::string>& cidrs);

// Makes the main routing table hold exactly `routes` among routes with protocol
// kNodeRouteProtocol: adds missing ones, replaces changed gateways, deletes the rest.
// Errors: the first netlink failure, naming the route; other routes are still tried.
Status reconcileNodeRoutes(const std::vector<NodeRoute>& routes);

// What Kubernetes Node objects (core/v1) say about the pod network.
struct NodesPodNetwork {
  // This node's spec.podCIDRs (or the older single spec.podCIDR), canonical.
  std::vector<std::string> pod_cidrs;
  // Every other node's pod CIDRs, each via that node's InternalIP of the same family
  // (its ExternalIP when it has no InternalIP of that family), sorted by subnet.
  std::vector<NodeRoute> routes;
  // Why a node or a CIDR was left out ("node \"b\": pod CIDR 10.244.1.0/24 has no
  // IPv4 InternalIP or ExternalIP to route it through"), for the log.
  std::vector<std::string> problems;
};

// Computes NodesPodNetwork from `nodes` (Node objects as the API returns them) for the
// node named `self` (metadata.name). Nodes without pod CIDRs (not yet allocated by the
// node IPAM controller) give no routes and no problem. Invalid CIDRs or addresses are
// skipped with a problem. A subnet claimed by two nodes keeps the first by name.
// Thread-safety: pure function.
NodesPodNetwork podNetworkFromNodes(const std::vector<json::Json>& nodes, std::string_view self);

}  // namespace berth::cni
