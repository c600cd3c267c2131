#include "runtime/image/content_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>

#include "common/fs.h"
#include "common/sha256.h"
#include "common/strings.h"
#include "common/unique_fd.h"

namespace berth::image {
namespace {

constexpr std::string_view kBlobsSubdir = "blobs/sha256";
constexpr std::string_view kIngestSubdir = "ingest";

std::chrono::system_clock::time_point toTimePoint(const struct timespec& ts) {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
}

std::string randomSuffix() {
  unsigned char bytes[8];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t n = ::getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    got += static_cast<size_t>(n);
  }
  if (got < sizeof(bytes)) {
    // getrandom cannot fail on a sane kernel; keep names unique anyway.
    static std::atomic<unsigned long long> counter{0};
    return strCat(::getpid(), "-", counter.fetch_add(1));
  }
  std::string out;
  static const char kHex[] = "0123456789abcdef";
  for (unsigned char b : bytes) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
}

Status fsyncDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return lastErrnoError(strCat("open directory \"", dir, "\""));
  if (::fsync(fd.get()) != 0) return lastErrnoError(strCat("fsync directory \"", dir, "\""));
  return absl::OkStatus();
}

// Moves `from` to `to` unless `to` exists. Returns true when moved, false when `to`
// was already there (then `from` is left for the caller to remove).
StatusOr<bool> renameNoReplace(const std::string& from, const std::string& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) {
    return true;
  }
  if (errno == EEXIST) return false;
  if (errno != EINVAL && errno != ENOSYS) {
    return lastErrnoError(strCat("rename \"", from, "\" to \"", to, "\""));
  }
  // Filesystem without RENAME_NOREPLACE: link() fails with EEXIST just the same.
  if (::link(from.c_str(), to.c_str()) != 0) {
    if (errno == EEXIST) return false;
    return lastErrnoError(strCat("link \"", from, "\" to \"", to, "\""));
  }
  ::unlink(from.c_str());
  return true;
}

class FileWriter : public ContentStore::Writer {
 public:
  FileWriter(std::string digest, int64_t expected_size, std::string temp_path,
             std::string final_path, std::string blobs_dir, UniqueFd fd)
      : digest_(std::move(digest)),
        expected_size_(expected_size),
        temp_path_(std::move(temp_path)),
        final_path_(std::move(final_path)),
        blobs_dir_(std::move(blobs_dir)),
        fd_(std::move(fd)) {}
  ~FileWriter() override { abort(); }

  Status write(std::string_view data) override {
    if (state_ != State::kOpen) {
      return failedPrecondition("write blob ", digest_, ": the writer is ",
                                state_ == State::kCommitted ? "committed" : "failed or aborted");
    }
    if (expected_size_ >= 0 && offset_ + static_cast<int64_t>(data.size()) > expected_size_) {
      int64_t got = offset_ + static_cast<int64_t>(data.size());
      fail();
      return absl::DataLossError(strCat("blob ", digest_, ": size mismatch: expected ",
                                        expected_size_, " bytes, received at least ", got));
    }
    hasher_.update(data);
    offset_ += static_cast<int64_t>(data.size());
    while (!data.empty()) {
      ssize_t n = ::write(fd_.get(), data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        Status st = lastErrnoError(strCat("write blob ", digest_, " to \"", temp_path_, "\""));
        fail();
        return st;
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return absl::OkStatus();
  }

  Status commit() override {
    if (state_ != State::kOpen) {
      return failedPrecondition("commit blob ", digest_, ": the writer is ",
                                state_ == State::kCommitted ? "already committed"
                                                            : "failed or aborted");
    }
    if (expected_size_ >= 0 && offset_ != expected_size_) {
      fail();
      return absl::DataLossError(strCat("blob ", digest_, ": size mismatch: expected ",
                                        expected_size_, " bytes, received ", offset_,
                                        " (truncated download?)"));
    }
    std::string actual = hasher_.digest();
    if (actual != digest_) {
      fail();
      return absl::DataLossError(strCat("blob ", digest_, ": digest mismatch: expected ",
                                        digest_, ", content is ", actual));
    }
    if (::fchmod(fd_.get(), 0444) != 0 || ::fsync(fd_.get()) != 0) {
      Status st = lastErrnoError(strCat("sync blob ", digest_, " \"", temp_path_, "\""));
      fail();
      return st;
    }
    fd_.reset();
    StatusOr<bool> moved = renameNoReplace(temp_path_, final_path_);
    if (!moved.ok()) {
      fail();
      return withContext(moved.status(), strCat("commit blob ", digest_));
    }
    if (!*moved) ::unlink(temp_path_.c_str());  // already present: identical content
    state_ = State::kCommitted;
    if (*moved) RETURN_IF_ERROR_CTX(fsyncDir(blobs_dir_), strCat("commit blob ", digest_));
    return absl::OkStatus();
  }

  void abort() override {
    if (state_ == State::kOpen) fail();
  }

  int64_t offset() const override { return offset_; }
  const std::string& digest() const override { return digest_; }

 private:
  enum class State { kOpen, kCommitted, kFailed };

  void fail() {
    fd_.reset();
    ::unlink(temp_path_.c_str());
    state_ = State::kFailed;
  }

  std::string digest_;
  int64_t expected_size_;
  std::string temp_path_;
  std::string final_path_;
  std::string blobs_dir_;
  UniqueFd fd_;
  Sha256 hasher_;
  int64_t offset_ = 0;
  State state_ = State::kOpen;
};

}  // namespace

Status validateBlobDigest(std::string_view digest) {
  size_t colon = digest.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return invalidArgument("digest \"", digest,
                           "\" is malformed; expected \"sha256:\" followed by 64 lowercase "
                           "hex digits");
  }
  std::string_view algorithm = digest.substr(0, colon);
  if (algorithm != "sha256") {
    return invalidArgument("digest \"", digest, "\": algorithm \"", algorithm,
                           "\" is not supported; the content store uses sha256 only");
  }
  if (!isSha256Hex(digest.substr(colon + 1))) {
    return invalidArgument("digest \"", digest,
                           "\" is malformed; a sha256 digest has exactly 64 lowercase hex "
                           "digits");
  }
  return absl::OkStatus();
}

