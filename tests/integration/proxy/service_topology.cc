#include "tests/integration/proxy/service_topology.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <functional>
#include <future>
#include <cstdio>
#include <cstring>

#include "common/strings.h"

namespace berth::proxy::testing {
namespace {

std::atomic<int> g_counter{0};

StatusOr<std::string> shell(const std::string& cmd) {
  std::string full = cmd + " 2>&1";
  FILE* p = ::popen(full.c_str(), "r");
  if (p == nullptr) return lastErrnoError("popen " + cmd);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int rc = ::pclose(p);
  if (rc != 0) return internalError("`", cmd, "` failed (status ", rc, "): ", out);
  return out;
}

std::string peerText(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr, buf, sizeof(buf));
  } else {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr, buf, sizeof(buf));
  }
  std::string s = buf;
  if (s.rfind("::ffff:", 0) == 0 && s.find('.') != std::string::npos) s = s.substr(7);
  return s;
}

bool fillAddr(const std::string& ip, uint16_t port, sockaddr_storage& ss, socklen_t& len) {
  ss = {};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof(*v4);
    return true;
  }
  if (inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof(*v6);
    return true;
  }
  return false;
}

StatusOr<Reply> parseReply(const std::string& text) {
  auto parts = split(std::string(trim(text)), ' ', true);
  if (parts.size() != 2) return internalError("unexpected reply \"", text, "\"");
  return Reply{parts[0], parts[1]};
}

}  // namespace

