// NftWalker: tracing a packet through the hooks and chains.
#include <algorithm>

#include "common/strings.h"
#include "tests/unit/proxy/nft_walker.h"

namespace berth::proxy::testing {
namespace {

using Verdict = NftWalker::Verdict;

struct State {
  NftWalker::Packet pkt;
  uint32_t mark = 0;
  NftWalker::Path path;
  // The rule whose numgen match is taken as true when it is evaluated next (the branch
  // of a fork, see exec()).
  const WalkerRule* numgen_taken = nullptr;
};

struct Frame {
  std::string chain;
  size_t idx = 0;
};

bool cidrOrAddressContains(const std::string& text, const IpAddress& ip) {
  if (text.find('/') != std::string::npos) {
    auto c = Cidr::parse(text);
    return c.ok() && c->contains(ip);
  }
  auto a = IpAddress::parse(text);
  return a.ok() && *a == ip;
}

std::string endpointText(const IpAddress& ip, int port) {
  if (ip.family == IpFamily::kIPv6) return strCat("[", ip.str(), "]:", port);
  return strCat(ip.str(), ":", port);
}

class Tracer {
 public:
  Tracer(const std::map<std::string, NftWalker::Chain>& chains,
         const std::map<std::string, NftWalker::Container>& containers,
         const std::vector<IpAddress>& locals)
      : chains_(chains), containers_(containers), locals_(locals) {}

  // Runs every base chain of `hook` in priority order over `states`; accepted states
  // continue, others are appended to `finals`.
  StatusOr<std::vector<State>> runHook(const std::string& hook, std::vector<State> states,
                                       std::vector<State>& finals) {
    std::vector<std::pair<int, std::string>> bases;
    for (const auto& [name, chain] : chains_) {
      if (chain.base && chain.hook == hook) bases.push_back({chain.priority, name});
    }
    std::sort(bases.begin(), bases.end());
    for (State& s : states) s.path.hooks += (s.path.hooks.empty() ? "" : ",") + hook;
    for (const auto& [prio, name] : bases) {
      std::vector<State> next;
      for (State& s : states) {
        s.path.chains.push_back(name);
        ASSIGN_OR_RETURN(std::vector<State> out, exec(s, {Frame{name, 0}}));
        for (State& o : out) {
          if (o.path.verdict == Verdict::kAccept) {
            next.push_back(std::move(o));
          } else {
            finals.push_back(std::move(o));
          }
        }
      }
      states = std::move(next);
    }
    return states;
  }

  bool isLocal(const IpAddress& ip) const {
    if (ip.isLoopback()) return true;
    return std::find(locals_.begin(), locals_.end(), ip) != locals_.end();
  }

 private:
  bool inSet(const std::string& set, const IpAddress& ip) const {
    auto it = containers_.find(set);
    if (it == containers_.end() || it->second.family != ip.family) return false;
    for (const auto& [key, value] : it->second.elements) {
      if (cidrOrAddressContains(key, ip)) return true;
    }
    return false;
  }

  bool matches(const WalkerMatch& m, State& s) const {
    switch (m.kind) {
      case WalkerMatch::Kind::kCtNew:
        return true;
      case WalkerMatch::Kind::kAddr: {
        if (s.pkt.src.family != m.family) return false;  // inet: "ip ..." implies IPv4
        const IpAddress& a = m.source ? s.pkt.src : s.pkt.dst;
        bool in = false;
        if (!m.set.empty()) {
          s.path.lookups.push_back(m.set);
          in = inSet(m.set, a);
        } else {
          in = std::any_of(m.cidrs.begin(), m.cidrs.end(), [&](const Cidr& c) { return c.contains(a); });
        }
        return m.negate ? !in : in;
      }
      case WalkerMatch::Kind::kPort:
        return s.pkt.protocol == m.protocol && s.pkt.dport == m.port;
      case WalkerMatch::Kind::kL4Proto:
        return s.pkt.protocol == m.protocol;
      case WalkerMatch::Kind::kFibLocal:
        return isLocal(m.source ? s.pkt.src : s.pkt.dst);
      case WalkerMatch::Kind::kMarkZero:
        return (s.mark & m.mask) == 0;
      case WalkerMatch::Kind::kNumgen:
        return true;  // forked in exec()
    }
    return false;
  }

