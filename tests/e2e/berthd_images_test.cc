// berthd as a process, driven over its real CRI socket with a gRPC client: the
// runtime-wide calls and the ImageService against Debian's docker-registry.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "common/fs.h"
#include "cri/proto/api.grpc.pb.h"
#include "tests/e2e/berthd_process.h"
#include "tests/fixtures/image_builder.h"
#include "tests/fixtures/registry_fixture.h"

namespace berth::testing {
namespace {

namespace v1 = runtime::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class BerthdImagesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { registry_ = startBusyboxRegistry(); }
  static void TearDownTestSuite() {
    delete registry_;
    registry_ = nullptr;
  }

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    BERTH_SKIP_WITHOUT_REGISTRY();
    ASSERT_NE(registry_, nullptr);
    char tmpl[] = "/tmp/berth-e2e-conf-XXXXXX";
    conf_dir_ = ::mkdtemp(tmpl);
    std::string conf = writeInsecureRegistriesConf(conf_dir_, registry_->hostPort());
    berthd_ = std::make_unique<Berthd>(std::vector<std::string>{"--registries-conf", conf});
    ASSERT_TRUE(berthd_->ready()) << berthd_->log();
  }
  void TearDown() override {
    berthd_.reset();
    if (!conf_dir_.empty()) (void)fs::removeAll(conf_dir_);
  }

  std::string ref() { return registry_->hostPort() + "/library/busybox:1.36"; }

  static RegistryFixture* registry_;
  std::string conf_dir_;
  std::unique_ptr<Berthd> berthd_;
};
RegistryFixture* BerthdImagesTest::registry_ = nullptr;

TEST_F(BerthdImagesTest, VersionStatusAndRuntimeConfig) {
  grpc::ClientContext c1, c2, c3;
  v1::VersionResponse version;
  ASSERT_TRUE(berthd_->runtime().Version(&c1, v1::VersionRequest(), &version).ok());
  EXPECT_EQ(version.runtime_name(), "berth");
  EXPECT_EQ(version.runtime_api_version(), "v1");

  v1::StatusResponse status;
  ASSERT_TRUE(berthd_->runtime().Status(&c2, v1::StatusRequest(), &status).ok());
  ASSERT_EQ(status.status().conditions_size(), 2);
  EXPECT_EQ(status.status().conditions(0).type(), "RuntimeReady");
  EXPECT_TRUE(status.status().conditions(0).status());
  EXPECT_EQ(status.status().conditions(1).type(), "NetworkReady");
  EXPECT_FALSE(status.status().conditions(1).status()) << "no CNI config yet";
  EXPECT_EQ(status.status().conditions(1).reason(), "NetworkPluginNotReady");
  EXPECT_THAT(status.status().conditions(1).message(), HasSubstr("no network config found"));

  v1::RuntimeConfigResponse config;
  ASSERT_TRUE(
      berthd_->runtime().RuntimeConfig(&c3, v1::RuntimeConfigRequest(), &config).ok());
  EXPECT_EQ(config.linux().cgroup_driver(), v1::CGROUPFS);
}

