// berthctl output: crictl's JSON (protojson names and defaults), YAML from that JSON,
// and the table layouts of images, pods, ps, stats.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ctl/output.h"

namespace berth::ctl {
namespace {

namespace v1 = runtime::v1;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr int64_t kSecond = 1000000000;

TEST(Output, ParseOutputFormat) {
  EXPECT_EQ(*parseOutputFormat("json"), OutputFormat::kJson);
  EXPECT_EQ(*parseOutputFormat("yaml"), OutputFormat::kYaml);
  EXPECT_EQ(*parseOutputFormat("table"), OutputFormat::kTable);
  EXPECT_EQ(*parseOutputFormat("", OutputFormat::kJson), OutputFormat::kJson);
  auto bad = parseOutputFormat("xml");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("use json, yaml or table"));
}

TEST(Output, JsonUsesProtojsonNamesPrintsDefaultsAndKeepsProtoOrder) {
  v1::Image image;
  image.set_id("sha256:abc");
  image.add_repo_tags("docker.io/library/busybox:1.36");
  image.set_size(1234);
  image.mutable_uid()->set_value(1000);
  auto json = messageToJson(image);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(renderJson(*json),
            "{\n"
            "  \"id\": \"sha256:abc\",\n"
            "  \"repoTags\": [\n    \"docker.io/library/busybox:1.36\"\n  ],\n"
            "  \"repoDigests\": [],\n"
            "  \"size\": \"1234\",\n"
            "  \"uid\": {\n    \"value\": \"1000\"\n  },\n"
            "  \"username\": \"\",\n"
            "  \"pinned\": false\n"
            "}");
}

TEST(Output, EnumsByNameAndMapsAsObjects) {
  v1::PodSandbox pod;
  pod.set_state(v1::SANDBOX_NOTREADY);
  (*pod.mutable_labels())["app"] = "web";
  auto json = messageToJson(pod);
  ASSERT_TRUE(json.ok());
  EXPECT_EQ((*json)["state"], "SANDBOX_NOTREADY");
  EXPECT_EQ((*json)["labels"]["app"], "web");
  EXPECT_EQ((*json)["runtimeHandler"], "");
}

TEST(Output, YamlSortsKeysAndQuotesStringsThatLookLikeOtherTypes) {
  OrderedJson value = OrderedJson::parse(R"({"size": "1234", "name": "web", "ok": true,
      "flag": "true", "empty": "", "n": 5, "list": ["a", "1.5"], "obj": {}, "none": null})");
  std::string yaml = renderYaml(value);
  EXPECT_EQ(yaml,
            "empty: \"\"\n"
            "flag: \"true\"\n"
            "list:\n  - a\n  - \"1.5\"\n"
            "\"n\": 5\n"  // "n" is a YAML 1.1 boolean word
            "name: web\n"
            "none: ~\n"
            "obj: {}\n"
            "ok: true\n"
            "size: \"1234\"");
}

TEST(Output, StatusWithInfoEmbedsJsonObjects) {
  v1::ContainerStatus status;
  status.set_id("c1");
  google::protobuf::Map<std::string, std::string> info;
  info["info"] = R"({"pid": 42, "sandboxID": "p1"})";
  info["note"] = "\"plain\"";
  info["broken"] = "{not json";
  auto out = statusWithInfo(status, info);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ((*out)["status"]["id"], "c1");
  EXPECT_EQ((*out)["info"]["info"]["pid"], 42);
  EXPECT_EQ((*out)["info"]["note"], "plain");
  EXPECT_EQ((*out)["info"]["broken"], "{not json");
  // Keys of info are sorted.
  std::vector<std::string> keys;
  for (auto& [k, v] : (*out)["info"].items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"broken", "info", "note"}));
  auto no_info = statusWithInfo(status, {});
  EXPECT_FALSE(no_info->contains("info"));
}

TEST(Output, TableColumnsAreAtLeast20WideAnd3Apart) {
  Table t({"A", "B", "C"});
  t.addRow({"a-very-long-cell-value-here", "b", "last column is not padded"});
  EXPECT_EQ(t.render(),
            "A                             B                   C\n"
            "a-very-long-cell-value-here   b                   last column is not padded\n");
}

TEST(Output, HumanSizeAndAgeAndIds) {
  EXPECT_EQ(humanSize(742), "742B");
  EXPECT_EQ(humanSize(4260), "4.26kB");
  EXPECT_EQ(humanSize(1460000), "1.46MB");
  EXPECT_EQ(humanSize(45000000), "45MB");
  EXPECT_EQ(humanSize(1500000000), "1.5GB");
  EXPECT_EQ(humanAgo(0), "Less than a second ago");
  EXPECT_EQ(humanAgo(1 * kSecond), "1 second ago");
  EXPECT_EQ(humanAgo(42 * kSecond), "42 seconds ago");
  EXPECT_EQ(humanAgo(90 * kSecond), "About a minute ago");
  EXPECT_EQ(humanAgo(10 * 60 * kSecond), "10 minutes ago");
  EXPECT_EQ(humanAgo(3600 * kSecond), "About an hour ago");
  EXPECT_EQ(humanAgo(5 * 3600 * kSecond), "5 hours ago");
  EXPECT_EQ(humanAgo(3 * 24 * 3600 * kSecond), "3 days ago");
  EXPECT_EQ(truncateId("sha256:0123456789abcdef", "sha256:"), "0123456789abc");
  EXPECT_EQ(truncateId("0123456789abcdefff"), "0123456789abc");
  EXPECT_EQ(truncateId("short"), "short");
}

