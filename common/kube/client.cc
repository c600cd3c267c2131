#include "common/kube/client.h"

#include <curl/curl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "common/fs.h"
#include "common/kube/object.h"
#include "common/log.h"
#include "common/strings.h"

namespace berth::kube {
namespace {

constexpr size_t kMaxBodyBytes = 512u << 20;
constexpr size_t kMaxIdleChannels = 4;

std::shared_ptr<spdlog::logger> logger() { return log::get("kube"); }

Status initCurl() {
  static std::once_flag once;
  static CURLcode code = CURLE_OK;
  std::call_once(once, [] { code = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (code != CURLE_OK) {
    return internalError("kube client: curl_global_init: ", curl_easy_strerror(code));
  }
  return absl::OkStatus();
}

// scheme://host[:port][/prefix] split for tls-server-name handling.
struct ServerUrl {
  std::string scheme;
  std::string host;  // brackets kept for IPv6
  std::string port;  // explicit or the scheme's default
  std::string prefix;
};

StatusOr<ServerUrl> parseServer(const std::string& server) {
  ServerUrl url;
  size_t scheme_end = server.find("://");
  if (scheme_end == std::string::npos) {
    return invalidArgument("kube client: server \"", server,
                           "\" must be an http:// or https:// URL");
  }
  url.scheme = server.substr(0, scheme_end);
  if (url.scheme != "https" && url.scheme != "http") {
    return invalidArgument("kube client: server \"", server,
                           "\" must be an http:// or https:// URL");
  }
  std::string rest = server.substr(scheme_end + 3);
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  url.prefix = slash == std::string::npos ? "" : rest.substr(slash);
  size_t colon = authority.rfind(':');
  size_t bracket = authority.rfind(']');
  if (colon != std::string::npos && (bracket == std::string::npos || colon > bracket)) {
    url.host = authority.substr(0, colon);
    url.port = authority.substr(colon + 1);
  } else {
    url.host = authority;
    url.port = url.scheme == "https" ? "443" : "80";
  }
  if (url.host.empty()) return invalidArgument("kube client: server \"", server, "\" has no host");
  return url;
}

bool looksLikePem(const std::string& text) { return text.find("-----BEGIN ") != std::string::npos; }

struct Transfer {
  CURL* easy = nullptr;
  const std::function<Status(std::string_view)>* on_data = nullptr;
  std::string body;
  Status callback_status;
};

size_t onWrite(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  if (t->on_data != nullptr && *t->on_data) {
    long code = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
    if (code == 200) {
      Status status = (*t->on_data)(std::string_view(data, len));
      if (!status.ok()) {
        t->callback_status = std::move(status);
        return 0;  // aborts the transfer with CURLE_WRITE_ERROR
      }
      return len;
    }
  }
  if (t->body.size() + len > kMaxBodyBytes) {
    t->callback_status = absl::ResourceExhaustedError(
        strCat("response body exceeds ", kMaxBodyBytes, " bytes"));
    return 0;
  }
  t->body.append(data, len);
  return len;
}

}  // namespace

// ---- CancelToken ----

void CancelToken::cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  cancelled_ = true;
  for (auto& [id, wake] : wakers_) wake();
}

uint64_t CancelToken::addWaker(std::function<void()> wake) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cancelled_) return 0;
  uint64_t id = next_id_++;
  wakers_.emplace(id, std::move(wake));
  return id;
}

void CancelToken::removeWaker(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  wakers_.erase(id);
}

// ---- Channel: one multi + easy handle pair; its connection cache lives in the multi ----

class ApiClient::Channel {
 public:
  Channel() : multi_(curl_multi_init()), easy_(curl_easy_init()) {}
  ~Channel() {
    if (easy_ != nullptr) curl_easy_cleanup(easy_);
    if (multi_ != nullptr) curl_multi_cleanup(multi_);
  }
  bool ok() const { return multi_ != nullptr && easy_ != nullptr; }
  CURLM* multi() const { return multi_; }
  CURL* easy() const { return easy_; }

 private:
  CURLM* multi_;
  CURL* easy_;
};

// ---- ApiClient ----