TEST_F(BerthdImagesTest, PullListStatusRemoveThroughTheSocket) {
  const TestImage& fixture = **standardImage("busybox-multi");
  v1::PullImageRequest pull;
  pull.mutable_image()->set_image(ref());
  v1::PullImageResponse pulled;
  grpc::ClientContext c1;
  grpc::Status st = berthd_->images().PullImage(&c1, pull, &pulled);
  ASSERT_TRUE(st.ok()) << st.error_message() << "\n" << berthd_->log();
  EXPECT_EQ(pulled.image_ref(), fixture.images[0].config_digest);

  grpc::ClientContext c2;
  v1::ListImagesResponse list;
  ASSERT_TRUE(berthd_->images().ListImages(&c2, v1::ListImagesRequest(), &list).ok());
  ASSERT_EQ(list.images_size(), 1);
  EXPECT_THAT(list.images(0).repo_tags(), ElementsAre(ref()));
  EXPECT_EQ(list.images(0).username(), "app");
  EXPECT_GT(list.images(0).size(), 1000000u);

  // kubelet asks by the name it pulled, and by the image ref it got back.
  for (const std::string& name : {ref(), pulled.image_ref(), std::string("busybox-nope")}) {
    grpc::ClientContext c;
    v1::ImageStatusRequest req;
    req.mutable_image()->set_image(name);
    req.set_verbose(true);
    v1::ImageStatusResponse resp;
    ASSERT_TRUE(berthd_->images().ImageStatus(&c, req, &resp).ok()) << name;
    if (name == "busybox-nope") {
      EXPECT_FALSE(resp.has_image());
    } else {
      EXPECT_EQ(resp.image().id(), pulled.image_ref());
      EXPECT_THAT(resp.info().at("info"), HasSubstr("\"stopSignal\":\"SIGQUIT\""));
    }
  }

  grpc::ClientContext c3;
  v1::ImageFsInfoResponse fsinfo;
  ASSERT_TRUE(berthd_->images().ImageFsInfo(&c3, v1::ImageFsInfoRequest(), &fsinfo).ok());
  ASSERT_EQ(fsinfo.image_filesystems_size(), 1);
  EXPECT_GT(fsinfo.image_filesystems(0).used_bytes().value(), 1000000u);
  EXPECT_GT(fsinfo.image_filesystems(0).inodes_used().value(), 10u);

  for (int i = 0; i < 2; ++i) {  // RemoveImage is idempotent
    grpc::ClientContext c;
    v1::RemoveImageRequest rm;
    rm.mutable_image()->set_image(ref());
    v1::RemoveImageResponse resp;
    ASSERT_TRUE(berthd_->images().RemoveImage(&c, rm, &resp).ok());
  }
  grpc::ClientContext c4;
  v1::ListImagesResponse after;
  ASSERT_TRUE(berthd_->images().ListImages(&c4, v1::ListImagesRequest(), &after).ok());
  EXPECT_EQ(after.images_size(), 0);
  grpc::ClientContext c5;
  ASSERT_TRUE(berthd_->images().ImageFsInfo(&c5, v1::ImageFsInfoRequest(), &fsinfo).ok());
  EXPECT_LT(fsinfo.image_filesystems(0).used_bytes().value(), 100000u) << "GC freed the layers";
}

TEST_F(BerthdImagesTest, BadRequestsGetClearErrorsAndTheDaemonKeepsServing) {
  struct Case {
    std::string image;
    grpc::StatusCode code;
  };
  for (const Case& c : std::vector<Case>{
           {"", grpc::StatusCode::INVALID_ARGUMENT},
           {"library/BusyBox:1", grpc::StatusCode::INVALID_ARGUMENT},
           {"busybox:bad tag", grpc::StatusCode::INVALID_ARGUMENT},
           {registry_->hostPort() + "/library/nosuch:1", grpc::StatusCode::NOT_FOUND},
       }) {
    grpc::ClientContext ctx;
    v1::PullImageRequest pull;
    pull.mutable_image()->set_image(c.image);
    v1::PullImageResponse resp;
    grpc::Status st = berthd_->images().PullImage(&ctx, pull, &resp);
    EXPECT_EQ(st.error_code(), c.code) << c.image << ": " << st.error_message();
    EXPECT_FALSE(st.error_message().empty());
  }
  grpc::ClientContext ctx;
  v1::VersionResponse version;
  EXPECT_TRUE(berthd_->runtime().Version(&ctx, v1::VersionRequest(), &version).ok());
}

TEST_F(BerthdImagesTest, SecondDaemonOnTheSameStateRefusesAndOthersCoexist) {
  // Same state dir: refused with a message naming it.
  std::string out = berthd_->dir() + "/second.log";
  std::string cmd = strCat(BERTHD_BINARY, " --root ", berthd_->dir(), "/root2 --state ",
                           berthd_->dir(), "/state > ", out, " 2>&1");
  EXPECT_NE(std::system(cmd.c_str()), 0);
  EXPECT_THAT(fs::readFile(out).value_or(""), HasSubstr("another berthd is running"));
  // Own root/state/listen: both serve.
  Berthd other({});
  ASSERT_TRUE(other.ready()) << other.log();
  grpc::ClientContext ctx;
  v1::VersionResponse version;
  EXPECT_TRUE(other.runtime().Version(&ctx, v1::VersionRequest(), &version).ok());
}

}  // namespace
}  // namespace berth::testing
