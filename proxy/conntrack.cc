#include "proxy/conntrack.h"

#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

namespace berth::proxy {
namespace {

// A filter with its addresses parsed.
struct Compiled {
  uint8_t l4 = IPPROTO_UDP;
  int family = AF_UNSPEC;  // AF_UNSPEC: both
  std::optional<in6_addr> orig_dst, reply_src;  // IPv4 in the first 4 bytes
  std::optional<uint16_t> orig_dst_port, reply_src_port;  // host order
};

uint8_t l4Number(L4Protocol p) {
  switch (p) {
    case L4Protocol::kTCP:
      return IPPROTO_TCP;
    case L4Protocol::kSCTP:
      return IPPROTO_SCTP;
    case L4Protocol::kUDP:
      break;
  }
  return IPPROTO_UDP;
}

// Parses `ip` into `out`; returns its family, or 0 when malformed.
int parseIp(const std::string& ip, in6_addr& out) {
  std::memset(&out, 0, sizeof(out));
  if (inet_pton(AF_INET, ip.c_str(), &out) == 1) return AF_INET;
  if (inet_pton(AF_INET6, ip.c_str(), &out) == 1) return AF_INET6;
  return 0;
}

StatusOr<Compiled> compile(const ConntrackFilter& f) {
  Compiled c;
  c.l4 = l4Number(f.protocol);
  auto address = [&](const std::optional<std::string>& ip, std::optional<in6_addr>& slot,
                     std::string_view what) -> Status {
    if (!ip) return absl::OkStatus();
    in6_addr a;
    int family = parseIp(*ip, a);
    if (family == 0) return invalidArgument(what, " \"", *ip, "\" is not an IPv4 or IPv6 address");
    if (c.family != AF_UNSPEC && c.family != family) {
      return invalidArgument("the addresses of conntrack filter ", describeFilter(f), " mix IPv4 and IPv6");
    }
    c.family = family;
    slot = a;
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(address(f.orig_dst_ip, c.orig_dst, "original destination"));
  RETURN_IF_ERROR(address(f.reply_src_ip, c.reply_src, "reply source"));
  if ((f.orig_dst_port && *f.orig_dst_port == 0) || (f.reply_src_port && *f.reply_src_port == 0)) {
    return invalidArgument("conntrack filter ", describeFilter(f), ": port 0 matches nothing");
  }
  c.orig_dst_port = f.orig_dst_port;
  c.reply_src_port = f.reply_src_port;
  return c;
}

bool sameAddress(const nf_conntrack* ct, int family, nf_conntrack_attr v4_attr, nf_conntrack_attr v6_attr,
                 const in6_addr& want) {
  if (family == AF_INET) {
    if (!nfct_attr_is_set(ct, v4_attr)) return false;
    uint32_t got = nfct_get_attr_u32(ct, v4_attr);
    return std::memcmp(&got, &want, 4) == 0;
  }
  if (!nfct_attr_is_set(ct, v6_attr)) return false;
  const void* got = nfct_get_attr(ct, v6_attr);
  return got != nullptr && std::memcmp(got, &want, 16) == 0;
}

bool samePort(const nf_conntrack* ct, nf_conntrack_attr attr, uint16_t want) {
  return nfct_attr_is_set(ct, attr) && ntohs(nfct_get_attr_u16(ct, attr)) == want;
}

bool matches(const nf_conntrack* ct, const Compiled& c, int family) {
  if (!nfct_attr_is_set(ct, ATTR_ORIG_L4PROTO) || nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO) != c.l4) return false;
  if (c.orig_dst && !sameAddress(ct, family, ATTR_ORIG_IPV4_DST, ATTR_ORIG_IPV6_DST, *c.orig_dst)) return false;
  if (c.reply_src && !sameAddress(ct, family, ATTR_REPL_IPV4_SRC, ATTR_REPL_IPV6_SRC, *c.reply_src)) return false;
  if (c.orig_dst_port && !samePort(ct, ATTR_ORIG_PORT_DST, *c.orig_dst_port)) return false;
  if (c.reply_src_port && !samePort(ct, ATTR_REPL_PORT_SRC, *c.reply_src_port)) return false;
  return true;
}

std::string addressOf(const nf_conntrack* ct, int family, nf_conntrack_attr v4, nf_conntrack_attr v6) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (family == AF_INET && nfct_attr_is_set(ct, v4)) {
    uint32_t a = nfct_get_attr_u32(ct, v4);
    inet_ntop(AF_INET, &a, buf, sizeof(buf));
  } else if (family == AF_INET6 && nfct_attr_is_set(ct, v6)) {
    inet_ntop(AF_INET6, nfct_get_attr(ct, v6), buf, sizeof(buf));
  }
  return buf;
}

uint16_t portOf(const nf_conntrack* ct, nf_conntrack_attr attr) {
  return nfct_attr_is_set(ct, attr) ? ntohs(nfct_get_attr_u16(ct, attr)) : 0;
}

ConntrackEntry entryOf(const nf_conntrack* ct) {
  ConntrackEntry e;
  int family = nfct_get_attr_u8(ct, ATTR_ORIG_L3PROTO);
  e.family = family;
  uint8_t l4 = nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO);
  e.protocol = l4 == IPPROTO_TCP ? L4Protocol::kTCP : l4 == IPPROTO_SCTP ? L4Protocol::kSCTP : L4Protocol::kUDP;
  e.orig_src_ip = addressOf(ct, family, ATTR_ORIG_IPV4_SRC, ATTR_ORIG_IPV6_SRC);
  e.orig_dst_ip = addressOf(ct, family, ATTR_ORIG_IPV4_DST, ATTR_ORIG_IPV6_DST);
  e.reply_src_ip = addressOf(ct, family, ATTR_REPL_IPV4_SRC, ATTR_REPL_IPV6_SRC);
  e.reply_dst_ip = addressOf(ct, family, ATTR_REPL_IPV4_DST, ATTR_REPL_IPV6_DST);
  e.orig_src_port = portOf(ct, ATTR_ORIG_PORT_SRC);
  e.orig_dst_port = portOf(ct, ATTR_ORIG_PORT_DST);
  e.reply_src_port = portOf(ct, ATTR_REPL_PORT_SRC);
  e.reply_dst_port = portOf(ct, ATTR_REPL_PORT_DST);
  return e;
}

