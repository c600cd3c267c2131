// CSI volume lifecycle benchmark (issue 8, "Benchmark"): berth's hostPath driver
// (hostpath.berth.dev, an in-process csi::CsiServer on a temp unix socket) against a
// reference CSI driver the user started (e.g. kubernetes-csi/csi-driver-host-path's
// hostpathplugin) at --reference-endpoint, in the same run, through the same csi.v1
// gRPC client code (our csi/proto/csi.proto, wire-identical to upstream).
//
// Each run, for each driver (the order alternates run by run, so both see the same
// machine load), one volume goes through its whole life, every RPC timed as the
// client sees it (request serialized -> response parsed):
//   CreateVolume (mount access type, SINGLE_NODE_WRITER, --size-mib)
//   [ControllerPublishVolume when the driver advertises PUBLISH_UNPUBLISH_VOLUME]
//   [NodeStageVolume when it advertises STAGE_UNSTAGE_VOLUME]
//   NodePublishVolume (bind mount on a target the driver creates)
//   NodeUnpublishVolume, [NodeUnstageVolume], [ControllerUnpublishVolume], DeleteVolume
// and the median and p99 (nearest rank) per RPC and driver are printed, with the
// ratio berth/reference. CreateVolume, NodePublishVolume and NodeUnpublishVolume are
// the figures (marked *); the others are printed for the full picture.
// --warmup runs (untimed) come first, so channel setup and cold caches are not counted.
//
// Isolation: main() moves the process into a private mount namespace (unshare
// CLONE_NEWNS, / made MS_REC|MS_PRIVATE) before gRPC starts any thread, so berth's
// bind mounts (made on gRPC threads) exist only there. Everything lives under a
// mkdtemp directory in /tmp: berth's base dir, database and socket, and the staging
// and pod directories of both drivers (the bench plays the CO: it creates staging
// directories and the targets' parent directories). The reference mounts in its own
// mount namespace (start it under `unshare -m`, see README.md "CSI"). Afterwards every
// volume still present is unpublished, unstaged and deleted (also after a failure),
// berth's server is stopped, leftover mounts under the temp dir are reported (exit 1)
// and detached, and the temp dir is removed. The reference is never started or
// stopped by the bench.
//
// Usage: berth_bench_csi [--runs 200] [--warmup 3] [--size-mib 16]
//                        [--reference-endpoint unix:///tmp/hp/csi.sock]
// Needs root (mount namespace, bind mounts): without it, prints why and exits 77.
// Exit status 1 when an RPC failed or a mount leaked.
#include <grpcpp/grpcpp.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/fs.h"
#include "common/log.h"
#include "common/strings.h"
#include "csi/proto/csi.grpc.pb.h"
#include "csi/server.h"

namespace berth {
namespace {

namespace v1 = ::csi::v1;
using Clock = std::chrono::steady_clock;

constexpr int kSkipExit = 77;
constexpr auto kRpcTimeout = std::chrono::seconds(60);

// The timed RPCs, in lifecycle order.
enum Phase { kCreate, kCtrlPublish, kStage, kPublish, kUnpublish, kUnstage, kCtrlUnpublish,
             kDelete, kPhases };
constexpr const char* kPhaseNames[kPhases] = {
    "CreateVolume *",        "ControllerPublishVolume", "NodeStageVolume",
    "NodePublishVolume *",   "NodeUnpublishVolume *",   "NodeUnstageVolume",
    "ControllerUnpublishVolume", "DeleteVolume"};

// Nearest-rank percentile (p in [0, 1]); with 200 samples p99 is the 198th fastest.
double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5));
  return v[i];
}

std::string grpcError(const grpc::Status& st) {
  return strCat("code ", static_cast<int>(st.error_code()), ": ", st.error_message());
}

// One volume's progress, so cleanup knows what to undo.
struct Volume {
  std::string name, id;
  google::protobuf::Map<std::string, std::string> context, publish_context;
  bool ctrl_published = false, staged = false, published = false;
  std::string staging, target;
};

