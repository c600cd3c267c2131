// berth-shim protocol: request/reply/event encoding, error codes, typed messages.
#include "runtime/shim/protocol.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runtime/shim/pod_namespaces.h"

namespace berth::shim {
namespace {

using ::testing::HasSubstr;

TEST(ShimProtocol, RequestRoundTrip) {
  Request r;
  r.id = 42;
  r.method = "state";
  r.params = {{"id", "c1"}};
  std::string line = encodeRequest(r);
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line per message";
  auto back = decodeRequest(std::string_view(line).substr(0, line.size() - 1));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->id, 42u);
  EXPECT_EQ(back->method, "state");
  EXPECT_EQ(back->params["id"], "c1");
}

TEST(ShimProtocol, MalformedRequestsAreInvalidArgument) {
  for (const char* bad : {"", "nope", "[]", "{\"method\":\"x\"}", "{\"id\":-1,\"method\":\"x\"}",
                          "{\"id\":1}", "{\"id\":1,\"method\":7}",
                          "{\"id\":1,\"method\":\"x\",\"params\":[1]}"}) {
    auto r = decodeRequest(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  auto ok = decodeRequest("{\"id\":1,\"method\":\"ping\"}");
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(ok->params.is_object());
}

TEST(ShimProtocol, ErrorsKeepTheirCodeAcrossTheWire) {
  for (auto code : {absl::StatusCode::kNotFound, absl::StatusCode::kFailedPrecondition,
                    absl::StatusCode::kInvalidArgument, absl::StatusCode::kAlreadyExists,
                    absl::StatusCode::kDeadlineExceeded, absl::StatusCode::kInternal,
                    absl::StatusCode::kUnimplemented}) {
    std::string line = encodeResponse(7, Status(code, "container \"x\" is gone"));
    auto in = decodeIncoming(std::string_view(line).substr(0, line.size() - 1));
    ASSERT_TRUE(in.ok()) << in.status();
    EXPECT_FALSE(in->is_event);
    EXPECT_EQ(in->response.id, 7u);
    EXPECT_EQ(in->response.status.code(), code);
    EXPECT_EQ(in->response.status.message(), "container \"x\" is gone");
  }
  EXPECT_EQ(codeName(absl::StatusCode::kNotFound), "NotFound");
  EXPECT_EQ(codeFromName("FailedPrecondition"), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(codeFromName("Bogus"), absl::StatusCode::kUnknown);
}

TEST(ShimProtocol, ResultsAndEvents) {
  std::string line = encodeResponse(3, Json{{"subscribed", true}});
  auto in = decodeIncoming(line.substr(0, line.size() - 1));
  ASSERT_TRUE(in.ok());
  EXPECT_TRUE(in->response.status.ok());
  EXPECT_EQ(in->response.result["subscribed"], true);

  line = encodeEvent({{"type", "exit"}, {"container_id", "c"}});
  in = decodeIncoming(line.substr(0, line.size() - 1));
  ASSERT_TRUE(in.ok());
  EXPECT_TRUE(in->is_event);
  EXPECT_EQ(in->event["container_id"], "c");

  EXPECT_FALSE(decodeIncoming("{\"id\":1}").ok());
  EXPECT_FALSE(decodeIncoming("{\"id\":1,\"error\":{}}").ok());
}

TEST(ShimProtocol, InvalidUtf8DoesNotThrow) {
  Request r;
  r.id = 1;
  r.method = "x";
  r.params = {{"s", std::string("\xff\xfe", 2)}};
  EXPECT_NO_THROW((void)encodeRequest(r));
}

TEST(ShimProtocol, ContainerStateRoundTrip) {
  ContainerState s;
  s.id = "web";
  s.status = ContainerStatus::kExited;
  s.pid = 1234;
  s.exit_code = 137;
  s.created_at_ns = 1475713029669794202;
  s.started_at_ns = 1475713029769794202;
  s.finished_at_ns = 1475713030000000001;
  s.reason = "OOMKilled";
  s.oom_killed = true;
  s.oom_note = "";
  s.log_path = "/var/log/pods/x/web/0.log";
  Json j = toJson(s);
  EXPECT_EQ(j["status"], "exited");
  EXPECT_EQ(j["finished_at"], "2016-10-06T00:17:10.000000001Z");
  auto back = containerStateFromJson(j);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->status, ContainerStatus::kExited);
  EXPECT_EQ(back->exit_code, 137);
  EXPECT_EQ(back->started_at_ns, s.started_at_ns);
  EXPECT_EQ(back->reason, "OOMKilled");
  EXPECT_TRUE(back->oom_killed);
  EXPECT_EQ(back->log_path, s.log_path);
}

TEST(ShimProtocol, SpecsValidateTheirFields) {
  auto c = containerSpecFromJson({{"id", "a"}, {"bundle", "/b"}, {"tty", true}});
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->tty);
  auto missing = containerSpecFromJson({{"id", "a"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("\"bundle\""));
  auto wrong = containerSpecFromJson({{"id", "a"}, {"bundle", "/b"}, {"tty", "yes"}});
  ASSERT_FALSE(wrong.ok());
  EXPECT_THAT(std::string(wrong.status().message()), HasSubstr("\"tty\" must be true or false"));

  auto sb = sandboxSpecFromJson({{"ns_dir", "/run/berth/ns/p"},
                                 {"hostname", "h"},
                                 {"share_pid", true},
                                 {"sysctls", {{"net.ipv4.ip_forward", "1"}}}});
  ASSERT_TRUE(sb.ok()) << sb.status();
  EXPECT_FALSE(sb->host_uts) << "absent host_uts means a new UTS namespace";
  EXPECT_EQ(sb->sysctls.at("net.ipv4.ip_forward"), "1");
  EXPECT_FALSE(sandboxSpecFromJson({{"ns_dir", "/x"}, {"sysctls", {{"a", 1}}}}).ok());

  auto e = execSpecFromJson({{"id", "a"}, {"argv", Json::array()}});
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(std::string(e.status().message()), HasSubstr("argv"));
  ExecResult r;
  r.stdout_data = std::string("bin\0ary\xff", 8);
  r.exit_code = 3;
  r.timed_out = true;
  auto rb = execResultFromJson(Json::parse(dumpJson(toJson(r))));
  ASSERT_TRUE(rb.ok());
  EXPECT_EQ(rb->stdout_data, r.stdout_data);
  EXPECT_EQ(rb->exit_code, 3);
  EXPECT_TRUE(rb->timed_out);
}

TEST(PodNamespaces, OnlyNamespacedSysctlsAreAccepted) {
  SandboxSpec pod;
  EXPECT_TRUE(checkSysctl("net.ipv4.ip_unprivileged_port_start", pod).ok());
  EXPECT_TRUE(checkSysctl("kernel.shmmax", pod).ok());
  EXPECT_TRUE(checkSysctl("fs.mqueue.msg_max", pod).ok());
  Status st = checkSysctl("kernel.panic", pod);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("not namespaced"));
  EXPECT_FALSE(checkSysctl("../../etc/passwd", pod).ok());
  SandboxSpec host;
  host.host_network = true;
  host.host_ipc = true;
  EXPECT_THAT(std::string(checkSysctl("net.ipv4.ip_forward", host).message()),
              HasSubstr("host network"));
  EXPECT_FALSE(checkSysctl("kernel.msgmax", host).ok());
}

}  // namespace
}  // namespace berth::shim

namespace berth::shim {
namespace {

TEST(ShimProtocolExecStream, SpecAndReplyRoundTripAndBadSpecsNameTheField) {
  ExecStreamSpec s;
  s.id = "c1";
  s.argv = {"sh", "-i"};
  s.env = {"TERM=xterm"};
  s.tty = true;
  s.attach_stdin = true;
  auto back = execStreamSpecFromJson(toJson(s));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->argv, s.argv);
  EXPECT_EQ(back->env, s.env);
  EXPECT_TRUE(back->tty);
  EXPECT_TRUE(back->attach_stdin);
  EXPECT_TRUE(back->attach_stdout);

  ExecStreamReply r;
  r.exec_id = 7;
  r.fds = {"stdin", "stdout"};
  auto rb = execStreamReplyFromJson(toJson(r));
  ASSERT_TRUE(rb.ok()) << rb.status();
  EXPECT_EQ(rb->exec_id, 7u);
  EXPECT_EQ(rb->fds, r.fds);

  Json no_argv = toJson(s);
  no_argv["argv"] = Json::array();
  EXPECT_THAT(std::string(execStreamSpecFromJson(no_argv).status().message()), ::testing::HasSubstr("argv"));
  Json nothing = {{"id", "c1"}, {"argv", {"true"}}, {"tty", false}, {"stdin", false}, {"stdout", false},
                  {"stderr", false}};
  EXPECT_EQ(execStreamSpecFromJson(nothing).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(execStreamSpecFromJson({{"argv", {"true"}}}).ok()) << "id is required";
}

}  // namespace
}  // namespace berth::shim
