#include "runtime/image/image_config.h"

#include <stdlib.h>
#include <unistd.h>

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/fs.h"

namespace berth::image {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const std::string kDiff1 = "sha256:" + std::string(64, '1');
const std::string kDiff2 = "sha256:" + std::string(64, '2');

// A Docker-built nginx-like config (container image v1 as `docker push` writes it).
const std::string kNginxConfig = R"({
  "architecture": "amd64",
  "config": {
    "Hostname": "",
    "User": "",
    "ExposedPorts": {"80/tcp": {}, "443/tcp": {}},
    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "NGINX_VERSION=1.25.4", "NJS_VERSION=0.8.3"],
    "Entrypoint": ["/docker-entrypoint.sh"],
    "Cmd": ["nginx", "-g", "daemon off;"],
    "Image": "sha256:9c4a6a2b4a36e1fd2e4bde27ad9da5dab6e8e2fd3e5b4dc2d1bb0e5c7f1c2d3e",
    "Volumes": {"/var/cache/nginx": {}},
    "WorkingDir": "",
    "OnBuild": null,
    "Labels": {"maintainer": "NGINX Docker Maintainers <docker-maint@nginx.com>"},
    "StopSignal": "SIGQUIT"
  },
  "container_config": {"Cmd": ["/bin/sh", "-c", "#(nop) ", "CMD [\"nginx\"]"]},
  "created": "2024-02-14T19:51:09.528311846Z",
  "docker_version": "20.10.23",
  "history": [
    {"created": "2024-02-13T00:37:31Z", "created_by": "/bin/sh -c #(nop) ADD file:abc in / "},
    {"created": "2024-02-13T00:37:31Z", "created_by": "/bin/sh -c #(nop)  CMD [\"bash\"]",
     "empty_layer": true},
    {"created": "2024-02-14T19:51:09Z", "created_by": "RUN /bin/sh -c set -x && apt-get update",
     "comment": "buildkit.dockerfile.v0"}
  ],
  "os": "linux",
  "rootfs": {"type": "layers", "diff_ids": [")" + kDiff1 + R"(", ")" + kDiff2 + R"("]}
})";

// A minimal OCI config as umoci/buildah write it for busybox with a non-root user.
const std::string kBusyboxOciConfig = R"({
  "created": "2024-05-01T10:00:00Z",
  "author": "berth tests",
  "architecture": "arm64",
  "variant": "v8",
  "os": "linux",
  "config": {
    "User": "app:app",
    "Env": ["PATH=/bin", "HOME=/home/app"],
    "Cmd": ["sh"],
    "WorkingDir": "/home/app"
  },
  "rootfs": {"type": "layers", "diff_ids": [")" + kDiff1 + R"("]}
})";

TEST(ImageConfigTest, ParsesDockerConfig) {
  auto cfg = parseImageConfig(kNginxConfig, "nginx:1.25");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->architecture, "amd64");
  EXPECT_EQ(cfg->os, "linux");
  EXPECT_EQ(cfg->created, "2024-02-14T19:51:09.528311846Z");
  const ContainerDefaults& c = cfg->config;
  EXPECT_EQ(c.user, "");
  EXPECT_EQ(c.env.size(), 3u);
  EXPECT_EQ(c.env[1], "NGINX_VERSION=1.25.4");
  EXPECT_THAT(c.entrypoint, ElementsAre("/docker-entrypoint.sh"));
  EXPECT_THAT(c.cmd, ElementsAre("nginx", "-g", "daemon off;"));
  EXPECT_EQ(c.workingDir, "");
  EXPECT_EQ(c.stopSignal, "SIGQUIT");
  EXPECT_EQ(c.labels.at("maintainer"), "NGINX Docker Maintainers <docker-maint@nginx.com>");
  EXPECT_THAT(c.exposedPorts, ElementsAre("443/tcp", "80/tcp"));
  EXPECT_THAT(c.volumes, ElementsAre("/var/cache/nginx"));
  EXPECT_THAT(cfg->diffIds, ElementsAre(kDiff1, kDiff2));
  ASSERT_EQ(cfg->history.size(), 3u);
  EXPECT_TRUE(cfg->history[1].emptyLayer);
  EXPECT_FALSE(cfg->history[2].emptyLayer);
  EXPECT_EQ(cfg->history[2].comment, "buildkit.dockerfile.v0");
  EXPECT_THAT(cfg->history[0].createdBy, HasSubstr("ADD file:abc"));
}

