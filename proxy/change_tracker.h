// ChangeTracker: folds Service and EndpointSlice add/update/delete events into a
// ServiceMap and records which Services changed since the last sync, so that a proxier
// can render only those (kube-proxy's ServiceChangeTracker + EndpointsChangeTracker,
// pkg/proxy/servicechangetracker.go / endpointschangetracker.go, reduced to what the
// renderers need: the set of changed Service names).
//
// A Service counts as changed when its own object changes in a way the proxy sees (an
// update equal to what is stored changes nothing: informer resyncs cost nothing), when
// it is added or deleted, or when one of its EndpointSlices is added, changed or
// deleted. A slice that arrives before its Service is kept and used once the Service
// appears. FQDN slices are ignored (a slice that turns into FQDN is removed).
//
// Typical loop (the proxier's): events -> update*/delete*; at sync time
//   auto changed = tracker.takeChanged();
//   ProxyState state = buildProxyState(tracker.map(), node);
//   script = renderer.renderSync(state, changed, full);
// and if the sync fails, render the next one with full = true (the changed set is gone).
//
// Thread-safety: not synchronised; the proxier serialises event handlers and syncs.
#pragma once

#include <set>
#include <string>

#include "proxy/model.h"
#include "proxy/service_map.h"

namespace berth::proxy {

// Names of Services (namespace/name) whose rules must be re-rendered.
using ChangedSet = std::set<NamespacedName>;

class ChangeTracker {
 public:
  // Adds or replaces a Service. Returns true if the map changed.
  bool updateService(Service service);
  // Removes a Service (its slices are kept until they are deleted themselves). Returns
  // true if it was known.
  bool deleteService(const NamespacedName& name);

  // Adds or replaces a slice (keyed by its own namespace/name). A slice whose
  // service-name label changed moves, and both Services count as changed. An ignored
  // (FQDN) slice is treated as a delete. Returns true if the map changed.
  bool updateEndpointSlice(EndpointSlice slice);
  // Removes a slice by its namespace/name. Returns true if it was known.
  bool deleteEndpointSlice(const NamespacedName& slice_name);

  // Replaces the whole content (e.g. after a relist): Services and slices not in the new
  // lists are deleted, the rest updated; changes are recorded as above.
  void replaceAll(std::vector<Service> services, std::vector<EndpointSlice> slices);

  const ServiceMap& map() const { return map_; }
  // Services changed since the last takeChanged().
  const ChangedSet& changed() const { return changed_; }
  // Returns the changed set and starts a new, empty one.
  ChangedSet takeChanged();

 private:
  ServiceMap map_;
  // slice namespace/name -> the Service it is filed under
  std::map<NamespacedName, NamespacedName> slice_owner_;
  ChangedSet changed_;
};

}  // namespace berth::proxy
