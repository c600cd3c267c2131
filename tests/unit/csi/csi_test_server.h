// A real CsiServer on a temp directory with gRPC stubs for its four services, for the
// CSI driver's tests (unit and privileged). Sockets live in a short /tmp directory
// (unix socket paths are limited to 107 bytes).
#pragma once

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <memory>
#include <string>

#include "common/fs.h"
#include "csi/driver_info.h"
#include "csi/hostpath_backend.h"
#include "csi/proto/csi.grpc.pb.h"
#include "csi/proto/pluginregistration.grpc.pb.h"
#include "csi/server.h"

namespace berth::csi::testing {

namespace v1 = ::csi::v1;

inline v1::VolumeCapability mountCap(
    v1::VolumeCapability::AccessMode::Mode mode = v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER) {
  v1::VolumeCapability cap;
  cap.mutable_mount();
  cap.mutable_access_mode()->set_mode(mode);
  return cap;
}

inline v1::VolumeCapability blockCap(
    v1::VolumeCapability::AccessMode::Mode mode = v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER) {
  v1::VolumeCapability cap;
  cap.mutable_block();
  cap.mutable_access_mode()->set_mode(mode);
  return cap;
}

class CsiTestServer {
 public:
  // Makes the temp dir; call start() (possibly after adjusting options()).
  CsiTestServer() {
    char tmpl[] = "/tmp/csi-XXXXXX";
    char* dir = ::mkdtemp(tmpl);
    EXPECT_NE(dir, nullptr);
    root_ = dir != nullptr ? dir : "/tmp/csi-failed";
    options_.kubelet_root_dir = root_ + "/kubelet";
    options_.base_dir = root_ + "/volumes";
    options_.endpoint = root_ + "/csi.sock";
    options_.registration_socket = root_ + "/reg.sock";
    options_.node_id = "node-a";
    options_.capacity_bytes = int64_t{1} << 30;  // 1 GiB accounted pool
    options_.default_volume_bytes = 16 << 20;
    options_.use_quota = false;
  }
  ~CsiTestServer() {
    stop();
    (void)fs::removeAll(root_);
  }

  ServerOptions& options() { return options_; }
  const std::string& root() const { return root_; }

  ::testing::AssertionResult start() {
    auto s = CsiServer::start(options_);
    if (!s.ok()) return ::testing::AssertionFailure() << s.status().ToString();
    server_ = std::move(*s);
    auto channel = grpc::CreateChannel("unix://" + server_->endpoint(),
                                       grpc::InsecureChannelCredentials());
    identity = v1::Identity::NewStub(channel);
    controller = v1::Controller::NewStub(channel);
    node = v1::Node::NewStub(channel);
    if (!server_->registrationSocket().empty()) {
      registration = ::pluginregistration::Registration::NewStub(grpc::CreateChannel(
          "unix://" + server_->registrationSocket(), grpc::InsecureChannelCredentials()));
    }
    return ::testing::AssertionSuccess();
  }

  void stop() {
    identity.reset();
    controller.reset();
    node.reset();
    registration.reset();
    server_.reset();
  }

  CsiServer& server() { return *server_; }

  // CreateVolume with one capability; returns the status and fills `out`.
  grpc::Status create(const std::string& name, int64_t required, const v1::VolumeCapability& cap,
                      v1::CreateVolumeResponse* out, int64_t limit = 0) {
    v1::CreateVolumeRequest req;
    req.set_name(name);
    *req.add_volume_capabilities() = cap;
    if (required > 0 || limit > 0) {
      req.mutable_capacity_range()->set_required_bytes(required);
      req.mutable_capacity_range()->set_limit_bytes(limit);
    }
    grpc::ClientContext ctx;
    return controller->CreateVolume(&ctx, req, out);
  }

  // CreateVolume that must succeed; returns the volume id.
  std::string mustCreate(const std::string& name, int64_t required,
                         const v1::VolumeCapability& cap = mountCap()) {
    v1::CreateVolumeResponse resp;
    grpc::Status st = create(name, required, cap, &resp);
    EXPECT_TRUE(st.ok()) << name << ": " << st.error_message();
    return resp.volume().volume_id();
  }

  grpc::Status deleteVolume(const std::string& id) {
    v1::DeleteVolumeRequest req;
    req.set_volume_id(id);
    v1::DeleteVolumeResponse resp;
    grpc::ClientContext ctx;
    return controller->DeleteVolume(&ctx, req, &resp);
  }

  grpc::Status snapshot(const std::string& name, const std::string& volume_id,
                        v1::CreateSnapshotResponse* out) {
    v1::CreateSnapshotRequest req;
    req.set_name(name);
    req.set_source_volume_id(volume_id);
    grpc::ClientContext ctx;
    return controller->CreateSnapshot(&ctx, req, out);
  }

  grpc::Status stage(const std::string& id, const std::string& path,
                     const v1::VolumeCapability& cap) {
    v1::NodeStageVolumeRequest req;
    req.set_volume_id(id);
    req.set_staging_target_path(path);
    *req.mutable_volume_capability() = cap;
    v1::NodeStageVolumeResponse resp;
    grpc::ClientContext ctx;
    return node->NodeStageVolume(&ctx, req, &resp);
  }

  grpc::Status unstage(const std::string& id, const std::string& path) {
    v1::NodeUnstageVolumeRequest req;
    req.set_volume_id(id);
    req.set_staging_target_path(path);
    v1::NodeUnstageVolumeResponse resp;
    grpc::ClientContext ctx;
    return node->NodeUnstageVolume(&ctx, req, &resp);
  }

  grpc::Status publish(const std::string& id, const std::string& staging, const std::string& target,
                       const v1::VolumeCapability& cap, bool readonly = false) {
    v1::NodePublishVolumeRequest req;
    req.set_volume_id(id);
    req.set_staging_target_path(staging);
    req.set_target_path(target);
    *req.mutable_volume_capability() = cap;
    req.set_readonly(readonly);
    v1::NodePublishVolumeResponse resp;
    grpc::ClientContext ctx;
    return node->NodePublishVolume(&ctx, req, &resp);
  }

  grpc::Status unpublish(const std::string& id, const std::string& target) {
    v1::NodeUnpublishVolumeRequest req;
    req.set_volume_id(id);
    req.set_target_path(target);
    v1::NodeUnpublishVolumeResponse resp;
    grpc::ClientContext ctx;
    return node->NodeUnpublishVolume(&ctx, req, &resp);
  }

  std::unique_ptr<v1::Identity::Stub> identity;
  std::unique_ptr<v1::Controller::Stub> controller;
  std::unique_ptr<v1::Node::Stub> node;
  std::unique_ptr<::pluginregistration::Registration::Stub> registration;

 private:
  std::string root_;
  ServerOptions options_;
  std::unique_ptr<CsiServer> server_;
};

}  // namespace berth::csi::testing
