#include "runtime/image/registry_auth.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <thread>

#include "common/json.h"

namespace berth::image {
namespace {

bool isTokenChar(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  return std::isalnum(u) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::string AuthChallenge::param(std::string_view name) const {
  std::string want = lower(name);
  for (const auto& [key, value] : params) {
    if (key == want) return value;
  }
  return "";
}

StatusOr<std::vector<AuthChallenge>> parseWwwAuthenticate(std::string_view header) {
  std::vector<AuthChallenge> challenges;
  size_t pos = 0;
  auto fail = [&](std::string_view what) {
    return invalidArgument("invalid WWW-Authenticate header \"", header, "\": ", what,
                           " at offset ", pos);
  };
  auto skipSpaces = [&] {
    while (pos < header.size() && (header[pos] == ' ' || header[pos] == '\t')) ++pos;
  };
  auto readToken = [&] {
    size_t start = pos;
    while (pos < header.size() && isTokenChar(header[pos])) ++pos;
    return header.substr(start, pos - start);
  };
  for (;;) {
    while (pos < header.size() &&
           (header[pos] == ' ' || header[pos] == '\t' || header[pos] == ',')) {
      ++pos;
    }
    if (pos >= header.size()) break;
    size_t token_start = pos;
    std::string_view token = readToken();
    if (token.empty()) return fail(strCat("unexpected character '", header[pos], "'"));
    skipSpaces();
    bool is_param = pos < header.size() && header[pos] == '=';
    if (!is_param) {
      // A new challenge: "<scheme>" followed by params or a token68.
      challenges.push_back(AuthChallenge{lower(token), {}});
      if (pos < header.size() && header[pos] != ',') {
        // A token68 ("Negotiate abc==") stands alone up to the next ',' or the end.
        size_t save = pos;
        while (pos < header.size() && (isTokenChar(header[pos]) || header[pos] == '/')) ++pos;
        size_t eq = pos;
        while (eq < header.size() && header[eq] == '=') ++eq;
        size_t end = eq;
        while (end < header.size() && (header[end] == ' ' || header[end] == '\t')) ++end;
        if (pos > save && (end >= header.size() || header[end] == ',')) {
          challenges.back().params.emplace_back("", std::string(header.substr(save, eq - save)));
          pos = end;
          continue;
        }
        pos = save;
      }
      continue;
    }
    if (challenges.empty()) {
      pos = token_start;
      return fail("expected an auth scheme before the first parameter");
    }
    ++pos;  // '='
    skipSpaces();
    std::string value;
    if (pos < header.size() && header[pos] == '"') {
      ++pos;
      bool closed = false;
      while (pos < header.size()) {
        char c = header[pos++];
        if (c == '\\') {
          if (pos >= header.size()) break;
          value.push_back(header[pos++]);
        } else if (c == '"') {
          closed = true;
          break;
        } else {
          value.push_back(c);
        }
      }
      if (!closed) return fail("unterminated quoted string");
    } else {
      // Be lenient with unquoted values (some servers send realm=https://...).
      size_t start = pos;
      while (pos < header.size() && header[pos] != ',' && header[pos] != ' ' &&
             header[pos] != '\t') {
        ++pos;
      }
      if (pos == start) return fail(strCat("empty value for parameter \"", token, "\""));
      value = std::string(header.substr(start, pos - start));
    }
    challenges.back().params.emplace_back(lower(token), std::move(value));
    skipSpaces();
    if (pos < header.size() && header[pos] != ',') {
      return fail(strCat("expected ',' after parameter \"", token, "\""));
    }
  }
  if (challenges.empty()) {
    return invalidArgument("invalid WWW-Authenticate header \"", header, "\": no challenge");
  }
  return challenges;
}

namespace internal {
namespace {

}  // namespace


StatusOr<std::optional<BasicCredentials>> basicCredentials(const Credentials& credentials) {
  if (!credentials.username.empty() || !credentials.password.empty()) {
    return BasicCredentials{credentials.username, credentials.password};
  }
  if (credentials.auth.empty()) return std::optional<BasicCredentials>();
  auto decoded = base64Decode(credentials.auth);
  size_t colon = decoded.ok() ? decoded->find(':') : std::string::npos;
  if (colon == std::string::npos) {
    return invalidArgument(
        "credentials: \"auth\" must be base64 of \"username:password\" (as in docker "
        "config.json)");
  }
  return BasicCredentials{decoded->substr(0, colon), decoded->substr(colon + 1)};
}

std::string basicAuthorization(const BasicCredentials& basic) {
  return "Basic " + base64Encode(strCat(basic.username, ":", basic.password));
}

StatusOr<TokenResponse> parseTokenResponse(std::string_view body) {
  ASSIGN_OR_RETURN(json::Json doc, json::parse(body, "token response"));
  if (!doc.is_object()) return invalidArgument("token response is not a JSON object");
  TokenResponse result;
  for (const char* key : {"token", "access_token"}) {
    auto it = doc.find(key);
    if (it != doc.end() && it->is_string() && !it->get<std::string>().empty()) {
      result.token = it->get<std::string>();
      break;
    }
  }
  if (result.token.empty()) {
    return invalidArgument("token response has neither \"token\" nor \"access_token\"");
  }
  auto expires = doc.find("expires_in");
  if (expires != doc.end() && expires->is_number() && expires->get<double>() > 0) {
    result.expires_in = std::chrono::seconds(static_cast<int64_t>(expires->get<double>()));
  }
  return result;
}

std::chrono::milliseconds retryDelay(int attempt, std::chrono::milliseconds backoff,
                                     const std::string& retry_after,
                                     std::chrono::seconds max_retry_after) {
  std::string_view ra = trim(retry_after);
  if (!ra.empty()) {
    int64_t seconds = -1;
    if (std::all_of(ra.begin(), ra.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      seconds = ra.size() > 9 ? 1000000000 : std::stoll(std::string(ra));
    } else {
      time_t when = curl_getdate(std::string(ra).c_str(), nullptr);
      if (when >= 0) seconds = std::max<int64_t>(0, when - std::time(nullptr));
    }
    if (seconds >= 0) {
      return std::chrono::milliseconds(std::min<int64_t>(seconds, max_retry_after.count()) * 1000);
    }
  }
  int shift = std::min(attempt, 8);
  return std::min(backoff * (1 << shift), std::chrono::milliseconds(30000));
}

std::string describeHttpError(const TransportResponse& response) {
  std::string out = strCat("HTTP ", response.status);
  if (!response.reason.empty()) out += strCat(" ", response.reason);
  std::vector<std::string> details;
  auto doc = json::parse(response.error_body, "error body");
  if (doc.ok() && doc->is_object() && doc->contains("errors") && (*doc)["errors"].is_array()) {
    for (const auto& e : (*doc)["errors"]) {
      if (!e.is_object()) continue;
      std::string code = e.value("code", "");
      std::string message = e.value("message", "");
      details.push_back(code.empty() ? message : message.empty() ? code : code + ": " + message);
    }
  } else if (doc.ok() && doc->is_object() && doc->contains("error") &&
             (*doc)["error"].is_string()) {
    // OAuth2 error responses (RFC 6749 section 5.2).
    std::string error = (*doc)["error"].get<std::string>();
    std::string description = doc->value("error_description", "");
    details.push_back(description.empty() ? error : error + ": " + description);
  } else if (response.content_type.rfind("text/plain", 0) == 0 &&
             response.error_body.size() <= 200 && !trim(response.error_body).empty()) {
    details.push_back(std::string(trim(response.error_body)));
  }
  if (!details.empty()) out += ": " + joinStrings(details, "; ");
  return out;
}

std::optional<std::string> TokenCache::get(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  if (std::chrono::steady_clock::now() >= it->second.expires) {
    entries_.erase(it);
    return std::nullopt;
  }
  return it->second.token;
}

void TokenCache::put(const std::string& key, const std::string& token,
                     std::chrono::seconds expires_in) {
  // Renew a little before the server's deadline so a request never carries a token
  // that expires on the way.
  auto lifetime = std::chrono::duration_cast<std::chrono::milliseconds>(expires_in) * 9 / 10;
  std::lock_guard<std::mutex> lock(mu_);
  entries_[key] = Entry{token, std::chrono::steady_clock::now() + lifetime};
}

void TokenCache::erase(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.erase(key);
}

StatusOr<TokenResponse> fetchToken(RegistryTransport& transport, const TokenRequest& request) {
  TransportRequest http;
  http.tls = request.tls;
  http.headers.push_back("Accept: application/json");
  std::string params;
  auto add = [&params](std::string_view name, std::string_view value) {
    if (!params.empty()) params += '&';
    params += strCat(name, "=", urlEncode(value));
  };
  if (!request.identity_token.empty()) {
    add("grant_type", "refresh_token");
    add("refresh_token", request.identity_token);
    if (!request.service.empty()) add("service", request.service);
    if (!request.scopes.empty()) add("scope", joinStrings(request.scopes, " "));
    add("client_id", "berth");
    http.method = "POST";
    http.url = request.realm;
    http.body = params;
    http.headers.push_back("Content-Type: application/x-www-form-urlencoded");
  } else {
    if (!request.service.empty()) add("service", request.service);
    for (const std::string& scope : request.scopes) add("scope", scope);
    http.url = request.realm;
    if (!params.empty()) {
      http.url += (request.realm.find('?') == std::string::npos ? "?" : "&") + params;
    }
    if (request.basic) http.headers.push_back("Authorization: " + basicAuthorization(*request.basic));
  }
  std::string what = strCat("get a token for ", request.registry, " from ", request.realm);
  for (int attempt = 0;; ++attempt) {
    std::string body;
    TransportResponse r = transport.perform(
        http, [&body](const TransportResponse&, std::string_view data) -> Status {
          if (body.size() + data.size() > (1 << 20)) {
            return invalidArgument("token response larger than 1 MiB");
          }
          body.append(data);
          return absl::OkStatus();
        });
    if (!r.consumer_status.ok()) return withContext(r.consumer_status, what);
    bool retryable = r.curl_code != 0 ? !r.tls_handshake_failed
                                      : (r.status == 429 || r.status >= 500);
    if (retryable && attempt < request.max_retries) {
      std::this_thread::sleep_for(
          retryDelay(attempt, request.retry_backoff, r.retry_after, std::chrono::seconds(10)));
      continue;
    }
    if (r.curl_code != 0) {
      return absl::UnavailableError(strCat(what, ": ", r.curl_error));
    }
    if (r.status == 401) {
      return absl::UnauthenticatedError(strCat(
          what, ": ", describeHttpError(r), "; check the ",
          request.identity_token.empty() ? "username and password" : "identity token",
          " given for ", request.registry));
    }
    if (r.status == 403) return absl::PermissionDeniedError(strCat(what, ": ", describeHttpError(r)));
    if (r.status == 429) {
      return absl::ResourceExhaustedError(strCat(what, ": ", describeHttpError(r)));
    }
    if (r.status >= 500) return absl::UnavailableError(strCat(what, ": ", describeHttpError(r)));
    if (r.status < 200 || r.status >= 300) {
      return absl::InvalidArgumentError(strCat(what, ": ", describeHttpError(r)));
    }
    return withContext(parseTokenResponse(body), what);
  }
}

}  // namespace internal
}  // namespace berth::image
