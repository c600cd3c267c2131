#include "cri/pod_store.h"

#include <sys/random.h>

#include <mutex>

#include "nlohmann/json.hpp"

namespace berth::cri {
namespace {

namespace v1 = runtime::v1;

const std::vector<std::string> kMigrations = {
    "CREATE TABLE pods ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " config BLOB NOT NULL,"
    " state INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " runtime_handler TEXT NOT NULL,"
    " netns_path TEXT NOT NULL,"
    " ips TEXT NOT NULL,"
    " shim_dir TEXT NOT NULL,"
    " cgroup_parent TEXT NOT NULL);"
    "CREATE TABLE containers ("
    " id TEXT PRIMARY KEY,"
    " pod_id TEXT NOT NULL REFERENCES pods(id) ON DELETE CASCADE,"
    " name TEXT NOT NULL UNIQUE,"
    " config BLOB NOT NULL,"
    " state INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " started_at INTEGER NOT NULL,"
    " finished_at INTEGER NOT NULL,"
    " exit_code INTEGER NOT NULL,"
    " reason TEXT NOT NULL,"
    " message TEXT NOT NULL,"
    " image_ref TEXT NOT NULL,"
    " log_path TEXT NOT NULL,"
    " bundle TEXT NOT NULL,"
    " snapshot_key TEXT NOT NULL);"
    "CREATE INDEX containers_by_pod ON containers(pod_id);",
};

constexpr char kPodColumns[] =
    "id, config, state, created_at, runtime_handler, netns_path, ips, shim_dir, cgroup_parent";
constexpr char kContainerColumns[] =
    "id, pod_id, config, state, created_at, started_at, finished_at, exit_code, reason,"
    " message, image_ref, log_path, bundle, snapshot_key";

bool validId(const std::string& id) {
  if (id.size() != 64) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool labelsMatch(const google::protobuf::Map<std::string, std::string>& have,
                 const std::vector<std::pair<std::string, std::string>>& want) {
  for (const auto& [k, v] : want) {
    auto it = have.find(k);
    if (it == have.end() || it->second != v) return false;
  }
  return true;
}

StatusOr<PodRecord> readPod(const Statement& s) {
  PodRecord p;
  p.id = s.columnText(0);
  if (!p.config.ParseFromString(s.columnText(1))) {
    return absl::DataLossError(strCat("pod ", p.id, ": stored config does not parse"));
  }
  p.state = static_cast<v1::PodSandboxState>(s.columnInt(2));
  p.created_at = s.columnInt(3);
  p.runtime_handler = s.columnText(4);
  p.netns_path = s.columnText(5);
  p.ips = nlohmann::json::parse(s.columnText(6)).get<std::vector<std::string>>();
  p.shim_dir = s.columnText(7);
  p.cgroup_parent = s.columnText(8);
  return p;
}

StatusOr<ContainerRecord> readContainer(const Statement& s) {
  ContainerRecord c;
  c.id = s.columnText(0);
  c.pod_id = s.columnText(1);
  if (!c.config.ParseFromString(s.columnText(2))) {
    return absl::DataLossError(strCat("container ", c.id, ": stored config does not parse"));
  }
  c.state = static_cast<v1::ContainerState>(s.columnInt(3));
  c.created_at = s.columnInt(4);
  c.started_at = s.columnInt(5);
  c.finished_at = s.columnInt(6);
  c.exit_code = static_cast<int32_t>(s.columnInt(7));
  c.reason = s.columnText(8);
  c.message = s.columnText(9);
  c.image_ref = s.columnText(10);
  c.log_path = s.columnText(11);
  c.bundle = s.columnText(12);
  c.snapshot_key = s.columnText(13);
  return c;
}

}  // namespace

std::string newId() {
  unsigned char bytes[32];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t n = ::getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string id;
  id.reserve(2 * sizeof(bytes));
  for (unsigned char b : bytes) {
    id.push_back(kDigits[b >> 4]);
    id.push_back(kDigits[b & 15]);
  }
  return id;
}

class PodStore::Impl {
 public:
  Database* db = nullptr;
  mutable std::mutex mu;