TEST(ImageConfigTest, ParsesOciConfig) {
  auto cfg = parseImageConfig(kBusyboxOciConfig, "busybox");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->architecture, "arm64");
  EXPECT_EQ(cfg->variant, "v8");
  EXPECT_EQ(cfg->author, "berth tests");
  EXPECT_EQ(cfg->config.user, "app:app");
  EXPECT_THAT(cfg->config.entrypoint, IsEmpty());
  EXPECT_THAT(cfg->config.cmd, ElementsAre("sh"));
  EXPECT_EQ(cfg->config.workingDir, "/home/app");
  EXPECT_THAT(cfg->history, IsEmpty());
}

TEST(ImageConfigTest, NullFieldsAndMissingConfigAreEmpty) {
  auto cfg = parseImageConfig(
      R"({"architecture":"amd64","os":"linux","config":{"Env":null,"Cmd":null,"Entrypoint":null,
          "Labels":null,"Volumes":null},"rootfs":{"type":"layers","diff_ids":[]}})",
      "scratch-ish");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_THAT(cfg->config.env, IsEmpty());
  EXPECT_THAT(cfg->config.cmd, IsEmpty());
  auto noConfig = parseImageConfig(
      R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})", "x");
  ASSERT_TRUE(noConfig.ok()) << noConfig.status();
  EXPECT_THAT(noConfig->diffIds, IsEmpty());
}

std::string configError(const std::string& text) {
  auto cfg = parseImageConfig(text, "example.com/app:1");
  EXPECT_FALSE(cfg.ok());
  if (cfg.ok()) return "";
  EXPECT_EQ(cfg.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(cfg.status().message());
}

TEST(ImageConfigTest, RejectsBadConfigs) {
  EXPECT_THAT(configError("{"), HasSubstr("example.com/app:1: image config: parse JSON"));
  EXPECT_THAT(configError("[]"), HasSubstr("not a JSON object"));
  EXPECT_THAT(configError(R"({"os":"linux","rootfs":{"type":"layers","diff_ids":[]}})"),
              HasSubstr("\"architecture\" and \"os\" are required"));
  EXPECT_THAT(configError(R"({"architecture":"amd64","os":"linux"})"),
              HasSubstr("\"rootfs\" is required"));
  EXPECT_THAT(
      configError(R"({"architecture":"amd64","os":"linux","rootfs":{"type":"tar","diff_ids":[]}})"),
      HasSubstr("rootfs.type is \"tar\", want \"layers\""));
  EXPECT_THAT(configError(R"({"architecture":"amd64","os":"linux",
                              "rootfs":{"type":"layers","diff_ids":["sha256:abc"]}})"),
              HasSubstr("rootfs.diff_ids[0]: digest \"sha256:abc\""));
  EXPECT_THAT(configError(R"({"architecture":"amd64","os":"linux","config":{"Cmd":"sh"},
                              "rootfs":{"type":"layers","diff_ids":[]}})"),
              HasSubstr("config: \"Cmd\" must be an array of strings"));
  EXPECT_THAT(configError(R"({"architecture":"amd64","os":"linux","config":{"Env":[1]},
                              "rootfs":{"type":"layers","diff_ids":[]}})"),
              HasSubstr("\"Env\" must be an array of strings"));
  EXPECT_THAT(configError(R"({"architecture":"amd64","os":"linux","history":[{"empty_layer":"yes"}],
                              "rootfs":{"type":"layers","diff_ids":[]}})"),
              HasSubstr("history[0].empty_layer must be a boolean"));
}

// --- CRI merge rules ---------------------------------------------------------------

ContainerDefaults nginxDefaults() {
  auto cfg = parseImageConfig(kNginxConfig, "nginx");
  EXPECT_TRUE(cfg.ok());
  return cfg->config;
}

TEST(MergeCommandTest, NeitherCommandNorArgsUsesEntrypointPlusCmd) {
  auto cmd = mergeCommand(nginxDefaults(), {}, {}, "nginx");
  ASSERT_TRUE(cmd.ok());
  EXPECT_THAT(*cmd, ElementsAre("/docker-entrypoint.sh", "nginx", "-g", "daemon off;"));
}

