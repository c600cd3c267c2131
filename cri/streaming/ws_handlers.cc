#include "cri/streaming/ws_handlers.h"

#include <sys/ioctl.h>
#include <termios.h>

#include <deque>
#include <utility>  // before Boost 1.74 asio (awaitable.hpp uses std::exchange)
#include <functional>

#include <boost/asio.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include "common/log.h"
#include "cri/streaming/remotecommand.h"

namespace berth::streaming {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using Descriptor = asio::posix::stream_descriptor;

namespace {

std::shared_ptr<spdlog::logger> logger() { return log::get("streaming"); }

// Output queued for a slow client before the descriptors feeding it pause.
constexpr size_t kMaxBacklogBytes = 4u << 20;

// The channel framing over one WebSocket: a write queue (one write in flight), a read
// loop handing each message's channel and payload to on_message, and a clean close.
class ChannelSession : public std::enable_shared_from_this<ChannelSession> {
 public:
  explicit ChannelSession(std::shared_ptr<WsStream> ws) : ws_(std::move(ws)) {}

  std::function<void(uint8_t channel, std::string_view data)> on_message;
  std::function<void()> on_peer_gone;  // the client closed or the connection broke

  void startReading() { doRead(); }

  void send(uint8_t channel, std::string_view data) {
    if (closing_ || gone_) return;
    std::string msg;
    msg.reserve(data.size() + 1);
    msg.push_back(static_cast<char>(channel));
    msg.append(data);
    backlog_ += msg.size();
    queue_.push_back(std::move(msg));
    if (!writing_) doWrite();
  }

  size_t backlog() const { return backlog_; }
  // Runs `fn` once the backlog is below the limit again.
  void whenDrained(std::function<void()> fn) { drained_.push_back(std::move(fn)); }

  // Closes (normal closure) after the queued messages are written.
  void close() {
    if (closing_ || gone_) return;
    closing_ = true;
    if (!writing_) doClose();
  }

  bool gone() const { return gone_; }

 private:
  void doWrite() {
    if (queue_.empty()) {
      writing_ = false;
      if (closing_) doClose();
      return;
    }
    writing_ = true;
    ws_->async_write(asio::buffer(queue_.front()), [self = shared_from_this()](beast::error_code ec, size_t) {
      self->backlog_ -= self->queue_.front().size();
      self->queue_.pop_front();
      if (ec) return self->peerGone();
      if (self->backlog_ < kMaxBacklogBytes / 2 && !self->drained_.empty()) {
        auto fns = std::move(self->drained_);
        self->drained_.clear();
        for (auto& fn : fns) fn();
      }
      self->doWrite();
    });
  }

  void doClose() {
    ws_->async_close(websocket::close_code::normal, [self = shared_from_this()](beast::error_code) {
      self->gone_ = false;
      self->peerGone();
    });
  }

  void doRead() {
    ws_->async_read(rbuf_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->peerGone();
      std::string msg = beast::buffers_to_string(self->rbuf_.data());
      self->rbuf_.consume(self->rbuf_.size());
      if (!msg.empty() && self->on_message) {
        self->on_message(static_cast<uint8_t>(msg[0]), std::string_view(msg).substr(1));
      }
      if (!self->gone_) self->doRead();
    });
  }

  // Tells the owner once, then drops the callbacks (they hold the owner, which holds
  // this session: the cycle ends here).
  void peerGone() {
    if (gone_) return;
    gone_ = true;
    auto fn = std::move(on_peer_gone);
    on_peer_gone = nullptr;
    on_message = nullptr;
    drained_.clear();
    if (fn) fn();
  }

  std::shared_ptr<WsStream> ws_;
  beast::flat_buffer rbuf_;
  std::deque<std::string> queue_;
  size_t backlog_ = 0;
  std::vector<std::function<void()>> drained_;
  bool writing_ = false;
  bool closing_ = false;
  bool gone_ = false;
};

// Copies a readable descriptor to a channel until EOF (or EIO from a pty whose process
// side closed), then calls on_eof once.
class FdToChannel : public std::enable_shared_from_this<FdToChannel> {
 public:
  FdToChannel(asio::io_context& ctx, int fd, std::shared_ptr<ChannelSession> session, uint8_t channel)
      : desc_(ctx, fd), session_(std::move(session)), channel_(channel) {
    beast::error_code ec;
    desc_.non_blocking(true, ec);
  }
  std::function<void()> on_eof;