  // Rows whose id starts with `prefix`: exactly one, else NotFound / ambiguous.
  template <typename Record, typename Reader>
  StatusOr<Record> getOne(const char* table, const char* columns, const char* kind,
                          const std::string& prefix, Reader read) const {
    if (prefix.empty()) return invalidArgument(kind, " ID is empty");
    std::lock_guard<std::mutex> lock(mu);
    ASSIGN_OR_RETURN(Statement s,
                     db->prepare(strCat("SELECT ", columns, " FROM ", table,
                                        " WHERE substr(id, 1, length(?1)) = ?1 LIMIT 2")));
    s.bind(1, prefix);
    ASSIGN_OR_RETURN(bool row, s.step());
    if (!row) return notFound(kind, " \"", prefix, "\" not found");
    ASSIGN_OR_RETURN(Record r, read(s));
    ASSIGN_OR_RETURN(bool second, s.step());
    if (second) {
      return failedPrecondition(kind, " ID prefix \"", prefix,
                                "\" is ambiguous; give more characters");
    }
    return r;
  }
};

StatusOr<std::unique_ptr<PodStore>> PodStore::open(Database* db) {
  RETURN_IF_ERROR(db->migrate("pods", kMigrations));
  auto impl = std::make_unique<Impl>();
  impl->db = db;
  return std::unique_ptr<PodStore>(new PodStore(std::move(impl)));
}

PodStore::PodStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PodStore::~PodStore() = default;

std::string PodStore::podName(const v1::PodSandboxMetadata& m) {
  return strCat(m.name(), "_", m.namespace_(), "_", m.uid(), "_", m.attempt());
}

std::string PodStore::containerName(const v1::ContainerMetadata& m,
                                    const v1::PodSandboxMetadata& pod) {
  return strCat(m.name(), "_", pod.name(), "_", pod.namespace_(), "_", pod.uid(), "_",
                m.attempt());
}

Status PodStore::addPod(const PodRecord& pod) {
  if (!validId(pod.id)) return invalidArgument("pod ID \"", pod.id, "\" is not 64 hex digits");
  const v1::PodSandboxMetadata& m = pod.config.metadata();
  if (m.name().empty() || m.namespace_().empty() || m.uid().empty()) {
    return invalidArgument("PodSandboxConfig.metadata: name, namespace and uid are required");
  }
  const std::string name = podName(m);
  std::lock_guard<std::mutex> lock(impl_->mu);
  ASSIGN_OR_RETURN(Statement holder, impl_->db->prepare("SELECT id FROM pods WHERE name = ?1"));
  holder.bind(1, name);
  ASSIGN_OR_RETURN(bool taken, holder.step());
  if (taken) {
    return alreadyExists("pod sandbox name \"", name, "\" is reserved by pod ",
                         holder.columnText(0), "; remove it first or use another attempt");
  }
  ASSIGN_OR_RETURN(Statement s,
                   impl_->db->prepare(strCat("INSERT INTO pods(name, ", kPodColumns,
                                             ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")));
  s.bind(1, name)
      .bind(2, pod.id)
      .bind(3, pod.config.SerializeAsString())
      .bind(4, static_cast<int64_t>(pod.state))
      .bind(5, pod.created_at)
      .bind(6, pod.runtime_handler)
      .bind(7, pod.netns_path)
      .bind(8, nlohmann::json(pod.ips).dump())
      .bind(9, pod.shim_dir)
      .bind(10, pod.cgroup_parent);
  return withContext(s.run(), strCat("record pod ", pod.id));
}

Status PodStore::updatePod(const PodRecord& pod) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  ASSIGN_OR_RETURN(Statement s, impl_->db->prepare(
                                    "UPDATE pods SET state = ?2, netns_path = ?3, ips = ?4,"
                                    " shim_dir = ?5, cgroup_parent = ?6 WHERE id = ?1"));
  s.bind(1, pod.id)
      .bind(2, static_cast<int64_t>(pod.state))
      .bind(3, pod.netns_path)
      .bind(4, nlohmann::json(pod.ips).dump())
      .bind(5, pod.shim_dir)
      .bind(6, pod.cgroup_parent);
  RETURN_IF_ERROR_CTX(s.run(), strCat("update pod ", pod.id));
  if (impl_->db->changes() == 0) return notFound("pod sandbox \"", pod.id, "\" not found");
  return absl::OkStatus();
}

StatusOr<PodRecord> PodStore::getPod(const std::string& id_or_prefix) const {
  return impl_->getOne<PodRecord>("pods", kPodColumns, "pod sandbox", id_or_prefix, readPod);
}

StatusOr<std::vector<PodRecord>> PodStore::listPods(const PodFilter& filter) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  ASSIGN_OR_RETURN(Statement s,
                   impl_->db->prepare(strCat("SELECT ", kPodColumns, " FROM pods"
                                             " WHERE substr(id, 1, length(?1)) = ?1"
                                             " ORDER BY created_at, id")));
  s.bind(1, filter.id_prefix);
  std::vector<PodRecord> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.step());
    if (!row) break;
    ASSIGN_OR_RETURN(PodRecord p, readPod(s));
    if (filter.state && p.state != *filter.state) continue;
    if (!labelsMatch(p.config.labels(), filter.labels)) continue;
    out.push_back(std::move(p));
  }
  return out;
}

Status PodStore::removePod(const std::string& id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  ASSIGN_OR_RETURN(Statement s, impl_->db->prepare("DELETE FROM pods WHERE id = ?1"));
  s.bind(1, id);
  return withContext(s.run(), strCat("remove pod ", id));
}

Status PodStore::addContainer(const ContainerRecord& c) {
  if (!validId(c.id)) {
    return invalidArgument("container ID \"", c.id, "\" is not 64 hex digits");
  }
  if (c.config.metadata().name().empty()) {
    return invalidArgument("ContainerConfig.metadata.name is required");
  }
  ASSIGN_OR_RETURN(PodRecord pod, getPod(c.pod_id));
  if (pod.id != c.pod_id) return notFound("pod sandbox \"", c.pod_id, "\" not found");
  const std::string name = containerName(c.config.metadata(), pod.config.metadata());
  std::lock_guard<std::mutex> lock(impl_->mu);
  ASSIGN_OR_RETURN(Statement holder,
                   impl_->db->prepare("SELECT id FROM containers WHERE name = ?1"));
  holder.bind(1, name);
  ASSIGN_OR_RETURN(bool taken, holder.step());
  if (taken) {
    return alreadyExists("container name \"", name, "\" is reserved by container ",
                         holder.columnText(0), "; remove it first or use another attempt");
  }
  ASSIGN_OR_RETURN(
      Statement s,
      impl_->db->prepare(strCat("INSERT INTO containers(name, ", kContainerColumns,
                                ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,"
                                " ?13, ?14, ?15)")));
  s.bind(1, name)
      .bind(2, c.id)
      .bind(3, c.pod_id)
      .bind(4, c.config.SerializeAsString())
      .bind(5, static_cast<int64_t>(c.state))
      .bind(6, c.created_at)
      .bind(7, c.started_at)
      .bind(8, c.finished_at)
      .bind(9, static_cast<int64_t>(c.exit_code))
      .bind(10, c.reason)
      .bind(11, c.message)
      .bind(12, c.image_ref)
      .bind(13, c.log_path)
      .bind(14, c.bundle)
      .bind(15, c.snapshot_key);
  return withContext(s.run(), strCat("record container ", c.id));
}

Status PodStore::updateContainer(const ContainerRecord& c) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  ASSIGN_OR_RETURN(Statement s,
                   impl_->db->prepare("UPDATE containers SET state = ?2, started_at = ?3,"
                                      " finished_at = ?4, exit_code = ?5, reason = ?6,"
                                      " message = ?7 WHERE id = ?1"));
  s.bind(1, c.id)
      .bind(2, static_cast<int64_t>(c.state))
      .bind(3, c.started_at)
      .bind(4, c.finished_at)
      .bind(5, static_cast<int64_t>(c.exit_code))
      .bind(6, c.reason)
      .bind(7, c.message);
  RETURN_IF_ERROR_CTX(s.run(), strCat("update container ", c.id));
  if (impl_->db->changes() == 0) return notFound("container \"", c.id, "\" not found");
  return absl::OkStatus();
}

