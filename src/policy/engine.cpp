// The rule engine: rule names resolved to indices once, then one linear pass per request.
#include "policy/engine.hpp"

#include <algorithm>

namespace fwgate::policy {
namespace {

char lowerAscii(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return lowerAscii(x) == lowerAscii(y);
         });
}

std::string_view withoutTrailingDot(std::string_view s) {
  if (!s.empty() && s.back() == '.') s.remove_suffix(1);
  return s;
}

// A mapped address built by hand (v6 = true, ::ffff:a.b.c.d) is still an IPv4 address.
IpAddress canonical(const IpAddress& a) {
  return a.v6 ? IpAddress::fromV6(a.bytes) : a;
}

// What a request's connection is when the gateway did not say: from its command and port.
ConnectionFacts defaultFacts(const Request& request) {
  switch (request.command) {
    case Command::Bind:
      return {Transport::Tcp, Direction::Inbound, request.destinationPort};
    case Command::Udp:
      return {Transport::Udp, Direction::Send, request.destinationPort};
    case Command::Connect:
    case Command::Http:
      break;
  }
  return {Transport::Tcp, Direction::Outbound, request.destinationPort};
}

}  // namespace

bool Network::containsAddress(const IpAddress& a) const {
  if (any) return true;
  const IpAddress address = canonical(a);
  return std::any_of(ranges.begin(), ranges.end(),
                     [&](const IpRange& r) { return r.contains(address); });
}

bool Network::containsDomain(std::string_view name) const {
  if (any) return true;
  name = withoutTrailingDot(name);
  if (name.empty()) return false;
  return std::any_of(domains.begin(), domains.end(), [&](const std::string& entry) {
    const std::string_view suffix = withoutTrailingDot(entry);
    if (suffix.empty() || suffix.size() > name.size()) return false;
    if (!equalsIgnoreCase(name.substr(name.size() - suffix.size()), suffix)) return false;
    // "example.com" matches itself and "www.example.com", never "badexample.com".
    return name.size() == suffix.size() || name[name.size() - suffix.size() - 1] == '.';
  });
}

std::string_view toString(Command c) {
  switch (c) {
    case Command::Connect:
      return "connect";
    case Command::Bind:
      return "bind";
    case Command::Udp:
      return "udp";
    case Command::Http:
      return "http";
  }
  return "unknown";
}

std::optional<Command> commandByName(std::string_view name) {
  for (const Command c : kCommands) {
    if (toString(c) == name) return c;
  }
  return std::nullopt;
}

std::vector<Network> builtinNetworks() {
  Network any;
  any.name = "any";
  any.any = true;
  Network loopback;
  loopback.name = "loopback";
  loopback.ranges.push_back(*IpRange::parse("127.0.0.0/8"));
  loopback.ranges.push_back(*IpRange::parse("::1"));
  return {std::move(any), std::move(loopback)};
}

struct Engine::CompiledRule {
  bool allow = false;
  // A list written empty matches anything; a non-empty list whose names all fail to resolve
  // matches nothing, so "restricted" is kept apart from the resolved indices.
  bool sourcesRestricted = false;
  std::vector<std::size_t> sources;
  bool usersRestricted = false;
  std::vector<std::string> members;  // users named directly plus members of named groups, sorted
  bool destinationsRestricted = false;
  std::vector<std::size_t> destinations;
  std::vector<PortRange> ports;
  std::uint8_t commands = kAllCommands;
  bool protocolsRestricted = false;
  std::vector<std::size_t> protocols;  // indices into protocols_, in the rule's order
};

