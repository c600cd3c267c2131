// Incremental parser of a Kubernetes watch stream (GET ...?watch=1 with
// application/json): a sequence of meta/v1 WatchEvent objects
//   {"type":"ADDED","object":{...}}\n{"type":"MODIFIED","object":{...}}\n...
// (the API server writes one JSON object per line; this parser splits on complete
// top-level JSON objects, so it also accepts events without newlines between them).
// Bytes are fed as they arrive, cut anywhere — inside a string, an escape or a
// multi-byte character; each complete event is delivered once.
//
// Thread-safety: not thread-safe; one parser per stream.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "common/json.h"
#include "common/status.h"

namespace berth::kube {

struct WatchEvent {
  // "ADDED", "MODIFIED", "DELETED", "BOOKMARK" or "ERROR".
  std::string type;
  // The object (for ERROR a meta/v1 Status; for BOOKMARK only kind, apiVersion and
  // metadata.resourceVersion).
  json::Json object;
};

class WatchStreamParser {
 public:
  // Called once per complete event; a non-OK return stops parsing and is returned by
  // feed().
  using Callback = std::function<Status(WatchEvent&&)>;

  // `max_event_bytes` bounds one event (a stream that never closes an object would
  // otherwise grow without limit).
  explicit WatchStreamParser(Callback callback, size_t max_event_bytes = 64u << 20);

  // Consumes `data`. Errors: InvalidArgument for text that is not a JSON object, an
  // event without a string "type" or an object "object", an event larger than
  // max_event_bytes; or the callback's error. After an error the parser must not be
  // fed again.
  Status feed(std::string_view data);

  // True when part of an event is buffered (a stream that ends now was cut short).
  bool pending() const { return depth_ > 0 || !buffer_.empty(); }

  // Number of events delivered so far.
  size_t events() const { return events_; }

 private:
  Status deliver(std::string_view text);

  Callback callback_;
  size_t max_event_bytes_;
  std::string buffer_;  // bytes of the current (incomplete) event
  int depth_ = 0;       // brace/bracket nesting of the current event
  bool in_string_ = false;
  bool escape_ = false;
  size_t events_ = 0;
};

}  // namespace berth::kube