  void start() { doRead(); }
  void cancel() {
    beast::error_code ec;
    desc_.cancel(ec);
  }
  Descriptor& descriptor() { return desc_; }

 private:
  void doRead() {
    if (session_->backlog() > kMaxBacklogBytes) {
      session_->whenDrained([self = shared_from_this()] { self->doRead(); });
      return;
    }
    desc_.async_read_some(asio::buffer(buf_), [self = shared_from_this()](beast::error_code ec, size_t n) {
      if (n > 0) self->session_->send(self->channel_, std::string_view(self->buf_.data(), n));
      if (ec) {
        if (ec != asio::error::operation_aborted && self->on_eof) {
          auto fn = std::move(self->on_eof);
          self->on_eof = nullptr;
          fn();
        }
        return;
      }
      self->doRead();
    });
  }

  Descriptor desc_;
  std::shared_ptr<ChannelSession> session_;
  uint8_t channel_;
  std::array<char, 32768> buf_{};
};

// Writes queued bytes to a descriptor (a pipe's write end, a pty master or a socket);
// closeWhenDone() closes it after the queue drains (stdin EOF).
class FdWriter : public std::enable_shared_from_this<FdWriter> {
 public:
  FdWriter(asio::io_context& ctx, int fd) : desc_(ctx, fd) {
    beast::error_code ec;
    desc_.non_blocking(true, ec);
  }
  // A writer on a descriptor someone else owns (the pty master shared with its reader).
  FdWriter(asio::io_context& ctx, Descriptor* shared) : desc_(ctx), shared_(shared) {}

  void write(std::string_view data) {
    if (closed_) return;
    queue_.emplace_back(data);
    if (!writing_) doWrite();
  }
  void closeWhenDone() {
    close_requested_ = true;
    if (!writing_) finish();
  }
  void cancel() {
    beast::error_code ec;
    target().cancel(ec);
  }

 private:
  Descriptor& target() { return shared_ != nullptr ? *shared_ : desc_; }
  void doWrite() {
    if (queue_.empty()) {
      writing_ = false;
      if (close_requested_) finish();
      return;
    }
    writing_ = true;
    asio::async_write(target(), asio::buffer(queue_.front()), [self = shared_from_this()](beast::error_code ec, size_t) {
      self->queue_.pop_front();
      if (ec) {
        self->closed_ = true;  // the process closed its stdin: drop the rest
        self->queue_.clear();
        self->writing_ = false;
        return;
      }
      self->doWrite();
    });
  }
  void finish() {
    if (closed_) return;
    closed_ = true;
    if (shared_ == nullptr) {
      beast::error_code ec;
      desc_.close(ec);
    }
  }

  Descriptor desc_;
  Descriptor* shared_ = nullptr;
  std::deque<std::string> queue_;
  bool writing_ = false;
  bool close_requested_ = false;
  bool closed_ = false;
};

bool v4OrLater(const WsOptions& o) { return o.protocol == kStreamProtocolV4 || o.protocol == kStreamProtocolV5; }

// Reports a failure on the error channel (v4+: a Status; v1: the message) and closes.
void failAndClose(const std::shared_ptr<ChannelSession>& session, const WsOptions& options, const Status& st) {
  std::string msg(st.message());
  session->send(kChannelError, v4OrLater(options) ? errorStatusJson(msg) : msg);
  session->close();
}

// One exec or attach: the descriptors, the stdin writer, resize, and completion.
struct RemoteCommand : std::enable_shared_from_this<RemoteCommand> {
  asio::io_context& ctx;
  std::shared_ptr<ChannelSession> session;
  WsOptions options;
  bool tty = false;
  std::vector<std::shared_ptr<FdToChannel>> outputs;
  std::shared_ptr<FdWriter> stdin_writer;
  int resize_fd = -1;  // the pty master's raw fd (owned by an output or the writer)
  int outputs_open = 0;
  std::optional<int> exit_code;  // exec: from the shim; attach: 0 when output ends
  bool wait_for_exit_code = false;
  std::unique_ptr<Descriptor> exit_desc;
  std::string exit_buffer;
  std::array<char, 4096> exit_buf{};
  bool done = false;

  RemoteCommand(asio::io_context& c, std::shared_ptr<ChannelSession> s, WsOptions o)
      : ctx(c), session(std::move(s)), options(std::move(o)) {}

