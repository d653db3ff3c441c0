// Protocol definitions (the seed's "Configure Protocol Definition"): a named primary connection
// (port or port range, TCP or UDP, direction) and the secondary connections the protocol opens
// while that primary connection lives (FTP's data connections, IRC's DCC, RTSP's media).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/address.hpp"

namespace fwgate::policy {

enum class Transport : std::uint8_t { Tcp, Udp };

// TCP: Outbound (the client connects out) or Inbound (a remote host connects to the gateway).
// UDP: Send (the client sends first, replies allowed), Receive (a remote host sends first),
// SendReceive and ReceiveSend (both ways; the first word says who starts).
enum class Direction : std::uint8_t { Outbound, Inbound, Send, Receive, SendReceive, ReceiveSend };

std::string_view toString(Transport t);
std::string_view toString(Direction d);
std::optional<Transport> parseTransport(std::string_view text);  // "tcp", "udp"
std::optional<Direction> parseDirection(Transport transport,
                                        std::string_view text);  // per transport

// One connection of a definition. `ports` {0, 0} is the seed's Port_Any: any port of the
// configured dynamic range.
struct ConnectionSpec {
  PortRange ports{0, 0};
  Transport transport = Transport::Tcp;
  Direction direction = Direction::Outbound;

  bool anyDynamicPort() const { return ports.first == 0 && ports.last == 0; }
  // The port falls in this spec's range (the dynamic range when the spec says port 0).
  bool coversPort(std::uint16_t port, const PortRange& dynamic) const;
  friend bool operator==(const ConnectionSpec&, const ConnectionSpec&) = default;
};

struct ProtocolDefinition {
  std::string name;
  ConnectionSpec primary;
  std::vector<ConnectionSpec> secondary;
  bool builtin = false;  // from the catalogue (and not overridden by the configuration)
};

// The built-in catalogue: HTTP, HTTPS, FTP (with its data connections), DNS, SMTP, POP3, IMAP,
// SSH, Telnet, NTP, IRC, RTSP and the others administrators expect, in a stable order.
std::vector<ProtocolDefinition> builtinProtocols();

// What a connection is, for matching it against definitions.
struct ConnectionFacts {
  Transport transport = Transport::Tcp;
  Direction direction = Direction::Outbound;
  std::uint16_t port = 0;
};

// The primary connection `facts` describes matches `spec`: same transport, a compatible direction
// (a UDP Send matches Send and SendReceive definitions; Receive matches Receive and
// ReceiveSend), and the port in range.
bool matchesPrimary(const ConnectionSpec& spec, const ConnectionFacts& facts,
                    const PortRange& dynamic);
// A secondary connection `facts` is within the definition's secondary connections.
bool coversSecondary(const ProtocolDefinition& definition, const ConnectionFacts& facts,
                     const PortRange& dynamic);

// The seed's Port_Any range, 1024-5000, unless the configuration sets another.
inline constexpr PortRange kDefaultDynamicPorts{1024, 5000};

// Definition names: [A-Za-z0-9_.-]+ (at most 128 characters).
bool isValidProtocolName(std::string_view name);

// A connection whose direction is `facts` can match a spec whose direction is `spec`: equal, or
// a UDP Send against SendReceive, a UDP Receive against ReceiveSend.
bool directionMatches(Direction spec, Direction facts);

// The ports `spec` stands for: its own range, or `dynamic` for port 0.
PortRange effectivePorts(const ConnectionSpec& spec, const PortRange& dynamic);

// Some connection matches both specs: same transport, directions one connection can match
// both of, overlapping ports (port 0 as `dynamic`).
bool overlaps(const ConnectionSpec& a, const ConnectionSpec& b, const PortRange& dynamic);

// "tcp 21 outbound", "udp 1024-5000 send-receive", "tcp 0 (dynamic) inbound", for messages.
std::string toString(const ConnectionSpec& spec);

}  // namespace fwgate::policy
