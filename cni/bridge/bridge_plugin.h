// berth-bridge's CNI operations (SPEC.md "Section 2: CNI operations"): a Linux bridge
// on the node, one veth pair per attachment (host end on the bridge, CNI_IFNAME in the
// pod's netns), addresses from IPAM, the gateway on the bridge, masquerade and hostPort
// DNAT through cni/nat. See cni/bridge/README.md for the behaviour in full.
//
// Every function runs in the calling process's network namespace (the node's, per
// SPEC.md "The runtime must execute the plugin in the runtime's networking domain")
// and enters the pod's netns only on helper threads (cni/netns.h).
//
// Thread-safety: the functions may run concurrently in one or many processes; links
// are named per attachment and IPAM and the firewall serialise themselves.
#pragma once

#include "cni/plugin/skel.h"
#include "cni/result.h"
#include "common/status.h"

namespace berth::cni::bridge {

// ADD: creates the attachment and returns its result (bridge, host veth and pod
// interface; IPs pointing at the pod interface; routes; DNS). Anything made before a
// failure is undone. Errors keep their CNI code; the pod interface already existing is
// AlreadyExists (code 999) naming it.
StatusOr<Result> bridgeAdd(const plugin::Request& request);

// DEL: releases the IPs, deletes the veth pair (from the pod side when the netns still
// exists, else the host end by its derived name) and the hostPort rules. Idempotent:
// an unknown attachment or a gone netns is success.
Status bridgeDel(const plugin::Request& request);

// CHECK: the bridge, the host veth on it, the pod interface with prevResult's
// addresses, the IPAM reservation, the masquerade rule set and the hostPort rules are
// all in place. Errors name the first missing piece.
Status bridgeCheck(const plugin::Request& request);

// STATUS: the IPAM can serve ADD (code 50 otherwise).
Status bridgeStatus(const plugin::Request& request);

// GC: IPAM allocations, host veths on the bridge and hostPort rules of attachments not
// in "cni.dev/valid-attachments" are removed. Keeps going after an error and returns
// the errors joined.
Status bridgeGc(const plugin::Request& request);

// The handlers berth-bridge's main() serves.
plugin::Handlers bridgeHandlers();

}  // namespace berth::cni::bridge
