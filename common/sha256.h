// SHA-256 for content addressing (OCI image-spec "Digests": `sha256:<64 lowercase
// hex>`): a streaming hasher over OpenSSL's EVP interface, one-shot helpers for
// strings and files, and parsing/validation of digest strings.
//
// Thread-safety: a Sha256 object is not thread-safe (use one per stream); the free
// functions are pure and thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/status.h"

namespace berth {

// The algorithm prefix of a sha256 digest string.
inline constexpr std::string_view kSha256Prefix = "sha256:";
// Length of a sha256 digest in lowercase hex characters.
inline constexpr size_t kSha256HexLength = 64;

// Streaming SHA-256. Feed bytes with update() in any chunking; hexDigest() finishes
// the hash and returns 64 lowercase hex characters. After hexDigest() the object is
// reset and can hash a new stream. Move-only. Allocation failure inside OpenSSL
// aborts (there is no useful way to continue hashing without a context).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  Sha256(Sha256&& other) noexcept;
  Sha256& operator=(Sha256&& other) noexcept;

  // Adds `data` to the hashed stream.
  void update(std::string_view data);
  void update(const void* data, size_t size);

  // Total number of bytes passed to update() since construction or the last digest.
  unsigned long long bytesHashed() const { return bytes_; }

  // Finishes the hash and returns it as 64 lowercase hex characters; resets the
  // object for a new stream.
  std::string hexDigest();

  // hexDigest() with the "sha256:" prefix (an OCI digest string).
  std::string digest() { return std::string(kSha256Prefix) + hexDigest(); }

 private:
  void* ctx_ = nullptr;  // EVP_MD_CTX*, kept opaque so OpenSSL headers stay private
  unsigned long long bytes_ = 0;
};

// SHA-256 of `data` as 64 lowercase hex characters.
std::string sha256Hex(std::string_view data);

// "sha256:" + sha256Hex(data).
std::string sha256Digest(std::string_view data);

// SHA-256 of the file at `path` (read in chunks, so any size works) as 64 lowercase
// hex characters. Errors: NotFound / PermissionDenied / Internal with the path and
// errno ("hash "<path>": read: ...").
StatusOr<std::string> sha256File(const std::string& path);

// True if `hex` is exactly 64 lowercase hex characters.
bool isSha256Hex(std::string_view hex);

// True if `digest` is "sha256:" followed by 64 lowercase hex characters.
bool isSha256Digest(std::string_view digest);

// Parses an OCI digest string of the sha256 algorithm and returns its hex part.
// Errors: InvalidArgument naming the digest when the algorithm is not sha256 or the
// encoded part is not 64 lowercase hex characters (image-spec "Digests" requires
// lowercase for sha256).
StatusOr<std::string> parseSha256Digest(std::string_view digest);

}  // namespace berth
