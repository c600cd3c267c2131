// The nftables backend of cni/nat/firewall.h, through libnftables' command interface
// (common/nftables.h; each call one atomic batch).
#include <arpa/inet.h>

#include <cctype>
#include <map>

#include "cni/nat/firewall.h"
#include "cni/nat/firewall_internal.h"
#include "common/nftables.h"

namespace berth::cni::nat {
namespace {

constexpr char kTable[] = "inet berth-cni";

std::string masqChain(std::string_view network) { return strCat("masq-", network); }

std::string setOf(const std::vector<std::string>& items) {
  return strCat("{ ", joinStrings(items, ", "), " }");
}

// The base chains and jumps of the hostPort machinery, written when a listing of the
// table lacks them (once per node netns, or after someone flushed them). prerouting and
// output hold only the jump and are flushed first, so two plugins racing here still
// leave one jump each; hostports and hostport-masq are never flushed.
std::string hostPortSkeleton() {
  return strCat(
      "add table ", kTable, "\n",
      "add chain ", kTable, " hostports\n",
      "add chain ", kTable, " prerouting { type nat hook prerouting priority dstnat; }\n",
      "flush chain ", kTable, " prerouting\n",
      "add rule ", kTable, " prerouting fib daddr type local jump hostports\n",
      "add chain ", kTable, " output { type nat hook output priority -100; }\n",
      "flush chain ", kTable, " output\n",
      "add rule ", kTable, " output fib daddr type local jump hostports\n",
      "add chain ", kTable, " hostport-masq { type nat hook postrouting priority srcnat; }\n");
}

// True if a listing of our table has the hostPort base chains and their two jumps.
bool hasHostPortSkeleton(const std::string& table) {
  size_t jumps = 0;
  for (size_t at = table.find("jump hostports"); at != std::string::npos;
       at = table.find("jump hostports", at + 1)) {
    ++jumps;
  }
  return jumps == 2 && table.find("chain hostport-masq {") != std::string::npos;
}

// One hint for every error that says nf_tables cannot be used here.
std::string withBackendHint(std::string err) {
  if (err.find("not supported") != std::string::npos || err.find("Operation not permitted") != std::string::npos) {
    err += "; nf_tables looks unavailable here: set \"ipMasqBackend\": \"iptables\" to use iptables";
  }
  return err;
}

class NftablesFirewall : public Firewall {
 public:
  explicit NftablesFirewall(nft::Context ctx) : ctx_(std::move(ctx)) {}

  Backend backend() const override { return Backend::kNftables; }

  // Runs `cmds` as one batch. Errors: Internal with `what`, nft's message and the
  // failing line.
  Status run(const std::string& cmds, std::string_view what) {
    Status status = ctx_.run(cmds, what);
    if (status.ok()) return status;
    return absl::InternalError(withBackendHint(std::string(status.message())));
  }

  // The text listing (with handles) of `object`, "" when it does not exist.
  StatusOr<std::string> list(const std::string& object) {
    StatusOr<std::string> text = ctx_.list(strCat("list ", object));
    if (absl::IsNotFound(text.status())) return std::string();
    if (!text.ok()) return absl::InternalError(withBackendHint(std::string(text.status().message())));
    return text;
  }

