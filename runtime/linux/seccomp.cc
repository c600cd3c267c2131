#include "runtime/linux/seccomp.h"

#include <errno.h>
#include <seccomp.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/log.h"
#include "common/strings.h"

namespace berth::seccomp {
namespace {

// The largest errno the 16-bit SECCOMP_RET_DATA field can carry.
constexpr uint32_t kMaxErrnoRet = 0xffff;

struct ActionInfo {
  const char* name;
  uint32_t base;        // libseccomp action; ERRNO/TRACE carry the errno in the low 16 bits
  bool takes_errno;     // SCMP_ACT_ERRNO and SCMP_ACT_TRACE accept errnoRet
  unsigned min_api;     // seccomp_api_get() level needed
};

// runtime-spec config-linux.md "Seccomp", defaultAction / syscalls[].action.
constexpr ActionInfo kActions[] = {
    {"SCMP_ACT_KILL", SCMP_ACT_KILL, false, 1},
    {"SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS, false, 3},
    {"SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD, false, 1},
    {"SCMP_ACT_TRAP", SCMP_ACT_TRAP, false, 1},
    {"SCMP_ACT_ERRNO", SCMP_ACT_ERRNO(0), true, 1},
    {"SCMP_ACT_TRACE", SCMP_ACT_TRACE(0), true, 1},
    {"SCMP_ACT_ALLOW", SCMP_ACT_ALLOW, false, 1},
    {"SCMP_ACT_LOG", SCMP_ACT_LOG, false, 3},
    {"SCMP_ACT_NOTIFY", SCMP_ACT_NOTIFY, false, 5},
};

struct OperatorInfo {
  const char* name;
  scmp_compare op;
};

constexpr OperatorInfo kOperators[] = {
    {"SCMP_CMP_NE", SCMP_CMP_NE},         {"SCMP_CMP_LT", SCMP_CMP_LT},
    {"SCMP_CMP_LE", SCMP_CMP_LE},         {"SCMP_CMP_EQ", SCMP_CMP_EQ},
    {"SCMP_CMP_GE", SCMP_CMP_GE},         {"SCMP_CMP_GT", SCMP_CMP_GT},
    {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
};

struct ArchInfo {
  const char* name;
  uint32_t token;
};

// The runtime-spec architectures libseccomp 2.5 knows (SCMP_ARCH_LOONGARCH64 and
// others arrived later and are rejected as unknown).
constexpr ArchInfo kArchitectures[] = {
    {"SCMP_ARCH_X86", SCMP_ARCH_X86},
    {"SCMP_ARCH_X86_64", SCMP_ARCH_X86_64},
    {"SCMP_ARCH_X32", SCMP_ARCH_X32},
    {"SCMP_ARCH_ARM", SCMP_ARCH_ARM},
    {"SCMP_ARCH_AARCH64", SCMP_ARCH_AARCH64},
    {"SCMP_ARCH_MIPS", SCMP_ARCH_MIPS},
    {"SCMP_ARCH_MIPS64", SCMP_ARCH_MIPS64},
    {"SCMP_ARCH_MIPS64N32", SCMP_ARCH_MIPS64N32},
    {"SCMP_ARCH_MIPSEL", SCMP_ARCH_MIPSEL},
    {"SCMP_ARCH_MIPSEL64", SCMP_ARCH_MIPSEL64},
    {"SCMP_ARCH_MIPSEL64N32", SCMP_ARCH_MIPSEL64N32},
    {"SCMP_ARCH_PPC", SCMP_ARCH_PPC},
    {"SCMP_ARCH_PPC64", SCMP_ARCH_PPC64},
    {"SCMP_ARCH_PPC64LE", SCMP_ARCH_PPC64LE},
    {"SCMP_ARCH_S390", SCMP_ARCH_S390},
    {"SCMP_ARCH_S390X", SCMP_ARCH_S390X},
    {"SCMP_ARCH_PARISC", SCMP_ARCH_PARISC},
    {"SCMP_ARCH_PARISC64", SCMP_ARCH_PARISC64},
    {"SCMP_ARCH_RISCV64", SCMP_ARCH_RISCV64},
};

struct FlagInfo {
  const char* name;
  std::optional<scmp_filter_attr> attr;  // nullopt: this libseccomp cannot set it
  unsigned min_api;
};

constexpr FlagInfo kFlags[] = {
    {"SECCOMP_FILTER_FLAG_TSYNC", SCMP_FLTATR_CTL_TSYNC, 2},
    {"SECCOMP_FILTER_FLAG_LOG", SCMP_FLTATR_CTL_LOG, 3},
    {"SECCOMP_FILTER_FLAG_SPEC_ALLOW", SCMP_FLTATR_CTL_SSB, 4},
    {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", std::nullopt, 0},
};

template <typename Table>
std::vector<std::string> namesOf(const Table& table) {
  std::vector<std::string> out;
  for (const auto& entry : table) out.emplace_back(entry.name);
  return out;
}

std::string libseccompVersion() {
  const scmp_version* v = seccomp_version();
  if (v == nullptr) return "libseccomp";
  return strCat("libseccomp ", v->major, ".", v->minor, ".", v->micro);
}

// One libseccomp rule: a syscall name, an action, and the comparisons ANDed together.
struct PlannedRule {
  size_t index = 0;                        // position in linux.seccomp.syscalls
  std::vector<std::string> names;
  uint32_t action = 0;
  std::string action_name;
  std::vector<std::vector<scmp_arg_cmp>> arg_sets;  // each set is one rule (OR'd)
};

// The profile checked and translated into libseccomp values, without a context.
struct Plan {
  uint32_t default_action = 0;
  std::vector<std::pair<size_t, uint32_t>> arches;            // (field index, token)
  std::vector<std::pair<size_t, scmp_filter_attr>> attrs;     // (field index, attr)
  std::vector<PlannedRule> rules;
  bool uses_notify = false;
};

// Resolves `name` (+ errnoRet) to a libseccomp action. `field` names the action key,
// `errno_field` the errnoRet key, for messages.
StatusOr<uint32_t> resolveAction(const std::string& name, std::optional<uint32_t> errno_ret,
                                 const std::string& field, const std::string& errno_field) {
  for (const ActionInfo& info : kActions) {
    if (name != info.name) continue;
    unsigned api = seccomp_api_get();
    if (api < info.min_api) {
      return invalidArgument(field, ": action \"", name, "\" is not supported by ",
                             libseccompVersion(), " on this kernel (API level ", api,
                             ", needs ", info.min_api, "); use another action");
    }
    if (!info.takes_errno) {
      if (errno_ret.has_value()) {
        return invalidArgument(errno_field, ": only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an "
                               "errno, not \"", name, "\"; remove it");
      }
      return info.base;
    }
    uint32_t err = errno_ret.value_or(EPERM);  // runtime-spec: errnoRet defaults to EPERM
    if (err > kMaxErrnoRet) {
      return invalidArgument(errno_field, ": ", err, " does not fit the 16-bit seccomp return "
                             "data; use an errno below 4096");
    }
    return info.base | err;
  }
  if (name.empty()) {
    return invalidArgument(field, ": missing; use one of ",
                           joinStrings(namesOf(kActions), ", "));
  }
  return invalidArgument(field, ": unknown action \"", name, "\"; use one of ",
                         joinStrings(namesOf(kActions), ", "));
}


StatusOr<scmp_arg_cmp> resolveArg(const oci::SeccompArg& arg, const std::string& field) {
  if (arg.index >= 6) {
    return invalidArgument(field, ".index: ", arg.index,
                           " is out of range; syscall arguments are numbered 0 to 5");
  }
  for (const OperatorInfo& info : kOperators) {
    if (arg.op != info.name) continue;
    scmp_arg_cmp cmp{};
    cmp.arg = arg.index;
    cmp.op = info.op;
    cmp.datum_a = arg.value;  // SCMP_CMP_MASKED_EQ: the mask
    // SCMP_CMP_MASKED_EQ compares (arg & value) == valueTwo; other operators ignore it.
    cmp.datum_b = info.op == SCMP_CMP_MASKED_EQ ? arg.valueTwo : 0;
    return cmp;
  }
  if (arg.op.empty()) {
    return invalidArgument(field, ".op: missing; use one of ",
                           joinStrings(namesOf(kOperators), ", "));
  }
  return invalidArgument(field, ".op: unknown operator \"", arg.op, "\"; use one of ",
                         joinStrings(namesOf(kOperators), ", "));
}

StatusOr<PlannedRule> planRule(const oci::SeccompSyscall& call, size_t index) {
  const std::string field = strCat("linux.seccomp.syscalls[", index, "]");
  PlannedRule rule;
  rule.index = index;
  if (call.names.empty()) {
    return invalidArgument(field, ".names: empty; list at least one syscall name");
  }
  for (size_t n = 0; n < call.names.size(); ++n) {
    if (call.names[n].empty()) {
      return invalidArgument(field, ".names[", n, "]: empty syscall name");
    }
  }
  rule.names = call.names;
  rule.action_name = call.action;
  ASSIGN_OR_RETURN(rule.action, resolveAction(call.action, call.errnoRet, field + ".action",
                                              field + ".errnoRet"));
  std::vector<scmp_arg_cmp> cmps;
  std::set<uint32_t> indices;
  for (size_t a = 0; a < call.args.size(); ++a) {
    ASSIGN_OR_RETURN(scmp_arg_cmp cmp, resolveArg(call.args[a], strCat(field, ".args[", a, "]")));
    cmps.push_back(cmp);
    indices.insert(call.args[a].index);
  }
  if (indices.size() < cmps.size()) {
    // Several comparisons on one argument: each is its own rule, so they are OR'd
    // (what runc does; a single BPF rule cannot test one argument twice).
    for (const scmp_arg_cmp& cmp : cmps) rule.arg_sets.push_back({cmp});
  } else {
    // Distinct arguments: one rule, comparisons AND'd (no args: unconditional rule).
    rule.arg_sets.push_back(std::move(cmps));
  }
  return rule;
}

StatusOr<Plan> makePlan(const oci::Seccomp& profile) {
  Plan plan;
  ASSIGN_OR_RETURN(plan.default_action,
                   resolveAction(profile.defaultAction, profile.defaultErrnoRet,
                                 "linux.seccomp.defaultAction", "linux.seccomp.defaultErrnoRet"));
  if (plan.default_action == SCMP_ACT_NOTIFY) {
    return invalidArgument("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default "
                           "action (the runtime could not hand the listener to the agent); use "
                           "it in syscalls[].action for specific syscalls");
  }
  std::set<uint32_t> seen_arches;
  for (size_t i = 0; i < profile.architectures.size(); ++i) {
    const std::string& name = profile.architectures[i];
    std::optional<uint32_t> token;
    for (const ArchInfo& info : kArchitectures) {
      if (name == info.name) token = info.token;
    }
    if (!token) {
      return invalidArgument("linux.seccomp.architectures[", i, "]: unknown architecture \"",
                             name, "\" for ", libseccompVersion(), "; use one of ",
                             joinStrings(namesOf(kArchitectures), ", "));
    }
    if (seen_arches.insert(*token).second) plan.arches.emplace_back(i, *token);
  }
  const unsigned api = seccomp_api_get();
  for (size_t i = 0; i < profile.flags.size(); ++i) {
    const std::string& name = profile.flags[i];
    const FlagInfo* found = nullptr;
    for (const FlagInfo& info : kFlags) {
      if (name == info.name) found = &info;
    }
    const std::string field = strCat("linux.seccomp.flags[", i, "]");
    if (found == nullptr) {
      return invalidArgument(field, ": unknown flag \"", name, "\"; use one of ",
                             joinStrings(namesOf(kFlags), ", "));
    }
    if (!found->attr) {
      return invalidArgument(field, ": flag \"", name, "\" is not supported by ",
                             libseccompVersion(), "; remove it");
    }
    if (api < found->min_api) {
      return invalidArgument(field, ": flag \"", name, "\" is not supported by ",
                             libseccompVersion(), " on this kernel (API level ", api,
                             ", needs ", found->min_api, "); remove it");
    }
    plan.attrs.emplace_back(i, *found->attr);
  }
  for (size_t i = 0; i < profile.syscalls.size(); ++i) {
    ASSIGN_OR_RETURN(PlannedRule rule, planRule(profile.syscalls[i], i));
    if (rule.action == SCMP_ACT_NOTIFY) plan.uses_notify = true;
    plan.rules.push_back(std::move(rule));
  }
  if (plan.uses_notify && profile.listenerPath.empty()) {
    return invalidArgument("linux.seccomp.listenerPath: required when SCMP_ACT_NOTIFY is used; "
                           "set it to the seccomp agent's unix socket path");
  }
  return plan;
}

// Adds one planned rule (every name, every argument set) to `ctx`.
Status addRule(scmp_filter_ctx ctx, const PlannedRule& rule, uint32_t default_action) {
  auto logger = log::get("seccomp");
  if (rule.action == default_action) {
    // libseccomp refuses a rule that repeats the default action; it would change nothing.
    logger->debug("linux.seccomp.syscalls[{}]: action {} equals the default action; skipped",
                  rule.index, rule.action_name);
    return Status();
  }
  for (const std::string& name : rule.names) {
    int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR) {
      logger->debug("linux.seccomp.syscalls[{}]: syscall \"{}\" is unknown to {}; skipped",
                    rule.index, name, libseccompVersion());
      continue;
    }
    for (const std::vector<scmp_arg_cmp>& args : rule.arg_sets) {
      // Not the _exact variant: libseccomp may rewrite multiplexed syscalls (socketcall,
      // ipc) and pseudo-syscalls per architecture.
      int rc = seccomp_rule_add_array(ctx, rule.action, nr, static_cast<unsigned>(args.size()),
                                      args.empty() ? nullptr : args.data());
      if (rc < 0) {
        return errnoError(-rc, strCat("linux.seccomp.syscalls[", rule.index, "]: add rule for \"",
                                      name, "\" (", rule.action_name, ", ", args.size(),
                                      " argument comparisons)"));
      }
    }
  }
  return Status();
}

}  // namespace

SeccompFilter::~SeccompFilter() {
  if (ctx_ != nullptr) seccomp_release(ctx_);
}

SeccompFilter::SeccompFilter(SeccompFilter&& other) noexcept
    : ctx_(std::exchange(other.ctx_, nullptr)), uses_notify_(other.uses_notify_) {}

SeccompFilter& SeccompFilter::operator=(SeccompFilter&& other) noexcept {
  if (this != &other) {
    if (ctx_ != nullptr) seccomp_release(ctx_);
    ctx_ = std::exchange(other.ctx_, nullptr);
    uses_notify_ = other.uses_notify_;
  }
  return *this;
}

StatusOr<SeccompFilter> buildFilter(const oci::Seccomp& profile) {
  ASSIGN_OR_RETURN(Plan plan, makePlan(profile));
  scmp_filter_ctx ctx = seccomp_init(plan.default_action);
  if (ctx == nullptr) {
    return internalError("linux.seccomp: seccomp_init(", profile.defaultAction,
                         ") failed in ", libseccompVersion());
  }
  SeccompFilter filter(ctx, plan.uses_notify);  // owns ctx from here on

  // The runtime sets no_new_privs itself when process.noNewPrivileges asks for it; the
  // filter is loaded while the process still has CAP_SYS_ADMIN.
  int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
  if (rc < 0) return errnoError(-rc, "linux.seccomp: disable libseccomp's no_new_privs");
  // Report the kernel's own errno from seccomp_load instead of ECANCELED.
  rc = seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1);
  if (rc < 0) return errnoError(-rc, "linux.seccomp: enable raw return codes");

  for (const auto& [index, token] : plan.arches) {
    rc = seccomp_arch_add(ctx, token);
    if (rc < 0 && rc != -EEXIST) {  // the native architecture is already present
      return errnoError(-rc, strCat("linux.seccomp.architectures[", index, "]: add \"",
                                    profile.architectures[index], "\""));
    }
  }
  for (const auto& [index, attr] : plan.attrs) {
    rc = seccomp_attr_set(ctx, attr, 1);
    if (rc < 0) {
      return errnoError(-rc, strCat("linux.seccomp.flags[", index, "]: set \"",
                                    profile.flags[index], "\""));
    }
  }
  for (const PlannedRule& rule : plan.rules) {
    RETURN_IF_ERROR(addRule(ctx, rule, plan.default_action));
  }
  return filter;
}

StatusOr<UniqueFd> loadFilter(SeccompFilter& filter, const oci::Seccomp& profile) {
  if (filter.ctx() == nullptr) {
    return failedPrecondition("linux.seccomp: load filter: the filter was moved from");
  }
  int rc = seccomp_load(filter.ctx());
  if (rc < 0) {
    return errnoError(-rc, strCat("linux.seccomp: load filter (defaultAction ",
                                  profile.defaultAction, ", ", profile.syscalls.size(),
                                  " syscall rules; needs no_new_privs or CAP_SYS_ADMIN)"));
  }
  if (!filter.usesNotify()) return UniqueFd();
  int fd = seccomp_notify_fd(filter.ctx());
  if (fd < 0) {
    return errnoError(fd == -1 ? EBADF : -fd,
                      "linux.seccomp: get the SCMP_ACT_NOTIFY listener fd after loading");
  }
  return UniqueFd(fd);
}

std::vector<std::string> knownActions() { return namesOf(kActions); }

std::vector<std::string> knownOperators() { return namesOf(kOperators); }

std::vector<std::string> knownArchitectures() { return namesOf(kArchitectures); }

std::vector<std::string> knownFlags() { return namesOf(kFlags); }

std::vector<std::string> supportedFlags() {
  const unsigned api = seccomp_api_get();
  std::vector<std::string> out;
  for (const FlagInfo& info : kFlags) {
    if (info.attr && api >= info.min_api) out.emplace_back(info.name);
  }
  return out;
}

Status validateProfile(const oci::Seccomp& profile) { return makePlan(profile).status(); }

}  // namespace berth::seccomp
