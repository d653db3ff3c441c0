// The firewall client's admission rule (firewall_client.hpp states it).
#include "policy/firewall_client.hpp"

namespace fwgate::policy {
namespace {

// Whether some rule could allow a peer of a listen, before any peer is known.
bool somePeerMayBeAllowed(const Engine& engine, const Request& request, Command command,
                          const ConnectionFacts& facts) {
  Request possible = request;
  possible.command = command;
  possible.destinationAddress.reset();
  possible.destinationName.clear();
  possible.connection = facts;
  possible.secondaryOf.clear();
  return engine.mayAllow(possible);
}

// A mapped address built by hand (v6 = true, ::ffff:a.b.c.d) is still an IPv4 address.
IpAddress canonical(const IpAddress& a) {
  return a.v6 ? IpAddress::fromV6(a.bytes) : a;
}

// What `request` is, as a secondary connection of a primary's definition: a TCP connect is an
// outbound secondary (FTP's passive data connection); a datagram to a port a contacted host
// answered from is the client's half of a receive-send secondary (TFTP's transfer port).
ConnectionFacts secondaryFacts(const Request& request) {
  if (request.command == Command::Udp) {
    return {Transport::Udp, Direction::ReceiveSend, request.destinationPort};
  }
  return {Transport::Tcp, Direction::Outbound, request.destinationPort};
}

// The first primary to `host` whose definition's secondary connections cover `facts`.
std::optional<std::size_t> secondaryOf(const Engine& engine, std::span<const LivePrimary> primaries,
                                       const IpAddress& host, const ConnectionFacts& facts) {
  const IpAddress wanted = canonical(host);
  for (std::size_t i = 0; i < primaries.size(); ++i) {
    const LivePrimary& p = primaries[i];
    if (canonical(p.host) != wanted) continue;
    const ProtocolDefinition* definition = engine.findProtocol(p.definition);
    if (definition != nullptr && coversSecondary(*definition, facts, engine.dynamicPorts())) {
      return i;
    }
  }
  return std::nullopt;
}

FirewallDecision asSecondary(std::span<const LivePrimary> primaries, std::size_t index) {
  const LivePrimary& p = primaries[index];
  return FirewallDecision{true, Reason::Secondary, p.rule, p.definition, index};
}

}  // namespace

std::string FirewallDecision::loggedDefinition() const {
  if (reason == Reason::Secondary && allowed && !definition.empty()) {
    return definition + " (secondary)";
  }
  return definition;
}

std::string FirewallDecision::definitionAsPrimary() const {
  return allowed && reason != Reason::Secondary ? definition : std::string();
}

Denial FirewallDecision::denial(const ConnectionFacts& facts, std::string host, bool peer) const {
  const bool ruled = reason != Reason::NoPrimary && reason != Reason::NotPrimaryHost;
  return Denial{reason,          facts.transport,
                facts.direction, facts.port,
                definition,      ruled ? rule : std::string(),
                std::move(host), peer};
}

FirewallDecision decideRemoted(const Engine& engine, const Request& request,
                               std::span<const LivePrimary> primaries,
                               const FirewallClientPolicy& policy) {
  const Decision decision = engine.decide(request);
  FirewallDecision out{decision.allowed, decision.reason, decision.ruleName, decision.protocol, {}};
  // The Winsock Proxy's rule: what no protocol definition covers is not remoted, whatever the
  // rules say (monitor --log finds these and proposes the definition).
  const bool undefined = decision.allowed && decision.protocol.empty() && policy.requireDefinition;
  if (undefined) {
    out.allowed = false;
    out.reason = Reason::NoDefinition;
  }
  // Only where nothing else decided: an explicit deny, or a protected destination (the
  // gateway's own ports), is never opened by a secondary connection.
  const bool secondaryMayApply = (undefined || decision.ruleIndex < 0) && !request.guarded();
  if (!out.allowed && secondaryMayApply && request.destinationAddress) {
    if (const auto primary =
            secondaryOf(engine, primaries, *request.destinationAddress, secondaryFacts(request))) {
      return asSecondary(primaries, *primary);
    }
  }
  return out;
}

FirewallDecision decideUdpSender(const Engine& engine, std::span<const LivePrimary> contacted,
                                 const IpAddress& sender, std::uint16_t port) {
  const ConnectionFacts facts{Transport::Udp, Direction::Receive, port};
  if (const auto primary = secondaryOf(engine, contacted, sender, facts)) {
    return asSecondary(contacted, *primary);
  }
  return FirewallDecision{false, Reason::NoPrimary, {}, {}, {}};
}

ListenDecision decideListen(const Engine& engine, const Request& request,
                            std::span<const LivePrimary> primaries, ListenMode mode) {
  const std::uint16_t port = request.destinationPort;
  const ConnectionFacts facts{Transport::Tcp, Direction::Inbound, port};
  ListenDecision out;
  out.mode = mode;
  out.ports = PortRange{port, port};
  if (mode == ListenMode::Server) {
    // Peers are decided one by one as they connect; now, a definition must cover the port and a
    // rule must be able to allow some peer.
    const ProtocolDefinition* definition = engine.primaryFor(facts);
    FirewallDecision& a = out.admission;
    if (definition == nullptr) {
      a.reason = Reason::NoDefinition;
      return out;
    }
    a.definition = definition->name;
    if (!somePeerMayBeAllowed(engine, request, Command::Bind, facts)) {
      a.reason = Reason::DefaultDeny;
      a.rule = "default-deny";
      return out;
    }
    a.allowed = true;
    a.reason = Reason::Rule;
    a.rule = "(per peer)";
    return out;
  }
  // A secondary listen: the first live primary whose definition has an inbound TCP secondary
  // connection covering the port (any such connection, for port 0, whose range it gets).
  for (std::size_t i = 0; i < primaries.size(); ++i) {
    const ProtocolDefinition* definition = engine.findProtocol(primaries[i].definition);
    if (definition == nullptr) continue;
    for (const ConnectionSpec& spec : definition->secondary) {
      if (spec.transport != Transport::Tcp || spec.direction != Direction::Inbound) continue;
      if (port != 0 && !coversSecondary(*definition, facts, engine.dynamicPorts())) continue;
      if (port == 0) out.ports = effectivePorts(spec, engine.dynamicPorts());
      out.admission = asSecondary(primaries, i);
      out.primary = primaries[i];
      return out;
    }
  }
  out.admission.reason = Reason::NoPrimary;
  return out;
}

FirewallDecision decidePeer(const Engine& engine, const ListenDecision& listen,
                            const Request& request, const FirewallClientPolicy& policy) {
  FirewallDecision out;
  out.definition = listen.admission.definition;
  if (listen.primary && policy.peersFromPrimaryOnly) {
    // Who may connect to a secondary listen: the primary connection's host.
    out.rule = listen.primary->rule;
    out.allowed = request.destinationAddress &&
                  canonical(*request.destinationAddress) == canonical(listen.primary->host);
    out.reason = out.allowed ? Reason::Secondary : Reason::NotPrimaryHost;
    out.primary = listen.admission.primary;
    return out;
  }
  // By the rules; a secondary listen's peers through the primary's definition's secondaries.
  Request peer = request;
  peer.command = Command::Bind;
  peer.connection = ConnectionFacts{Transport::Tcp, Direction::Inbound, request.destinationPort};
  peer.secondaryOf = listen.primary ? listen.primary->definition : std::string();
  const Decision decision = engine.decide(peer);
  out.allowed = decision.allowed;
  out.reason = decision.reason;
  out.rule = decision.ruleName;
  return out;
}

namespace {

bool equalsFolded(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto fold = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (fold(a[i]) != fold(b[i])) return false;
  }
  return true;
}

bool namesUser(const PublishListen& entry, const std::optional<std::string>& user,
               const GroupMembers& groups) {
  if (entry.users.empty() && entry.groups.empty()) return true;
  if (!user) return false;
  for (const auto& u : entry.users) {
    if (u == *user) return true;
  }
  for (const auto& g : entry.groups) {
    const auto it = groups.find(g);
    if (it == groups.end()) continue;
    for (const auto& member : it->second) {
      if (member == *user) return true;
    }
  }
  return false;
}

}  // namespace

