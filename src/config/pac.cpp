// The PAC script: plain ECMAScript 3 (the oldest engine a client may run it in is WinHTTP's), one
// data section built from the configuration and one fixed FindProxyForURL.
#include "config/pac.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

namespace fwgate::config {
namespace {

using policy::IpAddress;
using policy::IpRange;

// A JavaScript string literal: quotes, backslashes, control characters, DEL and the two line
// separators JavaScript knows besides \n are escaped, so no input can end the literal.
std::string jsString(std::string_view text) {
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
      out += escaped;
    } else if (c == 0xe2 && i + 2 < text.size() &&
               static_cast<unsigned char>(text[i + 1]) == 0x80 &&
               (static_cast<unsigned char>(text[i + 2]) == 0xa8 ||
                static_cast<unsigned char>(text[i + 2]) == 0xa9)) {
      // U+2028 and U+2029 end a line inside an ES3 string literal.
      out += static_cast<unsigned char>(text[i + 2]) == 0xa8 ? "\\u2028" : "\\u2029";
      i += 2;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  return out;
}

// Text for a // comment: printable ASCII only.
std::string commentText(std::string_view text) {
  std::string out;
  for (const char c : text) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return out;
}

std::uint32_t v4Number(const IpAddress& a) {
  return (std::uint32_t{a.bytes[0]} << 24) | (std::uint32_t{a.bytes[1]} << 16) |
         (std::uint32_t{a.bytes[2]} << 8) | std::uint32_t{a.bytes[3]};
}

std::string dotted(std::uint32_t n) {
  char text[16];
  std::snprintf(text, sizeof text, "%u.%u.%u.%u", n >> 24, (n >> 16) & 0xff, (n >> 8) & 0xff,
                n & 0xff);
  return text;
}

// An IPv4 range as the fewest CIDR blocks that cover exactly it: [address, mask] for isInNet().
void appendBlocks(const IpRange& range, std::vector<std::pair<std::string, std::string>>& out) {
  std::uint64_t start = v4Number(range.first);
  const std::uint64_t end = v4Number(range.last);
  while (start <= end) {
    int hostBits = 32;
    while (hostBits > 0 && (start & ((std::uint64_t{1} << hostBits) - 1)) != 0) --hostBits;
    while (hostBits > 0 && start + (std::uint64_t{1} << hostBits) - 1 > end) --hostBits;
    const std::uint32_t mask =
        hostBits == 32 ? 0 : static_cast<std::uint32_t>(0xffffffffu << hostBits);
    std::pair<std::string, std::string> block{dotted(static_cast<std::uint32_t>(start)),
                                              dotted(mask)};
    if (std::find(out.begin(), out.end(), block) == out.end()) out.push_back(std::move(block));
    start += std::uint64_t{1} << hostBits;
  }
}

// What the script sends direct for one client.
struct Direct {
  std::vector<std::string> networks;  // names, for the header
  std::vector<std::string> domains;
  std::vector<IpRange> ranges;

