#include "runtime/image/image_store.h"

#include <algorithm>
#include <utility>

#include "common/json.h"
#include "runtime/image/reference.h"

namespace berth::image {
namespace {

// Schema of the "images" component. Lists are JSON arrays of strings (read back with
// json_each for the GC unions); times are nanoseconds since the Unix epoch.
const std::vector<std::string> kSchema = {
    "CREATE TABLE images ("
    " id TEXT PRIMARY KEY,"
    " manifest_digest TEXT NOT NULL,"
    " manifest_media_type TEXT NOT NULL,"
    " config_media_type TEXT NOT NULL,"
    " platform TEXT NOT NULL,"
    " layer_digests TEXT NOT NULL,"
    " diff_ids TEXT NOT NULL,"
    " chain_ids TEXT NOT NULL,"
    " blobs TEXT NOT NULL,"
    " size INTEGER NOT NULL,"
    " pinned INTEGER NOT NULL,"
    " created INTEGER NOT NULL,"
    " updated INTEGER NOT NULL);"
    "CREATE TABLE image_names ("
    " name TEXT PRIMARY KEY,"
    " kind TEXT NOT NULL CHECK (kind IN ('tag', 'digest')),"
    " image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE);"
    "CREATE INDEX image_names_by_image ON image_names(image_id);",
};

// Every read of a whole record is one statement, so it sees one snapshot even while
// another process writes.
constexpr char kSelectRecord[] =
    "SELECT id, manifest_digest, manifest_media_type, config_media_type, platform,"
    " layer_digests, diff_ids, chain_ids, blobs, size, pinned, created, updated,"
    " (SELECT json_group_array(name) FROM image_names"
    "   WHERE image_id = images.id AND kind = 'tag'),"
    " (SELECT json_group_array(name) FROM image_names"
    "   WHERE image_id = images.id AND kind = 'digest')"
    " FROM images";

constexpr char kListHint[] = "list images with berth-image list";
constexpr size_t kMinPrefix = 12;
constexpr size_t kMaxCandidates = 10;

bool isLowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

Status validateId(const std::string& id) {
  if (id.empty()) return invalidArgument("image ID is empty; give the config digest \"sha256:<64 hex>\"");
  if (id.size() != 7 + 64 || id.compare(0, 7, "sha256:") != 0 || !isLowerHex(id.substr(7))) {
    return invalidArgument("image ID \"", id,
                           "\" is malformed; it must be \"sha256:\" and 64 lowercase hex digits");
  }
  return absl::OkStatus();
}

// Checks that `name` is a normalised tag (kind "tag") or repo digest (kind "digest").
Status validateName(const std::string& id, const std::string& name, bool tag) {
  const char* what = tag ? "repo tag" : "repo digest";
  StatusOr<Reference> ref = parseReference(name);
  if (!ref.ok()) {
    return invalidArgument("image ", id, ": ", what, ": ", std::string(ref.status().message()));
  }
  if (tag && (ref->tag.empty() || !ref->digest.empty())) {
    return invalidArgument("image ", id, ": repo tag \"", name,
                           "\" must be \"<domain>/<path>:<tag>\" without a digest");
  }
  if (!tag && (ref->digest.empty() || !ref->tag.empty())) {
    return invalidArgument("image ", id, ": repo digest \"", name,
                           "\" must be \"<domain>/<path>@<digest>\" without a tag");
  }
  if (ref->string() != name) {
    return invalidArgument("image ", id, ": ", what, " \"", name, "\" is not normalised; use \"",
                           ref->string(), "\"");
  }
  return absl::OkStatus();
}

Status validateDigests(const std::string& id, const char* field,
                       const std::vector<std::string>& digests) {
  for (const std::string& d : digests) {
    Status st = validateDigest(d);
    if (!st.ok()) return invalidArgument("image ", id, ": ", field, ": ", std::string(st.message()));
  }
  return absl::OkStatus();
}

Status validateRecord(const ImageRecord& r) {
  RETURN_IF_ERROR(validateId(r.id));
  for (const std::string& t : r.repo_tags) RETURN_IF_ERROR(validateName(r.id, t, true));
  for (const std::string& d : r.repo_digests) RETURN_IF_ERROR(validateName(r.id, d, false));
  if (!r.manifest_digest.empty()) {
    RETURN_IF_ERROR(validateDigests(r.id, "manifest_digest", {r.manifest_digest}));
  }
  RETURN_IF_ERROR(validateDigests(r.id, "layer_digests", r.layer_digests));
  RETURN_IF_ERROR(validateDigests(r.id, "diff_ids", r.diff_ids));
  RETURN_IF_ERROR(validateDigests(r.id, "chain_ids", r.chain_ids));
  RETURN_IF_ERROR(validateDigests(r.id, "blobs", r.blobs));
  if (r.size < 0) return invalidArgument("image ", r.id, ": size ", r.size, " is negative");
  return absl::OkStatus();
}

std::string toJson(const std::vector<std::string>& list) { return json::dump(json::Json(list)); }

StatusOr<std::vector<std::string>> fromJson(const std::string& text, const std::string& id,
                                            const char* column) {
  StatusOr<json::Json> doc = json::parse(text, strCat("column ", column, " of image ", id));
  if (!doc.ok()) return absl::DataLossError(std::string(doc.status().message()));
  std::vector<std::string> out;
  if (!doc->is_array()) {
    return absl::DataLossError(strCat("column ", column, " of image ", id, " is not a JSON array"));
  }
  for (const json::Json& v : *doc) {
    if (!v.is_string()) {
      return absl::DataLossError(
          strCat("column ", column, " of image ", id, " holds a non-string element"));
    }
    out.push_back(v.get<std::string>());
  }
  return out;
}

int64_t toNanos(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

std::chrono::system_clock::time_point fromNanos(int64_t ns) {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(ns)));
}

// Reads one row of kSelectRecord.
StatusOr<ImageRecord> readRecord(const Statement& s) {
  ImageRecord r;
  r.id = s.columnText(0);
  r.manifest_digest = s.columnText(1);
  r.manifest_media_type = s.columnText(2);
  r.config_media_type = s.columnText(3);
  r.platform = s.columnText(4);
  ASSIGN_OR_RETURN(r.layer_digests, fromJson(s.columnText(5), r.id, "layer_digests"));
  ASSIGN_OR_RETURN(r.diff_ids, fromJson(s.columnText(6), r.id, "diff_ids"));
  ASSIGN_OR_RETURN(r.chain_ids, fromJson(s.columnText(7), r.id, "chain_ids"));
  ASSIGN_OR_RETURN(r.blobs, fromJson(s.columnText(8), r.id, "blobs"));
  r.size = s.columnInt(9);
  r.pinned = s.columnInt(10) != 0;
  r.created = fromNanos(s.columnInt(11));
  r.updated = fromNanos(s.columnInt(12));
  ASSIGN_OR_RETURN(r.repo_tags, fromJson(s.columnText(13), r.id, "image_names"));
  ASSIGN_OR_RETURN(r.repo_digests, fromJson(s.columnText(14), r.id, "image_names"));
  std::sort(r.repo_tags.begin(), r.repo_tags.end());
  std::sort(r.repo_digests.begin(), r.repo_digests.end());
  return r;
}

}  // namespace

