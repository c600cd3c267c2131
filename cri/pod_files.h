// A pod sandbox's /etc/hostname, /etc/hosts and /etc/resolv.conf (issue 6, "Pod
// sandboxes"), which every container of the pod sees through bind mounts
// (ContainerSpecInput::files) unless kubelet mounts its own.
//
// - hostname: PodSandboxConfig.hostname, else the pod's name; for a host-network pod
//   without one, the node's hostname.
// - hosts: a host-network pod gets a copy of the node's /etc/hosts (like containerd);
//   other pods get the localhost lines kubelet writes in its managed hosts file plus one
//   "<ip>\t<hostname>" line per known pod IP. (kubelet normally mounts its own
//   etc-hosts over /etc/hosts; this file serves pods started without that mount, e.g.
//   by crictl or berthctl.)
// - resolv.conf: from PodSandboxConfig.dns_config when it has anything —
//   `search <searches joined by " ">`, one `nameserver <server>` line per server,
//   `options <options joined by " ">`, each line only when its list is non-empty (the
//   order containerd writes); with an empty or missing dns_config, a copy of the node's
//   /etc/resolv.conf (what host-network pods with dnsPolicy Default get).
//
// Thread-safety: pure functions apart from reading the node's files; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "cri/proto/api.pb.h"

namespace berth::cri {

struct SandboxFilesOptions {
  std::string node_hostname;      // the node's hostname (gethostname) when "" is not enough
  std::vector<std::string> pod_ips;  // the pod's IPs, primary first; empty when unknown
  std::string host_hosts = "/etc/hosts";              // the node's hosts file
  std::string host_resolv_conf = "/etc/resolv.conf";  // the node's resolv.conf
};

struct SandboxFiles {
  std::string hostname;     // the pod's hostname, without newline
  std::string hosts;        // /etc/hosts content
  std::string resolv_conf;  // /etc/resolv.conf content
};

// Builds the three files' contents (see the file comment).
// Errors: InvalidArgument naming the field for a hostname that is not a valid host
// name (1..64 characters of letters, digits, '-', '.', '_'), or a DNS server, search or
// option that is empty or contains whitespace, e.g.
// `PodSandboxConfig.dns_config.searches[1]: "a b" contains whitespace`; InvalidArgument
// when no hostname can be found; read errors of the node's files with their path.
StatusOr<SandboxFiles> buildSandboxFiles(const runtime::v1::PodSandboxConfig& config,
                                         const SandboxFilesOptions& options);

// The resolv.conf text for `dns` ("" when it has no servers, searches or options).
// Errors: InvalidArgument as for buildSandboxFiles.
StatusOr<std::string> resolvConfFromDns(const runtime::v1::DNSConfig& dns);

// Paths of the files written by writeSandboxFiles under a pod directory.
struct SandboxFilePaths {
  std::string hostname;
  std::string hosts;
  std::string resolv_conf;
};

// Writes files.hostname + "\n", files.hosts and files.resolv_conf to `dir`/hostname,
// `dir`/hosts and `dir`/resolv.conf (mode 0644, each atomically; `dir` is created 0755
// when missing). Returns the paths. Errors: filesystem errors with the path.
StatusOr<SandboxFilePaths> writeSandboxFiles(const SandboxFiles& files, const std::string& dir);

}  // namespace berth::cri
