#include "common/kube/informer.h"

#include <algorithm>

#include "common/log.h"
#include "common/strings.h"

namespace berth::kube {
namespace {

std::shared_ptr<spdlog::logger> logger() { return log::get("kube"); }

}  // namespace

StatusOr<std::unique_ptr<Informer>> Informer::create(ApiClient* client, InformerOptions options,
                                                     ObjectHandlers handlers) {
  if (client == nullptr) return invalidArgument("informer: no API client");
  ASSIGN_OR_RETURN(std::string collection,
                   namespacedCollectionPath(options.path, options.namespace_name));
  if (options.backoff_base.count() <= 0) options.backoff_base = std::chrono::milliseconds(1);
  if (options.backoff_cap < options.backoff_base) options.backoff_cap = options.backoff_base;
  return std::unique_ptr<Informer>(
      new Informer(client, std::move(options), std::move(handlers), std::move(collection)));
}

Informer::Informer(ApiClient* client, InformerOptions options, ObjectHandlers handlers,
                   std::string collection)
    : client_(client),
      options_(std::move(options)),
      handlers_(std::move(handlers)),
      collection_(std::move(collection)),
      name_(options_.name.empty() ? collection_ : options_.name),
      cancel_(std::make_unique<CancelToken>()),
      rng_(std::random_device{}()) {}

Informer::~Informer() { stop(); }

void Informer::start() {
  if (started_) return;
  started_ = true;
  thread_ = std::thread([this] { run(); });
  if (options_.resync_period.count() > 0) {
    resync_thread_ = std::thread([this] { resyncLoop(); });
  }
}

void Informer::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  cancel_->cancel();
  if (thread_.joinable()) thread_.join();
  if (resync_thread_.joinable()) resync_thread_.join();
}

bool Informer::hasSynced() const {
  std::lock_guard<std::mutex> lock(mu_);
  return synced_;
}

bool Informer::waitForSync(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return synced_; });
}

std::optional<Json> Informer::get(std::string_view ns, std::string_view name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = cache_.find(objectKey(ns, name));
  if (it == cache_.end()) return std::nullopt;
  return it->second;
}

std::vector<Json> Informer::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Json> out;
  out.reserve(cache_.size());
  for (const auto& [key, obj] : cache_) out.push_back(obj);
  return out;
}

std::string Informer::lastResourceVersion() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rv_;
}

bool Informer::sleepFor(std::chrono::milliseconds delay) {
  std::unique_lock<std::mutex> lock(mu_);
  return !cv_.wait_for(lock, delay, [this] { return stopping_.load(); });
}

void Informer::backoff() {
  ++failures_;
  double exp = static_cast<double>(options_.backoff_base.count()) *
               static_cast<double>(1ULL << std::min(failures_ - 1, 30));
  double capped = std::min(exp, static_cast<double>(options_.backoff_cap.count()));
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  auto delay = std::chrono::milliseconds(static_cast<int64_t>(capped * jitter(rng_)));
  sleepFor(std::max(delay, std::chrono::milliseconds(1)));
}

void Informer::run() {
  bool need_list = true;
  while (!stopping_) {
    if (need_list) {
      Status status = listAndSync();
      if (stopping_) break;
      if (!status.ok()) {
        logger()->warn("informer {}: list failed (retrying with backoff): {}", name_,
                       std::string(status.message()));
        backoff();
        continue;
      }
      failures_ = 0;
      need_list = false;
    }
    bool progressed = false;
    auto watch_start = std::chrono::steady_clock::now();
    Status status = watchOnce(progressed);
    if (stopping_) break;
    if (progressed) failures_ = 0;
    if (status.ok()) {
      // The server closed the stream (its timeout): resume from rv_ at once — unless it
      // closed an empty stream right away, which would make this a busy loop.
      if (!progressed && std::chrono::steady_clock::now() - watch_start < std::chrono::seconds(1)) {
        backoff();
      }
      continue;
    }
    if (isGone(status)) {
      logger()->info("informer {}: resourceVersion {} expired; relisting", name_,
                     lastResourceVersion());
      need_list = true;
      continue;
    }
    if (httpCodeOf(status) != 0) {
      // An API error (HTTP status or ERROR event): state may be off; relist.
      need_list = true;
    }
    logger()->warn("informer {}: watch failed (retrying with backoff): {}", name_,
                   std::string(status.message()));
    backoff();
  }
}