class ImageStore::Impl {
 public:
  explicit Impl(Database* db) : db_(db) {}

  Status put(const ImageRecord& record) {
    RETURN_IF_ERROR_CTX(validateRecord(record), "record image");
    const std::string what = strCat("record image ", record.id);
    std::lock_guard<std::mutex> lock(mu_);
    Transaction tx(*db_);
    RETURN_IF_ERROR_CTX(tx.status(), what);
    const int64_t now = toNanos(std::chrono::system_clock::now());
    // `created` is when the image was first recorded (record.created is ignored) and
    // is kept by later puts; `updated` is now.
    {
      ASSIGN_OR_RETURN(
          Statement up,
          db_->prepare(
              "INSERT INTO images(id, manifest_digest, manifest_media_type, config_media_type,"
              " platform, layer_digests, diff_ids, chain_ids, blobs, size, pinned, created,"
              " updated) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
              " ON CONFLICT(id) DO UPDATE SET manifest_digest = excluded.manifest_digest,"
              " manifest_media_type = excluded.manifest_media_type,"
              " config_media_type = excluded.config_media_type, platform = excluded.platform,"
              " layer_digests = excluded.layer_digests, diff_ids = excluded.diff_ids,"
              " chain_ids = excluded.chain_ids, blobs = excluded.blobs, size = excluded.size,"
              " pinned = excluded.pinned, updated = excluded.updated"));
      up.bind(1, record.id)
          .bind(2, record.manifest_digest)
          .bind(3, record.manifest_media_type)
          .bind(4, record.config_media_type)
          .bind(5, record.platform)
          .bind(6, toJson(record.layer_digests))
          .bind(7, toJson(record.diff_ids))
          .bind(8, toJson(record.chain_ids))
          .bind(9, toJson(record.blobs))
          .bind(10, record.size)
          .bind(11, int64_t{record.pinned ? 1 : 0})
          .bind(12, now)
          .bind(13, now);
      RETURN_IF_ERROR_CTX(up.run(), what);
    }
    {
      // A name held by another image moves to this one; names already recorded for
      // this image stay (merge).
      ASSIGN_OR_RETURN(Statement name,
                       db_->prepare("INSERT INTO image_names(name, kind, image_id)"
                                    " VALUES(?1, ?2, ?3) ON CONFLICT(name) DO UPDATE SET"
                                    " kind = excluded.kind, image_id = excluded.image_id"));
      auto addNames = [&](const std::vector<std::string>& names, const char* kind) -> Status {
        for (const std::string& n : names) {
          name.reset();
          name.bind(1, n).bind(2, std::string_view(kind)).bind(3, record.id);
          RETURN_IF_ERROR(name.run());
        }
        return absl::OkStatus();
      };
      RETURN_IF_ERROR_CTX(addNames(record.repo_tags, "tag"), what);
      RETURN_IF_ERROR_CTX(addNames(record.repo_digests, "digest"), what);
    }
    RETURN_IF_ERROR_CTX(tx.commit(), what);
    return absl::OkStatus();
  }

