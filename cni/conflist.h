// CNI network configuration lists (SPEC.md "Section 1: Network configuration format")
// and how a runtime finds them: like libcni's ConfFiles + LoadConfList, the files named
// *.conflist, *.conf and *.json in the configuration directory are sorted by name and
// the lexically first one is the network. A single-plugin file (*.conf / *.json with a
// top-level "type" and no "plugins") is wrapped into a one-plugin list.
//
// Thread-safety: pure functions on values; the loaders read the filesystem only.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace berth::cni {

// One entry of "plugins".
struct PluginConf {
  std::string type;                         // binary name, looked up in the bin dirs
  std::map<std::string, bool> capabilities;  // "capabilities": {"portMappings": true}
  json::Json raw;                           // the plugin object as written
  // True if the plugin declares `capability` with value true.
  bool wants(const std::string& capability) const {
    auto it = capabilities.find(capability);
    return it != capabilities.end() && it->second;
  }
};

struct NetworkConfList {
  std::string cni_version;  // the version plugins are called with (see cniVersions)
  std::string name;
  bool disable_check = false;
  bool disable_gc = false;
  std::vector<PluginConf> plugins;
  std::string source;  // the file it came from ("" when parsed from memory)
  std::string bytes;   // the list as JSON (a single-plugin file wrapped), cached for DEL
};

// Parses a configuration list (`is_list` true) or a single-plugin configuration that is
// wrapped into a list. `source` names the document in errors. Validation (every error
// names the source and the key): "cniVersion" present and supported (or, for 1.1
// lists, the highest supported entry of "cniVersions"), "name" present and matching
// [a-zA-Z0-9][a-zA-Z0-9_.-]*, "plugins" a non-empty array of objects each with a
// "type" string without '/', "capabilities" an object of booleans, "disableCheck" /
// "disableGC" booleans (or the strings "true"/"false", as libcni accepts).
StatusOr<NetworkConfList> parseConfList(std::string_view bytes, std::string_view source,
                                        bool is_list);

// Reads and parses one file: *.conflist is a list; *.conf and *.json are lists when
// they hold "plugins", else single-plugin configurations. Errors: the read error, or a
// parse/validation error naming the file.
StatusOr<NetworkConfList> loadConfFile(const std::string& path);

// The configuration files in `dir` (names ending in .conflist, .conf or .json, regular
// files or symlinks to them), as full paths sorted by name. A missing directory gives
// an empty list. Errors: the directory exists but cannot be read.
StatusOr<std::vector<std::string>> confFiles(const std::string& dir);

// Loads the lexically first configuration file of `dir`. Errors: NotFound "no network
// config found in <dir>" when there is none; otherwise loadConfFile's errors.
StatusOr<NetworkConfList> loadFirstConfList(const std::string& dir);

}  // namespace berth::cni
