#include "cri/streaming/server.h"

#include <sys/ioctl.h>
#include <termios.h>

#include <deque>
#include <utility>  // before Boost 1.74 asio (awaitable.hpp uses std::exchange)
#include <map>
#include <mutex>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "common/log.h"
#include "common/strings.h"
#include "cri/streaming/remotecommand.h"
#include "cri/streaming/ws_handlers.h"

namespace berth::streaming {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

std::shared_ptr<spdlog::logger> logger() { return log::get("streaming"); }

// Splits "/exec/<token>?a=b" into kind, token and the query's `port` values.
struct Target {
  std::string kind, token;
  std::vector<std::string> ports;
};

Target parseTarget(std::string_view target) {
  Target t;
  std::string_view path = target, query;
  if (size_t q = target.find('?'); q != std::string_view::npos) {
    path = target.substr(0, q);
    query = target.substr(q + 1);
  }
  std::vector<std::string> parts = split(std::string(path), '/', true);
  if (parts.size() == 2) {
    t.kind = parts[0];
    t.token = parts[1];
  }
  for (const std::string& kv : split(std::string(query), '&', true)) {
    if (kv.rfind("port=", 0) == 0) t.ports.push_back(kv.substr(5));
  }
  return t;
}

http::response<http::string_body> plainResponse(http::status status, unsigned version, std::string body) {
  http::response<http::string_body> res{status, version};
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.keep_alive(false);
  res.body() = std::move(body) + "\n";
  res.prepare_payload();
  return res;
}

}  // namespace

struct StreamingServer::Impl {
  ServerOptions options;
  StreamingRuntime* runtime = nullptr;
  RequestCache cache;
  asio::io_context accept_ctx;
  tcp::acceptor acceptor{accept_ctx};
  std::thread accept_thread;
  std::atomic<bool> stopping{false};
  std::mutex mu;
  std::map<uint64_t, asio::io_context*> live;  // connection contexts, guarded by mu
  std::map<uint64_t, std::thread> threads;     // guarded by mu
  std::vector<uint64_t> finished;              // threads to join, guarded by mu
  uint64_t next_id = 1;

  Impl(const ServerOptions& o, StreamingRuntime* r)
      : options(o), runtime(r), cache(o.token_ttl, o.max_in_flight_tokens) {}

  void acceptLoop();
  void serve(uint64_t id, asio::io_context& ctx, tcp::socket socket);
  void reapFinished();
};

void StreamingServer::Impl::reapFinished() {
  std::vector<std::thread> done;
  {
    std::lock_guard<std::mutex> lock(mu);
    for (uint64_t id : finished) {
      auto it = threads.find(id);
      if (it != threads.end()) {
        done.push_back(std::move(it->second));
        threads.erase(it);
      }
    }
    finished.clear();
  }
  for (auto& t : done) t.join();
}

