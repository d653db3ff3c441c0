#include "monitor/suggest.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <set>

#include "monitor/frame_line.hpp"
#include "monitor/snippet.hpp"

namespace fwgate::monitor {
namespace {

using policy::ConnectionSpec;
using policy::Direction;
using PTransport = policy::Transport;

// The control and SOCKS ports of a gateway: a capture of the internal side with the firewall
// client in use shows these instead of the program's own destinations.
bool gatewayServicePort(std::uint16_t port) {
  return port == 1745 || port == 1080;
}

std::string addressText(const policy::IpAddress& a) {
  std::string s;
  appendAddress(s, a);
  return s;
}

std::string conversationName(std::size_t index) {
  return fmt::format("C{}", index + 1);
}

std::string names(const std::vector<std::size_t>& indexes) {
  std::string out;
  for (std::size_t i = 0; i < indexes.size(); ++i) {
    if (i > 0) out += ", ";
    out += conversationName(indexes[i]);
  }
  return out;
}

template <typename T>
std::string joined(const std::set<T>& values) {
  return fmt::format("{}", fmt::join(values, ", "));
}

// What one conversation is from the client's side.
struct Role {
  bool clientOpened = false;
  policy::IpAddress remote;
  ConnectionSpec spec;  // as a primary connection of a definition
};

Role roleOf(const Conversation& c, const policy::IpAddress& client) {
  Role r;
  r.clientOpened = c.initiator.address == client;
  r.remote = r.clientOpened ? c.responder.address : c.initiator.address;
  const bool tcp = c.transport == Transport::Tcp;
  r.spec.transport = tcp ? PTransport::Tcp : PTransport::Udp;
  // TCP: the port connected to. UDP: the port the first datagram went to.
  r.spec.ports = {c.responder.port, c.responder.port};
  if (tcp) {
    r.spec.direction = r.clientOpened ? Direction::Outbound : Direction::Inbound;
  } else if (r.clientOpened) {
    r.spec.direction = c.answered() ? Direction::SendReceive : Direction::Send;
  } else {
    r.spec.direction = c.answered() ? Direction::ReceiveSend : Direction::Receive;
  }
  return r;
}

// How a conversation went, for the explanation lines.
std::string outcome(const Conversation& c) {
  const bool tcp = c.transport == Transport::Tcp;
  std::string s;
  if (c.openFrame != 0) {
    s += fmt::format("{} frame {}", tcp ? "SYN" : "first datagram", c.openFrame);
  } else {
    s += fmt::format("first seen in frame {} (opener known from the {})", c.firstFrame,
                     c.initiatorFrom);
  }
  if (c.answered()) {
    s += fmt::format(", answered in frame {}", c.answerFrame);
  } else if (c.refused()) {
    s += fmt::format(", refused (RST frame {})", c.resetFrame);
  } else if (c.icmpFrame != 0) {
    s += fmt::format(", {} (ICMP frame {})", c.icmpText, c.icmpFrame);
  } else if (c.openFrame != 0) {
    s += c.synCount > 1 ? fmt::format(", never answered ({} SYNs)", c.synCount)
                        : std::string(", never answered");
  }
  return s;
}

// A secondary connection as the gateway checks it: TCP outbound to the remote's port, TCP
// inbound to the client's (listening) port, UDP from the remote's port (it sent first).
struct SecondaryObservation {
  PTransport transport;
  Direction direction;
  std::set<std::uint16_t> ports;
  std::vector<std::size_t> conversations;
};

// The port range a set of observed ports stands for, and why.
std::pair<policy::PortRange, std::string> generalise(const SecondaryObservation& o,
                                                     const policy::PortRange& dynamic) {
  const std::uint16_t low = *o.ports.begin();
  const std::uint16_t high = *o.ports.rbegin();
  const std::string seen = joined(o.ports);
  const bool inbound = o.transport == PTransport::Tcp && o.direction == Direction::Inbound;
  if (inbound) {
    if (o.ports.size() == 1 && low < 1024) {
      return {{low, low}, fmt::format("always port {}", low)};
    }
    return {{0, 0},
            fmt::format("the program listened on {} (ports it picks per connection): "
                        "port 0, which the gateway takes from [bind] dynamic_ports ({})",
                        seen, dynamic.toString())};
  }
  const auto t = o.transport == PTransport::Udp ? Transport::Udp : Transport::Tcp;
  if (o.ports.size() == 1 && (wellKnownPort(t, low) || o.conversations.size() > 1)) {
    return {{low, low}, fmt::format("always port {}", low)};
  }
  if (low >= 1024) {
    return {{1024, 65535},
            fmt::format("port {} is one the server picks per connection: any "
                        "unprivileged port, 1024-65535",
                        seen)};
  }
  return {{low, high}, fmt::format("ports {}", seen)};
}

struct Group {
  ConnectionSpec primary;
  std::vector<std::size_t> primaries;  // conversations that are this primary connection
  std::set<std::string> remotes;
  std::vector<SecondaryObservation> secondaries;
};

SecondaryObservation& observation(Group& g, PTransport t, Direction d) {
  for (auto& o : g.secondaries) {
    if (o.transport == t && o.direction == d) return o;
  }
  g.secondaries.push_back({t, d, {}, {}});
  return g.secondaries.back();
}

class Writer {
 public:
  template <typename... Args>
  void comment(fmt::format_string<Args...> format, Args&&... args) {
    text_ += "# ";
    fmt::format_to(std::back_inserter(text_), format, std::forward<Args>(args)...);
    text_ += '\n';
  }
  void raw(const std::string& s) { text_ += s; }
  std::string take() { return std::move(text_); }

