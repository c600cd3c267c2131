// How berthd reaches the Kubernetes API server, shared by the components that need it
// (the Service proxy, the CSI provisioner): the kubeconfig key, else the in-cluster
// service account when berthd runs in a pod (KUBERNETES_SERVICE_HOST set and
// /var/run/secrets/kubernetes.io/serviceaccount/token present), else none.
//
// Thread-safety: pure function (reads files and the environment).
#pragma once

#include <optional>

#include "common/kube/kubeconfig.h"
#include "common/status.h"
#include "daemon/config.h"

namespace berth::daemon {

// The API server config, or nullopt when berthd has no way to reach one. `who` names
// the component in errors ("service proxy"). Errors: the kubeconfig or the service
// account files cannot be read or parsed (the path named).
StatusOr<std::optional<kube::ClientConfig>> apiServerConfig(const Config& config,
                                                            std::string_view who);

}  // namespace berth::daemon
