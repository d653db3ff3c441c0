// The SOCKS 4/4a request parser. Invariants: consumed <= size; status and error agree; a Complete
// request re-parses alone to the same value and is NeedMore one byte short; an Invalid verdict
// survives more bytes arriving; a Complete request re-encodes to the client's bytes (4a: but the
// marker's last octet) and re-parses equal. Prefixes are parsed from exact-size heap copies so
// ASan sees any read past the span.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "protocol/socks4.hpp"

namespace {

using namespace fwgate::protocol;
using Buffer = std::vector<std::uint8_t>;

Buffer copyOf(Bytes in, std::size_t n) {
  return Buffer(in.begin(), in.begin() + n);
}

void checkComplete(Bytes in, const ParseResult<socks4::Request>& r) {
  FUZZ_CHECK(r.error == ParseError::None);
  FUZZ_CHECK(r.consumed >= 9);
  const auto alone = socks4::parseRequest(copyOf(in, r.consumed));
  FUZZ_CHECK(alone.complete() && alone.consumed == r.consumed && alone.value == r.value);
  FUZZ_CHECK(socks4::parseRequest(copyOf(in, r.consumed - 1)).needMore());

  const socks4::Request& request = r.value;
  FUZZ_CHECK(request.userId.size() <= socks4::kMaxUserIdLength);
  FUZZ_CHECK(request.userId.find('\0') == std::string::npos);
  const Address& destination = request.destination;
  FUZZ_CHECK(destination.port == ((in[2] << 8) | in[3]));
  if (request.isSocks4a) {
    FUZZ_CHECK(destination.type == AddressType::Domain);
    FUZZ_CHECK(!destination.domain.empty());
    FUZZ_CHECK(destination.domain.size() <= socks4::kMaxDomainLength);
    FUZZ_CHECK(destination.domain.find('\0') == std::string::npos);
    FUZZ_CHECK(destination.toString() ==
               destination.domain + ":" + std::to_string(destination.port));
  } else {
    FUZZ_CHECK(destination.type == AddressType::IPv4);
    FUZZ_CHECK(r.consumed == 8 + request.userId.size() + 1);
    FUZZ_CHECK(!destination.host().empty());
  }

  Buffer expected = copyOf(in, r.consumed);
  if (request.isSocks4a) expected[7] = 0x01;  // the encoder's 0.0.0.1 marker
  const Buffer encoded = socks4::encodeRequest(request);
  FUZZ_CHECK(encoded == expected);
  const auto reparsed = socks4::parseRequest(encoded);
  FUZZ_CHECK(reparsed.complete() && reparsed.value == request);

  // The reply to a plain SOCKS 4 request echoes its port and address.
  if (!request.isSocks4a) {
    const auto reply = socks4::encodeReply(
        socks4::Reply::Granted,
        {destination.ip[0], destination.ip[1], destination.ip[2], destination.ip[3]},
        destination.port);
    FUZZ_CHECK(reply[0] == 0x00 && reply[1] == 90);
    FUZZ_CHECK(std::equal(reply.begin() + 2, reply.end(), in.begin() + 2));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes in(data, size);
  const auto r = socks4::parseRequest(in);
  FUZZ_CHECK(r.consumed <= in.size());
  switch (r.status) {
    case ParseStatus::Complete:
      checkComplete(in, r);
      break;
    case ParseStatus::NeedMore:
      FUZZ_CHECK(r.error == ParseError::None && r.consumed == 0);
      if (!in.empty()) FUZZ_CHECK(socks4::parseRequest(copyOf(in, in.size() - 1)).needMore());
      break;
    case ParseStatus::Invalid:
      FUZZ_CHECK(r.consumed == 0);
      FUZZ_CHECK(r.error == ParseError::BadVersion || r.error == ParseError::BadLength);
      for (std::uint8_t extra : {std::uint8_t{0x00}, std::uint8_t{0x41}}) {
        Buffer longer = copyOf(in, in.size());
        longer.push_back(extra);
        const auto again = socks4::parseRequest(longer);
        FUZZ_CHECK(again.invalid() && again.error == r.error);
      }
      break;
  }
  return 0;
}
