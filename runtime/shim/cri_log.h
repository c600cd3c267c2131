// CRI container log files, in the format kubelet reads (k8s.io/cri-api "CRI logging"
// and pkg/kubelet/kuberuntime/logs): one record per line,
//
//   <timestamp> <stream> <tag> <content>\n
//   2016-10-06T00:17:09.669794202Z stdout F hello world
//
// timestamp: RFC3339 with 9 fractional digits, UTC; stream: stdout or stderr; tag: F
// for a full line, P for a partial one. The content excludes the line end ("\n" and a
// "\r" before it, as containerd's reader strips them). A line longer than
// kMaxLogLineBytes is written as P records of kMaxLogLineBytes each and a final F
// record. Data left without a newline when the stream ends (EOF) is written as one P
// record, as containerd does; kubelet shows it as is.
//
// Each record is written with one write(2) on an O_APPEND fd, so stdout and stderr
// records never interleave within a line. kubelet rotates a log by renaming it and
// then calling ReopenContainerLog -> reopen(), which opens the path again (creating it).
//
// Thread-safety: a CriLogWriter is used by one thread (the shim's event loop).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "common/unique_fd.h"

namespace berth::shim {

inline constexpr size_t kMaxLogLineBytes = 16 * 1024;

enum class LogStream { kStdout = 0, kStderr = 1 };

// Returns the current time as unix nanoseconds (CLOCK_REALTIME).
int64_t realtimeNanos();

// Formats one record: "<ts> <stream> <tag> <content>\n".
std::string formatLogRecord(int64_t unix_ns, LogStream stream, bool partial,
                            std::string_view content);

class CriLogWriter {
 public:
  using Clock = std::function<int64_t()>;

  // Opens `path` for appending (created 0640 with its parent directory if missing).
  // An empty path makes a writer that discards everything. `clock` gives record
  // timestamps (default realtimeNanos). Errors: the open failure with the path.
  static StatusOr<std::unique_ptr<CriLogWriter>> open(const std::string& path,
                                                      Clock clock = nullptr);

  // Feeds bytes read from `stream`: complete lines are written at once, the rest is
  // buffered until its newline (or until it reaches kMaxLogLineBytes, which is written
  // as a P record). Errors: a failed write (the data of that record is lost; later
  // writes are still attempted, e.g. after a reopen()).
  Status write(LogStream stream, std::string_view data);

  // The stream ended: buffered data without a newline is written as a P record.
  Status finish(LogStream stream);

  // Opens the path again (after kubelet renamed the file), keeping buffered partial
  // lines. Errors: the open failure; the old fd is kept then, so nothing is lost.
  Status reopen();

  const std::string& path() const { return path_; }
  // Records written so far, and records lost to write errors.
  uint64_t records() const { return records_; }
  uint64_t dropped() const { return dropped_; }

 private:
  CriLogWriter(std::string path, UniqueFd fd, Clock clock)
      : path_(std::move(path)), fd_(std::move(fd)), clock_(std::move(clock)) {}
  Status emit(LogStream stream, bool partial, std::string_view content);

  std::string path_;
  UniqueFd fd_;
  Clock clock_;
  std::string pending_[2];  // per stream: bytes after the last newline
  uint64_t records_ = 0;
  uint64_t dropped_ = 0;
};

}  // namespace berth::shim
