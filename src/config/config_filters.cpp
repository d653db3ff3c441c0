// [packet_filters]: the seed's custom static packet filters. Each [[packet_filters.filter]] is
// checked on its own (keys, forms, ranges) and against the protocol it names (ports only for tcp
// and udp, ICMP types only for icmp and icmpv6, one address family) and the local address table.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <string>

#include "config/filters_parser.hpp"

namespace fwgate::config {

std::string_view toString(PacketFilter::Direction direction) {
  switch (direction) {
    case PacketFilter::Direction::Inbound:
      return "inbound";
    case PacketFilter::Direction::Outbound:
      return "outbound";
    case PacketFilter::Direction::Both:
      return "both";
  }
  return "?";
}

namespace {

struct NamedProtocol {
  std::string_view name;
  std::uint8_t number;
};

constexpr std::array<NamedProtocol, 4> kNamedProtocols = {{
    {"tcp", PacketFilter::kTcp},
    {"udp", PacketFilter::kUdp},
    {"icmp", PacketFilter::kIcmp},
    {"icmpv6", PacketFilter::kIcmpv6},
}};

}  // namespace

std::string ipProtocolName(std::uint8_t protocol) {
  for (const NamedProtocol& p : kNamedProtocols) {
    if (p.number == protocol) return std::string(p.name);
  }
  return std::to_string(protocol);
}

namespace detail {
namespace {

using policy::IpAddress;
using policy::IpRange;
using policy::PortRange;
using Direction = PacketFilter::Direction;
using LocalHost = PacketFilter::LocalHost;

constexpr std::string_view kProtocolChoices =
    "\"tcp\", \"udp\", \"icmp\", \"icmpv6\" or an IP protocol number 0..255";

std::string_view familyName(bool v6) {
  return v6 ? "IPv6" : "IPv4";
}

bool isDigits(std::string_view s) {
  return !s.empty() && s.size() <= 5 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Why `text` is not a port range PortRange::parse accepts, for the message.
std::string portProblem(std::string_view text) {
  const std::size_t dash = text.find('-');
  const std::string_view a = text.substr(0, dash);
  const std::string_view b = dash == std::string_view::npos ? a : text.substr(dash + 1);
  if (isDigits(a) && isDigits(b)) {
    const int first = std::stoi(std::string(a));
    const int last = std::stoi(std::string(b));
    if (first > 65535 || last > 65535) {
      return fmt::format("{} is out of range (ports are 1..65535)", quote(text));
    }
    if (first == 0 || last == 0) {
      return fmt::format("{}: port 0 is not a port (1..65535; \"any\" for every port)",
                         quote(text));
    }
    if (first > last) {
      return fmt::format("{}: empty range, first > last (write \"{}-{}\")", quote(text), last,
                         first);
    }
  }
  return fmt::format(
      "{} is not a port, a range \"first-last\" or \"any\" (e.g. 4000, \"4000\", \"1024-5000\")",
      quote(text));
}

// Parses one filter at a time; the Reader collects every problem with its key path.
class FiltersParser {
 public:
  FiltersParser(Reader& in, const std::vector<policy::Network>& networks) : in_(in) {
    for (const policy::Network& n : networks) {
      if (n.firewallClients && !n.any && n.name != "loopback" && !n.ranges.empty()) {
        localAddressTable_.push_back(&n);
      }
    }
  }

  PacketFilterSettings parse(const toml::table& t) {
    in_.rejectUnknownKeys(t, "packet_filters",
                          {"enabled", "interfaces", "outbound", "dynamic_timeout", "filter"});
    PacketFilterSettings out;
    in_.boolean(t, "enabled", "packet_filters", out.enabled);
    interfaces(t, out);
    outbound(t, out.outboundDrop);
    dynamicTimeout(t, out.dynamicTimeout);
    in_.tables(t, "filter", "packet_filters",
               [&](const toml::table& f, const std::string& path, std::size_t index) {
                 const std::size_t before = in_.errorCount();
                 PacketFilter parsed = filter(f, path, index);
                 if (in_.errorCount() == before) out.filters.push_back(std::move(parsed));
               });
    return out;
  }

 private:
  // The external interfaces: Linux interface names nftables can quote, each once; at least one
  // when the filters are enabled.
  void interfaces(const toml::table& t, PacketFilterSettings& out) {
    in_.strings(t, "interfaces", "packet_filters",
                [&](const std::string& name, const std::string& path, const toml::node& n) {
                  if (const std::string problem = interfaceProblem(name); !problem.empty()) {
                    in_.error(path, n, problem);
                  } else if (std::find(out.interfaces.begin(), out.interfaces.end(), name) !=
                             out.interfaces.end()) {
                    in_.error(path, n, fmt::format("{} is listed twice", quote(name)));
                  } else {
                    out.interfaces.push_back(name);
                  }
                });
    if (out.enabled && out.interfaces.empty() && !t.contains("interfaces")) {
      in_.error("packet_filters.interfaces", t.source().begin.line,
                "missing: with enabled = true, name the external interfaces, e.g. interfaces = "
                "[\"eth1\"] (only they are filtered)");
    } else if (const toml::node* n = t.get("interfaces");
               out.enabled && n != nullptr && n->is_array() && n->as_array()->empty()) {
      in_.error("packet_filters.interfaces", *n,
                "empty: with enabled = true, name at least one external interface");
    }
  }

  static std::string interfaceProblem(std::string_view name) {
    if (name.empty() || name.size() > 15) {
      return fmt::format("{} is not an interface name (1..15 characters)", quote(name));
    }
    if (name == "." || name == "..") return fmt::format("{} is not an interface name", quote(name));
    for (std::size_t i = 0; i < name.size(); ++i) {
      const char c = name[i];
      const bool wildcard = c == '*' && i + 1 == name.size();
      if (c <= ' ' || c >= 0x7f || c == '/' || c == ':' || c == '"' || c == '\\' ||
          (c == '*' && !wildcard)) {
        return fmt::format(
            "{} is not an interface name (no whitespace, '/', ':', quotes or backslashes; '*' "
            "only at the end, as a wildcard)",
            quote(name));
      }
    }
    return {};
  }

  void outbound(const toml::table& t, bool& drop) {
    std::string text;
    const toml::node* n = in_.string(t, "outbound", "packet_filters", text);
    if (n == nullptr) return;
    static constexpr std::array<std::string_view, 2> kChoices = {"accept", "drop"};
    if (text == "accept" || text == "drop") {
      drop = text == "drop";
      return;
    }
    in_.error("packet_filters.outbound", *n,
              fmt::format("expected \"accept\" (not restricted) or \"drop\" (only what is "
                          "admitted), got {}{}",
                          quote(text), suggestion(text, kChoices)));
  }

  void dynamicTimeout(const toml::table& t, Duration& out) {
    Duration value = out;
    const std::size_t before = in_.errorCount();
    in_.duration(t, "dynamic_timeout", "packet_filters", value);
    if (in_.errorCount() != before) return;
    if (value < std::chrono::seconds(10) || value > std::chrono::hours(24)) {
      in_.error("packet_filters.dynamic_timeout", *t.get("dynamic_timeout"),
                "must be 10s..24h (an open port's element is renewed before it runs out)");
      return;
    }
    out = value;
  }

  PacketFilter filter(const toml::table& t, const std::string& path, std::size_t index) {
    in_.rejectUnknownKeys(t, path,
                          {"name", "protocol", "direction", "local_port", "remote_port",
                           "local_host", "internal_host", "remote_host", "icmp_type", "icmp_code"});
    PacketFilter f;
    f.line = t.source().begin.line;
    name(t, path, index, f.name);
    const std::optional<std::uint8_t> protocol = this->protocol(t, path);
    if (protocol) f.protocol = *protocol;
    direction(t, path, f.direction);
    const bool localPort = port(t, "local_port", path, f.localPort);
    const bool remotePort = port(t, "remote_port", path, f.remotePort);
    localHost(t, path, f);
    remoteHost(t, path, f.remoteHost);
    std::int64_t value = 0;
    if (in_.integer(t, "icmp_type", path, 0, 255, value)) {
      f.icmpType = static_cast<std::uint8_t>(value);
    }
    if (in_.integer(t, "icmp_code", path, 0, 255, value)) {
      f.icmpCode = static_cast<std::uint8_t>(value);
    }

    // What the keys mean together.
    if (const toml::node* code = t.get("icmp_code"); code != nullptr && !t.contains("icmp_type")) {
      in_.error(keyPath(path, "icmp_code"), *code,
                "only with icmp_type (a code subdivides one ICMP type)");
    }
    families(t, path, f, protocol.has_value());
    if (!protocol) return f;
    const std::string protocolName = quote(ipProtocolName(*protocol));
    for (const auto& [key, given] :
         {std::pair{"local_port", localPort}, std::pair{"remote_port", remotePort}}) {
      if (given && !f.carriesPorts()) {
        in_.error(
            keyPath(path, key), *t.get(key),
            fmt::format("ports apply only to \"tcp\" and \"udp\" (protocol is {})", protocolName));
      }
    }
    if (const toml::node* type = t.get("icmp_type"); type != nullptr && !f.isIcmp()) {
      in_.error(
          keyPath(path, "icmp_type"), *type,
          fmt::format("only with protocol \"icmp\" or \"icmpv6\" (protocol is {})", protocolName));
    }
    return f;
  }

  void name(const toml::table& t, const std::string& path, std::size_t index, std::string& out) {
    out = fmt::format("filter-{}", index + 1);
    std::string namePath = path;
    std::uint32_t line = t.source().begin.line;
    if (const auto* n = in_.string(t, "name", path, out)) {
      namePath = keyPath(path, "name");
      line = n->source().begin.line;
      if (!isValidSetName(out)) {
        in_.error(namePath, line,
                  fmt::format("invalid filter name {} (letters, digits, '_', '.', '-'; at most "
                              "128)",
                              quote(out)));
        return;
      }
      if (out == "invalid" || out == "dynamic" || out == "outbound") {
        in_.error(namePath, line,
                  fmt::format("filter name {} is reserved: `fwgate filters stats` shows the "
                              "table's own counter under it",
                              quote(out)));
        return;
      }
    }
    if (const auto [it, inserted] = names_.emplace(out, path); !inserted) {
      in_.error(namePath, line,
                fmt::format("duplicate filter name {} (also {})", quote(out), it->second));
    }
  }

  std::optional<std::uint8_t> protocol(const toml::table& t, const std::string& path) {
    const std::string p = keyPath(path, "protocol");
    const toml::node* n = t.get("protocol");
    if (n == nullptr) {
      in_.error(p, t.source().begin.line, fmt::format("missing: protocol = {}", kProtocolChoices));
      return std::nullopt;
    }
    if (const auto* number = n->as_integer()) {
      if (number->get() >= 0 && number->get() <= 255) {
        return static_cast<std::uint8_t>(number->get());
      }
      in_.error(p, *n,
                fmt::format("protocol number {} is out of range (must be 0..255)", number->get()));
      return std::nullopt;
    }
    const auto* text = n->as_string();
    if (text == nullptr) {
      in_.error(p, *n, fmt::format("expected {}, got {}", kProtocolChoices, typeName(*n)));
      return std::nullopt;
    }
    const std::string_view s = text->get();
    std::vector<std::string_view> names;
    std::string hint;
    for (const NamedProtocol& named : kNamedProtocols) {
      if (named.name == s) return named.number;
      names.push_back(named.name);
      const bool sameIgnoringCase =
          s.size() == named.name.size() &&
          std::equal(s.begin(), s.end(), named.name.begin(),
                     [](char x, char y) { return lowerAscii(x) == lowerAscii(y); });
      if (sameIgnoringCase) hint = fmt::format(" (did you mean {}?)", quote(named.name));
    }
    if (isDigits(s)) {
      in_.error(p, *n, fmt::format("write a protocol number without quotes: protocol = {}", s));
      return std::nullopt;
    }
    if (s == "icmp6" || s == "ipv6-icmp") hint = " (did you mean \"icmpv6\"?)";
    if (hint.empty()) hint = suggestion(s, names);
    in_.error(p, *n,
              fmt::format("unknown protocol {} (expected {}){}", quote(s), kProtocolChoices, hint));
    return std::nullopt;
  }

  void direction(const toml::table& t, const std::string& path, Direction& out) {
    const toml::node* n = t.get("direction");
    if (n == nullptr) {
      in_.error(keyPath(path, "direction"), t.source().begin.line,
                "missing: direction = \"inbound\", \"outbound\" or \"both\"");
      return;
    }
    std::string text;
    if (in_.string(t, "direction", path, text) == nullptr) return;
    static constexpr std::array<std::string_view, 3> kDirections = {"inbound", "outbound", "both"};
    for (const Direction d : {Direction::Inbound, Direction::Outbound, Direction::Both}) {
      if (toString(d) == text) {
        out = d;
        return;
      }
    }
    in_.error(keyPath(path, "direction"), *n,
              fmt::format("expected \"inbound\", \"outbound\" or \"both\", got {}{}", quote(text),
                          suggestion(text, kDirections)));
  }

  // local_port or remote_port into `out` (nullopt for "any"); true when it names ports.
  bool port(const toml::table& t, std::string_view key, const std::string& path,
            std::optional<PortRange>& out) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return false;
    const std::string p = keyPath(path, key);
    if (const auto* number = n->as_integer()) {
      if (number->get() < 1 || number->get() > 65535) {
        in_.error(p, *n,
                  fmt::format("port {} is out of range (must be 1..65535; \"any\" for every port)",
                              number->get()));
        return false;
      }
      const auto port = static_cast<std::uint16_t>(number->get());
      out = PortRange{port, port};
      return true;
    }
    const auto* text = n->as_string();
    if (text == nullptr) {
      in_.error(p, *n,
                fmt::format("expected a port number, a \"first-last\" string or \"any\", got {}",
                            typeName(*n)));
      return false;
    }
    if (text->get() == "any") return false;
    const auto range = PortRange::parse(text->get());
    if (!range) {
      in_.error(p, *n, portProblem(text->get()));
      return false;
    }
    out = *range;
    return true;
  }

  // local_host and internal_host: the gateway's default external addresses, one address of the
  // gateway, or one internal computer.
  void localHost(const toml::table& t, const std::string& path, PacketFilter& f) {
    std::string text;
    const toml::node* local = in_.string(t, "local_host", path, text);
    const bool specific = local != nullptr && text != "external";
    if (specific) {
      const std::string p = keyPath(path, "local_host");
      const auto address = IpAddress::parse(text);
      if (!address) {
        in_.error(p, *local,
                  fmt::format("{} is not \"external\" or one address of the gateway (an IP "
                              "address literal, e.g. \"203.0.113.1\", \"2001:db8::1\")",
                              quote(text)));
      } else if (address->isUnspecified()) {
        in_.error(p, *local,
                  fmt::format("{} is not one address; \"external\" stands for the gateway's "
                              "default external addresses",
                              quote(text)));
      } else if (address->isLoopback()) {
        in_.error(
            p, *local,
            fmt::format("{} is a loopback address, not on the external interface", quote(text)));
      } else if (const policy::Network* net = inLocalAddressTable(*address)) {
        in_.error(p, *local,
                  fmt::format("{} is in the local address table ({}): an internal address; a "
                              "computer behind the gateway is named with internal_host",
                              quote(text), keyPath("networks", net->name)));
      } else {
        f.localHost = LocalHost::GatewayAddress;
        f.localAddress = *address;
      }
    }
    std::string internal;
    const toml::node* n = in_.string(t, "internal_host", path, internal);
    if (n == nullptr) return;
    const std::string p = keyPath(path, "internal_host");
    if (specific) {
      in_.error(p, *n,
                fmt::format("cannot go with local_host = {}: the local host is the gateway or "
                            "an internal computer, not both",
                            quote(text)));
      return;
    }
    const auto address = IpAddress::parse(internal);
    if (!address) {
      in_.error(p, *n,
                fmt::format("{} is not an IP address literal (one internal computer, e.g. "
                            "\"10.1.1.5\")",
                            quote(internal)));
    } else if (address->isUnspecified() || address->isLoopback()) {
      in_.error(
          p, *n,
          fmt::format("{} is not the address of a computer behind the gateway", quote(internal)));
    } else if (!localAddressTable_.empty() && inLocalAddressTable(*address) == nullptr) {
      std::string names;
      for (const policy::Network* net : localAddressTable_) {
        names += fmt::format("{}{}", names.empty() ? "" : ", ", net->name);
      }
      in_.error(p, *n,
                fmt::format("{} is not in the local address table (the ranges of the networks "
                            "with firewall_clients = true: {})",
                            quote(internal), names));
    } else {
      f.localHost = LocalHost::InternalComputer;
      f.localAddress = *address;
    }
  }

  void remoteHost(const toml::table& t, const std::string& path, std::optional<IpRange>& out) {
    std::string text;
    const toml::node* n = in_.string(t, "remote_host", path, text);
    if (n == nullptr || text == "any") return;
    if (const auto range = IpRange::parse(text)) {
      out = *range;
      return;
    }
    in_.error(keyPath(path, "remote_host"), *n,
              fmt::format("{} is not \"any\", an address, a CIDR block (\"203.0.113.0/24\") or an "
                          "address range \"first-last\" (one family, first <= last)",
                          quote(text)));
  }

  // One address family per filter: the local address's, the remote hosts', and (when the
  // protocol is known) ICMP's version.
  void families(const toml::table& t, const std::string& path, const PacketFilter& f,
                bool protocolKnown) {
    const char* localKey =
        f.localHost == LocalHost::InternalComputer ? "internal_host" : "local_host";
    if (protocolKnown && f.isIcmp()) {
      const bool v6 = f.protocol == PacketFilter::kIcmpv6;
      const std::string mismatch =
          fmt::format("protocol {} is ICMP for {} (use {})", quote(ipProtocolName(f.protocol)),
                      familyName(v6), v6 ? "\"icmp\"" : "\"icmpv6\"");
      if (f.localAddress && f.localAddress->v6 != v6) {
        in_.error(keyPath(path, localKey), *t.get(localKey),
                  fmt::format("an {} address, but {}", familyName(!v6), mismatch));
      } else if (!f.localAddress && f.remoteHost && f.remoteHost->first.v6 != v6) {
        in_.error(keyPath(path, "remote_host"), *t.get("remote_host"),
                  fmt::format("{} addresses, but {}", familyName(!v6), mismatch));
      }
    }
    if (f.localAddress && f.remoteHost && f.remoteHost->first.v6 != f.localAddress->v6) {
      in_.error(keyPath(path, "remote_host"), *t.get("remote_host"),
                fmt::format("{} addresses, but {} {} is an {} address: a filter's hosts are of "
                            "one family",
                            familyName(f.remoteHost->first.v6), localKey,
                            f.localAddress->toString(), familyName(f.localAddress->v6)));
    }
  }

  const policy::Network* inLocalAddressTable(const IpAddress& a) const {
    for (const policy::Network* net : localAddressTable_) {
      if (std::any_of(net->ranges.begin(), net->ranges.end(),
                      [&](const IpRange& r) { return r.contains(a); })) {
        return net;
      }
    }
    return nullptr;
  }

  Reader& in_;
  std::vector<const policy::Network*> localAddressTable_;  // firewall_clients networks
  std::map<std::string, std::string> names_;               // name -> path of the filter
};

}  // namespace

PacketFilterSettings parsePacketFilters(Reader& in, const toml::table& t,
                                        const std::vector<policy::Network>& networks) {
  return FiltersParser(in, networks).parse(t);
}

}  // namespace detail
}  // namespace fwgate::config
