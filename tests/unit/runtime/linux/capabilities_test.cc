#include "runtime/linux/capabilities.h"

#include <linux/capability.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

namespace berth::caps {
namespace {

using ::testing::HasSubstr;

uint64_t bit(int cap) { return uint64_t{1} << cap; }

// The hexadecimal mask of `field` ("CapEff", …) from /proc/self/status.
uint64_t statusMask(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoull(line.substr(field.size() + 1), nullptr, 16);
  }
  return ~uint64_t{0};
}

struct Masks {
  uint64_t eff = 0, prm = 0, inh = 0, bnd = 0, amb = 0;
};

// What a child reports back: its capability masks after the calls, the error (if
// any) and the log it wrote.
struct ChildReport {
  int wait_status = -1;
  Masks masks;
  std::string error;
  std::string log;
};

// Runs `body` in a forked child with a logger writing into a buffer; the child reports
// the error `body` returned, its /proc/self/status masks and the log through a pipe.
ChildReport inChild(const std::function<Status(spdlog::logger&)>& body) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    std::ostringstream log_text;
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(log_text);
    sink->set_pattern("%l|%v");
    spdlog::logger logger("caps-test", sink);
    logger.set_level(spdlog::level::debug);
    Status status = body(logger);
    std::ostringstream out;
    out << statusMask("CapEff") << ' ' << statusMask("CapPrm") << ' ' << statusMask("CapInh")
        << ' ' << statusMask("CapBnd") << ' ' << statusMask("CapAmb") << '\n'
        << (status.ok() ? std::string("OK") : std::string(status.message())) << '\n'
        << log_text.str();
    std::string text = out.str();
    ssize_t n = write(fds[1], text.data(), text.size());
    _exit(n == static_cast<ssize_t>(text.size()) ? 0 : 1);
  }
  close(fds[1]);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) text.append(buf, n);
  close(fds[0]);
  ChildReport report;
  EXPECT_EQ(waitpid(pid, &report.wait_status, 0), pid);
  std::istringstream in(text);
  in >> report.masks.eff >> report.masks.prm >> report.masks.inh >> report.masks.bnd >>
      report.masks.amb;
  in.ignore(1);
  std::getline(in, report.error);
  std::ostringstream rest;
  rest << in.rdbuf();
  report.log = rest.str();
  return report;
}

int countOf(const std::string& text, const std::string& needle) {
  int count = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos;
       pos = text.find(needle, pos + 1)) {
    ++count;
  }
  return count;
}

// Skips unless the test can change its own capabilities (root with CAP_SETPCAP).
#define REQUIRE_CAP_ROOT()                                                             \
  do {                                                                                 \
    if (geteuid() != 0) GTEST_SKIP() << "needs root to change capability sets";        \
    if ((statusMask("CapEff") & bit(CAP_SETPCAP)) == 0) {                              \
      GTEST_SKIP() << "needs CAP_SETPCAP to drop from the bounding set";               \
    }                                                                                  \
  } while (0)

TEST(Capabilities, KnownNamesRoundTrip) {
  std::vector<std::string> names = knownCapabilities();
  ASSERT_GE(names.size(), 38u);  // CAP_CHOWN … CAP_SYSLOG (Linux 3.x) at least
  EXPECT_EQ(names[0], "CAP_CHOWN");
  EXPECT_EQ(names[CAP_SYS_ADMIN], "CAP_SYS_ADMIN");
  EXPECT_EQ(names[CAP_SYS_RESOURCE], "CAP_SYS_RESOURCE");
  EXPECT_LE(static_cast<int>(names.size()), cap_max_bits());
  for (size_t i = 0; i < names.size(); ++i) {
    auto value = fromName(names[i]);
    ASSERT_TRUE(value.ok()) << names[i] << ": " << value.status();
    EXPECT_EQ(*value, static_cast<int>(i)) << names[i];
  }
}

TEST(Capabilities, FromNameIsCaseInsensitive) {
  EXPECT_EQ(fromName("cap_net_admin").value_or(-1), CAP_NET_ADMIN);
  EXPECT_EQ(fromName("Cap_Chown").value_or(-1), CAP_CHOWN);
}

TEST(Capabilities, FromNameRejectsUnknownNames) {
  for (const char* bad : {"CAP_FOO", "CHOWN", "NET_ADMIN", "12", "CAP_12", "all", "", "CAP_",
                          "cap_chown_x"}) {
    auto value = fromName(bad);
    ASSERT_FALSE(value.ok()) << bad;
    EXPECT_EQ(value.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(value.status().message()),
                HasSubstr(std::string("unknown capability \"") + bad + "\""));
  }
}

