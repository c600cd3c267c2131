// Pulls of real images (tests/fixtures/image_builder.h, built from Debian's
// busybox-static) through Debian's docker-registry on 127.0.0.1: plain HTTP, TLS with
// htpasswd basic auth, TLS with bearer tokens; mirrors and blocked registries from a
// registries.conf; the unpacked root filesystem checked file by file and run.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <grp.h>
#include <sys/xattr.h>

#include "common/fs.h"
#include "runtime/image/image_config.h"
#include "runtime/image/registry_auth.h"
#include "tests/fixtures/mount_namespace.h"
#include "tests/fixtures/registry_fixture.h"
#include "tests/fixtures/token_server.h"
#include "tests/integration/image/image_env.h"

namespace berth::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

// One plain-HTTP registry for the suite, with the catalogue pushed once.
class PullTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0 || !checkRegistryTools().ok() || !checkBusyboxStatic().ok()) return;
    auto registry = RegistryFixture::start(RegistryFixture::Mode::kPlainHttp);
    ASSERT_TRUE(registry.ok()) << registry.status();
    registry_ = registry->release();
    for (const char* name : {"busybox-multi", "busybox-docker", "busybox-zstd", "multiarch",
                             "arm64-only"}) {
      Status st = registry_->push(std::string("library/") + name, "1", fixtureImage(name));
      ASSERT_TRUE(st.ok()) << st << registry_->logTail();
    }
  }
  static void TearDownTestSuite() {
    delete registry_;
    registry_ = nullptr;
  }

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (layer ownership, overlay mounts)";
    BERTH_SKIP_WITHOUT_REGISTRY();
    Status busybox = checkBusyboxStatic();
    if (!busybox.ok()) GTEST_SKIP() << busybox;
    ASSERT_NE(registry_, nullptr);
    env_ = std::make_unique<ImageEnv>([](image::ImageServiceOptions& o) {
      o.insecure_registries = {registry_->hostPort()};
    });
  }

  std::string ref(const std::string& name, const std::string& tag = "1") {
    return registry_->hostPort() + "/library/" + name + ":" + tag;
  }

  static RegistryFixture* registry_;
  std::unique_ptr<ImageEnv> env_;
};
RegistryFixture* PullTest::registry_ = nullptr;

// Mounts a view of `image` and runs `check(rootfs)` in a private mount namespace.
void withRootfs(image::ImageService& svc, const image::ImageRecord& image,
                const std::function<void(const std::string&)>& check) {
  std::string key = "view-" + image.id.substr(7, 12);
  auto mounts = svc.snapshotter().prepareView(key, image.chain_ids.back());
  ASSERT_TRUE(mounts.ok()) << mounts.status();
  char tmpl[] = "/tmp/berth-rootfs-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string target = tmpl;
  inPrivateMountNamespace([&] {
    Status st = svc.snapshotter().mount(key, target);
    ASSERT_TRUE(st.ok()) << st;
    check(target);
  });
  EXPECT_TRUE(svc.snapshotter().removeActive(key).ok());
  ::rmdir(target.c_str());
}