Status inNetns(const std::string& ns, const std::function<void()>& fn) {
  Status st;
  std::thread t([&] {
    UniqueFd fd(::open(ServiceTopology::path(ns).c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
      st = lastErrnoError("open netns " + ns);
      return;
    }
    if (::setns(fd.get(), CLONE_NEWNET) != 0) {
      st = lastErrnoError("setns " + ns);
      return;
    }
    fn();
  });
  t.join();
  return st;
}

StatusOr<std::string> ServiceTopology::exec(const std::string& ns, const std::string& cmd) {
  return shell("ip netns exec " + ns + " " + cmd);
}

StatusOr<std::unique_ptr<ServiceTopology>> ServiceTopology::create(int pods) {
  std::unique_ptr<ServiceTopology> t(new ServiceTopology());
  std::string base = strCat("berth-pt-", ::getpid(), "-", g_counter++);
  t->node_ = base + "-node";
  t->client_ = base + "-client";
  for (int i = 0; i < pods; ++i) t->pods_.push_back(strCat(base, "-pod", i));
  std::vector<std::string> cmds;
  cmds.push_back("ip netns add " + t->node_);
  cmds.push_back("ip netns add " + t->client_);
  for (const auto& p : t->pods_) cmds.push_back("ip netns add " + p);
  const std::string n = "ip -n " + t->node_ + " ";
  const std::string c = "ip -n " + t->client_ + " ";
  auto sys = [&](const std::string& ns, const std::string& kv) {
    return "ip netns exec " + ns + " sysctl -q -w " + kv;
  };
  for (const auto& ns : [&] {
         std::vector<std::string> all = {t->node_, t->client_};
         all.insert(all.end(), t->pods_.begin(), t->pods_.end());
         return all;
       }()) {
    // No duplicate address detection: link-local addresses usable at once.
    cmds.push_back(sys(ns, "net.ipv6.conf.default.accept_dad=0"));
    cmds.push_back(sys(ns, "net.ipv6.conf.all.accept_dad=0"));
  }
  cmds.push_back(n + "link set lo up");
  cmds.push_back(c + "link set lo up");
  cmds.push_back(sys(t->node_, "net.ipv4.ip_forward=1"));
  cmds.push_back(sys(t->node_, "net.ipv6.conf.all.forwarding=1"));
  // Tests are rejected several times a second from one client; the kernel's default
  // limit of one ICMP destination-unreachable per peer per second would swallow the
  // second reject (kube-proxy's e2e tests wait instead).
  cmds.push_back(sys(t->node_, "net.ipv4.icmp_ratelimit=0"));
  cmds.push_back(sys(t->node_, "net.ipv6.icmp.ratelimit=0"));
  cmds.push_back(n + "link add ext0 type veth peer name eth0 netns " + t->client_);
  cmds.push_back(n + "addr add 192.168.77.1/24 dev ext0");
  cmds.push_back(n + "addr add 2001:db8:77::1/64 dev ext0 nodad");
  cmds.push_back(n + "link set ext0 up");
  cmds.push_back(c + "addr add 192.168.77.2/24 dev eth0");
  cmds.push_back(c + "addr add 2001:db8:77::2/64 dev eth0 nodad");
  cmds.push_back(c + "link set eth0 up");
  cmds.push_back(c + "route add default via 192.168.77.1");
  // The node's default route points at the outside network, as on a real node (so
  // traffic to an unprogrammed Service IP is routed, not refused by a missing route).
  cmds.push_back(n + "route add default via 192.168.77.2");
  cmds.push_back(n + "-6 route add default via 2001:db8:77::2");
  cmds.push_back(c + "-6 route add default via 2001:db8:77::1");
  for (int i = 0; i < pods; ++i) {
    const std::string& pod = t->pods_[i];
    const std::string p = "ip -n " + pod + " ";
    std::string veth = strCat("pveth", i);
    cmds.push_back(p + "link set lo up");
    cmds.push_back(n + "link add " + veth + " type veth peer name eth0 netns " + pod);
    cmds.push_back(n + "addr add 10.244.0.1/32 dev " + veth);
    cmds.push_back(n + "addr add fd00:244::1/128 dev " + veth + " nodad");
    cmds.push_back(n + "link set " + veth + " up");
    cmds.push_back(sys(t->node_, strCat("net.ipv4.conf.", veth, ".proxy_arp=1")));
    cmds.push_back(n + "route add " + t->podIp(i) + "/32 dev " + veth);
    cmds.push_back(n + "-6 route add " + t->podIp6(i) + "/128 dev " + veth);
    cmds.push_back(p + "addr add " + t->podIp(i) + "/24 dev eth0");
    cmds.push_back(p + "addr add " + t->podIp6(i) + "/128 dev eth0 nodad");  // no proxy ARP in IPv6: other pods are off-link
    cmds.push_back(p + "link set eth0 up");
    cmds.push_back(p + "route add 10.244.0.1 dev eth0");
    cmds.push_back(p + "route replace default via 10.244.0.1 dev eth0");
    cmds.push_back(p + "-6 route add fd00:244::1 dev eth0");
    cmds.push_back(p + "-6 route add default via fd00:244::1 dev eth0");
  }
  for (const auto& cmd : cmds) {
    auto r = shell(cmd);
    if (!r.ok()) return withContext(r.status(), "make the service test topology");
  }
  return t;
}

struct ServiceTopology::Server {
  std::string ns;
  std::string name;
  uint16_t port = 0;
  UniqueFd stop;
  std::thread thread;
  ~Server() {
    uint64_t one = 1;
    if (stop) (void)!::write(stop.get(), &one, sizeof(one));
    if (thread.joinable()) thread.join();
  }
};

Status ServiceTopology::startEchoServers(uint16_t port) {
  for (const auto& s : servers_) {
    if (s->port == port) return absl::OkStatus();
  }
  for (int i = 0; i < podCount(); ++i) {
    auto server = std::make_unique<Server>();
    server->ns = pods_[i];
    server->name = podName(i);
    server->port = port;
    server->stop = UniqueFd(::eventfd(0, EFD_CLOEXEC));
    std::promise<Status> ready;
    auto ready_future = ready.get_future();
    Server* s = server.get();
    server->thread = std::thread([s, &ready] {
      UniqueFd nsfd(::open(path(s->ns).c_str(), O_RDONLY | O_CLOEXEC));
      if (!nsfd || ::setns(nsfd.get(), CLONE_NEWNET) != 0) {
        ready.set_value(lastErrnoError("enter " + s->ns));
        return;
      }
      auto bind6 = [&](int type) -> UniqueFd {
        UniqueFd fd(::socket(AF_INET6, type | SOCK_CLOEXEC, 0));
        int zero = 0, one = 1;
        ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
        ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        sockaddr_in6 a{};
        a.sin6_family = AF_INET6;
        a.sin6_port = htons(s->port);
        a.sin6_addr = in6addr_any;
        if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return UniqueFd();
        if (type == SOCK_STREAM && ::listen(fd.get(), 128) != 0) return UniqueFd();
        return fd;
      };
      UniqueFd tcp = bind6(SOCK_STREAM), udp = bind6(SOCK_DGRAM);
      if (!tcp || !udp) {
        ready.set_value(lastErrnoError(strCat("echo server in ", s->ns, " on port ", s->port)));
        return;
      }
      ready.set_value(absl::OkStatus());
      for (;;) {
        pollfd fds[3] = {{s->stop.get(), POLLIN, 0}, {tcp.get(), POLLIN, 0}, {udp.get(), POLLIN, 0}};
        if (::poll(fds, 3, -1) < 0) {
          if (errno == EINTR) continue;
          return;
        }
        if (fds[0].revents != 0) return;
        if (fds[1].revents & POLLIN) {
          sockaddr_storage peer{};
          socklen_t len = sizeof(peer);
          UniqueFd conn(::accept4(tcp.get(), reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC));
          if (conn) {
            char buf[256];
            pollfd pf{conn.get(), POLLIN, 0};
            if (::poll(&pf, 1, 2000) > 0) (void)!::read(conn.get(), buf, sizeof(buf));
            std::string reply = s->name + " " + peerText(peer) + "\n";
            (void)!::write(conn.get(), reply.data(), reply.size());
          }
        }
        if (fds[2].revents & POLLIN) {
          sockaddr_storage peer{};
          socklen_t len = sizeof(peer);
          char buf[256];
          ssize_t got = ::recvfrom(udp.get(), buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&peer), &len);
          if (got >= 0) {
            std::string reply = s->name + " " + peerText(peer) + "\n";
            ::sendto(udp.get(), reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&peer), len);
          }
        }
      }
    });
    Status st = ready_future.get();
    servers_.push_back(std::move(server));
    RETURN_IF_ERROR(st);
  }
  return absl::OkStatus();
}

