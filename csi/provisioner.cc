#include "csi/provisioner.h"

#include <time.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>

#include "common/log.h"
#include "common/strings.h"
#include "csi/driver_info.h"
#include "csi/quantity.h"
#include "csi/work_queue.h"

namespace berth::csi {
namespace {

using kube::Json;
using Clock = std::chrono::steady_clock;

std::shared_ptr<spdlog::logger> logger() { return log::get("csi"); }

constexpr const char* kClaims = "/api/v1/persistentvolumeclaims";
constexpr const char* kVolumes = "/api/v1/persistentvolumes";
constexpr const char* kClasses = "/apis/storage.k8s.io/v1/storageclasses";
constexpr const char* kSnapshotGroup = "snapshot.storage.k8s.io";

// The string at `path` inside `obj`, "" when absent or not a string.
std::string str(const Json& obj, std::initializer_list<const char*> path) {
  const Json* cur = &obj;
  for (const char* key : path) {
    if (!cur->is_object()) return "";
    auto it = cur->find(key);
    if (it == cur->end()) return "";
    cur = &*it;
  }
  return cur->is_string() ? cur->get<std::string>() : "";
}

// The value at `path`, or null.
const Json* at(const Json& obj, std::initializer_list<const char*> path) {
  const Json* cur = &obj;
  for (const char* key : path) {
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(key);
    if (it == cur->end()) return nullptr;
    cur = &*it;
  }
  return cur;
}

std::string annotation(const Json& obj, std::string_view key) {
  const Json* ann = at(obj, {"metadata", "annotations"});
  if (ann == nullptr || !ann->is_object()) return "";
  auto it = ann->find(std::string(key));
  return it != ann->end() && it->is_string() ? it->get<std::string>() : "";
}

bool hasDeletionTimestamp(const Json& obj) {
  const Json* ts = at(obj, {"metadata", "deletionTimestamp"});
  return ts != nullptr && !ts->is_null();
}

std::vector<std::string> finalizers(const Json& obj) {
  std::vector<std::string> out;
  const Json* f = at(obj, {"metadata", "finalizers"});
  if (f == nullptr || !f->is_array()) return out;
  for (const Json& v : *f) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

// spec.storageClassName, or the beta annotation older claims carry.
std::string claimClassName(const Json& claim) {
  std::string name = str(claim, {"spec", "storageClassName"});
  return !name.empty() ? name : annotation(claim, "volume.beta.kubernetes.io/storage-class");
}

std::string claimId(const Json& claim) {
  return kube::objectKey(kube::objectNamespace(claim), kube::objectName(claim));
}

// Whether the class's allowedTopologies admit this node (see the header).
bool topologyAllows(const Json& storage_class, const std::string& node) {
  const Json* terms = at(storage_class, {"allowedTopologies"});
  if (terms == nullptr || !terms->is_array() || terms->empty()) return true;
  bool any_for_our_key = false;
  for (const Json& term : *terms) {
    const Json* exprs = at(term, {"matchLabelExpressions"});
    if (exprs == nullptr || !exprs->is_array()) continue;
    bool ours = false;
    bool ok = true;
    for (const Json& e : *exprs) {
      if (str(e, {"key"}) != kTopologyKey) continue;
      ours = true;
      const Json* values = at(e, {"values"});
      bool listed = values != nullptr && values->is_array() &&
                    std::find(values->begin(), values->end(), Json(node)) != values->end();
      ok = ok && listed;
    }
    if (!ours) return true;  // a term on other keys only: cannot be checked, satisfied
    any_for_our_key = true;
    if (ok) return true;
  }
  return !any_for_our_key;
}

// True when the PV's required node affinity names this node under our topology key.
bool affinityIsNode(const Json& pv, const std::string& node) {
  const Json* terms = at(pv, {"spec", "nodeAffinity", "required", "nodeSelectorTerms"});
  if (terms == nullptr || !terms->is_array()) return false;
  for (const Json& term : *terms) {
    const Json* exprs = at(term, {"matchExpressions"});
    if (exprs == nullptr || !exprs->is_array()) continue;
    for (const Json& e : *exprs) {
      const Json* values = at(e, {"values"});
      if (str(e, {"key"}) == kTopologyKey && str(e, {"operator"}) == "In" && values != nullptr &&
          values->is_array() &&
          std::find(values->begin(), values->end(), Json(node)) != values->end()) {
        return true;
      }
    }
  }
  return false;
}

std::string rfc3339Now() {
  time_t now = ::time(nullptr);
  struct tm tm {};
  ::gmtime_r(&now, &tm);
  char buf[32];
  ::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Errors of a claim's own spec (or of what it points at) that a retry cannot fix: the
// claim must change first.
bool isPermanent(const Status& s) {
  return s.code() == absl::StatusCode::kInvalidArgument ||
         s.code() == absl::StatusCode::kUnimplemented ||
         s.code() == absl::StatusCode::kOutOfRange ||
         s.code() == absl::StatusCode::kAlreadyExists;
}

// Quantity as a string (quantities are strings in the API; accept numbers too).
std::optional<std::string> quantityText(const Json* q) {
  if (q == nullptr || q->is_null()) return std::nullopt;
  if (q->is_string()) return q->get<std::string>();
  if (q->is_number_integer()) return std::to_string(q->get<int64_t>());
  if (q->is_number()) return q->dump();
  return std::string("<not a quantity: ") + q->dump() + ">";
}

}  // namespace

// ---- the claim filter -------------------------------------------------------------

ProvisionDecision decideClaim(const Json& claim, const Json* storage_class,
                              const std::string& node_name) {
  auto no = [](std::string why) { return ProvisionDecision{false, std::move(why)}; };
  if (hasDeletionTimestamp(claim)) return no("the claim is being deleted");
  std::string bound = str(claim, {"spec", "volumeName"});
  if (!bound.empty()) return no(strCat("already bound to PV ", bound));
  std::string phase = str(claim, {"status", "phase"});
  if (!phase.empty() && phase != "Pending") return no(strCat("phase is ", phase));
  std::string class_name = claimClassName(claim);
  if (class_name.empty()) return no("no storageClassName");
  std::string annotated = annotation(claim, kAnnStorageProvisioner);
  if (annotated.empty()) annotated = annotation(claim, kAnnBetaStorageProvisioner);
  if (!annotated.empty() && annotated != kDriverName) {
    return no(strCat("the claim is for provisioner ", annotated));
  }
  if (storage_class == nullptr) return no(strCat("StorageClass ", class_name, " not found"));
  std::string class_provisioner = str(*storage_class, {"provisioner"});
  if (annotated.empty() && class_provisioner != kDriverName) {
    return no(strCat("StorageClass ", class_name, " is for provisioner ", class_provisioner));
  }
  std::string mode = str(*storage_class, {"volumeBindingMode"});
  std::string selected = annotation(claim, kAnnSelectedNode);
  if (mode == "WaitForFirstConsumer") {
    if (selected.empty()) return no("WaitForFirstConsumer: no selected-node yet");
    if (selected != node_name) return no(strCat("selected-node is ", selected, ", not ", node_name));
    return {true, "WaitForFirstConsumer, selected-node is this node"};
  }
  if (!selected.empty() && selected != node_name) {
    return no(strCat("selected-node is ", selected, ", not ", node_name));
  }
  if (!topologyAllows(*storage_class, node_name)) {
    return no(strCat("StorageClass ", class_name, " allowedTopologies exclude node ", node_name));
  }
  return {true, "Immediate binding: provisioned on this node"};
}

// ---- life cycle -------------------------------------------------------------------

Provisioner::Provisioner(kube::ApiClient* client, HostPathBackend* backend,
                         ProvisionerOptions options)
    : client_(client),
      backend_(backend),
      options_(std::move(options)),
      queue_(std::make_unique<WorkQueue>()) {}

StatusOr<std::unique_ptr<Provisioner>> Provisioner::create(kube::ApiClient* client,
                                                           HostPathBackend* backend,
                                                           ProvisionerOptions options) {
  if (client == nullptr || backend == nullptr) {
    return invalidArgument("provisioner: an API client and a backend are required");
  }
  if (options.node_name.empty()) {
    return invalidArgument("provisioner: node_name is required (this node's Kubernetes name)");
  }
  if (options.node_name != backend->options().node_id) {
    return invalidArgument("provisioner: node_name \"", options.node_name,
                           "\" differs from the CSI driver's node id \"",
                           backend->options().node_id,
                           "\"; start both with the node's Kubernetes name");
  }
  std::unique_ptr<Provisioner> p(new Provisioner(client, backend, std::move(options)));
  auto informerOptions = [&](const char* path, const char* name) {
    kube::InformerOptions o;
    o.path = path;
    o.name = name;
    o.resync_period = p->options_.resync_period;
    o.backoff_base = p->options_.informer_backoff_base;
    return o;
  };
  Provisioner* self = p.get();

  kube::ObjectHandlers class_handlers;
  class_handlers.on_add = [self](const Json& sc) { self->enqueueClaimsOfClass(kube::objectName(sc)); };
  class_handlers.on_update = [self](const Json&, const Json& sc) {
    self->enqueueClaimsOfClass(kube::objectName(sc));
  };
  ASSIGN_OR_RETURN(p->classes_, kube::Informer::create(client, informerOptions(kClasses, "storageclasses"),
                                                       std::move(class_handlers)));

  kube::ObjectHandlers claim_handlers;
  claim_handlers.on_add = [self](const Json& c) { self->queue_->add("claim/" + claimId(c)); };
  claim_handlers.on_update = [self](const Json&, const Json& c) {
    self->queue_->add("claim/" + claimId(c));
  };
  claim_handlers.on_delete = [self](const Json& c) {
    std::string uid = str(c, {"metadata", "uid"});
    if (uid.empty()) return;
    self->queue_->add("orphan/" + uid);
    self->enqueueVolumesOfClaim(uid);
  };
  ASSIGN_OR_RETURN(p->claims_, kube::Informer::create(client, informerOptions(kClaims, "persistentvolumeclaims"),
                                                      std::move(claim_handlers)));

  kube::ObjectHandlers volume_handlers;
  volume_handlers.on_add = [self](const Json& pv) { self->queue_->add("pv/" + kube::objectName(pv)); };
  volume_handlers.on_update = [self](const Json&, const Json& pv) {
    self->queue_->add("pv/" + kube::objectName(pv));
  };
  ASSIGN_OR_RETURN(p->volumes_, kube::Informer::create(client, informerOptions(kVolumes, "persistentvolumes"),
                                                       std::move(volume_handlers)));
  return p;
}

Provisioner::~Provisioner() { shutdown(); }

void Provisioner::start() {
  if (started_) return;
  started_ = true;
  classes_->start();
  claims_->start();
  volumes_->start();
  worker_ = std::thread([this] { workerLoop(); });
  logger()->info("provisioner for {} on node {} started (bind_claims={})", kDriverName,
                 options_.node_name, options_.bind_claims);
}

void Provisioner::shutdown() {
  if (stopped_) return;
  stopped_ = true;
  // Informers first: their handlers feed the queue.
  if (classes_) classes_->stop();
  if (claims_) claims_->stop();
  if (volumes_) volumes_->stop();
  queue_->shutdown();
  cancel_.cancel();
  if (worker_.joinable()) worker_.join();
}

bool Provisioner::hasSynced() const {
  return classes_->hasSynced() && claims_->hasSynced() && volumes_->hasSynced();
}

bool Provisioner::waitForSync(std::chrono::milliseconds timeout) const {
  auto deadline = Clock::now() + timeout;
  for (const kube::Informer* i : {classes_.get(), claims_.get(), volumes_.get()}) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (!i->waitForSync(std::max(left, std::chrono::milliseconds(0)))) return false;
  }
  return true;
}

ProvisionerStats Provisioner::stats() const {
  return {provisioned_.load(), deleted_.load(), orphans_deleted_.load(), failures_.load()};
}

void Provisioner::enqueueClaimsOfClass(const std::string& class_name) {
  for (const Json& c : claims_->snapshot()) {
    if (claimClassName(c) == class_name && str(c, {"spec", "volumeName"}).empty()) {
      queue_->add("claim/" + claimId(c));
    }
  }
}

void Provisioner::enqueueVolumesOfClaim(const std::string& claim_uid) {
  for (const Json& pv : volumes_->snapshot()) {
    if (str(pv, {"spec", "claimRef", "uid"}) == claim_uid) queue_->add("pv/" + kube::objectName(pv));
  }
}

void Provisioner::workerLoop() {
  // Decisions need complete caches (a claim's class, whether its PV exists).
  while (!cancel_.cancelled() && !waitForSync(std::chrono::milliseconds(200))) {
  }
  while (std::optional<std::string> key = queue_->get()) {
    Status s = process(*key);
    if (s.ok()) {
      queue_->forget(*key);
    } else if (!cancel_.cancelled()) {
      failures_.fetch_add(1);
      int n = queue_->fail(*key);
      auto delay = options_.backoff_base * (int64_t{1} << std::min(n, 20));
      delay = std::min(delay, options_.backoff_cap);
      logger()->warn("{}; retrying in {} ms", std::string(s.message()), delay.count());
      queue_->addAfter(*key, std::chrono::duration_cast<std::chrono::milliseconds>(delay));
    }
    queue_->done(*key);
  }
}

Status Provisioner::process(const std::string& key) {
  if (key.rfind("claim/", 0) == 0) {
    std::string id = key.substr(6);
    size_t slash = id.find('/');
    if (slash == std::string::npos) return syncClaim("", id);
    return syncClaim(id.substr(0, slash), id.substr(slash + 1));
  }
  if (key.rfind("pv/", 0) == 0) return syncVolume(key.substr(3));
  if (key.rfind("orphan/", 0) == 0) return syncOrphan(key.substr(7));
  return absl::OkStatus();
}

// ---- provisioning -----------------------------------------------------------------

Status Provisioner::syncClaim(const std::string& ns, const std::string& name) {
  std::optional<Json> claim = claims_->get(ns, name);
  if (!claim) return absl::OkStatus();
  std::string class_name = claimClassName(*claim);
  std::optional<Json> sc = class_name.empty() ? std::nullopt : classes_->get("", class_name);
  ProvisionDecision d = decideClaim(*claim, sc ? &*sc : nullptr, options_.node_name);
  std::string what = strCat("provision claim ", ns, "/", name);
  if (!d.provision) {
    logger()->debug("{}: skipped: {}", what, d.reason);
    return absl::OkStatus();
  }
  std::string uid = str(*claim, {"metadata", "uid"});
  if (uid.empty()) {
    logger()->error("{}: the claim has no metadata.uid; it cannot be provisioned", what);
    return absl::OkStatus();
  }
  const std::string pv_name = "pvc-" + uid;

  // Already provisioned (by us earlier, or another provisioner on the same socket)?
  if (std::optional<Json> pv = volumes_->get("", pv_name)) {
    // Made by another node or provisioner: a volume of that name here (a lost race,
    // or a crash before our PV create) is not needed.
    ASSIGN_OR_RETURN(std::optional<VolumeRecord> local, backend_->store().getVolumeByName(pv_name));
    if (local && local->id != str(*pv, {"spec", "csi", "volumeHandle"})) {
      logger()->info("{}: PV {} uses volume {}; deleting this node's volume {} of that name", what,
                     pv_name, str(*pv, {"spec", "csi", "volumeHandle"}), local->id);
      RETURN_IF_ERROR(withContext(backend_->deleteVolume(local->id),
                                  strCat(what, ": delete the unneeded volume ", local->id)));
    }
    if (str(*pv, {"spec", "claimRef", "uid"}) == uid && options_.bind_claims) {
      return bindClaim(*claim, pv_name);
    }
    return absl::OkStatus();
  }

  StatusOr<CreateVolumeParams> params = volumeParams(*claim);
  if (!params.ok()) {
    Status s = withContext(params.status(), what);
    recordEvent(*claim, "Warning", "ProvisioningFailed", std::string(s.message()));
    if (isPermanent(params.status())) {
      logger()->error("{}; fix the claim's spec (it is tried again when it changes)", std::string(s.message()));
      return absl::OkStatus();
    }
    return s;
  }
  StatusOr<VolumeRecord> volume = backend_->createVolume(*params);
  if (!volume.ok()) {
    Status s = withContext(volume.status(), strCat(what, ": create volume ", pv_name));
    recordEvent(*claim, "Warning", "ProvisioningFailed", std::string(s.message()));
    if (isPermanent(volume.status())) {
      logger()->error("{}; change the claim's request (it is tried again when it changes)",
                      std::string(s.message()));
      return absl::OkStatus();
    }
    return s;
  }

  Json pv = buildVolume(*claim, *sc, *volume);
  StatusOr<Json> created = client_->create(kVolumes, pv, &cancel_);
  if (!created.ok() && created.status().code() == absl::StatusCode::kAlreadyExists) {
    StatusOr<Json> existing = client_->get(strCat(kVolumes, "/", pv_name), &cancel_);
    if (!existing.ok()) {
      return withContext(existing.status(), strCat(what, ": read existing PV ", pv_name));
    }
    std::string handle = str(*existing, {"spec", "csi", "volumeHandle"});
    if (handle != volume->id) {
      // Another node (Immediate binding race) or provisioner made this claim's PV.
      logger()->info("{}: PV {} already exists with volume {} ({}); deleting this node's "
                     "volume {}", what, pv_name, handle, str(*existing, {"spec", "csi", "driver"}),
                     volume->id);
      Status del = backend_->deleteVolume(volume->id);
      if (!del.ok()) return withContext(del, strCat(what, ": delete the unneeded volume ", volume->id));
      return absl::OkStatus();
    }
    created = std::move(existing);
  }
  if (!created.ok()) {
    Status s = withContext(created.status(),
                           strCat(what, ": create PV ", pv_name, " (volume ", volume->id,
                                  " is kept for the retry)"));
    recordEvent(*claim, "Warning", "ProvisioningFailed", std::string(s.message()));
    return s;
  }
  provisioned_.fetch_add(1);
  logger()->info("{}: volume {} ({} bytes, {}) and PV {} created", what, volume->id,
                 volume->capacity_bytes, accessTypeName(volume->access_type), pv_name);
  recordEvent(*claim, "Normal", "ProvisioningSucceeded",
              strCat("Successfully provisioned volume ", pv_name, " on node ", options_.node_name));
  if (options_.bind_claims) return bindClaim(*claim, pv_name);
  return absl::OkStatus();
}

StatusOr<CreateVolumeParams> Provisioner::volumeParams(const Json& claim) {
  CreateVolumeParams p;
  p.name = "pvc-" + str(claim, {"metadata", "uid"});
  std::optional<std::string> request = quantityText(at(claim, {"spec", "resources", "requests", "storage"}));
  if (!request) return invalidArgument("spec.resources.requests.storage is required");
  ASSIGN_OR_RETURN(p.required_bytes,
                   withContext(parseQuantityBytes(*request), "spec.resources.requests.storage"));
  if (std::optional<std::string> limit =
          quantityText(at(claim, {"spec", "resources", "limits", "storage"}))) {
    ASSIGN_OR_RETURN(p.limit_bytes,
                     withContext(parseQuantityBytes(*limit), "spec.resources.limits.storage"));
  }
  std::string mode = str(claim, {"spec", "volumeMode"});
  if (mode == "Block") {
    p.access_type = AccessType::kBlock;
  } else if (mode.empty() || mode == "Filesystem") {
    p.access_type = AccessType::kMount;
  } else {
    return invalidArgument("spec.volumeMode \"", mode, "\" is not Filesystem or Block");
  }

  const Json* source = at(claim, {"spec", "dataSourceRef"});
  const char* field = "spec.dataSourceRef";
  if (source == nullptr || !source->is_object()) {
    source = at(claim, {"spec", "dataSource"});
    field = "spec.dataSource";
  }
  if (source == nullptr || !source->is_object()) return p;
  std::string kind = str(*source, {"kind"});
  std::string group = str(*source, {"apiGroup"});
  std::string src_name = str(*source, {"name"});
  std::string src_ns = str(*source, {"namespace"});
  std::string ns = kube::objectNamespace(claim);
  if (!src_ns.empty() && src_ns != ns) {
    return unimplemented(field, ": cross-namespace data sources (namespace ", src_ns,
                         ") are not supported by ", kDriverName);
  }
  if (src_name.empty()) return invalidArgument(field, ".name is required");
  if (kind == "VolumeSnapshot" && group == kSnapshotGroup) {
    p.source_kind = "snapshot";
    ASSIGN_OR_RETURN(p.source_id, snapshotHandle(ns, src_name));
  } else if (kind == "PersistentVolumeClaim" && group.empty()) {
    p.source_kind = "volume";
    ASSIGN_OR_RETURN(p.source_id, cloneSourceHandle(ns, src_name));
  } else {
    return unimplemented(field, ": ", kind, " (apiGroup \"", group, "\") is not supported by ",
                         kDriverName, "; use a VolumeSnapshot or a PersistentVolumeClaim");
  }
  return p;
}

StatusOr<std::string> Provisioner::snapshotHandle(const std::string& ns, const std::string& name) {
  std::string what = strCat("VolumeSnapshot ", ns, "/", name);
  StatusOr<Json> snap = client_->get(
      strCat("/apis/", kSnapshotGroup, "/v1/namespaces/", ns, "/volumesnapshots/", name), &cancel_);
  if (!snap.ok()) {
    if (snap.status().code() == absl::StatusCode::kNotFound) {
      return failedPrecondition(what, " (the data source) does not exist yet; create it or fix "
                                "spec.dataSource");
    }
    return withContext(snap.status(), strCat("read ", what));
  }
  std::string content_name = str(*snap, {"status", "boundVolumeSnapshotContentName"});
  if (content_name.empty()) content_name = str(*snap, {"spec", "source", "volumeSnapshotContentName"});
  if (content_name.empty()) return failedPrecondition(what, " is not bound to a VolumeSnapshotContent yet");
  StatusOr<Json> content = client_->get(
      strCat("/apis/", kSnapshotGroup, "/v1/volumesnapshotcontents/", content_name), &cancel_);
  if (!content.ok()) {
    return withContext(content.status(), strCat("read VolumeSnapshotContent ", content_name, " of ", what));
  }
  std::string driver = str(*content, {"spec", "driver"});
  if (driver != kDriverName) {
    return invalidArgument(what, " is a snapshot of driver ", driver, ", not ", kDriverName);
  }
  std::string handle = str(*content, {"status", "snapshotHandle"});
  if (handle.empty()) handle = str(*content, {"spec", "source", "snapshotHandle"});
  const Json* ready = at(*content, {"status", "readyToUse"});
  bool pre_provisioned = !str(*content, {"spec", "source", "snapshotHandle"}).empty();
  if (handle.empty() || !(pre_provisioned || (ready != nullptr && ready->is_boolean() && ready->get<bool>()))) {
    return failedPrecondition(what, " is not ready to use yet");
  }
  return handle;
}

StatusOr<std::string> Provisioner::cloneSourceHandle(const std::string& ns, const std::string& name) {
  std::string what = strCat("source claim ", ns, "/", name);
  std::optional<Json> source = claims_->get(ns, name);
  if (!source) {
    StatusOr<Json> live = client_->get(strCat("/api/v1/namespaces/", ns, "/persistentvolumeclaims/", name), &cancel_);
    if (!live.ok()) {
      if (live.status().code() == absl::StatusCode::kNotFound) {
        return failedPrecondition(what, " (the data source) does not exist");
      }
      return withContext(live.status(), strCat("read ", what));
    }
    source = std::move(*live);
  }
  std::string pv_name = str(*source, {"spec", "volumeName"});
  if (pv_name.empty()) return failedPrecondition(what, " is not bound to a volume yet");
  std::optional<Json> pv = volumes_->get("", pv_name);
  if (!pv) {
    StatusOr<Json> live = client_->get(strCat(kVolumes, "/", pv_name), &cancel_);
    if (!live.ok()) return withContext(live.status(), strCat("read PV ", pv_name, " of ", what));
    pv = std::move(*live);
  }
  std::string driver = str(*pv, {"spec", "csi", "driver"});
  if (driver != kDriverName) {
    return invalidArgument(what, " is on PV ", pv_name, " of driver \"", driver,
                           "\"; only ", kDriverName, " volumes can be cloned");
  }
  return str(*pv, {"spec", "csi", "volumeHandle"});
}

Json Provisioner::buildVolume(const Json& claim, const Json& storage_class,
                              const VolumeRecord& volume) const {
  std::string uid = str(claim, {"metadata", "uid"});
  std::string policy = str(storage_class, {"reclaimPolicy"});
  if (policy.empty()) policy = "Delete";
  const Json* modes = at(claim, {"spec", "accessModes"});
  std::string volume_mode = str(claim, {"spec", "volumeMode"});
  if (volume_mode.empty()) volume_mode = "Filesystem";
  Json spec = {
      {"capacity", {{"storage", formatQuantityBytes(volume.capacity_bytes)}}},
      {"accessModes", modes != nullptr && modes->is_array() ? *modes : Json::array({"ReadWriteOnce"})},
      {"volumeMode", volume_mode},
      {"storageClassName", claimClassName(claim)},
      {"persistentVolumeReclaimPolicy", policy},
      {"claimRef",
       {{"apiVersion", "v1"},
        {"kind", "PersistentVolumeClaim"},
        {"namespace", kube::objectNamespace(claim)},
        {"name", kube::objectName(claim)},
        {"uid", uid},
        {"resourceVersion", kube::objectResourceVersion(claim)}}},
      {"nodeAffinity",
       {{"required",
         {{"nodeSelectorTerms",
           Json::array({{{"matchExpressions",
                          Json::array({{{"key", std::string(kTopologyKey)},
                                        {"operator", "In"},
                                        {"values", Json::array({options_.node_name})}}})}}})}}}}},
      {"csi",
       {{"driver", std::string(kDriverName)},
        {"volumeHandle", volume.id},
        {"volumeAttributes", {{std::string(kCapacityEnforcedKey), volume.capacity_mode}}}}}};
  const Json* mount_options = at(storage_class, {"mountOptions"});
  if (mount_options != nullptr && mount_options->is_array() && !mount_options->empty()) {
    spec["mountOptions"] = *mount_options;
  }
  return {{"apiVersion", "v1"},
          {"kind", "PersistentVolume"},
          {"metadata",
           {{"name", "pvc-" + uid},
            {"annotations", {{std::string(kAnnProvisionedBy), std::string(kDriverName)}}},
            {"finalizers", Json::array({std::string(kProvisionerFinalizer)})}}},
          {"spec", spec}};
}

Status Provisioner::bindClaim(const Json& claim, const std::string& pv_name) {
  std::string path = strCat("/api/v1/namespaces/", kube::objectNamespace(claim),
                            "/persistentvolumeclaims/", kube::objectName(claim));
  Json patch = {{"metadata", {{"uid", str(claim, {"metadata", "uid"})}}},
                {"spec", {{"volumeName", pv_name}}}};
  StatusOr<Json> r = client_->patch(path, kube::PatchType::kMerge, patch, &cancel_);
  if (!r.ok() && r.status().code() != absl::StatusCode::kNotFound) {
    return withContext(r.status(), strCat("bind claim ", claimId(claim), " to PV ", pv_name));
  }
  return absl::OkStatus();
}

// ---- deleting ---------------------------------------------------------------------

StatusOr<bool> Provisioner::claimGone(const Json& pv) {
  const Json* ref = at(pv, {"spec", "claimRef"});
  if (ref == nullptr || !ref->is_object()) return false;
  std::string ns = str(*ref, {"namespace"});
  std::string name = str(*ref, {"name"});
  std::string uid = str(*ref, {"uid"});
  if (name.empty() || uid.empty()) return false;
  if (std::optional<Json> c = claims_->get(ns, name); c && str(*c, {"metadata", "uid"}) == uid) {
    return false;
  }
  StatusOr<Json> live =
      client_->get(strCat("/api/v1/namespaces/", ns, "/persistentvolumeclaims/", name), &cancel_);
  if (!live.ok()) {
    if (live.status().code() == absl::StatusCode::kNotFound) return true;
    return withContext(live.status(), strCat("read claim ", ns, "/", name));
  }
  return str(*live, {"metadata", "uid"}) != uid;
}

Status Provisioner::removeFinalizer(const Json& pv) {
  std::vector<std::string> current = finalizers(pv);
  std::vector<std::string> rest;
  for (const auto& f : current) {
    if (f != kProvisionerFinalizer) rest.push_back(f);
  }
  if (rest.size() == current.size()) return absl::OkStatus();
  // The test makes a concurrent change of the list fail instead of being overwritten.
  Json patch = Json::array({{{"op", "test"}, {"path", "/metadata/finalizers"}, {"value", current}},
                            {{"op", "replace"}, {"path", "/metadata/finalizers"}, {"value", rest}}});
  StatusOr<Json> r = client_->patch(strCat(kVolumes, "/", kube::objectName(pv)),
                                    kube::PatchType::kJsonPatch, patch, &cancel_);
  if (!r.ok() && r.status().code() != absl::StatusCode::kNotFound) {
    return withContext(r.status(), strCat("remove finalizer ", kProvisionerFinalizer, " from PV ",
                                          kube::objectName(pv)));
  }
  return absl::OkStatus();
}

Status Provisioner::syncVolume(const std::string& name) {
  std::optional<Json> pv = volumes_->get("", name);
  if (!pv) return absl::OkStatus();
  if (annotation(*pv, kAnnProvisionedBy) != kDriverName ||
      str(*pv, {"spec", "csi", "driver"}) != kDriverName || !affinityIsNode(*pv, options_.node_name)) {
    return absl::OkStatus();
  }
  std::string what = strCat("release PV ", name);
  bool deleting = hasDeletionTimestamp(*pv);
  std::string policy = str(*pv, {"spec", "persistentVolumeReclaimPolicy"});
  if (policy != "Delete") {
    // Retain (or Recycle, which CSI volumes do not support): keep the data.
    if (deleting) return withContext(removeFinalizer(*pv), what);
    return absl::OkStatus();
  }
  bool released = str(*pv, {"status", "phase"}) == "Released";
  if (!released) {
    ASSIGN_OR_RETURN(released, withContext(claimGone(*pv), what));
  }
  if (!released) return absl::OkStatus();

  std::string handle = str(*pv, {"spec", "csi", "volumeHandle"});
  // Gone already when this is a second look (the finalizer patch's event arrives
  // before the PV's delete event): only make sure the PV goes.
  ASSIGN_OR_RETURN(std::optional<VolumeRecord> existing, backend_->store().getVolume(handle));
  Status del = backend_->deleteVolume(handle);
  if (!del.ok()) {
    Status s = withContext(del, strCat(what, ": delete volume ", handle));
    if (del.code() == absl::StatusCode::kFailedPrecondition) {
      s = withContext(del, strCat(what, ": volume ", handle,
                                  " is still staged or published on this node (a pod still "
                                  "uses it); waiting for kubelet to unpublish it"));
    }
    recordEvent(*pv, "Warning", "VolumeFailedDelete", std::string(s.message()));
    return s;
  }
  RETURN_IF_ERROR(withContext(removeFinalizer(*pv), what));
  if (!deleting) {
    StatusOr<Json> r = client_->remove(strCat(kVolumes, "/", name), nullptr, &cancel_);
    if (!r.ok() && r.status().code() != absl::StatusCode::kNotFound) {
      return withContext(r.status(), strCat(what, ": delete the PV (its volume ", handle,
                                            " is already deleted)"));
    }
  }
  if (existing) {
    deleted_.fetch_add(1);
    logger()->info("{}: volume {} and the PV deleted (reclaim policy Delete)", what, handle);
  }
  return absl::OkStatus();
}

Status Provisioner::syncOrphan(const std::string& uid) {
  const std::string name = "pvc-" + uid;
  ASSIGN_OR_RETURN(std::optional<VolumeRecord> volume, backend_->store().getVolumeByName(name));
  if (!volume) return absl::OkStatus();
  if (volumes_->get("", name)) return absl::OkStatus();  // its PV decides
  StatusOr<Json> live = client_->get(strCat(kVolumes, "/", name), &cancel_);
  if (live.ok()) return absl::OkStatus();
  if (live.status().code() != absl::StatusCode::kNotFound) {
    return withContext(live.status(), strCat("check for PV ", name, " of deleted claim uid ", uid));
  }
  Status del = backend_->deleteVolume(volume->id);
  if (!del.ok()) {
    return withContext(del, strCat("delete volume ", volume->id, " (", name,
                                   ") of a claim deleted before its PV was created"));
  }
  orphans_deleted_.fetch_add(1);
  logger()->info("deleted volume {} ({}): its claim was deleted before its PV was created",
                 volume->id, name);
  return absl::OkStatus();
}

// ---- events -----------------------------------------------------------------------

void Provisioner::recordEvent(const Json& object, const std::string& type,
                              const std::string& reason, const std::string& message) {
  if (!options_.record_events) return;
  std::string ns = kube::objectNamespace(object);
  std::string event_ns = ns.empty() ? "default" : ns;
  std::string now = rfc3339Now();
  Json involved = {{"apiVersion", str(object, {"apiVersion"}).empty() ? "v1" : str(object, {"apiVersion"})},
                   {"kind", str(object, {"kind"})},
                   {"name", kube::objectName(object)},
                   {"uid", str(object, {"metadata", "uid"})},
                   {"resourceVersion", kube::objectResourceVersion(object)}};
  if (!ns.empty()) involved["namespace"] = ns;
  Json event = {{"apiVersion", "v1"},
                {"kind", "Event"},
                {"metadata",
                 {{"name", strCat(kube::objectName(object), ".", hex(static_cast<unsigned long long>(nowUnixNs())))},
                  {"namespace", event_ns}}},
                {"involvedObject", involved},
                {"reason", reason},
                {"message", message},
                {"type", type},
                {"source", {{"component", strCat(kDriverName, "_", options_.node_name)}}},
                {"reportingComponent", std::string(kDriverName)},
                {"reportingInstance", options_.node_name},
                {"firstTimestamp", now},
                {"lastTimestamp", now},
                {"count", 1}};
  StatusOr<Json> r = client_->create(strCat("/api/v1/namespaces/", event_ns, "/events"), event, &cancel_);
  if (!r.ok()) logger()->debug("event {} on {}: {}", reason, kube::objectName(object), r.status().ToString());
}

}  // namespace berth::csi