// Runs `argv` chrooted in `rootfs` as uid/gid, returning its stdout (and exit status).
std::string runChrooted(const std::string& rootfs, const std::vector<std::string>& argv,
                        uid_t uid, gid_t gid, int* status_out) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return "pipe failed";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipefd[1], 1);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    char env0[] = "PATH=/bin";
    char* envp[] = {env0, nullptr};
    if (::chroot(rootfs.c_str()) != 0 || ::chdir("/") != 0 || ::setgroups(0, nullptr) != 0 ||
        ::setgid(gid) != 0 || ::setuid(uid) != 0) {
      ::_exit(120);
    }
    ::execve(args[0], args.data(), envp);
    ::_exit(121);
  }
  ::close(pipefd[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  *status_out = status;
  return out;
}

TEST_F(PullTest, MultiLayerImageUnpacksWithWhiteoutsOpaqueDirsAndRuns) {
  const TestImage& fixture = fixtureImage("busybox-multi");
  auto image = env_->svc().pull(ref("busybox-multi"));
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->id, fixture.images[0].config_digest);
  EXPECT_THAT(image->repo_tags, ElementsAre(ref("busybox-multi")));
  EXPECT_THAT(image->repo_digests,
              ElementsAre(registry_->hostPort() + "/library/busybox-multi@" + fixture.digest));
  EXPECT_EQ(image->platform, "linux/amd64");
  EXPECT_EQ(image->chain_ids.size(), 3u);
  EXPECT_EQ(image->manifest_media_type, kOciManifestType);

  auto config = env_->svc().config(*image);
  ASSERT_TRUE(config.ok()) << config.status();
  auto argv = image::mergeCommand(config->config, {}, {}, image->id);
  ASSERT_TRUE(argv.ok());
  EXPECT_THAT(*argv, ElementsAre("/bin/sh", "-c", "echo hello"));
  EXPECT_EQ(config->config.stopSignal, "SIGQUIT");

  withRootfs(env_->svc(), *image, [&](const std::string& root) {
    EXPECT_FALSE(fs::exists(root + "/etc/removed-later"));
    EXPECT_TRUE(fs::exists(root + "/etc/added"));
    auto motd = fs::readFile(root + "/etc/motd");
    EXPECT_EQ(motd.value_or(""), "layer 2\n");
    auto old = fs::listDir(root + "/data/old");
    ASSERT_TRUE(old.ok());
    EXPECT_THAT(*old, UnorderedElementsAre("b", "b-hardlink", "c-symlink"));
    struct stat b, hard, owned, fifo;
    ASSERT_EQ(::stat((root + "/data/old/b").c_str(), &b), 0);
    ASSERT_EQ(::stat((root + "/data/old/b-hardlink").c_str(), &hard), 0);
    EXPECT_EQ(b.st_ino, hard.st_ino);
    ASSERT_EQ(::lstat((root + "/data/app-owned").c_str(), &owned), 0);
    EXPECT_EQ(owned.st_uid, 1000u);
    EXPECT_EQ(owned.st_mode & 07777, 0640u);
    ASSERT_EQ(::lstat((root + "/data/fifo").c_str(), &fifo), 0);
    EXPECT_TRUE(S_ISFIFO(fifo.st_mode));
    char value[64] = {};
    ssize_t n = ::lgetxattr((root + "/data/xattr-file").c_str(), "user.berth.test", value,
                            sizeof(value));
    EXPECT_EQ(std::string(value, n > 0 ? static_cast<size_t>(n) : 0), "fixture");

    auto user = image::resolveUser(root, config->config.user, image->id);
    ASSERT_TRUE(user.ok()) << user.status();
    EXPECT_EQ(user->uid, 1000u);
    EXPECT_EQ(user->gid, 1000u);
    EXPECT_THAT(user->additionalGids, ::testing::Contains(50u));

    // The image's own busybox runs from the unpacked layers, as the image's user.
    int status = 0;
    std::string out = runChrooted(root, {"/bin/sh", "-c", "echo hello; id -u"}, user->uid,
                                  user->gid, &status);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    EXPECT_EQ(out, "hello\n1000\n");
  });
}

TEST_F(PullTest, PullByDigestRecordsOnlyTheDigest) {
  const TestImage& fixture = fixtureImage("busybox-multi");
  std::string by_digest = registry_->hostPort() + "/library/busybox-multi@" + fixture.digest;
  auto image = env_->svc().pull(by_digest);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_TRUE(image->repo_tags.empty());
  EXPECT_THAT(image->repo_digests, ElementsAre(by_digest));
  auto found = env_->svc().status(by_digest);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->id, image->id);
}

TEST_F(PullTest, IndexResolvesToLinuxAmd64OrTheConfiguredPlatform) {
  const TestImage& fixture = fixtureImage("multiarch");
  auto image = env_->svc().pull(ref("multiarch"));
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->platform, "linux/amd64");
  EXPECT_EQ(image->manifest_digest, fixture.forPlatform("linux/amd64")->manifest_digest);
  EXPECT_THAT(image->repo_digests,
              ElementsAre(registry_->hostPort() + "/library/multiarch@" + fixture.digest));

  ImageEnv arm([](image::ImageServiceOptions& o) {
    o.insecure_registries = {registry_->hostPort()};
    o.platform = *image::parsePlatform("linux/arm/v7");
  });
  auto arm_image = arm.svc().pull(ref("multiarch"));
  ASSERT_TRUE(arm_image.ok()) << arm_image.status();
  EXPECT_EQ(arm_image->platform, "linux/arm/v7");
  EXPECT_EQ(arm_image->id, fixture.forPlatform("linux/arm/v7")->config_digest);
}

TEST_F(PullTest, DockerSchema2AndZstdImagesShareSnapshotsByChainId) {
  auto multi = env_->svc().pull(ref("busybox-multi"));
  ASSERT_TRUE(multi.ok()) << multi.status();
  auto docker = env_->svc().pull(ref("busybox-docker"));
  ASSERT_TRUE(docker.ok()) << docker.status();
  EXPECT_EQ(docker->manifest_media_type, kDockerManifestType);
  auto zstd = env_->svc().pull(ref("busybox-zstd"));
  ASSERT_TRUE(zstd.ok()) << zstd.status();
  // Same layers, different blobs: one set of snapshots serves all three.
  EXPECT_EQ(docker->chain_ids, multi->chain_ids);
  EXPECT_EQ(zstd->chain_ids.front(), multi->chain_ids.front());
  auto snaps = env_->svc().snapshotter().list();
  ASSERT_TRUE(snaps.ok());
  EXPECT_EQ(snaps->size(), 3u);
}

