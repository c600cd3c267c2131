#include "runtime/cgroups/devices_bpf.h"

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <limits>

#include "common/strings.h"

namespace berth::cgroups {
namespace {

// Registers of the generated program (see buildDeviceProgram):
//   r1 ctx on entry, then scratch; r2 device type; r3 requested access bits not yet
//   granted; r4 major; r5 minor; r0 return value.
constexpr uint8_t kR0 = 0, kR1 = 1, kRegType = 2, kRegAccess = 3, kRegMajor = 4,
                  kRegMinor = 5;
constexpr uint32_t kAllAccess =
    BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;

bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i{};
  i.code = code;
  i.dst_reg = dst & 0xf;
  i.src_reg = src & 0xf;
  i.off = off;
  i.imm = imm;
  return i;
}

// dst = *(u32*)(src + off)
bpf_insn loadWord(uint8_t dst, uint8_t src, int16_t off) {
  return insn(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0);
}
// dst = src (32-bit, zero-extends)
bpf_insn mov32Reg(uint8_t dst, uint8_t src) {
  return insn(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0);
}
// dst op= imm (32-bit)
bpf_insn alu32Imm(uint8_t op, uint8_t dst, int32_t imm) {
  return insn(BPF_ALU | op | BPF_K, dst, 0, 0, imm);
}
// dst = imm (64-bit)
bpf_insn mov64Imm(uint8_t dst, int32_t imm) {
  return insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm);
}
// if (u32)dst != (u32)imm goto pc + 1 + off (offset patched later)
bpf_insn jne32Imm(uint8_t dst, uint32_t imm) {
  return insn(BPF_JMP32 | BPF_JNE | BPF_K, dst, 0, 0, static_cast<int32_t>(imm));
}
// if (u32)dst == (u32)imm goto pc + 1 + off
bpf_insn jeq32Imm(uint8_t dst, uint32_t imm) {
  return insn(BPF_JMP32 | BPF_JEQ | BPF_K, dst, 0, 0, static_cast<int32_t>(imm));
}
bpf_insn exitInsn() { return insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

struct ParsedRule {
  bool allow = false;
  std::optional<uint32_t> type;   // BPF_DEVCG_DEV_*; nullopt = any
  std::optional<uint32_t> major;  // nullopt = any
  std::optional<uint32_t> minor;
  uint32_t access = kAllAccess;   // BPF_DEVCG_ACC_* bits
};

StatusOr<std::optional<uint32_t>> parseNumber(const std::optional<int64_t>& value,
                                              const std::string& field) {
  if (!value.has_value() || *value == -1) return std::optional<uint32_t>();
  if (*value < 0 || *value > std::numeric_limits<uint32_t>::max()) {
    return invalidArgument(field, ": invalid device number ", *value,
                           "; omit it (or use -1) to match any");
  }
  return std::optional<uint32_t>(static_cast<uint32_t>(*value));
}

StatusOr<ParsedRule> parseRule(const oci::DeviceCgroup& rule, size_t index) {
  std::string where = strCat("linux.resources.devices[", index, "]");
  ParsedRule out;
  out.allow = rule.allow;
  if (rule.type == "c") {
    out.type = BPF_DEVCG_DEV_CHAR;
  } else if (rule.type == "b") {
    out.type = BPF_DEVCG_DEV_BLOCK;
  } else if (!rule.type.empty() && rule.type != "a") {
    return invalidArgument(where, ".type: unknown device type \"", rule.type,
                           "\"; use \"a\" (all), \"c\" (char) or \"b\" (block)");
  }
  ASSIGN_OR_RETURN(out.major, parseNumber(rule.major, where + ".major"));
  ASSIGN_OR_RETURN(out.minor, parseNumber(rule.minor, where + ".minor"));
  if (!rule.access.empty()) {
    out.access = 0;
    for (char c : rule.access) {
      switch (c) {
        case 'r': out.access |= BPF_DEVCG_ACC_READ; break;
        case 'w': out.access |= BPF_DEVCG_ACC_WRITE; break;
        case 'm': out.access |= BPF_DEVCG_ACC_MKNOD; break;
        default:
          return invalidArgument(where, ".access: unknown access letter '", c, "' in \"",
                                 rule.access, "\"; use a combination of r, w and m");
      }
    }
  }
  return out;
}

// Appends the block of one rule; every failed check jumps past it (to the next rule
// or the default). Returns true if the block always returns, i.e. the rule matches
// every request, so nothing after it could run.
//
// Access is decided bit by bit, as the v1 devices controller does: walking the rules
// from the last to the first, r3 holds the requested bits no later rule has granted
// yet. A matching allow rule grants its bits (r3 &= ~bits) and allows once nothing is
// left; a matching deny rule denies if it covers any bit still needed. So with
// "allow c 1:3 rwm" then "deny c 1:3 w", reading is allowed but read+write is not.
bool emitRule(const ParsedRule& rule, std::vector<bpf_insn>& prog) {
  std::vector<size_t> jumps;  // indices of the jumps to patch
  auto jumpIfNot = [&](bpf_insn jump) {
    jumps.push_back(prog.size());
    prog.push_back(jump);
  };
  if (rule.type) jumpIfNot(jne32Imm(kRegType, *rule.type));
  if (rule.major) jumpIfNot(jne32Imm(kRegMajor, *rule.major));
  if (rule.minor) jumpIfNot(jne32Imm(kRegMinor, *rule.minor));
  bool unconditional = jumps.empty() && rule.access == kAllAccess;
  if (!unconditional) {
    if (rule.allow) {
      prog.push_back(alu32Imm(BPF_AND, kRegAccess, static_cast<int32_t>(~rule.access & 0xffff)));
      jumpIfNot(jne32Imm(kRegAccess, 0));
    } else {
      prog.push_back(mov32Reg(kR1, kRegAccess));
      prog.push_back(alu32Imm(BPF_AND, kR1, static_cast<int32_t>(rule.access)));
      jumpIfNot(jeq32Imm(kR1, 0));
    }
  }
  prog.push_back(mov64Imm(kR0, rule.allow ? 1 : 0));
  prog.push_back(exitInsn());
  for (size_t j : jumps) {
    prog[j].off = static_cast<int16_t>(prog.size() - j - 1);
  }
  return unconditional;
}

uint64_t ptrToU64(const void* p) { return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)); }

