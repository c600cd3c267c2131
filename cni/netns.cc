#include "cni/netns.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <linux/nsfs.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "common/unique_fd.h"

namespace berth::cni {

Status runInNetns(const std::string& netns_path, const std::function<Status()>& fn) {
  UniqueFd ns(::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns) return lastErrnoError(strCat("open network namespace ", netns_path));
  Status result;
  std::thread worker([&] {
    if (::setns(ns.get(), CLONE_NEWNET) != 0) {
      result = lastErrnoError(strCat("enter network namespace ", netns_path));
      return;
    }
    result = fn();
  });
  worker.join();
  return result;
}

StatusOr<UniqueFd> openNetns(const std::string& netns_path) {
  UniqueFd ns(::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns) return lastErrnoError(strCat("open network namespace \"", netns_path, "\""));
  int type = ::ioctl(ns.get(), NS_GET_NSTYPE);
  if (type != CLONE_NEWNET) {
    return invalidArgument("\"", netns_path, "\" is not a network namespace (",
                           type < 0 ? "not a namespace file" : "another namespace type",
                           "); pass a /proc/<pid>/ns/net path or a bind mount of one");
  }
  return ns;
}

Status setLinkUp(std::string_view ifname) {
  if (ifname.size() >= IFNAMSIZ) return invalidArgument("link name \"", ifname, "\" is too long");
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return lastErrnoError("socket(AF_INET) for link ioctl");
  ifreq req;
  std::memset(&req, 0, sizeof(req));
  std::memcpy(req.ifr_name, ifname.data(), ifname.size());
  if (::ioctl(sock.get(), SIOCGIFFLAGS, &req) != 0) {
    return lastErrnoError(strCat("get flags of link \"", ifname, "\""));
  }
  if (req.ifr_flags & IFF_UP) return Status();
  req.ifr_flags |= IFF_UP;
  if (::ioctl(sock.get(), SIOCSIFFLAGS, &req) != 0) {
    return lastErrnoError(strCat("set link \"", ifname, "\" up"));
  }
  return Status();
}

bool linkIsUp(std::string_view ifname) {
  if (ifname.size() >= IFNAMSIZ) return false;
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return false;
  ifreq req;
  std::memset(&req, 0, sizeof(req));
  std::memcpy(req.ifr_name, ifname.data(), ifname.size());
  if (::ioctl(sock.get(), SIOCGIFFLAGS, &req) != 0) return false;
  return (req.ifr_flags & IFF_UP) != 0;
}

}  // namespace berth::cni
