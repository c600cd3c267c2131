// CRI log writer: record format, timestamps, line splitting, partial lines, reopen.
#include "runtime/shim/cri_log.h"

#include <stdlib.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/fs.h"
#include "common/strings.h"
#include "runtime/shim/protocol.h"

namespace berth::shim {
namespace {

using ::testing::ElementsAre;

class CriLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-crilog-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/pod/ctr/0.log";
  }
  void TearDown() override { (void)fs::removeAll(dir_); }

  std::unique_ptr<CriLogWriter> open() {
    auto w = CriLogWriter::open(path_, [this] { return now_ += 1000; });
    EXPECT_TRUE(w.ok()) << w.status();
    return w.ok() ? std::move(*w) : nullptr;
  }
  std::vector<std::string> lines(const std::string& path) {
    auto text = fs::readFile(path);
    EXPECT_TRUE(text.ok()) << text.status();
    return text.ok() ? split(*text, '\n', true) : std::vector<std::string>{};
  }
  std::vector<std::string> lines() { return lines(path_); }

  std::string dir_;
  std::string path_;
  int64_t now_ = 1475713029669794202 - 1000;  // 2016-10-06T00:17:09.669794202Z
};

TEST(CriLogFormat, TimestampHasNineFractionalDigitsInUtc) {
  EXPECT_EQ(formatRfc3339Nano(1475713029669794202), "2016-10-06T00:17:09.669794202Z");
  EXPECT_EQ(formatRfc3339Nano(1475713029000000000), "2016-10-06T00:17:09.000000000Z");
  EXPECT_EQ(formatRfc3339Nano(5), "1970-01-01T00:00:00.000000005Z");
}

TEST(CriLogFormat, RecordLayout) {
  EXPECT_EQ(formatLogRecord(1475713029669794202, LogStream::kStdout, false, "hello world"),
            "2016-10-06T00:17:09.669794202Z stdout F hello world\n");
  EXPECT_EQ(formatLogRecord(1475713029669794202, LogStream::kStderr, true, ""),
            "2016-10-06T00:17:09.669794202Z stderr P \n");
}

TEST_F(CriLogTest, CompleteLinesBecomeFullRecordsAndStreamsStaySeparate) {
  auto w = open();
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->write(LogStream::kStdout, "one\ntw").ok());
  ASSERT_TRUE(w->write(LogStream::kStderr, "err1\n").ok());
  ASSERT_TRUE(w->write(LogStream::kStdout, "o\n\nthree\r\n").ok());
  EXPECT_THAT(lines(), ElementsAre("2016-10-06T00:17:09.669794202Z stdout F one",
                                   "2016-10-06T00:17:09.669795202Z stderr F err1",
                                   "2016-10-06T00:17:09.669796202Z stdout F two",
                                   "2016-10-06T00:17:09.669797202Z stdout F ",
                                   "2016-10-06T00:17:09.669798202Z stdout F three"));
  EXPECT_EQ(w->records(), 5u);
}

TEST_F(CriLogTest, LongLinesAreSplitIntoPartialRecords) {
  auto w = open();
  ASSERT_TRUE(w);
  std::string big(kMaxLogLineBytes * 2 + 10, 'x');
  big[0] = 'a';
  big[kMaxLogLineBytes] = 'b';
  big[kMaxLogLineBytes * 2] = 'c';
  // Fed in odd-sized pieces to exercise the buffering.
  std::string data = big + "\n";
  for (size_t i = 0; i < data.size(); i += 1000) {
    ASSERT_TRUE(w->write(LogStream::kStdout, std::string_view(data).substr(i, 1000)).ok());
  }
  auto got = lines();
  ASSERT_EQ(got.size(), 3u);
  const size_t prefix = std::string("2016-10-06T00:17:09.669794202Z stdout P ").size();
  EXPECT_EQ(got[0].substr(31, 8), "stdout P");
  EXPECT_EQ(got[1].substr(31, 8), "stdout P");
  EXPECT_EQ(got[2].substr(31, 8), "stdout F");
  EXPECT_EQ(got[0].substr(prefix), big.substr(0, kMaxLogLineBytes));
  EXPECT_EQ(got[1].substr(prefix), big.substr(kMaxLogLineBytes, kMaxLogLineBytes));
  EXPECT_EQ(got[2].substr(prefix), big.substr(2 * kMaxLogLineBytes));
}

TEST_F(CriLogTest, LineOfExactlyMaxBytesIsOneFullRecord) {
  auto w = open();
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->write(LogStream::kStderr, std::string(kMaxLogLineBytes, 'y') + "\n").ok());
  auto got = lines();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].substr(31, 8), "stderr F");
  EXPECT_EQ(got[0].size(), 40 + kMaxLogLineBytes);
}

TEST_F(CriLogTest, UnterminatedDataIsHeldUntilEofThenWrittenAsPartial) {
  auto w = open();
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->write(LogStream::kStdout, "no newline").ok());
  EXPECT_TRUE(lines().empty());
  ASSERT_TRUE(w->finish(LogStream::kStdout).ok());
  ASSERT_TRUE(w->finish(LogStream::kStderr).ok());  // nothing buffered: nothing written
  EXPECT_THAT(lines(), ElementsAre("2016-10-06T00:17:09.669794202Z stdout P no newline"));
}

TEST_F(CriLogTest, ReopenAfterRenameWritesToANewFile) {
  auto w = open();
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->write(LogStream::kStdout, "before\npart").ok());
  std::string rotated = path_ + ".20260101-000000";
  ASSERT_EQ(::rename(path_.c_str(), rotated.c_str()), 0);
  ASSERT_TRUE(w->write(LogStream::kStdout, "ial\n").ok());  // still the old file
  ASSERT_TRUE(w->reopen().ok());
  ASSERT_TRUE(w->write(LogStream::kStdout, "after\n").ok());
  auto old_lines = lines(rotated);
  ASSERT_EQ(old_lines.size(), 2u);
  EXPECT_THAT(old_lines[1], ::testing::EndsWith(" stdout F partial"));
  auto new_lines = lines();
  ASSERT_EQ(new_lines.size(), 1u);
  EXPECT_THAT(new_lines[0], ::testing::EndsWith(" stdout F after"));
}

TEST_F(CriLogTest, ReopenFailureKeepsTheOldFile) {
  auto w = open();
  ASSERT_TRUE(w);
  // Replace the log's directory by a file: the path cannot be opened again.
  std::string ctr_dir = dir_ + "/pod/ctr";
  ASSERT_TRUE(fs::removeAll(ctr_dir).ok());
  ASSERT_TRUE(fs::writeFileAtomic(ctr_dir, "not a dir").ok());
  Status st = w->reopen();
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), ::testing::HasSubstr(path_));
  EXPECT_TRUE(w->write(LogStream::kStdout, "still works\n").ok());
}

TEST_F(CriLogTest, EmptyPathDiscards) {
  auto w = CriLogWriter::open("");
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE((*w)->write(LogStream::kStdout, "dropped\n").ok());
  EXPECT_TRUE((*w)->reopen().ok());
  EXPECT_EQ((*w)->records(), 0u);
}

TEST_F(CriLogTest, OpenFailureNamesThePath) {
  auto w = CriLogWriter::open("/proc/version/x.log");
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(std::string(w.status().message()), ::testing::HasSubstr("/proc/version"));
}

}  // namespace
}  // namespace berth::shim
