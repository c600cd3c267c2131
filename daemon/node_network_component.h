// berthd's node side of the pod network: this node's pod subnets, written to
// pod-cidr-file for berth-ipam, and one route per other node's pod subnet (host-gw,
// cni/node_network.h). Two sources, merged:
//   - the config (pod-cidr, node-route), re-read on SIGHUP (reload());
//   - when an API server is reachable (kubeconfig or in-cluster), the Node objects:
//     an informer on /api/v1/nodes; this node's spec.podCIDRs (metadata.name ==
//     node-name) and the other nodes' podCIDRs via their InternalIP, applied after the
//     first full list and again on every change.
// Config entries win: a configured pod-cidr is kept when the Node says otherwise (a
// warning is logged), a configured node-route keeps its subnet's gateway.
//
// Thread-safety: start, reload and destruction from berthd's main thread; informer
// callbacks apply from the informer's thread, serialised with reload by a mutex.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cni/node_network.h"
#include "common/kube/client.h"
#include "common/kube/informer.h"
#include "common/status.h"
#include "daemon/config.h"

namespace berth::daemon {

class NodeNetworkComponent {
 public:
  // Applies the config's pod network, then (with an API server) starts the Node
  // informer and waits up to 10 s for its first list (on timeout it goes on, and the
  // Nodes apply once listed). Errors: a bad pod-cidr/node-route entry, the pod-cidr-file
  // write, a route that cannot be set, an unreadable kubeconfig.
  static StatusOr<std::unique_ptr<NodeNetworkComponent>> start(const Config& config);
  // Stops the informer; routes and the pod-cidr-file stay.
  ~NodeNetworkComponent();

  // New config values (SIGHUP): re-applies the merge. Errors as start(); on error
  // nothing of the previous state is dropped except what was already replaced.
  Status reload(const Config& config);

 private:
  NodeNetworkComponent() = default;
  // Merges and applies; mu_ held. `why` is logged.
  Status applyLocked(const char* why);
  void onNode(const kube::Json& obj, bool deleted);

  std::mutex mu_;
  std::string node_name_;
  std::string pod_cidr_file_;
  std::vector<std::string> config_pod_cidrs_;
  std::vector<cni::NodeRoute> config_routes_;
  std::map<std::string, kube::Json> nodes_;  // guarded by mu_; by name
  bool nodes_synced_ = false;                // guarded by mu_
  std::vector<std::string> applied_cidrs_;   // last applied, to log only changes
  std::vector<cni::NodeRoute> applied_routes_;
  std::unique_ptr<kube::ApiClient> client_;
  std::unique_ptr<kube::Informer> informer_;
};

}  // namespace berth::daemon
