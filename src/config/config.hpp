// The gateway configuration: plain structs with safe defaults, parsed from TOML and validated
// into an immutable snapshot. Every error carries its key path ("rules[2].sources[0]").
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/engine.hpp"
#include "policy/firewall_client.hpp"

namespace fwgate::config {

using Duration = std::chrono::milliseconds;

// "kerberos": SOCKS 5's GSS-API method 0x01 (RFC 1961) with the keys of [kerberos] keytab.
enum class AuthMethod : std::uint8_t { None, Password, Kerberos };
struct AuthMethodName {
  AuthMethod method;
  std::string_view name;
};
// The one list of listener methods: parsing, errors, the listening line and docs come from it.
inline constexpr AuthMethodName kAuthMethods[] = {{AuthMethod::None, "none"},
                                                  {AuthMethod::Password, "password"},
                                                  {AuthMethod::Kerberos, "kerberos"}};
std::string_view authMethodName(AuthMethod method);

// [[listeners]]: one SOCKS 4/4a/5 listening socket.
struct Listener {
  std::string address = "127.0.0.1";  // IPv4 or IPv6 literal; "::" listens dual-stack
  std::uint16_t port = 1080;          // 0 picks a free port (tests)
  // Methods offered, in order of preference. Without None, the listener never accepts
  // unauthenticated clients (SOCKS 4 included: it has no password).
  std::vector<AuthMethod> methods{AuthMethod::None};

  friend bool operator==(const Listener&, const Listener&) = default;
};

// How a relay moves bytes: through pooled user-space buffers (copy), through kernel pipes with
// splice(2) (splice), or copying a connection's first bytes and splicing once it has moved
// kSpliceAfter in a direction (auto, the default: small exchanges skip the pipe, bulk skips the
// copy).
enum class RelayMode : std::uint8_t { Auto, Copy, Splice };
struct RelayModeName {
  RelayMode mode;
  std::string_view name;
};
// The one list of relay modes: parsing, errors and docs come from it.
inline constexpr RelayModeName kRelayModes[] = {
    {RelayMode::Auto, "auto"}, {RelayMode::Copy, "copy"}, {RelayMode::Splice, "splice"}};

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
  RelayMode relayMode = RelayMode::Auto;
};

// [auth_throttle]: password guessing, slowed and then refused (gateway/auth_guard.hpp). Failed
// logins are counted per source (an IPv4 address, an IPv6 /64) and per user name over `window`.
struct AuthThrottle {
  bool enabled = true;
  Duration window{std::chrono::minutes(15)};
  // `delay_after`: failures (of a source or of a name) after which an attempt waits `delay`
  // before it is verified, twice as long per further failure, at most `max_delay`. 0: no delay.
  std::uint32_t delayAfter = 5;
  Duration delay{std::chrono::milliseconds(250)};
  Duration maxDelay{std::chrono::seconds(4)};
  // `refuse_after`: failures from one source after which its attempts are refused unverified for
  // `refuse_for` (right passwords too). 0: never. A user name is never refused.
  std::uint32_t refuseAfter = 20;
  Duration refuseFor{std::chrono::minutes(15)};
  // `max_pending`: attempts of one source waiting for verification; more are refused at once.
  std::uint32_t maxPending = 8;
  friend bool operator==(const AuthThrottle&, const AuthThrottle&) = default;
};

// [kerberos]: the gateway as a Kerberos service (gss/gss.hpp).
struct KerberosSettings {
  // The service keys (rcmd/HOST, HTTP/HOST, fwgate/HOST); empty: no Kerberos.
  std::string keytab;
  // Realms whose principals are users by their bare name ("alice@EXAMPLE.TEST" is "alice",
  // the name rules, groups and the users file use); others keep the realm.
  std::vector<std::string> localRealms;
  friend bool operator==(const KerberosSettings&, const KerberosSettings&) = default;
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
  // [[firewall_client.publish_listens]]: who may publish a listen on a dynamic port
  // (PublishBindTcp, policy::decidePublish). Empty: nobody (the default).
  std::vector<policy::PublishListen> publishListens;
};

