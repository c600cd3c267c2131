#include "csi/volume_store.h"

namespace berth::csi {
namespace {

const std::vector<std::string> kMigrations = {
    "CREATE TABLE csi_volumes ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " capacity INTEGER NOT NULL,"
    " access_type INTEGER NOT NULL,"
    " path TEXT NOT NULL,"
    " source_kind TEXT NOT NULL,"
    " source_id TEXT NOT NULL,"
    " capacity_mode TEXT NOT NULL,"
    " project_id INTEGER NOT NULL,"
    " state INTEGER NOT NULL,"
    " created INTEGER NOT NULL);"
    "CREATE TABLE csi_snapshots ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " source_volume TEXT NOT NULL,"
    " size INTEGER NOT NULL,"
    " access_type INTEGER NOT NULL,"
    " path TEXT NOT NULL,"
    " ready INTEGER NOT NULL,"
    " state INTEGER NOT NULL,"
    " created INTEGER NOT NULL);"
    "CREATE TABLE csi_publications ("
    " volume_id TEXT NOT NULL REFERENCES csi_volumes(id) ON DELETE CASCADE,"
    " target_path TEXT NOT NULL,"
    " readonly INTEGER NOT NULL,"
    " staging_path TEXT NOT NULL,"
    " access_mode INTEGER NOT NULL,"
    " mount_flags TEXT NOT NULL,"
    " loop_device TEXT NOT NULL,"
    " PRIMARY KEY (volume_id, target_path));"
    "CREATE TABLE csi_stagings ("
    " volume_id TEXT NOT NULL REFERENCES csi_volumes(id) ON DELETE CASCADE,"
    " staging_path TEXT NOT NULL,"
    " access_mode INTEGER NOT NULL,"
    " loop_device TEXT NOT NULL,"
    " PRIMARY KEY (volume_id, staging_path));",
};

constexpr char kVolumeColumns[] =
    "id, name, capacity, access_type, path, source_kind, source_id, capacity_mode,"
    " project_id, state, created";
constexpr char kSnapshotColumns[] =
    "id, name, source_volume, size, access_type, path, ready, state, created";
constexpr char kPublicationColumns[] =
    "volume_id, target_path, readonly, staging_path, access_mode, mount_flags, loop_device";

VolumeRecord readVolume(const Statement& s) {
  VolumeRecord v;
  v.id = s.columnText(0);
  v.name = s.columnText(1);
  v.capacity_bytes = s.columnInt(2);
  v.access_type = static_cast<AccessType>(s.columnInt(3));
  v.path = s.columnText(4);
  v.source_kind = s.columnText(5);
  v.source_id = s.columnText(6);
  v.capacity_mode = s.columnText(7);
  v.project_id = static_cast<uint32_t>(s.columnInt(8));
  v.state = static_cast<RecordState>(s.columnInt(9));
  v.created_unix_ns = s.columnInt(10);
  return v;
}

SnapshotRecord readSnapshot(const Statement& s) {
  SnapshotRecord r;
  r.id = s.columnText(0);
  r.name = s.columnText(1);
  r.source_volume_id = s.columnText(2);
  r.size_bytes = s.columnInt(3);
  r.access_type = static_cast<AccessType>(s.columnInt(4));
  r.path = s.columnText(5);
  r.ready = s.columnInt(6) != 0;
  r.state = static_cast<RecordState>(s.columnInt(7));
  r.created_unix_ns = s.columnInt(8);
  return r;
}

PublicationRecord readPublication(const Statement& s) {
  PublicationRecord p;
  p.volume_id = s.columnText(0);
  p.target_path = s.columnText(1);
  p.readonly = s.columnInt(2) != 0;
  p.staging_path = s.columnText(3);
  p.access_mode = static_cast<int>(s.columnInt(4));
  p.mount_flags = s.columnText(5);
  p.loop_device = s.columnText(6);
  return p;
}

template <typename T, typename Reader>
StatusOr<std::vector<T>> collect(Statement& s, Reader read) {
  std::vector<T> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.step());
    if (!row) break;
    out.push_back(read(s));
  }
  return out;
}

