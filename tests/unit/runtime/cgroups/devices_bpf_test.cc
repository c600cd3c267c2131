#include "runtime/cgroups/devices_bpf.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/fs.h"
#include "common/strings.h"
#include "common/unique_fd.h"
#include "runtime/cgroups/manager.h"
#include "tests/unit/fakes/recording_syscalls.h"

namespace berth::cgroups {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr uint32_t kR = BPF_DEVCG_ACC_READ, kW = BPF_DEVCG_ACC_WRITE, kM = BPF_DEVCG_ACC_MKNOD;
constexpr uint32_t kChar = BPF_DEVCG_DEV_CHAR, kBlock = BPF_DEVCG_DEV_BLOCK;

oci::DeviceCgroup rule(bool allow, std::string type, std::optional<int64_t> major,
                       std::optional<int64_t> minor, std::string access) {
  oci::DeviceCgroup r;
  r.allow = allow;
  r.type = std::move(type);
  r.major = major;
  r.minor = minor;
  r.access = std::move(access);
  return r;
}

// ---------------------------------------------------------------------------
// A checker and interpreter for the instruction subset buildDeviceProgram emits.

// What the kernel verifier would reject in our subset: unknown opcodes, jumps out of
// range or backwards, unreachable instructions, reads of unset registers, falling off
// the end. Returns "" when the program is fine.
std::string verify(const std::vector<bpf_insn>& prog) {
  if (prog.empty()) return "empty program";
  const size_t n = prog.size();
  std::vector<bool> reachable(n, false);
  std::vector<std::optional<uint32_t>> init(n);  // bitmask of set registers on entry
  reachable[0] = true;
  init[0] = 1u << 1 | 1u << 10;                  // r1 = ctx, r10 = frame pointer
  auto flow = [&](size_t to, uint32_t regs) -> bool {
    if (to >= n) return false;
    reachable[to] = true;
    init[to] = init[to] ? (*init[to] & regs) : regs;
    return true;
  };
  for (size_t pc = 0; pc < n; ++pc) {
    if (!reachable[pc]) return strCat("unreachable insn ", pc);
    const bpf_insn& i = prog[pc];
    uint32_t regs = *init[pc];
    auto needs = [&](int reg) { return (regs >> reg) & 1; };
    switch (i.code) {
      case BPF_LDX | BPF_MEM | BPF_W:
        if (i.src_reg != 1 || i.off < 0 || i.off > 8 || i.off % 4) return strCat("bad load ", pc);
        if (!needs(1)) return strCat("r1 unset at ", pc);
        if (!flow(pc + 1, regs | 1u << i.dst_reg)) return "falls off the end";
        break;
      case BPF_ALU | BPF_MOV | BPF_X:
        if (!needs(i.src_reg)) return strCat("r", int(i.src_reg), " unset at ", pc);
        if (!flow(pc + 1, regs | 1u << i.dst_reg)) return "falls off the end";
        break;
      case BPF_ALU | BPF_AND | BPF_K:
      case BPF_ALU | BPF_RSH | BPF_K:
        if (!needs(i.dst_reg)) return strCat("r", int(i.dst_reg), " unset at ", pc);
        if (!flow(pc + 1, regs)) return "falls off the end";
        break;
      case BPF_ALU64 | BPF_MOV | BPF_K:
        if (!flow(pc + 1, regs | 1u << i.dst_reg)) return "falls off the end";
        break;
      case BPF_JMP32 | BPF_JNE | BPF_K:
      case BPF_JMP32 | BPF_JEQ | BPF_K:
        if (!needs(i.dst_reg)) return strCat("r", int(i.dst_reg), " unset at ", pc);
        if (i.off < 0) return strCat("backward jump at ", pc);
        if (!flow(pc + 1, regs) || !flow(pc + 1 + i.off, regs)) return "jump out of range";
        break;
      case BPF_JMP | BPF_EXIT:
        if (!needs(0)) return strCat("r0 unset at exit ", pc);
        break;
      default:
        return strCat("unexpected opcode 0x", hex(i.code), " at ", pc);
    }
  }
  return "";
}

// Runs the program for one request; -1 on an instruction outside the subset.
int run(const std::vector<bpf_insn>& prog, uint32_t type, uint32_t access, uint32_t major,
        uint32_t minor) {
  bpf_cgroup_dev_ctx ctx{(access << 16) | type, major, minor};
  uint64_t r[11] = {};
  size_t pc = 0;
  for (int steps = 0; steps < 100000 && pc < prog.size(); ++steps) {
    const bpf_insn& i = prog[pc++];
    switch (i.code) {
      case BPF_LDX | BPF_MEM | BPF_W: {
        uint32_t v;
        std::memcpy(&v, reinterpret_cast<const char*>(&ctx) + i.off, 4);
        r[i.dst_reg] = v;
        break;
      }
      case BPF_ALU | BPF_MOV | BPF_X: r[i.dst_reg] = static_cast<uint32_t>(r[i.src_reg]); break;
      case BPF_ALU | BPF_AND | BPF_K:
        r[i.dst_reg] = static_cast<uint32_t>(r[i.dst_reg]) & static_cast<uint32_t>(i.imm);
        break;
      case BPF_ALU | BPF_RSH | BPF_K:
        r[i.dst_reg] = static_cast<uint32_t>(r[i.dst_reg]) >> i.imm;
        break;
      case BPF_ALU64 | BPF_MOV | BPF_K: r[i.dst_reg] = static_cast<int64_t>(i.imm); break;
      case BPF_JMP32 | BPF_JNE | BPF_K:
        if (static_cast<uint32_t>(r[i.dst_reg]) != static_cast<uint32_t>(i.imm)) pc += i.off;
        break;
      case BPF_JMP32 | BPF_JEQ | BPF_K:
        if (static_cast<uint32_t>(r[i.dst_reg]) == static_cast<uint32_t>(i.imm)) pc += i.off;
        break;
      case BPF_JMP | BPF_EXIT: return static_cast<int>(r[0]);
      default: return -1;
    }
  }
  return -1;
}

// The v1 devices controller model: rules applied in order to a per-device bit set.
bool oracle(const std::vector<oci::DeviceCgroup>& rules, uint32_t type, uint32_t access,
            uint32_t major, uint32_t minor) {
  uint32_t granted = 0;
  for (const auto& rl : rules) {
    uint32_t t = rl.type == "c" ? kChar : rl.type == "b" ? kBlock : 0;
    if (t != 0 && t != type) continue;
    if (rl.major && *rl.major != -1 && *rl.major != major) continue;
    if (rl.minor && *rl.minor != -1 && *rl.minor != minor) continue;
    uint32_t bits = 0;
    for (char c : rl.access.empty() ? std::string("rwm") : rl.access) {
      bits |= c == 'r' ? kR : c == 'w' ? kW : kM;
    }
    granted = rl.allow ? (granted | bits) : (granted & ~bits);
  }
  return (access & ~granted) == 0;
}

std::vector<bpf_insn> mustBuild(const std::vector<oci::DeviceCgroup>& rules) {
  auto prog = buildDeviceProgram(rules);
  EXPECT_TRUE(prog.ok()) << prog.status();
  if (!prog.ok()) return {};
  EXPECT_EQ(verify(*prog), "");
  return *prog;
}

// runc's default device list: deny all, then the usual character devices.
std::vector<oci::DeviceCgroup> defaultRules() {
  std::vector<oci::DeviceCgroup> rules = {rule(false, "a", {}, {}, "rwm")};
  for (auto [maj, min] : std::vector<std::pair<int, int>>{
           {1, 3}, {1, 5}, {1, 7}, {5, 0}, {5, 1}, {5, 2}, {1, 8}, {1, 9}, {10, 200}}) {
    rules.push_back(rule(true, "c", maj, min, "rwm"));
  }
  rules.push_back(rule(true, "c", 136, {}, "rwm"));  // /dev/pts/*
  rules.push_back(rule(true, "c", {}, {}, "m"));     // mknod of any char device
  rules.push_back(rule(true, "b", {}, {}, "m"));
  return rules;
}

struct Request {
  uint32_t type, access, major, minor;
  bool allowed;
};

TEST(DeviceProgram, RuncDefaultList) {
  auto rules = defaultRules();
  auto prog = mustBuild(rules);
  std::vector<Request> table = {
      {kChar, kR | kW, 1, 3, true},       // /dev/null
      {kChar, kR, 1, 5, true},            // /dev/zero
      {kChar, kW, 1, 7, true},            // /dev/full
      {kChar, kR | kW, 5, 0, true},       // /dev/tty
      {kChar, kR | kW, 5, 1, true},       // /dev/console
      {kChar, kR | kW, 5, 2, true},       // /dev/ptmx
      {kChar, kR, 1, 8, true},            // /dev/random
      {kChar, kR, 1, 9, true},            // /dev/urandom
      {kChar, kR | kW, 10, 200, true},    // /dev/net/tun
      {kChar, kR | kW, 136, 0, true},     // /dev/pts/0
      {kChar, kR | kW, 136, 4242, true},  // /dev/pts/4242
      {kChar, kR | kW | kM, 1, 3, true},
      {kChar, kR, 1, 1, false},           // /dev/mem
      {kChar, kR, 1, 4, false},           // /dev/port
      {kChar, kR | kW, 10, 201, false},
      {kChar, kR, 137, 0, false},
      {kChar, kM, 1, 1, true},            // mknod is allowed for any char device...
      {kChar, kM | kR, 1, 1, false},      // ...but not reading it
      {kBlock, kM, 8, 0, true},
      {kBlock, kR, 8, 0, false},          // /dev/sda
      {kBlock, kR | kW, 1, 3, false},     // type matters: b 1:3 is not /dev/null
  };
  for (const Request& q : table) {
    EXPECT_EQ(run(prog, q.type, q.access, q.major, q.minor), q.allowed ? 1 : 0)
        << "type " << q.type << " access " << q.access << " " << q.major << ":" << q.minor;
    EXPECT_EQ(oracle(rules, q.type, q.access, q.major, q.minor), q.allowed);
  }
}

TEST(DeviceProgram, NoRulesDeniesEverything) {
  auto prog = mustBuild({});
  EXPECT_EQ(run(prog, kChar, kR, 1, 3), 0);
  EXPECT_EQ(run(prog, kBlock, kM, 8, 0), 0);
}

TEST(DeviceProgram, LastMatchingRuleWins) {
  // Allow everything, then deny /dev/null.
  auto prog = mustBuild({rule(true, "a", {}, {}, "rwm"), rule(false, "c", 1, 3, "rwm")});
  EXPECT_EQ(run(prog, kChar, kR, 1, 3), 0);
  EXPECT_EQ(run(prog, kChar, kR, 1, 5), 1);
  EXPECT_EQ(run(prog, kBlock, kR, 1, 3), 1);

  // Deny /dev/null, then allow everything: the later allow wins.
  prog = mustBuild({rule(false, "c", 1, 3, "rwm"), rule(true, "a", {}, {}, "rwm")});
  EXPECT_EQ(run(prog, kChar, kR | kW, 1, 3), 1);
  // Nothing after an allow-all rule is needed: the program is just the prologue and
  // "r0 = 1; exit".
  EXPECT_EQ(prog.size(), 8u);
}

TEST(DeviceProgram, DeniedBitIsNotGrantedByACombinedRequest) {
  // allow c 1:3 rwm, deny c 1:3 w: read yes, write no, and read+write (open O_RDWR)
  // must be refused too.
  auto prog = mustBuild({rule(true, "c", 1, 3, "rwm"), rule(false, "c", 1, 3, "w")});
  EXPECT_EQ(run(prog, kChar, kR, 1, 3), 1);
  EXPECT_EQ(run(prog, kChar, kM, 1, 3), 1);
  EXPECT_EQ(run(prog, kChar, kW, 1, 3), 0);
  EXPECT_EQ(run(prog, kChar, kR | kW, 1, 3), 0);
}

TEST(DeviceProgram, BitsGrantedBySeparateRulesCombine) {
  auto prog = mustBuild({rule(true, "c", 1, 3, "r"), rule(true, "c", 1, 3, "w")});
  EXPECT_EQ(run(prog, kChar, kR | kW, 1, 3), 1);
  EXPECT_EQ(run(prog, kChar, kR | kW | kM, 1, 3), 0);
}

TEST(DeviceProgram, WildcardsAndEmptyFields) {
  // "" type = all, absent or -1 major/minor = any, "" access = rwm.
  auto prog = mustBuild({rule(true, "", -1, {}, "")});
  EXPECT_EQ(run(prog, kBlock, kR | kW | kM, 253, 7), 1);
  prog = mustBuild({rule(true, "b", 8, {}, "r")});
  EXPECT_EQ(run(prog, kBlock, kR, 8, 17), 1);
  EXPECT_EQ(run(prog, kBlock, kW, 8, 17), 0);
  EXPECT_EQ(run(prog, kChar, kR, 8, 17), 0);
  EXPECT_EQ(run(prog, kBlock, kR, 9, 0), 0);
}

TEST(DeviceProgram, MatchesTheV1ModelOnRandomRuleLists) {
  std::mt19937 rng(20240601);
  const char* types[] = {"a", "", "c", "b"};
  const std::optional<int64_t> majors[] = {std::nullopt, -1, 1, 5};
  const std::optional<int64_t> minors[] = {std::nullopt, 3, 5};
  const char* accesses[] = {"", "r", "w", "m", "rw", "rm", "wm", "rwm", "mr"};
  for (int iter = 0; iter < 400; ++iter) {
    std::vector<oci::DeviceCgroup> rules;
    size_t count = rng() % 9;
    for (size_t i = 0; i < count; ++i) {
      rules.push_back(rule(rng() % 2, types[rng() % 4], majors[rng() % 4], minors[rng() % 3],
                           accesses[rng() % 9]));
    }
    auto prog = mustBuild(rules);
    ASSERT_FALSE(prog.empty());
    for (uint32_t type : {kChar, kBlock}) {
      for (uint32_t major : {1u, 5u, 7u}) {
        for (uint32_t minor : {3u, 5u, 9u}) {
          for (uint32_t access = 1; access <= 7; ++access) {
            ASSERT_EQ(run(prog, type, access, major, minor) == 1,
                      oracle(rules, type, access, major, minor))
                << "iteration " << iter << " type " << type << " access " << access << " "
                << major << ":" << minor;
          }
        }
      }
    }
  }
}

TEST(DeviceProgram, RejectsInvalidRules) {
  auto r = buildDeviceProgram({rule(true, "c", 1, 3, "rwm"), rule(true, "x", 1, 3, "r")});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("linux.resources.devices[1].type"));

