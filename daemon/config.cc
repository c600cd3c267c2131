#include "daemon/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <map>
#include <toml++/toml.h>
#include <variant>

#include "common/fs.h"
#include "common/log.h"

namespace berth::daemon {
namespace {

// A config value as read from a file: a string or a list of strings.
using Value = std::variant<std::string, std::vector<std::string>>;

struct Key {
  const char* name;
  bool list;
};

constexpr Key kKeys[] = {
    {"root", false},          {"state", false},         {"listen", false},
    {"cni-conf-dir", false},  {"cni-bin-dir", true},    {"cgroup-driver", false},
    {"log-level", false},     {"registries-conf", false}, {"registry-certs-dir", false},
    {"runtime", false},       {"pod-cidr", true},       {"pod-cidr-file", false},
    {"node-route", true},
};

std::string canonicalKey(std::string key) {
  std::replace(key.begin(), key.end(), '_', '-');
  return key;
}

std::string acceptedKeys() {
  std::vector<std::string> names;
  for (const Key& k : kKeys) names.emplace_back(k.name);
  return joinStrings(names, ", ");
}

const Key* findKey(const std::string& name) {
  for (const Key& k : kKeys) {
    if (name == k.name) return &k;
  }
  return nullptr;
}

bool endsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

StatusOr<std::map<std::string, Value>> readToml(const std::string& path) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return invalidArgument(path, ":", e.source().begin.line, ":", e.source().begin.column, ": ",
                           std::string(e.description()));
  }
  std::map<std::string, Value> out;
  for (const auto& [raw_key, node] : table) {
    std::string key = canonicalKey(std::string(raw_key.str()));
    if (const auto* s = node.as_string()) {
      out[key] = s->get();
    } else if (const auto* arr = node.as_array()) {
      std::vector<std::string> list;
      for (const auto& item : *arr) {
        const auto* str = item.as_string();
        if (str == nullptr) {
          return invalidArgument(path, ":", node.source().begin.line, ": \"",
                                 std::string(raw_key.str()), "\" must be a list of strings");
        }
        list.push_back(str->get());
      }
      out[key] = list;
    } else {
      return invalidArgument(path, ":", node.source().begin.line, ": \"",
                             std::string(raw_key.str()), "\" must be a string or a list of strings");
    }
  }
  return out;
}

StatusOr<std::map<std::string, Value>> readYaml(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    return invalidArgument(path, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg);
  }
  std::map<std::string, Value> out;
  if (root.IsNull()) return out;
  if (!root.IsMap()) return invalidArgument(path, ": the top level must be a mapping of keys");
  for (const auto& entry : root) {
    std::string raw = entry.first.as<std::string>();
    std::string key = canonicalKey(raw);
    const YAML::Node& v = entry.second;
    int line = v.Mark().line + 1;
    if (v.IsScalar()) {
      out[key] = v.as<std::string>();
    } else if (v.IsSequence()) {
      std::vector<std::string> list;
      for (const auto& item : v) {
        if (!item.IsScalar()) {
          return invalidArgument(path, ":", line, ": \"", raw, "\" must be a list of strings");
        }
        list.push_back(item.as<std::string>());
      }
      out[key] = list;
    } else {
      return invalidArgument(path, ":", line, ": \"", raw,
                             "\" must be a string or a list of strings");
    }
  }
  return out;
}

std::string* stringField(Config& c, const std::string& key) {
  if (key == "root") return &c.root;
  if (key == "state") return &c.state;
  if (key == "listen") return &c.listen;
  if (key == "cni-conf-dir") return &c.cni_conf_dir;
  if (key == "log-level") return &c.log_level;
  if (key == "registries-conf") return &c.registries_conf;
  if (key == "registry-certs-dir") return &c.registry_certs_dir;
  if (key == "runtime") return &c.runtime;
  if (key == "pod-cidr-file") return &c.pod_cidr_file;
  return nullptr;
}

