#include "common/http_endpoint.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/unique_fd.h"

namespace berth::http {
namespace {

MHD_Result answer(void* cls, MHD_Connection* connection, const char* url, const char* method,
                  const char* /*version*/, const char* /*upload_data*/, size_t* upload_data_size,
                  void** con_cls) {
  // The first call for a request only announces it; a body (never expected) would
  // arrive in later calls and is discarded.
  if (*con_cls == nullptr) {
    static int marker;
    *con_cls = &marker;
    return MHD_YES;
  }
  if (*upload_data_size != 0) {
    *upload_data_size = 0;
    return MHD_YES;
  }
  const auto& handler = *static_cast<const Endpoint::Handler*>(cls);
  Request req{method != nullptr ? method : "", url != nullptr ? url : ""};
  Response resp;
  try {
    resp = handler(req);
  } catch (const std::exception& e) {
    resp = Response{500, "text/plain; charset=utf-8", strCat("internal error: ", e.what(), "\n"), {}};
  }
  MHD_Response* r = MHD_create_response_from_buffer(resp.body.size(), resp.body.data(),
                                                    MHD_RESPMEM_MUST_COPY);
  if (r == nullptr) return MHD_NO;
  MHD_add_response_header(r, "Content-Type", resp.content_type.c_str());
  for (const auto& [name, value] : resp.headers) {
    MHD_add_response_header(r, name.c_str(), value.c_str());
  }
  MHD_Result rc = MHD_queue_response(connection, static_cast<unsigned>(resp.status), r);
  MHD_destroy_response(r);
  return rc;
}

}  // namespace

struct Endpoint::Impl {
  Handler handler;
  MHD_Daemon* daemon = nullptr;
  ~Impl() {
    if (daemon != nullptr) MHD_stop_daemon(daemon);  // joins the thread, closes the socket
  }
};

Status splitHostPort(const std::string& address, std::string& host, uint16_t& port) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return invalidArgument("address \"", address, "\" must be HOST:PORT, [V6]:PORT or :PORT");
  }
  host = address.substr(0, colon);
  std::string port_text = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  char* end = nullptr;
  errno = 0;
  long value = port_text.empty() ? -1 : std::strtol(port_text.c_str(), &end, 10);
  if (value < 0 || value > 65535 || errno != 0 || (end != nullptr && *end != '\0')) {
    return invalidArgument("address \"", address, "\": port \"", port_text,
                           "\" must be a number from 0 to 65535");
  }
  port = static_cast<uint16_t>(value);
  unsigned char buf[16];
  if (!host.empty() && inet_pton(AF_INET, host.c_str(), buf) != 1 &&
      inet_pton(AF_INET6, host.c_str(), buf) != 1) {
    return invalidArgument("address \"", address, "\": host \"", host,
                           "\" must be an IP address (or empty for every address)");
  }
  return absl::OkStatus();
}

StatusOr<std::unique_ptr<Endpoint>> Endpoint::start(const std::string& what,
                                                    const std::string& address, Handler handler) {
  std::string host;
  uint16_t port = 0;
  RETURN_IF_ERROR_CTX(splitHostPort(address, host, port), what);

  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_INET6;
  in_addr v4{};
  if (!host.empty() && inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sin->sin_addr = v4;
    len = sizeof(*sin);
    family = AF_INET;
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    if (host.empty()) {
      sin6->sin6_addr = in6addr_any;
    } else {
      inet_pton(AF_INET6, host.c_str(), &sin6->sin6_addr);
    }
    len = sizeof(*sin6);
  }
  UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return lastErrnoError(strCat(what, ": socket for ", address));
  int one = 1, zero = 0;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (family == AF_INET6) {
    // "" means every address of both families; a v6 literal means only that one.
    int v6only = host.empty() ? 0 : 1;
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, host.empty() ? &zero : &v6only, sizeof(int));
  }
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    Status st = lastErrnoError(strCat(what, ": bind ", address));
    return absl::UnavailableError(strCat(st.message(), "; choose another address or port"));
  }
  if (::listen(fd.get(), 64) != 0) return lastErrnoError(strCat(what, ": listen on ", address));
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof(bound);
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &bound_len);
  uint16_t bound_port = bound.ss_family == AF_INET
                            ? ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port)
                            : ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);

  std::unique_ptr<Endpoint> ep(new Endpoint());
  ep->impl_ = std::make_unique<Impl>();
  ep->impl_->handler = std::move(handler);
  int listen_fd = fd.release();
  ep->impl_->daemon = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, nullptr, nullptr, &answer,
      &ep->impl_->handler, MHD_OPTION_LISTEN_SOCKET, listen_fd, MHD_OPTION_CONNECTION_TIMEOUT,
      static_cast<unsigned>(30), MHD_OPTION_END);
  if (ep->impl_->daemon == nullptr) {
    ::close(listen_fd);
    return internalError(what, ": start the HTTP server on ", address);
  }
  ep->port_ = bound_port;
  ep->address_ = address;
  return ep;
}

Endpoint::~Endpoint() = default;

}  // namespace berth::http
