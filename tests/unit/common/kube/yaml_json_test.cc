#include "common/kube/yaml_json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace berth::kube {
namespace {

using ::testing::HasSubstr;
using json::Json;

Json parseOk(const std::string& text) {
  StatusOr<Json> v = parseYaml(text, "test.yaml");
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? *v : Json();
}

TEST(YamlJsonTest, PlainScalarsResolveToJsonTypes) {
  Json v = parseOk(
      "port: 80\n"
      "neg: -3\n"
      "hex: 0x1F\n"
      "oct: 0o17\n"
      "leading_zero: 0644\n"
      "ratio: 1.5\n"
      "exp: 1e3\n"
      "half: .5\n"
      "on: true\n"
      "off: False\n"
      "nothing: null\n"
      "tilde: ~\n"
      "empty:\n"
      "name: web\n"
      "yes_word: yes\n"
      "version: 1.2.3\n");
  EXPECT_EQ(v["port"], 80);
  EXPECT_TRUE(v["port"].is_number_integer());
  EXPECT_EQ(v["neg"], -3);
  EXPECT_EQ(v["hex"], 31);
  EXPECT_EQ(v["oct"], 15);
  EXPECT_EQ(v["leading_zero"], 644);
  EXPECT_DOUBLE_EQ(v["ratio"].get<double>(), 1.5);
  EXPECT_TRUE(v["ratio"].is_number_float());
  EXPECT_DOUBLE_EQ(v["exp"].get<double>(), 1000.0);
  EXPECT_DOUBLE_EQ(v["half"].get<double>(), 0.5);
  EXPECT_EQ(v["on"], true);
  EXPECT_EQ(v["off"], false);
  EXPECT_TRUE(v["nothing"].is_null());
  EXPECT_TRUE(v["tilde"].is_null());
  EXPECT_TRUE(v["empty"].is_null());
  EXPECT_EQ(v["name"], "web");
  EXPECT_EQ(v["yes_word"], "yes");
  EXPECT_EQ(v["version"], "1.2.3");
}

TEST(YamlJsonTest, QuotedScalarsStayStrings) {
  Json v = parseOk(
      "a: \"80\"\n"
      "b: '80'\n"
      "c: \"true\"\n"
      "d: 'null'\n"
      "e: \"\"\n"
      "f: !!str 443\n");
  EXPECT_EQ(v["a"], "80");
  EXPECT_EQ(v["b"], "80");
  EXPECT_EQ(v["c"], "true");
  EXPECT_EQ(v["d"], "null");
  EXPECT_EQ(v["e"], "");
  EXPECT_EQ(v["f"], "443");
}

TEST(YamlJsonTest, ExplicitTagsAreHonoured) {
  Json v = parseOk("a: !!int \"42\"\nb: !!float 3\nc: !!bool \"true\"\n");
  EXPECT_EQ(v["a"], 42);
  EXPECT_TRUE(v["b"].is_number_float());
  EXPECT_DOUBLE_EQ(v["b"].get<double>(), 3.0);
  EXPECT_EQ(v["c"], true);
}

TEST(YamlJsonTest, NestedStructuresAndLargeIntegers) {
  Json v = parseOk(
      "spec:\n"
      "  ports:\n"
      "  - port: 80\n"
      "    targetPort: http\n"
      "  - {port: 443, protocol: TCP}\n"
      "big: 18446744073709551615\n"
      "bigger: 99999999999999999999999\n"
      "min: -9223372036854775808\n");
  ASSERT_TRUE(v["spec"]["ports"].is_array());
  EXPECT_EQ(v["spec"]["ports"][0]["port"], 80);
  EXPECT_EQ(v["spec"]["ports"][0]["targetPort"], "http");
  EXPECT_EQ(v["spec"]["ports"][1]["protocol"], "TCP");
  EXPECT_EQ(v["big"].get<uint64_t>(), 18446744073709551615ULL);
  EXPECT_TRUE(v["bigger"].is_number_float());
  EXPECT_EQ(v["min"].get<int64_t>(), INT64_MIN);
}

TEST(YamlJsonTest, MultiDocumentStreamSkipsEmptyDocumentsAndKeepsLines) {
  StatusOr<std::vector<YamlDocument>> docs = parseYamlDocuments(
      "kind: A\n"
      "---\n"
      "---\n"
      "# only a comment\n"
      "---\n"
      "kind: B\n"
      "x: 1\n",
      "multi.yaml");
  ASSERT_TRUE(docs.ok()) << docs.status();
  ASSERT_EQ(docs->size(), 2u);
  EXPECT_EQ((*docs)[0].value["kind"], "A");
  EXPECT_EQ((*docs)[0].line, 1);
  EXPECT_EQ((*docs)[1].value["kind"], "B");
  EXPECT_EQ((*docs)[1].line, 6);
}

TEST(YamlJsonTest, SyntaxErrorNamesFileAndLine) {
  StatusOr<std::vector<YamlDocument>> docs =
      parseYamlDocuments("a: 1\nb: [1, 2\nc: 3\n", "broken.yaml");
  ASSERT_FALSE(docs.ok());
  EXPECT_EQ(docs.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(docs.status().message()), HasSubstr("broken.yaml:"));
}

TEST(YamlJsonTest, NonScalarKeyAndInfinityAreErrorsWithLine) {
  StatusOr<Json> v = parseYaml("a: 1\n? [x, y]\n: 2\n", "keys.yaml");
  ASSERT_FALSE(v.ok());
  EXPECT_THAT(std::string(v.status().message()), HasSubstr("keys.yaml:2"));
  EXPECT_THAT(std::string(v.status().message()), HasSubstr("mapping key must be a scalar"));

  StatusOr<Json> inf = parseYaml("a: 1\nb: .inf\n", "inf.yaml");
  ASSERT_FALSE(inf.ok());
  EXPECT_THAT(std::string(inf.status().message()), HasSubstr("inf.yaml:2"));

  StatusOr<Json> bad_int = parseYaml("a: !!int abc\n", "tag.yaml");
  ASSERT_FALSE(bad_int.ok());
  EXPECT_THAT(std::string(bad_int.status().message()), HasSubstr("not an integer"));
}

TEST(YamlJsonTest, ParseYamlRejectsSeveralDocuments) {
  StatusOr<Json> v = parseYaml("a: 1\n---\nb: 2\n", "two.yaml");
  ASSERT_FALSE(v.ok());
  EXPECT_THAT(std::string(v.status().message()), HasSubstr("line 3"));
  StatusOr<Json> empty = parseYaml("", "empty.yaml");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->is_null());
}

TEST(YamlJsonTest, AnchorsAndAliasesExpand) {
  Json v = parseOk("base: &b {port: 80}\nuse: *b\n");
  EXPECT_EQ(v["use"]["port"], 80);
}

}  // namespace
}  // namespace berth::kube
