// A stateful fake of cni::PodNetwork for tests of its users (CRI pod sandboxes): it
// hands out addresses from 10.99.0.0/24, remembers attachments like the real cache,
// records every call and can be told to fail the next call of a kind.
//
// Thread-safety: all members are guarded by one mutex.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "cni/runtime.h"

namespace berth::cni::testing {

class FakePodNetwork : public PodNetwork {
 public:
  StatusOr<Result> setUp(const AttachmentSpec& spec) override {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back("ADD " + spec.container_id);
    if (!add_error_.ok()) return std::exchange(add_error_, Status());
    std::string key = spec.container_id + "/" + spec.ifname;
    auto it = attached_.find(key);
    std::string ip = it != attached_.end() ? it->second : "10.99.0." + std::to_string(next_++);
    attached_[key] = ip;
    Result r;
    r.cni_version = "1.0.0";
    r.interfaces.push_back({spec.ifname, "02:00:00:00:00:01", std::nullopt, spec.netns_path, "", ""});
    r.ips.push_back({ip + "/24", "10.99.0.1", 0});
    return r;
  }

  Status tearDown(const AttachmentSpec& spec) override {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back("DEL " + spec.container_id);
    if (!del_error_.ok()) return std::exchange(del_error_, Status());
    attached_.erase(spec.container_id + "/" + spec.ifname);
    return Status();
  }

  Status check(const AttachmentSpec& spec) override {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back("CHECK " + spec.container_id);
    if (attached_.count(spec.container_id + "/" + spec.ifname) == 0) {
      return notFound("no cached CNI result for container ", spec.container_id);
    }
    return Status();
  }

  NetworkStatus status() override {
    std::lock_guard<std::mutex> lock(mu_);
    return status_;
  }

  Status gc(const std::vector<AttachmentKey>& valid) override {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back("GC");
    std::map<std::string, std::string> kept;
    for (const AttachmentKey& k : valid) {
      auto it = attached_.find(k.container_id + "/" + k.ifname);
      if (it != attached_.end()) kept.insert(*it);
    }
    attached_ = std::move(kept);
    return Status();
  }

  // Test controls.
  void failNextAdd(Status s) { std::lock_guard<std::mutex> l(mu_); add_error_ = std::move(s); }
  void failNextDel(Status s) { std::lock_guard<std::mutex> l(mu_); del_error_ = std::move(s); }
  void setStatus(NetworkStatus s) { std::lock_guard<std::mutex> l(mu_); status_ = std::move(s); }
  std::vector<std::string> calls() { std::lock_guard<std::mutex> l(mu_); return calls_; }
  // container_id/ifname -> IP of every live attachment.
  std::map<std::string, std::string> attached() { std::lock_guard<std::mutex> l(mu_); return attached_; }

 private:
  std::mutex mu_;
  std::vector<std::string> calls_;
  std::map<std::string, std::string> attached_;
  int next_ = 2;
  Status add_error_, del_error_;
  NetworkStatus status_{true, "", ""};
};

}  // namespace berth::cni::testing
