#include "common/kube/yaml_json.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>

#include "common/strings.h"

namespace berth::kube {
namespace {

using json::Json;

constexpr std::string_view kTagPrefix = "tag:yaml.org,2002:";

bool isDigits(std::string_view s, int base) {
  if (s.empty()) return false;
  for (char c : s) {
    bool ok = base == 16 ? std::isxdigit(static_cast<unsigned char>(c)) != 0
              : base == 8 ? (c >= '0' && c <= '7')
                          : (c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// Integer per the core schema: [-+]?[0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+.
std::optional<Json> parseInt(std::string_view s) {
  int base = 10;
  bool negative = false;
  std::string_view digits = s;
  if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'o')) {
    base = digits[1] == 'x' ? 16 : 8;
    digits.remove_prefix(2);
  } else if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) {
    negative = digits[0] == '-';
    digits.remove_prefix(1);
  }
  if (!isDigits(digits, base)) return std::nullopt;
  uint64_t magnitude = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), magnitude, base);
  if (ec == std::errc::result_out_of_range) {
    // Larger than 64 bits: keep the value as a float, as Go's JSON decoding would.
    return Json(std::stod(std::string(s)));
  }
  if (ec != std::errc() || ptr != digits.data() + digits.size()) return std::nullopt;
  if (negative) {
    if (magnitude > static_cast<uint64_t>(INT64_MAX) + 1) return Json(-static_cast<double>(magnitude));
    return Json(static_cast<int64_t>(0 - magnitude));
  }
  if (magnitude <= static_cast<uint64_t>(INT64_MAX)) return Json(static_cast<int64_t>(magnitude));
  return Json(magnitude);
}

