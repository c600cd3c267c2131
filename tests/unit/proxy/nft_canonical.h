// Canonical form of an nft script for golden-file comparison: comment lines (#...) and
// blank lines dropped, whitespace runs collapsed to one space, lines trimmed and sorted.
// Two scripts with the same commands in another order compare equal; the order itself is
// checked by the tests that apply scripts to a kernel and by the walker tests.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace berth::proxy::testing {

std::vector<std::string> canonicalLines(std::string_view script);
std::string canonical(std::string_view script);

}  // namespace berth::proxy::testing
