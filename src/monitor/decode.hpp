// Sans-I/O decoding of one captured frame: link layer (Ethernet with 802.1Q/802.1ad tags, Linux
// cooked capture v1 and v2, raw IP, BSD loopback), IPv4, IPv6 (extension headers skipped), TCP,
// UDP, ICMP and ICMPv6. No allocation, no exceptions: a truncated or malformed frame decodes as
// far as its bytes go and says where it stopped (`problem`).
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "policy/address.hpp"

namespace fwgate::monitor {

// pcap link-layer header types (LINKTYPE_* / DLT_* values, as pcap_datalink() reports them).
namespace link {
inline constexpr int kNull = 0;         // BSD loopback: 4-byte host-order address family
inline constexpr int kEthernet = 1;     // DLT_EN10MB
inline constexpr int kRaw = 12;         // DLT_RAW on Linux (also 14 on some BSDs, 101 in files)
inline constexpr int kRawAlt = 14;      // DLT_RAW on OpenBSD
inline constexpr int kRawFile = 101;    // LINKTYPE_RAW
inline constexpr int kLinuxSll = 113;   // Linux cooked capture v1 (tcpdump -i any, old)
inline constexpr int kIpv4 = 228;       // LINKTYPE_IPV4
inline constexpr int kIpv6 = 229;       // LINKTYPE_IPV6
inline constexpr int kLinuxSll2 = 276;  // Linux cooked capture v2 (tcpdump -i any, 4.99+)
}  // namespace link

// Is `linkType` one decode() understands?
bool supportedLinkType(int linkType);

enum class Network : std::uint8_t { None, Ipv4, Ipv6, Arp, Other };
enum class Transport : std::uint8_t { None, Tcp, Udp, Icmp, Icmpv6, Other };

// TCP flags, in the bits of the TCP header's flags byte.
namespace tcpflag {
inline constexpr std::uint8_t kFin = 0x01;
inline constexpr std::uint8_t kSyn = 0x02;
inline constexpr std::uint8_t kRst = 0x04;
inline constexpr std::uint8_t kPsh = 0x08;
inline constexpr std::uint8_t kAck = 0x10;
inline constexpr std::uint8_t kUrg = 0x20;
}  // namespace tcpflag

struct TcpHeader {
  std::uint16_t srcPort = 0;
  std::uint16_t dstPort = 0;
  std::uint32_t seq = 0;
  std::uint32_t ack = 0;
  std::uint8_t flags = 0;           // FIN..URG in the low six bits, ECE 0x40, CWR 0x80
  std::uint8_t headerLength = 0;    // data offset in bytes (20..60)
  std::uint16_t window = 0;         // as on the wire (not scaled)
  std::uint32_t payloadLength = 0;  // segment data bytes, from the IP length (not the snap length)
};

struct UdpHeader {
  std::uint16_t srcPort = 0;
  std::uint16_t dstPort = 0;
  std::uint16_t length = 0;         // the UDP length field (header + data)
  std::uint32_t payloadLength = 0;  // data bytes, from the IP length
};

// ICMP and ICMPv6. For errors (destination unreachable, time exceeded, ...) the quoted packet's
// addresses, protocol and ports: what the error is about.
struct IcmpHeader {
  std::uint8_t type = 0;
  std::uint8_t code = 0;
  std::uint16_t id = 0;             // echo request/reply
  std::uint16_t sequence = 0;       // echo request/reply
  std::uint32_t payloadLength = 0;  // bytes after the 8-byte ICMP header
  bool hasQuoted = false;
  policy::IpAddress quotedSrc;
  policy::IpAddress quotedDst;
  std::uint8_t quotedProtocol = 0;
  bool hasQuotedPorts = false;  // the quote holds a TCP/UDP header's ports
  std::uint16_t quotedSrcPort = 0;
  std::uint16_t quotedDstPort = 0;
};

struct Frame {
  std::uint32_t capturedLength = 0;
  std::uint32_t wireLength = 0;

  // Link layer.
  std::uint16_t etherType = 0;          // after any VLAN tags; 0 when the link type has none
  std::array<std::uint16_t, 2> vlan{};  // VLAN IDs, outer first
  std::uint8_t vlanCount = 0;           // tags seen (at most 2 are kept; more are skipped)

  // Network layer.
  Network network = Network::None;
  policy::IpAddress src;  // as on the wire: an IPv6 packet's ::ffff:a.b.c.d stays IPv6
  policy::IpAddress dst;
  std::uint8_t ipProtocol = 0;        // IPv4 protocol / IPv6 last next-header (6 TCP, 17 UDP, ...)
  std::uint8_t ttl = 0;               // TTL / hop limit
  std::uint32_t ipPayloadLength = 0;  // bytes after the IP header(s), by the IP length fields
  bool fragment = false;              // not the first fragment: no transport header in it
  std::uint16_t fragmentOffset = 0;   // in bytes
  bool moreFragments = false;
  std::uint32_t fragmentId = 0;

  // Transport layer: the member `transport` names is the one filled in.
  Transport transport = Transport::None;
  TcpHeader tcp;
  UdpHeader udp;
  IcmpHeader icmp;

  // Where decoding stopped early, as a short phrase ("truncated TCP header", "IPv4 header
  // length 12 < 20"); nullptr when every layer present decoded. Static strings only.
  const char* problem = nullptr;
};

// Decodes `bytes` (the captured part of a frame of `wireLength` bytes on the wire) of link type
// `linkType`. Never reads outside `bytes`; never fails: an unsupported link type or a bad header
// leaves the later layers None and sets `problem`.
Frame decode(int linkType, std::span<const std::uint8_t> bytes, std::uint32_t wireLength);

}  // namespace fwgate::monitor
