// NftWalker: parsing of the nft subset and the simulated transaction (apply()).
#include <algorithm>
#include <cstdlib>

#include "common/strings.h"
#include "tests/unit/proxy/nft_walker.h"

namespace berth::proxy::testing {
namespace {

std::vector<std::string> tokenize(std::string_view text) {
  std::vector<std::string> out;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty()) out.push_back(cur);
    cur.clear();
  };
  for (char c : text) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      flush();
    } else if (c == '{' || c == '}' || c == ',' || c == ';') {
      flush();
      out.push_back(std::string(1, c));
    } else {
      cur += c;
    }
  }
  flush();
  return out;
}

std::string joinFrom(const std::vector<std::string>& t, size_t from, size_t to) {
  std::vector<std::string> parts(t.begin() + from, t.begin() + to);
  return joinStrings(parts, " ");
}

StatusOr<uint32_t> parseNumber(const std::string& s) {
  char* end = nullptr;
  unsigned long v = std::strtoul(s.c_str(), &end, 0);
  if (s.empty() || *end != '\0') return invalidArgument("\"", s, "\" is not a number");
  return uint32_t(v);
}

StatusOr<Protocol> protoFromLower(const std::string& s) {
  if (s == "tcp") return Protocol::kTCP;
  if (s == "udp") return Protocol::kUDP;
  if (s == "sctp") return Protocol::kSCTP;
  return invalidArgument("unknown protocol \"", s, "\"");
}

StatusOr<Cidr> cidrOrAddress(const std::string& s) {
  if (s.find('/') != std::string::npos) return Cidr::parse(s);
  ASSIGN_OR_RETURN(IpAddress ip, IpAddress::parse(s));
  return Cidr{ip, ip.family == IpFamily::kIPv4 ? 32 : 128};
}

// Token cursor over one rule.
class Cursor {
 public:
  explicit Cursor(std::vector<std::string> t) : t_(std::move(t)) {}
  bool done() const { return i_ >= t_.size(); }
  const std::string& peek(size_t ahead = 0) const {
    static const std::string kEnd;
    return i_ + ahead < t_.size() ? t_[i_ + ahead] : kEnd;
  }
  std::string next() { return done() ? std::string() : t_[i_++]; }
  Status expect(std::string_view word) {
    if (peek() != word) return invalidArgument("expected \"", word, "\" at \"", peek(), "\"");
    ++i_;
    return absl::OkStatus();
  }

 private:
  std::vector<std::string> t_;
  size_t i_ = 0;
};

StatusOr<WalkerVerdict> verdictAt(Cursor& c) {
  std::string w = c.next();
  WalkerVerdict v;
  if (w == "jump" || w == "goto") {
    v.kind = w == "jump" ? WalkerVerdict::Kind::kJump : WalkerVerdict::Kind::kGoto;
    v.chain = c.next();
    if (v.chain.empty()) return invalidArgument(w, " without a chain");
  } else if (w == "return") {
    v.kind = WalkerVerdict::Kind::kReturn;
  } else if (w == "accept") {
    v.kind = WalkerVerdict::Kind::kAccept;
  } else if (w == "drop") {
    v.kind = WalkerVerdict::Kind::kDrop;
  } else {
    return invalidArgument("\"", w, "\" is not a verdict");
  }
  return v;
}