// Runs an "UPDATE ... RETURNING id" bound by the caller and reports NotFound when no
// row changed (RETURNING, not changes(), so another thread's statement cannot
// interleave between the update and the check).
Status runExpectingRow(Statement& s, std::string_view what) {
  ASSIGN_OR_RETURN(bool row, s.step());
  if (!row) return notFound(what, " is not in the CSI metadata");
  while (true) {
    ASSIGN_OR_RETURN(bool more, s.step());
    if (!more) break;
  }
  return absl::OkStatus();
}

}  // namespace

const char* accessTypeName(AccessType type) {
  return type == AccessType::kBlock ? "block" : "mount";
}

StatusOr<std::unique_ptr<VolumeStore>> VolumeStore::open(Database* db) {
  RETURN_IF_ERROR_CTX(db->migrate("csi", kMigrations), "CSI volume metadata");
  return std::unique_ptr<VolumeStore>(new VolumeStore(db));
}

// --- volumes ---------------------------------------------------------------------

Status VolumeStore::insertVolume(const VolumeRecord& v) {
  ASSIGN_OR_RETURN(auto s, db_->prepare(strCat("INSERT INTO csi_volumes (", kVolumeColumns,
                                               ") VALUES (?,?,?,?,?,?,?,?,?,?,?)")));
  s.bind(1, v.id).bind(2, v.name).bind(3, v.capacity_bytes)
      .bind(4, static_cast<int64_t>(v.access_type)).bind(5, v.path).bind(6, v.source_kind)
      .bind(7, v.source_id).bind(8, v.capacity_mode)
      .bind(9, static_cast<int64_t>(v.project_id)).bind(10, static_cast<int64_t>(v.state))
      .bind(11, v.created_unix_ns);
  return withContext(s.run(), strCat("record volume \"", v.name, "\""));
}

Status VolumeStore::setVolumeState(const std::string& id, RecordState state) {
  ASSIGN_OR_RETURN(auto s, db_->prepare("UPDATE csi_volumes SET state = ? WHERE id = ? RETURNING id"));
  s.bind(1, static_cast<int64_t>(state)).bind(2, id);
  return runExpectingRow(s, strCat("volume ", id));
}

Status VolumeStore::setVolumeCapacity(const std::string& id, int64_t capacity_bytes) {
  ASSIGN_OR_RETURN(auto s, db_->prepare("UPDATE csi_volumes SET capacity = ? WHERE id = ? RETURNING id"));
  s.bind(1, capacity_bytes).bind(2, id);
  return runExpectingRow(s, strCat("volume ", id));
}

Status VolumeStore::deleteVolume(const std::string& id) {
  Transaction tx(*db_);
  RETURN_IF_ERROR(tx.status());
  for (const char* sql : {"DELETE FROM csi_publications WHERE volume_id = ?",
                          "DELETE FROM csi_stagings WHERE volume_id = ?",
                          "DELETE FROM csi_volumes WHERE id = ?"}) {
    ASSIGN_OR_RETURN(auto s, db_->prepare(sql));
    s.bind(1, id);
    RETURN_IF_ERROR(s.run());
  }
  return withContext(tx.commit(), strCat("forget volume ", id));
}

StatusOr<std::optional<VolumeRecord>> VolumeStore::getVolume(const std::string& id) {
  ASSIGN_OR_RETURN(auto s,
                   db_->prepare(strCat("SELECT ", kVolumeColumns, " FROM csi_volumes WHERE id = ?")));
  s.bind(1, id);
  ASSIGN_OR_RETURN(bool row, s.step());
  if (!row) return std::optional<VolumeRecord>();
  return std::optional<VolumeRecord>(readVolume(s));
}

