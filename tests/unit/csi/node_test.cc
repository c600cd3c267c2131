// Node RPCs that need no mount: capabilities, info, and the error codes the spec asks
// for before anything is mounted (the mounting paths are in the *Privileged* suites).
#include <set>

#include "tests/unit/csi/csi_test_server.h"

namespace berth::csi {
namespace {

using testing::blockCap;
using testing::CsiTestServer;
using testing::mountCap;
namespace v1 = ::csi::v1;

class CsiNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    srv_.options().max_volumes_per_node = 64;
    ASSERT_TRUE(srv_.start());
  }
  CsiTestServer srv_;
};

TEST_F(CsiNodeTest, CapabilitiesAndInfo) {
  v1::NodeGetCapabilitiesResponse caps;
  grpc::ClientContext c1;
  ASSERT_TRUE(srv_.node->NodeGetCapabilities(&c1, {}, &caps).ok());
  std::set<int> have;
  for (const auto& c : caps.capabilities()) have.insert(c.rpc().type());
  using Rpc = v1::NodeServiceCapability::RPC;
  EXPECT_EQ(have, (std::set<int>{Rpc::STAGE_UNSTAGE_VOLUME, Rpc::GET_VOLUME_STATS,
                                 Rpc::EXPAND_VOLUME, Rpc::VOLUME_CONDITION,
                                 Rpc::SINGLE_NODE_MULTI_WRITER}));
  v1::NodeGetInfoResponse info;
  grpc::ClientContext c2;
  ASSERT_TRUE(srv_.node->NodeGetInfo(&c2, {}, &info).ok());
  EXPECT_EQ(info.node_id(), "node-a");
  EXPECT_EQ(info.max_volumes_per_node(), 64);
  EXPECT_EQ(info.accessible_topology().segments().at("topology.hostpath.berth.dev/node"),
            "node-a");
}

TEST_F(CsiNodeTest, MissingFieldsAreInvalidArgumentWithTheFieldNamed) {
  auto expectField = [](const grpc::Status& st, const std::string& field) {
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << field;
    EXPECT_NE(st.error_message().find(field), std::string::npos) << st.error_message();
  };
  std::string t = srv_.root() + "/t";
  expectField(srv_.stage("", t, mountCap()), "volume_id");
  expectField(srv_.stage("v", "", mountCap()), "staging_target_path");
  expectField(srv_.unstage("", t), "volume_id");
  expectField(srv_.unstage("v", ""), "staging_target_path");
  expectField(srv_.publish("", t, t, mountCap()), "volume_id");
  expectField(srv_.publish("v", t, "", mountCap()), "target_path");
  expectField(srv_.unpublish("", t), "volume_id");
  expectField(srv_.unpublish("v", ""), "target_path");
  {
    v1::NodePublishVolumeRequest req;
    req.set_volume_id("v");
    req.set_target_path(t);
    v1::NodePublishVolumeResponse resp;
    grpc::ClientContext ctx;
    expectField(srv_.node->NodePublishVolume(&ctx, req, &resp), "volume_capability");
  }
  {
    v1::NodeStageVolumeRequest req;
    req.set_volume_id("v");
    req.set_staging_target_path(t);
    v1::NodeStageVolumeResponse resp;
    grpc::ClientContext ctx;
    expectField(srv_.node->NodeStageVolume(&ctx, req, &resp), "volume_capability");
  }
  {
    v1::NodeGetVolumeStatsRequest req;
    req.set_volume_path(t);
    v1::NodeGetVolumeStatsResponse resp;
    grpc::ClientContext c1;
    expectField(srv_.node->NodeGetVolumeStats(&c1, req, &resp), "volume_id");
    req.set_volume_id("v");
    req.clear_volume_path();
    grpc::ClientContext c2;
    expectField(srv_.node->NodeGetVolumeStats(&c2, req, &resp), "volume_path");
  }
  {
    v1::NodeExpandVolumeRequest req;
    req.set_volume_path(t);
    v1::NodeExpandVolumeResponse resp;
    grpc::ClientContext c1;
    expectField(srv_.node->NodeExpandVolume(&c1, req, &resp), "volume_id");
    req.set_volume_id("v");
    req.clear_volume_path();
    grpc::ClientContext c2;
    expectField(srv_.node->NodeExpandVolume(&c2, req, &resp), "volume_path");
  }
}

TEST_F(CsiNodeTest, UnknownVolumesAreNotFound) {
  std::string t = srv_.root() + "/t";
  EXPECT_EQ(srv_.stage("missing", t, mountCap()).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(srv_.unstage("missing", t).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(srv_.publish("missing", t, t, mountCap()).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(srv_.unpublish("missing", t).error_code(), grpc::StatusCode::NOT_FOUND);
  v1::NodeGetVolumeStatsRequest req;
  req.set_volume_id("missing");
  req.set_volume_path("some/path");
  v1::NodeGetVolumeStatsResponse resp;
  grpc::ClientContext ctx;
  EXPECT_EQ(srv_.node->NodeGetVolumeStats(&ctx, req, &resp).error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::NodeExpandVolumeRequest ereq;
  ereq.set_volume_id("missing");
  ereq.set_volume_path("some/path");
  v1::NodeExpandVolumeResponse eresp;
  grpc::ClientContext ctx2;
  EXPECT_EQ(srv_.node->NodeExpandVolume(&ctx2, ereq, &eresp).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(CsiNodeTest, PublishNeedsStagingAndTheRightAccessType) {
  std::string id = srv_.mustCreate("n1", 1 << 20);
  std::string t = srv_.root() + "/target";
  auto st = srv_.publish(id, "", t, mountCap());
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(st.error_message().find("NodeStageVolume"), std::string::npos);
  EXPECT_EQ(srv_.publish(id, srv_.root() + "/not-staged", t, mountCap()).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(srv_.stage(id, srv_.root() + "/stage", blockCap()).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_FALSE(fs::exists(t));
}

TEST_F(CsiNodeTest, UnstageAndUnpublishOfNothingAreOk) {
  std::string id = srv_.mustCreate("n2", 1 << 20);
  EXPECT_TRUE(srv_.unstage(id, srv_.root() + "/never-staged").ok());
  EXPECT_TRUE(srv_.unpublish(id, srv_.root() + "/never-published").ok());
}

TEST_F(CsiNodeTest, StatsOnAPathThatIsNotTheVolumesIsNotFound) {
  std::string id = srv_.mustCreate("n3", 1 << 20);
  ASSERT_TRUE(fs::mkdirAll(srv_.root() + "/elsewhere").ok());
  for (std::string path : {std::string("some/path"), srv_.root() + "/elsewhere"}) {
    v1::NodeGetVolumeStatsRequest req;
    req.set_volume_id(id);
    req.set_volume_path(path);
    v1::NodeGetVolumeStatsResponse resp;
    grpc::ClientContext ctx;
    EXPECT_EQ(srv_.node->NodeGetVolumeStats(&ctx, req, &resp).error_code(),
              grpc::StatusCode::NOT_FOUND) << path;
  }
}

}  // namespace
}  // namespace berth::csi
