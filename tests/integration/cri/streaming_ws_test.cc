// The streaming server (cri/streaming/server.h) over WebSocket, driven by a Beast
// WebSocket client the way kubectl/kubelet drive it: exec with and without a tty,
// stdin and its v5 close signal, resize, exit codes as metav1.Status, 10 MB of
// output, attach, port-forward to a loopback echo server, and the refusals (reused
// token, unknown path, unsupported subprotocol, SPDY). The runtime is a fake that
// runs processes on this host with pipes or a pty (no containers, no root needed).
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <thread>
#include <utility>  // before Boost 1.74's asio/awaitable.hpp, which needs std::exchange

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/strings.h"
#include "cri/streaming/remotecommand.h"
#include "cri/streaming/server.h"

namespace berth::streaming {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using ::testing::HasSubstr;

// Runs commands on the host: `sh -c <cmd[0]>`.
class HostRuntime : public StreamingRuntime {
 public:
  ~HostRuntime() override {
    for (auto& t : waiters_) t.join();
  }

  StatusOr<shim::ExecStream> exec(const ExecRequest& r) override {
    if (r.container_id != "box") return absl::NotFoundError("container \"" + r.container_id + "\" not found");
    int exit_pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, exit_pair) != 0) return lastErrnoError("socketpair");
    shim::ExecStream s = shim::ExecStream::fromExitConnection(1, r.tty, UniqueFd(exit_pair[0]));
    UniqueFd notify(exit_pair[1]);
    int child_in = -1, child_out = -1, child_err = -1;
    UniqueFd slave;
    if (r.tty) {
      int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
      if (master < 0 || ::grantpt(master) != 0 || ::unlockpt(master) != 0) return lastErrnoError("openpt");
      s.pty.reset(master);
      slave.reset(::open(::ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC));
      child_in = child_out = child_err = slave.get();
    }
    UniqueFd in_r, out_w, err_w;
    auto pipeFor = [](UniqueFd& ours, UniqueFd& theirs, bool we_write) {
      int p[2];
      EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
      ours.reset(we_write ? p[1] : p[0]);
      theirs.reset(we_write ? p[0] : p[1]);
    };
    if (!r.tty) {
      if (r.stdin) pipeFor(s.stdin_fd, in_r, true);
      if (r.stdout) pipeFor(s.stdout_fd, out_w, false);
      if (r.stderr) pipeFor(s.stderr_fd, err_w, false);
      child_in = in_r ? in_r.get() : -1;
      child_out = out_w ? out_w.get() : -1;
      child_err = err_w ? err_w.get() : -1;
    }
    pid_t pid = ::fork();
    if (pid == 0) {
      if (r.tty) ::setsid();
      int devnull = ::open("/dev/null", O_RDWR);
      ::dup2(child_in >= 0 ? child_in : devnull, 0);
      ::dup2(child_out >= 0 ? child_out : devnull, 1);
      ::dup2(child_err >= 0 ? child_err : devnull, 2);
      if (r.tty) ::ioctl(0, TIOCSCTTY, 0);
      ::execl("/bin/sh", "sh", "-c", r.cmd[0].c_str(), nullptr);
      ::_exit(127);
    }
    waiters_.emplace_back([pid, n = std::move(notify)] {
      int ws = 0;
      ::waitpid(pid, &ws, 0);
      int code = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
      std::string line = strCat(R"({"event":{"type":"execExit","exec_id":1,"exit_code":)", code, "}}\n");
      (void)::write(n.get(), line.data(), line.size());
    });
    return s;
  }

  StatusOr<shim::AttachStream> attach(const AttachRequest& r) override {
    shim::AttachStream s;
    int out[2], conn[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, out) != 0 ||
        ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, conn) != 0) {
      return lastErrnoError("socketpair");
    }
    s.stdout_fd.reset(out[0]);
    s.conn.reset(conn[0]);
    attach_conn_.reset(conn[1]);
    // The "container" says two things, then exits (its output ends).
    UniqueFd writer(out[1]);
    (void)r;
    waiters_.emplace_back([w = std::move(writer)] {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      (void)::write(w.get(), "attached-output\n", 16);
    });
    return s;
  }

  StatusOr<UniqueFd> connectPort(const std::string& pod, int32_t port) override {
    if (pod != "pod-1") return absl::NotFoundError("pod sandbox \"" + pod + "\" not found");
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      return lastErrnoError(strCat("connect to port ", port, " in the pod"));
    }
    return fd;
  }

 private:
  std::vector<std::thread> waiters_;
  UniqueFd attach_conn_;
};

// A WebSocket client session: everything received, by channel, until the server closes.
struct Received {
  std::map<int, std::string> channels;
  std::vector<std::pair<int, size_t>> order;  // (channel, size) of each message
  std::string close_reason;
  bool closed_normally = false;
};

