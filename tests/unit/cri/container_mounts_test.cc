// Unit tests for the mounts and devices of cri/container_spec.h (container_mounts.h):
// CRI mounts with each propagation, rro, ordering and overrides, devices.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "cri/container_spec.h"
#include "tests/unit/cri/container_spec_test_util.h"

namespace berth::cri {
namespace {

namespace v1 = ::runtime::v1;
using namespace testutil;  // NOLINT(build/namespaces): the shared test helpers
using ::testing::HasSubstr;

struct MountCase {
  const char* name;
  v1::MountPropagation propagation;
  bool readonly, rro;
  std::vector<std::string> want_options;
  std::string want_rootfs_propagation;
};

TEST(ContainerSpec, MountsWithEachPropagation) {
  const std::vector<MountCase> cases = {
      {"private rw", v1::PROPAGATION_PRIVATE, false, false, {"rbind", "rprivate", "rw"}, ""},
      {"private ro", v1::PROPAGATION_PRIVATE, true, false, {"rbind", "rprivate", "ro"}, ""},
      {"private rro", v1::PROPAGATION_PRIVATE, true, true, {"rbind", "rprivate", "ro", "rro"},
       ""},
      {"host to container", v1::PROPAGATION_HOST_TO_CONTAINER, false, false,
       {"rbind", "rslave", "rw"}, "rslave"},
      {"bidirectional", v1::PROPAGATION_BIDIRECTIONAL, false, false, {"rbind", "rshared", "rw"},
       "rshared"},
  };
  for (const MountCase& c : cases) {
    SCOPED_TRACE(c.name);
    ContainerSpecInput in = minimalInput();
    auto* m = in.config.add_mounts();
    m->set_container_path("/data/");
    m->set_host_path("/var/lib/kubelet/pods/x/volumes/data");
    m->set_propagation(c.propagation);
    m->set_readonly(c.readonly);
    m->set_recursive_read_only(c.rro);
    oci::Spec spec = build(in);
    const oci::Mount* got = findMount(spec, "/data");
    ASSERT_NE(got, nullptr);
    EXPECT_EQ(got->type, "bind");
    EXPECT_EQ(got->source, "/var/lib/kubelet/pods/x/volumes/data");
    EXPECT_EQ(got->options, c.want_options);
    EXPECT_EQ(spec.linux->rootfsPropagation, c.want_rootfs_propagation);
  }
}

TEST(ContainerSpec, MountOrderingOverridesAndErrors) {
  ContainerSpecInput in = minimalInput();
  auto add = [&](const std::string& dst, const std::string& src) {
    auto* m = in.config.add_mounts();
    m->set_container_path(dst);
    m->set_host_path(src);
    return m;
  };
  add("/data/sub/deeper", "/h/deeper");
  add("/data", "/h/data");
  add("/etc/hosts", "/var/lib/kubelet/pods/x/etc-hosts");
  add("/dev/termination-log", "/h/term");
  // A bidirectional mount first, then a host-to-container one: rshared stays.
  add("/b", "/h/b")->set_propagation(v1::PROPAGATION_BIDIRECTIONAL);
  add("/s", "/h/s")->set_propagation(v1::PROPAGATION_HOST_TO_CONTAINER);
  oci::Spec spec = build(in);
  auto dst = destinations(spec);
  auto pos = [&](const std::string& d) { return std::find(dst.begin(), dst.end(), d) - dst.begin(); };
  EXPECT_LT(pos("/data"), pos("/data/sub/deeper"));
  EXPECT_LT(pos("/dev"), pos("/dev/termination-log"));
  EXPECT_EQ(std::count(dst.begin(), dst.end(), "/etc/hosts"), 1);
  EXPECT_EQ(findMount(spec, "/etc/hosts")->source, "/var/lib/kubelet/pods/x/etc-hosts");
  EXPECT_EQ(spec.linux->rootfsPropagation, "rshared");

  // A CRI /dev replaces every default mount under /dev.
  ContainerSpecInput dev = minimalInput();
  auto* m = dev.config.add_mounts();
  m->set_container_path("/dev");
  m->set_host_path("/dev");
  oci::Spec dev_spec = build(dev);
  for (const std::string& d : destinations(dev_spec)) {
    EXPECT_FALSE(d.rfind("/dev/", 0) == 0 && d != "/dev/shm") << d;
  }
  EXPECT_EQ(findMount(dev_spec, "/dev")->type, "bind");

  struct ErrorCase {
    const char* name;
    std::function<void(v1::Mount*)> edit;
    absl::StatusCode code;
    std::string message;
  };
  const std::vector<ErrorCase> errors = {
      {"relative container path", [](v1::Mount* x) { x->set_container_path("data"); },
       absl::StatusCode::kInvalidArgument, "ContainerConfig.mounts[0].container_path"},
      {"relative host path", [](v1::Mount* x) { x->set_host_path("h"); },
       absl::StatusCode::kInvalidArgument, "ContainerConfig.mounts[0].host_path"},
      {"rro without ro", [](v1::Mount* x) { x->set_recursive_read_only(true); },
       absl::StatusCode::kInvalidArgument,
       "ContainerConfig.mounts[0].recursive_read_only: needs readonly"},
      {"rro with rslave",
       [](v1::Mount* x) {
         x->set_readonly(true);
         x->set_recursive_read_only(true);
         x->set_propagation(v1::PROPAGATION_HOST_TO_CONTAINER);
       },
       absl::StatusCode::kInvalidArgument, "needs propagation PROPAGATION_PRIVATE"},
      {"image volume", [](v1::Mount* x) { x->mutable_image()->set_image("busybox"); },
       absl::StatusCode::kUnimplemented, "ContainerConfig.mounts[0].image"},
      {"idmapped", [](v1::Mount* x) { x->add_uidmappings()->set_length(1); },
       absl::StatusCode::kUnimplemented, "idmapped"},
  };
  for (const ErrorCase& e : errors) {
    SCOPED_TRACE(e.name);
    ContainerSpecInput bad = minimalInput();
    auto* x = bad.config.add_mounts();
    x->set_container_path("/data");
    x->set_host_path("/h/data");
    e.edit(x);
    auto r = buildContainerSpec(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), e.code) << r.status();
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(e.message));
  }

