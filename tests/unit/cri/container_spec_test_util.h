// Shared helpers of the cri/container_spec unit tests: a minimal CRI request for a
// busybox container in pod "web" (what kubelet sends), and spec accessors.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cri/container_spec.h"

namespace berth::cri::testutil {

namespace v1 = ::runtime::v1;

inline constexpr char kPath[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

inline image::ImageConfig busybox() {
  image::ImageConfig img;
  img.architecture = "amd64";
  img.os = "linux";
  img.config.env = {kPath};
  img.config.cmd = {"sh"};
  return img;
}

inline ContainerSpecInput minimalInput() {
  ContainerSpecInput in;
  in.container_id = "c1";
  in.sandbox_id = "p1";
  in.config.mutable_metadata()->set_name("app");
  in.config.mutable_image()->set_image("docker.io/library/busybox:1.36");
  auto* md = in.sandbox_config.mutable_metadata();
  md->set_name("web");
  md->set_namespace_("default");
  md->set_uid("uid-1");
  in.sandbox_config.set_hostname("web");
  // What kubelet sends for a pod without shareProcessNamespace.
  in.sandbox_config.mutable_linux()->mutable_security_context()->mutable_namespace_options()
      ->set_pid(v1::CONTAINER);
  in.config.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(
      v1::CONTAINER);
  in.image = busybox();
  in.image_name = "docker.io/library/busybox:1.36";
  in.rootfs = "/var/lib/berth/c1/rootfs";
  in.namespaces = {"/run/berth/ns/p1/net", "/run/berth/ns/p1/ipc", "/run/berth/ns/p1/uts", ""};
  in.files = {"/run/berth/pods/p1/hostname", "/run/berth/pods/p1/hosts",
              "/run/berth/pods/p1/resolv.conf", "/run/berth/pods/p1/shm"};
  in.cgroups_path = "/kubepods/pod1/c1";
  return in;
}

inline oci::Spec build(const ContainerSpecInput& in) {
  auto spec = buildContainerSpec(in);
  EXPECT_TRUE(spec.ok()) << spec.status();
  return spec.ok() ? *spec : oci::Spec{};
}

inline const oci::Mount* findMount(const oci::Spec& spec, const std::string& destination) {
  for (const oci::Mount& m : spec.mounts) {
    if (m.destination == destination) return &m;
  }
  return nullptr;
}

inline std::vector<std::string> destinations(const oci::Spec& spec) {
  std::vector<std::string> out;
  for (const oci::Mount& m : spec.mounts) out.push_back(m.destination);
  return out;
}

inline std::vector<std::string> namespaces(const oci::Spec& spec) {
  std::vector<std::string> out;
  for (const oci::Namespace& ns : spec.linux->namespaces) {
    out.push_back(ns.path.empty() ? ns.type : ns.type + "=" + ns.path);
  }
  return out;
}

inline v1::LinuxContainerSecurityContext* sc(ContainerSpecInput& in) {
  return in.config.mutable_linux()->mutable_security_context();
}

}  // namespace berth::cri::testutil
