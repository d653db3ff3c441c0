// The frame decoder. The first input byte picks the link type (one of the nine supported, or an
// unsupported one) and the rest is the frame, decoded with the wire length equal to, longer than
// and shorter than the capture. Invariants: the lengths recorded are the capture's and at least
// it; a later layer is set only when the earlier one is; every stop says why; transport payload
// lengths add up to the IP payload length; quoted addresses have the ICMP version's family.
// Frames are decoded from exact-size heap copies so ASan sees any read past the span.
#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_check.hpp"
#include "monitor/decode.hpp"

namespace {

using namespace fwgate::monitor;

constexpr std::array<int, 10> kLinkTypes = {
    link::kNull,     link::kEthernet, link::kRaw,  link::kRawAlt,    link::kRawFile,
    link::kLinuxSll, link::kIpv4,     link::kIpv6, link::kLinuxSll2, 147 /* LINKTYPE_USER0 */};

bool hasEtherType(int linkType) {
  return linkType == link::kEthernet || linkType == link::kLinuxSll || linkType == link::kLinuxSll2;
}

void check(int linkType, const std::vector<std::uint8_t>& frame, std::uint32_t wireLength) {
  const Frame f = decode(linkType, frame, wireLength);

  FUZZ_CHECK(f.capturedLength == frame.size());
  FUZZ_CHECK(f.wireLength >= f.capturedLength &&
             (f.wireLength == wireLength || wireLength < f.capturedLength));
  FUZZ_CHECK(f.problem == nullptr || std::strlen(f.problem) > 0);
  if (!supportedLinkType(linkType)) FUZZ_CHECK(f.problem != nullptr);

  // Link layer.
  if (!hasEtherType(linkType)) FUZZ_CHECK(f.etherType == 0 && f.vlanCount == 0);
  for (std::size_t i = f.vlanCount; i < f.vlan.size(); ++i) FUZZ_CHECK(f.vlan[i] == 0);
  for (const std::uint16_t id : f.vlan) FUZZ_CHECK(id <= 0x0fff);
  FUZZ_CHECK(std::size_t{f.vlanCount} * 4 <= frame.size());

  // Network layer: None only with a reason; Arp and Other carry nothing further.
  if (f.network == Network::None) FUZZ_CHECK(f.problem != nullptr);
  const bool ip = f.network == Network::Ipv4 || f.network == Network::Ipv6;
  if (ip) {
    FUZZ_CHECK(f.src.v6 == (f.network == Network::Ipv6) && f.dst.v6 == f.src.v6);
    FUZZ_CHECK(f.ipPayloadLength < f.wireLength);
    FUZZ_CHECK(!f.fragment || f.fragmentOffset != 0);
    FUZZ_CHECK(f.fragmentOffset % 8 == 0);
  } else {
    FUZZ_CHECK(f.ipProtocol == 0 && f.ttl == 0 && f.ipPayloadLength == 0 && !f.fragment);
    FUZZ_CHECK(f.src == fwgate::policy::IpAddress{} && f.dst == fwgate::policy::IpAddress{});
  }

  // Transport layer: only over IP, never in a non-first fragment, and of the IP protocol.
  if (f.transport != Transport::None) FUZZ_CHECK(ip && !f.fragment);
  if (ip && !f.fragment && f.transport == Transport::None && f.ipProtocol != 59) {
    FUZZ_CHECK(f.problem != nullptr);
  }
  switch (f.transport) {
    case Transport::Tcp:
      FUZZ_CHECK(f.ipProtocol == 6);
      FUZZ_CHECK(f.tcp.headerLength >= 20 && f.tcp.headerLength <= 60 &&
                 f.tcp.headerLength % 4 == 0);
      FUZZ_CHECK(f.tcp.headerLength + f.tcp.payloadLength == f.ipPayloadLength);
      break;
    case Transport::Udp:
      FUZZ_CHECK(f.ipProtocol == 17);
      FUZZ_CHECK(8 + f.udp.payloadLength == f.ipPayloadLength);
      break;
    case Transport::Icmp:
    case Transport::Icmpv6:
      FUZZ_CHECK(f.ipProtocol == (f.transport == Transport::Icmp ? 1 : 58));
      FUZZ_CHECK(8 + f.icmp.payloadLength == f.ipPayloadLength);
      if (f.icmp.hasQuoted) {
        const bool v6 = f.transport == Transport::Icmpv6;
        FUZZ_CHECK(f.icmp.quotedSrc.v6 == v6 && f.icmp.quotedDst.v6 == v6);
      }
      break;
    case Transport::Other:
      FUZZ_CHECK(f.ipProtocol != 6 && f.ipProtocol != 17 && f.ipProtocol != 1 &&
                 f.ipProtocol != 58 && f.ipProtocol != 59);
      break;
    case Transport::None:
      break;
  }
  if (f.transport != Transport::Icmp && f.transport != Transport::Icmpv6) {
    FUZZ_CHECK(!f.icmp.hasQuoted);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const int linkType = kLinkTypes[data[0] % kLinkTypes.size()];
  const std::vector<std::uint8_t> frame(data + 1, data + size);
  const auto captured = static_cast<std::uint32_t>(frame.size());
  check(linkType, frame, captured);
  check(linkType, frame, captured + 1 + data[0]);  // cut by the snap length
  check(linkType, frame, 0);                       // a nonsense wire length
  return 0;
}
