// The berthctl binary against an in-process fake CRI server on a temp unix socket: the
// requests each command builds, what it prints, its exit code, and its message when
// the server answers UNIMPLEMENTED (the default of every RPC the fake does not
// override).
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mutex>

#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "cri/proto/api.grpc.pb.h"

namespace berth::ctl {
namespace {

namespace v1 = runtime::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr int64_t kSecond = 1000000000;

int64_t now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Records requests; answers a few RPCs, leaves the rest UNIMPLEMENTED.
class FakeRuntime final : public v1::RuntimeService::Service {
 public:
  grpc::Status Version(grpc::ServerContext*, const v1::VersionRequest*,
                       v1::VersionResponse* resp) override {
    resp->set_version("0.1.0");
    resp->set_runtime_name("fake");
    resp->set_runtime_version("9.9");
    resp->set_runtime_api_version("v1");
    return grpc::Status::OK;
  }
  grpc::Status RunPodSandbox(grpc::ServerContext*, const v1::RunPodSandboxRequest* req,
                             v1::RunPodSandboxResponse* resp) override {
    std::lock_guard<std::mutex> l(mu);
    run_pod = *req;
    resp->set_pod_sandbox_id("pod0123456789abcdef");
    return grpc::Status::OK;
  }
  grpc::Status CreateContainer(grpc::ServerContext*, const v1::CreateContainerRequest* req,
                               v1::CreateContainerResponse* resp) override {
    std::lock_guard<std::mutex> l(mu);
    create = *req;
    resp->set_container_id("ctr0123456789abcdef");
    return grpc::Status::OK;
  }
  grpc::Status StopContainer(grpc::ServerContext*, const v1::StopContainerRequest* req,
                             v1::StopContainerResponse*) override {
    std::lock_guard<std::mutex> l(mu);
    stops.push_back(*req);
    return grpc::Status::OK;
  }
  grpc::Status ListPodSandbox(grpc::ServerContext*, const v1::ListPodSandboxRequest* req,
                              v1::ListPodSandboxResponse* resp) override {
    std::lock_guard<std::mutex> l(mu);
    list_pods = *req;
    int64_t t = now();
    auto add = [&](const char* id, const char* name, const char* ns, int64_t age) {
      v1::PodSandbox* p = resp->add_items();
      p->set_id(id);
      p->mutable_metadata()->set_name(name);
      p->mutable_metadata()->set_namespace_(ns);
      p->mutable_metadata()->set_attempt(1);
      p->set_state(v1::SANDBOX_READY);
      p->set_created_at(t - age);
    };
    add("aaaaaaaaaaaaaaaaaaaa", "web", "default", 3600 * kSecond);
    add("bbbbbbbbbbbbbbbbbbbb", "db", "prod", 30 * kSecond);
    return grpc::Status::OK;
  }
  grpc::Status ListContainers(grpc::ServerContext*, const v1::ListContainersRequest* req,
                              v1::ListContainersResponse* resp) override {
    std::lock_guard<std::mutex> l(mu);
    list_containers = *req;
    v1::Container* c = resp->add_containers();
    c->set_id("cccccccccccccccccccc");
    c->set_pod_sandbox_id("aaaaaaaaaaaaaaaaaaaa");
    c->mutable_metadata()->set_name("server");
    c->mutable_image()->set_image("busybox:1.36");
    c->set_state(v1::CONTAINER_RUNNING);
    c->set_created_at(now() - 5 * kSecond);
    (*c->mutable_labels())["io.kubernetes.pod.name"] = "web";
    return grpc::Status::OK;
  }
  grpc::Status ContainerStatus(grpc::ServerContext*, const v1::ContainerStatusRequest* req,
                               v1::ContainerStatusResponse* resp) override {
    resp->mutable_status()->set_id(req->container_id());
    resp->mutable_status()->set_state(v1::CONTAINER_EXITED);
    resp->mutable_status()->set_log_path(log_path);
    if (req->verbose()) (*resp->mutable_info())["info"] = R"({"pid":42})";
    return grpc::Status::OK;
  }
  grpc::Status ExecSync(grpc::ServerContext*, const v1::ExecSyncRequest* req,
                        v1::ExecSyncResponse* resp) override {
    std::lock_guard<std::mutex> l(mu);
    exec = *req;
    resp->set_stdout("out-text\n");
    resp->set_stderr("err-text\n");
    resp->set_exit_code(3);
    return grpc::Status::OK;
  }

