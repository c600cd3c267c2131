#include "common/nftables.h"

#include <nftables/libnftables.h>

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <vector>

#include "common/unique_fd.h"

namespace berth::nft {
namespace {

// Serializes every libnftables call of the process. nft_ctx_new() runs the library's
// one-time initialisation (gmp, libxtables) behind an unsynchronised `static bool
// init_once`, and libxtables keeps process-wide state; berth has a few contexts at most
// and applies are short, so one lock costs nothing and rules the question out.
std::mutex& libraryMutex() {
  static std::mutex mu;
  return mu;
}

ino_t currentNetnsInode() {
  struct stat st {};
  if (::stat("/proc/thread-self/ns/net", &st) != 0) return 0;
  return st.st_ino;
}

// Line `n` (1-based) of `text`, without its newline; "" past the end.
std::string_view lineOf(std::string_view text, size_t n) {
  size_t start = 0;
  for (size_t i = 1; i < n; ++i) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) return {};
    start = nl + 1;
  }
  size_t end = text.find('\n', start);
  return text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
}

// True for the caret line nft prints under the source text of an error ("   ^^^~~").
bool isCaretLine(std::string_view line) {
  bool any = false;
  for (char c : line) {
    if (c == '^' || c == '~') {
      any = true;
    } else if (c != ' ' && c != '\t') {
      return false;
    }
  }
  return any;
}

Status writeAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return lastErrnoError("write nftables script to a memfd");
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusCode codeForError(std::string_view text) {
  if (text.find("No such file or directory") != std::string_view::npos) return absl::StatusCode::kNotFound;
  if (text.find("File exists") != std::string_view::npos) return absl::StatusCode::kAlreadyExists;
  if (text.find("Operation not permitted") != std::string_view::npos) {
    return absl::StatusCode::kPermissionDenied;
  }
  if (text.find("Protocol not supported") != std::string_view::npos) return absl::StatusCode::kUnavailable;
  return absl::StatusCode::kInvalidArgument;
}

std::string formatErrors(std::string_view raw, std::string_view source, std::string_view script) {
  std::vector<std::string> parts;
  std::vector<std::string> lines = split(raw, '\n');
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    // "<source>:<line>:<columns>: Error: <message>"
    if (!source.empty() && line.starts_with(source) && line.size() > source.size() &&
        line[source.size()] == ':') {
      std::string_view rest = line.substr(source.size() + 1);
      size_t digits = 0;
      while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9') ++digits;
      size_t colon = rest.find(": ");
      if (digits > 0 && colon != std::string_view::npos) {
        size_t n = std::stoul(std::string(rest.substr(0, digits)));
        std::string_view message = rest.substr(colon + 2);
        if (message.starts_with("Error: ")) message.remove_prefix(7);
        parts.push_back(strCat("line ", n, ": ", message, ": \"", trim(lineOf(script, n)), "\""));
        // nft follows a located error with the source line and a caret line.
        if (i + 1 < lines.size() && !isCaretLine(lines[i + 1])) ++i;
        if (i + 1 < lines.size() && isCaretLine(lines[i + 1])) ++i;
        continue;
      }
    }
    // The source text nft echoes under an unlocated error, and its caret line.
    if (i + 1 < lines.size() && isCaretLine(lines[i + 1])) {
      ++i;
      continue;
    }
    if (isCaretLine(line)) continue;
    std::string_view t = trim(line);
    if (t.starts_with("Error: ")) t.remove_prefix(7);
    if (!t.empty()) parts.emplace_back(t);
  }
  return joinStrings(parts, "; ");
}

void Context::Free::operator()(nft_ctx* ctx) const {
  std::lock_guard<std::mutex> lock(libraryMutex());
  nft_ctx_free(ctx);
}

Context::Context(nft_ctx* ctx, ino_t netns_inode) : ctx_(ctx), netns_inode_(netns_inode) {}
Context::Context(Context&&) noexcept = default;
Context& Context::operator=(Context&&) noexcept = default;
Context::~Context() = default;

StatusOr<Context> Context::create(const Options& options) {
  ino_t netns = currentNetnsInode();
  nft_ctx* raw = nullptr;
  bool buffered = false;
  {
    std::lock_guard<std::mutex> lock(libraryMutex());
    raw = nft_ctx_new(NFT_CTX_DEFAULT);
    if (raw == nullptr) {
      return absl::UnavailableError("nftables: cannot create a libnftables context (out of memory or "
                                    "no netlink socket)");
    }
    buffered = nft_ctx_buffer_output(raw) == 0 && nft_ctx_buffer_error(raw) == 0;
    unsigned int flags = 0;
    if (options.json_output) flags |= NFT_CTX_OUTPUT_JSON;
    if (options.handles) flags |= NFT_CTX_OUTPUT_HANDLE;
    nft_ctx_output_set_flags(raw, flags);
  }
  Context ctx(raw, netns);  // frees `raw` (taking the lock) on the error path below
  if (!buffered) return absl::UnavailableError("nftables: cannot buffer libnftables output in memory");
  return ctx;
}

void Context::drain() {
  (void)nft_ctx_get_output_buffer(ctx_.get());
  (void)nft_ctx_get_error_buffer(ctx_.get());
}

Status Context::runScript(std::string_view script, std::string_view what) {
  std::lock_guard<std::mutex> lock(libraryMutex());
  drain();
  // A memfd read back by path gives nft's errors the right line number and text.
  UniqueFd fd(::memfd_create("berth-nft", MFD_CLOEXEC));
  std::string source;
  int rc = 0;
  if (fd.valid() && writeAll(fd.get(), script).ok()) {
    source = strCat("/proc/self/fd/", fd.get());
    rc = nft_run_cmd_from_filename(ctx_.get(), source.c_str());
  } else {
    rc = nft_run_cmd_from_buffer(ctx_.get(), std::string(script).c_str());
  }
  if (rc == 0) return absl::OkStatus();
  std::string raw = nft_ctx_get_error_buffer(ctx_.get());
  std::string text = formatErrors(raw, source, script);
  if (text.empty()) text = "failed without an error message";
  return absl::Status(codeForError(raw), strCat(what, ": nftables: ", text));
}

Status Context::run(std::string_view script, std::string_view what) {
  return runScript(script, what);
}

Status Context::check(std::string_view script, std::string_view what) {
  nft_ctx_set_dry_run(ctx_.get(), true);  // a flag of this context only
  Status status = runScript(script, strCat("check ", what));
  nft_ctx_set_dry_run(ctx_.get(), false);
  return status;
}

StatusOr<std::string> Context::list(std::string_view command) {
  std::lock_guard<std::mutex> lock(libraryMutex());
  drain();
  std::string cmd(command);
  if (nft_run_cmd_from_buffer(ctx_.get(), cmd.c_str()) != 0) {
    std::string raw = nft_ctx_get_error_buffer(ctx_.get());
    // A one-line buffer: the line nft prints is the command itself.
    std::string text = formatErrors(raw, "", "");
    if (text.empty()) text = "failed without an error message";
    return absl::Status(codeForError(raw), strCat("nftables: ", cmd, ": ", text));
  }
  return std::string(nft_ctx_get_output_buffer(ctx_.get()));
}

}  // namespace berth::nft
