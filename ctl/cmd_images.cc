// pull, images, inspecti, rmi, imagefsinfo: the CRI ImageService; import: the image
// store on disk (not a CRI call, see addImageCommands()).
#include <cstdio>

#include "common/fs.h"
#include "common/sqlite.h"
#include "ctl/commands.h"
#include "ctl/config_files.h"
#include "runtime/image/image_service.h"

namespace berth::ctl {
namespace {

namespace v1 = runtime::v1;

struct ImageOptions {
  std::string image;
  std::vector<std::string> images;
  std::string creds, auth, pod_config;
  std::vector<std::string> annotations;
  int pull_timeout = 1800;
  std::string images_output, inspecti_output, fs_output;
  bool quiet = false, digests = false, no_trunc = false, all = false;
  std::string root = "/var/lib/berth";
  std::string path;
};
ImageOptions& opts() {
  static ImageOptions o;
  return o;
}

Status pull(Context& ctx) {
  const ImageOptions& o = opts();
  ASSIGN_OR_RETURN(CriClient * client, ctx.client());
  v1::PullImageRequest req;
  req.mutable_image()->set_image(o.image);
  req.mutable_image()->set_user_specified_image(o.image);
  ASSIGN_OR_RETURN(auto annotations, parseLabels(o.annotations));
  for (const auto& [k, v] : annotations) (*req.mutable_image()->mutable_annotations())[k] = v;
  if (!o.creds.empty()) {
    size_t colon = o.creds.find(':');
    if (colon == std::string::npos) {
      return invalidArgument("--creds \"", o.creds.substr(0, 64),
                             "\": give USERNAME:PASSWORD (berthctl does not prompt)");
    }
    req.mutable_auth()->set_username(o.creds.substr(0, colon));
    req.mutable_auth()->set_password(o.creds.substr(colon + 1));
  }
  if (!o.auth.empty()) req.mutable_auth()->set_auth(o.auth);
  if (!o.pod_config.empty()) {
    ASSIGN_OR_RETURN(*req.mutable_sandbox_config(), loadPodSandboxConfig(o.pod_config));
  }
  std::chrono::seconds timeout(o.pull_timeout);
  v1::PullImageResponse resp;
  auto rpc = client->context(timeout);
  grpc::Status st = client->images().PullImage(rpc.get(), req, &resp);
  if (!st.ok()) return withContext(client->imageError(st, "PullImage", timeout), strCat("pull \"", o.image, "\""));
  std::printf("Image is up to date for %s\n", resp.image_ref().c_str());
  return absl::OkStatus();
}

StatusOr<v1::ListImagesResponse> listImages(CriClient& client, const std::string& filter) {
  v1::ListImagesRequest req;
  if (!filter.empty()) req.mutable_filter()->mutable_image()->set_image(filter);
  v1::ListImagesResponse resp;
  auto rpc = client.context();
  grpc::Status st = client.images().ListImages(rpc.get(), req, &resp);
  if (!st.ok()) return client.imageError(st, "ListImages");
  return resp;
}

Status images(Context& ctx) {
  const ImageOptions& o = opts();
  ASSIGN_OR_RETURN(CriClient * client, ctx.client());
  ASSIGN_OR_RETURN(OutputFormat format, parseOutputFormat(o.images_output));
  ASSIGN_OR_RETURN(v1::ListImagesResponse resp, listImages(*client, o.image));
  if (o.quiet) {
    for (const v1::Image& image : resp.images()) std::printf("%s\n", image.id().c_str());
    return absl::OkStatus();
  }
  if (format == OutputFormat::kTable) {
    std::printf("%s", imagesTable(resp, o.digests, o.no_trunc).c_str());
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(OrderedJson json, messageToJson(resp));
  printDocument(json, format);
  return absl::OkStatus();
}

StatusOr<v1::ImageStatusResponse> imageStatus(CriClient& client, const std::string& name,
                                              bool verbose) {
  v1::ImageStatusRequest req;
  req.mutable_image()->set_image(name);
  req.set_verbose(verbose);
  v1::ImageStatusResponse resp;
  auto rpc = client.context();
  grpc::Status st = client.images().ImageStatus(rpc.get(), req, &resp);
  if (!st.ok()) return client.imageError(st, "ImageStatus");
  if (!resp.has_image()) {
    return notFound("no such image \"", name, "\" present; see berthctl images or pull it");
  }
  return resp;
}

Status inspecti(Context& ctx) {
  const ImageOptions& o = opts();
  ASSIGN_OR_RETURN(CriClient * client, ctx.client());
  ASSIGN_OR_RETURN(OutputFormat format, parseOutputFormat(o.inspecti_output, OutputFormat::kJson));
  OrderedJson all = OrderedJson::array();
  for (const std::string& name : o.images) {
    ASSIGN_OR_RETURN(v1::ImageStatusResponse resp, imageStatus(*client, name, true));
    ASSIGN_OR_RETURN(OrderedJson json, statusWithInfo(resp.image(), resp.info()));
    all.push_back(std::move(json));
  }
  printDocument(all.size() == 1 ? all[0] : all, format);
  return absl::OkStatus();
}

Status rmi(Context& ctx) {
  const ImageOptions& o = opts();
  ASSIGN_OR_RETURN(CriClient * client, ctx.client());
  std::vector<std::string> names = o.images;
  if (o.all) {
    ASSIGN_OR_RETURN(v1::ListImagesResponse list, listImages(*client, ""));
    for (const v1::Image& image : list.images()) names.push_back(image.id());
  }
  if (names.empty()) return invalidArgument("rmi: name at least one image, or give --all");
  Status first_error;
  for (const std::string& name : names) {
    auto status = imageStatus(*client, name, false);
    if (!status.ok()) {
      std::fprintf(stderr, "berthctl: %s\n", std::string(status.status().message()).c_str());
      if (first_error.ok()) first_error = status.status();
      continue;
    }
    const v1::Image& image = status->image();
    v1::RemoveImageRequest req;
    req.mutable_image()->set_image(image.id());
    v1::RemoveImageResponse resp;
    auto rpc = client->context();
    grpc::Status st = client->images().RemoveImage(rpc.get(), req, &resp);
    if (!st.ok()) {
      Status err = withContext(client->imageError(st, "RemoveImage"), strCat("remove image \"", name, "\""));
      std::fprintf(stderr, "berthctl: %s\n", std::string(err.message()).c_str());
      if (first_error.ok()) first_error = err;
      continue;
    }
    if (image.repo_tags_size() == 0) std::printf("Deleted: %s\n", image.id().c_str());
    for (const std::string& tag : image.repo_tags()) std::printf("Deleted: %s\n", tag.c_str());
  }
  if (!first_error.ok()) return Status(first_error.code(), "some images were not removed (see above)");
  return absl::OkStatus();
}

Status imagefsinfo(Context& ctx) {
  const ImageOptions& o = opts();
  ASSIGN_OR_RETURN(CriClient * client, ctx.client());
  ASSIGN_OR_RETURN(OutputFormat format, parseOutputFormat(o.fs_output, OutputFormat::kJson));
  v1::ImageFsInfoResponse resp;
  auto rpc = client->context();
  grpc::Status st = client->images().ImageFsInfo(rpc.get(), v1::ImageFsInfoRequest(), &resp);
  if (!st.ok()) return client->imageError(st, "ImageFsInfo");
  OrderedJson out = OrderedJson::object();
  ASSIGN_OR_RETURN(out["status"], messageToJson(resp));
  printDocument(out, format);
  return absl::OkStatus();
}

// Imports straight into the image store berthd serves from: the same database
// (<root>/berth.db, SQLite WAL with a busy timeout) and the same on-disk stores, whose
// image.lock and snapshot locks make a concurrent berthd safe (see
// runtime/image/image_service.h). berthd reads image records from the database on every
// call, so the imported images are listed at once.
Status import(Context&) {
  const ImageOptions& o = opts();
  if (!fs::exists(o.path)) {
    return notFound("import \"", o.path, "\": no such file or directory; give an OCI layout "
                    "directory or tar, or a docker save archive");
  }
  auto db = Database::open(fs::join(o.root, "berth.db"));
  if (!db.ok()) {
    return withContext(db.status(), strCat("import: open berthd's image database under --root \"",
                                           o.root, "\""));
  }
  image::ImageServiceOptions options;
  options.root = o.root;
  auto service = image::ImageService::open(options, db->get());
  if (!service.ok()) return withContext(service.status(), "import");
  auto records = (*service)->importArchive(o.path);
  if (!records.ok()) return withContext(records.status(), strCat("import \"", o.path, "\""));
  for (const image::ImageRecord& r : *records) {
    if (r.repo_tags.empty()) {
      std::printf("Imported %s\n", r.id.c_str());
    } else {
      for (const std::string& tag : r.repo_tags) std::printf("Imported %s (%s)\n", tag.c_str(), r.id.c_str());
    }
  }
  return absl::OkStatus();
}

}  // namespace

void addImageCommands(CLI::App& app, Context& ctx) {
  ImageOptions& o = opts();
  auto* pull_cmd = app.add_subcommand("pull", "pull an image (CRI PullImage)");
  pull_cmd->add_option("image", o.image, "image reference")->required();
  pull_cmd->add_option("--creds", o.creds, "registry credentials USERNAME:PASSWORD");
  pull_cmd->add_option("--auth", o.auth, "base64 of USERNAME:PASSWORD");
  pull_cmd->add_option("-p,--pod-config", o.pod_config, "pod config the pull is for (JSON/YAML)");
  pull_cmd->add_option("-a,--annotation", o.annotations, "image annotation key=value");
  pull_cmd->add_option("--pull-timeout", o.pull_timeout, "seconds the pull may take (0: none)")
      ->capture_default_str();
  setAction(pull_cmd, ctx, pull);

  auto* images_cmd = app.add_subcommand("images", "list images (CRI ListImages)");
  images_cmd->alias("img");
  images_cmd->add_option("repository", o.image, "only images matching this reference");
  images_cmd->add_flag("-q,--quiet", o.quiet, "only image IDs");
  images_cmd->add_flag("--digests", o.digests, "show digests");
  images_cmd->add_flag("--no-trunc", o.no_trunc, "do not truncate IDs");
  addOutputFlag(images_cmd, o.images_output, "table");
  setAction(images_cmd, ctx, images);

  auto* inspecti_cmd = app.add_subcommand("inspecti", "image status (CRI ImageStatus, verbose)");
  inspecti_cmd->add_option("image", o.images, "image IDs or references")->required();
  addOutputFlag(inspecti_cmd, o.inspecti_output, "json");
  setAction(inspecti_cmd, ctx, inspecti);

  auto* rmi_cmd = app.add_subcommand("rmi", "remove images (CRI RemoveImage)");
  rmi_cmd->add_option("image", o.images, "image IDs or references");
  rmi_cmd->add_flag("-a,--all", o.all, "remove every image");
  setAction(rmi_cmd, ctx, rmi);

  auto* fs_cmd = app.add_subcommand("imagefsinfo", "image filesystem usage (CRI ImageFsInfo)");
  addOutputFlag(fs_cmd, o.fs_output, "json");
  setAction(fs_cmd, ctx, imagefsinfo);

  auto* import_cmd = app.add_subcommand(
      "import", "import an OCI layout (dir or tar) or docker save archive into the image "
                "store under --root (not a CRI call; needs write access to the store)");
  import_cmd->add_option("path", o.path, "archive path")->required();
  import_cmd->add_option("--root", o.root, "berthd's --root")->capture_default_str();
  setAction(import_cmd, ctx, import);
}

}  // namespace berth::ctl
