#include "runtime/image/reference.h"

#include <cctype>

namespace berth::image {
namespace {

constexpr size_t kMaxNameLength = 255;
constexpr size_t kMaxTagLength = 128;

bool isLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool isAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
bool isWordChar(char c) { return isAlnum(c) || c == '_'; }
bool isHexLower(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
bool validPathComponent(std::string_view c) {
  if (c.empty() || !isLowerAlnum(c.front()) || !isLowerAlnum(c.back())) return false;
  size_t i = 0;
  while (i < c.size()) {
    if (isLowerAlnum(c[i])) {
      ++i;
      continue;
    }
    size_t start = i;
    while (i < c.size() && !isLowerAlnum(c[i])) ++i;
    std::string_view sep = c.substr(start, i - start);
    bool dashes = sep.find_first_not_of('-') == std::string_view::npos;
    if (!(sep == "." || sep == "_" || sep == "__" || dashes)) return false;
  }
  return true;
}

// domain-component := [A-Za-z0-9] | [A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]
bool validDomainComponent(std::string_view c) {
  if (c.empty() || !isAlnum(c.front()) || !isAlnum(c.back())) return false;
  for (char ch : c) {
    if (!isAlnum(ch) && ch != '-') return false;
  }
  return true;
}

// domain := ( dns-name | "[" ipv6 "]" ) [ ":" port ]
bool validDomain(std::string_view d) {
  std::string_view host = d;
  std::string_view port;
  if (!d.empty() && d.front() == '[') {
    size_t close = d.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    for (char ch : d.substr(1, close - 1)) {
      if (!std::isxdigit(static_cast<unsigned char>(ch)) && ch != ':') return false;
    }
    std::string_view rest = d.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      port = rest.substr(1);
      if (port.empty()) return false;
    }
    host = {};
  } else {
    size_t colon = d.find(':');
    if (colon != std::string_view::npos) {
      host = d.substr(0, colon);
      port = d.substr(colon + 1);
      if (port.empty()) return false;
    }
    if (host.empty()) return false;
    size_t start = 0;
    while (true) {
      size_t dot = host.find('.', start);
      std::string_view comp = host.substr(start, dot == std::string_view::npos ? dot : dot - start);
      if (!validDomainComponent(comp)) return false;
      if (dot == std::string_view::npos) break;
      start = dot + 1;
    }
  }
  for (char ch : port) {
    if (ch < '0' || ch > '9') return false;
  }
  return true;
}

// tag := [\w][\w.-]{0,127}
bool validTag(std::string_view t) {
  if (t.empty() || t.size() > kMaxTagLength || !isWordChar(t.front())) return false;
  for (char ch : t) {
    if (!isWordChar(ch) && ch != '.' && ch != '-') return false;
  }
  return true;
}

// algorithm := [a-z0-9]+ ( [+._-] [a-z0-9]+ )*   (OCI descriptor.md)
bool validAlgorithm(std::string_view a) {
  if (a.empty() || !isLowerAlnum(a.front()) || !isLowerAlnum(a.back())) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char ch = a[i];
    if (isLowerAlnum(ch)) continue;
    if (ch != '+' && ch != '.' && ch != '_' && ch != '-') return false;
    if (!isLowerAlnum(a[i + 1])) return false;  // back() is alnum, so i+1 is in range
  }
  return true;
}

bool isHexIdentifier(std::string_view s) {
  if (s.size() != 64) return false;
  for (char ch : s) {
    if (!isHexLower(ch)) return false;
  }
  return true;
}

bool hasUpper(std::string_view s) {
  for (char ch : s) {
    if (ch >= 'A' && ch <= 'Z') return true;
  }
  return false;
}

Status badReference(std::string_view text, std::string_view why) {
  return invalidArgument("invalid image reference \"", text, "\": ", why);
}

}  // namespace

Status validateDigest(std::string_view digest) {
  size_t colon = digest.find(':');
  if (colon == std::string_view::npos) {
    return invalidArgument("digest \"", digest, "\": missing \"<algorithm>:\" prefix");
  }
  std::string_view algorithm = digest.substr(0, colon);
  std::string_view encoded = digest.substr(colon + 1);
  if (!validAlgorithm(algorithm)) {
    return invalidArgument("digest \"", digest, "\": invalid algorithm \"", algorithm, "\"");
  }
  size_t want = 0;
  if (algorithm == "sha256") {
    want = 64;
  } else if (algorithm == "sha512") {
    want = 128;
  } else {
    return invalidArgument("digest \"", digest, "\": unsupported algorithm \"", algorithm,
                           "\"; use sha256 or sha512");
  }
  if (encoded.size() != want) {
    return invalidArgument("digest \"", digest, "\": ", algorithm, " needs ", want,
                           " hex digits, got ", encoded.size());
  }
  for (char ch : encoded) {
    if (!isHexLower(ch)) {
      return invalidArgument("digest \"", digest, "\": '", ch,
                             "' is not a lowercase hex digit");
    }
  }
  return absl::OkStatus();
}

