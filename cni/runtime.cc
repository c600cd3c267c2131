#include "cni/runtime.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

#include "cni/cache.h"
#include "cni/netns.h"
#include "common/log.h"

namespace berth::cni {

namespace {

using json::Json;

constexpr char kNotReady[] = "NetworkPluginNotReady";

std::shared_ptr<spdlog::logger> logger() { return log::get("cni"); }

bool isOnOrAfter(const NetworkConfList& list, std::string_view version) {
  return compareVersions(list.cni_version, version) >= 0;
}

// names, sizes and mtimes of the candidate files: changes when any is added, removed
// or rewritten.
std::string dirFingerprint(const std::string& dir) {
  auto files = confFiles(dir);
  if (!files.ok()) return strCat("error:", files.status().message());
  std::string out;
  for (const std::string& path : *files) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) continue;
    out += strCat(path, ":", static_cast<long long>(st.st_size), ":",
                  static_cast<long long>(st.st_mtim.tv_sec), ".",
                  static_cast<long long>(st.st_mtim.tv_nsec), "\n");
  }
  return out;
}

Status validateIfname(const std::string& ifname) {
  if (ifname.empty() || ifname.size() > 15 || ifname == "." || ifname == ".." ||
      ifname.find_first_of("/: \t\n") != std::string::npos) {
    return invalidArgument("interface name \"", ifname,
                           "\" is invalid; use 1-15 characters without '/', ':' or spaces");
  }
  return Status();
}

Status validateContainerId(const std::string& id) {
  if (id.empty()) return invalidArgument("container id is required for a CNI attachment");
  bool ok = std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
  if (!ok) {
    return invalidArgument("container id \"", id,
                           "\" is invalid for CNI; use letters, digits, '_', '.' and '-'");
  }
  return Status();
}

std::vector<std::pair<std::string, std::string>> withIgnoreUnknown(
    const std::vector<std::pair<std::string, std::string>>& args) {
  std::vector<std::pair<std::string, std::string>> out;
  bool has = std::any_of(args.begin(), args.end(),
                         [](const auto& kv) { return kv.first == "IgnoreUnknown"; });
  if (!has) out.emplace_back("IgnoreUnknown", "1");
  out.insert(out.end(), args.begin(), args.end());
  return out;
}

// DEL and CHECK get prevResult from 0.4.0 on.
Json prevResultFor(const NetworkConfList& list, const Json& cached) {
  if (cached.is_null() || !isOnOrAfter(list, "0.4.0")) return Json();
  auto parsed = parseResult(cached, "cached result");
  if (!parsed.ok()) return Json();
  auto converted = resultToJson(*parsed, list.cni_version);
  return converted.ok() ? *converted : Json();
}

}  // namespace

StatusOr<std::string> buildCniArgs(const std::vector<std::pair<std::string, std::string>>& args) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : withIgnoreUnknown(args)) {
    if (k.empty() || k.find_first_of(";=") != std::string::npos ||
        v.find(';') != std::string::npos) {
      return invalidArgument("CNI_ARGS entry \"", k, "=", v,
                             "\" is invalid; keys must be non-empty without ';' or '=', values "
                             "without ';'");
    }
    parts.push_back(strCat(k, "=", v));
  }
  return joinStrings(parts, ";");
}

CapabilityArgs capabilityArgs(const AttachmentSpec& spec) {
  CapabilityArgs caps = spec.extra_capabilities;
  if (!spec.port_mappings.empty()) {
    Json list = Json::array();
    for (const PortMapping& pm : spec.port_mappings) {
      Json j = Json::object();
      j["hostPort"] = pm.host_port;
      j["containerPort"] = pm.container_port;
      std::string proto = pm.protocol.empty() ? "tcp" : pm.protocol;
      std::transform(proto.begin(), proto.end(), proto.begin(), ::tolower);
      j["protocol"] = proto;
      if (!pm.host_ip.empty()) j["hostIP"] = pm.host_ip;
      list.push_back(j);
    }
    caps["portMappings"] = list;
  }
  if (spec.bandwidth) {
    const Bandwidth& b = *spec.bandwidth;
    Json j = Json::object();
    if (b.ingress_rate) j["ingressRate"] = b.ingress_rate;
    if (b.ingress_burst) j["ingressBurst"] = b.ingress_burst;
    if (b.egress_rate) j["egressRate"] = b.egress_rate;
    if (b.egress_burst) j["egressBurst"] = b.egress_burst;
    if (!j.empty()) caps["bandwidth"] = j;
  }
  if (!spec.ips.empty()) caps["ips"] = spec.ips;
  return caps;
}

