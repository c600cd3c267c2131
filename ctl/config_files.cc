#include "ctl/config_files.h"

#include <cstdlib>

#include <google/protobuf/util/json_util.h>
#include <yaml-cpp/yaml.h>

#include "common/fs.h"

namespace berth::ctl {
namespace {

namespace v1 = runtime::v1;

// YAML 1.1-style resolution of a plain scalar (what sigs.k8s.io/yaml does).
nlohmann::json plainScalar(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  char* end = nullptr;
  errno = 0;
  long long i = std::strtoll(s.c_str(), &end, 10);
  if (*end == '\0' && errno == 0 && (std::isdigit(static_cast<unsigned char>(s[0])) ||
                                     s[0] == '-' || s[0] == '+')) {
    return i;
  }
  double d = std::strtod(s.c_str(), &end);
  if (*end == '\0' && s.find_first_of("0123456789") != std::string::npos &&
      s.find_first_of("xX") == std::string::npos) {
    return d;
  }
  return s;
}

nlohmann::json toJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json obj = nlohmann::json::object();
      for (const auto& kv : node) obj[kv.first.Scalar()] = toJson(kv.second);
      return obj;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& item : node) arr.push_back(toJson(item));
      return arr;
    }
    case YAML::NodeType::Scalar:
      // Tag "!" marks a quoted (non-plain) scalar: always a string.
      if (node.Tag() == "!") return node.Scalar();
      return plainScalar(node.Scalar());
    default:
      return nullptr;
  }
}

template <typename Message>
StatusOr<Message> parseConfig(const std::string& text, const std::string& what) {
  std::string json_text;
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) {
    return invalidArgument(what, " is empty; give a CRI ", Message().GetTypeName(),
                           " as JSON or YAML (see crictl's pod-config.json / "
                           "container-config.json)");
  }
  if (first != std::string::npos && text[first] == '{') {
    json_text = text;
  } else {
    ASSIGN_OR_RETURN(nlohmann::json json, yamlToJson(text, what));
    json_text = json.dump();
  }
  Message message;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto st = google::protobuf::util::JsonStringToMessage(json_text, &message, options);
  if (!st.ok()) {
    std::string detail(st.message());
    while (!detail.empty() && (detail.front() == ':' || detail.front() == ' ')) {
      detail.erase(0, 1);
    }
    return invalidArgument("parse ", what, " as CRI ", message.GetTypeName(), ": ", detail);
  }
  return message;
}

std::string randomUuid() {
  auto uuid = fs::readFile("/proc/sys/kernel/random/uuid");
  if (uuid.ok()) return std::string(trim(*uuid));
  return "00000000-0000-4000-8000-000000000000";
}

StatusOr<std::string> readConfig(const std::string& path, const char* kind) {
  auto text = fs::readFile(path);
  if (!text.ok()) {
    if (absl::IsNotFound(text.status())) return notFound(kind, " \"", path, "\" not found");
    return withContext(text.status(), strCat("read ", kind));
  }
  return text;
}

}  // namespace

StatusOr<nlohmann::json> yamlToJson(const std::string& text, const std::string& what) {
  try {
    YAML::Node root = YAML::Load(text);
    return toJson(root);
  } catch (const YAML::Exception& e) {
    return invalidArgument("parse ", what, ": line ", e.mark.line + 1, ": ", e.msg);
  }
}

StatusOr<v1::PodSandboxConfig> parsePodSandboxConfig(const std::string& text,
                                                     const std::string& what) {
  ASSIGN_OR_RETURN(auto config, parseConfig<v1::PodSandboxConfig>(text, what));
  if (!config.has_metadata()) {
    return invalidArgument(what, ": metadata is not set; give metadata.name and "
                           "metadata.namespace");
  }
  if (config.metadata().name().empty() || config.metadata().namespace_().empty()) {
    return invalidArgument(what, ": metadata.name and metadata.namespace must both be set");
  }
  if (config.metadata().uid().empty()) config.mutable_metadata()->set_uid(randomUuid());
  return config;
}

StatusOr<v1::ContainerConfig> parseContainerConfig(const std::string& text,
                                                   const std::string& what) {
  ASSIGN_OR_RETURN(auto config, parseConfig<v1::ContainerConfig>(text, what));
  if (!config.has_metadata() || config.metadata().name().empty()) {
    return invalidArgument(what, ": metadata.name is not set");
  }
  if (config.image().image().empty()) {
    return invalidArgument(what, ": image.image is not set; name the image to run");
  }
  return config;
}

StatusOr<v1::PodSandboxConfig> loadPodSandboxConfig(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, readConfig(path, "pod config"));
  return parsePodSandboxConfig(text, strCat("pod config \"", path, "\""));
}

StatusOr<v1::ContainerConfig> loadContainerConfig(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, readConfig(path, "container config"));
  return parseContainerConfig(text, strCat("container config \"", path, "\""));
}

}  // namespace berth::ctl
