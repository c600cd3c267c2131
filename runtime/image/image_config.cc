#include "runtime/image/image_config.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include "common/fs.h"
#include "common/json.h"
#include "runtime/image/reference.h"

namespace berth::image {
namespace {

using json::Json;

// --- JSON field readers (null counts as absent, as Docker writes "Env": null) -----

// {"80/tcp": {}, "53/udp": {}} -> keys.
StatusOr<std::set<std::string>> getKeySet(const Json& obj, const char* key) {
  std::set<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_object()) return invalidArgument("\"", key, "\" must be an object");
  for (auto& [k, v] : it->items()) out.insert(k);
  return out;
}

StatusOr<ContainerDefaults> parseDefaults(const Json& obj) {
  ContainerDefaults c;
  if (obj.is_null()) return c;
  if (!obj.is_object()) return invalidArgument("\"config\" must be an object");
  ASSIGN_OR_RETURN(c.user, json::optString(obj, "User"));
  ASSIGN_OR_RETURN(c.env, json::optStringArray(obj, "Env"));
  ASSIGN_OR_RETURN(c.entrypoint, json::optStringArray(obj, "Entrypoint"));
  ASSIGN_OR_RETURN(c.cmd, json::optStringArray(obj, "Cmd"));
  ASSIGN_OR_RETURN(c.workingDir, json::optString(obj, "WorkingDir"));
  ASSIGN_OR_RETURN(c.stopSignal, json::optString(obj, "StopSignal"));
  ASSIGN_OR_RETURN(c.labels, json::optStringMap(obj, "Labels"));
  ASSIGN_OR_RETURN(c.exposedPorts, getKeySet(obj, "ExposedPorts"));
  ASSIGN_OR_RETURN(c.volumes, getKeySet(obj, "Volumes"));
  return c;
}

StatusOr<ImageConfig> parseConfig(std::string_view bytes) {
  ASSIGN_OR_RETURN(Json doc, json::parse(bytes, "JSON"));
  if (!doc.is_object()) return invalidArgument("not a JSON object");
  ImageConfig cfg;
  ASSIGN_OR_RETURN(cfg.architecture, json::optString(doc, "architecture"));
  ASSIGN_OR_RETURN(cfg.os, json::optString(doc, "os"));
  if (cfg.architecture.empty() || cfg.os.empty()) {
    return invalidArgument("\"architecture\" and \"os\" are required");
  }
  ASSIGN_OR_RETURN(cfg.variant, json::optString(doc, "variant"));
  ASSIGN_OR_RETURN(cfg.osVersion, json::optString(doc, "os.version"));
  ASSIGN_OR_RETURN(cfg.created, json::optString(doc, "created"));
  ASSIGN_OR_RETURN(cfg.author, json::optString(doc, "author"));
  if (auto it = doc.find("config"); it != doc.end()) {
    ASSIGN_OR_RETURN(cfg.config, withContext(parseDefaults(*it), "config"));
  }
  auto rootfs = doc.find("rootfs");
  if (rootfs == doc.end() || !rootfs->is_object()) {
    return invalidArgument("\"rootfs\" is required and must be an object");
  }
  ASSIGN_OR_RETURN(std::string type, json::optString(*rootfs, "type"));
  if (type != "layers") {
    return invalidArgument("rootfs.type is \"", type, "\", want \"layers\"");
  }
  ASSIGN_OR_RETURN(cfg.diffIds, withContext(json::optStringArray(*rootfs, "diff_ids"), "rootfs"));
  for (size_t i = 0; i < cfg.diffIds.size(); ++i) {
    RETURN_IF_ERROR_CTX(validateDigest(cfg.diffIds[i]), strCat("rootfs.diff_ids[", i, "]"));
  }
  if (auto it = doc.find("history"); it != doc.end() && !it->is_null()) {
    if (!it->is_array()) return invalidArgument("\"history\" must be an array");
    for (size_t i = 0; i < it->size(); ++i) {
      const Json& h = (*it)[i];
      std::string ctx = strCat("history[", i, "]");
      if (!h.is_object()) return invalidArgument(ctx, " must be an object");
      HistoryEntry e;
      ASSIGN_OR_RETURN(e.created, withContext(json::optString(h, "created"), ctx));
      ASSIGN_OR_RETURN(e.createdBy, withContext(json::optString(h, "created_by"), ctx));
      ASSIGN_OR_RETURN(e.author, withContext(json::optString(h, "author"), ctx));
      ASSIGN_OR_RETURN(e.comment, withContext(json::optString(h, "comment"), ctx));
      if (auto el = h.find("empty_layer"); el != h.end() && !el->is_null()) {
        if (!el->is_boolean()) return invalidArgument(ctx, ".empty_layer must be a boolean");
        e.emptyLayer = el->get<bool>();
      }
      cfg.history.push_back(std::move(e));
    }
  }
  return cfg;
}

// --- users and groups ----------------------------------------------------------------

struct PasswdEntry {
  std::string name;
  uint32_t uid = 0;
  uint32_t gid = 0;
};

struct GroupEntry {
  std::string name;
  uint32_t gid = 0;
  std::vector<std::string> members;
};

// A decimal id in [0, 2^32-2] (2^32-1 is the kernel's "no id"), or nullopt.
std::optional<uint32_t> parseId(std::string_view s) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v >= 0xFFFFFFFFull) return std::nullopt;
  return static_cast<uint32_t>(v);
}