  void addOutput(int fd, uint8_t channel) {
    auto out = std::make_shared<FdToChannel>(ctx, fd, session, channel);
    out->on_eof = [w = weak_from_this()] {
      if (auto self = w.lock()) {
        --self->outputs_open;
        self->maybeFinish();
      }
    };
    ++outputs_open;
    outputs.push_back(out);
  }

  void onMessage(uint8_t channel, std::string_view data) {
    if (channel == kChannelStdin && stdin_writer) {
      if (!data.empty()) stdin_writer->write(data);
    } else if (channel == kChannelResize && resize_fd >= 0) {
      auto size = parseTerminalSize(data);
      if (!size.ok()) return;
      struct winsize ws = {};
      ws.ws_row = size->height;
      ws.ws_col = size->width;
      (void)::ioctl(resize_fd, TIOCSWINSZ, &ws);
    } else if (channel == kChannelClose && !data.empty() && static_cast<uint8_t>(data[0]) == kChannelStdin &&
               stdin_writer) {
      stdin_writer->closeWhenDone();
    }
  }

  void readExit() {
    exit_desc->async_read_some(asio::buffer(exit_buf), [self = shared_from_this()](beast::error_code ec, size_t n) {
      self->exit_buffer.append(self->exit_buf.data(), n);
      if (auto code = shim::ExecStream::exitCodeFromLines(self->exit_buffer)) {
        self->exit_code = *code;
        self->maybeFinish();
        return;
      }
      if (ec) {
        if (ec == asio::error::operation_aborted) return;
        self->exit_code = -1;  // the shim went away: the code is lost
        self->maybeFinish();
        return;
      }
      self->readExit();
    });
  }

  void maybeFinish() {
    if (done || outputs_open > 0) return;
    if (wait_for_exit_code && !exit_code) return;
    done = true;
    int code = exit_code.value_or(0);
    if (v4OrLater(options)) {
      session->send(kChannelError, code >= 0 ? exitStatusJson(code)
                                             : errorStatusJson("the container's shim went away; exit code unknown"));
    } else if (code != 0) {
      session->send(kChannelError, strCat("command terminated with exit code ", code));
    }
    session->close();
  }

  void peerGone() {
    for (auto& o : outputs) o->cancel();
    if (stdin_writer) stdin_writer->cancel();
    if (exit_desc) {
      beast::error_code ec;
      exit_desc->cancel(ec);
    }
  }

  void start() {
    session->on_message = [w = weak_from_this()](uint8_t ch, std::string_view data) {
      if (auto self = w.lock()) self->onMessage(ch, data);
    };
    // The session holds the command alive until the client is gone.
    session->on_peer_gone = [self = shared_from_this()] { self->peerGone(); };
    for (auto& o : outputs) o->start();
    if (exit_desc) readExit();
    session->startReading();
    maybeFinish();
  }
};

// The lowest writable channel gets an empty message once the streams are open.
void announceOpen(const std::shared_ptr<ChannelSession>& session, bool out, bool err) {
  session->send(out ? kChannelStdout : err ? kChannelStderr : kChannelError, "");
}

}  // namespace

void runWsExec(asio::io_context& ctx, std::shared_ptr<WsStream> ws, StreamingRuntime& runtime,
               const ExecRequest& request, const WsOptions& options) {
  auto session = std::make_shared<ChannelSession>(std::move(ws));
  auto started = runtime.exec(request);
  if (!started.ok()) {
    session->startReading();
    return failAndClose(session, options, started.status());
  }
  auto cmd = std::make_shared<RemoteCommand>(ctx, session, options);
  cmd->tty = started->tty;
  cmd->wait_for_exit_code = true;
  if (started->tty) {
    int master = started->pty.release();
    cmd->resize_fd = master;
    cmd->addOutput(master, kChannelStdout);
    if (request.stdin) cmd->stdin_writer = std::make_shared<FdWriter>(ctx, &cmd->outputs.back()->descriptor());
  } else {
    if (started->stdout_fd) cmd->addOutput(started->stdout_fd.release(), kChannelStdout);
    if (started->stderr_fd) cmd->addOutput(started->stderr_fd.release(), kChannelStderr);
    if (started->stdin_fd) cmd->stdin_writer = std::make_shared<FdWriter>(ctx, started->stdin_fd.release());
  }
  std::string buffered;
  UniqueFd exit_conn = started->releaseExitConnection(&buffered);
  cmd->exit_buffer = std::move(buffered);
  if (auto code = shim::ExecStream::exitCodeFromLines(cmd->exit_buffer)) cmd->exit_code = *code;
  if (!cmd->exit_code) cmd->exit_desc = std::make_unique<Descriptor>(ctx, exit_conn.release());
  announceOpen(session, request.stdout || request.tty, request.stderr && !request.tty);
  cmd->start();
}

