#include "filters/ruleset.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace fwgate::filters {
namespace {

using config::PacketFilter;
using Direction = PacketFilter::Direction;
using LocalHost = PacketFilter::LocalHost;

// A double-quoted nft string: bytes nft cannot carry in one become '_', at most 128 of them
// (nft's limit for a comment). Filter and interface names never need it; it keeps the script
// sound whatever it is given.
std::string nftString(std::string_view text) {
  std::string out = "\"";
  for (const char c : text.substr(0, 128)) {
    const bool plain = c > ' ' && c < 0x7f && c != '"' && c != '\\';
    out += plain || c == ' ' ? c : '_';
  }
  out += '"';
  return out;
}

std::string interfaceSet(const std::vector<std::string>& interfaces) {
  std::string out = "{ ";
  for (std::size_t i = 0; i < interfaces.size(); ++i) {
    out += fmt::format("{}{}", i == 0 ? "" : ", ", nftString(interfaces[i]));
  }
  return out + " }";
}

// The matches of one filter for packets going one way: `inbound` from the remote host to the
// local host (remote = source), else from the local host to the remote host.
std::string matches(const PacketFilter& f, bool inbound) {
  std::vector<std::string> parts;
  const auto address = [&](const char* which, const policy::IpAddress& first, std::string text) {
    parts.push_back(fmt::format("{} {} {}", first.v6 ? "ip6" : "ip", which, text));
  };
  const auto remote = [&](const char* which) {
    if (f.remoteHost) address(which, f.remoteHost->first, f.remoteHost->toString());
  };
  const auto local = [&](const char* which) {
    if (f.localAddress) address(which, *f.localAddress, f.localAddress->toString());
  };
  if (inbound) {
    remote("saddr");
    local("daddr");
  } else {
    local("saddr");
    remote("daddr");
  }
  const std::string protocol = config::ipProtocolName(f.protocol);
  if (f.carriesPorts() && (f.localPort || f.remotePort)) {
    const auto& sport = inbound ? f.remotePort : f.localPort;
    const auto& dport = inbound ? f.localPort : f.remotePort;
    if (sport) parts.push_back(fmt::format("{} sport {}", protocol, sport->toString()));
    if (dport) parts.push_back(fmt::format("{} dport {}", protocol, dport->toString()));
  } else if (f.isIcmp() && f.icmpType) {
    parts.push_back(fmt::format("{} type {}", protocol, *f.icmpType));
    if (f.icmpCode) parts.push_back(fmt::format("{} code {}", protocol, *f.icmpCode));
  } else if (f.protocol == PacketFilter::kIcmpv6) {
    parts.push_back("meta l4proto ipv6-icmp");
  } else {
    parts.push_back(fmt::format("meta l4proto {}", protocol));
  }
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : " ") + p;
  return out;
}

bool isInbound(const PacketFilter& f) {
  return f.direction != Direction::Outbound;
}

bool isOutbound(const PacketFilter& f) {
  return f.direction != Direction::Inbound;
}

bool isInternal(const PacketFilter& f) {
  return f.localHost == LocalHost::InternalComputer;
}

// One line of a chain, indented.
class Chain {
 public:
  Chain(std::string& out, std::string_view name, std::string_view hook) : out_(out) {
    out_ += fmt::format("  chain {} {{\n", name);
    line(fmt::format("type filter hook {} priority filter; policy accept;", hook));
  }
  ~Chain() { out_ += "  }\n"; }
  Chain(const Chain&) = delete;
  Chain& operator=(const Chain&) = delete;

  void line(std::string_view text) { out_ += fmt::format("    {}\n", text); }
  // `prefix` then the filter's matches, counted under its name.
  void filter(std::string_view prefix, const PacketFilter& f, bool inbound) {
    line(fmt::format("{}{} counter accept comment {}", prefix, matches(f, inbound),
                     nftString(f.name)));
  }
  void counted(std::string_view match, std::string_view verdict, std::string_view comment) {
    line(fmt::format("{}{}counter {} comment {}", match, match.empty() ? "" : " ", verdict,
                     nftString(comment)));
  }