TEST_F(PullTest, RemoveThenGarbageCollectFreesBlobsAndSnapshotsButKeepsActiveOnes) {
  auto multi = env_->svc().pull(ref("busybox-multi"));
  ASSERT_TRUE(multi.ok()) << multi.status();
  auto zstd = env_->svc().pull(ref("busybox-zstd"));
  ASSERT_TRUE(zstd.ok()) << zstd.status();
  // A container's writable snapshot on busybox-multi.
  ASSERT_TRUE(env_->svc().snapshotter().prepareActive("ctr-1", multi->chain_ids.back()).ok());

  ASSERT_TRUE(env_->svc().remove(ref("busybox-multi")).ok());
  ASSERT_TRUE(env_->svc().remove(ref("busybox-multi")).ok()) << "RemoveImage is idempotent";
  auto gc = env_->svc().garbageCollect();
  ASSERT_TRUE(gc.ok()) << gc.status();
  // busybox-multi's blobs go (zstd's are different blobs); its snapshots stay under ctr-1.
  EXPECT_EQ(gc->removed_blobs.size(), 5u);  // manifest, config, 3 layers
  EXPECT_TRUE(gc->removed_snapshots.empty());

  ASSERT_TRUE(env_->svc().snapshotter().removeActive("ctr-1").ok());
  gc = env_->svc().garbageCollect();
  ASSERT_TRUE(gc.ok()) << gc.status();
  EXPECT_EQ(gc->removed_snapshots.size(), 2u);  // layers 2 and 3; layer 1 is zstd's
  auto left = env_->svc().list();
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ(left->front().id, zstd->id);
}

TEST_F(PullTest, ExportedArchivesImportIntoAFreshStore) {
  auto image = env_->svc().pull(ref("busybox-multi"));
  ASSERT_TRUE(image.ok()) << image.status();
  std::string oci = env_->dir() + "/busybox-oci.tar";
  std::string docker = env_->dir() + "/busybox-docker-save.tar";
  ASSERT_TRUE(env_->svc().exportArchive({ref("busybox-multi")}, oci,
                                        image::ArchiveFormat::kOciLayout).ok());
  ASSERT_TRUE(env_->svc().exportArchive({ref("busybox-multi")}, docker,
                                        image::ArchiveFormat::kDockerSave).ok());
  for (const std::string& archive : {oci, docker}) {
    ImageEnv fresh;
    auto imported = fresh.svc().importArchive(archive);
    ASSERT_TRUE(imported.ok()) << archive << ": " << imported.status();
    ASSERT_EQ(imported->size(), 1u);
    EXPECT_EQ(imported->front().id, image->id) << archive;
    EXPECT_EQ(imported->front().chain_ids, image->chain_ids) << archive;
    EXPECT_THAT(imported->front().repo_tags, ElementsAre(ref("busybox-multi"))) << archive;
  }
}

TEST_F(PullTest, MirrorServesAnUnreachableRegistryAndBlockedRegistriesAreRefused) {
  std::string conf = env_->dir() + "/registries.conf";
  ASSERT_TRUE(fs::writeFileAtomic(conf, strCat(
      "[[registry]]\nprefix = \"unreachable.invalid:5000\"\n"
      "location = \"unreachable.invalid:5000\"\n"
      "[[registry.mirror]]\nlocation = \"", registry_->hostPort(), "\"\ninsecure = true\n\n"
      "[[registry]]\nlocation = \"blocked.invalid\"\nblocked = true\n")).ok());
  ImageEnv env([&](image::ImageServiceOptions& o) { o.registries_conf = conf; });
  auto image = env.svc().pull("unreachable.invalid:5000/library/busybox-multi:1");
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_THAT(image->repo_tags, ElementsAre("unreachable.invalid:5000/library/busybox-multi:1"));
  auto blocked = env.svc().pull("blocked.invalid/library/busybox-multi:1");
  EXPECT_EQ(blocked.status().code(), absl::StatusCode::kPermissionDenied) << blocked.status();
  EXPECT_THAT(std::string(blocked.status().message()), HasSubstr("blocked"));
}

