#include "cni/link/arp.h"

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/if_ether.h>
#include <sys/socket.h>

#include <cstdio>
#include <cstring>

#include "common/unique_fd.h"

namespace berth::cni::link {

Status sendGratuitousArp(std::string_view ifname, std::string_view ipv4, std::string_view mac) {
  in_addr ip{};
  if (::inet_pton(AF_INET, std::string(ipv4).c_str(), &ip) != 1) {
    return invalidArgument("gratuitous ARP: \"", ipv4, "\" is not an IPv4 address");
  }
  unsigned char hw[6];
  if (mac.size() != 17 ||
      std::sscanf(std::string(mac).c_str(), "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &hw[0], &hw[1],
                  &hw[2], &hw[3], &hw[4], &hw[5]) != 6) {
    return invalidArgument("gratuitous ARP: \"", mac, "\" is not a MAC address");
  }
  unsigned index = ::if_nametoindex(std::string(ifname).c_str());
  if (index == 0) return lastErrnoError(strCat("gratuitous ARP: link \"", ifname, "\""));
  UniqueFd fd(::socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ARP)));
  if (!fd) return lastErrnoError("gratuitous ARP: socket(AF_PACKET)");
  ether_arp arp{};
  arp.arp_hrd = htons(ARPHRD_ETHER);
  arp.arp_pro = htons(ETH_P_IP);
  arp.arp_hln = 6;
  arp.arp_pln = 4;
  arp.arp_op = htons(ARPOP_REQUEST);
  std::memcpy(arp.arp_sha, hw, 6);
  std::memcpy(arp.arp_spa, &ip, 4);
  std::memset(arp.arp_tha, 0, 6);
  std::memcpy(arp.arp_tpa, &ip, 4);
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_protocol = htons(ETH_P_ARP);
  to.sll_ifindex = static_cast<int>(index);
  to.sll_halen = 6;
  std::memset(to.sll_addr, 0xff, 6);
  if (::sendto(fd.get(), &arp, sizeof(arp), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) < 0) {
    return lastErrnoError(strCat("gratuitous ARP on \"", ifname, "\""));
  }
  return absl::OkStatus();
}

}  // namespace berth::cni::link
