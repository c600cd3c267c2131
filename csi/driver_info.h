// Names the hostPath CSI driver publishes: its CSI name, the topology key, the
// volume-context keys and the default socket locations under kubelet's root. One
// place, so the server, the handlers, the provisioner and the tests agree.
// Thread-safety: constants and pure functions only.
#pragma once

#include <string>
#include <string_view>

namespace berth::csi {

// GetPluginInfo.name and the kubelet registration name (a CSIDriver object's name).
inline constexpr std::string_view kDriverName = "hostpath.berth.dev";

// The topology segment key of every volume and of NodeGetInfo: the node's id.
inline constexpr std::string_view kTopologyKey = "topology.hostpath.berth.dev/node";

// Volume-context key saying how capacity is enforced for the volume: "quota" (an
// xfs/ext4 project quota limits writes) or "accounted" (capacities are reserved from
// the pool, writes past them are not stopped by the kernel).
inline constexpr std::string_view kCapacityEnforcedKey = "berth.dev/capacity-enforced";
inline constexpr std::string_view kCapacityQuota = "quota";
inline constexpr std::string_view kCapacityAccounted = "accounted";

// CSI versions this driver speaks (kubelet registration's supported_versions).
inline constexpr std::string_view kCsiVersion = "1.0.0";

// <kubelet_root>/plugins/hostpath.berth.dev/csi.sock: where kubelet expects the
// driver's CSI endpoint.
inline std::string defaultCsiSocket(std::string_view kubelet_root) {
  return std::string(kubelet_root) + "/plugins/" + std::string(kDriverName) + "/csi.sock";
}

// <kubelet_root>/plugins_registry/hostpath.berth.dev-reg.sock: the socket kubelet's
// plugin watcher discovers (pluginregistration.v1).
inline std::string defaultRegistrationSocket(std::string_view kubelet_root) {
  return std::string(kubelet_root) + "/plugins_registry/" + std::string(kDriverName) +
         "-reg.sock";
}

}  // namespace berth::csi
