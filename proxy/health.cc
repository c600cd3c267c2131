#include "proxy/health.h"

#include <ctime>

#include "common/json.h"
#include "common/log.h"

namespace berth::proxy {

using SysTime = std::chrono::system_clock::time_point;

std::string formatRfc3339(SysTime t) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  time_t secs = static_cast<time_t>(ns / 1000000000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[64];
  snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           static_cast<long long>(ns % 1000000000));
  return buf;
}

ProxyHealth::ProxyHealth(std::chrono::milliseconds timeout, Clock clock)
    : timeout_(timeout), clock_(clock ? std::move(clock) : Clock([] {
        return std::chrono::system_clock::now();
      })) {
  last_updated_ = clock_();
}

void ProxyHealth::queued() {
  std::lock_guard<std::mutex> lock(mu_);
  if (oldest_pending_ == SysTime{}) oldest_pending_ = clock_();
}

void ProxyHealth::synced() {
  std::lock_guard<std::mutex> lock(mu_);
  last_updated_ = clock_();
  oldest_pending_ = SysTime{};
  failure_.clear();
}

void ProxyHealth::failed(const std::string& why) {
  std::lock_guard<std::mutex> lock(mu_);
  failure_ = why.empty() ? "sync failed" : why;
  if (oldest_pending_ == SysTime{}) oldest_pending_ = clock_();
}

bool ProxyHealth::healthyLocked(SysTime now) const {
  if (!failure_.empty()) return false;
  if (oldest_pending_ == SysTime{}) return true;
  return now - oldest_pending_ < timeout_;
}

bool ProxyHealth::healthy() const {
  std::lock_guard<std::mutex> lock(mu_);
  return healthyLocked(clock_());
}

http::Response ProxyHealth::handle(const http::Request& req) const {
  if (req.path != "/healthz" && req.path != "/livez") {
    return http::Response{404, "text/plain; charset=utf-8", "404 page not found\n", {}};
  }
  std::lock_guard<std::mutex> lock(mu_);
  SysTime now = clock_();
  bool ok = healthyLocked(now);
  json::Json body = {{"lastUpdated", formatRfc3339(last_updated_)},
                     {"currentTime", formatRfc3339(now)},
                     {"nodeEligible", true}};
  if (!failure_.empty()) body["lastError"] = failure_;
  http::Response resp;
  resp.status = ok ? 200 : 503;
  resp.content_type = "application/json";
  resp.body = body.dump();
  resp.headers = {{"X-Content-Type-Options", "nosniff"}};
  return resp;
}

ServiceHealthServers::ServiceHealthServers(std::vector<std::string> addresses,
                                           const ProxyHealth* proxy)
    : addresses_(std::move(addresses)), proxy_(proxy) {
  if (addresses_.empty()) addresses_ = {""};
}

http::Response ServiceHealthServers::answer(uint16_t port) const {
  Entry e;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(port);
    if (it == entries_.end()) return http::Response{503, "text/plain", "no service\n", {}};
    e = it->second;
  }
  bool proxy_ok = proxy_ == nullptr || proxy_->healthy();
  json::Json body = {{"service", {{"namespace", e.ns}, {"name", e.name}}},
                     {"localEndpoints", e.local_endpoints},
                     {"serviceProxyHealthy", proxy_ok}};
  http::Response resp;
  resp.status = e.local_endpoints > 0 && proxy_ok ? 200 : 503;
  resp.content_type = "application/json";
  resp.body = body.dump();
  resp.headers = {{"X-Content-Type-Options", "nosniff"},
                  {"X-Load-Balancing-Endpoint-Weight", std::to_string(e.local_endpoints)}};
  return resp;
}

Status ServiceHealthServers::sync(const std::vector<Entry>& entries) {
  std::map<uint16_t, Entry> wanted;
  for (const Entry& e : entries) {
    if (e.port != 0) wanted[e.port] = e;
  }
  std::vector<std::unique_ptr<http::Endpoint>> to_close;
  std::vector<uint16_t> to_open;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = servers_.begin(); it != servers_.end();) {
      if (wanted.count(it->first) == 0) {
        for (auto& s : it->second) to_close.push_back(std::move(s));
        it = servers_.erase(it);
      } else {
        ++it;
      }
    }
    entries_ = wanted;
    for (const auto& [port, e] : wanted) {
      if (servers_.count(port) == 0) to_open.push_back(port);
    }
  }
  to_close.clear();  // stops those listeners (outside the lock: their handlers take it)

  Status first;
  for (uint16_t port : to_open) {
    std::vector<std::unique_ptr<http::Endpoint>> opened;
    for (const std::string& host : addresses_) {
      std::string addr = host.find(':') != std::string::npos ? strCat("[", host, "]:", port)
                                                            : strCat(host, ":", port);
      const Entry& e = wanted[port];
      auto ep = http::Endpoint::start(
          strCat("health check of service ", e.ns, "/", e.name), addr,
          [this, port](const http::Request&) { return answer(port); });
      if (!ep.ok()) {
        log::get("proxy")->warn("{}", std::string(ep.status().message()));
        if (first.ok()) first = ep.status();
        continue;
      }
      opened.push_back(std::move(*ep));
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (!opened.empty()) servers_[port] = std::move(opened);
  }
  return first;
}

std::vector<uint16_t> ServiceHealthServers::ports() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<uint16_t> out;
  for (const auto& [port, s] : servers_) out.push_back(port);
  return out;
}

}  // namespace berth::proxy
