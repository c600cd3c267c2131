// A Kubernetes REST client over libcurl: get / list (with pagination) / create /
// update / patch / remove and streaming watch, against the paths of the API
// ("/api/v1/namespaces/default/services/web",
//  "/apis/discovery.k8s.io/v1/endpointslices"). JSON in and out (common/json.h).
//
// Transport: HTTP/1.1 over TLS with the config's CA / client certificate held in
// memory (CURLOPT_*_BLOB); each call borrows a connection channel from a small pool
// (kept-alive connections are reused), so calls from many threads run in parallel.
// Authentication: client certificate and/or "Authorization: Bearer <token>"; with a
// token file, the file is checked (stat) before every request and re-read when it
// changed, and also re-read once when a request gets 401 (bound service-account
// tokens rotate; kubelet replaces the file).
//
// Errors: see api_error.h. Each names the method, the path and the server's message.
//
// Thread-safety: ApiClient is thread-safe. A CancelToken may be cancelled from any
// thread while a call using it runs.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/kube/api_error.h"
#include "common/kube/kubeconfig.h"
#include "common/kube/watch_stream.h"
#include "common/status.h"

namespace berth::kube {

using Json = json::Json;

// Cancels calls in flight (from any thread): a transfer using the token ends within
// milliseconds with Cancelled. Once cancelled it stays cancelled.
class CancelToken {
 public:
  CancelToken() = default;
  CancelToken(const CancelToken&) = delete;
  CancelToken& operator=(const CancelToken&) = delete;

  void cancel();
  bool cancelled() const { return cancelled_.load(); }

  // For transports: `wake` is called (under the token's lock) when cancel() runs, so
  // a transfer blocked in poll wakes at once. Returns an id for removeWaker(); if the
  // token is already cancelled, wake is not registered and 0 is returned.
  uint64_t addWaker(std::function<void()> wake);
  void removeWaker(uint64_t id);

 private:
  std::atomic<bool> cancelled_{false};
  std::mutex mu_;
  uint64_t next_id_ = 1;                                 // guarded by mu_
  std::map<uint64_t, std::function<void()>> wakers_;    // guarded by mu_
};

struct ListOptions {
  std::string label_selector;   // "app=web,tier!=db"
  std::string field_selector;   // "metadata.name=web"
  // Page size (the "limit" parameter); 0 asks for everything in one response.
  int64_t limit = 0;
  // Start from this continue token (from a previous ListResult).
  std::string continue_token;
  // "resourceVersion" parameter ("0": any cached state is fine); "" = most recent.
  std::string resource_version;
  // true: follow continue tokens and return every item; false: one page.
  bool all_pages = true;
};

struct ListResult {
  // The items; each gets "kind" and "apiVersion" filled from the list when it lacks
  // them (the API server leaves them out of list items).
  std::vector<Json> items;
  // metadata.resourceVersion of the list: where a watch continues from.
  std::string resource_version;
  // Non-empty when all_pages was false and more items remain.
  std::string continue_token;
};

struct WatchOptions {
  // Events after this version; "" or "0" starts with synthetic ADDED events for every
  // current object (the API's semantics).
  std::string resource_version;
  bool allow_watch_bookmarks = false;
  // Server-side timeout (the "timeoutSeconds" parameter); 0 = the server's default.
  // The client gives up 30 s after it, so a silent dead connection is noticed.
  int timeout_seconds = 0;
  std::string label_selector;
  std::string field_selector;
};

enum class PatchType {
  kMerge,           // application/merge-patch+json (RFC 7386)
  kStrategicMerge,  // application/strategic-merge-patch+json (built-in kinds only)
  kJsonPatch,       // application/json-patch+json (RFC 6902; `patch` is an array)
};

class ApiClient {
 public:
  // Checks the config (server URL scheme http/https, PEM blocks present when set) and
  // initialises libcurl. Errors: InvalidArgument naming the bad field, Internal when
  // libcurl cannot start.
  static StatusOr<std::unique_ptr<ApiClient>> create(ClientConfig config);
  ~ApiClient();
  ApiClient(const ApiClient&) = delete;
  ApiClient& operator=(const ApiClient&) = delete;

