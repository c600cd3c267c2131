// berthctl endpoint resolution (flags > env > crictl.yaml > default), crictl.yaml
// parsing, gRPC targets, and the messages for failed calls.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <map>

#include "common/fs.h"
#include "common/unique_fd.h"
#include "ctl/client.h"

namespace berth::ctl {
namespace {

using ::testing::HasSubstr;

class ResolveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berthctl-client-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  void TearDown() override { (void)fs::removeAll(dir_); }

  StatusOr<Endpoints> resolve(const GlobalFlags& flags,
                              const std::string& default_config = "/nonexistent/crictl.yaml") {
    return resolveEndpoints(
        flags,
        [this](const char* name) -> const char* {
          auto it = env_.find(name);
          return it == env_.end() ? nullptr : it->second.c_str();
        },
        default_config);
  }
  std::string writeConfig(const std::string& text) {
    std::string path = dir_ + "/crictl.yaml";
    EXPECT_TRUE(fs::writeFileAtomic(path, text).ok());
    return path;
  }

  std::string dir_;
  std::map<std::string, std::string> env_;
};

TEST_F(ResolveTest, DefaultsWithoutFlagsEnvOrConfig) {
  auto e = resolve({});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->runtime_endpoint, "unix:///run/berth/berth.sock");
  EXPECT_EQ(e->image_endpoint, "unix:///run/berth/berth.sock");
  EXPECT_EQ(e->timeout, std::chrono::seconds(2));
  EXPECT_FALSE(e->debug);
  EXPECT_EQ(e->config_file, "");
}

TEST_F(ResolveTest, DefaultConfigFileIsReadWhenItExists) {
  std::string path = writeConfig(
      "runtime-endpoint: unix:///run/containerd/containerd.sock\n"
      "image-endpoint: unix:///run/img.sock\ntimeout: 10\ndebug: true\n"
      "pull-image-on-create: false\n");
  auto e = resolve({}, path);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->runtime_endpoint, "unix:///run/containerd/containerd.sock");
  EXPECT_EQ(e->image_endpoint, "unix:///run/img.sock");
  EXPECT_EQ(e->timeout, std::chrono::seconds(10));
  EXPECT_TRUE(e->debug);
  EXPECT_EQ(e->config_file, path);
}

TEST_F(ResolveTest, EnvironmentBeatsConfigAndFlagsBeatEnvironment) {
  std::string path = writeConfig("runtime-endpoint: unix:///from/config.sock\ntimeout: 10\n");
  env_["CONTAINER_RUNTIME_ENDPOINT"] = "unix:///from/env.sock";
  auto e = resolve({}, path);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->runtime_endpoint, "unix:///from/env.sock");
  EXPECT_EQ(e->image_endpoint, "unix:///from/env.sock") << "image endpoint follows runtime";

  env_["IMAGE_SERVICE_ENDPOINT"] = "unix:///from/env-images.sock";
  GlobalFlags flags;
  flags.runtime_endpoint = "/from/flag.sock";
  flags.timeout_seconds = 30;
  e = resolve(flags, path);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->runtime_endpoint, "/from/flag.sock");
  EXPECT_EQ(e->image_endpoint, "unix:///from/env-images.sock");
  EXPECT_EQ(e->timeout, std::chrono::seconds(30));

  flags.image_endpoint = "unix:///from/flag-images.sock";
  e = resolve(flags, path);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->image_endpoint, "unix:///from/flag-images.sock");
}

TEST_F(ResolveTest, ConfigFlagAndEnvironmentNameTheFile) {
  std::string path = writeConfig("runtime-endpoint: unix:///named.sock\n");
  GlobalFlags flags;
  flags.config_file = path;
  auto e = resolve(flags);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->runtime_endpoint, "unix:///named.sock");

  env_["CRI_CONFIG_FILE"] = path;
  e = resolve({});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->runtime_endpoint, "unix:///named.sock");

  flags.config_file = dir_ + "/missing.yaml";
  e = resolve(flags);
  ASSERT_FALSE(e.ok());
  EXPECT_TRUE(absl::IsNotFound(e.status())) << e.status();
  EXPECT_THAT(std::string(e.status().message()), HasSubstr("missing.yaml"));
}

