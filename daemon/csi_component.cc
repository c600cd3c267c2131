#include "daemon/csi_component.h"

#include "common/log.h"
#include "daemon/api_access.h"

namespace berth::daemon {

StatusOr<std::unique_ptr<CsiComponent>> CsiComponent::start(const Config& config) {
  auto logger = log::get("csi");
  if (!runs(config, "csi")) return std::unique_ptr<CsiComponent>();
  std::unique_ptr<CsiComponent> c(new CsiComponent());
  csi::ServerOptions o;
  o.kubelet_root_dir = config.kubelet_root_dir;
  o.base_dir = config.csi_base_dir;
  o.endpoint = config.csi_endpoint;
  o.node_id = config.node_name;
  ASSIGN_OR_RETURN(c->server_, withContext(csi::CsiServer::start(std::move(o)),
                                           "start the CSI driver (csi-base-dir \"" +
                                               config.csi_base_dir + "\")"));
  ASSIGN_OR_RETURN(std::optional<kube::ClientConfig> api,
                   apiServerConfig(config, "CSI provisioner"));
  if (!api) {
    logger->info("CSI provisioner not started: no API server (set kubeconfig); "
                 "external-provisioner can use unix://{}", c->server_->endpoint());
    return c;
  }
  ASSIGN_OR_RETURN(c->client_, kube::ApiClient::create(*api));
  csi::ProvisionerOptions po;
  po.node_name = config.node_name;
  ASSIGN_OR_RETURN(c->provisioner_,
                   withContext(csi::Provisioner::create(c->client_.get(), &c->server_->backend(),
                                                        po),
                               "start the CSI provisioner"));
  c->provisioner_->start();
  logger->info("CSI provisioner provisioning PVCs of hostpath.berth.dev StorageClasses for node {}",
               config.node_name);
  return c;
}

CsiComponent::~CsiComponent() {
  if (provisioner_) provisioner_->shutdown();
  if (server_) server_->shutdown(2000);
}

}  // namespace berth::daemon