Status parseItem(Cursor& c, WalkerRule& rule, bool& in_statements) {
  auto match = [&](WalkerMatch m) -> Status {
    if (in_statements) return invalidArgument("a match after a statement (unsupported)");
    rule.matches.push_back(std::move(m));
    return absl::OkStatus();
  };
  auto statement = [&](WalkerStatement s) {
    in_statements = true;
    if (s.kind == WalkerStatement::Kind::kVerdict && !s.verdict.chain.empty()) {
      rule.chain_refs.push_back(s.verdict.chain);
    }
    for (const auto& arm : s.arms) {
      if (!arm.chain.empty()) rule.chain_refs.push_back(arm.chain);
    }
    if (!s.map.empty()) rule.set_refs.push_back(s.map);
    if (!s.set.empty()) rule.set_refs.push_back(s.set);
    rule.statements.push_back(std::move(s));
    return absl::OkStatus();
  };

  std::string w = c.next();
  if (w == "ct") {
    RETURN_IF_ERROR(c.expect("state"));
    RETURN_IF_ERROR(c.expect("new"));
    return match({});
  }
  if (w == "ip" || w == "ip6") {
    IpFamily family = w == "ip" ? IpFamily::kIPv4 : IpFamily::kIPv6;
    std::string dir = c.next();
    if (dir != "saddr" && dir != "daddr") return invalidArgument("\"", w, " ", dir, "\" unsupported");
    if (c.peek() == ".") {  // ip daddr . meta l4proto . th dport vmap @M
      for (const char* word : {".", "meta", "l4proto", ".", "th", "dport", "vmap"}) {
        RETURN_IF_ERROR(c.expect(word));
      }
      std::string map = c.next();
      if (map.size() < 2 || map[0] != '@') return invalidArgument("vmap needs @map");
      WalkerStatement s;
      s.kind = WalkerStatement::Kind::kVmap;
      s.vmap_with_addr = true;
      s.family = family;
      s.map = map.substr(1);
      return statement(std::move(s));
    }
    WalkerMatch m;
    m.kind = WalkerMatch::Kind::kAddr;
    m.family = family;
    m.source = dir == "saddr";
    if (c.peek() == "!=") {
      m.negate = true;
      c.next();
    }
    std::string v = c.next();
    if (v.size() > 1 && v[0] == '@') {
      m.set = v.substr(1);
      rule.set_refs.push_back(m.set);
    } else if (v == "{") {
      while (c.peek() != "}") {
        if (c.done()) return invalidArgument("unterminated {");
        std::string item = c.next();
        if (item == ",") continue;
        ASSIGN_OR_RETURN(Cidr cidr, cidrOrAddress(item));
        m.cidrs.push_back(cidr);
      }
      c.next();
    } else {
      ASSIGN_OR_RETURN(Cidr cidr, cidrOrAddress(v));
      m.cidrs.push_back(cidr);
    }
    for (const Cidr& cidr : m.cidrs) {
      if (cidr.address.family != family) return invalidArgument(v, " is not of family ", w);
    }
    return match(std::move(m));
  }
  if (w == "tcp" || w == "udp" || w == "sctp") {
    RETURN_IF_ERROR(c.expect("dport"));
    WalkerMatch m;
    m.kind = WalkerMatch::Kind::kPort;
    ASSIGN_OR_RETURN(m.protocol, protoFromLower(w));
    ASSIGN_OR_RETURN(uint32_t port, parseNumber(c.next()));
    m.port = int(port);
    return match(std::move(m));
  }
  if (w == "meta") {
    std::string what = c.next();
    if (what == "l4proto") {
      if (c.peek() == ".") {
        for (const char* word : {".", "th", "dport", "vmap"}) RETURN_IF_ERROR(c.expect(word));
        std::string map = c.next();
        if (map.size() < 2 || map[0] != '@') return invalidArgument("vmap needs @map");
        WalkerStatement s;
        s.kind = WalkerStatement::Kind::kVmap;
        s.map = map.substr(1);
        return statement(std::move(s));
      }
      WalkerMatch m;
      m.kind = WalkerMatch::Kind::kL4Proto;
      ASSIGN_OR_RETURN(m.protocol, protoFromLower(c.next()));
      return match(std::move(m));
    }
    if (what == "mark") {
      if (c.peek() == "&") {
        c.next();
        WalkerMatch m;
        m.kind = WalkerMatch::Kind::kMarkZero;
        ASSIGN_OR_RETURN(m.mask, parseNumber(c.next()));
        RETURN_IF_ERROR(c.expect("=="));
        RETURN_IF_ERROR(c.expect("0"));
        return match(std::move(m));
      }
      for (const char* word : {"set", "meta", "mark"}) RETURN_IF_ERROR(c.expect(word));
      std::string op = c.next();
      WalkerStatement s;
      if (op == "|") {
        s.kind = WalkerStatement::Kind::kMarkOr;
      } else if (op == "^") {
        s.kind = WalkerStatement::Kind::kMarkXor;
      } else {
        return invalidArgument("mark operator \"", op, "\" unsupported");
      }
      ASSIGN_OR_RETURN(s.value, parseNumber(c.next()));
      return statement(std::move(s));
    }
    return invalidArgument("\"meta ", what, "\" unsupported");
  }
  if (w == "fib") {
    WalkerMatch m;
    m.kind = WalkerMatch::Kind::kFibLocal;
    std::string dir = c.next();
    if (dir != "saddr" && dir != "daddr") return invalidArgument("fib ", dir, " unsupported");
    m.source = dir == "saddr";
    RETURN_IF_ERROR(c.expect("type"));
    RETURN_IF_ERROR(c.expect("local"));
    return match(std::move(m));
  }
  if (w == "numgen") {
    for (const char* word : {"random", "mod"}) RETURN_IF_ERROR(c.expect(word));
    ASSIGN_OR_RETURN(uint32_t n, parseNumber(c.next()));
    if (n == 0) return invalidArgument("numgen random mod 0");
    if (c.peek() == "==") {  // numgen random mod N == V: a random match
      c.next();
      WalkerMatch m;
      m.kind = WalkerMatch::Kind::kNumgen;
      m.mod = n;
      ASSIGN_OR_RETURN(m.value, parseNumber(c.next()));
      if (m.value >= n) return invalidArgument("numgen value ", m.value, " >= mod ", n);
      return match(std::move(m));
    }
    RETURN_IF_ERROR(c.expect("vmap"));
    RETURN_IF_ERROR(c.expect("{"));
    WalkerStatement s;
    s.kind = WalkerStatement::Kind::kNumgen;
    s.arms.resize(n);
    while (c.peek() != "}") {
      if (c.done()) return invalidArgument("unterminated numgen map");
      if (c.peek() == ",") {
        c.next();
        continue;
      }
      ASSIGN_OR_RETURN(uint32_t idx, parseNumber(c.next()));
      RETURN_IF_ERROR(c.expect(":"));
      ASSIGN_OR_RETURN(WalkerVerdict v, verdictAt(c));
      if (idx >= n) return invalidArgument("numgen index ", idx, " >= mod ", n);
      s.arms[idx] = v;
    }
    c.next();
    return statement(std::move(s));
  }
  if (w == "jump" || w == "goto" || w == "return" || w == "accept" || w == "drop") {
    WalkerStatement s;
    if (w == "jump" || w == "goto") {
      s.verdict.kind = w == "jump" ? WalkerVerdict::Kind::kJump : WalkerVerdict::Kind::kGoto;
      s.verdict.chain = c.next();
      if (s.verdict.chain.empty()) return invalidArgument(w, " without a chain");
    } else {
      s.verdict.kind = w == "return" ? WalkerVerdict::Kind::kReturn
                                     : (w == "accept" ? WalkerVerdict::Kind::kAccept
                                                      : WalkerVerdict::Kind::kDrop);
    }
    return statement(std::move(s));
  }
  if (w == "reject") {
    if (c.peek() == "with") {
      for (const char* word : {"with", "tcp", "reset"}) RETURN_IF_ERROR(c.expect(word));
    }
    WalkerStatement s;
    s.verdict.kind = WalkerVerdict::Kind::kReject;
    return statement(std::move(s));
  }
  if (w == "masquerade") {
    if (c.peek() == "fully-random") c.next();
    WalkerStatement s;
    s.kind = WalkerStatement::Kind::kMasquerade;
    return statement(std::move(s));
  }
  if (w == "dnat") {
    std::string fam = c.next();
    if (fam != "ip" && fam != "ip6") return invalidArgument("dnat needs ip or ip6 in an inet table");
    RETURN_IF_ERROR(c.expect("to"));
    std::string dest = c.next();
    WalkerStatement s;
    s.kind = WalkerStatement::Kind::kDnat;
    s.family = fam == "ip" ? IpFamily::kIPv4 : IpFamily::kIPv6;
    std::string addr, port;
    if (!dest.empty() && dest[0] == '[') {
      size_t close = dest.find("]:");
      if (close == std::string::npos) return invalidArgument("bad dnat destination ", dest);
      addr = dest.substr(1, close - 1);
      port = dest.substr(close + 2);
    } else {
      size_t colon = dest.rfind(':');
      if (colon == std::string::npos) return invalidArgument("dnat destination without port ", dest);
      addr = dest.substr(0, colon);
      port = dest.substr(colon + 1);
    }
    ASSIGN_OR_RETURN(s.address, IpAddress::parse(addr));
    if (s.address.family != s.family) return invalidArgument("dnat ", fam, " to ", addr);
    ASSIGN_OR_RETURN(uint32_t p, parseNumber(port));
    s.port = int(p);
    return statement(std::move(s));
  }
  if (w == "update") {
    std::string set = c.next();
    if (set.size() < 2 || set[0] != '@') return invalidArgument("update needs @set");
    RETURN_IF_ERROR(c.expect("{"));
    std::string fam = c.next();
    if (fam != "ip" && fam != "ip6") return invalidArgument("update key must be ip|ip6 saddr");
    RETURN_IF_ERROR(c.expect("saddr"));
    if (c.peek() == "timeout") {
      c.next();
      std::string t = c.next();
      if (t.empty() || t.back() != 's') return invalidArgument("timeout must be <N>s");
    }
    RETURN_IF_ERROR(c.expect("}"));
    WalkerStatement s;
    s.kind = WalkerStatement::Kind::kUpdate;
    s.family = fam == "ip" ? IpFamily::kIPv4 : IpFamily::kIPv6;
    s.set = set.substr(1);
    return statement(std::move(s));
  }
  return invalidArgument("unsupported token \"", w, "\"");
}

