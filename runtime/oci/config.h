// The OCI runtime-spec 1.1 configuration model (config.json) for Linux: parse,
// validate and serialise. Field names in comments are the spec's JSON keys
// (opencontainers/runtime-spec config.md, config-linux.md).
//
// Optional values are std::optional so "absent" and "zero" stay different, which the
// spec requires (e.g. linux.resources.memory.limit absent vs 0).
// Thread-safety: plain value types; functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace berth::oci {

// "ociVersion" we write; parse accepts 1.0.0 … 1.2.x.
inline constexpr char kOciVersion[] = "1.1.0";

struct User {                         // process.user
  uint32_t uid = 0;                   // uid
  uint32_t gid = 0;                   // gid
  std::optional<uint32_t> umask;      // umask
  std::vector<uint32_t> additionalGids;  // additionalGids
  std::string username;               // username (Windows only; kept for round trip)
};

struct Rlimit {                       // process.rlimits[]
  std::string type;                   // type, e.g. "RLIMIT_NOFILE"
  uint64_t hard = 0;                  // hard
  uint64_t soft = 0;                  // soft
};

struct Capabilities {                 // process.capabilities; names like "CAP_CHOWN"
  std::optional<std::vector<std::string>> bounding;
  std::optional<std::vector<std::string>> effective;
  std::optional<std::vector<std::string>> inheritable;
  std::optional<std::vector<std::string>> permitted;
  std::optional<std::vector<std::string>> ambient;
};

struct ConsoleSize {                  // process.consoleSize
  uint32_t height = 0;
  uint32_t width = 0;
};

struct Process {                      // process
  bool terminal = false;              // terminal
  std::optional<ConsoleSize> consoleSize;  // consoleSize
  User user;                          // user
  std::vector<std::string> args;      // args
  std::optional<std::string> commandLine;  // commandLine (Windows; round trip)
  std::vector<std::string> env;       // env, "KEY=value"
  std::string cwd = "/";              // cwd (absolute)
  std::optional<Capabilities> capabilities;  // capabilities
  std::vector<Rlimit> rlimits;        // rlimits
  bool noNewPrivileges = false;       // noNewPrivileges
  std::string apparmorProfile;        // apparmorProfile
  std::optional<int> oomScoreAdj;     // oomScoreAdj
  std::string selinuxLabel;           // selinuxLabel
  std::optional<nlohmann::json> ioPriority;  // ioPriority (kept, not applied yet)
  std::optional<nlohmann::json> scheduler;   // scheduler (kept, not applied yet)
};

struct Root {                         // root
  std::string path;                   // path (relative to the bundle, or absolute)
  bool readonly = false;              // readonly
};

struct IdMapping {                    // linux.uidMappings[] / gidMappings[]
  uint32_t containerID = 0;
  uint32_t hostID = 0;
  uint32_t size = 0;
};

struct Mount {                        // mounts[]
  std::string destination;            // destination (absolute in the container)
  std::string type;                   // type ("bind", "proc", "tmpfs", …)
  std::string source;                 // source
  std::vector<std::string> options;   // options ("nosuid", "rbind", "rprivate", …)
  // uidMappings / gidMappings: idmapped mounts (runtime-spec 1.1). Parsed and kept
  // for round trip; validateSpec() rejects them (berth-runtime does not support them).
  std::vector<IdMapping> uidMappings;
  std::vector<IdMapping> gidMappings;
};

struct Hook {                         // hooks.*[]
  std::string path;                   // path (absolute)
  std::vector<std::string> args;      // args
  std::vector<std::string> env;       // env
  std::optional<int> timeout;         // timeout, seconds (> 0)
};

struct Hooks {                        // hooks
  std::vector<Hook> prestart;         // prestart (deprecated, still run)
  std::vector<Hook> createRuntime;    // createRuntime
  std::vector<Hook> createContainer;  // createContainer
  std::vector<Hook> startContainer;   // startContainer
  std::vector<Hook> poststart;        // poststart
  std::vector<Hook> poststop;         // poststop
};

