#include "common/base64.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace berth {
namespace {

TEST(Base64, RoundTripsEveryLengthAndEveryByte) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (size_t n : {0u, 1u, 2u, 3u, 4u, 5u, 255u, 256u}) {
    std::string in = all.substr(0, n);
    auto out = base64Decode(base64Encode(in));
    ASSERT_TRUE(out.ok()) << n << ": " << out.status();
    EXPECT_EQ(*out, in) << n;
  }
}

TEST(Base64, EncodesWithPaddingPerRfc4648) {
  EXPECT_EQ(base64Encode(""), "");
  EXPECT_EQ(base64Encode("f"), "Zg==");
  EXPECT_EQ(base64Encode("fo"), "Zm8=");
  EXPECT_EQ(base64Encode("foo"), "Zm9v");
  EXPECT_EQ(base64Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64Encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64Encode("user:secret"), "dXNlcjpzZWNyZXQ=");
}

TEST(Base64, DecodeAcceptsMissingPadding) {
  // Docker config "auth" values and identity tokens are sometimes unpadded.
  EXPECT_EQ(*base64Decode("dXNlcjpzZWNyZXQ"), "user:secret");
  EXPECT_EQ(*base64Decode("Zm8"), "fo");
  EXPECT_EQ(*base64Decode("Zg"), "f");
}

TEST(Base64, DecodeRejectsMalformedInput) {
  for (const char* bad : {"a", "abcde", "ab!d", "a$==", "dXN*", "a=bc", "ab===", "Zg==Zg=="}) {
    auto out = base64Decode(bad);
    EXPECT_FALSE(out.ok()) << bad;
    if (!out.ok()) EXPECT_NE(out.status().message().find("base64"), std::string::npos) << bad;
  }
}

}  // namespace
}  // namespace berth