 private:
  std::string& out_;
};

constexpr std::string_view kNeighbourDiscoveryIn =
    "icmpv6 type { nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255";
constexpr std::string_view kNeighbourDiscoveryOut =
    "icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255";
constexpr std::string_view kMulticastListeners =
    "icmpv6 type { mld-listener-query, mld-listener-report, mld-listener-done, "
    "mld2-listener-report } ip6 hoplimit 1";

void input(std::string& out, const config::PacketFilterSettings& s, const std::string& ext) {
  Chain c(out, "input", "input");
  c.line(fmt::format("iifname != {} accept", ext));
  c.line("ct state established,related accept");
  // IPv6 on the link needs these (addresses, routers, multicast snooping switches).
  c.counted(kNeighbourDiscoveryIn, "accept", kCounterNeighbourDiscovery);
  c.counted(kMulticastListeners, "accept", kCounterNeighbourDiscovery);
  c.counted("ct state invalid", "drop", kCounterInvalid);
  for (const PacketFilter& f : s.filters) {
    if (isInbound(f) && !isInternal(f)) c.filter("", f, true);
  }
  c.counted(fmt::format("tcp dport @{}", kDynamicSet), "accept", kCounterDynamic);
  c.counted(fmt::format("udp dport @{}", kDynamicUdpSet), "accept", kCounterDynamicUdp);
  c.counted("", "drop", kCounterNotAdmitted);
}

// Internal computers: inbound from the external interfaces, outbound to them.
void forward(std::string& out, const config::PacketFilterSettings& s, const std::string& ext) {
  Chain c(out, "forward", "forward");
  c.line("ct state established,related accept");
  const std::string in = fmt::format("iifname {} ", ext);
  c.counted(in + "ct state invalid", "drop", kCounterInvalid);
  for (const PacketFilter& f : s.filters) {
    if (isInbound(f) && isInternal(f)) c.filter(in, f, true);
  }
  c.counted(fmt::format("iifname {}", ext), "drop", kCounterNotAdmittedForward);
  const std::string toExt = fmt::format("oifname {} ", ext);
  for (const PacketFilter& f : s.filters) {
    if (isOutbound(f) && isInternal(f)) c.filter(toExt, f, false);
  }
  if (s.outboundDrop) {
    c.counted(fmt::format("oifname {}", ext), "drop", kCounterOutboundNotAdmittedForward);
  }
}

void output(std::string& out, const config::PacketFilterSettings& s, const std::string& ext,
            const RenderOptions& options) {
  Chain c(out, "output", "output");
  c.line(fmt::format("oifname != {} accept", ext));
  c.line("ct state established,related accept");
  for (const PacketFilter& f : s.filters) {
    if (isOutbound(f) && !isInternal(f)) c.filter("", f, false);
  }
  if (!s.outboundDrop) {
    c.counted("", "accept", kCounterOutbound);
    return;
  }
  c.counted(fmt::format("meta skuid {}", options.gatewayUid), "accept", kCounterGatewayUser);
  c.counted(kNeighbourDiscoveryOut, "accept", kCounterNeighbourDiscovery);
  c.counted(kMulticastListeners, "accept", kCounterNeighbourDiscovery);
  c.counted("", "drop", kCounterOutboundNotAdmitted);
}

std::string elementsScript(std::string_view verb, const std::vector<std::string>& elements,
                           bool udp) {
  if (elements.empty()) return {};
  std::string list;
  for (const std::string& e : elements) list += (list.empty() ? "" : ", ") + e;
  return fmt::format("{} element {} {} {} {{ {} }}\n", verb, kFamily, kTable,
                     udp ? kDynamicUdpSet : kDynamicSet, list);
}

