#include "common/kube/kubeconfig.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>

#include "common/base64.h"
#include "common/fs.h"
#include "common/strings.h"

namespace berth::kube {
namespace {

std::string dirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Reads kubeconfig entries with yaml-cpp directly (not through the JSON conversion):
// every value here is text, and a token like 0123 must not turn into a number.
class KubeconfigReader {
 public:
  KubeconfigReader(const YAML::Node& root, const std::string& path)
      : root_(root), path_(path), base_dir_(dirName(path)) {}

  StatusOr<ClientConfig> read(std::string_view context_override) {
    std::string context_name(context_override);
    if (context_name.empty()) {
      ASSIGN_OR_RETURN(context_name, optString(root_, "current-context", "the file"));
    }
    if (context_name.empty()) {
      return invalidArgument("kubeconfig ", path_,
                             ": no current-context is set and no context was given "
                             "(set current-context or pass the context name)");
    }
    std::string where = strCat("context \"", context_name, "\"");
    ASSIGN_OR_RETURN(YAML::Node context, namedEntry("contexts", "context", context_name));
    ASSIGN_OR_RETURN(std::string cluster_name, optString(context, "cluster", where));
    ASSIGN_OR_RETURN(std::string user_name, optString(context, "user", where));
    ASSIGN_OR_RETURN(std::string ns, optString(context, "namespace", where));
    if (cluster_name.empty()) {
      return invalidArgument("kubeconfig ", path_, ": ", where, " has no \"cluster\"");
    }

    ClientConfig config;
    config.source = strCat("kubeconfig ", path_, " ", where);
    if (!ns.empty()) config.default_namespace = ns;
    RETURN_IF_ERROR(readCluster(cluster_name, config));
    if (!user_name.empty()) RETURN_IF_ERROR(readUser(user_name, config));
    return config;
  }

 private:
  Status readCluster(const std::string& name, ClientConfig& config) {
    std::string where = strCat("cluster \"", name, "\"");
    ASSIGN_OR_RETURN(YAML::Node cluster, namedEntry("clusters", "cluster", name));
    ASSIGN_OR_RETURN(config.server, optString(cluster, "server", where));
    if (config.server.empty()) {
      return invalidArgument("kubeconfig ", path_, ": ", where, " has no \"server\"");
    }
    while (!config.server.empty() && config.server.back() == '/') config.server.pop_back();
    ASSIGN_OR_RETURN(config.ca_pem, dataOrFile(cluster, "certificate-authority-data",
                                               "certificate-authority", where));
    ASSIGN_OR_RETURN(std::string insecure, optString(cluster, "insecure-skip-tls-verify", where));
    if (!insecure.empty()) {
      if (insecure == "true" || insecure == "True" || insecure == "TRUE") {
        config.insecure_skip_tls_verify = true;
      } else if (insecure != "false" && insecure != "False" && insecure != "FALSE") {
        return invalidArgument("kubeconfig ", path_, ": ", where,
                               ": \"insecure-skip-tls-verify\" must be true or false, not \"",
                               insecure, "\"");
      }
    }
    ASSIGN_OR_RETURN(config.tls_server_name, optString(cluster, "tls-server-name", where));
    return absl::OkStatus();
  }

  Status readUser(const std::string& name, ClientConfig& config) {
    std::string where = strCat("user \"", name, "\"");
    ASSIGN_OR_RETURN(YAML::Node user, namedEntry("users", "user", name));
    ASSIGN_OR_RETURN(config.client_cert_pem, dataOrFile(user, "client-certificate-data",
                                                        "client-certificate", where));
    ASSIGN_OR_RETURN(config.client_key_pem,
                     dataOrFile(user, "client-key-data", "client-key", where));
    if (config.client_cert_pem.empty() != config.client_key_pem.empty()) {
      return invalidArgument("kubeconfig ", path_, ": ", where, " has a client ",
                             config.client_cert_pem.empty() ? "key" : "certificate",
                             " but no client ",
                             config.client_cert_pem.empty() ? "certificate" : "key");
    }
    ASSIGN_OR_RETURN(config.bearer_token, optString(user, "token", where));
    ASSIGN_OR_RETURN(std::string token_file, optString(user, "tokenFile", where));
    if (!token_file.empty()) {
      config.token_file = resolve(token_file);
      if (config.bearer_token.empty()) {
        StatusOr<std::string> token = fs::readFile(config.token_file);
        if (!token.ok()) {
          return withContext(token.status(),
                             strCat("kubeconfig ", path_, ": ", where, ": \"tokenFile\""));
        }
        config.bearer_token = std::string(trim(*token));
      }
    }
    bool has_credentials = !config.client_cert_pem.empty() || !config.bearer_token.empty() ||
                           !config.token_file.empty();
    if (!has_credentials) {
      for (const char* plugin : {"exec", "auth-provider"}) {
        if (user[plugin]) {
          return unimplemented("kubeconfig ", path_, ": ", where, " uses an \"", plugin,
                               "\" credential plugin, which berth does not run; give the user "
                               "a token, tokenFile or client certificate instead");
        }
      }
    }
    return absl::OkStatus();
  }