// "{ type filter hook input priority -110; }" -> chain fields. Mirrors nft's rule that
// "dstnat" is only valid in prerouting and "srcnat" only in postrouting.
Status parseBaseSpec(const std::vector<std::string>& t, size_t from, NftWalker::Chain& chain) {
  if (t.size() < from + 8 || t[from] != "{" || t.back() != "}") {
    return invalidArgument("bad base chain declaration");
  }
  if (t[from + 1] != "type" || t[from + 3] != "hook" || t[from + 5] != "priority") {
    return invalidArgument("base chain declaration must be { type T hook H priority P; }");
  }
  chain.base = true;
  chain.type = t[from + 2];
  chain.hook = t[from + 4];
  if (chain.type != "filter" && chain.type != "nat") return invalidArgument("chain type ", chain.type);
  static const std::set<std::string> kHooks = {"prerouting", "input", "forward", "output", "postrouting"};
  if (!kHooks.count(chain.hook)) return invalidArgument("hook ", chain.hook);
  size_t i = from + 6;
  int prio = 0;
  int sign = 1;
  bool first = true;
  for (; i < t.size() && t[i] != ";"; ++i) {
    const std::string& w = t[i];
    if (w == "-") {
      sign = -1;
    } else if (w == "+") {
      sign = 1;
    } else if (w == "dstnat" || w == "srcnat" || w == "filter") {
      if (!first) return invalidArgument("priority name not first");
      if (w == "dstnat" && chain.hook != "prerouting") {
        return invalidArgument("invalid priority expression value in this context (dstnat in ", chain.hook, ")");
      }
      if (w == "srcnat" && chain.hook != "postrouting") {
        return invalidArgument("invalid priority expression value in this context (srcnat in ", chain.hook, ")");
      }
      prio = w == "dstnat" ? -100 : (w == "srcnat" ? 100 : 0);
    } else {
      char* end = nullptr;
      long v = std::strtol(w.c_str(), &end, 10);
      if (*end != '\0') return invalidArgument("bad priority ", w);
      prio += sign * int(v);
      sign = 1;
    }
    first = false;
  }
  chain.priority = prio;
  if (chain.type == "nat" && chain.hook != "prerouting" && chain.hook != "output" &&
      chain.hook != "postrouting" && chain.hook != "input") {
    return invalidArgument("nat chain in hook ", chain.hook);
  }
  return absl::OkStatus();
}

