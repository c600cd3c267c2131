// Parsing and serialisation of the runtime-spec config model (config.h).
//
// Parsing follows Go's encoding/json as runc uses it: unknown keys are ignored, a JSON
// null is the same as an absent key, numbers must be integers that fit the field, and
// a key of the wrong type is an error naming its full path ("process.user.uid").
// Serialisation follows the `omitempty` tags of runtime-spec specs-go, so
// toJson(parseSpec(x)) gives back every field the model holds.
#include "runtime/oci/config.h"

#include <sched.h>

#include <limits>
#include <type_traits>

#include "common/fs.h"
#include "common/json.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

namespace berth::oci {
namespace {

using Json = nlohmann::json;

// ---------------------------------------------------------------------------
// Reading

// A short description of a JSON value's type for error messages.
std::string describe(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::boolean: return "boolean";
    case Json::value_t::number_integer:
      if (v.get<int64_t>() < 0) return strCat("negative number ", v.get<int64_t>());
      return "integer";
    case Json::value_t::number_unsigned: return "integer";
    case Json::value_t::number_float: return strCat("floating-point number ", v.dump());
    case Json::value_t::string: return "string";
    case Json::value_t::array: return "array";
    case Json::value_t::object: return "object";
    default: return "unsupported value";
  }
}

berth::Status typeError(const std::string& path, std::string_view expected, const Json& v) {
  return invalidArgument("\"", path, "\": expected ", expected, ", got ", describe(v));
}

std::string childPath(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : strCat(path, ".", key);
}
std::string indexPath(const std::string& path, size_t i) { return strCat(path, "[", i, "]"); }

berth::Status expectObject(const Json& v, const std::string& path) {
  if (!v.is_object()) return typeError(path, "object", v);
  return absl::OkStatus();
}

// readValue overloads: convert one JSON value at `path` into `out`. Declared first so
// the templates below find every overload by ordinary lookup.
berth::Status readValue(const Json& v, const std::string& path, std::string& out);
berth::Status readValue(const Json& v, const std::string& path, bool& out);
berth::Status readValue(const Json& v, const std::string& path, Json& out);
berth::Status readValue(const Json& v, const std::string& path,
                        std::map<std::string, std::string>& out);
berth::Status readValue(const Json& v, const std::string& path, User& out);
berth::Status readValue(const Json& v, const std::string& path, Rlimit& out);
berth::Status readValue(const Json& v, const std::string& path, Capabilities& out);
berth::Status readValue(const Json& v, const std::string& path, ConsoleSize& out);
berth::Status readValue(const Json& v, const std::string& path, Process& out);
berth::Status readValue(const Json& v, const std::string& path, Root& out);
berth::Status readValue(const Json& v, const std::string& path, IdMapping& out);
berth::Status readValue(const Json& v, const std::string& path, Mount& out);
berth::Status readValue(const Json& v, const std::string& path, Hook& out);
berth::Status readValue(const Json& v, const std::string& path, Hooks& out);
berth::Status readValue(const Json& v, const std::string& path, Namespace& out);
berth::Status readValue(const Json& v, const std::string& path, Device& out);
berth::Status readValue(const Json& v, const std::string& path, DeviceCgroup& out);
berth::Status readValue(const Json& v, const std::string& path, Memory& out);
berth::Status readValue(const Json& v, const std::string& path, Cpu& out);
berth::Status readValue(const Json& v, const std::string& path, Pids& out);
berth::Status readValue(const Json& v, const std::string& path, WeightDevice& out);
berth::Status readValue(const Json& v, const std::string& path, ThrottleDevice& out);
berth::Status readValue(const Json& v, const std::string& path, BlockIO& out);
berth::Status readValue(const Json& v, const std::string& path, HugepageLimit& out);
berth::Status readValue(const Json& v, const std::string& path, Resources& out);
berth::Status readValue(const Json& v, const std::string& path, SeccompArg& out);
berth::Status readValue(const Json& v, const std::string& path, SeccompSyscall& out);
berth::Status readValue(const Json& v, const std::string& path, Seccomp& out);
berth::Status readValue(const Json& v, const std::string& path, Linux& out);
berth::Status readValue(const Json& v, const std::string& path, Spec& out);

template <typename T>
  requires(std::is_integral_v<T> && !std::is_same_v<T, bool>)
berth::Status readValue(const Json& v, const std::string& path, T& out) {
  constexpr const char* kWant = std::is_unsigned_v<T> ? "unsigned integer" : "integer";
  if (v.is_number_unsigned()) {
    uint64_t value = v.get<uint64_t>();
    if (value > static_cast<uint64_t>(std::numeric_limits<T>::max())) {
      return invalidArgument("\"", path, "\": ", value, " is out of range (at most ",
                             std::numeric_limits<T>::max(), ")");
    }
    out = static_cast<T>(value);
    return absl::OkStatus();
  }
  if (v.is_number_integer()) {  // negative
    if constexpr (std::is_unsigned_v<T>) {
      return typeError(path, kWant, v);
    } else {
      int64_t value = v.get<int64_t>();
      if (value < static_cast<int64_t>(std::numeric_limits<T>::min())) {
        return invalidArgument("\"", path, "\": ", value, " is out of range (at least ",
                               std::numeric_limits<T>::min(), ")");
      }
      out = static_cast<T>(value);
      return absl::OkStatus();
    }
  }
  return typeError(path, kWant, v);
}

template <typename T>
berth::Status readValue(const Json& v, const std::string& path, std::vector<T>& out) {
  if (!v.is_array()) return typeError(path, "array", v);
  out.clear();
  out.resize(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    RETURN_IF_ERROR(readValue(v[i], indexPath(path, i), out[i]));
  }
  return absl::OkStatus();
}

template <typename T>
berth::Status readValue(const Json& v, const std::string& path, std::optional<T>& out) {
  T value{};
  RETURN_IF_ERROR(readValue(v, path, value));
  out = std::move(value);
  return absl::OkStatus();
}

// Reads obj[key] into `out` when present and not null; otherwise leaves `out` alone.
template <typename T>
berth::Status field(const Json& obj, const std::string& path, const char* key, T& out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return absl::OkStatus();
  return readValue(*it, childPath(path, key), out);
}

berth::Status readValue(const Json& v, const std::string& path, std::string& out) {
  if (!v.is_string()) return typeError(path, "string", v);
  out = v.get<std::string>();
  return absl::OkStatus();
}

berth::Status readValue(const Json& v, const std::string& path, bool& out) {
  if (!v.is_boolean()) return typeError(path, "boolean", v);
  out = v.get<bool>();
  return absl::OkStatus();
}

berth::Status readValue(const Json& v, const std::string&, Json& out) {
  out = v;
  return absl::OkStatus();
}

berth::Status readValue(const Json& v, const std::string& path,
                        std::map<std::string, std::string>& out) {
  RETURN_IF_ERROR(expectObject(v, path));
  out.clear();
  for (const auto& [key, value] : v.items()) {
    if (value.is_null()) continue;
    RETURN_IF_ERROR(readValue(value, strCat(path, "[\"", key, "\"]"), out[key]));
  }
  return absl::OkStatus();
}

berth::Status readValue(const Json& v, const std::string& path, User& out) {
  RETURN_IF_ERROR(expectObject(v, path));
  RETURN_IF_ERROR(field(v, path, "uid", out.uid));
  RETURN_IF_ERROR(field(v, path, "gid", out.gid));
  RETURN_IF_ERROR(field(v, path, "umask", out.umask));
  RETURN_IF_ERROR(field(v, path, "additionalGids", out.additionalGids));
  return field(v, path, "username", out.username);
}

berth::Status readValue(const Json& v, const std::string& path, Rlimit& out) {
  RETURN_IF_ERROR(expectObject(v, path));
  RETURN_IF_ERROR(field(v, path, "type", out.type));
  RETURN_IF_ERROR(field(v, path, "hard", out.hard));
  return field(v, path, "soft", out.soft);
}

berth::Status readValue(const Json& v, const std::string& path, Capabilities& out) {
  RETURN_IF_ERROR(expectObject(v, path));
  RETURN_IF_ERROR(field(v, path, "bounding", out.bounding));
  RETURN_IF_ERROR(field(v, path, "effective", out.effective));
  RETURN_IF_ERROR(field(v, path, "inheritable", out.inheritable));
  RETURN_IF_ERROR(field(v, path, "permitted", out.permitted));
  return field(v, path, "ambient", out.ambient);
}

berth::Status readValue(const Json& v, const std::string& path, ConsoleSize& out) {
  RETURN_IF_ERROR(expectObject(v, path));
  RETURN_IF_ERROR(field(v, path, "height", out.height));
  return field(v, path, "width", out.width);
}

berth::Status readValue(const Json& v, const std::string& path, Process& out) {
  RETURN_IF_ERROR(expectObject(v, path));
  out.cwd.clear();  // cwd is required: absent stays "" so validation reports it
  RETURN_IF_ERROR(field(v, path, "terminal", out.terminal));
  RETURN_IF_ERROR(field(v, path, "consoleSize", out.consoleSize));
  RETURN_IF_ERROR(field(v, path, "user", out.user));
  RETURN_IF_ERROR(field(v, path, "args", out.args));
  RETURN_IF_ERROR(field(v, path, "commandLine", out.commandLine));
  RETURN_IF_ERROR(field(v, path, "env", out.env));
  RETURN_IF_ERROR(field(v, path, "cwd", out.cwd));
  RETURN_IF_ERROR(field(v, path, "capabilities", out.capabilities));
  RETURN_IF_ERROR(field(v, path, "rlimits", out.rlimits));
  RETURN_IF_ERROR(field(v, path, "noNewPrivileges", out.noNewPrivileges));
  RETURN_IF_ERROR(field(v, path, "apparmorProfile", out.apparmorProfile));
  RETURN_IF_ERROR(field(v, path, "oomScoreAdj", out.oomScoreAdj));
  RETURN_IF_ERROR(field(v, path, "selinuxLabel", out.selinuxLabel));
  RETURN_IF_ERROR(field(v, path, "ioPriority", out.ioPriority));
  return field(v, path, "scheduler", out.scheduler);
}

berth::Status readValue(const Json& v, const std::string& path, Root& out) {
  RETURN_IF_ERROR(expectObject(v, path));
  RETURN_IF_ERROR(field(v, path, "path", out.path));
  return field(v, path, "readonly", out.readonly);
}

berth::Status readValue(const Json& v, const std::string& path, IdMapping& out) {
  RETURN_IF_ERROR(expectObject(v, path));
  RETURN_IF_ERROR(field(v, path, "containerID", out.containerID));
  RETURN_IF_ERROR(field(v, path, "hostID", out.hostID));
  return field(v, path, "size", out.size);
}

berth::Status readValue(const Json& v, const std::string& path, Mount& out) {
  RETURN_IF_ERROR(expectObject(v, path));
  RETURN_IF_ERROR(field(v, path, "destination", out.destination));
  RETURN_IF_ERROR(field(v, path, "type", out.type));
  RETURN_IF_ERROR(field(v, path, "source", out.source));
  RETURN_IF_ERROR(field(v, path, "options", out.options));
  RETURN_IF_ERROR(field(v, path, "uidMappings", out.uidMappings));
  return field(v, path, "gidMappings", out.gidMappings);
}

berth::Status readValue(const Json& v, const std::string& path, Hook& out) {
  RETURN_IF_ERROR(expectObject(v, path));
  RETURN_IF_ERROR(field(v, path, "path", out.path));
  RETURN_IF_ERROR(field(v, path, "args", out.args));
  RETURN_IF_ERROR(field(v, path, "env", out.env));
  return field(v, path, "timeout", out.timeout);
}

berth::Status readValue(const Json& v, const std::string& path, Hooks& out) {
  RETURN_IF_ERROR(expectObject(v, path));
  RETURN_IF_ERROR(field(v, path, "prestart", out.prestart));
  RETURN_IF_ERROR(field(v, path, "createRuntime", out.createRuntime));
  RETURN_IF_ERROR(field(v, path, "createContainer", out.createContainer));
  RETURN_IF_ERROR(field(v, path, "startContainer", out.startContainer));
  RETURN_IF_ERROR(field(v, path, "poststart", out.poststart));
  return field(v, path, "poststop", out.poststop);
}

berth::Status readValue(const Json& v, const std::string& path, Namespace& out) {
  RETURN_IF_ERROR(expectObject(v, path));
  RETURN_IF_ERROR(field(v, path, "type", out.type));
  return field(v, path, "path", out.path);
}

berth::Status readValue(const Json& v, const std::string& path, Device& out) {
  RETURN_IF_ERROR(expectObject(v, path));
  RETURN_IF_ERROR(field(v, path, "type", out.type));
  RETURN_IF_ERROR(field(v, path, "path", out.path));
  RETURN_IF_ERROR(field(v, path, "major", out.major));
  RETURN_IF_ERROR(field(v, path, "minor", out.minor));
  RETURN_IF_ERROR(field(v, path, "fileMode", out.fileMode));
  RETURN_IF_ERROR(field(v, path, "uid", out.uid));
  return field(v, path, "gid", out.gid);
}

berth::Status readValue(const Json& v, const std::string& path, DeviceCgroup& out) {
  RETURN_IF_ERROR(expectObject(v, path));
  RETURN_IF_ERROR(field(v, path, "allow", out.allow));
  RETURN_IF_ERROR(field(v, path, "type", out.type));
  RETURN_IF_ERROR(field(v, path, "major", out.major));
  RETURN_IF_ERROR(field(v, path, "minor", out.minor));
  return field(v, path, "access", out.access);
}

berth::Status readValue(const Json& v, const std::string& path, Memory& out) {
  RETURN_IF_ERROR(expectObject(v, path));
  RETURN_IF_ERROR(field(v, path, "limit", out.limit));
  RETURN_IF_ERROR(field(v, path, "reservation", out.reservation));
  RETURN_IF_ERROR(field(v, path, "swap", out.swap));
  RETURN_IF_ERROR(field(v, path, "kernel", out.kernel));
  RETURN_IF_ERROR(field(v, path, "kernelTCP", out.kernelTCP));
  RETURN_IF_ERROR(field(v, path, "swappiness", out.swappiness));
  RETURN_IF_ERROR(field(v, path, "disableOOMKiller", out.disableOOMKiller));
  RETURN_IF_ERROR(field(v, path, "useHierarchy", out.useHierarchy));
  return field(v, path, "checkBeforeUpdate", out.checkBeforeUpdate);
}

berth::Status readValue(const Json& v, const std::string& path, Cpu& out) {
  RETURN_IF_ERROR(expectObject(v, path));
  RETURN_IF_ERROR(field(v, path, "shares", out.shares));
  RETURN_IF_ERROR(field(v, path, "quota", out.quota));
  RETURN_IF_ERROR(field(v, path, "burst", out.burst));
  RETURN_IF_ERROR(field(v, path, "period", out.period));
  RETURN_IF_ERROR(field(v, path, "realtimeRuntime", out.realtimeRuntime));
  RETURN_IF_ERROR(field(v, path, "realtimePeriod", out.realtimePeriod));
  RETURN_IF_ERROR(field(v, path, "cpus", out.cpus));
  RETURN_IF_ERROR(field(v, path, "mems", out.mems));
  return field(v, path, "idle", out.idle);
}

berth::Status readValue(const Json& v, const std::string& path, Pids& out) {
  RETURN_IF_ERROR(expectObject(v, path));
  return field(v, path, "limit", out.limit);
}

berth::Status readValue(const Json& v, const std::string& path, WeightDevice& out) {
  RETURN_IF_ERROR(expectObject(v, path));
  RETURN_IF_ERROR(field(v, path, "major", out.major));
  RETURN_IF_ERROR(field(v, path, "minor", out.minor));
  RETURN_IF_ERROR(field(v, path, "weight", out.weight));
  return field(v, path, "leafWeight", out.leafWeight);
}

berth::Status readValue(const Json& v, const std::string& path, ThrottleDevice& out) {
  RETURN_IF_ERROR(expectObject(v, path));
  RETURN_IF_ERROR(field(v, path, "major", out.major));
  RETURN_IF_ERROR(field(v, path, "minor", out.minor));
  return field(v, path, "rate", out.rate);
}

berth::Status readValue(const Json& v, const std::string& path, BlockIO& out) {
  RETURN_IF_ERROR(expectObject(v, path));
  RETURN_IF_ERROR(field(v, path, "weight", out.weight));
  RETURN_IF_ERROR(field(v, path, "leafWeight", out.leafWeight));
  RETURN_IF_ERROR(field(v, path, "weightDevice", out.weightDevice));
  RETURN_IF_ERROR(field(v, path, "throttleReadBpsDevice", out.throttleReadBpsDevice));
  RETURN_IF_ERROR(field(v, path, "throttleWriteBpsDevice", out.throttleWriteBpsDevice));
  RETURN_IF_ERROR(field(v, path, "throttleReadIOPSDevice", out.throttleReadIOPSDevice));
  return field(v, path, "throttleWriteIOPSDevice", out.throttleWriteIOPSDevice);
}

berth::Status readValue(const Json& v, const std::string& path, HugepageLimit& out) {
  RETURN_IF_ERROR(expectObject(v, path));
  RETURN_IF_ERROR(field(v, path, "pageSize", out.pageSize));
  return field(v, path, "limit", out.limit);
}

berth::Status readValue(const Json& v, const std::string& path, Resources& out) {
  RETURN_IF_ERROR(expectObject(v, path));
  RETURN_IF_ERROR(field(v, path, "devices", out.devices));
  RETURN_IF_ERROR(field(v, path, "memory", out.memory));
  RETURN_IF_ERROR(field(v, path, "cpu", out.cpu));
  RETURN_IF_ERROR(field(v, path, "pids", out.pids));
  RETURN_IF_ERROR(field(v, path, "blockIO", out.blockIO));
  RETURN_IF_ERROR(field(v, path, "hugepageLimits", out.hugepageLimits));
  RETURN_IF_ERROR(field(v, path, "network", out.network));
  RETURN_IF_ERROR(field(v, path, "rdma", out.rdma));
  return field(v, path, "unified", out.unified);
}

berth::Status readValue(const Json& v, const std::string& path, SeccompArg& out) {
  RETURN_IF_ERROR(expectObject(v, path));
  RETURN_IF_ERROR(field(v, path, "index", out.index));
  RETURN_IF_ERROR(field(v, path, "value", out.value));
  RETURN_IF_ERROR(field(v, path, "valueTwo", out.valueTwo));
  return field(v, path, "op", out.op);
}

berth::Status readValue(const Json& v, const std::string& path, SeccompSyscall& out) {
  RETURN_IF_ERROR(expectObject(v, path));
  RETURN_IF_ERROR(field(v, path, "names", out.names));
  RETURN_IF_ERROR(field(v, path, "action", out.action));
  RETURN_IF_ERROR(field(v, path, "errnoRet", out.errnoRet));
  return field(v, path, "args", out.args);
}

berth::Status readValue(const Json& v, const std::string& path, Seccomp& out) {
  RETURN_IF_ERROR(expectObject(v, path));
  RETURN_IF_ERROR(field(v, path, "defaultAction", out.defaultAction));
  RETURN_IF_ERROR(field(v, path, "defaultErrnoRet", out.defaultErrnoRet));
  RETURN_IF_ERROR(field(v, path, "architectures", out.architectures));
  RETURN_IF_ERROR(field(v, path, "flags", out.flags));
  RETURN_IF_ERROR(field(v, path, "listenerPath", out.listenerPath));
  RETURN_IF_ERROR(field(v, path, "listenerMetadata", out.listenerMetadata));
  return field(v, path, "syscalls", out.syscalls);
}

berth::Status readValue(const Json& v, const std::string& path, Linux& out) {
  RETURN_IF_ERROR(expectObject(v, path));
  RETURN_IF_ERROR(field(v, path, "namespaces", out.namespaces));
  RETURN_IF_ERROR(field(v, path, "uidMappings", out.uidMappings));
  RETURN_IF_ERROR(field(v, path, "gidMappings", out.gidMappings));
  RETURN_IF_ERROR(field(v, path, "devices", out.devices));
  RETURN_IF_ERROR(field(v, path, "cgroupsPath", out.cgroupsPath));
  RETURN_IF_ERROR(field(v, path, "resources", out.resources));
  RETURN_IF_ERROR(field(v, path, "rootfsPropagation", out.rootfsPropagation));
  RETURN_IF_ERROR(field(v, path, "seccomp", out.seccomp));
  RETURN_IF_ERROR(field(v, path, "sysctl", out.sysctl));
  RETURN_IF_ERROR(field(v, path, "maskedPaths", out.maskedPaths));
  RETURN_IF_ERROR(field(v, path, "readonlyPaths", out.readonlyPaths));
  RETURN_IF_ERROR(field(v, path, "mountLabel", out.mountLabel));
  RETURN_IF_ERROR(field(v, path, "intelRdt", out.intelRdt));
  RETURN_IF_ERROR(field(v, path, "personality", out.personality));
  return field(v, path, "timeOffsets", out.timeOffsets);
}

berth::Status readValue(const Json& v, const std::string& path, Spec& out) {
  RETURN_IF_ERROR(expectObject(v, path.empty() ? std::string("(top level)") : path));
  RETURN_IF_ERROR(field(v, path, "ociVersion", out.ociVersion));
  RETURN_IF_ERROR(field(v, path, "process", out.process));
  RETURN_IF_ERROR(field(v, path, "root", out.root));
  RETURN_IF_ERROR(field(v, path, "hostname", out.hostname));
  RETURN_IF_ERROR(field(v, path, "domainname", out.domainname));
  RETURN_IF_ERROR(field(v, path, "mounts", out.mounts));
  RETURN_IF_ERROR(field(v, path, "hooks", out.hooks));
  RETURN_IF_ERROR(field(v, path, "annotations", out.annotations));
  return field(v, path, "linux", out.linux);
}

StatusOr<Spec> parseSpecNamed(std::string_view text, std::string_view what) {
  ASSIGN_OR_RETURN(Json doc, json::parse(text, what));
  Spec spec;
  RETURN_IF_ERROR_CTX(readValue(doc, "", spec), what);
  return spec;
}

// ---------------------------------------------------------------------------
// Writing (omitempty as in runtime-spec specs-go)

template <typename T>
void putOpt(Json& j, const char* key, const std::optional<T>& value) {
  if (value.has_value()) j[key] = *value;
}
void putStr(Json& j, const char* key, const std::string& value) {
  if (!value.empty()) j[key] = value;
}
template <typename T>
void putList(Json& j, const char* key, const std::vector<T>& values) {
  if (!values.empty()) j[key] = values;
}
void putMap(Json& j, const char* key, const std::map<std::string, std::string>& values) {
  if (!values.empty()) j[key] = values;
}
template <typename T, typename F>
void putObjects(Json& j, const char* key, const std::vector<T>& values, F&& convert) {
  if (values.empty()) return;
  Json array = Json::array();
  for (const T& value : values) array.push_back(convert(value));
  j[key] = std::move(array);
}

Json idMappingJson(const IdMapping& m) {
  return Json{{"containerID", m.containerID}, {"hostID", m.hostID}, {"size", m.size}};
}

Json hookJson(const Hook& h) {
  Json j = Json::object();
  j["path"] = h.path;
  putList(j, "args", h.args);
  putList(j, "env", h.env);
  putOpt(j, "timeout", h.timeout);
  return j;
}

Json hooksJson(const Hooks& h) {
  Json j = Json::object();
  putObjects(j, "prestart", h.prestart, hookJson);
  putObjects(j, "createRuntime", h.createRuntime, hookJson);
  putObjects(j, "createContainer", h.createContainer, hookJson);
  putObjects(j, "startContainer", h.startContainer, hookJson);
  putObjects(j, "poststart", h.poststart, hookJson);
  putObjects(j, "poststop", h.poststop, hookJson);
  return j;
}

Json mountJson(const Mount& m) {
  Json j = Json::object();
  j["destination"] = m.destination;
  putStr(j, "type", m.type);
  putStr(j, "source", m.source);
  putList(j, "options", m.options);
  putObjects(j, "uidMappings", m.uidMappings, idMappingJson);
  putObjects(j, "gidMappings", m.gidMappings, idMappingJson);
  return j;
}

Json deviceJson(const Device& d) {
  Json j = Json::object();
  j["type"] = d.type;
  j["path"] = d.path;
  j["major"] = d.major;
  j["minor"] = d.minor;
  putOpt(j, "fileMode", d.fileMode);
  putOpt(j, "uid", d.uid);
  putOpt(j, "gid", d.gid);
  return j;
}

Json deviceCgroupJson(const DeviceCgroup& d) {
  Json j = Json::object();
  j["allow"] = d.allow;
  putStr(j, "type", d.type);
  putOpt(j, "major", d.major);
  putOpt(j, "minor", d.minor);
  putStr(j, "access", d.access);
  return j;
}

Json memoryJson(const Memory& m) {
  Json j = Json::object();
  putOpt(j, "limit", m.limit);
  putOpt(j, "reservation", m.reservation);
  putOpt(j, "swap", m.swap);
  putOpt(j, "kernel", m.kernel);
  putOpt(j, "kernelTCP", m.kernelTCP);
  putOpt(j, "swappiness", m.swappiness);
  putOpt(j, "disableOOMKiller", m.disableOOMKiller);
  putOpt(j, "useHierarchy", m.useHierarchy);
  putOpt(j, "checkBeforeUpdate", m.checkBeforeUpdate);
  return j;
}

Json cpuJson(const Cpu& c) {
  Json j = Json::object();
  putOpt(j, "shares", c.shares);
  putOpt(j, "quota", c.quota);
  putOpt(j, "burst", c.burst);
  putOpt(j, "period", c.period);
  putOpt(j, "realtimeRuntime", c.realtimeRuntime);
  putOpt(j, "realtimePeriod", c.realtimePeriod);
  putStr(j, "cpus", c.cpus);
  putStr(j, "mems", c.mems);
  putOpt(j, "idle", c.idle);
  return j;
}

Json weightDeviceJson(const WeightDevice& d) {
  Json j{{"major", d.major}, {"minor", d.minor}};
  putOpt(j, "weight", d.weight);
  putOpt(j, "leafWeight", d.leafWeight);
  return j;
}

Json throttleJson(const ThrottleDevice& d) {
  return Json{{"major", d.major}, {"minor", d.minor}, {"rate", d.rate}};
}

Json blockIoJson(const BlockIO& b) {
  Json j = Json::object();
  putOpt(j, "weight", b.weight);
  putOpt(j, "leafWeight", b.leafWeight);
  putObjects(j, "weightDevice", b.weightDevice, weightDeviceJson);
  putObjects(j, "throttleReadBpsDevice", b.throttleReadBpsDevice, throttleJson);
  putObjects(j, "throttleWriteBpsDevice", b.throttleWriteBpsDevice, throttleJson);
  putObjects(j, "throttleReadIOPSDevice", b.throttleReadIOPSDevice, throttleJson);
  putObjects(j, "throttleWriteIOPSDevice", b.throttleWriteIOPSDevice, throttleJson);
  return j;
}

Json resourcesJson(const Resources& r) {
  Json j = Json::object();
  putObjects(j, "devices", r.devices, deviceCgroupJson);
  if (r.memory) j["memory"] = memoryJson(*r.memory);
  if (r.cpu) j["cpu"] = cpuJson(*r.cpu);
  if (r.pids) j["pids"] = Json{{"limit", r.pids->limit}};
  if (r.blockIO) j["blockIO"] = blockIoJson(*r.blockIO);
  putObjects(j, "hugepageLimits", r.hugepageLimits, [](const HugepageLimit& h) {
    return Json{{"pageSize", h.pageSize}, {"limit", h.limit}};
  });
  putOpt(j, "network", r.network);
  putOpt(j, "rdma", r.rdma);
  putMap(j, "unified", r.unified);
  return j;
}

Json seccompArgJson(const SeccompArg& a) {
  Json j{{"index", a.index}, {"value", a.value}};
  if (a.valueTwo != 0) j["valueTwo"] = a.valueTwo;
  j["op"] = a.op;
  return j;
}

Json seccompSyscallJson(const SeccompSyscall& s) {
  Json j{{"names", s.names}, {"action", s.action}};
  putOpt(j, "errnoRet", s.errnoRet);
  putObjects(j, "args", s.args, seccompArgJson);
  return j;
}

Json seccompJson(const Seccomp& s) {
  Json j = Json::object();
  j["defaultAction"] = s.defaultAction;
  putOpt(j, "defaultErrnoRet", s.defaultErrnoRet);
  putList(j, "architectures", s.architectures);
  putList(j, "flags", s.flags);
  putStr(j, "listenerPath", s.listenerPath);
  putStr(j, "listenerMetadata", s.listenerMetadata);
  putObjects(j, "syscalls", s.syscalls, seccompSyscallJson);
  return j;
}

Json linuxJson(const Linux& l) {
  Json j = Json::object();
  putObjects(j, "uidMappings", l.uidMappings, idMappingJson);
  putObjects(j, "gidMappings", l.gidMappings, idMappingJson);
  putMap(j, "sysctl", l.sysctl);
  if (l.resources) j["resources"] = resourcesJson(*l.resources);
  putStr(j, "cgroupsPath", l.cgroupsPath);
  putObjects(j, "namespaces", l.namespaces, [](const Namespace& ns) {
    Json n{{"type", ns.type}};
    putStr(n, "path", ns.path);
    return n;
  });
  putObjects(j, "devices", l.devices, deviceJson);
  if (l.seccomp) j["seccomp"] = seccompJson(*l.seccomp);
  putStr(j, "rootfsPropagation", l.rootfsPropagation);
  putList(j, "maskedPaths", l.maskedPaths);
  putList(j, "readonlyPaths", l.readonlyPaths);
  putStr(j, "mountLabel", l.mountLabel);
  putOpt(j, "intelRdt", l.intelRdt);
  putOpt(j, "personality", l.personality);
  putOpt(j, "timeOffsets", l.timeOffsets);
  return j;
}

Json capabilitiesJson(const Capabilities& c) {
  Json j = Json::object();
  putOpt(j, "bounding", c.bounding);
  putOpt(j, "effective", c.effective);
  putOpt(j, "inheritable", c.inheritable);
  putOpt(j, "permitted", c.permitted);
  putOpt(j, "ambient", c.ambient);
  return j;
}

}  // namespace

