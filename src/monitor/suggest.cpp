#include "monitor/suggest.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <set>
#include <tuple>

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

template <typename T>
std::string joined(const std::set<T>& values) {
  return fmt::format("{}", fmt::join(values, ", "));
}

// A primary connection as the gateway checks it: TCP outbound to the port connected to, TCP
// inbound to the port the program listened on, UDP `send` to the port of the first datagram
// (a send definition admits the answers; the gateway checks every UDP primary as a send).
ConnectionSpec primarySpec(const Conversation& c, bool clientOpened) {
  ConnectionSpec spec;
  spec.transport = c.transport == Transport::Tcp ? PTransport::Tcp : PTransport::Udp;
  spec.ports = {c.responder.port, c.responder.port};
  if (spec.transport == PTransport::Tcp) {
    spec.direction = clientOpened ? Direction::Outbound : Direction::Inbound;
  } else {
    spec.direction = clientOpened ? Direction::Send : Direction::Receive;
  }
  return spec;
}

auto specKey(const ConnectionSpec& s) {
  return std::make_tuple(s.transport, s.direction, s.ports.first, s.ports.last);
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

// Secondary connections of one kind, as the gateway checks them: TCP outbound to the remote's
// port, TCP inbound to the program's (listening) port, UDP from the remote's port (it sent
// first).
struct SecondaryObservation {
  PTransport transport;
  Direction direction;
  std::set<std::uint16_t> ports;
  std::vector<std::size_t> conversations;
};

// The port range a set of observed ports stands for, and why.
std::pair<policy::PortRange, std::string> generalise(const SecondaryObservation& o,
                                                     const SuggestOptions& options) {
  const std::uint16_t low = *o.ports.begin();
  const std::uint16_t high = *o.ports.rbegin();
  const std::string seen = joined(o.ports);
  const bool repeated = o.ports.size() == 1 && o.conversations.size() > 1;
  if (o.transport == PTransport::Tcp && o.direction == Direction::Inbound) {
    // Ports the program picks for itself come from this host's ephemeral range and change every
    // time; through the gateway the gateway picks them (port 0). A port that repeats, or lies
    // outside that range, is one the program asks for by number.
    const bool picked = std::all_of(o.ports.begin(), o.ports.end(), [&](std::uint16_t p) {
      return options.ephemeralPorts.contains(p);
    });
    if (picked && !repeated) {
      return {{0, 0},
              fmt::format("the program listened on {} (ports it picks per connection): "
                          "port 0, which the gateway takes from [bind] dynamic_ports "
                          "({})",
                          seen, options.dynamicPorts.toString())};
    }
    if (o.ports.size() == 1) return {{low, low}, fmt::format("always port {}", low)};
    return {{low, high}, fmt::format("the program listened on {}", seen)};
  }
  const auto t = o.transport == PTransport::Udp ? Transport::Udp : Transport::Tcp;
  if (o.ports.size() == 1 && (wellKnownPort(t, low) || repeated)) {
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
              conversationNames({mine[k]}), c.transport == Transport::Tcp ? "tcp" : "udp",
              toString(c.initiator), toString(c.responder), c.firstFrame, c.lastFrame, c.frames,
              c.bytesToResponder, c.bytesToInitiator, outcome(c));
  }
  if (mine.size() > limit) w.comment("  ... and {} more", mine.size() - limit);
}

// Groups the client's conversations: per remote host, the first the client opened is a
// primary connection, the rest with that host its secondary connections; further connections
// it opens to a catalogue port, and its UDP to new ports, are primaries of their own (the
// gateway checks those as primary connections first). Equal primaries are one group.
std::vector<Group> groupConversations(const std::vector<Conversation>& all,
                                      const std::vector<std::size_t>& mine,
                                      const policy::IpAddress& client, bool& controlChannel) {
  std::vector<Group> groups;
  std::map<decltype(specKey(ConnectionSpec{})), std::size_t> bySpec;
  std::map<policy::IpAddress, std::size_t> groupOfHost;
  for (const std::size_t i : mine) {
    const auto& c = all[i];
    const bool opened = c.initiator.address == client;
    const auto& remote = opened ? c.responder.address : c.initiator.address;
    const ConnectionSpec spec = primarySpec(c, opened);
    if (opened && gatewayServicePort(c.responder.port)) controlChannel = true;
    const auto known = groupOfHost.find(remote);
    const bool ownPrimary = known == groupOfHost.end() ||
                            (opened && (spec.transport == PTransport::Udp ||
                                        wellKnownPort(Transport::Tcp, spec.ports.first))) ||
                            specKey(groups[known->second].primary) == specKey(spec);
    if (ownPrimary) {
      auto [at, added] = bySpec.emplace(specKey(spec), groups.size());
      if (added) groups.push_back(Group{spec, {}, {}, {}});
      Group& g = groups[at->second];
      g.primaries.push_back(i);
      g.remotes.insert(addressText(remote));
      if (known == groupOfHost.end()) groupOfHost.emplace(remote, at->second);
      continue;
    }
    Group& g = groups[known->second];
    const bool tcp = c.transport == Transport::Tcp;
    Direction d = Direction::Outbound;
    std::uint16_t port = c.responder.port;
    if (tcp) {
      d = opened ? Direction::Outbound : Direction::Inbound;
    } else {  // the remote sent first (the client's own sends are primaries above)
      d = c.answered() ? Direction::ReceiveSend : Direction::Receive;
      port = c.initiator.port;
    }
    auto& o = observation(g, tcp ? PTransport::Tcp : PTransport::Udp, d);
    o.ports.insert(port);
    o.conversations.push_back(i);
  }
  return groups;
}

