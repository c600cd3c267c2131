#include "runtime/image/registry_transport.h"

#include <curl/curl.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>
#include <sstream>

namespace berth::image::internal {
namespace {

constexpr size_t kMaxErrorBody = 64 * 1024;
constexpr char kFallbackCaBundle[] = "/etc/ssl/certs/ca-certificates.crt";

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// State of one perform() call, shared with the curl callbacks.
struct CallContext {
  TransportResponse response;
  const BodyConsumer* consumer = nullptr;
  bool connected = false;  // the connection (TLS included) was set up
};

int onConnected(void* user, char*, char*, int, int) {
  static_cast<CallContext*>(user)->connected = true;
  return CURL_PREREQFUNC_OK;
}

size_t onHeader(char* data, size_t size, size_t count, void* user) {
  auto* ctx = static_cast<CallContext*>(user);
  size_t n = size * count;
  std::string_view line(data, n);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  TransportResponse& r = ctx->response;
  if (line.substr(0, 5) == "HTTP/") {
    // A new response (after a 100 Continue, or the one of a new request): start over.
    r.status = 0;
    r.reason.clear();
    r.content_type.clear();
    r.docker_content_digest.clear();
    r.www_authenticate.clear();
    r.retry_after.clear();
    r.content_range.clear();
    size_t sp = line.find(' ');
    if (sp != std::string_view::npos) {
      std::string_view rest = line.substr(sp + 1);
      size_t sp2 = rest.find(' ');
      std::string code(rest.substr(0, sp2));
      r.status = std::strtol(code.c_str(), nullptr, 10);
      if (sp2 != std::string_view::npos) r.reason = std::string(trim(rest.substr(sp2 + 1)));
    }
    return n;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return n;
  std::string name = lower(trim(line.substr(0, colon)));
  std::string value(trim(line.substr(colon + 1)));
  if (name == "content-type") {
    r.content_type = value;
  } else if (name == "docker-content-digest") {
    r.docker_content_digest = value;
  } else if (name == "www-authenticate") {
    r.www_authenticate = r.www_authenticate.empty() ? value : strCat(r.www_authenticate, ", ", value);
  } else if (name == "retry-after") {
    r.retry_after = value;
  } else if (name == "content-range") {
    r.content_range = value;
  }
  return n;
}

size_t onBody(char* data, size_t size, size_t count, void* user) {
  auto* ctx = static_cast<CallContext*>(user);
  size_t n = size * count;
  TransportResponse& r = ctx->response;
  if (r.status >= 200 && r.status < 300) {
    if (ctx->consumer != nullptr && *ctx->consumer) {
      Status s = (*ctx->consumer)(r, std::string_view(data, n));
      if (!s.ok()) {
        r.consumer_status = std::move(s);
        return 0;  // aborts the transfer with CURLE_WRITE_ERROR
      }
    }
    r.body_bytes += static_cast<int64_t>(n);
  } else if (r.error_body.size() < kMaxErrorBody) {
    r.error_body.append(data, std::min(n, kMaxErrorBody - r.error_body.size()));
  }
  return n;
}

}  // namespace

struct RegistryTransport::Share {
  CURLSH* handle = nullptr;
  std::array<std::mutex, CURL_LOCK_DATA_LAST> locks;

  ~Share() {
    if (handle != nullptr) curl_share_cleanup(handle);
  }

