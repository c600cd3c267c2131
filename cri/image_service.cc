#include "cri/image_service.h"

#include <chrono>

#include "common/log.h"
#include "cri/grpc_status.h"
#include "nlohmann/json.hpp"

namespace berth::cri {
namespace {

namespace v1 = runtime::v1;

// Splits an image config's User into a numeric uid or a username, as CRI's Image
// message wants them ("1000:1000" -> uid 1000; "app:app" -> username "app").
void userFields(const std::string& user, v1::Image* out) {
  std::string name = user.substr(0, user.find(':'));
  if (name.empty()) return;
  bool numeric = name.find_first_not_of("0123456789") == std::string::npos;
  if (numeric) {
    out->mutable_uid()->set_value(std::stoll(name));
  } else {
    out->set_username(name);
  }
}

Status requireImage(const v1::ImageSpec& spec, const char* rpc) {
  if (spec.image().empty()) {
    return invalidArgument(rpc, ": image.image is empty; give an image reference or ID");
  }
  return absl::OkStatus();
}

int64_t nowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void CriImageService::fillImage(const image::ImageRecord& record, v1::Image* out) {
  out->set_id(record.id);
  for (const std::string& t : record.repo_tags) out->add_repo_tags(t);
  for (const std::string& d : record.repo_digests) out->add_repo_digests(d);
  out->set_size(static_cast<uint64_t>(record.size));
  out->set_pinned(record.pinned);
  out->mutable_spec()->set_image(record.id);
  auto config = images_.config(record);
  if (config.ok()) {
    userFields(config->config.user, out);
  } else {
    log::get("cri")->warn("image {}: config unreadable: {}", record.id,
                          std::string(config.status().message()));
  }
}

StatusOr<std::vector<image::ImageRecord>> CriImageService::matching(
    const v1::ImageFilter& filter) {
  if (filter.has_image() && !filter.image().image().empty()) {
    auto one = images_.status(filter.image().image());
    if (absl::IsNotFound(one.status())) return std::vector<image::ImageRecord>{};
    RETURN_IF_ERROR(one.status());
    return std::vector<image::ImageRecord>{*one};
  }
  return images_.list();
}

grpc::Status CriImageService::ListImages(grpc::ServerContext*, const v1::ListImagesRequest* request,
                                         v1::ListImagesResponse* response) {
  auto images = matching(request->filter());
  if (!images.ok()) return toGrpc(images.status());
  for (const auto& record : *images) fillImage(record, response->add_images());
  return grpc::Status::OK;
}

grpc::Status CriImageService::StreamImages(grpc::ServerContext* context,
                                           const v1::StreamImagesRequest* request,
                                           grpc::ServerWriter<v1::StreamImagesResponse>* writer) {
  auto images = matching(request->filter());
  if (!images.ok()) return toGrpc(images.status());
  // Batches keep each message well under gRPC's default 4 MiB limit.
  constexpr size_t kBatch = 500;
  for (size_t i = 0; i < images->size(); i += kBatch) {
    if (context->IsCancelled()) return grpc::Status::CANCELLED;
    v1::StreamImagesResponse batch;
    for (size_t j = i; j < std::min(images->size(), i + kBatch); ++j) {
      fillImage((*images)[j], batch.add_images());
    }
    if (!writer->Write(batch)) return grpc::Status::CANCELLED;
  }
  return grpc::Status::OK;
}

grpc::Status CriImageService::ImageStatus(grpc::ServerContext*,
                                          const v1::ImageStatusRequest* request,
                                          v1::ImageStatusResponse* response) {
  Status valid = requireImage(request->image(), "ImageStatus");
  if (!valid.ok()) return toGrpc(valid);
  auto record = images_.status(request->image().image());
  if (absl::IsNotFound(record.status())) return grpc::Status::OK;  // image unset
  if (!record.ok()) return toGrpc(record.status());
  fillImage(*record, response->mutable_image());
  if (request->verbose()) {
    nlohmann::json info = {{"id", record->id},
                           {"manifestDigest", record->manifest_digest},
                           {"platform", record->platform},
                           {"chainIDs", record->chain_ids},
                           {"layers", record->layer_digests}};
    auto config = images_.config(*record);
    if (config.ok()) {
      info["imageSpec"] = {{"user", config->config.user},
                           {"env", config->config.env},
                           {"entrypoint", config->config.entrypoint},
                           {"cmd", config->config.cmd},
                           {"workingDir", config->config.workingDir},
                           {"stopSignal", config->config.stopSignal},
                           {"labels", config->config.labels}};
    }
    (*response->mutable_info())["info"] = info.dump();
  }
  return grpc::Status::OK;
}

grpc::Status CriImageService::PullImage(grpc::ServerContext*, const v1::PullImageRequest* request,
                                        v1::PullImageResponse* response) {
  Status valid = requireImage(request->image(), "PullImage");
  if (!valid.ok()) return toGrpc(valid);
  image::Credentials credentials;
  credentials.username = request->auth().username();
  credentials.password = request->auth().password();
  credentials.auth = request->auth().auth();
  credentials.identity_token = request->auth().identity_token();
  credentials.registry_token = request->auth().registry_token();
  auto record = images_.pull(request->image().image(), credentials);
  if (!record.ok()) return toGrpc(record.status());
  response->set_image_ref(record->id);
  return grpc::Status::OK;
}

grpc::Status CriImageService::RemoveImage(grpc::ServerContext*,
                                          const v1::RemoveImageRequest* request,
                                          v1::RemoveImageResponse*) {
  Status valid = requireImage(request->image(), "RemoveImage");
  if (!valid.ok()) return toGrpc(valid);
  Status st = images_.remove(request->image().image());
  if (!st.ok()) return toGrpc(st);
  // Free what the image held now, as kubelet's image GC expects space back.
  auto gc = images_.garbageCollect();
  if (!gc.ok()) {
    log::get("cri")->warn("RemoveImage {}: garbage collection: {}", request->image().image(),
                          std::string(gc.status().message()));
  }
  return grpc::Status::OK;
}

grpc::Status CriImageService::ImageFsInfo(grpc::ServerContext*, const v1::ImageFsInfoRequest*,
                                          v1::ImageFsInfoResponse* response) {
  auto usage = images_.fsUsage();
  if (!usage.ok()) return toGrpc(usage.status());
  v1::FilesystemUsage* fs = response->add_image_filesystems();
  fs->set_timestamp(nowNanos());
  fs->mutable_fs_id()->set_mountpoint(images_.options().root);
  fs->mutable_used_bytes()->set_value(
      static_cast<uint64_t>(usage->content_bytes + usage->snapshot_bytes));
  fs->mutable_inodes_used()->set_value(
      static_cast<uint64_t>(usage->content_inodes + usage->snapshot_inodes));
  return grpc::Status::OK;
}

}  // namespace berth::cri
