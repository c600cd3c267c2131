// berth-bridge DEL and GC (SPEC.md "DEL", "GC"): best effort, idempotent, and never
// dependent on the pod's netns still existing.
#include <cstdio>

#include "cni/bridge/bridge_internal.h"
#include "cni/bridge/bridge_plugin.h"
#include "cni/bridge/ipam_client.h"
#include "cni/link/netlink.h"
#include "cni/netns.h"

namespace berth::cni::bridge {
namespace {

// Collects failures of independent steps so one does not stop the others.
class Errors {
 public:
  void add(const Status& st, std::string_view what) {
    if (st.ok()) return;
    if (first_.ok()) first_ = st;
    messages_.push_back(strCat(what, ": ", st.message()));
  }
  Status result() const {
    if (first_.ok()) return first_;
    return Status(first_.code(), joinStrings(messages_, "; "));
  }

 private:
  Status first_;
  std::vector<std::string> messages_;
};

}  // namespace

Status bridgeDel(const plugin::Request& request) {
  ASSIGN_OR_RETURN(BridgeConfig config, parseBridgeConfig(request));
  Errors errors;
  if (!config.ipam_type.empty()) {
    IpamClient ipam(request, config);
    errors.add(ipam.del(), "release the IP addresses");
  }
  // The pod end first when the netns still exists: deleting it removes the pair.
  if (!request.netns.empty() && openNetns(request.netns).ok()) {
    Status st = runInNetns(request.netns, [&]() -> Status {
      ASSIGN_OR_RETURN(link::RouteSocket pod, link::RouteSocket::open());
      Status del = pod.deleteLink(request.ifname);
      return absl::IsNotFound(del) ? absl::OkStatus() : del;
    });
    errors.add(st, strCat("delete \"", request.ifname, "\" in ", request.netns));
  }
  auto host = link::RouteSocket::open();
  if (host.ok()) {
    Status del = host->deleteLink(hostVethName(request.container_id, request.ifname));
    if (!absl::IsNotFound(del)) errors.add(del, "delete the host end of the veth pair");
  } else {
    errors.add(host.status(), "open a netlink socket");
  }
  if (!config.port_mappings.empty()) {
    auto firewall = openFirewall(config);
    if (firewall.ok()) {
      errors.add((*firewall)->removePortMappings(
                     nat::Attachment{config.network, request.container_id, request.ifname}),
                 "remove the hostPort rules");
    } else {
      errors.add(firewall.status(), "open the firewall");
    }
  }
  if (config.macspoofchk) {
    errors.add(nat::removeMacSpoofCheck(
                   nat::Attachment{config.network, request.container_id, request.ifname}),
               "remove the MAC spoof check");
  }
  return errors.result();
}

Status bridgeGc(const plugin::Request& request) {
  ASSIGN_OR_RETURN(BridgeConfig config, parseBridgeConfig(request));
  ASSIGN_OR_RETURN(std::set<plugin::Attachment> valid, plugin::validAttachments(request));
  Errors errors;
  if (!config.ipam_type.empty()) {
    IpamClient ipam(request, config);
    errors.add(ipam.gc(), "garbage-collect IP allocations");
  }
  // Host veths on our bridge whose attachment is not valid. Names are derived from the
  // attachment, so the valid set maps to the names to keep.
  std::set<std::string> keep;
  for (const auto& [id, ifname] : valid) keep.insert(hostVethName(id, ifname));
  auto host = link::RouteSocket::open();
  if (host.ok()) {
    auto bridge = host->link(config.bridge);
    auto links = host->links();
    if (bridge.ok() && links.ok()) {
      for (const link::LinkInfo& l : *links) {
        if (l.master_index != bridge->index || l.kind != "veth" || l.name.rfind("bv", 0) != 0 ||
            l.name.size() != 13 || keep.count(l.name) != 0) {
          continue;
        }
        Status del = host->deleteLink(l.name);
        if (!absl::IsNotFound(del)) errors.add(del, strCat("delete stale veth \"", l.name, "\""));
      }
    } else if (!links.ok()) {
      errors.add(links.status(), "list links");
    }
  } else {
    errors.add(host.status(), "open a netlink socket");
  }
  // hostPort rules of attachments that are gone.
  auto firewall = openFirewall(config);
  if (firewall.ok()) {
    auto attachments = (*firewall)->portMappingAttachments(config.network);
    if (attachments.ok()) {
      for (const nat::Attachment& a : *attachments) {
        if (valid.count({a.container_id, a.ifname}) != 0) continue;
        errors.add((*firewall)->removePortMappings(a),
                   strCat("remove hostPort rules of ", a.container_id, "/", a.ifname));
      }
    } else {
      errors.add(attachments.status(), "list hostPort rules");
    }
  } else if (config.ip_masq || !config.port_mappings.empty()) {
    errors.add(firewall.status(), "open the firewall");
  }
  if (config.macspoofchk) {
    auto spoof = nat::macSpoofAttachments(config.network);
    if (spoof.ok()) {
      for (const nat::Attachment& a : *spoof) {
        if (valid.count({a.container_id, a.ifname}) != 0) continue;
        errors.add(nat::removeMacSpoofCheck(a),
                   strCat("remove MAC spoof check of ", a.container_id, "/", a.ifname));
      }
    } else {
      errors.add(spoof.status(), "list MAC spoof checks");
    }
  }
  return errors.result();
}

}  // namespace berth::cni::bridge
