// The hostPath CSI driver as berthd runs it: the csi.v1 Identity, Controller and Node
// services on one unix socket (kubelet's <kubelet-root>/plugins/hostpath.berth.dev/
// csi.sock by default), and kubelet's plugin registration service
// (pluginregistration.Registration) on <kubelet-root>/plugins_registry/
// hostpath.berth.dev-reg.sock, so kubelet's plugin watcher finds and registers the
// driver without the node-driver-registrar sidecar. GetInfo answers type "CSIPlugin",
// name "hostpath.berth.dev", endpoint = the CSI socket path, supported_versions
// ["1.0.0"]; NotifyRegistrationStatus is recorded (registration()) and logged.
//
// Start order: metadata and backend (with crash recovery), node recovery, the CSI
// socket, then the registration socket (kubelet dials the CSI endpoint as soon as it
// has registered). shutdown() reverses it and removes both socket files.
//
// Usage (berthd):
//   csi::ServerOptions opts;
//   opts.kubelet_root_dir = flags.kubelet_root_dir;   // --kubelet-root-dir
//   opts.base_dir = flags.csi_base_dir;               // --csi-base-dir
//   opts.endpoint = flags.csi_endpoint;               // --csi-endpoint ("" = default)
//   opts.node_id = node_name;
//   opts.database = &berth_db;                        // or nullptr: <base_dir>/csi.db
//   ASSIGN_OR_RETURN(auto csi, csi::CsiServer::start(std::move(opts)));
//   ... csi->shutdown() on SIGTERM (also done by the destructor).
//
// Thread-safety: start()/shutdown() from one thread; the accessors are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "common/sqlite.h"
#include "common/status.h"
#include "common/syscalls.h"

namespace grpc {
class Server;
}

namespace berth::csi {

class HostPathBackend;
class NodePublisher;
class VolumeStore;

struct ServerOptions {
  std::string kubelet_root_dir = "/var/lib/kubelet";
  std::string base_dir = "/var/lib/berth/volumes";
  // The CSI socket path; "" = <kubelet_root_dir>/plugins/hostpath.berth.dev/csi.sock.
  // A "unix://" prefix is accepted and stripped.
  std::string endpoint;
  // The registration socket; "" = <kubelet_root_dir>/plugins_registry/
  // hostpath.berth.dev-reg.sock. Not served when register_with_kubelet is false.
  std::string registration_socket;
  bool register_with_kubelet = true;
  std::string node_id;               // "" = the host name
  int64_t max_volumes_per_node = 0;  // NodeGetInfo; 0 = no limit stated
  int64_t capacity_bytes = 0;        // accounted pool; 0 = the base filesystem's size
  int64_t max_volume_bytes = 0;      // 0 = no per-volume limit below the pool
  int64_t default_volume_bytes = int64_t{1} << 30;
  bool use_quota = true;             // probe and use project quotas when available
  Database* database = nullptr;      // shared berthd database; null = <base_dir>/csi.db
  std::string vendor_version = "0.1.0";
  Syscalls* syscalls = nullptr;      // mount(2) etc.; null = RealSyscalls
};

class CsiServer {
 public:
  // Starts everything (see the file comment). Errors: invalid options, the database,
  // backend recovery, or a socket that cannot be served (path named).
  static StatusOr<std::unique_ptr<CsiServer>> start(ServerOptions options);
  ~CsiServer();
  CsiServer(const CsiServer&) = delete;
  CsiServer& operator=(const CsiServer&) = delete;

  // Stops both servers (in-flight calls get up to `grace_ms`) and removes the socket
  // files. Idempotent.
  void shutdown(int grace_ms = 2000);

  const std::string& endpoint() const { return endpoint_; }
  const std::string& registrationSocket() const { return registration_socket_; }

  struct Registration {
    bool notified = false;    // kubelet called NotifyRegistrationStatus
    bool registered = false;  // and said the plugin is registered
    std::string error;
  };
  Registration registration() const;

  HostPathBackend& backend() { return *backend_; }

 private:
  CsiServer();
  class RegistrationService;
  struct Services;

  ServerOptions options_;
  std::string endpoint_;
  std::string registration_socket_;
  std::unique_ptr<Database> own_db_;
  std::unique_ptr<VolumeStore> store_;
  std::unique_ptr<HostPathBackend> backend_;
  std::unique_ptr<NodePublisher> publisher_;
  std::unique_ptr<Services> services_;
  std::unique_ptr<grpc::Server> csi_server_;
  std::unique_ptr<grpc::Server> registration_server_;
  mutable std::mutex mu_;
  Registration registration_;  // guarded by mu_
  bool stopped_ = false;
};

}  // namespace berth::csi