  // The `section` entry whose name is `name`, returning its `field` mapping.
  StatusOr<YAML::Node> namedEntry(const char* section, const char* field,
                                  const std::string& name) {
    YAML::Node list = root_[section];
    if (list && list.IsSequence()) {
      for (const YAML::Node& entry : list) {
        if (!entry.IsMap()) continue;
        YAML::Node entry_name = entry["name"];
        if (entry_name && entry_name.IsScalar() && entry_name.Scalar() == name) {
          YAML::Node value = entry[field];
          if (!value || value.IsNull()) return YAML::Node(YAML::NodeType::Map);
          if (!value.IsMap()) {
            return invalidArgument("kubeconfig ", path_, ": ", field, " \"", name,
                                   "\": \"", field, "\" must be a mapping");
          }
          return value;
        }
      }
    } else if (list && !list.IsNull()) {
      return invalidArgument("kubeconfig ", path_, ": \"", section, "\" must be a list");
    }
    return invalidArgument("kubeconfig ", path_, ": ", field, " \"", name,
                           "\" is not defined in \"", section, "\"");
  }

  StatusOr<std::string> optString(const YAML::Node& map, const char* key,
                                  std::string_view where) {
    YAML::Node value = map[key];
    if (!value || value.IsNull()) return std::string();
    if (!value.IsScalar()) {
      return invalidArgument("kubeconfig ", path_, ": ", where, ": \"", key,
                             "\" must be a string");
    }
    return value.Scalar();
  }

  // Value of the base64 `data_key`, else the content of the file named by `file_key`.
  StatusOr<std::string> dataOrFile(const YAML::Node& map, const char* data_key,
                                   const char* file_key, std::string_view where) {
    ASSIGN_OR_RETURN(std::string data, optString(map, data_key, where));
    if (!data.empty()) {
      std::string compact;
      for (char c : data) {
        if (c != '\n' && c != '\r' && c != ' ') compact.push_back(c);
      }
      StatusOr<std::string> decoded = base64Decode(compact);
      if (!decoded.ok()) {
        return invalidArgument("kubeconfig ", path_, ": ", where, ": \"", data_key,
                               "\" is not valid base64: ", decoded.status().message());
      }
      return std::move(*decoded);
    }
    ASSIGN_OR_RETURN(std::string file, optString(map, file_key, where));
    if (file.empty()) return std::string();
    StatusOr<std::string> content = fs::readFile(resolve(file));
    if (!content.ok()) {
      return withContext(content.status(),
                         strCat("kubeconfig ", path_, ": ", where, ": \"", file_key, "\""));
    }
    return std::move(*content);
  }

  std::string resolve(const std::string& file) const {
    if (!file.empty() && file[0] == '/') return file;
    return fs::join(base_dir_, file);
  }

  YAML::Node root_;
  std::string path_;
  std::string base_dir_;
};

}  // namespace

StatusOr<ClientConfig> parseKubeconfig(std::string_view text, const std::string& path,
                                       std::string_view context_override) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return invalidArgument("kubeconfig ", path, ":", e.mark.line + 1, ":", e.mark.column + 1,
                           ": ", e.msg);
  }
  if (!root.IsMap()) {
    return invalidArgument("kubeconfig ", path, ": not a kubeconfig (expected a mapping with "
                           "clusters, users, contexts)");
  }
  try {
    return KubeconfigReader(root, path).read(context_override);
  } catch (const YAML::Exception& e) {
    return invalidArgument("kubeconfig ", path, ":", e.mark.line + 1, ": ", e.msg);
  }
}

StatusOr<ClientConfig> loadKubeconfig(const std::string& path,
                                      std::string_view context_override) {
  StatusOr<std::string> text = fs::readFile(path);
  if (!text.ok()) return withContext(text.status(), "read kubeconfig");
  return parseKubeconfig(*text, path, context_override);
}

StatusOr<ClientConfig> inClusterConfigFrom(const std::string& dir, std::string_view host,
                                           std::string_view port) {
  if (host.empty() || port.empty()) {
    return failedPrecondition("in-cluster config: KUBERNETES_SERVICE_HOST and "
                              "KUBERNETES_SERVICE_PORT must be set (is this running in a pod?)");
  }
  ClientConfig config;
  config.source = strCat("in-cluster service account ", dir);
  bool ipv6 = host.find(':') != std::string_view::npos;
  config.server = strCat("https://", ipv6 ? "[" : "", host, ipv6 ? "]" : "", ":", port);
  config.token_file = fs::join(dir, "token");
  StatusOr<std::string> token = fs::readFile(config.token_file);
  if (!token.ok()) return withContext(token.status(), "in-cluster config: service-account token");
  config.bearer_token = std::string(trim(*token));
  if (config.bearer_token.empty()) {
    return invalidArgument("in-cluster config: service-account token ", config.token_file,
                           " is empty");
  }
  std::string ca_file = fs::join(dir, "ca.crt");
  StatusOr<std::string> ca = fs::readFile(ca_file);
  if (!ca.ok()) return withContext(ca.status(), "in-cluster config: service-account CA");
  if (trim(*ca).empty()) {
    return invalidArgument("in-cluster config: service-account CA ", ca_file, " is empty");
  }
  config.ca_pem = std::move(*ca);
  StatusOr<std::string> ns = fs::readFile(fs::join(dir, "namespace"));
  if (ns.ok() && !trim(*ns).empty()) config.default_namespace = std::string(trim(*ns));
  return config;
}

StatusOr<ClientConfig> inClusterConfig(const std::string& dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  return inClusterConfigFrom(dir, host == nullptr ? "" : host, port == nullptr ? "" : port);
}

}  // namespace berth::kube
