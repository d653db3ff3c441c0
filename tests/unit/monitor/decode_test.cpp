// Frame decoding: every link type, IPv4/IPv6 with options, extension headers and fragments,
// TCP/UDP/ICMP/ICMPv6, and frames cut at every length. Frames are assembled byte by byte here.
#include "monitor/decode.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

namespace fwgate::monitor {
namespace {

using Buffer = std::vector<std::uint8_t>;
using policy::IpAddress;

void put8(Buffer& b, unsigned v) {
  b.push_back(static_cast<std::uint8_t>(v));
}
void put16(Buffer& b, unsigned v) {
  put8(b, v >> 8);
  put8(b, v);
}
void put32(Buffer& b, std::uint32_t v) {
  put16(b, v >> 16);
  put16(b, v);
}
void append(Buffer& b, const Buffer& tail) {
  b.insert(b.end(), tail.begin(), tail.end());
}
Buffer filler(std::size_t n) {
  return Buffer(n, 0x78);
}

IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}

// ---- transport ----------------------------------------------------------------------------

struct Tcp {
  std::uint16_t src = 1124;
  std::uint16_t dst = 443;
  std::uint32_t seq = 28201;
  std::uint32_t ack = 0;
  std::uint8_t flags = tcpflag::kSyn;
  std::uint8_t dataOffset = 5;  // in words; options beyond 5 are NOPs
  std::uint16_t window = 8192;
};

Buffer tcp(const Tcp& t = {}, std::size_t payload = 0) {
  Buffer b;
  put16(b, t.src);
  put16(b, t.dst);
  put32(b, t.seq);
  put32(b, t.ack);
  put8(b, t.dataOffset << 4);
  put8(b, t.flags);
  put16(b, t.window);
  put32(b, 0);  // checksum, urgent pointer
  for (int i = 5; i < t.dataOffset; ++i) put32(b, 0x01010101);
  append(b, filler(payload));
  return b;
}

Buffer udp(std::uint16_t src, std::uint16_t dst, std::size_t payload) {
  Buffer b;
  put16(b, src);
  put16(b, dst);
  put16(b, static_cast<unsigned>(8 + payload));
  put16(b, 0);
  append(b, filler(payload));
  return b;
}

// An ICMP or ICMPv6 message: type, code, checksum, the 4-byte "rest of header", then `body`.
Buffer icmp(std::uint8_t type, std::uint8_t code, std::uint32_t rest, const Buffer& body) {
  Buffer b;
  put8(b, type);
  put8(b, code);
  put16(b, 0);
  put32(b, rest);
  append(b, body);
  return b;
}

// ---- network ------------------------------------------------------------------------------

struct V4 {
  std::uint8_t protocol = 6;
  std::uint8_t ihl = 5;  // options beyond 5 words are NOPs
  int totalLength = -1;  // -1: the real one
  std::uint16_t id = 0x1c46;
  std::uint16_t flagsOffset = 0;
  std::array<std::uint8_t, 4> src{10, 0, 0, 1};
  std::array<std::uint8_t, 4> dst{192, 0, 2, 10};
};

Buffer ipv4(const V4& h, const Buffer& payload) {
  const unsigned words = h.ihl < 5 ? 5 : h.ihl;
  Buffer b;
  put8(b, 0x40 | h.ihl);
  put8(b, 0);
  put16(b, h.totalLength >= 0 ? static_cast<unsigned>(h.totalLength)
                              : static_cast<unsigned>(words * 4 + payload.size()));
  put16(b, h.id);
  put16(b, h.flagsOffset);
  put8(b, 64);  // TTL
  put8(b, h.protocol);
  put16(b, 0);  // checksum
  b.insert(b.end(), h.src.begin(), h.src.end());
  b.insert(b.end(), h.dst.begin(), h.dst.end());
  for (unsigned i = 5; i < words; ++i) put32(b, 0x01010101);
  append(b, payload);
  return b;
}

constexpr std::array<std::uint8_t, 16> kV6Src{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                              0,    0,    0,    0,    0, 0, 0, 1};
constexpr std::array<std::uint8_t, 16> kV6Dst{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                              0,    0,    0,    0,    0, 0, 0, 2};
constexpr std::array<std::uint8_t, 16> kV6Mapped{0, 0, 0, 0, 0,   0, 0xff, 0xff,
                                                 0, 0, 0, 0, 192, 0, 2,    1};

Buffer ipv6(std::uint8_t next, const Buffer& payload, int payloadLength = -1,
            const std::array<std::uint8_t, 16>& src = kV6Src) {
  Buffer b;
  put32(b, 0x60000000);
  put16(b, payloadLength >= 0 ? static_cast<unsigned>(payloadLength)
                              : static_cast<unsigned>(payload.size()));
  put8(b, next);
  put8(b, 64);  // hop limit
  b.insert(b.end(), src.begin(), src.end());
  b.insert(b.end(), kV6Dst.begin(), kV6Dst.end());
  append(b, payload);
  return b;
}

// Hop-by-hop, routing or destination options: 8 bytes (next, length 0, PadN of 4, or zeros).
Buffer options8(std::uint8_t next) {
  Buffer b;
  put8(b, next);
  put8(b, 0);
  put16(b, 0x0104);  // PadN, 4 bytes
  put32(b, 0);
  return b;
}

Buffer fragment6(std::uint8_t next, std::uint16_t offset, bool more, std::uint32_t id) {
  Buffer b;
  put8(b, next);
  put8(b, 0);
  put16(b, offset | (more ? 1u : 0u));
  put32(b, id);
  return b;
}

// ---- link ---------------------------------------------------------------------------------

Buffer ethernet(std::uint16_t type, const Buffer& payload,
                const std::vector<std::pair<std::uint16_t, std::uint16_t>>& tags = {}) {
  Buffer b{0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2};
  for (const auto& [tpid, vid] : tags) {
    put16(b, tpid);
    put16(b, vid);
  }
  put16(b, type);
  append(b, payload);
  return b;
}

Buffer sll(std::uint16_t protocol, const Buffer& payload) {
  Buffer b;
  put16(b, 0);  // packet type: to us
  put16(b, 1);  // ARPHRD_ETHER
  put16(b, 6);  // address length
  for (int i = 0; i < 8; ++i) put8(b, i);
  put16(b, protocol);
  append(b, payload);
  return b;
}

Buffer sll2(std::uint16_t protocol, const Buffer& payload) {
  Buffer b;
  put16(b, protocol);
  put16(b, 0);  // reserved
  put32(b, 3);  // interface index
  put16(b, 1);  // ARPHRD_ETHER
  put8(b, 4);   // packet type: outgoing
  put8(b, 6);   // address length
  for (int i = 0; i < 8; ++i) put8(b, i);
  append(b, payload);
  return b;
}

Buffer loopback(std::uint32_t family, bool littleEndian, const Buffer& payload) {
  Buffer b;
  if (littleEndian) {
    for (int i = 0; i < 4; ++i) put8(b, family >> (8 * i));
  } else {
    put32(b, family);
  }
  append(b, payload);
  return b;
}

Frame decodeWhole(int linkType, const Buffer& b) {
  return decode(linkType, b, static_cast<std::uint32_t>(b.size()));
}

void expectSeedSyn(const Frame& f) {
  EXPECT_EQ(f.problem, nullptr) << f.problem;
  ASSERT_EQ(f.network, Network::Ipv4);
  EXPECT_EQ(f.src, ip("10.0.0.1"));
  EXPECT_EQ(f.dst, ip("192.0.2.10"));
  EXPECT_EQ(f.ipProtocol, 6);
  EXPECT_EQ(f.ttl, 64);
  EXPECT_EQ(f.ipPayloadLength, 20u);
  ASSERT_EQ(f.transport, Transport::Tcp);
  EXPECT_EQ(f.tcp.srcPort, 1124);
  EXPECT_EQ(f.tcp.dstPort, 443);
  EXPECT_EQ(f.tcp.seq, 28201u);
  EXPECT_EQ(f.tcp.ack, 0u);
  EXPECT_EQ(f.tcp.flags, tcpflag::kSyn);
  EXPECT_EQ(f.tcp.headerLength, 20);
  EXPECT_EQ(f.tcp.window, 8192);
  EXPECT_EQ(f.tcp.payloadLength, 0u);
}

const Buffer kSyn = ipv4({}, tcp());

// ---- link layers --------------------------------------------------------------------------

TEST(Decode, EthernetSyn) {
  const Buffer b = ethernet(0x0800, kSyn);
  const Frame f = decodeWhole(link::kEthernet, b);
  EXPECT_EQ(f.capturedLength, b.size());
  EXPECT_EQ(f.wireLength, b.size());
  EXPECT_EQ(f.etherType, 0x0800);
  EXPECT_EQ(f.vlanCount, 0);
  EXPECT_FALSE(f.fragment);
  EXPECT_EQ(f.fragmentId, 0x1c46u);
  expectSeedSyn(f);
}

TEST(Decode, SingleVlanTag) {
  const Frame f = decodeWhole(link::kEthernet, ethernet(0x0800, kSyn, {{0x8100, 0x2064}}));
  EXPECT_EQ(f.etherType, 0x0800);
  EXPECT_EQ(f.vlanCount, 1);
  EXPECT_EQ(f.vlan[0], 100);  // priority bits dropped
  EXPECT_EQ(f.vlan[1], 0);
  expectSeedSyn(f);
}

TEST(Decode, DoubleVlanTag) {
  const Frame f =
      decodeWhole(link::kEthernet, ethernet(0x0800, kSyn, {{0x88a8, 200}, {0x8100, 100}}));
  EXPECT_EQ(f.vlanCount, 2);
  EXPECT_EQ(f.vlan[0], 200);
  EXPECT_EQ(f.vlan[1], 100);
  expectSeedSyn(f);
}

TEST(Decode, ThirdVlanTagIsSkipped) {
  const Frame f = decodeWhole(
      link::kEthernet, ethernet(0x0800, kSyn, {{0x9100, 300}, {0x88a8, 200}, {0x8100, 100}}));
  EXPECT_EQ(f.vlanCount, 3);
  EXPECT_EQ(f.vlan[0], 300);
  EXPECT_EQ(f.vlan[1], 200);
  expectSeedSyn(f);
}

TEST(Decode, LinuxCookedV1) {
  const Frame f = decodeWhole(link::kLinuxSll, sll(0x0800, kSyn));
  EXPECT_EQ(f.etherType, 0x0800);
  expectSeedSyn(f);
}

TEST(Decode, LinuxCookedV2) {
  const Frame f = decodeWhole(link::kLinuxSll2, sll2(0x0800, kSyn));
  EXPECT_EQ(f.etherType, 0x0800);
  expectSeedSyn(f);
}

TEST(Decode, LinuxCookedV1WithVlanTag) {
  const Frame f = decodeWhole(link::kLinuxSll, sll(0x8100, Buffer{0, 42, 0x08, 0x00}));
  ASSERT_EQ(f.vlanCount, 1);
  EXPECT_EQ(f.vlan[0], 42);
  EXPECT_EQ(f.etherType, 0x0800);
  EXPECT_STREQ(f.problem, "truncated IPv4 header");
}

TEST(Decode, RawIpv4UnderEveryRawLinkType) {
  for (const int type : {link::kRaw, link::kRawAlt, link::kRawFile, link::kIpv4}) {
    SCOPED_TRACE(type);
    const Frame f = decodeWhole(type, kSyn);
    EXPECT_EQ(f.etherType, 0);
    expectSeedSyn(f);
  }
}

TEST(Decode, RawIpv6KeepsMappedAddressIpv6) {
  const Buffer b = ipv6(6, tcp(), -1, kV6Mapped);
  for (const int type : {link::kRaw, link::kRawFile, link::kIpv6}) {
    SCOPED_TRACE(type);
    const Frame f = decodeWhole(type, b);
    EXPECT_EQ(f.problem, nullptr);
    ASSERT_EQ(f.network, Network::Ipv6);
    EXPECT_TRUE(f.src.v6);
    EXPECT_EQ(f.src.bytes, kV6Mapped);
    EXPECT_EQ(f.dst, ip("2001:db8::2"));
    EXPECT_EQ(f.ttl, 64);
    EXPECT_EQ(f.ipPayloadLength, 20u);
    ASSERT_EQ(f.transport, Transport::Tcp);
    EXPECT_EQ(f.tcp.dstPort, 443);
  }
}

TEST(Decode, RawFrameNeitherIpv4NorIpv6) {
  const Frame f = decodeWhole(link::kRaw, Buffer{0x50, 0, 0, 0});
  EXPECT_EQ(f.network, Network::None);
  EXPECT_STREQ(f.problem, "raw frame neither IPv4 nor IPv6");
  EXPECT_STREQ(decodeWhole(link::kRaw, {}).problem, "truncated IP header");
}

TEST(Decode, LinkTypeIpv6HoldingIpv4) {
  const Frame f = decodeWhole(link::kIpv6, kSyn);
  EXPECT_EQ(f.network, Network::None);
  EXPECT_STREQ(f.problem, "IPv6 header version not 6");
  const Buffer shorter(kSyn.begin(), kSyn.begin() + 39);
  EXPECT_STREQ(decodeWhole(link::kIpv6, shorter).problem, "truncated IPv6 header");
  EXPECT_STREQ(decodeWhole(link::kIpv4, ipv6(59, {})).problem, "IPv4 header version not 4");
}

TEST(Decode, BsdLoopbackEitherByteOrder) {
  const Frame v4 = decodeWhole(link::kNull, loopback(2, true, kSyn));
  EXPECT_EQ(v4.etherType, 0);
  expectSeedSyn(v4);
  expectSeedSyn(decodeWhole(link::kNull, loopback(2, false, kSyn)));
  for (const std::uint32_t family : {24u, 28u, 30u}) {
    const Frame v6 = decodeWhole(link::kNull, loopback(family, false, ipv6(6, tcp())));
    EXPECT_EQ(v6.network, Network::Ipv6);
    EXPECT_EQ(v6.transport, Transport::Tcp);
  }
  const Frame other = decodeWhole(link::kNull, loopback(7, true, kSyn));
  EXPECT_EQ(other.network, Network::Other);
  EXPECT_EQ(other.problem, nullptr);
  EXPECT_STREQ(decodeWhole(link::kNull, Buffer{2, 0, 0}).problem, "truncated loopback header");
}

TEST(Decode, ArpAndOtherEtherTypes) {
  const Frame arp = decodeWhole(link::kEthernet, ethernet(0x0806, filler(28)));
  EXPECT_EQ(arp.etherType, 0x0806);
  EXPECT_EQ(arp.network, Network::Arp);
  EXPECT_EQ(arp.transport, Transport::None);
  EXPECT_EQ(arp.problem, nullptr);
  const Frame lldp = decodeWhole(link::kEthernet, ethernet(0x88cc, filler(30)));
  EXPECT_EQ(lldp.etherType, 0x88cc);
  EXPECT_EQ(lldp.network, Network::Other);
  EXPECT_EQ(lldp.problem, nullptr);
}

TEST(Decode, UnsupportedLinkType) {
  const Buffer b = ethernet(0x0800, kSyn);
  for (const int type : {-1, 105, 147, 100000}) {
    EXPECT_FALSE(supportedLinkType(type));
    const Frame f = decodeWhole(type, b);
    EXPECT_EQ(f.network, Network::None);
    EXPECT_EQ(f.transport, Transport::None);
    EXPECT_STREQ(f.problem, "unsupported link type");
    EXPECT_EQ(f.capturedLength, b.size());
  }
  for (const int type : {link::kNull, link::kEthernet, link::kRaw, link::kRawAlt, link::kRawFile,
                         link::kLinuxSll, link::kIpv4, link::kIpv6, link::kLinuxSll2}) {
    EXPECT_TRUE(supportedLinkType(type)) << type;
  }
}

// ---- IPv4 ---------------------------------------------------------------------------------

TEST(Decode, Ipv4WithOptions) {
  const Frame f = decodeWhole(link::kIpv4, ipv4({.ihl = 6}, tcp()));
  expectSeedSyn(f);
}

TEST(Decode, Ipv4HeaderLengthBelowTwenty) {
  const Frame f = decodeWhole(link::kEthernet, ethernet(0x0800, ipv4({.ihl = 3}, tcp())));
  EXPECT_EQ(f.network, Network::None);
  EXPECT_EQ(f.transport, Transport::None);
  EXPECT_STREQ(f.problem, "IPv4 header length 12 < 20");
  EXPECT_STREQ(decodeWhole(link::kIpv4, ipv4({.ihl = 0}, tcp())).problem,
               "IPv4 header length 0 < 20");
}

TEST(Decode, Ipv4OptionsCutOff) {
  Buffer b = ipv4({.ihl = 15}, {});
  b.resize(40);
  EXPECT_STREQ(decodeWhole(link::kIpv4, b).problem, "truncated IPv4 header");
}

TEST(Decode, Ipv4TotalLengthBelowHeader) {
  const Frame f = decodeWhole(link::kIpv4, ipv4({.totalLength = 10}, tcp()));
  EXPECT_EQ(f.network, Network::Ipv4);
  EXPECT_EQ(f.transport, Transport::None);
  EXPECT_STREQ(f.problem, "IPv4 total length < header length");
}

TEST(Decode, Ipv4NonFirstFragmentHasNoTransport) {
  const Frame f =
      decodeWhole(link::kEthernet,
                  ethernet(0x0800, ipv4({.id = 0x4242, .flagsOffset = 0x2000 | 185}, filler(100))));
  EXPECT_EQ(f.problem, nullptr);
  EXPECT_EQ(f.network, Network::Ipv4);
  EXPECT_TRUE(f.fragment);
  EXPECT_EQ(f.fragmentOffset, 1480);
  EXPECT_TRUE(f.moreFragments);
  EXPECT_EQ(f.fragmentId, 0x4242u);
  EXPECT_EQ(f.ipProtocol, 6);
  EXPECT_EQ(f.ipPayloadLength, 100u);
  EXPECT_EQ(f.transport, Transport::None);
}

TEST(Decode, Ipv4FirstFragmentHasTransport) {
  const Frame f = decodeWhole(link::kIpv4, ipv4({.flagsOffset = 0x2000}, tcp({}, 100)));
  EXPECT_FALSE(f.fragment);
  EXPECT_TRUE(f.moreFragments);
  ASSERT_EQ(f.transport, Transport::Tcp);
  EXPECT_EQ(f.tcp.payloadLength, 100u);
}

TEST(Decode, EthernetPaddingIsNotPayload) {
  Buffer b = ethernet(0x0800, ipv4({.protocol = 17}, udp(5353, 53, 1)));
  b.resize(60, 0);  // the minimum Ethernet frame
  const Frame f = decodeWhole(link::kEthernet, b);
  EXPECT_EQ(f.ipPayloadLength, 9u);
  ASSERT_EQ(f.transport, Transport::Udp);
  EXPECT_EQ(f.udp.payloadLength, 1u);
}

TEST(Decode, Ipv4TotalLengthZeroOrPastTheWireFallsBackToWire) {
  for (const int total : {0, 2000}) {
    const Frame f =
        decodeWhole(link::kEthernet, ethernet(0x0800, ipv4({.totalLength = total}, tcp({}, 100))));
    EXPECT_EQ(f.problem, nullptr);
    EXPECT_EQ(f.ipPayloadLength, 120u);
    ASSERT_EQ(f.transport, Transport::Tcp);
    EXPECT_EQ(f.tcp.payloadLength, 100u);
  }
}

// ---- IPv6 ---------------------------------------------------------------------------------

TEST(Decode, Ipv6HopByHopAndFirstFragment) {
  Buffer ext = options8(44);
  append(ext, fragment6(6, 0, true, 0xabcdef01));
  append(ext, tcp());
  const Frame f = decodeWhole(link::kEthernet, ethernet(0x86dd, ipv6(0, ext)));
  EXPECT_EQ(f.problem, nullptr);
  ASSERT_EQ(f.network, Network::Ipv6);
  EXPECT_EQ(f.src, ip("2001:db8::1"));
  EXPECT_EQ(f.ipProtocol, 6);
  EXPECT_EQ(f.ipPayloadLength, 20u);
  EXPECT_FALSE(f.fragment);
  EXPECT_TRUE(f.moreFragments);
  EXPECT_EQ(f.fragmentId, 0xabcdef01u);
  ASSERT_EQ(f.transport, Transport::Tcp);
  EXPECT_EQ(f.tcp.srcPort, 1124);
  EXPECT_EQ(f.tcp.seq, 28201u);
}

TEST(Decode, Ipv6NonFirstFragmentHasNoTransport) {
  Buffer ext = options8(44);
  append(ext, fragment6(17, 1480, false, 7));
  append(ext, filler(64));
  const Frame f = decodeWhole(link::kIpv6, ipv6(0, ext));
  EXPECT_EQ(f.problem, nullptr);
  EXPECT_TRUE(f.fragment);
  EXPECT_FALSE(f.moreFragments);
  EXPECT_EQ(f.fragmentOffset, 1480);
  EXPECT_EQ(f.fragmentId, 7u);
  EXPECT_EQ(f.ipProtocol, 17);
  EXPECT_EQ(f.ipPayloadLength, 64u);
  EXPECT_EQ(f.transport, Transport::None);
}

TEST(Decode, Ipv6RoutingAuthenticationAndDestinationOptions) {
  Buffer ext = options8(51);  // routing
  Buffer ah{60, 4, 0, 0};     // (4 + 2) * 4 = 24 bytes
  append(ah, filler(20));
  append(ext, ah);
  append(ext, options8(17));  // destination options
  append(ext, udp(5000, 5001, 3));
  const Frame f = decodeWhole(link::kIpv6, ipv6(43, ext));
  EXPECT_EQ(f.problem, nullptr);
  EXPECT_EQ(f.ipProtocol, 17);
  EXPECT_EQ(f.ipPayloadLength, 11u);
  ASSERT_EQ(f.transport, Transport::Udp);
  EXPECT_EQ(f.udp.dstPort, 5001);
  EXPECT_EQ(f.udp.payloadLength, 3u);
}

TEST(Decode, Ipv6ExtensionHeaderPastPayloadLength) {
  const Frame f = decodeWhole(link::kIpv6, ipv6(0, Buffer{6, 4, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(f.network, Network::Ipv6);
  EXPECT_EQ(f.transport, Transport::None);
  EXPECT_STREQ(f.problem, "truncated IPv6 extension header");
}

TEST(Decode, Ipv6NoNextHeader) {
  const Frame f = decodeWhole(link::kIpv6, ipv6(59, filler(4)));
  EXPECT_EQ(f.problem, nullptr);
  EXPECT_EQ(f.network, Network::Ipv6);
  EXPECT_EQ(f.ipProtocol, 59);
  EXPECT_EQ(f.transport, Transport::None);
}

TEST(Decode, Ipv6PayloadLengthZeroFallsBackToWire) {
  const Frame f = decodeWhole(link::kIpv6, ipv6(17, udp(1, 2, 10), 0));
  EXPECT_EQ(f.ipPayloadLength, 18u);
  ASSERT_EQ(f.transport, Transport::Udp);
  EXPECT_EQ(f.udp.payloadLength, 10u);
}

TEST(Decode, UnknownProtocolIsOther) {
  const Frame f = decodeWhole(link::kIpv4, ipv4({.protocol = 47}, filler(24)));  // GRE
  EXPECT_EQ(f.problem, nullptr);
  EXPECT_EQ(f.ipProtocol, 47);
  EXPECT_EQ(f.transport, Transport::Other);
}

// ---- transport ----------------------------------------------------------------------------

TEST(Decode, UdpPayloadLength) {
  const Frame f =
      decodeWhole(link::kLinuxSll2, sll2(0x0800, ipv4({.protocol = 17}, udp(40000, 53, 33))));
  ASSERT_EQ(f.transport, Transport::Udp);
  EXPECT_EQ(f.udp.srcPort, 40000);
  EXPECT_EQ(f.udp.dstPort, 53);
  EXPECT_EQ(f.udp.length, 41);
  EXPECT_EQ(f.udp.payloadLength, 33u);
}

TEST(Decode, TcpOptionsAndPayload) {
  const Frame f = decodeWhole(
      link::kIpv4, ipv4({}, tcp({.flags = tcpflag::kAck | tcpflag::kPsh, .dataOffset = 8}, 7)));
  ASSERT_EQ(f.transport, Transport::Tcp);
  EXPECT_EQ(f.tcp.headerLength, 32);
  EXPECT_EQ(f.tcp.flags, tcpflag::kAck | tcpflag::kPsh);
  EXPECT_EQ(f.tcp.payloadLength, 7u);
}

TEST(Decode, TcpDataOffsetBelowTwenty) {
  const Frame f = decodeWhole(link::kEthernet, ethernet(0x0800, ipv4({}, tcp({.dataOffset = 4}))));
  EXPECT_EQ(f.network, Network::Ipv4);
  EXPECT_EQ(f.transport, Transport::None);
  EXPECT_STREQ(f.problem, "TCP data offset 16 < 20");
}

TEST(Decode, TcpOptionsCutOff) {
  Buffer b = ipv4({}, tcp({.dataOffset = 15}));
  b.resize(20 + 40);
  const Frame f = decode(link::kIpv4, b, 20 + 60);
  EXPECT_EQ(f.transport, Transport::None);
  EXPECT_STREQ(f.problem, "truncated TCP header");
}

TEST(Decode, IcmpEcho) {
  const Frame f =
      decodeWhole(link::kIpv4, ipv4({.protocol = 1}, icmp(8, 0, 0x12340007, filler(56))));
  EXPECT_EQ(f.problem, nullptr);
  ASSERT_EQ(f.transport, Transport::Icmp);
  EXPECT_EQ(f.icmp.type, 8);
  EXPECT_EQ(f.icmp.code, 0);
  EXPECT_EQ(f.icmp.id, 0x1234);
  EXPECT_EQ(f.icmp.sequence, 7);
  EXPECT_EQ(f.icmp.payloadLength, 56u);
  EXPECT_FALSE(f.icmp.hasQuoted);
}

TEST(Decode, IcmpPortUnreachableQuotesUdp) {
  Buffer quote = ipv4({.protocol = 17}, udp(40000, 53, 30));
  quote.resize(28);  // the IP header and the first 8 bytes
  const Frame f = decodeWhole(
      link::kEthernet,
      ethernet(0x0800, ipv4({.protocol = 1, .src = {192, 0, 2, 10}, .dst = {10, 0, 0, 1}},
                            icmp(3, 3, 0, quote))));
  EXPECT_EQ(f.problem, nullptr);
  ASSERT_EQ(f.transport, Transport::Icmp);
  EXPECT_EQ(f.icmp.type, 3);
  EXPECT_EQ(f.icmp.code, 3);
  EXPECT_EQ(f.icmp.payloadLength, 28u);
  ASSERT_TRUE(f.icmp.hasQuoted);
  EXPECT_EQ(f.icmp.quotedSrc, ip("10.0.0.1"));
  EXPECT_EQ(f.icmp.quotedDst, ip("192.0.2.10"));
  EXPECT_EQ(f.icmp.quotedProtocol, 17);
  EXPECT_EQ(f.icmp.quotedSrcPort, 40000);
  EXPECT_EQ(f.icmp.quotedDstPort, 53);
}

TEST(Decode, IcmpTimeExceededQuotingTcpWithoutPorts) {
  Buffer quote = ipv4({}, tcp());
  quote.resize(22);  // a stingy router: only half the port pair
  const Frame f = decodeWhole(link::kIpv4, ipv4({.protocol = 1}, icmp(11, 0, 0, quote)));
  ASSERT_TRUE(f.icmp.hasQuoted);
  EXPECT_EQ(f.icmp.quotedProtocol, 6);
  EXPECT_EQ(f.icmp.quotedSrcPort, 0);
  EXPECT_EQ(f.icmp.quotedDstPort, 0);
}

TEST(Decode, Icmpv6Echo) {
  const Frame f = decodeWhole(link::kEthernet,
                              ethernet(0x86dd, ipv6(58, icmp(129, 0, 0x00770003, filler(16)))));
  EXPECT_EQ(f.problem, nullptr);
  ASSERT_EQ(f.transport, Transport::Icmpv6);
  EXPECT_EQ(f.icmp.type, 129);
  EXPECT_EQ(f.icmp.id, 0x77);
  EXPECT_EQ(f.icmp.sequence, 3);
  EXPECT_EQ(f.icmp.payloadLength, 16u);
}

TEST(Decode, Icmpv6UnreachableQuotesTcp) {
  Buffer quote = ipv6(6, tcp());
  quote.resize(48);
  const Frame f = decodeWhole(link::kIpv6, ipv6(58, icmp(1, 4, 0, quote)));
  EXPECT_EQ(f.problem, nullptr);
  ASSERT_EQ(f.transport, Transport::Icmpv6);
  ASSERT_TRUE(f.icmp.hasQuoted);
  EXPECT_TRUE(f.icmp.quotedSrc.v6);
  EXPECT_EQ(f.icmp.quotedSrc, ip("2001:db8::1"));
  EXPECT_EQ(f.icmp.quotedProtocol, 6);
  EXPECT_EQ(f.icmp.quotedSrcPort, 1124);
  EXPECT_EQ(f.icmp.quotedDstPort, 443);
}

// ---- truncation ---------------------------------------------------------------------------

// Decodes the first `n` bytes from an exact-size copy, as if the snap length were `n`.
Frame decodePrefix(int linkType, const Buffer& b, std::size_t n) {
  const Buffer cut(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
  return decode(linkType, cut, static_cast<std::uint32_t>(b.size()));
}

TEST(Decode, EthernetSynCutAtEveryLength) {
  const Buffer b = ethernet(0x0800, ipv4({}, tcp({}, 4)));
  for (std::size_t n = 0; n <= b.size(); ++n) {
    SCOPED_TRACE(n);
    const Frame f = decodePrefix(link::kEthernet, b, n);
    EXPECT_EQ(f.capturedLength, n);
    EXPECT_EQ(f.wireLength, b.size());
    if (n < 14) {
      EXPECT_EQ(f.network, Network::None);
      EXPECT_STREQ(f.problem, "truncated Ethernet header");
    } else if (n < 34) {
      EXPECT_EQ(f.etherType, 0x0800);
      EXPECT_EQ(f.network, Network::None);
      EXPECT_STREQ(f.problem, "truncated IPv4 header");
    } else if (n < 54) {
      EXPECT_EQ(f.network, Network::Ipv4);
      EXPECT_EQ(f.ipPayloadLength, 24u);
      EXPECT_EQ(f.transport, Transport::None);
      EXPECT_STREQ(f.problem, "truncated TCP header");
    } else {
      EXPECT_EQ(f.problem, nullptr);
      ASSERT_EQ(f.transport, Transport::Tcp);
      EXPECT_EQ(f.tcp.payloadLength, 4u);
    }
  }
}

// Frames whose full decode reaches the transport: any shorter cut either still does or says why.
TEST(Decode, EveryFrameCutAtEveryLength) {
  Buffer quote = ipv4({.protocol = 17}, udp(40000, 53, 30));
  quote.resize(28);
  Buffer ext = options8(44);
  append(ext, fragment6(17, 0, true, 9));
  append(ext, udp(1, 2, 5));
  const std::vector<std::pair<int, Buffer>> frames = {
      {link::kEthernet, ethernet(0x86dd, ipv6(0, ext), {{0x88a8, 5}, {0x8100, 6}, {0x8100, 7}})},
      {link::kLinuxSll2, sll2(0x0800, ipv4({.protocol = 1, .ihl = 7}, icmp(3, 3, 0, quote)))},
      {link::kLinuxSll, sll(0x86dd, ipv6(58, icmp(128, 0, 1, filler(8))))},
      {link::kNull, loopback(30, true, ipv6(6, tcp({.dataOffset = 6}, 3)))},
      {link::kRaw, ipv4({.ihl = 6}, tcp({}, 2))},
  };
  for (const auto& [type, b] : frames) {
    SCOPED_TRACE(type);
    const Frame whole = decodeWhole(type, b);
    ASSERT_EQ(whole.problem, nullptr) << whole.problem;
    ASSERT_NE(whole.transport, Transport::None);
    for (std::size_t n = 0; n < b.size(); ++n) {
      SCOPED_TRACE(n);
      const Frame f = decodePrefix(type, b, n);
      EXPECT_TRUE(f.transport != Transport::None || f.problem != nullptr);
      EXPECT_TRUE(f.network != Network::None || f.transport == Transport::None);
    }
  }
}

TEST(Decode, SnapLengthCutsPayloadNotLengths) {
  const Buffer b = ethernet(0x0800, ipv4({}, tcp({.flags = 0x12}, 1000)));
  const Frame f = decodePrefix(link::kEthernet, b, 64);
  EXPECT_EQ(f.problem, nullptr);
  EXPECT_EQ(f.capturedLength, 64u);
  EXPECT_EQ(f.wireLength, b.size());
  EXPECT_EQ(f.ipPayloadLength, 1020u);
  ASSERT_EQ(f.transport, Transport::Tcp);
  EXPECT_EQ(f.tcp.flags, tcpflag::kSyn | tcpflag::kAck);
  EXPECT_EQ(f.tcp.payloadLength, 1000u);
}

TEST(Decode, WireLengthShorterThanCaptureIsTheCapture) {
  const Frame f = decode(link::kIpv4, kSyn, 0);
  EXPECT_EQ(f.wireLength, kSyn.size());
  expectSeedSyn(f);
}

}  // namespace
}  // namespace fwgate::monitor