void StreamingServer::Impl::acceptLoop() {
  while (!stopping) {
    auto ctx = std::make_unique<asio::io_context>(1);
    beast::error_code ec;
    tcp::socket socket(*ctx);
    acceptor.accept(socket, ec);
    if (stopping) break;
    if (ec) {
      logger()->warn("streaming server: accept failed: {}", ec.message());
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    reapFinished();
    std::lock_guard<std::mutex> lock(mu);
    uint64_t id = next_id++;
    asio::io_context* raw = ctx.get();
    live[id] = raw;
    threads[id] = std::thread([this, id, c = std::move(ctx), s = std::move(socket)]() mutable {
      serve(id, *c, std::move(s));
      std::lock_guard<std::mutex> l(mu);
      live.erase(id);
      finished.push_back(id);
    });
  }
}

void StreamingServer::Impl::serve(uint64_t, asio::io_context& ctx, tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  http::request_parser<http::empty_body> parser;
  parser.header_limit(64 * 1024);
  stream.expires_after(std::chrono::seconds(30));
  beast::error_code ec;
  http::read(stream, buffer, parser, ec);
  if (ec) return;  // not HTTP, or too slow: nothing to answer
  http::request<http::empty_body> req = parser.release();
  auto reply = [&](http::status st, std::string body) {
    auto res = plainResponse(st, req.version(), std::move(body));
    beast::error_code wec;
    http::write(stream, res, wec);
    stream.socket().shutdown(tcp::socket::shutdown_send, wec);
  };
  Target target = parseTarget(std::string(req.target()));
  if (req.method() != http::verb::get && req.method() != http::verb::post) {
    return reply(http::status::method_not_allowed, "streaming endpoints take GET or POST");
  }
  if (target.kind != "exec" && target.kind != "attach" && target.kind != "portforward") {
    return reply(http::status::not_found, "no such streaming endpoint (want /exec/, /attach/ or /portforward/<token>)");
  }
  auto request = cache.consume(target.token);
  if (!request.ok()) return reply(http::status::not_found, std::string(request.status().message()));
  bool kind_ok = (target.kind == "exec" && std::holds_alternative<ExecRequest>(*request)) ||
                 (target.kind == "attach" && std::holds_alternative<AttachRequest>(*request)) ||
                 (target.kind == "portforward" && std::holds_alternative<PortForwardRequest>(*request));
  if (!kind_ok) return reply(http::status::not_found, "the token is not for this endpoint");

  if (!websocket::is_upgrade(req)) {
    std::string upgrade(req[http::field::upgrade]);
    if (upgrade.find("SPDY") != std::string::npos) {
      return reply(http::status::not_implemented,
                   "SPDY/3.1 streaming is not served yet by berthd; use a WebSocket client "
                   "(v5.channel.k8s.io / v4.channel.k8s.io, or portforward.k8s.io)");
    }
    return reply(http::status::bad_request, "streaming needs a connection upgrade (WebSocket)");
  }
  std::vector<std::string_view> supported =
      target.kind == "portforward"
          ? std::vector<std::string_view>{kPortForwardProtocol, kStreamProtocolV1}
          : std::vector<std::string_view>{kStreamProtocolV5, kStreamProtocolV4, kStreamProtocolV1};
  std::string offered(req[http::field::sec_websocket_protocol]);
  std::optional<std::string> protocol = chooseProtocol(offered, supported);
  if (!protocol && !offered.empty()) {
    return reply(http::status::bad_request,
                 strCat("none of the offered subprotocols (", offered, ") is supported; supported: ",
                        joinStrings(std::vector<std::string>(supported.begin(), supported.end()), ", ")));
  }
  stream.expires_never();
  auto ws = std::make_shared<websocket::stream<beast::tcp_stream>>(std::move(stream));
  ws->set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
  std::string chosen = protocol.value_or("");
  ws->set_option(websocket::stream_base::decorator([chosen](websocket::response_type& res) {
    res.set(http::field::server, "berthd");
    if (!chosen.empty()) res.set(http::field::sec_websocket_protocol, chosen);
  }));
  ws->accept(req, ec);
  if (ec) {
    logger()->debug("streaming: WebSocket handshake failed: {}", ec.message());
    return;
  }
  ws->binary(true);
  WsOptions wo;
  wo.protocol = chosen;
  if (auto* e = std::get_if<ExecRequest>(&*request)) {
    runWsExec(ctx, ws, *runtime, *e, wo);
  } else if (auto* a = std::get_if<AttachRequest>(&*request)) {
    runWsAttach(ctx, ws, *runtime, *a, wo);
  } else {
    auto& pf = std::get<PortForwardRequest>(*request);
    std::vector<int32_t> ports;
    for (const std::string& p : target.ports) {
      char* end = nullptr;
      long v = std::strtol(p.c_str(), &end, 10);
      if (end == p.c_str() || *end != '\0' || v < 1 || v > 65535) {
        beast::error_code cec;
        ws->close(websocket::close_reason(websocket::close_code::policy_error, "bad port " + p), cec);
        return;
      }
      ports.push_back(static_cast<int32_t>(v));
    }
    if (ports.empty()) ports = pf.ports;
    runWsPortForward(ctx, ws, *runtime, pf.pod_sandbox_id, ports);
  }
  ctx.run();
}

StatusOr<std::unique_ptr<StreamingServer>> StreamingServer::start(const ServerOptions& options,
                                                                  StreamingRuntime* runtime) {
  std::unique_ptr<StreamingServer> s(new StreamingServer());
  s->impl_ = std::make_unique<Impl>(options, runtime);
  beast::error_code ec;
  auto address = asio::ip::make_address(options.address, ec);
  if (ec) {
    return invalidArgument("stream-address \"", options.address, "\" is not an IP address literal");
  }
  if (options.port < 0 || options.port > 65535) return invalidArgument("stream-port ", options.port, " is out of range");
  tcp::endpoint endpoint(address, static_cast<uint16_t>(options.port));
  auto& acc = s->impl_->acceptor;
  acc.open(endpoint.protocol(), ec);
  if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(endpoint, ec);
  if (!ec) acc.listen(128, ec);
  if (ec) {
    return absl::UnavailableError(strCat("streaming server: listen on ", options.address, ":", options.port, ": ",
                                         ec.message(), " (choose another stream-port)"));
  }
  s->port_ = acc.local_endpoint().port();
  s->address_ = options.address;
  Impl* impl = s->impl_.get();
  impl->accept_thread = std::thread([impl] { impl->acceptLoop(); });
  return s;
}

StreamingServer::~StreamingServer() {
  if (!impl_) return;
  impl_->stopping = true;
  beast::error_code ec;
  impl_->acceptor.cancel(ec);
  ::shutdown(impl_->acceptor.native_handle(), SHUT_RDWR);
  if (impl_->accept_thread.joinable()) impl_->accept_thread.join();
  std::map<uint64_t, std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    for (auto& [_, ctx] : impl_->live) ctx->stop();
    threads = std::move(impl_->threads);
  }
  for (auto& [_, t] : threads) {
    if (t.joinable()) t.join();
  }
}

StatusOr<std::string> StreamingServer::url(const StreamRequest& request) {
  std::string kind;
  if (auto* e = std::get_if<ExecRequest>(&request)) {
    if (!e->stdin && !e->stdout && !e->stderr) {
      return invalidArgument("exec: one of stdin, stdout or stderr must be true");
    }
    if (e->cmd.empty()) return invalidArgument("exec: cmd must name the command to run");
    kind = "exec";
  } else if (auto* a = std::get_if<AttachRequest>(&request)) {
    if (!a->stdin && !a->stdout && !a->stderr) {
      return invalidArgument("attach: one of stdin, stdout or stderr must be true");
    }
    kind = "attach";
  } else {
    kind = "portforward";
  }
  ASSIGN_OR_RETURN(std::string token, impl_->cache.insert(request));
  std::string host = address_.find(':') != std::string::npos ? strCat("[", address_, "]") : address_;
  return strCat("http://", host, ":", port_, "/", kind, "/", token);
}

}  // namespace berth::streaming
