#include "daemon/proxy_component.h"

#include <unistd.h>

#include "common/fs.h"
#include "common/kube/kubeconfig.h"
#include "daemon/api_access.h"
#include "common/log.h"

namespace berth::daemon {

StatusOr<proxy::NodeInfo> proxyNodeInfo(const Config& config) {
  proxy::NodeInfo node;
  node.node_name = config.node_name;
  for (const std::string& ip : config.node_ips) {
    ASSIGN_OR_RETURN(auto parsed, withContext(proxy::IpAddress::parse(ip), "node-ip"));
    node.node_ips.push_back(parsed);
  }
  for (const std::string& c : config.cluster_cidrs) {
    ASSIGN_OR_RETURN(auto parsed, withContext(proxy::Cidr::parse(c), "cluster-cidr"));
    node.cluster_cidrs.push_back(parsed);
  }
  for (const std::string& c : config.nodeport_addresses) {
    ASSIGN_OR_RETURN(auto parsed, withContext(proxy::Cidr::parse(c), "nodeport-addresses"));
    node.nodeport_addresses.push_back(parsed);
  }
  return node;
}

StatusOr<std::unique_ptr<ProxyComponent>> ProxyComponent::start(const Config& config) {
  auto logger = log::get("proxy");
  if (!runs(config, "proxy")) return std::unique_ptr<ProxyComponent>();
  if (config.proxy_mode == ProxyMode::kOff) {
    logger->info("service proxy is off (proxy-mode off)");
    return std::unique_ptr<ProxyComponent>();
  }
  std::unique_ptr<ProxyComponent> c(new ProxyComponent());
  std::optional<kube::ClientConfig> api;
  if (config.proxy_manifests.empty()) {
    ASSIGN_OR_RETURN(api, apiServerConfig(config, "service proxy"));
    if (!api) {
      logger->info("service proxy not started: no Service source (set kubeconfig or proxy-manifests)");
      return std::unique_ptr<ProxyComponent>();
    }
  }

  proxy::ProxierOptions o;
  ASSIGN_OR_RETURN(o.node, proxyNodeInfo(config));
  o.runner.sync_period = std::chrono::seconds(config.proxy_sync_period_s);
  o.healthz_address = config.proxy_healthz_address;
  o.metrics_address = config.proxy_metrics_address;
  StatusOr<std::unique_ptr<proxy::RuleBackend>> backend =
      config.proxy_mode == ProxyMode::kIptables ? proxy::makeIptablesBackend(proxy::IptablesBackend::kDetect)
                                                : proxy::makeNftablesBackend();
  if (!backend.ok()) return withContext(backend.status(), "service proxy");
  // Rules of the other mode (a previous run with another proxy-mode) would still
  // redirect Services: remove them, as kube-proxy does when it starts.
  auto other = config.proxy_mode == ProxyMode::kIptables ? proxy::makeNftablesBackend()
                                                         : proxy::makeIptablesBackend(proxy::IptablesBackend::kDetect);
  if (other.ok()) {
    Status st = (*other)->cleanup();
    if (!st.ok()) logger->debug("remove {} rules of another proxy mode: {}", (*other)->name(), std::string(st.message()));
  }
  ASSIGN_OR_RETURN(c->proxier_, proxy::Proxier::create(o, std::move(*backend)));
  if (api) {
    ASSIGN_OR_RETURN(c->client_, kube::ApiClient::create(*api));
    ASSIGN_OR_RETURN(c->source_, proxy::ProxySource::fromApiServer(c->client_.get(), c->proxier_.get()));
  } else {
    ASSIGN_OR_RETURN(c->source_, proxy::ProxySource::fromManifests(config.proxy_manifests, c->proxier_.get()));
  }
  c->proxier_->start();
  c->source_->start();
  logger->info("service proxy ({} mode) programming Services from {} for node {}; healthz {}, metrics {}",
               proxyModeName(config.proxy_mode), c->source_->describe(), o.node.node_name,
               o.healthz_address.empty() ? "off" : strCat(o.healthz_address),
               o.metrics_address.empty() ? "off" : strCat(o.metrics_address));
  return c;
}

ProxyComponent::~ProxyComponent() {
  if (source_) source_->stop();
  if (proxier_) proxier_->stop();
}

}  // namespace berth::daemon
