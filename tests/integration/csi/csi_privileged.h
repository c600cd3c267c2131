// Support for the CSI driver's privileged tests (berth_csi_privileged_tests) and its VM
// quota test: the process-wide private mount namespace, loop-device availability,
// cleanup of mounts and loop devices a test left behind, and tree comparison.
//
// Why the whole process and not tests/fixtures/mount_namespace.h's per-thread
// namespace: the driver mounts from gRPC's worker threads, which inherit the mount
// namespace of the thread that created them. So main() (csi_privileged_main.cc) unshares
// the mount namespace before gtest or gRPC starts any thread, and every thread of the
// process — gRPC's included — mounts only in that private namespace, which ends with
// the process. Loop devices are global: the fixture detaches those bound to files under
// its temp directory in TearDown, also after a failed test.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tests/unit/csi/csi_test_server.h"

namespace berth::csi::itest {

// Called by main() first thing (single-threaded): when root, unshare(CLONE_NEWNS) and
// make every mount private. Returns "" on success or why the tests must skip.
std::string enterPrivateMountNamespace();

// What enterPrivateMountNamespace() returned ("" = the process is in its own mount
// namespace; also checked against the namespace main() started in).
const std::string& mountNamespaceProblem();

// "" when this machine can attach loop devices (/dev/loop-control answers
// LOOP_CTL_GET_FREE and the device node appears), else the reason.
std::string loopUnavailableReason();

// Lazily unmounts every mount at or below `root` (deepest first). Returns how many.
int unmountUnder(const std::string& root);

// Detaches every loop device whose backing file is below `root`. Returns how many.
int detachLoopsUnder(const std::string& root);

// Loop devices ("/dev/loopN") whose /sys/block/loopN/loop/backing_file is `file`.
std::vector<std::string> loopsBackedBy(const std::string& file);

// Mount points at or below `root` in this process's mount namespace.
std::vector<std::string> mountsUnder(const std::string& root);

// One entry of a scanned tree: type and permission bits, owner, size, file content
// or link target; `link_group` names the first path of its hard-link set ("" when
// the file has one link).
struct TreeEntry {
  mode_t mode = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  int64_t size = 0;
  std::string content;
  std::string link_group;
  bool operator==(const TreeEntry&) const = default;
};
// Everything below `root` keyed by relative path ("." is the root). Regular files'
// whole contents are read.
std::map<std::string, TreeEntry> scanTree(const std::string& root);
// "" when equal, else the first differences, one per line.
std::string diffTrees(const std::map<std::string, TreeEntry>& want,
                      const std::map<std::string, TreeEntry>& got);

// Creates or truncates `path` (mode `mode` when created) and writes `data` to it.
// (fs::writeFile only writes existing files.)
::testing::AssertionResult putFile(const std::string& path, std::string_view data,
                                   mode_t mode = 0644);

// `n` bytes from /dev/urandom.
std::string randomBytes(size_t n);

// Fixture: skips (with the reason) unless root in a private mount namespace, starts a
// CsiTestServer (accounted capacity, temp dir under /tmp) after prepare(), and in
// TearDown stops it and cleans up mounts and loop devices under its directory.
class CsiPrivilegedTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  // Runs before the server starts (srv_.options() may still change); may skip or fail.
  virtual void prepare() {}

  // Skips the test unless loop devices work here.
  void requireLoop();

  // Paths under the server's temp dir: <root>/staging/<name>, <root>/pods/<name>/vol.
  std::string stagingPath(const std::string& name) const;
  std::string targetPath(const std::string& name) const;
  // The volume's data (directory or .img file) under the backend's base dir.
  std::string volumeDataPath(const std::string& id, bool block = false);

  // Stage at stagingPath(name) and publish at targetPath(name); asserts success.
  ::testing::AssertionResult stageAndPublish(const std::string& id, const std::string& name,
                                             const ::csi::v1::VolumeCapability& cap,
                                             bool readonly = false);
  // Unpublish and unstage; asserts success.
  ::testing::AssertionResult unpublishAndUnstage(const std::string& id, const std::string& name);

  // NodeGetVolumeStats.
  grpc::Status volumeStats(const std::string& id, const std::string& path,
                           ::csi::v1::NodeGetVolumeStatsResponse* out);
  // ControllerExpandVolume, then NodeExpandVolume at `path`; returns the node's answer.
  ::testing::AssertionResult expand(const std::string& id, const std::string& path,
                                    int64_t bytes, const ::csi::v1::VolumeCapability& cap,
                                    int64_t* node_capacity);
  // GetCapacity's available_capacity (-1 on error).
  int64_t availableCapacity();

  csi::testing::CsiTestServer srv_;
  bool started_ = false;
};

}  // namespace berth::csi::itest
