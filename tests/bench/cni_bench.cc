// CNI ADD/DEL benchmark (issue 5, "Benchmark"): berth-bridge (with its built-in
// berth-ipam) against Debian's reference bridge + host-local, same settings (a bridge,
// isGateway, ipMasq on, hairpin, one /16 subnet), in the same run and interleaved: pod
// i is attached by both plugins before pod i+1, so both see the same machine load and
// the same number of pods already present. Each plugin has its own bridge, subnet and
// IPAM data dir. ADD and DEL are timed as whole plugin executions (exec to exit), the
// way a runtime sees them.
//
// Prints median and p99 of ADD and DEL per plugin, the ratio berth/reference, and
// the ADD median of the first and last 50 pods (flat as pods accumulate?).
//
// Isolation: the bench moves itself into its own network and mount namespace first
// (bridges, veths, nftables/iptables rules and pod netns exist only there and vanish
// with it); pod netns are bind mounts under a temp dir.
//
// Usage: berth_bench_cni [--pods 100] [--pods 250]   (several --pods run one after another)
// Needs root and containernetworking-plugins (/usr/lib/cni).
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include <CLI/CLI.hpp>

#include "cni/netns.h"
#include "cni/plugin_exec.h"
#include "common/fs.h"
#include "common/json.h"
#include "tests/integration/cni/net_test_util.h"

namespace berth {
namespace {

using json::Json;
using Clock = std::chrono::steady_clock;

constexpr char kRefDir[] = "/usr/lib/cni";

struct Plugin {
  std::string label;
  std::string type;
  std::string path;
  Json conf;
  std::vector<double> add_ms, del_ms;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

StatusOr<double> timed(Plugin& plugin, const std::string& command, const std::string& id,
                       const std::string& netns) {
  cni::PluginEnv env;
  env.command = command;
  env.container_id = id;
  env.netns = netns;
  env.ifname = "eth0";
  env.bin_dirs = {plugin.path.substr(0, plugin.path.rfind('/')), kRefDir};
  std::string input = plugin.conf.dump();
  auto start = Clock::now();
  auto out = cni::execPlugin(plugin.path, plugin.type, env, input, std::chrono::seconds(60));
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  if (!out.ok()) return withContext(out.status(), strCat(plugin.label, " ", command, " ", id));
  return ms;
}

int runRound(int pods, const std::string& bridge_binary, const std::string& dir) {
  std::vector<Plugin> plugins(2);
  auto conf = [&](const std::string& type, const std::string& bridge, const std::string& subnet,
                  Json ipam) {
    Json c = {{"cniVersion", "1.0.0"}, {"name", strCat("bench-", bridge)}, {"type", type},
              {"bridge", bridge},      {"isGateway", true},                {"ipMasq", true},
              {"hairpinMode", true},   {"ipam", ipam}};
    (void)subnet;
    return c;
  };
  plugins[0] = {"berth-bridge", "berth-bridge", bridge_binary,
                conf("berth-bridge", "benchb0", "10.201.0.0/16",
                     {{"type", "berth-ipam"}, {"subnet", "10.201.0.0/16"},
                      {"dataDir", dir + "/ipam-berth"}}),
                {}, {}};
  plugins[1] = {"bridge+host-local", "bridge", strCat(kRefDir, "/bridge"),
                conf("bridge", "benchr0", "10.202.0.0/16",
                     {{"type", "host-local"}, {"subnet", "10.202.0.0/16"},
                      {"dataDir", dir + "/ipam-ref"}}),
                {}, {}};
  for (int i = 0; i < pods; ++i) {
    for (Plugin& p : plugins) {
      std::string id = strCat("p", i, "-", p.type);
      std::string ns = strCat(dir, "/ns-", id);
      if (Status st = cni::testing::net::createNetns(ns); !st.ok()) {
        fprintf(stderr, "pin netns: %s\n", std::string(st.message()).c_str());
        return 1;
      }
      auto ms = timed(p, "ADD", id, ns);
      if (!ms.ok()) {
        fprintf(stderr, "%s\n", std::string(ms.status().message()).c_str());
        return 1;
      }
      p.add_ms.push_back(*ms);
    }
  }
  for (int i = 0; i < pods; ++i) {
    for (Plugin& p : plugins) {
      std::string id = strCat("p", i, "-", p.type);
      std::string ns = strCat(dir, "/ns-", id);
      auto ms = timed(p, "DEL", id, ns);
      if (!ms.ok()) {
        fprintf(stderr, "%s\n", std::string(ms.status().message()).c_str());
        return 1;
      }
      p.del_ms.push_back(*ms);
      cni::testing::net::destroyNetns(ns);
    }
  }
  printf("\n%d pods, ipMasq on (ms)       ADD p50   ADD p99   DEL p50   DEL p99   ADD p50 first/last 50\n",
         pods);
  for (Plugin& p : plugins) {
    size_t k = std::min<size_t>(50, p.add_ms.size());
    std::vector<double> first(p.add_ms.begin(), p.add_ms.begin() + static_cast<long>(k));
    std::vector<double> last(p.add_ms.end() - static_cast<long>(k), p.add_ms.end());
    printf("%-28s %8.2f  %8.2f  %8.2f  %8.2f   %6.2f / %6.2f\n", p.label.c_str(),
           percentile(p.add_ms, 0.5), percentile(p.add_ms, 0.99), percentile(p.del_ms, 0.5),
           percentile(p.del_ms, 0.99), percentile(first, 0.5), percentile(last, 0.5));
  }
  printf("%-28s %7.2fx  %7.2fx  %7.2fx  %7.2fx\n", "berth / reference",
         percentile(plugins[0].add_ms, 0.5) / percentile(plugins[1].add_ms, 0.5),
         percentile(plugins[0].add_ms, 0.99) / percentile(plugins[1].add_ms, 0.99),
         percentile(plugins[0].del_ms, 0.5) / percentile(plugins[1].del_ms, 0.5),
         percentile(plugins[0].del_ms, 0.99) / percentile(plugins[1].del_ms, 0.99));
  fflush(stdout);
  return 0;
}

}  // namespace
}  // namespace berth

int main(int argc, char** argv) {
  using namespace berth;
  CLI::App app{"CNI ADD/DEL benchmark: berth-bridge vs reference bridge + host-local"};
  std::vector<int> pods;
  app.add_option("--pods", pods, "pods per round (repeatable)");
  CLI11_PARSE(app, argc, argv);
  if (pods.empty()) pods = {100, 250};
  if (::geteuid() != 0) {
    fprintf(stderr, "berth_bench_cni: needs root (network namespaces)\n");
    return 1;
  }
  if (!fs::exists(strCat(kRefDir, "/bridge")) || !fs::exists(strCat(kRefDir, "/host-local"))) {
    fprintf(stderr, "berth_bench_cni: %s/bridge and host-local missing; install "
                    "containernetworking-plugins\n", kRefDir);
    return 1;
  }
  if (::unshare(CLONE_NEWNS | CLONE_NEWNET) != 0) {
    perror("berth_bench_cni: unshare");
    return 1;
  }
  ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr);
  ::mount("sysfs", "/sys", "sysfs", 0, nullptr);
  (void)cni::setLinkUp("lo");
  int rc = 0;
  for (int n : pods) {
    char tmpl[] = "/tmp/berth-bench-cni-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
      perror("mkdtemp");
      return 1;
    }
    rc |= runRound(n, BERTH_BRIDGE_BINARY, tmpl);
    (void)fs::removeAll(tmpl);
  }
  return rc;
}