// One group's definition, or the reason there is none, with its explanation lines.
void writeDefinition(Writer& w, const Group& g, const std::vector<Conversation>& all,
                     const SuggestOptions& options, UniqueNames& names, SuggestedDefinition& sd) {
  sd.definition.primary = g.primary;
  sd.conversations = g.primaries;
  const auto& first = all[g.primaries.front()];
  w.comment("  primary {}: {}, {} -> {}, {}", policy::toString(g.primary),
            conversationNames(g.primaries), toString(first.initiator), toString(first.responder),
            outcome(first));
  for (const auto& o : g.secondaries) {
    const auto [range, why] = generalise(o, options);
    const ConnectionSpec spec{range, o.transport, o.direction};
    if (std::find(sd.definition.secondary.begin(), sd.definition.secondary.end(), spec) ==
        sd.definition.secondary.end()) {
      sd.definition.secondary.push_back(spec);
    }
    std::set<std::uint64_t> frames;
    for (const auto i : o.conversations) {
      frames.insert(all[i].openFrame != 0 ? all[i].openFrame : all[i].firstFrame);
    }
    w.comment("  secondary {}: {} (frames {}): {}", policy::toString(spec),
              conversationNames(o.conversations), joined(frames), why);
  }
  if (g.primary.transport == PTransport::Udp && g.primary.direction == Direction::Receive) {
    w.comment("  The remote host sent first, to a port the program had not sent from: firewall");
    w.comment("  clients receive UDP only from hosts they sent to (RemoteBindUdpPorts is not");
    w.comment("  acted on), so no definition can carry this. Run the program on the gateway");
    w.comment("  host with a packet filter, or use a protocol that starts from the client.");
    return;
  }
  if (const auto* have = findCovering(options.definitions, sd.definition.primary,
                                      sd.definition.secondary, options.dynamicPorts)) {
    sd.existing = have->name;
    w.comment("  The {} definition \"{}\" covers it: name it in a rule, protocols = [\"{}\"].",
              have->builtin ? "built-in" : "configured", have->name, have->name);
    return;
  }
  const auto* samePrimary =
      findCovering(options.definitions, sd.definition.primary, {}, options.dynamicPorts);
  if (samePrimary != nullptr && !samePrimary->builtin) {
    // A second definition with the same primary connection would overlap the configured one
    // (an error): extend that one instead.
    sd.existing = samePrimary->name;
    w.comment("  The configured definition \"{}\" has this primary connection but not these",
              samePrimary->name);
    w.comment("  secondary connections; add them to its `secondary` list:");
    for (const auto& s : sd.definition.secondary) w.comment("    {},", connectionToml(s));
    return;
  }
  sd.definition.name = names.take(options.name);
  if (samePrimary != nullptr) {
    w.comment("  The built-in \"{}\" has this primary connection but not these secondary ones;",
              samePrimary->name);
    w.comment("  this definition comes before the catalogue and takes its place.");
  }
  w.raw(definitionToml(sd.definition));
  w.comment("Then allow it: [[rules]] with protocols = [\"{}\"].", sd.definition.name);
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

  bool controlChannel = false;
  const auto groups = groupConversations(all, mine, client, controlChannel);
  std::vector<std::string> taken;
  for (const auto& d : options.definitions) taken.push_back(d.name);
  UniqueNames names(taken);
  for (std::size_t gi = 0; gi < groups.size() && gi < options.definitionLimit; ++gi) {
    w.raw("\n");
    w.comment("Definition {} of {}: with {}", gi + 1, groups.size(), joined(groups[gi].remotes));
    SuggestedDefinition sd;
    writeDefinition(w, groups[gi], all, options, names, sd);
    out.definitions.push_back(std::move(sd));
  }
  if (groups.size() > options.definitionLimit) {
    w.raw("\n");
    w.comment("... and {} more: many ports with many hosts look like a scan, not one program;",
              groups.size() - options.definitionLimit);
    w.comment("narrow the capture with --filter or --client.");
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
  if (options.gatewayHost || local) w.raw(packetFiltersToml(table, client, mine, options));
  out.text = w.take();
  return out;
}

}  // namespace fwgate::monitor
