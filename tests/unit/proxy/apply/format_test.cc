// Unit tests (no root) of the apply layer's pure parts: libnftables error formatting,
// iptables-restore error parsing, backend detection from `iptables --version`, table
// names and conntrack filter descriptions. The texts are what libnftables 1.0.6 and
// iptables 1.8.9 print (captured on Debian bookworm).
#include <arpa/inet.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/nftables.h"
#include "proxy/conntrack.h"
#include "proxy/iptables_apply.h"
#include "proxy/nft_apply.h"

namespace berth::proxy {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(NftFormatErrors, LocatedErrorNamesLineAndItsText) {
  std::string script = "add chain ip t b\nadd rule ip t b counter\nadd rule ip t b jump nochain\n";
  std::string raw =
      "/proc/self/fd/4:3:22-28: Error: Could not process rule: No such file or directory\n"
      "add rule ip t b jump nochain\n"
      "                     ^^^^^^^\n";
  EXPECT_EQ(nft::formatErrors(raw, "/proc/self/fd/4", script),
            "line 3: Could not process rule: No such file or directory: \"add rule ip t b jump nochain\"");
}

TEST(NftFormatErrors, SeveralErrorsAreJoined) {
  std::string script = "add chain ip t d\n\nadd rule ip t d foo bar\nadd rule ip t d baz\n";
  std::string raw =
      "/proc/self/fd/7:3:17-19: Error: No symbol type information\n"
      "add rule ip t d foo bar\n"
      "                ^^^\n"
      "/proc/self/fd/7:4:17-19: Error: syntax error, unexpected newline\n"
      "add rule ip t d baz\n"
      "                   ^\n";
  EXPECT_EQ(nft::formatErrors(raw, "/proc/self/fd/7", script),
            "line 3: No symbol type information: \"add rule ip t d foo bar\"; "
            "line 4: syntax error, unexpected newline: \"add rule ip t d baz\"");
}

TEST(NftFormatErrors, UnlocatedErrorDropsEchoAndCarets) {
  std::string raw =
      "Error: No such file or directory\n"
      "list table ip nosuch\n"
      "              ^^^^^^\n";
  EXPECT_EQ(nft::formatErrors(raw, "", ""), "No such file or directory");
}

TEST(NftFormatErrors, IncludedFileLinesAreKept) {
  std::string raw =
      "In file included from /proc/self/fd/4:1:1-22:\n"
      "/etc/x.nft:1:5-5: Error: syntax error, unexpected colon\n"
      "root:x\n"
      "    ^\n";
  std::string text = nft::formatErrors(raw, "/proc/self/fd/4", "include \"/etc/x.nft\"\n");
  EXPECT_THAT(text, HasSubstr("In file included from"));
  EXPECT_THAT(text, HasSubstr("/etc/x.nft:1:5-5: Error: syntax error, unexpected colon"));
  EXPECT_THAT(text, Not(HasSubstr("^")));
}

TEST(NftFormatErrors, LineBeyondScriptGivesEmptyText) {
  std::string raw = "/proc/self/fd/4:9:1-2: Error: boom\n";
  EXPECT_EQ(nft::formatErrors(raw, "/proc/self/fd/4", "one line\n"), "line 9: boom: \"\"");
}

TEST(NftCodeForError, KernelErrnoTextsMapToCodes) {
  EXPECT_EQ(nft::codeForError("Error: Could not process rule: No such file or directory"),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(nft::codeForError("Error: Could not process rule: File exists"), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(nft::codeForError("Error: Could not process rule: Operation not permitted"),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(nft::codeForError("Error: Could not process rule: Protocol not supported"),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(nft::codeForError("Error: syntax error, unexpected junk"), absl::StatusCode::kInvalidArgument);
}

TEST(NftTableName, AcceptsFamiliesAndSafeNames) {
  EXPECT_TRUE(checkTableName("ip", "berth-proxy").ok());
  EXPECT_TRUE(checkTableName("ip6", "kube_proxy.v2").ok());
  EXPECT_TRUE(checkTableName("inet", "x").ok());
  EXPECT_EQ(checkTableName("ipv4", "t").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(checkTableName("ipv4", "t").message(), HasSubstr("\"ipv4\""));
  EXPECT_EQ(checkTableName("ip", "").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(checkTableName("ip", "a b").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(checkTableName("ip", "t;flush ruleset").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(checkTableName("ip", std::string(256, 'a')).code(), absl::StatusCode::kInvalidArgument);
}

TEST(IptablesVersion, NamesTheBackend) {
  auto nft = parseVersionBackend("iptables v1.8.9 (nf_tables)\n");
  ASSERT_TRUE(nft.ok()) << nft.status();
  EXPECT_EQ(*nft, IptablesBackend::kNft);
  auto legacy = parseVersionBackend("ip6tables v1.8.9 (legacy)\n");
  ASSERT_TRUE(legacy.ok()) << legacy.status();
  EXPECT_EQ(*legacy, IptablesBackend::kLegacy);
  auto old = parseVersionBackend("iptables v1.6.1\n");
  EXPECT_EQ(old.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(old.status().message()), HasSubstr("v1.6.1"));
  EXPECT_EQ(backendName(IptablesBackend::kNft), "nf_tables");
  EXPECT_EQ(backendName(IptablesBackend::kLegacy), "legacy");
}

constexpr char kInput[] =
    "*filter\n"
    ":BERTH-TEST2 - [0:0]\n"
    "-A BERTH-TEST2 -j ACCEPT\n"
    "-A BERTH-TEST -j NOSUCHCHAIN\n"
    "-A BERTH-TEST -m comment --comment \"x\" -j RETURN\n"
    "COMMIT\n";

TEST(IptablesRestoreError, ErrorOccurredAtLineForm) {
  std::string err =
      "iptables-restore v1.8.9 (legacy): Couldn't load target `NOSUCHCHAIN':No such file or directory\n"
      "\n"
      "Error occurred at line: 4\n"
      "Try `iptables-restore -h' or 'iptables-restore --help' for more information.\n";
  Status s = restoreError("iptables-legacy-restore", IptablesBackend::kLegacy, 2, err, kInput);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "iptables-legacy-restore (legacy): line 4 failed: Couldn't load target `NOSUCHCHAIN':No such "
            "file or directory: \"-A BERTH-TEST -j NOSUCHCHAIN\"");
}

TEST(IptablesRestoreError, NftCommitLineForm) {
  std::string err =
      "iptables-nft-restore v1.8.9 (nf_tables): Chain 'NOSUCHCHAIN' does not exist\n"
      "Error occurred at line: 6\n"
      "Try `iptables-nft-restore -h' or 'iptables-nft-restore --help' for more information.\n";
  Status s = restoreError("iptables-nft-restore", IptablesBackend::kNft, 2, err, kInput);
  EXPECT_EQ(s.message(),
            "iptables-nft-restore (nf_tables): line 6 failed: Chain 'NOSUCHCHAIN' does not exist: \"COMMIT\"");
}

TEST(IptablesRestoreError, LineFailedWithReason) {
  std::string err = "iptables-nft-restore: line 2 failed: No chain/target/match by that name.\n";
  Status s = restoreError("iptables-nft-restore", IptablesBackend::kNft, 1, err, kInput);
  EXPECT_EQ(s.message(),
            "iptables-nft-restore (nf_tables): line 2 failed: No chain/target/match by that name.: "
            "\":BERTH-TEST2 - [0:0]\"");
}

TEST(IptablesRestoreError, LineFailedWithoutReason) {
  Status s = restoreError("iptables-legacy-restore", IptablesBackend::kLegacy, 1,
                          "iptables-restore: line 3 failed\n", kInput);
  EXPECT_EQ(s.message(),
            "iptables-legacy-restore (legacy): line 3 failed: no reason given: \"-A BERTH-TEST2 -j ACCEPT\"");
}

TEST(IptablesRestoreError, CommitExpected) {
  Status s = restoreError("iptables-nft-restore", IptablesBackend::kNft, 1,
                          "iptables-nft-restore: COMMIT expected at line 3\n", "*filter\n-A INPUT -j ACCEPT\n");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("line 3 failed: iptables-nft-restore: COMMIT expected at line 3"));
}

TEST(IptablesRestoreError, NoLineIsInternal) {
  Status s = restoreError("iptables-nft-restore", IptablesBackend::kNft, 4,
                          "Another app is currently holding the xtables lock.\n", kInput);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(s.message(),
            "iptables-nft-restore (nf_tables) failed (exit status 4): Another app is currently holding the "
            "xtables lock.");
}

TEST(ConntrackDescribe, FilterAndEntryInWords) {
  ConntrackFilter f;
  f.protocol = L4Protocol::kUDP;
  f.orig_dst_ip = "10.96.0.10";
  f.orig_dst_port = 53;
  f.reply_src_ip = "fd00::5";
  f.reply_src_port = 5353;
  EXPECT_EQ(describeFilter(f), "udp orig dst 10.96.0.10:53, reply src [fd00::5]:5353");
  ConntrackFilter port_only;
  port_only.protocol = L4Protocol::kSCTP;
  port_only.orig_dst_port = 30080;
  EXPECT_EQ(describeFilter(port_only), "sctp orig dst *:30080");
  EXPECT_EQ(describeFilter(ConntrackFilter{}), "udp all entries");

  ConntrackEntry e;
  e.family = AF_INET;
  e.protocol = L4Protocol::kTCP;
  e.orig_src_ip = "127.0.0.1";
  e.orig_src_port = 40000;
  e.orig_dst_ip = "127.0.0.1";
  e.orig_dst_port = 5000;
  e.reply_src_ip = "127.0.0.2";
  e.reply_src_port = 6000;
  e.reply_dst_ip = "127.0.0.1";
  e.reply_dst_port = 40000;
  EXPECT_EQ(e.toString(), "tcp 127.0.0.1:40000 -> 127.0.0.1:5000, reply 127.0.0.2:6000 -> 127.0.0.1:40000");
}

TEST(IptablesApplierCreate, ForcedBackendResolvesFlavouredBinaries) {
  for (IptablesBackend backend : {IptablesBackend::kNft, IptablesBackend::kLegacy}) {
    for (IpFamily family : {IpFamily::kIPv4, IpFamily::kIPv6}) {
      IptablesApplier::Options options;
      options.backend = backend;
      auto applier = IptablesApplier::create(family, options);
      std::string prefix = family == IpFamily::kIPv6 ? "ip6tables-" : "iptables-";
      std::string flavour = backend == IptablesBackend::kNft ? "nft-" : "legacy-";
      if (!applier.ok()) {
        EXPECT_EQ(applier.status().code(), absl::StatusCode::kNotFound) << applier.status();
        EXPECT_THAT(std::string(applier.status().message()), HasSubstr("install the iptables package"));
        continue;
      }
      EXPECT_EQ(applier->backend(), backend);
      EXPECT_EQ(applier->family(), family);
      EXPECT_THAT(applier->restoreBinary(), HasSubstr("/" + prefix));
      EXPECT_THAT(applier->restoreBinary(), testing::EndsWith("restore"));
      EXPECT_THAT(applier->saveBinary(), testing::EndsWith("save"));
      if (applier->restoreBinary().find(flavour) == std::string::npos) {
        ADD_FAILURE() << "expected the " << flavour << " binary, got " << applier->restoreBinary();
      }
      auto bad = applier->save("bogus");
      EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(std::string(bad.status().message()), HasSubstr("\"bogus\""));
    }
  }
}

// A stand-in restore tool that never finishes: restore() kills it after the timeout
// and says so (the real tool only hangs when the kernel or the xtables lock does).
TEST(IptablesApplierTimeout, HungChildIsKilledAfterTheTimeout) {
  char dir_template[] = "/tmp/berth-iptables-fake-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  std::string dir = dir_template;
  for (const char* name : {"iptables-nft-restore", "iptables-nft-save"}) {
    std::string path = dir + "/" + name;
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("#!/bin/sh\nexec sleep 30\n", f);
    std::fclose(f);
    ASSERT_EQ(::chmod(path.c_str(), 0755), 0);
  }
  const char* old_path = std::getenv("PATH");
  std::string saved = old_path != nullptr ? old_path : "";
  ::setenv("PATH", (dir + ":" + saved).c_str(), 1);
  IptablesApplier::Options options;
  options.backend = IptablesBackend::kNft;
  options.timeout = std::chrono::seconds(1);
  auto applier = IptablesApplier::create(IpFamily::kIPv4, options);
  ::setenv("PATH", saved.c_str(), 1);
  ASSERT_TRUE(applier.ok()) << applier.status();
  EXPECT_EQ(applier->restoreBinary(), dir + "/iptables-nft-restore");
  auto start = std::chrono::steady_clock::now();
  Status s = applier->restore("*filter\nCOMMIT\n");
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(s.message()), HasSubstr("did not finish within 1 s and was killed"));
  EXPECT_LT(took, std::chrono::seconds(5));
  auto saved_out = applier->save("nat");
  EXPECT_THAT(std::string(saved_out.status().message()), HasSubstr("did not finish within 1 s"));
  for (const char* name : {"iptables-nft-restore", "iptables-nft-save"}) ::unlink((dir + "/" + name).c_str());
  ::rmdir(dir.c_str());
}

TEST(IptablesApplierCreate, MissingBinaryIsNotFoundNamingPackage) {
  const char* old_path = std::getenv("PATH");
  std::string saved = old_path != nullptr ? old_path : "";
  ::setenv("PATH", "/nonexistent-berth-dir", 1);
  IptablesApplier::Options options;
  options.backend = IptablesBackend::kLegacy;
  auto applier = IptablesApplier::create(IpFamily::kIPv6, options);
  auto detected = detectBackend(IpFamily::kIPv4);
  ::setenv("PATH", saved.c_str(), 1);
  EXPECT_EQ(applier.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(applier.status().message()), HasSubstr("ip6tables-legacy-restore is not in PATH"));
  EXPECT_EQ(detected.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(detected.status().message()), HasSubstr("install the iptables package"));
}

}  // namespace
}  // namespace berth::proxy