bool allDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Reads <rootfs>/<file> without leaving rootfs; a missing file reads as "".
StatusOr<std::string> readRootfsFile(const std::string& rootfs, const std::string& file) {
  ASSIGN_OR_RETURN(std::string path, fs::secureJoin(rootfs, file));
  auto content = fs::readFile(path);
  if (!content.ok() && content.status().code() == absl::StatusCode::kNotFound) {
    return std::string();
  }
  return content;
}

// Lines of a colon-separated database, without comments, blanks and NIS "+"/"-" lines.
std::vector<std::vector<std::string>> records(std::string_view content, size_t minFields) {
  std::vector<std::vector<std::string>> out;
  for (const std::string& line : split(content, '\n')) {
    std::string_view l = trim(line);
    if (l.empty() || l[0] == '#' || l[0] == '+' || l[0] == '-') continue;
    std::vector<std::string> fields = split(l, ':');
    if (fields.size() < minFields) continue;
    out.push_back(std::move(fields));
  }
  return out;
}

std::vector<PasswdEntry> parsePasswd(std::string_view content) {
  std::vector<PasswdEntry> out;
  for (auto& f : records(content, 4)) {
    auto uid = parseId(f[2]);
    auto gid = parseId(f[3]);
    if (!uid || !gid) continue;
    out.push_back({f[0], *uid, *gid});
  }
  return out;
}

std::vector<GroupEntry> parseGroup(std::string_view content) {
  std::vector<GroupEntry> out;
  for (auto& f : records(content, 3)) {
    auto gid = parseId(f[2]);
    if (!gid) continue;
    GroupEntry g{f[0], *gid, {}};
    if (f.size() >= 4) {
      for (const std::string& m : split(f[3], ',', true)) g.members.emplace_back(trim(m));
    }
    out.push_back(std::move(g));
  }
  return out;
}

// Signal names without "SIG", numbered as on Linux x86-64 / arm64.
struct SignalName {
  const char* name;
  int number;
};
constexpr SignalName kSignals[] = {
    {"HUP", 1},     {"INT", 2},    {"QUIT", 3},    {"ILL", 4},     {"TRAP", 5},
    {"ABRT", 6},    {"IOT", 6},    {"BUS", 7},     {"FPE", 8},     {"KILL", 9},
    {"USR1", 10},   {"SEGV", 11},  {"USR2", 12},   {"PIPE", 13},   {"ALRM", 14},
    {"TERM", 15},   {"STKFLT", 16}, {"CHLD", 17},  {"CLD", 17},    {"CONT", 18},
    {"STOP", 19},   {"TSTP", 20},  {"TTIN", 21},   {"TTOU", 22},   {"URG", 23},
    {"XCPU", 24},   {"XFSZ", 25},  {"VTALRM", 26}, {"PROF", 27},   {"WINCH", 28},
    {"IO", 29},     {"POLL", 29},  {"PWR", 30},    {"SYS", 31},
};
// glibc reserves the first two real-time signals; containers see SIGRTMIN as 34.
constexpr int kRtMin = 34;
constexpr int kRtMax = 64;

}  // namespace

StatusOr<ImageConfig> parseImageConfig(std::string_view bytes, std::string_view what) {
  return withContext(parseConfig(bytes), strCat(what, ": image config"));
}

StatusOr<std::vector<std::string>> mergeCommand(const ContainerDefaults& image,
                                                const std::vector<std::string>& command,
                                                const std::vector<std::string>& args,
                                                std::string_view imageRef) {
  std::vector<std::string> out;
  if (!command.empty()) {
    out = command;
    out.insert(out.end(), args.begin(), args.end());
  } else {
    out = image.entrypoint;
    const std::vector<std::string>& tail = args.empty() ? image.cmd : args;
    out.insert(out.end(), tail.begin(), tail.end());
  }
  if (out.empty()) {
    return invalidArgument("image ", imageRef,
                           ": no command specified (the image has no Entrypoint or Cmd; set "
                           "the container's command)");
  }
  return out;
}

std::vector<std::string> mergeEnv(
    const std::vector<std::string>& imageEnv,
    const std::vector<std::pair<std::string, std::string>>& containerEnv) {
  std::vector<std::string> out = imageEnv;
  for (const auto& [key, value] : containerEnv) {
    std::string entry = strCat(key, "=", value);
    auto same = std::find_if(out.begin(), out.end(), [&key = key](const std::string& e) {
      return e.size() >= key.size() && e.compare(0, key.size(), key) == 0 &&
             (e.size() == key.size() || e[key.size()] == '=');
    });
    if (same != out.end()) {
      *same = std::move(entry);
    } else {
      out.push_back(std::move(entry));
    }
  }
  return out;
}

