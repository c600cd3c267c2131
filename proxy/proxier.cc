#include "proxy/proxier.h"

#include <ctime>
#include <set>

#include "common/log.h"
#include "common/strings.h"

namespace berth::proxy {
namespace {

std::string objectName(const json::Json& o) {
  const json::Json* meta = o.is_object() && o.contains("metadata") ? &o["metadata"] : nullptr;
  std::string ns = meta != nullptr && (*meta).contains("namespace") && (*meta)["namespace"].is_string()
                       ? (*meta)["namespace"].get<std::string>()
                       : "default";
  std::string name = meta != nullptr && (*meta).contains("name") && (*meta)["name"].is_string()
                         ? (*meta)["name"].get<std::string>()
                         : "?";
  return ns + "/" + name;
}

NamespacedName namespacedName(const json::Json& o) {
  std::string full = objectName(o);
  size_t slash = full.find('/');
  return {full.substr(0, slash), full.substr(slash + 1)};
}

// endpoints.kubernetes.io/last-change-trigger-time (RFC3339), or now.
std::chrono::system_clock::time_point triggerTime(const json::Json& o) {
  auto now = std::chrono::system_clock::now();
  try {
    const auto& v = o.at("metadata").at("annotations").at("endpoints.kubernetes.io/last-change-trigger-time");
    struct tm tm {};
    std::string s = v.get<std::string>();
    if (strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) return now;
    auto t = std::chrono::system_clock::from_time_t(timegm(&tm));
    return t > now ? now : t;
  } catch (const std::exception&) {
    return now;
  }
}

}  // namespace

Proxier::Proxier(ProxierOptions options, std::unique_ptr<RuleBackend> backend)
    : options_(std::move(options)),
      backend_(std::move(backend)),
      health_(2 * options_.runner.sync_period),
      metrics_(backend_->name()),
      service_health_(options_.health_check_hosts, &health_) {}

StatusOr<std::unique_ptr<Proxier>> Proxier::create(ProxierOptions options,
                                                   std::unique_ptr<RuleBackend> backend) {
  std::unique_ptr<Proxier> p(new Proxier(std::move(options), std::move(backend)));
  if (p->options_.conntrack_cleanup) {
    auto ct = ConntrackCleaner::open();
    if (!ct.ok()) return withContext(ct.status(), "service proxy: open conntrack");
    p->conntrack_ = std::move(*ct);
  }
  Proxier* raw = p.get();
  if (!p->options_.healthz_address.empty()) {
    ASSIGN_OR_RETURN(p->healthz_, http::Endpoint::start("service proxy healthz", p->options_.healthz_address,
                                                        [raw](const http::Request& r) {
                                                          return raw->health_.handle(r);
                                                        }));
  }
  if (!p->options_.metrics_address.empty()) {
    ASSIGN_OR_RETURN(p->metrics_http_,
                     http::Endpoint::start("service proxy metrics", p->options_.metrics_address,
                                           [raw](const http::Request& r) { return raw->metrics_.handle(r); }));
  }
  p->runner_ = std::make_unique<SyncRunner>(
      p->options_.runner, [raw](bool full) { return raw->sync(full); }, &p->health_, &p->metrics_);
  return p;
}

Proxier::~Proxier() { stop(); }

void Proxier::start() { runner_->start(); }

void Proxier::stop() {
  if (runner_) runner_->stop();
}

void Proxier::reject(const std::string& what, const json::Json& object, const Status& st) {
  std::string key = strCat(what, " ", objectName(object));
  log::get("proxy")->warn("{} is ignored: {}", key, std::string(st.message()));
  std::lock_guard<std::mutex> lock(mu_);
  rejected_[key] = std::string(st.message());
}

void Proxier::changed(const json::Json& object) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    triggers_.push_back(triggerTime(object));
  }
  runner_->requestSync();
}

void Proxier::serviceChanged(const json::Json& object) {
  auto svc = parseService(object);
  if (!svc.ok()) return reject("service", object, svc.status());
  bool any;
  {
    std::lock_guard<std::mutex> lock(mu_);
    rejected_.erase("service " + objectName(object));
    any = tracker_.updateService(std::move(*svc));
  }
  if (any) changed(object);
}

void Proxier::serviceDeleted(const json::Json& object) {
  bool any;
  {
    std::lock_guard<std::mutex> lock(mu_);
    rejected_.erase("service " + objectName(object));
    any = tracker_.deleteService(namespacedName(object));
  }
  if (any) changed(object);
}

void Proxier::endpointSliceChanged(const json::Json& object) {
  auto slice = parseEndpointSlice(object);
  if (!slice.ok()) return reject("endpointslice", object, slice.status());
  bool any;
  {
    std::lock_guard<std::mutex> lock(mu_);
    rejected_.erase("endpointslice " + objectName(object));
    any = tracker_.updateEndpointSlice(std::move(*slice));
  }
  if (any) changed(object);
}

void Proxier::endpointSliceDeleted(const json::Json& object) {
  bool any;
  {
    std::lock_guard<std::mutex> lock(mu_);
    rejected_.erase("endpointslice " + objectName(object));
    any = tracker_.deleteEndpointSlice(namespacedName(object));
  }
  if (any) changed(object);
}