// Float per the core schema: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
// plus .inf/.nan spellings (returned as non-finite doubles).
std::optional<double> parseFloat(std::string_view s) {
  std::string_view body = s;
  bool negative = false;
  if (!body.empty() && (body[0] == '-' || body[0] == '+')) {
    negative = body[0] == '-';
    body.remove_prefix(1);
  }
  if (body == ".inf" || body == ".Inf" || body == ".INF") {
    return negative ? -INFINITY : INFINITY;
  }
  if (s == ".nan" || s == ".NaN" || s == ".NAN") return NAN;
  size_t i = 0;
  size_t int_digits = 0, frac_digits = 0;
  while (i < body.size() && std::isdigit(static_cast<unsigned char>(body[i]))) ++i, ++int_digits;
  if (i < body.size() && body[i] == '.') {
    ++i;
    while (i < body.size() && std::isdigit(static_cast<unsigned char>(body[i]))) ++i, ++frac_digits;
  }
  if (int_digits == 0 && frac_digits == 0) return std::nullopt;
  if (int_digits == 0 && body[0] != '.') return std::nullopt;
  if (i < body.size() && (body[i] == 'e' || body[i] == 'E')) {
    ++i;
    if (i < body.size() && (body[i] == '-' || body[i] == '+')) ++i;
    size_t exp_digits = 0;
    while (i < body.size() && std::isdigit(static_cast<unsigned char>(body[i]))) ++i, ++exp_digits;
    if (exp_digits == 0) return std::nullopt;
  }
  if (i != body.size()) return std::nullopt;
  try {
    return std::stod(std::string(s));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<bool> parseBool(std::string_view s) {
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  return std::nullopt;
}

bool isNullText(std::string_view s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

class Converter {
 public:
  explicit Converter(std::string_view what) : what_(what) {}

  StatusOr<Json> convert(const YAML::Node& node) {
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        // A quoted or !!str-tagged empty value arrives as a scalar, not here.
        if (node.Tag() == "!" || node.Tag() == strCat(kTagPrefix, "str")) return Json("");
        return Json(nullptr);
      case YAML::NodeType::Scalar:
        return scalar(node);
      case YAML::NodeType::Sequence: {
        Json out = Json::array();
        for (const YAML::Node& item : node) {
          ASSIGN_OR_RETURN(Json value, convert(item));
          out.push_back(std::move(value));
        }
        return out;
      }
      case YAML::NodeType::Map: {
        Json out = Json::object();
        for (const auto& pair : node) {
          const YAML::Node& key = pair.first;
          std::string name;
          if (key.IsScalar()) {
            name = key.Scalar();
          } else if (key.IsNull()) {
            name = "null";
          } else {
            return error(key, "a mapping key must be a scalar (JSON object keys are strings)");
          }
          ASSIGN_OR_RETURN(Json value, convert(pair.second));
          out[name] = std::move(value);
        }
        return out;
      }
    }
    return error(node, "unknown YAML node type");
  }

 private:
  StatusOr<Json> scalar(const YAML::Node& node) {
    const std::string& text = node.Scalar();
    const std::string& tag = node.Tag();
    if (tag == "?") return resolvePlain(node, text);
    if (tag.rfind(kTagPrefix, 0) == 0) {
      std::string_view type = std::string_view(tag).substr(kTagPrefix.size());
      if (type == "int") {
        if (auto v = parseInt(text)) return *v;
        return error(node, strCat("\"", text, "\" is not an integer (!!int)"));
      }
      if (type == "float") {
        if (auto v = parseInt(text)) return Json(v->get<double>());
        if (auto v = parseFloat(text)) return finiteFloat(node, text, *v);
        return error(node, strCat("\"", text, "\" is not a number (!!float)"));
      }
      if (type == "bool") {
        if (auto v = parseBool(text)) return Json(*v);
        return error(node, strCat("\"", text, "\" is not a boolean (!!bool)"));
      }
      if (type == "null") return Json(nullptr);
    }
    return Json(text);  // quoted ("!"), !!str, !!binary, custom tags
  }

  StatusOr<Json> resolvePlain(const YAML::Node& node, const std::string& text) {
    if (isNullText(text)) return Json(nullptr);
    if (auto v = parseBool(text)) return Json(*v);
    if (auto v = parseInt(text)) return *v;
    if (auto v = parseFloat(text)) return finiteFloat(node, text, *v);
    return Json(text);
  }

  StatusOr<Json> finiteFloat(const YAML::Node& node, const std::string& text, double v) {
    if (!std::isfinite(v)) {
      return error(node, strCat("\"", text, "\" is not a finite number; JSON cannot hold it "
                                            "(quote it to keep it as a string)"));
    }
    return Json(v);
  }

  Status error(const YAML::Node& node, std::string_view reason) {
    return invalidArgument(what_, ":", node.Mark().line + 1, ": ", reason);
  }

  std::string_view what_;
};

}  // namespace

StatusOr<std::vector<YamlDocument>> parseYamlDocuments(std::string_view text,
                                                       std::string_view what) {
  std::vector<YAML::Node> nodes;
  try {
    nodes = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    return invalidArgument(what, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg);
  }
  std::vector<YamlDocument> docs;
  Converter converter(what);
  for (const YAML::Node& node : nodes) {
    StatusOr<Json> value;
    try {
      value = converter.convert(node);
    } catch (const YAML::Exception& e) {
      return invalidArgument(what, ":", e.mark.line + 1, ": ", e.msg);
    }
    if (!value.ok()) return value.status();
    if (value->is_null()) continue;
    int line = node.Mark().line >= 0 ? node.Mark().line + 1 : 1;
    docs.push_back(YamlDocument{std::move(*value), line});
  }
  return docs;
}

StatusOr<json::Json> parseYaml(std::string_view text, std::string_view what) {
  ASSIGN_OR_RETURN(std::vector<YamlDocument> docs, parseYamlDocuments(text, what));
  if (docs.empty()) return Json(nullptr);
  if (docs.size() > 1) {
    return invalidArgument(what, ": expected one YAML document, found ", docs.size(),
                           " (the second starts on line ", docs[1].line, ")");
  }
  return std::move(docs[0].value);
}

}  // namespace berth::kube
