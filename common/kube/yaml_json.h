// YAML -> JSON for Kubernetes manifests (yaml-cpp), resolving plain scalars with the
// YAML 1.2 core schema as `kubectl` users expect for the common cases:
//   plain  80 / -3 / 0x1F / 0o17       -> JSON integer
//   plain  1.5 / 1e3 / -.5             -> JSON float (.inf/.nan: error, JSON has none)
//   plain  true / True / TRUE / false   -> JSON bool
//   plain  null / Null / NULL / ~ / ""  -> JSON null
//   any other plain scalar             -> JSON string
//   quoted "80" / '80' / "true"         -> JSON string (quoting always means string)
//   explicit tags !!str, !!int, !!float, !!bool, !!null are honoured; other tags keep
//   the scalar as a string.
// Differences from Kubernetes' YAML 1.1 reader (sigs.k8s.io/yaml): yes/no/on/off stay
// strings and a leading zero (0644) is decimal, not octal. Mapping keys become JSON
// object keys (their scalar text); a key that is a sequence or mapping is an error.
//
// Thread-safety: pure functions, thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace berth::kube {

// One document of a multi-document YAML stream, with the 1-based line it starts on.
struct YamlDocument {
  json::Json value;
  int line = 1;
};

// Parses every document of `text` ("---"-separated); empty documents (null) are
// skipped. `what` names the source in errors (a file name). Errors: InvalidArgument
// "<what>:<line>:<column>: <yaml-cpp message>" for syntax errors, and
// "<what>:<line>: <reason>" for values JSON cannot hold (non-scalar keys, .inf, a bad
// !!int).
StatusOr<std::vector<YamlDocument>> parseYamlDocuments(std::string_view text,
                                                       std::string_view what);

// Parses exactly one document (an empty stream gives JSON null). Errors as above, and
// InvalidArgument when the stream holds more than one document.
StatusOr<json::Json> parseYaml(std::string_view text, std::string_view what);

}  // namespace berth::kube
