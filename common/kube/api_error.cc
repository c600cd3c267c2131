#include "common/kube/api_error.h"

#include "absl/strings/cord.h"
#include "common/strings.h"

namespace berth::kube {
namespace {

constexpr char kCodePayload[] = "type.berth.dev/kube-http-code";
constexpr char kReasonPayload[] = "type.berth.dev/kube-reason";

const char* defaultReason(long code) {
  switch (code) {
    case 400: return "BadRequest";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "NotFound";
    case 405: return "MethodNotAllowed";
    case 406: return "NotAcceptable";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "RequestEntityTooLarge";
    case 415: return "UnsupportedMediaType";
    case 422: return "Invalid";
    case 429: return "TooManyRequests";
    case 500: return "InternalError";
    case 503: return "ServiceUnavailable";
    case 504: return "Timeout";
    default: return code >= 500 ? "InternalError" : "Unknown";
  }
}

absl::StatusCode codeFor(long http_code, std::string_view reason) {
  switch (http_code) {
    case 400: return absl::StatusCode::kInvalidArgument;
    case 401: return absl::StatusCode::kUnauthenticated;
    case 403: return absl::StatusCode::kPermissionDenied;
    case 404: return absl::StatusCode::kNotFound;
    case 405: return absl::StatusCode::kUnimplemented;
    case 409:
      return reason == "AlreadyExists" ? absl::StatusCode::kAlreadyExists
                                       : absl::StatusCode::kAborted;
    case 410: return absl::StatusCode::kOutOfRange;
    case 422: return absl::StatusCode::kInvalidArgument;
    case 429: return absl::StatusCode::kUnavailable;
    default: break;
  }
  if (http_code >= 500) return absl::StatusCode::kUnavailable;
  return absl::StatusCode::kFailedPrecondition;
}

// Message and reason out of a Status object; `reason`/`message` stay empty when the
// body is not one.
void readStatusObject(const json::Json& obj, std::string& reason, std::string& message,
                      long& code) {
  if (!obj.is_object()) return;
  if (auto it = obj.find("reason"); it != obj.end() && it->is_string()) reason = *it;
  if (auto it = obj.find("message"); it != obj.end() && it->is_string()) message = *it;
  if (auto it = obj.find("code"); it != obj.end() && it->is_number_integer()) {
    code = it->get<long>();
  }
}

std::string shortBody(std::string_view body) {
  std::string out(trim(body.substr(0, 300)));
  if (body.size() > 300) out += "...";
  return out;
}

}  // namespace

Status withApiPayload(Status status, long http_code, std::string_view reason) {
  if (status.ok()) return status;
  if (http_code != 0) status.SetPayload(kCodePayload, absl::Cord(std::to_string(http_code)));
  if (!reason.empty()) {
    status.SetPayload(kReasonPayload, absl::Cord(absl::string_view(reason.data(), reason.size())));
  }
  return status;
}

Status apiError(std::string_view method, std::string_view path, long http_code,
                std::string_view body) {
  if (http_code >= 200 && http_code < 300) return absl::OkStatus();
  std::string reason, message;
  long code = http_code;
  StatusOr<json::Json> parsed = json::parse(body, "API status");
  if (parsed.ok()) readStatusObject(*parsed, reason, message, code);
  if (reason.empty()) reason = defaultReason(http_code);
  if (message.empty()) message = body.empty() ? "(empty response body)" : shortBody(body);
  std::string text = strCat("kube API ", method, " ", path, ": ", http_code, " ", reason, ": ",
                            message);
  return withApiPayload(Status(codeFor(http_code, reason), text), http_code, reason);
}

Status watchErrorEvent(std::string_view path, const json::Json& status_object) {
  std::string reason, message;
  long code = 500;
  readStatusObject(status_object, reason, message, code);
  if (reason.empty()) reason = defaultReason(code);
  if (message.empty()) message = json::dump(status_object);
  std::string text = strCat("kube API watch ", path, ": ERROR event ", code, " ", reason, ": ",
                            message);
  return withApiPayload(Status(codeFor(code, reason), text), code, reason);
}

long httpCodeOf(const Status& status) {
  auto payload = status.GetPayload(kCodePayload);
  if (!payload) return 0;
  try {
    return std::stol(std::string(*payload));
  } catch (const std::exception&) {
    return 0;
  }
}

std::string reasonOf(const Status& status) {
  auto payload = status.GetPayload(kReasonPayload);
  return payload ? std::string(*payload) : std::string();
}

bool isGone(const Status& status) {
  if (status.ok()) return false;
  return httpCodeOf(status) == 410 ||
         (status.code() == absl::StatusCode::kOutOfRange && reasonOf(status) == "Expired");
}

}  // namespace berth::kube
