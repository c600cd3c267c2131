#include "common/kube/watch_stream.h"

#include "common/strings.h"

namespace berth::kube {

WatchStreamParser::WatchStreamParser(Callback callback, size_t max_event_bytes)
    : callback_(std::move(callback)), max_event_bytes_(max_event_bytes) {}

Status WatchStreamParser::feed(std::string_view data) {
  size_t start = 0;  // start in `data` of the bytes not yet copied to buffer_
  for (size_t i = 0; i < data.size(); ++i) {
    char c = data[i];
    if (depth_ == 0) {
      if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
        start = i + 1;
        continue;
      }
      if (c != '{') {
        return invalidArgument("watch stream: expected a JSON event object, found byte '",
                               std::string(1, c), "' after ", events_, " events");
      }
      start = i;
      depth_ = 1;
      in_string_ = false;
      escape_ = false;
      continue;
    }
    if (in_string_) {
      if (escape_) {
        escape_ = false;
      } else if (c == '\\') {
        escape_ = true;
      } else if (c == '"') {
        in_string_ = false;
      }
      continue;
    }
    if (c == '"') {
      in_string_ = true;
    } else if (c == '{' || c == '[') {
      ++depth_;
    } else if (c == '}' || c == ']') {
      if (--depth_ == 0) {
        Status status;
        if (buffer_.empty()) {
          status = deliver(data.substr(start, i + 1 - start));
        } else {
          buffer_.append(data.substr(start, i + 1 - start));
          std::string text = std::move(buffer_);
          buffer_.clear();
          status = deliver(text);
        }
        if (!status.ok()) return status;
        start = i + 1;
      }
    }
  }
  if (depth_ > 0) {
    buffer_.append(data.substr(start));
    if (buffer_.size() > max_event_bytes_) {
      return invalidArgument("watch stream: an event exceeds ", max_event_bytes_,
                             " bytes without ending");
    }
  }
  return absl::OkStatus();
}

Status WatchStreamParser::deliver(std::string_view text) {
  StatusOr<json::Json> parsed = json::parse(text, "watch event");
  if (!parsed.ok()) return parsed.status();
  WatchEvent event;
  auto type = parsed->find("type");
  auto object = parsed->find("object");
  if (type == parsed->end() || !type->is_string() || object == parsed->end() ||
      !object->is_object()) {
    return invalidArgument("watch stream: event ", events_ + 1,
                           " lacks a string \"type\" or an object \"object\": ",
                           std::string(text.substr(0, 200)));
  }
  event.type = type->get<std::string>();
  event.object = std::move(*object);
  ++events_;
  return callback_(std::move(event));
}

}  // namespace berth::kube