  Status ensureMasquerade(std::string_view network, const std::vector<std::string>& subnets,
                          const std::vector<std::string>& keep) override {
    RETURN_IF_ERROR(checkName("network name", network));
    std::string what = strCat("masquerade rules of network \"", network, "\"");
    ASSIGN_OR_RETURN(std::vector<std::string> v4, withContext(canonicalCidrs(subnets, false), what));
    ASSIGN_OR_RETURN(std::vector<std::string> v6, withContext(canonicalCidrs(subnets, true), what));
    ASSIGN_OR_RETURN(std::vector<std::string> keep4, withContext(canonicalCidrs(keep, false), what));
    ASSIGN_OR_RETURN(std::vector<std::string> keep6, withContext(canonicalCidrs(keep, true), what));
    if (v4.empty() && v6.empty()) return invalidArgument(what, ": no pod subnet given");
    std::vector<std::string> rules;
    if (!v4.empty()) {
      rules.push_back(strCat("ip saddr ", setOf(v4), " ip daddr != ", setOf(v4),
                             keep4.empty() ? "" : strCat(" ip daddr != ", setOf(keep4)),
                             " ip daddr != 224.0.0.0/4 masquerade"));
    }
    if (!v6.empty()) {
      rules.push_back(strCat("ip6 saddr ", setOf(v6), " ip6 daddr != ", setOf(v6),
                             keep6.empty() ? "" : strCat(" ip6 daddr != ", setOf(keep6)),
                             " ip6 daddr != ff00::/8 masquerade"));
    }
    // Each rule carries a fingerprint of the whole wanted rule set, so a read tells
    // whether the chain holds exactly what this call would write.
    std::string tag = strCat("comment \"berth-cni ", fingerprint(joinStrings(rules, "\n")), "\"");
    std::string chain = strCat(kTable, " ", masqChain(network));
    // Read first: committing any nftables batch makes the socket's close wait for an RCU
    // grace period (~10 ms), while listing costs ~0.1 ms; in steady state every ADD of
    // the network finds its rules in place and writes nothing.
    ASSIGN_OR_RETURN(std::string current, list(strCat("chain ", chain)));
    size_t masq = 0, ours = 0;
    for (const std::string& line : split(current, '\n')) {
      if (line.find("masquerade") == std::string::npos) continue;
      ++masq;
      if (line.find(tag) != std::string::npos) ++ours;
    }
    if (masq == rules.size() && ours == rules.size()) return absl::OkStatus();
    std::string cmds = strCat("add table ", kTable, "\n",
                              "add chain ", chain, " { type nat hook postrouting priority srcnat; }\n",
                              "flush chain ", chain, "\n");
    for (const std::string& r : rules) cmds += strCat("add rule ", chain, " ", r, " ", tag, "\n");
    return run(cmds, what);
  }

  Status removeMasquerade(std::string_view network) override {
    RETURN_IF_ERROR(checkName("network name", network));
    ASSIGN_OR_RETURN(std::string text, list(strCat("chain ", kTable, " ", masqChain(network))));
    if (text.empty()) return absl::OkStatus();
    return run(strCat("delete chain ", kTable, " ", masqChain(network), "\n"),
               strCat("remove masquerade rules of network \"", network, "\""));
  }

  Status checkMasquerade(std::string_view network, const std::vector<std::string>& subnets) override {
    RETURN_IF_ERROR(checkName("network name", network));
    std::string what = strCat("masquerade rules of network \"", network, "\"");
    ASSIGN_OR_RETURN(std::string text, list(strCat("chain ", kTable, " ", masqChain(network))));
    std::vector<std::string> masq;
    for (const std::string& line : split(text, '\n')) {
      if (line.find("masquerade") != std::string::npos) masq.push_back(line);
    }
    if (masq.empty()) {
      return failedPrecondition(what, " are missing (nftables chain ", masqChain(network), " in table ",
                                kTable, "); the next ADD on this network writes them again");
    }
    for (const std::string& s : subnets) {
      ASSIGN_OR_RETURN(std::string canon, withContext(canonicalCidr(s), what));
      bool v6 = isV6(canon);
      // nft prints a full-length prefix as a plain address.
      std::string token = canon;
      if (canon.ends_with(v6 ? "/128" : "/32")) token = canon.substr(0, canon.find('/'));
      std::string saddr = v6 ? "ip6 saddr " : "ip saddr ";
      bool found = false;
      for (const std::string& line : masq) {
        size_t from = line.find(saddr);
        if (from == std::string::npos) continue;
        size_t to = line.find(" daddr", from);
        found = found || containsToken(std::string_view(line).substr(from, to - from), token);
      }
      if (!found) {
        return failedPrecondition(what, " do not cover ", s, " (nftables chain ", masqChain(network),
                                  " in table ", kTable, ")");
      }
    }
    return absl::OkStatus();
  }