void Proxier::replaceAll(const std::vector<json::Json>& services,
                         const std::vector<json::Json>& slices) {
  std::vector<Service> svcs;
  std::vector<EndpointSlice> eps;
  for (const auto& o : services) {
    auto s = parseService(o);
    if (s.ok()) {
      svcs.push_back(std::move(*s));
    } else {
      reject("service", o, s.status());
    }
  }
  for (const auto& o : slices) {
    auto s = parseEndpointSlice(o);
    if (s.ok()) {
      eps.push_back(std::move(*s));
    } else {
      reject("endpointslice", o, s.status());
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    tracker_.replaceAll(std::move(svcs), std::move(eps));
    triggers_.push_back(std::chrono::system_clock::now());
  }
  runner_->requestSync();
}

ProxyState Proxier::lastState() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_state_;
}

std::map<std::string, std::string> Proxier::rejectedObjects() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rejected_;
}

std::vector<ConntrackFilter> Proxier::staleUdp(const ProxyState& before, const ProxyState& after) const {
  // kube-proxy's rules (pkg/proxy/conntrack/cleanup.go): for UDP, flows to a Service IP
  // whose Service port went away or whose endpoint went away are deleted, and flows to
  // a Service port that had no endpoints (rejected until now) are deleted so clients
  // retry into the new endpoints.
  std::vector<ConntrackFilter> out;
  auto addrs = [](const ServicePortState& sp) {
    std::vector<IpAddress> a = {sp.cluster_ip};
    a.insert(a.end(), sp.external_ips.begin(), sp.external_ips.end());
    a.insert(a.end(), sp.load_balancer_ips.begin(), sp.load_balancer_ips.end());
    return a;
  };
  for (const ServicePortState& old : before.ports) {
    if (old.protocol() != Protocol::kUDP) continue;
    const ServicePortState* now = after.find(old.name, old.family);
    std::set<std::string> keep;
    if (now != nullptr) {
      for (const Endpoint& e : now->reachable_endpoints) keep.insert(e.str());
    }
    bool gone = now == nullptr || now->cluster_ip != old.cluster_ip || now->port != old.port;
    for (const IpAddress& ip : addrs(old)) {
      if (gone) {
        out.push_back({L4Protocol::kUDP, ip.str(), static_cast<uint16_t>(old.port), std::nullopt, std::nullopt});
        continue;
      }
      for (const Endpoint& e : old.reachable_endpoints) {
        if (keep.count(e.str()) != 0) continue;
        out.push_back({L4Protocol::kUDP, ip.str(), static_cast<uint16_t>(old.port), e.ip.str(),
                       static_cast<uint16_t>(e.port)});
      }
    }
    if (old.node_port != 0) {
      if (gone || now->node_port != old.node_port) {
        out.push_back({L4Protocol::kUDP, std::nullopt, static_cast<uint16_t>(old.node_port), std::nullopt,
                       std::nullopt});
      } else {
        for (const Endpoint& e : old.reachable_endpoints) {
          if (keep.count(e.str()) != 0) continue;
          out.push_back({L4Protocol::kUDP, std::nullopt, static_cast<uint16_t>(old.node_port), e.ip.str(),
                         static_cast<uint16_t>(e.port)});
        }
      }
    }
  }
  for (const ServicePortState& sp : after.ports) {
    if (sp.protocol() != Protocol::kUDP || sp.reachable_endpoints.empty()) continue;
    const ServicePortState* old = before.find(sp.name, sp.family);
    if (old != nullptr && !old->reachable_endpoints.empty()) continue;
    for (const IpAddress& ip : addrs(sp)) {
      out.push_back({L4Protocol::kUDP, ip.str(), static_cast<uint16_t>(sp.port), std::nullopt, std::nullopt});
    }
  }
  return out;
}

StatusOr<SyncCounts> Proxier::sync(bool full) {
  ProxyState state;
  ChangedSet changed;
  std::vector<std::chrono::system_clock::time_point> triggers;
  ProxyState before;
  {
    std::lock_guard<std::mutex> lock(mu_);
    changed = tracker_.takeChanged();
    state = buildProxyState(tracker_.map(), options_.node);
    triggers.swap(triggers_);
    before = last_state_;
  }
  auto rules = backend_->sync(state, changed, full);
  if (!rules.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    // The changes are still to be applied: keep their trigger times for the retry.
    triggers_.insert(triggers_.end(), triggers.begin(), triggers.end());
    return rules.status();
  }
  auto now = std::chrono::system_clock::now();
  for (const auto& t : triggers) metrics_.observeNetworkProgramming(now - t);

  if (conntrack_) {
    std::vector<ConntrackFilter> stale = staleUdp(before, state);
    if (!stale.empty()) {
      auto n = conntrack_->deleteAny(stale);
      if (!n.ok()) {
        log::get("proxy")->warn("delete stale UDP conntrack entries: {}", std::string(n.status().message()));
      } else if (*n > 0) {
        log::get("proxy")->debug("deleted {} stale UDP conntrack entries", *n);
      }
    }
  }

  std::vector<ServiceHealthServers::Entry> health;
  int endpoints = 0;
  for (const ServicePortState& sp : state.ports) {
    endpoints += static_cast<int>(sp.reachable_endpoints.size());
    if (sp.health_check_node_port != 0) {
      health.push_back({sp.name.service.ns, sp.name.service.name,
                        static_cast<uint16_t>(sp.health_check_node_port),
                        static_cast<int>(sp.local_endpoints.size())});
    }
  }
  Status hs = service_health_.sync(health);
  if (!hs.ok()) log::get("proxy")->warn("{}", std::string(hs.message()));

  SyncCounts counts{*rules, static_cast<int>(state.ports.size()), endpoints};
  std::lock_guard<std::mutex> lock(mu_);
  last_state_ = std::move(state);
  return counts;
}

}  // namespace berth::proxy
