// Networks, ordered allow/deny rules and the engine that decides one request against them.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/address.hpp"
#include "policy/protocols.hpp"
#include "policy/reason.hpp"

namespace fwgate::policy {

// A named set of address ranges and domain suffixes. A domain entry "example.com" matches
// "example.com" and every name below it ("www.example.com"), case-insensitively, ignoring a
// trailing dot. The built-in network "any" matches every address and name.
struct Network {
  std::string name;
  std::vector<IpRange> ranges;
  std::vector<std::string> domains;
  bool any = false;
  // The seed's EnableFirewallClients: clients in it may use the control channel and receive its
  // ranges as their local address table.
  bool firewallClients = false;

  bool containsAddress(const IpAddress& a) const;
  bool containsDomain(std::string_view name) const;
};

// The built-in networks every configuration has: "any" (any = true) and "loopback"
// (127.0.0.0/8, ::1). Engine adds whichever of them its networks lack.
std::vector<Network> builtinNetworks();

enum class Action : std::uint8_t { Allow, Deny };

// Command bits; a rule's `commands` is a mask of these (0 never appears: empty means all).
// connect: a TCP connection to the destination (SOCKS CONNECT, a firewall client's remoted
// connect, the Web Proxy's CONNECT tunnel); bind: an incoming one; udp: datagrams; http: a request
// the Web Proxy forwards (absolute-form, plain HTTP).
enum class Command : std::uint8_t { Connect = 1, Bind = 2, Udp = 4, Http = 8 };
inline constexpr Command kCommands[] = {Command::Connect, Command::Bind, Command::Udp,
                                        Command::Http};
inline constexpr std::uint8_t kAllCommands = 1 | 2 | 4 | 8;
std::string_view toString(Command c);  // "connect", "bind", "udp", "http"
std::optional<Command> commandByName(std::string_view name);

// A rule as written in the configuration. Empty lists mean "any".
struct Rule {
  std::string name;
  Action action = Action::Deny;
  std::vector<std::string> sources;       // network names the client address must be in
  std::vector<std::string> users;         // authenticated user names
  std::vector<std::string> groups;        // group names (members from Engine's groups)
  std::vector<std::string> destinations;  // network names the destination must be in
  std::vector<PortRange> ports;           // destination ports
  std::uint8_t commands = kAllCommands;   // mask of Command
  // Protocol definitions by name. Empty: any traffic, whether a definition covers it or not (the
  // log still names the first definition that does). Not empty: only traffic that one of these
  // definitions covers.
  std::vector<std::string> protocols;
};

// One request to decide. The gateway fills the facts it knows.
struct Request {
  IpAddress client;
  bool clientIsLocal = false;       // the client connected from this host itself
  std::optional<std::string> user;  // authenticated user; nullopt when anonymous
  Command command = Command::Connect;
  std::optional<IpAddress> destinationAddress;  // resolved or literal destination address
  std::string destinationName;  // requested domain name, empty if an address was given
  std::uint16_t destinationPort = 0;
  // The destination is loopback, unspecified, or one of the gateway's own listening sockets.
  // A client that is not local reaches it only through an allow rule whose `destinations`
  // explicitly name a network (not "any") that contains the address.
  bool destinationIsProtected = false;
  // What the connection is, for protocol definitions. Unset: from the command (connect: TCP
  // outbound, bind: TCP inbound, udp: UDP send) and destinationPort.
  std::optional<ConnectionFacts> connection;
  // A secondary connection of this definition's primary connection (an FTP server connecting
  // back): a rule naming the definition matches when the definition's secondary connections
  // cover `connection`; the decision names the definition.
  std::string secondaryOf;
  // The client can be asked who it is (the Web Proxy's 407, TMG's per-rule authentication): an
  // anonymous request stops at the first allow rule that names users or groups and whose other
  // conditions match, and is denied with Decision::needsUser.
  bool canAskForUser = false;

  // Only an allow rule that names the destination's network may decide (destinationIsProtected).
  bool guarded() const { return destinationIsProtected && !clientIsLocal; }
};

struct Decision {
  bool allowed = false;
  int ruleIndex = -1;  // index into the rules, -1 when no rule matched (default deny)
  // The rule's name, or "default-deny" / "protected-destination" (for the log: `reason` says
  // which, for code).
  std::string ruleName;
  std::string protocol;  // the protocol definition that matched; empty when none covers it
  // Denied only because the request is anonymous: rule `ruleName` would decide it for a user
  // (Request::canAskForUser); `reason` is then NeedsUser.
  bool needsUser = false;
  // Rule (a rule decided), NeedsUser, DefaultDeny or ProtectedDestination.
  Reason reason = Reason::DefaultDeny;
};

// Immutable after construction, safe to share between threads; counters are atomic.
class Engine {
 public:
  // Names in rules must resolve (config validation guarantees it); unknown names never match.
  // `protocols` in order of precedence (the configuration's own first, then the catalogue's);
  // `dynamicPorts` is what port 0 in a definition stands for.
  Engine(std::vector<Network> networks, std::map<std::string, std::vector<std::string>> groups,
         std::vector<Rule> rules, std::vector<ProtocolDefinition> protocols = {},
         PortRange dynamicPorts = kDefaultDynamicPorts);
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // First matching rule wins; no match is deny.
  Decision decide(const Request& request) const;
  // Whether some destination (peer) could be allowed for a request whose destination is not
  // known yet (a server listening for peers): the rules in order, their other conditions checked,
  // their destinations assumed to match when they allow and not to when they deny. Not counted.
  bool mayAllow(const Request& request) const;

  const std::vector<Rule>& rules() const { return rules_; }
  const Network* findNetwork(std::string_view name) const;
  const std::vector<ProtocolDefinition>& protocols() const { return protocols_; }
  const ProtocolDefinition* findProtocol(std::string_view name) const;
  // The first definition whose primary connection covers `facts`, or null.
  const ProtocolDefinition* primaryFor(const ConnectionFacts& facts) const;
  PortRange dynamicPorts() const { return dynamicPorts_; }
  std::uint64_t hits(std::size_t ruleIndex) const;
  std::uint64_t allowedCount() const { return allowed_.load(std::memory_order_relaxed); }
  std::uint64_t deniedCount() const { return denied_.load(std::memory_order_relaxed); }

 private:
  struct CompiledRule;
  // Rule `index`'s conditions other than its destinations; `protocol` names the definition the
  // rule's own `protocols` matched (empty when the rule names none).
  // With `anyUser`, the rule's users and groups are not checked.
  bool matchesBesidesDestination(std::size_t index, const Request& request, const IpAddress& client,
                                 const ConnectionFacts& facts, std::string& protocol,
                                 bool anyUser = false) const;
  std::vector<Network> networks_;
  std::map<std::string, std::vector<std::string>> groups_;
  std::vector<Rule> rules_;
  std::vector<ProtocolDefinition> protocols_;
  PortRange dynamicPorts_;
  std::vector<CompiledRule> compiled_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> hits_;
  mutable std::atomic<std::uint64_t> allowed_{0};
  mutable std::atomic<std::uint64_t> denied_{0};

 public:
  ~Engine();
};

}  // namespace fwgate::policy
