// Everything a firewall client knows: which gateway, which credentials, the local address and
// domain tables, and the settings for one program, assembled from (lowest precedence first) the
// gateway's configuration (cached on the host), /etc/fwgate/client.ini, the user's client.ini and
// the environment. Shared by the preload library and the fwgate commands; no allocation, only
// open/read/close and getenv.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "client/local_table.hpp"
#include "protocol/client_settings.hpp"
#include "protocol/control.hpp"

namespace fwgate::client {

// A gateway as configured: a host name or address literal, and the control port. One that DNS
// detection found (discovery.hpp) says by which record, "wspad.corp.example A" or
// "_fwgate._tcp.corp.example SRV", and keeps saying it through the cache.
struct ServerAddress {
  std::array<char, 256> host{};
  std::uint16_t port = protocol::control::kDefaultPort;
  std::array<char, 272> detectedBy{};
  bool empty() const { return host[0] == '\0'; }
};
// "gw", "gw:1745", "10.0.0.1", "[2001:db8::1]:1745", "2001:db8::1".
bool parseServer(std::string_view text, ServerAddress& out);
// "host:port" / "[v6]:port" into out (NUL-terminated, truncated to size).
void formatServer(const ServerAddress& server, char* out, std::size_t size);

struct Paths {
  std::array<char, 512> configDir{};    // FWGATE_CONFIG_DIR, else /etc/fwgate
  std::array<char, 512> userConfig{};   // FWGATE_USER_CONFIG, else ~/.config/fwgate/client.ini
  std::array<char, 512> systemCache{};  // FWGATE_CACHE, else /var/cache/fwgate/client.cache
  std::array<char, 512> userCache{};    // ~/.cache/fwgate/client.cache; empty with FWGATE_CACHE
  // What DNS detection reads (/etc/resolv.conf, /etc/nsswitch.conf); an empty resolvConf turns
  // detection off.
  std::array<char, 512> resolvConf{};
  std::array<char, 512> nsswitchConf{};
};
// From the environment (XDG_CONFIG_HOME, XDG_CACHE_HOME and HOME are honoured).
void defaultPaths(Paths& out);

// Cache file: "fwgate-cache 1\nfetched UNIX-SECONDS\nserver HOST:PORT\n" (and "detected RECORD\n"
// for a server DNS detection found), "\n", then the Config frame exactly as the gateway sent it.
// "key BASE64\n": the gateway's static key as pinned when the configuration was fetched over the
// encrypted channel (text: this library does no cryptography).
struct CacheHeader {
  std::int64_t fetchedAt = 0;
  ServerAddress server;
  std::array<char, 64> key{};
};
bool parseCache(std::span<const std::uint8_t> file, CacheHeader& header,
                protocol::Bytes& configBody);
// Writes atomically (a temporary file renamed over `path`), creating the directory; false and
// errno on failure.
bool writeCache(const char* path, const CacheHeader& header, protocol::Bytes configFrame);

// Where a problem was found, for `fwgate check`: file (or "gateway"), line, what.
using ProblemFn = void (*)(void* context, const char* where, std::uint32_t line,
                           std::string_view section, std::string_view key, const char* what);

struct ClientConfig {
  std::array<char, 64> app{};  // the program's binary name without path

  ServerAddress server;
  // FWGATE_SERVER, "application settings", "client.ini [Common]", "cache" or "DNS" (detection:
  // server.detectedBy names the record).
  const char* serverFrom = "nowhere";
  std::array<char, 256> detectProblem{};  // no server anywhere: why detection found none
  std::array<char, 256> user{};
  std::array<char, 256> password{};
  // The gateway's static key as pinned, base64 (docs/firewall-client.md): FWGATE_GATEWAY_KEY,
  // client.ini [Common] GatewayKey, or the cache of the same server; empty: none pinned yet.
  std::array<char, 64> gatewayKey{};
  const char* gatewayKeyFrom = "";
  // Kerberos on the encrypted control channel, done by the agent and fwgate check (the library
  // links no Kerberos): FWGATE_KERBEROS or [Common] Kerberos. Auto: when no password is set and
  // the credential cache has a ticket; Yes: always (a failure fails the connection); No: never.
  enum class Kerberos : std::uint8_t { Auto, Yes, No };
  Kerberos kerberos = Kerberos::Auto;
  // The gateway's service: FWGATE_KERBEROS_SERVICE or [Common] KerberosService, host-based
  // ("fwgate@gw.example.test"); empty: fwgate@ the gateway's host as the client names it.
  std::array<char, 256> kerberosService{};

  LocalAddressTable lat;
  LocalDomainTable ldt;
  protocol::settings::AppSettings settings;
  bool disabledByEnvironment = false;  // FWGATE_DISABLE=1

  // From the gateway's configuration (cached or fresh).
  bool haveGatewayConfig = false;
  std::int64_t fetchedAt = 0;
  std::uint32_t refreshSeconds = 6 * 3600;
  std::array<char, 64> network{};
  std::array<char, 256> gatewayName{};
  std::array<char, 256> webProxy{};  // the Web Proxy, "host:port" (WebProxy); empty: none
  std::array<char, 512> pacUrl{};    // its automatic configuration script (PacUrl); empty: none
  std::size_t gatewayRanges = 0;     // how many LAT ranges came from the gateway
  std::size_t localLatRanges = 0;
  std::size_t routeRanges = 0;
  std::array<char, 512> cacheRead{};  // the cache file used, if any

  bool disabled() const { return disabledByEnvironment || settings.disable; }
};

// Whether `name` is resolved on this host rather than by the gateway: localhost and *.local,
// every name with NameResolution = L, single labels unless NameResolution = R (the seed's
// default), and the local domain table. The preload library asks the hosts file too; the kernel
// client's programs read it themselves.
bool resolvedLocally(const ClientConfig& config, std::string_view name);

// FWGATE_KERBEROS and FWGATE_KERBEROS_SERVICE into `out`: what an agent follows (it reads no
// client.ini: the programs it serves may each have their own).
void kerberosFromEnvironment(ClientConfig& out);

// Assembles `out` for program `app`. When nothing above names a gateway, DNS detection looks for
// one (discovery.hpp; bounded by FWGATE_DETECT_TIMEOUT). `gatewayConfig` is a Config body (fresh
// from the gateway); when empty, the newest cache file is read. `scratch` holds one file at a time
// (64 KiB or more). Routes are read from /proc/net/route and /proc/net/ipv6_route unless
// `withRoutes` is false.
void assemble(ClientConfig& out, const Paths& paths, std::string_view app,
              protocol::Bytes gatewayConfig, std::span<char> scratch, bool withRoutes = true,
              ProblemFn problem = nullptr, void* context = nullptr);

// Applies a Config body's ranges, domains and facts (not its settings) onto `out`.
bool applyGatewayConfig(protocol::Bytes body, ClientConfig& out);

// Reads a whole file into buf; returns its size, or -1 (errno set), or -2 when larger than buf.
long readWholeFile(const char* path, char* buf, std::size_t size);

}  // namespace fwgate::client
