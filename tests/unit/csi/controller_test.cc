// Identity, Controller and Registration RPCs against a real CsiServer on a temp
// socket (no mounts: everything here works on plain directories and files).
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <set>
#include <thread>

#include "tests/unit/csi/csi_test_server.h"

namespace berth::csi {
namespace {

using testing::blockCap;
using testing::CsiTestServer;
using testing::mountCap;
namespace v1 = ::csi::v1;
using Mode = v1::VolumeCapability::AccessMode;

constexpr int64_t kMiB = 1 << 20;

class CsiControllerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(srv_.start()); }
  std::string volumePath(const std::string& id) { return srv_.root() + "/volumes/volumes/" + id; }

  CsiTestServer srv_;
};

TEST_F(CsiControllerTest, PluginInfoCapabilitiesAndProbe) {
  v1::GetPluginInfoResponse info;
  grpc::ClientContext c1;
  ASSERT_TRUE(srv_.identity->GetPluginInfo(&c1, {}, &info).ok());
  EXPECT_EQ(info.name(), "hostpath.berth.dev");
  EXPECT_FALSE(info.vendor_version().empty());

  v1::GetPluginCapabilitiesResponse caps;
  grpc::ClientContext c2;
  ASSERT_TRUE(srv_.identity->GetPluginCapabilities(&c2, {}, &caps).ok());
  std::set<int> services;
  bool online = false;
  for (const auto& c : caps.capabilities()) {
    if (c.has_service()) services.insert(c.service().type());
    if (c.has_volume_expansion()) online = c.volume_expansion().type() == v1::PluginCapability::VolumeExpansion::ONLINE;
  }
  EXPECT_TRUE(services.count(v1::PluginCapability::Service::CONTROLLER_SERVICE));
  EXPECT_TRUE(services.count(v1::PluginCapability::Service::VOLUME_ACCESSIBILITY_CONSTRAINTS));
  EXPECT_TRUE(online);

  v1::ProbeResponse probe;
  grpc::ClientContext c3;
  ASSERT_TRUE(srv_.identity->Probe(&c3, {}, &probe).ok());
  EXPECT_TRUE(probe.ready().value());
}

TEST_F(CsiControllerTest, RegistrationAnswersKubeletPluginWatcher) {
  ::pluginregistration::PluginInfo info;
  grpc::ClientContext c1;
  ASSERT_TRUE(srv_.registration->GetInfo(&c1, {}, &info).ok());
  EXPECT_EQ(info.type(), "CSIPlugin");
  EXPECT_EQ(info.name(), "hostpath.berth.dev");
  EXPECT_EQ(info.endpoint(), srv_.root() + "/csi.sock");
  ASSERT_EQ(info.supported_versions_size(), 1);
  EXPECT_EQ(info.supported_versions(0), "1.0.0");

  EXPECT_FALSE(srv_.server().registration().notified);
  ::pluginregistration::RegistrationStatus status;
  status.set_plugin_registered(false);
  status.set_error("version mismatch");
  ::pluginregistration::RegistrationStatusResponse resp;
  grpc::ClientContext c2;
  ASSERT_TRUE(srv_.registration->NotifyRegistrationStatus(&c2, status, &resp).ok());
  auto reg = srv_.server().registration();
  EXPECT_TRUE(reg.notified);
  EXPECT_FALSE(reg.registered);
  EXPECT_EQ(reg.error, "version mismatch");
}

TEST_F(CsiControllerTest, DefaultSocketsFollowKubeletRoot) {
  EXPECT_EQ(defaultCsiSocket("/var/lib/kubelet"),
            "/var/lib/kubelet/plugins/hostpath.berth.dev/csi.sock");
  EXPECT_EQ(defaultRegistrationSocket("/var/lib/kubelet"),
            "/var/lib/kubelet/plugins_registry/hostpath.berth.dev-reg.sock");
}

