#include "daemon/node_network_component.h"

#include <algorithm>
#include <chrono>

#include "common/log.h"
#include "daemon/api_access.h"

namespace berth::daemon {
namespace {

std::shared_ptr<spdlog::logger> logger() { return log::get("cni"); }

}  // namespace

StatusOr<std::unique_ptr<NodeNetworkComponent>> NodeNetworkComponent::start(const Config& config) {
  std::unique_ptr<NodeNetworkComponent> c(new NodeNetworkComponent());
  c->node_name_ = config.node_name;
  c->pod_cidr_file_ = config.pod_cidr_file;
  ASSIGN_OR_RETURN(c->config_routes_, cni::parseNodeRoutes(config.node_routes));
  c->config_pod_cidrs_ = config.pod_cidrs;
  {
    std::lock_guard<std::mutex> lock(c->mu_);
    RETURN_IF_ERROR(c->applyLocked("config"));
  }
  ASSIGN_OR_RETURN(std::optional<kube::ClientConfig> api, apiServerConfig(config, "pod network (Node objects)"));
  if (!api) return c;
  ASSIGN_OR_RETURN(c->client_, kube::ApiClient::create(*api));
  kube::InformerOptions options;
  options.path = "/api/v1/nodes";
  options.name = "nodes";
  NodeNetworkComponent* self = c.get();
  kube::ObjectHandlers handlers;
  handlers.on_add = [self](const kube::Json& obj) { self->onNode(obj, false); };
  handlers.on_update = [self](const kube::Json& old_obj, const kube::Json& obj) {
    if (&old_obj != &obj && old_obj == obj) return;
    self->onNode(obj, false);
  };
  handlers.on_delete = [self](const kube::Json& obj) { self->onNode(obj, true); };
  ASSIGN_OR_RETURN(c->informer_, kube::Informer::create(c->client_.get(), options, handlers));
  c->informer_->start();
  bool synced = c->informer_->waitForSync(std::chrono::seconds(10));
  std::lock_guard<std::mutex> lock(c->mu_);
  c->nodes_synced_ = true;  // the informer's first list is in nodes_ (or will arrive)
  if (!synced) {
    logger()->warn("pod network: no Node list from the API server within 10 s; using the config "
                 "until it arrives");
    return c;
  }
  if (Status st = c->applyLocked("Node objects"); !st.ok()) {
    logger()->error("pod network from Node objects: {}", std::string(st.message()));
  }
  return c;
}

NodeNetworkComponent::~NodeNetworkComponent() {
  if (informer_) informer_->stop();
}

Status NodeNetworkComponent::reload(const Config& config) {
  ASSIGN_OR_RETURN(std::vector<cni::NodeRoute> routes, cni::parseNodeRoutes(config.node_routes));
  std::lock_guard<std::mutex> lock(mu_);
  config_routes_ = std::move(routes);
  config_pod_cidrs_ = config.pod_cidrs;
  return applyLocked("config reload");
}

void NodeNetworkComponent::onNode(const kube::Json& obj, bool deleted) {
  std::string name = kube::objectName(obj);
  std::lock_guard<std::mutex> lock(mu_);
  if (deleted) {
    nodes_.erase(name);
  } else {
    nodes_[name] = obj;
  }
  // Before the first list completes, a partial view would drop routes of nodes not yet
  // seen: wait for start() to mark the list done.
  if (!nodes_synced_ || !informer_ || !informer_->hasSynced()) return;
  if (Status st = applyLocked(deleted ? "Node deleted" : "Node changed"); !st.ok()) {
    logger()->error("pod network from Node \"{}\": {}", name, std::string(st.message()));
  }
}

Status NodeNetworkComponent::applyLocked(const char* why) {
  std::vector<std::string> cidrs = config_pod_cidrs_;
  std::vector<cni::NodeRoute> routes = config_routes_;
  if (nodes_synced_) {
    std::vector<kube::Json> nodes;
    for (const auto& [_, n] : nodes_) nodes.push_back(n);
    cni::NodesPodNetwork fromApi = cni::podNetworkFromNodes(nodes, node_name_);
    for (const std::string& p : fromApi.problems) logger()->warn("pod network: {}", p);
    if (cidrs.empty()) {
      cidrs = fromApi.pod_cidrs;
    } else if (!fromApi.pod_cidrs.empty() && fromApi.pod_cidrs != cidrs) {
      logger()->warn("pod network: Node \"{}\" has pod CIDRs {} but the config's pod-cidr {} is kept",
                   node_name_, joinStrings(fromApi.pod_cidrs, ","), joinStrings(cidrs, ","));
    }
    for (const cni::NodeRoute& r : fromApi.routes) {
      bool configured = std::any_of(routes.begin(), routes.end(),
                                    [&](const cni::NodeRoute& c) { return c.subnet == r.subnet; });
      if (!configured) routes.push_back(r);
    }
  }
  RETURN_IF_ERROR(cni::writePodCidrFile(pod_cidr_file_, cidrs));
  RETURN_IF_ERROR_CTX(cni::reconcileNodeRoutes(routes),
                      "set up routes to the other nodes' pod subnets");
  if (cidrs != applied_cidrs_ || routes != applied_routes_) {
    logger()->info("pod network ({}): {} pod CIDR(s) [{}], {} node route(s)", why, cidrs.size(),
                 joinStrings(cidrs, ","), routes.size());
  }
  applied_cidrs_ = std::move(cidrs);
  applied_routes_ = std::move(routes);
  return absl::OkStatus();
}

}  // namespace berth::daemon