  static void lock(CURL*, curl_lock_data data, curl_lock_access, void* user) {
    static_cast<Share*>(user)->locks[static_cast<size_t>(data)].lock();
  }
  static void unlock(CURL*, curl_lock_data data, void* user) {
    static_cast<Share*>(user)->locks[static_cast<size_t>(data)].unlock();
  }
};

StatusOr<std::unique_ptr<RegistryTransport>> RegistryTransport::create(TransportOptions options) {
  static std::once_flag once;
  static CURLcode init_code = CURLE_OK;
  std::call_once(once, [] { init_code = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (init_code != CURLE_OK) {
    return internalError("registry client: curl_global_init: ", curl_easy_strerror(init_code));
  }
  std::unique_ptr<RegistryTransport> t(new RegistryTransport(std::move(options)));
  t->share_ = std::make_unique<Share>();
  Share* share = t->share_.get();
  share->handle = curl_share_init();
  if (share->handle == nullptr) return internalError("registry client: curl_share_init failed");
  curl_share_setopt(share->handle, CURLSHOPT_LOCKFUNC, &Share::lock);
  curl_share_setopt(share->handle, CURLSHOPT_UNLOCKFUNC, &Share::unlock);
  curl_share_setopt(share->handle, CURLSHOPT_USERDATA, share);
  for (curl_lock_data data :
       {CURL_LOCK_DATA_CONNECT, CURL_LOCK_DATA_DNS, CURL_LOCK_DATA_SSL_SESSION}) {
    CURLSHcode code = curl_share_setopt(share->handle, CURLSHOPT_SHARE, data);
    if (code != CURLSHE_OK) {
      return internalError("registry client: curl_share_setopt: ", curl_share_strerror(code));
    }
  }
  return t;
}

RegistryTransport::RegistryTransport(TransportOptions options) : options_(std::move(options)) {}
RegistryTransport::~RegistryTransport() = default;

const std::string& RegistryTransport::systemCaBundle() {
  std::call_once(ca_once_, [this] {
    std::string path = kFallbackCaBundle;
    if (CURL* h = curl_easy_init()) {
      char* info = nullptr;
      if (curl_easy_getinfo(h, CURLINFO_CAINFO, &info) == CURLE_OK && info != nullptr) {
        path = info;
      }
      curl_easy_cleanup(h);
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) return;
    std::ostringstream text;
    text << in.rdbuf();
    system_ca_ = text.str();
  });
  return system_ca_;
}

TransportResponse RegistryTransport::perform(const TransportRequest& request,
                                             const BodyConsumer& consumer) {
  CallContext ctx;
  ctx.consumer = &consumer;
  CURL* h = curl_easy_init();
  if (h == nullptr) {
    ctx.response.curl_code = CURLE_FAILED_INIT;
    ctx.response.curl_error = "curl_easy_init failed";
    return ctx.response;
  }
  char error_buffer[CURL_ERROR_SIZE] = {0};
  curl_slist* headers = nullptr;
  for (const std::string& header : request.headers) {
    headers = curl_slist_append(headers, header.c_str());
  }
  std::string ca_blob;
  curl_easy_setopt(h, CURLOPT_SHARE, share_->handle);
  curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(h, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count() * 1000));
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, static_cast<long>(options_.low_speed_bytes));
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options_.low_speed_time.count()));
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &onHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &ctx);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &onBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &ctx);
  curl_easy_setopt(h, CURLOPT_PREREQFUNCTION, &onConnected);
  curl_easy_setopt(h, CURLOPT_PREREQDATA, &ctx);
  if (request.method == "POST") {
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(request.body.size()));
    curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS, request.body.c_str());
  }
  if (!request.tls.verify) {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  } else if (!request.tls.extra_ca_pem.empty()) {
    // The system roots plus the registry's own CAs, from memory (nothing is written).
    ca_blob = strCat(systemCaBundle(), "\n", request.tls.extra_ca_pem);
    curl_blob blob{ca_blob.data(), ca_blob.size(), CURL_BLOB_NOCOPY};
    curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
  }
  if (!request.tls.client_cert.empty()) {
    curl_easy_setopt(h, CURLOPT_SSLCERT, request.tls.client_cert.c_str());
    curl_easy_setopt(h, CURLOPT_SSLKEY, request.tls.client_key.c_str());
  }

  CURLcode code = curl_easy_perform(h);
  TransportResponse& r = ctx.response;
  r.curl_code = code;
  if (code != CURLE_OK) {
    r.curl_error = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(code);
    // TCP is connected once a local port is known; the pre-request callback runs only
    // after the TLS handshake: between the two, the handshake failed or timed out.
    long local_port = 0;
    curl_easy_getinfo(h, CURLINFO_LOCAL_PORT, &local_port);
    bool https = request.url.rfind("https://", 0) == 0;
    bool tls_code = code == CURLE_SSL_CONNECT_ERROR || code == CURLE_PEER_FAILED_VERIFICATION ||
                    code == CURLE_SSL_CERTPROBLEM || code == CURLE_SSL_CIPHER ||
                    code == CURLE_SSL_ISSUER_ERROR || code == CURLE_SSL_PINNEDPUBKEYNOTMATCH;
    r.tls_handshake_failed = https && r.status == 0 && !ctx.connected &&
                             code != CURLE_COULDNT_CONNECT && (tls_code || local_port > 0);
  }
  char* location = nullptr;
  if (r.status >= 300 && r.status < 400 &&
      curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &location) == CURLE_OK && location != nullptr) {
    r.redirect_url = location;
  }
  curl_easy_cleanup(h);
  curl_slist_free_all(headers);
  return r;
}

std::string urlHostPort(const std::string& url) {
  CURLU* u = curl_url();
  if (u == nullptr) return "";
  std::string result;
  if (curl_url_set(u, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK) {
    char* host = nullptr;
    char* port = nullptr;
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
      result = lower(host);
      if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK && port != nullptr) {
        result += strCat(":", port);
      }
    }
    curl_free(host);
    curl_free(port);
  }
  curl_url_cleanup(u);
  return result;
}

std::string urlEncode(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace berth::image::internal