  r = buildDeviceProgram({rule(true, "c", 1, 3, "rwx")});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("devices[0].access"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("'x'"));

  r = buildDeviceProgram({rule(true, "c", -5, 3, "r")});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("devices[0].major"));
  r = buildDeviceProgram({rule(true, "c", 1, int64_t{1} << 33, "r")});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("devices[0].minor"));
}

// ---------------------------------------------------------------------------
// attachDeviceProgram against a fake bpf(2).

class FakeBpf : public testing::RecordingSyscalls {
 public:
  std::vector<uint32_t> attached_ids;   // what BPF_PROG_QUERY reports
  uint32_t attached_flags = BPF_F_ALLOW_MULTI;
  int load_errno = 0;                   // make BPF_PROG_LOAD fail
  std::string verifier_log = "R0 !read_ok";
  std::vector<int> commands;
  std::string license;
  uint32_t prog_type = 0, insn_cnt = 0, attach_flags = 0, attach_target = 0;
  std::vector<uint32_t> detached_fds;

  SysLongResult bpf(int cmd, void* attr_ptr, unsigned int size) override {
    auto* attr = static_cast<bpf_attr*>(attr_ptr);
    commands.push_back(cmd);
    record(strCat("bpf(", cmd, ", ", size, ")"));
    switch (cmd) {
      case BPF_PROG_LOAD:
        prog_type = attr->prog_type;
        insn_cnt = attr->insn_cnt;
        license = reinterpret_cast<const char*>(static_cast<uintptr_t>(attr->license));
        if (load_errno != 0) {
          if (attr->log_level != 0 && attr->log_size > verifier_log.size()) {
            std::memcpy(reinterpret_cast<char*>(static_cast<uintptr_t>(attr->log_buf)),
                        verifier_log.c_str(), verifier_log.size() + 1);
          }
          return {-1, load_errno};
        }
        return {7, 0};
      case BPF_PROG_QUERY: {
        attr->query.attach_flags = attached_ids.empty() ? 0 : attached_flags;
        auto* ids = reinterpret_cast<uint32_t*>(static_cast<uintptr_t>(attr->query.prog_ids));
        if (attr->query.prog_cnt < attached_ids.size()) {
          attr->query.prog_cnt = static_cast<uint32_t>(attached_ids.size());
          return {-1, ENOSPC};
        }
        for (size_t i = 0; i < attached_ids.size(); ++i) ids[i] = attached_ids[i];
        attr->query.prog_cnt = static_cast<uint32_t>(attached_ids.size());
        return {0, 0};
      }
      case BPF_PROG_ATTACH:
        attach_flags = attr->attach_flags;
        attach_target = attr->target_fd;
        return {0, 0};
      case BPF_PROG_GET_FD_BY_ID: return {static_cast<long>(attr->prog_id + 1000), 0};
      case BPF_PROG_DETACH:
        detached_fds.push_back(attr->attach_bpf_fd);
        return {0, 0};
    }
    return {-1, EINVAL};
  }
};