Engine::Engine(std::vector<Network> networks,
               std::map<std::string, std::vector<std::string>> groups, std::vector<Rule> rules,
               std::vector<ProtocolDefinition> protocols, PortRange dynamicPorts)
    : networks_(std::move(networks)),
      groups_(std::move(groups)),
      rules_(std::move(rules)),
      protocols_(std::move(protocols)),
      dynamicPorts_(dynamicPorts) {
  for (Network& builtin : builtinNetworks()) {
    if (findNetwork(builtin.name) == nullptr) networks_.push_back(std::move(builtin));
  }
  const auto resolve = [this](const std::vector<std::string>& names) {
    std::vector<std::size_t> indices;
    for (const std::string& name : names) {
      for (std::size_t i = 0; i < networks_.size(); ++i) {
        if (networks_[i].name == name) {
          indices.push_back(i);
          break;
        }
      }
    }
    return indices;
  };
  compiled_.reserve(rules_.size());
  for (const Rule& rule : rules_) {
    CompiledRule c;
    c.allow = rule.action == Action::Allow;
    c.sourcesRestricted = !rule.sources.empty();
    c.sources = resolve(rule.sources);
    c.usersRestricted = !rule.users.empty() || !rule.groups.empty();
    c.members = rule.users;
    for (const std::string& group : rule.groups) {
      if (const auto it = groups_.find(group); it != groups_.end()) {
        c.members.insert(c.members.end(), it->second.begin(), it->second.end());
      }
    }
    std::sort(c.members.begin(), c.members.end());
    c.members.erase(std::unique(c.members.begin(), c.members.end()), c.members.end());
    c.destinationsRestricted = !rule.destinations.empty();
    c.destinations = resolve(rule.destinations);
    c.ports = rule.ports;
    c.commands = rule.commands == 0 ? kAllCommands : rule.commands;
    c.protocolsRestricted = !rule.protocols.empty();
    for (const std::string& name : rule.protocols) {
      if (const ProtocolDefinition* p = findProtocol(name)) {
        c.protocols.push_back(static_cast<std::size_t>(p - protocols_.data()));
      }
    }
    compiled_.push_back(std::move(c));
  }
  hits_ = std::make_unique<std::atomic<std::uint64_t>[]>(rules_.size());
  for (std::size_t i = 0; i < rules_.size(); ++i) hits_[i].store(0, std::memory_order_relaxed);
}

Engine::~Engine() = default;

const Network* Engine::findNetwork(std::string_view name) const {
  for (const Network& n : networks_) {
    if (n.name == name) return &n;
  }
  return nullptr;
}

