#include "cni/conflist.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/cni/cni_test_util.h"

namespace berth::cni {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TempDir;
using testing::writeFile;

constexpr char kList[] = R"({
  "cniVersion": "1.0.0", "name": "podnet", "disableCheck": true,
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "ipam": {"type": "host-local"}},
    {"type": "portmap", "capabilities": {"portMappings": true, "ips": false}}
  ]})";

TEST(ConfList, ParsesListWithCapabilities) {
  auto list = parseConfList(kList, "test.conflist", true);
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->cni_version, "1.0.0");
  EXPECT_EQ(list->name, "podnet");
  EXPECT_TRUE(list->disable_check);
  EXPECT_FALSE(list->disable_gc);
  ASSERT_EQ(list->plugins.size(), 2u);
  EXPECT_EQ(list->plugins[0].type, "bridge");
  EXPECT_EQ(list->plugins[0].raw["bridge"], "cni0");
  EXPECT_FALSE(list->plugins[0].wants("portMappings"));
  EXPECT_TRUE(list->plugins[1].wants("portMappings"));
  EXPECT_FALSE(list->plugins[1].wants("ips"));
  EXPECT_EQ(list->source, "test.conflist");
}

TEST(ConfList, DisableCheckAcceptsStrings) {
  auto list = parseConfList(
      R"({"cniVersion":"0.4.0","name":"n","disableCheck":"true","disableGC":"false",
          "plugins":[{"type":"x"}]})", "f", true);
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_TRUE(list->disable_check);
  auto bad = parseConfList(
      R"({"cniVersion":"0.4.0","name":"n","disableCheck":"yes","plugins":[{"type":"x"}]})", "f", true);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("\"disableCheck\" must be true or false"));
}

TEST(ConfList, WrapsSinglePluginConf) {
  auto list = parseConfList(
      R"({"cniVersion":"0.3.1","name":"single","type":"bridge","isGateway":true})", "10.conf", false);
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->plugins.size(), 1u);
  EXPECT_EQ(list->plugins[0].type, "bridge");
  EXPECT_TRUE(list->plugins[0].raw["isGateway"].get<bool>());
  EXPECT_FALSE(list->plugins[0].raw.contains("name"));
  // The cached bytes are the list form, which parses back as a list.
  auto again = parseConfList(list->bytes, "cached", true);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->plugins[0].type, "bridge");
  EXPECT_EQ(again->cni_version, "0.3.1");
}

TEST(ConfList, PicksHighestSupportedFromCniVersions) {
  auto list = parseConfList(
      R"({"cniVersion":"1.0.0","cniVersions":["0.4.0","1.1.0","9.9.9"],"name":"n",
          "plugins":[{"type":"x"}]})", "f", true);
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->cni_version, "1.1.0");
}

struct BadCase {
  const char* doc;
  const char* want;
};

TEST(ConfList, ValidationErrorsNameFileAndKey) {
  const BadCase cases[] = {
      {R"({"name":"n","plugins":[{"type":"x"}]})", "\"cniVersion\" is required"},
      {R"({"cniVersion":"2.0.0","name":"n","plugins":[{"type":"x"}]})",
       "\"cniVersion\" \"2.0.0\" is not supported"},
      {R"({"cniVersion":"1.0.0","plugins":[{"type":"x"}]})", "\"name\" is required"},
      {R"({"cniVersion":"1.0.0","name":"-bad name","plugins":[{"type":"x"}]})",
       "\"name\" \"-bad name\" is invalid"},
      {R"({"cniVersion":"1.0.0","name":"n","plugins":[]})", "\"plugins\" must be a non-empty array"},
      {R"({"cniVersion":"1.0.0","name":"n"})", "\"plugins\" must be a non-empty array"},
      {R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"x"},{"bridge":"b"}]})",
       "\"plugins[1].type\" is required"},
      {R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"../bin/sh"}]})",
       "\"plugins[0].type\" \"../bin/sh\" must be a plain binary name"},
      {R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"x","capabilities":{"ips":1}}]})",
       "\"plugins[0].capabilities.ips\" must be a boolean"},
      {R"({"cniVersion":"1.0.0","name":"n","plugins":["x"]})", "\"plugins[0]\" must be an object"},
  };
  for (const BadCase& c : cases) {
    auto list = parseConfList(c.doc, "/etc/cni/net.d/10-bad.conflist", true);
    ASSERT_FALSE(list.ok()) << c.doc;
    EXPECT_EQ(list.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(list.status().message(), HasSubstr("/etc/cni/net.d/10-bad.conflist")) << c.doc;
    EXPECT_THAT(list.status().message(), HasSubstr(c.want)) << c.doc;
  }
  auto garbage = parseConfList("{not json", "/x/99.conflist", true);
  ASSERT_FALSE(garbage.ok());
  EXPECT_THAT(garbage.status().message(), HasSubstr("/x/99.conflist"));
}

TEST(ConfList, LoadsLexicallyFirstFile) {
  TempDir dir;
  writeFile(dir.sub("20-second.conflist"),
            R"({"cniVersion":"1.0.0","name":"second","plugins":[{"type":"x"}]})");
  writeFile(dir.sub("10-first.conf"), R"({"cniVersion":"1.0.0","name":"first","type":"y"})");
  writeFile(dir.sub("05-ignored.txt"), "junk");
  writeFile(dir.sub("30-list-in-json.json"),
            R"({"cniVersion":"1.0.0","name":"third","plugins":[{"type":"z"}]})");
  auto files = confFiles(dir.path());
  ASSERT_TRUE(files.ok());
  EXPECT_THAT(*files, ElementsAre(dir.sub("10-first.conf"), dir.sub("20-second.conflist"),
                                  dir.sub("30-list-in-json.json")));
  auto list = loadFirstConfList(dir.path());
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->name, "first");
  EXPECT_EQ(list->plugins[0].type, "y");
  auto third = loadConfFile(dir.sub("30-list-in-json.json"));
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(third->plugins[0].type, "z");
}

TEST(ConfList, EmptyOrMissingDirIsNotFound) {
  TempDir dir;
  auto none = loadFirstConfList(dir.path());
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(none.status().message(), "no network config found in " + dir.path());
  auto missing = loadFirstConfList(dir.sub("nope"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace berth::cni
