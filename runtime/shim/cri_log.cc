#include "runtime/shim/cri_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include "common/fs.h"
#include "runtime/shim/protocol.h"

namespace berth::shim {
namespace {

StatusOr<UniqueFd> openLog(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    RETURN_IF_ERROR_CTX(fs::mkdirAll(path.substr(0, slash)), strCat("open log \"", path, "\""));
  }
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
  if (!fd) return lastErrnoError(strCat("open log \"", path, "\""));
  return fd;
}

}  // namespace

int64_t realtimeNanos() {
  struct timespec ts {};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

std::string formatLogRecord(int64_t unix_ns, LogStream stream, bool partial,
                            std::string_view content) {
  std::string out = formatRfc3339Nano(unix_ns);
  out.reserve(out.size() + content.size() + 12);
  out += stream == LogStream::kStdout ? " stdout " : " stderr ";
  out += partial ? "P " : "F ";
  out.append(content.data(), content.size());
  out += '\n';
  return out;
}

StatusOr<std::unique_ptr<CriLogWriter>> CriLogWriter::open(const std::string& path, Clock clock) {
  if (!clock) clock = realtimeNanos;
  UniqueFd fd;
  if (!path.empty()) {
    ASSIGN_OR_RETURN(fd, openLog(path));
  }
  return std::unique_ptr<CriLogWriter>(new CriLogWriter(path, std::move(fd), std::move(clock)));
}

Status CriLogWriter::emit(LogStream stream, bool partial, std::string_view content) {
  if (!fd_) return absl::OkStatus();
  std::string rec = formatLogRecord(clock_(), stream, partial, content);
  size_t done = 0;
  while (done < rec.size()) {
    ssize_t n = ::write(fd_.get(), rec.data() + done, rec.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      ++dropped_;
      return lastErrnoError(strCat("write log \"", path_, "\""));
    }
    done += static_cast<size_t>(n);
  }
  ++records_;
  return absl::OkStatus();
}

Status CriLogWriter::write(LogStream stream, std::string_view data) {
  std::string& pending = pending_[static_cast<int>(stream)];
  Status first;
  auto note = [&first](Status st) {
    if (first.ok() && !st.ok()) first = st;
  };
  while (!data.empty()) {
    size_t nl = data.find('\n');
    size_t room = kMaxLogLineBytes - pending.size();
    if (nl != std::string_view::npos && nl <= room) {
      // A full line: pending + data[0, nl).
      std::string_view piece = data.substr(0, nl);
      std::string line;
      std::string_view content;
      if (pending.empty()) {
        content = piece;
      } else {
        line = pending;
        line.append(piece.data(), piece.size());
        content = line;
      }
      if (!content.empty() && content.back() == '\r') content.remove_suffix(1);
      note(emit(stream, false, content));
      pending.clear();
      data.remove_prefix(nl + 1);
      continue;
    }
    // No newline within the room left: buffer, and emit a P record when full.
    size_t take = std::min(room, data.size());
    pending.append(data.data(), take);
    data.remove_prefix(take);
    if (pending.size() >= kMaxLogLineBytes) {
      note(emit(stream, true, pending));
      pending.clear();
    }
  }
  return first;
}

Status CriLogWriter::finish(LogStream stream) {
  std::string& pending = pending_[static_cast<int>(stream)];
  if (pending.empty()) return absl::OkStatus();
  Status st = emit(stream, true, pending);
  pending.clear();
  return st;
}

Status CriLogWriter::reopen() {
  if (path_.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(UniqueFd fd, withContext(openLog(path_), "reopen container log"));
  fd_ = std::move(fd);
  return absl::OkStatus();
}

}  // namespace berth::shim
