// The result cache (libcni's layout, so the files are familiar to anyone who has
// debugged a CNI runtime): one JSON file per attachment at
// <cache_dir>/results/<networkName>-<containerID>-<ifName> holding
//   {"kind": "cniCacheV1", "containerId", "config" (the conflist bytes, base64),
//    "ifName", "networkName", "netns", "cniArgs": [[K, V]...], "capabilityArgs",
//    "result"}.
// DEL uses the cached config and result, so a network set up with an older conflist
// is torn down with the plugins and result it was set up with.
//
// Thread-safety: functions are thread-safe; writes are atomic (temp file + rename).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/json.h"
#include "common/base64.h"
#include "common/status.h"

namespace berth::cni {

struct CachedAttachment {
  std::string container_id;
  std::string ifname;
  std::string network_name;
  std::string netns;
  std::string config;  // the conflist bytes
  std::vector<std::pair<std::string, std::string>> cni_args;
  json::Json capability_args = json::Json::object();
  json::Json result;  // null when no result was cached
};

// <cache_dir>/results/<network>-<container_id>-<ifname>.
std::string cachePath(const std::string& cache_dir, const std::string& network,
                      const std::string& container_id, const std::string& ifname);

// Writes the entry atomically (creating <cache_dir>/results, mode 0700; files 0600).
// Errors carry the path and errno.
Status writeCache(const std::string& cache_dir, const CachedAttachment& entry);

// Reads one cache file. Errors: NotFound if missing; InvalidArgument naming the file
// for a bad document or a kind other than "cniCacheV1".
StatusOr<CachedAttachment> readCache(const std::string& path);

// Every readable entry under <cache_dir>/results, with its path; unreadable files are
// skipped. A missing directory gives an empty list.
std::vector<std::pair<std::string, CachedAttachment>> listCache(const std::string& cache_dir);

// The entry (and its path) for `container_id` + `ifname` in any network, preferring
// `network`. Errors: NotFound when there is none.
StatusOr<std::pair<std::string, CachedAttachment>> findCache(const std::string& cache_dir,
                                                             const std::string& network,
                                                             const std::string& container_id,
                                                             const std::string& ifname);

// The conflist bytes are base64 as Go's encoding/json writes []byte (common/base64.h).
using ::berth::base64Decode;
using ::berth::base64Encode;

}  // namespace berth::cni