// A CSI driver behind a gRPC channel: identity, capabilities, samples per RPC.
struct Driver {
  std::string label;     // "berth" / "reference"
  std::string endpoint;  // gRPC target, "unix:///..."
  std::string dir;       // the bench's directory for this driver's staging and pod dirs
  std::string name, version, node_id;
  bool reached = false;  // Probe answered
  bool stage = false, ctrl_publish = false;
  std::unique_ptr<v1::Identity::Stub> identity;
  std::unique_ptr<v1::Controller::Stub> controller;
  std::unique_ptr<v1::Node::Stub> node;
  std::vector<double> ms[kPhases];
  std::vector<Volume> live;  // volumes not yet deleted
};

v1::VolumeCapability mountCapability() {
  v1::VolumeCapability cap;
  cap.mutable_mount();
  cap.mutable_access_mode()->set_mode(v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
  return cap;
}

// Runs `call(ctx)` with a deadline; adds its wall time to `out` when `timed`.
template <typename Call>
grpc::Status timedCall(bool timed, std::vector<double>& out, Call call) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
  auto start = Clock::now();
  grpc::Status st = call(ctx);
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  if (st.ok() && timed) out.push_back(ms);
  return st;
}

// Connects and asks the driver who it is and what it needs (Probe, GetPluginInfo,
// ControllerGetCapabilities, NodeGetCapabilities, NodeGetInfo; none timed).
Status connect(Driver& d) {
  auto channel = grpc::CreateChannel(d.endpoint, grpc::InsecureChannelCredentials());
  d.identity = v1::Identity::NewStub(channel);
  d.controller = v1::Controller::NewStub(channel);
  d.node = v1::Node::NewStub(channel);
  auto fail = [&](const char* rpc, const grpc::Status& st) {
    return Status(absl::StatusCode::kUnavailable,
                  strCat(d.label, " driver at ", d.endpoint, ": ", rpc, " failed (",
                         grpcError(st), ")"));
  };
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    ctx.set_wait_for_ready(true);  // the socket may appear a moment after the driver starts
    v1::ProbeResponse resp;
    grpc::Status st = d.identity->Probe(&ctx, v1::ProbeRequest(), &resp);
    if (!st.ok()) return fail("Probe", st);
    d.reached = true;
  }
  {
    grpc::ClientContext ctx;
    v1::GetPluginInfoResponse resp;
    grpc::Status st = d.identity->GetPluginInfo(&ctx, v1::GetPluginInfoRequest(), &resp);
    if (!st.ok()) return fail("GetPluginInfo", st);
    d.name = resp.name();
    d.version = resp.vendor_version();
  }
  bool create = false;
  {
    grpc::ClientContext ctx;
    v1::ControllerGetCapabilitiesResponse resp;
    grpc::Status st = d.controller->ControllerGetCapabilities(
        &ctx, v1::ControllerGetCapabilitiesRequest(), &resp);
    if (!st.ok()) return fail("ControllerGetCapabilities", st);
    for (const auto& c : resp.capabilities()) {
      auto t = c.rpc().type();
      create |= t == v1::ControllerServiceCapability::RPC::CREATE_DELETE_VOLUME;
      d.ctrl_publish |= t == v1::ControllerServiceCapability::RPC::PUBLISH_UNPUBLISH_VOLUME;
    }
  }
  if (!create) {
    return Status(absl::StatusCode::kFailedPrecondition,
                  strCat(d.label, " driver ", d.name, " at ", d.endpoint,
                         " does not advertise CREATE_DELETE_VOLUME: it cannot be benchmarked"));
  }
  {
    grpc::ClientContext ctx;
    v1::NodeGetCapabilitiesResponse resp;
    grpc::Status st = d.node->NodeGetCapabilities(&ctx, v1::NodeGetCapabilitiesRequest(), &resp);
    if (!st.ok()) return fail("NodeGetCapabilities", st);
    for (const auto& c : resp.capabilities()) {
      d.stage |= c.rpc().type() == v1::NodeServiceCapability::RPC::STAGE_UNSTAGE_VOLUME;
    }
  }
  {
    grpc::ClientContext ctx;
    v1::NodeGetInfoResponse resp;
    grpc::Status st = d.node->NodeGetInfo(&ctx, v1::NodeGetInfoRequest(), &resp);
    if (!st.ok()) return fail("NodeGetInfo", st);
    d.node_id = resp.node_id();
  }
  return absl::OkStatus();
}

