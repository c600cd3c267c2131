// Facts of Kubernetes' remotecommand and port-forward protocols that both transports
// (WebSocket here, SPDY in spdy/) share. From k8s.io/apimachinery
// pkg/util/remotecommand/constants.go and k8s.io/kubelet pkg/cri/streaming.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace berth::streaming {

// remotecommand subprotocols (SPDY's X-Stream-Protocol-Version; WebSocket's
// Sec-WebSocket-Protocol).
inline constexpr std::string_view kStreamProtocolV1 = "channel.k8s.io";
inline constexpr std::string_view kStreamProtocolV4 = "v4.channel.k8s.io";
inline constexpr std::string_view kStreamProtocolV5 = "v5.channel.k8s.io";
// Port-forward over WebSocket.
inline constexpr std::string_view kPortForwardProtocol = "portforward.k8s.io";

// WebSocket channel numbers (the first byte of every binary message).
inline constexpr uint8_t kChannelStdin = 0;
inline constexpr uint8_t kChannelStdout = 1;
inline constexpr uint8_t kChannelStderr = 2;
inline constexpr uint8_t kChannelError = 3;
inline constexpr uint8_t kChannelResize = 4;
// v5: a message [255, N] means the client closed its channel N (stdin EOF).
inline constexpr uint8_t kChannelClose = 255;

// The first protocol of `offered` (a comma-separated header value, in the client's
// order of preference) that is in `supported`; nullopt if none.
std::optional<std::string> chooseProtocol(std::string_view offered, const std::vector<std::string_view>& supported);

// The v4+ error-channel payload: a metav1.Status JSON. Exit code 0 is
// {"metadata":{},"status":"Success"}; another code is a Failure with reason
// NonZeroExitCode and the code in details.causes[{reason: ExitCode, message: "<code>"}]
// (what kubectl turns back into its own exit code).
std::string exitStatusJson(int exit_code);
// A Failure Status for an error before or instead of an exit code (reason
// InternalError), with `message`.
std::string errorStatusJson(std::string_view message);

// A resize message {"Width":W,"Height":H} (remotecommand.TerminalSize). Errors:
// InvalidArgument for malformed JSON or sizes outside 0..65535.
struct TerminalSize {
  uint16_t width = 0, height = 0;
};
StatusOr<TerminalSize> parseTerminalSize(std::string_view json);

}  // namespace berth::streaming