ListenDecision decidePublish(const Engine& engine, const Request& request,
                             std::string_view application, std::span<const PublishListen> entries,
                             const GroupMembers& groups) {
  ListenDecision out;
  out.mode = ListenMode::Publish;
  out.ports = engine.dynamicPorts();
  out.admission.reason = Reason::NotPublished;
  if (application.empty()) return out;
  for (const PublishListen& entry : entries) {
    bool named = false;
    for (const auto& app : entry.applications) named = named || equalsFolded(app, application);
    if (!named || !namesUser(entry, request.user, groups)) continue;
    out.admission.allowed = true;
    out.admission.reason = Reason::Rule;
    out.admission.rule = entry.name;
    return out;
  }
  return out;
}

FirewallDecision decideUdpListen(const Engine& engine, const Request& request) {
  const ConnectionFacts facts{Transport::Udp, Direction::Receive, request.destinationPort};
  FirewallDecision out;
  const ProtocolDefinition* definition =
      request.destinationPort == 0 ? nullptr : engine.primaryFor(facts);
  if (definition == nullptr) {
    out.reason = Reason::NoDefinition;
    return out;
  }
  out.definition = definition->name;
  if (!somePeerMayBeAllowed(engine, request, Command::Udp, facts)) {
    out.reason = Reason::DefaultDeny;
    out.rule = "default-deny";
    return out;
  }
  out.allowed = true;
  out.reason = Reason::Rule;
  out.rule = "(per peer)";
  return out;
}

FirewallDecision decideUdpPeer(const Engine& engine, const FirewallDecision& listen,
                               const Request& request) {
  FirewallDecision out;
  out.definition = listen.definition;
  if (!listen.allowed) {
    out.reason = listen.reason;
    out.rule = listen.rule;
    return out;
  }
  Request peer = request;
  peer.command = Command::Udp;
  peer.connection = ConnectionFacts{Transport::Udp, Direction::Receive, request.destinationPort};
  peer.secondaryOf.clear();
  const Decision decision = engine.decide(peer);
  out.allowed = decision.allowed;
  out.reason = decision.reason;
  out.rule = decision.ruleName;
  // A rule that allows it through another definition (or none) does not publish this one.
  if (out.allowed && decision.protocol != listen.definition) {
    out.allowed = false;
    out.reason = Reason::NoDefinition;
  }
  return out;
}

}  // namespace fwgate::policy
