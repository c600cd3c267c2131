// RequestCache: single-use, expiring, bounded streaming tokens.
#include "cri/streaming/request_cache.h"

#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace berth::streaming {
namespace {

using namespace std::chrono_literals;

struct FakeClock {
  std::chrono::steady_clock::time_point now = std::chrono::steady_clock::time_point{} + 1h;
  RequestCache::Clock fn() {
    return [this] { return now; };
  }
};

TEST(RequestCache, TokenWorksOnceAndCarriesItsRequest) {
  RequestCache cache;
  ExecRequest e;
  e.container_id = "c1";
  e.cmd = {"sh", "-c", "echo hi"};
  e.tty = true;
  auto token = cache.insert(e);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->size(), 22u);
  EXPECT_EQ(token->find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            std::string::npos)
      << "URL-safe: " << *token;
  auto got = cache.consume(*token);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(std::holds_alternative<ExecRequest>(*got));
  EXPECT_EQ(std::get<ExecRequest>(*got).cmd, e.cmd);
  EXPECT_TRUE(std::get<ExecRequest>(*got).tty);
  EXPECT_EQ(cache.consume(*token).status().code(), absl::StatusCode::kNotFound) << "single use";
  EXPECT_EQ(cache.consume("made-up").status().code(), absl::StatusCode::kNotFound);
}

TEST(RequestCache, TokensAreDistinctAndExpire) {
  FakeClock clock;
  RequestCache cache(60s, 1000, clock.fn());
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    auto t = cache.insert(PortForwardRequest{"pod", {80}});
    ASSERT_TRUE(t.ok());
    seen.insert(*t);
  }
  EXPECT_EQ(seen.size(), 200u);
  auto late = cache.insert(AttachRequest{"c", false, true, true, false});
  ASSERT_TRUE(late.ok());
  clock.now += 59s;
  EXPECT_EQ(cache.size(), 201u);
  clock.now += 2s;
  EXPECT_EQ(cache.consume(*late).status().code(), absl::StatusCode::kNotFound) << "expired";
  EXPECT_EQ(cache.size(), 0u);
}

TEST(RequestCache, CapacityCountsOnlyLiveTokens) {
  FakeClock clock;
  RequestCache cache(10s, 3, clock.fn());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(cache.insert(PortForwardRequest{"p", {}}).ok());
  auto full = cache.insert(PortForwardRequest{"p", {}});
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(full.status().message()), ::testing::HasSubstr("too many streaming requests"));
  clock.now += 11s;
  EXPECT_TRUE(cache.insert(PortForwardRequest{"p", {}}).ok()) << "expired tokens make room";
}

}  // namespace
}  // namespace berth::streaming
