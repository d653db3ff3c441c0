#include "protocol/client_settings.hpp"

#include <cstring>

namespace fwgate::protocol::settings {

namespace {

constexpr std::array<std::string_view, kKeyCount> kKeyNames = {
    "ServerName",
    "Disable",
    "NameResolution",
    "LocalBindTcpPorts",
    "LocalBindUdpPorts",
    "RemoteBindTcpPorts",
    "RemoteBindUdpPorts",
    "ServerBindTcpPorts",
    "DontRemoteOutboundTcpPorts",
    "DontRemoteOutboundUdpPorts",
    "PublishBindTcp",
};

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

bool parsePort(std::string_view s, std::uint16_t& out) {
  if (s.empty() || s.size() > 5) return false;
  std::uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (v > 65535) return false;
  out = static_cast<std::uint16_t>(v);
  return true;
}

bool isTrue(std::string_view v) {
  return v == "1" || equalsIgnoreCase(v, "true") || equalsIgnoreCase(v, "yes");
}

bool isFalse(std::string_view v) {
  return v == "0" || equalsIgnoreCase(v, "false") || equalsIgnoreCase(v, "no");
}

PortList* portListFor(AppSettings& s, Key key) {
  switch (key) {
    case Key::LocalBindTcpPorts:
      return &s.localBindTcp;
    case Key::LocalBindUdpPorts:
      return &s.localBindUdp;
    case Key::RemoteBindTcpPorts:
      return &s.remoteBindTcp;
    case Key::RemoteBindUdpPorts:
      return &s.remoteBindUdp;
    case Key::ServerBindTcpPorts:
      return &s.serverBindTcp;
    case Key::DontRemoteOutboundTcpPorts:
      return &s.dontRemoteTcp;
    case Key::DontRemoteOutboundUdpPorts:
      return &s.dontRemoteUdp;
    default:
      return nullptr;
  }
}

void store(AppSettings& s, Key key, std::string_view value) {
  switch (key) {
    case Key::ServerName: {
      const std::size_t n =
          value.size() < s.serverName.size() - 1 ? value.size() : s.serverName.size() - 1;
      std::memcpy(s.serverName.data(), value.data(), n);
      s.serverName[n] = '\0';
      break;
    }
    case Key::Disable:
      s.disable = isTrue(value);
      break;
    case Key::NameResolution:
      s.nameResolution = lower(value[0]) == 'r' ? 'R' : 'L';
      break;
    case Key::PublishBindTcp:
      s.publishBindTcp = isTrue(value);
      break;
    default:
      parsePortList(value, *portListFor(s, key));
      break;
  }
  s.set[static_cast<std::size_t>(key)] = true;
}

}  // namespace

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool PortList::contains(std::uint16_t port) const {
  for (std::size_t i = 0; i < count; ++i) {
    if (port >= ranges[i].first && port <= ranges[i].last) return true;
  }
  return false;
}

bool parsePortList(std::string_view text, PortList& out) {
  PortList list;
  text = trim(text);
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    const std::string_view item = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    if (item.empty()) return false;
    PortRange range;
    const std::size_t dash = item.find('-');
    if (dash == std::string_view::npos) {
      if (!parsePort(item, range.first)) return false;
      range.last = range.first;
    } else if (!parsePort(trim(item.substr(0, dash)), range.first) ||
               !parsePort(trim(item.substr(dash + 1)), range.last) || range.first > range.last) {
      return false;
    }
    if (list.count == list.ranges.size()) return false;
    list.ranges[list.count++] = range;
    if (comma == std::string_view::npos) break;
    if (trim(text).empty()) return false;  // a trailing comma
  }
  out = list;
  return true;
}

std::optional<Key> keyByName(std::string_view name) {
  for (std::size_t i = 0; i < kKeyNames.size(); ++i) {
    if (equalsIgnoreCase(name, kKeyNames[i])) return static_cast<Key>(i);
  }
  return std::nullopt;
}

std::string_view keyName(Key key) {
  return kKeyNames[static_cast<std::size_t>(key)];
}

