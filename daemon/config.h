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
//   components           which parts berthd runs: cri, cni, proxy, csi (list) [cri,cni,proxy,csi]
//   kubeconfig           API server access for the proxy (and CSI provisioner) ""
//                        ("" and no proxy-manifests: in-cluster config if present)
//   proxy-manifests      directory of Service/EndpointSlice manifests (standalone) ""
//   proxy-mode           nftables | iptables | off                         nftables
//   cluster-cidr         pod CIDRs of the whole cluster (list; masquerade
//                        of traffic from outside them)                    []
//   node-name            this node's Node name                            the hostname
//   node-ip              this node's addresses (list)                     []
//   nodeport-addresses   CIDRs of node addresses that accept NodePorts (list;
//                        empty: every local address)                      []
//   proxy-healthz-address  host:port of the proxy's /healthz ("" off)     0.0.0.0:10256
//   proxy-metrics-address  host:port of /metrics ("" off)                 127.0.0.1:10249
//   proxy-sync-period    full resync period, seconds                      30
//   kubelet-root-dir     kubelet's --root-dir: the CSI socket goes in
//                        plugins/hostpath.berth.dev/, the registration
//                        socket in plugins_registry/                      /var/lib/kubelet
//   csi-base-dir         where CSI volumes and their metadata live        <root>/volumes
//   csi-endpoint         the CSI socket (unix:// prefix allowed)          <kubelet-root-dir>/plugins/
//                                                                        hostpath.berth.dev/csi.sock
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
enum class ProxyMode { kNftables, kIptables, kOff };

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
  std::vector<std::string> components = {"cri", "cni", "proxy", "csi"};
  std::string kubeconfig;
  std::string proxy_manifests;
  ProxyMode proxy_mode = ProxyMode::kNftables;
  std::vector<std::string> cluster_cidrs;
  std::string node_name;                  // "" -> the hostname (filled by finalize())
  std::vector<std::string> node_ips;
  std::vector<std::string> nodeport_addresses;
  std::string proxy_healthz_address = "0.0.0.0:10256";
  std::string proxy_metrics_address = "127.0.0.1:10249";
  int proxy_sync_period_s = 30;
  std::string kubelet_root_dir = "/var/lib/kubelet";
  std::string csi_base_dir;  // "" -> <root>/volumes (filled by finalize())
  std::string csi_endpoint;  // "" -> the CSI server's default under kubelet-root-dir
  std::string config_file;  // the file read, "" when none
};

// "cgroupfs" / "systemd".
const char* cgroupDriverName(CgroupDriver driver);

// Parses "cgroupfs" or "systemd". Errors: InvalidArgument naming the accepted values.
StatusOr<CgroupDriver> parseCgroupDriver(const std::string& text);

// "nftables" / "iptables" / "off", and the inverse. Errors: InvalidArgument naming the
// accepted values.
const char* proxyModeName(ProxyMode mode);
StatusOr<ProxyMode> parseProxyMode(const std::string& text);

// Parses "30" or "30s" (seconds, > 0). Errors: InvalidArgument.
StatusOr<int> parseSyncPeriod(const std::string& text);

// True if `component` ("cri", "cni", "proxy", "csi") is in config.components.
bool runs(const Config& config, const std::string& component);

// Applies the keys of the config file at `path` (TOML or YAML by extension) onto
// `config`, except keys in `set_by_flags` (flag names like "root", "cni-bin-dir").
// Errors: NotFound for a missing file; InvalidArgument for a syntax error (with line),
// an unknown key (naming it and the accepted keys), or a value of the wrong type.
Status applyConfigFile(const std::string& path, const std::vector<std::string>& set_by_flags,
                       Config& config);

// Fills derived defaults (listen from state, csi-base-dir from root, node-name from
// the hostname) and checks the result: absolute paths, a valid log level, known
// components, CIDRs and IPs that parse, a positive sync period. Errors: InvalidArgument naming the key and value.
Status finalize(Config& config);

}  // namespace berth::daemon
