// Error handling for berth: absl::Status / absl::StatusOr<T> everywhere, made at the
// failing syscall (keeping errno and the object) and given context by every caller,
// so the user reads `create container "web": mount "/proc" on ".../rootfs/proc":
// Operation not permitted (EPERM)` and never a bare errno.
//
// Thread-safety: all functions are pure and thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/strings.h"

namespace berth {

using Status = absl::Status;
template <typename T>
using StatusOr = absl::StatusOr<T>;

// Maps an errno value to the closest absl status code: ENOENT -> NotFound,
// EEXIST -> AlreadyExists, EPERM/EACCES -> PermissionDenied, EINVAL -> InvalidArgument,
// EBUSY/ENOTEMPTY -> FailedPrecondition, EAGAIN/EINTR -> Unavailable,
// ENOSPC/ENOMEM -> ResourceExhausted, ENOSYS/EOPNOTSUPP -> Unimplemented, else Internal.
absl::StatusCode codeForErrno(int err);

// Returns the symbolic name of an errno value ("EPERM"), or "errno N" if unknown.
std::string errnoName(int err);

// Makes an error for a failed syscall: "<what>: <strerror> (<ENAME>)". The errno is
// kept as a payload so callers can branch on it with errnoOf().
Status errnoError(int err, std::string_view what);

// errnoError(errno, what) — call right after the failing syscall.
Status lastErrnoError(std::string_view what);

// The errno stored by errnoError(), or 0 when the status carries none.
int errnoOf(const Status& status);

// Returns `status` with "<context>: " prepended to its message; code and payloads are
// kept. An OK status is returned unchanged.
Status withContext(const Status& status, std::string_view context);

template <typename T>
StatusOr<T> withContext(StatusOr<T>&& value, std::string_view context) {
  if (value.ok()) return std::move(value);
  return withContext(value.status(), context);
}

// Helpers for the common codes, with the message formatted by absl::StrCat.
template <typename... Args>
Status invalidArgument(const Args&... args) {
  return absl::InvalidArgumentError(strCat(args...));
}
template <typename... Args>
Status failedPrecondition(const Args&... args) {
  return absl::FailedPreconditionError(strCat(args...));
}
template <typename... Args>
Status notFound(const Args&... args) {
  return absl::NotFoundError(strCat(args...));
}
template <typename... Args>
Status alreadyExists(const Args&... args) {
  return absl::AlreadyExistsError(strCat(args...));
}
template <typename... Args>
Status internalError(const Args&... args) {
  return absl::InternalError(strCat(args...));
}
template <typename... Args>
Status unimplemented(const Args&... args) {
  return absl::UnimplementedError(strCat(args...));
}

}  // namespace berth

#define BERTH_CONCAT_INNER_(a, b) a##b
#define BERTH_CONCAT_(a, b) BERTH_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (a Status) is not OK.
#define RETURN_IF_ERROR(expr)                         \
  do {                                                \
    ::absl::Status berth_status_ = (expr);            \
    if (!berth_status_.ok()) return berth_status_;    \
  } while (0)

// Like RETURN_IF_ERROR, prepending "<ctx>: " to the error.
#define RETURN_IF_ERROR_CTX(expr, ctx)                                        \
  do {                                                                        \
    ::absl::Status berth_status_ = (expr);                                    \
    if (!berth_status_.ok()) return ::berth::withContext(berth_status_, ctx); \
  } while (0)

// Evaluates `rexpr` (a StatusOr<T>); on error returns it, else moves the value into
// `lhs` (which may be a declaration: ASSIGN_OR_RETURN(auto fd, open(...))).
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  BERTH_ASSIGN_OR_RETURN_IMPL_(BERTH_CONCAT_(berth_statusor_, __LINE__), lhs, rexpr)
#define BERTH_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                 \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()
