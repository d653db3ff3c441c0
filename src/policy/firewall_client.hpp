// The firewall client's admission rule, stated once: what a remoted connect, a datagram, a
// remoted listen and each peer of that listen may do. Pure functions over the engine and the
// program's live primary connections, which the gateway passes in as plain data.
//
//   connect, datagram: the rules, as a SOCKS request; then, with [firewall_client]
//     require_definition, nothing that no protocol definition covers (the Winsock Proxy's rule);
//     then, only where no rule decided or the definition was missing, and never to a protected
//     destination, a secondary connection of a live primary connection to the same host.
//   listen: a server needs a definition whose primary connection is inbound TCP on its port and a
//     rule that may allow some peer; a secondary listen needs a live primary connection whose
//     definition has an inbound TCP secondary connection covering the port (port 0: its range).
//   peer: of a secondary listen, only the primary's host ([bind] secondary_peers = "primary") or
//     whom the rules allow through the definition's secondaries; of a server, whom the rules allow.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "policy/engine.hpp"
#include "policy/outcome.hpp"

namespace fwgate::policy {

// One primary connection of the program that asks (same client, PID, user and application),
// still open: a remoted connect, or a host a UDP association sent to.
struct LivePrimary {
  IpAddress host;          // where it goes
  std::string definition;  // the protocol definition that allowed it; empty: none (no secondaries)
  std::string rule;        // the rule that allowed it
};

// The firewall client's settings from the configuration, as policy needs them.
struct FirewallClientPolicy {
  bool requireDefinition = true;     // [firewall_client] require_definition
  bool peersFromPrimaryOnly = true;  // [bind] secondary_peers = "primary"
};

struct FirewallDecision {
  bool allowed = false;
  Reason reason = Reason::DefaultDeny;
  // For the log: the deciding rule (its name, "default-deny", "protected-destination"), the
  // primary's rule for a secondary, "(per peer)" for a server's allowed listen; empty when no
  // rule was asked (no definition, no primary).
  std::string rule;
  // The protocol definition that covers it; for a secondary, its primary's. Empty: none.
  std::string definition;
  // A secondary: the index of its primary in the live primaries given.
  std::optional<std::size_t> primary;

  // The session log's `definition`: "FTP", or "FTP (secondary)".
  std::string loggedDefinition() const;
  // The definition a connection allowed this way lends its own secondaries (a secondary lends
  // none: only primary connections have secondaries).
  std::string definitionAsPrimary() const;
  // This denial as the session log records it, for a connection `facts` describes; `host` and
  // `peer` as in Denial. The rule is left out where no rule denied (no-primary,
  // not-primary-host).
  Denial denial(const ConnectionFacts& facts, std::string host = {}, bool peer = false) const;
};

// A remoted TCP connect (request.command Connect) or a datagram (Udp, to its destination). The
// request is filled as for Engine::decide: destinationIsProtected and clientIsLocal by the caller.
FirewallDecision decideRemoted(const Engine& engine, const Request& request,
                               std::span<const LivePrimary> primaries,
                               const FirewallClientPolicy& policy);

// A datagram a host sends to a UDP association from a port it was not sent to (a server
// answering from a new port): allowed as a secondary of a host the association sent to.
FirewallDecision decideUdpSender(const Engine& engine, std::span<const LivePrimary> contacted,
                                 const IpAddress& sender, std::uint16_t port);

enum class ListenMode : std::uint8_t { Server, Secondary, Publish };

struct ListenDecision {
  FirewallDecision admission;  // a server's rule is "(per peer)": each peer is decided later
  ListenMode mode = ListenMode::Secondary;
  PortRange ports{0, 0};  // where it may listen: the port asked, or a secondary's range
  std::optional<LivePrimary> primary;  // a secondary listen's (its index: admission.primary)
};

// A remoted listen on `request.destinationPort` (0: any port a secondary allows). `request`
// names the client (client, clientIsLocal, user); the rest is filled here. A server's port is
// not 0 (the caller refuses that as a bad request).
ListenDecision decideListen(const Engine& engine, const Request& request,
                            std::span<const LivePrimary> primaries, ListenMode mode);

// A peer connecting to an allowed listen, on `request.destinationPort` (the port listened on)
// from `request.destinationAddress`; the client, the user and destinationIsProtected as for
// Engine::decide, the command and connection filled here. The decision's definition is the
// listen's.
FirewallDecision decidePeer(const Engine& engine, const ListenDecision& listen,
                            const Request& request, const FirewallClientPolicy& policy);

// --- Published listens ---------------------------------------------------------------------
//
//   publish: a program with no live primary connection that binds the wildcard address and port
//     0 (its PublishBindTcp setting) listens on a port of the gateway's dynamic range, only where
//     a [firewall_client] publish_listens entry names its application and its user (or a group of
//     the user; an entry naming neither users nor groups: any user, anonymous too); off when no
//     entry does. Each peer is then decided by the rules (decidePeer, as a server's).

// One [[firewall_client.publish_listens]] entry.
struct PublishListen {
  std::string name;                       // for the log (the decision's rule)
  std::vector<std::string> applications;  // binary names, case-insensitive; never empty
  std::vector<std::string> users;         // authenticated user names
  std::vector<std::string> groups;        // group names (members from `groups` below)
};

using GroupMembers = std::map<std::string, std::vector<std::string>>;

// A published listen of `application` for the client and user `request` names (client,
// clientIsLocal, user; the rest is filled here): the first entry that names the application and
// the user. Allowed: mode Publish, the engine's dynamic ports, reason Rule and the entry's name as
// the rule; refused: reason NotPublished, no rule.
ListenDecision decidePublish(const Engine& engine, const Request& request,
                             std::string_view application, std::span<const PublishListen> entries,
                             const GroupMembers& groups);

}  // namespace fwgate::policy

namespace fwgate::policy {

// RemoteBindUdpPorts: a UDP association published on the gateway's external UDP port
// `request.destinationPort` (not 0), for senders that send first (RTP media, SIP). Allowed when a
// protocol definition's primary connection is inbound UDP on the port (direction "receive" or
// "receive-send") and a rule may allow some sender (command udp, that definition); each sender is
// decided by decideUdpPeer. `request` names the client (client, clientIsLocal, user); the rest is
// filled here. The decision names the definition; its rule is "(per peer)" when allowed,
// "default-deny" when no rule may allow a sender.
FirewallDecision decideUdpListen(const Engine& engine, const Request& request);

// A datagram to a published association (`listen`, allowed) from a sender
// (`request.destinationAddress`) to the published port (`request.destinationPort`): by the rules,
// command udp, an inbound UDP connection of the listen's definition. The client, the user and
// destinationIsProtected as for Engine::decide. The decision's definition is the listen's.
FirewallDecision decideUdpPeer(const Engine& engine, const FirewallDecision& listen,
                               const Request& request);

}  // namespace fwgate::policy
