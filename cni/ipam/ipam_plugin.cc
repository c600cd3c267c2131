#include "cni/ipam/ipam_plugin.h"

#include <unistd.h>

#include "cni/ipam/allocator.h"
#include "cni/ipam/ip_address.h"
#include "cni/ipam/ipam_config.h"
#include "cni/plugin_exec.h"
#include "common/fs.h"

namespace berth::cni::ipam {
namespace {

// The allocator of the request's network; configuration errors carry code 7 and a
// pod CIDR not yet written code 11 ("try again later").
StatusOr<Allocator> openAllocator(const plugin::Request& request, IpamConfig* config_out = nullptr) {
  auto config = parseIpamConfig(request.config);
  if (!config.ok()) {
    int code = absl::IsUnavailable(config.status()) ? kErrTryAgainLater : kErrInvalidNetworkConfig;
    return withCniErrorCode(config.status(), code);
  }
  if (config_out != nullptr) *config_out = *config;
  return Allocator::open(*config, request.config.value("name", ""));
}

StatusOr<std::vector<IpAddress>> parseAddresses(const std::vector<std::string>& ips,
                                                std::string_view what) {
  std::vector<IpAddress> out;
  for (const std::string& ip : ips) {
    auto a = IpAddress::parse(ip);
    if (!a.ok()) {
      return withCniErrorCode(invalidArgument(what, ": \"", ip, "\" is not an IP address"),
                              kErrInvalidNetworkConfig);
    }
    out.push_back(*a);
  }
  return out;
}

// Requested IPs from the request itself (for the berth-ipam executable): CNI_ARGS IP,
// args.cni.ips, runtimeConfig.ips — the later wins.
std::vector<std::string> requestedIps(const plugin::Request& request) {
  std::vector<std::string> out;
  auto strip = [](std::string s) {
    size_t slash = s.find('/');
    if (slash != std::string::npos) s.resize(slash);
    return s;
  };
  if (auto it = request.cni_args.find("IP"); it != request.cni_args.end()) {
    for (const std::string& ip : split(it->second, ',', true)) out.push_back(strip(ip));
  }
  auto from_list = [&](const json::Json& list) {
    if (!list.is_array()) return;
    out.clear();
    for (const json::Json& v : list) {
      if (v.is_string()) out.push_back(strip(v.get<std::string>()));
    }
  };
  const json::Json& c = request.config;
  if (c.contains("args") && c["args"].is_object() && c["args"].contains("cni") &&
      c["args"]["cni"].is_object() && c["args"]["cni"].contains("ips")) {
    from_list(c["args"]["cni"]["ips"]);
  }
  if (c.contains("runtimeConfig") && c["runtimeConfig"].is_object() &&
      c["runtimeConfig"].contains("ips")) {
    from_list(c["runtimeConfig"]["ips"]);
  }
  return out;
}

}  // namespace

StatusOr<Result> ipamAdd(const plugin::Request& request,
                         const std::vector<std::string>& requested_ips) {
  IpamConfig config;
  ASSIGN_OR_RETURN(Allocator allocator, openAllocator(request, &config));
  ASSIGN_OR_RETURN(std::vector<IpAddress> requested,
                   parseAddresses(requested_ips, "requested IP"));
  ASSIGN_OR_RETURN(std::vector<IpConfig> ips,
                   allocator.allocate(request.container_id, request.ifname, requested));
  Result result;
  result.cni_version = request.cni_version;
  result.ips = std::move(ips);
  result.routes = config.routes;
  return result;
}

Status ipamDel(const plugin::Request& request) {
  auto allocator = openAllocator(request);
  // A pod CIDR file that is gone cannot hold allocations to release.
  if (absl::IsUnavailable(allocator.status())) return absl::OkStatus();
  if (!allocator.ok()) return allocator.status();
  return allocator->release(request.container_id, request.ifname);
}

Status ipamCheck(const plugin::Request& request, const std::vector<std::string>& expected) {
  ASSIGN_OR_RETURN(Allocator allocator, openAllocator(request));
  ASSIGN_OR_RETURN(std::vector<IpAddress> want, parseAddresses(expected, "prevResult address"));
  return allocator.check(request.container_id, request.ifname, want);
}

StatusOr<int> ipamGc(const plugin::Request& request) {
  ASSIGN_OR_RETURN(std::set<plugin::Attachment> valid, plugin::validAttachments(request));
  ASSIGN_OR_RETURN(Allocator allocator, openAllocator(request));
  return allocator.gc(valid);
}

Status ipamStatus(const plugin::Request& request) {
  IpamConfig config;
  auto allocator = openAllocator(request, &config);
  if (!allocator.ok()) return withCniErrorCode(allocator.status(), kErrPluginNotAvailable);
  return withCniErrorCode(allocator->checkCapacity(), kErrPluginNotAvailable);
}

plugin::Handlers ipamHandlers() {
  plugin::Handlers h;
  h.add = [](const plugin::Request& r) { return ipamAdd(r, requestedIps(r)); };
  h.del = ipamDel;
  h.check = [](const plugin::Request& r) -> Status {
    std::vector<std::string> expected;
    const json::Json& c = r.config;
    if (c.contains("prevResult") && c["prevResult"].is_object()) {
      auto prev = parseResult(c["prevResult"], "prevResult");
      if (prev.ok()) {
        for (const IpConfig& ip : prev->ips) expected.push_back(ip.ip());
      }
    }
    return ipamCheck(r, expected);
  };
  h.gc = [](const plugin::Request& r) { return ipamGc(r).status(); };
  h.status = ipamStatus;
  return h;
}

}  // namespace berth::cni::ipam
