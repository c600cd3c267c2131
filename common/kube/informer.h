// An informer for one resource: keeps an in-memory cache of the objects of a
// collection in sync with the API server and tells handlers what changed, as
// client-go's reflector + shared informer do.
//
// The loop (on the informer's own thread):
//
//     +--------+  ok   +-------------------------+  stream ends (timeout) -> rewatch
//  -> |  list  | ----> | watch from rv            | -- transport error -> backoff, rewatch
//     +--------+       | (allowWatchBookmarks)    | -- 410 Gone / ERROR event -> relist
//        ^  | error    +-------------------------+
//        |  v
//     backoff (exponential from backoff_base to backoff_cap, 50-100% jitter)
//
//  - list: every page (page_size) of the collection; the cache is diffed against the
//    answer: on_add for new keys, on_update for a changed resourceVersion, on_delete
//    for keys that vanished (a relist after 410 catches deletes missed in the gap).
//    After the first successful list hasSynced() is true.
//  - watch: ADDED/MODIFIED -> on_add or on_update (by whether the key is cached),
//    DELETED -> on_delete, BOOKMARK -> only the resourceVersion advances. Every event
//    advances the resourceVersion the next watch resumes from.
//  - resync (resync_period > 0): every period, on_update(obj, obj) for each cached
//    object (from a second thread, but never concurrently with other handler calls).
//  - backoff resets after a successful list or once a watch delivered an event.
//
// Keys are "<namespace>/<name>" (or "<name>" cluster-scoped), see object.h.
//
// Thread-safety: start/stop from one owner thread; hasSynced, waitForSync, get,
// snapshot and lastResourceVersion from any thread. Handlers run one at a time, with
// the cache already updated; they must not call stop().
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/kube/client.h"
#include "common/kube/object.h"

namespace berth::kube {

struct InformerOptions {
  // Cluster-wide collection path: "/api/v1/services",
  // "/apis/discovery.k8s.io/v1/endpointslices".
  std::string path;
  // Only this namespace ("" = all namespaces).
  std::string namespace_name;
  std::string label_selector;
  std::string field_selector;
  // List page size (the limit parameter); 0 = one response.
  int64_t page_size = 500;
  // Reconnect backoff after errors: base * 2^attempt, capped, with jitter.
  std::chrono::milliseconds backoff_base{800};
  std::chrono::milliseconds backoff_cap{30000};
  // Re-deliver every cached object as on_update(obj, obj); 0 = never.
  std::chrono::milliseconds resync_period{0};
  // Server-side watch timeout; each watch picks a value in [min, 2*min) as client-go
  // does, so many informers do not reconnect at once.
  int watch_timeout_seconds = 300;
  // Name in logs; default: the path.
  std::string name;
};

class Informer {
 public:
  // `client` must outlive the informer. Errors: InvalidArgument for a bad path.
  static StatusOr<std::unique_ptr<Informer>> create(ApiClient* client, InformerOptions options,
                                                    ObjectHandlers handlers);
  // stop()s.
  ~Informer();
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  // Starts the threads. Call once.
  void start();
  // Cancels the request in flight (it ends within milliseconds), wakes any backoff
  // sleep and joins the threads. Idempotent.
  void stop();

  // True once the first list was delivered to the handlers.
  bool hasSynced() const;
  // Waits up to `timeout` for hasSynced(); returns it.
  bool waitForSync(std::chrono::milliseconds timeout) const;

  // The cached object for (namespace, name); nullopt when not cached.
  std::optional<Json> get(std::string_view ns, std::string_view name) const;
  // Every cached object, sorted by key.
  std::vector<Json> snapshot() const;
  // The resourceVersion the next watch would start from.
  std::string lastResourceVersion() const;

 private:
  Informer(ApiClient* client, InformerOptions options, ObjectHandlers handlers,
           std::string collection);

  void run();
  void resyncLoop();
  // List and diff against the cache. Errors: the list's.
  Status listAndSync();
  // One watch from rv_. Returns the watch's status; `progressed` is set when at least
  // one event arrived.
  Status watchOnce(bool& progressed);
  Status handleEvent(WatchEvent&& event);
  // Sleeps the next backoff delay (interruptible by stop()).
  void backoff();
  // Sleeps `delay` unless stop() comes first; false when stopping.
  bool sleepFor(std::chrono::milliseconds delay);

  void deliverAdd(const Json& obj);
  void deliverUpdate(const Json& old_obj, const Json& new_obj);
  void deliverDelete(const Json& obj);

  ApiClient* client_;
  InformerOptions options_;
  ObjectHandlers handlers_;
  std::string collection_;  // path with the namespace inserted
  std::string name_;

  std::thread thread_;
  std::thread resync_thread_;
  std::atomic<bool> stopping_{false};
  bool started_ = false;
  std::unique_ptr<CancelToken> cancel_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;       // sync state and stop, with mu_
  std::map<std::string, Json> cache_;        // guarded by mu_
  std::string rv_;                           // guarded by mu_
  bool synced_ = false;                      // guarded by mu_

  std::mutex deliver_mu_;  // held while a handler runs (watch thread or resync)

  int failures_ = 0;  // consecutive failures, informer thread only
  std::mt19937_64 rng_;
};

}  // namespace berth::kube