StatusOr<std::unique_ptr<CniRuntime>> CniRuntime::create(CniOptions options) {
  if (options.conf_dir.empty()) return invalidArgument("CNI conf dir must not be empty");
  if (options.bin_dirs.empty()) return invalidArgument("at least one CNI bin dir is required");
  if (options.cache_dir.empty()) return invalidArgument("CNI cache dir must not be empty");
  if (options.plugin_timeout.count() <= 0) {
    return invalidArgument("CNI plugin timeout must be positive");
  }
  return std::unique_ptr<CniRuntime>(new CniRuntime(std::move(options)));
}

StatusOr<NetworkConfList> CniRuntime::config() {
  std::lock_guard<std::mutex> lock(mu_);
  std::string fp = dirFingerprint(options_.conf_dir);
  if (!conf_ || fp != fingerprint_) {
    conf_ = loadFirstConfList(options_.conf_dir);
    fingerprint_ = fp;
    if (conf_->ok()) {
      logger()->info("loaded CNI network \"{}\" (cniVersion {}, {} plugins) from {}",
                     (*conf_)->name, (*conf_)->cni_version, (*conf_)->plugins.size(),
                     (*conf_)->source);
    } else {
      logger()->warn("no usable CNI network config: {}", std::string(conf_->status().message()));
    }
  }
  return *conf_;
}

StatusOr<std::vector<std::string>> CniRuntime::resolvePlugins(const NetworkConfList& list) const {
  std::vector<std::string> paths;
  for (const PluginConf& p : list.plugins) {
    ASSIGN_OR_RETURN(std::string path, findPlugin(p.type, options_.bin_dirs));
    paths.push_back(std::move(path));
  }
  return paths;
}

Status CniRuntime::delPlugins(const NetworkConfList& list, size_t count, const PluginEnv& env,
                              const CapabilityArgs& caps, const Json& prev_result) const {
  Status first;
  for (size_t i = count; i-- > 0;) {
    const PluginConf& p = list.plugins[i];
    auto path = findPlugin(p.type, options_.bin_dirs);
    if (!path.ok()) {
      if (first.ok()) first = path.status();
      continue;
    }
    Json conf = pluginStdinConfig(list, p, caps, prev_result);
    auto out = execPlugin(*path, p.type, env, json::dump(conf), options_.plugin_timeout);
    if (out.ok()) continue;
    if (cniErrorCode(out.status()) == kErrUnknownContainer) continue;
    logger()->warn("DEL of network \"{}\" for container {}: {}", list.name, env.container_id,
                   std::string(out.status().message()));
    if (first.ok()) first = out.status();
  }
  return first;
}

StatusOr<Result> CniRuntime::setUp(const AttachmentSpec& spec) {
  RETURN_IF_ERROR(validateContainerId(spec.container_id));
  RETURN_IF_ERROR(validateIfname(spec.ifname));
  if (spec.netns_path.empty()) {
    return invalidArgument("set up network for container ", spec.container_id,
                           ": the network namespace path is required");
  }
  if (::access(spec.netns_path.c_str(), F_OK) != 0) {
    return invalidArgument("set up network for container ", spec.container_id,
                           ": network namespace ", spec.netns_path, " does not exist");
  }
  auto loaded = config();
  if (!loaded.ok()) {
    return failedPrecondition("set up network for container ", spec.container_id, ": ",
                              loaded.status().message());
  }
  const NetworkConfList& list = *loaded;
  std::string context = strCat("set up network \"", list.name, "\" for container ", spec.container_id);
  ASSIGN_OR_RETURN(std::vector<std::string> paths, withContext(resolvePlugins(list), context));
  ASSIGN_OR_RETURN(std::string cni_args, withContext(buildCniArgs(spec.args), context));
  CapabilityArgs caps = capabilityArgs(spec);

  if (options_.set_loopback_up) {
    RETURN_IF_ERROR_CTX(runInNetns(spec.netns_path, [] { return setLinkUp("lo"); }),
                        strCat(context, ": set loopback up in ", spec.netns_path));
  }

  PluginEnv env{"ADD", spec.container_id, spec.netns_path, spec.ifname, cni_args,
                options_.bin_dirs};
  Json prev;
  std::optional<Result> last;
  for (size_t i = 0; i < list.plugins.size(); ++i) {
    const PluginConf& p = list.plugins[i];
    Json conf = pluginStdinConfig(list, p, caps, prev);
    auto out = execPlugin(paths[i], p.type, env, json::dump(conf), options_.plugin_timeout);
    Status failure;
    if (!out.ok()) {
      failure = out.status();
    } else if (out->result.is_null()) {
      failure = absl::UnknownError(strCat("CNI plugin \"", p.type,
                                          "\" ADD succeeded but printed no result"));
    } else {
      auto parsed = parseResult(out->result, strCat("result of CNI plugin \"", p.type, "\""));
      if (parsed.ok()) {
        auto converted = resultToJson(*parsed, list.cni_version);
        if (converted.ok()) {
          prev = std::move(*converted);
          last = std::move(*parsed);
          continue;
        }
        failure = converted.status();
      } else {
        failure = parsed.status();
      }
    }
    // Roll back: DEL what ran, the failing plugin included (DEL is idempotent).
    PluginEnv del_env = env;
    del_env.command = "DEL";
    Status undo = delPlugins(list, i + 1, del_env, caps, prevResultFor(list, prev));
    if (!undo.ok()) {
      logger()->warn("{}: rollback after failed ADD: {}", context, std::string(undo.message()));
    }
    return withContext(failure, context);
  }

  CachedAttachment entry;
  entry.container_id = spec.container_id;
  entry.ifname = spec.ifname;
  entry.network_name = list.name;
  entry.netns = spec.netns_path;
  entry.config = list.bytes;
  entry.cni_args = withIgnoreUnknown(spec.args);
  entry.capability_args = Json::object();
  for (const auto& [k, v] : caps) entry.capability_args[k] = v;
  entry.result = prev;
  Status cached = writeCache(options_.cache_dir, entry);
  if (!cached.ok()) {
    PluginEnv del_env = env;
    del_env.command = "DEL";
    (void)delPlugins(list, list.plugins.size(), del_env, caps, prevResultFor(list, prev));
    return withContext(cached, context);
  }
  Result result = std::move(*last);
  if (result.cni_version != list.cni_version) {
    auto reparsed = parseResult(prev, "converted result");
    if (reparsed.ok()) result = std::move(*reparsed);
  }
  return result;
}