const ProtocolDefinition* Engine::findProtocol(std::string_view name) const {
  for (const ProtocolDefinition& p : protocols_) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

const ProtocolDefinition* Engine::primaryFor(const ConnectionFacts& facts) const {
  for (const ProtocolDefinition& p : protocols_) {
    if (matchesPrimary(p.primary, facts, dynamicPorts_)) return &p;
  }
  return nullptr;
}

std::uint64_t Engine::hits(std::size_t ruleIndex) const {
  if (ruleIndex >= rules_.size()) return 0;
  return hits_[ruleIndex].load(std::memory_order_relaxed);
}

bool Engine::matchesBesidesDestination(std::size_t index, const Request& request,
                                       const IpAddress& client, const ConnectionFacts& facts,
                                       std::string& protocol, bool anyUser) const {
  const CompiledRule& rule = compiled_[index];
  if ((rule.commands & static_cast<std::uint8_t>(request.command)) == 0) return false;
  if (!rule.ports.empty() &&
      std::none_of(rule.ports.begin(), rule.ports.end(),
                   [&](const PortRange& p) { return p.contains(request.destinationPort); })) {
    return false;
  }
  if (rule.sourcesRestricted &&
      std::none_of(rule.sources.begin(), rule.sources.end(),
                   [&](std::size_t n) { return networks_[n].containsAddress(client); })) {
    return false;
  }
  if (rule.usersRestricted && !anyUser &&
      (!request.user ||
       !std::binary_search(rule.members.begin(), rule.members.end(), *request.user))) {
    return false;
  }
  protocol.clear();
  if (rule.protocolsRestricted) {
    const auto it = std::find_if(rule.protocols.begin(), rule.protocols.end(), [&](std::size_t p) {
      const ProtocolDefinition& d = protocols_[p];
      return request.secondaryOf.empty()
                 ? matchesPrimary(d.primary, facts, dynamicPorts_)
                 : d.name == request.secondaryOf && coversSecondary(d, facts, dynamicPorts_);
    });
    if (it == rule.protocols.end()) return false;
    protocol = protocols_[*it].name;
  }
  return true;
}

Decision Engine::decide(const Request& request) const {
  const IpAddress client = canonical(request.client);
  std::optional<IpAddress> destination;
  if (request.destinationAddress) destination = canonical(*request.destinationAddress);
  const bool guarded = request.guarded();
  const ConnectionFacts facts = request.connection.value_or(defaultFacts(request));
  // The name the log shows when the deciding rule does not name definitions itself.
  const auto coveringName = [&] {
    if (!request.secondaryOf.empty()) return request.secondaryOf;
    const ProtocolDefinition* p = primaryFor(facts);
    return p != nullptr ? p->name : std::string();
  };

  const auto inNetwork = [&](std::size_t index) {
    const Network& n = networks_[index];
    return (destination && n.containsAddress(*destination)) ||
           (!request.destinationName.empty() && n.containsDomain(request.destinationName));
  };

  std::string protocol;
  for (std::size_t i = 0; i < compiled_.size(); ++i) {
    const CompiledRule& rule = compiled_[i];
    bool challenge = false;
    if (!matchesBesidesDestination(i, request, client, facts, protocol)) {
      // An anonymous client that can be asked: a rule for users that it could meet stops here.
      challenge = request.canAskForUser && !request.user && rule.usersRestricted && rule.allow &&
                  matchesBesidesDestination(i, request, client, facts, protocol, true);
      if (!challenge) continue;
    }
    if (rule.destinationsRestricted &&
        std::none_of(rule.destinations.begin(), rule.destinations.end(), inNetwork)) {
      continue;
    }
    // A protected destination (this host, its listeners) is reachable from elsewhere only
    // through an allow rule that names a real network holding that very address.
    if (rule.allow && guarded &&
        (!destination ||
         std::none_of(rule.destinations.begin(), rule.destinations.end(), [&](std::size_t n) {
           return !networks_[n].any && networks_[n].containsAddress(*destination);
         }))) {
      continue;
    }
    if (!rule.protocolsRestricted) protocol = coveringName();
    if (challenge) {
      denied_.fetch_add(1, std::memory_order_relaxed);
      return Decision{false, static_cast<int>(i), rules_[i].name, std::move(protocol),
                      true,  Reason::NeedsUser};
    }
    hits_[i].fetch_add(1, std::memory_order_relaxed);
    (rule.allow ? allowed_ : denied_).fetch_add(1, std::memory_order_relaxed);
    return Decision{rule.allow, static_cast<int>(i), rules_[i].name, std::move(protocol),
                    false,      Reason::Rule};
  }
  denied_.fetch_add(1, std::memory_order_relaxed);
  return Decision{
      false,          -1,    guarded ? "protected-destination" : "default-deny",
      coveringName(), false, guarded ? Reason::ProtectedDestination : Reason::DefaultDeny};
}

bool Engine::mayAllow(const Request& request) const {
  const IpAddress client = canonical(request.client);
  const ConnectionFacts facts = request.connection.value_or(defaultFacts(request));
  std::string protocol;
  for (std::size_t i = 0; i < compiled_.size(); ++i) {
    const CompiledRule& rule = compiled_[i];
    if (!matchesBesidesDestination(i, request, client, facts, protocol)) continue;
    // A rule without destinations decides for every peer; one with destinations only for some,
    // so an allow may apply to a peer and a deny may not.
    if (!rule.destinationsRestricted) return rule.allow;
    if (rule.allow) return true;
  }
  return false;
}

}  // namespace fwgate::policy
