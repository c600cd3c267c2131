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
// The canonical form of an address or CIDR: host bits cleared, address as inet_ntop(3)
// prints it, always with a prefix length ("10.244.0.7/24" -> "10.244.0.0/24",
// "fd44:0::1" -> "fd44::1/128"). Errors: InvalidArgument.
StatusOr<std::string> canonicalCidr(std::string_view cidr);
// Canonical forms of `cidrs` of one family (`v6`), in order, without duplicates.
// Errors: InvalidArgument for the first malformed one.
StatusOr<std::vector<std::string>> canonicalCidrs(const std::vector<std::string>& cidrs, bool v6);
// An address without prefix length. Errors: InvalidArgument.
Status checkIp(std::string_view ip);
// True if `token` occurs in `text` as a whole word: not preceded or followed by a
// character of an address or CIDR (hex digit, '.', ':', '/'), so "0.244.0.0/24" is not
// found inside "10.244.0.0/24".
bool containsToken(std::string_view text, std::string_view token);
// A short stable fingerprint (16 hex digits, FNV-1a 64) of `text`, used to recognise a
// rule set written from the same input without parsing it back.
std::string fingerprint(std::string_view text);
// The longest rule tag: nftables keeps comments up to 128 bytes including the NUL.
constexpr size_t kMaxTagLength = 127;
// The three names of `a`, and their tag no longer than kMaxTagLength.
Status checkAttachment(const Attachment& a);
// Ports 1..65535, protocol tcp/udp/sctp, addresses well formed.
Status checkPortMappingInput(const std::vector<std::string>& pod_ips,
                             const std::vector<PortMapping>& mappings);

// The comment tagging an attachment's rules: "<network>/<container id>/<ifname>".
std::string tagOf(const Attachment& a);
// The attachment of `network` whose tag is quoted in `line` (`comment "<tag>"` or
// `--comment "<tag>"`), if any.
std::optional<Attachment> attachmentInComment(std::string_view line, std::string_view network);

// The iptables backend (cni/nat/iptables_firewall.cc).
std::unique_ptr<Firewall> newIptablesFirewall();

// The iptables backend's read-modify-write lock file for the calling thread's network
// namespace: /run/lock/berth-cni-iptables-<netns inode>.lock.
std::string iptablesLockPath();
// True if iptables-restore is an executable in PATH.
bool iptablesAvailable();
// The nftables backend (cni/nat/nftables_firewall.cc). With `probe`, one read checks that
// nf_tables can be used in the calling thread's netns. Errors: Unavailable.
StatusOr<std::unique_ptr<Firewall>> newNftablesFirewall(bool probe = false);

}  // namespace berth::cni::nat
