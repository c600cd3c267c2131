// The iptables RuleBackend: IptablesRenderer + IptablesApplier per IP family.
#include <optional>

#include "common/log.h"
#include "common/strings.h"
#include "proxy/iptables_render.h"
#include "proxy/rule_backend.h"

namespace berth::proxy {
namespace {

// Lines of `iptables-save -t TABLE` output.
std::vector<std::string> lines(const std::string& text) { return split(text, '\n', true); }

class IptablesBackendImpl : public RuleBackend {
 public:
  struct Family {
    IpFamily family;
    IptablesApplier applier;
    IptablesRenderer renderer;
    bool jumps_verified = false;
  };

  explicit IptablesBackendImpl(std::vector<Family> families) : families_(std::move(families)) {}

  std::string name() const override { return "iptables"; }

  StatusOr<int> sync(const ProxyState& state, const ChangedSet& /*changed*/, bool full) override {
    int rules = 0;
    for (Family& f : families_) {
      std::vector<IptablesRenderer::Jump> missing;
      if (!f.jumps_verified) {
        ASSIGN_OR_RETURN(missing, missingJumps(f));
        full = true;
      }
      IptablesRenderer::Output out = f.renderer.render(state, full, missing);
      if (!out.restore_input.empty()) {
        Status st = f.applier.restore(out.restore_input);
        if (!st.ok()) {
          f.renderer.failed();
          f.jumps_verified = false;
          return withContext(st, strCat("apply ", ipFamilyName(f.family), " service rules"));
        }
      }
      f.renderer.committed();
      f.jumps_verified = true;
      rules += out.rules;
    }
    return rules;
  }

  Status cleanup() override {
    for (Family& f : families_) {
      std::string input;
      for (const char* table : {"nat", "filter"}) {
        ASSIGN_OR_RETURN(std::string saved, f.applier.save(table));
        std::string decl, deletes, removes;
        for (const std::string& line : lines(saved)) {
          if (line.rfind(":BERTH-", 0) == 0) {
            std::string chain = line.substr(1, line.find(' ') - 1);
            decl += strCat(":", chain, " - [0:0]\n");
            removes += strCat("-X ", chain, "\n");
          } else if (line.rfind("-A ", 0) == 0 && line.find(" -j BERTH-") != std::string::npos &&
                     line.rfind("-A BERTH-", 0) != 0) {
            deletes += strCat("-D ", line.substr(3), "\n");
          }
        }
        if (!decl.empty() || !deletes.empty()) {
          input += strCat("*", table, "\n", decl, deletes, removes, "COMMIT\n");
        }
      }
      if (!input.empty()) {
        RETURN_IF_ERROR_CTX(f.applier.restore(input),
                            strCat("remove ", ipFamilyName(f.family), " service rules"));
      }
      f.jumps_verified = false;
      f.renderer.failed();
    }
    return absl::OkStatus();
  }

 private:
  static StatusOr<std::vector<IptablesRenderer::Jump>> missingJumps(Family& f) {
    std::vector<IptablesRenderer::Jump> missing;
    std::map<std::string, std::string> saved;
    for (const auto& jump : IptablesRenderer::baseJumps()) {
      if (saved.count(jump.table) == 0) {
        ASSIGN_OR_RETURN(saved[jump.table], f.applier.save(jump.table));
      }
      bool present = false;
      for (const std::string& line : lines(saved[jump.table])) {
        if (line == jump.rule) present = true;
      }
      if (!present) missing.push_back(jump);
    }
    return missing;
  }

  std::vector<Family> families_;
};

}  // namespace

StatusOr<std::unique_ptr<RuleBackend>> makeIptablesBackend(IptablesBackend flavour) {
  std::vector<IptablesBackendImpl::Family> families;
  IptablesApplier::Options options;
  options.backend = flavour;
  auto v4 = IptablesApplier::create(IpFamily::kIPv4, options);
  if (!v4.ok()) return withContext(v4.status(), "iptables proxy backend");
  families.push_back({IpFamily::kIPv4, std::move(*v4), IptablesRenderer(IpFamily::kIPv4)});
  auto v6 = IptablesApplier::create(IpFamily::kIPv6, options);
  if (v6.ok()) {
    families.push_back({IpFamily::kIPv6, std::move(*v6), IptablesRenderer(IpFamily::kIPv6)});
  } else {
    log::get("proxy")->warn("IPv6 Services are not programmed: {}", std::string(v6.status().message()));
  }
  return std::unique_ptr<RuleBackend>(new IptablesBackendImpl(std::move(families)));
}

}  // namespace berth::proxy
