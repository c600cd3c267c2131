#include "cni/ipam/ipam_config.h"

#include <limits>

#include "common/fs.h"

namespace berth::cni::ipam {
namespace {

using json::Json;

// A subnet with host-local's default range. Too small a subnet has no room for the
// network address, a gateway, a pod and (IPv4) the broadcast address.
StatusOr<IpRange> defaultsFor(const IpPrefix& subnet, std::string_view where) {
  IpRange r;
  r.subnet = subnet;
  IpAddress net = subnet.networkAddress(), last = subnet.lastAddress();
  if (subnet.size() < 4) {
    return invalidArgument(where, ": subnet ", subnet.toString(),
                           " is too small to allocate from; use at least a /",
                           subnet.address.bits() - 2);
  }
  r.gateway = net.next();
  r.range_start = net.next();
  r.range_end = subnet.isV4() ? last.prev() : last;
  return r;
}

std::string quoted(const Json& v) { return v.is_string() ? strCat("\"", v.get<std::string>(), "\"") : v.dump(); }

// A string-valued key, or "" when absent/null. Errors name the key.
StatusOr<std::string> optionalString(const Json& j, const char* key, std::string_view where) {
  if (!j.contains(key) || j[key].is_null()) return std::string();
  if (!j[key].is_string()) {
    return invalidArgument(where, ".", key, " must be a string, got ", j[key].dump());
  }
  return j[key].get<std::string>();
}

StatusOr<IpRange> parseRange(const Json& j, const std::string& where) {
  if (!j.is_object()) return invalidArgument(where, " must be an object like {\"subnet\": \"10.244.0.0/24\"}, got ", j.dump());
  ASSIGN_OR_RETURN(std::string subnet_text, optionalString(j, "subnet", where));
  if (subnet_text.empty()) {
    return invalidArgument(where, ".subnet is missing (write it as \"10.244.0.0/24\")");
  }
  auto subnet = IpPrefix::parse(subnet_text);
  if (!subnet.ok()) return invalidArgument(where, ".subnet: ", subnet.status().message());
  ASSIGN_OR_RETURN(IpRange r, defaultsFor(*subnet, where + ".subnet"));
  auto address = [&](const char* key, IpAddress& out) -> Status {
    ASSIGN_OR_RETURN(std::string text, optionalString(j, key, where));
    if (text.empty()) return absl::OkStatus();
    auto ip = IpAddress::parse(text);
    if (!ip.ok()) return invalidArgument(where, ".", key, ": ", ip.status().message());
    if (!subnet->contains(*ip)) {
      return invalidArgument(where, ".", key, ": \"", text, "\" is outside subnet ",
                             subnet->toString());
    }
    out = *ip;
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(address("rangeStart", r.range_start));
  RETURN_IF_ERROR(address("rangeEnd", r.range_end));
  RETURN_IF_ERROR(address("gateway", r.gateway));
  if (r.range_end < r.range_start) {
    return invalidArgument(where, ": rangeStart ", r.range_start.toString(),
                           " is after rangeEnd ", r.range_end.toString());
  }
  if (r.capacity() == 0) {
    return invalidArgument(where, ": range ", r.describe(),
                           " has no address to hand out (network, gateway and broadcast "
                           "addresses are reserved); widen rangeStart..rangeEnd");
  }
  return r;
}

// Families within a set, and no two ranges (in one set or across sets) sharing an
// address. `name(i, k)` names range k of set i in messages.
template <typename NameFn>
Status checkSets(const std::vector<std::vector<IpRange>>& sets, NameFn name) {
  struct Seen {
    const IpRange* range;
    size_t set;
    std::string where;
  };
  std::vector<Seen> seen;
  for (size_t i = 0; i < sets.size(); ++i) {
    for (size_t k = 0; k < sets[i].size(); ++k) {
      const IpRange& r = sets[i][k];
      std::string where = name(i, k);
      if (r.subnet.isV4() != sets[i][0].subnet.isV4()) {
        return invalidArgument(where, ": subnet ", r.subnet.toString(),
                               " is of another IP family than ", name(i, 0),
                               "; put each IP family in a range set of its own");
      }
      for (const Seen& other : seen) {
        const IpRange& o = *other.range;
        if (o.subnet.isV4() != r.subnet.isV4()) continue;
        if (r.range_end < o.range_start || o.range_end < r.range_start) continue;
        return invalidArgument(where, ": range ", r.describe(), " (subnet ", r.subnet.toString(),
                               ") overlaps ", other.where, " (", o.describe(), ")",
                               other.set == i ? "" : "; range sets must not overlap");
      }
      seen.push_back({&r, i, where});
    }
  }
  return absl::OkStatus();
}

StatusOr<std::vector<Route>> parseRoutes(const Json& j) {
  std::vector<Route> routes;
  if (!j.contains("routes") || j["routes"].is_null()) return routes;
  if (!j["routes"].is_array()) {
    return invalidArgument("ipam.routes must be a list of {\"dst\": CIDR, \"gw\": IP}, got ",
                           j["routes"].dump());
  }
  for (size_t i = 0; i < j["routes"].size(); ++i) {
    const Json& r = j["routes"][i];
    std::string where = strCat("ipam.routes[", i, "]");
    if (!r.is_object()) return invalidArgument(where, " must be an object, got ", r.dump());
    ASSIGN_OR_RETURN(std::string dst_text, optionalString(r, "dst", where));
    if (dst_text.empty()) return invalidArgument(where, ".dst is missing (a CIDR such as \"0.0.0.0/0\")");
    auto dst = IpPrefix::parse(dst_text, /*strict=*/false);
    if (!dst.ok()) return invalidArgument(where, ".dst: ", dst.status().message());
    Route route;
    route.dst = dst->toString();
    ASSIGN_OR_RETURN(std::string gw_text, optionalString(r, "gw", where));
    if (!gw_text.empty()) {
      auto gw = IpAddress::parse(gw_text);
      if (!gw.ok()) return invalidArgument(where, ".gw: ", gw.status().message());
      if (gw->isV4() != dst->isV4()) {
        return invalidArgument(where, ".gw: ", gw->toString(),
                               " is of another IP family than dst ", route.dst);
      }
      route.gw = gw->toString();
    }
    routes.push_back(std::move(route));
  }
  return routes;
}

StatusOr<std::vector<std::vector<IpRange>>> parseRangeSets(const Json& sets) {
  if (!sets.is_array() || sets.empty()) {
    return invalidArgument(
        "ipam.ranges must be a non-empty list of range sets (lists of {\"subnet\": ...}), got ",
        sets.dump());
  }
  std::vector<std::vector<IpRange>> out;
  for (size_t i = 0; i < sets.size(); ++i) {
    std::string where = strCat("ipam.ranges[", i, "]");
    if (!sets[i].is_array() || sets[i].empty()) {
      return invalidArgument(where, " must be a non-empty list of ranges ({\"subnet\": ...}), got ",
                             sets[i].dump());
    }
    std::vector<IpRange> set;
    for (size_t k = 0; k < sets[i].size(); ++k) {
      ASSIGN_OR_RETURN(IpRange r, parseRange(sets[i][k], strCat(where, "[", k, "]")));
      set.push_back(r);
    }
    out.push_back(std::move(set));
  }
  RETURN_IF_ERROR(checkSets(out, [](size_t i, size_t k) { return strCat("ipam.ranges[", i, "][", k, "]"); }));
  return out;
}

StatusOr<std::vector<std::vector<IpRange>>> readPodCidrFile(const std::string& path) {
  auto text = fs::readFile(path);
  if (!text.ok()) {
    if (absl::IsNotFound(text.status())) {
      return absl::UnavailableError(strCat(
          "ipam.podCIDRFile \"", path,
          "\" does not exist yet: berthd has not yet written the node's pod CIDR "
          "(spec.podCIDRs, or its pod-cidr setting); retry later"));
    }
    return withContext(text.status(), strCat("ipam.podCIDRFile \"", path, "\""));
  }
  return parsePodCidrText(*text, path);
}

}  // namespace

bool IpRange::inRange(const IpAddress& ip) const {
  return ip.isV4() == range_start.isV4() && !(ip < range_start) && !(range_end < ip);
}

bool IpRange::isReserved(const IpAddress& ip) const {
  if (ip == gateway || ip == subnet.networkAddress()) return true;
  return subnet.isV4() && ip == subnet.lastAddress();
}

uint64_t IpRange::capacity() const {
  uint64_t n = IpAddress::countInclusive(range_start, range_end);
  if (n == std::numeric_limits<uint64_t>::max()) return n;
  IpAddress network = subnet.networkAddress();
  IpAddress broadcast = subnet.lastAddress();
  if (inRange(network)) --n;
  if (gateway != network && inRange(gateway)) --n;
  if (subnet.isV4() && broadcast != network && broadcast != gateway && inRange(broadcast)) --n;
  return n;
}

std::string IpRange::describe() const {
  return strCat(range_start.toString(), "-", range_end.toString());
}

std::string IpRange::describeUsable() const {
  IpAddress first = range_start, last = range_end;
  for (int i = 0; i < 3 && isReserved(first) && first < last; ++i) first = first.next();
  for (int i = 0; i < 3 && isReserved(last) && first < last; ++i) last = last.prev();
  if (isReserved(first)) return "";
  return strCat(first.toString(), "-", last.toString());
}

StatusOr<std::vector<std::vector<IpRange>>> parsePodCidrText(std::string_view text,
                                                            std::string_view path) {
  std::vector<std::vector<IpRange>> sets;
  std::vector<int> lines;
  int line_no = 0;
  for (const std::string& raw : split(text, '\n')) {
    ++line_no;
    std::string_view line = raw;
    if (size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    line = trim(line);
    if (line.empty()) continue;
    std::string where = strCat("ipam.podCIDRFile \"", path, "\" line ", line_no);
    auto prefix = IpPrefix::parse(line);
    if (!prefix.ok()) return invalidArgument(where, ": ", prefix.status().message());
    ASSIGN_OR_RETURN(IpRange r, defaultsFor(*prefix, where));
    sets.push_back({r});
    lines.push_back(line_no);
  }
  if (sets.empty()) {
    return absl::UnavailableError(strCat("ipam.podCIDRFile \"", path,
                                         "\" lists no pod CIDR yet: berthd has not yet written "
                                         "the node's pod CIDR (spec.podCIDRs); retry later"));
  }
  RETURN_IF_ERROR(checkSets(sets, [&](size_t i, size_t) {
    return strCat("ipam.podCIDRFile \"", path, "\" line ", lines[i]);
  }));
  return sets;
}

StatusOr<IpamConfig> parseIpamConfig(const Json& netconf) {
  if (!netconf.is_object() || !netconf.contains("ipam") || !netconf["ipam"].is_object()) {
    return invalidArgument("\"ipam\" is missing or not an object");
  }
  const Json& j = netconf["ipam"];
  IpamConfig c;
  ASSIGN_OR_RETURN(c.type, optionalString(j, "type", "ipam"));
  ASSIGN_OR_RETURN(std::string data_dir, optionalString(j, "dataDir", "ipam"));
  if (j.contains("dataDir") && !j["dataDir"].is_null() &&
      (data_dir.empty() || data_dir[0] != '/')) {
    return invalidArgument("ipam.dataDir must be an absolute path, got ", quoted(j["dataDir"]));
  }
  if (!data_dir.empty()) c.data_dir = data_dir;

  bool has_subnet = j.contains("subnet") && !j["subnet"].is_null();
  bool has_ranges = j.contains("ranges") && !j["ranges"].is_null();
  bool has_file = j.contains("podCIDRFile") && !j["podCIDRFile"].is_null();
  if (has_file && (has_subnet || has_ranges)) {
    return invalidArgument("ipam: podCIDRFile and ", has_subnet ? "subnet" : "ranges",
                           " are both set; give either podCIDRFile (the node's pod CIDR "
                           "written by berthd) or subnet/ranges, not both");
  }
  if (has_subnet && has_ranges) {
    return invalidArgument("ipam: subnet and ranges are both set; give either subnet (one "
                           "range) or ranges, not both");
  }
  if (has_file) {
    // The pod CIDR file's ranges always take the defaults; host-local ignores these keys
    // without subnet, but with our own key a silent drop would surprise.
    for (const char* key : {"rangeStart", "rangeEnd", "gateway"}) {
      if (j.contains(key) && !j[key].is_null()) {
        return invalidArgument("ipam.", key, " cannot be combined with podCIDRFile (its "
                               "ranges use the defaults: gateway and rangeStart = network + 1)");
      }
    }
  }
  if (has_subnet) {
    ASSIGN_OR_RETURN(IpRange r, parseRange(j, "ipam"));
    c.range_sets.push_back({r});
  } else if (has_ranges) {
    ASSIGN_OR_RETURN(c.range_sets, parseRangeSets(j["ranges"]));
  } else if (has_file) {
    ASSIGN_OR_RETURN(c.pod_cidr_file, optionalString(j, "podCIDRFile", "ipam"));
    if (c.pod_cidr_file.empty() || c.pod_cidr_file[0] != '/') {
      return invalidArgument("ipam.podCIDRFile must be an absolute path, got ",
                             quoted(j["podCIDRFile"]));
    }
    ASSIGN_OR_RETURN(c.range_sets, readPodCidrFile(c.pod_cidr_file));
  } else {
    return invalidArgument("ipam: no addresses to hand out; set \"subnet\", \"ranges\" or "
                           "\"podCIDRFile\"");
  }
  ASSIGN_OR_RETURN(c.routes, parseRoutes(j));
  return c;
}

}  // namespace berth::cni::ipam