  StatusOr<ImageRecord> get(const std::string& id) const {
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(std::optional<ImageRecord> r, getLocked(id));
    if (!r) return notFound("image ", id, " not found; ", kListHint);
    return std::move(*r);
  }

  StatusOr<ImageRecord> resolve(const std::string& name) const {
    std::lock_guard<std::mutex> lock(mu_);
    std::string hex = name;
    if (hex.compare(0, 7, "sha256:") == 0) hex = hex.substr(7);
    const bool looks_like_id = !hex.empty() && hex.size() <= 64 && isLowerHex(hex);
    if (looks_like_id && hex.size() == 64) {
      ASSIGN_OR_RETURN(std::optional<ImageRecord> r, getLocked("sha256:" + hex));
      if (r) return std::move(*r);
    } else if (looks_like_id && hex.size() >= kMinPrefix) {
      // ids are "sha256:" + lowercase hex, so [prefix, prefix + "g") holds exactly the
      // ids that start with `prefix` (and the range uses the primary key index).
      const std::string lower = "sha256:" + hex;
      ASSIGN_OR_RETURN(Statement q,
                       db_->prepare("SELECT id FROM images WHERE id >= ?1 AND id < ?2"
                                    " ORDER BY id LIMIT ?3"));
      q.bind(1, lower).bind(2, lower + "g").bind(3, static_cast<int64_t>(kMaxCandidates + 1));
      std::vector<std::string> ids;
      for (;;) {
        ASSIGN_OR_RETURN(bool row, q.step());
        if (!row) break;
        ids.push_back(q.columnText(0));
      }
      if (ids.size() > 1) {
        std::string list = joinStrings(
            std::vector<std::string>(ids.begin(),
                                     ids.begin() + std::min(ids.size(), kMaxCandidates)),
            ", ");
        if (ids.size() > kMaxCandidates) list += ", ...";
        return failedPrecondition("image ID prefix \"", name, "\" is ambiguous: it matches ",
                                  list, "; give more hex digits");
      }
      if (ids.size() == 1) {
        ASSIGN_OR_RETURN(std::optional<ImageRecord> r, getLocked(ids[0]));
        if (r) return std::move(*r);
      }
    }
    ASSIGN_OR_RETURN(Statement q,
                     db_->prepare(strCat(kSelectRecord,
                                         " WHERE id = (SELECT image_id FROM image_names"
                                         " WHERE name = ?1)")));
    q.bind(1, name);
    ASSIGN_OR_RETURN(bool row, q.step());
    if (row) return readRecord(q);
    if (looks_like_id && hex.size() < kMinPrefix) {
      return notFound("image \"", name, "\" not found (an ID prefix needs at least ",
                      kMinPrefix, " hex digits); ", kListHint);
    }
    return notFound("image \"", name, "\" not found; ", kListHint);
  }

  StatusOr<std::vector<ImageRecord>> list() const {
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(Statement q, db_->prepare(strCat(kSelectRecord, " ORDER BY id")));
    std::vector<ImageRecord> out;
    for (;;) {
      ASSIGN_OR_RETURN(bool row, q.step());
      if (!row) break;
      ASSIGN_OR_RETURN(ImageRecord r, readRecord(q));
      out.push_back(std::move(r));
    }
    return out;
  }