std::vector<std::string>* listField(Config& c, const std::string& key) {
  if (key == "cni-bin-dir") return &c.cni_bin_dirs;
  if (key == "pod-cidr") return &c.pod_cidrs;
  if (key == "node-route") return &c.node_routes;
  return nullptr;
}

}  // namespace

const char* cgroupDriverName(CgroupDriver driver) {
  return driver == CgroupDriver::kSystemd ? "systemd" : "cgroupfs";
}

StatusOr<CgroupDriver> parseCgroupDriver(const std::string& text) {
  if (text == "cgroupfs") return CgroupDriver::kCgroupfs;
  if (text == "systemd") return CgroupDriver::kSystemd;
  return invalidArgument("cgroup driver \"", text, "\" is unknown; use cgroupfs or systemd");
}

Status applyConfigFile(const std::string& path, const std::vector<std::string>& set_by_flags,
                       Config& config) {
  if (!fs::exists(path)) {
    return notFound("config file \"", path, "\" does not exist; check --config");
  }
  StatusOr<std::map<std::string, Value>> values;
  if (endsWith(path, ".toml")) {
    values = readToml(path);
  } else if (endsWith(path, ".yaml") || endsWith(path, ".yml")) {
    values = readYaml(path);
  } else {
    return invalidArgument("config file \"", path,
                           "\": unknown format; name it *.toml, *.yaml or *.yml");
  }
  RETURN_IF_ERROR(values.status());
  for (const auto& [key, value] : *values) {
    const Key* known = findKey(key);
    if (known == nullptr) {
      return invalidArgument("config file \"", path, "\": unknown key \"", key,
                             "\"; accepted keys: ", acceptedKeys());
    }
    if (std::find(set_by_flags.begin(), set_by_flags.end(), key) != set_by_flags.end()) {
      continue;  // the command line wins
    }
    if (known->list) {
      std::vector<std::string>& field = *listField(config, key);
      if (const auto* list = std::get_if<std::vector<std::string>>(&value)) {
        field = *list;
      } else {
        field = {std::get<std::string>(value)};
      }
      continue;
    }
    const auto* text = std::get_if<std::string>(&value);
    if (text == nullptr) {
      return invalidArgument("config file \"", path, "\": \"", key, "\" takes one value, not a list");
    }
    if (key == "cgroup-driver") {
      ASSIGN_OR_RETURN(config.cgroup_driver,
                       withContext(parseCgroupDriver(*text), strCat("config file \"", path, "\"")));
      continue;
    }
    *stringField(config, key) = *text;
  }
  config.config_file = path;
  return absl::OkStatus();
}

Status finalize(Config& config) {
  if (config.listen.empty()) config.listen = fs::join(config.state, "berth.sock");
  if (config.pod_cidr_file.empty()) config.pod_cidr_file = fs::join(config.state, "pod-cidr");
  struct PathKey {
    const char* name;
    const std::string* value;
  };
  const PathKey paths[] = {{"root", &config.root},
                           {"state", &config.state},
                           {"listen", &config.listen},
                           {"cni-conf-dir", &config.cni_conf_dir},
                           {"pod-cidr-file", &config.pod_cidr_file},
                           {"registry-certs-dir", &config.registry_certs_dir}};
  for (const PathKey& p : paths) {
    if (p.value->empty() || (*p.value)[0] != '/') {
      return invalidArgument(p.name, " \"", *p.value, "\" must be an absolute path");
    }
  }
  if (config.cni_bin_dirs.empty()) {
    return invalidArgument("cni-bin-dir: give at least one directory");
  }
  for (const std::string& dir : config.cni_bin_dirs) {
    if (dir.empty() || dir[0] != '/') {
      return invalidArgument("cni-bin-dir \"", dir, "\" must be an absolute path");
    }
  }
  RETURN_IF_ERROR_CTX(log::parseLevel(config.log_level).status(), "log-level");
  if (config.root == config.state) {
    return invalidArgument("root and state are both \"", config.root,
                           "\"; give them different directories");
  }
  return absl::OkStatus();
}

}  // namespace berth::daemon
