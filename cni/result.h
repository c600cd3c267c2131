// CNI results (SPEC.md "Section 5: Result Types"): the success result of ADD (and the
// prevResult handed down a plugin chain), parsed into one version-independent model
// and written back in any supported result version.
//
// Versions: 0.1.0/0.2.0 ("ip4"/"ip6" objects, no interfaces), 0.3.0/0.3.1/0.4.0 (an
// "ips" list whose entries carry "version": "4"|"6" and an "interface" index),
// 1.0.0/1.1.0 (like 0.4.0 without "version"). Converting down to 0.2.0 drops the
// interface list (that version has none), as libcni does.
//
// Thread-safety: pure functions on values.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace berth::cni {

// Result versions this runtime parses and writes, oldest first.
const std::vector<std::string>& supportedVersions();

// True if `version` is one of supportedVersions().
bool isSupportedVersion(std::string_view version);

// Compares two "MAJOR.MINOR.PATCH" versions: <0, 0, >0. A malformed version compares
// as 0.0.0.
int compareVersions(std::string_view a, std::string_view b);

struct Interface {
  std::string name;
  std::string mac;
  std::optional<int> mtu;
  std::string sandbox;      // netns path for interfaces inside the container, else ""
  std::string socket_path;  // 1.1: vhost-user style interfaces
  std::string pci_id;       // 1.1: PCI device
};

struct IpConfig {
  std::string address;            // CIDR, "10.1.0.5/24" or "fd00::5/64"
  std::string gateway;            // may be empty
  std::optional<int> interface;   // index into Result::interfaces
  bool isV6() const { return address.find(':') != std::string::npos; }
  // The address without its prefix length ("10.1.0.5").
  std::string ip() const;
};

struct Route {
  std::string dst;  // CIDR
  std::string gw;   // may be empty
  std::optional<int> mtu, advmss, priority, table, scope;
};

struct Dns {
  std::vector<std::string> nameservers;
  std::string domain;
  std::vector<std::string> search;
  std::vector<std::string> options;
  bool empty() const {
    return nameservers.empty() && domain.empty() && search.empty() && options.empty();
  }
};

struct Result {
  std::string cni_version;  // version the result was written in
  std::vector<Interface> interfaces;
  std::vector<IpConfig> ips;
  std::vector<Route> routes;
  Dns dns;
  // The document as the plugin wrote it, kept so a result passed on in its own version
  // loses no field this model does not know.
  json::Json raw;

  // The addresses (without prefix) of `ifname` inside the sandbox: IPs whose interface
  // index names an interface called `ifname` with a sandbox set. When no IP carries an
  // interface index (0.2.0 results, some plugins), every IP is returned. IPv4 first.
  std::vector<std::string> sandboxIps(std::string_view ifname) const;
};

// Parses a result document of any supported version. `what` names it in errors
// ("result of plugin \"bridge\""). Errors: InvalidArgument naming the key and the
// version (missing/unsupported "cniVersion", bad "ips[0].address", an interface index
// out of range).
StatusOr<Result> parseResult(const json::Json& doc, std::string_view what);

// Writes `result` as a result document of `version`. When `version` equals the
// version the result was parsed from, the original document is returned (with only
// "cniVersion" normalised). Errors: InvalidArgument for an unsupported version.
StatusOr<json::Json> resultToJson(const Result& result, std::string_view version);

}  // namespace berth::cni
