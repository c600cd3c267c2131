// berthd's configuration: command-line flags and the same keys in a config file
// (`--config FILE`, TOML or YAML by extension: .toml, .yaml/.yml). Precedence: a flag
// given on the command line beats the file, the file beats the defaults.
//
// Keys (flag `--key`, file key `key`; the file also accepts `key_with_underscores`):
//   root                 persistent state (images, snapshots, berth.db)   /var/lib/berth
//   state                runtime state (shims, pinned namespaces, sockets) /run/berth
//   listen               CRI socket path                                  <state>/berth.sock
//   cni-conf-dir         CNI network configs                              /etc/cni/net.d
//   cni-bin-dir          CNI plugin dirs (list; repeat the flag)          [/opt/cni/bin]
//   cgroup-driver        cgroupfs | systemd                                cgroupfs
//   log-level            debug | info | warn | error                      info
//   registries-conf      containers-registries.conf(5) file               (system default)
//   registry-certs-dir   per-registry TLS files                           /etc/containers/certs.d
//   runtime              OCI runtime binary of the default handler        berth-runtime next to berthd
//   pod-cidr             this node's pod subnets (list; like Node spec.podCIDRs) []
//   pod-cidr-file        where berthd writes pod-cidr for berth-ipam's podCIDRFile
//                                                                        <state>/pod-cidr
//   node-route           other nodes' pod subnets: "SUBNET via NODE_IP" (list) []
//                        (pod-cidr and node-route are re-read from the file on SIGHUP)
//
// Two berthd instances with different root, state and listen values do not share any
// file, so tests and multi-node simulations can run several on one host.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace berth::daemon {

enum class CgroupDriver { kCgroupfs, kSystemd };

struct Config {
  std::string root = "/var/lib/berth";
  std::string state = "/run/berth";
  std::string listen;  // "" -> <state>/berth.sock (filled by finalize())
  std::string cni_conf_dir = "/etc/cni/net.d";
  std::vector<std::string> cni_bin_dirs = {"/opt/cni/bin"};
  CgroupDriver cgroup_driver = CgroupDriver::kCgroupfs;
  std::string log_level = "info";
  std::string registries_conf;
  std::string registry_certs_dir = "/etc/containers/certs.d";
  std::string runtime;  // "" -> berth-runtime beside the berthd binary
  std::vector<std::string> pod_cidrs;    // this node's pod subnets, CIDR
  std::string pod_cidr_file;             // "" -> <state>/pod-cidr (filled by finalize())
  std::vector<std::string> node_routes;  // "10.244.1.0/24 via 192.168.0.2"
  std::string config_file;  // the file read, "" when none
};

// "cgroupfs" / "systemd".
const char* cgroupDriverName(CgroupDriver driver);

// Parses "cgroupfs" or "systemd". Errors: InvalidArgument naming the accepted values.
StatusOr<CgroupDriver> parseCgroupDriver(const std::string& text);

// Applies the keys of the config file at `path` (TOML or YAML by extension) onto
// `config`, except keys in `set_by_flags` (flag names like "root", "cni-bin-dir").
// Errors: NotFound for a missing file; InvalidArgument for a syntax error (with line),
// an unknown key (naming it and the accepted keys), or a value of the wrong type.
Status applyConfigFile(const std::string& path, const std::vector<std::string>& set_by_flags,
                       Config& config);

// Fills derived defaults (listen from state) and checks the result: absolute paths,
// a valid log level. Errors: InvalidArgument naming the key.
Status finalize(Config& config);

}  // namespace berth::daemon
