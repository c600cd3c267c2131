#include "tests/unit/cni/cni_test_util.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "common/fs.h"

namespace berth::cni::testing {

TempDir::TempDir() {
  char tmpl[] = "/tmp/berth-cni-test-XXXXXX";
  char* p = ::mkdtemp(tmpl);
  if (p == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = p;
}

TempDir::~TempDir() { (void)fs::removeAll(path_); }

void writeFile(const std::string& path, const std::string& content, int mode) {
  std::string dir = path.substr(0, path.rfind('/'));
  (void)fs::mkdirAll(dir);
  std::ofstream out(path, std::ios::trunc);
  out << content;
  out.close();
  ::chmod(path.c_str(), mode);
}

std::string printJson(const json::Json& doc) {
  return "cat <<'BERTH_EOF'\n" + doc.dump() + "\nBERTH_EOF\nexit 0";
}

std::string failWith(int code, const std::string& msg, const std::string& details) {
  json::Json e = {{"cniVersion", "1.0.0"}, {"code", code}, {"msg", msg}};
  if (!details.empty()) e["details"] = details;
  return "cat <<'BERTH_EOF'\n" + e.dump() + "\nBERTH_EOF\nexit 1";
}

void writeFakePlugin(const std::string& bin_dir, const std::string& name,
                     const std::string& record_dir, const FakeBehavior& b) {
  (void)fs::mkdirAll(record_dir);
  auto arm = [](const std::string& snippet) { return snippet.empty() ? ":" : snippet; };
  std::string script = "#!/bin/sh\n"
                       "d='" + record_dir + "'\n"
                       "conf=$(cat)\n"
                       "i=$(cat \"$d/seq\" 2>/dev/null || echo 0); i=$((i+1)); echo $i > \"$d/seq\"\n"
                       "f=\"$d/$(printf %04d $i).call\"\n"
                       "{ echo '" + name + "'; echo \"$CNI_COMMAND\"; env | grep '^CNI_' | sort; "
                       "echo '--stdin--'; printf '%s\\n' \"$conf\"; } > \"$f\"\n"
                       "case \"$CNI_COMMAND\" in\n"
                       "ADD)\n" + arm(b.add) + "\n;;\n"
                       "DEL)\n" + arm(b.del) + "\n;;\n"
                       "CHECK)\n" + arm(b.check) + "\n;;\n"
                       "STATUS)\n" + arm(b.status) + "\n;;\n"
                       "GC)\n" + arm(b.gc) + "\n;;\n"
                       "esac\n"
                       "exit 0\n";
  writeFile(bin_dir + "/" + name, script, 0755);
}

std::vector<RecordedCall> recordedCalls(const std::string& record_dir) {
  std::vector<RecordedCall> out;
  auto names = fs::listDir(record_dir);
  if (!names.ok()) return out;
  std::vector<std::string> files;
  for (const std::string& n : *names) {
    if (n.size() > 5 && n.substr(n.size() - 5) == ".call") files.push_back(n);
  }
  std::sort(files.begin(), files.end());
  for (const std::string& n : files) {
    std::ifstream in(record_dir + "/" + n);
    RecordedCall call;
    call.seq = std::atoi(n.c_str());
    std::getline(in, call.plugin);
    std::getline(in, call.command);
    std::string line;
    while (std::getline(in, line) && line != "--stdin--") {
      size_t eq = line.find('=');
      if (eq != std::string::npos) call.env[line.substr(0, eq)] = line.substr(eq + 1);
    }
    std::stringstream rest;
    rest << in.rdbuf();
    auto parsed = json::parse(rest.str(), "recorded stdin");
    if (parsed.ok()) call.stdin_conf = *parsed;
    out.push_back(std::move(call));
  }
  return out;
}

std::vector<std::string> callSummary(const std::string& record_dir) {
  std::vector<std::string> out;
  for (const RecordedCall& c : recordedCalls(record_dir)) out.push_back(c.plugin + ":" + c.command);
  return out;
}

}  // namespace berth::cni::testing
