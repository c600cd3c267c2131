// Where the Service proxy's Services and EndpointSlices come from: the API server
// (two informers: /api/v1/services and /apis/discovery.k8s.io/v1/endpointslices,
// list + watch with bookmarks, relist on 410) or, for standalone nodes and tests, a
// directory of manifests (YAML or JSON, the API's own schema, watched for changes).
// Either way the objects reach the Proxier's serviceChanged()/endpointSliceChanged()/…
//
// Thread-safety: start()/stop() from the owner thread; the handlers run on the
// sources' threads (the Proxier's event methods are thread-safe).
#pragma once

#include <memory>
#include <string>

#include "common/kube/client.h"
#include "common/kube/informer.h"
#include "common/kube/manifest_source.h"
#include "proxy/proxier.h"

namespace berth::proxy {

class ProxySource {
 public:
  // Manifests in `dir` (a missing directory counts as empty until it appears).
  // Errors: inotify cannot be set up.
  static StatusOr<std::unique_ptr<ProxySource>> fromManifests(const std::string& dir, Proxier* proxier);
  // The API server behind `client` (which must outlive the source).
  static StatusOr<std::unique_ptr<ProxySource>> fromApiServer(kube::ApiClient* client, Proxier* proxier);
  ~ProxySource();

  void start();
  void stop();
  // True once every object source delivered its first complete view.
  bool hasSynced() const;
  // "manifests in DIR" / "API server".
  const std::string& describe() const { return what_; }

 private:
  ProxySource() = default;
  std::string what_;
  std::unique_ptr<kube::ManifestSource> manifests_;
  std::unique_ptr<kube::Informer> services_;
  std::unique_ptr<kube::Informer> slices_;
};

}  // namespace berth::proxy
