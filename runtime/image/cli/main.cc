// berth-image: the image library on the command line, to try pulls, imports and
// snapshots by hand until berthctl (the CRI issue) takes these commands over.
//
//   berth-image [--root DIR] pull [--creds USER:PASS | --identity-token T] REF
//   berth-image images | inspect NAME | rm NAME... | import PATH | export -o PATH NAME...
//   berth-image gc | df | snapshots | mount NAME KEY TARGET | unmount KEY TARGET
#include <sys/mount.h>

#include <cstdio>
#include <iostream>

#include "CLI/CLI.hpp"
#include "common/fs.h"
#include "common/log.h"
#include "nlohmann/json.hpp"
#include "runtime/image/image_service.h"

namespace berth::image {
namespace {

struct Globals {
  std::string root = "/var/lib/berth";
  std::string db;
  std::string registries_conf;
  std::string certs_dir = "/etc/containers/certs.d";
  std::vector<std::string> insecure;
  std::string platform;
  int downloads = 3;
  std::string log_level = "warn";
};

std::string humanSize(int64_t bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f%s" : "%.3g%s", v, units[u]);
  return buf;
}

std::string shortId(const std::string& id) {
  size_t colon = id.find(':');
  return id.substr(colon == std::string::npos ? 0 : colon + 1, 13);
}

int fail(const Status& st) {
  std::fprintf(stderr, "berth-image: %s\n", std::string(st.message()).c_str());
  return 1;
}

StatusOr<std::unique_ptr<ImageService>> openService(const Globals& g,
                                                    std::unique_ptr<Database>& db) {
  ImageServiceOptions options;
  options.root = g.root;
  options.registries_conf = g.registries_conf;
  options.certs_dir = g.certs_dir;
  options.insecure_registries = g.insecure;
  options.max_concurrent_downloads = g.downloads;
  if (!g.platform.empty()) {
    ASSIGN_OR_RETURN(options.platform, parsePlatform(g.platform));
  }
  ASSIGN_OR_RETURN(db, Database::open(g.db.empty() ? fs::join(g.root, "berth.db") : g.db));
  return ImageService::open(options, db.get());
}

nlohmann::json recordJson(const ImageRecord& r) {
  return {{"id", r.id},
          {"repoTags", r.repo_tags},
          {"repoDigests", r.repo_digests},
          {"manifestDigest", r.manifest_digest},
          {"manifestMediaType", r.manifest_media_type},
          {"configMediaType", r.config_media_type},
          {"platform", r.platform},
          {"size", r.size},
          {"pinned", r.pinned},
          {"layers", r.layer_digests},
          {"diffIDs", r.diff_ids},
          {"chainIDs", r.chain_ids}};
}

nlohmann::json configJson(const ImageConfig& c) {
  return {{"user", c.config.user},
          {"env", c.config.env},
          {"entrypoint", c.config.entrypoint},
          {"cmd", c.config.cmd},
          {"workingDir", c.config.workingDir},
          {"stopSignal", c.config.stopSignal},
          {"labels", c.config.labels},
          {"created", c.created}};
}

void printImages(const std::vector<ImageRecord>& images) {
  std::printf("%-50s %-20s %-14s %s\n", "IMAGE", "TAG", "IMAGE ID", "SIZE");
  for (const ImageRecord& r : images) {
    std::vector<std::pair<std::string, std::string>> rows;
    for (const std::string& t : r.repo_tags) {
      size_t colon = t.rfind(':');
      rows.emplace_back(t.substr(0, colon), t.substr(colon + 1));
    }
    if (rows.empty()) {
      for (const std::string& d : r.repo_digests) rows.emplace_back(d.substr(0, d.find('@')), "<none>");
    }
    if (rows.empty()) rows.emplace_back("<none>", "<none>");
    for (const auto& [repo, tag] : rows) {
      std::printf("%-50s %-20s %-14s %s\n", repo.c_str(), tag.c_str(), shortId(r.id).c_str(),
                  humanSize(r.size).c_str());
    }
  }
}

}  // namespace

int run(int argc, char** argv) {
  CLI::App app{"berth-image: pull, list, inspect, remove, import and export images, and "
               "mount their snapshots, in berth's image store"};
  app.require_subcommand(1);
  Globals g;
  app.add_option("--root", g.root, "image root (content/, snapshots/)")->capture_default_str();
  app.add_option("--db", g.db, "metadata database (default <root>/berth.db)");
  app.add_option("--registries-conf", g.registries_conf,
                 "containers-registries.conf(5) file (default /etc/containers/registries.conf "
                 "when present)");
  app.add_option("--registry-certs-dir", g.certs_dir, "per-registry TLS files (certs.d)")
      ->capture_default_str();
  app.add_option("--insecure-registry", g.insecure,
                 "host[:port] to reach over plain HTTP or unverified TLS (repeatable)");
  app.add_option("--platform", g.platform, "os/arch[/variant] to pull (default linux/amd64)");
  app.add_option("--max-concurrent-downloads", g.downloads, "layer downloads at once")
      ->capture_default_str();
  app.add_option("--log-level", g.log_level, "debug, info, warn, error")->capture_default_str();

  std::string ref, creds, identity_token, path, format = "oci", key, target;
  std::vector<std::string> names;
  bool quiet = false;
  auto* pull = app.add_subcommand("pull", "pull an image from its registry");
  pull->add_option("reference", ref, "image reference, e.g. busybox:1.36")->required();
  pull->add_option("--creds", creds, "USER:PASSWORD for the registry");
  pull->add_option("--identity-token", identity_token, "OAuth2 refresh token for the registry");
  auto* images = app.add_subcommand("images", "list images")->alias("list");
  images->add_flag("-q,--quiet", quiet, "only image IDs");
  auto* inspect = app.add_subcommand("inspect", "show an image's record and config as JSON");
  inspect->add_option("name", ref, "image name or ID")->required();
  auto* rm = app.add_subcommand("rm", "remove images: a tag removes that name (the image goes "
                                      "with its last name); an ID removes the image")
                 ->alias("rmi");
  rm->add_option("names", names, "image names or IDs")->required();
  auto* import = app.add_subcommand("import", "import an OCI layout (dir or tar) or a docker "
                                              "save archive")->alias("load");
  import->add_option("path", path, "archive path")->required();
  auto* exp = app.add_subcommand("export", "export images as an OCI layout or docker save tar")
                  ->alias("save");
  exp->add_option("-o,--output", path, "output path (an OCI layout is a dir unless it ends "
                                       "in .tar)")->required();
  exp->add_option("--format", format, "oci or docker")->capture_default_str();
  exp->add_option("names", names, "images")->required();
  auto* gc = app.add_subcommand("gc", "remove blobs and snapshots no image references");
  auto* df = app.add_subcommand("df", "space used by images");
  auto* snaps = app.add_subcommand("snapshots", "list snapshots");
  auto* mnt = app.add_subcommand("mount", "create a writable snapshot KEY of an image and "
                                          "mount it on TARGET");
  mnt->add_option("name", ref, "image")->required();
  mnt->add_option("key", key, "snapshot key (e.g. a container ID)")->required();
  mnt->add_option("target", target, "existing directory")->required();
  auto* umnt = app.add_subcommand("unmount", "unmount TARGET and remove snapshot KEY");
  umnt->add_option("key", key, "snapshot key")->required();
  umnt->add_option("target", target, "mount point")->required();

  CLI11_PARSE(app, argc, argv);
  log::Options lo;
  auto level = log::parseLevel(g.log_level);
  if (!level.ok()) return fail(level.status());
  lo.level = *level;
  (void)log::init(lo);

  std::unique_ptr<Database> db;
  auto opened = openService(g, db);
  if (!opened.ok()) return fail(opened.status());
  ImageService& svc = **opened;

  if (*pull) {
    Credentials c;
    if (!creds.empty()) {
      size_t colon = creds.find(':');
      if (colon == std::string::npos) {
        return fail(invalidArgument("--creds must be USER:PASSWORD"));
      }
      c.username = creds.substr(0, colon);
      c.password = creds.substr(colon + 1);
    }
    c.identity_token = identity_token;
    auto r = svc.pull(ref, c);
    if (!r.ok()) return fail(r.status());
    std::printf("%s\n", r->id.c_str());
  } else if (*images) {
    auto list = svc.list();
    if (!list.ok()) return fail(list.status());
    if (quiet) {
      for (const ImageRecord& r : *list) std::printf("%s\n", r.id.c_str());
    } else {
      printImages(*list);
    }
  } else if (*inspect) {
    auto r = svc.status(ref);
    if (!r.ok()) return fail(r.status());
    nlohmann::json out = recordJson(*r);
    auto config = svc.config(*r);
    if (!config.ok()) return fail(config.status());
    out["config"] = configJson(*config);
    std::printf("%s\n", out.dump(2).c_str());
  } else if (*rm) {
    int rc = 0;
    for (const std::string& name : names) {
      auto r = svc.status(name);
      if (!r.ok()) {
        rc = fail(r.status());
        continue;
      }
      bool by_id = name == r->id || r->id.find(name) != std::string::npos;
      Status st = by_id ? svc.remove(name) : svc.untag(name);
      if (!st.ok()) rc = fail(st);
    }
    return rc;
  } else if (*import) {
    auto r = svc.importArchive(path);
    if (!r.ok()) return fail(r.status());
    for (const ImageRecord& rec : *r) {
      std::printf("%s %s\n", rec.id.c_str(),
                  rec.repo_tags.empty() ? "" : joinStrings(rec.repo_tags, ",").c_str());
    }
  } else if (*exp) {
    if (format != "oci" && format != "docker") {
      return fail(invalidArgument("--format \"", format, "\": use oci or docker"));
    }
    Status st = svc.exportArchive(names, path,
                                  format == "oci" ? ArchiveFormat::kOciLayout
                                                  : ArchiveFormat::kDockerSave);
    if (!st.ok()) return fail(st);
  } else if (*gc) {
    auto r = svc.garbageCollect();
    if (!r.ok()) return fail(r.status());
    std::printf("removed %zu blobs (%s) and %zu snapshots\n", r->removed_blobs.size(),
                humanSize(r->freed_content_bytes).c_str(), r->removed_snapshots.size());
  } else if (*df) {
    auto u = svc.fsUsage();
    if (!u.ok()) return fail(u.status());
    std::printf("content    %10s %8lld inodes\nsnapshots  %10s %8lld inodes\n",
                humanSize(u->content_bytes).c_str(), static_cast<long long>(u->content_inodes),
                humanSize(u->snapshot_bytes).c_str(), static_cast<long long>(u->snapshot_inodes));
  } else if (*snaps) {
    auto list = svc.snapshotter().list();
    if (!list.ok()) return fail(list.status());
    std::printf("%-5s %-10s %-24s %-10s %s\n", "ID", "KIND", "CHAIN ID / KEY", "SIZE", "PATH");
    for (const SnapshotInfo& s : *list) {
      const char* kind = s.kind == SnapshotKind::kCommitted ? "committed"
                         : s.kind == SnapshotKind::kActive  ? "active"
                                                            : "view";
      std::string name = s.kind == SnapshotKind::kCommitted ? shortId(s.chain_id) : s.key;
      std::printf("%-5lld %-10s %-24s %-10s %s\n", static_cast<long long>(s.id), kind,
                  name.c_str(), humanSize(s.size_bytes).c_str(), s.path.c_str());
    }
  } else if (*mnt) {
    auto r = svc.status(ref);
    if (!r.ok()) return fail(r.status());
    auto mounts = svc.snapshotter().prepareActive(key, r->chain_ids.empty() ? ""
                                                                            : r->chain_ids.back());
    if (!mounts.ok()) return fail(mounts.status());
    Status st = svc.snapshotter().mount(key, target);
    if (!st.ok()) {
      (void)svc.snapshotter().removeActive(key);
      return fail(st);
    }
    std::printf("%s\n", target.c_str());
  } else if (*umnt) {
    if (::umount2(target.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
      return fail(lastErrnoError(strCat("unmount \"", target, "\"")));
    }
    Status st = svc.snapshotter().removeActive(key);
    if (!st.ok()) return fail(st);
  }
  return 0;
}

}  // namespace berth::image

int main(int argc, char** argv) { return berth::image::run(argc, argv); }
