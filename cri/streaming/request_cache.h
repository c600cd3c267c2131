// The streaming server's single-use tokens: the CRI Exec / Attach / PortForward calls
// store what they were asked (container, command, streams; pod sandbox, ports) and get
// a token for the URL they return; the HTTP request that comes with that token takes it
// out again. As kubelet's streaming server (k8s.io/kubelet/pkg/cri/streaming
// request_cache.go) does: tokens are random (here 16 bytes from the kernel's CSPRNG,
// URL-safe base64 without padding), expire after a TTL (default 1 minute), are
// consumed by the first use, and at most `capacity` are in flight (the oldest expired
// ones are dropped first; when all are live, insert fails with ResourceExhausted).
//
// Thread-safety: thread-safe (one mutex).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <variant>
#include <vector>

#include "common/status.h"

namespace berth::streaming {

// CRI ExecRequest / AttachRequest / PortForwardRequest, as the server needs them.
struct ExecRequest {
  std::string container_id;
  std::vector<std::string> cmd;
  bool tty = false, stdin = false, stdout = false, stderr = false;
};
struct AttachRequest {
  std::string container_id;
  bool tty = false, stdin = false, stdout = false, stderr = false;
};
struct PortForwardRequest {
  std::string pod_sandbox_id;
  std::vector<int32_t> ports;  // may be empty: SPDY clients name ports per stream
};
using StreamRequest = std::variant<ExecRequest, AttachRequest, PortForwardRequest>;

class RequestCache {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  // `ttl` > 0, `capacity` > 0. `clock` is for tests (default steady_clock::now).
  explicit RequestCache(std::chrono::milliseconds ttl = std::chrono::minutes(1), size_t capacity = 1000,
                        Clock clock = nullptr);

  // Stores `request` and returns its token (22 URL-safe characters). Errors:
  // ResourceExhausted when `capacity` live tokens are in flight ("too many streaming
  // requests in flight; retry in a minute").
  StatusOr<std::string> insert(StreamRequest request);

  // Takes the request out (a token works once). Errors: NotFound for an unknown,
  // used or expired token (the three are indistinguishable, on purpose).
  StatusOr<StreamRequest> consume(const std::string& token);

  // Live tokens (for tests and metrics).
  size_t size();

 private:
  struct Entry {
    StreamRequest request;
    std::chrono::steady_clock::time_point expires;
  };
  void dropExpiredLocked(std::chrono::steady_clock::time_point now);

  std::chrono::milliseconds ttl_;
  size_t capacity_;
  Clock clock_;
  std::mutex mu_;
  std::map<std::string, Entry> entries_;  // guarded by mu_
};

}  // namespace berth::streaming
