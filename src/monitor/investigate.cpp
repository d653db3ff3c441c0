// Lines the gateway writes now carry their facts as fields (policy/outcome.hpp): `outcome`, a
// token, and, when the policy denied something, `denial` {reason, transport, direction, port,
// definition, rule, host, peer}: classifyFields() reads those and nothing else. Lines from
// before that (no `outcome`) are read from the gateway's words, as it wrote them then
// (classifyProse(), kept for one release): (command, result, error), and what each becomes here.
// R is a rule's name, "default-deny" or "protected-destination" (also the `rule` field); "denied"
// is control::statusText(Denied), "denied by the gateway's rules".
//
// Rule:
//   SOCKS connect|bind, not-allowed, "denied by R"
//   fwc   connect, denied, "denied by R"
//   fwc   listen-server, denied, "no rule allows C to serve D (inbound TCP port N)"
//   SOCKS udp, succeeded with datagrams_up 0 and a rule: its datagrams denied (ports not logged)
// NoDefinition (firewall clients, [firewall_client] require_definition):
//   fwc   connect, denied, "no protocol definition covers tcp outbound port N"
//   fwc   udp, any result (usually succeeded), "no protocol definition covers udp send port N"
//         and rule "no-definition" (a later "udp idle timeout" may replace the error: port 0)
// ListenNoDefinition:
//   fwc   listen-server, denied, "no protocol definition covers inbound TCP port N"
//   fwc   listen, denied, "no primary connection of A (pid P) whose protocol definition allows
//         an inbound TCP secondary connection on port N" ("... has an inbound TCP ...": port 0)
// RefusedPeer:
//   fwc   accept, refused, "peer P refused: only H, the host of the primary connection, may
//         connect" ([bind] secondary_peers = "primary"), or "peer P refused: denied by R"
//   SOCKS bind, any result (the BIND waits on), "refused peer P (denied by R)" or
//         "refused peer P (not the requested DST.ADDR)"
// Counted only, by result: "peer P refused: session limit", not-allowed or denied with any other
// error (SOCKS 4 on a password listener, bind.require_connect, a UDP ASSOCIATE address not the
// client's own) and NotFirewallClient (otherRefusals); succeeded, ok, listening; timeouts;
// closes; malformed requests (the control channel's listen wrote "BadRequest" once); failed
// authentication; the destination's failures. SOCKS's "refused" is the destination refusing:
// only an accept's "refused" is a refused peer.
#include "monitor/investigate.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "monitor/snippet.hpp"
#include "policy/outcome.hpp"