TEST(MergeCommandTest, ArgsOnlyReplaceCmdAndKeepEntrypoint) {
  auto cmd = mergeCommand(nginxDefaults(), {}, {"nginx-debug", "-g", "daemon off;"}, "nginx");
  ASSERT_TRUE(cmd.ok());
  EXPECT_THAT(*cmd, ElementsAre("/docker-entrypoint.sh", "nginx-debug", "-g", "daemon off;"));
}

TEST(MergeCommandTest, CommandReplacesEntrypointAndDropsImageCmd) {
  auto cmd = mergeCommand(nginxDefaults(), {"/bin/sh"}, {}, "nginx");
  ASSERT_TRUE(cmd.ok());
  EXPECT_THAT(*cmd, ElementsAre("/bin/sh"));
  auto withArgs = mergeCommand(nginxDefaults(), {"/bin/sh", "-c"}, {"echo hi"}, "nginx");
  ASSERT_TRUE(withArgs.ok());
  EXPECT_THAT(*withArgs, ElementsAre("/bin/sh", "-c", "echo hi"));
}

TEST(MergeCommandTest, CmdOnlyImage) {
  ContainerDefaults busybox;
  busybox.cmd = {"sh"};
  EXPECT_THAT(*mergeCommand(busybox, {}, {}, "busybox"), ElementsAre("sh"));
  EXPECT_THAT(*mergeCommand(busybox, {}, {"sleep", "3600"}, "busybox"),
              ElementsAre("sleep", "3600"));
}

TEST(MergeCommandTest, EmptyResultIsAnError) {
  ContainerDefaults none;
  auto cmd = mergeCommand(none, {}, {}, "docker.io/library/scratchy:latest");
  ASSERT_FALSE(cmd.ok());
  EXPECT_EQ(cmd.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(cmd.status().message()),
              HasSubstr("image docker.io/library/scratchy:latest: no command specified"));
}

TEST(MergeEnvTest, ContainerOverridesInPlaceAndAppends) {
  std::vector<std::string> env =
      mergeEnv(nginxDefaults().env, {{"NGINX_VERSION", "custom"}, {"FOO", "bar"}, {"PATH", "/x"}});
  EXPECT_THAT(env, ElementsAre("PATH=/x", "NGINX_VERSION=custom", "NJS_VERSION=0.8.3",
                               "FOO=bar"));
}

TEST(MergeEnvTest, PrefixKeysAreDistinctAndLaterContainerValueWins) {
  std::vector<std::string> env =
      mergeEnv({"A=1", "AB=2", "BARE"}, {{"A", "x"}, {"A", "y"}, {"BARE", "now"}, {"EMPTY", ""}});
  EXPECT_THAT(env, ElementsAre("A=y", "AB=2", "BARE=now", "EMPTY="));
}

TEST(MergeWorkingDirTest, ContainerThenImageThenRoot) {
  ContainerDefaults img;
  EXPECT_EQ(mergeWorkingDir("", img), "/");
  img.workingDir = "/app";
  EXPECT_EQ(mergeWorkingDir("", img), "/app");
  EXPECT_EQ(mergeWorkingDir("/work", img), "/work");
}

TEST(StopSignalTest, NamesNumbersAndDefault) {
  EXPECT_EQ(*parseStopSignal(""), 15);
  EXPECT_EQ(*parseStopSignal("SIGTERM"), 15);
  EXPECT_EQ(*parseStopSignal("SIGQUIT"), 3);
  EXPECT_EQ(*parseStopSignal("quit"), 3);
  EXPECT_EQ(*parseStopSignal("sigint"), 2);
  EXPECT_EQ(*parseStopSignal("SIGKILL"), 9);
  EXPECT_EQ(*parseStopSignal("SIGWINCH"), 28);
  EXPECT_EQ(*parseStopSignal("9"), 9);
  EXPECT_EQ(*parseStopSignal("SIGRTMIN"), 34);
  EXPECT_EQ(*parseStopSignal("SIGRTMIN+3"), 37);
  EXPECT_EQ(*parseStopSignal("RTMAX-1"), 63);
  EXPECT_EQ(*parseStopSignal("SIGRTMAX"), 64);
  for (const char* bad : {"SIGFOO", "0", "65", "100", "SIGRTMIN+31", "RTMAX+1", "-1", "SIG"}) {
    auto s = parseStopSignal(bad);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(s.status().message()),
                HasSubstr(std::string("stop signal \"") + bad + "\": unknown signal"));
  }
}

