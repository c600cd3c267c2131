// Helpers for CNI integration tests that build throwaway network namespaces: pinned pod
// netns files, link and address queries, and small TCP exchanges. Everything works in
// the calling thread's network namespace unless it takes a netns path.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"

namespace berth::cni::testing::net {

// Creates a network namespace pinned by a bind mount at `path` (made on a helper
// thread, so the caller's netns does not change). Needs a private mount namespace.
Status createNetns(const std::string& path);

// Unmounts and removes a netns made by createNetns(); the netns dies with its last user.
void destroyNetns(const std::string& path);

// IPv4 addresses (no prefix) of `ifname`.
std::vector<std::string> ipv4Of(const std::string& ifname);

// Link names.
std::vector<std::string> links();

// A TCP listener on every IPv4 address at `port`.
StatusOr<UniqueFd> listenTcp(uint16_t port);

// Connects to ip:port (5 s timeout) and sends `message`.
Status connectAndSend(const std::string& ip, uint16_t port, const std::string& message);

// Accepts one connection on `listener` (5 s timeout) and reads what it sends.
StatusOr<std::string> acceptAndRead(int listener);

// Like acceptAndRead, also giving the peer's IPv4 address in `peer`.
StatusOr<std::string> acceptAndRead(int listener, std::string* peer);

// One TCP exchange: a listener on `port` inside `listen_netns`, a client in `from_netns`
// ("" = the calling thread's netns) connecting to to_ip:to_port and sending a message.
// Returns the address the listener saw the connection come from. Errors: any step
// failing (naming it), or the listener reading something else than was sent.
StatusOr<std::string> tcpExchange(const std::string& listen_netns, uint16_t port,
                                  const std::string& from_netns, const std::string& to_ip,
                                  uint16_t to_port);

// Once per test process, while it is still single-threaded: a private mount namespace
// (pod netns are bind mounts; none must reach the host). False when it cannot be made.
bool enterPrivateMountNamespace();

// Moves the calling thread into a fresh network namespace with `lo` up; `original`
// receives the netns it was in, to return to with setns() when the test ends.
Status enterFreshNetns(UniqueFd& original);

// Runs a shell command; returns stdout, or nullopt when it fails.
std::optional<std::string> runShell(const std::string& cmd);

}  // namespace berth::cni::testing::net