Status PodStore::updateContainerConfig(const ContainerRecord& c) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  ASSIGN_OR_RETURN(Statement s,
                   impl_->db->prepare("UPDATE containers SET config = ?2 WHERE id = ?1"));
  s.bind(1, c.id).bind(2, c.config.SerializeAsString());
  RETURN_IF_ERROR_CTX(s.run(), strCat("update the config of container ", c.id));
  if (impl_->db->changes() == 0) return notFound("container \"", c.id, "\" not found");
  return absl::OkStatus();
}

StatusOr<ContainerRecord> PodStore::getContainer(const std::string& id_or_prefix) const {
  return impl_->getOne<ContainerRecord>("containers", kContainerColumns, "container",
                                        id_or_prefix, readContainer);
}

StatusOr<std::vector<ContainerRecord>> PodStore::listContainers(
    const ContainerFilter& filter) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  ASSIGN_OR_RETURN(Statement s,
                   impl_->db->prepare(strCat("SELECT ", kContainerColumns, " FROM containers"
                                             " WHERE substr(id, 1, length(?1)) = ?1"
                                             " AND substr(pod_id, 1, length(?2)) = ?2"
                                             " ORDER BY created_at, id")));
  s.bind(1, filter.id_prefix).bind(2, filter.pod_id_prefix);
  std::vector<ContainerRecord> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.step());
    if (!row) break;
    ASSIGN_OR_RETURN(ContainerRecord c, readContainer(s));
    if (filter.state && c.state != *filter.state) continue;
    if (!labelsMatch(c.config.labels(), filter.labels)) continue;
    out.push_back(std::move(c));
  }
  return out;
}

Status PodStore::removeContainer(const std::string& id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  ASSIGN_OR_RETURN(Statement s, impl_->db->prepare("DELETE FROM containers WHERE id = ?1"));
  s.bind(1, id);
  return withContext(s.run(), strCat("remove container ", id));
}

}  // namespace berth::cri