 private:
  std::string text_;
};

void listConversations(Writer& w, const std::vector<Conversation>& all,
                       const std::vector<std::size_t>& mine, std::size_t limit) {
  for (std::size_t k = 0; k < mine.size() && k < limit; ++k) {
    const auto& c = all[mine[k]];
    w.comment("  {:<4} {} {} -> {}, frames {}-{} ({} frames, {} bytes out, {} back): {}",
              conversationName(mine[k]), c.transport == Transport::Tcp ? "tcp" : "udp",
              toString(c.initiator), toString(c.responder), c.firstFrame, c.lastFrame, c.frames,
              c.bytesToResponder, c.bytesToInitiator, outcome(c));
  }
  if (mine.size() > limit) w.comment("  ... and {} more", mine.size() - limit);
}

std::string uniqueName(const std::string& base, std::size_t n) {
  return n == 0 ? base : fmt::format("{}-{}", base, n + 1);
}

void writeFilters(Writer& w, const ConversationTable& table, const policy::IpAddress& client,
                  const std::vector<std::size_t>& mine, const SuggestOptions& options) {
  struct Filter {
    std::string protocol, direction, localPort, remotePort, remoteHost;
    std::string icmpType;
    std::vector<std::size_t> conversations;
    std::set<std::uint16_t> callbackPorts;  // connections back to ports the program picked
  };
  std::vector<Filter> filters;
  const auto add = [&](Filter f, std::size_t conversation) {
    for (auto& have : filters) {
      if (have.protocol == f.protocol && have.direction == f.direction &&
          have.localPort == f.localPort && have.remotePort == f.remotePort &&
          have.remoteHost == f.remoteHost && have.icmpType == f.icmpType) {
        if (conversation != SIZE_MAX) have.conversations.push_back(conversation);
        have.callbackPorts.insert(f.callbackPorts.begin(), f.callbackPorts.end());
        return;
      }
    }
    if (conversation != SIZE_MAX) f.conversations.push_back(conversation);
    filters.push_back(std::move(f));
  };
  const auto& all = table.conversations();
  std::set<policy::IpAddress> contacted;  // hosts the program opened a conversation with
  const auto& ephemeral = options.ephemeralPorts;
  for (const std::size_t i : mine) {
    const auto& c = all[i];
    const bool opened = c.initiator.address == client;
    const auto& remote = opened ? c.responder : c.initiator;
    const auto& local = opened ? c.initiator : c.responder;
    Filter f;
    f.protocol = c.transport == Transport::Tcp ? "tcp" : "udp";
    f.direction = opened ? "outbound" : "inbound";
    f.localPort = opened ? "\"any\"" : std::to_string(local.port);
    if (opened) contacted.insert(remote.address);
    // A host the program contacted first, connecting back to a port the program picked (FTP's
    // PORT): that port changes every time, so the filter covers the range it comes from.
    if (!opened && contacted.contains(remote.address) && ephemeral.contains(local.port)) {
      f.localPort = fmt::format("\"{}\"", ephemeral.toString());
      f.callbackPorts.insert(local.port);
    }
    f.remotePort = opened ? std::to_string(remote.port) : "\"any\"";
    f.remoteHost = addressText(remote.address);
    add(std::move(f), i);
  }
  for (const auto& e : table.echoes()) {
    if (e.initiator != client && e.responder != client) continue;
    const bool opened = e.initiator == client;
    Filter f;
    f.protocol = e.v6 ? "icmpv6" : "icmp";
    f.direction = opened ? "outbound" : "inbound";
    f.icmpType = e.v6 ? "128" : "8";
    f.remoteHost = addressText(opened ? e.responder : e.initiator);
    add(std::move(f), SIZE_MAX);
  }
  if (filters.empty()) return;
  w.raw("\n");
  w.comment("Static packet filters: the program runs on the gateway host itself, so its own");
  w.comment("packets cross the external interface. Answers to what it sends are admitted as");
  w.comment("established traffic; each inbound filter opens a port to the remote host named.");
  w.raw("[packet_filters]\nenabled = true\n");
  for (std::size_t n = 0; n < filters.size(); ++n) {
    const auto& f = filters[n];
    w.raw("\n");
    if (!f.callbackPorts.empty()) {
      w.comment("{} {}: {}: {} connected back to ports the program picked ({}), from this host's",
                f.protocol, f.direction, names(f.conversations), f.remoteHost,
                joined(f.callbackPorts));
      w.comment("range for them (net.ipv4.ip_local_port_range {}); only that host may use it.",
                ephemeral.toString());
    } else if (!f.conversations.empty()) {
      w.comment("{} {}: {}", f.protocol, f.direction, names(f.conversations));
    } else {
      w.comment("{} echo {}: ping", f.protocol, f.direction == "outbound" ? "sent" : "answered");
    }
    std::string t = "[[packet_filters.filter]]\n";
    t += fmt::format("name = \"{}\"\nprotocol = \"{}\"\ndirection = \"{}\"\n",
                     uniqueName(options.name + "-filter", n), f.protocol, f.direction);
    if (!f.icmpType.empty()) {
      t += fmt::format("icmp_type = {}\n", f.icmpType);
    } else {
      t += fmt::format("local_port = {}\nremote_port = {}\n", f.localPort, f.remotePort);
    }
    t += fmt::format("remote_host = \"{}\"\n", f.remoteHost);
    w.raw(t);
  }
}

}  // namespace

Suggestion suggest(const ConversationTable& table, const SuggestOptions& options) {
  Suggestion out;
  Writer w;
  const auto& all = table.conversations();
  out.client = options.client;
  out.clientFrom = "--client";
  if (!out.client && !all.empty()) {
    out.client = all.front().initiator.address;
    out.clientFrom = "opened the first conversation; choose another with --client";
  }
  w.comment("fwgate monitor --suggest: {} frames, {} TCP/UDP conversations{}", table.frames(),
            all.size(),
            table.overflow() > 0
                ? fmt::format(" (and {} frames of conversations past the limit, not analysed)",
                              table.overflow())
                : std::string());
  if (!out.client) {
    w.comment("No TCP or UDP conversation: nothing to suggest.");
    out.text = w.take();
    return out;
  }
  const policy::IpAddress client = *out.client;
  std::vector<std::size_t> mine;
  std::size_t portZero = 0;
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (all[i].initiator.address != client && all[i].responder.address != client) continue;
    // Port 0 is no port a program can connect to or listen on: a scan or a malformed packet.
    if (all[i].initiator.port == 0 || all[i].responder.port == 0) {
      ++portZero;
      continue;
    }
    mine.push_back(i);
  }
  w.comment("client {} ({}): {} of them", addressText(client), out.clientFrom, mine.size());
  if (portZero > 0) {
    w.comment("({} more with port 0 on the wire, left out: no program uses that port)", portZero);
  }
  listConversations(w, all, mine, options.listLimit);

