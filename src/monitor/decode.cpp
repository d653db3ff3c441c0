#include "monitor/decode.hpp"

#include <algorithm>
#include <cstddef>
#include <limits>

namespace fwgate::monitor {
namespace {

constexpr std::uint16_t kEtherIpv4 = 0x0800;
constexpr std::uint16_t kEtherArp = 0x0806;
constexpr std::uint16_t kEtherIpv6 = 0x86dd;

constexpr std::uint8_t kProtoIcmp = 1;
constexpr std::uint8_t kProtoTcp = 6;
constexpr std::uint8_t kProtoUdp = 17;
constexpr std::uint8_t kProtoIcmpv6 = 58;
constexpr std::uint8_t kProtoNoNext = 59;

// Messages for a header-length field below its minimum of 5 words, indexed by the field.
constexpr const char* kShortIpv4Header[5] = {
    "IPv4 header length 0 < 20", "IPv4 header length 4 < 20", "IPv4 header length 8 < 20",
    "IPv4 header length 12 < 20", "IPv4 header length 16 < 20"};
constexpr const char* kShortTcpOffset[5] = {"TCP data offset 0 < 20", "TCP data offset 4 < 20",
                                            "TCP data offset 8 < 20", "TCP data offset 12 < 20",
                                            "TCP data offset 16 < 20"};

// Big-endian reads from a span; every read is bounds-checked and yields 0 past the end, so a
// caller that checked has() for a whole header cannot be hurt by one it did not.
class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}

  bool has(std::size_t offset, std::size_t n) const {
    return offset <= bytes_.size() && n <= bytes_.size() - offset;
  }
  std::uint8_t u8(std::size_t at) const { return has(at, 1) ? bytes_[at] : 0; }
  std::uint16_t u16(std::size_t at) const {
    if (!has(at, 2)) return 0;
    return static_cast<std::uint16_t>(bytes_[at] << 8 | bytes_[at + 1]);
  }
  std::uint32_t u32(std::size_t at) const {
    if (!has(at, 4)) return 0;
    return std::uint32_t{u16(at)} << 16 | u16(at + 2);
  }
  std::uint32_t u32le(std::size_t at) const {
    if (!has(at, 4)) return 0;
    return std::uint32_t{bytes_[at]} | std::uint32_t{bytes_[at + 1]} << 8 |
           std::uint32_t{bytes_[at + 2]} << 16 | std::uint32_t{bytes_[at + 3]} << 24;
  }
  policy::IpAddress ipv4(std::size_t at) const { return address(at, 4, false); }
  policy::IpAddress ipv6(std::size_t at) const { return address(at, 16, true); }

  // The bytes from `offset`, at most `limit` of them (fewer when the capture is shorter).
  Reader slice(std::size_t offset,
               std::size_t limit = std::numeric_limits<std::size_t>::max()) const {
    if (offset >= bytes_.size()) return Reader({});
    return Reader(bytes_.subspan(offset, std::min(limit, bytes_.size() - offset)));
  }

 private:
  // Built directly, not through fromV6(): an IPv4-mapped IPv6 address stays IPv6.
  policy::IpAddress address(std::size_t at, std::size_t n, bool v6) const {
    policy::IpAddress a;
    a.v6 = v6;
    if (has(at, n))
      std::copy_n(bytes_.begin() + static_cast<std::ptrdiff_t>(at), n, a.bytes.begin());
    return a;
  }

  std::span<const std::uint8_t> bytes_;
};

bool stop(Frame& f, const char* why) {
  f.problem = why;
  return false;
}

std::uint32_t minus(std::uint32_t a, std::uint32_t b) {
  return a > b ? a - b : 0;
}

// Where the network header starts and what it is, as the link layer says.
struct Link {
  Network next = Network::None;
  std::size_t offset = 0;
};

Link linkStop(Frame& f, const char* why) {
  f.problem = why;
  return {};
}

Network networkOf(std::uint16_t etherType) {
  switch (etherType) {
    case kEtherIpv4:
      return Network::Ipv4;
    case kEtherIpv6:
      return Network::Ipv6;
    case kEtherArp:
      return Network::Arp;
    default:
      return Network::Other;
  }
}

bool isVlanTag(std::uint16_t etherType) {
  return etherType == 0x8100 || etherType == 0x88a8 || etherType == 0x9100;
}

