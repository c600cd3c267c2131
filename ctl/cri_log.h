// Reading kubelet-format CRI container logs for `berthctl logs` (the format berth-shim
// writes, kubelet's pkg/kubelet/kuberuntime/logs): one record per line,
//   <RFC3339Nano timestamp> <stream: stdout|stderr> <tag: P|F> <content>
// where P marks a partial record (a long line split; the content continues in the next
// record) and F the full record that ends the line.
//
// Thread-safety: pure functions; a LogPrinter is used by one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "common/status.h"

namespace berth::ctl {

struct CriLogRecord {
  std::string timestamp;  // as written (RFC3339Nano)
  int64_t time_ns = 0;    // since the epoch
  bool is_stderr = false;
  bool partial = false;   // tag P
  std::string content;
};

// Parses one line (without its '\n'). Errors: InvalidArgument naming what is missing
// (timestamp, stream, tag) for a line not in the format.
StatusOr<CriLogRecord> parseCriLogLine(const std::string& line);

// Parses an RFC3339 / RFC3339Nano time ("2024-05-01T10:00:00.123456789Z",
// "...+02:00") to ns since the epoch. Errors: InvalidArgument.
StatusOr<int64_t> parseRfc3339(const std::string& text);

// `--since`: an RFC3339 time, or a duration before `now_ns` such as "10s", "5m",
// "1h30m", "250ms". Returns ns since the epoch. Errors: InvalidArgument naming the value
// and the accepted forms.
StatusOr<int64_t> parseSince(const std::string& text, int64_t now_ns);

struct LogOptions {
  bool timestamps = false;  // prefix each record with its timestamp and a space
  int64_t tail = -1;        // only the last N lines of the file; -1 for all
  int64_t since_ns = 0;     // skip records older than this; 0 for all
};

// Prints records: content of stdout records to `out`, of stderr records to `err`;
// a P record's content is printed without a newline, an F record's with one. Lines
// that are not CRI records (a file being rotated, a truncated tail) are skipped.
class LogPrinter {
 public:
  LogPrinter(LogOptions options, std::ostream& out, std::ostream& err)
      : options_(options), out_(out), err_(err) {}

  // Prints the complete lines of `data` (which need not end in '\n'; an incomplete last
  // line is kept and completed by the next feed()). Honors `tail` only on the first
  // call (the file's existing content).
  void feed(const std::string& data);

 private:
  void printLine(const std::string& line);

  LogOptions options_;
  std::ostream& out_;
  std::ostream& err_;
  std::string pending_;
  bool first_ = true;
};

// Prints the log file at `path` with `options`. With `follow`, keeps reading appended
// data (and reopens the file when it is rotated: replaced or truncated) until
// `keep_following()` returns false, checked about every second; then prints what is
// left and returns. Errors: NotFound / PermissionDenied naming the path.
Status printLogFile(const std::string& path, const LogOptions& options, bool follow,
                    const std::function<bool()>& keep_following, std::ostream& out,
                    std::ostream& err);

}  // namespace berth::ctl