ServiceTopology::~ServiceTopology() {
  servers_.clear();
  for (const auto& p : pods_) (void)shell("ip netns del " + p);
  (void)shell("ip netns del " + client_);
  (void)shell("ip netns del " + node_);
}

StatusOr<Reply> tcpAsk(const std::string& ns, const std::string& ip, uint16_t port, int timeout_ms) {
  StatusOr<Reply> out = internalError("not run");
  Status entered = inNetns(ns, [&] {
    sockaddr_storage ss;
    socklen_t len;
    if (!fillAddr(ip, port, ss, len)) {
      out = invalidArgument("bad ip ", ip);
      return;
    }
    UniqueFd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    std::string what = strCat("tcp ", ip, ":", port, " from ", ns);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS) {
      out = lastErrnoError(what);
      return;
    }
    pollfd pf{fd.get(), POLLOUT, 0};
    if (::poll(&pf, 1, timeout_ms) == 0) {
      out = absl::DeadlineExceededError(what + ": no answer (timeout)");
      return;
    }
    int err = 0;
    socklen_t el = sizeof(err);
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &el);
    if (err == ECONNREFUSED) {
      out = absl::UnavailableError(what + ": connection refused");
      return;
    }
    if (err != 0) {
      out = errnoError(err, what);
      return;
    }
    (void)!::write(fd.get(), "hi\n", 3);
    std::string reply;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (reply.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd rp{fd.get(), POLLIN, 0};
      if (::poll(&rp, 1, 100) <= 0) continue;
      char buf[256];
      ssize_t n = ::read(fd.get(), buf, sizeof(buf));
      if (n <= 0) break;
      reply.append(buf, static_cast<size_t>(n));
    }
    if (reply.empty()) {
      out = absl::DeadlineExceededError(what + ": connected but no reply");
      return;
    }
    out = parseReply(reply);
  });
  if (!entered.ok()) return entered;
  return out;
}

StatusOr<Reply> udpAsk(const std::string& ns, const std::string& ip, uint16_t port, int timeout_ms,
                       uint16_t src_port) {
  StatusOr<Reply> out = internalError("not run");
  Status entered = inNetns(ns, [&] {
    sockaddr_storage ss;
    socklen_t len;
    if (!fillAddr(ip, port, ss, len)) {
      out = invalidArgument("bad ip ", ip);
      return;
    }
    std::string what = strCat("udp ", ip, ":", port, " from ", ns);
    UniqueFd fd(::socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (src_port != 0) {
      int one = 1;
      ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
      sockaddr_storage local{};
      local.ss_family = ss.ss_family;
      if (ss.ss_family == AF_INET) {
        reinterpret_cast<sockaddr_in*>(&local)->sin_port = htons(src_port);
      } else {
        reinterpret_cast<sockaddr_in6*>(&local)->sin6_port = htons(src_port);
      }
      if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&local), len) != 0) {
        out = lastErrnoError(what + ": bind source port");
        return;
      }
    }
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
      out = lastErrnoError(what);
      return;
    }
    (void)!::send(fd.get(), "hi\n", 3, 0);
    pollfd pf{fd.get(), POLLIN, 0};
    if (::poll(&pf, 1, timeout_ms) == 0) {
      out = absl::DeadlineExceededError(what + ": no answer (timeout)");
      return;
    }
    char buf[256];
    ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
    if (n < 0) {
      out = errno == ECONNREFUSED ? absl::UnavailableError(what + ": port unreachable")
                                  : lastErrnoError(what);
      return;
    }
    out = parseReply(std::string(buf, static_cast<size_t>(n)));
  });
  if (!entered.ok()) return entered;
  return out;
}

}  // namespace berth::proxy::testing