Status Informer::listAndSync() {
  ListOptions list_options;
  list_options.label_selector = options_.label_selector;
  list_options.field_selector = options_.field_selector;
  list_options.limit = options_.page_size;
  StatusOr<ListResult> result = client_->list(collection_, list_options, cancel_.get());
  if (!result.ok()) return result.status();

  std::lock_guard<std::mutex> deliver(deliver_mu_);
  std::map<std::string, Json> fresh;
  for (Json& item : result->items) {
    std::string key = objectKey(item);
    if (objectName(item).empty()) continue;
    fresh[key] = std::move(item);
  }
  std::vector<Json> added;
  std::vector<std::pair<Json, Json>> updated;
  std::vector<Json> deleted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [key, obj] : fresh) {
      auto it = cache_.find(key);
      if (it == cache_.end()) {
        added.push_back(obj);
      } else if (objectResourceVersion(it->second) != objectResourceVersion(obj) ||
                 objectResourceVersion(obj).empty()) {
        updated.emplace_back(it->second, obj);
      }
    }
    for (auto& [key, obj] : cache_) {
      if (fresh.find(key) == fresh.end()) deleted.push_back(obj);
    }
    cache_ = std::move(fresh);
    rv_ = result->resource_version;
  }
  for (const Json& obj : deleted) deliverDelete(obj);
  for (const Json& obj : added) deliverAdd(obj);
  for (const auto& [old_obj, new_obj] : updated) deliverUpdate(old_obj, new_obj);
  {
    std::lock_guard<std::mutex> lock(mu_);
    synced_ = true;
  }
  cv_.notify_all();
  logger()->debug("informer {}: listed {} objects at resourceVersion {} (+{} ~{} -{})", name_,
                  result->items.size(), result->resource_version, added.size(), updated.size(),
                  deleted.size());
  return absl::OkStatus();
}

Status Informer::watchOnce(bool& progressed) {
  WatchOptions watch_options;
  watch_options.resource_version = lastResourceVersion();
  watch_options.allow_watch_bookmarks = true;
  watch_options.label_selector = options_.label_selector;
  watch_options.field_selector = options_.field_selector;
  if (options_.watch_timeout_seconds > 0) {
    std::uniform_int_distribution<int> spread(options_.watch_timeout_seconds,
                                              2 * options_.watch_timeout_seconds - 1);
    watch_options.timeout_seconds = spread(rng_);
  }
  return client_->watch(
      collection_, watch_options,
      [this, &progressed](WatchEvent&& event) {
        progressed = true;
        return handleEvent(std::move(event));
      },
      cancel_.get());
}

Status Informer::handleEvent(WatchEvent&& event) {
  std::string rv = objectResourceVersion(event.object);
  if (event.type == "BOOKMARK") {
    if (!rv.empty()) {
      std::lock_guard<std::mutex> lock(mu_);
      rv_ = rv;
    }
    return absl::OkStatus();
  }
  if (event.type != "ADDED" && event.type != "MODIFIED" && event.type != "DELETED") {
    logger()->warn("informer {}: ignoring watch event of type \"{}\"", name_, event.type);
    return absl::OkStatus();
  }
  if (objectName(event.object).empty()) {
    logger()->warn("informer {}: ignoring a {} event for an object without metadata.name", name_,
                   event.type);
    return absl::OkStatus();
  }
  std::string key = objectKey(event.object);
  std::lock_guard<std::mutex> deliver(deliver_mu_);
  std::optional<Json> old_obj;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) old_obj = it->second;
    if (event.type == "DELETED") {
      cache_.erase(key);
    } else {
      cache_[key] = event.object;
    }
    if (!rv.empty()) rv_ = rv;
  }
  if (event.type == "DELETED") {
    if (old_obj) deliverDelete(event.object);
  } else if (old_obj) {
    deliverUpdate(*old_obj, event.object);
  } else {
    deliverAdd(event.object);
  }
  return absl::OkStatus();
}

void Informer::resyncLoop() {
  while (sleepFor(options_.resync_period)) {
    std::lock_guard<std::mutex> deliver(deliver_mu_);
    std::vector<Json> objects = snapshot();
    if (!hasSynced()) continue;
    for (const Json& obj : objects) {
      if (stopping_) return;
      deliverUpdate(obj, obj);
    }
  }
}

void Informer::deliverAdd(const Json& obj) {
  if (handlers_.on_add) handlers_.on_add(obj);
}

void Informer::deliverUpdate(const Json& old_obj, const Json& new_obj) {
  if (handlers_.on_update) handlers_.on_update(old_obj, new_obj);
}

void Informer::deliverDelete(const Json& obj) {
  if (handlers_.on_delete) handlers_.on_delete(obj);
}

}  // namespace berth::kube