StatusOr<Spec> parseSpec(std::string_view json_text) {
  return parseSpecNamed(json_text, "config.json");
}

StatusOr<Spec> loadSpec(const std::string& bundle_dir) {
  std::string path = fs::join(bundle_dir, "config.json");
  auto text = fs::readFile(path);
  if (!text.ok()) {
    return withContext(text.status(),
                       strCat("read bundle config \"", path,
                              "\" (is the bundle directory right? `berth-runtime spec` "
                              "writes a default config.json)"));
  }
  return parseSpecNamed(*text, strCat("\"", path, "\""));
}

StatusOr<Process> parseProcess(std::string_view json_text) {
  ASSIGN_OR_RETURN(Json doc, json::parse(json_text, "process.json"));
  Process process;
  RETURN_IF_ERROR_CTX(readValue(doc, "process", process), "process.json");
  return process;
}

nlohmann::json toJson(const Process& p) {
  Json j = Json::object();
  if (p.terminal) j["terminal"] = true;
  if (p.consoleSize) {
    j["consoleSize"] = Json{{"height", p.consoleSize->height}, {"width", p.consoleSize->width}};
  }
  Json user{{"uid", p.user.uid}, {"gid", p.user.gid}};
  putOpt(user, "umask", p.user.umask);
  putList(user, "additionalGids", p.user.additionalGids);
  putStr(user, "username", p.user.username);
  j["user"] = std::move(user);
  putList(j, "args", p.args);
  putOpt(j, "commandLine", p.commandLine);
  putList(j, "env", p.env);
  j["cwd"] = p.cwd;
  if (p.capabilities) j["capabilities"] = capabilitiesJson(*p.capabilities);
  putObjects(j, "rlimits", p.rlimits, [](const Rlimit& r) {
    return Json{{"type", r.type}, {"hard", r.hard}, {"soft", r.soft}};
  });
  if (p.noNewPrivileges) j["noNewPrivileges"] = true;
  putStr(j, "apparmorProfile", p.apparmorProfile);
  putOpt(j, "oomScoreAdj", p.oomScoreAdj);
  putStr(j, "selinuxLabel", p.selinuxLabel);
  putOpt(j, "ioPriority", p.ioPriority);
  putOpt(j, "scheduler", p.scheduler);
  return j;
}

