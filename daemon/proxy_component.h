// berthd's Service proxy component: builds the Proxier (backend by proxy-mode, node
// facts from the config) and connects it to its source (proxy-manifests, else the API
// server from kubeconfig or the in-cluster service account).
//
// Thread-safety: start and destruction from berthd's main thread.
#pragma once

#include <memory>

#include "common/kube/client.h"
#include "common/status.h"
#include "daemon/config.h"
#include "proxy/proxier.h"
#include "proxy/proxy_sources.h"

namespace berth::daemon {

class ProxyComponent {
 public:
  // nullptr (and a log line saying why) when the proxy is off or has no source.
  // Errors: a bad node-ip/cluster-cidr value, the kubeconfig cannot be read, the
  // backend cannot start (no nftables/iptables), healthz/metrics cannot be bound.
  static StatusOr<std::unique_ptr<ProxyComponent>> start(const Config& config);
  ~ProxyComponent();

  proxy::Proxier& proxier() { return *proxier_; }

 private:
  ProxyComponent() = default;
  std::unique_ptr<kube::ApiClient> client_;
  std::unique_ptr<proxy::Proxier> proxier_;
  std::unique_ptr<proxy::ProxySource> source_;
};

// NodeInfo from the config keys node-name, node-ip, cluster-cidr, nodeport-addresses.
// Errors: InvalidArgument naming the key and value.
StatusOr<proxy::NodeInfo> proxyNodeInfo(const Config& config);

}  // namespace berth::daemon
