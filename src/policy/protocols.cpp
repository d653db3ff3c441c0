// Protocol definitions: names of transports and directions, matching, and the built-in catalogue.
#include "policy/protocols.hpp"

#include <algorithm>
#include <initializer_list>

namespace fwgate::policy {
namespace {

constexpr ConnectionSpec spec(std::uint16_t first, std::uint16_t last, Transport transport,
                              Direction direction) {
  return ConnectionSpec{PortRange{first, last}, transport, direction};
}

constexpr ConnectionSpec tcpOut(std::uint16_t port) {
  return spec(port, port, Transport::Tcp, Direction::Outbound);
}

constexpr ConnectionSpec udp(std::uint16_t port, Direction direction) {
  return spec(port, port, Transport::Udp, direction);
}

// Port 0: any port of the dynamic range.
constexpr ConnectionSpec kDynamicTcpInbound = spec(0, 0, Transport::Tcp, Direction::Inbound);
constexpr ConnectionSpec kDynamicUdpReceiveSend =
    spec(0, 0, Transport::Udp, Direction::ReceiveSend);
// FTP's passive-mode data connections: the server names any unprivileged port.
constexpr ConnectionSpec kPassiveData = spec(1024, 65535, Transport::Tcp, Direction::Outbound);
// A server that answers from a port of its own choosing (TFTP): any unprivileged port of it.
constexpr ConnectionSpec kServerUdpReply =
    spec(1024, 65535, Transport::Udp, Direction::ReceiveSend);

ProtocolDefinition builtin(std::string name, ConnectionSpec primary,
                           std::initializer_list<ConnectionSpec> secondary = {}) {
  return ProtocolDefinition{std::move(name), primary, secondary, true};
}

}  // namespace

std::string_view toString(Transport t) {
  switch (t) {
    case Transport::Tcp:
      return "tcp";
    case Transport::Udp:
      return "udp";
  }
  return "unknown";
}

std::string_view toString(Direction d) {
  switch (d) {
    case Direction::Outbound:
      return "outbound";
    case Direction::Inbound:
      return "inbound";
    case Direction::Send:
      return "send";
    case Direction::Receive:
      return "receive";
    case Direction::SendReceive:
      return "send-receive";
    case Direction::ReceiveSend:
      return "receive-send";
  }
  return "unknown";
}

std::optional<Transport> parseTransport(std::string_view text) {
  if (text == "tcp") return Transport::Tcp;
  if (text == "udp") return Transport::Udp;
  return std::nullopt;
}

std::optional<Direction> parseDirection(Transport transport, std::string_view text) {
  static constexpr Direction kTcp[] = {Direction::Outbound, Direction::Inbound};
  static constexpr Direction kUdp[] = {Direction::Send, Direction::Receive, Direction::SendReceive,
                                       Direction::ReceiveSend};
  const auto find = [&](const auto& directions) -> std::optional<Direction> {
    for (const Direction d : directions) {
      if (toString(d) == text) return d;
    }
    return std::nullopt;
  };
  return transport == Transport::Tcp ? find(kTcp) : find(kUdp);
}

bool ConnectionSpec::coversPort(std::uint16_t port, const PortRange& dynamic) const {
  return effectivePorts(*this, dynamic).contains(port);
}

bool isValidProtocolName(std::string_view name) {
  return !name.empty() && name.size() <= 128 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

bool directionMatches(Direction spec, Direction facts) {
  switch (facts) {
    case Direction::Send:
      return spec == Direction::Send || spec == Direction::SendReceive;
    case Direction::Receive:
      return spec == Direction::Receive || spec == Direction::ReceiveSend;
    default:
      return spec == facts;
  }
}

PortRange effectivePorts(const ConnectionSpec& spec, const PortRange& dynamic) {
  return spec.anyDynamicPort() ? dynamic : spec.ports;
}

bool overlaps(const ConnectionSpec& a, const ConnectionSpec& b, const PortRange& dynamic) {
  if (a.transport != b.transport) return false;
  static constexpr Direction kAll[] = {Direction::Outbound,    Direction::Inbound,
                                       Direction::Send,        Direction::Receive,
                                       Direction::SendReceive, Direction::ReceiveSend};
  const bool sameConnection = std::any_of(std::begin(kAll), std::end(kAll), [&](Direction d) {
    return directionMatches(a.direction, d) && directionMatches(b.direction, d);
  });
  if (!sameConnection) return false;
  const PortRange x = effectivePorts(a, dynamic);
  const PortRange y = effectivePorts(b, dynamic);
  return x.first <= y.last && y.first <= x.last;
}

std::string toString(const ConnectionSpec& spec) {
  const std::string ports = spec.anyDynamicPort() ? "0 (dynamic)" : spec.ports.toString();
  return std::string(toString(spec.transport)) + " " + ports + " " +
         std::string(toString(spec.direction));
}

bool matchesPrimary(const ConnectionSpec& spec, const ConnectionFacts& facts,
                    const PortRange& dynamic) {
  return spec.transport == facts.transport && directionMatches(spec.direction, facts.direction) &&
         spec.coversPort(facts.port, dynamic);
}

bool coversSecondary(const ProtocolDefinition& definition, const ConnectionFacts& facts,
                     const PortRange& dynamic) {
  return std::any_of(definition.secondary.begin(), definition.secondary.end(),
                     [&](const ConnectionSpec& s) { return matchesPrimary(s, facts, dynamic); });
}

std::vector<ProtocolDefinition> builtinProtocols() {
  using enum Direction;
  return {
      builtin("HTTP", tcpOut(80)),
      builtin("HTTPS", tcpOut(443)),
      builtin("HTTP-Alt", tcpOut(8080)),
      // Active mode: the server connects back to a port the client announced (PORT); passive
      // mode: the client connects to the port the server announced (PASV).
      builtin("FTP", tcpOut(21), {kDynamicTcpInbound, kPassiveData}),
      builtin("FTPS", tcpOut(990), {kDynamicTcpInbound, kPassiveData}),
      builtin("DNS", udp(53, SendReceive)),
      builtin("DNS-TCP", tcpOut(53)),
      builtin("SMTP", tcpOut(25)),
      builtin("SMTPS", tcpOut(465)),
      builtin("Submission", tcpOut(587)),
      builtin("POP3", tcpOut(110)),
      builtin("POP3S", tcpOut(995)),
      builtin("IMAP", tcpOut(143)),
      builtin("IMAPS", tcpOut(993)),
      builtin("SSH", tcpOut(22)),
      builtin("Telnet", tcpOut(23)),
      builtin("NTP", udp(123, SendReceive)),
      builtin("IRC", tcpOut(6667), {kDynamicTcpInbound}),                          // DCC
      builtin("RTSP", tcpOut(554), {kDynamicUdpReceiveSend, kDynamicTcpInbound}),  // media
      builtin("LDAP", tcpOut(389)),
      builtin("LDAPS", tcpOut(636)),
      builtin("NNTP", tcpOut(119)),
      builtin("Whois", tcpOut(43)),
      builtin("Finger", tcpOut(79)),
      builtin("RDP", tcpOut(3389)),
      builtin("MySQL", tcpOut(3306)),
      builtin("PostgreSQL", tcpOut(5432)),
      builtin("SIP", udp(5060, SendReceive)),
      builtin("XMPP", tcpOut(5222)),
      builtin("Git", tcpOut(9418)),
      builtin("Rsync", tcpOut(873)),
      builtin("SNMP", udp(161, SendReceive)),
      builtin("TFTP", udp(69, Send), {kServerUdpReply}),  // the server answers from a new port
      builtin("Kerberos", udp(88, SendReceive)),
      builtin("MSSQL", tcpOut(1433)),
  };
}

}  // namespace fwgate::policy