// [web_proxy]: the HTTP/1.1 forward proxy (absolute-form requests and CONNECT) and the automatic
// configuration script it serves (/wpad.dat, /proxy.pac, /array.dll?Get.Routing.Script).
struct WebProxySettings {
  // `listen`: "ADDR:PORT" endpoints (TMG's default: 8080 on the internal addresses). Empty: no
  // Web Proxy. The embedded default listens on 127.0.0.1:8080.
  std::vector<Listener> listeners;
  // `tunnel_ports`: the ports CONNECT may reach (TMG's tunnel port ranges; default 443 only).
  std::vector<policy::PortRange> tunnelPorts{policy::PortRange{443, 443}};
  bool via = true;                 // `via`: add "Via: 1.1 <via_name>" to requests and responses
  std::string viaName = "fwgate";  // `via_name`: the received-by of Via
  bool xForwardedFor = false;      // `x_forwarded_for`: tell origins the client's address
  std::string realm = "fwgate";    // `realm`: of Proxy-Authenticate: Basic realm="..."
  // `pac_proxy`: the "host:port" the PAC script names in "PROXY host:port". Empty: the address and
  // port of the listener that served the script (what the browser reached it on).
  std::string pacProxy;
  // `backup_route`: after the proxy, when it is unavailable: "DIRECT", "PROXY host:port", or ""
  // for none. Default DIRECT (TMG's DirectToInternet).
  std::string backupRoute = "DIRECT";
  // `direct_domains`, `direct_ranges`: extra names (suffixes, "*.example.com" or "example.com")
  // and address ranges the script sends direct, beside the client's local networks.
  std::vector<std::string> directDomains;
  std::vector<policy::IpRange> directRanges;
  // Limits.
  std::uint32_t maxRequestLine = 8192;   // `max_request_line`: bytes, else 414
  std::uint32_t maxHeaderBytes = 65536;  // `max_header_bytes`: bytes of a head, else 431
  std::uint32_t maxHeaderCount = 100;    // `max_header_count`: field lines, else 431
  Duration headerTimeout{std::chrono::seconds(10)};  // `header_timeout`: a whole head (slowloris)
  Duration keepAliveTimeout{std::chrono::seconds(60)};  // `keep_alive_timeout`: idle client conn.
  std::uint32_t maxConnectionsPerClient = 256;  // `max_connections_per_client`: 0 = unlimited
  std::uint32_t originPoolSize = 64;  // `origin_pool_size`: idle connections kept per origin
  Duration originIdleTimeout{std::chrono::seconds(30)};  // `origin_idle_timeout`
  friend bool operator==(const WebProxySettings&, const WebProxySettings&) = default;
};

// [log]
struct LogSettings {
  std::string level = "info";  // trace, debug, info, warn, error
  std::string sessions = "-";  // session log path; "-" is stderr
};

// [[packet_filters.filter]]: one static packet filter (the seed's custom filter): packets of
// one IP protocol, in one or both directions, between a local host and remote hosts, let through
// the external interface. Parsed and validated here; rendered to nftables by `fwgate filters`.
struct PacketFilter {
  enum class Direction : std::uint8_t { Inbound, Outbound, Both };
  // Who exchanges packets with the remote host: the gateway on its default external addresses,
  // the gateway on one of its addresses (`localAddress`), or an internal computer behind it.
  enum class LocalHost : std::uint8_t { External, GatewayAddress, InternalComputer };

  static constexpr std::uint8_t kIcmp = 1;
  static constexpr std::uint8_t kTcp = 6;
  static constexpr std::uint8_t kUdp = 17;
  static constexpr std::uint8_t kIcmpv6 = 58;

  std::string name;              // unique, [A-Za-z0-9_.-]+; "filter-N" (1-based) by default
  std::uint8_t protocol = kTcp;  // IP protocol number: "tcp" is 6, "udp" 17, "icmp" 1, ...
  Direction direction = Direction::Inbound;
  std::optional<policy::PortRange> localPort;   // tcp and udp only; nullopt = any port
  std::optional<policy::PortRange> remotePort;  // tcp and udp only; nullopt = any port
  LocalHost localHost = LocalHost::External;
  std::optional<policy::IpAddress> localAddress;  // set exactly when localHost != External
  std::optional<policy::IpRange> remoteHost;      // nullopt = any remote host
  std::optional<std::uint8_t> icmpType;           // icmp and icmpv6 only; nullopt = any type
  std::optional<std::uint8_t> icmpCode;           // only with icmpType; nullopt = any code
  std::uint32_t line = 0;  // line of its [[packet_filters.filter]] header; 0 when unknown

  bool carriesPorts() const { return protocol == kTcp || protocol == kUdp; }
  bool isIcmp() const { return protocol == kIcmp || protocol == kIcmpv6; }
  friend bool operator==(const PacketFilter&, const PacketFilter&) = default;
};