StatusOr<std::unique_ptr<ApiClient>> ApiClient::create(ClientConfig config) {
  RETURN_IF_ERROR(initCurl());
  RETURN_IF_ERROR(parseServer(config.server).status());
  while (!config.server.empty() && config.server.back() == '/') config.server.pop_back();
  if (!config.ca_pem.empty() && !looksLikePem(config.ca_pem)) {
    return invalidArgument("kube client (", config.source,
                           "): the certificate authority is not PEM (no -----BEGIN line)");
  }
  if (config.client_cert_pem.empty() != config.client_key_pem.empty()) {
    return invalidArgument("kube client (", config.source,
                           "): a client certificate needs both the certificate and the key");
  }
  if (!config.client_cert_pem.empty() &&
      (!looksLikePem(config.client_cert_pem) || !looksLikePem(config.client_key_pem))) {
    return invalidArgument("kube client (", config.source,
                           "): the client certificate or key is not PEM (no -----BEGIN line)");
  }
  return std::unique_ptr<ApiClient>(new ApiClient(std::move(config)));
}

ApiClient::ApiClient(ClientConfig config) : config_(std::move(config)) {
  token_ = config_.bearer_token;
}

ApiClient::~ApiClient() = default;

std::unique_ptr<ApiClient::Channel> ApiClient::acquire() {
  {
    std::lock_guard<std::mutex> lock(pool_mu_);
    if (!idle_.empty()) {
      std::unique_ptr<Channel> channel = std::move(idle_.back());
      idle_.pop_back();
      return channel;
    }
  }
  return std::make_unique<Channel>();
}

void ApiClient::release(std::unique_ptr<Channel> channel) {
  std::lock_guard<std::mutex> lock(pool_mu_);
  if (idle_.size() < kMaxIdleChannels) idle_.push_back(std::move(channel));
}

std::string ApiClient::currentToken(bool force) {
  std::lock_guard<std::mutex> lock(token_mu_);
  if (config_.token_file.empty()) return token_;
  struct stat st {};
  if (::stat(config_.token_file.c_str(), &st) != 0) {
    if (force) {
      logger()->warn("kube client: token file {} cannot be read: {}", config_.token_file,
                     std::strerror(errno));
    }
    return token_;
  }
  int64_t stamp[3] = {static_cast<int64_t>(st.st_ino),
                      static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
                      static_cast<int64_t>(st.st_size)};
  bool changed = stamp[0] != token_stamp_[0] || stamp[1] != token_stamp_[1] ||
                 stamp[2] != token_stamp_[2];
  if (!changed && !force) return token_;
  StatusOr<std::string> content = fs::readFile(config_.token_file);
  if (!content.ok()) {
    logger()->warn("kube client: re-read token: {}", std::string(content.status().message()));
    return token_;
  }
  std::string token(trim(*content));
  if (token.empty()) {
    logger()->warn("kube client: token file {} is empty; keeping the previous token",
                   config_.token_file);
    return token_;
  }
  token_ = std::move(token);
  std::copy(std::begin(stamp), std::end(stamp), std::begin(token_stamp_));
  return token_;
}

StatusOr<ApiClient::Response> ApiClient::perform(const Request& request, CancelToken* cancel) {
  std::string token = currentToken(false);
  ASSIGN_OR_RETURN(Response response, performOnce(request, token, cancel));
  if (response.http_code == 401 && !config_.token_file.empty()) {
    std::string fresh = currentToken(true);
    if (fresh != token) {
      logger()->info("kube client: {} {} got 401; retrying with the re-read token from {}",
                     request.method, request.path, config_.token_file);
      return performOnce(request, fresh, cancel);
    }
  }
  return response;
}