TEST(AttachDeviceProgram, LoadsAttachesAndDetachesOldPrograms) {
  FakeBpf sys;
  sys.attached_ids = {11, 12};
  auto prog = mustBuild(defaultRules());
  ASSERT_TRUE(attachDeviceProgram(sys, 42, prog).ok());
  EXPECT_THAT(sys.commands, ElementsAre(BPF_PROG_LOAD, BPF_PROG_QUERY, BPF_PROG_ATTACH,
                                        BPF_PROG_GET_FD_BY_ID, BPF_PROG_DETACH,
                                        BPF_PROG_GET_FD_BY_ID, BPF_PROG_DETACH));
  EXPECT_EQ(sys.prog_type, BPF_PROG_TYPE_CGROUP_DEVICE);
  EXPECT_EQ(sys.insn_cnt, prog.size());
  EXPECT_EQ(sys.license, "Apache");
  EXPECT_EQ(sys.attach_flags, BPF_F_ALLOW_MULTI);
  EXPECT_EQ(sys.attach_target, 42u);
  EXPECT_THAT(sys.detached_fds, ElementsAre(1011u, 1012u));
  // The fds of the old programs and of the new one are closed; the cgroup fd is not.
  std::set<std::string> closes;
  for (const auto& c : sys.calls()) {
    if (c.rfind("close(", 0) == 0) closes.insert(c);
  }
  EXPECT_EQ(closes, (std::set<std::string>{"close(7)", "close(1011)", "close(1012)"}));
}

