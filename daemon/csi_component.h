// berthd's storage component: the hostPath CSI driver (csi/server.h) on
// <kubelet-root-dir>/plugins/hostpath.berth.dev/csi.sock (or csi-endpoint), registered
// with kubelet through <kubelet-root-dir>/plugins_registry/, volumes under
// csi-base-dir; plus the built-in PVC provisioner (csi/provisioner.h) when berthd can
// reach an API server (kubeconfig or in-cluster; see api_access.h).
//
// Thread-safety: start and destruction from berthd's main thread.
#pragma once

#include <memory>

#include "common/kube/client.h"
#include "common/status.h"
#include "csi/provisioner.h"
#include "csi/server.h"
#include "daemon/config.h"

namespace berth::daemon {

class CsiComponent {
 public:
  // nullptr when csi is not in components. Errors: the CSI server cannot start (bad
  // base dir, metadata, a socket that cannot be served), the kubeconfig cannot be read.
  static StatusOr<std::unique_ptr<CsiComponent>> start(const Config& config);
  // Stops the provisioner, then the sockets (in-flight calls get 2 s).
  ~CsiComponent();

  csi::CsiServer& server() { return *server_; }

 private:
  CsiComponent() = default;
  std::unique_ptr<csi::CsiServer> server_;
  std::unique_ptr<kube::ApiClient> client_;
  std::unique_ptr<csi::Provisioner> provisioner_;
};

}  // namespace berth::daemon
