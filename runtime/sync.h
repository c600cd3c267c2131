// The create/exec synchronisation protocol between berth-runtime (parent), its
// namespace helper and the container init/exec process: fixed-size messages with an
// optional text over a SOCK_SEQPACKET socketpair. Internal to runtime/.
#pragma once

#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "common/status.h"
#include "common/strings.h"

namespace berth::runtime::sync {

enum class Msg : uint32_t {
  kGo = 1,             // parent -> child: continue (value: the child's host pid)
  kUsernsReady,        // helper -> parent: new user ns made; write my id maps
  kUsernsMapped,       // parent -> helper: maps written
  kChildPid,           // helper -> parent: value = host pid of the init / exec process
  kCreateRuntime,      // init -> parent: run prestart + createRuntime hooks now
  kHooksDone,          // parent -> init
  kCreated,            // init -> parent: fully set up, waiting on the exec FIFO
  kError,              // child -> parent: text is the error message
};

struct Packet {
  Msg type;
  int64_t value = 0;
  std::string text;
};

inline Status send(int fd, Msg type, int64_t value = 0, const std::string& text = {}) {
  std::string buf(sizeof(uint32_t) + sizeof(int64_t), '\0');
  uint32_t t = static_cast<uint32_t>(type);
  std::memcpy(buf.data(), &t, sizeof(t));
  std::memcpy(buf.data() + sizeof(t), &value, sizeof(value));
  buf += text.substr(0, 60000);
  ssize_t n;
  do {
    n = ::send(fd, buf.data(), buf.size(), MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return lastErrnoError("sync: send");
  return absl::OkStatus();
}

// Receives one packet. Errors: Unavailable "peer closed" on EOF.
inline StatusOr<Packet> receive(int fd) {
  std::string buf(65536, '\0');
  ssize_t n;
  do {
    n = ::recv(fd, buf.data(), buf.size(), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return lastErrnoError("sync: receive");
  if (n == 0) return absl::UnavailableError("peer closed");
  if (static_cast<size_t>(n) < sizeof(uint32_t) + sizeof(int64_t)) {
    return internalError("sync: short message");
  }
  Packet p;
  uint32_t t;
  std::memcpy(&t, buf.data(), sizeof(t));
  p.type = static_cast<Msg>(t);
  std::memcpy(&p.value, buf.data() + sizeof(t), sizeof(p.value));
  p.text = buf.substr(sizeof(t) + sizeof(int64_t), static_cast<size_t>(n) - sizeof(t) - sizeof(int64_t));
  return p;
}

// Receives and checks the type; a kError packet becomes an error with its text.
inline StatusOr<Packet> expect(int fd, Msg type) {
  ASSIGN_OR_RETURN(Packet p, receive(fd));
  if (p.type == Msg::kError) return internalError(p.text);
  if (p.type != type) {
    return internalError("sync: expected message ", static_cast<uint32_t>(type), ", got ",
                         static_cast<uint32_t>(p.type));
  }
  return p;
}

}  // namespace berth::runtime::sync