TEST(Capabilities, ValidateNamesTheSet) {
  oci::Capabilities caps;
  caps.bounding = {"CAP_CHOWN", "CAP_FOO"};
  Status status = validate(caps);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("process.capabilities.bounding: unknown capability \"CAP_FOO\""));

  caps.bounding = {"CAP_CHOWN"};
  caps.ambient = {"CAP_KILL", "CAP_BAR"};
  EXPECT_THAT(std::string(validate(caps).message()),
              HasSubstr("process.capabilities.ambient: unknown capability \"CAP_BAR\""));

  caps.ambient = {"CAP_KILL"};
  caps.effective = {"cap_kill"};
  EXPECT_TRUE(validate(caps).ok());
  EXPECT_TRUE(validate(oci::Capabilities{}).ok());
}

TEST(CapabilitiesPrivileged, AppliesAllFiveSetsAsRoot) {
  REQUIRE_CAP_ROOT();
  oci::Capabilities caps;
  caps.bounding = {"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"};
  caps.effective = {"CAP_CHOWN", "CAP_KILL"};
  caps.permitted = {"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"};
  caps.inheritable = {"CAP_NET_BIND_SERVICE"};
  caps.ambient = {"CAP_NET_BIND_SERVICE"};
  ChildReport r = inChild([&](spdlog::logger& logger) {
    RETURN_IF_ERROR(dropBounding(caps, logger));
    return applySets(caps, logger);
  });
  ASSERT_TRUE(WIFEXITED(r.wait_status) && WEXITSTATUS(r.wait_status) == 0) << r.wait_status;
  EXPECT_EQ(r.error, "OK");
  const uint64_t all3 = bit(CAP_CHOWN) | bit(CAP_KILL) | bit(CAP_NET_BIND_SERVICE);
  EXPECT_EQ(r.masks.bnd, all3);
  EXPECT_EQ(r.masks.eff, bit(CAP_CHOWN) | bit(CAP_KILL));
  EXPECT_EQ(r.masks.prm, all3);
  EXPECT_EQ(r.masks.inh, bit(CAP_NET_BIND_SERVICE));
  EXPECT_EQ(r.masks.amb, bit(CAP_NET_BIND_SERVICE));
  EXPECT_THAT(r.log, ::testing::Not(HasSubstr("warning|")));
}

TEST(CapabilitiesPrivileged, KeepsCapabilitiesAcrossSetuidWithAmbient) {
  REQUIRE_CAP_ROOT();
  oci::Capabilities caps;
  caps.bounding = {"CAP_NET_BIND_SERVICE", "CAP_NET_RAW"};
  caps.effective = {"CAP_NET_BIND_SERVICE"};
  caps.permitted = {"CAP_NET_BIND_SERVICE", "CAP_NET_RAW"};
  caps.inheritable = {"CAP_NET_BIND_SERVICE"};
  caps.ambient = {"CAP_NET_BIND_SERVICE", "CAP_NET_RAW"};  // NET_RAW: not inheritable
  ChildReport r = inChild([&](spdlog::logger& logger) -> Status {
    RETURN_IF_ERROR(dropBounding(caps, logger));
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return lastErrnoError("PR_SET_KEEPCAPS");
    if (setresgid(65534, 65534, 65534) != 0) return lastErrnoError("setresgid");
    if (setresuid(65534, 65534, 65534) != 0) return lastErrnoError("setresuid");
    return applySets(caps, logger);
  });
  ASSERT_TRUE(WIFEXITED(r.wait_status) && WEXITSTATUS(r.wait_status) == 0) << r.wait_status;
  EXPECT_EQ(r.error, "OK");
  EXPECT_EQ(r.masks.bnd, bit(CAP_NET_BIND_SERVICE) | bit(CAP_NET_RAW));
  EXPECT_EQ(r.masks.eff, bit(CAP_NET_BIND_SERVICE));
  EXPECT_EQ(r.masks.prm, bit(CAP_NET_BIND_SERVICE) | bit(CAP_NET_RAW));
  EXPECT_EQ(r.masks.inh, bit(CAP_NET_BIND_SERVICE));
  EXPECT_EQ(r.masks.amb, bit(CAP_NET_BIND_SERVICE));
  EXPECT_THAT(r.log, HasSubstr("warning|process.capabilities.ambient: CAP_NET_RAW not raised"));
}