nlohmann::json toJson(const Spec& spec) {
  Json j = Json::object();
  j["ociVersion"] = spec.ociVersion;
  if (spec.process) j["process"] = toJson(*spec.process);
  if (spec.root) {
    Json root{{"path", spec.root->path}};
    if (spec.root->readonly) root["readonly"] = true;
    j["root"] = std::move(root);
  }
  putStr(j, "hostname", spec.hostname);
  putStr(j, "domainname", spec.domainname);
  putObjects(j, "mounts", spec.mounts, mountJson);
  if (spec.hooks) j["hooks"] = hooksJson(*spec.hooks);
  putMap(j, "annotations", spec.annotations);
  if (spec.linux) j["linux"] = linuxJson(*spec.linux);
  return j;
}

StatusOr<int> namespaceFlag(const std::string& type) {
  if (type == "pid") return CLONE_NEWPID;
  if (type == "network") return CLONE_NEWNET;
  if (type == "mount") return CLONE_NEWNS;
  if (type == "ipc") return CLONE_NEWIPC;
  if (type == "uts") return CLONE_NEWUTS;
  if (type == "user") return CLONE_NEWUSER;
  if (type == "cgroup") return CLONE_NEWCGROUP;
  if (type == "time") return CLONE_NEWTIME;
  return invalidArgument("unknown namespace type \"", type,
                         "\"; use one of pid, network, mount, ipc, uts, user, cgroup, time");
}

std::string namespaceProcName(const std::string& type) {
  if (type == "network") return "net";
  if (type == "mount") return "mnt";
  return type;
}

}  // namespace berth::oci
