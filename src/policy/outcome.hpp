// How a session ended and, when the policy denied something in it, the first denial: the
// session log's `outcome` and `denial` fields, written by the gateway and read by the monitor as
// values, never as prose. A leaf: tokens and plain data only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "policy/protocols.hpp"
#include "policy/reason.hpp"

namespace fwgate::policy {

enum class Outcome : std::uint8_t {
  Succeeded,          // served: connected and relayed, associated, a listen that delivered a peer,
                      // a control connection's requests answered
  Listening,          // a remoted listen was open and delivered no peer (yet)
  Denied,             // the policy refused the request (the denial says why)
  RefusedPeer,        // a peer of a remoted listen the policy refused (the denial says why)
  NotAllowed,         // refused for another reason than the rules: SOCKS 4 on a password
                      // listener, [bind] require_connect, a UDP ASSOCIATE address not the client's
  NotFirewallClient,  // a control connection from outside every firewall_clients network
  BadRequest,         // malformed or unsupported: version, greeting, request, frame
  AuthFailed,         // wrong user name or password
  AuthThrottled,      // a login refused unverified: its source failed too often ([auth_throttle])
  HandshakeTimeout,   // no complete request within handshake_timeout
  TimedOut,           // no peer within bind_timeout
  ClientClosed,       // the client went away (or could not be written to) before being served
  DestinationFailed,  // the destination's name did not resolve, or it could not be reached
  ClientUnreachable,  // the firewall client's own listening socket could not be reached
  GatewayFailed,      // a socket of the gateway's own could not be opened, bound or listened on
  SessionLimit,       // [limits] max_sessions or max_sessions_per_client
  Stopped,            // the gateway stopped before the session had an outcome
};

inline constexpr Outcome kOutcomes[] = {Outcome::Succeeded,
                                        Outcome::Listening,
                                        Outcome::Denied,
                                        Outcome::RefusedPeer,
                                        Outcome::NotAllowed,
                                        Outcome::NotFirewallClient,
                                        Outcome::BadRequest,
                                        Outcome::AuthFailed,
                                        Outcome::AuthThrottled,
                                        Outcome::HandshakeTimeout,
                                        Outcome::TimedOut,
                                        Outcome::ClientClosed,
                                        Outcome::DestinationFailed,
                                        Outcome::ClientUnreachable,
                                        Outcome::GatewayFailed,
                                        Outcome::SessionLimit,
                                        Outcome::Stopped};

// "succeeded", "listening", "denied", "refused-peer", "not-allowed", "not-firewall-client",
// "bad-request", "auth-failed", "auth-throttled", "handshake-timeout", "timed-out",
// "client-closed", "destination-failed", "client-unreachable", "gateway-failed", "session-limit",
// "stopped".
std::string_view toToken(Outcome outcome);
std::optional<Outcome> outcomeFromToken(std::string_view token);

// What the policy denied, as the log records it: the first denial of a session (a UDP
// association's first denied datagram, a BIND's first refused peer), never replaced later.
struct Denial {
  Reason reason = Reason::DefaultDeny;
  Transport transport = Transport::Tcp;
  Direction direction = Direction::Outbound;
  std::uint16_t port = 0;  // 0: a port of a dynamic range (a secondary listen's, BIND's peers)
  std::string definition;  // the definition that covers it (a peer: the listen's); empty: none
  std::string rule;        // the rule that decided; empty when no rule did (no-primary, ...)
  std::string host;        // the host decided on when not the request's own: a datagram's
                           // destination, a refused peer
  bool peer = false;       // a peer of a remoted listen or a SOCKS BIND, refused

  friend bool operator==(const Denial&, const Denial&) = default;
};

}  // namespace fwgate::policy
