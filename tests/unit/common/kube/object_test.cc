#include "common/kube/object.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/kube/api_error.h"

namespace berth::kube {
namespace {

TEST(ObjectTest, KeysAndMetadata) {
  Json svc = {{"metadata", {{"name", "web"}, {"namespace", "prod"}, {"resourceVersion", "7"}}}};
  EXPECT_EQ(objectKey(svc), "prod/web");
  EXPECT_EQ(objectResourceVersion(svc), "7");
  Json node = {{"metadata", {{"name", "n1"}}}};
  EXPECT_EQ(objectKey(node), "n1");
  EXPECT_EQ(objectNamespace(Json::array()), "");
  EXPECT_EQ(objectName(Json{{"metadata", {{"name", 5}}}}), "");
}

TEST(ObjectTest, NamespacedPaths) {
  EXPECT_EQ(*namespacedCollectionPath("/api/v1/services", "kube-system"),
            "/api/v1/namespaces/kube-system/services");
  EXPECT_EQ(*namespacedCollectionPath("/apis/discovery.k8s.io/v1/endpointslices", "ns"),
            "/apis/discovery.k8s.io/v1/namespaces/ns/endpointslices");
  EXPECT_EQ(*namespacedCollectionPath("/api/v1/nodes", ""), "/api/v1/nodes");
  EXPECT_EQ(*objectPath("/api/v1/services", "default", "web"),
            "/api/v1/namespaces/default/services/web");
  EXPECT_EQ(*objectPath("/api/v1/nodes", "", "n1"), "/api/v1/nodes/n1");
  EXPECT_FALSE(namespacedCollectionPath("/api/v1", "x").ok());
  EXPECT_FALSE(namespacedCollectionPath("/healthz", "x").ok());
  EXPECT_FALSE(objectPath("/api/v1/services", "default", "").ok());
}

TEST(ObjectTest, UrlEncode) {
  EXPECT_EQ(urlEncode("app=web,tier!=db"), "app%3Dweb%2Ctier%21%3Ddb");
  EXPECT_EQ(urlEncode("a-b_c.d~e"), "a-b_c.d~e");
}

TEST(ApiErrorTest, MapsHttpCodesAndKeepsTheServerMessage) {
  std::string body =
      R"({"kind":"Status","status":"Failure","message":"services \"web\" not found","reason":"NotFound","code":404})";
  Status nf = apiError("GET", "/api/v1/namespaces/default/services/web", 404, body);
  EXPECT_EQ(nf.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(std::string(nf.message()),
            "kube API GET /api/v1/namespaces/default/services/web: 404 NotFound: services "
            "\"web\" not found");
  EXPECT_EQ(httpCodeOf(nf), 404);
  EXPECT_EQ(reasonOf(nf), "NotFound");

  EXPECT_EQ(apiError("POST", "/p", 409, R"({"reason":"AlreadyExists","message":"x"})").code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(apiError("PUT", "/p", 409, R"({"reason":"Conflict","message":"x"})").code(),
            absl::StatusCode::kAborted);
  Status gone = apiError("GET", "/p", 410, R"({"reason":"Expired","message":"too old"})");
  EXPECT_TRUE(isGone(gone));
  EXPECT_EQ(gone.code(), absl::StatusCode::kOutOfRange);
  EXPECT_FALSE(isGone(nf));
  EXPECT_EQ(apiError("GET", "/p", 401, "").code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(apiError("GET", "/p", 403, "").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(apiError("GET", "/p", 422, "").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(apiError("GET", "/p", 503, "upstream down").code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(apiError("GET", "/p", 502, "upstream down").message()),
              ::testing::HasSubstr("upstream down"));
  EXPECT_TRUE(apiError("GET", "/p", 200, "").ok());
}

TEST(ApiErrorTest, WatchErrorEventUsesItsCode) {
  Json status = {{"kind", "Status"}, {"code", 410}, {"reason", "Expired"},
                 {"message", "too old resource version: 5 (10)"}};
  Status s = watchErrorEvent("/api/v1/services", status);
  EXPECT_TRUE(isGone(s));
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("too old resource version"));
  Status other = watchErrorEvent("/api/v1/services", Json{{"code", 500}, {"message", "boom"}});
  EXPECT_EQ(other.code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(isGone(other));
}

}  // namespace
}  // namespace berth::kube