  // Group by remote host: the first conversation the client opened with a host is a primary
  // connection; what else happens with that host is its secondary connections.
  std::vector<Group> groups;
  std::map<std::string, std::size_t> primaryOfHost;
  const auto groupFor = [&](const ConnectionSpec& spec) -> Group& {
    for (auto& g : groups) {
      if (g.primary == spec) return g;
    }
    groups.push_back(Group{spec, {}, {}, {}});
    return groups.back();
  };
  bool controlChannel = false;
  for (const std::size_t i : mine) {
    const auto& c = all[i];
    const Role role = roleOf(c, client);
    const std::string remote = addressText(role.remote);
    if (role.clientOpened && gatewayServicePort(c.responder.port)) controlChannel = true;
    const auto known = primaryOfHost.find(remote);
    // Own primaries: the first with a host; any other the client opens to a catalogue port or
    // sends over UDP (the gateway checks those as primary connections first).
    const bool ownPrimary =
        known == primaryOfHost.end() ||
        (role.clientOpened && (role.spec.transport == PTransport::Udp ||
                               wellKnownPort(Transport::Tcp, role.spec.ports.first))) ||
        groups[known->second].primary == role.spec;
    if (ownPrimary) {
      Group& g = groupFor(role.spec);
      g.primaries.push_back(i);
      g.remotes.insert(remote);
      const auto index = static_cast<std::size_t>(&g - groups.data());
      if (known == primaryOfHost.end()) primaryOfHost.emplace(remote, index);
      continue;
    }
    Group& g = groups[known->second];
    const bool tcp = c.transport == Transport::Tcp;
    Direction d = Direction::Outbound;
    std::uint16_t port = c.responder.port;
    if (tcp) {
      d = role.clientOpened ? Direction::Outbound : Direction::Inbound;
    } else {  // the remote sent first (the client's own sends are primaries above)
      d = c.answered() ? Direction::ReceiveSend : Direction::Receive;
      port = c.initiator.port;
    }
    auto& o = observation(g, tcp ? PTransport::Tcp : PTransport::Udp, d);
    o.ports.insert(port);
    o.conversations.push_back(i);
  }