ContentStore::ContentStore(std::string root)
    : root_(std::move(root)),
      blobs_dir_(fs::join(root_, kBlobsSubdir)),
      ingest_dir_(fs::join(root_, kIngestSubdir)) {}

StatusOr<std::unique_ptr<ContentStore>> ContentStore::open(const std::string& root) {
  std::unique_ptr<ContentStore> store(new ContentStore(root));
  RETURN_IF_ERROR_CTX(fs::mkdirAll(store->blobs_dir_, 0755), "open content store");
  RETURN_IF_ERROR_CTX(fs::mkdirAll(store->ingest_dir_, 0700), "open content store");
  return store;
}

std::string ContentStore::blobPath(std::string_view digest) const {
  return fs::join(blobs_dir_, digest.substr(kSha256Prefix.size()));
}

StatusOr<std::unique_ptr<ContentStore::Writer>> ContentStore::openWriter(
    const std::string& expected_digest, int64_t expected_size) {
  RETURN_IF_ERROR(validateBlobDigest(expected_digest));
  if (expected_size < -1) {
    return invalidArgument("blob ", expected_digest, ": size ", expected_size,
                           " is invalid; use -1 for an unknown size");
  }
  std::string hex = expected_digest.substr(kSha256Prefix.size());
  std::string temp = fs::join(ingest_dir_, strCat(hex.substr(0, 12), "-", randomSuffix()));
  UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd) {
    return lastErrnoError(strCat("ingest blob ", expected_digest, ": create \"", temp, "\""));
  }
  return std::unique_ptr<Writer>(new FileWriter(expected_digest, expected_size, temp,
                                                blobPath(expected_digest), blobs_dir_,
                                                std::move(fd)));
}

Status ContentStore::writeBlob(const std::string& expected_digest, std::string_view data) {
  ASSIGN_OR_RETURN(std::unique_ptr<Writer> writer,
                   openWriter(expected_digest, static_cast<int64_t>(data.size())));
  RETURN_IF_ERROR(writer->write(data));
  return writer->commit();
}

StatusOr<BlobInfo> ContentStore::info(const std::string& digest) const {
  RETURN_IF_ERROR(validateBlobDigest(digest));
  std::string p = blobPath(digest);
  struct stat st;
  if (::stat(p.c_str(), &st) != 0) {
    if (errno == ENOENT) return notFound("blob ", digest, " is not in the content store");
    return lastErrnoError(strCat("stat blob \"", p, "\""));
  }
  return BlobInfo{digest, static_cast<int64_t>(st.st_size), toTimePoint(st.st_mtim)};
}

StatusOr<std::string> ContentStore::path(const std::string& digest) const {
  RETURN_IF_ERROR(info(digest).status());
  return blobPath(digest);
}