TEST(AttachDeviceProgram, GrowsTheQueryBuffer) {
  FakeBpf sys;
  for (uint32_t i = 1; i <= 100; ++i) sys.attached_ids.push_back(i);
  ASSERT_TRUE(attachDeviceProgram(sys, 42, mustBuild({})).ok());
  EXPECT_EQ(sys.detached_fds.size(), 100u);
}

TEST(AttachDeviceProgram, ReplacesASingleNonMultiProgram) {
  FakeBpf sys;
  sys.attached_ids = {5};
  sys.attached_flags = 0;
  ASSERT_TRUE(attachDeviceProgram(sys, 42, mustBuild({})).ok());
  EXPECT_EQ(sys.attach_flags, 0u);
  EXPECT_THAT(sys.commands, ElementsAre(BPF_PROG_LOAD, BPF_PROG_QUERY, BPF_PROG_ATTACH));
}

TEST(AttachDeviceProgram, ReportsTheVerifierLog) {
  FakeBpf sys;
  sys.load_errno = EACCES;
  Status st = attachDeviceProgram(sys, 42, mustBuild({}));
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), HasSubstr("BPF_PROG_LOAD"));
  EXPECT_THAT(std::string(st.message()), HasSubstr("R0 !read_ok"));
  EXPECT_THAT(std::string(st.message()), HasSubstr("EACCES"));
  EXPECT_THAT(sys.commands, ElementsAre(BPF_PROG_LOAD, BPF_PROG_LOAD));
}