  // Applies a verdict to the state/stack. Returns true if evaluation of this packet in
  // the current base chain has ended (accept/drop/reject or the last frame returned).
  bool applyVerdict(const WalkerVerdict& v, State& s, std::vector<Frame>& stack) {
    switch (v.kind) {
      case WalkerVerdict::Kind::kNone:
        return false;
      case WalkerVerdict::Kind::kJump:
        s.path.chains.push_back(v.chain);
        stack.push_back({v.chain, 0});
        return false;
      case WalkerVerdict::Kind::kGoto:
        s.path.chains.push_back(v.chain);
        stack.back() = {v.chain, 0};
        return false;
      case WalkerVerdict::Kind::kReturn:
        stack.pop_back();
        if (stack.empty()) s.path.verdict = Verdict::kAccept;
        return stack.empty();
      case WalkerVerdict::Kind::kAccept:
        s.path.verdict = Verdict::kAccept;
        return true;
      case WalkerVerdict::Kind::kDrop:
        s.path.verdict = Verdict::kDrop;
        return true;
      case WalkerVerdict::Kind::kReject:
        s.path.verdict = Verdict::kReject;
        return true;
    }
    return false;
  }

  std::string vmapKey(const WalkerStatement& st, const State& s) const {
    std::string pp = strCat(protocolLower(s.pkt.protocol), " . ", s.pkt.dport);
    if (!st.vmap_with_addr) return pp;
    return strCat(s.pkt.dst.str(), " . ", pp);
  }