// "inbound", "outbound", "both".
std::string_view toString(PacketFilter::Direction direction);
// "tcp", "udp", "icmp", "icmpv6", or the protocol number in decimal ("47").
std::string ipProtocolName(std::uint8_t protocol);

// [packet_filters]
struct PacketFilterSettings {
  bool enabled = false;  // applied to the kernel by `fwgate filters`; validated either way
  // The external interfaces (`interfaces`): the only ones filtered; required when enabled. A
  // trailing '*' is nftables' wildcard ("ppp*").
  std::vector<std::string> interfaces;
  // `outbound = "drop"`: outbound on the external interfaces only for established/related
  // traffic, the gateway's own user and the outbound filters. "accept" (false): not restricted,
  // outbound filters only count.
  bool outboundDrop = false;
  // `dynamic_timeout`: the timeout of a dynamic port's element (a safety net should the gateway
  // die); 10s..24h.
  Duration dynamicTimeout{std::chrono::hours(1)};
  std::vector<PacketFilter> filters;  // [[packet_filters.filter]], in file order
  friend bool operator==(const PacketFilterSettings&, const PacketFilterSettings&) = default;
};

// [control]: how the control channel is protected (docs/control-protocol.md, "The encrypted
// channel").
struct ControlSecurity {
  // `key_file`: the gateway's static X25519 key; "" is control.key in the state directory
  // (`fwgate gateway --state-dir`, $STATE_DIRECTORY, /var/lib/fwgate). Created when missing.
  std::string keyFile;
  // `encryption = "required"`: a clear Hello is refused (EncryptionRequired); "optional" serves
  // clear version 3 clients too.
  bool encryptionRequired = false;
  // `max_clock_skew`: how far a Handshake's Timestamp may be from the gateway's clock; the replay
  // cache remembers each handshake twice as long.
  Duration maxClockSkew{std::chrono::minutes(2)};
  // [control.hosts]: enrolled firewall-client hosts, NAME = "the static key of its agent"
  // (base64, `fwgate agent --show-host-key`). A connection whose handshake proves one of these
  // keys comes from that host's root agent, which says who the local user is: the gateway takes
  // it as the user ("auth": "host").
  struct Host {
    std::string name;
    std::array<std::uint8_t, 32> key{};
    friend bool operator==(const Host&, const Host&) = default;
  };
  std::vector<Host> hosts;
  friend bool operator==(const ControlSecurity&, const ControlSecurity&) = default;
};

struct Config {
  std::vector<Listener> listeners{Listener{}};
  // [control] listen: the firewall-client control channel (TCP 1745); methods are not used.
  std::vector<Listener> controlListeners;
  ControlSecurity control;  // [control] key_file, encryption, max_clock_skew
  FirewallClientSettings firewallClient;
  WebProxySettings webProxy;  // [web_proxy]
  Limits limits;
  AuthThrottle authThrottle;  // [auth_throttle]
  BindSettings bind;
  LogSettings log;
  std::string runAsUser;      // [gateway] user: drop privileges to it after binding (when root)
  std::string usersFile;      // [gateway] users_file: see users.hpp
  KerberosSettings kerberos;  // [kerberos]
  // The user a Kerberos principal is: bare for a local realm, the principal otherwise.
  std::string userOfPrincipal(const std::string& principal) const;
  // [gateway] workers: event loops, one thread each; 0 = one per CPU the process may run on.
  std::uint32_t workers = 0;
  // [gateway] balance: how SOCKS and Web Proxy connections are spread over the workers.
  enum class Balance : std::uint8_t {
    Kernel,      // each worker accepts on its own SO_REUSEPORT socket; the kernel picks
    RoundRobin,  // the first worker accepts and hands connections out in turn
  };
  Balance balance = Balance::Kernel;
  std::map<std::string, std::vector<std::string>> groups;  // [groups] name = ["user", ...]
  std::vector<policy::Network> networks;  // [networks.NAME]; includes the built-ins any, loopback
  std::vector<policy::Rule> rules;        // [[rules]], in order
  // [protocols.NAME] in file order, then the built-in catalogue's definitions not overridden.
  std::vector<policy::ProtocolDefinition> protocols = policy::builtinProtocols();
  PacketFilterSettings packetFilters;  // [packet_filters]
  std::string source = "<embedded>";   // where it came from, for start-up lines

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