  // Chain and handle of each rule tagged `tag` in `text`, a listing of our table with
  // handles.
  static std::vector<std::pair<std::string, std::string>> rulesOf(const std::string& text,
                                                                  const std::string& tag) {
    std::vector<std::pair<std::string, std::string>> out;  // chain, handle
    std::string chain;
    std::string needle = strCat("comment \"", tag, "\"");
    for (const std::string& raw : split(text, '\n')) {
      std::string_view line = trim(raw);
      if (line.rfind("chain ", 0) == 0) {
        chain = std::string(line.substr(6, line.find(' ', 6) - 6));
        continue;
      }
      if (line.find(needle) == std::string_view::npos) continue;
      size_t h = line.rfind("# handle ");
      if (h == std::string_view::npos) continue;
      out.emplace_back(chain, std::string(line.substr(h + 9)));
    }
    return out;
  }

  Status addPortMappings(const Attachment& a, const std::vector<std::string>& pod_ips,
                         const std::vector<PortMapping>& mappings) override {
    RETURN_IF_ERROR(checkAttachment(a));
    RETURN_IF_ERROR(checkPortMappingInput(pod_ips, mappings));
    std::string tag = tagOf(a);
    ASSIGN_OR_RETURN(std::string table, list(strCat("table ", kTable)));
    std::string cmds = hasHostPortSkeleton(table) ? "" : hostPortSkeleton();
    auto existing = rulesOf(table, tag);
    for (const auto& [chain, handle] : existing) {
      cmds += strCat("delete rule ", kTable, " ", chain, " handle ", handle, "\n");
    }
    for (const PortMapping& m : mappings) {
      for (const std::string& ip : pod_ips) {
        bool v6 = isV6(ip);
        if (!m.host_ip.empty() && isV6(m.host_ip) != v6) continue;
        const char* fam = v6 ? "ip6" : "ip";
        std::string match = m.host_ip.empty() ? strCat("meta nfproto ", v6 ? "ipv6" : "ipv4")
                                              : strCat(fam, " daddr ", m.host_ip);
        std::string to = v6 ? strCat("[", ip, "]:", m.container_port) : strCat(ip, ":", m.container_port);
        cmds += strCat("add rule ", kTable, " hostports ", match, " ", m.protocol, " dport ",
                       m.host_port, " dnat ", fam, " to ", to, " comment \"", tag, "\"\n");
        cmds += strCat("add rule ", kTable, " hostport-masq ", fam, " saddr ", ip, " ", fam,
                       " daddr ", ip, " ", m.protocol, " dport ", m.container_port,
                       " masquerade comment \"", tag, "\"\n");
      }
    }
    return run(cmds, strCat("hostPort rules of ", tag));
  }

  Status removePortMappings(const Attachment& a) override {
    RETURN_IF_ERROR(checkAttachment(a));
    std::string tag = tagOf(a);
    ASSIGN_OR_RETURN(std::string table, list(strCat("table ", kTable)));
    auto existing = rulesOf(table, tag);
    if (existing.empty()) return absl::OkStatus();
    std::string cmds;
    for (const auto& [chain, handle] : existing) {
      cmds += strCat("delete rule ", kTable, " ", chain, " handle ", handle, "\n");
    }
    return run(cmds, strCat("remove hostPort rules of ", tag));
  }

