// The SOCKS5 UDP request header (RFC 1928 section 7) on a whole datagram. Invariants: never
// NeedMore; consumed <= size; status and error agree; a Complete header is the datagram's address
// block after RSV and FRAG, re-encodes to those bytes, re-parses equal, and is BadLength one byte
// short. The datagram is parsed from an exact-size heap copy so ASan sees any read past it.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "fuzz_check.hpp"
#include "protocol/socks5.hpp"

namespace {

using namespace fwgate::protocol;
using Buffer = std::vector<std::uint8_t>;

Buffer copyOf(Bytes in, std::size_t n) {
  return Buffer(in.begin(), in.begin() + n);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes datagram(data, size);
  const auto r = socks5::parseUdpHeader(datagram);
  FUZZ_CHECK(!r.needMore());
  FUZZ_CHECK(r.consumed <= datagram.size());
  if (r.invalid()) {
    FUZZ_CHECK(r.consumed == 0);
    FUZZ_CHECK(r.error == ParseError::BadLength || r.error == ParseError::BadAddressType);
    return 0;
  }

  FUZZ_CHECK(r.error == ParseError::None);
  FUZZ_CHECK(r.value.fragment == datagram[2]);
  FUZZ_CHECK(r.value.address.isEncodable());

  const auto address = parseSocks5Address(datagram.subspan(3));
  FUZZ_CHECK(address.complete() && address.consumed + 3 == r.consumed);
  FUZZ_CHECK(address.value == r.value.address);

  const Buffer header = copyOf(datagram, r.consumed);
  const auto alone = socks5::parseUdpHeader(header);
  FUZZ_CHECK(alone.complete() && alone.consumed == r.consumed && alone.value == r.value);
  const auto shorter = socks5::parseUdpHeader(copyOf(datagram, r.consumed - 1));
  FUZZ_CHECK(shorter.invalid() && shorter.error == ParseError::BadLength);

  // The gateway re-wraps replies with RSV=0, FRAG=0 and the same address block.
  Buffer expected = header;
  expected[0] = expected[1] = expected[2] = 0x00;
  const Buffer encoded = socks5::encodeUdpHeader(r.value.address);
  FUZZ_CHECK(encoded == expected);
  const auto reparsed = socks5::parseUdpHeader(encoded);
  FUZZ_CHECK(reparsed.complete() && reparsed.consumed == encoded.size());
  FUZZ_CHECK(reparsed.value.fragment == 0 && reparsed.value.address == r.value.address);
  return 0;
}
