// Warnings about a valid configuration that probably does not do what its author meant.
#include <fmt/format.h>

#include <algorithm>

#include "config/config.hpp"
#include "config/toml_reader.hpp"

namespace fwgate::config {
namespace {

using policy::ConnectionSpec;
using policy::IpAddress;
using policy::IpRange;
using policy::Network;
using policy::PortRange;
using policy::ProtocolDefinition;

const Network* findNetwork(const Config& config, std::string_view name) {
  for (const Network& n : config.networks) {
    if (n.name == name) return &n;
  }
  return nullptr;
}

// Every IPv4 or every IPv6 address: 0.0.0.0/0 or ::/0 written as a range of a named network.
bool coversAFamily(const Network& n) {
  if (n.any) return true;
  return std::any_of(n.ranges.begin(), n.ranges.end(), [](const IpRange& r) {
    const std::size_t size = r.first.v6 ? 16 : 4;
    return std::all_of(r.first.bytes.begin(), r.first.bytes.begin() + size,
                       [](std::uint8_t b) { return b == 0x00; }) &&
           std::all_of(r.last.bytes.begin(), r.last.bytes.begin() + size,
                       [](std::uint8_t b) { return b == 0xff; });
  });
}

bool isAnyNetwork(const Config& config, std::string_view name) {
  const Network* n = findNetwork(config, name);
  return n != nullptr && n->any;
}

bool hasUsers(const policy::Rule& r) {
  return !r.users.empty() || !r.groups.empty();
}

// Matches every request: no condition at all (an "any" network is no condition).
bool matchesEverything(const Config& config, const policy::Rule& r) {
  const auto anyOrEmpty = [&](const std::vector<std::string>& names) {
    return names.empty() || std::any_of(names.begin(), names.end(), [&](const std::string& name) {
             return isAnyNetwork(config, name);
           });
  };
  const bool allPorts =
      r.ports.empty() || std::any_of(r.ports.begin(), r.ports.end(), [](policy::PortRange p) {
        return p.first == 1 && p.last == 65535;
      });
  return anyOrEmpty(r.sources) && anyOrEmpty(r.destinations) && !hasUsers(r) && allPorts &&
         (r.commands & policy::kAllCommands) == policy::kAllCommands;
}

std::string networkPath(std::string_view name) {
  const bool bare = std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
  return bare ? fmt::format("networks.{}", name) : fmt::format("networks.\"{}\"", name);
}

// Passwords checked with nothing to slow down guessing, and delays no handshake waits for.
void throttleWarnings(const Config& config, std::vector<Diagnostic>& warnings) {
  if (config.usersFile.empty()) return;  // no password is ever checked
  const AuthThrottle& a = config.authThrottle;
  std::string where;
  for (std::size_t i = 0; i < config.listeners.size() && where.empty(); ++i) {
    const auto& m = config.listeners[i].methods;
    if (std::find(m.begin(), m.end(), AuthMethod::Password) != m.end()) {
      where = fmt::format("listeners[{}] offers \"password\"", i);
    }
  }
  if (where.empty() && !config.webProxy.listeners.empty()) where = "the Web Proxy checks passwords";
  if (where.empty() && !config.controlListeners.empty()) {
    where = "the control channel checks passwords";
  }
  if (where.empty()) return;
  if (!a.enabled || (a.delayAfter == 0 && a.refuseAfter == 0)) {
    warnings.push_back(Diagnostic{
        a.enabled ? "auth_throttle.refuse_after" : "auth_throttle.enabled",
        fmt::format("{} and password guessing is not throttled: anyone who reaches it may try "
                    "passwords as fast as they are checked",
                    where)});
  } else if (a.delayAfter != 0 && a.maxDelay >= config.limits.handshakeTimeout) {
    warnings.push_back(Diagnostic{
        "auth_throttle.max_delay",
        fmt::format("{} ms is not shorter than limits.handshake_timeout ({} ms): delayed logins "
                    "time out instead of being answered",
                    a.maxDelay.count(), config.limits.handshakeTimeout.count())});
  }
}

// A definition of the configuration's own that shares connections with a built-in one: the log
// names the configuration's (it comes first); and secondary connections listed twice.
void protocolWarnings(const Config& config, std::vector<Diagnostic>& warnings) {
  const PortRange dynamic = config.bind.dynamicPorts;
  for (const ProtocolDefinition& own : config.protocols) {
    if (own.builtin) continue;
    const std::string path = detail::keyPath("protocols", own.name);
    for (const ProtocolDefinition& builtin : config.protocols) {
      if (!builtin.builtin || !policy::overlaps(own.primary, builtin.primary, dynamic)) continue;
      warnings.push_back(Diagnostic{
          path, fmt::format("its primary connection ({}) overlaps the built-in definition \"{}\" "
                            "({}); the session log names \"{}\", the configuration's own, first",
                            policy::toString(own.primary), builtin.name,
                            policy::toString(builtin.primary), own.name)});
    }
    for (std::size_t j = 0; j < own.secondary.size(); ++j) {
      for (std::size_t i = 0; i < j; ++i) {
        const ConnectionSpec& a = own.secondary[i];
        const ConnectionSpec& b = own.secondary[j];
        if (a.transport != b.transport || a.direction != b.direction ||
            !policy::overlaps(a, b, dynamic)) {
          continue;
        }
        warnings.push_back(
            Diagnostic{detail::indexPath(detail::keyPath(path, "secondary"), j),
                       fmt::format("overlaps secondary[{}] ({} and {}): list each connection once",
                                   i, policy::toString(b), policy::toString(a))});
      }
    }
  }
}

// The seed's caution: a filter for a port opens it to anyone on the external interface. One that
// lets in tcp or udp on every local port from every remote host opens all of them.
void packetFilterWarnings(const Config& config, std::vector<Diagnostic>& warnings) {
  const auto& filters = config.packetFilters.filters;
  for (std::size_t i = 0; i < filters.size(); ++i) {
    const PacketFilter& f = filters[i];
    const bool inbound = f.direction != PacketFilter::Direction::Outbound;
    const bool everyPort = !f.localPort || (f.localPort->first == 1 && f.localPort->last == 65535);
    const bool anyone = !f.remoteHost || coversAFamily(Network{.ranges = {*f.remoteHost}});
    if (!inbound || !f.carriesPorts() || !everyPort || !anyone) continue;
    std::string where;
    if (f.localHost == PacketFilter::LocalHost::GatewayAddress) {
      where = fmt::format(" of {}", f.localAddress->toString());
    } else if (f.localHost == PacketFilter::LocalHost::InternalComputer) {
      where = fmt::format(" of internal computer {}", f.localAddress->toString());
    }
    warnings.push_back(Diagnostic{
        detail::indexPath("packet_filters.filter", i),
        fmt::format("filter \"{}\" opens every {} port{} to anyone on the external interface "
                    "(local_port and remote_host are \"any\"); name the ports or the remote hosts",
                    f.name, ipProtocolName(f.protocol), where),
        f.line});
  }
}

}  // namespace

// Published listens whose peers no rule can allow: each is decided as command bind on a dynamic
// port, which no protocol definition covers, so only an allow rule without protocols admits one.
void publishWarnings(const Config& config, std::vector<Diagnostic>& warnings) {
  if (config.firewallClient.publishListens.empty()) return;
  const bool peersPossible =
      std::any_of(config.rules.begin(), config.rules.end(), [](const policy::Rule& r) {
        return r.action == policy::Action::Allow && r.protocols.empty() &&
               (r.commands & static_cast<std::uint8_t>(policy::Command::Bind)) != 0;
      });
  if (!peersPossible) {
    warnings.push_back(Diagnostic{"firewall_client.publish_listens",
                                  "no allow rule for command \"bind\" without protocols: every "
                                  "peer of a published listen will be refused"});
  }
}

std::vector<Diagnostic> checkWarnings(const Config& config) {
  std::vector<Diagnostic> warnings;
  if (config.rules.empty()) {
    warnings.push_back(Diagnostic{"rules", "no rules: every request will be denied"});
  }

  // An open proxy: reachable from other hosts, no password needed, and a rule that lets
  // anyone through.
  const Listener* exposed = nullptr;
  std::size_t exposedIndex = 0;
  for (std::size_t i = 0; i < config.listeners.size() && exposed == nullptr; ++i) {
    const Listener& l = config.listeners[i];
    const auto address = IpAddress::parse(l.address);
    const bool anonymous =
        std::find(l.methods.begin(), l.methods.end(), AuthMethod::None) != l.methods.end();
    if (address && !address->isLoopback() && anonymous) {
      exposed = &l;
      exposedIndex = i;
    }
  }
  // The Web Proxy asks for a user (407) whenever a rule needs one.
  // Somewhere a user can be proven: a password, or an enrolled host's agent.
  const bool anyPassword =
      !config.webProxy.listeners.empty() || !config.control.hosts.empty() ||
      std::any_of(config.listeners.begin(), config.listeners.end(), [](const Listener& l) {
        return std::find(l.methods.begin(), l.methods.end(), AuthMethod::Password) !=
               l.methods.end();
      });
  // The same for the Web Proxy, whose clients are anonymous unless a rule asks for a user.
  const Listener* exposedWeb = nullptr;
  std::size_t exposedWebIndex = 0;
  for (std::size_t i = 0; i < config.webProxy.listeners.size() && exposedWeb == nullptr; ++i) {
    const auto address = IpAddress::parse(config.webProxy.listeners[i].address);
    if (address && !address->isLoopback()) {
      exposedWeb = &config.webProxy.listeners[i];
      exposedWebIndex = i;
    }
  }
  constexpr std::uint8_t kWebCommands = static_cast<std::uint8_t>(policy::Command::Http) |
                                        static_cast<std::uint8_t>(policy::Command::Connect);

  bool unreachableReported = false;
  for (std::size_t i = 0; i < config.rules.size(); ++i) {
    const policy::Rule& r = config.rules[i];
    const std::string path = fmt::format("rules[{}]", i);
    const bool fromAnywhere =
        r.sources.empty() || std::any_of(r.sources.begin(), r.sources.end(), [&](const auto& s) {
          const Network* n = findNetwork(config, s);
          return n != nullptr && coversAFamily(*n);
        });
    if (exposed != nullptr && r.action == policy::Action::Allow && !hasUsers(r) && fromAnywhere) {
      warnings.push_back(Diagnostic{
          path, fmt::format("open proxy: listeners[{}] ({} port {}) accepts clients without a "
                            "password and rule \"{}\" allows clients from any address; restrict "
                            "its sources or require users",
                            exposedIndex, exposed->address, exposed->port, r.name)});
    }
    if (exposedWeb != nullptr && r.action == policy::Action::Allow && !hasUsers(r) &&
        fromAnywhere && (r.commands & kWebCommands) != 0) {
      warnings.push_back(Diagnostic{
          path, fmt::format("open proxy: web_proxy.listen[{}] ({} port {}) serves any client "
                            "and rule \"{}\" allows clients from any address; restrict its "
                            "sources or require users",
                            exposedWebIndex, exposedWeb->address, exposedWeb->port, r.name)});
    }
    if (hasUsers(r) && !anyPassword) {
      warnings.push_back(
          Diagnostic{path, fmt::format("rule \"{}\" names users or groups but no listener offers "
                                       "\"password\" and no Web Proxy listens: it never matches",
                                       r.name)});
    }
    // After a deny rule without conditions nothing else is ever consulted. (After such an
    // allow rule, later rules still decide protected destinations.)
    if (!unreachableReported && r.action == policy::Action::Deny && matchesEverything(config, r) &&
        i + 1 < config.rules.size()) {
      unreachableReported = true;
      warnings.push_back(Diagnostic{
          fmt::format("rules[{}]", i + 1),
          fmt::format("never reached: rule \"{}\" before it denies every request", r.name)});
    }
  }

  const bool anyFirewallClients = std::any_of(config.networks.begin(), config.networks.end(),
                                              [](const Network& n) { return n.firewallClients; });
  if (anyFirewallClients && config.controlListeners.empty()) {
    warnings.push_back(Diagnostic{"control.listen",
                                  "networks enable firewall_clients but the control channel does "
                                  "not listen anywhere: firewall clients cannot connect"});
  }
  if (!anyFirewallClients && !config.controlListeners.empty()) {
    warnings.push_back(Diagnostic{"control.listen",
                                  "no network has firewall_clients = true: the control channel "
                                  "refuses every client"});
  }

  for (const Network& n : config.networks) {
    if (!n.any && n.ranges.empty() && n.domains.empty()) {
      warnings.push_back(
          Diagnostic{networkPath(n.name), "no ranges and no domains: it matches nothing"});
    }
  }
  throttleWarnings(config, warnings);
  protocolWarnings(config, warnings);
  packetFilterWarnings(config, warnings);
  publishWarnings(config, warnings);
  return warnings;
}

}  // namespace fwgate::config
