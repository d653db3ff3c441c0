// Finding the gateway without configuration (the Firewall Client's automatic detection): DNS
// records the administrator publishes in the host's DNS domain. For each domain of the resolver's
// search list, in order, an SRV record `_fwgate._tcp.DOMAIN` (host and port), else an address
// record (A or AAAA) `wspad.DOMAIN` (that host, port 1745); the first domain with either wins.
//
// The queries go straight to the name servers of resolv.conf over UDP, all at once, within one
// deadline (FWGATE_DETECT_TIMEOUT, 2000 ms by default): a name server that does not answer costs
// the program that long once, never the resolver's retries per name. libc only (no libresolv), no
// allocation, no exceptions, nothing static to construct: it runs inside the preload library.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "client/client_config.hpp"

namespace fwgate::client {

inline constexpr std::string_view kDetectHost = "wspad";            // A / AAAA: wspad.DOMAIN
inline constexpr std::string_view kDetectService = "_fwgate._tcp";  // SRV: _fwgate._tcp.DOMAIN
inline constexpr int kDefaultDetectTimeoutMs = 2000;
inline constexpr int kMaxDetectTimeoutMs = 30000;

namespace dns {
inline constexpr std::uint16_t kTypeA = 1;
inline constexpr std::uint16_t kTypeAaaa = 28;
inline constexpr std::uint16_t kTypeSrv = 33;
inline constexpr std::size_t kMaxMessage = 1232;
}  // namespace dns

// What detection reads of the host's resolver configuration.
struct ResolverConf {
  static constexpr std::size_t kMaxServers = 3;  // as the system resolver (MAXNS)
  static constexpr std::size_t kMaxDomains = 6;  // as the system resolver (MAXDNSRCH)
  std::array<sockaddr_storage, kMaxServers> servers{};
  std::array<socklen_t, kMaxServers> serverLengths{};
  std::size_t serverCount = 0;
  std::array<std::array<char, 254>, kMaxDomains> domains{};  // without the trailing dot
  std::size_t domainCount = 0;
  bool searchGiven = false;  // a search or domain line (the last one wins)
};

// resolv.conf's `nameserver` (IPv4, IPv6, IPv6%scope), `search` and `domain` lines, as the system
// resolver reads them: the last of `search` and `domain` wins; `#` and `;` start comments. Servers
// get port 53; none: 127.0.0.1, the resolver's default.
void parseResolvConf(std::string_view text, ResolverConf& out);
// Replaces the search list with `list`'s words (LOCALDOMAIN, or a search line's arguments).
void setSearchList(std::string_view list, ResolverConf& out);
// Whether the `hosts:` line of nsswitch.conf looks names up in DNS (`dns`, or systemd's
// `resolve`); true without a hosts line (the C library's default then uses DNS).
bool hostsUseDns(std::string_view nsswitch);

// A standard query (RD set, one question, class IN) for `name` (dotted, no trailing dot), into
// out; its size, or 0 when the name cannot be encoded (a label over 63 bytes, over 253 in all).
std::size_t encodeQuery(std::uint16_t id, std::string_view name, std::uint16_t type,
                        std::span<std::uint8_t> out);

enum class DnsOutcome : std::uint8_t {
  Pending,  // no usable reply yet
  Found,    // at least one record of the type asked for
  Absent,   // NXDOMAIN, or no record of that type
  Failed,   // the server could not answer (SERVFAIL, REFUSED...) or answered nonsense
};
struct DnsReply {
  DnsOutcome outcome = DnsOutcome::Pending;
  // SRV: the preferred record (lowest priority, then highest weight; a target of "." is the
  // service declared absent and skipped).
  std::array<char, 254> srvTarget{};
  std::uint16_t srvPort = 0;
  std::uint8_t rcode = 0;  // the reply's RCODE (Failed with 0: truncated or malformed)
};
// Reads `message` as the reply to the query (id, name, type): false when it is not that reply
// (another id, question or a query); true with `out` filled otherwise.
bool readReply(std::span<const std::uint8_t> message, std::uint16_t id, std::string_view name,
               std::uint16_t type, DnsReply& out);

struct Detected {
  ServerAddress server;             // with server.detectedBy set
  bool srv = false;                 // found by the SRV record
  std::array<char, 256> problem{};  // why nothing was found
};
// Asks the servers of `conf` for the records in each of its domains, within timeoutMs.
bool detectServer(const ResolverConf& conf, int timeoutMs, Detected& out);
// The same from the host's files (paths.resolvConf, paths.nsswitchConf), LOCALDOMAIN, the host
// name's domain when there is no search list, and FWGATE_DETECT_TIMEOUT (0: detection off).
// `scratch` holds one file (4 KiB or more). False with out.problem saying why not.
bool detectServer(const Paths& paths, std::span<char> scratch, Detected& out);
// The same, remembering what it found: with `reuse`, a server this process found in the last 30 s
// is given again without asking (the library and the commands assemble twice around a fetch, and
// the second time should not depend on DNS again).
bool detectServerRemembered(const Paths& paths, std::span<char> scratch, Detected& out, bool reuse);

}  // namespace fwgate::client