std::uint64_t number(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer() || it->get<std::int64_t>() < 0) return 0;
  return it->get<std::uint64_t>();
}

}  // namespace

std::string flushScript() {
  return fmt::format("add table {0} {1}\ndelete table {0} {1}\n", kFamily, kTable);
}

std::string renderRuleset(const config::PacketFilterSettings& settings,
                          const RenderOptions& options) {
  std::string out = flushScript();
  out += fmt::format("table {} {} {{\n", kFamily, kTable);
  out += fmt::format(
      "  set {} {{\n    type inet_service\n    flags timeout\n    comment {}\n  }}\n", kDynamicSet,
      nftString("TCP ports the gateway opened: remoted listens, SOCKS BIND"));
  out += fmt::format(
      "  set {} {{\n    type inet_service\n    flags timeout\n    comment {}\n  }}\n",
      kDynamicUdpSet, nftString("UDP ports the gateway opened: published UDP associations"));
  if (settings.interfaces.empty()) {
    // Nothing to tell the external side by: every chain would filter loopback and the internal
    // side too. The table is there, and filters nothing.
    out += "  # packet_filters.interfaces is empty: no interface is filtered\n";
    for (const char* hook : {"input", "forward", "output"}) {
      const Chain empty(out, hook, hook);
    }
  } else {
    const std::string ext = interfaceSet(settings.interfaces);
    input(out, settings, ext);
    forward(out, settings, ext);
    output(out, settings, ext, options);
  }
  out += "}\n";
  return out;
}

std::string addDynamicPortScript(std::uint16_t port, std::chrono::seconds timeout, bool udp) {
  return elementsScript("add", {fmt::format("{} timeout {}s", port, timeout.count())}, udp);
}

std::string removeDynamicPortScript(std::uint16_t port, bool udp) {
  // Added first (a no-op when present) so that a port whose element already timed out is
  // removed without an error: nft runs the script as one transaction.
  return elementsScript("add", {std::to_string(port)}, udp) +
         elementsScript("delete", {std::to_string(port)}, udp);
}

std::string refreshDynamicPortsScript(const std::vector<std::uint16_t>& ports,
                                      std::chrono::seconds timeout, bool udp) {
  std::vector<std::string> present;
  std::vector<std::string> renewed;
  for (const std::uint16_t port : ports) {
    present.push_back(std::to_string(port));
    renewed.push_back(fmt::format("{} timeout {}s", port, timeout.count()));
  }
  // add (in case one timed out), delete, add again with a fresh timeout: one transaction.
  return elementsScript("add", present, udp) + elementsScript("delete", present, udp) +
         elementsScript("add", renewed, udp);
}

std::vector<Counter> parseCounters(std::string_view nftJson) {
  std::vector<Counter> out;
  const nlohmann::json doc = nlohmann::json::parse(nftJson, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return out;
  const auto objects = doc.find("nftables");
  if (objects == doc.end() || !objects->is_array()) return out;
  for (const nlohmann::json& object : *objects) {
    if (!object.is_object()) continue;
    const auto rule = object.find("rule");
    if (rule == object.end() || !rule->is_object()) continue;
    const auto comment = rule->find("comment");
    const auto exprs = rule->find("expr");
    if (comment == rule->end() || !comment->is_string() || exprs == rule->end() ||
        !exprs->is_array()) {
      continue;
    }
    for (const nlohmann::json& e : *exprs) {
      if (!e.is_object()) continue;
      const auto counter = e.find("counter");
      if (counter == e.end() || !counter->is_object()) continue;
      const std::string& name = comment->get_ref<const std::string&>();
      auto it =
          std::find_if(out.begin(), out.end(), [&](const Counter& c) { return c.name == name; });
      if (it == out.end()) it = out.insert(out.end(), Counter{name, 0, 0});
      it->packets += number(*counter, "packets");
      it->bytes += number(*counter, "bytes");
      break;
    }
  }
  return out;
}

}  // namespace fwgate::filters