StatusOr<ApiClient::Response> ApiClient::performOnce(const Request& request,
                                                     const std::string& token,
                                                     CancelToken* cancel) {
  std::unique_ptr<Channel> channel = acquire();
  if (!channel->ok()) return internalError("kube client: curl handle creation failed");
  CURL* h = channel->easy();
  curl_easy_reset(h);

  ASSIGN_OR_RETURN(ServerUrl server, parseServer(config_.server));
  std::string url;
  std::string connect_to;
  if (!config_.tls_server_name.empty()) {
    // Verify the certificate against tls-server-name: address the request to that
    // name and route the connection to the real host.
    url = strCat(server.scheme, "://", config_.tls_server_name, ":", server.port, server.prefix,
                 request.target);
    connect_to = strCat(config_.tls_server_name, ":", server.port, ":", server.host, ":",
                        server.port);
  } else {
    url = config_.server + request.target;
  }

  char errbuf[CURL_ERROR_SIZE] = {0};
  Transfer transfer;
  transfer.easy = h;
  if (request.streaming) transfer.on_data = &request.on_data;

  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  curl_easy_setopt(h, CURLOPT_USERAGENT, config_.user_agent.c_str());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &onWrite);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(config_.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 30L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 10L);
  std::chrono::milliseconds timeout =
      request.timeout.count() < 0 ? config_.request_timeout : request.timeout;
  if (timeout.count() > 0) {
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  }
  curl_slist* connect_list = nullptr;
  if (!connect_to.empty()) {
    connect_list = curl_slist_append(connect_list, connect_to.c_str());
    curl_easy_setopt(h, CURLOPT_CONNECT_TO, connect_list);
  }

  // TLS material from memory.
  curl_blob ca_blob{const_cast<char*>(config_.ca_pem.data()), config_.ca_pem.size(),
                    CURL_BLOB_COPY};
  curl_blob cert_blob{const_cast<char*>(config_.client_cert_pem.data()),
                      config_.client_cert_pem.size(), CURL_BLOB_COPY};
  curl_blob key_blob{const_cast<char*>(config_.client_key_pem.data()),
                     config_.client_key_pem.size(), CURL_BLOB_COPY};
  if (config_.insecure_skip_tls_verify) {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  } else if (!config_.ca_pem.empty()) {
    curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &ca_blob);
  }
  if (!config_.client_cert_pem.empty()) {
    curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cert_blob);
    curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &key_blob);
    curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
  }

  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Accept: application/json");
  std::string auth;
  if (!token.empty()) {
    auth = strCat("Authorization: Bearer ", token);
    headers = curl_slist_append(headers, auth.c_str());
  }
  std::string content_type;
  if (!request.content_type.empty()) {
    content_type = strCat("Content-Type: ", request.content_type);
    headers = curl_slist_append(headers, content_type.c_str());
  }
  headers = curl_slist_append(headers, "Expect:");
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);

  if (request.method == "GET") {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    if (!request.body.empty() || request.method != "DELETE") {
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data());
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(request.body.size()));
    }
  }

  CURLM* multi = channel->multi();
  curl_multi_add_handle(multi, h);
  uint64_t waker = 0;
  if (cancel != nullptr) waker = cancel->addWaker([multi] { curl_multi_wakeup(multi); });
  bool cancelled = false;
  CURLMcode multi_error = CURLM_OK;
  for (;;) {
    if (cancel != nullptr && cancel->cancelled()) {
      cancelled = true;
      break;
    }
    int running = 0;
    multi_error = curl_multi_perform(multi, &running);
    if (multi_error != CURLM_OK || running == 0) break;
    multi_error = curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
    if (multi_error != CURLM_OK) break;
  }
  if (cancel != nullptr && waker != 0) cancel->removeWaker(waker);
  CURLcode result = CURLE_OK;
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
    if (msg->msg == CURLMSG_DONE && msg->easy_handle == h) result = msg->data.result;
  }
  long http_code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &http_code);
  curl_multi_remove_handle(multi, h);
  curl_slist_free_all(headers);
  curl_slist_free_all(connect_list);

  std::string what = strCat("kube API ", request.method, " ", request.path);
  if (cancelled) {
    // The connection was abandoned mid-transfer; the channel is still reusable (libcurl
    // closed that connection when the handle was removed).
    release(std::move(channel));
    return withApiPayload(absl::CancelledError(strCat(what, ": cancelled")), 0, "");
  }
  if (multi_error != CURLM_OK) {
    return internalError(what, ": libcurl multi: ", curl_multi_strerror(multi_error));
  }
  release(std::move(channel));
  if (result == CURLE_WRITE_ERROR && !transfer.callback_status.ok()) {
    return transfer.callback_status;
  }
  if (result != CURLE_OK) {
    std::string detail = errbuf[0] != '\0' ? std::string(trim(errbuf)) : curl_easy_strerror(result);
    std::string message = strCat(what, ": ", detail, " (server ", config_.server, ")");
    if (result == CURLE_OPERATION_TIMEDOUT) {
      return absl::DeadlineExceededError(message);
    }
    return absl::UnavailableError(message);
  }
  return Response{http_code, std::move(transfer.body)};
}

