#include "common/proc.h"

#include <cstdlib>

#include "common/strings.h"
#include "common/fs.h"

namespace berth::proc {
namespace {
// Returns the fields after the ")" that closes the command name (which may hold spaces).
StatusOr<std::vector<std::string>> statFields(pid_t pid) {
  auto text = fs::readFile(strCat("/proc/", pid, "/stat"));
  if (!text.ok()) return notFound("process ", pid, " not found");
  auto pos = text->rfind(')');
  if (pos == std::string::npos) return internalError("malformed /proc/", pid, "/stat");
  std::vector<std::string> fields =
      split(text->substr(pos + 2), ' ', true);
  return fields;
}
}  // namespace

StatusOr<uint64_t> startTime(pid_t pid) {
  ASSIGN_OR_RETURN(auto fields, statFields(pid));
  // fields[0] is field 3 (state); start time is field 22.
  if (fields.size() < 20) return internalError("short /proc/", pid, "/stat");
  return std::strtoull(fields[19].c_str(), nullptr, 10);
}

char state(pid_t pid) {
  auto fields = statFields(pid);
  if (!fields.ok() || fields->empty() || (*fields)[0].empty()) return 0;
  return (*fields)[0][0];
}

bool isAlive(pid_t pid, uint64_t start_time) {
  if (pid <= 0) return false;
  auto fields = statFields(pid);
  if (!fields.ok() || fields->size() < 20) return false;
  char st = (*fields)[0].empty() ? 0 : (*fields)[0][0];
  if (st == 'Z' || st == 'X') return false;
  if (start_time != 0 && std::strtoull((*fields)[19].c_str(), nullptr, 10) != start_time) {
    return false;
  }
  return true;
}

}  // namespace berth::proc
