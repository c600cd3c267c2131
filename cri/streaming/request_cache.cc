#include "cri/streaming/request_cache.h"

#include <sys/random.h>

#include <cerrno>

namespace berth::streaming {
namespace {

StatusOr<std::string> randomToken() {
  unsigned char raw[16];
  size_t got = 0;
  while (got < sizeof(raw)) {
    ssize_t n = ::getrandom(raw + got, sizeof(raw) - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return lastErrnoError("getrandom for a streaming token");
    got += static_cast<size_t>(n);
  }
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char b : raw) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 63]);
  return out;
}

}  // namespace

RequestCache::RequestCache(std::chrono::milliseconds ttl, size_t capacity, Clock clock)
    : ttl_(ttl), capacity_(capacity), clock_(clock ? std::move(clock) : [] { return std::chrono::steady_clock::now(); }) {}

void RequestCache::dropExpiredLocked(std::chrono::steady_clock::time_point now) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    it = it->second.expires <= now ? entries_.erase(it) : std::next(it);
  }
}

StatusOr<std::string> RequestCache::insert(StreamRequest request) {
  ASSIGN_OR_RETURN(std::string token, randomToken());
  std::lock_guard<std::mutex> lock(mu_);
  auto now = clock_();
  if (entries_.size() >= capacity_) dropExpiredLocked(now);
  if (entries_.size() >= capacity_) {
    return absl::ResourceExhaustedError(strCat("too many streaming requests in flight (", capacity_,
                                               " unused tokens); retry once some are used or expire"));
  }
  entries_[token] = Entry{std::move(request), now + ttl_};
  return token;
}

StatusOr<StreamRequest> RequestCache::consume(const std::string& token) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(token);
  if (it == entries_.end()) return absl::NotFoundError("unknown, used or expired streaming token");
  bool live = it->second.expires > clock_();
  StreamRequest r = std::move(it->second.request);
  entries_.erase(it);
  if (!live) return absl::NotFoundError("unknown, used or expired streaming token");
  return r;
}

size_t RequestCache::size() {
  std::lock_guard<std::mutex> lock(mu_);
  dropExpiredLocked(clock_());
  return entries_.size();
}

}  // namespace berth::streaming