StatusOr<std::string> ContentStore::readBlob(const std::string& digest,
                                             int64_t max_size) const {
  RETURN_IF_ERROR(validateBlobDigest(digest));
  std::string p = blobPath(digest);
  UniqueFd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return notFound("blob ", digest, " is not in the content store");
    return lastErrnoError(strCat("open blob \"", p, "\""));
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return lastErrnoError(strCat("stat blob \"", p, "\""));
  if (st.st_size > max_size) {
    return failedPrecondition("blob ", digest, " is ", static_cast<int64_t>(st.st_size),
                              " bytes, more than the ", max_size,
                              " bytes allowed for a manifest or config");
  }
  std::string out;
  out.resize(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::read(fd.get(), out.data() + done, out.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return lastErrnoError(strCat("read blob \"", p, "\""));
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  out.resize(done);
  std::string actual = sha256Digest(out);
  if (actual != digest) {
    return absl::DataLossError(strCat("blob ", digest, " in \"", p,
                                      "\" is corrupt: its content is ", actual,
                                      "; remove it and pull again"));
  }
  return out;
}

bool ContentStore::exists(const std::string& digest) const {
  if (!validateBlobDigest(digest).ok()) return false;
  return ::access(blobPath(digest).c_str(), F_OK) == 0;
}

Status ContentStore::remove(const std::string& digest) {
  RETURN_IF_ERROR(validateBlobDigest(digest));
  std::string p = blobPath(digest);
  if (::unlink(p.c_str()) != 0) {
    if (errno == ENOENT) return notFound("blob ", digest, " is not in the content store");
    return lastErrnoError(strCat("remove blob \"", p, "\""));
  }
  return absl::OkStatus();
}

StatusOr<std::vector<BlobInfo>> ContentStore::list() const {
  ASSIGN_OR_RETURN(std::vector<std::string> names, fs::listDir(blobs_dir_));
  std::sort(names.begin(), names.end());
  std::vector<BlobInfo> out;
  for (const std::string& name : names) {
    if (!isSha256Hex(name)) continue;
    std::string p = fs::join(blobs_dir_, name);
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;  // removed concurrently
      return lastErrnoError(strCat("stat blob \"", p, "\""));
    }
    if (!S_ISREG(st.st_mode)) continue;
    out.push_back(BlobInfo{strCat(kSha256Prefix, name), static_cast<int64_t>(st.st_size),
                           toTimePoint(st.st_mtim)});
  }
  return out;
}

StatusOr<StoreUsage> ContentStore::usage() const {
  StoreUsage usage;
  namespace stdfs = std::filesystem;
  std::error_code ec;
  auto count = [&usage](const std::string& p) -> Status {
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) {
      if (errno == ENOENT) return absl::OkStatus();
      return lastErrnoError(strCat("stat \"", p, "\""));
    }
    ++usage.inodes;
    if (S_ISREG(st.st_mode)) {
      usage.bytes += static_cast<int64_t>(st.st_size);
      usage.disk_bytes += static_cast<int64_t>(st.st_blocks) * 512;
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(count(root_));
  stdfs::recursive_directory_iterator it(root_, ec), end;
  if (ec) return internalError("read content store \"", root_, "\": ", ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) return internalError("read content store \"", root_, "\": ", ec.message());
    RETURN_IF_ERROR(count(it->path().string()));
  }
  if (ec) return internalError("read content store \"", root_, "\": ", ec.message());
  return usage;
}

StatusOr<GcResult> ContentStore::garbageCollect(const std::set<std::string>& keep,
                                                std::chrono::seconds ingest_max_age) {
  GcResult result;
  ASSIGN_OR_RETURN(std::vector<BlobInfo> blobs, list());
  for (const BlobInfo& blob : blobs) {
    if (keep.count(blob.digest) != 0) continue;
    std::string p = blobPath(blob.digest);
    if (::unlink(p.c_str()) != 0) {
      if (errno == ENOENT) continue;
      return lastErrnoError(strCat("garbage-collect blob \"", p, "\""));
    }
    result.removed_blobs.push_back(blob.digest);
    result.freed_bytes += blob.size;
  }
  ASSIGN_OR_RETURN(std::vector<std::string> ingests, fs::listDir(ingest_dir_));
  auto cutoff = std::chrono::system_clock::now() - ingest_max_age;
  for (const std::string& name : ingests) {
    std::string p = fs::join(ingest_dir_, name);
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) continue;  // committed or aborted meanwhile
    if (toTimePoint(st.st_mtim) > cutoff) continue;
    if (::unlink(p.c_str()) != 0) {
      if (errno == ENOENT) continue;
      return lastErrnoError(strCat("garbage-collect ingest file \"", p, "\""));
    }
    ++result.removed_ingests;
    result.freed_bytes += static_cast<int64_t>(st.st_size);
  }
  return result;
}

}  // namespace berth::image
