#include "daemon/api_access.h"

#include <cstdlib>

#include "common/fs.h"

namespace berth::daemon {

StatusOr<std::optional<kube::ClientConfig>> apiServerConfig(const Config& config,
                                                            std::string_view who) {
  if (!config.kubeconfig.empty()) {
    ASSIGN_OR_RETURN(kube::ClientConfig c,
                     withContext(kube::loadKubeconfig(config.kubeconfig, ""), who));
    return std::optional<kube::ClientConfig>(std::move(c));
  }
  if (std::getenv("KUBERNETES_SERVICE_HOST") != nullptr &&
      fs::exists(std::string(kube::kServiceAccountDir) + "/token")) {
    ASSIGN_OR_RETURN(kube::ClientConfig c, withContext(kube::inClusterConfig(), who));
    return std::optional<kube::ClientConfig>(std::move(c));
  }
  return std::optional<kube::ClientConfig>();
}

}  // namespace berth::daemon