TEST_F(PullTest, FullDiskDuringUnpackFailsCleanly) {
  // berth-image on a 1.5 MB tmpfs in its own mount namespace: the compressed layers fit,
  // the unpacked busybox does not.
  std::string root = env_->dir() + "/small";
  ASSERT_TRUE(fs::mkdirAll(root).ok());
  std::string script = strCat(
      "mount -t tmpfs -o size=1500k tmpfs ", root, " && ", BERTH_IMAGE_BINARY, " --root ",
      root, " --insecure-registry ", registry_->hostPort(), " pull ", ref("busybox-multi"),
      "; echo rc=$?; ", BERTH_IMAGE_BINARY, " --root ", root, " images -q; ls ", root,
      "/snapshots; ", BERTH_IMAGE_BINARY, " --root ", root, " df");
  std::string cmd = strCat("unshare -m --propagation private sh -c '", script, "' 2>&1");
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = ::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  ::pclose(p);
  EXPECT_THAT(out, HasSubstr("No space left on device")) << out;
  EXPECT_THAT(out, HasSubstr("layer 1 of 3")) << out;
  EXPECT_THAT(out, HasSubstr("rc=1")) << out;
  // Nothing after the failure: no image listed, no snapshot directory, no blob.
  std::string after = out.substr(out.find("rc=1") + 5);
  EXPECT_THAT(after, ::testing::Not(HasSubstr("sha256:"))) << "an image was listed: " << out;
  EXPECT_THAT(out, ::testing::ContainsRegex("content +0B")) << out;
}

// ---- TLS registries with authentication ----

class AuthPullTest : public ::testing::TestWithParam<RegistryFixture::Mode> {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (layer ownership)";
    BERTH_SKIP_WITHOUT_REGISTRY();
    Status busybox = checkBusyboxStatic();
    if (!busybox.ok()) GTEST_SKIP() << busybox;
    auto registry = RegistryFixture::start(GetParam());
    ASSERT_TRUE(registry.ok()) << registry.status();
    registry_ = std::move(*registry);
    Status st = registry_->push("team/busybox", "1", fixtureImage("busybox-multi"));
    ASSERT_TRUE(st.ok()) << st << registry_->logTail();
    env_ = std::make_unique<ImageEnv>(
        [this](image::ImageServiceOptions& o) { o.certs_dir = registry_->certsDir(); });
    ref_ = registry_->hostPort() + "/team/busybox:1";
  }

  image::Credentials good() {
    image::Credentials c;
    c.username = registry_->username();
    c.password = registry_->password();
    return c;
  }

  std::unique_ptr<RegistryFixture> registry_;
  std::unique_ptr<ImageEnv> env_;
  std::string ref_;
};

TEST_P(AuthPullTest, PullsWithCredentials) {
  auto image = env_->svc().pull(ref_, good());
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->id, fixtureImage("busybox-multi").images[0].config_digest);
}

TEST_P(AuthPullTest, DockerConfigAuthFieldWorksToo) {
  image::Credentials c;
  c.auth = image::internal::base64Encode(registry_->username() + ":" + registry_->password());
  auto image = env_->svc().pull(ref_, c);
  ASSERT_TRUE(image.ok()) << image.status();
}

TEST_P(AuthPullTest, MissingOrWrongCredentialsAreUnauthenticatedAndLeaveNothing) {
  StoreState before = env_->state();
  auto anonymous = env_->svc().pull(ref_);
  EXPECT_EQ(anonymous.status().code(), absl::StatusCode::kUnauthenticated)
      << anonymous.status();
  image::Credentials wrong = good();
  wrong.password = "not-the-password";
  auto bad = env_->svc().pull(ref_, wrong);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kUnauthenticated) << bad.status();
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr(registry_->hostPort()));
  EXPECT_EQ(env_->state(), before);
}

TEST_P(AuthPullTest, UnknownCertificateAuthorityIsRefused) {
  ImageEnv no_ca;  // certs.d without the fixture's CA
  auto image = no_ca.svc().pull(ref_, good());
  ASSERT_FALSE(image.ok());
  EXPECT_THAT(std::string(image.status().message()), HasSubstr("certificate"));
}

TEST_P(AuthPullTest, IdentityTokenPullsThroughTheTokenServer) {
  if (GetParam() != RegistryFixture::Mode::kTlsToken) GTEST_SKIP() << "token mode only";
  image::Credentials c;
  c.identity_token = registry_->tokenServer()->newRefreshToken(registry_->username());
  auto image = env_->svc().pull(ref_, c);
  ASSERT_TRUE(image.ok()) << image.status();
}

INSTANTIATE_TEST_SUITE_P(Registry, AuthPullTest,
                         ::testing::Values(RegistryFixture::Mode::kTlsBasic,
                                           RegistryFixture::Mode::kTlsToken),
                         [](const auto& info) {
                           return info.param == RegistryFixture::Mode::kTlsBasic ? "TlsBasic"
                                                                                 : "TlsToken";
                         });

}  // namespace
}  // namespace berth::testing