Status rpcError(const Driver& d, const char* rpc, const Volume& v, const grpc::Status& st) {
  return Status(absl::StatusCode::kInternal,
                strCat(d.label, " driver (", d.name, "): ", rpc, " of volume \"", v.name, "\"",
                       v.id.empty() ? "" : strCat(" (", v.id, ")"), " failed: ", grpcError(st)));
}

// Undoes whatever `v` has reached, newest step first. Timed only when `timed`.
Status teardown(Driver& d, Volume& v, bool timed) {
  if (v.published) {
    v1::NodeUnpublishVolumeRequest req;
    req.set_volume_id(v.id);
    req.set_target_path(v.target);
    v1::NodeUnpublishVolumeResponse resp;
    grpc::Status st = timedCall(timed, d.ms[kUnpublish], [&](grpc::ClientContext& ctx) {
      return d.node->NodeUnpublishVolume(&ctx, req, &resp);
    });
    if (!st.ok()) return rpcError(d, "NodeUnpublishVolume", v, st);
    v.published = false;
  }
  if (v.staged) {
    v1::NodeUnstageVolumeRequest req;
    req.set_volume_id(v.id);
    req.set_staging_target_path(v.staging);
    v1::NodeUnstageVolumeResponse resp;
    grpc::Status st = timedCall(timed, d.ms[kUnstage], [&](grpc::ClientContext& ctx) {
      return d.node->NodeUnstageVolume(&ctx, req, &resp);
    });
    if (!st.ok()) return rpcError(d, "NodeUnstageVolume", v, st);
    v.staged = false;
  }
  if (v.ctrl_published) {
    v1::ControllerUnpublishVolumeRequest req;
    req.set_volume_id(v.id);
    req.set_node_id(d.node_id);
    v1::ControllerUnpublishVolumeResponse resp;
    grpc::Status st = timedCall(timed, d.ms[kCtrlUnpublish], [&](grpc::ClientContext& ctx) {
      return d.controller->ControllerUnpublishVolume(&ctx, req, &resp);
    });
    if (!st.ok()) return rpcError(d, "ControllerUnpublishVolume", v, st);
    v.ctrl_published = false;
  }
  if (!v.id.empty()) {
    v1::DeleteVolumeRequest req;
    req.set_volume_id(v.id);
    v1::DeleteVolumeResponse resp;
    grpc::Status st = timedCall(timed, d.ms[kDelete], [&](grpc::ClientContext& ctx) {
      return d.controller->DeleteVolume(&ctx, req, &resp);
    });
    if (!st.ok()) return rpcError(d, "DeleteVolume", v, st);
    v.id.clear();
  }
  // The target's parent and the staging dir are the CO's (ours); the target itself
  // was removed by the driver's NodeUnpublishVolume.
  (void)fs::removeAll(v.staging);
  (void)fs::removeAll(v.target.substr(0, v.target.rfind('/')));
  return absl::OkStatus();
}