StatusOr<Reference> parseReference(std::string_view text) {
  if (text.empty()) return badReference(text, "empty reference");
  if (isHexIdentifier(text)) {
    return badReference(text,
                        "a 64-hex image ID is not a reference; use \"<name>@sha256:<hex>\"");
  }
  Reference ref;
  std::string_view name = text;
  size_t at = text.find('@');
  if (at != std::string_view::npos) {
    std::string_view digest = text.substr(at + 1);
    Status st = validateDigest(digest);
    if (!st.ok()) return badReference(text, std::string(st.message()));
    ref.digest = std::string(digest);
    name = text.substr(0, at);
  }
  size_t lastSlash = name.rfind('/');
  size_t colon = name.rfind(':');
  if (colon != std::string_view::npos &&
      (lastSlash == std::string_view::npos || colon > lastSlash)) {
    std::string_view tag = name.substr(colon + 1);
    if (!validTag(tag)) {
      return badReference(text, strCat("invalid tag \"", tag,
                                       "\" (letters, digits, '_', '.', '-'; at most 128, "
                                       "not starting with '.' or '-')"));
    }
    ref.tag = std::string(tag);
    name = name.substr(0, colon);
  }
  if (name.empty()) return badReference(text, "missing repository name");

  // Split off the domain (distribution's splitDockerDomain).
  std::string_view remainder = name;
  size_t slash = name.find('/');
  if (slash != std::string_view::npos) {
    std::string_view first = name.substr(0, slash);
    if (first.find_first_of(".:") != std::string_view::npos || first == "localhost" ||
        hasUpper(first)) {
      if (!validDomain(first)) {
        return badReference(text, strCat("invalid registry host \"", first, "\""));
      }
      ref.domain = std::string(first);
      remainder = name.substr(slash + 1);
    }
  }
  if (ref.domain.empty() || ref.domain == kLegacyDefaultDomain) ref.domain = kDefaultDomain;
  if (hasUpper(remainder)) {
    return badReference(text, strCat("repository name \"", remainder, "\" must be lowercase"));
  }
  if (remainder.empty()) return badReference(text, "missing repository name");
  size_t start = 0;
  while (true) {
    size_t next = remainder.find('/', start);
    std::string_view comp = remainder.substr(
        start, next == std::string_view::npos ? std::string_view::npos : next - start);
    if (!validPathComponent(comp)) {
      return badReference(
          text, strCat("invalid repository path component \"", comp,
                       "\" (lowercase letters and digits, separated by '.', '_', '__' or '-')"));
    }
    if (next == std::string_view::npos) break;
    start = next + 1;
  }
  ref.path = std::string(remainder);
  if (ref.domain == kDefaultDomain && ref.path.find('/') == std::string::npos) {
    ref.path = strCat("library/", ref.path);
  }
  if (ref.fullName().size() > kMaxNameLength) {
    return badReference(text, strCat("repository name is longer than ", kMaxNameLength,
                                     " characters"));
  }
  if (ref.tag.empty() && ref.digest.empty()) ref.tag = kDefaultTag;
  return ref;
}

std::string Reference::fullName() const { return strCat(domain, "/", path); }

std::string Reference::string() const {
  std::string out = fullName();
  if (!tag.empty()) out += strCat(":", tag);
  if (!digest.empty()) out += strCat("@", digest);
  return out;
}

std::string Reference::familiarName() const {
  std::string out;
  if (domain == kDefaultDomain) {
    std::string_view p = path;
    constexpr std::string_view kLibrary = "library/";
    if (p.substr(0, kLibrary.size()) == kLibrary &&
        p.find('/', kLibrary.size()) == std::string_view::npos) {
      p.remove_prefix(kLibrary.size());
    }
    out = std::string(p);
  } else {
    out = fullName();
  }
  if (!tag.empty()) out += strCat(":", tag);
  if (!digest.empty()) out += strCat("@", digest);
  return out;
}

std::string Reference::registryHost() const {
  return domain == kDefaultDomain ? std::string(kDockerHubRegistryHost) : domain;
}

std::string Reference::manifestReference() const { return digest.empty() ? tag : digest; }

}  // namespace berth::image