StatusOr<Json> ApiClient::call(Request request, CancelToken* cancel) {
  ASSIGN_OR_RETURN(Response response, perform(request, cancel));
  if (response.http_code < 200 || response.http_code >= 300) {
    return apiError(request.method, request.path, response.http_code, response.body);
  }
  if (response.body.empty()) return Json::object();
  StatusOr<Json> parsed = json::parse(response.body, "API response");
  if (!parsed.ok()) {
    return withContext(parsed.status(), strCat("kube API ", request.method, " ", request.path));
  }
  return parsed;
}

StatusOr<Json> ApiClient::get(std::string_view path, CancelToken* cancel) {
  Request request{"GET", std::string(path), std::string(path), "", "", false, nullptr};
  return call(std::move(request), cancel);
}

StatusOr<Json> ApiClient::create(std::string_view path, const Json& object, CancelToken* cancel) {
  Request request{"POST", std::string(path), std::string(path), json::dump(object),
                  "application/json", false, nullptr};
  return call(std::move(request), cancel);
}

StatusOr<Json> ApiClient::update(std::string_view path, const Json& object, CancelToken* cancel) {
  Request request{"PUT", std::string(path), std::string(path), json::dump(object),
                  "application/json", false, nullptr};
  return call(std::move(request), cancel);
}

StatusOr<Json> ApiClient::patch(std::string_view path, PatchType type, const Json& patch,
                                CancelToken* cancel) {
  const char* content_type = type == PatchType::kMerge ? "application/merge-patch+json"
                             : type == PatchType::kStrategicMerge
                                 ? "application/strategic-merge-patch+json"
                                 : "application/json-patch+json";
  Request request{"PATCH", std::string(path), std::string(path), json::dump(patch),
                  content_type, false, nullptr};
  return call(std::move(request), cancel);
}

StatusOr<Json> ApiClient::remove(std::string_view path, const Json& options, CancelToken* cancel) {
  Request request{"DELETE", std::string(path), std::string(path),
                  options.is_null() ? "" : json::dump(options),
                  options.is_null() ? "" : "application/json", false, nullptr};
  return call(std::move(request), cancel);
}

StatusOr<ListResult> ApiClient::list(std::string_view path, const ListOptions& options,
                                     CancelToken* cancel) {
  return listOnce(path, options, cancel);
}