std::string mergeWorkingDir(std::string_view containerWorkingDir, const ContainerDefaults& image) {
  if (!containerWorkingDir.empty()) return std::string(containerWorkingDir);
  if (!image.workingDir.empty()) return image.workingDir;
  return "/";
}

StatusOr<ResolvedUser> resolveUser(const std::string& rootfs, std::string_view user,
                                   std::string_view imageRef) {
  std::string_view userPart = user.empty() ? std::string_view("0") : user;
  std::string_view groupPart;
  bool hasGroup = false;
  if (size_t colon = userPart.find(':'); colon != std::string_view::npos) {
    groupPart = userPart.substr(colon + 1);
    userPart = userPart.substr(0, colon);
    hasGroup = true;
  }
  if (userPart.empty() || (hasGroup && groupPart.empty()) ||
      groupPart.find(':') != std::string_view::npos) {
    return invalidArgument("image ", imageRef, ": invalid user \"", user,
                           "\"; want name, uid, name:group or uid:gid");
  }
  ASSIGN_OR_RETURN(std::string passwdText, withContext(readRootfsFile(rootfs, "/etc/passwd"),
                                                       strCat("image ", imageRef)));
  ASSIGN_OR_RETURN(std::string groupText, withContext(readRootfsFile(rootfs, "/etc/group"),
                                                      strCat("image ", imageRef)));
  std::vector<PasswdEntry> passwd = parsePasswd(passwdText);
  std::vector<GroupEntry> groups = parseGroup(groupText);

  ResolvedUser out;
  if (allDigits(userPart)) {
    auto uid = parseId(userPart);
    if (!uid) {
      return invalidArgument("image ", imageRef, ": user id \"", userPart, "\" is out of range");
    }
    out.uid = *uid;
    auto it = std::find_if(passwd.begin(), passwd.end(),
                           [&](const PasswdEntry& e) { return e.uid == *uid; });
    if (it != passwd.end()) {
      out.username = it->name;
      out.gid = it->gid;
    }
  } else {
    auto it = std::find_if(passwd.begin(), passwd.end(),
                           [&](const PasswdEntry& e) { return e.name == userPart; });
    if (it == passwd.end()) {
      return notFound("user \"", userPart, "\" not found in /etc/passwd of image ", imageRef,
                      "; use a numeric uid or a user the image defines");
    }
    out.uid = it->uid;
    out.gid = it->gid;
    out.username = it->name;
  }
  if (hasGroup) {
    if (allDigits(groupPart)) {
      auto gid = parseId(groupPart);
      if (!gid) {
        return invalidArgument("image ", imageRef, ": group id \"", groupPart,
                               "\" is out of range");
      }
      out.gid = *gid;
    } else {
      auto it = std::find_if(groups.begin(), groups.end(),
                             [&](const GroupEntry& g) { return g.name == groupPart; });
      if (it == groups.end()) {
        return notFound("group \"", groupPart, "\" not found in /etc/group of image ", imageRef,
                        "; use a numeric gid or a group the image defines");
      }
      out.gid = it->gid;
    }
  }
  out.additionalGids.push_back(out.gid);
  if (!out.username.empty()) {
    for (const GroupEntry& g : groups) {
      if (std::find(g.members.begin(), g.members.end(), out.username) == g.members.end()) {
        continue;
      }
      if (std::find(out.additionalGids.begin(), out.additionalGids.end(), g.gid) ==
          out.additionalGids.end()) {
        out.additionalGids.push_back(g.gid);
      }
    }
  }
  return out;
}

StatusOr<int> parseStopSignal(std::string_view text) {
  if (text.empty()) return 15;  // SIGTERM
  auto unknown = [&] {
    return invalidArgument("stop signal \"", text,
                           "\": unknown signal; use a name like SIGTERM or a number 1-64");
  };
  if (allDigits(text)) {
    if (text.size() > 2) return unknown();
    int n = std::stoi(std::string(text));
    if (n < 1 || n > kRtMax) return unknown();
    return n;
  }
  std::string name(text);
  for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (name.rfind("SIG", 0) == 0) name.erase(0, 3);
  for (const SignalName& s : kSignals) {
    if (name == s.name) return s.number;
  }
  auto rt = [&](std::string_view base, int origin, int sign) -> std::optional<int> {
    if (name.rfind(base, 0) != 0) return std::nullopt;
    std::string_view rest = std::string_view(name).substr(base.size());
    if (rest.empty()) return origin;
    if (rest[0] != (sign > 0 ? '+' : '-') || !allDigits(rest.substr(1)) || rest.size() > 3) {
      return std::nullopt;
    }
    int n = origin + sign * std::stoi(std::string(rest.substr(1)));
    if (n < kRtMin || n > kRtMax) return std::nullopt;
    return n;
  };
  if (auto n = rt("RTMIN", kRtMin, +1)) return *n;
  if (auto n = rt("RTMAX", kRtMax, -1)) return *n;
  return unknown();
}

}  // namespace berth::image