TEST(AttachDeviceProgram, PermissionErrorIsNotRetried) {
  FakeBpf sys;
  sys.load_errno = EPERM;
  Status st = attachDeviceProgram(sys, 42, mustBuild({}));
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(sys.commands, ElementsAre(BPF_PROG_LOAD));
}

// ---------------------------------------------------------------------------
// Privileged: the program really controls device access in a throwaway cgroup.

// Forks a child that joins `cgroup` and opens /dev/null and /dev/zero; returns
// the errno of each open (0 = opened), or an error string.
StatusOr<std::pair<int, int>> probeDevices(const std::string& cgroup) {
  int pipefd[2];
  if (::pipe(pipefd) != 0) return lastErrnoError("pipe");
  std::string procs = cgroup + "/cgroup.procs";
  pid_t pid = ::fork();
  if (pid < 0) return lastErrnoError("fork");
  if (pid == 0) {
    ::close(pipefd[0]);
    int result[2] = {-1, -1};
    int fd = ::open(procs.c_str(), O_WRONLY);
    if (fd >= 0 && ::write(fd, "0", 1) == 1) {
      ::close(fd);
      int a = ::open("/dev/null", O_RDWR);
      result[0] = a >= 0 ? 0 : errno;
      int b = ::open("/dev/zero", O_RDONLY);
      result[1] = b >= 0 ? 0 : errno;
    }
    if (::write(pipefd[1], result, sizeof(result)) != sizeof(result)) _exit(2);
    _exit(0);
  }
  ::close(pipefd[1]);
  int result[2] = {-1, -1};
  ssize_t n = ::read(pipefd[0], result, sizeof(result));
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (n != sizeof(result) || result[0] < 0) return internalError("child could not join ", procs);
  return std::make_pair(result[0], result[1]);
}

