#include "common/kube/watch_stream.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

namespace berth::kube {
namespace {

using ::testing::HasSubstr;

// Three events, one with braces, quotes, escapes and multi-byte UTF-8 inside strings.
const std::string kStream =
    "{\"type\":\"ADDED\",\"object\":{\"kind\":\"Service\",\"metadata\":{\"name\":\"a\","
    "\"resourceVersion\":\"5\",\"annotations\":{\"x\":\"}{][\\\"\\\\\"}}}}\n"
    "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"caf\xc3\xa9\","
    "\"resourceVersion\":\"6\"},\"spec\":{\"ports\":[{\"port\":80},{\"port\":443}]}}}\n"
    "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Service\",\"metadata\":"
    "{\"resourceVersion\":\"9\"}}}\n";

std::vector<WatchEvent> parseInPieces(const std::vector<size_t>& cuts) {
  std::vector<WatchEvent> events;
  WatchStreamParser parser([&](WatchEvent&& e) {
    events.push_back(std::move(e));
    return absl::OkStatus();
  });
  size_t pos = 0;
  for (size_t cut : cuts) {
    EXPECT_TRUE(parser.feed(std::string_view(kStream).substr(pos, cut - pos)).ok());
    pos = cut;
  }
  EXPECT_TRUE(parser.feed(std::string_view(kStream).substr(pos)).ok());
  EXPECT_FALSE(parser.pending());
  return events;
}

void expectThreeEvents(const std::vector<WatchEvent>& events) {
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].type, "ADDED");
  EXPECT_EQ(events[0].object["metadata"]["annotations"]["x"], "}{][\"\\");
  EXPECT_EQ(events[1].type, "MODIFIED");
  EXPECT_EQ(events[1].object["metadata"]["name"], "caf\xc3\xa9");
  EXPECT_EQ(events[1].object["spec"]["ports"][1]["port"], 443);
  EXPECT_EQ(events[2].type, "BOOKMARK");
  EXPECT_EQ(events[2].object["metadata"]["resourceVersion"], "9");
}

TEST(WatchStreamParserTest, WholeStreamAtOnce) { expectThreeEvents(parseInPieces({})); }

TEST(WatchStreamParserTest, EverySingleSplitPoint) {
  for (size_t cut = 1; cut < kStream.size(); ++cut) {
    SCOPED_TRACE(cut);
    expectThreeEvents(parseInPieces({cut}));
  }
}

TEST(WatchStreamParserTest, ByteAtATime) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < kStream.size(); ++i) cuts.push_back(i);
  expectThreeEvents(parseInPieces(cuts));
}

TEST(WatchStreamParserTest, RandomChunking) {
  std::mt19937 rng(42);
  for (int round = 0; round < 200; ++round) {
    std::vector<size_t> cuts;
    size_t pos = 0;
    while (true) {
      pos += 1 + rng() % 17;
      if (pos >= kStream.size()) break;
      cuts.push_back(pos);
    }
    expectThreeEvents(parseInPieces(cuts));
  }
}

TEST(WatchStreamParserTest, EventsWithoutNewlinesAndWithCrLf) {
  std::vector<std::string> types;
  WatchStreamParser parser([&](WatchEvent&& e) {
    types.push_back(e.type);
    return absl::OkStatus();
  });
  ASSERT_TRUE(parser.feed("{\"type\":\"ADDED\",\"object\":{}}{\"type\":\"DELETED\",\"object\":{}}"
                          "\r\n  {\"type\":\"MODIFIED\",\"object\":{}}\r\n")
                  .ok());
  EXPECT_THAT(types, ::testing::ElementsAre("ADDED", "DELETED", "MODIFIED"));
  EXPECT_EQ(parser.events(), 3u);
}

TEST(WatchStreamParserTest, PartialEventIsPending) {
  WatchStreamParser parser([](WatchEvent&&) { return absl::OkStatus(); });
  ASSERT_TRUE(parser.feed("{\"type\":\"ADDED\",\"obj").ok());
  EXPECT_TRUE(parser.pending());
  EXPECT_EQ(parser.events(), 0u);
}

TEST(WatchStreamParserTest, GarbageAndMalformedEventsAreErrors) {
  WatchStreamParser garbage([](WatchEvent&&) { return absl::OkStatus(); });
  Status s = garbage.feed("<html>oops</html>");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("expected a JSON event object"));

  WatchStreamParser no_type([](WatchEvent&&) { return absl::OkStatus(); });
  Status t = no_type.feed("{\"object\":{}}\n");
  EXPECT_THAT(std::string(t.message()), HasSubstr("lacks a string \"type\""));

  WatchStreamParser big([](WatchEvent&&) { return absl::OkStatus(); }, 64);
  Status b = big.feed("{\"type\":\"ADDED\",\"object\":{\"x\":\"" + std::string(100, 'a'));
  EXPECT_THAT(std::string(b.message()), HasSubstr("exceeds 64 bytes"));
}

TEST(WatchStreamParserTest, CallbackErrorStopsParsing) {
  int calls = 0;
  WatchStreamParser parser([&](WatchEvent&&) {
    ++calls;
    return absl::CancelledError("enough");
  });
  Status s = parser.feed(kStream);
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace berth::kube
