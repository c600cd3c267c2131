// Golden files: the first (rebuild) sync of every scenario, compared with
// tests/unit/proxy/golden/<scenario>.nft after a canonical sort of the lines.
// Regenerate with: BERTH_UPDATE_GOLDEN=1 berth_proxy_unit_tests --gtest_filter='NftablesGolden*'
// (then review the diff: the goldens are the reviewed rule layout).
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "proxy/nftables_render.h"
#include "tests/unit/proxy/nft_canonical.h"
#include "tests/unit/proxy/scenarios.h"

namespace berth::proxy {
namespace {

using testing::canonical;
using testing::canonicalLines;

std::string goldenPath(const std::string& name) {
  return std::string(BERTH_PROXY_GOLDEN_DIR) + "/" + name + ".nft";
}

bool updating() {
  const char* v = std::getenv("BERTH_UPDATE_GOLDEN");
  return v != nullptr && std::string(v) == "1";
}

std::string render(const testing::Scenario& s) {
  NftablesRenderer renderer;
  return renderer.renderSync(testing::stateOf(s), {}, true);
}

class NftablesGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(NftablesGoldenTest, FirstSyncMatchesTheGoldenFile) {
  const testing::Scenario& s = testing::scenario(GetParam());
  std::string script = render(s);
  std::string path = goldenPath(s.name);
  if (updating()) {
    std::ofstream out(path);
    out << "# " << s.name << ": " << s.description << "\n" << script;
    ASSERT_TRUE(out.good()) << "cannot write " << path;
    GTEST_SKIP() << "golden file written: " << path;
  }
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << "missing golden file " << path
                         << " (run with BERTH_UPDATE_GOLDEN=1 to create it)";
  std::stringstream golden;
  golden << in.rdbuf();
  // Compare line lists so a failure shows which lines differ.
  EXPECT_EQ(canonicalLines(script), canonicalLines(golden.str()))
      << "rendered script differs from " << path
      << " (if intended, regenerate with BERTH_UPDATE_GOLDEN=1 and review the diff)\n"
      << script;
}

TEST_P(NftablesGoldenTest, RenderingIsDeterministic) {
  const testing::Scenario& s = testing::scenario(GetParam());
  EXPECT_EQ(render(s), render(s));
}

std::vector<std::string> names() {
  std::vector<std::string> out;
  for (const auto& s : testing::scenarios()) out.push_back(s.name);
  return out;
}

INSTANTIATE_TEST_SUITE_P(Scenarios, NftablesGoldenTest, ::testing::ValuesIn(names()),
                         [](const auto& info) { return info.param; });

TEST(NftCanonicalTest, SortsTrimsAndDropsComments) {
  EXPECT_EQ(canonical("# c\n  b   x \n\na\n"), "a\nb x\n");
}

}  // namespace
}  // namespace berth::proxy
