// Service proxy benchmark (issue 7, "Benchmark"): synthetic N Services x 10 endpoints,
// for the nftables and the iptables backend in the same run, each in a fresh network
// namespace of its own (the host's rules are never touched):
//   - first full sync (render + apply), and the rule count it programs;
//   - a partial sync after one endpoint of one Service changed;
//   - VmRSS of this process after the syncs.
// Also prints the time to fold the objects into a ProxyState (shared by both).
//
// Usage: berth_bench_proxy [--services 1000,10000,30000] [--backend both|nftables|iptables]
//                          [--dump-scripts DIR]
// --dump-scripts DIR: also write the nftables scripts and the IPv4 iptables-restore inputs
// of the full and the partial sync of each size to DIR/{full,partial}-<N>.{nft,iptables}
// (rendered again, outside the timings; e.g. to profile libnftables or iptables-restore).
// Needs root (network namespaces), libnftables, iptables-restore.
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/fs.h"
#include "common/strings.h"
#include "proxy/change_tracker.h"
#include "proxy/iptables_render.h"
#include "proxy/nftables_render.h"
#include "proxy/rule_backend.h"

using namespace berth;
using namespace berth::proxy;
using Clock = std::chrono::steady_clock;

namespace {

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

long rssKiB() {
  auto text = fs::readFile("/proc/self/status");
  if (!text.ok()) return 0;
  auto pos = text->find("VmRSS:");
  return pos == std::string::npos ? 0 : std::atol(text->c_str() + pos + 6);
}

Service makeService(int i) {
  Service s;
  s.name = {strCat("ns", i % 50), strCat("svc", i)};
  s.cluster_ips = {*IpAddress::parse(strCat("10.", 96 + i / 65536, ".", (i / 256) % 256, ".", i % 256))};
  s.ip_families = {IpFamily::kIPv4};
  ServicePort p;
  p.name = "http";
  p.port = 80;
  p.target_port.number = 8080;
  s.ports = {p};
  return s;
}

EndpointSlice makeSlice(int i, int generation) {  // generation shifts every address
  EndpointSlice e;
  e.name = {strCat("ns", i % 50), strCat("svc", i, "-abc")};
  e.service_name = strCat("svc", i);
  e.address_type = AddressType::kIPv4;
  for (int k = 0; k < 10; ++k) {
    int n = i * 10 + k + generation;
    SliceEndpoint ep;
    std::string ip = strCat("10.", 128 + (n / 65536) % 64, ".", (n / 256) % 256, ".", n % 256);
    ep.addresses = {ip};
    ep.ip = *IpAddress::parse(ip);
    ep.node_name = k % 2 == 0 ? "node-a" : "node-b";
    e.endpoints.push_back(ep);
  }
  SlicePort sp;
  sp.name = "http";
  sp.port = 8080;
  e.ports = {sp};
  return e;
}

struct Result {
  double full_ms = 0, partial_ms = 0;
  int rules = 0;
  long rss_kib = 0;
  std::string error;
};

EndpointSlice changedSlice(int services) {  // one endpoint of one Service changes
  EndpointSlice changed = makeSlice(services / 2, 0);
  changed.endpoints[0].addresses = {"10.127.255.254"};
  changed.endpoints[0].ip = *IpAddress::parse("10.127.255.254");
  return changed;
}

// Writes the full and partial nftables scripts of this size to `dir`.
bool dumpNft(const std::string& dir, ChangeTracker tracker, const NodeInfo& node, int services) {
  NftablesRenderer renderer;
  IptablesRenderer ipt(IpFamily::kIPv4);
  ProxyState before = buildProxyState(tracker.map(), node);
  std::string full = renderer.renderSync(before, tracker.takeChanged(), true);
  renderer.committed();
  std::string ipt_full = ipt.render(before, true, IptablesRenderer::baseJumps()).restore_input;
  ipt.committed();
  tracker.updateEndpointSlice(changedSlice(services));
  ProxyState after = buildProxyState(tracker.map(), node);
  std::string partial = renderer.renderSync(after, tracker.takeChanged(), false);
  std::string ipt_partial = ipt.render(after, false).restore_input;
  return fs::writeFileAtomic(strCat(dir, "/full-", services, ".nft"), full).ok() &&
         fs::writeFileAtomic(strCat(dir, "/partial-", services, ".nft"), partial).ok() &&
         fs::writeFileAtomic(strCat(dir, "/full-", services, ".iptables"), ipt_full).ok() &&
         fs::writeFileAtomic(strCat(dir, "/partial-", services, ".iptables"), ipt_partial).ok();
}

Result runBackend(const std::string& name, ChangeTracker& tracker, const NodeInfo& node, int services) {
  Result r;
  std::thread t([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      r.error = strCat("unshare(CLONE_NEWNET): ", strerror(errno));
      return;
    }
    auto backend = name == "nftables" ? makeNftablesBackend() : makeIptablesBackend(IptablesBackend::kDetect);
    if (!backend.ok()) {
      r.error = std::string(backend.status().message());
      return;
    }
    ChangeTracker local = tracker;
    ProxyState state = buildProxyState(local.map(), node);
    auto t0 = Clock::now();
    auto rules = (*backend)->sync(state, local.takeChanged(), true);
    r.full_ms = ms(Clock::now() - t0);
    if (!rules.ok()) {
      r.error = std::string(rules.status().message());
      return;
    }
    r.rules = *rules;
    // One endpoint of one Service changes.
    local.updateEndpointSlice(changedSlice(services));
    ProxyState next = buildProxyState(local.map(), node);
    auto t1 = Clock::now();
    auto again = (*backend)->sync(next, local.takeChanged(), false);
    r.partial_ms = ms(Clock::now() - t1);
    if (!again.ok()) r.error = std::string(again.status().message());
    r.rss_kib = rssKiB();
    (void)(*backend)->cleanup();
  });
  t.join();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> sizes = {1000, 10000, 30000};
  std::string which = "both";
  std::string dump_dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--services") {
      sizes.clear();
      for (const auto& s : split(argv[i + 1], ',', true)) sizes.push_back(std::atoi(s.c_str()));
    } else if (a == "--backend") {
      which = argv[i + 1];
    } else if (a == "--dump-scripts") {
      dump_dir = argv[i + 1];
    }
  }
  if (::geteuid() != 0) {
    std::fprintf(stderr, "berth_bench_proxy: needs root (network namespaces)\n");
    return 1;
  }
  NodeInfo node;
  node.node_name = "node-a";
  node.cluster_cidrs = {*Cidr::parse("10.128.0.0/10")};
  std::printf("%-9s %-9s %12s %14s %10s %10s\n", "services", "backend", "full (ms)", "1-ep change", "rules",
              "RSS KiB");
  bool failed = false;
  for (int n : sizes) {
    ChangeTracker tracker;
    auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) {
      tracker.updateService(makeService(i));
      tracker.updateEndpointSlice(makeSlice(i, 0));
    }
    ProxyState state = buildProxyState(tracker.map(), node);
    double build_ms = ms(Clock::now() - t0);
    if (!dump_dir.empty() && !dumpNft(dump_dir, tracker, node, n)) {
      std::fprintf(stderr, "berth_bench_proxy: cannot write the scripts to %s\n", dump_dir.c_str());
      return 1;
    }
    for (std::string b : {"nftables", "iptables"}) {
      if (which != "both" && which != b) continue;
      Result r = runBackend(b, tracker, node, n);
      if (!r.error.empty()) {
        std::printf("%-9d %-9s error: %s\n", n, b.c_str(), r.error.c_str());
        failed = true;
        continue;
      }
      std::printf("%-9d %-9s %12.1f %14.2f %10d %10ld\n", n, b.c_str(), r.full_ms, r.partial_ms, r.rules,
                  r.rss_kib);
      std::fflush(stdout);
    }
    std::printf("          (objects -> ProxyState for %d Services: %.1f ms)\n", n, build_ms);
  }
  return failed ? 1 : 0;
}
