#include "cni/cache.h"

#include <unistd.h>

#include "common/fs.h"

namespace berth::cni {

namespace {

using json::Json;

constexpr char kKind[] = "cniCacheV1";
}  // namespace


std::string cachePath(const std::string& cache_dir, const std::string& network,
                      const std::string& container_id, const std::string& ifname) {
  return fs::join(fs::join(cache_dir, "results"), strCat(network, "-", container_id, "-", ifname));
}

Status writeCache(const std::string& cache_dir, const CachedAttachment& entry) {
  std::string dir = fs::join(cache_dir, "results");
  RETURN_IF_ERROR_CTX(fs::mkdirAll(dir, 0700), "create CNI result cache dir");
  Json doc = Json::object();
  doc["kind"] = kKind;
  doc["containerId"] = entry.container_id;
  doc["config"] = base64Encode(entry.config);
  doc["ifName"] = entry.ifname;
  doc["networkName"] = entry.network_name;
  if (!entry.netns.empty()) doc["netns"] = entry.netns;
  if (!entry.cni_args.empty()) {
    Json args = Json::array();
    for (const auto& [k, v] : entry.cni_args) args.push_back(Json::array({k, v}));
    doc["cniArgs"] = args;
  }
  if (entry.capability_args.is_object() && !entry.capability_args.empty()) {
    doc["capabilityArgs"] = entry.capability_args;
  }
  if (!entry.result.is_null()) doc["result"] = entry.result;
  std::string path = cachePath(cache_dir, entry.network_name, entry.container_id, entry.ifname);
  return withContext(fs::writeFileAtomic(path, json::dump(doc), 0600),
                     strCat("write CNI result cache ", path));
}

StatusOr<CachedAttachment> readCache(const std::string& path) {
  ASSIGN_OR_RETURN(Json doc, json::parseFile(path));
  auto bad = [&](std::string_view problem) {
    return invalidArgument("CNI result cache ", path, ": ", problem);
  };
  if (!doc.is_object()) return bad("not a JSON object");
  if (doc.value("kind", "") != kKind) return bad(strCat("\"kind\" is not \"", kKind, "\""));
  CachedAttachment e;
  try {
    e.container_id = doc.value("containerId", "");
    e.ifname = doc.value("ifName", "");
    e.network_name = doc.value("networkName", "");
    e.netns = doc.value("netns", "");
    auto decoded = base64Decode(doc.value("config", ""));
    if (!decoded.ok()) return bad(strCat("\"config\": ", decoded.status().message()));
    e.config = std::move(*decoded);
    if (doc.contains("cniArgs") && doc["cniArgs"].is_array()) {
      for (const Json& kv : doc["cniArgs"]) {
        if (kv.is_array() && kv.size() == 2 && kv[0].is_string() && kv[1].is_string()) {
          e.cni_args.emplace_back(kv[0].get<std::string>(), kv[1].get<std::string>());
        }
      }
    }
    if (doc.contains("capabilityArgs") && doc["capabilityArgs"].is_object()) {
      e.capability_args = doc["capabilityArgs"];
    }
    if (doc.contains("result")) e.result = doc["result"];
  } catch (const Json::exception& ex) {
    return bad(ex.what());
  }
  if (e.container_id.empty() || e.network_name.empty()) {
    return bad("\"containerId\" and \"networkName\" are required");
  }
  return e;
}

std::vector<std::pair<std::string, CachedAttachment>> listCache(const std::string& cache_dir) {
  std::vector<std::pair<std::string, CachedAttachment>> out;
  std::string dir = fs::join(cache_dir, "results");
  auto names = fs::listDir(dir);
  if (!names.ok()) return out;
  for (const std::string& name : *names) {
    if (name.find(".tmp-") != std::string::npos) continue;
    std::string path = fs::join(dir, name);
    auto entry = readCache(path);
    if (entry.ok()) out.emplace_back(path, std::move(*entry));
  }
  return out;
}

StatusOr<std::pair<std::string, CachedAttachment>> findCache(const std::string& cache_dir,
                                                             const std::string& network,
                                                             const std::string& container_id,
                                                             const std::string& ifname) {
  if (!network.empty()) {
    std::string path = cachePath(cache_dir, network, container_id, ifname);
    auto entry = readCache(path);
    if (entry.ok() && entry->container_id == container_id && entry->ifname == ifname) {
      return std::make_pair(path, std::move(*entry));
    }
  }
  for (auto& [path, entry] : listCache(cache_dir)) {
    if (entry.container_id == container_id && entry.ifname == ifname) {
      return std::make_pair(path, std::move(entry));
    }
  }
  return notFound("no cached CNI result for container ", container_id, " interface ", ifname);
}

}  // namespace berth::cni
