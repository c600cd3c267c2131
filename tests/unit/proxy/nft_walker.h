// A test oracle for the nftables renderer: an in-memory model of one nftables table that
// (1) applies scripts of the subset of nft commands the renderer emits, as one
// all-or-nothing transaction with the kernel's reference checks (a rule or element naming
// a missing chain/set, deleting a chain or set that is still referenced, a map element
// added twice with different values, flushing or deleting what does not exist all fail),
// and (2) traces a packet through the hooks, returning every possible outcome (numgen
// branches are all explored): verdict, DNAT destination, masquerade.
//
// Supported syntax (anything else is a parse error naming the line):
//   add table|delete table inet T
//   add chain inet T C [{ type filter|nat hook H priority P; }]   flush/delete chain
//   add map|set inet T M { type ...; [flags ...;] [timeout Ns;] }  flush map|set, delete set
//   add element|delete element inet T M { k [: verdict], ... }
//   add rule inet T C <matches> <statements>
// Matches: ct state new; ip|ip6 saddr|daddr [!=] <addr | cidr | { list } | @set>;
//   tcp|udp|sctp dport N; meta l4proto P; fib saddr|daddr type local; meta mark & M == 0;
//   numgen random mod N == V (both outcomes are explored, unless N is 1).
// Statements: <ip|ip6 daddr . meta l4proto . th dport | meta l4proto . th dport> vmap @M;
//   numgen random mod N vmap { i : verdict, ... }; jump|goto C; return; accept; drop;
//   reject [with tcp reset]; meta mark set meta mark |/^ M; masquerade [fully-random];
//   dnat ip|ip6 to A:P; update @S { ip|ip6 saddr [timeout Ns] }.
//
// Packet paths (first packet of a connection, so "ct state new" always holds):
//   from a pod or from outside: prerouting -> (input if the destination, after DNAT, is a
//   local address; else forward -> postrouting);
//   from the node itself: output -> postrouting.
// Base chains of one hook run in priority order; nat statements are terminal.
//
// Thread-safety: none; tests use one walker per test.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "proxy/model.h"

namespace berth::proxy::testing {

// One parsed rule: matches (all must hold) then statements in order.
struct WalkerMatch {
  enum class Kind { kCtNew, kAddr, kPort, kL4Proto, kFibLocal, kMarkZero, kNumgen } kind = Kind::kCtNew;
  IpFamily family = IpFamily::kIPv4;  // kAddr
  bool source = false;                // kAddr, kFibLocal: saddr (else daddr)
  bool negate = false;                // kAddr: !=
  std::vector<Cidr> cidrs;            // kAddr literal(s)
  std::string set;                    // kAddr @set
  Protocol protocol = Protocol::kTCP;  // kPort, kL4Proto
  int port = 0;                        // kPort
  uint32_t mask = 0;                   // kMarkZero
  uint32_t mod = 0, value = 0;         // kNumgen: numgen random mod <mod> == <value>
};

struct WalkerVerdict {
  enum class Kind { kNone, kJump, kGoto, kReturn, kAccept, kDrop, kReject } kind = Kind::kNone;
  std::string chain;
};

struct WalkerStatement {
  enum class Kind { kVerdict, kVmap, kNumgen, kMarkOr, kMarkXor, kMasquerade, kDnat, kUpdate } kind =
      Kind::kVerdict;
  WalkerVerdict verdict;            // kVerdict
  bool vmap_with_addr = false;      // kVmap: addr . proto . port (else proto . port)
  IpFamily family = IpFamily::kIPv4;  // kVmap addr, kDnat, kUpdate
  std::string map;                  // kVmap
  std::vector<WalkerVerdict> arms;  // kNumgen: index -> verdict
  uint32_t value = 0;               // kMarkOr/kMarkXor
  IpAddress address;                // kDnat
  int port = 0;                     // kDnat
  std::string set;                  // kUpdate
};

struct WalkerRule {
  std::string text;
  std::vector<WalkerMatch> matches;
  std::vector<WalkerStatement> statements;
  // Chains and sets this rule refers to (for the reference checks).
  std::vector<std::string> chain_refs;
  std::vector<std::string> set_refs;
};

// Parses a verdict as written in rules and map elements ("goto c", "drop", ...).
StatusOr<WalkerVerdict> parseWalkerVerdict(std::string_view text);

class NftWalker {
 public:
  NftWalker();
  ~NftWalker();
  NftWalker(const NftWalker&);
  NftWalker& operator=(const NftWalker&);

  // Applies `script` as one transaction: on any error nothing changes. Errors:
  // InvalidArgument "line N: <problem>: <line>" (parse errors, or what the kernel would
  // refuse: NotFound for missing objects, FailedPrecondition for busy ones).
  Status apply(std::string_view script);

  enum class Origin { kPod, kOutside, kNode };
  enum class Verdict { kAccept, kDrop, kReject };

  struct Packet {
    IpAddress src;
    IpAddress dst;
    Protocol protocol = Protocol::kTCP;
    int dport = 0;
    Origin origin = Origin::kPod;
  };

  struct Path {
    Verdict verdict = Verdict::kAccept;
    std::string dnat;         // "10.244.1.5:8080" / "[fd00::5]:8080"; "" if not DNATed
    bool masquerade = false;  // SNATed in postrouting
    std::string hooks;        // "prerouting,forward,postrouting"
    std::vector<std::string> chains;   // regular and base chains entered, in order
    std::vector<std::string> lookups;  // sets consulted by saddr/daddr @set matches
    std::vector<std::pair<std::string, std::string>> updates;  // (set, element) by update
    std::string describe() const;
  };

  // Every outcome of `packet`. `local_addresses`: the node's addresses for "fib ... type
  // local" and the input/forward decision (loopback is always local). Errors: a loop or a
  // jump to a missing chain (InvalidArgument).
  StatusOr<std::vector<Path>> trace(const Packet& packet,
                                    const std::vector<IpAddress>& local_addresses) const;

  // Adds the elements that `path`'s update statements wrote to the dynamic sets (as the
  // kernel would after that packet), so a later trace sees the affinity.
  void remember(const Path& path);

  // Inspection.
  bool hasTable() const { return has_table_; }
  bool hasChain(const std::string& name) const { return chains_.count(name) > 0; }
  std::vector<std::string> chainNames() const;
  // The rule texts of a chain (empty if none / missing).
  std::vector<std::string> rules(const std::string& chain) const;
  bool hasContainer(const std::string& name) const { return containers_.count(name) > 0; }
  std::vector<std::string> containerNames() const;
  // Elements of a map (key -> value) or set (key -> "").
  std::map<std::string, std::string> elements(const std::string& container) const;

  // Internal model (public for the two implementation files).
  struct Chain {
    bool base = false;
    std::string type, hook;
    int priority = 0;
    std::vector<WalkerRule> rules;
  };
  struct Container {
    bool is_map = false;
    std::string spec;  // the declaration text, to compare re-adds
    IpFamily family = IpFamily::kIPv4;
    bool addresses = false;  // key is a single address (set of ipv4_addr/ipv6_addr)
    std::map<std::string, std::string> elements;
  };

 private:
  Status applyLine(const std::string& line);

  bool has_table_ = false;
  std::string table_;
  std::map<std::string, Chain> chains_;
  std::map<std::string, Container> containers_;
};

// Parses one rule's text (after "add rule inet T C"). Errors: InvalidArgument naming the
// unsupported token.
StatusOr<WalkerRule> parseWalkerRule(std::string_view text);

}  // namespace berth::proxy::testing
