#include "csi/quantity.h"

#include <algorithm>
#include <utility>

#include "common/strings.h"

namespace berth::csi {

StatusOr<int64_t> parseQuantityBytes(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return invalidArgument("quantity \"", text, "\": ", why,
                           " (expected e.g. 10Gi, 1.5Gi, 500M, 1e9 or a number of bytes)");
  };
  std::string_view s = trim(text);
  if (s.empty()) return bad("empty");
  size_t i = 0;
  bool negative = false;
  if (s[i] == '+' || s[i] == '-') negative = s[i++] == '-';
  std::string digits;  // integer and fraction digits, leading zeros dropped
  int frac_digits = 0;
  bool dot = false;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c >= '0' && c <= '9') {
      if (!(digits.empty() && c == '0')) digits += c;
      if (dot) ++frac_digits;
    } else if (c == '.' && !dot) {
      dot = true;
    } else {
      break;
    }
  }
  std::string_view number = s.substr(0, i);
  if (number.find_first_of("0123456789") == std::string_view::npos) return bad("no digits");
  std::string_view suffix = s.substr(i);
  int binary_shift = 0;
  int exp10 = 0;
  static const std::pair<std::string_view, int> kBinary[] = {
      {"Ki", 10}, {"Mi", 20}, {"Gi", 30}, {"Ti", 40}, {"Pi", 50}, {"Ei", 60}};
  static const std::pair<std::string_view, int> kDecimal[] = {
      {"n", -9}, {"u", -6}, {"m", -3}, {"", 0}, {"k", 3}, {"M", 6},
      {"G", 9}, {"T", 12}, {"P", 15}, {"E", 18}};
  bool known = false;
  for (const auto& [sfx, shift] : kBinary) {
    if (suffix == sfx) binary_shift = shift, known = true;
  }
  for (const auto& [sfx, e] : kDecimal) {
    if (suffix == sfx) exp10 = e, known = true;
  }
  if (!known && suffix.size() >= 2 && (suffix[0] == 'e' || suffix[0] == 'E')) {
    std::string_view e = suffix.substr(1);
    bool neg_e = false;
    if (e[0] == '+' || e[0] == '-') neg_e = e[0] == '-', e.remove_prefix(1);
    if (!e.empty() && e.size() <= 4 &&
        std::all_of(e.begin(), e.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      exp10 = std::stoi(std::string(e)) * (neg_e ? -1 : 1);
      known = true;
    }
  }
  if (!known) return bad(strCat("unknown suffix \"", suffix, "\""));
  if (digits.empty()) return int64_t{0};
  if (negative) return bad("negative");
  using U = unsigned __int128;
  const U kMax = static_cast<U>(INT64_MAX);
  if (digits.size() > 36) return bad("too many digits");
  U n = 0;
  for (char c : digits) n = n * 10 + static_cast<unsigned>(c - '0');
  // value = n * 2^binary_shift * 10^(exp10 - frac_digits), rounded up.
  int e = exp10 - frac_digits;
  if (e < -18) return bad("more precise than 1e-18");
  const Status too_big = bad("above the largest size (2^63-1 bytes)");
  for (; e > 0; --e) {
    if (n > kMax) return too_big;
    n *= 10;
  }
  U divisor = 1;
  for (; e < 0; ++e) divisor *= 10;  // <= 10^18
  for (int b = 0; b < binary_shift; ++b) {
    if (n > kMax * divisor) return too_big;
    n <<= 1;
  }
  U value = (n + divisor - 1) / divisor;
  if (value > kMax) return bad("above the largest size (2^63-1 bytes)");
  return static_cast<int64_t>(value);
}

std::string formatQuantityBytes(int64_t bytes) {
  static const std::pair<const char*, int> kUnits[] = {
      {"Ei", 60}, {"Pi", 50}, {"Ti", 40}, {"Gi", 30}, {"Mi", 20}, {"Ki", 10}};
  if (bytes <= 0) return std::to_string(bytes);
  for (const auto& [sfx, shift] : kUnits) {
    int64_t unit = int64_t{1} << shift;
    if (bytes % unit == 0) return strCat(bytes / unit, sfx);
  }
  return std::to_string(bytes);
}

}  // namespace berth::csi
