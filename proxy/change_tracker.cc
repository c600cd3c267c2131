#include "proxy/change_tracker.h"

#include <utility>

namespace berth::proxy {

bool ChangeTracker::updateService(Service service) {
  NamespacedName name = service.name;
  auto it = map_.services.find(name);
  if (it != map_.services.end() && it->second == service) return false;
  map_.services[name] = std::move(service);
  changed_.insert(name);
  return true;
}

bool ChangeTracker::deleteService(const NamespacedName& name) {
  if (map_.services.erase(name) == 0) return false;
  changed_.insert(name);
  return true;
}

bool ChangeTracker::updateEndpointSlice(EndpointSlice slice) {
  if (slice.ignored()) return deleteEndpointSlice(slice.name);
  NamespacedName slice_name = slice.name;
  NamespacedName service = slice.service();
  bool changed = false;
  auto owner = slice_owner_.find(slice_name);
  if (owner != slice_owner_.end() && owner->second != service) {
    // The label moved the slice to another Service.
    changed = deleteEndpointSlice(slice_name);
  }
  auto& group = map_.slices[service];
  auto it = group.find(slice_name.name);
  if (it != group.end() && it->second == slice) return changed;
  group[slice_name.name] = std::move(slice);
  slice_owner_[slice_name] = service;
  changed_.insert(service);
  return true;
}

bool ChangeTracker::deleteEndpointSlice(const NamespacedName& slice_name) {
  auto owner = slice_owner_.find(slice_name);
  if (owner == slice_owner_.end()) return false;
  NamespacedName service = owner->second;
  slice_owner_.erase(owner);
  auto group = map_.slices.find(service);
  if (group != map_.slices.end()) {
    group->second.erase(slice_name.name);
    if (group->second.empty()) map_.slices.erase(group);
  }
  changed_.insert(service);
  return true;
}

void ChangeTracker::replaceAll(std::vector<Service> services, std::vector<EndpointSlice> slices) {
  std::set<NamespacedName> keep_services;
  for (const Service& s : services) keep_services.insert(s.name);
  std::set<NamespacedName> keep_slices;
  for (const EndpointSlice& s : slices) {
    if (!s.ignored()) keep_slices.insert(s.name);
  }
  std::vector<NamespacedName> gone;
  for (const auto& [name, svc] : map_.services) {
    if (!keep_services.count(name)) gone.push_back(name);
  }
  for (const NamespacedName& name : gone) deleteService(name);
  gone.clear();
  for (const auto& [name, owner] : slice_owner_) {
    if (!keep_slices.count(name)) gone.push_back(name);
  }
  for (const NamespacedName& name : gone) deleteEndpointSlice(name);
  for (Service& s : services) updateService(std::move(s));
  for (EndpointSlice& s : slices) updateEndpointSlice(std::move(s));
}

ChangedSet ChangeTracker::takeChanged() {
  ChangedSet out;
  out.swap(changed_);
  return out;
}

}  // namespace berth::proxy