  StatusOr<bool> untag(const std::string& name) {
    const std::string what = strCat("untag \"", name, "\"");
    std::lock_guard<std::mutex> lock(mu_);
    Transaction tx(*db_);
    RETURN_IF_ERROR_CTX(tx.status(), what);
    std::string id;
    {
      ASSIGN_OR_RETURN(Statement q,
                       db_->prepare("DELETE FROM image_names WHERE name = ?1 RETURNING image_id"));
      q.bind(1, name);
      ASSIGN_OR_RETURN(bool row, q.step());
      if (!row) {
        return notFound("image name \"", name, "\" not found; ", kListHint);
      }
      id = q.columnText(0);
      RETURN_IF_ERROR_CTX(q.run(), what);
    }
    bool removed = false;
    {
      ASSIGN_OR_RETURN(Statement q,
                       db_->prepare("DELETE FROM images WHERE id = ?1 AND NOT EXISTS"
                                    " (SELECT 1 FROM image_names WHERE image_id = ?1)"));
      q.bind(1, id);
      RETURN_IF_ERROR_CTX(q.run(), what);
      removed = db_->changes() > 0;
    }
    RETURN_IF_ERROR_CTX(tx.commit(), what);
    return removed;
  }

  Status remove(const std::string& id) {
    const std::string what = strCat("remove image ", id);
    std::lock_guard<std::mutex> lock(mu_);
    Transaction tx(*db_);
    RETURN_IF_ERROR_CTX(tx.status(), what);
    {
      // Its names go with it (ON DELETE CASCADE).
      ASSIGN_OR_RETURN(Statement q, db_->prepare("DELETE FROM images WHERE id = ?1"));
      q.bind(1, id);
      RETURN_IF_ERROR_CTX(q.run(), what);
      if (db_->changes() == 0) return notFound("image ", id, " not found; ", kListHint);
    }
    RETURN_IF_ERROR_CTX(tx.commit(), what);
    return absl::OkStatus();
  }

  Status setPinned(const std::string& id, bool pinned) {
    const std::string what = strCat("set pinned on image ", id);
    std::lock_guard<std::mutex> lock(mu_);
    Transaction tx(*db_);
    RETURN_IF_ERROR_CTX(tx.status(), what);
    {
      ASSIGN_OR_RETURN(Statement q, db_->prepare("UPDATE images SET pinned = ?2 WHERE id = ?1"));
      q.bind(1, id).bind(2, int64_t{pinned ? 1 : 0});
      RETURN_IF_ERROR_CTX(q.run(), what);
      if (db_->changes() == 0) return notFound("image ", id, " not found; ", kListHint);
    }
    RETURN_IF_ERROR_CTX(tx.commit(), what);
    return absl::OkStatus();
  }

  StatusOr<std::set<std::string>> referenced(const char* column) const {
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(Statement q, db_->prepare(strCat("SELECT DISTINCT j.value FROM images,"
                                                      " json_each(images.", column, ") AS j")));
    std::set<std::string> out;
    for (;;) {
      ASSIGN_OR_RETURN(bool row, q.step());
      if (!row) break;
      out.insert(q.columnText(0));
    }
    return out;
  }

 private:
  // The record `id`, or nullopt. Requires mu_.
  StatusOr<std::optional<ImageRecord>> getLocked(const std::string& id) const {
    ASSIGN_OR_RETURN(Statement q, db_->prepare(strCat(kSelectRecord, " WHERE id = ?1")));
    q.bind(1, id);
    ASSIGN_OR_RETURN(bool row, q.step());
    if (!row) return std::optional<ImageRecord>();
    ASSIGN_OR_RETURN(ImageRecord r, readRecord(q));
    return std::optional<ImageRecord>(std::move(r));
  }

  Database* db_;
  // Serialises this store's use of the connection: a Transaction is per connection,
  // so two threads must not interleave statements inside one.
  mutable std::mutex mu_;
};

StatusOr<std::unique_ptr<ImageStore>> ImageStore::open(Database* db) {
  RETURN_IF_ERROR_CTX(db->migrate("images", kSchema), "open image store");
  return std::unique_ptr<ImageStore>(new ImageStore(std::make_unique<Impl>(db)));
}

ImageStore::ImageStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ImageStore::~ImageStore() = default;

Status ImageStore::put(const ImageRecord& record) { return impl_->put(record); }
StatusOr<ImageRecord> ImageStore::get(const std::string& id) const { return impl_->get(id); }
StatusOr<ImageRecord> ImageStore::resolve(const std::string& name) const {
  return impl_->resolve(name);
}
StatusOr<std::vector<ImageRecord>> ImageStore::list() const { return impl_->list(); }
StatusOr<bool> ImageStore::untag(const std::string& name) { return impl_->untag(name); }
Status ImageStore::remove(const std::string& id) { return impl_->remove(id); }
Status ImageStore::setPinned(const std::string& id, bool pinned) {
  return impl_->setPinned(id, pinned);
}
StatusOr<std::set<std::string>> ImageStore::referencedBlobs() const {
  return impl_->referenced("blobs");
}
StatusOr<std::set<std::string>> ImageStore::referencedChainIds() const {
  return impl_->referenced("chain_ids");
}

}  // namespace berth::image