  StatusOr<std::vector<State>> exec(State s, std::vector<Frame> stack) {
    while (true) {
      if (++steps_ > 100000) return invalidArgument("trace: too many steps (a loop?)");
      if (stack.size() > 32) return invalidArgument("trace: jump stack too deep (a loop?)");
      if (stack.empty()) {
        s.path.verdict = Verdict::kAccept;
        return std::vector<State>{std::move(s)};
      }
      Frame& top = stack.back();
      auto chain = chains_.find(top.chain);
      if (chain == chains_.end()) return invalidArgument("trace: missing chain ", top.chain);
      if (top.idx >= chain->second.rules.size()) {
        // End of chain: a base chain's policy is accept; a regular chain returns.
        stack.pop_back();
        continue;
      }
      const WalkerRule& rule = chain->second.rules[top.idx++];
      bool ok = true;
      for (const WalkerMatch& m : rule.matches) {
        if (m.kind == WalkerMatch::Kind::kNumgen && m.mod > 1) {
          if (s.numgen_taken == &rule) {
            s.numgen_taken = nullptr;  // this branch: the random match holds
            continue;
          }
          // Fork: the packet that fails the random match goes on with the next rule; the
          // one that passes evaluates this rule again with the match taken as true.
          ASSIGN_OR_RETURN(std::vector<State> all, exec(s, stack));
          State taken = s;
          taken.numgen_taken = &rule;
          std::vector<Frame> again = stack;
          --again.back().idx;
          ASSIGN_OR_RETURN(std::vector<State> out, exec(std::move(taken), std::move(again)));
          for (State& o : out) all.push_back(std::move(o));
          return all;
        }
        if (!matches(m, s)) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      bool ended = false;
      for (const WalkerStatement& st : rule.statements) {
        switch (st.kind) {
          case WalkerStatement::Kind::kVerdict:
            ended = applyVerdict(st.verdict, s, stack);
            if (ended) return std::vector<State>{std::move(s)};
            goto next_rule;
          case WalkerStatement::Kind::kVmap: {
            if (st.vmap_with_addr && s.pkt.dst.family != st.family) goto next_rule;
            auto c = containers_.find(st.map);
            if (c == containers_.end()) return invalidArgument("trace: missing map ", st.map);
            auto e = c->second.elements.find(vmapKey(st, s));
            if (e == c->second.elements.end()) goto next_rule;  // no match: next rule
            auto v = parseWalkerVerdict(e->second);
            if (!v.ok()) return v.status();
            ended = applyVerdict(*v, s, stack);
            if (ended) return std::vector<State>{std::move(s)};
            goto next_rule;
          }
          case WalkerStatement::Kind::kNumgen: {
            std::vector<State> all;
            for (const WalkerVerdict& arm : st.arms) {
              State b = s;
              std::vector<Frame> bstack = stack;
              if (applyVerdict(arm, b, bstack)) {
                all.push_back(std::move(b));
                continue;
              }
              ASSIGN_OR_RETURN(std::vector<State> out, exec(std::move(b), std::move(bstack)));
              for (State& o : out) all.push_back(std::move(o));
            }
            return all;
          }
          case WalkerStatement::Kind::kMarkOr:
            s.mark |= st.value;
            break;
          case WalkerStatement::Kind::kMarkXor:
            s.mark ^= st.value;
            break;
          case WalkerStatement::Kind::kMasquerade:
            s.path.masquerade = true;
            s.path.verdict = Verdict::kAccept;
            return std::vector<State>{std::move(s)};
          case WalkerStatement::Kind::kDnat:
            if (s.pkt.dst.family != st.family) goto next_rule;
            s.pkt.dst = st.address;
            s.pkt.dport = st.port;
            s.path.dnat = endpointText(st.address, st.port);
            s.path.verdict = Verdict::kAccept;
            return std::vector<State>{std::move(s)};
          case WalkerStatement::Kind::kUpdate:
            if (s.pkt.src.family == st.family) s.path.updates.push_back({st.set, s.pkt.src.str()});
            break;
        }
      }
    next_rule:;
    }
  }

  const std::map<std::string, NftWalker::Chain>& chains_;
  const std::map<std::string, NftWalker::Container>& containers_;
  const std::vector<IpAddress>& locals_;
  int steps_ = 0;
};

}  // namespace

std::string NftWalker::Path::describe() const {
  const char* v = verdict == Verdict::kAccept ? "accept" : (verdict == Verdict::kDrop ? "drop" : "reject");
  return strCat(v, dnat.empty() ? "" : " dnat=" + dnat, masquerade ? " masquerade" : "", " [",
                hooks, ": ", joinStrings(chains, " > "), "]");
}

StatusOr<std::vector<NftWalker::Path>> NftWalker::trace(
    const Packet& packet, const std::vector<IpAddress>& local_addresses) const {
  if (packet.src.family != packet.dst.family) return invalidArgument("trace: mixed families");
  Tracer tracer(chains_, containers_, local_addresses);
  State start;
  start.pkt = packet;
  std::vector<State> finals;
  if (packet.origin == Origin::kNode) {
    ASSIGN_OR_RETURN(std::vector<State> out, tracer.runHook("output", {start}, finals));
    ASSIGN_OR_RETURN(std::vector<State> post, tracer.runHook("postrouting", std::move(out), finals));
    for (State& s : post) finals.push_back(std::move(s));
  } else {
    ASSIGN_OR_RETURN(std::vector<State> pre, tracer.runHook("prerouting", {start}, finals));
    for (State& s : pre) {
      // The routing decision: local delivery (input) or forwarding.
      if (tracer.isLocal(s.pkt.dst)) {
        ASSIGN_OR_RETURN(std::vector<State> in, tracer.runHook("input", {s}, finals));
        for (State& x : in) finals.push_back(std::move(x));
      } else {
        ASSIGN_OR_RETURN(std::vector<State> fwd, tracer.runHook("forward", {s}, finals));
        ASSIGN_OR_RETURN(std::vector<State> post, tracer.runHook("postrouting", std::move(fwd), finals));
        for (State& x : post) finals.push_back(std::move(x));
      }
    }
  }
  std::vector<Path> out;
  for (State& s : finals) out.push_back(std::move(s.path));
  return out;
}

void NftWalker::remember(const Path& path) {
  for (const auto& [set, element] : path.updates) {
    auto it = containers_.find(set);
    if (it != containers_.end()) it->second.elements[element] = "";
  }
}

}  // namespace berth::proxy::testing