StatusOr<std::optional<VolumeRecord>> VolumeStore::getVolumeByName(const std::string& name) {
  ASSIGN_OR_RETURN(auto s, db_->prepare(strCat("SELECT ", kVolumeColumns,
                                               " FROM csi_volumes WHERE name = ?")));
  s.bind(1, name);
  ASSIGN_OR_RETURN(bool row, s.step());
  if (!row) return std::optional<VolumeRecord>();
  return std::optional<VolumeRecord>(readVolume(s));
}

StatusOr<std::vector<VolumeRecord>> VolumeStore::listVolumes() {
  ASSIGN_OR_RETURN(auto s, db_->prepare(strCat("SELECT ", kVolumeColumns,
                                               " FROM csi_volumes ORDER BY rowid")));
  return collect<VolumeRecord>(s, readVolume);
}

StatusOr<int64_t> VolumeStore::reservedBytes() {
  ASSIGN_OR_RETURN(auto s, db_->prepare("SELECT COALESCE(SUM(capacity), 0) FROM csi_volumes"));
  ASSIGN_OR_RETURN(bool row, s.step());
  return row ? s.columnInt(0) : 0;
}

// --- snapshots -------------------------------------------------------------------

Status VolumeStore::insertSnapshot(const SnapshotRecord& r) {
  ASSIGN_OR_RETURN(auto s, db_->prepare(strCat("INSERT INTO csi_snapshots (", kSnapshotColumns,
                                               ") VALUES (?,?,?,?,?,?,?,?,?)")));
  s.bind(1, r.id).bind(2, r.name).bind(3, r.source_volume_id).bind(4, r.size_bytes)
      .bind(5, static_cast<int64_t>(r.access_type)).bind(6, r.path)
      .bind(7, static_cast<int64_t>(r.ready ? 1 : 0)).bind(8, static_cast<int64_t>(r.state))
      .bind(9, r.created_unix_ns);
  return withContext(s.run(), strCat("record snapshot \"", r.name, "\""));
}

Status VolumeStore::markSnapshotReady(const std::string& id, int64_t size_bytes) {
  ASSIGN_OR_RETURN(auto s, db_->prepare(
                               "UPDATE csi_snapshots SET state = ?, ready = 1, size = ? WHERE id = ? RETURNING id"));
  s.bind(1, static_cast<int64_t>(RecordState::kReady)).bind(2, size_bytes).bind(3, id);
  return runExpectingRow(s, strCat("snapshot ", id));
}

Status VolumeStore::setSnapshotState(const std::string& id, RecordState state) {
  ASSIGN_OR_RETURN(auto s, db_->prepare("UPDATE csi_snapshots SET state = ? WHERE id = ? RETURNING id"));
  s.bind(1, static_cast<int64_t>(state)).bind(2, id);
  return runExpectingRow(s, strCat("snapshot ", id));
}

Status VolumeStore::deleteSnapshot(const std::string& id) {
  ASSIGN_OR_RETURN(auto s, db_->prepare("DELETE FROM csi_snapshots WHERE id = ?"));
  s.bind(1, id);
  return withContext(s.run(), strCat("forget snapshot ", id));
}

StatusOr<std::optional<SnapshotRecord>> VolumeStore::getSnapshot(const std::string& id) {
  ASSIGN_OR_RETURN(auto s, db_->prepare(strCat("SELECT ", kSnapshotColumns,
                                               " FROM csi_snapshots WHERE id = ?")));
  s.bind(1, id);
  ASSIGN_OR_RETURN(bool row, s.step());
  if (!row) return std::optional<SnapshotRecord>();
  return std::optional<SnapshotRecord>(readSnapshot(s));
}

StatusOr<std::optional<SnapshotRecord>> VolumeStore::getSnapshotByName(const std::string& name) {
  ASSIGN_OR_RETURN(auto s, db_->prepare(strCat("SELECT ", kSnapshotColumns,
                                               " FROM csi_snapshots WHERE name = ?")));
  s.bind(1, name);
  ASSIGN_OR_RETURN(bool row, s.step());
  if (!row) return std::optional<SnapshotRecord>();
  return std::optional<SnapshotRecord>(readSnapshot(s));
}

