#include "ctl/client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <yaml-cpp/yaml.h>

#include "common/unix_socket.h"
#include "common/fs.h"
#include "common/unique_fd.h"

namespace berth::ctl {
namespace {

const char* codeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "UNKNOWN";
  }
}

Status make(grpc::StatusCode code, std::string message) {
  return Status(static_cast<absl::StatusCode>(code), message);
}

// connect(2) to a unix socket path; 0 or the errno.
int probeUnixSocket(const std::string& path) {
  auto fd = connectUnixSocket(path);
  if (fd.ok()) return 0;
  switch (fd.status().code()) {
    case absl::StatusCode::kNotFound: return ENOENT;
    case absl::StatusCode::kPermissionDenied: return EACCES;
    case absl::StatusCode::kInvalidArgument: return ENAMETOOLONG;
    default: return ECONNREFUSED;
  }
}

template <typename T>
StatusOr<std::optional<T>> yamlScalar(const YAML::Node& root, const char* key,
                                      const std::string& path, const char* want) {
  YAML::Node node = root[key];
  if (!node || node.IsNull()) return std::optional<T>();
  if (!node.IsScalar()) {
    return invalidArgument(path, ": \"", key, "\" must be ", want);
  }
  try {
    return std::optional<T>(node.as<T>());
  } catch (const YAML::Exception&) {
    return invalidArgument(path, ": \"", key, "\" must be ", want, ", not \"",
                           node.Scalar(), "\"");
  }
}

}  // namespace

StatusOr<CrictlConfig> parseCrictlConfig(const std::string& text, const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return invalidArgument("parse ", path, ": line ", e.mark.line + 1, ": ", e.msg);
  }
  CrictlConfig config;
  if (!root || root.IsNull()) return config;
  if (!root.IsMap()) {
    return invalidArgument(path, ": must be a YAML mapping of crictl keys (runtime-endpoint, "
                           "image-endpoint, timeout, debug)");
  }
  ASSIGN_OR_RETURN(config.runtime_endpoint,
                   yamlScalar<std::string>(root, "runtime-endpoint", path, "a string"));
  ASSIGN_OR_RETURN(config.image_endpoint,
                   yamlScalar<std::string>(root, "image-endpoint", path, "a string"));
  ASSIGN_OR_RETURN(config.timeout_seconds,
                   yamlScalar<int>(root, "timeout", path, "a number of seconds"));
  ASSIGN_OR_RETURN(config.debug, yamlScalar<bool>(root, "debug", path, "true or false"));
  return config;
}

StatusOr<Endpoints> resolveEndpoints(const GlobalFlags& flags,
                                     const std::function<const char*(const char*)>& getenv,
                                     const std::string& default_config) {
  auto env = [&](const char* name) -> std::optional<std::string> {
    const char* v = getenv(name);
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
  };

  Endpoints out;
  CrictlConfig file;
  std::string config_path;
  bool must_exist = true;
  if (flags.config_file) {
    config_path = *flags.config_file;
  } else if (auto e = env("CRI_CONFIG_FILE")) {
    config_path = *e;
  } else {
    config_path = default_config;
    must_exist = false;
  }
  if (!config_path.empty() && (must_exist || fs::exists(config_path))) {
    auto text = fs::readFile(config_path);
    if (!text.ok()) {
      return withContext(text.status(), "read berthctl/crictl config file");
    }
    ASSIGN_OR_RETURN(file, parseCrictlConfig(*text, config_path));
    out.config_file = config_path;
  }

  if (flags.runtime_endpoint) {
    out.runtime_endpoint = *flags.runtime_endpoint;
  } else if (auto e = env("CONTAINER_RUNTIME_ENDPOINT")) {
    out.runtime_endpoint = *e;
  } else if (file.runtime_endpoint && !file.runtime_endpoint->empty()) {
    out.runtime_endpoint = *file.runtime_endpoint;
  } else {
    out.runtime_endpoint = kDefaultEndpoint;
  }
  if (flags.image_endpoint) {
    out.image_endpoint = *flags.image_endpoint;
  } else if (auto e = env("IMAGE_SERVICE_ENDPOINT")) {
    out.image_endpoint = *e;
  } else if (file.image_endpoint && !file.image_endpoint->empty()) {
    out.image_endpoint = *file.image_endpoint;
  } else {
    out.image_endpoint = out.runtime_endpoint;
  }
  if (out.runtime_endpoint.empty()) {
    return invalidArgument("--runtime-endpoint is empty; give a socket such as ",
                           kDefaultEndpoint);
  }
  if (out.image_endpoint.empty()) {
    return invalidArgument("--image-endpoint is empty; give a socket such as ",
                           kDefaultEndpoint, " or leave it unset to use the runtime endpoint");
  }

  int timeout = flags.timeout_seconds.value_or(file.timeout_seconds.value_or(kDefaultTimeoutSeconds));
  if (timeout <= 0) {
    return invalidArgument("timeout ", timeout, " (from ",
                           flags.timeout_seconds ? "--timeout" : config_path.c_str(),
                           "): must be a positive number of seconds");
  }
  out.timeout = std::chrono::seconds(timeout);
  out.debug = flags.debug || file.debug.value_or(false);
  return out;
}