Status CniRuntime::tearDown(const AttachmentSpec& spec) {
  RETURN_IF_ERROR(validateContainerId(spec.container_id));
  RETURN_IF_ERROR(validateIfname(spec.ifname));
  auto current = config();
  std::string current_name = current.ok() ? current->name : "";
  auto cached = findCache(options_.cache_dir, current_name, spec.container_id, spec.ifname);

  NetworkConfList list;
  std::string cni_args;
  CapabilityArgs caps;
  Json cached_result;
  if (cached.ok()) {
    const CachedAttachment& e = cached->second;
    auto parsed = parseConfList(e.config, strCat("cached config ", cached->first), true);
    if (!parsed.ok()) {
      return withContext(parsed.status(),
                         strCat("tear down network for container ", spec.container_id));
    }
    list = std::move(*parsed);
    ASSIGN_OR_RETURN(cni_args, buildCniArgs(e.cni_args));
    if (e.capability_args.is_object()) {
      for (auto it = e.capability_args.begin(); it != e.capability_args.end(); ++it) {
        caps[it.key()] = it.value();
      }
    }
    cached_result = e.result;
  } else if (current.ok()) {
    list = *current;
    ASSIGN_OR_RETURN(cni_args, buildCniArgs(spec.args));
    caps = capabilityArgs(spec);
  } else {
    logger()->info("tear down network for container {}: no cached result and no network "
                   "config; nothing to do", spec.container_id);
    return Status();
  }

  // A vanished namespace is left out of the environment (SPEC.md allows DEL without
  // CNI_NETNS): plugins then release what lives outside it (IPs, host rules).
  std::string netns = spec.netns_path;
  if (!netns.empty() && ::access(netns.c_str(), F_OK) != 0) netns.clear();
  PluginEnv env{"DEL", spec.container_id, netns, spec.ifname, cni_args, options_.bin_dirs};
  Status status = delPlugins(list, list.plugins.size(), env, caps,
                             prevResultFor(list, cached_result));
  if (!status.ok()) {
    return withContext(status, strCat("tear down network \"", list.name, "\" for container ",
                                      spec.container_id));
  }
  if (cached.ok() && ::unlink(cached->first.c_str()) != 0 && errno != ENOENT) {
    return lastErrnoError(strCat("remove CNI result cache ", cached->first));
  }
  return Status();
}