Status bpfError(int err, const char* command, const std::string& detail = "") {
  return errnoError(err, strCat("bpf(", command, ")", detail));
}

// Closes an fd through Syscalls on scope exit.
class SysFd {
 public:
  SysFd(Syscalls& sys, int fd) : sys_(sys), fd_(fd) {}
  SysFd(const SysFd&) = delete;
  SysFd& operator=(const SysFd&) = delete;
  ~SysFd() {
    if (fd_ >= 0) sys_.close(fd_);
  }
  int get() const { return fd_; }

 private:
  Syscalls& sys_;
  int fd_;
};

StatusOr<int> loadProgram(Syscalls& sys, const std::vector<bpf_insn>& insns) {
  static const char kLicense[] = "Apache";
  union bpf_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = ptrToU64(insns.data());
  attr.insn_cnt = static_cast<uint32_t>(insns.size());
  attr.license = ptrToU64(kLicense);
  SysLongResult r = sys.bpf(BPF_PROG_LOAD, &attr, sizeof(attr));
  if (r.ok()) return static_cast<int>(r.value);
  if (r.err != EINVAL && r.err != EACCES) {
    return bpfError(r.err, "BPF_PROG_LOAD", " of the device cgroup program");
  }
  // Load again with the verifier log so the error says why.
  std::string log(64 * 1024, '\0');
  attr.log_buf = ptrToU64(log.data());
  attr.log_size = static_cast<uint32_t>(log.size());
  attr.log_level = 1;
  r = sys.bpf(BPF_PROG_LOAD, &attr, sizeof(attr));
  if (r.ok()) return static_cast<int>(r.value);
  log.resize(strnlen(log.data(), log.size()));
  return bpfError(r.err, "BPF_PROG_LOAD",
                  strCat(" of the device cgroup program; verifier log: ",
                         log.empty() ? std::string("(empty)") : std::string(trim(log))));
}

struct Attached {
  std::vector<uint32_t> ids;
  uint32_t flags = 0;  // attach flags of the cgroup's current program list
};

StatusOr<Attached> queryAttached(Syscalls& sys, int cgroup_fd) {
  std::vector<uint32_t> ids(64);
  for (int attempt = 0; attempt < 4; ++attempt) {
    union bpf_attr attr;
    std::memset(&attr, 0, sizeof(attr));
    attr.query.target_fd = static_cast<uint32_t>(cgroup_fd);
    attr.query.attach_type = BPF_CGROUP_DEVICE;
    attr.query.prog_ids = ptrToU64(ids.data());
    attr.query.prog_cnt = static_cast<uint32_t>(ids.size());
    SysLongResult r = sys.bpf(BPF_PROG_QUERY, &attr, sizeof(attr));
    if (r.err == ENOSPC && attr.query.prog_cnt > ids.size()) {
      ids.resize(attr.query.prog_cnt);
      continue;
    }
    if (!r.ok()) return bpfError(r.err, "BPF_PROG_QUERY", " on the cgroup");
    Attached out;
    out.flags = attr.query.attach_flags;
    for (uint32_t i = 0; i < attr.query.prog_cnt && i < ids.size(); ++i) {
      if (ids[i] != 0) out.ids.push_back(ids[i]);
    }
    return out;
  }
  return internalError("bpf(BPF_PROG_QUERY): program list keeps growing");
}