namespace fwgate::monitor {
namespace {

using Json = nlohmann::json;
using policy::ConnectionSpec;
using policy::Direction;
using policy::ProtocolDefinition;
using policy::Transport;

constexpr std::string_view kDenied = "denied by the gateway's rules";  // control::statusText
constexpr std::size_t kMaxDistinct = 64;
constexpr std::size_t kMaxRendered = 100;  // groups render() prints in full

std::string text(const Json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The decimal number right after `marker` in `s`.
std::optional<std::uint16_t> numberAfter(std::string_view s, std::string_view marker) {
  const auto at = s.find(marker);
  if (at == std::string_view::npos) return std::nullopt;
  s.remove_prefix(at + marker.size());
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || end == s.data() || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

// The text between `open` and the next `close` after it; empty if either is missing.
std::string between(std::string_view s, std::string_view open, std::string_view close) {
  const auto at = s.find(open);
  if (at == std::string_view::npos) return {};
  s.remove_prefix(at + open.size());
  const auto end = s.find(close);
  return end == std::string_view::npos ? std::string() : std::string(s.substr(0, end));
}

// The gateway writes "host:port", "[v6]:port" (endpointString, Address::toString).
std::pair<std::string, std::uint16_t> splitHostPort(std::string_view s) {
  const auto colon = s.rfind(':');
  if (colon == std::string_view::npos) return {std::string(s), 0};
  std::string_view host = s.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return {std::string(s), 0};  // a bare IPv6 address
  }
  return {std::string(host), numberAfter(s.substr(colon), ":").value_or(0)};
}

std::string endpoint(const std::string& host, std::uint16_t port) {
  if (port == 0) return host;
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

void addDistinct(std::vector<std::string>& values, const std::string& value) {
  if (value.empty() || values.size() >= kMaxDistinct) return;
  if (std::find(values.begin(), values.end(), value) == values.end()) values.push_back(value);
}

ConnectionSpec spec(std::uint16_t port, Transport transport, Direction direction) {
  return ConnectionSpec{policy::PortRange{port, port}, transport, direction};
}

std::string inQuotes(const std::string& s) {
  return "\"" + s + "\"";
}

// A line's `denial` field, when it has a whole one.
std::optional<policy::Denial> readDenial(const Json& j) {
  const auto d = j.find("denial");
  if (d == j.end() || !d->is_object()) return std::nullopt;
  const auto reason = policy::reasonFromToken(text(*d, "reason"));
  const auto transport = policy::parseTransport(text(*d, "transport"));
  if (!reason || !transport) return std::nullopt;
  const auto direction = policy::parseDirection(*transport, text(*d, "direction"));
  const auto port = d->find("port");
  if (!direction || port == d->end() || !port->is_number_unsigned() ||
      port->get<std::uint64_t>() > 65535) {
    return std::nullopt;
  }
  const auto peer = d->find("peer");
  return policy::Denial{*reason,
                        *transport,
                        *direction,
                        static_cast<std::uint16_t>(port->get<std::uint64_t>()),
                        text(*d, "definition"),
                        text(*d, "rule"),
                        text(*d, "host"),
                        peer != d->end() && peer->is_boolean() && peer->get<bool>()};
}

// Where a line without a denial is counted, by its `outcome` token.
std::size_t Investigation::*counterOf(std::string_view token) {
  using policy::Outcome;
  const auto outcome = policy::outcomeFromToken(token);
  if (!outcome) return &Investigation::other;
  switch (*outcome) {
    case Outcome::Succeeded:
    case Outcome::Listening:
      return &Investigation::succeeded;
    case Outcome::DestinationFailed:
    case Outcome::ClientUnreachable:
    case Outcome::GatewayFailed:
      return &Investigation::failed;
    case Outcome::HandshakeTimeout:
    case Outcome::TimedOut:
      return &Investigation::timeouts;
    case Outcome::ClientClosed:
      return &Investigation::clientClosed;
    case Outcome::BadRequest:
      return &Investigation::malformed;
    case Outcome::AuthFailed:
    case Outcome::AuthThrottled:
      return &Investigation::authFailures;
    case Outcome::Denied:  // without a denial: not the policy's words to read
    case Outcome::RefusedPeer:
    case Outcome::NotAllowed:
    case Outcome::NotFirewallClient:
    case Outcome::SessionLimit:
      return &Investigation::otherRefusals;
    case Outcome::Stopped:
      return &Investigation::stopped;
  }
  return &Investigation::other;
}

// The denial a line records, as a Finding of one attempt; counts the line when it is none.
std::optional<Finding> classify(const Json& j, const std::string& client,
                                const InvestigateOptions& options, Investigation& out) {
  const std::string command = text(j, "command");
  const std::string result = text(j, "result");
  const std::string error = text(j, "error");
  const std::string protocol = text(j, "protocol");
  const std::string user = text(j, "user");
  Finding a{.command = command,
            .application = protocol == "fwc" ? text(j, "application") : std::string(),
            .protocols = {protocol},
            .clients = {client},
            .definition = text(j, "definition"),
            .count = 1,
            .firstTime = text(j, "time"),
            .lastTime = text(j, "time"),
            .exampleLine = out.lines,
            .exampleError = error};
  addDistinct(a.users, user.empty() ? text(j, "os_user") : user);
  // Named members, not a structured binding: clang 14 cannot capture one in a lambda.
  auto requested = splitHostPort(text(j, "requested"));
  auto& destination = requested.first;
  auto& port = requested.second;
  std::string rule = text(j, "rule");
  const auto is = [&](DenialKind kind, Transport transport, Direction direction,
                      std::uint16_t p) -> std::optional<Finding> {
    std::tie(a.kind, a.transport, a.direction, a.port) = std::tie(kind, transport, direction, p);
    addDistinct(a.destinations, destination);
    addDistinct(a.rules, rule);
    return a;
  };
  if (const auto outcome = j.find("outcome"); outcome != j.end() && outcome->is_string()) {
    // A line with the gateway's fields: its denial, else its outcome. A Web Proxy's 407 asks
    // who the client is (it signs in and retries): not a denial to investigate.
    const auto denial = readDenial(j);
    if (denial && denial->reason == policy::Reason::NeedsUser) {
      ++out.authFailures;
      return std::nullopt;
    }
    if (denial) {
      rule = denial->rule;
      if (!denial->definition.empty()) a.definition = denial->definition;
      DenialKind kind = DenialKind::Rule;
      if (denial->peer) {
        kind = DenialKind::RefusedPeer;
      } else if (denial->reason == policy::Reason::NoPrimary ||
                 (denial->reason == policy::Reason::NoDefinition &&
                  denial->direction == Direction::Inbound)) {
        kind = DenialKind::ListenNoDefinition;
      } else if (denial->reason == policy::Reason::NoDefinition) {
        kind = DenialKind::NoDefinition;
      }
      // The host decided on (a datagram's destination, a refused peer), else the request's own;
      // a listen has none.
      if (!denial->host.empty() || denial->peer) destination = denial->host;
      if (command == "listen" || command == "listen-server" || command == "listen-publish") {
        destination.clear();
      }
      return is(kind, denial->transport, denial->direction, denial->port);
    }
    ++(out.*counterOf(outcome->get<std::string>()));
    return std::nullopt;
  }
  if (const auto p = numberAfter(error, "no protocol definition covers tcp outbound port ")) {
    return is(DenialKind::NoDefinition, Transport::Tcp, Direction::Outbound, *p);
  }
  const auto udp = numberAfter(error, "no protocol definition covers udp send port ");
  if (command == "udp" && (udp || rule == "no-definition")) {
    destination.clear();
    return is(DenialKind::NoDefinition, Transport::Udp, Direction::Send, udp.value_or(0));
  }
  auto listen = numberAfter(error, "no protocol definition covers inbound TCP port ");
  if (command == "listen" && error.starts_with("no primary connection of ")) {
    listen = numberAfter(error, " on port ").value_or(0);
  }
  if (listen) {
    destination.clear();
    rule.clear();  // "(per peer)"
    return is(DenialKind::ListenNoDefinition, Transport::Tcp, Direction::Inbound, *listen);
  }
  if (command == "listen-server" && error.starts_with("no rule allows ")) {
    destination.clear();
    a.definition = between(error, " to serve ", " (inbound TCP port ");
    return is(DenialKind::Rule, Transport::Tcp, Direction::Inbound,
              numberAfter(error, "(inbound TCP port ").value_or(0));
  }
  if (command == "accept" && result == "refused" && !error.ends_with(": session limit")) {
    destination = splitHostPort(text(j, "resolved")).first;
    rule = between(error + "\n", "refused: denied by ", "\n");  // empty: secondary_peers
    // A server's listen keeps its port; a secondary one's is dynamic: its peers group as one.
    const std::uint16_t bound = splitHostPort(text(j, "bound")).second;
    const auto d = std::find_if(options.definitions.begin(), options.definitions.end(),
                                [&](const auto& p) { return p.name == a.definition; });
    const bool server = d != options.definitions.end() &&
                        d->primary.direction == Direction::Inbound &&
                        d->primary.coversPort(bound, options.dynamicPorts);
    return is(DenialKind::RefusedPeer, Transport::Tcp, Direction::Inbound, server ? bound : 0);
  }
  if (command == "bind" && error.starts_with("refused peer ")) {
    destination = splitHostPort(between(error, "refused peer ", " (")).first;
    rule = between(error, "(denied by ", ")");  // empty: not the requested DST.ADDR
    return is(DenialKind::RefusedPeer, Transport::Tcp, Direction::Inbound, 0);
  }
  if (error.starts_with("denied by ") && (result == "not-allowed" || result == kDenied)) {
    if (rule.empty()) rule = error.substr(10);
    return is(DenialKind::Rule, Transport::Tcp,
              command == "bind" ? Direction::Inbound : Direction::Outbound, port);
  }
  if (command == "udp" && result == "succeeded" && !rule.empty() &&
      j.value("datagrams_up", Json(0)) == 0) {
    destination.clear();
    return is(DenialKind::Rule, Transport::Udp, Direction::Send, 0);
  }
  // Everything else, by result ('|'-separated lists; control::statusText and replyName).
  const std::pair<std::string_view, std::size_t Investigation::*> outcomes[] = {
      {"succeeded|ok|listening", &Investigation::succeeded},
      {"handshake-timeout|ttl-expired|timed out", &Investigation::timeouts},
      {"client-closed|closed-in-handshake|closed", &Investigation::clientClosed},
      {"bad-version|bad-request|bad-greeting|bad-auth-request|no-acceptable-method|BadRequest|"
       "bad request|unexpected message|command-not-supported|address-type-not-supported|"
       "control protocol version mismatch",
       &Investigation::malformed},
      {"auth-failed|authentication failed", &Investigation::authFailures},
      {"not-allowed|denied by the gateway's rules|"
       "firewall clients are not enabled for this client's network",
       &Investigation::otherRefusals},
      {"refused|general-failure|host-unreachable|network-unreachable|connection refused|"
       "host unreachable|network unreachable|name not found|temporary failure in name "
       "resolution|address family not supported|general failure",
       &Investigation::failed}};
  std::size_t Investigation::*counter = &Investigation::other;
  for (const auto& [results, which] : outcomes) {
    if (fmt::format("|{}|", results).find(fmt::format("|{}|", result)) != std::string::npos) {
      // An accept refused for the session limit is not the policy's.
      counter = command == "accept" && result == "refused" ? &Investigation::otherRefusals : which;
      break;
    }
  }
  ++(out.*counter);
  return std::nullopt;
}

void merge(Finding& f, const Finding& a) {
  ++f.count;
  if (f.firstTime.empty() || (!a.firstTime.empty() && a.firstTime < f.firstTime)) {
    f.firstTime = a.firstTime;
  }
  f.lastTime = std::max(f.lastTime, a.lastTime);
  if (f.definition.empty()) f.definition = a.definition;
  for (auto [to, from] : {std::pair{&f.protocols, &a.protocols},
                          {&f.destinations, &a.destinations},
                          {&f.clients, &a.clients},
                          {&f.users, &a.users},
                          {&f.rules, &a.rules}}) {
    for (const auto& value : *from) addDistinct(*to, value);
  }
}

// A firewall client's successful connection: a primary connection a later listen may belong to.
struct Primary {
  std::string time;
  std::uint16_t port = 0;
  std::string definition;
};
using Primaries = std::map<std::string, std::vector<Primary>>;  // client "\n" application

std::string lowered(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// New and extended definitions, one per primary connection and one per name. Lookups go
// through maps: a port scan through a firewall client makes thousands of them.
class Proposals {
 public:
  explicit Proposals(const InvestigateOptions& options) : options_(options) {
    std::vector<std::string> taken;
    for (const auto& d : options.definitions) {
      configured_.insert(lowered(d.name));
      taken.push_back(d.name);
    }
    names_ = UniqueNames(taken);
  }

  const std::vector<ProtocolDefinition>& all() const { return all_; }

  const ProtocolDefinition* find(const std::string& name) const {
    const auto it = byName_.find(lowered(name));
    return it == byName_.end() ? nullptr : &all_[it->second];
  }
  // Whether the configuration (or the catalogue) has a definition of this name.
  bool configured(const std::string& name) const { return configured_.contains(lowered(name)); }

  // A new definition whose primary connection is `primary`.
  ProtocolDefinition& fresh(const ConnectionSpec& primary) {
    if (const auto it = byPrimary_.find(key(primary)); it != byPrimary_.end()) {
      return all_[it->second];
    }
    const std::string base =
        policy::isValidProtocolName(options_.name) ? options_.name : "CustomApp";
    return add(ProtocolDefinition{names_.take(base), primary, {}, false});
  }
  // `base` as the configuration will have it (a built-in one is overridden by name).
  ProtocolDefinition& extended(const ProtocolDefinition& base) {
    if (const auto it = byName_.find(lowered(base.name)); it != byName_.end()) {
      return all_[it->second];
    }
    ProtocolDefinition copy = base;
    copy.builtin = false;
    return add(std::move(copy));
  }

 private:
  using Key = std::tuple<std::uint16_t, std::uint16_t, Transport, Direction>;
  static Key key(const ConnectionSpec& c) {
    return {c.ports.first, c.ports.last, c.transport, c.direction};
  }
  ProtocolDefinition& add(ProtocolDefinition d) {
    const std::size_t index = all_.size();
    std::string name = lowered(d.name);
    byName_.emplace(std::move(name), index);
    byPrimary_.emplace(key(d.primary), index);  // the first with this primary connection
    all_.push_back(std::move(d));
    return all_.back();
  }

  const InvestigateOptions& options_;
  std::vector<ProtocolDefinition> all_;
  std::set<std::string> configured_;  // lower-cased names of options.definitions
  UniqueNames names_;  // new names: never a configured one (extended ones are configured)
  std::map<std::string, std::size_t> byName_;  // lower-cased name -> index in all_
  std::map<Key, std::size_t> byPrimary_;
};

std::string withSecondary(ProtocolDefinition& d, const ConnectionSpec& secondary) {
  if (std::find(d.secondary.begin(), d.secondary.end(), secondary) == d.secondary.end()) {
    d.secondary.push_back(secondary);
  }
  return d.name;
}

// A listen for a secondary connection: the definition of the program's primary connection
// needs it. That is the program's latest successful connection from the same client that
// started before the (first) listen: the gateway logs a session when it ends, so a primary
// connection still open at the listen comes after it in the log, with an earlier `time` (its
// start). A connection that started after the listen is never its primary connection.
const Primary* primaryBefore(const Finding& f, const Primaries& primaries) {
  const auto it = primaries.find(f.clients.front() + "\n" + f.application);
  if (it == primaries.end() || f.firstTime.empty()) return nullptr;
  const Primary* primary = nullptr;
  for (const auto& p : it->second) {
    // Ties: the one logged last. A connection without a time cannot be placed.
    if (!p.time.empty() && p.time <= f.firstTime &&
        (primary == nullptr || p.time >= primary->time)) {
      primary = &p;
    }
  }
  return primary;
}

std::string adviseSecondaryListen(Finding& f, const Primaries& primaries,
                                  const InvestigateOptions& options, Proposals& proposals) {
  const std::string app = f.application.empty() ? "the program" : f.application;
  const ConnectionSpec secondary = spec(f.port, Transport::Tcp, Direction::Inbound);
  const Primary* primary = primaryBefore(f, primaries);
  if (primary == nullptr) {
    f.suggestion = fmt::format(
        "the log has no connection of {} before the listen: give the definition of its "
        "primary connection\n"
        "secondary = [ {} ]",
        app, connectionToml(secondary));
    return {};
  }
  const ConnectionSpec outbound = spec(primary->port, Transport::Tcp, Direction::Outbound);
  const auto& defs = options.definitions;
  if (const auto* d = findCovering(defs, outbound, {secondary}, options.dynamicPorts)) {
    f.covering = d->name;
    f.suggestion = fmt::format(
        "name \"{}\" in the rule that allows {}'s connections to port {} (the gateway matched {})",
        d->name, app, primary->port,
        primary->definition.empty() ? "no definition" : inQuotes(primary->definition));
    return {};
  }
  const auto base = std::find_if(defs.begin(), defs.end(), [&](const auto& d) {
    return !primary->definition.empty() && d.name == primary->definition;
  });
  if (base == defs.end()) {
    f.suggestion = fmt::format(
        "a definition of {}'s connection to port {} with this listen as "
        "its secondary connection; rules then name it",
        app, primary->port);
    return withSecondary(proposals.fresh(outbound), secondary);
  }
  f.suggestion = fmt::format(
      "{}'s connection to port {} is \"{}\": give it this secondary connection (the section "
      "replaces [protocols.{}]{})",
      app, primary->port, base->name, base->name,
      base->builtin ? ", overriding the built-in one" : "");
  return withSecondary(proposals.extended(*base), secondary);
}

// Fills `covering` and `suggestion`; returns the name of the definition proposed, if any.
std::string advise(Finding& f, const Primaries& primaries, const InvestigateOptions& options,
                   Proposals& proposals) {
  const std::string rule = f.rules.empty() ? std::string() : f.rules.front();
  const bool named = !rule.empty() && rule != "default-deny";
  const std::string where =
      named ? "rule " + inQuotes(rule) + " denies it: " : "no rule allows it: ";
  const std::string before = named ? " before it" : "";
  const std::string bindRule = "add an allow rule with commands = [\"bind\"]";
  const bool udp = f.transport == Transport::Udp;
  if (f.kind == DenialKind::RefusedPeer) {
    const std::string allow = fmt::format(
        "{}{} and a network holding the peers as destinations", bindRule,
        f.definition.empty() ? "" : fmt::format(", protocols = [\"{}\"]", f.definition));
    const std::string otherwise = ".\nOtherwise (a scan, an attack) nothing to do.";
    if (f.command == "bind" && rule.empty()) {
      f.suggestion = "the SOCKS client named another peer in its BIND: nothing to configure";
    } else if (rule.empty()) {
      f.suggestion = fmt::format(
          "only the host {}'s primary connection went to may connect. If these peers are "
          "legitimate,\nset [bind] secondary_peers = \"rules\" and {}{}",
          f.application.empty() ? "the program" : f.application, allow, otherwise);
    } else {
      f.suggestion = fmt::format(
          "{}: if these peers are legitimate, {}{}{}",
          named ? "rule " + inQuotes(rule) + " refuses them" : std::string("no rule allows them"),
          allow, before, otherwise);
    }
    return {};
  }
  if (f.kind == DenialKind::ListenNoDefinition && f.command == "listen") {
    return adviseSecondaryListen(f, primaries, options, proposals);
  }
  if (rule == "protected-destination") {
    f.suggestion =
        "only an allow rule whose destinations name a network (not \"any\") holding "
        "that address reaches it";
    return {};
  }
  if (f.port == 0 || f.command == "bind") {  // ports the log does not keep; SOCKS BIND
    f.suggestion = f.kind == DenialKind::NoDefinition
                       ? "the log kept no port: a capture (fwgate monitor) shows it"
                       : where + (f.command == "bind" ? bindRule : "add an allow rule") + before +
                             (udp ? " (the log keeps no datagram ports)" : "");
    return {};
  }
  const ConnectionSpec self = spec(f.port, f.transport, f.direction);
  std::string name, proposed;
  if (const auto* d = findCovering(options.definitions, self, {}, options.dynamicPorts)) {
    name = f.covering = d->name;
  } else if (f.kind == DenialKind::Rule && !f.definition.empty() &&
             !f.definition.ends_with(" (secondary)")) {
    name = f.covering = f.definition;  // the gateway's own, not in `options`
  } else {
    name = proposed = proposals.fresh(self).name;
  }
  if (f.kind != DenialKind::Rule && proposed.empty()) {
    f.suggestion = fmt::format(
        "\"{}\" covers it in this configuration, which the gateway that "
        "wrote the log did not have: reload it",
        name);
  } else if (f.kind == DenialKind::NoDefinition) {
    f.suggestion = !rule.empty() && rule != "no-definition"
                       ? "rule " + inQuotes(rule) +
                             " already allows it (it names no protocols): the definition is enough"
                       : "rules without `protocols` then allow it; a rule with `protocols` needs " +
                             inQuotes(name) + " added";
  } else if (f.command == "listen-server") {
    f.suggestion = (f.kind == DenialKind::Rule ? where : std::string()) + bindRule +
                   ", protocols = [" + inQuotes(name) + "] and the peers' network as destinations" +
                   before;
  } else {
    f.suggestion =
        where + (named ? "put an allow rule with protocols = [" + inQuotes(name) + "] before it"
                       : "add " + inQuotes(name) +
                             " to the protocols of the rule that allows these clients, or add an "
                             "allow rule with protocols = [" +
                             inQuotes(name) + "]");
  }
  return proposed;
}

}  // namespace

std::string_view toString(DenialKind kind) {
  constexpr std::string_view names[] = {"no-definition", "rule", "refused-peer",
                                        "listen-no-definition"};
  return names[static_cast<std::size_t>(kind)];
}

Investigation investigate(std::istream& log, const InvestigateOptions& options) {
  Investigation out;
  std::map<std::tuple<DenialKind, Transport, Direction, std::uint16_t, std::string>, std::size_t>
      groups;
  Primaries primaries;
  std::string line;
  while (std::getline(log, line)) {
    ++out.lines;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const Json j = Json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      if (out.unreadable++ == 0) out.firstUnreadableLine = out.lines;
      continue;
    }
    if (const auto dropped = j.find("dropped_records");
        dropped != j.end() && dropped->is_number_unsigned()) {
      out.droppedRecords += dropped->get<std::uint64_t>();
      continue;
    }
    ++out.sessions;
    const std::string client = splitHostPort(text(j, "client")).first;
    if (options.client && policy::IpAddress::parse(client) != options.client) {
      ++out.otherClients;
      continue;
    }
    const bool succeeded = j.contains("outcome") ? text(j, "outcome") == "succeeded"
                                                 : text(j, "result") == "succeeded";
    if (text(j, "protocol") == "fwc" && text(j, "command") == "connect" && succeeded) {
      const std::string definition = text(j, "definition");
      auto& list = primaries[client + "\n" + text(j, "application")];
      if (!definition.ends_with(" (secondary)") && list.size() < 1024) {
        list.push_back({text(j, "time"), splitHostPort(text(j, "requested")).second, definition});
      }
    }
    auto a = classify(j, client, options, out);
    if (!a) continue;
    ++out.denials;
    const auto [it, inserted] =
        groups.emplace(std::tuple{a->kind, a->transport, a->direction, a->port, a->application},
                       out.findings.size());
    if (inserted) {
      out.findings.push_back(std::move(*a));
    } else {
      merge(out.findings[it->second], *a);
    }
  }
  // Most attempts first; the first finding to need a new definition gets options.name.
  std::stable_sort(out.findings.begin(), out.findings.end(),
                   [](const Finding& a, const Finding& b) { return a.count > b.count; });
  Proposals proposals(options);
  std::vector<std::string> names;
  names.reserve(out.findings.size());
  for (auto& f : out.findings) names.push_back(advise(f, primaries, options, proposals));
  for (std::size_t i = 0; i < out.findings.size(); ++i) {
    if (names[i].empty()) continue;
    if (const auto* d = proposals.find(names[i])) {
      out.findings[i].proposed = *d;
      out.findings[i].proposedExtends = proposals.configured(d->name);
    }
  }
  out.proposed = proposals.all();
  return out;
}

namespace {

std::string list(const std::vector<std::string>& values, std::uint16_t port = 0) {
  std::string out;
  for (std::size_t i = 0; i < values.size() && i < 3; ++i) {
    out += (i == 0 ? "" : ", ") + endpoint(values[i], port);
  }
  if (values.size() > 3) {
    out +=
        fmt::format(" and {}{} more", values.size() - 3, values.size() >= kMaxDistinct ? "+" : "");
  }
  return out;
}

std::string timeRange(const Finding& f) {
  const auto seconds = [](const std::string& t) {
    return t.size() >= 19 && t[10] == 'T' ? t.substr(0, 19) : t;
  };
  const std::string first = seconds(f.firstTime);
  const std::string last = seconds(f.lastTime);
  if (first == last) return first;
  const bool sameDay =
      first.size() == 19 && last.size() == 19 && first.starts_with(last.substr(0, 11));
  return first + " .. " + (sameDay ? last.substr(11) : last);
}

// "denied 3x  tcp outbound port 8443  (no protocol definition covers it)"
std::string headline(const Finding& f) {
  const std::string connection =
      fmt::format("{} {}", policy::toString(f.transport), policy::toString(f.direction));
  const std::string port = f.port != 0                     ? fmt::format("port {}", f.port)
                           : f.transport == Transport::Udp ? std::string("port not logged")
                                                           : std::string("a dynamic port");
  std::string what = f.port != 0 ? connection + " " + port : connection + " (" + port + ")";
  if (f.kind == DenialKind::RefusedPeer) {
    what = connection + " to a listen on " + port;
  } else if (f.kind == DenialKind::ListenNoDefinition || f.command == "listen-server") {
    what = "listen for " + connection + " on " + port;
  } else if (f.command == "bind") {
    what = "SOCKS BIND (" + connection + ")";
  }
  std::string rules;
  for (const auto& r : f.rules) rules += (rules.empty() ? "" : ", ") + inQuotes(r);
  std::string why = fmt::format("denied by rule{} {}", f.rules.size() == 1 ? "" : "s", rules);
  if (f.kind == DenialKind::NoDefinition || (f.command == "listen-server" && f.rules.empty())) {
    why = "no protocol definition covers it";
  } else if (f.kind == DenialKind::ListenNoDefinition) {
    why = "no definition of the program's connections has it as a secondary connection";
  } else if (f.rules.empty()) {
    why = f.command == "bind" ? "not the peer the BIND named"
                              : "only the primary connection's host may connect";
  } else if (rules == "\"default-deny\"") {
    why = "no rule allows it";
  } else if (rules == "\"protected-destination\"") {
    why = "the destination is the gateway itself";
  }
  return fmt::format("{} {}x  {}  ({})", f.kind == DenialKind::RefusedPeer ? "refused" : "denied",
                     f.count, what, why);
}

std::string indent(const std::string& block, std::string_view prefix) {
  std::string out;
  bool lineStart = true;
  for (const char c : block) {
    if (lineStart) out += prefix;
    out += c;
    lineStart = c == '\n';
  }
  return out.empty() || out.back() == '\n' ? out : out + "\n";
}

}  // namespace

std::string render(const Investigation& in) {
  std::string out = fmt::format("{} log line{}, {} denied attempt{} in {} group{}", in.lines,
                                in.lines == 1 ? "" : "s", in.denials, in.denials == 1 ? "" : "s",
                                in.findings.size(), in.findings.size() == 1 ? "" : "s");
  const std::pair<std::size_t, const char*> counts[] = {{in.succeeded, "succeeded"},
                                                        {in.failed, "failed at the destination"},
                                                        {in.timeouts, "timed out"},
                                                        {in.clientClosed, "closed by the client"},
                                                        {in.malformed, "malformed"},
                                                        {in.authFailures, "failed authentication"},
                                                        {in.otherRefusals, "refused otherwise"},
                                                        {in.stopped, "stopped by the gateway"},
                                                        {in.other, "other"},
                                                        {in.otherClients, "of other clients"}};
  std::string rest;
  for (const auto& [n, label] : counts) {
    if (n != 0) rest += fmt::format("{}{} {}", rest.empty() ? "" : ", ", n, label);
  }
  if (!rest.empty()) out += "; " + rest;
  if (in.unreadable != 0) {
    out += fmt::format("; {} unreadable (first: line {})", in.unreadable, in.firstUnreadableLine);
  }
  if (in.droppedRecords != 0) {
    out += fmt::format("; {} session{} not logged (the gateway's log queue was full): not analysed",
                       in.droppedRecords, in.droppedRecords == 1 ? "" : "s");
  }
  out += "\n";
  std::set<std::string> printed;
  const std::size_t shown = std::min(in.findings.size(), kMaxRendered);
  for (std::size_t i = 0; i < shown; ++i) {
    const Finding& f = in.findings[i];
    std::vector<std::string> about{f.application.empty() ? list(f.protocols) : f.application};
    if (!f.users.empty()) about.push_back("user " + list(f.users));
    std::string who = list(f.clients) + " (" + list(about) + ")";
    if (f.kind == DenialKind::RefusedPeer) {
      who = fmt::format("peer{} {} to {}", f.destinations.size() == 1 ? "" : "s",
                        list(f.destinations), who);
    } else {
      who = "from " + who + (f.destinations.empty() ? "" : " to " + list(f.destinations, f.port));
    }
    out +=
        fmt::format("\n{}\n  {}, {}, log line {}\n", headline(f), who, timeRange(f), f.exampleLine);
    if (f.kind == DenialKind::RefusedPeer || f.kind == DenialKind::ListenNoDefinition) {
      out += indent("logged: " + f.exampleError, "  ");
    }
    if (f.proposed && !printed.insert(f.proposed->name).second) {
      out += fmt::format("  would be allowed by [protocols.{}] above\n", f.proposed->name);
    } else if (f.proposed) {
      out += f.proposedExtends
                 ? "  would be allowed by " + inQuotes(f.proposed->name) + " extended:\n"
                 : "  would be allowed by a new definition:\n";
      out += indent(definitionToml(*f.proposed), "    ");
    } else if (!f.covering.empty()) {
      out += "  would be allowed by the existing definition " + inQuotes(f.covering) + "\n";
    }
    out += indent(f.suggestion, "  ");
  }
  if (shown < in.findings.size()) {
    // A port scan, usually: the rest in one line (the Investigation keeps every group).
    std::size_t attempts = 0;
    std::vector<std::string> clients;
    for (std::size_t i = shown; i < in.findings.size(); ++i) {
      attempts += in.findings[i].count;
      for (const auto& c : in.findings[i].clients) addDistinct(clients, c);
    }
    const std::size_t more = in.findings.size() - shown;
    out += fmt::format(
        "\n... and {} more group{} ({} attempt{}): {}--client ADDRESS investigates one "
        "client's attempts\n",
        more, more == 1 ? "" : "s", attempts, attempts == 1 ? "" : "s",
        clients.empty() ? std::string() : "from " + list(clients) + "; ");
  }
  return out;
}

}  // namespace fwgate::monitor
