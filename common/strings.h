// String helpers. Debian's abseil is built as C++14, so absl::string_view is not
// std::string_view and absl::StrCat/StrSplit do not take std::string_view: berth uses
// these instead (absl is used only for Status/StatusOr).
// Thread-safety: pure functions.
#pragma once

#include <cstdint>

#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/strings/string_view.h"

namespace berth {

namespace strings_internal {
template <typename T>
void appendOne(std::string& out, const T& value) {
  if constexpr (std::is_same_v<T, char>) {
    out.push_back(value);
  } else if constexpr (std::is_same_v<T, bool>) {
    out.append(value ? "true" : "false");
  } else if constexpr (std::is_convertible_v<const T&, std::string_view>) {
    out.append(std::string_view(value));
  } else if constexpr (std::is_same_v<T, absl::string_view>) {
    out.append(value.data(), value.size());
  } else if constexpr (std::is_arithmetic_v<T> || std::is_enum_v<T>) {
    if constexpr (std::is_enum_v<T>) {
      out.append(std::to_string(static_cast<std::underlying_type_t<T>>(value)));
    } else {
      out.append(std::to_string(value));
    }
  } else {
    static_assert(sizeof(T) == 0, "strCat: unsupported argument type");
  }
}
}  // namespace strings_internal

// Concatenates strings, string_views, chars, bools and numbers.
template <typename... Args>
std::string strCat(const Args&... args) {
  std::string out;
  (strings_internal::appendOne(out, args), ...);
  return out;
}

// Splits `text` at every `sep`; with `skip_empty`, empty pieces are dropped.
std::vector<std::string> split(std::string_view text, char sep, bool skip_empty = false);

// Joins `parts` with `sep`.
std::string joinStrings(const std::vector<std::string>& parts, std::string_view sep);

// Removes leading and trailing ASCII whitespace.
std::string_view trim(std::string_view text);

// Lowercase hexadecimal of `value` without a prefix.
std::string hex(unsigned long long value);

// FNV-1a, 64 bits: a fast non-cryptographic hash for names and fingerprints derived
// from text (never for anything an attacker could exploit by colliding).
uint64_t fnv1a64(std::string_view text);

// fnv1a64(text) as exactly 16 lowercase hex digits.
std::string fnv1a64Hex(std::string_view text);

}  // namespace berth