// One volume's whole life on `d`. On failure the volume stays in d.live for cleanup.
Status lifecycle(Driver& d, int run, int64_t bytes, bool timed) {
  d.live.emplace_back();
  Volume& v = d.live.back();
  v.name = strCat("berth-bench-", timed ? "" : "warmup-", run);
  v.staging = strCat(d.dir, "/staging/", run);
  std::string pod = strCat(d.dir, "/pods/", run);
  v.target = pod + "/mount";
  RETURN_IF_ERROR_CTX(fs::mkdirAll(v.staging, 0750), strCat("staging dir ", v.staging));
  RETURN_IF_ERROR_CTX(fs::mkdirAll(pod, 0750), strCat("pod dir ", pod));
  const v1::VolumeCapability cap = mountCapability();
  {
    v1::CreateVolumeRequest req;
    req.set_name(v.name);
    *req.add_volume_capabilities() = cap;
    req.mutable_capacity_range()->set_required_bytes(bytes);
    v1::CreateVolumeResponse resp;
    grpc::Status st = timedCall(timed, d.ms[kCreate], [&](grpc::ClientContext& ctx) {
      return d.controller->CreateVolume(&ctx, req, &resp);
    });
    if (!st.ok()) return rpcError(d, "CreateVolume", v, st);
    v.id = resp.volume().volume_id();
    v.context = resp.volume().volume_context();
  }
  if (d.ctrl_publish) {
    v1::ControllerPublishVolumeRequest req;
    req.set_volume_id(v.id);
    req.set_node_id(d.node_id);
    *req.mutable_volume_capability() = cap;
    *req.mutable_volume_context() = v.context;
    v1::ControllerPublishVolumeResponse resp;
    grpc::Status st = timedCall(timed, d.ms[kCtrlPublish], [&](grpc::ClientContext& ctx) {
      return d.controller->ControllerPublishVolume(&ctx, req, &resp);
    });
    if (!st.ok()) return rpcError(d, "ControllerPublishVolume", v, st);
    v.ctrl_published = true;
    v.publish_context = resp.publish_context();
  }
  if (d.stage) {
    v1::NodeStageVolumeRequest req;
    req.set_volume_id(v.id);
    req.set_staging_target_path(v.staging);
    *req.mutable_volume_capability() = cap;
    *req.mutable_volume_context() = v.context;
    *req.mutable_publish_context() = v.publish_context;
    v1::NodeStageVolumeResponse resp;
    grpc::Status st = timedCall(timed, d.ms[kStage], [&](grpc::ClientContext& ctx) {
      return d.node->NodeStageVolume(&ctx, req, &resp);
    });
    if (!st.ok()) return rpcError(d, "NodeStageVolume", v, st);
    v.staged = true;
  }
  {
    v1::NodePublishVolumeRequest req;
    req.set_volume_id(v.id);
    if (d.stage) req.set_staging_target_path(v.staging);
    req.set_target_path(v.target);
    *req.mutable_volume_capability() = cap;
    *req.mutable_volume_context() = v.context;
    *req.mutable_publish_context() = v.publish_context;
    v1::NodePublishVolumeResponse resp;
    grpc::Status st = timedCall(timed, d.ms[kPublish], [&](grpc::ClientContext& ctx) {
      return d.node->NodePublishVolume(&ctx, req, &resp);
    });
    if (!st.ok()) return rpcError(d, "NodePublishVolume", v, st);
    v.published = true;
  }
  RETURN_IF_ERROR(teardown(d, v, timed));
  d.live.pop_back();
  return absl::OkStatus();
}

// Mount points of this process's namespace at or below `root` (mountinfo field 5;
// our paths need no octal unescaping: mkdtemp names and digits).
std::vector<std::string> mountsUnder(const std::string& root) {
  std::vector<std::string> out;
  for (const std::string& line : split(fs::readFile("/proc/self/mountinfo").value_or(""), '\n', true)) {
    std::vector<std::string> f = split(line, ' ');
    if (f.size() < 5) continue;
    const std::string& mp = f[4];
    if (mp == root || mp.rfind(root + "/", 0) == 0) out.push_back(mp);
  }
  return out;
}