  std::mutex mu;
  std::string log_path;
  v1::RunPodSandboxRequest run_pod;
  v1::CreateContainerRequest create;
  std::vector<v1::StopContainerRequest> stops;
  v1::ListPodSandboxRequest list_pods;
  v1::ListContainersRequest list_containers;
  v1::ExecSyncRequest exec;
};

class FakeImages final : public v1::ImageService::Service {
 public:
  grpc::Status PullImage(grpc::ServerContext*, const v1::PullImageRequest* req,
                         v1::PullImageResponse* resp) override {
    std::lock_guard<std::mutex> l(mu);
    pull = *req;
    resp->set_image_ref("sha256:0123456789abcdef0123456789abcdef");
    return grpc::Status::OK;
  }
  grpc::Status ListImages(grpc::ServerContext*, const v1::ListImagesRequest*,
                          v1::ListImagesResponse* resp) override {
    v1::Image* i = resp->add_images();
    i->set_id("sha256:0123456789abcdef0123456789abcdef");
    i->add_repo_tags("127.0.0.1:5000/library/busybox:1.36");
    i->set_size(1460000);
    return grpc::Status::OK;
  }

  std::mutex mu;
  v1::PullImageRequest pull;
};

struct Result {
  int exit_code = -1;
  std::string out, err;
};

class CommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berthctl-unit-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    socket_ = dir_ + "/cri.sock";
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix://" + socket_, grpc::InsecureServerCredentials());
    builder.RegisterService(&runtime_);
    builder.RegisterService(&images_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_TRUE(fs::writeFileAtomic(dir_ + "/empty-crictl.yaml", "").ok());
    ASSERT_TRUE(fs::writeFileAtomic(dir_ + "/pod.json", R"({
      "metadata": {"name": "nginx-sandbox", "namespace": "default", "attempt": 1,
                   "uid": "hdishd83djaidwnduwk28bcsb"},
      "log_directory": "/tmp", "linux": {}})").ok());
    ASSERT_TRUE(fs::writeFileAtomic(dir_ + "/ctr.yaml",
                              "metadata:\n  name: busybox\nimage:\n  image: busybox\n"
                              "command:\n- top\nlog_path: busybox.0.log\nlinux: {}\n").ok());
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    (void)fs::removeAll(dir_);
  }

