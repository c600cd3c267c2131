// The WebSocket side of the streaming server (server.h): remotecommand exec and attach
// over the channel protocols, and port-forward. Each run* function sets up
// asynchronous work on `ctx` (the connection's own io_context, run by its one thread
// after the call) and returns; the work ends by closing the WebSocket.
//
// Thread-safety: everything runs on the thread that runs `ctx`.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "cri/streaming/request_cache.h"
#include "cri/streaming/server.h"

namespace berth::streaming {

using WsStream = boost::beast::websocket::stream<boost::beast::tcp_stream>;

struct WsOptions {
  std::string protocol;  // the negotiated subprotocol ("" = none offered: v1 rules)
};

// kubectl exec: runs request.cmd through `runtime`, streams stdin/stdout/stderr (or one
// pty) and resizes, then the exit status on the error channel (v4/v5).
void runWsExec(boost::asio::io_context& ctx, std::shared_ptr<WsStream> ws, StreamingRuntime& runtime,
               const ExecRequest& request, const WsOptions& options);
// kubectl attach: the container's output from now on and its stdin; ends when the
// container's output ends (it exited) or the client closes.
void runWsAttach(boost::asio::io_context& ctx, std::shared_ptr<WsStream> ws, StreamingRuntime& runtime,
                 const AttachRequest& request, const WsOptions& options);
// kubectl port-forward (WebSocket): one TCP connection per port, channels 2i / 2i+1.
void runWsPortForward(boost::asio::io_context& ctx, std::shared_ptr<WsStream> ws, StreamingRuntime& runtime,
                      const std::string& pod_sandbox_id, const std::vector<int32_t>& ports);

}  // namespace berth::streaming
