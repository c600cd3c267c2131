#include "common/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cstdlib>
#include <utility>

#include "common/unique_fd.h"

namespace berth {
namespace {

EVP_MD_CTX* newContext() {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr || EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) != 1) std::abort();
  return ctx;
}

std::string toHex(const unsigned char* bytes, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    out.push_back(kDigits[bytes[i] >> 4]);
    out.push_back(kDigits[bytes[i] & 0xf]);
  }
  return out;
}

}  // namespace

Sha256::Sha256() : ctx_(newContext()) {}

Sha256::~Sha256() {
  if (ctx_ != nullptr) EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_));
}

Sha256::Sha256(Sha256&& other) noexcept
    : ctx_(std::exchange(other.ctx_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

Sha256& Sha256::operator=(Sha256&& other) noexcept {
  if (this != &other) {
    if (ctx_ != nullptr) EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_));
    ctx_ = std::exchange(other.ctx_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void Sha256::update(const void* data, size_t size) {
  if (ctx_ == nullptr) ctx_ = newContext();  // moved-from objects become usable again
  if (size == 0) return;
  if (EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data, size) != 1) std::abort();
  bytes_ += size;
}

void Sha256::update(std::string_view data) { update(data.data(), data.size()); }

std::string Sha256::hexDigest() {
  if (ctx_ == nullptr) ctx_ = newContext();
  auto* ctx = static_cast<EVP_MD_CTX*>(ctx_);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx, md, &len) != 1) std::abort();
  if (EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) != 1) std::abort();
  bytes_ = 0;
  return toHex(md, len);
}

std::string sha256Hex(std::string_view data) {
  Sha256 hasher;
  hasher.update(data);
  return hasher.hexDigest();
}

std::string sha256Digest(std::string_view data) {
  return std::string(kSha256Prefix) + sha256Hex(data);
}

StatusOr<std::string> sha256File(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return lastErrnoError(strCat("hash \"", path, "\": open"));
  Sha256 hasher;
  std::string buf(1 << 16, '\0');
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return lastErrnoError(strCat("hash \"", path, "\": read"));
    }
    if (n == 0) break;
    hasher.update(buf.data(), static_cast<size_t>(n));
  }
  return hasher.hexDigest();
}

bool isSha256Hex(std::string_view hex) {
  if (hex.size() != kSha256HexLength) return false;
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool isSha256Digest(std::string_view digest) {
  return digest.substr(0, kSha256Prefix.size()) == kSha256Prefix &&
         isSha256Hex(digest.substr(kSha256Prefix.size()));
}

StatusOr<std::string> parseSha256Digest(std::string_view digest) {
  size_t colon = digest.find(':');
  if (colon == std::string_view::npos) {
    return invalidArgument("digest \"", digest,
                           "\": missing algorithm; expected \"sha256:<64 hex characters>\"");
  }
  std::string_view algorithm = digest.substr(0, colon);
  std::string_view encoded = digest.substr(colon + 1);
  if (algorithm != "sha256") {
    return invalidArgument("digest \"", digest, "\": unsupported algorithm \"", algorithm,
                           "\"; only sha256 is supported");
  }
  if (!isSha256Hex(encoded)) {
    return invalidArgument("digest \"", digest,
                           "\": the sha256 value must be 64 lowercase hex characters");
  }
  return std::string(encoded);
}

}  // namespace berth
