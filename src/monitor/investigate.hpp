// `fwgate monitor --log`: the Winsock Proxy's investigation mode. Reads the gateway's session log
// (one JSON object per line) and lists the attempts that rules or missing protocol definitions
// denied, grouped, each with the definition or rule change that would allow it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <istream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/address.hpp"
#include "policy/protocols.hpp"

namespace fwgate::monitor {

struct InvestigateOptions {
  // The gateway's definitions (the configuration's own, then the catalogue), in that order.
  std::vector<policy::ProtocolDefinition> definitions = policy::builtinProtocols();
  policy::PortRange dynamicPorts = policy::kDefaultDynamicPorts;
  std::optional<policy::IpAddress> client;  // only this client's attempts
  std::string name = "CustomApp";           // for a new definition; "-2", "-3" when several
};

enum class DenialKind : std::uint8_t {
  NoDefinition,        // a firewall client's connection or datagram that no definition covers
  Rule,                // a deny rule, the default deny, or a protected destination
  RefusedPeer,         // a connection to a remoted listen (or SOCKS BIND) from a peer not allowed
  ListenNoDefinition,  // a firewall client's listen that no definition covers
};
std::string_view toString(DenialKind kind);

// One group of denied attempts: same kind, transport, direction, port and application.
struct Finding {
  DenialKind kind = DenialKind::Rule;
  policy::Transport transport = policy::Transport::Tcp;
  policy::Direction direction = policy::Direction::Outbound;
  std::uint16_t port = 0;   // 0: a dynamic port (secondary listens, BIND), or not logged (UDP)
  std::string command;      // connect, udp, bind, listen, listen-server, accept (first attempt)
  std::string application;  // the firewall client's program; empty for SOCKS clients
  std::vector<std::string> protocols;     // socks4, socks4a, socks5, fwc
  std::vector<std::string> destinations;  // hosts as requested; RefusedPeer: the peers
  std::vector<std::string> clients;       // client addresses
  std::vector<std::string> users;         // authenticated users, else the claimed local accounts
  std::vector<std::string> rules;         // the deciding rules as logged (empty: none decided)
  std::string definition;  // the definition the gateway named (RefusedPeer: the listen's)
  std::size_t count = 0;
  std::string firstTime;
  std::string lastTime;
  std::size_t exampleLine = 0;  // 1-based line of the first attempt
  std::string exampleError;     // its `error`
  std::string covering;         // an existing definition that would allow it, if any
  std::optional<policy::ProtocolDefinition> proposed;  // a new or extended definition
  bool proposedExtends = false;  // `proposed` replaces the existing definition of its name
  std::string suggestion;        // what to change, plain text (lines separated by '\n')
};

struct Investigation {
  std::vector<Finding> findings;  // most attempts first
  // Every new or extended definition once, in the order findings first need them.
  std::vector<policy::ProtocolDefinition> proposed;
  std::size_t lines = 0;     // lines read, blank ones included
  std::size_t sessions = 0;  // JSON objects read (the --client filter's skipped ones included)
  std::size_t denials = 0;   // attempts in findings
  std::size_t unreadable = 0;
  std::size_t firstUnreadableLine = 0;  // 0 when every line was readable
  std::size_t otherClients = 0;         // sessions skipped by options.client
  // Sessions the gateway did not log because its queue was full ({"dropped_records": N} lines,
  // which are not sessions themselves): the analysis cannot see them.
  std::uint64_t droppedRecords = 0;
  std::size_t succeeded = 0;  // succeeded, listening, ok
  std::size_t failed = 0;     // the destination refused, unreachable, name not found
  std::size_t timeouts = 0;
  std::size_t clientClosed = 0;
  std::size_t malformed = 0;      // bad handshakes and requests
  std::size_t authFailures = 0;   // bad passwords
  std::size_t otherRefusals = 0;  // refused for other reasons (require_connect, session limit)
  std::size_t stopped = 0;        // ended by the gateway's stop before they had an outcome
  std::size_t other = 0;          // results this reader does not know
};

// Reads the whole log; never throws on its content.
Investigation investigate(std::istream& log, const InvestigateOptions& options);

// The report for an administrator: a line of counts, then one block per finding.
std::string render(const Investigation& investigation);

}  // namespace fwgate::monitor
