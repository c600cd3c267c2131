#include "common/kube/object.h"

#include <cctype>

#include "common/strings.h"

namespace berth::kube {
namespace {

std::string metadataString(const Json& obj, const char* key) {
  if (!obj.is_object()) return "";
  auto meta = obj.find("metadata");
  if (meta == obj.end() || !meta->is_object()) return "";
  auto it = meta->find(key);
  if (it == meta->end() || !it->is_string()) return "";
  return it->get<std::string>();
}

}  // namespace

std::string objectNamespace(const Json& obj) { return metadataString(obj, "namespace"); }
std::string objectName(const Json& obj) { return metadataString(obj, "name"); }
std::string objectResourceVersion(const Json& obj) {
  return metadataString(obj, "resourceVersion");
}

std::string objectKey(std::string_view ns, std::string_view name) {
  if (ns.empty()) return std::string(name);
  return strCat(ns, "/", name);
}

std::string objectKey(const Json& obj) {
  return objectKey(objectNamespace(obj), objectName(obj));
}

StatusOr<std::string> namespacedCollectionPath(std::string_view collection,
                                               std::string_view ns) {
  std::vector<std::string> parts = split(collection, '/', true);
  size_t resource_index;
  if (parts.size() == 3 && parts[0] == "api") {
    resource_index = 2;
  } else if (parts.size() == 4 && parts[0] == "apis") {
    resource_index = 3;
  } else {
    return invalidArgument("kube: collection path \"", collection,
                           "\" is not /api/<version>/<resource> or "
                           "/apis/<group>/<version>/<resource>");
  }
  if (ns.empty()) return strCat("/", joinStrings(parts, "/"));
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i == resource_index) out += strCat("/namespaces/", ns);
    out += strCat("/", parts[i]);
  }
  return out;
}

StatusOr<std::string> objectPath(std::string_view collection, std::string_view ns,
                                 std::string_view name) {
  if (name.empty()) return invalidArgument("kube: object path under \"", collection,
                                           "\" needs a name");
  ASSIGN_OR_RETURN(std::string base, namespacedCollectionPath(collection, ns));
  return strCat(base, "/", name);
}

std::string urlEncode(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xF]);
    }
  }
  return out;
}

}  // namespace berth::kube
