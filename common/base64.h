// Standard base64 (RFC 4648 section 4, alphabet A-Z a-z 0-9 + /), one implementation
// for every place berth needs it: docker `auth` credentials, the CNI result cache
// (Go's encoding/json writes []byte as base64), the shim protocol's byte strings.
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace berth {

// Encodes with '=' padding.
std::string base64Encode(std::string_view data);

// Decodes padded input, and unpadded input whose length leaves 2 or 3 characters in
// the last group (docker config `auth` values are sometimes written unpadded).
// Errors: InvalidArgument naming the offset of a character outside the alphabet,
// data after padding, or an impossible length.
StatusOr<std::string> base64Decode(std::string_view text);

}  // namespace berth