// The EtherType `type` ends at `offset`; any VLAN tags follow (4 bytes each: TCI, EtherType).
Link afterEtherType(Frame& f, Reader r, std::uint16_t type, std::size_t offset) {
  while (isVlanTag(type)) {
    if (!r.has(offset, 4)) return linkStop(f, "truncated VLAN tag");
    if (f.vlanCount < f.vlan.size()) f.vlan[f.vlanCount] = r.u16(offset) & 0x0fff;
    if (f.vlanCount < std::numeric_limits<std::uint8_t>::max()) ++f.vlanCount;
    type = r.u16(offset + 2);
    offset += 4;
  }
  f.etherType = type;
  return {networkOf(type), offset};
}

Link rawIp(Frame& f, Reader r) {
  if (!r.has(0, 1)) return linkStop(f, "truncated IP header");
  switch (r.u8(0) >> 4) {
    case 4:
      return {Network::Ipv4, 0};
    case 6:
      return {Network::Ipv6, 0};
    default:
      return linkStop(f, "raw frame neither IPv4 nor IPv6");
  }
}

// BSD loopback: the address family in the capturing host's byte order, which a file read
// elsewhere may not share; a value that is no known family one way is tried the other way.
Link nullLoopback(Frame& f, Reader r) {
  if (!r.has(0, 4)) return linkStop(f, "truncated loopback header");
  for (const std::uint32_t family : {r.u32le(0), r.u32(0)}) {
    if (family == 2) return {Network::Ipv4, 4};
    if (family == 24 || family == 28 || family == 30) return {Network::Ipv6, 4};
  }
  return {Network::Other, 4};
}

Link decodeLink(Frame& f, int linkType, Reader r) {
  switch (linkType) {
    case link::kEthernet:
      if (!r.has(0, 14)) return linkStop(f, "truncated Ethernet header");
      return afterEtherType(f, r, r.u16(12), 14);
    case link::kLinuxSll:
      if (!r.has(0, 16)) return linkStop(f, "truncated Linux cooked header");
      return afterEtherType(f, r, r.u16(14), 16);
    case link::kLinuxSll2:
      if (!r.has(0, 20)) return linkStop(f, "truncated Linux cooked v2 header");
      return afterEtherType(f, r, r.u16(0), 20);
    case link::kRaw:
    case link::kRawAlt:
    case link::kRawFile:
      return rawIp(f, r);
    case link::kIpv4:
      return {Network::Ipv4, 0};
    case link::kIpv6:
      return {Network::Ipv6, 0};
    case link::kNull:
      return nullLoopback(f, r);
    default:
      return linkStop(f, "unsupported link type");
  }
}

// IPv4 at the start of `ip`, of which `wire` bytes were on the wire. On success `payload` holds
// the captured transport bytes (at most the IP length's worth).
bool decodeIpv4(Frame& f, Reader ip, std::uint32_t wire, Reader& payload) {
  if (!ip.has(0, 20)) return stop(f, "truncated IPv4 header");
  if (ip.u8(0) >> 4 != 4) return stop(f, "IPv4 header version not 4");
  const std::uint32_t ihl = ip.u8(0) & 0x0f;
  if (ihl < 5) return stop(f, kShortIpv4Header[ihl]);
  const std::uint32_t headerLength = ihl * 4;
  if (!ip.has(0, headerLength)) return stop(f, "truncated IPv4 header");

  f.network = Network::Ipv4;
  f.src = ip.ipv4(12);
  f.dst = ip.ipv4(16);
  f.ttl = ip.u8(8);
  f.ipProtocol = ip.u8(9);
  f.fragmentId = ip.u16(4);
  const std::uint16_t flagsOffset = ip.u16(6);
  f.fragmentOffset = static_cast<std::uint16_t>((flagsOffset & 0x1fff) * 8);
  f.moreFragments = (flagsOffset & 0x2000) != 0;
  f.fragment = f.fragmentOffset != 0;

  // TSO/GSO captures carry 0; a length past the wire is a lie: the wire is what there was.
  std::uint32_t total = ip.u16(2);
  if (total == 0 || total > wire) total = wire;
  if (total < headerLength) return stop(f, "IPv4 total length < header length");
  f.ipPayloadLength = total - headerLength;
  payload = ip.slice(headerLength, f.ipPayloadLength);
  return true;
}

