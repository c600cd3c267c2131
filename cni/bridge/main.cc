// berth-bridge: the CNI bridge plugin (CNI spec 1.1). See cni/bridge/README.md.
#include "cni/bridge/bridge_plugin.h"

int main() { return berth::cni::plugin::runPlugin(berth::cni::bridge::bridgeHandlers()); }
