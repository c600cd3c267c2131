#include "proxy/proxy_sources.h"

namespace berth::proxy {
namespace {

kube::ObjectHandlers serviceHandlers(Proxier* p) {
  return {[p](const json::Json& o) { p->serviceChanged(o); },
          [p](const json::Json&, const json::Json& o) { p->serviceChanged(o); },
          [p](const json::Json& o) { p->serviceDeleted(o); }};
}

kube::ObjectHandlers sliceHandlers(Proxier* p) {
  return {[p](const json::Json& o) { p->endpointSliceChanged(o); },
          [p](const json::Json&, const json::Json& o) { p->endpointSliceChanged(o); },
          [p](const json::Json& o) { p->endpointSliceDeleted(o); }};
}

}  // namespace

StatusOr<std::unique_ptr<ProxySource>> ProxySource::fromManifests(const std::string& dir, Proxier* proxier) {
  std::unique_ptr<ProxySource> s(new ProxySource());
  s->what_ = "manifests in " + dir;
  kube::ManifestSourceOptions o;
  o.dir = dir;
  o.kinds["Service"] = serviceHandlers(proxier);
  o.kinds["EndpointSlice"] = sliceHandlers(proxier);
  ASSIGN_OR_RETURN(s->manifests_, kube::ManifestSource::create(std::move(o)));
  return s;
}

StatusOr<std::unique_ptr<ProxySource>> ProxySource::fromApiServer(kube::ApiClient* client, Proxier* proxier) {
  std::unique_ptr<ProxySource> s(new ProxySource());
  s->what_ = "API server";
  kube::InformerOptions svc;
  svc.path = "/api/v1/services";
  svc.name = "services";
  ASSIGN_OR_RETURN(s->services_, kube::Informer::create(client, svc, serviceHandlers(proxier)));
  kube::InformerOptions eps;
  eps.path = "/apis/discovery.k8s.io/v1/endpointslices";
  eps.name = "endpointslices";
  ASSIGN_OR_RETURN(s->slices_, kube::Informer::create(client, eps, sliceHandlers(proxier)));
  return s;
}

ProxySource::~ProxySource() { stop(); }

void ProxySource::start() {
  if (manifests_) manifests_->start();
  if (services_) services_->start();
  if (slices_) slices_->start();
}

void ProxySource::stop() {
  if (manifests_) manifests_->stop();
  if (services_) services_->stop();
  if (slices_) slices_->stop();
}

bool ProxySource::hasSynced() const {
  if (manifests_) return manifests_->hasSynced();
  return services_ && services_->hasSynced() && slices_ && slices_->hasSynced();
}

}  // namespace berth::proxy
