// Kubernetes resource quantities (apimachinery's resource.Quantity) as byte counts,
// for the provisioner's PVC requests and PV capacities.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace berth::csi {

// Parses a Kubernetes resource.Quantity as bytes, rounding a fraction of a byte up
// (resource.Quantity.Value()): plain numbers "1073741824", decimals "1.5Gi", binary
// suffixes Ki Mi Gi Ti Pi Ei, decimal suffixes n u m k M G T P E, exponents "1e9"/"1E3".
// Errors: InvalidArgument (quoting the text) for anything else, a negative value, or
// a value above INT64_MAX.
StatusOr<int64_t> parseQuantityBytes(std::string_view text);

// Canonical quantity for a byte count: the largest binary suffix that divides it
// exactly ("10Gi", "1536Mi"), else plain bytes ("1000").
std::string formatQuantityBytes(int64_t bytes);

}  // namespace berth::csi