TEST(DeviceProgramPrivileged, DeniesDevNullInAThrowawayCgroup) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to load BPF programs";
  auto mount = detectCgroup2Mount();
  if (!mount.ok()) GTEST_SKIP() << "no cgroup2 mount: " << mount.status();
  std::string dir = strCat(*mount, "/berth-test-", ::getpid(), "-devices");
  if (::mkdir(dir.c_str(), 0755) != 0) {
    GTEST_SKIP() << "cannot create a cgroup under " << *mount << ": " << std::strerror(errno);
  }
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      for (int i = 0; i < 100 && ::rmdir(dir.c_str()) != 0 && errno == EBUSY; ++i) ::usleep(10000);
    }
  } cleanup{dir};
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());

  auto deny_null = mustBuild({rule(true, "a", {}, {}, "rwm"), rule(false, "c", 1, 3, "rwm")});
  Status st = attachDeviceProgram(RealSyscalls::get(), fd.get(), deny_null);
  if (!st.ok() && st.code() == absl::StatusCode::kPermissionDenied) {
    GTEST_SKIP() << "bpf(2) not permitted here: " << st;
  }
  ASSERT_TRUE(st.ok()) << st;
  auto probe = probeDevices(dir);
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_EQ(probe->first, EPERM) << "/dev/null should be denied";
  EXPECT_EQ(probe->second, 0) << "/dev/zero should open";

  // Replacing the program detaches the old one: /dev/null opens again, and only one
  // program stays attached.
  ASSERT_TRUE(attachDeviceProgram(RealSyscalls::get(), fd.get(),
                                  mustBuild({rule(true, "a", {}, {}, "rwm")}))
                  .ok());
  probe = probeDevices(dir);
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_EQ(probe->first, 0);
  EXPECT_EQ(probe->second, 0);
  uint32_t ids[8] = {};
  bpf_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.query.target_fd = static_cast<uint32_t>(fd.get());
  attr.query.attach_type = BPF_CGROUP_DEVICE;
  attr.query.prog_ids = reinterpret_cast<uintptr_t>(ids);
  attr.query.prog_cnt = 8;
  ASSERT_TRUE(RealSyscalls::get().bpf(BPF_PROG_QUERY, &attr, sizeof(attr)).ok());
  EXPECT_EQ(attr.query.prog_cnt, 1u);
}

}  // namespace
}  // namespace berth::cgroups
