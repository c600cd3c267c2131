#include "ctl/output.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <google/protobuf/util/json_util.h>
#include <yaml-cpp/yaml.h>

namespace berth::ctl {
namespace {

namespace v1 = runtime::v1;

// Strings YAML 1.1 (what sigs.k8s.io/yaml's yaml.v2 speaks) would read as something
// else, so they must be quoted to stay strings.
bool yamlNeedsQuotes(const std::string& s) {
  if (s.empty()) return true;
  static const char* const kWords[] = {"true", "false", "yes", "no", "on", "off", "y", "n",
                                       "null", "~", ".inf", "-.inf", "+.inf", ".nan"};
  std::string lower = s;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  for (const char* w : kWords) {
    if (lower == w) return true;
  }
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  if (end != s.c_str() && *end == '\0') return true;  // a number, hex included
  if (std::isspace(static_cast<unsigned char>(s.front())) ||
      std::isspace(static_cast<unsigned char>(s.back()))) {
    return true;
  }
  return false;
}

void emitYaml(YAML::Emitter& out, const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::object:
      if (value.empty()) {
        out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
        return;
      }
      out << YAML::BeginMap;
      for (auto it = value.begin(); it != value.end(); ++it) {  // std::map: sorted keys
        out << YAML::Key;
        if (yamlNeedsQuotes(it.key())) out << YAML::DoubleQuoted;
        out << it.key() << YAML::Value;
        emitYaml(out, it.value());
      }
      out << YAML::EndMap;
      return;
    case nlohmann::json::value_t::array:
      if (value.empty()) {
        out << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
        return;
      }
      out << YAML::BeginSeq;
      for (const auto& item : value) emitYaml(out, item);
      out << YAML::EndSeq;
      return;
    case nlohmann::json::value_t::string: {
      const std::string& s = value.get_ref<const std::string&>();
      if (yamlNeedsQuotes(s)) out << YAML::DoubleQuoted;
      out << s;
      return;
    }
    case nlohmann::json::value_t::boolean:
      out << (value.get<bool>() ? "true" : "false");
      return;
    case nlohmann::json::value_t::null:
      out << YAML::Null;
      return;
    default:  // numbers
      out << value.dump();
      return;
  }
}

std::string padRight(const std::string& s, size_t width) {
  return s.size() >= width ? s : s + std::string(width - s.size(), ' ');
}

std::string labelOr(const google::protobuf::Map<std::string, std::string>& labels,
                    const std::string& key, const std::string& fallback) {
  auto it = labels.find(key);
  return it == labels.end() ? fallback : it->second;
}

std::string cpuPercent(const v1::CpuUsage& cpu) {
  if (!cpu.has_usage_nano_cores()) return "0.00";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f",
                static_cast<double>(cpu.usage_nano_cores().value()) / 1e7);
  return buf;
}

}  // namespace

StatusOr<OutputFormat> parseOutputFormat(const std::string& text, OutputFormat fallback) {
  if (text.empty()) return fallback;
  if (text == "table") return OutputFormat::kTable;
  if (text == "json") return OutputFormat::kJson;
  if (text == "yaml") return OutputFormat::kYaml;
  return invalidArgument("--output \"", text, "\": unsupported; use json, yaml or table");
}

StatusOr<OrderedJson> messageToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;  // protojson EmitDefaultValues
  options.preserve_proto_field_names = false;    // protojson's default: lowerCamelCase
  std::string text;
  auto st = google::protobuf::util::MessageToJsonString(message, &text, options);
  if (!st.ok()) {
    return internalError("serialise ", message.GetTypeName(), " as JSON: ",
                         std::string(st.message()));
  }
  try {
    return OrderedJson::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return internalError("re-read ", message.GetTypeName(), " JSON: ", e.what());
  }
}

std::string renderJson(const OrderedJson& value) { return value.dump(2); }

std::string renderYaml(const OrderedJson& value) {
  // Through nlohmann::json (std::map objects) so keys come out sorted, as
  // sigs.k8s.io/yaml prints them.
  nlohmann::json sorted = nlohmann::json::parse(value.dump());
  YAML::Emitter out;
  out.SetIndent(2);
  emitYaml(out, sorted);
  return out.c_str();
}

