#include "common/status.h"

#include <cerrno>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace berth {
namespace {

using ::testing::HasSubstr;

TEST(StatusTest, ErrnoErrorNamesWhatFailedAndKeepsErrno) {
  Status st = errnoError(EPERM, "mount \"/proc\"");
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(std::string(st.message()), "mount \"/proc\": Operation not permitted (EPERM)");
  EXPECT_EQ(errnoOf(st), EPERM);
}

TEST(StatusTest, ErrnoCodesMapToStatusCodes) {
  EXPECT_EQ(codeForErrno(ENOENT), absl::StatusCode::kNotFound);
  EXPECT_EQ(codeForErrno(EEXIST), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(codeForErrno(EACCES), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(codeForErrno(EINVAL), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(codeForErrno(EBUSY), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(codeForErrno(ENOSPC), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(codeForErrno(ENOSYS), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(codeForErrno(EIO), absl::StatusCode::kInternal);
}

TEST(StatusTest, ContextIsPrependedAndErrnoSurvives) {
  Status st = withContext(withContext(errnoError(ENOENT, "open \"x\""), "set up rootfs"),
                          "create container \"web\"");
  EXPECT_EQ(std::string(st.message()),
            "create container \"web\": set up rootfs: open \"x\": No such file or directory (ENOENT)");
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(errnoOf(st), ENOENT);
  EXPECT_TRUE(withContext(absl::OkStatus(), "ignored").ok());
}

TEST(StatusTest, ErrnoOfPlainStatusIsZero) {
  EXPECT_EQ(errnoOf(invalidArgument("bad ", 3)), 0);
  EXPECT_EQ(std::string(invalidArgument("bad ", 3, " things").message()), "bad 3 things");
}

StatusOr<int> half(int v) {
  if (v % 2) return invalidArgument(v, " is odd");
  return v / 2;
}

StatusOr<int> quarter(int v) {
  ASSIGN_OR_RETURN(int h, half(v));
  ASSIGN_OR_RETURN(int q, half(h));
  return q;
}

Status checkEven(int v) {
  RETURN_IF_ERROR_CTX(half(v).status(), "check");
  return absl::OkStatus();
}

TEST(StatusTest, Macros) {
  EXPECT_EQ(*quarter(8), 2);
  EXPECT_THAT(std::string(quarter(6).status().message()), HasSubstr("3 is odd"));
  EXPECT_TRUE(checkEven(4).ok());
  EXPECT_EQ(std::string(checkEven(5).message()), "check: 5 is odd");
}

}  // namespace
}  // namespace berth
