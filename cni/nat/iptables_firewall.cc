// The iptables backend of cni/nat/firewall.h, for nodes whose kernel or policy rules
// out nftables ("ipMasqBackend": "iptables"). There is no iptables library, so this
// backend runs iptables-save / iptables-restore (and the ip6tables pair) from PATH —
// Debian's default `iptables` is the nf_tables flavour, `update-alternatives` picks
// legacy. Chains of ours in the nat table:
//
//   BERTH-MASQ-<8 hex>     per network (hash of its name): RETURN for the pod subnets,
//                          kept CIDRs and multicast, then MASQUERADE; jumped to from
//                          POSTROUTING for each pod subnet (comment "berth-cni masq <net>")
//   BERTH-HOSTPORTS        per-attachment DNAT rules (comment "<net>/<id>/<ifname>"),
//                          jumped to from PREROUTING and OUTPUT for local destinations
//   BERTH-HOSTPORT-MASQ    hairpin masquerade, jumped to from POSTROUTING
//
// Like the nftables backend it reads first and writes only what is missing; every write
// is one iptables-restore --noflush transaction.
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>

#include "cni/nat/firewall.h"
#include "cni/nat/firewall_internal.h"
#include "common/unique_fd.h"

extern char** environ;

namespace berth::cni::nat {
namespace {

constexpr char kHostPorts[] = "BERTH-HOSTPORTS";
constexpr char kHostPortMasq[] = "BERTH-HOSTPORT-MASQ";

// Runs `argv` (searched in PATH) with `input` on stdin; returns stdout. Errors: the
// exit status and stderr.
StatusOr<std::string> runTool(const std::vector<std::string>& argv, const std::string& input) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    return lastErrnoError("pipe");
  }
  UniqueFd in_r(in[0]), in_w(in[1]), out_r(out[0]), out_w(out[1]), err_r(err[0]), err_w(err[1]);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_r.get(), 0);
  posix_spawn_file_actions_adddup2(&fa, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, err_w.get(), 2);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = ::posix_spawnp(&pid, argv[0].c_str(), &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    return errnoError(rc, strCat("run ", argv[0], " (install the iptables package, or use the "
                                 "nftables backend)"));
  }
  in_r.reset();
  out_w.reset();
  err_w.reset();
  size_t done = 0;
  while (done < input.size()) {
    ssize_t n = ::write(in_w.get(), input.data() + done, input.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  in_w.reset();
  std::string stdout_text, stderr_text;
  pollfd fds[2] = {{out_r.get(), POLLIN, 0}, {err_r.get(), POLLIN, 0}};
  int open_fds = 2;
  char buf[8192];
  while (open_fds > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
      if (n <= 0) {
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? stdout_text : stderr_text).append(buf, static_cast<size_t>(n));
      }
    }
  }
  int ws = 0;
  while (::waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
    while (!stderr_text.empty() && stderr_text.back() == '\n') stderr_text.pop_back();
    return absl::InternalError(strCat(argv[0], " failed (status ", WIFEXITED(ws) ? WEXITSTATUS(ws) : -1,
                                      "): ", stderr_text));
  }
  return stdout_text;
}

