// Validation and naming shared by the nftables and iptables backends (cni/nat/). Not a
// public interface.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cni/nat/firewall.h"
#include "common/status.h"

namespace berth::cni::nat {

inline bool isV6(std::string_view ip) { return ip.find(':') != std::string_view::npos; }

// Names (network, container ID, ifname) end up inside rule comments and chain names:
// only what CNI allows them to be (letters, digits, '_', '.', '-'; 1–64 characters), so
// nothing can close a quote or inject syntax. Errors: InvalidArgument naming `what`.
Status checkName(std::string_view what, std::string_view name);
// An address or CIDR of either family. Errors: InvalidArgument.
Status checkCidr(std::string_view cidr);
// An address without prefix length. Errors: InvalidArgument.
Status checkIp(std::string_view ip);
Status checkAttachment(const Attachment& a);
// Ports 1..65535, protocol tcp/udp/sctp, addresses well formed.
Status checkPortMappingInput(const std::vector<std::string>& pod_ips,
                             const std::vector<PortMapping>& mappings);

// The comment tagging an attachment's rules: "<network>/<container id>/<ifname>".
std::string tagOf(const Attachment& a);
// The attachment of `network` whose tag is quoted in `line` (`comment "<tag>"` or
// `--comment "<tag>"`), if any.
std::optional<Attachment> attachmentInComment(std::string_view line, std::string_view network);

std::unique_ptr<Firewall> newIptablesFirewall();
StatusOr<std::unique_ptr<Firewall>> newNftablesFirewall();

}  // namespace berth::cni::nat
