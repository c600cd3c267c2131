#include "runtime/linux/capabilities.h"

#include <errno.h>
#include <sys/capability.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/strings.h"

namespace berth::caps {
namespace {

// Owns a cap_t from libcap.
struct CapFree {
  void operator()(void* p) const { cap_free(p); }
};
using CapPtr = std::unique_ptr<std::remove_pointer_t<cap_t>, CapFree>;

using CapSet = std::set<cap_value_t>;

// "CAP_CHOWN" for a number libcap knows by name, "" for one it only knows as a number.
std::string nameOf(cap_value_t value) {
  char* raw = cap_to_name(value);
  if (raw == nullptr) return "";
  std::string name(raw);
  cap_free(raw);
  if (name.rfind("cap_", 0) != 0) return "";
  for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

// A printable name even for numbers libcap cannot name.
std::string displayName(cap_value_t value) {
  std::string name = nameOf(value);
  return name.empty() ? strCat("capability ", value) : name;
}

std::string joinNames(const CapSet& set) {
  std::vector<std::string> names;
  for (cap_value_t v : set) names.push_back(displayName(v));
  return joinStrings(names, ", ");
}

// True when `value` is in this process's bounding set (false for numbers past the
// kernel's last capability).
bool inBounding(cap_value_t value) { return cap_get_bound(value) == 1; }

bool hasFlag(cap_t caps, cap_value_t value, cap_flag_t flag) {
  cap_flag_value_t set = CAP_CLEAR;
  return cap_get_flag(caps, value, flag, &set) == 0 && set == CAP_SET;
}

// The five sets of process.capabilities as numbers.
struct Resolved {
  CapSet bounding, effective, inheritable, permitted, ambient;

  // Every capability asked for in the sets applySets() grants.
  CapSet granted() const {
    CapSet all;
    for (const CapSet* s : {&effective, &inheritable, &permitted, &ambient}) {
      all.insert(s->begin(), s->end());
    }
    return all;
  }

  // Every capability asked for in any set.
  CapSet requested() const {
    CapSet all = granted();
    all.insert(bounding.begin(), bounding.end());
    return all;
  }
};

StatusOr<CapSet> resolveSet(const std::optional<std::vector<std::string>>& names,
                            const char* set_name) {
  CapSet out;
  if (!names) return out;
  for (const std::string& name : *names) {
    auto value = fromName(name);
    if (!value.ok()) {
      return withContext(value.status(), strCat("process.capabilities.", set_name));
    }
    out.insert(*value);
  }
  return out;
}

StatusOr<Resolved> resolveAll(const oci::Capabilities& caps) {
  Resolved r;
  ASSIGN_OR_RETURN(r.bounding, resolveSet(caps.bounding, "bounding"));
  ASSIGN_OR_RETURN(r.effective, resolveSet(caps.effective, "effective"));
  ASSIGN_OR_RETURN(r.inheritable, resolveSet(caps.inheritable, "inheritable"));
  ASSIGN_OR_RETURN(r.permitted, resolveSet(caps.permitted, "permitted"));
  ASSIGN_OR_RETURN(r.ambient, resolveSet(caps.ambient, "ambient"));
  return r;
}

void removeAll(CapSet& set, const CapSet& drop) {
  for (cap_value_t v : drop) set.erase(v);
}

Status setFlags(cap_t caps, const CapSet& set, cap_flag_t flag) {
  std::vector<cap_value_t> values(set.begin(), set.end());
  if (values.empty()) return Status();
  if (cap_set_flag(caps, flag, static_cast<int>(values.size()), values.data(), CAP_SET) != 0) {
    return lastErrnoError("cap_set_flag");
  }
  return Status();
}

}  // namespace

std::vector<std::string> knownCapabilities() {
  std::vector<std::string> out;
  const int max = cap_max_bits();
  for (int v = 0; v < max; ++v) {
    std::string name = nameOf(v);
    if (!name.empty()) out.push_back(std::move(name));
  }
  return out;
}

StatusOr<int> fromName(const std::string& name) {
  auto unknown = [&] {
    return invalidArgument("unknown capability \"", name,
                           "\"; use a name like CAP_CHOWN (see capabilities(7))");
  };
  if (name.size() <= 4) return unknown();
  std::string upper = name;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (upper.rfind("CAP_", 0) != 0) return unknown();
  // cap_from_name also takes bare numbers ("cap_12" is not one, but "12" is); accept only
  // a name that libcap spells back identically.
  cap_value_t value = 0;
  if (cap_from_name(upper.c_str(), &value) != 0 || nameOf(value) != upper) return unknown();
  return static_cast<int>(value);
}

Status validate(const oci::Capabilities& caps) { return resolveAll(caps).status(); }

Status dropBounding(const oci::Capabilities& caps, spdlog::logger& logger) {
  ASSIGN_OR_RETURN(Resolved r, resolveAll(caps));
  CapSet lacking;
  for (cap_value_t v : r.requested()) {
    if (!inBounding(v)) lacking.insert(v);
  }
  if (!lacking.empty()) {
    logger.warn("process.capabilities: {} not in the runtime's own bounding set, so it cannot "
                "be granted; dropped from every set",
                joinNames(lacking));
  }
  const int max = cap_max_bits();
  for (cap_value_t v = 0; v < max; ++v) {
    if (r.bounding.count(v) != 0 || !inBounding(v)) continue;
    if (cap_drop_bound(v) != 0) {
      return lastErrnoError(strCat("process.capabilities.bounding: drop ", displayName(v),
                                   " from the bounding set (needs CAP_SETPCAP)"));
    }
  }
  return Status();
}

Status applySets(const oci::Capabilities& caps, spdlog::logger& logger) {
  ASSIGN_OR_RETURN(Resolved r, resolveAll(caps));
  CapPtr current(cap_get_proc());
  if (!current) return lastErrnoError("read the process capabilities (cap_get_proc)");

  // What this process does not hold in its permitted set cannot be granted. When the
  // bounding set lacks it too, dropBounding() has already warned about it.
  CapSet lacking_warn, lacking_quiet;
  for (cap_value_t v : r.granted()) {
    if (hasFlag(current.get(), v, CAP_PERMITTED)) continue;
    (inBounding(v) ? lacking_warn : lacking_quiet).insert(v);
  }
  if (!lacking_warn.empty()) {
    logger.warn("process.capabilities: {} not in the runtime's permitted set, so it cannot be "
                "granted; dropped from every set",
                joinNames(lacking_warn));
  }
  if (!lacking_quiet.empty()) {
    logger.debug("process.capabilities: dropping {} (not in the bounding set)",
                 joinNames(lacking_quiet));
  }
  for (CapSet* s : {&r.effective, &r.permitted, &r.inheritable, &r.ambient}) {
    removeAll(*s, lacking_warn);
    removeAll(*s, lacking_quiet);
  }

  for (cap_value_t v : r.effective) {
    if (r.permitted.count(v) == 0) {
      return invalidArgument("process.capabilities.effective: ", displayName(v),
                             " is not in process.capabilities.permitted; add it there (the "
                             "effective set must stay within the permitted set)");
    }
  }
  for (cap_value_t v : r.inheritable) {
    if (!inBounding(v) && !hasFlag(current.get(), v, CAP_INHERITABLE)) {
      return invalidArgument("process.capabilities.inheritable: ", displayName(v),
                             " is not in process.capabilities.bounding; add it there (the "
                             "kernel only raises inheritable capabilities within the bounding "
                             "set)");
    }
  }

  CapPtr wanted(cap_init());
  if (!wanted) return lastErrnoError("cap_init");
  RETURN_IF_ERROR_CTX(setFlags(wanted.get(), r.effective, CAP_EFFECTIVE),
                      "process.capabilities.effective");
  RETURN_IF_ERROR_CTX(setFlags(wanted.get(), r.permitted, CAP_PERMITTED),
                      "process.capabilities.permitted");
  RETURN_IF_ERROR_CTX(setFlags(wanted.get(), r.inheritable, CAP_INHERITABLE),
                      "process.capabilities.inheritable");
  if (cap_reset_ambient() != 0 && errno != EINVAL) {
    return lastErrnoError("process.capabilities.ambient: clear the ambient set");
  }
  if (cap_set_proc(wanted.get()) != 0) {
    return lastErrnoError(strCat("set process capabilities (effective: ",
                                 r.effective.size(), ", permitted: ", r.permitted.size(),
                                 ", inheritable: ", r.inheritable.size(), ")"));
  }

  // The kernel raises an ambient capability only when it is both permitted and
  // inheritable; like runc and crun, others are skipped with a warning.
  CapSet not_raised;
  for (cap_value_t v : r.ambient) {
    if (r.permitted.count(v) == 0 || r.inheritable.count(v) == 0) {
      not_raised.insert(v);
      continue;
    }
    if (cap_set_ambient(v, CAP_SET) != 0) {
      return lastErrnoError(strCat("process.capabilities.ambient: raise ", displayName(v)));
    }
  }
  if (!not_raised.empty()) {
    logger.warn("process.capabilities.ambient: {} not raised: an ambient capability must also "
                "be in permitted and inheritable",
                joinNames(not_raised));
  }
  return Status();
}

}  // namespace berth::caps
