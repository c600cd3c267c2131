// berthd's streaming server: the HTTP endpoint behind the URLs that CRI Exec, Attach and
// PortForward return (what kubelet proxies `kubectl exec/attach/port-forward` to).
//
//   GET /exec/<token>         remotecommand: exec in a container
//   GET /attach/<token>       remotecommand: attach to a container's stdio
//   GET /portforward/<token>  port-forward into a pod's network namespace
//
// Tokens come from RequestCache (single use, 1 minute). Transports:
//   - WebSocket (RFC 6455, Boost.Beast): remotecommand subprotocols v5.channel.k8s.io,
//     v4.channel.k8s.io, channel.k8s.io — binary messages whose first byte is the
//     channel (0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize; v5: [255, N] closes the
//     client's channel N). The server sends an empty message on the lowest writable
//     channel once open, the exit status as a metav1.Status on channel 3 (v4/v5), then
//     closes. Port-forward (portforward.k8s.io, channel.k8s.io): ports from the
//     `port` query parameters, channels 2i (data) and 2i+1 (error) for the i-th port,
//     each starting with the port as 2 little-endian bytes.
//   - SPDY/3.1: not served yet (answered 501 with the reason).
//
// One thread per connection (its own io_context); the accept loop has its own thread.
//
// Thread-safety: the URL functions are thread-safe; start/destruction from one thread.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "common/status.h"
#include "common/unique_fd.h"
#include "cri/streaming/request_cache.h"
#include "runtime/shim/client.h"

namespace berth::streaming {

// What the server needs from the daemon. Called from connection threads.
class StreamingRuntime {
 public:
  virtual ~StreamingRuntime() = default;
  // Starts the exec (the container's pod shim). Errors: NotFound container,
  // FailedPrecondition not running, the shim's errors.
  virtual StatusOr<shim::ExecStream> exec(const ExecRequest& request) = 0;
  virtual StatusOr<shim::AttachStream> attach(const AttachRequest& request) = 0;
  // A connected TCP socket to 127.0.0.1:`port` (then [::1]) inside the pod's network
  // namespace (the node's for host-network pods). Errors: NotFound pod; the connect
  // errno naming the port.
  virtual StatusOr<UniqueFd> connectPort(const std::string& pod_sandbox_id, int32_t port) = 0;
};

struct ServerOptions {
  std::string address = "127.0.0.1";  // IPv4 or IPv6 literal
  int port = 0;                       // 0: a free port
  std::chrono::milliseconds token_ttl{60000};
  size_t max_in_flight_tokens = 1000;
};

class StreamingServer {
 public:
  // Binds and starts accepting. `runtime` must outlive the server. Errors:
  // InvalidArgument for a bad address; the bind errno naming address:port.
  static StatusOr<std::unique_ptr<StreamingServer>> start(const ServerOptions& options,
                                                          StreamingRuntime* runtime);
  // Stops accepting and waits for the connection threads (their streams are closed).
  ~StreamingServer();

  // The URL for a request ("http://127.0.0.1:PORT/exec/<token>"). Errors:
  // ResourceExhausted from the token cache; InvalidArgument when the request attaches
  // nothing (no stdin, stdout or stderr).
  StatusOr<std::string> url(const StreamRequest& request);

  int port() const { return port_; }
  const std::string& address() const { return address_; }

  struct Impl;

 private:
  StreamingServer() = default;
  std::unique_ptr<Impl> impl_;
  std::string address_;
  int port_ = 0;
};

}  // namespace berth::streaming
