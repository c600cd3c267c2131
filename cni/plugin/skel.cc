#include "cni/plugin/skel.h"

#include <cctype>
#include <cstdlib>

#include "cni/plugin_exec.h"

namespace berth::cni::plugin {
namespace {

constexpr std::string_view kLatestVersion = "1.1.0";

Status envError(std::string msg) {
  return withCniErrorCode(absl::InvalidArgumentError(std::move(msg)), kErrInvalidEnvironment);
}

std::string shortMessage(int code) {
  switch (code) {
    case kErrIncompatibleVersion: return "Incompatible CNI version";
    case kErrUnsupportedField: return "Unsupported field in network configuration";
    case kErrUnknownContainer: return "Container unknown or does not exist";
    case kErrInvalidEnvironment: return "Invalid necessary environment variables";
    case kErrIo: return "I/O failure";
    case kErrDecode: return "Failed to decode content";
    case kErrInvalidNetworkConfig: return "Invalid network config";
    case kErrTryAgainLater: return "Try again later";
    case kErrPluginNotAvailable: return "The plugin is not available";
    case kErrPluginNotAvailableLimited:
      return "The plugin is not available, and existing containers may have limited connectivity";
    default: return "Plugin failed";
  }
}

std::string readAll(FILE* in, bool& failed) {
  std::string data;
  char buf[16384];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), in)) > 0) data.append(buf, n);
  failed = ferror(in) != 0;
  return data;
}

void writeJson(FILE* out, const json::Json& doc) {
  std::string text = doc.dump();
  text.push_back('\n');
  fwrite(text.data(), 1, text.size(), out);
  fflush(out);
}

}  // namespace

int errorCodeFor(const Status& status) {
  if (int code = cniErrorCode(status); code != 0) return code;
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument: return kErrInvalidNetworkConfig;
    case absl::StatusCode::kNotFound: return kErrUnknownContainer;
    case absl::StatusCode::kUnavailable: return kErrTryAgainLater;
    default: return 999;
  }
}

json::Json errorJson(const Status& status, std::string_view cni_version) {
  int code = errorCodeFor(status);
  return json::Json{{"cniVersion", std::string(cni_version)},
                    {"code", code},
                    {"msg", shortMessage(code)},
                    {"details", std::string(status.message())}};
}

StatusOr<std::map<std::string, std::string>> parseCniArgs(std::string_view args) {
  std::map<std::string, std::string> out;
  for (const std::string& entry : split(args, ';', /*skip_empty=*/true)) {
    size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0) {
      return envError(strCat("CNI_ARGS: entry \"", entry,
                             "\" is not KEY=VALUE; separate entries with ';'"));
    }
    out[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  return out;
}

bool isValidContainerId(std::string_view id) {
  if (id.empty() || !std::isalnum(static_cast<unsigned char>(id[0]))) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') {
      return false;
    }
  }
  return true;
}

Status validateIfname(std::string_view ifname) {
  if (ifname.empty() || ifname.size() > 15) {
    return envError(strCat("CNI_IFNAME \"", ifname,
                           "\" must be 1 to 15 characters long (a Linux interface name)"));
  }
  if (ifname == "." || ifname == "..") {
    return envError(strCat("CNI_IFNAME \"", ifname, "\" is not a valid interface name"));
  }
  for (char c : ifname) {
    if (c == '/' || c == ':' || std::isspace(static_cast<unsigned char>(c)) ||
        !std::isprint(static_cast<unsigned char>(c))) {
      return envError(strCat("CNI_IFNAME \"", ifname,
                             "\" contains a character not allowed in interface names "
                             "('/', ':', whitespace or control characters)"));
    }
  }
  return absl::OkStatus();
}

