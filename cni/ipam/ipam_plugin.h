// berth-ipam as a CNI IPAM plugin (SPEC.md "Section 4: Plugin Delegation", "Delegated
// plugins (IPAM)"): the operations berth-bridge runs in-process for `"ipam": {"type":
// "berth-ipam"}` and the berth-ipam executable runs for any other main plugin. Both
// read the complete network configuration of the request and work on the allocator
// (cni/ipam/allocator.h) of the network named by its "name".
//
// Thread-safety: each call opens its own allocator; concurrent calls from threads or
// processes are serialised by the store's lock.
#pragma once

#include <string>
#include <vector>

#include "cni/plugin/skel.h"
#include "cni/result.h"
#include "common/status.h"

namespace berth::cni::ipam {

// ADD: one address per range set for (CNI_CONTAINERID, CNI_IFNAME), or the ones it
// already holds; `requested_ips` (no prefix length) are honoured. The result is the
// abbreviated IPAM result: "ips" (address with the subnet's prefix length, gateway),
// "routes" from ipam.routes, no interfaces. Errors: InvalidArgument (code 7) for a bad
// ipam section; Unavailable (code 11) while the podCIDRFile is not written yet;
// ResourceExhausted when a range set has no free address.
StatusOr<Result> ipamAdd(const plugin::Request& request,
                         const std::vector<std::string>& requested_ips);

// DEL: releases the attachment's addresses; idempotent.
Status ipamDel(const plugin::Request& request);

// CHECK: the attachment still holds its addresses; when `expected` (addresses without
// prefix, from prevResult) is not empty they must be exactly those. Errors: NotFound /
// FailedPrecondition naming the missing address.
Status ipamCheck(const plugin::Request& request, const std::vector<std::string>& expected);

// GC: releases every allocation of the network whose attachment is not in
// "cni.dev/valid-attachments". Returns how many were released.
StatusOr<int> ipamGc(const plugin::Request& request);

// STATUS: the configuration is usable (podCIDRFile present, data dir writable) and
// every range set still has a free address. Errors carry code 50 (cannot serve ADD).
Status ipamStatus(const plugin::Request& request);

// The handlers the berth-ipam executable serves.
plugin::Handlers ipamHandlers();

}  // namespace berth::cni::ipam
