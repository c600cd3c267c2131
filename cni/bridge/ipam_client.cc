#include "cni/bridge/ipam_client.h"

#include <cstdio>

#include "cni/ipam/ipam_plugin.h"
#include "cni/plugin_exec.h"

namespace berth::cni::bridge {
namespace {

constexpr std::chrono::seconds kDelegateTimeout{60};

}  // namespace

StatusOr<json::Json> IpamClient::exec(std::string_view command) {
  ASSIGN_OR_RETURN(std::string path, findPlugin(config_.ipam_type, request_.bin_dirs));
  PluginEnv env;
  env.command = std::string(command);
  env.container_id = request_.container_id;
  env.netns = request_.netns;
  env.ifname = request_.ifname;
  env.args = request_.args;
  env.bin_dirs = request_.bin_dirs;
  auto out = execPlugin(path, config_.ipam_type, env, request_.stdin_data,
                        std::chrono::duration_cast<std::chrono::milliseconds>(kDelegateTimeout));
  if (!out.ok()) return out.status();
  if (!out->stderr_text.empty()) fputs(out->stderr_text.c_str(), stderr);
  return std::move(out->result);
}

StatusOr<Result> IpamClient::add() {
  if (config_.builtinIpam()) {
    return withContext(ipam::ipamAdd(request_, config_.requested_ips),
                       strCat("IPAM \"", config_.ipam_type, "\""));
  }
  ASSIGN_OR_RETURN(json::Json doc, exec("ADD"));
  return parseResult(doc, strCat("result of IPAM plugin \"", config_.ipam_type, "\""));
}

Status IpamClient::del() {
  if (config_.builtinIpam()) {
    return withContext(ipam::ipamDel(request_), strCat("IPAM \"", config_.ipam_type, "\""));
  }
  return exec("DEL").status();
}

Status IpamClient::check(const std::vector<std::string>& expected) {
  if (config_.builtinIpam()) {
    return withContext(ipam::ipamCheck(request_, expected),
                       strCat("IPAM \"", config_.ipam_type, "\""));
  }
  return exec("CHECK").status();
}

Status IpamClient::gc() {
  if (config_.builtinIpam()) {
    return withContext(ipam::ipamGc(request_).status(), strCat("IPAM \"", config_.ipam_type, "\""));
  }
  return exec("GC").status();
}

Status IpamClient::status() {
  if (config_.builtinIpam()) {
    return withContext(ipam::ipamStatus(request_), strCat("IPAM \"", config_.ipam_type, "\""));
  }
  return exec("STATUS").status();
}

}  // namespace berth::cni::bridge
