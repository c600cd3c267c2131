#include "runtime/image/registries_conf.h"

#include <algorithm>
#include <optional>
#include <set>
#include <string_view>

#include <toml++/toml.h>

#include "common/fs.h"
#include "common/strings.h"

namespace berth::image {
namespace {

// "<file>:<line>:<col>" for messages.
std::string where(const std::string& file, const toml::source_region& src) {
  std::string name = file.empty() ? std::string("registries.conf") : file;
  if (src.begin.line == 0) return name;
  return strCat(name, ":", static_cast<unsigned>(src.begin.line), ":",
                static_cast<unsigned>(src.begin.column));
}

const char* typeName(toml::node_type type) {
  switch (type) {
    case toml::node_type::table: return "table";
    case toml::node_type::array: return "array";
    case toml::node_type::string: return "string";
    case toml::node_type::integer: return "integer";
    case toml::node_type::floating_point: return "float";
    case toml::node_type::boolean: return "boolean";
    case toml::node_type::date: return "date";
    case toml::node_type::time: return "time";
    case toml::node_type::date_time: return "date-time";
    default: return "nothing";
  }
}

// Reads keys of one TOML table with typed getters; errors name file, position and the
// key path ("[[registry]] #2 insecure").
class TableReader {
 public:
  TableReader(const std::string& file, const toml::table& table, std::string context)
      : file_(file), table_(table), context_(std::move(context)) {}

  Status typeError(const toml::node& node, std::string_view key, std::string_view want) {
    return invalidArgument(where(file_, node.source()), ": ", context_, key, ": expected ",
                           want, ", got ", typeName(node.type()));
  }

  StatusOr<std::optional<bool>> getBool(std::string_view key) {
    seen_.insert(std::string(key));
    const toml::node* node = table_.get(key);
    if (node == nullptr) return std::optional<bool>();
    if (!node->is_boolean()) return typeError(*node, key, "a boolean (true or false)");
    return std::optional<bool>(node->as_boolean()->get());
  }

  StatusOr<std::optional<std::string>> getString(std::string_view key) {
    seen_.insert(std::string(key));
    const toml::node* node = table_.get(key);
    if (node == nullptr) return std::optional<std::string>();
    if (!node->is_string()) return typeError(*node, key, "a string");
    return std::optional<std::string>(node->as_string()->get());
  }

  StatusOr<std::vector<std::string>> getStringArray(std::string_view key) {
    seen_.insert(std::string(key));
    std::vector<std::string> out;
    const toml::node* node = table_.get(key);
    if (node == nullptr) return out;
    if (!node->is_array()) return typeError(*node, key, "an array of strings");
    for (const toml::node& el : *node->as_array()) {
      if (!el.is_string()) return typeError(el, strCat(key, " element"), "a string");
      out.push_back(el.as_string()->get());
    }
    return out;
  }

  // The array of tables at `key` (for [[registry]] / [[registry.mirror]]).
  StatusOr<std::vector<const toml::table*>> getTableArray(std::string_view key) {
    seen_.insert(std::string(key));
    std::vector<const toml::table*> out;
    const toml::node* node = table_.get(key);
    if (node == nullptr) return out;
    if (!node->is_array()) return typeError(*node, key, strCat("[[", key, "]] tables"));
    for (const toml::node& el : *node->as_array()) {
      if (!el.is_table()) return typeError(el, strCat(key, " element"), "a table");
      out.push_back(el.as_table());
    }
    return out;
  }

  // Keys that no getter asked for, as warnings.
  void reportUnknown(std::vector<std::string>& warnings) const {
    for (const auto& [key, node] : table_) {
      if (seen_.count(std::string(key.str())) != 0) continue;
      warnings.push_back(strCat(where(file_, key.source()), ": ", context_, "unknown key \"",
                                key.str(), "\" ignored"));
    }
  }

  void markSeen(std::string_view key) { seen_.insert(std::string(key)); }

