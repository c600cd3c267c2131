// berthctl's connection to a CRI runtime: where the endpoints come from (crictl's
// rules), the gRPC channel and per-call deadlines, and how gRPC failures become
// messages that say which endpoint failed and what to do.
//
// Endpoint resolution (crictl's order, highest first):
//   runtime endpoint: --runtime-endpoint/-r, $CONTAINER_RUNTIME_ENDPOINT,
//                     runtime-endpoint in the config file, unix:///run/berth/berth.sock
//   image endpoint:   --image-endpoint/-i, $IMAGE_SERVICE_ENDPOINT, image-endpoint in
//                     the config file, else the resolved runtime endpoint
//   timeout:          --timeout/-t, timeout in the config file, 2 seconds
//   debug:            --debug/-D, debug in the config file
// The config file is --config FILE (which must exist), else $CRI_CONFIG_FILE, else
// /etc/crictl.yaml when it exists (crictl's format: YAML with the keys above, plus
// crictl's pull-image-on-create / disable-pull-on-run which berthctl accepts and ignores).
//
// Thread-safety: CriClient is safe to use from several threads (gRPC stubs are);
// the free functions are pure.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>

#include "common/status.h"
#include "cri/proto/api.grpc.pb.h"

namespace berth::ctl {

inline constexpr char kDefaultEndpoint[] = "unix:///run/berth/berth.sock";
inline constexpr char kDefaultConfigFile[] = "/etc/crictl.yaml";
inline constexpr int kDefaultTimeoutSeconds = 2;

// What the command line said (unset members were not given).
struct GlobalFlags {
  std::optional<std::string> runtime_endpoint;
  std::optional<std::string> image_endpoint;
  std::optional<std::string> config_file;
  std::optional<int> timeout_seconds;
  bool debug = false;
};

// The keys of crictl.yaml berthctl uses (unset when absent from the file).
struct CrictlConfig {
  std::optional<std::string> runtime_endpoint;
  std::optional<std::string> image_endpoint;
  std::optional<int> timeout_seconds;
  std::optional<bool> debug;
};

// The outcome of resolution.
struct Endpoints {
  std::string runtime_endpoint;
  std::string image_endpoint;
  std::chrono::seconds timeout{kDefaultTimeoutSeconds};
  bool debug = false;
  std::string config_file;  // the file that was read, "" when none
};

// Parses crictl.yaml text; `path` names it in errors. Unknown keys are ignored (crictl
// has more than berthctl needs). Errors: InvalidArgument for YAML syntax errors (with
// line) or a key of the wrong type (e.g. `timeout: soon`), naming the path and key.
StatusOr<CrictlConfig> parseCrictlConfig(const std::string& text, const std::string& path);

// Resolves the endpoints as described at the top of this file. `getenv` looks up
// environment variables (nullptr when unset; tests pass a fake); `default_config` is
// the file read when neither --config nor $CRI_CONFIG_FILE is given and it exists.
// Errors: NotFound when --config names a missing file; parse errors of the file;
// InvalidArgument for a negative or zero timeout or an empty endpoint.
StatusOr<Endpoints> resolveEndpoints(const GlobalFlags& flags,
                                     const std::function<const char*(const char*)>& getenv,
                                     const std::string& default_config = kDefaultConfigFile);

// The gRPC target for a crictl-style endpoint: "unix:///p" and "unix:/p" are kept,
// a bare absolute path "/p" becomes "unix:///p", "tcp://host:port" becomes
// "host:port". Errors: InvalidArgument for other schemes (e.g. "npipe://"), naming the
// endpoint and the accepted forms.
StatusOr<std::string> grpcTarget(const std::string& endpoint);

// The socket path of a unix endpoint ("" for others).
std::string unixSocketPath(const std::string& endpoint);

// Turns a failed RPC into an error for the user. `rpc` is the method name
// ("RunPodSandbox"), `endpoint` the endpoint it went to and `flag` the option that sets
// it ("--runtime-endpoint"). UNIMPLEMENTED says the runtime does not implement `rpc`
// yet; UNAVAILABLE probes the unix socket and says "connect to <endpoint>: <errno
// text>; is berthd running? (set <flag> or /etc/crictl.yaml)"; DEADLINE_EXCEEDED names
// the timeout and --timeout; others keep the server's code and message. The code of the
// result is the gRPC code.
Status rpcError(const grpc::Status& status, const std::string& rpc, const std::string& endpoint,
                const std::string& flag, std::chrono::seconds timeout);

// Stubs for the runtime and image services of the resolved endpoints (one channel when
// both are the same), with a context factory that applies the deadline.
class CriClient {
 public:
  // Builds the channels (no connection is made until the first call). Errors: as
  // grpcTarget() for either endpoint.
  static StatusOr<std::unique_ptr<CriClient>> create(const Endpoints& endpoints);

  runtime::v1::RuntimeService::Stub& runtime() { return *runtime_; }
  runtime::v1::ImageService::Stub& images() { return *images_; }
  const Endpoints& endpoints() const { return endpoints_; }

  // A context whose deadline is `timeout` from now (the resolved timeout when unset;
  // no deadline when zero).
  std::unique_ptr<grpc::ClientContext> context(
      std::optional<std::chrono::seconds> timeout = std::nullopt) const;

  // rpcError() for a RuntimeService / ImageService call; `timeout` as given to
  // context().
  Status runtimeError(const grpc::Status& status, const std::string& rpc,
                      std::optional<std::chrono::seconds> timeout = std::nullopt) const;
  Status imageError(const grpc::Status& status, const std::string& rpc,
                    std::optional<std::chrono::seconds> timeout = std::nullopt) const;

 private:
  explicit CriClient(Endpoints endpoints) : endpoints_(std::move(endpoints)) {}

  Endpoints endpoints_;
  std::unique_ptr<runtime::v1::RuntimeService::Stub> runtime_;
  std::unique_ptr<runtime::v1::ImageService::Stub> images_;
};

}  // namespace berth::ctl