Status CniRuntime::check(const AttachmentSpec& spec) {
  RETURN_IF_ERROR(validateContainerId(spec.container_id));
  RETURN_IF_ERROR(validateIfname(spec.ifname));
  auto loaded = config();
  if (!loaded.ok()) {
    return failedPrecondition("check network of container ", spec.container_id, ": ",
                              loaded.status().message());
  }
  const NetworkConfList& list = *loaded;
  std::string context = strCat("check network \"", list.name, "\" of container ", spec.container_id);
  if (!isOnOrAfter(list, "0.4.0") || list.disable_check) return Status();
  auto cached = findCache(options_.cache_dir, list.name, spec.container_id, spec.ifname);
  if (!cached.ok()) return withContext(cached.status(), context);
  ASSIGN_OR_RETURN(std::vector<std::string> paths, withContext(resolvePlugins(list), context));
  const CachedAttachment& e = cached->second;
  ASSIGN_OR_RETURN(std::string cni_args, buildCniArgs(e.cni_args));
  CapabilityArgs caps;
  if (e.capability_args.is_object()) {
    for (auto it = e.capability_args.begin(); it != e.capability_args.end(); ++it) {
      caps[it.key()] = it.value();
    }
  }
  Json prev = prevResultFor(list, e.result);
  PluginEnv env{"CHECK", spec.container_id, spec.netns_path, spec.ifname, cni_args,
                options_.bin_dirs};
  for (size_t i = 0; i < list.plugins.size(); ++i) {
    const PluginConf& p = list.plugins[i];
    Json conf = pluginStdinConfig(list, p, caps, prev);
    auto out = execPlugin(paths[i], p.type, env, json::dump(conf), options_.plugin_timeout);
    if (!out.ok()) return withContext(out.status(), context);
  }
  return Status();
}

NetworkStatus CniRuntime::status() {
  NetworkStatus st;
  st.reason = kNotReady;
  auto loaded = config();
  if (!loaded.ok()) {
    st.message = std::string(loaded.status().message());
    return st;
  }
  const NetworkConfList& list = *loaded;
  auto paths = resolvePlugins(list);
  if (!paths.ok()) {
    st.message = strCat("network \"", list.name, "\" (", list.source, "): ",
                        paths.status().message());
    return st;
  }
  if (isOnOrAfter(list, "1.1.0")) {
    PluginEnv env{"STATUS", "", "", "", "", options_.bin_dirs};
    for (size_t i = 0; i < list.plugins.size(); ++i) {
      const PluginConf& p = list.plugins[i];
      Json conf = pluginStdinConfig(list, p, {}, Json());
      auto out = execPlugin((*paths)[i], p.type, env, json::dump(conf), options_.plugin_timeout);
      if (!out.ok()) {
        st.message = strCat("network \"", list.name, "\": ", out.status().message());
        return st;
      }
    }
  }
  st.ready = true;
  st.reason.clear();
  return st;
}

Status CniRuntime::gc(const std::vector<AttachmentKey>& valid) {
  auto loaded = config();
  auto isValid = [&](const std::string& id, const std::string& ifname) {
    return std::any_of(valid.begin(), valid.end(), [&](const AttachmentKey& k) {
      return k.container_id == id && k.ifname == ifname;
    });
  };
  Status first;
  // Stale cached attachments of any network: DEL them with what they were set up with.
  for (auto& [path, entry] : listCache(options_.cache_dir)) {
    if (isValid(entry.container_id, entry.ifname)) continue;
    AttachmentSpec spec;
    spec.container_id = entry.container_id;
    spec.ifname = entry.ifname;
    spec.netns_path = entry.netns;
    Status s = tearDown(spec);
    if (!s.ok()) {
      logger()->warn("gc: {}", std::string(s.message()));
      if (first.ok()) first = s;
    } else {
      logger()->info("gc: removed stale attachment {}/{}", entry.container_id, entry.ifname);
    }
  }
  if (!loaded.ok()) return first;
  const NetworkConfList& list = *loaded;
  if (!isOnOrAfter(list, "1.1.0") || list.disable_gc) return first;
  auto paths = resolvePlugins(list);
  if (!paths.ok()) return first.ok() ? paths.status() : first;
  Json attachments = Json::array();
  for (const AttachmentKey& k : valid) {
    attachments.push_back({{"containerID", k.container_id}, {"ifname", k.ifname}});
  }
  PluginEnv env{"GC", "", "", "", "", options_.bin_dirs};
  for (size_t i = 0; i < list.plugins.size(); ++i) {
    const PluginConf& p = list.plugins[i];
    Json conf = pluginStdinConfig(list, p, {}, Json());
    conf["cni.dev/valid-attachments"] = attachments;
    auto out = execPlugin((*paths)[i], p.type, env, json::dump(conf), options_.plugin_timeout);
    if (!out.ok() && first.ok()) {
      first = withContext(out.status(), strCat("gc network \"", list.name, "\""));
    }
  }
  return first;
}

}  // namespace berth::cni