// Serializes berth's read-modify-write of the nat table (iptables-save, then
// iptables-restore --noflush) across plugin processes: two ADDs racing on an empty table
// would otherwise both declare BERTH-HOSTPORTS, and a declaration flushes the chain.
// Held for the life of the object. One lock per network namespace (iptables tables are
// per netns). Without a writable /run/lock the calls go unserialized.
class RestoreLock {
 public:
  RestoreLock() {
    fd_.reset(::open(iptablesLockPath().c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    while (fd_.valid() && ::flock(fd_.get(), LOCK_EX) != 0 && errno == EINTR) {
    }
  }

 private:
  UniqueFd fd_;
};

std::string masqChain(std::string_view network) {
  return strCat("BERTH-MASQ-", fnv1a64Hex(network).substr(0, 8));
}

class IptablesFirewall : public Firewall {
 public:
  Backend backend() const override { return Backend::kIptables; }

  static const char* restoreTool(bool v6) { return v6 ? "ip6tables-restore" : "iptables-restore"; }
  static const char* saveTool(bool v6) { return v6 ? "ip6tables-save" : "iptables-save"; }

  StatusOr<std::string> save(bool v6) { return runTool({saveTool(v6), "-t", "nat"}, ""); }
  Status restore(bool v6, const std::string& rules, std::string_view what) {
    return withContext(runTool({restoreTool(v6), "-w", "5", "--noflush"}, rules).status(), what);
  }

  Status ensureMasquerade(std::string_view network, const std::vector<std::string>& subnets,
                          const std::vector<std::string>& keep) override {
    RestoreLock lock;
    RETURN_IF_ERROR(checkName("network name", network));
    std::string what = strCat("masquerade rules of network \"", network, "\"");
    for (const std::string& s : subnets) RETURN_IF_ERROR(withContext(checkCidr(s), what));
    for (const std::string& s : keep) RETURN_IF_ERROR(withContext(checkCidr(s), what));
    if (subnets.empty()) return invalidArgument(what, ": no pod subnet given");
    std::string chain = masqChain(network);
    std::string comment = strCat("berth-cni masq ", network);
    for (bool v6 : {false, true}) {
      ASSIGN_OR_RETURN(std::vector<std::string> mine, canonicalCidrs(subnets, v6));
      ASSIGN_OR_RETURN(std::vector<std::string> kept, canonicalCidrs(keep, v6));
      if (mine.empty()) continue;
      std::string body;
      for (const std::string& d : mine) body += strCat("-A ", chain, " -d ", d, " -j RETURN\n");
      for (const std::string& d : kept) body += strCat("-A ", chain, " -d ", d, " -j RETURN\n");
      body += strCat("-A ", chain, " -d ", v6 ? "ff00::/8" : "224.0.0.0/4", " -j RETURN\n");
      body += strCat("-A ", chain, " -j MASQUERADE\n");
      // The jumps carry a fingerprint of the wanted chain, so one read tells whether the
      // rules in place are exactly what this call would write.
      std::string tagged = strCat(comment, " ", fingerprint(body));
      ASSIGN_OR_RETURN(std::string current, save(v6));
      size_t jumps = 0;
      for (const std::string& line : split(current, '\n')) {
        if (line.rfind("-A POSTROUTING ", 0) == 0 &&
            line.find(strCat("--comment \"", tagged, "\"")) != std::string::npos) {
          ++jumps;
        }
      }
      if (jumps == mine.size() && current.find(strCat("-A ", chain, " -j MASQUERADE")) != std::string::npos) {
        continue;
      }
      std::string rules = strCat("*nat\n:", chain, " - [0:0]\n");  // declared = flushed
      for (const std::string& line : split(current, '\n')) {
        if (line.rfind("-A POSTROUTING ", 0) == 0 &&
            (line.find(strCat("--comment \"", comment, "\"")) != std::string::npos ||
             line.find(strCat("--comment \"", comment, " ")) != std::string::npos)) {
          rules += "-D" + line.substr(2) + "\n";
        }
      }
      rules += body;
      for (const std::string& s : mine) {
        rules += strCat("-A POSTROUTING -s ", s, " -m comment --comment \"", tagged, "\" -j ", chain, "\n");
      }
      rules += "COMMIT\n";
      RETURN_IF_ERROR(restore(v6, rules, what));
    }
    return absl::OkStatus();
  }

  Status removeMasquerade(std::string_view network) override {
    RestoreLock lock;
    RETURN_IF_ERROR(checkName("network name", network));
    std::string chain = masqChain(network);
    for (bool v6 : {false, true}) {
      ASSIGN_OR_RETURN(std::string current, save(v6));
      if (current.find(strCat(":", chain, " ")) == std::string::npos) continue;
      std::string rules = "*nat\n";
      for (const std::string& line : split(current, '\n')) {
        if (line.rfind("-A POSTROUTING ", 0) == 0 && line.find(strCat("-j ", chain)) != std::string::npos) {
          rules += "-D" + line.substr(2) + "\n";
        }
      }
      rules += strCat("-F ", chain, "\n-X ", chain, "\nCOMMIT\n");
      RETURN_IF_ERROR(restore(v6, rules, strCat("remove masquerade rules of network \"", network, "\"")));
    }
    return absl::OkStatus();
  }

  Status checkMasquerade(std::string_view network, const std::vector<std::string>& subnets) override {
    RETURN_IF_ERROR(checkName("network name", network));
    std::string chain = masqChain(network);
    for (bool v6 : {false, true}) {
      std::vector<std::string> mine;
      for (const std::string& s : subnets) if (isV6(s) == v6) mine.push_back(s);
      if (mine.empty()) continue;
      ASSIGN_OR_RETURN(std::string current, save(v6));
      if (current.find(strCat("-A ", chain, " -j MASQUERADE")) == std::string::npos) {
        return failedPrecondition("masquerade rules of network \"", network,
                                  "\" are missing (iptables nat chain ", chain,
                                  "); the next ADD on this network writes them again");
      }
      for (const std::string& s : mine) {
        ASSIGN_OR_RETURN(std::string canon, canonicalCidr(s));
        if (current.find(strCat("-A POSTROUTING -s ", canon, " ")) == std::string::npos) {
          return failedPrecondition("masquerade rules of network \"", network, "\" do not cover ", s,
                                    " (iptables nat chain POSTROUTING has no jump to ", chain, ")");
        }
      }
    }
    return absl::OkStatus();
  }

  // What `current` (iptables-save output) lacks of the hostPort chains and their jumps.
  // A declared chain is flushed by iptables-restore --noflush, so BERTH-HOSTPORTS and
  // BERTH-HOSTPORT-MASQ are declared only when missing; the jumps, if not exactly one
  // each, are all deleted and written again.
  static std::string hostPortSkeleton(const std::string& current) {
    std::string out;
    for (const char* chain : {kHostPorts, kHostPortMasq}) {
      if (current.find(strCat(":", chain, " ")) == std::string::npos) out += strCat(":", chain, " - [0:0]\n");
    }
    const std::string wanted[] = {
        strCat("-A PREROUTING -m addrtype --dst-type LOCAL -j ", kHostPorts),
        strCat("-A OUTPUT -m addrtype --dst-type LOCAL -j ", kHostPorts),
        strCat("-A POSTROUTING -j ", kHostPortMasq),
    };
    std::vector<std::string> jumps;
    for (const std::string& line : split(current, '\n')) {
      if (line.rfind("-A ", 0) == 0 && (line.ends_with(strCat("-j ", kHostPorts)) ||
                                        line.ends_with(strCat("-j ", kHostPortMasq)))) {
        jumps.push_back(line);
      }
    }
    bool exact = jumps.size() == 3;
    for (const std::string& w : wanted) {
      exact = exact && std::find(jumps.begin(), jumps.end(), w) != jumps.end();
    }
    if (exact) return out;
    for (const std::string& j : jumps) out += "-D" + j.substr(2) + "\n";
    for (const std::string& w : wanted) out += w + "\n";
    return out;
  }

  // Deletions of the attachment's rules in `current` (iptables-save output).
  static std::string deletionsOf(const std::string& current, const std::string& tag) {
    std::string out;
    for (const std::string& line : split(current, '\n')) {
      if (line.rfind("-A BERTH-HOSTPORT", 0) == 0 &&
          line.find(strCat("--comment \"", tag, "\"")) != std::string::npos) {
        out += "-D" + line.substr(2) + "\n";
      }
    }
    return out;
  }

  Status addPortMappings(const Attachment& a, const std::vector<std::string>& pod_ips,
                         const std::vector<PortMapping>& mappings) override {
    RestoreLock lock;
    RETURN_IF_ERROR(checkAttachment(a));
    RETURN_IF_ERROR(checkPortMappingInput(pod_ips, mappings));
    std::string tag = tagOf(a);
    for (bool v6 : {false, true}) {
      std::vector<std::string> ips;
      for (const std::string& ip : pod_ips) if (isV6(ip) == v6) ips.push_back(ip);
      if (ips.empty()) continue;
      ASSIGN_OR_RETURN(std::string current, save(v6));
      std::string rules = strCat("*nat\n", hostPortSkeleton(current));
      rules += deletionsOf(current, tag);
      for (const PortMapping& m : mappings) {
        if (!m.host_ip.empty() && isV6(m.host_ip) != v6) continue;
        for (const std::string& ip : ips) {
          std::string to = v6 ? strCat("[", ip, "]:", m.container_port) : strCat(ip, ":", m.container_port);
          rules += strCat("-A ", kHostPorts, m.host_ip.empty() ? "" : strCat(" -d ", m.host_ip), " -p ",
                          m.protocol, " -m ", m.protocol, " --dport ", m.host_port,
                          " -m comment --comment \"", tag, "\" -j DNAT --to-destination ", to, "\n");
          rules += strCat("-A ", kHostPortMasq, " -s ", ip, " -d ", ip, " -p ", m.protocol, " -m ",
                          m.protocol, " --dport ", m.container_port, " -m comment --comment \"", tag,
                          "\" -j MASQUERADE\n");
        }
      }
      rules += "COMMIT\n";
      RETURN_IF_ERROR(restore(v6, rules, strCat("hostPort rules of ", tag)));
    }
    return absl::OkStatus();
  }

  Status removePortMappings(const Attachment& a) override {
    RestoreLock lock;
    RETURN_IF_ERROR(checkAttachment(a));
    for (bool v6 : {false, true}) {
      ASSIGN_OR_RETURN(std::string current, save(v6));
      std::string deletions = deletionsOf(current, tagOf(a));
      if (deletions.empty()) continue;
      RETURN_IF_ERROR(restore(v6, "*nat\n" + deletions + "COMMIT\n",
                              strCat("remove hostPort rules of ", tagOf(a))));
    }
    return absl::OkStatus();
  }

  Status checkPortMappings(const Attachment& a, const std::vector<std::string>& pod_ips,
                           const std::vector<PortMapping>& mappings) override {
    RETURN_IF_ERROR(checkAttachment(a));
    RETURN_IF_ERROR(checkPortMappingInput(pod_ips, mappings));
    std::string needle = strCat("--comment \"", tagOf(a), "\"");
    for (bool v6 : {false, true}) {
      bool any = false;
      for (const std::string& ip : pod_ips) any = any || isV6(ip) == v6;
      if (!any) continue;
      ASSIGN_OR_RETURN(std::string current, save(v6));
      if (!mappings.empty() && !hostPortSkeleton(current).empty()) {
        return failedPrecondition("hostPorts of ", tagOf(a), ": the ", v6 ? "ip6tables" : "iptables",
                                  " nat jumps to ", kHostPorts, "/", kHostPortMasq,
                                  " are missing or doubled; the next ADD with hostPorts restores them");
      }
      std::vector<std::string> mine;
      for (const std::string& line : split(current, '\n')) {
        if (line.rfind(strCat("-A ", kHostPorts, " "), 0) == 0 && line.find(needle) != std::string::npos) {
          mine.push_back(line);
        }
      }
      for (const PortMapping& m : mappings) {
        if (!m.host_ip.empty() && isV6(m.host_ip) != v6) continue;
        for (const std::string& ip : pod_ips) {
          if (isV6(ip) != v6) continue;
          ASSIGN_OR_RETURN(std::string canon, canonicalCidr(ip));
          canon.resize(canon.find('/'));
          std::string to = v6 ? strCat("--to-destination [", canon, "]:", m.container_port)
                              : strCat("--to-destination ", canon, ":", m.container_port);
          std::string port = strCat("-p ", m.protocol, " -m ", m.protocol, " --dport ", m.host_port, " ");
          bool found = false;
          for (const std::string& line : mine) {
            found = found || (line.find(port) != std::string::npos &&
                              (line.ends_with(to) || line.find(to + " ") != std::string::npos));
          }
          if (!found) {
            return failedPrecondition("hostPort ", m.host_port, "/", m.protocol, " of ", tagOf(a),
                                      " has no DNAT rule to ", ip, ":", m.container_port, " (",
                                      v6 ? "ip6tables" : "iptables", " nat chain ", kHostPorts,
                                      "); DEL and ADD the attachment again");
          }
        }
      }
    }
    return absl::OkStatus();
  }

  StatusOr<std::vector<Attachment>> portMappingAttachments(std::string_view network) override {
    RETURN_IF_ERROR(checkName("network name", network));
    std::map<std::string, Attachment> found;
    for (bool v6 : {false, true}) {
      ASSIGN_OR_RETURN(std::string current, save(v6));
      for (const std::string& line : split(current, '\n')) {
        if (line.rfind(strCat("-A ", kHostPorts, " "), 0) != 0) continue;
        auto a = attachmentInComment(line, network);
        if (a) found[tagOf(*a)] = *a;
      }
    }
    std::vector<Attachment> out;
    for (auto& [tag, a] : found) out.push_back(a);
    return out;
  }
};

}  // namespace

bool iptablesAvailable() {
  const char* path = ::getenv("PATH");
  for (const std::string& dir : split(path ? path : "/usr/sbin:/usr/bin:/sbin:/bin", ':', true)) {
    if (::access(strCat(dir, "/iptables-restore").c_str(), X_OK) == 0) return true;
  }
  return false;
}

std::string iptablesLockPath() {
  struct stat st {};
  unsigned long long ino = ::stat("/proc/thread-self/ns/net", &st) == 0 ? st.st_ino : 0;
  return strCat("/run/lock/berth-cni-iptables-", ino, ".lock");
}

std::unique_ptr<Firewall> newIptablesFirewall() { return std::make_unique<IptablesFirewall>(); }

}  // namespace berth::cni::nat
