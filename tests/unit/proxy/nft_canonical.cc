#include "tests/unit/proxy/nft_canonical.h"

#include <algorithm>

namespace berth::proxy::testing {

std::vector<std::string> canonicalLines(std::string_view script) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= script.size()) {
    size_t nl = script.find('\n', pos);
    std::string_view line = script.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? script.size() + 1 : nl + 1;
    std::string norm;
    bool space = false;
    for (char c : line) {
      if (c == ' ' || c == '\t' || c == '\r') {
        space = !norm.empty();
        continue;
      }
      if (space) norm += ' ';
      space = false;
      norm += c;
    }
    if (norm.empty() || norm[0] == '#') continue;
    out.push_back(std::move(norm));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string canonical(std::string_view script) {
  std::string out;
  for (const std::string& line : canonicalLines(script)) {
    out += line;
    out += '\n';
  }
  return out;
}

}  // namespace berth::proxy::testing
