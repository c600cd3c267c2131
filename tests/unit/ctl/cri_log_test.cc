// Reading kubelet-format CRI logs: parsing, partial lines, streams, --tail, --since,
// --timestamps, and following a file through rotation.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <sstream>
#include <thread>

#include "common/fs.h"
#include "ctl/cri_log.h"

namespace berth::ctl {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kSecond = 1000000000;

TEST(CriLog, ParsesRecords) {
  auto r = parseCriLogLine("2016-10-06T00:17:09.669794202Z stdout F hello world");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->timestamp, "2016-10-06T00:17:09.669794202Z");
  EXPECT_EQ(r->time_ns, 1475713029LL * kSecond + 669794202);
  EXPECT_FALSE(r->is_stderr);
  EXPECT_FALSE(r->partial);
  EXPECT_EQ(r->content, "hello world");

  auto p = parseCriLogLine("2016-10-06T00:17:10+02:00 stderr P  two spaces");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->time_ns, (1475713030LL - 7200) * kSecond);
  EXPECT_TRUE(p->is_stderr);
  EXPECT_TRUE(p->partial);
  EXPECT_EQ(p->content, " two spaces");

  auto empty = parseCriLogLine("2016-10-06T00:17:10Z stdout F");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->content, "");

  EXPECT_FALSE(parseCriLogLine("garbage").ok());
  EXPECT_FALSE(parseCriLogLine("2016-10-06T00:17:10Z stdin F x").ok());
  EXPECT_FALSE(parseCriLogLine("2016-10-06T00:17:10Z stdout X x").ok());
  EXPECT_FALSE(parseCriLogLine("2016-10-06 stdout F x").ok());
}

TEST(CriLog, ParseSince) {
  int64_t now = 2000000 * kSecond;
  EXPECT_EQ(*parseSince("10s", now), now - 10 * kSecond);
  EXPECT_EQ(*parseSince("1h30m", now), now - 5400 * kSecond);
  EXPECT_EQ(*parseSince("250ms", now), now - 250000000);
  EXPECT_EQ(*parseSince("1970-01-01T00:00:01Z", now), kSecond);
  auto bad = parseSince("yesterday", now);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("RFC3339"));
}

TEST(CriLog, PrinterJoinsPartialsSplitsStreamsAndHonorsOptions) {
  const std::string log =
      "2024-05-01T10:00:00Z stdout F one\n"
      "2024-05-01T10:00:01Z stderr F oops\n"
      "not a log line\n"
      "2024-05-01T10:00:02Z stdout P thr\n"
      "2024-05-01T10:00:03Z stdout F ee\n";
  {
    std::ostringstream out, err;
    LogPrinter p({}, out, err);
    p.feed(log);
    EXPECT_EQ(out.str(), "one\nthree\n");
    EXPECT_EQ(err.str(), "oops\n");
  }
  {
    std::ostringstream out, err;
    LogOptions o;
    o.timestamps = true;
    o.tail = 2;
    LogPrinter p(o, out, err);
    p.feed(log);
    EXPECT_EQ(out.str(), "2024-05-01T10:00:02Z thr2024-05-01T10:00:03Z ee\n");
    EXPECT_EQ(err.str(), "");
  }
  {
    std::ostringstream out, err;
    LogOptions o;
    o.since_ns = *parseRfc3339("2024-05-01T10:00:01Z");
    o.tail = 0;  // tail 0: nothing of what exists...
    LogPrinter p(o, out, err);
    p.feed(log);
    EXPECT_EQ(out.str(), "");
    p.feed("2024-05-01T10:00:04Z stdout F new\n");  // ...but what follows
    EXPECT_EQ(out.str(), "new\n");
  }
  {
    std::ostringstream out, err;
    LogPrinter p({}, out, err);
    p.feed("2024-05-01T10:00:00Z stdout F par");  // an incomplete line waits
    EXPECT_EQ(out.str(), "");
    p.feed("tial\n");
    EXPECT_EQ(out.str(), "partial\n");
  }
}

TEST(CriLog, FollowReadsAppendsAndRotation) {
  char tmpl[] = "/tmp/berthctl-log-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  std::string path = dir + "/c.log";
  ASSERT_TRUE(fs::writeFileAtomic(path, "2024-05-01T10:00:00Z stdout F first\n").ok());
  std::atomic<bool> running{true};
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    FILE* f = std::fopen(path.c_str(), "a");
    std::fputs("2024-05-01T10:00:01Z stdout F second\n", f);
    std::fclose(f);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    // Rotation as kubelet does it: rename, then the runtime reopens a new file.
    ::rename(path.c_str(), (path + ".1").c_str());
    (void)fs::writeFileAtomic(path, "2024-05-01T10:00:02Z stdout F third\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    running = false;
  });
  std::ostringstream out, err;
  Status st = printLogFile(path, {}, true, [&] { return running.load(); }, out, err);
  writer.join();
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(out.str(), "first\nsecond\nthird\n");

  auto missing = printLogFile(dir + "/none.log", {}, false, [] { return false; }, out, err);
  EXPECT_TRUE(absl::IsNotFound(missing)) << missing;
  EXPECT_THAT(std::string(missing.message()), HasSubstr("none.log"));
  (void)fs::removeAll(dir);
}

}  // namespace
}  // namespace berth::ctl
