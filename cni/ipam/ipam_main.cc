// berth-ipam: the per-node-subnet IPAM as a CNI IPAM plugin executable, for main
// plugins other than berth-bridge (which runs it in-process). See cni/ipam/README.md.
#include "cni/ipam/ipam_plugin.h"

int main() { return berth::cni::plugin::runPlugin(berth::cni::ipam::ipamHandlers()); }