// The size of the IPv6 extension header `next` at `at`, or 0 when `next` is not one.
std::size_t extensionSize(std::uint8_t next, Reader ip, std::size_t at) {
  switch (next) {
    case 0:   // hop-by-hop options
    case 43:  // routing
    case 60:  // destination options
      return (std::size_t{ip.u8(at + 1)} + 1) * 8;
    case 44:  // fragment
      return 8;
    case 51:  // authentication header: length in 4-octet units, minus 2
      return (std::size_t{ip.u8(at + 1)} + 2) * 4;
    default:
      return 0;
  }
}

bool decodeIpv6(Frame& f, Reader ip, std::uint32_t wire, Reader& payload) {
  if (!ip.has(0, 40)) return stop(f, "truncated IPv6 header");
  if (ip.u8(0) >> 4 != 6) return stop(f, "IPv6 header version not 6");

  f.network = Network::Ipv6;
  f.src = ip.ipv6(8);
  f.dst = ip.ipv6(24);
  f.ttl = ip.u8(7);
  std::uint8_t next = ip.u8(6);
  f.ipProtocol = next;

  // Payload length 0 is a jumbogram (or a TSO capture): the wire says how long it is.
  std::uint32_t length = ip.u16(4);
  if (length == 0 || length > wire - 40) length = wire - 40;
  f.ipPayloadLength = length;

  std::size_t at = 40;
  for (std::size_t size = extensionSize(next, ip, at); size != 0;
       size = extensionSize(next, ip, at)) {
    if (!ip.has(at, size) || size > length) return stop(f, "truncated IPv6 extension header");
    if (next == 44) {
      const std::uint16_t offsetFlags = ip.u16(at + 2);
      f.fragmentOffset = offsetFlags & 0xfff8;
      f.moreFragments = (offsetFlags & 1) != 0;
      f.fragmentId = ip.u32(at + 4);
      f.fragment = f.fragmentOffset != 0;
    }
    next = ip.u8(at);
    at += size;
    length -= static_cast<std::uint32_t>(size);
    f.ipProtocol = next;
    f.ipPayloadLength = length;
    if (f.fragment) break;
  }
  payload = ip.slice(at, length);
  return true;
}

bool decodeTcp(Frame& f, Reader seg) {
  if (!seg.has(0, 20)) return stop(f, "truncated TCP header");
  const std::uint8_t dataOffset = seg.u8(12) >> 4;
  if (dataOffset < 5) return stop(f, kShortTcpOffset[dataOffset]);
  const std::uint8_t headerLength = dataOffset * 4;
  if (!seg.has(0, headerLength)) return stop(f, "truncated TCP header");
  f.transport = Transport::Tcp;
  f.tcp.srcPort = seg.u16(0);
  f.tcp.dstPort = seg.u16(2);
  f.tcp.seq = seg.u32(4);
  f.tcp.ack = seg.u32(8);
  f.tcp.flags = seg.u8(13);
  f.tcp.headerLength = headerLength;
  f.tcp.window = seg.u16(14);
  f.tcp.payloadLength = minus(f.ipPayloadLength, headerLength);
  return true;
}

bool decodeUdp(Frame& f, Reader seg) {
  if (!seg.has(0, 8)) return stop(f, "truncated UDP header");
  f.transport = Transport::Udp;
  f.udp.srcPort = seg.u16(0);
  f.udp.dstPort = seg.u16(2);
  f.udp.length = seg.u16(4);
  f.udp.payloadLength = minus(f.ipPayloadLength, 8);
  return true;
}

// Ports of a quoted TCP or UDP header at `at`, when the quote holds them.
void quotedPorts(IcmpHeader& icmp, Reader quote, std::size_t at) {
  if (icmp.quotedProtocol != kProtoTcp && icmp.quotedProtocol != kProtoUdp) return;
  if (!quote.has(at, 4)) return;
  icmp.quotedSrcPort = quote.u16(at);
  icmp.quotedDstPort = quote.u16(at + 2);
  icmp.hasQuotedPorts = true;
}

