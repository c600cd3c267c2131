// Wire facts of cri/proto/api.proto that kubelet and crictl rely on, checked through
// the generated descriptors: service and rpc names, streaming, field numbers, types
// and labels, enum values, and the exact bytes of a serialised RunPodSandboxRequest.
// A change here means berthd no longer speaks upstream's runtime.v1.

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "cri/proto/api.grpc.pb.h"
#include "cri/proto/api.pb.h"

namespace {

using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::FileDescriptor;
using google::protobuf::MethodDescriptor;
using google::protobuf::ServiceDescriptor;

const FileDescriptor* criFile() {
  return runtime::v1::RunPodSandboxRequest::descriptor()->file();
}

TEST(CriProto, PackageAndServices) {
  const FileDescriptor* file = criFile();
  EXPECT_EQ(file->package(), "runtime.v1");
  EXPECT_EQ(file->syntax(), FileDescriptor::SYNTAX_PROTO3);
  EXPECT_EQ(file->dependency_count(), 0);
  ASSERT_EQ(file->service_count(), 2);
  EXPECT_EQ(runtime::v1::RuntimeService::service_full_name(), std::string("runtime.v1.RuntimeService"));
  EXPECT_EQ(runtime::v1::ImageService::service_full_name(), std::string("runtime.v1.ImageService"));
  EXPECT_NE(DescriptorPool::generated_pool()->FindServiceByName("runtime.v1.RuntimeService"), nullptr);
  EXPECT_NE(DescriptorPool::generated_pool()->FindServiceByName("runtime.v1.ImageService"), nullptr);
}

struct Rpc {
  const char* name;
  const char* input;   // without the "runtime.v1." prefix
  const char* output;  // without the "runtime.v1." prefix
  bool serverStreaming;
};

void checkService(const char* serviceName, const std::vector<Rpc>& expected) {
  SCOPED_TRACE(serviceName);
  const ServiceDescriptor* service =
      DescriptorPool::generated_pool()->FindServiceByName(serviceName);
  ASSERT_NE(service, nullptr);
  EXPECT_EQ(service->method_count(), static_cast<int>(expected.size()))
      << "rpcs were added or removed";
  std::set<std::string> names;
  for (const Rpc& rpc : expected) {
    SCOPED_TRACE(rpc.name);
    names.insert(rpc.name);
    const MethodDescriptor* method = service->FindMethodByName(rpc.name);
    ASSERT_NE(method, nullptr) << "missing rpc";
    EXPECT_EQ(method->input_type()->full_name(), std::string("runtime.v1.") + rpc.input);
    EXPECT_EQ(method->output_type()->full_name(), std::string("runtime.v1.") + rpc.output);
    EXPECT_FALSE(method->client_streaming());
    EXPECT_EQ(method->server_streaming(), rpc.serverStreaming);
  }
  EXPECT_EQ(names.size(), expected.size()) << "duplicate row in the table";
}

TEST(CriProto, RuntimeServiceRpcs) {
  checkService("runtime.v1.RuntimeService", {
      {"Version", "VersionRequest", "VersionResponse", false},
      {"RunPodSandbox", "RunPodSandboxRequest", "RunPodSandboxResponse", false},
      {"StopPodSandbox", "StopPodSandboxRequest", "StopPodSandboxResponse", false},
      {"RemovePodSandbox", "RemovePodSandboxRequest", "RemovePodSandboxResponse", false},
      {"PodSandboxStatus", "PodSandboxStatusRequest", "PodSandboxStatusResponse", false},
      {"ListPodSandbox", "ListPodSandboxRequest", "ListPodSandboxResponse", false},
      {"StreamPodSandboxes", "StreamPodSandboxesRequest", "StreamPodSandboxesResponse", true},
      {"CreateContainer", "CreateContainerRequest", "CreateContainerResponse", false},
      {"StartContainer", "StartContainerRequest", "StartContainerResponse", false},
      {"StopContainer", "StopContainerRequest", "StopContainerResponse", false},
      {"RemoveContainer", "RemoveContainerRequest", "RemoveContainerResponse", false},
      {"ListContainers", "ListContainersRequest", "ListContainersResponse", false},
      {"StreamContainers", "StreamContainersRequest", "StreamContainersResponse", true},
      {"ContainerStatus", "ContainerStatusRequest", "ContainerStatusResponse", false},
      {"UpdateContainerResources", "UpdateContainerResourcesRequest",
       "UpdateContainerResourcesResponse", false},
      {"ReopenContainerLog", "ReopenContainerLogRequest", "ReopenContainerLogResponse", false},
      {"ExecSync", "ExecSyncRequest", "ExecSyncResponse", false},
      {"Exec", "ExecRequest", "ExecResponse", false},
      {"Attach", "AttachRequest", "AttachResponse", false},
      {"PortForward", "PortForwardRequest", "PortForwardResponse", false},
      {"ContainerStats", "ContainerStatsRequest", "ContainerStatsResponse", false},
      {"ListContainerStats", "ListContainerStatsRequest", "ListContainerStatsResponse", false},
      {"StreamContainerStats", "StreamContainerStatsRequest", "StreamContainerStatsResponse",
       true},
      {"PodSandboxStats", "PodSandboxStatsRequest", "PodSandboxStatsResponse", false},
      {"ListPodSandboxStats", "ListPodSandboxStatsRequest", "ListPodSandboxStatsResponse",
       false},
      {"StreamPodSandboxStats", "StreamPodSandboxStatsRequest",
       "StreamPodSandboxStatsResponse", true},
      {"UpdateRuntimeConfig", "UpdateRuntimeConfigRequest", "UpdateRuntimeConfigResponse",
       false},
      {"Status", "StatusRequest", "StatusResponse", false},
      {"CheckpointContainer", "CheckpointContainerRequest", "CheckpointContainerResponse",
       false},
      {"CheckpointPod", "CheckpointPodRequest", "CheckpointPodResponse", false},
      {"RestorePod", "RestorePodRequest", "RestorePodResponse", false},
      {"GetContainerEvents", "GetEventsRequest", "ContainerEventResponse", true},
      {"ListMetricDescriptors", "ListMetricDescriptorsRequest",
       "ListMetricDescriptorsResponse", false},
      {"ListPodSandboxMetrics", "ListPodSandboxMetricsRequest",
       "ListPodSandboxMetricsResponse", false},
      {"StreamPodSandboxMetrics", "StreamPodSandboxMetricsRequest",
       "StreamPodSandboxMetricsResponse", true},
      {"RuntimeConfig", "RuntimeConfigRequest", "RuntimeConfigResponse", false},
      {"UpdatePodSandboxResources", "UpdatePodSandboxResourcesRequest",
       "UpdatePodSandboxResourcesResponse", false},
  });
}

TEST(CriProto, ImageServiceRpcs) {
  checkService("runtime.v1.ImageService", {
      {"ListImages", "ListImagesRequest", "ListImagesResponse", false},
      {"StreamImages", "StreamImagesRequest", "StreamImagesResponse", true},
      {"ImageStatus", "ImageStatusRequest", "ImageStatusResponse", false},
      {"PullImage", "PullImageRequest", "PullImageResponse", false},
      {"RemoveImage", "RemoveImageRequest", "RemoveImageResponse", false},
      {"ImageFsInfo", "ImageFsInfoRequest", "ImageFsInfoResponse", false},
  });
}

// The HTTP/2 path gRPC puts on the wire for a method.
TEST(CriProto, GrpcMethodPaths) {
  const MethodDescriptor* run =
      DescriptorPool::generated_pool()->FindMethodByName("runtime.v1.RuntimeService.RunPodSandbox");
  ASSERT_NE(run, nullptr);
  EXPECT_EQ("/" + run->service()->full_name() + "/" + run->name(),
            "/runtime.v1.RuntimeService/RunPodSandbox");
  const MethodDescriptor* pull =
      DescriptorPool::generated_pool()->FindMethodByName("runtime.v1.ImageService.PullImage");
  ASSERT_NE(pull, nullptr);
  EXPECT_EQ("/" + pull->service()->full_name() + "/" + pull->name(),
            "/runtime.v1.ImageService/PullImage");
}

enum class Shape { kSingular, kRepeated, kMap };

struct Field {
  const char* message;  // without the "runtime.v1." prefix
  const char* name;
  int number;
  FieldDescriptor::Type type;
  Shape shape;
  const char* typeName;  // message or enum type without prefix; "" for scalars
};

constexpr auto kString = FieldDescriptor::TYPE_STRING;
constexpr auto kBytes = FieldDescriptor::TYPE_BYTES;
constexpr auto kBool = FieldDescriptor::TYPE_BOOL;
constexpr auto kInt32 = FieldDescriptor::TYPE_INT32;
constexpr auto kInt64 = FieldDescriptor::TYPE_INT64;
constexpr auto kUint32 = FieldDescriptor::TYPE_UINT32;
constexpr auto kUint64 = FieldDescriptor::TYPE_UINT64;
constexpr auto kEnum = FieldDescriptor::TYPE_ENUM;
constexpr auto kMsg = FieldDescriptor::TYPE_MESSAGE;
constexpr Shape kOne = Shape::kSingular;
constexpr Shape kRep = Shape::kRepeated;
constexpr Shape kMap = Shape::kMap;

const std::vector<Field>& fieldTable() {
  static const std::vector<Field> table = {
      {"PodSandboxConfig", "metadata", 1, kMsg, kOne, "PodSandboxMetadata"},
      {"PodSandboxConfig", "hostname", 2, kString, kOne, ""},
      {"PodSandboxConfig", "log_directory", 3, kString, kOne, ""},
      {"PodSandboxConfig", "dns_config", 4, kMsg, kOne, "DNSConfig"},
      {"PodSandboxConfig", "port_mappings", 5, kMsg, kRep, "PortMapping"},
      {"PodSandboxConfig", "labels", 6, kMsg, kMap, ""},
      {"PodSandboxConfig", "annotations", 7, kMsg, kMap, ""},
      {"PodSandboxConfig", "linux", 8, kMsg, kOne, "LinuxPodSandboxConfig"},
      {"PodSandboxConfig", "windows", 9, kMsg, kOne, "WindowsPodSandboxConfig"},
      {"PodSandboxMetadata", "name", 1, kString, kOne, ""},
      {"PodSandboxMetadata", "uid", 2, kString, kOne, ""},
      {"PodSandboxMetadata", "namespace", 3, kString, kOne, ""},
      {"PodSandboxMetadata", "attempt", 4, kUint32, kOne, ""},
      {"RunPodSandboxRequest", "config", 1, kMsg, kOne, "PodSandboxConfig"},
      {"RunPodSandboxRequest", "runtime_handler", 2, kString, kOne, ""},
      {"DNSConfig", "servers", 1, kString, kRep, ""},
      {"DNSConfig", "searches", 2, kString, kRep, ""},
      {"DNSConfig", "options", 3, kString, kRep, ""},
      {"PortMapping", "protocol", 1, kEnum, kOne, "Protocol"},
      {"PortMapping", "container_port", 2, kInt32, kOne, ""},
      {"PortMapping", "host_port", 3, kInt32, kOne, ""},
      {"PortMapping", "host_ip", 4, kString, kOne, ""},
      {"LinuxPodSandboxConfig", "cgroup_parent", 1, kString, kOne, ""},
      {"LinuxPodSandboxConfig", "security_context", 2, kMsg, kOne,
       "LinuxSandboxSecurityContext"},
      {"LinuxPodSandboxConfig", "sysctls", 3, kMsg, kMap, ""},
      {"LinuxPodSandboxConfig", "overhead", 4, kMsg, kOne, "LinuxContainerResources"},
      {"LinuxPodSandboxConfig", "resources", 5, kMsg, kOne, "LinuxContainerResources"},
      {"LinuxSandboxSecurityContext", "namespace_options", 1, kMsg, kOne, "NamespaceOption"},
      {"LinuxSandboxSecurityContext", "run_as_user", 3, kMsg, kOne, "Int64Value"},
      {"LinuxSandboxSecurityContext", "readonly_rootfs", 4, kBool, kOne, ""},
      {"LinuxSandboxSecurityContext", "supplemental_groups", 5, kInt64, kRep, ""},
      {"LinuxSandboxSecurityContext", "privileged", 6, kBool, kOne, ""},
      {"LinuxSandboxSecurityContext", "run_as_group", 8, kMsg, kOne, "Int64Value"},
      {"LinuxSandboxSecurityContext", "seccomp", 9, kMsg, kOne, "SecurityProfile"},
      {"NamespaceOption", "network", 1, kEnum, kOne, "NamespaceMode"},
      {"NamespaceOption", "pid", 2, kEnum, kOne, "NamespaceMode"},
      {"NamespaceOption", "ipc", 3, kEnum, kOne, "NamespaceMode"},
      {"NamespaceOption", "target_id", 4, kString, kOne, ""},
      {"NamespaceOption", "userns_options", 5, kMsg, kOne, "UserNamespace"},
      {"ContainerConfig", "metadata", 1, kMsg, kOne, "ContainerMetadata"},
      {"ContainerConfig", "image", 2, kMsg, kOne, "ImageSpec"},
      {"ContainerConfig", "command", 3, kString, kRep, ""},
      {"ContainerConfig", "args", 4, kString, kRep, ""},
      {"ContainerConfig", "working_dir", 5, kString, kOne, ""},
      {"ContainerConfig", "envs", 6, kMsg, kRep, "KeyValue"},
      {"ContainerConfig", "mounts", 7, kMsg, kRep, "Mount"},
      {"ContainerConfig", "devices", 8, kMsg, kRep, "Device"},
      {"ContainerConfig", "labels", 9, kMsg, kMap, ""},
      {"ContainerConfig", "annotations", 10, kMsg, kMap, ""},
      {"ContainerConfig", "log_path", 11, kString, kOne, ""},
      {"ContainerConfig", "stdin", 12, kBool, kOne, ""},
      {"ContainerConfig", "stdin_once", 13, kBool, kOne, ""},
      {"ContainerConfig", "tty", 14, kBool, kOne, ""},
      {"ContainerConfig", "linux", 15, kMsg, kOne, "LinuxContainerConfig"},
      {"ContainerConfig", "windows", 16, kMsg, kOne, "WindowsContainerConfig"},
      {"ContainerConfig", "CDI_devices", 17, kMsg, kRep, "CDIDevice"},
      {"ContainerConfig", "stop_signal", 18, kEnum, kOne, "Signal"},
      {"KeyValue", "key", 1, kString, kOne, ""},
      {"KeyValue", "value", 2, kBytes, kOne, ""},
      {"Mount", "container_path", 1, kString, kOne, ""},
      {"Mount", "host_path", 2, kString, kOne, ""},
      {"Mount", "readonly", 3, kBool, kOne, ""},
      {"Mount", "selinux_relabel", 4, kBool, kOne, ""},
      {"Mount", "propagation", 5, kEnum, kOne, "MountPropagation"},
      {"Mount", "uidMappings", 6, kMsg, kRep, "IDMapping"},
      {"Mount", "gidMappings", 7, kMsg, kRep, "IDMapping"},
      {"Mount", "recursive_read_only", 8, kBool, kOne, ""},
      {"Mount", "image", 9, kMsg, kOne, "ImageSpec"},
      {"Mount", "image_sub_path", 10, kString, kOne, ""},
      {"Device", "container_path", 1, kString, kOne, ""},
      {"Device", "host_path", 2, kString, kOne, ""},
      {"Device", "permissions", 3, kString, kOne, ""},
      {"LinuxContainerResources", "cpu_period", 1, kInt64, kOne, ""},
      {"LinuxContainerResources", "cpu_quota", 2, kInt64, kOne, ""},
      {"LinuxContainerResources", "cpu_shares", 3, kInt64, kOne, ""},
      {"LinuxContainerResources", "memory_limit_in_bytes", 4, kInt64, kOne, ""},
      {"LinuxContainerResources", "oom_score_adj", 5, kInt64, kOne, ""},
      {"LinuxContainerResources", "cpuset_cpus", 6, kString, kOne, ""},
      {"LinuxContainerResources", "cpuset_mems", 7, kString, kOne, ""},
      {"LinuxContainerResources", "hugepage_limits", 8, kMsg, kRep, "HugepageLimit"},
      {"LinuxContainerResources", "unified", 9, kMsg, kMap, ""},
      {"LinuxContainerResources", "memory_swap_limit_in_bytes", 10, kInt64, kOne, ""},
      {"LinuxContainerSecurityContext", "capabilities", 1, kMsg, kOne, "Capability"},
      {"LinuxContainerSecurityContext", "privileged", 2, kBool, kOne, ""},
      {"LinuxContainerSecurityContext", "namespace_options", 3, kMsg, kOne, "NamespaceOption"},
      {"LinuxContainerSecurityContext", "run_as_user", 5, kMsg, kOne, "Int64Value"},
      {"LinuxContainerSecurityContext", "run_as_username", 6, kString, kOne, ""},
      {"LinuxContainerSecurityContext", "readonly_rootfs", 7, kBool, kOne, ""},
      {"LinuxContainerSecurityContext", "supplemental_groups", 8, kInt64, kRep, ""},
      {"LinuxContainerSecurityContext", "no_new_privs", 11, kBool, kOne, ""},
      {"LinuxContainerSecurityContext", "run_as_group", 12, kMsg, kOne, "Int64Value"},
      {"LinuxContainerSecurityContext", "masked_paths", 13, kString, kRep, ""},
      {"LinuxContainerSecurityContext", "readonly_paths", 14, kString, kRep, ""},
      {"LinuxContainerSecurityContext", "seccomp", 15, kMsg, kOne, "SecurityProfile"},
      {"LinuxContainerSecurityContext", "apparmor", 16, kMsg, kOne, "SecurityProfile"},
      {"Capability", "add_capabilities", 1, kString, kRep, ""},
      {"Capability", "drop_capabilities", 2, kString, kRep, ""},
      {"SecurityProfile", "profile_type", 1, kEnum, kOne, "SecurityProfile.ProfileType"},
      {"SecurityProfile", "localhost_ref", 2, kString, kOne, ""},
      {"ContainerStatus", "id", 1, kString, kOne, ""},
      {"ContainerStatus", "metadata", 2, kMsg, kOne, "ContainerMetadata"},
      {"ContainerStatus", "state", 3, kEnum, kOne, "ContainerState"},
      {"ContainerStatus", "created_at", 4, kInt64, kOne, ""},
      {"ContainerStatus", "started_at", 5, kInt64, kOne, ""},
      {"ContainerStatus", "finished_at", 6, kInt64, kOne, ""},
      {"ContainerStatus", "exit_code", 7, kInt32, kOne, ""},
      {"ContainerStatus", "image", 8, kMsg, kOne, "ImageSpec"},
      {"ContainerStatus", "image_ref", 9, kString, kOne, ""},
      {"ContainerStatus", "reason", 10, kString, kOne, ""},
      {"ContainerStatus", "message", 11, kString, kOne, ""},
      {"ContainerStatus", "labels", 12, kMsg, kMap, ""},
      {"ContainerStatus", "annotations", 13, kMsg, kMap, ""},
      {"ContainerStatus", "mounts", 14, kMsg, kRep, "Mount"},
      {"ContainerStatus", "log_path", 15, kString, kOne, ""},
      {"ContainerStatus", "resources", 16, kMsg, kOne, "ContainerResources"},
      {"ContainerStatus", "image_id", 17, kString, kOne, ""},
      {"ContainerStatus", "user", 18, kMsg, kOne, "ContainerUser"},
      {"ContainerStatus", "stop_signal", 19, kEnum, kOne, "Signal"},
      {"PodSandboxStatus", "id", 1, kString, kOne, ""},
      {"PodSandboxStatus", "metadata", 2, kMsg, kOne, "PodSandboxMetadata"},
      {"PodSandboxStatus", "state", 3, kEnum, kOne, "PodSandboxState"},
      {"PodSandboxStatus", "created_at", 4, kInt64, kOne, ""},
      {"PodSandboxStatus", "network", 5, kMsg, kOne, "PodSandboxNetworkStatus"},
      {"PodSandboxStatus", "linux", 6, kMsg, kOne, "LinuxPodSandboxStatus"},
      {"PodSandboxStatus", "labels", 7, kMsg, kMap, ""},
      {"PodSandboxStatus", "annotations", 8, kMsg, kMap, ""},
      {"PodSandboxStatus", "runtime_handler", 9, kString, kOne, ""},
      {"PodSandboxNetworkStatus", "ip", 1, kString, kOne, ""},
      {"PodSandboxNetworkStatus", "additional_ips", 2, kMsg, kRep, "PodIP"},
      {"PodSandboxStatusResponse", "status", 1, kMsg, kOne, "PodSandboxStatus"},
      {"PodSandboxStatusResponse", "info", 2, kMsg, kMap, ""},
      {"Image", "id", 1, kString, kOne, ""},
      {"Image", "repo_tags", 2, kString, kRep, ""},
      {"Image", "repo_digests", 3, kString, kRep, ""},
      {"Image", "size", 4, kUint64, kOne, ""},
      {"Image", "uid", 5, kMsg, kOne, "Int64Value"},
      {"Image", "username", 6, kString, kOne, ""},
      {"Image", "spec", 7, kMsg, kOne, "ImageSpec"},
      {"Image", "pinned", 8, kBool, kOne, ""},
      {"ImageSpec", "image", 1, kString, kOne, ""},
      {"ImageSpec", "annotations", 2, kMsg, kMap, ""},
      {"ImageSpec", "user_specified_image", 18, kString, kOne, ""},
      {"ImageSpec", "runtime_handler", 19, kString, kOne, ""},
      {"ImageSpec", "image_ref", 20, kString, kOne, ""},
      {"AuthConfig", "username", 1, kString, kOne, ""},
      {"AuthConfig", "password", 2, kString, kOne, ""},
      {"AuthConfig", "auth", 3, kString, kOne, ""},
      {"AuthConfig", "server_address", 4, kString, kOne, ""},
      {"AuthConfig", "identity_token", 5, kString, kOne, ""},
      {"AuthConfig", "registry_token", 6, kString, kOne, ""},
      {"PullImageRequest", "image", 1, kMsg, kOne, "ImageSpec"},
      {"PullImageRequest", "auth", 2, kMsg, kOne, "AuthConfig"},
      {"PullImageRequest", "sandbox_config", 3, kMsg, kOne, "PodSandboxConfig"},
      {"PullImageResponse", "image_ref", 1, kString, kOne, ""},
      {"ImageStatusResponse", "image", 1, kMsg, kOne, "Image"},
      {"ImageStatusResponse", "info", 2, kMsg, kMap, ""},
      {"CreateContainerRequest", "pod_sandbox_id", 1, kString, kOne, ""},
      {"CreateContainerRequest", "config", 2, kMsg, kOne, "ContainerConfig"},
      {"CreateContainerRequest", "sandbox_config", 3, kMsg, kOne, "PodSandboxConfig"},
      {"StopContainerRequest", "container_id", 1, kString, kOne, ""},
      {"StopContainerRequest", "timeout", 2, kInt64, kOne, ""},
      {"ExecSyncRequest", "container_id", 1, kString, kOne, ""},
      {"ExecSyncRequest", "cmd", 2, kString, kRep, ""},
      {"ExecSyncRequest", "timeout", 3, kInt64, kOne, ""},
      {"ExecSyncResponse", "stdout", 1, kBytes, kOne, ""},
      {"ExecSyncResponse", "stderr", 2, kBytes, kOne, ""},
      {"ExecSyncResponse", "exit_code", 3, kInt32, kOne, ""},
      {"VersionResponse", "version", 1, kString, kOne, ""},
      {"VersionResponse", "runtime_name", 2, kString, kOne, ""},
      {"VersionResponse", "runtime_version", 3, kString, kOne, ""},
      {"VersionResponse", "runtime_api_version", 4, kString, kOne, ""},
      {"RuntimeCondition", "type", 1, kString, kOne, ""},
      {"RuntimeCondition", "status", 2, kBool, kOne, ""},
      {"RuntimeCondition", "reason", 3, kString, kOne, ""},
      {"RuntimeCondition", "message", 4, kString, kOne, ""},
      {"StatusResponse", "status", 1, kMsg, kOne, "RuntimeStatus"},
      {"StatusResponse", "info", 2, kMsg, kMap, ""},
      {"StatusResponse", "runtime_handlers", 3, kMsg, kRep, "RuntimeHandler"},
      {"StatusResponse", "features", 4, kMsg, kOne, "RuntimeFeatures"},
      {"RuntimeConfigResponse", "linux", 1, kMsg, kOne, "LinuxRuntimeConfiguration"},
      {"LinuxRuntimeConfiguration", "cgroup_driver", 1, kEnum, kOne, "CgroupDriver"},
      {"ContainerEventResponse", "container_id", 1, kString, kOne, ""},
      {"ContainerEventResponse", "container_event_type", 2, kEnum, kOne,
       "ContainerEventType"},
      {"ContainerEventResponse", "created_at", 3, kInt64, kOne, ""},
      {"ContainerEventResponse", "pod_sandbox_status", 4, kMsg, kOne, "PodSandboxStatus"},
      {"ContainerEventResponse", "containers_statuses", 5, kMsg, kRep, "ContainerStatus"},
      {"ContainerStats", "attributes", 1, kMsg, kOne, "ContainerAttributes"},
      {"ContainerStats", "cpu", 2, kMsg, kOne, "CpuUsage"},
      {"ContainerStats", "memory", 3, kMsg, kOne, "MemoryUsage"},
      {"ContainerStats", "writable_layer", 4, kMsg, kOne, "FilesystemUsage"},
      {"CpuUsage", "timestamp", 1, kInt64, kOne, ""},
      {"CpuUsage", "usage_core_nano_seconds", 2, kMsg, kOne, "UInt64Value"},
      {"CpuUsage", "usage_nano_cores", 3, kMsg, kOne, "UInt64Value"},
      {"MemoryUsage", "working_set_bytes", 2, kMsg, kOne, "UInt64Value"},
      {"MemoryUsage", "available_bytes", 3, kMsg, kOne, "UInt64Value"},
      {"MemoryUsage", "usage_bytes", 4, kMsg, kOne, "UInt64Value"},
      {"MemoryUsage", "rss_bytes", 5, kMsg, kOne, "UInt64Value"},
      {"FilesystemUsage", "timestamp", 1, kInt64, kOne, ""},
      {"FilesystemUsage", "fs_id", 2, kMsg, kOne, "FilesystemIdentifier"},
      {"FilesystemUsage", "used_bytes", 3, kMsg, kOne, "UInt64Value"},
      {"FilesystemUsage", "inodes_used", 4, kMsg, kOne, "UInt64Value"},
      {"ImageFsInfoResponse", "image_filesystems", 1, kMsg, kRep, "FilesystemUsage"},
      {"ImageFsInfoResponse", "container_filesystems", 2, kMsg, kRep, "FilesystemUsage"},
  };
  return table;
}

TEST(CriProto, FieldNumbersTypesAndLabels) {
  const DescriptorPool* pool = DescriptorPool::generated_pool();
  for (const Field& want : fieldTable()) {
    SCOPED_TRACE(std::string(want.message) + "." + want.name);
    const Descriptor* message = pool->FindMessageTypeByName(std::string("runtime.v1.") + want.message);
    ASSERT_NE(message, nullptr) << "missing message";
    const FieldDescriptor* field = message->FindFieldByName(want.name);
    ASSERT_NE(field, nullptr) << "missing field";
    EXPECT_EQ(field->number(), want.number);
    EXPECT_EQ(field->type(), want.type) << field->type_name();
    EXPECT_EQ(field->is_map(), want.shape == Shape::kMap);
    EXPECT_EQ(field->is_repeated(), want.shape != Shape::kSingular);
    EXPECT_EQ(field->real_containing_oneof(), nullptr);
    EXPECT_FALSE(field->has_optional_keyword());
    if (want.shape == Shape::kMap) {
      // Every CRI map is map<string, string>.
      const Descriptor* entry = field->message_type();
      EXPECT_EQ(entry->map_key()->type(), FieldDescriptor::TYPE_STRING);
      EXPECT_EQ(entry->map_value()->type(), FieldDescriptor::TYPE_STRING);
    }
    if (*want.typeName != '\0') {
      std::string typeName = std::string("runtime.v1.") + want.typeName;
      if (field->message_type() != nullptr) {
        EXPECT_EQ(field->message_type()->full_name(), typeName);
      } else {
        ASSERT_NE(field->enum_type(), nullptr);
        EXPECT_EQ(field->enum_type()->full_name(), typeName);
      }
    }
  }
}

// Fields that exist upstream only under these exact (unusual) names.
TEST(CriProto, UpstreamFieldSpellings) {
  const DescriptorPool* pool = DescriptorPool::generated_pool();
  const Descriptor* psiStats = pool->FindMessageTypeByName("runtime.v1.PsiStats");
  ASSERT_NE(psiStats, nullptr);
  EXPECT_EQ(psiStats->FindFieldByName("Full")->number(), 1);
  EXPECT_EQ(psiStats->FindFieldByName("Some")->number(), 2);
  const Descriptor* psiData = pool->FindMessageTypeByName("runtime.v1.PsiData");
  ASSERT_NE(psiData, nullptr);
  EXPECT_EQ(psiData->FindFieldByName("Total")->type(), FieldDescriptor::TYPE_UINT64);
  EXPECT_EQ(psiData->FindFieldByName("Avg300")->type(), FieldDescriptor::TYPE_DOUBLE);
  // Namespace starts at field 2 upstream.
  const Descriptor* ns = pool->FindMessageTypeByName("runtime.v1.Namespace");
  ASSERT_NE(ns, nullptr);
  ASSERT_EQ(ns->field_count(), 1);
  EXPECT_EQ(ns->FindFieldByName("options")->number(), 2);
}

struct EnumValues {
  const char* enumName;  // without the "runtime.v1." prefix
  int valueCount;
  std::vector<std::pair<const char*, int>> values;  // a selection
};

TEST(CriProto, EnumValues) {
  const std::vector<EnumValues> table = {
      {"Protocol", 3, {{"TCP", 0}, {"UDP", 1}, {"SCTP", 2}}},
      {"MountPropagation", 3,
       {{"PROPAGATION_PRIVATE", 0}, {"PROPAGATION_HOST_TO_CONTAINER", 1},
        {"PROPAGATION_BIDIRECTIONAL", 2}}},
      {"NamespaceMode", 4, {{"POD", 0}, {"CONTAINER", 1}, {"NODE", 2}, {"TARGET", 3}}},
      {"SupplementalGroupsPolicy", 2, {{"Merge", 0}, {"Strict", 1}}},
      {"SecurityProfile.ProfileType", 3,
       {{"RuntimeDefault", 0}, {"Unconfined", 1}, {"Localhost", 2}}},
      {"PodSandboxState", 2, {{"SANDBOX_READY", 0}, {"SANDBOX_NOTREADY", 1}}},
      {"ContainerState", 4,
       {{"CONTAINER_CREATED", 0}, {"CONTAINER_RUNNING", 1}, {"CONTAINER_EXITED", 2},
        {"CONTAINER_UNKNOWN", 3}}},
      {"ContainerEventType", 4,
       {{"CONTAINER_CREATED_EVENT", 0}, {"CONTAINER_STARTED_EVENT", 1},
        {"CONTAINER_STOPPED_EVENT", 2}, {"CONTAINER_DELETED_EVENT", 3}}},
      {"MetricType", 2, {{"COUNTER", 0}, {"GAUGE", 1}}},
      {"CgroupDriver", 2, {{"SYSTEMD", 0}, {"CGROUPFS", 1}}},
      {"Signal", 66,
       {{"SIGNAL_RUNTIME_DEFAULT", 0}, {"SIGNAL_SIGHUP", 8}, {"SIGNAL_SIGINT", 10},
        {"SIGNAL_SIGKILL", 13}, {"SIGNAL_SIGQUIT", 18}, {"SIGNAL_SIGTERM", 23},
        {"SIGNAL_SIGUSR1", 29}, {"SIGNAL_SIGWINCH", 32}, {"SIGNAL_SIGRTMIN", 35},
        {"SIGNAL_SIGRTMAX", 65}}},
  };
  for (const EnumValues& want : table) {
    SCOPED_TRACE(want.enumName);
    const EnumDescriptor* e = DescriptorPool::generated_pool()->FindEnumTypeByName(
        std::string("runtime.v1.") + want.enumName);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->value_count(), want.valueCount);
    for (const auto& [name, number] : want.values) {
      const auto* value = e->FindValueByName(name);
      ASSERT_NE(value, nullptr) << name;
      EXPECT_EQ(value->number(), number) << name;
    }
  }
  // The Signal numbers are dense: value i is number i.
  const EnumDescriptor* signal = runtime::v1::Signal_descriptor();
  for (int i = 0; i < signal->value_count(); ++i) {
    EXPECT_EQ(signal->value(i)->number(), i) << signal->value(i)->name();
  }
}