void runWsAttach(asio::io_context& ctx, std::shared_ptr<WsStream> ws, StreamingRuntime& runtime,
                 const AttachRequest& request, const WsOptions& options) {
  auto session = std::make_shared<ChannelSession>(std::move(ws));
  auto started = runtime.attach(request);
  if (!started.ok()) {
    session->startReading();
    return failAndClose(session, options, started.status());
  }
  auto cmd = std::make_shared<RemoteCommand>(ctx, session, options);
  cmd->tty = started->tty;
  if (started->stdout_fd) cmd->addOutput(started->stdout_fd.release(), kChannelStdout);
  if (started->stderr_fd) cmd->addOutput(started->stderr_fd.release(), kChannelStderr);
  if (started->stdin_fd) {
    if (started->tty) cmd->resize_fd = started->stdin_fd.get();
    cmd->stdin_writer = std::make_shared<FdWriter>(ctx, started->stdin_fd.release());
  }
  // The attach session lasts while the shim connection is open: closed with the client.
  auto conn = std::make_shared<UniqueFd>(std::move(started->conn));
  if (cmd->outputs.empty()) cmd->outputs_open = 1;  // stdin only: done when the client closes
  announceOpen(session, request.stdout, request.stderr && !started->tty);
  cmd->start();
  session->on_peer_gone = [cmd, conn] {
    cmd->peerGone();
    conn->reset();
  };
}

namespace {

// One forwarded port: the pod's socket and its two channels.
struct ForwardedPort : std::enable_shared_from_this<ForwardedPort> {
  std::shared_ptr<FdToChannel> reader;
  std::shared_ptr<FdWriter> writer;
};

}  // namespace

void runWsPortForward(asio::io_context& ctx, std::shared_ptr<WsStream> ws, StreamingRuntime& runtime,
                      const std::string& pod_sandbox_id, const std::vector<int32_t>& ports) {
  auto session = std::make_shared<ChannelSession>(std::move(ws));
  auto forwarded = std::make_shared<std::vector<ForwardedPort>>(ports.size());
  auto open = std::make_shared<int>(0);
  for (size_t i = 0; i < ports.size(); ++i) {
    uint8_t data_ch = static_cast<uint8_t>(2 * i), err_ch = static_cast<uint8_t>(2 * i + 1);
    char prefix[2] = {static_cast<char>(ports[i] & 0xff), static_cast<char>((ports[i] >> 8) & 0xff)};
    session->send(data_ch, std::string_view(prefix, 2));
    session->send(err_ch, std::string_view(prefix, 2));
    auto sock = runtime.connectPort(pod_sandbox_id, ports[i]);
    if (!sock.ok()) {
      session->send(err_ch, strCat("error forwarding port ", ports[i], " to pod ", pod_sandbox_id, ": ",
                                   sock.status().message()));
      continue;
    }
    int fd = sock->release();
    auto& fp = (*forwarded)[i];
    fp.reader = std::make_shared<FdToChannel>(ctx, fd, session, data_ch);
    fp.writer = std::make_shared<FdWriter>(ctx, &fp.reader->descriptor());
    ++*open;
    fp.reader->on_eof = [session, open] {
      if (--*open == 0) session->close();
    };
  }
  session->on_message = [forwarded](uint8_t ch, std::string_view data) {
    size_t i = ch / 2;
    if (ch % 2 != 0 || i >= forwarded->size() || !(*forwarded)[i].writer || data.empty()) return;
    (*forwarded)[i].writer->write(data);
  };
  session->on_peer_gone = [forwarded] {
    for (auto& fp : *forwarded) {
      if (fp.reader) fp.reader->cancel();
      if (fp.writer) fp.writer->cancel();
    }
  };
  for (auto& fp : *forwarded) {
    if (fp.reader) fp.reader->start();
  }
  session->startReading();
  if (*open == 0) session->close();
  logger()->debug("port-forward to pod {}: {} port(s), {} connected", pod_sandbox_id, ports.size(), *open);
}

}  // namespace berth::streaming