// --- user resolution ---------------------------------------------------------------

class UserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/berth-imgcfg-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    rootfs_ = dir_ + "/rootfs";
    ASSERT_TRUE(fs::mkdirAll(rootfs_ + "/etc").ok());
    write("/etc/passwd",
          "# comment\n"
          "root:x:0:0:root:/root:/bin/sh\n"
          "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
          "broken line\n"
          "app:x:1000:1000:App User:/home/app:/bin/sh\n"
          "dup:x:1000:2000::/:/bin/sh\n");
    write("/etc/group",
          "root:x:0:\n"
          "daemon:x:1:\n"
          "wheel:x:10:root,app\n"
          "audio:x:29:app\n"
          "app:x:1000:\n"
          "web:x:3000:app, daemon\n"
          "nogroup:x:65534:\n");
  }
  void TearDown() override { ASSERT_TRUE(fs::removeAll(dir_).ok()); }

  void write(const std::string& path, const std::string& content) {
    ASSERT_TRUE(fs::writeFileAtomic(rootfs_ + path, content, 0644, fs::Durability::kVolatile).ok());
  }

  ResolvedUser resolve(const std::string& user) {
    auto r = resolveUser(rootfs_, user, "example.com/app:1");
    EXPECT_TRUE(r.ok()) << user << ": " << r.status();
    return r.ok() ? *r : ResolvedUser{};
  }

  std::string dir_;
  std::string rootfs_;
};

TEST_F(UserTest, EmptyMeansRoot) {
  ResolvedUser u = resolve("");
  EXPECT_EQ(u.uid, 0u);
  EXPECT_EQ(u.gid, 0u);
  EXPECT_EQ(u.username, "root");
  EXPECT_THAT(u.additionalGids, ElementsAre(0u, 10u));
}

TEST_F(UserTest, NameResolvesUidGidAndMemberships) {
  ResolvedUser u = resolve("app");
  EXPECT_EQ(u.uid, 1000u);
  EXPECT_EQ(u.gid, 1000u);
  EXPECT_EQ(u.username, "app");
  EXPECT_THAT(u.additionalGids, ElementsAre(1000u, 10u, 29u, 3000u));
}

TEST_F(UserTest, NumericUidUsesFirstPasswdEntry) {
  ResolvedUser u = resolve("1000");
  EXPECT_EQ(u.uid, 1000u);
  EXPECT_EQ(u.gid, 1000u);
  EXPECT_EQ(u.username, "app");
  ResolvedUser n = resolve("65534");
  EXPECT_EQ(n.gid, 65534u);
  EXPECT_EQ(n.username, "nobody");
}

TEST_F(UserTest, NumericUidWithoutEntryIsAllowed) {
  ResolvedUser u = resolve("4242");
  EXPECT_EQ(u.uid, 4242u);
  EXPECT_EQ(u.gid, 0u);
  EXPECT_EQ(u.username, "");
  EXPECT_THAT(u.additionalGids, ElementsAre(0u));
  ResolvedUser g = resolve("4242:4343");
  EXPECT_EQ(g.uid, 4242u);
  EXPECT_EQ(g.gid, 4343u);
}

TEST_F(UserTest, NameAndGroupForms) {
  ResolvedUser u = resolve("app:web");
  EXPECT_EQ(u.uid, 1000u);
  EXPECT_EQ(u.gid, 3000u);
  EXPECT_THAT(u.additionalGids, ElementsAre(3000u, 10u, 29u));
  ResolvedUser d = resolve("daemon:7");
  EXPECT_EQ(d.uid, 1u);
  EXPECT_EQ(d.gid, 7u);
  EXPECT_THAT(d.additionalGids, ElementsAre(7u, 3000u));  // " daemon" member trimmed
  ResolvedUser n = resolve("1000:audio");
  EXPECT_EQ(n.uid, 1000u);
  EXPECT_EQ(n.gid, 29u);
}