  std::size_t newNames = 0;
  for (std::size_t gi = 0; gi < groups.size(); ++gi) {
    const Group& g = groups[gi];
    SuggestedDefinition sd;
    sd.definition.primary = g.primary;
    sd.conversations = g.primaries;
    w.raw("\n");
    w.comment("Definition {} of {}: with {}", gi + 1, groups.size(), joined(g.remotes));
    const auto& first = all[g.primaries.front()];
    w.comment("  primary {}: {}, {} -> {}, {}", policy::toString(g.primary), names(g.primaries),
              toString(first.initiator), toString(first.responder), outcome(first));
    for (const auto& o : g.secondaries) {
      const auto [range, why] = generalise(o, options.dynamicPorts);
      ConnectionSpec spec{range, o.transport, o.direction};
      if (std::find(sd.definition.secondary.begin(), sd.definition.secondary.end(), spec) ==
          sd.definition.secondary.end()) {
        sd.definition.secondary.push_back(spec);
      }
      std::set<std::uint64_t> frames;
      for (const auto i : o.conversations) {
        frames.insert(all[i].openFrame != 0 ? all[i].openFrame : all[i].firstFrame);
      }
      w.comment("  secondary {}: {} (frames {}): {}", policy::toString(spec),
                names(o.conversations), joined(frames), why);
    }
    if (const auto* have = findCovering(options.definitions, sd.definition.primary,
                                        sd.definition.secondary, options.dynamicPorts)) {
      sd.existing = have->name;
      w.comment("  The {} definition \"{}\" covers it: name it in a rule, protocols = [\"{}\"].",
                have->builtin ? "built-in" : "configured", have->name, have->name);
    } else {
      sd.definition.name = uniqueName(options.name, newNames++);
      const auto* samePrimary =
          findCovering(options.definitions, sd.definition.primary, {}, options.dynamicPorts);
      if (samePrimary != nullptr) {
        w.comment("  \"{}\" has this primary connection but not these secondary ones; this",
                  samePrimary->name);
        w.comment("  definition comes first in the configuration and takes its place.");
      }
      w.raw(definitionToml(sd.definition));
      w.comment("Then allow it: [[rules]] with protocols = [\"{}\"].", sd.definition.name);
    }
    out.definitions.push_back(std::move(sd));
  }
  if (!table.echoes().empty()) {
    w.raw("\n");
    w.comment("ICMP echo (ping) seen: protocol definitions carry TCP and UDP only; firewall");
    w.comment("clients do not remote ICMP.");
  }
  if (controlChannel) {
    w.raw("\n");
    w.comment("Connections to port 1745 or 1080 are the firewall client's control channel or");
    w.comment("SOCKS: capture on the gateway's external interface, or run the program without");
    w.comment("the firewall client, to see its own destinations.");
  }
  const bool local = std::find(options.localAddresses.begin(), options.localAddresses.end(),
                               client) != options.localAddresses.end();
  if (options.gatewayHost || local) writeFilters(w, table, client, mine, options);
  out.text = w.take();
  return out;
}

}  // namespace fwgate::monitor
