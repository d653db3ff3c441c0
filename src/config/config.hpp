// The gateway configuration: plain structs with safe defaults, parsed from TOML and validated
// into an immutable snapshot. Every error carries its key path ("rules[2].sources[0]").
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "policy/engine.hpp"

namespace fwgate::config {

using Duration = std::chrono::milliseconds;

enum class AuthMethod : std::uint8_t { None, Password };

// [[listeners]]: one SOCKS 4/4a/5 listening socket.
struct Listener {
  std::string address = "127.0.0.1";  // IPv4 or IPv6 literal; "::" listens dual-stack
  std::uint16_t port = 1080;          // 0 picks a free port (tests)
  // Methods offered, in order of preference. Without None, the listener never accepts
  // unauthenticated clients (SOCKS 4 included: it has no password).
  std::vector<AuthMethod> methods{AuthMethod::None};

  friend bool operator==(const Listener&, const Listener&) = default;
};

// [limits]
struct Limits {
  std::uint32_t maxSessions = 10000;       // 0 = unlimited
  std::uint32_t maxSessionsPerClient = 0;  // per client IP address; 0 = unlimited
  Duration handshakeTimeout{std::chrono::seconds(10)};
  Duration connectTimeout{std::chrono::seconds(15)};
  Duration idleTimeout{std::chrono::hours(2)};
  Duration bindTimeout{std::chrono::seconds(120)};
  Duration udpIdleTimeout{std::chrono::seconds(300)};
  Duration shutdownGrace{std::chrono::seconds(10)};
  std::uint32_t relayBufferSize = 256 * 1024;  // bytes, per active direction, pooled
  // "copy": through pooled user-space buffers; "splice": through kernel pipes with splice(2).
  // Copy with large buffers measured faster on loopback (bench/README.md), so it is the default.
  std::string relayMode = "copy";
};

// [bind]: SOCKS BIND and UDP ASSOCIATE addressing.
struct BindSettings {
  // The address announced to remote peers in BIND replies (the external interface).
  // Empty: the local address of the gateway's outbound route to the requested peer.
  std::string externalAddress;
  // The seed's strict mode: BIND only for a client that has a CONNECT session to that host.
  bool requireConnect = false;
  // The seed's Port_Any: the range port 0 in a protocol definition stands for, and where the
  // gateway picks ports for listens that asked for port 0 (SOCKS BIND, remoted listens).
  policy::PortRange dynamicPorts = policy::kDefaultDynamicPorts;
  // Who may connect to a remoted listen that is a secondary connection: only the host the
  // program's primary connection went to ("primary"), or any peer a bind rule allows ("rules").
  enum class SecondaryPeers : std::uint8_t { Primary, Rules };
  SecondaryPeers secondaryPeers = SecondaryPeers::Primary;
};

// [firewall_client]: what the control channel supplies to firewall clients.
struct FirewallClientSettings {
  Duration refreshInterval{std::chrono::hours(6)};
  std::string webProxy;  // host:port, or empty
  // The Winsock Proxy's rule: a remoted connection or datagram is allowed only where a protocol
  // definition covers it (and a rule allows it). false: a rule that names no definitions allows
  // any port, as it does for SOCKS clients.
  bool requireDefinition = true;
  // [firewall_client.applications.NAME] rendered as INI sections (protocol/client_settings.hpp),
  // validated: known keys only, `*` holds only the DontRemoteOutbound keys.
  std::string settingsIni;
};

// [log]
struct LogSettings {
  std::string level = "info";  // trace, debug, info, warn, error
  std::string sessions = "-";  // session log path; "-" is stderr
};

struct Config {
  std::vector<Listener> listeners{Listener{}};
  // [control] listen: the firewall-client control channel (TCP 1745); methods are not used.
  std::vector<Listener> controlListeners;
  FirewallClientSettings firewallClient;
  Limits limits;
  BindSettings bind;
  LogSettings log;
  std::string runAsUser;  // [gateway] user: drop privileges to it after binding (when root)
  std::string usersFile;  // [gateway] users_file: see users.hpp
  std::map<std::string, std::vector<std::string>> groups;  // [groups] name = ["user", ...]
  std::vector<policy::Network> networks;  // [networks.NAME]; includes the built-ins any, loopback
  std::vector<policy::Rule> rules;        // [[rules]], in order
  // [protocols.NAME] in file order, then the built-in catalogue's definitions not overridden.
  std::vector<policy::ProtocolDefinition> protocols = policy::builtinProtocols();
  std::string source = "<embedded>";  // where it came from, for start-up lines

  // Builds the decision engine for this snapshot.
  std::shared_ptr<const policy::Engine> makeEngine() const;
};

struct Diagnostic {
  std::string path;  // key path, e.g. "rules[1].action"; empty for file-level problems
  std::string message;
  std::uint32_t line = 0;        // 1-based line in the source text; 0 when unknown
  std::string toString() const;  // "rules[1].action: expected \"allow\" or \"deny\""
};

struct LoadResult {
  std::shared_ptr<const Config> config;  // null when there are errors
  std::vector<Diagnostic> errors;
  std::vector<Diagnostic> warnings;  // e.g. the open-proxy warning
  bool ok() const { return errors.empty() && config != nullptr; }
};

// Parses and validates; collects every error, never throws.
LoadResult parseConfig(std::string_view tomlText, std::string_view sourceName);
LoadResult loadConfigFile(const std::string& path);

// The warnings parseConfig reports for a valid configuration (open proxy, no rules, rules that
// can never match or never be reached). Call again after changing listeners (--listen).
std::vector<Diagnostic> checkWarnings(const Config& config);

// The embedded default: SOCKS on 127.0.0.1:1080, loopback clients allowed, no authentication,
// sessions logged to stderr.
std::string_view embeddedDefaultConfig();

// "250ms", "10s", "5m", "2h", or a bare integer of seconds.
bool parseDuration(std::string_view text, Duration& out);

// "127.0.0.1:1745", "[::1]:1745". False if malformed (the host must be an address literal).
bool parseEndpoint(std::string_view text, std::string& address, std::uint16_t& port);

}  // namespace fwgate::config