  ContainerSpecInput unsupported = minimalInput();
  unsupported.rro_supported = false;
  auto* x = unsupported.config.add_mounts();
  x->set_container_path("/data");
  x->set_host_path("/h/data");
  x->set_readonly(true);
  x->set_recursive_read_only(true);
  auto r = buildContainerSpec(unsupported);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(ContainerSpec, Devices) {
  ContainerSpecInput in = minimalInput();
  auto* d = in.config.add_devices();
  d->set_host_path("/dev/null");
  d->set_container_path("/dev/xnull");
  d->set_permissions("rw");
  oci::Spec spec = build(in);
  ASSERT_EQ(spec.linux->devices.size(), 1u);
  const oci::Device& dev = spec.linux->devices[0];
  EXPECT_EQ(dev.path, "/dev/xnull");
  EXPECT_EQ(dev.type, "c");
  EXPECT_EQ(dev.major, 1);
  EXPECT_EQ(dev.minor, 3);
  ASSERT_TRUE(dev.fileMode.has_value());
  EXPECT_EQ(*dev.fileMode, 0666u);
  ASSERT_EQ(spec.linux->resources->devices.size(), 2u);
  const oci::DeviceCgroup& rule = spec.linux->resources->devices[1];
  EXPECT_TRUE(rule.allow);
  EXPECT_EQ(rule.type, "c");
  EXPECT_EQ(rule.major, 1);
  EXPECT_EQ(rule.minor, 3);
  EXPECT_EQ(rule.access, "rw");
  EXPECT_TRUE(oci::validateSpec(spec).ok()) << oci::validateSpec(spec);

  struct ErrorCase {
    std::string host, perms;
    absl::StatusCode code;
    std::string message;
  };
  for (const ErrorCase& e : std::vector<ErrorCase>{
           {"/dev/null", "rwx", absl::StatusCode::kInvalidArgument,
            "ContainerConfig.devices[0].permissions: \"rwx\""},
           {"/dev/does-not-exist-here", "rw", absl::StatusCode::kNotFound,
            "ContainerConfig.devices[0].host_path"},
           {"/etc/passwd", "rw", absl::StatusCode::kInvalidArgument,
            "is not a character or block device"},
           {"dev/null", "rw", absl::StatusCode::kInvalidArgument, "must be an absolute path"}}) {
    SCOPED_TRACE(e.host);
    ContainerSpecInput bad = minimalInput();
    auto* x = bad.config.add_devices();
    x->set_host_path(e.host);
    x->set_container_path("/dev/x");
    x->set_permissions(e.perms);
    auto r = buildContainerSpec(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), e.code) << r.status();
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(e.message));
  }
}

}  // namespace
}  // namespace berth::cri