struct Namespace {                    // linux.namespaces[]
  std::string type;                   // type: pid network mount ipc uts user cgroup time
  std::string path;                   // path: join this one instead of creating
};

struct Device {                       // linux.devices[]
  std::string type;                   // type: c, b, u, p
  std::string path;                   // path in the container
  int64_t major = 0;
  int64_t minor = 0;
  std::optional<uint32_t> fileMode;   // fileMode
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
};

struct DeviceCgroup {                 // linux.resources.devices[]
  bool allow = false;                 // allow
  std::string type;                   // type: a, c, b ("" = a)
  std::optional<int64_t> major;       // major (absent = any)
  std::optional<int64_t> minor;       // minor (absent = any)
  std::string access;                 // access: subset of "rwm" ("" = rwm)
};

struct Memory {                       // linux.resources.memory (bytes; -1 = unlimited)
  std::optional<int64_t> limit;
  std::optional<int64_t> reservation;
  std::optional<int64_t> swap;        // memory+swap, v1 semantics (runc converts)
  std::optional<int64_t> kernel;
  std::optional<int64_t> kernelTCP;
  std::optional<uint64_t> swappiness;
  std::optional<bool> disableOOMKiller;
  std::optional<bool> useHierarchy;
  std::optional<bool> checkBeforeUpdate;
};

struct Cpu {                          // linux.resources.cpu
  std::optional<uint64_t> shares;     // v1 shares (2..262144), converted to cpu.weight
  std::optional<int64_t> quota;       // µs per period; -1 unlimited
  std::optional<uint64_t> burst;      // µs
  std::optional<uint64_t> period;     // µs
  std::optional<int64_t> realtimeRuntime;
  std::optional<uint64_t> realtimePeriod;
  std::string cpus;                   // cpuset, "0-3,5"
  std::string mems;                   // memory nodes
  std::optional<int64_t> idle;
};

struct Pids {                         // linux.resources.pids
  int64_t limit = 0;                  // limit; <= 0 unlimited
};

struct WeightDevice {                 // blockIO.weightDevice[]
  int64_t major = 0;
  int64_t minor = 0;
  std::optional<uint16_t> weight;
  std::optional<uint16_t> leafWeight;
};

struct ThrottleDevice {               // blockIO.throttle*Device[]
  int64_t major = 0;
  int64_t minor = 0;
  uint64_t rate = 0;
};

struct BlockIO {                      // linux.resources.blockIO
  std::optional<uint16_t> weight;     // 10..1000 (v1), converted to io.weight
  std::optional<uint16_t> leafWeight;
  std::vector<WeightDevice> weightDevice;
  std::vector<ThrottleDevice> throttleReadBpsDevice;
  std::vector<ThrottleDevice> throttleWriteBpsDevice;
  std::vector<ThrottleDevice> throttleReadIOPSDevice;
  std::vector<ThrottleDevice> throttleWriteIOPSDevice;
};

struct HugepageLimit {                // linux.resources.hugepageLimits[]
  std::string pageSize;               // pageSize, "2MB", "1GB"
  uint64_t limit = 0;                 // bytes
};

struct Resources {                    // linux.resources
  std::vector<DeviceCgroup> devices;
  std::optional<Memory> memory;
  std::optional<Cpu> cpu;
  std::optional<Pids> pids;
  std::optional<BlockIO> blockIO;
  std::vector<HugepageLimit> hugepageLimits;
  std::optional<nlohmann::json> network;  // v1 only; kept for round trip
  std::optional<nlohmann::json> rdma;     // kept for round trip
  std::map<std::string, std::string> unified;  // unified: cgroup v2 file -> value
};