std::string normalizeKey(const std::vector<std::string>& t, size_t from, size_t to) {
  return joinFrom(t, from, to);
}

bool refersToChain(const std::string& value, const std::string& chain) {
  auto v = parseWalkerVerdict(value);
  return v.ok() && v->chain == chain;
}

}  // namespace

StatusOr<WalkerVerdict> parseWalkerVerdict(std::string_view text) {
  Cursor c(tokenize(text));
  ASSIGN_OR_RETURN(WalkerVerdict v, verdictAt(c));
  if (!c.done()) return invalidArgument("trailing text after verdict: ", text);
  return v;
}

StatusOr<WalkerRule> parseWalkerRule(std::string_view text) {
  WalkerRule rule;
  rule.text = std::string(text);
  Cursor c(tokenize(text));
  bool in_statements = false;
  while (!c.done()) RETURN_IF_ERROR(parseItem(c, rule, in_statements));
  if (rule.statements.empty() && rule.matches.empty()) return invalidArgument("empty rule");
  return rule;
}

NftWalker::NftWalker() = default;
NftWalker::~NftWalker() = default;
NftWalker::NftWalker(const NftWalker&) = default;
NftWalker& NftWalker::operator=(const NftWalker&) = default;

Status NftWalker::apply(std::string_view script) {
  NftWalker next = *this;
  size_t n = 0;
  for (const std::string& raw : split(script, '\n')) {
    ++n;
    std::string line(trim(raw));
    if (line.empty() || line[0] == '#') continue;
    Status st = next.applyLine(line);
    if (!st.ok()) {
      return Status(st.code(), strCat("line ", n, ": ", st.message(), ": ", line));
    }
  }
  *this = std::move(next);
  return absl::OkStatus();
}