bool quoteIpv4(Frame& f, Reader quote) {
  if (!quote.has(0, 20)) return stop(f, "truncated ICMP quoted header");
  const std::size_t headerLength = (quote.u8(0) & 0x0f) * 4u;
  if (quote.u8(0) >> 4 != 4 || headerLength < 20) {
    return stop(f, "ICMP quote not an IPv4 header");
  }
  f.icmp.hasQuoted = true;
  f.icmp.quotedSrc = quote.ipv4(12);
  f.icmp.quotedDst = quote.ipv4(16);
  f.icmp.quotedProtocol = quote.u8(9);
  if ((quote.u16(6) & 0x1fff) == 0) quotedPorts(f.icmp, quote, headerLength);
  return true;
}

// The quoted IPv6 header's own next header is taken as the protocol (no extension headers).
bool quoteIpv6(Frame& f, Reader quote) {
  if (!quote.has(0, 40)) return stop(f, "truncated ICMPv6 quoted header");
  if (quote.u8(0) >> 4 != 6) return stop(f, "ICMPv6 quote not an IPv6 header");
  f.icmp.hasQuoted = true;
  f.icmp.quotedSrc = quote.ipv6(8);
  f.icmp.quotedDst = quote.ipv6(24);
  f.icmp.quotedProtocol = quote.u8(6);
  quotedPorts(f.icmp, quote, 40);
  return true;
}

bool decodeIcmp(Frame& f, Reader seg, bool v6) {
  if (!seg.has(0, 8)) return stop(f, v6 ? "truncated ICMPv6 header" : "truncated ICMP header");
  f.transport = v6 ? Transport::Icmpv6 : Transport::Icmp;
  f.icmp.type = seg.u8(0);
  f.icmp.code = seg.u8(1);
  f.icmp.payloadLength = minus(f.ipPayloadLength, 8);
  const std::uint8_t t = f.icmp.type;
  const bool echo = v6 ? (t == 128 || t == 129) : (t == 0 || t == 8);
  if (echo) {
    f.icmp.id = seg.u16(4);
    f.icmp.sequence = seg.u16(6);
  } else if (v6 && t >= 1 && t <= 4) {
    return quoteIpv6(f, seg.slice(8));
  } else if (!v6 && (t == 3 || t == 4 || t == 5 || t == 11 || t == 12)) {
    return quoteIpv4(f, seg.slice(8));
  }
  return true;
}

bool decodeTransport(Frame& f, Reader seg) {
  switch (f.ipProtocol) {
    case kProtoTcp:
      return decodeTcp(f, seg);
    case kProtoUdp:
      return decodeUdp(f, seg);
    case kProtoIcmp:
      return decodeIcmp(f, seg, false);
    case kProtoIcmpv6:
      return decodeIcmp(f, seg, true);
    case kProtoNoNext:
      return true;
    default:
      f.transport = Transport::Other;
      return true;
  }
}

}  // namespace

bool supportedLinkType(int linkType) {
  switch (linkType) {
    case link::kNull:
    case link::kEthernet:
    case link::kRaw:
    case link::kRawAlt:
    case link::kRawFile:
    case link::kLinuxSll:
    case link::kIpv4:
    case link::kIpv6:
    case link::kLinuxSll2:
      return true;
    default:
      return false;
  }
}

Frame decode(int linkType, std::span<const std::uint8_t> bytes, std::uint32_t wireLength) {
  Frame f;
  f.capturedLength = static_cast<std::uint32_t>(
      std::min<std::size_t>(bytes.size(), std::numeric_limits<std::uint32_t>::max()));
  f.wireLength = std::max(wireLength, f.capturedLength);  // a capture is never longer than the wire
  const Reader r(bytes.first(f.capturedLength));

  const Link link = decodeLink(f, linkType, r);
  if (link.next == Network::None) return f;
  if (link.next == Network::Arp || link.next == Network::Other) {
    f.network = link.next;
    return f;
  }
  // offset <= capturedLength <= wireLength: what is left on the wire from the network header.
  const auto wire = f.wireLength - static_cast<std::uint32_t>(link.offset);
  Reader payload({});
  const bool ok = link.next == Network::Ipv4 ? decodeIpv4(f, r.slice(link.offset), wire, payload)
                                             : decodeIpv6(f, r.slice(link.offset), wire, payload);
  if (ok && !f.fragment) decodeTransport(f, payload);
  return f;
}

}  // namespace fwgate::monitor
