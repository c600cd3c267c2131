#include "ctl/cri_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <deque>
#include <thread>

#include "common/unique_fd.h"

namespace berth::ctl {
namespace {

bool digits(const std::string& s, size_t pos, size_t n) {
  if (pos + n > s.size()) return false;
  for (size_t i = pos; i < pos + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

int num(const std::string& s, size_t pos, size_t n) { return std::stoi(s.substr(pos, n)); }

// Reads everything from `fd` at its offset.
std::string readAvailable(int fd) {
  std::string data;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  return data;
}

}  // namespace

StatusOr<int64_t> parseRfc3339(const std::string& text) {
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)
  const std::string& s = text;
  if (!digits(s, 0, 4) || s.size() < 20 || s[4] != '-' || !digits(s, 5, 2) || s[7] != '-' ||
      !digits(s, 8, 2) || (s[10] != 'T' && s[10] != 't') || !digits(s, 11, 2) ||
      s[13] != ':' || !digits(s, 14, 2) || s[16] != ':' || !digits(s, 17, 2)) {
    return invalidArgument("time \"", text, "\": not RFC3339 (e.g. 2024-05-01T10:00:00Z)");
  }
  std::tm tm{};
  tm.tm_year = num(s, 0, 4) - 1900;
  tm.tm_mon = num(s, 5, 2) - 1;
  tm.tm_mday = num(s, 8, 2);
  tm.tm_hour = num(s, 11, 2);
  tm.tm_min = num(s, 14, 2);
  tm.tm_sec = num(s, 17, 2);
  size_t pos = 19;
  int64_t frac_ns = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int64_t scale = 100000000;
    size_t start = pos;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
      if (scale > 0) frac_ns += (s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return invalidArgument("time \"", text, "\": empty fraction");
  }
  int64_t offset_s = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-') && digits(s, pos + 1, 2) &&
             pos + 3 < s.size() && s[pos + 3] == ':' && digits(s, pos + 4, 2)) {
    offset_s = (num(s, pos + 1, 2) * 3600 + num(s, pos + 4, 2) * 60) * (s[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return invalidArgument("time \"", text, "\": missing zone (Z or +HH:MM)");
  }
  if (pos != s.size()) return invalidArgument("time \"", text, "\": trailing characters");
  int64_t epoch = static_cast<int64_t>(::timegm(&tm)) - offset_s;
  return epoch * 1000000000 + frac_ns;
}

StatusOr<int64_t> parseSince(const std::string& text, int64_t now_ns) {
  if (text.empty()) return invalidArgument("--since: empty");
  if (auto t = parseRfc3339(text); t.ok()) return *t;
  // A Go-style duration: one or more <number><unit>.
  int64_t total = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t start = pos;
    while (pos < text.size() && (std::isdigit(static_cast<unsigned char>(text[pos])) ||
                                 text[pos] == '.')) {
      ++pos;
    }
    size_t unit_start = pos;
    while (pos < text.size() && std::isalpha(static_cast<unsigned char>(text[pos]))) ++pos;
    std::string number = text.substr(start, unit_start - start);
    std::string unit = text.substr(unit_start, pos - unit_start);
    int64_t scale = unit == "ns" ? 1 : unit == "us" ? 1000 : unit == "ms" ? 1000000
                  : unit == "s"  ? 1000000000LL
                  : unit == "m"  ? 60 * 1000000000LL
                  : unit == "h"  ? 3600 * 1000000000LL
                                 : 0;
    if (number.empty() || scale == 0) {
      return invalidArgument("--since \"", text,
                             "\": use an RFC3339 time (2024-05-01T10:00:00Z) or a duration "
                             "such as 10s, 5m, 1h30m");
    }
    total += static_cast<int64_t>(std::stod(number) * static_cast<double>(scale));
  }
  return now_ns - total;
}

StatusOr<CriLogRecord> parseCriLogLine(const std::string& line) {
  CriLogRecord r;
  size_t sp1 = line.find(' ');
  if (sp1 == std::string::npos) return invalidArgument("log line has no timestamp");
  r.timestamp = line.substr(0, sp1);
  ASSIGN_OR_RETURN(r.time_ns, parseRfc3339(r.timestamp));
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string::npos) return invalidArgument("log line has no stream");
  std::string stream = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (stream == "stderr") {
    r.is_stderr = true;
  } else if (stream != "stdout") {
    return invalidArgument("log line stream \"", stream, "\": want stdout or stderr");
  }
  // The tag is "P" or "F" (possibly ":"-separated flags in later formats; the first
  // is the partial flag). The content follows one space; an empty F line may end here.
  size_t sp3 = line.find(' ', sp2 + 1);
  std::string tag = line.substr(sp2 + 1, sp3 == std::string::npos ? std::string::npos
                                                                   : sp3 - sp2 - 1);
  std::string first = tag.substr(0, tag.find(':'));
  if (first != "P" && first != "F") {
    return invalidArgument("log line tag \"", tag, "\": want P or F");
  }
  r.partial = first == "P";
  if (sp3 != std::string::npos) r.content = line.substr(sp3 + 1);
  return r;
}

void LogPrinter::printLine(const std::string& line) {
  auto record = parseCriLogLine(line);
  if (!record.ok()) return;
  if (options_.since_ns > 0 && record->time_ns < options_.since_ns) return;
  std::ostream& os = record->is_stderr ? err_ : out_;
  if (options_.timestamps) os << record->timestamp << ' ';
  os << record->content;
  if (!record->partial) os << '\n';
  os.flush();
}

void LogPrinter::feed(const std::string& data) {
  pending_ += data;
  size_t end = pending_.rfind('\n');
  if (end == std::string::npos) return;
  std::string complete = pending_.substr(0, end);
  pending_.erase(0, end + 1);
  std::vector<std::string> lines = split(complete, '\n');
  size_t begin = 0;
  if (first_ && options_.tail >= 0 && static_cast<int64_t>(lines.size()) > options_.tail) {
    begin = lines.size() - static_cast<size_t>(options_.tail);
  }
  first_ = false;
  for (size_t i = begin; i < lines.size(); ++i) printLine(lines[i]);
}

Status printLogFile(const std::string& path, const LogOptions& options, bool follow,
                    const std::function<bool()>& keep_following, std::ostream& out,
                    std::ostream& err) {
  auto open = [&]() -> StatusOr<UniqueFd> {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return lastErrnoError(strCat("open container log \"", path, "\""));
    return UniqueFd(fd);
  };
  ASSIGN_OR_RETURN(UniqueFd fd, open());
  LogPrinter printer(options, out, err);
  printer.feed(readAvailable(fd.get()));
  if (!follow) return absl::OkStatus();

  auto last_check = std::chrono::steady_clock::now();
  for (;;) {
    std::string data = readAvailable(fd.get());
    if (!data.empty()) {
      printer.feed(data);
      continue;
    }
    // Rotated? The path now names another file, or ours was truncated.
    struct stat by_path {}, by_fd {};
    bool rotated = false;
    if (::fstat(fd.get(), &by_fd) == 0) {
      if (::stat(path.c_str(), &by_path) == 0) {
        rotated = by_path.st_ino != by_fd.st_ino || by_path.st_dev != by_fd.st_dev;
      }
      off_t pos = ::lseek(fd.get(), 0, SEEK_CUR);
      if (!rotated && pos > by_fd.st_size) {
        ::lseek(fd.get(), 0, SEEK_SET);
        continue;
      }
    }
    if (rotated) {
      auto reopened = open();
      if (reopened.ok()) {
        printer.feed(readAvailable(fd.get()));  // the old file's last words
        fd = std::move(*reopened);
        continue;
      }
    }
    auto now = std::chrono::steady_clock::now();
    if (now - last_check >= std::chrono::seconds(1)) {
      last_check = now;
      if (!keep_following()) {
        printer.feed(readAvailable(fd.get()));
        return absl::OkStatus();
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace berth::ctl