StatusOr<std::string> grpcTarget(const std::string& endpoint) {
  if (endpoint.rfind("unix://", 0) == 0 || endpoint.rfind("unix:", 0) == 0) return endpoint;
  if (!endpoint.empty() && endpoint[0] == '/') return "unix://" + endpoint;
  if (endpoint.rfind("tcp://", 0) == 0) return endpoint.substr(6);
  return invalidArgument("endpoint \"", endpoint,
                         "\": unsupported; use unix:///path/to/socket, /path/to/socket or "
                         "tcp://host:port");
}

std::string unixSocketPath(const std::string& endpoint) {
  if (endpoint.rfind("unix://", 0) == 0) return endpoint.substr(7);
  if (endpoint.rfind("unix:", 0) == 0) return endpoint.substr(5);
  if (!endpoint.empty() && endpoint[0] == '/') return endpoint;
  return "";
}

Status rpcError(const grpc::Status& status, const std::string& rpc, const std::string& endpoint,
                const std::string& flag, std::chrono::seconds timeout) {
  grpc::StatusCode code = status.error_code();
  const std::string& msg = status.error_message();
  switch (code) {
    case grpc::StatusCode::OK:
      return absl::OkStatus();
    case grpc::StatusCode::UNIMPLEMENTED:
      return make(code, strCat("the runtime at ", endpoint, " does not implement ", rpc,
                               " yet (UNIMPLEMENTED", msg.empty() ? "" : ": ", msg,
                               "); berthd serves it once the feature lands, or point ", flag,
                               " at a runtime that has it"));
    case grpc::StatusCode::UNAVAILABLE: {
      std::string path = unixSocketPath(endpoint);
      int err = path.empty() ? 0 : probeUnixSocket(path);
      if (err != 0) {
        return make(code, strCat("connect to ", endpoint, ": ", std::strerror(err),
                                 "; is berthd running? (set ", flag, " or ",
                                 kDefaultConfigFile, ")"));
      }
      return make(code, strCat(rpc, " on ", endpoint, ": unavailable: ", msg,
                               "; is berthd running? (set ", flag, " or ",
                               kDefaultConfigFile, ")"));
    }
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return make(code, strCat(rpc, " on ", endpoint, ": no answer within ", timeout.count(),
                               "s (", msg, "); raise --timeout or check that the runtime is "
                               "responsive"));
    default:
      return make(code, strCat(rpc, " failed (", codeName(code), "): ", msg));
  }
}

StatusOr<std::unique_ptr<CriClient>> CriClient::create(const Endpoints& endpoints) {
  ASSIGN_OR_RETURN(std::string runtime_target, grpcTarget(endpoints.runtime_endpoint));
  ASSIGN_OR_RETURN(std::string image_target, grpcTarget(endpoints.image_endpoint));
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(16 << 20);
  auto runtime_channel =
      grpc::CreateCustomChannel(runtime_target, grpc::InsecureChannelCredentials(), args);
  auto image_channel = image_target == runtime_target
                           ? runtime_channel
                           : grpc::CreateCustomChannel(
                                 image_target, grpc::InsecureChannelCredentials(), args);
  std::unique_ptr<CriClient> client(new CriClient(endpoints));
  client->runtime_ = runtime::v1::RuntimeService::NewStub(runtime_channel);
  client->images_ = runtime::v1::ImageService::NewStub(image_channel);
  return client;
}

std::unique_ptr<grpc::ClientContext> CriClient::context(
    std::optional<std::chrono::seconds> timeout) const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  std::chrono::seconds t = timeout.value_or(endpoints_.timeout);
  if (t.count() > 0) ctx->set_deadline(std::chrono::system_clock::now() + t);
  return ctx;
}

Status CriClient::runtimeError(const grpc::Status& status, const std::string& rpc,
                               std::optional<std::chrono::seconds> timeout) const {
  return rpcError(status, rpc, endpoints_.runtime_endpoint, "--runtime-endpoint",
                  timeout.value_or(endpoints_.timeout));
}

Status CriClient::imageError(const grpc::Status& status, const std::string& rpc,
                             std::optional<std::chrono::seconds> timeout) const {
  // An image endpoint that defaulted to the runtime endpoint is set by --runtime-endpoint.
  const char* flag = endpoints_.image_endpoint == endpoints_.runtime_endpoint
                         ? "--runtime-endpoint"
                         : "--image-endpoint";
  return rpcError(status, rpc, endpoints_.image_endpoint, flag,
                  timeout.value_or(endpoints_.timeout));
}

}  // namespace berth::ctl
