#include "common/status.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/cord.h"

namespace berth {
namespace {
constexpr char kErrnoPayload[] = "type.berth.dev/errno";
}  // namespace

absl::StatusCode codeForErrno(int err) {
  switch (err) {
    case ENOENT:
    case ESRCH:
      return absl::StatusCode::kNotFound;
    case EEXIST:
      return absl::StatusCode::kAlreadyExists;
    case EPERM:
    case EACCES:
      return absl::StatusCode::kPermissionDenied;
    case EINVAL:
    case ENAMETOOLONG:
    case ENOTDIR:
    case EISDIR:
      return absl::StatusCode::kInvalidArgument;
    case EBUSY:
    case ENOTEMPTY:
      return absl::StatusCode::kFailedPrecondition;
    case EAGAIN:
    case EINTR:
      return absl::StatusCode::kUnavailable;
    case ENOSPC:
    case ENOMEM:
    case EMFILE:
    case ENFILE:
      return absl::StatusCode::kResourceExhausted;
    case ENOSYS:
    case EOPNOTSUPP:
      return absl::StatusCode::kUnimplemented;
    default:
      return absl::StatusCode::kInternal;
  }
}

std::string errnoName(int err) {
  const char* name = strerrorname_np(err);
  if (name != nullptr) return name;
  return strCat("errno ", err);
}

Status errnoError(int err, std::string_view what) {
  Status status(codeForErrno(err),
                strCat(what, ": ", strerror(err), " (", errnoName(err), ")"));
  status.SetPayload(kErrnoPayload, absl::Cord(std::to_string(err)));
  return status;
}

Status lastErrnoError(std::string_view what) { return errnoError(errno, what); }

int errnoOf(const Status& status) {
  auto payload = status.GetPayload(kErrnoPayload);
  if (!payload) return 0;
  return std::atoi(std::string(*payload).c_str());
}

Status withContext(const Status& status, std::string_view context) {
  if (status.ok()) return status;
  Status out(status.code(), strCat(context, ": ", status.message()));
  status.ForEachPayload([&out](absl::string_view url, const absl::Cord& payload) {
    out.SetPayload(url, payload);
  });
  return out;
}

}  // namespace berth
