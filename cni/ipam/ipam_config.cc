#include "cni/ipam/ipam_config.h"

#include "common/fs.h"

namespace berth::cni::ipam {
namespace {

using json::Json;

StatusOr<IpRange> defaultsFor(const IpPrefix& subnet, std::string_view where) {
  IpRange r;
  r.subnet = subnet;
  IpAddress net = subnet.networkAddress(), last = subnet.lastAddress();
  uint64_t size = IpAddress::countInclusive(net, last);
  // Smallest usable: IPv4 /30 (network, gateway, one pod, broadcast); IPv6 /126.
  if (size < 4) {
    return invalidArgument(where, ": subnet ", subnet.toString(),
                           " is too small to allocate from; use at least a /",
                           subnet.address.bits() - 2);
  }
  r.gateway = net.next();
  r.range_start = net.next();
  r.range_end = subnet.isV4() ? last.prev() : last;
  return r;
}

StatusOr<IpRange> parseRange(const Json& j, const std::string& where) {
  if (!j.is_object()) return invalidArgument(where, " is not an object");
  if (!j.contains("subnet") || !j["subnet"].is_string()) {
    return invalidArgument(where, ".subnet is missing (write it as \"10.244.0.0/24\")");
  }
  auto subnet = IpPrefix::parse(j["subnet"].get<std::string>());
  if (!subnet.ok()) return invalidArgument(where, ".subnet: ", subnet.status().message());
  ASSIGN_OR_RETURN(IpRange r, defaultsFor(*subnet, where + ".subnet"));
  auto address = [&](const char* key, IpAddress& out) -> Status {
    if (!j.contains(key) || j[key].is_null()) return absl::OkStatus();
    if (!j[key].is_string()) return invalidArgument(where, ".", key, " is not a string");
    auto ip = IpAddress::parse(j[key].get<std::string>());
    if (!ip.ok()) return invalidArgument(where, ".", key, ": ", ip.status().message());
    if (!subnet->contains(*ip)) {
      return invalidArgument(where, ".", key, ": \"", j[key].get<std::string>(),
                             "\" is outside subnet ", subnet->toString());
    }
    out = *ip;
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(address("rangeStart", r.range_start));
  RETURN_IF_ERROR(address("rangeEnd", r.range_end));
  RETURN_IF_ERROR(address("gateway", r.gateway));
  if (r.range_end < r.range_start) {
    return invalidArgument(where, ": rangeStart ", r.range_start.toString(), " is after rangeEnd ",
                           r.range_end.toString());
  }
  return r;
}

Status checkSets(const std::vector<std::vector<IpRange>>& sets) {
  std::vector<std::pair<IpPrefix, std::string>> seen;
  for (size_t i = 0; i < sets.size(); ++i) {
    if (sets[i].empty()) return invalidArgument("ipam.ranges[", i, "] is empty");
    for (size_t k = 0; k < sets[i].size(); ++k) {
      const IpRange& r = sets[i][k];
      std::string where = strCat("ipam.ranges[", i, "][", k, "]");
      if (r.subnet.isV4() != sets[i][0].subnet.isV4()) {
        return invalidArgument(where, ": subnet ", r.subnet.toString(),
                               " is of another IP family than the rest of its range set; put "
                               "each family in a range set of its own");
      }
      for (const auto& [other, other_where] : seen) {
        // Ranges may share a subnet (split ranges) but must not overlap as ranges.
        bool same_subnet = other.toString() == r.subnet.toString();
        if (!same_subnet && other.overlaps(r.subnet)) {
          return invalidArgument(where, ": subnet ", r.subnet.toString(), " overlaps ",
                                 other_where, " (", other.toString(), ")");
        }
      }
      seen.emplace_back(r.subnet, where);
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string IpRange::describe() const {
  return strCat(range_start.toString(), "-", range_end.toString());
}

StatusOr<std::vector<std::vector<IpRange>>> parsePodCidrText(std::string_view text,
                                                            std::string_view path) {
  std::vector<std::vector<IpRange>> sets;
  int line_no = 0;
  for (const std::string& raw : split(text, '\n')) {
    ++line_no;
    std::string_view line = trim(raw);
    if (line.empty() || line[0] == '#') continue;
    std::string where = strCat("podCIDRFile \"", path, "\" line ", line_no);
    auto prefix = IpPrefix::parse(line);
    if (!prefix.ok()) return invalidArgument(where, ": ", prefix.status().message());
    ASSIGN_OR_RETURN(IpRange r, defaultsFor(*prefix, where));
    sets.push_back({r});
  }
  if (sets.empty()) {
    return absl::UnavailableError(strCat("podCIDRFile \"", path,
                                         "\" lists no pod CIDR yet; berthd writes it from the "
                                         "node's spec.podCIDRs (pod-cidr); retry later"));
  }
  return sets;
}

StatusOr<IpamConfig> parseIpamConfig(const Json& netconf) {
  if (!netconf.contains("ipam") || !netconf["ipam"].is_object()) {
    return invalidArgument("\"ipam\" is missing or not an object");
  }
  const Json& j = netconf["ipam"];
  IpamConfig c;
  c.type = j.value("type", "");
  if (j.contains("dataDir") && !j["dataDir"].is_null()) {
    if (!j["dataDir"].is_string() || j["dataDir"].get<std::string>().empty() ||
        j["dataDir"].get<std::string>()[0] != '/') {
      return invalidArgument("ipam.dataDir must be an absolute path, got ", j["dataDir"].dump());
    }
    c.data_dir = j["dataDir"].get<std::string>();
  }
  bool has_subnet = j.contains("subnet") && !j["subnet"].is_null();
  bool has_ranges = j.contains("ranges") && !j["ranges"].is_null();
  bool has_file = j.contains("podCIDRFile") && !j["podCIDRFile"].is_null();
  if (has_file && (has_subnet || has_ranges)) {
    return invalidArgument("ipam: give either podCIDRFile or subnet/ranges, not both");
  }
  if (has_subnet && has_ranges) {
    return invalidArgument("ipam: give either subnet (one range) or ranges, not both");
  }
  if (has_subnet) {
    ASSIGN_OR_RETURN(IpRange r, parseRange(j, "ipam"));
    c.range_sets.push_back({r});
  } else if (has_ranges) {
    const Json& sets = j["ranges"];
    if (!sets.is_array() || sets.empty()) {
      return invalidArgument("ipam.ranges must be a non-empty list of range sets "
                             "(lists of {\"subnet\": ...})");
    }
    for (size_t i = 0; i < sets.size(); ++i) {
      if (!sets[i].is_array()) return invalidArgument("ipam.ranges[", i, "] is not a list");
      std::vector<IpRange> set;
      for (size_t k = 0; k < sets[i].size(); ++k) {
        ASSIGN_OR_RETURN(IpRange r, parseRange(sets[i][k], strCat("ipam.ranges[", i, "][", k, "]")));
        set.push_back(r);
      }
      c.range_sets.push_back(std::move(set));
    }
  } else if (has_file) {
    if (!j["podCIDRFile"].is_string() || j["podCIDRFile"].get<std::string>().empty()) {
      return invalidArgument("ipam.podCIDRFile must be a path");
    }
    c.pod_cidr_file = j["podCIDRFile"].get<std::string>();
    auto text = fs::readFile(c.pod_cidr_file);
    if (!text.ok()) {
      if (absl::IsNotFound(text.status())) {
        return absl::UnavailableError(strCat(
            "podCIDRFile \"", c.pod_cidr_file,
            "\" does not exist yet; berthd writes it from the node's pod CIDR (pod-cidr); retry "
            "later"));
      }
      return withContext(text.status(), "ipam.podCIDRFile");
    }
    ASSIGN_OR_RETURN(c.range_sets, parsePodCidrText(*text, c.pod_cidr_file));
  } else {
    return invalidArgument("ipam: no addresses to hand out; set \"subnet\", \"ranges\" or "
                           "\"podCIDRFile\"");
  }
  RETURN_IF_ERROR(checkSets(c.range_sets));
  if (j.contains("routes") && !j["routes"].is_null()) {
    if (!j["routes"].is_array()) return invalidArgument("ipam.routes is not a list");
    for (size_t i = 0; i < j["routes"].size(); ++i) {
      const Json& r = j["routes"][i];
      if (!r.is_object() || !r.contains("dst") || !r["dst"].is_string()) {
        return invalidArgument("ipam.routes[", i, "] needs \"dst\" (a CIDR)");
      }
      auto dst = IpPrefix::parse(r["dst"].get<std::string>(), /*strict=*/false);
      if (!dst.ok()) return invalidArgument("ipam.routes[", i, "].dst: ", dst.status().message());
      Route route;
      route.dst = dst->toString();
      if (r.contains("gw") && r["gw"].is_string() && !r["gw"].get<std::string>().empty()) {
        auto gw = IpAddress::parse(r["gw"].get<std::string>());
        if (!gw.ok()) return invalidArgument("ipam.routes[", i, "].gw: ", gw.status().message());
        route.gw = gw->toString();
      }
      c.routes.push_back(route);
    }
  }
  return c;
}

}  // namespace berth::cni::ipam
