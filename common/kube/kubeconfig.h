// Where and how to reach a Kubernetes API server: a kubeconfig file (clientcmd v1
// Config, as kubectl reads it) or the pod's in-cluster service account.
//
// kubeconfig fields read (k8s.io/client-go/tools/clientcmd/api/v1 types.go):
//   current-context
//   clusters[].name, clusters[].cluster.{server, certificate-authority,
//     certificate-authority-data, insecure-skip-tls-verify, tls-server-name}
//   users[].name, users[].user.{client-certificate, client-certificate-data,
//     client-key, client-key-data, token, tokenFile}
//   contexts[].name, contexts[].context.{cluster, user, namespace}
// *-data fields are base64 PEM; file fields are read at load time, relative paths
// resolved against the kubeconfig's directory (clientcmd's ResolvePaths). A *-data
// field wins over its file field, as in client-go. `token` wins over `tokenFile` for
// the first request, and the token file is still re-read when it changes (as
// client-go's cached token source does). exec/auth-provider plugins and basic auth
// are not supported: a user that has only those is an Unimplemented error.
//
// In-cluster (client-go rest.InClusterConfig): env KUBERNETES_SERVICE_HOST and
// KUBERNETES_SERVICE_PORT, and under the service-account directory the files token,
// ca.crt and namespace.
//
// Thread-safety: pure functions (they read files and env), thread-safe.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/status.h"

namespace berth::kube {

inline constexpr char kServiceAccountDir[] = "/var/run/secrets/kubernetes.io/serviceaccount";

struct ClientConfig {
  // Base URL, "https://10.0.0.1:6443" (may carry a path prefix; no trailing '/').
  std::string server;
  // PEM bundle of the CAs that sign the server's certificate; empty -> the system's.
  std::string ca_pem;
  bool insecure_skip_tls_verify = false;
  // Name to verify the server certificate against instead of the URL's host.
  std::string tls_server_name;
  // Client certificate authentication (both PEM) — or empty.
  std::string client_cert_pem;
  std::string client_key_pem;
  // Bearer token; with token_file set, the file's current content replaces it
  // whenever the file changes.
  std::string bearer_token;
  std::string token_file;
  // The namespace of the context (or the pod's own); "default" when unset.
  std::string default_namespace = "default";
  // Timeouts for one request (watches use their own; see WatchOptions).
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds request_timeout{60000};
  std::string user_agent = "berth/0.1";
  // Where this came from, for logs and errors: "kubeconfig /root/.kube/config context
  // \"ctx\"" or "in-cluster service account".
  std::string source;
};

// Loads `path`; `context_override` (non-empty) replaces current-context. Errors
// (InvalidArgument unless said; each names the file and the context/cluster/user):
// unreadable file (NotFound/PermissionDenied), YAML syntax, no current-context and no
// override, context/cluster/user not defined, cluster without "server", bad base64 in
// a *-data field, an unreadable referenced file, a user with only an exec or
// auth-provider plugin (Unimplemented).
StatusOr<ClientConfig> loadKubeconfig(const std::string& path,
                                      std::string_view context_override = "");

// Same, from the text of a kubeconfig; `path` names it in errors and its directory is
// the base of relative paths.
StatusOr<ClientConfig> parseKubeconfig(std::string_view text, const std::string& path,
                                       std::string_view context_override = "");

// In-cluster config from the environment (KUBERNETES_SERVICE_HOST/_PORT) and the
// service-account directory `dir`. Errors: FailedPrecondition when the env vars are
// unset (not running in a pod); NotFound/InvalidArgument naming the token or ca.crt
// file that is missing or empty. A missing namespace file means "default".
StatusOr<ClientConfig> inClusterConfig(const std::string& dir = kServiceAccountDir);

// Same with host and port given (tests, or a caller that read them elsewhere). An
// IPv6 host is bracketed in the URL.
StatusOr<ClientConfig> inClusterConfigFrom(const std::string& dir, std::string_view host,
                                           std::string_view port);

}  // namespace berth::kube