StatusOr<ListResult> ApiClient::listOnce(std::string_view path, const ListOptions& options,
                                         CancelToken* cancel) {
  ListResult result;
  std::string continue_token = options.continue_token;
  bool first = true;
  for (;;) {
    std::vector<std::string> query;
    if (!options.label_selector.empty()) {
      query.push_back("labelSelector=" + urlEncode(options.label_selector));
    }
    if (!options.field_selector.empty()) {
      query.push_back("fieldSelector=" + urlEncode(options.field_selector));
    }
    if (options.limit > 0) query.push_back(strCat("limit=", options.limit));
    if (!continue_token.empty()) {
      query.push_back("continue=" + urlEncode(continue_token));
    } else if (!options.resource_version.empty()) {
      query.push_back("resourceVersion=" + urlEncode(options.resource_version));
    }
    std::string target(path);
    if (!query.empty()) target += "?" + joinStrings(query, "&");
    Request request{"GET", std::string(path), target, "", "", false, nullptr};
    StatusOr<Json> page = call(std::move(request), cancel);
    if (!page.ok()) {
      if (!first && isGone(page.status()) && options.all_pages) {
        // The continue token expired mid-list: list everything in one go instead.
        logger()->info("kube client: list {}: continue token expired; listing without a limit",
                       path);
        ListOptions full = options;
        full.limit = 0;
        full.continue_token.clear();
        return listOnce(path, full, cancel);
      }
      return page.status();
    }
    first = false;
    if (!page->is_object() || !page->contains("items") ||
        !(page->at("items").is_array() || page->at("items").is_null())) {
      return invalidArgument("kube API GET ", path, ": the answer is not a list (no \"items\")");
    }
    std::string item_kind, api_version;
    if (auto k = page->find("kind"); k != page->end() && k->is_string()) {
      std::string kind = *k;
      if (kind.size() > 4 && kind.compare(kind.size() - 4, 4, "List") == 0) {
        item_kind = kind.substr(0, kind.size() - 4);
      }
    }
    if (auto v = page->find("apiVersion"); v != page->end() && v->is_string()) api_version = *v;
    Json& items = (*page)["items"];
    if (items.is_array()) {
      for (Json& item : items) {
        if (item.is_object()) {
          if (!item_kind.empty() && !item.contains("kind")) item["kind"] = item_kind;
          if (!api_version.empty() && !item.contains("apiVersion")) item["apiVersion"] = api_version;
        }
        result.items.push_back(std::move(item));
      }
    }
    const Json& meta = (*page)["metadata"];
    continue_token.clear();
    if (meta.is_object()) {
      if (auto rv = meta.find("resourceVersion"); rv != meta.end() && rv->is_string()) {
        result.resource_version = *rv;
      }
      if (auto c = meta.find("continue"); c != meta.end() && c->is_string()) continue_token = *c;
    }
    if (continue_token.empty()) break;
    if (!options.all_pages) {
      result.continue_token = continue_token;
      break;
    }
  }
  return result;
}

Status ApiClient::watch(std::string_view path, const WatchOptions& options,
                        const std::function<Status(WatchEvent&&)>& on_event,
                        CancelToken* cancel) {
  std::string path_str(path);
  WatchStreamParser parser([&](WatchEvent&& event) -> Status {
    if (event.type == "ERROR") return watchErrorEvent(path_str, event.object);
    return on_event(std::move(event));
  });
  std::vector<std::string> query = {"watch=1"};
  if (!options.resource_version.empty()) {
    query.push_back("resourceVersion=" + urlEncode(options.resource_version));
  }
  if (options.allow_watch_bookmarks) query.push_back("allowWatchBookmarks=true");
  if (options.timeout_seconds > 0) query.push_back(strCat("timeoutSeconds=", options.timeout_seconds));
  if (!options.label_selector.empty()) {
    query.push_back("labelSelector=" + urlEncode(options.label_selector));
  }
  if (!options.field_selector.empty()) {
    query.push_back("fieldSelector=" + urlEncode(options.field_selector));
  }
  Request request;
  request.method = "GET";
  request.path = path_str;
  request.target = strCat(path, "?", joinStrings(query, "&"));
  request.streaming = true;
  request.on_data = [&parser](std::string_view data) { return parser.feed(data); };

  // A watch has no overall deadline of its own unless the server was given one.
  request.timeout = options.timeout_seconds > 0
                        ? std::chrono::milliseconds((options.timeout_seconds + 30) * 1000LL)
                        : std::chrono::milliseconds(0);
  StatusOr<Response> response = perform(request, cancel);
  if (!response.ok()) {
    Status status = response.status();
    if (status.code() == absl::StatusCode::kUnavailable && parser.events() > 0) {
      return absl::UnavailableError(
          strCat(status.message(), " after ", parser.events(), " watch events"));
    }
    return status;
  }
  if (response->http_code != 200) {
    return apiError("watch", path, response->http_code, response->body);
  }
  if (parser.pending()) {
    return absl::UnavailableError(strCat("kube API watch ", path,
                                         ": the stream ended inside an event (after ",
                                         parser.events(), " events)"));
  }
  return absl::OkStatus();
}

}  // namespace berth::kube