TEST(Output, ImagesTableSplitsTagsAndShowsUntaggedImages) {
  v1::ListImagesResponse list;
  v1::Image* a = list.add_images();
  a->set_id("sha256:aaaaaaaaaaaaaaaaaaaaaaaa");
  a->add_repo_tags("127.0.0.1:5000/library/busybox:1.36");
  a->add_repo_tags("docker.io/library/busybox:latest");
  a->add_repo_digests("127.0.0.1:5000/library/busybox@sha256:dddddddddddddddddddd");
  a->set_size(2000000);
  v1::Image* b = list.add_images();
  b->set_id("sha256:bbbbbbbbbbbbbbbbbbbbbbbb");
  b->add_repo_digests("quay.io/x/y@sha256:eeeeeeeeeeeeeeeeeeee");
  b->set_size(500);
  v1::Image* c = list.add_images();
  c->set_id("sha256:cccccccccccccccccccccccc");
  EXPECT_EQ(imagesTable(list, false, false),
            "IMAGE                            TAG                 IMAGE ID            SIZE\n"
            "127.0.0.1:5000/library/busybox   1.36                aaaaaaaaaaaaa       2MB\n"
            "docker.io/library/busybox        latest              aaaaaaaaaaaaa       2MB\n"
            "quay.io/x/y                      <none>              bbbbbbbbbbbbb       500B\n"
            "<none>                           <none>              ccccccccccccc       0B\n");
  std::string digests = imagesTable(list, true, false);
  EXPECT_THAT(digests, HasSubstr("DIGEST"));
  EXPECT_THAT(digests, HasSubstr("1.36                ddddddddddddd       aaaaaaaaaaaaa"));
  EXPECT_THAT(imagesTable(list, false, true), HasSubstr("sha256:aaaaaaaaaaaaaaaaaaaaaaaa"));
}

TEST(Output, PodsTable) {
  v1::PodSandbox pod;
  pod.set_id("0123456789abcdef0123");
  pod.mutable_metadata()->set_name("nginx-sandbox");
  pod.mutable_metadata()->set_namespace_("default");
  pod.mutable_metadata()->set_attempt(2);
  pod.set_state(v1::SANDBOX_READY);
  pod.set_created_at(1000 * kSecond);
  pod.set_runtime_handler("runc");
  EXPECT_EQ(podsTable({pod}, 1000 * kSecond + 3 * 3600 * kSecond, false),
            "POD ID              CREATED             STATE               NAME              "
            "  NAMESPACE           ATTEMPT             RUNTIME\n"
            "0123456789abc       3 hours ago         Ready               nginx-sandbox     "
            "  default             2                   runc\n");
  EXPECT_THAT(podsTable({pod}, 1000 * kSecond, true), HasSubstr("0123456789abcdef0123"));
}

TEST(Output, ContainersTable) {
  v1::Container c;
  c.set_id("c0123456789abcdef");
  c.set_pod_sandbox_id("p0123456789abcdef");
  c.mutable_metadata()->set_name("server");
  c.mutable_image()->set_image("sha256:1111111111111111111111");
  c.set_state(v1::CONTAINER_EXITED);
  c.set_created_at(0);
  std::string table = containersTable({c}, 20 * kSecond, false);
  EXPECT_EQ(table,
            "CONTAINER           IMAGE               CREATED             STATE             "
            "  NAME                ATTEMPT             POD ID              POD\n"
            "c0123456789ab       1111111111111       20 seconds ago      Exited            "
            "  server              0                   p0123456789ab       unknown\n");
}

TEST(Output, StatsTables) {
  v1::ListContainerStatsResponse stats;
  v1::ContainerStats* s = stats.add_stats();
  s->mutable_attributes()->set_id("c0123456789abcdef");
  s->mutable_attributes()->mutable_metadata()->set_name("server");
  s->mutable_cpu()->mutable_usage_nano_cores()->set_value(250000000);  // 0.25 cores
  s->mutable_memory()->mutable_working_set_bytes()->set_value(3000000);
  s->mutable_writable_layer()->mutable_used_bytes()->set_value(4096);
  s->mutable_writable_layer()->mutable_inodes_used()->set_value(7);
  EXPECT_EQ(containerStatsTable(stats),
            "CONTAINER           NAME                CPU %               MEM               "
            "  DISK                INODES\n"
            "c0123456789ab       server              25.00               3MB               "
            "  4.1kB               7\n");
  v1::ListPodSandboxStatsResponse pods;
  v1::PodSandboxStats* p = pods.add_stats();
  p->mutable_attributes()->set_id("p0123456789abcdef");
  p->mutable_attributes()->mutable_metadata()->set_name("web");
  EXPECT_THAT(podStatsTable(pods), HasSubstr("web                 p0123456789ab       0.00"));
}

}  // namespace
}  // namespace berth::ctl