  // Runs berthctl with `args` (after -r <socket> unless `endpoint` is false) and `env`.
  Result run(std::vector<std::string> args, bool endpoint = true,
             std::vector<std::string> env = {}) {
    std::vector<std::string> argv = {BERTHCTL_BINARY};
    if (endpoint) argv.insert(argv.end(), {"-r", "unix://" + socket_});
    argv.insert(argv.end(), args.begin(), args.end());
    std::string out = dir_ + "/stdout", err = dir_ + "/stderr";
    pid_t pid = ::fork();
    if (pid == 0) {
      int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(o, 1);
      ::dup2(e, 2);
      ::unsetenv("CONTAINER_RUNTIME_ENDPOINT");
      ::unsetenv("IMAGE_SERVICE_ENDPOINT");
      // An empty config file: the host's /etc/crictl.yaml must not leak in.
      ::setenv("CRI_CONFIG_FILE", (dir_ + "/empty-crictl.yaml").c_str(), 1);
      for (const std::string& kv : env) ::putenv(const_cast<char*>(kv.c_str()));
      std::vector<char*> cargv;
      for (auto& a : argv) cargv.push_back(a.data());
      cargv.push_back(nullptr);
      ::execv(cargv[0], cargv.data());
      ::_exit(127);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    Result r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = fs::readFile(out).value_or("");
    r.err = fs::readFile(err).value_or("");
    return r;
  }

  std::string dir_, socket_;
  FakeRuntime runtime_;
  FakeImages images_;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(CommandsTest, RunpSendsTheCrictlPodConfigAndPrintsTheId) {
  Result r = run({"runp", "--runtime", "kata", dir_ + "/pod.json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "pod0123456789abcdef\n");
  std::lock_guard<std::mutex> l(runtime_.mu);
  EXPECT_EQ(runtime_.run_pod.runtime_handler(), "kata");
  EXPECT_EQ(runtime_.run_pod.config().metadata().name(), "nginx-sandbox");
  EXPECT_EQ(runtime_.run_pod.config().metadata().uid(), "hdishd83djaidwnduwk28bcsb");
  EXPECT_EQ(runtime_.run_pod.config().metadata().attempt(), 1u);
  EXPECT_EQ(runtime_.run_pod.config().log_directory(), "/tmp");
  EXPECT_TRUE(runtime_.run_pod.config().has_linux());
}

TEST_F(CommandsTest, CreateSendsPodIdContainerConfigAndSandboxConfig) {
  Result r = run({"create", "pod0123", dir_ + "/ctr.yaml", dir_ + "/pod.json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "ctr0123456789abcdef\n");
  std::lock_guard<std::mutex> l(runtime_.mu);
  EXPECT_EQ(runtime_.create.pod_sandbox_id(), "pod0123");
  EXPECT_EQ(runtime_.create.config().metadata().name(), "busybox");
  EXPECT_EQ(runtime_.create.config().image().image(), "busybox");
  EXPECT_THAT(runtime_.create.config().command(), ElementsAre("top"));
  EXPECT_EQ(runtime_.create.config().log_path(), "busybox.0.log");
  EXPECT_EQ(runtime_.create.sandbox_config().metadata().namespace_(), "default");
}

TEST_F(CommandsTest, BadConfigFileFailsBeforeAnyCall) {
  ASSERT_TRUE(fs::writeFileAtomic(dir_ + "/bad.json", R"({"metadata": {"name": "x",
      "namespace": "y"}, "log_dir": "/tmp"})").ok());
  Result r = run({"runp", dir_ + "/bad.json"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("bad.json"));
  EXPECT_THAT(r.err, HasSubstr("log_dir"));
  Result missing = run({"runp", dir_ + "/nope.json"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("not found"));
}

TEST_F(CommandsTest, UnimplementedRpcsSayWhichAndExitOne) {
  Result r = run({"start", "ctr0123"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("does not implement StartContainer yet"));
  EXPECT_THAT(r.err, HasSubstr("unix://" + socket_));
  Result p = run({"stopp", "pod0123"});
  EXPECT_EQ(p.exit_code, 1);
  EXPECT_THAT(p.err, HasSubstr("does not implement StopPodSandbox yet"));
}

TEST_F(CommandsTest, StopPassesTheGracePeriod) {
  Result r = run({"stop", "-t", "7", "ctr1", "ctr2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "ctr1\nctr2\n");
  std::lock_guard<std::mutex> l(runtime_.mu);
  ASSERT_EQ(runtime_.stops.size(), 2u);
  EXPECT_EQ(runtime_.stops[0].container_id(), "ctr1");
  EXPECT_EQ(runtime_.stops[0].timeout(), 7);
}

TEST_F(CommandsTest, PsFiltersRunningByDefaultAndPrintsCrictlColumns) {
  Result r = run({"ps", "--label", "app=web", "-p", "aaaa"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  {
    std::lock_guard<std::mutex> l(runtime_.mu);
    EXPECT_EQ(runtime_.list_containers.filter().state().state(), v1::CONTAINER_RUNNING);
    EXPECT_EQ(runtime_.list_containers.filter().pod_sandbox_id(), "aaaa");
    EXPECT_EQ(runtime_.list_containers.filter().label_selector().at("app"), "web");
  }
  std::vector<std::string> lines = split(r.out, '\n', true);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  EXPECT_EQ(lines[0],
            "CONTAINER           IMAGE               CREATED             STATE               "
            "NAME                ATTEMPT             POD ID              POD");
  EXPECT_THAT(lines[1], HasSubstr("ccccccccccccc       busybox:1.36        5 seconds ago"));
  EXPECT_THAT(lines[1], HasSubstr("Running             server              0"));
  EXPECT_THAT(lines[1], HasSubstr("aaaaaaaaaaaaa       web"));

  Result all = run({"ps", "-a", "-q"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(all.out, "cccccccccccccccccccc\n");
  std::lock_guard<std::mutex> l(runtime_.mu);
  EXPECT_FALSE(runtime_.list_containers.filter().has_state());
}

TEST_F(CommandsTest, PodsNewestFirstWithRegexFilters) {
  Result r = run({"pods"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = split(r.out, '\n', true);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_EQ(lines[0], "POD ID              CREATED             STATE               NAME"
                      "                NAMESPACE           ATTEMPT             RUNTIME");
  EXPECT_EQ(lines[1], "bbbbbbbbbbbbb       30 seconds ago      Ready               db"
                      "                  prod                1                   (default)");
  EXPECT_THAT(lines[2], HasSubstr("About an hour ago"));

  Result q = run({"pods", "-q", "--namespace", "^def", "--state", "ready"});
  ASSERT_EQ(q.exit_code, 0) << q.err;
  EXPECT_EQ(q.out, "aaaaaaaaaaaaaaaaaaaa\n");
  std::lock_guard<std::mutex> l(runtime_.mu);
  EXPECT_EQ(runtime_.list_pods.filter().state().state(), v1::SANDBOX_READY);
}

TEST_F(CommandsTest, ExecSyncPrintsBothStreamsAndExitsWithTheCommandsCode) {
  Result r = run({"exec", "--timeout", "9", "ctr1", "sh", "-c", "echo hi; exit 3"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "out-text\n");
  EXPECT_EQ(r.err, "err-text\n");
  std::lock_guard<std::mutex> l(runtime_.mu);
  EXPECT_EQ(runtime_.exec.container_id(), "ctr1");
  EXPECT_THAT(runtime_.exec.cmd(), ElementsAre("sh", "-c", "echo hi; exit 3"));
  EXPECT_EQ(runtime_.exec.timeout(), 9);
}

TEST_F(CommandsTest, LogsReadsTheLogPathFromContainerStatus) {
  runtime_.log_path = dir_ + "/ctr.log";
  ASSERT_TRUE(fs::writeFileAtomic(runtime_.log_path,
                            "2024-05-01T10:00:00.000000001Z stdout F one\n"
                            "2024-05-01T10:00:01.5Z stderr F oops\n"
                            "2024-05-01T10:00:02Z stdout P thr\n"
                            "2024-05-01T10:00:02.1Z stdout F ee\n").ok());
  Result r = run({"logs", "ctr1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "one\nthree\n");
  EXPECT_EQ(r.err, "oops\n");
  Result t = run({"logs", "--tail", "1", "-t", "ctr1"});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_EQ(t.out, "2024-05-01T10:00:02.1Z ee\n");
  Result s = run({"logs", "--since", "2024-05-01T10:00:01Z", "ctr1"});
  EXPECT_EQ(s.out, "three\n");
  // -f stops once the container is not running (the fake says exited).
  Result f = run({"logs", "-f", "ctr1"});
  EXPECT_EQ(f.exit_code, 0) << f.err;
  EXPECT_EQ(f.out, "one\nthree\n");
}

TEST_F(CommandsTest, InspectEmbedsVerboseInfoAsJson) {
  Result r = run({"inspect", "ctr1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto json = nlohmann::json::parse(r.out);
  EXPECT_EQ(json["status"]["id"], "ctr1");
  EXPECT_EQ(json["status"]["state"], "CONTAINER_EXITED");
  EXPECT_EQ(json["status"]["exitCode"], 0);
  EXPECT_EQ(json["info"]["info"]["pid"], 42);
  Result y = run({"inspect", "-o", "yaml", "ctr1"});
  ASSERT_EQ(y.exit_code, 0) << y.err;
  EXPECT_THAT(y.out, HasSubstr("state: CONTAINER_EXITED"));
  EXPECT_THAT(y.out, HasSubstr("pid: 42"));
}

TEST_F(CommandsTest, PullSendsCredentialsAndAnnotations) {
  Result r = run({"pull", "--creds", "alice:s3cr:et", "-a", "k=v", "busybox"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Image is up to date for sha256:0123456789abcdef0123456789abcdef\n");
  std::lock_guard<std::mutex> l(images_.mu);
  EXPECT_EQ(images_.pull.image().image(), "busybox");
  EXPECT_EQ(images_.pull.auth().username(), "alice");
  EXPECT_EQ(images_.pull.auth().password(), "s3cr:et");
  EXPECT_EQ(images_.pull.image().annotations().at("k"), "v");
}

TEST_F(CommandsTest, ImagesTableQuietJsonAndYaml) {
  Result t = run({"images"});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_EQ(t.out,
            "IMAGE                            TAG                 IMAGE ID            SIZE\n"
            "127.0.0.1:5000/library/busybox   1.36                0123456789abc       1.46MB\n");
  Result q = run({"images", "-q"});
  EXPECT_EQ(q.out, "sha256:0123456789abcdef0123456789abcdef\n");
  Result j = run({"images", "-o", "json"});
  auto json = nlohmann::json::parse(j.out);
  EXPECT_EQ(json["images"][0]["repoTags"][0], "127.0.0.1:5000/library/busybox:1.36");
  EXPECT_EQ(json["images"][0]["size"], "1460000");  // 64-bit as a string, as protojson
  EXPECT_EQ(json["images"][0]["pinned"], false);    // defaults printed
  Result y = run({"images", "-o", "yaml"});
  EXPECT_THAT(y.out, HasSubstr("size: \"1460000\""));
}

TEST_F(CommandsTest, EndpointFromEnvironmentAndConfigFile) {
  std::string env = "CONTAINER_RUNTIME_ENDPOINT=unix://" + socket_;
  Result r = run({"version"}, false, {env});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Version:  0.1.0\nRuntimeName:  fake\nRuntimeVersion:  9.9\n"
                   "RuntimeApiVersion:  v1\n");
  ASSERT_TRUE(fs::writeFileAtomic(dir_ + "/crictl.yaml",
                            "runtime-endpoint: unix://" + socket_ + "\ntimeout: 5\n").ok());
  Result c = run({"--config", dir_ + "/crictl.yaml", "version", "-o", "json"}, false);
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(nlohmann::json::parse(c.out)["runtimeName"], "fake");
  // The flag wins over the environment.
  Result f = run({"-r", dir_ + "/nothing.sock", "version"}, false, {env});
  EXPECT_EQ(f.exit_code, 1);
  EXPECT_THAT(f.err, HasSubstr("connect to " + dir_ + "/nothing.sock: No such file or "
                               "directory; is berthd running? (set --runtime-endpoint or "
                               "/etc/crictl.yaml)"));
}

TEST_F(CommandsTest, ExecInteractiveIsRefusedClearly) {
  Result r = run({"exec", "-it", "ctr1", "sh"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("ExecSync"));
  std::lock_guard<std::mutex> l(runtime_.mu);
  EXPECT_TRUE(runtime_.exec.container_id().empty()) << "no call was made";
}

}  // namespace
}  // namespace berth::ctl