Status detachProgram(Syscalls& sys, int cgroup_fd, uint32_t id) {
  union bpf_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.prog_id = id;
  SysLongResult r = sys.bpf(BPF_PROG_GET_FD_BY_ID, &attr, sizeof(attr));
  if (r.err == ENOENT) return absl::OkStatus();  // already gone
  if (!r.ok()) return bpfError(r.err, "BPF_PROG_GET_FD_BY_ID", strCat(" for program ", id));
  SysFd fd(sys, static_cast<int>(r.value));
  std::memset(&attr, 0, sizeof(attr));
  attr.target_fd = static_cast<uint32_t>(cgroup_fd);
  attr.attach_bpf_fd = static_cast<uint32_t>(fd.get());
  attr.attach_type = BPF_CGROUP_DEVICE;
  r = sys.bpf(BPF_PROG_DETACH, &attr, sizeof(attr));
  if (!r.ok() && r.err != ENOENT) {
    return bpfError(r.err, "BPF_PROG_DETACH", strCat(" of old program ", id));
  }
  return absl::OkStatus();
}

}  // namespace

StatusOr<std::vector<bpf_insn>> buildDeviceProgram(
    const std::vector<oci::DeviceCgroup>& rules) {
  std::vector<ParsedRule> parsed;
  parsed.reserve(rules.size());
  for (size_t i = 0; i < rules.size(); ++i) {
    ASSIGN_OR_RETURN(ParsedRule p, parseRule(rules[i], i));
    parsed.push_back(p);
  }

  std::vector<bpf_insn> prog;
  // Prologue: unpack struct bpf_cgroup_dev_ctx.
  prog.push_back(loadWord(kRegType, kR1, offsetof(bpf_cgroup_dev_ctx, access_type)));
  prog.push_back(mov32Reg(kRegAccess, kRegType));
  prog.push_back(alu32Imm(BPF_AND, kRegType, 0xffff));
  prog.push_back(alu32Imm(BPF_RSH, kRegAccess, 16));
  prog.push_back(loadWord(kRegMajor, kR1, offsetof(bpf_cgroup_dev_ctx, major)));
  prog.push_back(loadWord(kRegMinor, kR1, offsetof(bpf_cgroup_dev_ctx, minor)));

  // Last rule first (see emitRule). A rule that matches everything ends the program:
  // anything after it would be unreachable, which the verifier rejects.
  for (auto it = parsed.rbegin(); it != parsed.rend(); ++it) {
    if (emitRule(*it, prog)) return prog;
  }
  prog.push_back(mov64Imm(kR0, 0));  // no rule matched: deny
  prog.push_back(exitInsn());
  return prog;
}

Status attachDeviceProgram(Syscalls& sys, int cgroup_fd, const std::vector<bpf_insn>& insns) {
  ASSIGN_OR_RETURN(int prog_fd_raw, loadProgram(sys, insns));
  SysFd prog_fd(sys, prog_fd_raw);
  ASSIGN_OR_RETURN(Attached old, queryAttached(sys, cgroup_fd));

  // Programs attached with BPF_F_ALLOW_MULTI can be stacked, so ours is added and the
  // old ones removed afterwards: there is no instant without a filter. A single
  // program attached with other flags (0 or ALLOW_OVERRIDE) is replaced atomically by
  // attaching with the same flags.
  bool replace_single = !old.ids.empty() && old.flags != BPF_F_ALLOW_MULTI;
  union bpf_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.target_fd = static_cast<uint32_t>(cgroup_fd);
  attr.attach_bpf_fd = static_cast<uint32_t>(prog_fd.get());
  attr.attach_type = BPF_CGROUP_DEVICE;
  attr.attach_flags = replace_single ? old.flags : BPF_F_ALLOW_MULTI;
  SysLongResult r = sys.bpf(BPF_PROG_ATTACH, &attr, sizeof(attr));
  if (!r.ok()) return bpfError(r.err, "BPF_PROG_ATTACH", " of the device cgroup program");
  if (replace_single) return absl::OkStatus();

  for (uint32_t id : old.ids) {
    RETURN_IF_ERROR(detachProgram(sys, cgroup_fd, id));
  }
  return absl::OkStatus();
}

}  // namespace berth::cgroups