StatusOr<Request> parseRequest(const std::function<const char*(const char*)>& env,
                               std::string stdin_data) {
  auto get = [&](const char* name) -> std::string {
    const char* v = env(name);
    return v ? std::string(v) : std::string();
  };
  Request r;
  r.command = get("CNI_COMMAND");
  static const char* const kCommands[] = {"ADD", "DEL", "CHECK", "STATUS", "GC", "VERSION"};
  bool known = false;
  for (const char* c : kCommands) known = known || r.command == c;
  if (!known) {
    return envError(strCat("CNI_COMMAND \"", r.command,
                           "\" is not one of ADD, DEL, CHECK, STATUS, GC, VERSION"));
  }
  r.container_id = get("CNI_CONTAINERID");
  r.netns = get("CNI_NETNS");
  r.ifname = get("CNI_IFNAME");
  r.args = get("CNI_ARGS");
  r.bin_dirs = split(get("CNI_PATH"), ':', /*skip_empty=*/true);
  r.stdin_data = std::move(stdin_data);

  r.config = json::Json::parse(r.stdin_data, nullptr, /*allow_exceptions=*/false);
  if (r.command == "VERSION") {
    // VERSION's input is only {"cniVersion"}; an empty or odd stdin still gets an answer.
    if (r.config.is_object() && r.config.contains("cniVersion") &&
        r.config["cniVersion"].is_string()) {
      r.cni_version = r.config["cniVersion"].get<std::string>();
    }
    return r;
  }
  if (!r.config.is_object()) {
    return withCniErrorCode(
        invalidArgument("network configuration on stdin is not a JSON object"
                        " (got ", r.stdin_data.empty() ? "nothing" : "malformed JSON", ")"),
        kErrDecode);
  }
  const json::Json& version = r.config.contains("cniVersion") ? r.config["cniVersion"]
                                                              : json::Json();
  if (!version.is_string() || version.get<std::string>().empty()) {
    return withCniErrorCode(
        invalidArgument("network configuration: \"cniVersion\" is missing or not a string"),
        kErrInvalidNetworkConfig);
  }
  r.cni_version = version.get<std::string>();
  if (!isSupportedVersion(r.cni_version)) {
    return withCniErrorCode(
        failedPrecondition("network configuration: cniVersion \"", r.cni_version,
                           "\" is not supported; use one of ",
                           joinStrings(supportedVersions(), ", ")),
        kErrIncompatibleVersion);
  }
  if (!r.config.contains("name") || !r.config["name"].is_string()) {
    return withCniErrorCode(invalidArgument("network configuration: \"name\" is missing"),
                            kErrInvalidNetworkConfig);
  }
  auto need_version = [&](std::string_view min) -> Status {
    if (compareVersions(r.cni_version, min) >= 0) return absl::OkStatus();
    return withCniErrorCode(
        failedPrecondition(r.command, " needs cniVersion ", min, " or newer; the configuration "
                           "says ", r.cni_version),
        kErrIncompatibleVersion);
  };
  if (r.command == "CHECK") RETURN_IF_ERROR(need_version("0.4.0"));
  if (r.command == "STATUS" || r.command == "GC") RETURN_IF_ERROR(need_version("1.1.0"));

  std::vector<std::string> bad;
  bool needs_attachment = r.command == "ADD" || r.command == "DEL" || r.command == "CHECK";
  if (needs_attachment) {
    if (r.container_id.empty()) {
      bad.push_back("CNI_CONTAINERID is missing");
    } else if (!isValidContainerId(r.container_id)) {
      bad.push_back(strCat("CNI_CONTAINERID \"", r.container_id,
                           "\" must start with a letter or digit followed by letters, digits, "
                           "'_', '.' or '-'"));
    }
    if (r.ifname.empty()) {
      bad.push_back("CNI_IFNAME is missing");
    } else if (Status st = validateIfname(r.ifname); !st.ok()) {
      bad.push_back(std::string(st.message()));
    }
    if (r.command != "DEL" && r.netns.empty()) bad.push_back("CNI_NETNS is missing");
  }
  if (!bad.empty()) return envError(joinStrings(bad, "; "));
  ASSIGN_OR_RETURN(r.cni_args, parseCniArgs(r.args));
  return r;
}

StatusOr<std::set<Attachment>> validAttachments(const Request& request) {
  std::set<Attachment> out;
  constexpr const char* kKey = "cni.dev/valid-attachments";
  if (!request.config.contains(kKey) || request.config[kKey].is_null()) return out;
  const json::Json& list = request.config[kKey];
  auto bad = [&](size_t i) {
    return withCniErrorCode(
        invalidArgument("\"", kKey, "\"[", i,
                        "] is not an object with string \"containerID\" and \"ifname\""),
        kErrInvalidNetworkConfig);
  };
  if (!list.is_array()) {
    return withCniErrorCode(invalidArgument("\"", kKey, "\" is not a list"),
                            kErrInvalidNetworkConfig);
  }
  for (size_t i = 0; i < list.size(); ++i) {
    const json::Json& a = list[i];
    if (!a.is_object() || !a.contains("containerID") || !a["containerID"].is_string() ||
        !a.contains("ifname") || !a["ifname"].is_string()) {
      return bad(i);
    }
    out.emplace(a["containerID"].get<std::string>(), a["ifname"].get<std::string>());
  }
  return out;
}

int runPlugin(const Handlers& handlers, FILE* in, FILE* out) {
  bool read_failed = false;
  std::string data = readAll(in, read_failed);
  std::string version(kLatestVersion);
  auto fail = [&](const Status& st) {
    writeJson(out, errorJson(st, version));
    fprintf(stderr, "%s\n", std::string(st.message()).c_str());
    return 1;
  };
  if (read_failed) {
    return fail(withCniErrorCode(absl::InternalError("read the network configuration from stdin"),
                                 kErrIo));
  }
  auto request = parseRequest([](const char* n) { return std::getenv(n); }, std::move(data));
  if (!request.ok()) return fail(request.status());
  if (isSupportedVersion(request->cni_version)) version = request->cni_version;

  if (request->command == "VERSION") {
    writeJson(out, json::Json{{"cniVersion", request->cni_version.empty()
                                                 ? std::string(kLatestVersion)
                                                 : request->cni_version},
                              {"supportedVersions", supportedVersions()}});
    return 0;
  }
  auto unsupported = [&] {
    return fail(envError(strCat("CNI_COMMAND ", request->command,
                                " is not supported by this plugin")));
  };
  if (request->command == "ADD") {
    if (!handlers.add) return unsupported();
    auto result = handlers.add(*request);
    if (!result.ok()) return fail(result.status());
    auto doc = resultToJson(*result, request->cni_version);
    if (!doc.ok()) return fail(doc.status());
    writeJson(out, *doc);
    return 0;
  }
  const std::function<Status(const Request&)>* handler = nullptr;
  if (request->command == "DEL") handler = &handlers.del;
  if (request->command == "CHECK") handler = &handlers.check;
  if (request->command == "STATUS") handler = &handlers.status;
  if (request->command == "GC") handler = &handlers.gc;
  if (handler == nullptr || !*handler) return unsupported();
  Status st = (*handler)(*request);
  if (!st.ok()) return fail(st);
  return 0;
}

}  // namespace berth::cni::plugin
