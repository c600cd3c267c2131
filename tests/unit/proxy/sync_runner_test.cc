// The proxy's sync loop with a scripted sync function: first sync full and at once,
// bursts of changes folded into one sync per min interval, periodic full resyncs,
// failures retried with backoff as full syncs while health reports unhealthy.
#include "proxy/sync_runner.h"

#include <atomic>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace berth::proxy {
namespace {

using namespace std::chrono_literals;

struct Recorder {
  std::mutex mu;
  std::vector<bool> fulls;
  std::atomic<int> fail_next{0};
  SyncRunner::SyncFn fn() {
    return [this](bool full) -> StatusOr<SyncCounts> {
      {
        std::lock_guard<std::mutex> lock(mu);
        fulls.push_back(full);
      }
      if (fail_next > 0) {
        --fail_next;
        return absl::InternalError("apply nftables: line 3: No such file or directory");
      }
      return SyncCounts{10, 2, 3};
    };
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mu);
    return fulls.size();
  }
  std::vector<bool> snapshot() {
    std::lock_guard<std::mutex> lock(mu);
    return fulls;
  }
};

bool waitFor(const std::function<bool()>& cond, std::chrono::milliseconds timeout = 5s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return cond();
}

TEST(SyncRunner, FirstSyncIsFullThenBurstsFoldIntoOnePartialSync) {
  Recorder r;
  ProxyHealth health(60s);
  ProxyMetrics metrics("nftables");
  SyncRunner runner({200ms, 60s, 10ms, 100ms}, r.fn(), &health, &metrics);
  runner.start();
  ASSERT_TRUE(waitFor([&] { return r.count() == 1; }));
  EXPECT_TRUE(r.snapshot()[0]) << "the first sync is full";
  for (int i = 0; i < 20; ++i) runner.requestSync();
  ASSERT_TRUE(waitFor([&] { return r.count() == 2; }));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(r.count(), 2u) << "20 requests inside one min interval make one sync";
  EXPECT_FALSE(r.snapshot()[1]) << "a change makes a partial sync";
  EXPECT_TRUE(health.healthy());
  EXPECT_THAT(metrics.render(), ::testing::HasSubstr("kubeproxy_sync_partial_proxy_rules_duration_seconds_count 1"));
  runner.requestFullSync();
  ASSERT_TRUE(waitFor([&] { return r.count() == 3; }));
  EXPECT_TRUE(r.snapshot()[2]);
}

TEST(SyncRunner, PeriodicFullResyncWithoutChanges) {
  Recorder r;
  SyncRunner runner({0ms, 100ms, 10ms, 100ms}, r.fn(), nullptr, nullptr);
  runner.start();
  ASSERT_TRUE(waitFor([&] { return r.count() >= 3; }, 3s));
  for (bool full : r.snapshot()) EXPECT_TRUE(full);
}

TEST(SyncRunner, FailuresRetryWithBackoffAsFullSyncsAndTurnHealthUnhealthy) {
  Recorder r;
  ProxyHealth health(60s);
  ProxyMetrics metrics("iptables");
  SyncRunner runner({0ms, 60s, 20ms, 80ms}, r.fn(), &health, &metrics);
  runner.start();
  ASSERT_TRUE(waitFor([&] { return r.count() == 1; }));
  ASSERT_TRUE(waitFor([&] { return health.healthy(); }));
  r.fail_next = 3;
  auto t0 = std::chrono::steady_clock::now();
  runner.requestSync();
  ASSERT_TRUE(waitFor([&] { return runner.failures() >= 1; }));
  EXPECT_FALSE(health.healthy()) << "a failed sync makes /healthz fail";
  ASSERT_TRUE(waitFor([&] { return r.count() == 5 && health.healthy(); }));
  auto took = std::chrono::steady_clock::now() - t0;
  // Backoff 20 + 40 + 80 ms before the fourth attempt succeeds.
  EXPECT_GE(took, 130ms);
  auto fulls = r.snapshot();
  EXPECT_FALSE(fulls[1]) << "the change itself is a partial sync";
  EXPECT_TRUE(fulls[2] && fulls[3] && fulls[4]) << "every retry after a failure is full";
  EXPECT_EQ(runner.failures(), 3);
  EXPECT_THAT(metrics.render(), ::testing::HasSubstr("berth_proxy_sync_failures_total 3"));
}

TEST(SyncRunner, StopIsPromptAndIdempotent) {
  Recorder r;
  SyncRunner runner({1000ms, 60s, 10ms, 100ms}, r.fn(), nullptr, nullptr);
  runner.start();
  ASSERT_TRUE(waitFor([&] { return r.count() == 1; }));
  auto t0 = std::chrono::steady_clock::now();
  runner.stop();
  runner.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 500ms);
}

}  // namespace
}  // namespace berth::proxy