StatusOr<std::vector<SnapshotRecord>> VolumeStore::listSnapshots() {
  ASSIGN_OR_RETURN(auto s, db_->prepare(strCat("SELECT ", kSnapshotColumns,
                                               " FROM csi_snapshots ORDER BY rowid")));
  return collect<SnapshotRecord>(s, readSnapshot);
}

// --- node side -------------------------------------------------------------------

Status VolumeStore::putPublication(const PublicationRecord& p) {
  ASSIGN_OR_RETURN(auto s, db_->prepare(strCat("INSERT OR REPLACE INTO csi_publications (",
                                               kPublicationColumns, ") VALUES (?,?,?,?,?,?,?)")));
  s.bind(1, p.volume_id).bind(2, p.target_path).bind(3, static_cast<int64_t>(p.readonly))
      .bind(4, p.staging_path).bind(5, static_cast<int64_t>(p.access_mode))
      .bind(6, p.mount_flags).bind(7, p.loop_device);
  return withContext(s.run(), strCat("record publication of volume ", p.volume_id, " at \"",
                                     p.target_path, "\""));
}

Status VolumeStore::deletePublication(const std::string& volume_id,
                                      const std::string& target_path) {
  ASSIGN_OR_RETURN(auto s, db_->prepare(
                               "DELETE FROM csi_publications WHERE volume_id = ? AND target_path = ?"));
  s.bind(1, volume_id).bind(2, target_path);
  return s.run();
}

StatusOr<std::vector<PublicationRecord>> VolumeStore::publications(const std::string& volume_id) {
  ASSIGN_OR_RETURN(auto s, db_->prepare(strCat("SELECT ", kPublicationColumns,
                                               " FROM csi_publications WHERE volume_id = ?"
                                               " ORDER BY rowid")));
  s.bind(1, volume_id);
  return collect<PublicationRecord>(s, readPublication);
}

StatusOr<std::vector<PublicationRecord>> VolumeStore::allPublications() {
  ASSIGN_OR_RETURN(auto s, db_->prepare(strCat("SELECT ", kPublicationColumns,
                                               " FROM csi_publications ORDER BY rowid")));
  return collect<PublicationRecord>(s, readPublication);
}

Status VolumeStore::putStaging(const StagingRecord& r) {
  ASSIGN_OR_RETURN(auto s, db_->prepare(
                               "INSERT OR REPLACE INTO csi_stagings (volume_id, staging_path,"
                               " access_mode, loop_device) VALUES (?,?,?,?)"));
  s.bind(1, r.volume_id).bind(2, r.staging_path).bind(3, static_cast<int64_t>(r.access_mode))
      .bind(4, r.loop_device);
  return withContext(s.run(), strCat("record staging of volume ", r.volume_id, " at \"",
                                     r.staging_path, "\""));
}

Status VolumeStore::deleteStaging(const std::string& volume_id, const std::string& staging_path) {
  ASSIGN_OR_RETURN(auto s, db_->prepare(
                               "DELETE FROM csi_stagings WHERE volume_id = ? AND staging_path = ?"));
  s.bind(1, volume_id).bind(2, staging_path);
  return s.run();
}

StatusOr<std::vector<StagingRecord>> VolumeStore::stagings(const std::string& volume_id) {
  ASSIGN_OR_RETURN(auto s, db_->prepare(
                               "SELECT volume_id, staging_path, access_mode, loop_device"
                               " FROM csi_stagings WHERE volume_id = ? ORDER BY rowid"));
  s.bind(1, volume_id);
  return collect<StagingRecord>(s, [](const Statement& st) {
    StagingRecord r;
    r.volume_id = st.columnText(0);
    r.staging_path = st.columnText(1);
    r.access_mode = static_cast<int>(st.columnInt(2));
    r.loop_device = st.columnText(3);
    return r;
  });
}

}  // namespace berth::csi
