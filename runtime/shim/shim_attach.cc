// attach: output copies and stdin for `kubectl attach` sessions (protocol.h attach).
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "common/unix_socket.h"
#include "runtime/shim/shim.h"

namespace berth::shim {
namespace {

// Socket buffer for output copies: a client that falls this far behind loses output.
constexpr int kAttachBufferBytes = 1 << 20;

// A connected pair: `ours` non-blocking with a large send buffer, `theirs` for the client.
Status outputPair(UniqueFd& ours, UniqueFd& theirs) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return lastErrnoError("socketpair");
  ours.reset(sv[0]);
  theirs.reset(sv[1]);
  int size = kAttachBufferBytes;
  (void)::setsockopt(ours.get(), SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
  (void)::shutdown(ours.get(), SHUT_RD);
  (void)::shutdown(theirs.get(), SHUT_WR);
  int flags = ::fcntl(ours.get(), F_GETFL);
  if (flags < 0 || ::fcntl(ours.get(), F_SETFL, flags | O_NONBLOCK) != 0) return lastErrnoError("fcntl");
  return absl::OkStatus();
}

}  // namespace

Status Shim::attach(const Json& params, const PendingReply& to) {
  ASSIGN_OR_RETURN(AttachSpec spec, attachSpecFromJson(params));
  ASSIGN_OR_RETURN(Container * c, find(spec.id));
  std::string ctx = strCat("attach to container \"", spec.id, "\"");
  if (c->state.status != ContainerStatus::kCreated && c->state.status != ContainerStatus::kRunning) {
    return failedPrecondition(ctx, ": it is ", statusName(c->state.status), "; only created or running "
                              "containers can be attached to");
  }
  const bool tty = c->state.tty;
  if (spec.attach_stdin && !(tty ? static_cast<bool>(c->out) : static_cast<bool>(c->stdin_w))) {
    return failedPrecondition(ctx, ": it was created without stdin (set stdin in the container "
                              "config) or its stdin was closed (stdin_once)");
  }
  auto conn = conns_.find(to.conn);
  if (conn == conns_.end()) return absl::OkStatus();
  if (!conn->second.out.empty()) {
    return failedPrecondition(ctx, ": the connection has unsent replies; use a connection of its own");
  }
  Attacher a;
  a.conn = to.conn;
  AttachReply reply;
  reply.attach_id = next_attach_++;
  reply.tty = tty;
  std::vector<UniqueFd> theirs;
  if (spec.attach_stdin) {
    int src = tty ? c->out.get() : c->stdin_w.get();
    int fd = ::fcntl(src, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) return withContext(lastErrnoError("dup stdin"), ctx);
    theirs.emplace_back(fd);
    reply.fds.push_back("stdin");
    a.has_stdin = true;
  }
  if (spec.attach_stdout) {
    UniqueFd t;
    RETURN_IF_ERROR_CTX(outputPair(a.out, t), ctx);
    theirs.push_back(std::move(t));
    reply.fds.push_back("stdout");
  }
  if (spec.attach_stderr && !tty) {
    UniqueFd t;
    RETURN_IF_ERROR_CTX(outputPair(a.err, t), ctx);
    theirs.push_back(std::move(t));
    reply.fds.push_back("stderr");
  }
  // Streams that already ended give EOF at once.
  if (!c->out) a.out.reset();
  if (!c->err) a.err.reset();
  std::vector<int> raw;
  for (const auto& fd : theirs) raw.push_back(fd.get());
  Status sent = sendWithFds(conn->second.fd.get(), encodeResponse(to.request, toJson(reply)), raw);
  if (!sent.ok()) {
    shimLog(2, "%s: the client went away: %s", ctx.c_str(), std::string(sent.message()).c_str());
    return absl::OkStatus();
  }
  shimLog(1, "container %s: attach %llu (stdin %d)", spec.id.c_str(),
          static_cast<unsigned long long>(reply.attach_id), a.has_stdin ? 1 : 0);
  c->attachers.emplace(reply.attach_id, std::move(a));
  return absl::OkStatus();
}

void Shim::feedAttachers(Container& c, bool is_err, std::string_view data) {
  for (auto& [id, a] : c.attachers) {
    UniqueFd& fd = is_err ? a.err : a.out;
    if (!fd) continue;
    ssize_t n = ::send(fd.get(), data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n == static_cast<ssize_t>(data.size())) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      fd.reset();  // the client closed this stream
      continue;
    }
    uint64_t lost = data.size() - static_cast<size_t>(n < 0 ? 0 : n);
    if (a.dropped == 0) {
      shimLog(2, "container %s: attach %llu reads too slowly; dropping output for it",
              c.state.id.c_str(), static_cast<unsigned long long>(id));
    }
    a.dropped += lost;
  }
}

void Shim::detachConn(uint64_t conn_id) {
  for (auto& [cid, c] : containers_) {
    for (auto it = c.attachers.begin(); it != c.attachers.end();) {
      if (it->second.conn != conn_id) {
        ++it;
        continue;
      }
      // stdin_once: the first attach session with stdin ending closes the container's
      // stdin (the client's copy is closed by it), as kubelet's StdinOnce says. With a
      // tty the master is also the output, so it stays.
      if (it->second.has_stdin && c.stdin_once && !c.state.tty && c.stdin_w) {
        shimLog(1, "container %s: stdin closed (stdin_once, attach ended)", cid.c_str());
        c.stdin_w.reset();
      }
      it = c.attachers.erase(it);
    }
  }
}

}  // namespace berth::shim