struct CtFree {
  void operator()(nf_conntrack* ct) const { nfct_destroy(ct); }
};
using CtPtr = std::unique_ptr<nf_conntrack, CtFree>;

struct DumpState {
  const std::vector<Compiled>* filters;
  int family;
  std::vector<CtPtr> found;
};

int collect(enum nf_conntrack_msg_type /*type*/, struct nf_conntrack* ct, void* data) {
  auto* state = static_cast<DumpState*>(data);
  for (const Compiled& c : *state->filters) {
    if ((c.family != AF_UNSPEC && c.family != state->family) || !matches(ct, c, state->family)) continue;
    nf_conntrack* copy = nfct_clone(ct);
    if (copy != nullptr) state->found.emplace_back(copy);
    break;
  }
  return NFCT_CB_CONTINUE;
}

// The entries of one family (AF_INET or AF_INET6) matching any of `filters`.
StatusOr<std::vector<CtPtr>> dumpFamily(nfct_handle* h, const std::vector<Compiled>& filters, int family) {
  constexpr int kAttempts = 4;
  for (int attempt = 1;; ++attempt) {
    DumpState state{&filters, family, {}};
    nfct_callback_register(h, NFCT_T_ALL, collect, &state);
    uint32_t fam = static_cast<uint32_t>(family);
    int rc = nfct_query(h, NFCT_Q_DUMP, &fam);
    int err = errno;
    nfct_callback_unregister(h);
    if (rc == 0) return std::move(state.found);
    // EINTR: the table changed during the dump (NLM_F_DUMP_INTR); dump again.
    if ((err == EINTR || err == EBUSY) && attempt < kAttempts) continue;
    return errnoError(err, strCat("dump the ", family == AF_INET ? "IPv4" : "IPv6", " conntrack table"));
  }
}

// The entries matching any of `filters`: one dump per family some filter concerns.
StatusOr<std::vector<CtPtr>> dumpMatching(nfct_handle* h, const std::vector<Compiled>& filters) {
  std::vector<CtPtr> all;
  for (int family : {AF_INET, AF_INET6}) {
    bool wanted = false;
    for (const Compiled& c : filters) wanted = wanted || c.family == AF_UNSPEC || c.family == family;
    if (!wanted) continue;
    ASSIGN_OR_RETURN(std::vector<CtPtr> some, dumpFamily(h, filters, family));
    for (CtPtr& ct : some) all.push_back(std::move(ct));
  }
  return all;
}

std::string ipPort(std::string_view ip, uint16_t port) {
  if (ip.find(':') != std::string_view::npos) return strCat("[", ip, "]:", port);
  return strCat(ip, ":", port);
}

}  // namespace

std::string ConntrackEntry::toString() const {
  return strCat(protocolLower(protocol), " ", ipPort(orig_src_ip, orig_src_port), " -> ",
                ipPort(orig_dst_ip, orig_dst_port), ", reply ", ipPort(reply_src_ip, reply_src_port), " -> ",
                ipPort(reply_dst_ip, reply_dst_port));
}