  Status checkPortMappings(const Attachment& a, const std::vector<std::string>& pod_ips,
                           const std::vector<PortMapping>& mappings) override {
    RETURN_IF_ERROR(checkAttachment(a));
    RETURN_IF_ERROR(checkPortMappingInput(pod_ips, mappings));
    ASSIGN_OR_RETURN(std::string text, list(strCat("table ", kTable)));
    if (!mappings.empty() && !pod_ips.empty() && !hasHostPortSkeleton(text)) {
      return failedPrecondition("hostPorts of ", tagOf(a), ": the jumps to chain hostports in table ",
                                kTable, " are missing; the next ADD with hostPorts restores them");
    }
    std::string needle = strCat("comment \"", tagOf(a), "\"");
    std::vector<std::string> mine;
    for (const std::string& line : split(text, '\n')) {
      if (line.find(needle) != std::string::npos) mine.push_back(line);
    }
    for (const PortMapping& m : mappings) {
      for (const std::string& ip : pod_ips) {
        if (!m.host_ip.empty() && isV6(m.host_ip) != isV6(ip)) continue;
        ASSIGN_OR_RETURN(std::string canon, canonicalCidr(ip));
        canon.resize(canon.find('/'));
        std::string to = isV6(ip) ? strCat("to [", canon, "]:", m.container_port)
                                  : strCat("to ", canon, ":", m.container_port);
        std::string port = strCat(m.protocol, " dport ", m.host_port, " ");
        bool found = false;
        for (const std::string& line : mine) {
          found = found || (line.find(port) != std::string::npos && line.find(to + " ") != std::string::npos);
        }
        if (!found) {
          return failedPrecondition("hostPort ", m.host_port, "/", m.protocol, " of ", tagOf(a),
                                    " has no DNAT rule to ", ip, ":", m.container_port,
                                    " (nftables chain hostports in table ", kTable,
                                    "); DEL and ADD the attachment again");
        }
      }
    }
    return absl::OkStatus();
  }

  StatusOr<std::vector<Attachment>> portMappingAttachments(std::string_view network) override {
    RETURN_IF_ERROR(checkName("network name", network));
    ASSIGN_OR_RETURN(std::string text, list(strCat("chain ", kTable, " hostports")));
    std::map<std::string, Attachment> found;
    for (const std::string& raw : split(text, '\n')) {
      auto a = attachmentInComment(raw, network);
      if (a) found[tagOf(*a)] = *a;
    }
    std::vector<Attachment> out;
    for (auto& [tag, a] : found) out.push_back(std::move(a));
    return out;
  }

