// Protocol definitions: the [bind] ports and peers they depend on, the [protocols.NAME] tables
// with their secondary connections, the overlaps between them, and the names rules give in their
// `protocols` key.
#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "config/protocols_parser.hpp"

namespace fwgate::config::detail {
namespace {

using policy::PortRange;

// Protocol definition names compare case-insensitively when one would replace another.
bool sameName(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return lowerAscii(x) == lowerAscii(y);
         });
}

std::string directionChoices(policy::Transport transport) {
  return transport == policy::Transport::Tcp
             ? "\"outbound\" or \"inbound\""
             : "\"send\", \"receive\", \"send-receive\" or \"receive-send\"";
}

}  // namespace

void ProtocolsParser::bindSettings(const toml::table& t, BindSettings& out) {
  std::string dynamic;
  if (const auto* n = in_.string(t, "dynamic_ports", "bind", dynamic)) {
    if (const auto range = PortRange::parse(dynamic)) {
      out.dynamicPorts = *range;
    } else {
      in_.error("bind.dynamic_ports", *n,
                fmt::format("{} is not a port range \"first-last\" (ports 1..65535, first <= "
                            "last; e.g. \"1024-5000\")",
                            quote(dynamic)));
    }
  }
  std::string peers;
  if (const auto* n = in_.string(t, "secondary_peers", "bind", peers)) {
    if (peers == "primary") {
      out.secondaryPeers = BindSettings::SecondaryPeers::Primary;
    } else if (peers == "rules") {
      out.secondaryPeers = BindSettings::SecondaryPeers::Rules;
    } else {
      in_.error("bind.secondary_peers", *n,
                fmt::format("expected \"primary\" or \"rules\", got {}", quote(peers)));
    }
  }
}

std::vector<policy::ProtocolDefinition> ProtocolsParser::parse(const toml::table& t) {
  // toml++ keeps a table's keys sorted; the order of precedence is the file's.
  std::vector<std::pair<const toml::key*, const toml::node*>> entries;
  for (const auto& [key, node] : t) entries.emplace_back(&key, &node);
  std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    const auto& x = a.first->source().begin;
    const auto& y = b.first->source().begin;
    return x.line != y.line ? x.line < y.line : x.column < y.column;
  });
  std::vector<policy::ProtocolDefinition> own;
  for (const auto& [key, node] : entries) {
    const std::string name(key->str());
    const std::string path = keyPath("protocols", name);
    const std::uint32_t line = key->source().begin.line;
    if (!policy::isValidProtocolName(name)) {
      in_.error(path, line, "invalid protocol name (letters, digits, '_', '.', '-')");
      continue;
    }
    if (const auto it = std::find_if(names_.begin(), names_.end(),
                                     [&](const std::string& n) { return sameName(n, name); });
        it != names_.end()) {
      in_.error(path, line,
                fmt::format("same name as {} (protocol names are compared case-insensitively)",
                            keyPath("protocols", *it)));
      continue;
    }
    names_.push_back(name);
    const auto* table = node->as_table();
    if (table == nullptr) {
      in_.error(path, *node, fmt::format("expected a table, got {}", typeName(*node)));
      continue;
    }
    in_.rejectUnknownKeys(*table, path, {"port", "transport", "direction", "secondary"});
    policy::ProtocolDefinition definition;
    definition.name = name;
    bool ok = connection(*table, path, "port", definition.primary);
    if (const toml::node* list = table->get("secondary")) {
      ok = secondaries(*list, keyPath(path, "secondary"), definition.secondary) && ok;
    }
    if (!ok) continue;
    own.push_back(std::move(definition));
    lines_.push_back(line);
  }
  for (policy::ProtocolDefinition& builtin : policy::builtinProtocols()) {
    const bool overridden = std::any_of(names_.begin(), names_.end(), [&](const std::string& n) {
      return sameName(n, builtin.name);
    });
    if (!overridden) own.push_back(std::move(builtin));
  }
  return own;
}

bool ProtocolsParser::secondaries(const toml::node& list, const std::string& path,
                                  std::vector<policy::ConnectionSpec>& out) {
  const auto* array = list.as_array();
  if (array == nullptr) {
    in_.error(path, list,
              fmt::format("expected an array of tables ({{ ports = ..., transport = ..., "
                          "direction = ... }}), got {}",
                          typeName(list)));
    return false;
  }
  bool ok = true;
  for (std::size_t i = 0; i < array->size(); ++i) {
    const toml::node& element = (*array)[i];
    const std::string elementPath = indexPath(path, i);
    const auto* table = element.as_table();
    if (table == nullptr) {
      in_.error(elementPath, element, fmt::format("expected a table, got {}", typeName(element)));
      ok = false;
      continue;
    }
    in_.rejectUnknownKeys(*table, elementPath, {"ports", "transport", "direction"});
    policy::ConnectionSpec spec;
    if (connection(*table, elementPath, "ports", spec)) {
      out.push_back(spec);
    } else {
      ok = false;
    }
  }
  return ok;
}