  const ClientConfig& config() const { return config_; }

  // GET `path` (e.g. "/api/v1/namespaces/default/services/web"); the response object.
  StatusOr<Json> get(std::string_view path, CancelToken* cancel = nullptr);

  // GET a collection, following continue tokens unless options.all_pages is false.
  // When a continue token expires mid-way (410), the list restarts once without a
  // limit, as client-go's pager does.
  StatusOr<ListResult> list(std::string_view path, const ListOptions& options = {},
                            CancelToken* cancel = nullptr);

  // POST `object` to the collection `path`; the created object. AlreadyExists when
  // the name is taken.
  StatusOr<Json> create(std::string_view path, const Json& object,
                        CancelToken* cancel = nullptr);

  // PUT `object` to `path` (a full replace; with metadata.resourceVersion set the
  // server refuses a stale write with Aborted).
  StatusOr<Json> update(std::string_view path, const Json& object,
                        CancelToken* cancel = nullptr);

  // PATCH `path` with `patch` of `type`; the patched object.
  StatusOr<Json> patch(std::string_view path, PatchType type, const Json& patch,
                       CancelToken* cancel = nullptr);

  // DELETE `path` with an optional DeleteOptions body (`options` null for none); the
  // server's answer (the deleted object, or a Status while finalizers run).
  StatusOr<Json> remove(std::string_view path, const Json& options = nullptr,
                        CancelToken* cancel = nullptr);

  // Watches the collection `path`, calling `on_event` for each ADDED, MODIFIED,
  // DELETED and BOOKMARK event as bytes arrive (on the calling thread). Returns when:
  //   the server ends the stream (timeout, restart)  -> OK
  //   `cancel` is cancelled                          -> Cancelled
  //   on_event returns an error                      -> that error
  //   an ERROR event arrives                         -> its Status (isGone() for 410)
  //   the HTTP answer is not 200                     -> apiError (isGone() for 410)
  //   the connection breaks or the stream is garbled -> Unavailable / InvalidArgument
  Status watch(std::string_view path, const WatchOptions& options,
               const std::function<Status(WatchEvent&&)>& on_event,
               CancelToken* cancel = nullptr);

  class Channel;  // one pooled connection (internal)

 private:
  struct Request {
    std::string method;
    std::string path;    // as given, for errors
    std::string target;  // path + query
    std::string body;
    std::string content_type;
    bool streaming = false;
    // For streaming requests: bytes of a 200 response go here instead of the body.
    std::function<Status(std::string_view)> on_data;
    // Overall limit; negative: config.request_timeout; 0: none.
    std::chrono::milliseconds timeout{-1};
  };
  struct Response {
    long http_code = 0;
    std::string body;
  };

  explicit ApiClient(ClientConfig config);

  // One request with the current token, retried once with a re-read token on 401.
  StatusOr<Response> perform(const Request& request, CancelToken* cancel);
  StatusOr<Response> performOnce(const Request& request, const std::string& token,
                                 CancelToken* cancel);
  // JSON answer of a non-streaming call, or the mapped error.
  StatusOr<Json> call(Request request, CancelToken* cancel);
  StatusOr<ListResult> listOnce(std::string_view path, const ListOptions& options,
                                CancelToken* cancel);

  // The bearer token to send, re-reading token_file when it changed (or `force`).
  std::string currentToken(bool force);

  std::unique_ptr<Channel> acquire();
  void release(std::unique_ptr<Channel> channel);

  ClientConfig config_;

  std::mutex token_mu_;
  std::string token_;              // guarded by token_mu_
  int64_t token_stamp_[3] = {};    // inode, mtime ns, size of the file read; token_mu_

  std::mutex pool_mu_;
  std::vector<std::unique_ptr<Channel>> idle_;  // guarded by pool_mu_
};

}  // namespace berth::kube