std::string describeFilter(const ConntrackFilter& f) {
  std::vector<std::string> parts;
  if (f.orig_dst_ip || f.orig_dst_port) {
    std::string ip = f.orig_dst_ip.value_or("*");
    parts.push_back(f.orig_dst_port ? strCat("orig dst ", ipPort(ip, *f.orig_dst_port)) : strCat("orig dst ", ip));
  }
  if (f.reply_src_ip || f.reply_src_port) {
    std::string ip = f.reply_src_ip.value_or("*");
    parts.push_back(f.reply_src_port ? strCat("reply src ", ipPort(ip, *f.reply_src_port))
                                     : strCat("reply src ", ip));
  }
  if (parts.empty()) parts.push_back("all entries");
  return strCat(protocolLower(f.protocol), " ", joinStrings(parts, ", "));
}

StatusOr<std::unique_ptr<ConntrackCleaner>> ConntrackCleaner::open() {
  struct stat st {};
  ino_t netns = ::stat("/proc/thread-self/ns/net", &st) == 0 ? st.st_ino : 0;
  nfct_handle* h = nfct_open(CONNTRACK, 0);
  if (h == nullptr) {
    return absl::UnavailableError(strCat("open ctnetlink socket for conntrack cleanup: ", std::strerror(errno),
                                         " (needs CAP_NET_ADMIN and the nf_conntrack_netlink module)"));
  }
  return std::unique_ptr<ConntrackCleaner>(new ConntrackCleaner(h, netns));
}

ConntrackCleaner::~ConntrackCleaner() { nfct_close(handle_); }

StatusOr<size_t> ConntrackCleaner::deleteMatching(const ConntrackFilter& filter) {
  return deleteAny({filter});
}

StatusOr<size_t> ConntrackCleaner::deleteAny(const std::vector<ConntrackFilter>& filters) {
  if (filters.empty()) return 0;
  std::vector<std::string> descriptions;
  std::vector<Compiled> compiled;
  for (const ConntrackFilter& f : filters) {
    std::string what = describeFilter(f);
    if (!f.orig_dst_ip && !f.orig_dst_port && !f.reply_src_ip && !f.reply_src_port) {
      return invalidArgument("delete conntrack entries ", what, ": refusing to delete every ",
                             protocolLower(f.protocol), " entry: the filter sets no address or port");
    }
    ASSIGN_OR_RETURN(Compiled c, withContext(compile(f), strCat("delete conntrack entries ", what)));
    compiled.push_back(c);
    descriptions.push_back(std::move(what));
  }
  std::string what = descriptions.size() == 1 ? descriptions[0]
                                              : strCat("matching any of ", descriptions.size(), " filters (",
                                                       joinStrings(descriptions, "; "), ")");
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(std::vector<CtPtr> found,
                   withContext(dumpMatching(handle_, compiled), strCat("delete conntrack entries ", what)));
  size_t deleted = 0;
  for (const CtPtr& ct : found) {
    if (nfct_query(handle_, NFCT_Q_DESTROY, ct.get()) == 0) {
      ++deleted;
    } else if (int err = errno; err != ENOENT) {
      return errnoError(err, strCat("delete conntrack entries ", what, ": delete ", entryOf(ct.get()).toString()));
    }
  }
  return deleted;
}

StatusOr<std::vector<ConntrackEntry>> ConntrackCleaner::list(const ConntrackFilter& filter) {
  std::string what = describeFilter(filter);
  ASSIGN_OR_RETURN(Compiled c, withContext(compile(filter), strCat("list conntrack entries ", what)));
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(std::vector<CtPtr> found,
                   withContext(dumpMatching(handle_, {c}), strCat("list conntrack entries ", what)));
  std::vector<ConntrackEntry> out;
  for (const CtPtr& ct : found) out.push_back(entryOf(ct.get()));
  return out;
}

StatusOr<size_t> ConntrackCleaner::deleteByOrigDst(L4Protocol protocol, std::string_view ip, uint16_t port) {
  ConntrackFilter f;
  f.protocol = protocol;
  f.orig_dst_ip = std::string(ip);
  f.orig_dst_port = port;
  return deleteMatching(f);
}

StatusOr<size_t> ConntrackCleaner::deleteByReplySrc(L4Protocol protocol, std::string_view ip, uint16_t port) {
  ConntrackFilter f;
  f.protocol = protocol;
  f.reply_src_ip = std::string(ip);
  f.reply_src_port = port;
  return deleteMatching(f);
}

StatusOr<size_t> ConntrackCleaner::deleteByOrigDstPort(L4Protocol protocol, uint16_t port) {
  ConntrackFilter f;
  f.protocol = protocol;
  f.orig_dst_port = port;
  return deleteMatching(f);
}

}  // namespace berth::proxy