Status NftWalker::applyLine(const std::string& line) {
  std::vector<std::string> t = tokenize(line);
  if (t.size() < 4 || t[2] != "inet") return invalidArgument("unsupported command");
  const std::string& verb = t[0];
  const std::string& what = t[1];
  const std::string& table = t[3];
  if (what == "table") {
    if (verb == "add") {
      if (has_table_ && table != table_) return invalidArgument("a second table (unsupported)");
      has_table_ = true;
      table_ = table;
      return absl::OkStatus();
    }
    if (verb == "delete") {
      if (!has_table_ || table != table_) return notFound("no such table");
      *this = NftWalker();
      return absl::OkStatus();
    }
    return invalidArgument("unsupported table command");
  }
  if (!has_table_ || table != table_) return notFound("no such table ", table);
  if (t.size() < 5) return invalidArgument("missing name");
  const std::string& name = t[4];

  if (what == "chain") {
    auto it = chains_.find(name);
    if (verb == "add") {
      Chain chain;
      if (t.size() > 5) RETURN_IF_ERROR(parseBaseSpec(t, 5, chain));
      if (it == chains_.end()) {
        chains_[name] = std::move(chain);
      } else if (t.size() > 5 && (!it->second.base || it->second.type != chain.type ||
                                  it->second.hook != chain.hook ||
                                  it->second.priority != chain.priority)) {
        return failedPrecondition("chain ", name, " exists with another declaration");
      }
      return absl::OkStatus();
    }
    if (it == chains_.end()) return notFound("no such chain ", name);
    if (verb == "flush") {
      it->second.rules.clear();
      return absl::OkStatus();
    }
    if (verb == "delete") {
      for (const auto& [other, chain] : chains_) {
        if (other == name) continue;
        for (const WalkerRule& r : chain.rules) {
          if (std::count(r.chain_refs.begin(), r.chain_refs.end(), name)) {
            return failedPrecondition("chain ", name, " is in use by a rule of ", other, " (EBUSY)");
          }
        }
      }
      for (const auto& [cname, c] : containers_) {
        for (const auto& [k, v] : c.elements) {
          if (c.is_map && refersToChain(v, name)) {
            return failedPrecondition("chain ", name, " is in use by element ", k, " of ", cname, " (EBUSY)");
          }
        }
      }
      chains_.erase(it);
      return absl::OkStatus();
    }
    return invalidArgument("unsupported chain command");
  }

  if (what == "rule") {
    if (verb != "add") return invalidArgument("unsupported rule command");
    auto it = chains_.find(name);
    if (it == chains_.end()) return notFound("no such chain ", name);
    ASSIGN_OR_RETURN(WalkerRule rule, parseWalkerRule(joinFrom(t, 5, t.size())));
    for (const std::string& ref : rule.chain_refs) {
      if (!chains_.count(ref)) return notFound("rule refers to missing chain ", ref);
    }
    for (const std::string& ref : rule.set_refs) {
      if (!containers_.count(ref)) return notFound("rule refers to missing set ", ref);
    }
    it->second.rules.push_back(std::move(rule));
    return absl::OkStatus();
  }

  if (what == "map" || what == "set") {
    auto it = containers_.find(name);
    if (verb == "add") {
      if (t.size() < 7 || t[5] != "{" || t.back() != "}") return invalidArgument("bad declaration");
      Container c;
      c.is_map = what == "map";
      c.spec = joinFrom(t, 5, t.size());
      c.family = c.spec.find("ipv6_addr") != std::string::npos ? IpFamily::kIPv6 : IpFamily::kIPv4;
      c.addresses = !c.is_map && c.spec.find(" . ") == std::string::npos;
      if (it == containers_.end()) {
        containers_[name] = std::move(c);
      } else if (it->second.spec != c.spec || it->second.is_map != c.is_map) {
        return failedPrecondition(what, " ", name, " exists with another declaration");
      }
      return absl::OkStatus();
    }
    if (it == containers_.end()) return notFound("no such ", what, " ", name);
    if (verb == "flush") {
      it->second.elements.clear();
      return absl::OkStatus();
    }
    if (verb == "delete") {
      for (const auto& [cname, chain] : chains_) {
        for (const WalkerRule& r : chain.rules) {
          if (std::count(r.set_refs.begin(), r.set_refs.end(), name)) {
            return failedPrecondition(what, " ", name, " is in use by a rule of ", cname, " (EBUSY)");
          }
        }
      }
      containers_.erase(it);
      return absl::OkStatus();
    }
    return invalidArgument("unsupported ", what, " command");
  }

  if (what == "element") {
    auto it = containers_.find(name);
    if (it == containers_.end()) return notFound("no such set or map ", name);
    if (t.size() < 8 || t[5] != "{" || t.back() != "}") return invalidArgument("bad element list");
    Container& c = it->second;
    size_t i = 6;
    while (i < t.size() - 1) {
      size_t end = i;
      while (end < t.size() - 1 && t[end] != ",") ++end;
      size_t colon = i;
      while (colon < end && t[colon] != ":") ++colon;
      std::string key = normalizeKey(t, i, colon);
      std::string value = colon < end ? joinFrom(t, colon + 1, end) : "";
      if (key.empty()) return invalidArgument("empty element");
      if (verb == "add") {
        if (c.is_map) {
          if (value.empty()) return invalidArgument("map element without a value");
          ASSIGN_OR_RETURN(WalkerVerdict v, parseWalkerVerdict(value));
          if (!v.chain.empty() && !chains_.count(v.chain)) {
            return notFound("element ", key, " refers to missing chain ", v.chain);
          }
        } else if (!value.empty()) {
          return invalidArgument("set element with a value");
        }
        auto cur = c.elements.find(key);
        if (cur != c.elements.end() && cur->second != value) {
          return failedPrecondition("element ", key, " exists with value ", cur->second, " (EBUSY)");
        }
        c.elements[key] = value;
      } else if (verb == "delete") {
        if (!c.elements.erase(key)) return notFound("no element ", key, " in ", name);
      } else {
        return invalidArgument("unsupported element command");
      }
      i = end + 1;
    }
    return absl::OkStatus();
  }
  return invalidArgument("unsupported object \"", what, "\"");
}

std::vector<std::string> NftWalker::chainNames() const {
  std::vector<std::string> out;
  for (const auto& [name, c] : chains_) out.push_back(name);
  return out;
}

std::vector<std::string> NftWalker::rules(const std::string& chain) const {
  std::vector<std::string> out;
  auto it = chains_.find(chain);
  if (it == chains_.end()) return out;
  for (const WalkerRule& r : it->second.rules) out.push_back(r.text);
  return out;
}

std::vector<std::string> NftWalker::containerNames() const {
  std::vector<std::string> out;
  for (const auto& [name, c] : containers_) out.push_back(name);
  return out;
}

std::map<std::string, std::string> NftWalker::elements(const std::string& container) const {
  auto it = containers_.find(container);
  if (it == containers_.end()) return {};
  return it->second.elements;
}

}  // namespace berth::proxy::testing