// One connection of a definition: `portKey` ("port" or "ports"), transport and direction,
// all required. False (reported) when any is missing or invalid.
bool ProtocolsParser::connection(const toml::table& t, const std::string& path,
                                 std::string_view portKey, policy::ConnectionSpec& out) {
  const std::uint32_t line = t.source().begin.line;
  bool ok = true;
  if (const toml::node* n = t.get(portKey)) {
    ok = definitionPorts(*n, keyPath(path, portKey), out.ports);
  } else {
    in_.error(keyPath(path, portKey), line,
              "missing: a port, a \"first-last\" range, or 0 for any port of the dynamic "
              "range");
    ok = false;
  }
  std::optional<policy::Transport> transport;
  std::string text;
  if (t.get("transport") == nullptr) {
    in_.error(keyPath(path, "transport"), line, "missing: transport = \"tcp\" or \"udp\"");
  } else if (const auto* n = in_.string(t, "transport", path, text)) {
    transport = policy::parseTransport(text);
    if (!transport) {
      in_.error(keyPath(path, "transport"), *n,
                fmt::format("unknown transport {} (expected \"tcp\" or \"udp\")", quote(text)));
    }
  }
  if (!transport) ok = false;
  if (t.get("direction") == nullptr) {
    in_.error(keyPath(path, "direction"), line,
              fmt::format("missing: direction ({})",
                          transport ? directionChoices(*transport)
                                    : "tcp: \"outbound\" or \"inbound\"; udp: \"send\", "
                                      "\"receive\", \"send-receive\" or \"receive-send\""));
    return false;
  }
  const auto* n = in_.string(t, "direction", path, text);
  if (n == nullptr) return false;
  if (!transport) return false;  // the transport's error says it; a direction needs one
  const auto direction = policy::parseDirection(*transport, text);
  if (!direction) {
    in_.error(keyPath(path, "direction"), *n,
              fmt::format("direction {} does not fit transport {} (expected {})", quote(text),
                          policy::toString(*transport), directionChoices(*transport)));
    return false;
  }
  out.transport = *transport;
  out.direction = *direction;
  return ok;
}

// A definition's ports: an integer 0..65535, or "N" / "first-last"; 0 alone is the dynamic
// range, 0 in a range is an empty range.
bool ProtocolsParser::definitionPorts(const toml::node& n, const std::string& path,
                                      PortRange& out) {
  if (const auto* number = n.as_integer()) {
    if (number->get() < 0 || number->get() > 65535) {
      in_.error(path, n, fmt::format("port {} is out of range (must be 0..65535)", number->get()));
      return false;
    }
    const auto port = static_cast<std::uint16_t>(number->get());
    out = PortRange{port, port};
    return true;
  }
  const auto* text = n.as_string();
  if (text == nullptr) {
    in_.error(
        path, n,
        fmt::format("expected a port number or a \"first-last\" string, got {}", typeName(n)));
    return false;
  }
  const std::string_view s = text->get();
  const auto number = [](std::string_view digits) -> std::optional<std::uint16_t> {
    if (digits.empty() || digits.size() > 5 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return std::nullopt;
    }
    const int v = std::stoi(std::string(digits));
    if (v > 65535) return std::nullopt;
    return static_cast<std::uint16_t>(v);
  };
  const auto dash = s.find('-');
  const auto first = number(s.substr(0, dash));
  const auto last = dash == std::string_view::npos ? first : number(s.substr(dash + 1));
  if (!first || !last) {
    in_.error(path, n,
              fmt::format("{} is not a port or port range (e.g. \"21\", \"1024-65535\", or "
                          "\"0\" for any port of the dynamic range)",
                          quote(s)));
    return false;
  }
  if (dash != std::string_view::npos && (*first == 0 || *last == 0 || *first > *last)) {
    in_.error(path, n,
              fmt::format("{}: empty range (ports are 1..65535 and first <= last; 0 alone means "
                          "any port of the dynamic range)",
                          quote(s)));
    return false;
  }
  out = PortRange{*first, *last};
  return true;
}

void ProtocolsParser::checkOverlaps(const std::vector<policy::ProtocolDefinition>& all,
                                    PortRange dynamicPorts) {
  for (std::size_t b = 0; b < lines_.size(); ++b) {
    for (std::size_t a = 0; a < b; ++a) {
      if (!policy::overlaps(all[a].primary, all[b].primary, dynamicPorts)) {
        continue;
      }
      in_.error(keyPath("protocols", all[b].name), lines_[b],
                fmt::format("its primary connection ({}) overlaps that of {} ({}): a connection "
                            "can belong to only one definition",
                            policy::toString(all[b].primary), keyPath("protocols", all[a].name),
                            policy::toString(all[a].primary)));
    }
  }
}

void ProtocolsParser::ruleProtocols(const toml::table& t, const std::string& path,
                                    const std::vector<policy::ProtocolDefinition>& all,
                                    std::vector<std::string>& out) {
  in_.strings(
      t, "protocols", path, [&](const std::string& s, const std::string& p, const toml::node& n) {
        const auto known = [&](const std::string& name) { return name == s; };
        if (std::any_of(names_.begin(), names_.end(), known) ||
            std::any_of(all.begin(), all.end(), [&](const auto& d) { return d.name == s; })) {
          out.push_back(s);
          return;
        }
        std::vector<std::string> names = names_;
        for (const auto& d : all) {
          if (std::find(names.begin(), names.end(), d.name) == names.end()) {
            names.push_back(d.name);
          }
        }
        std::string hint;
        for (const auto& name : names) {
          if (sameName(name, s)) {
            hint = fmt::format(" (did you mean {}?)", quote(name));
            break;
          }
        }
        if (hint.empty()) hint = suggestion(s, names);
        in_.error(p, n,
                  fmt::format("unknown protocol definition {} (define it in "
                              "[protocols.NAME]){}",
                              quote(s), hint));
      });
}

}  // namespace fwgate::config::detail