 private:
  nft::Context ctx_;
};

}  // namespace

namespace {

constexpr char kBridgeTable[] = "bridge berth-cni";

Status checkMac(std::string_view mac) {
  bool ok = mac.size() == 17;
  for (size_t i = 0; ok && i < mac.size(); ++i) {
    ok = (i % 3 == 2) ? mac[i] == ':' : std::isxdigit(static_cast<unsigned char>(mac[i])) != 0;
  }
  if (!ok) return invalidArgument("\"", mac, "\" is not a MAC address");
  return absl::OkStatus();
}

StatusOr<std::unique_ptr<NftablesFirewall>> nft() {
  ASSIGN_OR_RETURN(std::unique_ptr<Firewall> f, newNftablesFirewall());
  return std::unique_ptr<NftablesFirewall>(static_cast<NftablesFirewall*>(f.release()));
}

// Handles of the attachment's rules in the bridge table's macspoof chain.
StatusOr<std::vector<std::string>> macSpoofHandles(NftablesFirewall& f, const std::string& tag) {
  ASSIGN_OR_RETURN(std::string text, f.list(strCat("chain ", kBridgeTable, " macspoof")));
  std::vector<std::string> out;
  for (const std::string& raw : split(text, '\n')) {
    if (raw.find(strCat("comment \"", tag, "\"")) == std::string::npos) continue;
    size_t h = raw.rfind("# handle ");
    if (h != std::string::npos) out.push_back(raw.substr(h + 9));
  }
  return out;
}

}  // namespace

Status addMacSpoofCheck(const Attachment& a, std::string_view host_ifname, std::string_view mac) {
  RETURN_IF_ERROR(checkAttachment(a));
  RETURN_IF_ERROR(checkName("host interface", host_ifname));
  RETURN_IF_ERROR(checkMac(mac));
  ASSIGN_OR_RETURN(auto f, nft());
  std::string tag = tagOf(a);
  std::string cmds;
  ASSIGN_OR_RETURN(std::string table, f->list(strCat("table ", kBridgeTable)));
  if (table.find("chain macspoof {") == std::string::npos) {
    cmds += strCat("add table ", kBridgeTable, "\nadd chain ", kBridgeTable,
                   " macspoof { type filter hook prerouting priority -300; }\n");
  }
  ASSIGN_OR_RETURN(std::vector<std::string> handles, macSpoofHandles(*f, tag));
  for (const std::string& h : handles) cmds += strCat("delete rule ", kBridgeTable, " macspoof handle ", h, "\n");
  cmds += strCat("add rule ", kBridgeTable, " macspoof iifname \"", host_ifname, "\" ether saddr != ", mac,
                 " drop comment \"", tag, "\"\n");
  cmds += strCat("add rule ", kBridgeTable, " macspoof iifname \"", host_ifname,
                 "\" ether type arp arp saddr ether != ", mac, " drop comment \"", tag, "\"\n");
  return f->run(cmds, strCat("MAC spoof check of ", tag));
}

Status removeMacSpoofCheck(const Attachment& a) {
  RETURN_IF_ERROR(checkAttachment(a));
  ASSIGN_OR_RETURN(auto f, nft());
  ASSIGN_OR_RETURN(std::vector<std::string> handles, macSpoofHandles(*f, tagOf(a)));
  if (handles.empty()) return absl::OkStatus();
  std::string cmds;
  for (const std::string& h : handles) cmds += strCat("delete rule ", kBridgeTable, " macspoof handle ", h, "\n");
  return f->run(cmds, strCat("remove MAC spoof check of ", tagOf(a)));
}

Status checkMacSpoofCheck(const Attachment& a) {
  RETURN_IF_ERROR(checkAttachment(a));
  ASSIGN_OR_RETURN(auto f, nft());
  ASSIGN_OR_RETURN(std::vector<std::string> handles, macSpoofHandles(*f, tagOf(a)));
  if (handles.empty()) {
    return failedPrecondition("MAC spoof check of ", tagOf(a), " is missing (nftables table ",
                              kBridgeTable, ", chain macspoof)");
  }
  return absl::OkStatus();
}

StatusOr<std::vector<Attachment>> macSpoofAttachments(std::string_view network) {
  RETURN_IF_ERROR(checkName("network name", network));
  ASSIGN_OR_RETURN(auto f, nft());
  ASSIGN_OR_RETURN(std::string text, f->list(strCat("chain ", kBridgeTable, " macspoof")));
  std::map<std::string, Attachment> found;
  for (const std::string& raw : split(text, '\n')) {
    auto a = attachmentInComment(raw, network);
    if (a) found[tagOf(*a)] = *a;
  }
  std::vector<Attachment> out;
  for (auto& [tag, a] : found) out.push_back(a);
  return out;
}

StatusOr<std::unique_ptr<Firewall>> newNftablesFirewall(bool probe) {
  nft::Options options;
  options.handles = true;
  StatusOr<nft::Context> ctx = nft::Context::create(options);
  if (!ctx.ok()) {
    return absl::UnavailableError(strCat(ctx.status().message(),
                                         "; set \"ipMasqBackend\": \"iptables\" to use iptables"));
  }
  if (probe) {
    // One cheap read: "no such table" means nf_tables answers; anything else (module
    // missing, EPERM under a seccomp or LSM policy) means it cannot be used here.
    StatusOr<std::string> text = ctx->list(strCat("list table ", kTable));
    if (!text.ok() && !absl::IsNotFound(text.status())) {
      return absl::UnavailableError(strCat("nftables cannot be used in this network namespace (",
                                           text.status().message(),
                                           "); set \"ipMasqBackend\": \"iptables\" to use iptables"));
    }
  }
  return std::unique_ptr<Firewall>(std::make_unique<NftablesFirewall>(std::move(*ctx)));
}

}  // namespace berth::cni::nat
