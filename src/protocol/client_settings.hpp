// Firewall client settings (the seed's application settings sections): INI text whose sections are
// named after a program's binary name without path, or `*`, with the Firewall Client's key names,
// case-insensitive. The gateway sends it in Config; /etc/fwgate/client.ini and the per-user
// ~/.config/fwgate/client.ini use the same format and override it. Allocation-free: the preload
// library resolves its program's settings with this inside the host process.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace fwgate::protocol::settings {

// "21, 80, 1000-2000": ports and inclusive ranges; "" is an empty list.
struct PortRange {
  std::uint16_t first = 0;
  std::uint16_t last = 0;
};
inline constexpr std::size_t kMaxPortRanges = 64;
struct PortList {
  std::array<PortRange, kMaxPortRanges> ranges{};
  std::size_t count = 0;
  bool contains(std::uint16_t port) const;
};
bool parsePortList(std::string_view text, PortList& out);

enum class Key : std::uint8_t {
  ServerName,
  Disable,
  NameResolution,
  LocalBindTcpPorts,
  LocalBindUdpPorts,
  RemoteBindTcpPorts,
  RemoteBindUdpPorts,
  ServerBindTcpPorts,
  DontRemoteOutboundTcpPorts,
  DontRemoteOutboundUdpPorts,
  // 1: a TCP bind to the wildcard address and port 0 in a program with no live remoted primary
  // connection is published on the gateway (BindMode::Publish) instead of staying local.
  PublishBindTcp,
};
inline constexpr std::size_t kKeyCount = 11;
std::optional<Key> keyByName(std::string_view name);  // case-insensitive
std::string_view keyName(Key key);                    // the seed's spelling
// The seed's rule: a `*` section may hold only DontRemoteOutboundTcpPorts/UdpPorts.
bool allowedInWildcard(Key key);
// Null when `value` suits `key`, else what is wrong with it.
const char* checkValue(Key key, std::string_view value);

// The section that carries the client's own settings (which gateway, which credentials); it is
// not an application name. Keys: ServerName (host or host:port), User, Password.
inline constexpr std::string_view kCommonSection = "Common";

bool equalsIgnoreCase(std::string_view a, std::string_view b);

// One INI line of interest. Comments (';' or '#') and blank lines produce nothing.
struct IniLine {
  enum class Kind { Section, KeyValue, Malformed } kind = Kind::Malformed;
  std::string_view section;  // the section the line is in (for Section: the new one)
  std::string_view key;
  std::string_view value;  // trimmed; surrounding double quotes removed
  std::uint32_t line = 0;  // 1-based
};
// Calls `visit(const IniLine&)` for every section header, key=value and malformed line.
template <typename Visit>
void scanIni(std::string_view text, Visit&& visit);
// One step of scanIni: the line at `text[pos..]`; advances pos. False at the end.
bool nextIniLine(std::string_view text, std::size_t& pos, std::string_view& section,
                 std::uint32_t& lineNo, IniLine& out, bool& produced);

// The merged settings for one program.
struct AppSettings {
  std::array<bool, kKeyCount> set{};
  std::array<char, 256> serverName{};  // NUL-terminated
  bool disable = false;
  char nameResolution = 0;  // 'L', 'R', or 0 (the default: dotted names remote)
  PortList localBindTcp, localBindUdp, remoteBindTcp, remoteBindUdp, serverBindTcp;
  PortList dontRemoteTcp, dontRemoteUdp;
  bool publishBindTcp = false;  // PublishBindTcp
  bool has(Key k) const { return set[static_cast<std::size_t>(k)]; }
};

// Problems found while applying a text, for `fwgate check`.
struct SettingsProblem {
  std::uint32_t line = 0;
  std::string_view section, key;
  const char* what = "";
};

// Applies the `*` section, then the section named `app`, of `text` onto `out`: call it for the
// gateway's settings, then /etc/fwgate/client.ini, then the user's file, so each level overrides
// the one before and, within a level, the program's own section overrides `*`. Keys a section may
// not hold, unknown keys and bad values are skipped and reported through `report` (may be null),
// which is called for every section in the text, not only the two applied.
using ProblemSink = void (*)(void* context, const SettingsProblem& problem);
void applySettings(std::string_view text, std::string_view app, AppSettings& out,
                   ProblemSink report = nullptr, void* context = nullptr);

// ---------------------------------------------------------------------------------------------

template <typename Visit>
void scanIni(std::string_view text, Visit&& visit) {
  std::size_t pos = 0;
  std::string_view section;
  std::uint32_t lineNo = 0;
  IniLine line;
  bool produced = false;
  while (nextIniLine(text, pos, section, lineNo, line, produced)) {
    if (produced) visit(static_cast<const IniLine&>(line));
  }
}

}  // namespace fwgate::protocol::settings