void printTable(const std::vector<Driver*>& drivers, int runs) {
  printf("\nCSI volume lifecycle, %d runs per driver, mount access type (bind mounts), ms\n", runs);
  for (const Driver* d : drivers) {
    printf("  %-9s %s %s at %s (stage %s, controller publish %s)\n", d->label.c_str(),
           d->name.c_str(), d->version.c_str(), d->endpoint.c_str(), d->stage ? "yes" : "no",
           d->ctrl_publish ? "yes" : "no");
  }
  bool ref = drivers.size() > 1;
  printf("\n%-27s %10s %10s", "RPC", "berth p50", "p99");
  if (ref) printf(" %10s %10s %10s %10s", "ref p50", "p99", "ratio p50", "p99");
  printf("\n");
  for (int p = 0; p < kPhases; ++p) {
    bool any = false;
    for (const Driver* d : drivers) any |= !d->ms[p].empty();
    if (!any) continue;
    auto cell = [](const std::vector<double>& v, double q) {
      if (v.empty()) return std::string("-");
      char buf[32];
      snprintf(buf, sizeof(buf), "%.2f", percentile(v, q));
      return std::string(buf);
    };
    const Driver& b = *drivers[0];
    printf("%-27s %10s %10s", kPhaseNames[p], cell(b.ms[p], 0.5).c_str(), cell(b.ms[p], 0.99).c_str());
    if (ref) {
      const Driver& r = *drivers[1];
      printf(" %10s %10s", cell(r.ms[p], 0.5).c_str(), cell(r.ms[p], 0.99).c_str());
      auto ratio = [&](double q) {
        if (b.ms[p].empty() || r.ms[p].empty()) return std::string("-");
        char buf[32];
        snprintf(buf, sizeof(buf), "%.2fx", percentile(b.ms[p], q) / percentile(r.ms[p], q));
        return std::string(buf);
      };
      printf(" %10s %10s", ratio(0.5).c_str(), ratio(0.99).c_str());
    }
    printf("\n");
  }
  printf("(* = the issue's figures; ratio = berth / reference, below 1 = berth faster)\n");
  if (!ref) {
    printf("no reference driver given (--reference-endpoint unix:///path.sock): berth alone, "
           "no ratios\n");
  }
  fflush(stdout);
}

// Unpublishes, unstages and deletes every volume a failed run left.
bool cleanup(Driver& d) {
  bool ok = true;
  for (Volume& v : d.live) {
    if (Status st = teardown(d, v, false); !st.ok()) {
      fprintf(stderr, "berth_bench_csi: cleanup: %s; remove volume \"%s\" by hand\n",
              std::string(st.message()).c_str(), v.name.c_str());
      ok = false;
    }
  }
  d.live.clear();
  return ok;
}

// The interleaved runs; returns false after the first failed RPC (printed).
bool runAll(const std::vector<Driver*>& drivers, int warmup, int runs, int64_t bytes) {
  for (int i = 0; i < warmup + runs; ++i) {
    bool timed = i >= warmup;
    int run = timed ? i - warmup : i;
    for (size_t k = 0; k < drivers.size(); ++k) {
      Driver& d = *drivers[(k + static_cast<size_t>(i)) % drivers.size()];
      if (Status st = lifecycle(d, run, bytes, timed); !st.ok()) {
        fprintf(stderr, "berth_bench_csi: run %d: %s\n", run, std::string(st.message()).c_str());
        return false;
      }
    }
  }
  return true;
}