bool allowedInWildcard(Key key) {
  return key == Key::DontRemoteOutboundTcpPorts || key == Key::DontRemoteOutboundUdpPorts;
}

const char* checkValue(Key key, std::string_view value) {
  switch (key) {
    case Key::ServerName:
      if (value.empty() || value.size() > 255) return "expected a host name or address, host:port";
      return nullptr;
    case Key::Disable:
      if (isTrue(value) || isFalse(value)) return nullptr;
      return "expected 1 or 0";
    case Key::NameResolution:
      if (value.size() == 1 && (lower(value[0]) == 'l' || lower(value[0]) == 'r')) return nullptr;
      return "expected L (local) or R (remote)";
    case Key::PublishBindTcp:
      if (isTrue(value) || isFalse(value)) return nullptr;
      return "expected 1 or 0";
    default: {
      PortList list;
      if (parsePortList(value, list)) return nullptr;
      return "expected ports and ranges, e.g. 21,80,1000-2000 (at most 64 items)";
    }
  }
}

bool nextIniLine(std::string_view text, std::size_t& pos, std::string_view& section,
                 std::uint32_t& lineNo, IniLine& out, bool& produced) {
  produced = false;
  if (pos >= text.size()) return false;
  const std::size_t end = text.find('\n', pos);
  std::string_view raw = text.substr(pos, end == std::string_view::npos ? text.npos : end - pos);
  pos = end == std::string_view::npos ? text.size() : end + 1;
  ++lineNo;
  const std::string_view line = trim(raw);
  if (line.empty() || line.front() == ';' || line.front() == '#') return true;
  out = IniLine{};
  out.line = lineNo;
  produced = true;
  if (line.front() == '[') {
    if (line.back() != ']' || line.size() < 3) {
      out.kind = IniLine::Kind::Malformed;
      out.section = section;
      return true;
    }
    section = trim(line.substr(1, line.size() - 2));
    out.kind = IniLine::Kind::Section;
    out.section = section;
    return true;
  }
  const std::size_t eq = line.find('=');
  out.section = section;
  if (eq == std::string_view::npos || trim(line.substr(0, eq)).empty()) {
    out.kind = IniLine::Kind::Malformed;
    out.value = line;
    return true;
  }
  out.kind = IniLine::Kind::KeyValue;
  out.key = trim(line.substr(0, eq));
  std::string_view value = trim(line.substr(eq + 1));
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
    value = value.substr(1, value.size() - 2);
  }
  out.value = value;
  return true;
}

void applySettings(std::string_view text, std::string_view app, AppSettings& out,
                   ProblemSink report, void* context) {
  auto problem = [&](const IniLine& line, const char* what) {
    if (report != nullptr)
      report(context, SettingsProblem{line.line, line.section, line.key, what});
  };
  // Two passes: `*` first, then the program's own section, whatever their order in the text.
  for (int pass = 0; pass < 2; ++pass) {
    scanIni(text, [&](const IniLine& line) {
      const bool wildcard = line.section == "*";
      const bool common = equalsIgnoreCase(line.section, kCommonSection);
      if (line.kind == IniLine::Kind::Malformed) {
        if (pass == 0) problem(line, "not a [section] or key=value line");
        return;
      }
      if (line.kind != IniLine::Kind::KeyValue) return;
      if (line.section.empty()) {
        if (pass == 0) problem(line, "key outside any section");
        return;
      }
      if (common) return;  // the client's own settings: read by the library, not per program
      const auto key = keyByName(line.key);
      const char* bad = nullptr;
      if (!key) {
        bad = "unknown key";
      } else if (wildcard && !allowedInWildcard(*key)) {
        bad =
            "a [*] section may hold only DontRemoteOutboundTcpPorts and DontRemoteOutboundUdpPorts";
      } else {
        bad = checkValue(*key, line.value);
      }
      if (bad != nullptr) {
        if (pass == 0) problem(line, bad);
        return;
      }
      const bool applies =
          pass == 0 ? wildcard : (!wildcard && equalsIgnoreCase(line.section, app));
      if (applies) store(out, *key, line.value);
    });
  }
}

}  // namespace fwgate::protocol::settings
