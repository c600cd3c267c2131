#include "cni/conflist.h"

#include <sys/stat.h>

#include <algorithm>

#include "cni/result.h"
#include "common/fs.h"

namespace berth::cni {

namespace {

using json::Json;

bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool validNetworkName(const std::string& name) {
  if (name.empty() || !std::isalnum(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

Status confError(std::string_view source, std::string_view key, std::string_view problem) {
  return invalidArgument("network config ", source, ": \"", key, "\" ", problem);
}

StatusOr<bool> optBool(const Json& obj, const char* key, std::string_view source) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return false;
  if (it->is_boolean()) return it->get<bool>();
  if (it->is_string()) {
    std::string v = it->get<std::string>();
    if (v == "true") return true;
    if (v == "false") return false;
  }
  return confError(source, key, "must be true or false");
}

StatusOr<std::string> pickVersion(const Json& doc, std::string_view source) {
  // CNI 1.1: "cniVersions" lists every version the file is valid for; the runtime
  // uses the highest one it supports.
  auto list = doc.find("cniVersions");
  if (list != doc.end() && !list->is_null()) {
    if (!list->is_array()) return confError(source, "cniVersions", "must be an array of strings");
    std::string best;
    for (const Json& v : *list) {
      if (!v.is_string()) return confError(source, "cniVersions", "must be an array of strings");
      std::string s = v.get<std::string>();
      if (isSupportedVersion(s) && (best.empty() || compareVersions(s, best) > 0)) best = s;
    }
    if (!best.empty()) return best;
  }
  auto v = doc.find("cniVersion");
  if (v == doc.end() || v->is_null()) {
    return confError(source, "cniVersion", "is required (e.g. \"1.0.0\")");
  }
  if (!v->is_string()) return confError(source, "cniVersion", "must be a string");
  std::string version = v->get<std::string>();
  if (!isSupportedVersion(version)) {
    return confError(source, "cniVersion",
                     strCat("\"", version, "\" is not supported; use one of ",
                            joinStrings(supportedVersions(), ", ")));
  }
  return version;
}

StatusOr<PluginConf> parsePlugin(const Json& j, std::string_view source, const std::string& path) {
  if (!j.is_object()) return confError(source, path, "must be an object");
  PluginConf p;
  p.raw = j;
  auto type = j.find("type");
  if (type == j.end() || !type->is_string() || type->get<std::string>().empty()) {
    return confError(source, path + ".type", "is required: the plugin binary's name (e.g. \"bridge\")");
  }
  p.type = type->get<std::string>();
  if (p.type.find('/') != std::string::npos || p.type == "." || p.type == "..") {
    return confError(source, path + ".type",
                     strCat("\"", p.type, "\" must be a plain binary name, not a path"));
  }
  auto caps = j.find("capabilities");
  if (caps != j.end() && !caps->is_null()) {
    if (!caps->is_object()) {
      return confError(source, path + ".capabilities", "must be an object of booleans");
    }
    for (auto it = caps->begin(); it != caps->end(); ++it) {
      if (!it.value().is_boolean()) {
        return confError(source, strCat(path, ".capabilities.", it.key()), "must be a boolean");
      }
      p.capabilities[it.key()] = it.value().get<bool>();
    }
  }
  return p;
}

}  // namespace

StatusOr<NetworkConfList> parseConfList(std::string_view bytes, std::string_view source,
                                        bool is_list) {
  ASSIGN_OR_RETURN(Json doc, json::parse(bytes, strCat("network config ", source)));
  if (!doc.is_object()) return invalidArgument("network config ", source, ": must be a JSON object");
  NetworkConfList list;
  list.source = std::string(source);
  list.bytes = std::string(bytes);
  ASSIGN_OR_RETURN(list.cni_version, pickVersion(doc, source));
  auto name = doc.find("name");
  if (name == doc.end() || !name->is_string() || name->get<std::string>().empty()) {
    return confError(source, "name", "is required: the network's name");
  }
  list.name = name->get<std::string>();
  if (!validNetworkName(list.name)) {
    return confError(source, "name",
                     strCat("\"", list.name,
                            "\" is invalid; use letters, digits, '_', '.' and '-', starting "
                            "with a letter or digit"));
  }
  if (!is_list) {
    // A single plugin configuration: the whole document is the plugin.
    ASSIGN_OR_RETURN(PluginConf p, parsePlugin(doc, source, "plugin"));
    p.raw.erase("cniVersion");
    p.raw.erase("cniVersions");
    p.raw.erase("name");
    list.plugins.push_back(std::move(p));
    // Kept in list form, as libcni's ConfListFromConf does, so a cached copy always
    // parses as a list.
    Json wrapped = Json::object();
    wrapped["cniVersion"] = list.cni_version;
    wrapped["name"] = list.name;
    wrapped["plugins"] = Json::array({list.plugins.front().raw});
    list.bytes = json::dump(wrapped);
    return list;
  }
  ASSIGN_OR_RETURN(list.disable_check, optBool(doc, "disableCheck", source));
  ASSIGN_OR_RETURN(list.disable_gc, optBool(doc, "disableGC", source));
  auto plugins = doc.find("plugins");
  if (plugins == doc.end() || !plugins->is_array() || plugins->empty()) {
    return confError(source, "plugins", "must be a non-empty array of plugin objects");
  }
  for (size_t i = 0; i < plugins->size(); ++i) {
    ASSIGN_OR_RETURN(PluginConf p, parsePlugin((*plugins)[i], source, strCat("plugins[", i, "]")));
    list.plugins.push_back(std::move(p));
  }
  return list;
}

StatusOr<NetworkConfList> loadConfFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string bytes, fs::readFile(path));
  bool is_list = endsWith(path, ".conflist");
  if (!is_list) {
    // *.conf / *.json holding a list are accepted as lists.
    auto doc = json::parse(bytes, path);
    if (doc.ok() && doc->is_object() && doc->contains("plugins") && !doc->contains("type")) {
      is_list = true;
    }
  }
  return parseConfList(bytes, path, is_list);
}

StatusOr<std::vector<std::string>> confFiles(const std::string& dir) {
  std::vector<std::string> out;
  auto names = fs::listDir(dir);
  if (!names.ok()) {
    if (absl::IsNotFound(names.status())) return out;
    return withContext(names.status(), strCat("list CNI config dir ", dir));
  }
  for (const std::string& name : *names) {
    if (!endsWith(name, ".conflist") && !endsWith(name, ".conf") && !endsWith(name, ".json")) {
      continue;
    }
    std::string path = fs::join(dir, name);
    struct stat st;
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    out.push_back(path);
  }
  std::sort(out.begin(), out.end());
  return out;
}

StatusOr<NetworkConfList> loadFirstConfList(const std::string& dir) {
  ASSIGN_OR_RETURN(std::vector<std::string> files, confFiles(dir));
  if (files.empty()) return notFound("no network config found in ", dir);
  return loadConfFile(files.front());
}

}  // namespace berth::cni