std::string serialize(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  message.SerializeToCodedStream(&coded);
  coded.Trim();
  return out;
}

std::string bytesOf(std::initializer_list<int> bytes) {
  std::string out;
  for (int b : bytes) out.push_back(static_cast<char>(b));
  return out;
}

// The bytes were worked out by hand from the field numbers (tag = number << 3 | wire
// type; 0 varint, 2 length-delimited) and agree with `protoc --encode` on upstream's
// api.proto.
TEST(CriProto, RunPodSandboxRequestBytes) {
  runtime::v1::RunPodSandboxRequest request;
  runtime::v1::PodSandboxConfig* config = request.mutable_config();
  config->mutable_metadata()->set_name("nginx");
  config->mutable_metadata()->set_uid("u1");
  config->mutable_metadata()->set_namespace_("default");
  config->mutable_metadata()->set_attempt(1);
  config->set_hostname("web");
  config->mutable_dns_config()->add_servers("10.96.0.10");
  config->mutable_dns_config()->add_options("ndots:5");
  runtime::v1::PortMapping* port = config->add_port_mappings();
  port->set_protocol(runtime::v1::UDP);
  port->set_container_port(53);
  port->set_host_port(5353);
  (*config->mutable_labels())["app"] = "web";
  config->mutable_linux()->mutable_security_context()->mutable_namespace_options()
      ->set_network(runtime::v1::NODE);
  request.set_runtime_handler("runc");

  std::string expected;
  expected += bytesOf({0x0a, 81});                          // config (1), 81 bytes
  expected += bytesOf({0x0a, 22});                          //   metadata (1), 22 bytes
  expected += bytesOf({0x0a, 5}) + "nginx";                 //     name (1)
  expected += bytesOf({0x12, 2}) + "u1";                    //     uid (2)
  expected += bytesOf({0x1a, 7}) + "default";               //     namespace (3)
  expected += bytesOf({0x20, 1});                           //     attempt (4) = 1
  expected += bytesOf({0x12, 3}) + "web";                   //   hostname (2)
  expected += bytesOf({0x22, 21});                          //   dns_config (4), 21 bytes
  expected += bytesOf({0x0a, 10}) + "10.96.0.10";           //     servers (1)
  expected += bytesOf({0x1a, 7}) + "ndots:5";               //     options (3)
  expected += bytesOf({0x2a, 7});                           //   port_mappings (5), 7 bytes
  expected += bytesOf({0x08, 1});                           //     protocol (1) = UDP
  expected += bytesOf({0x10, 53});                          //     container_port (2) = 53
  expected += bytesOf({0x18, 0xe9, 0x29});                  //     host_port (3) = 5353
  expected += bytesOf({0x32, 10});                          //   labels (6): one entry
  expected += bytesOf({0x0a, 3}) + "app";                   //     key (1)
  expected += bytesOf({0x12, 3}) + "web";                   //     value (2)
  expected += bytesOf({0x42, 6});                           //   linux (8), 6 bytes
  expected += bytesOf({0x12, 4});                           //     security_context (2)
  expected += bytesOf({0x0a, 2});                           //       namespace_options (1)
  expected += bytesOf({0x08, 2});                           //         network (1) = NODE
  expected += bytesOf({0x12, 4}) + "runc";                  // runtime_handler (2)
  ASSERT_EQ(expected.size(), 89u);

  EXPECT_EQ(serialize(request), expected);

  runtime::v1::RunPodSandboxRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(expected));
  EXPECT_EQ(parsed.config().metadata().namespace_(), "default");
  EXPECT_EQ(parsed.config().port_mappings(0).host_port(), 5353);
  EXPECT_EQ(parsed.config().labels().at("app"), "web");
  EXPECT_EQ(parsed.config().linux().security_context().namespace_options().network(),
            runtime::v1::NODE);
  EXPECT_EQ(parsed.runtime_handler(), "runc");
}

// A newer kubelet may send fields we do not know yet: they must survive a parse and
// re-serialisation rather than be rejected.
TEST(CriProto, UnknownFieldsAreKept) {
  // ContainerConfig bytes: an unknown field 1000 (string "x", tag 0xc2 0x3e) then
  // working_dir (5).
  std::string wire = bytesOf({0xc2, 0x3e, 1}) + "x" + bytesOf({0x2a, 4}) + "/app";
  runtime::v1::ContainerConfig config;
  ASSERT_TRUE(config.ParseFromString(wire));
  EXPECT_EQ(config.working_dir(), "/app");
  std::string again = serialize(config);
  EXPECT_NE(again.find(bytesOf({0xc2, 0x3e, 1}) + "x"), std::string::npos);
}

}  // namespace
