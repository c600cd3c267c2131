// Unit tests of the registry client's internal auth helpers (registry_auth.h).
#include "runtime/image/registry_auth.h"

#include <curl/curl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ctime>
#include <thread>

namespace berth::image::internal {
namespace {

using ::testing::HasSubstr;

TEST(RegistryAuthTest, BasicCredentialsFromFieldsOrAuth) {
  Credentials fields;
  fields.username = "u";
  fields.password = "p";
  fields.auth = "ignored";
  auto basic = basicCredentials(fields);
  ASSERT_TRUE(basic.ok() && basic->has_value());
  EXPECT_EQ((*basic)->username, "u");
  EXPECT_EQ(basicAuthorization(**basic), "Basic dTpw");

  Credentials auth;
  auth.auth = base64Encode("name:pa:ss");
  basic = basicCredentials(auth);
  ASSERT_TRUE(basic.ok() && basic->has_value());
  EXPECT_EQ((*basic)->username, "name");
  EXPECT_EQ((*basic)->password, "pa:ss");

  EXPECT_FALSE(basicCredentials(Credentials{})->has_value());
  Credentials bad;
  bad.auth = base64Encode("no-colon");
  auto err = basicCredentials(bad);
  ASSERT_FALSE(err.ok());
  EXPECT_THAT(std::string(err.status().message()), HasSubstr("username:password"));
}

TEST(RegistryAuthTest, TokenResponseFields) {
  auto t = parseTokenResponse(R"({"token":"abc","expires_in":300,"issued_at":"x"})");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->token, "abc");
  EXPECT_EQ(t->expires_in, std::chrono::seconds(300));
  t = parseTokenResponse(R"({"access_token":"xyz"})");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->token, "xyz");
  EXPECT_EQ(t->expires_in, std::chrono::seconds(60));  // token.md default
  EXPECT_FALSE(parseTokenResponse(R"({"expires_in":5})").ok());
  EXPECT_FALSE(parseTokenResponse("not json").ok());
}

TEST(RegistryAuthTest, TokenCacheExpires) {
  TokenCache cache;
  cache.put("k", "t", std::chrono::seconds(100));
  EXPECT_EQ(cache.get("k"), "t");
  EXPECT_EQ(cache.get("other"), std::nullopt);
  cache.put("short", "t2", std::chrono::seconds(0));
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_EQ(cache.get("short"), std::nullopt);
  cache.erase("k");
  EXPECT_EQ(cache.get("k"), std::nullopt);
}

TEST(RegistryAuthTest, RetryDelayBackoffAndRetryAfter) {
  using std::chrono::milliseconds;
  using std::chrono::seconds;
  EXPECT_EQ(retryDelay(0, milliseconds(200), "", seconds(10)), milliseconds(200));
  EXPECT_EQ(retryDelay(2, milliseconds(200), "", seconds(10)), milliseconds(800));
  EXPECT_EQ(retryDelay(0, milliseconds(200), "3", seconds(10)), milliseconds(3000));
  EXPECT_EQ(retryDelay(0, milliseconds(200), "3600", seconds(10)), milliseconds(10000));
  EXPECT_EQ(retryDelay(0, milliseconds(200), "Wed, 21 Oct 2015 07:28:00 GMT", seconds(10)),
            milliseconds(0));  // a date in the past: retry now
  EXPECT_EQ(retryDelay(1, milliseconds(200), "soon", seconds(10)), milliseconds(400));
}

TEST(RegistryAuthTest, DescribeHttpError) {
  TransportResponse r;
  r.status = 404;
  r.reason = "Not Found";
  r.error_body = R"({"errors":[{"code":"NAME_UNKNOWN","message":"no such repo"},{"code":"X"}]})";
  EXPECT_EQ(describeHttpError(r), "HTTP 404 Not Found: NAME_UNKNOWN: no such repo; X");
  r.error_body = R"({"error":"invalid_grant","error_description":"expired"})";
  EXPECT_EQ(describeHttpError(r), "HTTP 404 Not Found: invalid_grant: expired");
  r.error_body = "<html>long page</html>";
  r.content_type = "text/html";
  EXPECT_EQ(describeHttpError(r), "HTTP 404 Not Found");
}

}  // namespace
}  // namespace berth::image::internal