class WsClient {
 public:
  // Connects and upgrades; `protocols` is the Sec-WebSocket-Protocol offer.
  beast::error_code connect(int port, const std::string& target, const std::string& protocols) {
    tcp::resolver resolver(ioc_);
    beast::error_code ec;
    auto results = resolver.resolve("127.0.0.1", std::to_string(port), ec);
    if (ec) return ec;
    asio::connect(ws_.next_layer(), results, ec);
    if (ec) return ec;
    ws_.set_option(websocket::stream_base::decorator([protocols](websocket::request_type& req) {
      if (!protocols.empty()) req.set(http::field::sec_websocket_protocol, protocols);
    }));
    ws_.handshake(res_, "127.0.0.1", target, ec);
    ws_.binary(true);
    return ec;
  }
  std::string negotiated() const { return std::string(res_[http::field::sec_websocket_protocol]); }
  int status() const { return res_.result_int(); }

  void send(uint8_t channel, const std::string& data) {
    std::string msg(1, static_cast<char>(channel));
    msg += data;
    ws_.write(asio::buffer(msg));
  }

  // Reads until the server closes (or `stop` says enough).
  Received readAll(const std::function<bool(const Received&)>& stop = nullptr) {
    Received r;
    for (;;) {
      beast::flat_buffer buf;
      beast::error_code ec;
      ws_.read(buf, ec);
      if (ec == websocket::error::closed) {
        r.closed_normally = ws_.reason().code == websocket::close_code::normal;
        r.close_reason = std::string(ws_.reason().reason.c_str());
        return r;
      }
      if (ec) return r;
      std::string msg = beast::buffers_to_string(buf.data());
      if (msg.empty()) continue;
      int ch = static_cast<uint8_t>(msg[0]);
      r.channels[ch] += msg.substr(1);
      r.order.emplace_back(ch, msg.size() - 1);
      if (stop && stop(r)) return r;
    }
  }

 private:
  asio::io_context ioc_;
  websocket::stream<tcp::socket> ws_{ioc_};
  websocket::response_type res_;
};

class StreamingWsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = StreamingServer::start({}, &runtime_);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
  }
  // The path of a fresh URL for `request`.
  std::string path(const StreamRequest& request) {
    auto url = server_->url(request);
    EXPECT_TRUE(url.ok()) << url.status();
    std::string prefix = strCat("http://127.0.0.1:", server_->port());
    EXPECT_EQ(url->rfind(prefix, 0), 0u) << *url;
    return url->substr(prefix.size());
  }
  ExecRequest exec(const std::string& cmd, bool tty = false, bool stdin = false) {
    ExecRequest e;
    e.container_id = "box";
    e.cmd = {cmd};
    e.tty = tty;
    e.stdin = stdin;
    e.stdout = true;
    e.stderr = !tty;
    return e;
  }

  HostRuntime runtime_;
  std::unique_ptr<StreamingServer> server_;
};

TEST_F(StreamingWsTest, ExecStreamsStdinOutputAndTheExitStatusV5) {
  WsClient c;
  ASSERT_FALSE(c.connect(server_->port(), path(exec("cat; echo oops >&2; exit 3", false, true)),
                         "v5.channel.k8s.io, v4.channel.k8s.io"));
  EXPECT_EQ(c.negotiated(), "v5.channel.k8s.io");
  c.send(kChannelStdin, "hello ");
  c.send(kChannelStdin, "world\n");
  c.send(kChannelClose, std::string(1, static_cast<char>(kChannelStdin)));  // stdin EOF
  Received r = c.readAll();
  ASSERT_FALSE(r.order.empty());
  EXPECT_EQ(r.order[0], (std::pair<int, size_t>{kChannelStdout, 0})) << "an empty message announces the streams";
  EXPECT_EQ(r.channels[kChannelStdout], "hello world\n");
  EXPECT_EQ(r.channels[kChannelStderr], "oops\n");
  EXPECT_THAT(r.channels[kChannelError], HasSubstr(R"("reason":"NonZeroExitCode")"));
  EXPECT_THAT(r.channels[kChannelError], HasSubstr(R"({"message":"3","reason":"ExitCode"})"));
  EXPECT_TRUE(r.closed_normally);
}

TEST_F(StreamingWsTest, ExecSuccessLargeOutputAndV4) {
  WsClient c;
  ASSERT_FALSE(c.connect(server_->port(), path(exec("head -c 10485760 /dev/zero | tr '\\0' x")), "v4.channel.k8s.io"));
  EXPECT_EQ(c.negotiated(), "v4.channel.k8s.io");
  Received r = c.readAll();
  EXPECT_EQ(r.channels[kChannelStdout].size(), 10485760u);
  EXPECT_EQ(r.channels[kChannelStdout].find_first_not_of('x'), std::string::npos) << "intact";
  EXPECT_EQ(r.channels[kChannelError], R"({"metadata":{},"status":"Success"})");
}

TEST_F(StreamingWsTest, ExecWithATtyTakesResizesAndInput) {
  WsClient c;
  ASSERT_FALSE(c.connect(server_->port(), path(exec("read l; stty size; echo said:$l; exit 1", true, true)),
                         "v4.channel.k8s.io"));
  c.send(kChannelResize, R"({"Width":101,"Height":31})");
  c.send(kChannelStdin, "hi\n");
  Received r = c.readAll();
  EXPECT_THAT(r.channels[kChannelStdout], HasSubstr("31 101"));
  EXPECT_THAT(r.channels[kChannelStdout], HasSubstr("said:hi"));
  EXPECT_EQ(r.channels.count(kChannelStderr), 0u) << "a tty has one output stream";
  EXPECT_THAT(r.channels[kChannelError], HasSubstr(R"({"message":"1","reason":"ExitCode"})"));
}