std::string render(const OrderedJson& value, OutputFormat format) {
  return format == OutputFormat::kYaml ? renderYaml(value) : renderJson(value);
}

StatusOr<OrderedJson> statusWithInfo(const google::protobuf::Message& status,
                                     const google::protobuf::Map<std::string, std::string>& info) {
  OrderedJson out = OrderedJson::object();
  ASSIGN_OR_RETURN(out["status"], messageToJson(status));
  if (info.empty()) return out;
  std::vector<std::string> keys;
  for (const auto& [k, v] : info) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  OrderedJson obj = OrderedJson::object();
  for (const std::string& k : keys) {
    const std::string& v = info.at(k);
    if (!v.empty() && v.front() == '{') {
      try {
        obj[k] = OrderedJson::parse(v);
        continue;
      } catch (const nlohmann::json::exception&) {
        // Not JSON after all: shown as the string it is.
      }
    }
    std::string s = v;
    while (!s.empty() && s.front() == '"') s.erase(0, 1);
    while (!s.empty() && s.back() == '"') s.pop_back();
    obj[k] = s;
  }
  out["info"] = std::move(obj);
  return out;
}

std::string Table::render() const {
  size_t columns = header_.size();
  std::vector<size_t> widths(columns, 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < columns; ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  };
  measure(header_);
  for (const auto& row : rows_) measure(row);
  auto line = [&](const std::vector<std::string>& row) {
    std::string out;
    for (size_t i = 0; i < columns; ++i) {
      std::string cell = i < row.size() ? row[i] : "";
      if (i + 1 == columns) {
        out += cell;
      } else {
        out += padRight(cell, std::max<size_t>(20, widths[i] + 3));
      }
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string out = line(header_);
  for (const auto& row : rows_) out += line(row);
  return out;
}

std::string truncateId(const std::string& id, const std::string& prefix) {
  std::string s = id;
  if (!prefix.empty() && s.rfind(prefix, 0) == 0) s = s.substr(prefix.size());
  return s.size() > 13 ? s.substr(0, 13) : s;
}

std::string humanSize(uint64_t bytes) {
  static const char* const kUnits[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
  double v = static_cast<double>(bytes);
  size_t u = 0;
  while (v >= 1000 && u + 1 < std::size(kUnits)) {
    v /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3g%s", v, kUnits[u]);
  return buf;
}

std::string humanAgo(int64_t ns_ago) {
  double seconds_d = static_cast<double>(ns_ago) / 1e9;
  int64_t seconds = static_cast<int64_t>(seconds_d);
  std::string d;
  if (seconds < 1) {
    d = "Less than a second";
  } else if (seconds == 1) {
    d = "1 second";
  } else if (seconds < 60) {
    d = strCat(seconds, " seconds");
  } else if (int64_t minutes = seconds / 60; minutes == 1) {
    d = "About a minute";
  } else if (minutes < 60) {
    d = strCat(minutes, " minutes");
  } else if (int64_t hours = static_cast<int64_t>(std::llround(seconds_d / 3600)); hours == 1) {
    d = "About an hour";
  } else if (hours < 48) {
    d = strCat(hours, " hours");
  } else if (hours < 24 * 7 * 2) {
    d = strCat(hours / 24, " days");
  } else if (hours < 24 * 30 * 2) {
    d = strCat(hours / 24 / 7, " weeks");
  } else if (hours < 24 * 365 * 2) {
    d = strCat(hours / 24 / 30, " months");
  } else {
    d = strCat(seconds / 3600 / 24 / 365, " years");
  }
  return d + " ago";
}

std::string podStateName(v1::PodSandboxState state) {
  return state == v1::SANDBOX_READY ? "Ready" : "NotReady";
}

std::string containerStateName(v1::ContainerState state) {
  switch (state) {
    case v1::CONTAINER_CREATED: return "Created";
    case v1::CONTAINER_RUNNING: return "Running";
    case v1::CONTAINER_EXITED: return "Exited";
    default: return "Unknown";
  }
}

std::string imagesTable(const v1::ListImagesResponse& images, bool digests, bool no_trunc) {
  std::vector<std::string> header = {"IMAGE", "TAG"};
  if (digests) header.push_back("DIGEST");
  header.insert(header.end(), {"IMAGE ID", "SIZE"});
  Table table(header);
  for (const v1::Image& image : images.images()) {
    std::string id = no_trunc ? image.id() : truncateId(image.id(), "sha256:");
    std::string digest = "<none>";
    if (image.repo_digests_size() > 0) {
      const std::string& d = image.repo_digests(0);
      size_t at = d.find('@');
      digest = at == std::string::npos ? d : d.substr(at + 1);
      if (!no_trunc) digest = truncateId(digest, "sha256:");
    }
    std::vector<std::pair<std::string, std::string>> names;
    for (const std::string& tag : image.repo_tags()) {
      size_t colon = tag.rfind(':');
      size_t slash = tag.rfind('/');
      if (colon == std::string::npos || (slash != std::string::npos && colon < slash)) {
        names.emplace_back(tag, "<none>");
      } else {
        names.emplace_back(tag.substr(0, colon), tag.substr(colon + 1));
      }
    }
    if (names.empty()) {
      for (const std::string& d : image.repo_digests()) {
        names.emplace_back(d.substr(0, d.find('@')), "<none>");
      }
    }
    if (names.empty()) names.emplace_back("<none>", "<none>");
    for (const auto& [repo, tag] : names) {
      std::vector<std::string> row = {repo, tag};
      if (digests) row.push_back(digest);
      row.insert(row.end(), {id, humanSize(image.size())});
      table.addRow(std::move(row));
    }
  }
  return table.render();
}

std::string podsTable(const std::vector<v1::PodSandbox>& pods, int64_t now_ns, bool no_trunc) {
  Table table({"POD ID", "CREATED", "STATE", "NAME", "NAMESPACE", "ATTEMPT", "RUNTIME"});
  for (const v1::PodSandbox& pod : pods) {
    table.addRow({no_trunc ? pod.id() : truncateId(pod.id()),
                  humanAgo(now_ns - pod.created_at()), podStateName(pod.state()),
                  pod.metadata().name(), pod.metadata().namespace_(),
                  std::to_string(pod.metadata().attempt()),
                  pod.runtime_handler().empty() ? "(default)" : pod.runtime_handler()});
  }
  return table.render();
}

std::string containersTable(const std::vector<v1::Container>& containers, int64_t now_ns,
                            bool no_trunc) {
  Table table({"CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT", "POD ID", "POD"});
  for (const v1::Container& c : containers) {
    std::string image = c.image().image();
    if (!no_trunc && image.rfind("sha256:", 0) == 0) image = truncateId(image, "sha256:");
    table.addRow({no_trunc ? c.id() : truncateId(c.id()), image,
                  humanAgo(now_ns - c.created_at()), containerStateName(c.state()),
                  c.metadata().name(), std::to_string(c.metadata().attempt()),
                  no_trunc ? c.pod_sandbox_id() : truncateId(c.pod_sandbox_id()),
                  labelOr(c.labels(), "io.kubernetes.pod.name", "unknown")});
  }
  return table.render();
}

std::string containerStatsTable(const v1::ListContainerStatsResponse& stats) {
  Table table({"CONTAINER", "NAME", "CPU %", "MEM", "DISK", "INODES"});
  for (const v1::ContainerStats& s : stats.stats()) {
    table.addRow({truncateId(s.attributes().id()), s.attributes().metadata().name(),
                  cpuPercent(s.cpu()), humanSize(s.memory().working_set_bytes().value()),
                  humanSize(s.writable_layer().used_bytes().value()),
                  std::to_string(s.writable_layer().inodes_used().value())});
  }
  return table.render();
}

std::string podStatsTable(const v1::ListPodSandboxStatsResponse& stats) {
  Table table({"POD", "POD ID", "CPU %", "MEM"});
  for (const v1::PodSandboxStats& s : stats.stats()) {
    table.addRow({s.attributes().metadata().name(), truncateId(s.attributes().id()),
                  cpuPercent(s.linux().cpu()),
                  humanSize(s.linux().memory().working_set_bytes().value())});
  }
  return table.render();
}

}  // namespace berth::ctl
