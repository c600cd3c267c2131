#include "csi/server.h"

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>

#include "common/fs.h"
#include "common/log.h"
#include "csi/controller_service.h"
#include "csi/driver_info.h"
#include "csi/hostpath_backend.h"
#include "csi/identity_service.h"
#include "csi/node_publisher.h"
#include "csi/node_service.h"
#include "csi/proto/pluginregistration.grpc.pb.h"
#include "csi/volume_store.h"

namespace berth::csi {
namespace {

std::shared_ptr<spdlog::logger> logger() { return log::get("csi"); }

std::string stripUnix(std::string path) {
  constexpr std::string_view kPrefix = "unix://";
  if (path.rfind(kPrefix, 0) == 0) path.erase(0, kPrefix.size());
  return path;
}

std::string dirOf(const std::string& path) {
  auto pos = path.rfind('/');
  return pos == std::string::npos || pos == 0 ? "/" : path.substr(0, pos);
}

StatusOr<std::unique_ptr<grpc::Server>> serve(const std::string& socket,
                                              std::vector<grpc::Service*> services,
                                              std::string_view what) {
  if (socket.empty() || socket.front() != '/') {
    return invalidArgument(what, " socket \"", socket, "\" must be an absolute path");
  }
  RETURN_IF_ERROR(fs::mkdirAll(dirOf(socket), 0750));
  ::unlink(socket.c_str());  // left by a previous run; the new server owns the path
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("unix://" + socket, grpc::InsecureServerCredentials(), &port);
  for (grpc::Service* s : services) builder.RegisterService(s);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    return internalError("serve ", what, " on \"", socket,
                         "\" failed (see the gRPC log; paths longer than 107 bytes cannot be "
                         "unix sockets)");
  }
  if (::chmod(socket.c_str(), 0600) != 0) {
    server->Shutdown();
    return lastErrnoError(strCat("chmod 0600 \"", socket, "\""));
  }
  return server;
}

}  // namespace

// pluginregistration.Registration: what kubelet's plugin watcher asks.
class CsiServer::RegistrationService final : public ::pluginregistration::Registration::Service {
 public:
  explicit RegistrationService(CsiServer* owner) : owner_(owner) {}

  grpc::Status GetInfo(grpc::ServerContext*, const ::pluginregistration::InfoRequest*,
                       ::pluginregistration::PluginInfo* info) override {
    info->set_type("CSIPlugin");
    info->set_name(std::string(kDriverName));
    info->set_endpoint(owner_->endpoint_);
    info->add_supported_versions(std::string(kCsiVersion));
    return grpc::Status::OK;
  }

  grpc::Status NotifyRegistrationStatus(grpc::ServerContext*,
                                        const ::pluginregistration::RegistrationStatus* status,
                                        ::pluginregistration::RegistrationStatusResponse*) override {
    {
      std::lock_guard<std::mutex> lock(owner_->mu_);
      owner_->registration_.notified = true;
      owner_->registration_.registered = status->plugin_registered();
      owner_->registration_.error = status->error();
    }
    if (status->plugin_registered()) {
      logger()->info("kubelet registered CSI driver {} (endpoint {})", kDriverName,
                     owner_->endpoint_);
    } else {
      logger()->error("kubelet could not register CSI driver {}: {}", kDriverName,
                      status->error());
    }
    return grpc::Status::OK;
  }

 private:
  CsiServer* owner_;
};

struct CsiServer::Services {
  std::unique_ptr<IdentityService> identity;
  std::unique_ptr<ControllerService> controller;
  std::unique_ptr<NodeService> node;
  std::unique_ptr<RegistrationService> registration;
};

CsiServer::CsiServer() = default;

CsiServer::~CsiServer() { shutdown(0); }

