// The nftables RuleBackend: NftablesRenderer + one NftablesApplier (one libnftables
// context for the proxier's life: closing a context that committed costs ~10 ms).
#include "common/strings.h"
#include "proxy/nft_apply.h"
#include "proxy/nftables_render.h"
#include "proxy/rule_backend.h"

namespace berth::proxy {
namespace {

class NftablesBackendImpl : public RuleBackend {
 public:
  explicit NftablesBackendImpl(std::unique_ptr<NftablesApplier> applier) : applier_(std::move(applier)) {}

  std::string name() const override { return "nftables"; }

  StatusOr<int> sync(const ProxyState& state, const ChangedSet& changed, bool full) override {
    std::string script = renderer_.renderSync(state, changed, full);
    Status st = applier_->apply(script, strCat("nftables table ", renderer_.table()));
    if (!st.ok()) {
      renderer_.failed();
      return st;
    }
    renderer_.committed();
    const RenderStats& s = renderer_.lastStats();
    elements_ += static_cast<int>(s.elements_added) - static_cast<int>(s.elements_deleted);
    if (s.kind != RenderStats::Kind::kPartial) elements_ = static_cast<int>(s.elements_added);
    return elements_ + static_cast<int>(s.chains_written);
  }

  Status cleanup() override {
    Status st = applier_->apply(renderer_.renderCleanup(), "remove the nftables proxy table");
    if (!st.ok()) renderer_.failed();
    return st;
  }

 private:
  std::unique_ptr<NftablesApplier> applier_;
  NftablesRenderer renderer_;
  int elements_ = 0;
};

}  // namespace

StatusOr<std::unique_ptr<RuleBackend>> makeNftablesBackend() {
  auto applier = NftablesApplier::create();
  if (!applier.ok()) return withContext(applier.status(), "nftables proxy backend");
  return std::unique_ptr<RuleBackend>(new NftablesBackendImpl(std::move(*applier)));
}

}  // namespace berth::proxy