TEST_F(CsiControllerTest, ControllerCapabilities) {
  v1::ControllerGetCapabilitiesResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(srv_.controller->ControllerGetCapabilities(&ctx, {}, &resp).ok());
  std::set<int> have;
  for (const auto& c : resp.capabilities()) have.insert(c.rpc().type());
  using Rpc = v1::ControllerServiceCapability::RPC;
  for (int want : {Rpc::CREATE_DELETE_VOLUME, Rpc::LIST_VOLUMES, Rpc::GET_CAPACITY,
                   Rpc::CREATE_DELETE_SNAPSHOT, Rpc::LIST_SNAPSHOTS, Rpc::CLONE_VOLUME,
                   Rpc::EXPAND_VOLUME, Rpc::VOLUME_CONDITION, Rpc::GET_VOLUME,
                   Rpc::SINGLE_NODE_MULTI_WRITER}) {
    EXPECT_TRUE(have.count(want)) << "missing capability " << want;
  }
  EXPECT_FALSE(have.count(Rpc::PUBLISH_UNPUBLISH_VOLUME));
}

TEST_F(CsiControllerTest, CreateMountVolumeMakesDirectoryWithContextAndTopology) {
  v1::CreateVolumeResponse resp;
  ASSERT_TRUE(srv_.create("pvc-1", 8 * kMiB, mountCap(), &resp).ok());
  const auto& vol = resp.volume();
  EXPECT_EQ(vol.volume_id().size(), 32u);
  EXPECT_EQ(vol.capacity_bytes(), 8 * kMiB);
  EXPECT_EQ(vol.volume_context().at("berth.dev/capacity-enforced"), "accounted");
  ASSERT_EQ(vol.accessible_topology_size(), 1);
  EXPECT_EQ(vol.accessible_topology(0).segments().at("topology.hostpath.berth.dev/node"),
            "node-a");
  struct stat st;
  ASSERT_EQ(::stat(volumePath(vol.volume_id()).c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0777u);
}

TEST_F(CsiControllerTest, CreateBlockVolumeMakesSparseFileOfCapacity) {
  v1::CreateVolumeResponse resp;
  ASSERT_TRUE(srv_.create("blk", 64 * kMiB, blockCap(), &resp).ok());
  struct stat st;
  ASSERT_EQ(::stat((volumePath(resp.volume().volume_id()) + ".img").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_size, 64 * kMiB);
  EXPECT_LT(st.st_blocks * 512, 64 * kMiB);  // sparse
}

TEST_F(CsiControllerTest, CreateVolumeIsIdempotentByName) {
  v1::CreateVolumeResponse a, b, c;
  ASSERT_TRUE(srv_.create("same", 4 * kMiB, mountCap(), &a).ok());
  ASSERT_TRUE(srv_.create("same", 4 * kMiB, mountCap(), &b).ok());
  EXPECT_EQ(a.volume().volume_id(), b.volume().volume_id());
  // A range the existing volume fits is compatible too.
  ASSERT_TRUE(srv_.create("same", 2 * kMiB, mountCap(), &c, 8 * kMiB).ok());
  EXPECT_EQ(a.volume().volume_id(), c.volume().volume_id());

  v1::CreateVolumeResponse d;
  EXPECT_EQ(srv_.create("same", 8 * kMiB, mountCap(), &d).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(srv_.create("same", 4 * kMiB, blockCap(), &d).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
}

TEST_F(CsiControllerTest, SameNameFromManyThreadsAtOnceMakesOneVolume) {
  constexpr int kThreads = 8;
  std::vector<std::thread> threads;
  std::vector<grpc::Status> results(kThreads);
  std::vector<std::string> ids(kThreads);
  std::atomic<bool> go{false};
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      while (!go.load()) std::this_thread::yield();
      v1::CreateVolumeResponse resp;
      results[i] = srv_.create("raced", 4 * kMiB, mountCap(), &resp);
      ids[i] = resp.volume().volume_id();
    });
  }
  go = true;
  for (auto& t : threads) t.join();
  std::set<std::string> distinct;
  for (int i = 0; i < kThreads; ++i) {
    if (results[i].ok()) {
      distinct.insert(ids[i]);
    } else {
      EXPECT_EQ(results[i].error_code(), grpc::StatusCode::ABORTED) << results[i].error_message();
    }
  }
  EXPECT_EQ(distinct.size(), 1u);
  // A retry after the race returns that one volume; only one directory exists.
  v1::CreateVolumeResponse again;
  ASSERT_TRUE(srv_.create("raced", 4 * kMiB, mountCap(), &again).ok());
  EXPECT_EQ(distinct.count(again.volume().volume_id()), 1u);
  auto entries = fs::listDir(srv_.root() + "/volumes/volumes");
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ(entries->size(), 1u);
}

TEST_F(CsiControllerTest, CreateVolumeNamesTheMissingField) {
  v1::CreateVolumeResponse resp;
  v1::CreateVolumeRequest req;
  *req.add_volume_capabilities() = mountCap();
  grpc::ClientContext c1;
  auto st = srv_.controller->CreateVolume(&c1, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("name"), std::string::npos);

  req.set_name("x");
  req.clear_volume_capabilities();
  grpc::ClientContext c2;
  st = srv_.controller->CreateVolume(&c2, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("volume_capabilities"), std::string::npos);

  v1::VolumeCapability no_type;
  no_type.mutable_access_mode()->set_mode(Mode::SINGLE_NODE_WRITER);
  st = srv_.create("x", 0, no_type, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("access_type"), std::string::npos);

  v1::VolumeCapability no_mode;
  no_mode.mutable_mount();
  st = srv_.create("x", 0, no_mode, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("access_mode"), std::string::npos);

  req.clear_volume_capabilities();
  *req.add_volume_capabilities() = mountCap();
  *req.add_volume_capabilities() = blockCap();
  grpc::ClientContext c3;
  EXPECT_EQ(srv_.controller->CreateVolume(&c3, req, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(CsiControllerTest, EveryAccessModeIsValidOnOneNode) {
  for (int mode = Mode::SINGLE_NODE_WRITER; mode <= Mode::SINGLE_NODE_MULTI_WRITER; ++mode) {
    v1::CreateVolumeResponse resp;
    auto st = srv_.create(strCat("mode-", mode), kMiB, mountCap(static_cast<Mode::Mode>(mode)),
                          &resp);
    EXPECT_TRUE(st.ok()) << "mode " << mode << ": " << st.error_message();
  }
}

TEST_F(CsiControllerTest, CapacityRangeChecks) {
  v1::CreateVolumeResponse resp;
  EXPECT_EQ(srv_.create("r1", 8 * kMiB, mountCap(), &resp, 4 * kMiB).error_code(),
            grpc::StatusCode::OUT_OF_RANGE);
  // More than the 1 GiB pool.
  EXPECT_EQ(srv_.create("r2", 2LL << 30, mountCap(), &resp).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  // Only a limit: the default (16 MiB) clamped to it.
  ASSERT_TRUE(srv_.create("r3", 0, mountCap(), &resp, 2 * kMiB).ok());
  EXPECT_EQ(resp.volume().capacity_bytes(), 2 * kMiB);
  // Nothing: the default.
  ASSERT_TRUE(srv_.create("r4", 0, mountCap(), &resp).ok());
  EXPECT_EQ(resp.volume().capacity_bytes(), 16 * kMiB);
}

TEST_F(CsiControllerTest, MaxVolumeSizeIsOutOfRange) {
  srv_.stop();
  srv_.options().max_volume_bytes = 32 * kMiB;
  ASSERT_TRUE(srv_.start());
  v1::CreateVolumeResponse resp;
  EXPECT_EQ(srv_.create("big", 64 * kMiB, mountCap(), &resp).error_code(),
            grpc::StatusCode::OUT_OF_RANGE);
  v1::GetCapacityResponse cap;
  grpc::ClientContext ctx;
  ASSERT_TRUE(srv_.controller->GetCapacity(&ctx, {}, &cap).ok());
  EXPECT_EQ(cap.maximum_volume_size().value(), 32 * kMiB);
}

TEST_F(CsiControllerTest, AccessibilityRequirementsMustIncludeThisNode) {
  v1::CreateVolumeRequest req;
  req.set_name("topo");
  *req.add_volume_capabilities() = mountCap();
  auto* other = req.mutable_accessibility_requirements()->add_requisite();
  (*other->mutable_segments())["topology.hostpath.berth.dev/node"] = "node-b";
  v1::CreateVolumeResponse resp;
  grpc::ClientContext c1;
  EXPECT_EQ(srv_.controller->CreateVolume(&c1, req, &resp).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  auto* mine = req.mutable_accessibility_requirements()->add_requisite();
  (*mine->mutable_segments())["topology.hostpath.berth.dev/node"] = "node-a";
  grpc::ClientContext c2;
  EXPECT_TRUE(srv_.controller->CreateVolume(&c2, req, &resp).ok());
}

TEST_F(CsiControllerTest, DeleteVolumeIsIdempotentAndFreesTheReservation) {
  auto available = [&] {
    v1::GetCapacityResponse cap;
    grpc::ClientContext ctx;
    EXPECT_TRUE(srv_.controller->GetCapacity(&ctx, {}, &cap).ok());
    return cap.available_capacity();
  };
  int64_t before = available();
  EXPECT_EQ(before, int64_t{1} << 30);
  std::string id = srv_.mustCreate("del", 100 * kMiB);
  EXPECT_EQ(available(), before - 100 * kMiB);
  {
    std::ofstream(volumePath(id) + "/data") << std::string(1 << 16, 'x');
  }
  ASSERT_TRUE(srv_.deleteVolume(id).ok());
  EXPECT_FALSE(fs::exists(volumePath(id)));
  EXPECT_EQ(available(), before);
  EXPECT_TRUE(srv_.deleteVolume(id).ok());
  EXPECT_TRUE(srv_.deleteVolume("never-existed").ok());
  EXPECT_EQ(srv_.deleteVolume("").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(CsiControllerTest, GetCapacityForAnotherNodeIsZero) {
  v1::GetCapacityRequest req;
  (*req.mutable_accessible_topology()->mutable_segments())["topology.hostpath.berth.dev/node"] =
      "node-b";
  v1::GetCapacityResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(srv_.controller->GetCapacity(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.available_capacity(), 0);
}

TEST_F(CsiControllerTest, ValidateVolumeCapabilities) {
  std::string id = srv_.mustCreate("val", kMiB);
  v1::ValidateVolumeCapabilitiesRequest req;
  req.set_volume_id(id);
  *req.add_volume_capabilities() = mountCap(Mode::MULTI_NODE_MULTI_WRITER);
  v1::ValidateVolumeCapabilitiesResponse resp;
  grpc::ClientContext c1;
  ASSERT_TRUE(srv_.controller->ValidateVolumeCapabilities(&c1, req, &resp).ok());
  ASSERT_TRUE(resp.has_confirmed());
  EXPECT_EQ(resp.confirmed().volume_capabilities_size(), 1);

  *req.add_volume_capabilities() = blockCap();
  v1::ValidateVolumeCapabilitiesResponse mismatch;
  grpc::ClientContext c2;
  ASSERT_TRUE(srv_.controller->ValidateVolumeCapabilities(&c2, req, &mismatch).ok());
  EXPECT_FALSE(mismatch.has_confirmed());
  EXPECT_FALSE(mismatch.message().empty());

  req.set_volume_id("missing");
  grpc::ClientContext c3;
  EXPECT_EQ(srv_.controller->ValidateVolumeCapabilities(&c3, req, &resp).error_code(),
            grpc::StatusCode::NOT_FOUND);
  req.set_volume_id(id);
  req.clear_volume_capabilities();
  grpc::ClientContext c4;
  EXPECT_EQ(srv_.controller->ValidateVolumeCapabilities(&c4, req, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(CsiControllerTest, ListVolumesPaginates) {
  std::set<std::string> created;
  for (int i = 0; i < 5; ++i) created.insert(srv_.mustCreate(strCat("list-", i), kMiB));
  std::set<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    v1::ListVolumesRequest req;
    req.set_max_entries(2);
    req.set_starting_token(token);
    v1::ListVolumesResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(srv_.controller->ListVolumes(&ctx, req, &resp).ok());
    EXPECT_LE(resp.entries_size(), 2);
    for (const auto& e : resp.entries()) {
      seen.insert(e.volume().volume_id());
      EXPECT_FALSE(e.status().volume_condition().abnormal());
    }
    token = resp.next_token();
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, created);

  v1::ListVolumesRequest bad;
  bad.set_starting_token("not-a-token");
  v1::ListVolumesResponse resp;
  grpc::ClientContext ctx;
  EXPECT_EQ(srv_.controller->ListVolumes(&ctx, bad, &resp).error_code(),
            grpc::StatusCode::ABORTED);
}

TEST_F(CsiControllerTest, ControllerGetVolumeReportsCondition) {
  std::string id = srv_.mustCreate("cond", kMiB);
  v1::ControllerGetVolumeRequest req;
  req.set_volume_id(id);
  v1::ControllerGetVolumeResponse resp;
  grpc::ClientContext c1;
  ASSERT_TRUE(srv_.controller->ControllerGetVolume(&c1, req, &resp).ok());
  EXPECT_EQ(resp.volume().volume_id(), id);
  EXPECT_FALSE(resp.status().volume_condition().abnormal());
  EXPECT_EQ(resp.status().published_node_ids_size(), 0);

  ASSERT_TRUE(fs::removeAll(volumePath(id)).ok());  // the data vanishes behind our back
  v1::ControllerGetVolumeResponse gone;
  grpc::ClientContext c2;
  ASSERT_TRUE(srv_.controller->ControllerGetVolume(&c2, req, &gone).ok());
  EXPECT_TRUE(gone.status().volume_condition().abnormal());
  EXPECT_NE(gone.status().volume_condition().message().find("missing"), std::string::npos);

  req.set_volume_id("missing");
  grpc::ClientContext c3;
  EXPECT_EQ(srv_.controller->ControllerGetVolume(&c3, req, &resp).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(CsiControllerTest, ExpandMountAndBlockVolumes) {
  std::string mount_id = srv_.mustCreate("grow-m", 4 * kMiB);
  std::string block_id = srv_.mustCreate("grow-b", 4 * kMiB, blockCap());
  for (const auto& [id, block] : {std::pair{mount_id, false}, std::pair{block_id, true}}) {
    v1::ControllerExpandVolumeRequest req;
    req.set_volume_id(id);
    req.mutable_capacity_range()->set_required_bytes(12 * kMiB);
    v1::ControllerExpandVolumeResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(srv_.controller->ControllerExpandVolume(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.capacity_bytes(), 12 * kMiB);
    EXPECT_EQ(resp.node_expansion_required(), block);
    // Smaller requests are no-ops, never shrinks.
    req.mutable_capacity_range()->set_required_bytes(2 * kMiB);
    grpc::ClientContext ctx2;
    ASSERT_TRUE(srv_.controller->ControllerExpandVolume(&ctx2, req, &resp).ok());
    EXPECT_EQ(resp.capacity_bytes(), 12 * kMiB);
  }
  struct stat st;
  ASSERT_EQ(::stat((volumePath(block_id) + ".img").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 12 * kMiB);

  v1::ControllerExpandVolumeRequest req;
  req.set_volume_id(mount_id);
  v1::ControllerExpandVolumeResponse resp;
  grpc::ClientContext c1;
  EXPECT_EQ(srv_.controller->ControllerExpandVolume(&c1, req, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);  // capacity_range missing
  req.mutable_capacity_range()->set_required_bytes(4LL << 30);
  grpc::ClientContext c2;
  EXPECT_EQ(srv_.controller->ControllerExpandVolume(&c2, req, &resp).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  req.set_volume_id("missing");
  grpc::ClientContext c3;
  EXPECT_EQ(srv_.controller->ControllerExpandVolume(&c3, req, &resp).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(CsiControllerTest, SnapshotsCreateListDelete) {
  std::string a = srv_.mustCreate("snap-src-a", 4 * kMiB);
  std::string b = srv_.mustCreate("snap-src-b", 4 * kMiB);
  v1::CreateSnapshotResponse s1, s1again, s2, s3;
  ASSERT_TRUE(srv_.snapshot("s1", a, &s1).ok());
  EXPECT_TRUE(s1.snapshot().ready_to_use());
  EXPECT_EQ(s1.snapshot().source_volume_id(), a);
  EXPECT_EQ(s1.snapshot().size_bytes(), 4 * kMiB);
  EXPECT_GT(s1.snapshot().creation_time().seconds(), 0);
  ASSERT_TRUE(srv_.snapshot("s1", a, &s1again).ok());
  EXPECT_EQ(s1.snapshot().snapshot_id(), s1again.snapshot().snapshot_id());
  EXPECT_EQ(srv_.snapshot("s1", b, &s2).error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(srv_.snapshot("s9", "missing", &s2).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(srv_.snapshot("", a, &s2).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(srv_.snapshot("s9", "", &s2).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(srv_.snapshot("s2", b, &s2).ok());
  ASSERT_TRUE(srv_.snapshot("s3", b, &s3).ok());

  auto list = [&](const std::string& snap_id, const std::string& source, int max,
                  const std::string& token, v1::ListSnapshotsResponse* resp) {
    v1::ListSnapshotsRequest req;
    req.set_snapshot_id(snap_id);
    req.set_source_volume_id(source);
    req.set_max_entries(max);
    req.set_starting_token(token);
    grpc::ClientContext ctx;
    return srv_.controller->ListSnapshots(&ctx, req, resp);
  };
  v1::ListSnapshotsResponse all, by_id, by_source, page1, page2, none;
  ASSERT_TRUE(list("", "", 0, "", &all).ok());
  EXPECT_EQ(all.entries_size(), 3);
  ASSERT_TRUE(list(s2.snapshot().snapshot_id(), "", 0, "", &by_id).ok());
  ASSERT_EQ(by_id.entries_size(), 1);
  EXPECT_EQ(by_id.entries(0).snapshot().snapshot_id(), s2.snapshot().snapshot_id());
  ASSERT_TRUE(list("", b, 0, "", &by_source).ok());
  EXPECT_EQ(by_source.entries_size(), 2);
  ASSERT_TRUE(list("", "", 2, "", &page1).ok());
  EXPECT_EQ(page1.entries_size(), 2);
  ASSERT_FALSE(page1.next_token().empty());
  ASSERT_TRUE(list("", "", 2, page1.next_token(), &page2).ok());
  EXPECT_EQ(page2.entries_size(), 1);
  EXPECT_TRUE(page2.next_token().empty());
  ASSERT_TRUE(list("no-such-snapshot", "", 0, "", &none).ok());
  EXPECT_EQ(none.entries_size(), 0);
  EXPECT_EQ(list("", "", 0, "99", &none).error_code(), grpc::StatusCode::ABORTED);

  v1::DeleteSnapshotRequest del;
  del.set_snapshot_id(s1.snapshot().snapshot_id());
  v1::DeleteSnapshotResponse dresp;
  for (int i = 0; i < 2; ++i) {
    grpc::ClientContext ctx;
    EXPECT_TRUE(srv_.controller->DeleteSnapshot(&ctx, del, &dresp).ok());
  }
  EXPECT_FALSE(fs::exists(srv_.root() + "/volumes/snapshots/" + s1.snapshot().snapshot_id() + ".tar"));
  del.set_snapshot_id("");
  grpc::ClientContext ctx;
  EXPECT_EQ(srv_.controller->DeleteSnapshot(&ctx, del, &dresp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(CsiControllerTest, RestoreAndCloneCopyContent) {
  std::string src = srv_.mustCreate("content-src", 4 * kMiB);
  ASSERT_TRUE(fs::mkdirAll(volumePath(src) + "/dir", 0750).ok());
  std::ofstream(volumePath(src) + "/dir/file") << "hello snapshot";
  ASSERT_EQ(::symlink("dir/file", (volumePath(src) + "/link").c_str()), 0);
  v1::CreateSnapshotResponse snap;
  ASSERT_TRUE(srv_.snapshot("content-snap", src, &snap).ok());
  std::ofstream(volumePath(src) + "/dir/file") << "changed after the snapshot";

  auto createFrom = [&](const std::string& name, bool from_snapshot, const std::string& id,
                        int64_t bytes, v1::CreateVolumeResponse* resp) {
    v1::CreateVolumeRequest req;
    req.set_name(name);
    *req.add_volume_capabilities() = mountCap();
    if (bytes > 0) req.mutable_capacity_range()->set_required_bytes(bytes);
    if (from_snapshot) {
      req.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id(id);
    } else {
      req.mutable_volume_content_source()->mutable_volume()->set_volume_id(id);
    }
    grpc::ClientContext ctx;
    return srv_.controller->CreateVolume(&ctx, req, resp);
  };
  v1::CreateVolumeResponse restored, cloned, err;
  ASSERT_TRUE(createFrom("restored", true, snap.snapshot().snapshot_id(), 0, &restored).ok());
  EXPECT_EQ(restored.volume().capacity_bytes(), 4 * kMiB);
  EXPECT_EQ(restored.volume().content_source().snapshot().snapshot_id(),
            snap.snapshot().snapshot_id());
  auto text = fs::readFile(volumePath(restored.volume().volume_id()) + "/dir/file");
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "hello snapshot");
  char target[64] = {};
  ASSERT_GT(::readlink((volumePath(restored.volume().volume_id()) + "/link").c_str(), target,
                       sizeof(target) - 1), 0);
  EXPECT_STREQ(target, "dir/file");

  ASSERT_TRUE(createFrom("cloned", false, src, 8 * kMiB, &cloned).ok());
  EXPECT_EQ(cloned.volume().capacity_bytes(), 8 * kMiB);
  text = fs::readFile(volumePath(cloned.volume().volume_id()) + "/dir/file");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "changed after the snapshot");

  // A limit below the source's size cannot hold its data.
  v1::CreateVolumeRequest req;
  req.set_name("limited");
  *req.add_volume_capabilities() = mountCap();
  req.mutable_capacity_range()->set_limit_bytes(kMiB);
  req.mutable_volume_content_source()->mutable_volume()->set_volume_id(src);
  grpc::ClientContext ctx;
  EXPECT_EQ(srv_.controller->CreateVolume(&ctx, req, &err).error_code(),
            grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(createFrom("nosnap", true, "missing", 0, &err).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(createFrom("novol", false, "missing", 0, &err).error_code(),
            grpc::StatusCode::NOT_FOUND);
  // A mount snapshot cannot become a block volume.
  v1::CreateVolumeRequest wrong;
  wrong.set_name("wrong-type");
  *wrong.add_volume_capabilities() = blockCap();
  wrong.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id(
      snap.snapshot().snapshot_id());
  grpc::ClientContext ctx2;
  EXPECT_EQ(srv_.controller->CreateVolume(&ctx2, wrong, &err).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(CsiControllerTest, DeletingASourceKeepsItsSnapshotRestorable) {
  std::string src = srv_.mustCreate("gone-src", kMiB);
  std::ofstream(volumePath(src) + "/f") << "kept";
  v1::CreateSnapshotResponse snap;
  ASSERT_TRUE(srv_.snapshot("gone-snap", src, &snap).ok());
  ASSERT_TRUE(srv_.deleteVolume(src).ok());
  v1::CreateVolumeRequest req;
  req.set_name("from-gone");
  *req.add_volume_capabilities() = mountCap();
  req.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id(
      snap.snapshot().snapshot_id());
  v1::CreateVolumeResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(srv_.controller->CreateVolume(&ctx, req, &resp).ok());
  auto text = fs::readFile(volumePath(resp.volume().volume_id()) + "/f");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "kept");
}

}  // namespace
}  // namespace berth::csi