StatusOr<std::unique_ptr<CsiServer>> CsiServer::start(ServerOptions options) {
  std::unique_ptr<CsiServer> s(new CsiServer());
  if (options.kubelet_root_dir.empty()) {
    return invalidArgument("--kubelet-root-dir must not be empty");
  }
  s->endpoint_ = options.endpoint.empty() ? defaultCsiSocket(options.kubelet_root_dir)
                                          : stripUnix(options.endpoint);
  if (options.register_with_kubelet) {
    s->registration_socket_ = options.registration_socket.empty()
                                  ? defaultRegistrationSocket(options.kubelet_root_dir)
                                  : stripUnix(options.registration_socket);
  }
  if (options.node_id.empty()) {
    char host[256] = {};
    if (::gethostname(host, sizeof(host) - 1) != 0) return lastErrnoError("gethostname");
    options.node_id = host;
  }
  Database* db = options.database;
  if (db == nullptr) {
    RETURN_IF_ERROR(fs::mkdirAll(options.base_dir, 0750));
    ASSIGN_OR_RETURN(s->own_db_, Database::open(fs::join(options.base_dir, "csi.db")));
    db = s->own_db_.get();
  }
  ASSIGN_OR_RETURN(s->store_, VolumeStore::open(db));
  BackendOptions bo;
  bo.base_dir = options.base_dir;
  bo.node_id = options.node_id;
  bo.capacity_bytes = options.capacity_bytes;
  bo.max_volume_bytes = options.max_volume_bytes;
  bo.default_volume_bytes = options.default_volume_bytes;
  bo.use_quota = options.use_quota;
  ASSIGN_OR_RETURN(s->backend_, HostPathBackend::create(std::move(bo), s->store_.get()));
  Syscalls& sys = options.syscalls != nullptr ? *options.syscalls : RealSyscalls::get();
  s->publisher_ = std::make_unique<NodePublisher>(s->backend_.get(), sys);
  RETURN_IF_ERROR_CTX(s->publisher_->recover(), "recover CSI node publications");

  s->services_ = std::make_unique<Services>();
  s->services_->identity =
      std::make_unique<IdentityService>(s->backend_.get(), options.vendor_version);
  s->services_->controller = std::make_unique<ControllerService>(s->backend_.get());
  s->services_->node = std::make_unique<NodeService>(s->backend_.get(), s->publisher_.get(),
                                                     options.max_volumes_per_node);
  s->services_->registration = std::make_unique<RegistrationService>(s.get());
  ASSIGN_OR_RETURN(s->csi_server_,
                   serve(s->endpoint_,
                         {s->services_->identity.get(), s->services_->controller.get(),
                          s->services_->node.get()},
                         "CSI"));
  if (options.register_with_kubelet) {
    ASSIGN_OR_RETURN(s->registration_server_,
                     serve(s->registration_socket_, {s->services_->registration.get()},
                           "kubelet plugin registration"));
  }
  s->options_ = std::move(options);
  logger()->info("CSI driver {} serving on unix://{}{} (node {}, base {}, capacity {})",
                 kDriverName, s->endpoint_,
                 s->registration_socket_.empty() ? std::string()
                                                 : strCat(", registration on unix://",
                                                          s->registration_socket_),
                 s->backend_->options().node_id, s->backend_->options().base_dir,
                 s->backend_->capacityMode());
  return s;
}

void CsiServer::shutdown(int grace_ms) {
  if (stopped_) return;
  stopped_ = true;
  auto deadline = std::chrono::system_clock::now() + std::chrono::milliseconds(grace_ms);
  if (registration_server_) {
    registration_server_->Shutdown(deadline);
    registration_server_.reset();
    ::unlink(registration_socket_.c_str());
  }
  if (csi_server_) {
    csi_server_->Shutdown(deadline);
    csi_server_.reset();
    ::unlink(endpoint_.c_str());
  }
}

CsiServer::Registration CsiServer::registration() const {
  std::lock_guard<std::mutex> lock(mu_);
  return registration_;
}

}  // namespace berth::csi
