// Kubernetes API errors as berth Status values.
//
// The API server answers a failed request with an HTTP status and (usually) a
// meta/v1 Status object: {"kind":"Status","status":"Failure","message":"...",
// "reason":"NotFound","code":404}. The mapping (apimachinery's StatusReason list):
//   400 BadRequest            -> InvalidArgument
//   401 Unauthorized          -> Unauthenticated
//   403 Forbidden             -> PermissionDenied
//   404 NotFound              -> NotFound
//   405 MethodNotAllowed      -> Unimplemented
//   409 reason AlreadyExists  -> AlreadyExists
//   409 Conflict (other)      -> Aborted (stale resourceVersion: re-read and retry)
//   410 Gone / Expired        -> OutOfRange, and isGone() is true (relist)
//   422 Invalid               -> InvalidArgument
//   429 TooManyRequests, 5xx  -> Unavailable (retry with backoff)
//   other 4xx                 -> FailedPrecondition
// Transport failures (connect, TLS, reset) are Unavailable, timeouts
// DeadlineExceeded, cancelled calls Cancelled. Every status carries the HTTP code and
// the reason as payloads (httpCodeOf, reasonOf). Messages read
// "kube API GET /api/v1/namespaces/default/services/web: 404 NotFound: services
// \"web\" not found".
//
// Thread-safety: pure functions, thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/json.h"
#include "common/status.h"

namespace berth::kube {

// The Status for HTTP `http_code` answering `method` on `path`, whose response body
// was `body` (a Status object, or any text). `http_code` 2xx gives OK.
Status apiError(std::string_view method, std::string_view path, long http_code,
                std::string_view body);

// The Status for a watch ERROR event's object (a meta/v1 Status; its "code" decides
// the mapping, 410 -> isGone).
Status watchErrorEvent(std::string_view path, const json::Json& status_object);

// Attaches the HTTP code and reason payloads to `status` (used by the transport for
// errors it makes itself).
Status withApiPayload(Status status, long http_code, std::string_view reason);

// The HTTP status code of an API error, 0 when the status has none (transport error).
long httpCodeOf(const Status& status);
// The Status reason ("NotFound", "Expired", "Conflict", ...), "" when none.
std::string reasonOf(const Status& status);

// True for 410 Gone / "Expired": the resourceVersion (or continue token) is older
// than the server's history; the caller must relist.
bool isGone(const Status& status);

}  // namespace berth::kube