// Capabilities the runtime itself lacks (CAP_SYS_RESOURCE on hosts whose runtime runs
// without it) are dropped from every set with one warning. The child first removes
// CAP_SYS_RESOURCE from its own bounding and permitted sets to stand for such a host,
// so the test means the same whether or not this host already lacks it.
TEST(CapabilitiesPrivileged, CapabilityMissingFromOwnBoundingSetIsDroppedWithOneWarning) {
  REQUIRE_CAP_ROOT();
  const bool host_lacks = (statusMask("CapBnd") & bit(CAP_SYS_RESOURCE)) == 0;
  SCOPED_TRACE(host_lacks ? "host bounding set lacks CAP_SYS_RESOURCE"
                          : "host bounding set has CAP_SYS_RESOURCE; the child drops it");
  oci::Capabilities caps;
  caps.bounding = {"CAP_CHOWN", "CAP_SYS_RESOURCE"};
  caps.effective = {"CAP_CHOWN", "CAP_SYS_RESOURCE"};
  caps.permitted = {"CAP_CHOWN", "CAP_SYS_RESOURCE"};
  caps.inheritable = {"CAP_CHOWN", "CAP_SYS_RESOURCE"};
  caps.ambient = {"CAP_CHOWN", "CAP_SYS_RESOURCE"};
  ChildReport r = inChild([&](spdlog::logger& logger) -> Status {
    if (!host_lacks) {
      if (cap_drop_bound(CAP_SYS_RESOURCE) != 0) return lastErrnoError("cap_drop_bound");
      cap_t self = cap_get_proc();
      cap_value_t res = CAP_SYS_RESOURCE;
      for (cap_flag_t flag : {CAP_EFFECTIVE, CAP_PERMITTED, CAP_INHERITABLE}) {
        cap_set_flag(self, flag, 1, &res, CAP_CLEAR);
      }
      int rc = cap_set_proc(self);
      cap_free(self);
      if (rc != 0) return lastErrnoError("cap_set_proc");
    }
    RETURN_IF_ERROR(dropBounding(caps, logger));
    return applySets(caps, logger);
  });
  ASSERT_TRUE(WIFEXITED(r.wait_status) && WEXITSTATUS(r.wait_status) == 0) << r.wait_status;
  EXPECT_EQ(r.error, "OK");
  EXPECT_EQ(r.masks.bnd, bit(CAP_CHOWN));
  EXPECT_EQ(r.masks.eff, bit(CAP_CHOWN));
  EXPECT_EQ(r.masks.prm, bit(CAP_CHOWN));
  EXPECT_EQ(r.masks.inh, bit(CAP_CHOWN));
  EXPECT_EQ(r.masks.amb, bit(CAP_CHOWN));
  EXPECT_EQ(countOf(r.log, "warning|"), 1) << r.log;
  EXPECT_THAT(r.log, HasSubstr("warning|process.capabilities: CAP_SYS_RESOURCE not in the "
                               "runtime's own bounding set"));
}

TEST(CapabilitiesPrivileged, InconsistentSetsAreErrors) {
  REQUIRE_CAP_ROOT();
  oci::Capabilities caps;
  caps.bounding = {"CAP_CHOWN", "CAP_KILL"};
  caps.effective = {"CAP_CHOWN", "CAP_KILL"};
  caps.permitted = {"CAP_CHOWN"};
  ChildReport r = inChild([&](spdlog::logger& logger) -> Status {
    RETURN_IF_ERROR(dropBounding(caps, logger));
    return applySets(caps, logger);
  });
  EXPECT_THAT(r.error, HasSubstr("process.capabilities.effective: CAP_KILL is not in "
                                 "process.capabilities.permitted"));

  caps.effective = {"CAP_CHOWN"};
  caps.inheritable = {"CAP_CHOWN", "CAP_DAC_OVERRIDE"};  // not in bounding
  r = inChild([&](spdlog::logger& logger) -> Status {
    RETURN_IF_ERROR(dropBounding(caps, logger));
    return applySets(caps, logger);
  });
  EXPECT_THAT(r.error, HasSubstr("process.capabilities.inheritable: CAP_DAC_OVERRIDE is not in "
                                 "process.capabilities.bounding"));
}

TEST(CapabilitiesPrivileged, EmptyConfigDropsEverything) {
  REQUIRE_CAP_ROOT();
  ChildReport r = inChild([&](spdlog::logger& logger) -> Status {
    RETURN_IF_ERROR(dropBounding(oci::Capabilities{}, logger));
    return applySets(oci::Capabilities{}, logger);
  });
  EXPECT_EQ(r.error, "OK");
  EXPECT_EQ(r.masks.bnd, 0u);
  EXPECT_EQ(r.masks.eff, 0u);
  EXPECT_EQ(r.masks.prm, 0u);
  EXPECT_EQ(r.masks.inh, 0u);
  EXPECT_EQ(r.masks.amb, 0u);
}

}  // namespace
}  // namespace berth::caps