TEST_F(ResolveTest, BadConfigAndTimeoutsAreClearErrors) {
  GlobalFlags flags;
  flags.config_file = writeConfig("timeout: soon\n");
  auto e = resolve(flags);
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(std::string(e.status().message()), HasSubstr("\"timeout\" must be a number"));
  EXPECT_THAT(std::string(e.status().message()), HasSubstr("crictl.yaml"));

  flags.config_file = writeConfig("runtime-endpoint: [a\n");
  e = resolve(flags);
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(std::string(e.status().message()), HasSubstr("line"));

  GlobalFlags zero;
  zero.timeout_seconds = 0;
  e = resolve(zero);
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(std::string(e.status().message()), HasSubstr("--timeout"));
}

TEST(GrpcTarget, CrictlEndpointForms) {
  EXPECT_EQ(*grpcTarget("unix:///run/berth/berth.sock"), "unix:///run/berth/berth.sock");
  EXPECT_EQ(*grpcTarget("/run/berth/berth.sock"), "unix:///run/berth/berth.sock");
  EXPECT_EQ(*grpcTarget("tcp://127.0.0.1:1234"), "127.0.0.1:1234");
  auto bad = grpcTarget("npipe:////./pipe/containerd");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("unix:///path/to/socket"));
  EXPECT_EQ(unixSocketPath("unix:///a/b"), "/a/b");
  EXPECT_EQ(unixSocketPath("/a/b"), "/a/b");
  EXPECT_EQ(unixSocketPath("tcp://h:1"), "");
}

TEST(RpcError, UnimplementedNamesTheRpcAndEndpoint) {
  Status st = rpcError(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "unknown method"),
                       "RunPodSandbox", "unix:///x.sock", "--runtime-endpoint",
                       std::chrono::seconds(2));
  EXPECT_EQ(st.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(st.message()),
              HasSubstr("the runtime at unix:///x.sock does not implement RunPodSandbox yet"));
}

TEST(RpcError, UnavailableProbesTheSocket) {
  char tmpl[] = "/tmp/berthctl-probe-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  grpc::Status unavailable(grpc::StatusCode::UNAVAILABLE, "failed to connect");
  Status missing = rpcError(unavailable, "Version", "unix://" + dir + "/no.sock",
                            "--runtime-endpoint", std::chrono::seconds(2));
  EXPECT_EQ(std::string(missing.message()),
            "connect to unix://" + dir + "/no.sock: No such file or directory; is berthd "
            "running? (set --runtime-endpoint or /etc/crictl.yaml)");

  // A socket file nobody listens on: connection refused.
  std::string path = dir + "/dead.sock";
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  Status refused = rpcError(unavailable, "ListImages", path, "--image-endpoint",
                            std::chrono::seconds(2));
  EXPECT_THAT(std::string(refused.message()),
              HasSubstr("connect to " + path + ": Connection refused; is berthd running? "
                        "(set --image-endpoint"));
  (void)fs::removeAll(dir);
}

TEST(RpcError, DeadlineAndOtherCodes) {
  Status late = rpcError(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "Deadline Exceeded"),
                         "ListImages", "unix:///x.sock", "--image-endpoint",
                         std::chrono::seconds(2));
  EXPECT_EQ(late.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(late.message()), HasSubstr("no answer within 2s"));
  EXPECT_THAT(std::string(late.message()), HasSubstr("--timeout"));
  Status nf = rpcError(grpc::Status(grpc::StatusCode::NOT_FOUND, "pod \"x\" not found"),
                       "StopPodSandbox", "unix:///x.sock", "--runtime-endpoint",
                       std::chrono::seconds(2));
  EXPECT_EQ(nf.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(std::string(nf.message()), "StopPodSandbox failed (NOT_FOUND): pod \"x\" not found");
}

}  // namespace
}  // namespace berth::ctl