int benchMain(int runs, int warmup, int64_t size_mib, std::string reference) {
  char tmpl[] = "/tmp/berth-bench-csi-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    fprintf(stderr, "berth_bench_csi: mkdtemp %s: %s\n", tmpl, std::strerror(errno));
    return 1;
  }
  const std::string dir = tmpl;
  int rc = 0;
  {
    csi::ServerOptions opts;
    opts.kubelet_root_dir = dir + "/berth/kubelet";
    opts.base_dir = dir + "/berth/volumes";
    opts.endpoint = dir + "/berth/csi.sock";
    opts.register_with_kubelet = false;
    opts.node_id = "bench-node";
    opts.capacity_bytes = std::max<int64_t>(int64_t{1} << 30, 4 * (size_mib << 20));
    auto server = csi::CsiServer::start(opts);
    if (!server.ok()) {
      fprintf(stderr, "berth_bench_csi: start berth's CSI server in %s: %s\n", dir.c_str(),
              server.status().ToString().c_str());
      (void)fs::removeAll(dir);
      return 1;
    }
    Driver berth, ref;
    berth.label = "berth";
    berth.endpoint = "unix://" + (*server)->endpoint();
    berth.dir = dir + "/berth-co";
    std::vector<Driver*> drivers = {&berth};
    if (!reference.empty()) {
      if (reference.rfind("unix://", 0) != 0 && reference[0] == '/') reference = "unix://" + reference;
      ref.label = "reference";
      ref.endpoint = reference;
      ref.dir = dir + "/reference-co";
      drivers.push_back(&ref);
    }
    bool ok = true;
    for (Driver* d : drivers) {
      if (Status st = connect(*d); !st.ok()) {
        fprintf(stderr, "berth_bench_csi: %s\n", std::string(st.message()).c_str());
        if (d == &ref && !d->reached) {
          fprintf(stderr, "  start the reference first (README.md, Benchmarks, \"CSI\"), e.g.\n"
                          "  unshare -m hostpathplugin --endpoint unix:///tmp/hp/csi.sock "
                          "--nodeid n1 --statedir /tmp/hp/state &\n");
        }
        ok = false;
      }
    }
    if (ok) {
      ok = runAll(drivers, warmup, runs, size_mib << 20);
      if (ok) printTable(drivers, runs);
    }
    for (Driver* d : drivers) ok &= cleanup(*d);
    (*server)->shutdown();
    rc = ok ? 0 : 1;
  }
  std::vector<std::string> left = mountsUnder(dir);
  if (!left.empty()) {
    fprintf(stderr, "berth_bench_csi: %zu mounts left under %s (first: %s); detached\n",
            left.size(), dir.c_str(), left.front().c_str());
    std::reverse(left.begin(), left.end());
    for (const std::string& mp : left) ::umount2(mp.c_str(), MNT_DETACH);
    rc = 1;
  }
  if (Status st = fs::removeAll(dir); !st.ok()) {
    fprintf(stderr, "berth_bench_csi: remove %s: %s\n", dir.c_str(), std::string(st.message()).c_str());
  }
  return rc;
}

}  // namespace
}  // namespace berth

int main(int argc, char** argv) {
  using namespace berth;
  CLI::App app{"CSI benchmark: CreateVolume / NodePublishVolume / NodeUnpublishVolume, "
               "berth's hostPath driver vs a reference CSI driver"};
  int runs = 200, warmup = 3;
  int64_t size_mib = 16;
  std::string reference;
  app.add_option("--runs", runs, "timed volume lifecycles per driver")->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "untimed lifecycles first")->check(CLI::NonNegativeNumber);
  app.add_option("--size-mib", size_mib, "CreateVolume required_bytes, MiB")->check(CLI::PositiveNumber);
  app.add_option("--reference-endpoint", reference,
                 "a running reference CSI driver, e.g. unix:///tmp/hp/csi.sock");
  CLI11_PARSE(app, argc, argv);
  if (::geteuid() != 0) {
    fprintf(stderr, "berth_bench_csi: skipped: needs root (a private mount namespace and bind "
                    "mounts); run it with sudo\n");
    return kSkipExit;
  }
  // Before any thread exists: gRPC's threads inherit this namespace (see file comment).
  if (::unshare(CLONE_NEWNS) != 0) {
    fprintf(stderr, "berth_bench_csi: unshare(CLONE_NEWNS): %s\n", std::strerror(errno));
    return 1;
  }
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    fprintf(stderr, "berth_bench_csi: make / rprivate in the bench's mount namespace: %s\n",
            std::strerror(errno));
    return 1;
  }
  log::Options log_options;
  log_options.level = spdlog::level::warn;  // like berthd at log-level warn: no line per volume
  if (Status st = log::init(log_options); !st.ok()) {
    fprintf(stderr, "berth_bench_csi: logging: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  return benchMain(runs, warmup, size_mib, reference);
}