  void addDomain(const std::string& domain) {
    if (std::find(domains.begin(), domains.end(), domain) == domains.end()) {
      domains.push_back(domain);
    }
  }
  void addRange(const IpRange& range) {
    if (std::find(ranges.begin(), ranges.end(), range) == ranges.end()) ranges.push_back(range);
  }
  void addNetwork(const policy::Network& network) {
    networks.push_back(network.name);
    for (const auto& d : network.domains) addDomain(d);
    for (const auto& r : network.ranges) addRange(r);
  }
};

Direct directFor(const Config& config, const IpAddress& client) {
  Direct direct;
  if (const policy::Network* network = clientNetwork(config, client)) {
    direct.addNetwork(*network);
  } else {
    // Not a firewall client: what is local for it is every real network that holds it.
    for (const auto& network : config.networks) {
      if (network.any || (network.name == "loopback" && !client.isLoopback())) continue;
      if (network.containsAddress(client)) direct.addNetwork(network);
    }
  }
  for (const auto& d : config.webProxy.directDomains) direct.addDomain(d);
  for (const auto& r : config.webProxy.directRanges) direct.addRange(r);
  return direct;
}

std::string route(std::string_view proxy, std::string_view backup) {
  std::string out;
  if (!proxy.empty()) (out += "PROXY ") += proxy;
  if (!backup.empty()) {
    if (!out.empty()) out += "; ";
    out += backup;
  }
  return out.empty() ? std::string("DIRECT") : out;
}

template <typename T, typename F>
void appendArray(std::string& out, const std::vector<T>& items, F render) {
  if (items.empty()) {
    out += "[];\n";
    return;
  }
  out += "[\n";
  for (std::size_t i = 0; i < items.size(); ++i) {
    out += "  ";
    out += render(items[i]);
    out += i + 1 < items.size() ? ",\n" : "\n";
  }
  out += "];\n";
}

// The fixed part: helpers and FindProxyForURL over the data above it.
constexpr std::string_view kFunctions = R"js(
function fwgateIsIpv4(text) {
  if (!/^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$/.test(text)) return false;
  var parts = text.split(".");
  for (var i = 0; i < 4; i++) {
    if (parseInt(parts[i], 10) > 255) return false;
  }
  return true;
}

// An IPv6 literal as eight 16-bit numbers, or null.
function fwgateIpv6Words(text) {
  var zone = text.indexOf("%");
  if (zone >= 0) text = text.substring(0, zone);
  var lastColon = text.lastIndexOf(":");
  if (lastColon < 0) return null;
  var tail = text.substring(lastColon + 1);
  if (tail.indexOf(".") >= 0) {
    if (!fwgateIsIpv4(tail)) return null;
    var b = tail.split(".");
    text = text.substring(0, lastColon + 1) +
        (parseInt(b[0], 10) * 256 + parseInt(b[1], 10)).toString(16) + ":" +
        (parseInt(b[2], 10) * 256 + parseInt(b[3], 10)).toString(16);
  }
  var halves = text.split("::");
  if (halves.length > 2) return null;
  var head = halves[0] == "" ? [] : halves[0].split(":");
  var rest = (halves.length == 1 || halves[1] == "") ? [] : halves[1].split(":");
  var missing = 8 - head.length - rest.length;
  if (halves.length == 1 ? missing != 0 : missing < 1) return null;
  var groups = head;
  for (var i = 0; i < missing; i++) groups.push("0");
  groups = groups.concat(rest);
  var words = [];
  for (var k = 0; k < 8; k++) {
    if (!/^[0-9a-f]{1,4}$/.test(groups[k])) return null;
    words.push(parseInt(groups[k], 16));
  }
  return words;
}

function fwgateCompare6(a, b) {
  for (var i = 0; i < 8; i++) {
    if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
  }
  return 0;
}

function fwgateInRanges6(words) {
  for (var i = 0; i < fwgateDirectRanges6.length; i++) {
    var first = fwgateIpv6Words(fwgateDirectRanges6[i][0]);
    var last = fwgateIpv6Words(fwgateDirectRanges6[i][1]);
    if (fwgateCompare6(first, words) <= 0 && fwgateCompare6(words, last) <= 0) return true;
  }
  return false;
}

function fwgateInNets4(address) {
  for (var i = 0; i < fwgateDirectNets4.length; i++) {
    if (isInNet(address, fwgateDirectNets4[i][0], fwgateDirectNets4[i][1])) return true;
  }
  return false;
}

function FindProxyForURL(url, host) {
  // Lower-case first: names in the configuration are lower-case, and the comparisons below are
  // exact (TMG's generated scripts missed mixed-case host names).
  host = host.toLowerCase();
  if (host.charAt(0) == "[" && host.charAt(host.length - 1) == "]") {
    host = host.substring(1, host.length - 1);
  }
  if (host.length > 1 && host.charAt(host.length - 1) == ".") {
    host = host.substring(0, host.length - 1);
  }
  if (host.indexOf(":") >= 0) {
    var words = fwgateIpv6Words(host);
    if (words == null) return fwgateRoute;
    var mapped = words[5] == 65535;
    for (var i = 0; i < 5; i++) {
      if (words[i] != 0) mapped = false;
    }
    if (!mapped) return fwgateInRanges6(words) ? "DIRECT" : fwgateRoute;
    host = (words[6] >> 8) + "." + (words[6] & 255) + "." + (words[7] >> 8) + "." +
        (words[7] & 255);
  }
  // An address literal: its ranges. isInNet() is called on addresses only, never on a name.
  if (fwgateIsIpv4(host)) return fwgateInNets4(host) ? "DIRECT" : fwgateRoute;
  if (isPlainHostName(host) || host == "localhost" || dnsDomainIs(host, ".localhost")) {
    return "DIRECT";
  }
  for (var d = 0; d < fwgateDirectDomains.length; d++) {
    var domain = fwgateDirectDomains[d];
    if (host == domain || dnsDomainIs(host, "." + domain)) return "DIRECT";
  }
  return fwgateRoute;
}
)js";

}  // namespace