TEST_F(UserTest, UnknownNamesAreNotFound) {
  auto u = resolveUser(rootfs_, "postgres", "docker.io/library/app:1");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(u.status().message()),
              HasSubstr("user \"postgres\" not found in /etc/passwd of image "
                        "docker.io/library/app:1"));
  auto g = resolveUser(rootfs_, "app:staff", "docker.io/library/app:1");
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(g.status().message()),
              HasSubstr("group \"staff\" not found in /etc/group of image"));
}

TEST_F(UserTest, MalformedUserStrings) {
  for (const char* bad : {":1000", "app:", "a:b:c"}) {
    auto u = resolveUser(rootfs_, bad, "x");
    ASSERT_FALSE(u.ok()) << bad;
    EXPECT_EQ(u.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(u.status().message()), HasSubstr("invalid user"));
  }
  auto big = resolveUser(rootfs_, "4294967295", "x");
  EXPECT_EQ(big.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(big.status().message()), HasSubstr("out of range"));
}

TEST_F(UserTest, MissingFilesCountAsEmpty) {
  ASSERT_EQ(::unlink((rootfs_ + "/etc/passwd").c_str()), 0);
  ASSERT_EQ(::unlink((rootfs_ + "/etc/group").c_str()), 0);
  ResolvedUser u = resolve("1000:1000");
  EXPECT_EQ(u.uid, 1000u);
  EXPECT_EQ(u.gid, 1000u);
  ResolvedUser root = resolve("");
  EXPECT_EQ(root.uid, 0u);
  EXPECT_EQ(root.username, "");
  auto named = resolveUser(rootfs_, "app", "x");
  EXPECT_EQ(named.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(UserTest, SymlinksNeverLeaveTheRootfs) {
  // A host-side passwd that must never be read.
  ASSERT_TRUE(fs::writeFileAtomic(dir_ + "/host-passwd", "evil:x:0:0::/:/bin/sh\n", 0644,
                                  fs::Durability::kVolatile)
                  .ok());
  ASSERT_EQ(::unlink((rootfs_ + "/etc/passwd").c_str()), 0);
  // Relative escape: resolved against the rootfs, ".." stops at its root.
  ASSERT_EQ(::symlink("../../host-passwd", (rootfs_ + "/etc/passwd").c_str()), 0);
  auto rel = resolveUser(rootfs_, "evil", "x");
  EXPECT_EQ(rel.status().code(), absl::StatusCode::kNotFound) << rel.status();
  // Absolute escape: "/<dir>/host-passwd" means <rootfs>/<dir>/host-passwd.
  ASSERT_EQ(::unlink((rootfs_ + "/etc/passwd").c_str()), 0);
  ASSERT_EQ(::symlink((dir_ + "/host-passwd").c_str(), (rootfs_ + "/etc/passwd").c_str()), 0);
  auto abs = resolveUser(rootfs_, "evil", "x");
  EXPECT_EQ(abs.status().code(), absl::StatusCode::kNotFound) << abs.status();
  // A symlink inside the rootfs is followed.
  write("/etc/passwd.real", "svc:x:700:701::/:/bin/sh\n");
  ASSERT_EQ(::unlink((rootfs_ + "/etc/passwd").c_str()), 0);
  ASSERT_EQ(::symlink("/etc/passwd.real", (rootfs_ + "/etc/passwd").c_str()), 0);
  ResolvedUser svc = resolve("svc");
  EXPECT_EQ(svc.uid, 700u);
  EXPECT_EQ(svc.gid, 701u);
  // A symlinked /etc directory pointing outside is clamped too.
  ASSERT_TRUE(fs::removeAll(rootfs_ + "/etc").ok());
  ASSERT_TRUE(fs::mkdirAll(dir_ + "/hostetc").ok());
  ASSERT_TRUE(fs::writeFileAtomic(dir_ + "/hostetc/passwd", "evil:x:0:0::/:/bin/sh\n", 0644,
                                  fs::Durability::kVolatile)
                  .ok());
  ASSERT_EQ(::symlink("../hostetc", (rootfs_ + "/etc").c_str()), 0);
  auto dirEscape = resolveUser(rootfs_, "evil", "x");
  EXPECT_EQ(dirEscape.status().code(), absl::StatusCode::kNotFound) << dirEscape.status();
}

}  // namespace
}  // namespace berth::image
