// CRI v1 ImageService (runtime.v1 api.proto "service ImageService") over the image
// library (runtime/image/image_service.h): PullImage, ListImages, StreamImages,
// ImageStatus, RemoveImage, ImageFsInfo.
//
// Semantics as kubelet expects them (containerd's CRI plugin behaves the same way):
// - PullImage returns the image ID (config digest) as image_ref.
// - ImageStatus of an unknown image is OK with `image` unset (kubelet then pulls);
//   `verbose` adds info["info"], a JSON object with the config and the record.
// - RemoveImage of an unknown image is OK (idempotent); it removes every name of the
//   image; content and snapshots are freed by the garbage collection that follows.
// - Image.uid / username come from the image config's User ("1000" -> uid 1000,
//   "app" -> username "app", "1000:1000" -> uid 1000).
// - ImageFsInfo reports the snapshot directory's usage under its mountpoint.
//
// Thread-safety: handlers run concurrently on gRPC's threads; ImageService is
// thread-safe.
#pragma once

#include "cri/proto/api.grpc.pb.h"
#include "runtime/image/image_service.h"

namespace berth::cri {

class CriImageService final : public runtime::v1::ImageService::Service {
 public:
  // `images` must outlive this service.
  explicit CriImageService(image::ImageService& images) : images_(images) {}

  grpc::Status ListImages(grpc::ServerContext* context,
                          const runtime::v1::ListImagesRequest* request,
                          runtime::v1::ListImagesResponse* response) override;
  grpc::Status StreamImages(grpc::ServerContext* context,
                            const runtime::v1::StreamImagesRequest* request,
                            grpc::ServerWriter<runtime::v1::StreamImagesResponse>* writer) override;
  grpc::Status ImageStatus(grpc::ServerContext* context,
                           const runtime::v1::ImageStatusRequest* request,
                           runtime::v1::ImageStatusResponse* response) override;
  grpc::Status PullImage(grpc::ServerContext* context,
                         const runtime::v1::PullImageRequest* request,
                         runtime::v1::PullImageResponse* response) override;
  grpc::Status RemoveImage(grpc::ServerContext* context,
                           const runtime::v1::RemoveImageRequest* request,
                           runtime::v1::RemoveImageResponse* response) override;
  grpc::Status ImageFsInfo(grpc::ServerContext* context,
                           const runtime::v1::ImageFsInfoRequest* request,
                           runtime::v1::ImageFsInfoResponse* response) override;

 private:
  // Fills `out` from `record` (and its config, for uid/username).
  void fillImage(const image::ImageRecord& record, runtime::v1::Image* out);
  // The images matching a CRI ImageFilter (all when empty).
  StatusOr<std::vector<image::ImageRecord>> matching(const runtime::v1::ImageFilter& filter);

  image::ImageService& images_;
};

}  // namespace berth::cri
