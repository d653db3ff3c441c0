// Static packet filters for a program on the gateway host (the seed's "Custom Static Packet
// Filters"), from its conversations: one per port and direction, limited to the remote host.
#include <fmt/format.h>

#include <map>
#include <set>
#include <tuple>

#include "monitor/frame_line.hpp"
#include "monitor/snippet.hpp"
#include "monitor/suggest.hpp"

namespace fwgate::monitor {
namespace {

struct Filter {
  std::string protocol, direction, localPort, remotePort, remoteHost, icmpType;
  std::vector<std::size_t> conversations;
  std::set<std::uint16_t> callbackPorts;  // connections back to ports the program picked
  bool echo = false;
};

std::string quoted(const std::string& s) {
  return fmt::format("\"{}\"", s);
}

// ::ffff:a.b.c.d is an IPv4 host to the configuration (its ranges unmap it).
bool mappedV4(const policy::IpAddress& a) {
  if (!a.v6) return false;
  for (int i = 0; i < 10; ++i) {
    if (a.bytes[i] != 0) return false;
  }
  return a.bytes[10] == 0xff && a.bytes[11] == 0xff;
}

}  // namespace

std::string packetFiltersToml(const ConversationTable& table, const policy::IpAddress& client,
                              const std::vector<std::size_t>& mine, const SuggestOptions& options) {
  std::vector<Filter> filters;
  std::map<std::tuple<std::string, std::string, std::string, std::string, std::string, std::string>,
           std::size_t>
      index;
  const auto add = [&](Filter f) {
    const auto key = std::make_tuple(f.protocol, f.direction, f.localPort, f.remotePort,
                                     f.remoteHost, f.icmpType);
    const auto [at, added] = index.emplace(key, filters.size());
    if (added) {
      filters.push_back(std::move(f));
      return;
    }
    auto& have = filters[at->second];
    have.conversations.insert(have.conversations.end(), f.conversations.begin(),
                              f.conversations.end());
    have.callbackPorts.insert(f.callbackPorts.begin(), f.callbackPorts.end());
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
    f.localPort = opened ? quoted("any") : std::to_string(local.port);
    f.remotePort = opened ? std::to_string(remote.port) : quoted("any");
    f.remoteHost = addressText(remote.address);
    f.conversations.push_back(i);
    if (opened) contacted.insert(remote.address);
    // A host the program contacted first, connecting back to a port the program picked (FTP's
    // PORT): that port changes every time, so the filter covers the range it comes from.
    if (!opened && contacted.contains(remote.address) && ephemeral.contains(local.port)) {
      f.localPort = quoted(ephemeral.toString());
      f.callbackPorts.insert(local.port);
    }
    add(std::move(f));
  }
  for (const auto& e : table.echoes()) {
    if (e.initiator != client && e.responder != client) continue;
    const bool opened = e.initiator == client;
    const auto& remote = opened ? e.responder : e.initiator;
    if (mappedV4(remote)) continue;  // an IPv4 host over ICMPv6: nothing a filter can name
    Filter f;
    f.protocol = e.v6 ? "icmpv6" : "icmp";
    f.direction = opened ? "outbound" : "inbound";
    f.icmpType = e.v6 ? "128" : "8";
    f.remoteHost = addressText(remote);
    f.echo = true;
    add(std::move(f));
  }
  if (filters.empty()) return {};

  std::string out;
  auto it = std::back_inserter(out);
  out +=
      "\n# Static packet filters: the program runs on the gateway host itself, so its own\n"
      "# packets cross the external interface. Answers to what it sends are admitted as\n"
      "# established traffic; each inbound filter opens a port to the remote host named.\n"
      "# They apply when [packet_filters] enabled = true.\n";
  UniqueNames names(options.filterNames);
  for (std::size_t n = 0; n < filters.size() && n < options.filterLimit; ++n) {
    const auto& f = filters[n];
    out += '\n';
    if (!f.callbackPorts.empty()) {
      fmt::format_to(it,
                     "# {} {}: {}: {} connected back to ports the program picked ({}), from "
                     "this host's\n# range for them (net.ipv4.ip_local_port_range {}); only "
                     "that host may use it.\n",
                     f.protocol, f.direction, conversationNames(f.conversations), f.remoteHost,
                     fmt::join(f.callbackPorts, ", "), ephemeral.toString());
    } else if (f.echo) {
      fmt::format_to(it, "# {} echo {} (ping)\n", f.protocol,
                     f.direction == "outbound" ? "sent" : "answered");
    } else {
      fmt::format_to(it, "# {} {}: {}\n", f.protocol, f.direction,
                     conversationNames(f.conversations));
    }
    fmt::format_to(it,
                   "[[packet_filters.filter]]\nname = \"{}\"\nprotocol = \"{}\"\n"
                   "direction = \"{}\"\n",
                   names.take(options.name + "-filter"), f.protocol, f.direction);
    if (f.echo) {
      fmt::format_to(it, "icmp_type = {}\n", f.icmpType);
    } else {
      fmt::format_to(it, "local_port = {}\nremote_port = {}\n", f.localPort, f.remotePort);
    }
    fmt::format_to(it, "remote_host = \"{}\"\n", f.remoteHost);
  }
  if (filters.size() > options.filterLimit) {
    fmt::format_to(it, "\n# ... and {} more filters: narrow the capture with --filter.\n",
                   filters.size() - options.filterLimit);
  }
  return out;
}

}  // namespace fwgate::monitor
