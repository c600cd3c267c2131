#include "daemon/config.h"

#include <yaml-cpp/yaml.h>

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
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
    {"node-route", true},     {"components", true},     {"kubeconfig", false},
    {"proxy-manifests", false}, {"proxy-mode", false},  {"cluster-cidr", true},
    {"node-name", false},     {"node-ip", true},        {"nodeport-addresses", true},
    {"proxy-healthz-address", false}, {"proxy-metrics-address", false},
    {"proxy-sync-period", false}, {"kubelet-root-dir", false}, {"csi-base-dir", false},
    {"csi-endpoint", false},
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
  if (key == "kubeconfig") return &c.kubeconfig;
  if (key == "proxy-manifests") return &c.proxy_manifests;
  if (key == "node-name") return &c.node_name;
  if (key == "proxy-healthz-address") return &c.proxy_healthz_address;
  if (key == "proxy-metrics-address") return &c.proxy_metrics_address;
  if (key == "kubelet-root-dir") return &c.kubelet_root_dir;
  if (key == "csi-base-dir") return &c.csi_base_dir;
  if (key == "csi-endpoint") return &c.csi_endpoint;
  return nullptr;
}

std::vector<std::string>* listField(Config& c, const std::string& key) {
  if (key == "cni-bin-dir") return &c.cni_bin_dirs;
  if (key == "pod-cidr") return &c.pod_cidrs;
  if (key == "node-route") return &c.node_routes;
  if (key == "components") return &c.components;
  if (key == "cluster-cidr") return &c.cluster_cidrs;
  if (key == "node-ip") return &c.node_ips;
  if (key == "nodeport-addresses") return &c.nodeport_addresses;
  return nullptr;
}

bool validIp(const std::string& text) {
  unsigned char buf[16];
  return inet_pton(AF_INET, text.c_str(), buf) == 1 || inet_pton(AF_INET6, text.c_str(), buf) == 1;
}

bool validCidr(const std::string& text) {
  size_t slash = text.find('/');
  if (slash == std::string::npos) return false;
  std::string ip = text.substr(0, slash), len = text.substr(slash + 1);
  if (len.empty() || len.size() > 3 || !std::all_of(len.begin(), len.end(), ::isdigit)) return false;
  int bits = std::atoi(len.c_str());
  unsigned char buf[16];
  if (inet_pton(AF_INET, ip.c_str(), buf) == 1) return bits <= 32;
  if (inet_pton(AF_INET6, ip.c_str(), buf) == 1) return bits <= 128;
  return false;
}

}  // namespace

StatusOr<int> parseSyncPeriod(const std::string& text) {
  std::string digits = text;
  if (!digits.empty() && digits.back() == 's') digits.pop_back();
  if (digits.empty() || digits.size() > 6 || !std::all_of(digits.begin(), digits.end(), ::isdigit) ||
      std::atoi(digits.c_str()) <= 0) {
    return invalidArgument("proxy-sync-period \"", text,
                           "\" must be a positive number of seconds (e.g. 30 or 30s)");
  }
  return std::atoi(digits.c_str());
}

const char* proxyModeName(ProxyMode mode) {
  switch (mode) {
    case ProxyMode::kNftables: return "nftables";
    case ProxyMode::kIptables: return "iptables";
    case ProxyMode::kOff: return "off";
  }
  return "off";
}

StatusOr<ProxyMode> parseProxyMode(const std::string& text) {
  if (text == "nftables") return ProxyMode::kNftables;
  if (text == "iptables") return ProxyMode::kIptables;
  if (text == "off") return ProxyMode::kOff;
  return invalidArgument("proxy mode \"", text, "\" is unknown; use nftables, iptables or off");
}

bool runs(const Config& config, const std::string& component) {
  return std::find(config.components.begin(), config.components.end(), component) !=
         config.components.end();
}

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
    if (key == "proxy-mode") {
      ASSIGN_OR_RETURN(config.proxy_mode,
                       withContext(parseProxyMode(*text), strCat("config file \"", path, "\"")));
      continue;
    }
    if (key == "proxy-sync-period") {
      ASSIGN_OR_RETURN(config.proxy_sync_period_s,
                       withContext(parseSyncPeriod(*text), strCat("config file \"", path, "\"")));
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
  if (config.csi_base_dir.empty()) config.csi_base_dir = fs::join(config.root, "volumes");
  if (config.csi_endpoint.rfind("unix://", 0) == 0) config.csi_endpoint.erase(0, 7);
  struct PathKey {
    const char* name;
    const std::string* value;
  };
  const PathKey paths[] = {{"root", &config.root},
                           {"state", &config.state},
                           {"listen", &config.listen},
                           {"cni-conf-dir", &config.cni_conf_dir},
                           {"pod-cidr-file", &config.pod_cidr_file},
                           {"registry-certs-dir", &config.registry_certs_dir},
                           {"kubelet-root-dir", &config.kubelet_root_dir},
                           {"csi-base-dir", &config.csi_base_dir}};
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
  static const char* kComponents[] = {"cri", "cni", "proxy", "csi"};
  for (const std::string& c : config.components) {
    if (std::find_if(std::begin(kComponents), std::end(kComponents),
                     [&](const char* k) { return c == k; }) == std::end(kComponents)) {
      return invalidArgument("components: \"", c, "\" is unknown; choose from cri, cni, proxy, csi");
    }
  }
  for (const std::string& cidr : config.cluster_cidrs) {
    if (!validCidr(cidr)) return invalidArgument("cluster-cidr \"", cidr, "\" is not a CIDR (like 10.244.0.0/16)");
  }
  for (const std::string& cidr : config.nodeport_addresses) {
    if (!validCidr(cidr)) {
      return invalidArgument("nodeport-addresses \"", cidr, "\" is not a CIDR (like 192.168.0.0/24)");
    }
  }
  for (const std::string& ip : config.node_ips) {
    if (!validIp(ip)) return invalidArgument("node-ip \"", ip, "\" is not an IP address");
  }
  if (!config.kubeconfig.empty() && config.kubeconfig[0] != '/') {
    return invalidArgument("kubeconfig \"", config.kubeconfig, "\" must be an absolute path");
  }
  if (!config.csi_endpoint.empty() && config.csi_endpoint[0] != '/') {
    return invalidArgument("csi-endpoint \"", config.csi_endpoint,
                           "\" must be an absolute socket path (unix:// prefix allowed)");
  }
  if (!config.proxy_manifests.empty() && config.proxy_manifests[0] != '/') {
    return invalidArgument("proxy-manifests \"", config.proxy_manifests, "\" must be an absolute path");
  }
  if (config.node_name.empty()) {
    char host[256] = {};
    if (::gethostname(host, sizeof(host) - 1) == 0) config.node_name = host;
    std::transform(config.node_name.begin(), config.node_name.end(), config.node_name.begin(), ::tolower);
  }
  if (config.proxy_sync_period_s <= 0) {
    return invalidArgument("proxy-sync-period must be a positive number of seconds");
  }
  if (config.root == config.state) {
    return invalidArgument("root and state are both \"", config.root,
                           "\"; give them different directories");
  }
  return absl::OkStatus();
}

}  // namespace berth::daemon
