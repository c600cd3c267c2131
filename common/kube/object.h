// Kubernetes objects as JSON (nlohmann::json via common/json.h), the handlers that
// object sources (Informer, ManifestSource) call, and the key and REST path helpers
// they share.
//
// Keys follow client-go's MetaNamespaceKeyFunc: "<namespace>/<name>" for namespaced
// objects, "<name>" for cluster-scoped ones (no metadata.namespace).
//
// Thread-safety: pure functions, thread-safe.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace berth::kube {

using Json = json::Json;

// Callbacks of an object source. Any may be empty (ignored). They are called from the
// source's own thread, one at a time (never concurrently for one source), after the
// source's cache already holds the new state. They must not block for long: the
// source cannot process further events meanwhile.
struct ObjectHandlers {
  // A new object (first list, watch ADDED, a new manifest).
  std::function<void(const Json& obj)> on_add;
  // A changed object; on a periodic resync old and new are the same object.
  std::function<void(const Json& old_obj, const Json& new_obj)> on_update;
  // A removed object, with its last known state.
  std::function<void(const Json& obj)> on_delete;
};

// metadata.namespace / metadata.name / metadata.resourceVersion, "" when absent or
// not a string.
std::string objectNamespace(const Json& obj);
std::string objectName(const Json& obj);
std::string objectResourceVersion(const Json& obj);

// "<ns>/<name>", or "<name>" when the namespace is empty.
std::string objectKey(std::string_view ns, std::string_view name);
// objectKey(objectNamespace(obj), objectName(obj)).
std::string objectKey(const Json& obj);

// Inserts a namespace into a collection path: "/api/v1/services" + "kube-system" ->
// "/api/v1/namespaces/kube-system/services";
// "/apis/discovery.k8s.io/v1/endpointslices" + "ns" ->
// "/apis/discovery.k8s.io/v1/namespaces/ns/endpointslices". An empty namespace
// returns the path unchanged. Errors: InvalidArgument when the path is not
// "/api/<version>/<resource>" or "/apis/<group>/<version>/<resource>".
StatusOr<std::string> namespacedCollectionPath(std::string_view collection,
                                               std::string_view ns);

// The path of one object: namespacedCollectionPath(collection, ns) + "/" + name.
StatusOr<std::string> objectPath(std::string_view collection, std::string_view ns,
                                 std::string_view name);

// Percent-encodes a query parameter value (RFC 3986 unreserved characters kept).
std::string urlEncode(std::string_view value);

}  // namespace berth::kube