struct SeccompArg {                   // linux.seccomp.syscalls[].args[]
  uint32_t index = 0;
  uint64_t value = 0;
  uint64_t valueTwo = 0;
  std::string op;                     // SCMP_CMP_NE, _LT, _LE, _EQ, _GE, _GT, _MASKED_EQ
};

struct SeccompSyscall {               // linux.seccomp.syscalls[]
  std::vector<std::string> names;
  std::string action;                 // SCMP_ACT_*
  std::optional<uint32_t> errnoRet;
  std::vector<SeccompArg> args;
};

struct Seccomp {                      // linux.seccomp
  std::string defaultAction;          // SCMP_ACT_*
  std::optional<uint32_t> defaultErrnoRet;
  std::vector<std::string> architectures;  // SCMP_ARCH_*
  std::vector<std::string> flags;     // SECCOMP_FILTER_FLAG_*
  std::string listenerPath;
  std::string listenerMetadata;
  std::vector<SeccompSyscall> syscalls;
};

struct Linux {                        // linux
  std::vector<Namespace> namespaces;
  std::vector<IdMapping> uidMappings;
  std::vector<IdMapping> gidMappings;
  std::vector<Device> devices;
  std::string cgroupsPath;
  std::optional<Resources> resources;
  std::string rootfsPropagation;      // "", shared, slave, private, unbindable (+r*)
  std::optional<Seccomp> seccomp;
  std::map<std::string, std::string> sysctl;
  std::vector<std::string> maskedPaths;
  std::vector<std::string> readonlyPaths;
  std::string mountLabel;
  std::optional<nlohmann::json> intelRdt;       // round trip only
  std::optional<nlohmann::json> personality;    // round trip only
  std::optional<nlohmann::json> timeOffsets;    // round trip only
};

struct Spec {                         // the whole config.json
  std::string ociVersion;
  std::optional<Process> process;     // required for create; optional in the schema
  std::optional<Root> root;
  std::string hostname;
  std::string domainname;
  std::vector<Mount> mounts;
  std::optional<Hooks> hooks;
  std::map<std::string, std::string> annotations;
  std::optional<Linux> linux;
};

// Parses config.json text into a Spec. Unknown keys are ignored (the spec allows it);
// a key of the wrong JSON type is InvalidArgument naming the key path, e.g.
// `config.json: "process.user.uid": expected unsigned integer, got string`.
StatusOr<Spec> parseSpec(std::string_view json_text);

// Reads <bundle>/config.json. Errors name the file.
StatusOr<Spec> loadSpec(const std::string& bundle_dir);

// Parses a process.json (the `exec --process` file: a Process object alone).
StatusOr<Process> parseProcess(std::string_view json_text);

// Serialises back to runtime-spec JSON (absent optionals omitted).
nlohmann::json toJson(const Spec& spec);
nlohmann::json toJson(const Process& process);

// Checks everything the runtime needs before it touches the system: ociVersion major 1,
// process present with non-empty args and absolute cwd, root.path present, absolute
// mount destinations, known namespace types without duplicates, user namespace
// mappings present iff a new user namespace is requested, known rlimit types with
// soft <= hard, hook paths absolute and timeouts > 0, device types and paths,
// hostname requiring a new UTS namespace, sysctls allowed for the namespaces in use.
// Capability names and the seccomp profile are checked by caps::validate() and
// seccomp::validateProfile() (runtime/linux), which know the kernel and libseccomp.
// Returns InvalidArgument naming the offending field and what to do.
// (Spelled berth::Status because state.h declares the enum oci::Status.)
berth::Status validateSpec(const Spec& spec);

// Validation for an exec'd process (args non-empty, cwd absolute, caps/rlimits known).
berth::Status validateProcess(const Process& process);

// Namespace type name <-> CLONE_NEW* flag. Errors: InvalidArgument for unknown names.
StatusOr<int> namespaceFlag(const std::string& type);
// The file name under /proc/<pid>/ns/ for a namespace type ("network" -> "net").
std::string namespaceProcName(const std::string& type);

}  // namespace berth::oci
