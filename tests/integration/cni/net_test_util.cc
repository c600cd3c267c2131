#include "tests/integration/cni/net_test_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <thread>

#include "cni/netns.h"
#include "tests/unit/cni/cni_test_util.h"

namespace berth::cni::testing::net {

// Creates a network namespace pinned by a bind mount at `path`.
Status createNetns(const std::string& path) {
  testing::writeFile(path, "");
  Status result;
  std::thread t([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      result = lastErrnoError("unshare(CLONE_NEWNET)");
      return;
    }
    if (::mount("/proc/thread-self/ns/net", path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      result = lastErrnoError("bind mount netns on " + path);
    }
  });
  t.join();
  return result;
}

void destroyNetns(const std::string& path) {
  ::umount2(path.c_str(), MNT_DETACH);
  ::unlink(path.c_str());
}

// IPv4 addresses of `ifname` in the calling thread's netns.
std::vector<std::string> ipv4Of(const std::string& ifname) {
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET || ifname != a->ifa_name) continue;
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, buf, sizeof(buf));
    out.push_back(buf);
  }
  ::freeifaddrs(list);
  return out;
}

// Link names in the calling thread's netns.
std::vector<std::string> links() {
  std::vector<std::string> out;
  struct if_nameindex* idx = ::if_nameindex();
  for (struct if_nameindex* i = idx; i != nullptr && i->if_index != 0; ++i) out.push_back(i->if_name);
  if (idx) ::if_freenameindex(idx);
  return out;
}

StatusOr<UniqueFd> listenTcp(uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return lastErrnoError("socket");
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return lastErrnoError("bind");
  }
  if (::listen(fd.get(), 4) != 0) return lastErrnoError("listen");
  return fd;
}

// Connects to ip:port (5 s timeout) and sends `message`.
Status connectAndSend(const std::string& ip, uint16_t port, const std::string& message) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return lastErrnoError("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 &&
      errno != EINPROGRESS) {
    return lastErrnoError(strCat("connect ", ip, ":", port));
  }
  pollfd p{fd.get(), POLLOUT, 0};
  if (::poll(&p, 1, 5000) != 1) return absl::DeadlineExceededError(strCat("connect ", ip, ":", port, ": timeout"));
  int err = 0;
  socklen_t len = sizeof(err);
  ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) return errnoError(err, strCat("connect ", ip, ":", port));
  if (::send(fd.get(), message.data(), message.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(message.size())) {
    return lastErrnoError("send");
  }
  return Status();
}

// Accepts one connection on `listener` (5 s timeout) and reads what it sends.
StatusOr<std::string> acceptAndRead(int listener) { return acceptAndRead(listener, nullptr); }

StatusOr<std::string> acceptAndRead(int listener, std::string* peer) {
  pollfd p{listener, POLLIN, 0};
  if (::poll(&p, 1, 5000) != 1) return absl::DeadlineExceededError("accept: timeout");
  sockaddr_in from{};
  socklen_t from_len = sizeof(from);
  UniqueFd conn(::accept4(listener, reinterpret_cast<sockaddr*>(&from), &from_len, SOCK_CLOEXEC));
  if (conn && peer != nullptr) {
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &from.sin_addr, buf, sizeof(buf));
    *peer = buf;
  }
  if (!conn) return lastErrnoError("accept");
  pollfd q{conn.get(), POLLIN, 0};
  if (::poll(&q, 1, 5000) != 1) return absl::DeadlineExceededError("read: timeout");
  char buf[256];
  ssize_t n = ::read(conn.get(), buf, sizeof(buf));
  if (n < 0) return lastErrnoError("read");
  return std::string(buf, static_cast<size_t>(n));
}

// Runs a shell command in the calling thread's netns; returns stdout, or nullopt when it
// fails.
std::optional<std::string> runShell(const std::string& cmd) {
  FILE* f = ::popen((cmd + " 2>/dev/null").c_str(), "r");
  if (f == nullptr) return std::nullopt;
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  int rc = ::pclose(f);
  if (rc != 0) return std::nullopt;
  return out;
}

StatusOr<std::string> tcpExchange(const std::string& listen_netns, uint16_t port,
                                  const std::string& from_netns, const std::string& to_ip,
                                  uint16_t to_port) {
  UniqueFd listener;
  RETURN_IF_ERROR_CTX(runInNetns(listen_netns, [&]() -> Status {
                        ASSIGN_OR_RETURN(listener, listenTcp(port));
                        return Status();
                      }),
                      strCat("listen on port ", port, " in ", listen_netns));
  const std::string message = strCat("hello to ", to_ip, ":", to_port);
  auto send = [&] { return connectAndSend(to_ip, to_port, message); };
  Status sent = from_netns.empty() ? send() : runInNetns(from_netns, send);
  RETURN_IF_ERROR_CTX(sent, strCat("send from ", from_netns.empty() ? "the node" : from_netns));
  std::string peer;
  ASSIGN_OR_RETURN(std::string got, acceptAndRead(listener.get(), &peer));
  if (got != message) return internalError("the listener read \"", got, "\", not \"", message, "\"");
  return peer;
}

bool enterPrivateMountNamespace() {
  if (::unshare(CLONE_NEWNS) != 0) return false;
  return ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
}

Status enterFreshNetns(UniqueFd& original) {
  original.reset(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!original) return lastErrnoError("open the current netns");
  if (::unshare(CLONE_NEWNET) != 0) return lastErrnoError("unshare(CLONE_NEWNET)");
  return setLinkUp("lo");
}

}  // namespace berth::cni::testing::net