const policy::Network* clientNetwork(const Config& config, const policy::IpAddress& client) {
  for (const auto& network : config.networks) {
    if (network.firewallClients && network.containsAddress(client)) return &network;
  }
  return nullptr;
}

std::string pacScript(const Config& config, const policy::IpAddress& client,
                      std::string_view proxy) {
  const Direct direct = directFor(config, client);
  std::vector<std::pair<std::string, std::string>> nets4;
  std::vector<std::pair<std::string, std::string>> ranges6;
  // The implicit local ranges first: loopback and link-local are never proxied.
  appendBlocks(*IpRange::parse("127.0.0.0/8"), nets4);
  appendBlocks(*IpRange::parse("169.254.0.0/16"), nets4);
  ranges6.emplace_back("::1", "::1");
  ranges6.emplace_back("fe80::", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
  for (const IpRange& range : direct.ranges) {
    if (!range.first.v6) {
      appendBlocks(range, nets4);
      continue;
    }
    std::pair<std::string, std::string> pair{range.first.toString(), range.last.toString()};
    if (std::find(ranges6.begin(), ranges6.end(), pair) == ranges6.end()) {
      ranges6.push_back(std::move(pair));
    }
  }

  std::string out;
  out += "// fwgate automatic configuration script (FindProxyForURL) for the client ";
  out += client.toString();
  out += ".\n// Local for it: ";
  if (direct.networks.empty()) {
    out += "no network of the gateway's";
  } else {
    out += direct.networks.size() == 1 ? "network " : "networks ";
    for (std::size_t i = 0; i < direct.networks.size(); ++i) {
      if (i != 0) out += ", ";
      out += commentText(direct.networks[i]);
    }
  }
  out += " (its ranges and domains),\n// and [web_proxy] direct_ranges and direct_domains.\n";
  out +=
      "// Direct: single-label names, localhost, loopback and link-local addresses, and those\n"
      "// domains and ranges; everything else through the Web Proxy, then the backup route.\n"
      "// No name is resolved here: dnsResolve() (or isInNet() on a name) would hold the browser\n"
      "// up on a DNS query for every request, so an address range applies only to a URL whose\n"
      "// host is an address literal. List the names of such hosts in direct_domains.\n\n";
  out += "var fwgateRoute = ";
  out += jsString(route(proxy, config.webProxy.backupRoute));
  out += ";\n";
  out += "// Names: each matches itself and every name below it.\nvar fwgateDirectDomains = ";
  appendArray(out, direct.domains, [](const std::string& d) { return jsString(d); });
  out += "// IPv4 blocks: [address, mask] for isInNet().\nvar fwgateDirectNets4 = ";
  appendArray(out, nets4, [](const std::pair<std::string, std::string>& n) {
    std::string item = "[";
    item += jsString(n.first);
    item += ", ";
    item += jsString(n.second);
    item += "]";
    return item;
  });
  out += "// IPv6 ranges: [first, last], inclusive.\nvar fwgateDirectRanges6 = ";
  appendArray(out, ranges6, [](const std::pair<std::string, std::string>& r) {
    std::string item = "[";
    item += jsString(r.first);
    item += ", ";
    item += jsString(r.second);
    item += "]";
    return item;
  });
  out += kFunctions;
  return out;
}

}  // namespace fwgate::config