 private:
  const std::string& file_;
  const toml::table& table_;
  std::string context_;
  std::set<std::string> seen_;
};

// Validates a prefix/location value the way containers/image does: no URI scheme,
// trailing slashes dropped.
StatusOr<std::string> parseLocation(const std::string& value, const std::string& pos,
                                    std::string_view what) {
  std::string out = value;
  while (!out.empty() && out.back() == '/') out.pop_back();
  if (out.find("://") != std::string::npos) {
    return invalidArgument(pos, ": ", what, " \"", value,
                           "\": URI schemes are not supported; write host[:port][/path] "
                           "and set insecure = true for plain HTTP");
  }
  return out;
}

bool isWildcard(std::string_view prefix) { return prefix.rfind("*.", 0) == 0; }

Status validateWildcard(const std::string& prefix, const std::string& pos) {
  std::string_view rest = std::string_view(prefix).substr(2);
  if (rest.empty() || rest.find('*') != std::string_view::npos ||
      rest.find('/') != std::string_view::npos || rest.find(':') != std::string_view::npos) {
    return invalidArgument(pos, ": prefix \"", prefix,
                           "\": a wildcard prefix must be a host name like "
                           "\"*.example.com\" (no path, port or second '*')");
  }
  return absl::OkStatus();
}

StatusOr<PullFromMirror> parsePullFromMirror(const std::string& value, const std::string& pos) {
  if (value.empty() || value == "all") return PullFromMirror::kAll;
  if (value == "digest-only") return PullFromMirror::kDigestOnly;
  if (value == "tag-only") return PullFromMirror::kTagOnly;
  return invalidArgument(pos, ": pull-from-mirror \"", value,
                         "\" is not valid; use one of all, digest-only, tag-only");
}

StatusOr<RegistryMirror> parseMirror(const std::string& file, const toml::table& table,
                                     const std::string& context, bool digest_only_registry,
                                     std::vector<std::string>& warnings) {
  TableReader reader(file, table, context);
  std::string pos = where(file, table.source());
  RegistryMirror mirror;
  ASSIGN_OR_RETURN(auto location, reader.getString("location"));
  if (!location || location->empty()) {
    return invalidArgument(pos, ": ", context, "location is required");
  }
  ASSIGN_OR_RETURN(mirror.location, parseLocation(*location, pos, "mirror location"));
  ASSIGN_OR_RETURN(auto insecure, reader.getBool("insecure"));
  mirror.insecure = insecure.value_or(false);
  ASSIGN_OR_RETURN(auto pull_from, reader.getString("pull-from-mirror"));
  if (pull_from && !pull_from->empty()) {
    if (digest_only_registry) {
      return invalidArgument(pos, ": ", context, "pull-from-mirror = \"", *pull_from,
                             "\" cannot be combined with mirror-by-digest-only = true on "
                             "the registry; remove one of them");
    }
    ASSIGN_OR_RETURN(mirror.pull_from_mirror, parsePullFromMirror(*pull_from, pos));
  }
  reader.reportUnknown(warnings);
  return mirror;
}

StatusOr<RegistryEntry> parseRegistry(const std::string& file, const toml::table& table,
                                      int index, std::vector<std::string>& warnings) {
  std::string context = strCat("[[registry]] #", index, " ");
  TableReader reader(file, table, context);
  std::string pos = where(file, table.source());
  RegistryEntry entry;
  entry.line = static_cast<int>(table.source().begin.line);
  ASSIGN_OR_RETURN(auto location, reader.getString("location"));
  ASSIGN_OR_RETURN(auto prefix, reader.getString("prefix"));
  if (location) {
    ASSIGN_OR_RETURN(entry.location, parseLocation(*location, pos, "location"));
  }
  if (prefix && !prefix->empty()) {
    ASSIGN_OR_RETURN(entry.prefix, parseLocation(*prefix, pos, "prefix"));
  } else {
    if (entry.location.empty()) {
      return invalidArgument(pos, ": ", context,
                             "sets neither prefix nor location; set at least one");
    }
    entry.prefix = entry.location;
  }
  if (isWildcard(entry.prefix)) {
    RETURN_IF_ERROR(validateWildcard(entry.prefix, pos));
  } else if (entry.prefix.find('*') != std::string::npos) {
    return invalidArgument(pos, ": prefix \"", entry.prefix,
                           "\": '*' is only allowed as a leading \"*.\" of a host name");
  } else if (entry.location.empty()) {
    // containers/image: an empty location with a literal prefix means "same place".
    entry.location = entry.prefix;
  }
  if (entry.location.find('*') != std::string::npos) {
    return invalidArgument(pos, ": location \"", entry.location,
                           "\": wildcards are only allowed in prefix");
  }
  ASSIGN_OR_RETURN(auto insecure, reader.getBool("insecure"));
  ASSIGN_OR_RETURN(auto blocked, reader.getBool("blocked"));
  ASSIGN_OR_RETURN(auto digest_only, reader.getBool("mirror-by-digest-only"));
  entry.insecure = insecure.value_or(false);
  entry.blocked = blocked.value_or(false);
  entry.mirror_by_digest_only = digest_only.value_or(false);
  ASSIGN_OR_RETURN(auto mirrors, reader.getTableArray("mirror"));
  int mirror_index = 0;
  for (const toml::table* mirror_table : mirrors) {
    ++mirror_index;
    ASSIGN_OR_RETURN(RegistryMirror mirror,
                     parseMirror(file, *mirror_table,
                                 strCat(context, "[[registry.mirror]] #", mirror_index, " "),
                                 entry.mirror_by_digest_only, warnings));
    entry.mirrors.push_back(std::move(mirror));
  }
  reader.reportUnknown(warnings);
  return entry;
}

// Adds or updates the v1-translated entry for `name`.
RegistryEntry& v1Entry(RegistriesConf& conf, const std::string& name) {
  for (RegistryEntry& entry : conf.registries) {
    if (entry.prefix == name) return entry;
  }
  RegistryEntry entry;
  entry.prefix = name;
  entry.location = name;
  conf.registries.push_back(std::move(entry));
  return conf.registries.back();
}

Status parseV1(const std::string& file, const toml::table& registries, RegistriesConf& conf) {
  conf.version = 1;
  TableReader top(file, registries, "[registries] ");
  for (const char* list : {"search", "insecure", "block"}) {
    top.markSeen(list);
    const toml::node* node = registries.get(list);
    if (node == nullptr) continue;
    if (!node->is_table()) return top.typeError(*node, list, "a table");
    TableReader reader(file, *node->as_table(), strCat("[registries.", list, "] "));
    ASSIGN_OR_RETURN(std::vector<std::string> names, reader.getStringArray("registries"));
    reader.reportUnknown(conf.warnings);
    std::string pos = where(file, node->source());
    for (const std::string& raw : names) {
      ASSIGN_OR_RETURN(std::string name, parseLocation(raw, pos, "registry"));
      if (std::string_view(list) == "search") {
        conf.unqualified_search_registries.push_back(name);
      } else if (std::string_view(list) == "insecure") {
        v1Entry(conf, name).insecure = true;
      } else {
        v1Entry(conf, name).blocked = true;
      }
    }
  }
  top.reportUnknown(conf.warnings);
  return absl::OkStatus();
}

// The length of `ref` matched by `prefix`, or -1. See pullSources() for the rules.
int matchLength(std::string_view ref, std::string_view prefix) {
  if (isWildcard(prefix)) {
    std::string_view suffix = prefix.substr(1);  // ".example.com"
    size_t host_end = ref.find('/');
    std::string_view host = ref.substr(0, host_end);
    std::string_view hostname = host.substr(0, host.find(':'));
    if (hostname.size() <= suffix.size()) return -1;
    if (hostname.substr(hostname.size() - suffix.size()) != suffix) return -1;
    return static_cast<int>(hostname.size());
  }
  if (ref.size() < prefix.size() || ref.substr(0, prefix.size()) != prefix) return -1;
  if (ref.size() == prefix.size()) return static_cast<int>(prefix.size());
  char next = ref[prefix.size()];
  bool prefix_has_path = prefix.find('/') != std::string_view::npos;
  // A ':' after a host-only prefix starts a port, i.e. a different registry.
  if (next == '/' || next == '@' || (next == ':' && prefix_has_path)) {
    return static_cast<int>(prefix.size());
  }
  return -1;
}

std::string registryOf(std::string_view reference) {
  return std::string(reference.substr(0, reference.find('/')));
}

}  // namespace

const char* pullFromMirrorName(PullFromMirror mode) {
  switch (mode) {
    case PullFromMirror::kAll: return "all";
    case PullFromMirror::kDigestOnly: return "digest-only";
    case PullFromMirror::kTagOnly: return "tag-only";
  }
  return "all";
}

StatusOr<RegistriesConf> parseRegistriesConf(const std::string& text,
                                             const std::string& source_path) {
  RegistriesConf conf;
  conf.source_path = source_path;
  toml::table root;
  try {
    root = toml::parse(text, source_path);
  } catch (const toml::parse_error& e) {
    return invalidArgument(where(source_path, e.source()), ": invalid TOML: ",
                           std::string(e.description()));
  }
  TableReader reader(source_path, root, "");
  const toml::node* v1 = root.get("registries");
  if (v1 != nullptr && v1->is_table()) {
    for (const char* key : {"registry", "unqualified-search-registries", "short-name-mode",
                            "aliases"}) {
      if (root.contains(key)) {
        return invalidArgument(where(source_path, v1->source()),
                               ": mixing the version 1 [registries.*] tables with the "
                               "version 2 key \"",
                               key, "\" is not supported; convert the file to version 2");
      }
    }
    reader.markSeen("registries");
    RETURN_IF_ERROR(parseV1(source_path, *v1->as_table(), conf));
    reader.reportUnknown(conf.warnings);
    return conf;
  }

  ASSIGN_OR_RETURN(conf.unqualified_search_registries,
                   reader.getStringArray("unqualified-search-registries"));
  for (std::string& name : conf.unqualified_search_registries) {
    ASSIGN_OR_RETURN(name, parseLocation(name, where(source_path, root.source()),
                                         "unqualified-search-registries entry"));
  }
  ASSIGN_OR_RETURN(auto mode, reader.getString("short-name-mode"));
  if (mode) {
    if (*mode != "enforcing" && *mode != "permissive" && *mode != "disabled" &&
        !mode->empty()) {
      return invalidArgument(where(source_path, root.get("short-name-mode")->source()),
                             ": short-name-mode \"", *mode,
                             "\" is not valid; use one of enforcing, permissive, disabled");
    }
    conf.short_name_mode = *mode;
  }
  reader.markSeen("aliases");
  if (const toml::node* aliases = root.get("aliases")) {
    if (!aliases->is_table()) return reader.typeError(*aliases, "aliases", "a table");
    for (const auto& [key, value] : *aliases->as_table()) {
      if (!value.is_string()) {
        return TableReader(source_path, *aliases->as_table(), "[aliases] ")
            .typeError(value, key.str(), "a string");
      }
      conf.aliases[std::string(key.str())] = value.as_string()->get();
    }
  }
  ASSIGN_OR_RETURN(auto tables, reader.getTableArray("registry"));
  std::map<std::string, int> prefixes;  // prefix -> line
  int index = 0;
  for (const toml::table* table : tables) {
    ++index;
    ASSIGN_OR_RETURN(RegistryEntry entry,
                     parseRegistry(source_path, *table, index, conf.warnings));
    auto [it, inserted] = prefixes.emplace(entry.prefix, entry.line);
    if (!inserted) {
      return invalidArgument(where(source_path, table->source()), ": prefix \"", entry.prefix,
                             "\" is already defined by the [[registry]] at line ", it->second,
                             "; merge the two tables");
    }
    conf.registries.push_back(std::move(entry));
  }
  reader.reportUnknown(conf.warnings);
  return conf;
}

StatusOr<RegistriesConf> loadRegistriesConf(const std::string& path) {
  StatusOr<std::string> text = fs::readFile(path);
  if (!text.ok()) {
    if (text.status().code() == absl::StatusCode::kNotFound) {
      RegistriesConf empty;
      return empty;
    }
    return withContext(text.status(), "read registries configuration");
  }
  return parseRegistriesConf(*text, path);
}

StatusOr<std::vector<PullSource>> pullSources(const RegistriesConf& conf,
                                              const std::string& normalized_reference) {
  const std::string& ref = normalized_reference;
  size_t slash = ref.find('/');
  if (ref.empty() || slash == 0 || slash == std::string::npos) {
    return invalidArgument("image reference \"", ref,
                           "\" has no registry host; normalise it first (e.g. "
                           "docker.io/library/busybox:latest)");
  }
  const RegistryEntry* best = nullptr;
  int best_len = -1;
  for (const RegistryEntry& entry : conf.registries) {
    int len = matchLength(ref, entry.prefix);
    if (len < 0) continue;
    bool better = len > best_len ||
                  (len == best_len && best != nullptr && isWildcard(best->prefix) &&
                   !isWildcard(entry.prefix));
    if (better) {
      best = &entry;
      best_len = len;
    }
  }
  std::vector<PullSource> out;
  if (best == nullptr) {
    out.push_back(PullSource{ref, registryOf(ref), false, false});
    return out;
  }
  if (best->blocked) {
    std::string conf_name = conf.source_path.empty() ? "registries.conf" : conf.source_path;
    return absl::PermissionDeniedError(strCat("pull \"", ref, "\": registry ", best->prefix,
                                              " is blocked by ", conf_name));
  }
  std::string rest = ref.substr(static_cast<size_t>(best_len));
  bool by_digest = ref.find('@') != std::string::npos;
  auto rewrite = [&](const std::string& location) {
    return location.empty() ? ref : location + rest;
  };
  bool use_mirrors = !best->mirror_by_digest_only || by_digest;
  if (use_mirrors) {
    for (const RegistryMirror& mirror : best->mirrors) {
      if (mirror.pull_from_mirror == PullFromMirror::kDigestOnly && !by_digest) continue;
      if (mirror.pull_from_mirror == PullFromMirror::kTagOnly && by_digest) continue;
      std::string rewritten = rewrite(mirror.location);
      out.push_back(PullSource{rewritten, registryOf(rewritten), mirror.insecure, true});
    }
  }
  std::string primary = rewrite(best->location);
  out.push_back(PullSource{primary, registryOf(primary), best->insecure, false});
  return out;
}

StatusOr<TlsFiles> certsFor(const std::string& certs_dir, const std::string& host_port) {
  if (host_port.empty() || host_port.find('/') != std::string::npos || host_port == "." ||
      host_port == "..") {
    return invalidArgument("certs.d lookup: registry \"", host_port,
                           "\" is not a host[:port] name");
  }
  std::string dir = fs::join(certs_dir, host_port);
  TlsFiles files;
  StatusOr<std::vector<std::string>> names = fs::listDir(dir);
  if (!names.ok()) {
    if (names.status().code() == absl::StatusCode::kNotFound) return files;
    return withContext(names.status(), strCat("read certificates for registry ", host_port));
  }
  std::sort(names->begin(), names->end());
  std::set<std::string> present(names->begin(), names->end());
  auto endsWith = [](const std::string& s, std::string_view suffix) {
    return s.size() > suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(),
                                                 suffix.data(), suffix.size()) == 0;
  };
  for (const std::string& name : *names) {
    if (endsWith(name, ".crt")) {
      files.ca_files.push_back(fs::join(dir, name));
    } else if (endsWith(name, ".cert")) {
      std::string key = name.substr(0, name.size() - 5) + ".key";
      if (present.count(key) == 0) {
        return absl::FailedPreconditionError(strCat(
            "registry ", host_port, ": client certificate \"", fs::join(dir, name),
            "\" has no key \"", fs::join(dir, key),
            "\"; add the key, or rename a CA certificate to the .crt extension"));
      }
      files.client_certs.push_back({fs::join(dir, name), fs::join(dir, key)});
    } else if (endsWith(name, ".key")) {
      std::string cert = name.substr(0, name.size() - 4) + ".cert";
      if (present.count(cert) == 0) {
        return absl::FailedPreconditionError(
            strCat("registry ", host_port, ": client key \"", fs::join(dir, name),
                   "\" has no certificate \"", fs::join(dir, cert), "\"; add it or remove the key"));
      }
    }
  }
  return files;
}

}  // namespace berth::image