TEST_F(StreamingWsTest, ExecErrorsArriveOnTheErrorChannel) {
  ExecRequest e = exec("true");
  e.container_id = "missing";
  WsClient c;
  ASSERT_FALSE(c.connect(server_->port(), path(e), "v4.channel.k8s.io"));
  Received r = c.readAll();
  EXPECT_THAT(r.channels[kChannelError], HasSubstr(R"("status":"Failure")"));
  EXPECT_THAT(r.channels[kChannelError], HasSubstr("container \\\"missing\\\" not found"));
}

TEST_F(StreamingWsTest, AttachStreamsOutputUntilItEnds) {
  AttachRequest a;
  a.container_id = "box";
  a.stdout = true;
  WsClient c;
  ASSERT_FALSE(c.connect(server_->port(), path(a), "v4.channel.k8s.io"));
  Received r = c.readAll();
  EXPECT_EQ(r.channels[kChannelStdout], "attached-output\n");
  EXPECT_EQ(r.channels[kChannelError], R"({"metadata":{},"status":"Success"})");
}

TEST_F(StreamingWsTest, PortForwardCarriesBytesBothWays) {
  // A loopback echo server playing the pod's port.
  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(::listen(lfd, 4), 0);
  socklen_t len = sizeof(a);
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  std::thread echo([lfd] {
    int c = ::accept(lfd, nullptr, nullptr);
    char buf[4096];
    ssize_t n;
    while ((n = ::read(c, buf, sizeof(buf))) > 0) (void)::write(c, buf, static_cast<size_t>(n));
    ::close(c);
  });
  PortForwardRequest pf;
  pf.pod_sandbox_id = "pod-1";
  auto c = std::make_unique<WsClient>();
  ASSERT_FALSE(c->connect(server_->port(), strCat(path(pf), "?port=", port), "portforward.k8s.io"));
  EXPECT_EQ(c->negotiated(), "portforward.k8s.io");
  std::string big(1 << 20, 'p');
  c->send(0, big);
  Received r = c->readAll([&](const Received& got) {
    auto it = got.channels.find(0);
    return it != got.channels.end() && it->second.size() >= 2 + big.size();
  });
  std::string prefix = {static_cast<char>(port & 0xff), static_cast<char>(port >> 8)};
  EXPECT_EQ(r.channels[0], prefix + big) << "the port first, then the echoed bytes";
  EXPECT_EQ(r.channels[1], prefix);
  ::shutdown(lfd, SHUT_RDWR);
  ::close(lfd);
  c.reset();  // closes the client: the server closes the pod socket, the echo ends
  echo.join();
}

TEST_F(StreamingWsTest, RefusesReusedTokensUnknownPathsSpdyAndForeignProtocols) {
  std::string once = path(exec("true"));
  {
    WsClient c;
    ASSERT_FALSE(c.connect(server_->port(), once, "v4.channel.k8s.io"));
    c.readAll();
  }
  WsClient again;
  EXPECT_TRUE(again.connect(server_->port(), once, "v4.channel.k8s.io")) << "a token works once";
  WsClient unknown;
  EXPECT_TRUE(unknown.connect(server_->port(), "/exec/not-a-token", "v4.channel.k8s.io"));
  WsClient foreign;
  EXPECT_TRUE(foreign.connect(server_->port(), path(exec("true")), "chat.example.com"));

  // A SPDY upgrade and a plain GET get HTTP answers naming the problem.
  asio::io_context ioc;
  auto plain = [&](const std::string& target, const std::string& upgrade) {
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(server_->port())));
    http::request<http::empty_body> req{http::verb::post, target, 11};
    req.set(http::field::host, "127.0.0.1");
    if (!upgrade.empty()) {
      req.set(http::field::connection, "Upgrade");
      req.set(http::field::upgrade, upgrade);
    }
    http::write(s, req);
    beast::flat_buffer b;
    http::response<http::string_body> res;
    beast::error_code ec;
    http::read(s, b, res, ec);
    return res;
  };
  auto spdy = plain(path(exec("true")), "SPDY/3.1");
  EXPECT_EQ(spdy.result(), http::status::not_implemented);
  EXPECT_THAT(spdy.body(), HasSubstr("WebSocket"));
  EXPECT_EQ(plain("/nothing/here", "").result(), http::status::not_found);
  // Garbage instead of HTTP does not harm the server.
  {
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(server_->port())));
    asio::write(s, asio::buffer(std::string("\x16\x03\x01 garbage\r\n\r\n")));
  }
  WsClient after;
  ASSERT_FALSE(after.connect(server_->port(), path(exec("echo still-here")), "v4.channel.k8s.io"));
  EXPECT_EQ(after.readAll().channels[kChannelStdout], "still-here\n");
}

}  // namespace
}  // namespace berth::streaming
