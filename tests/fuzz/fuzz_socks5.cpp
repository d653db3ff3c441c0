// Every SOCKS5 stream parser (greeting, RFC 1929, RFC 1961's GSS-API messages, request, bare
// address) on the same input.
// Invariants: consumed <= size; status and error agree; a Complete message re-parses alone to the
// same value and is NeedMore one byte short; an Invalid verdict survives more bytes arriving; a
// Complete value re-encodes and re-parses equal. Prefixes are parsed from exact-size heap copies so
// ASan sees any read past the span.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "protocol/address.hpp"
#include "protocol/socks5.hpp"

namespace {

using namespace fwgate::protocol;
using Buffer = std::vector<std::uint8_t>;

Buffer copyOf(Bytes in, std::size_t n) {
  return Buffer(in.begin(), in.begin() + n);
}

template <typename T>
ParseResult<T> checkParser(ParseResult<T> (*parse)(Bytes), Bytes in) {
  const ParseResult<T> r = parse(in);
  FUZZ_CHECK(r.consumed <= in.size());
  switch (r.status) {
    case ParseStatus::Complete: {
      FUZZ_CHECK(r.error == ParseError::None);
      FUZZ_CHECK(r.consumed > 0);
      const Buffer exact = copyOf(in, r.consumed);
      const ParseResult<T> alone = parse(exact);
      FUZZ_CHECK(alone.complete() && alone.consumed == r.consumed && alone.value == r.value);
      const Buffer shorter = copyOf(in, r.consumed - 1);
      FUZZ_CHECK(parse(shorter).needMore());
      break;
    }
    case ParseStatus::NeedMore:
      FUZZ_CHECK(r.error == ParseError::None && r.consumed == 0);
      if (!in.empty()) FUZZ_CHECK(parse(copyOf(in, in.size() - 1)).needMore());
      break;
    case ParseStatus::Invalid: {
      FUZZ_CHECK(r.error != ParseError::None && r.consumed == 0);
      for (std::uint8_t extra : {std::uint8_t{0x00}, std::uint8_t{0xFF}}) {
        Buffer longer = copyOf(in, in.size());
        longer.push_back(extra);
        const ParseResult<T> again = parse(longer);
        FUZZ_CHECK(again.invalid() && again.error == r.error);
      }
      break;
    }
  }
  return r;
}

void checkAddressText(const Address& address) {
  const std::string host = address.host();
  const std::string text = address.toString();
  const std::string port = ":" + std::to_string(address.port);
  const std::string expected =
      address.type == AddressType::IPv6 ? "[" + host + "]" + port : host + port;
  FUZZ_CHECK(text == expected);
  if (address.type != AddressType::Domain) FUZZ_CHECK(!host.empty());
}

void checkGreeting(Bytes in) {
  const auto r = checkParser(&socks5::parseGreeting, in);
  if (!r.complete()) return;
  FUZZ_CHECK(r.value.methods.size() <= 255);
  // NMETHODS 0 parses (the gateway answers it X'FF'); the encoder never writes such a greeting.
  if (r.value.methods.empty()) {
    FUZZ_CHECK(r.consumed == 2 && socks5::encodeGreeting(r.value).empty());
    return;
  }
  FUZZ_CHECK(socks5::encodeGreeting(r.value) == copyOf(in, r.consumed));
}

void checkUserPass(Bytes in) {
  const auto r = checkParser(&socks5::parseUserPass, in);
  if (!r.complete()) return;
  FUZZ_CHECK(!r.value.username.empty());
  FUZZ_CHECK(socks5::encodeUserPass(r.value) == copyOf(in, r.consumed));
}

void checkGssMessage(Bytes in) {
  const auto r = checkParser(&socks5::parseGssMessage, in);
  if (!r.complete()) return;
  if (r.value.type == socks5::GssMessageType::Abort) {
    FUZZ_CHECK(r.consumed == 2 && r.value.token.empty());
  } else {
    FUZZ_CHECK(!r.value.token.empty() && r.value.token.size() <= 0xFFFF);
  }
  FUZZ_CHECK(socks5::encodeGssMessage(r.value) == copyOf(in, r.consumed));
}

void checkRequest(Bytes in) {
  const auto r = checkParser(&socks5::parseRequest, in);
  if (!r.complete()) return;
  const Address& destination = r.value.destination;
  FUZZ_CHECK(destination.isEncodable());
  checkAddressText(destination);

  // The encoder writes RSV=0; everything else is the client's bytes.
  Buffer expected = copyOf(in, r.consumed);
  expected[2] = 0x00;
  const Buffer encoded = socks5::encodeRequest(r.value);
  FUZZ_CHECK(encoded == expected);
  const auto reparsed = socks5::parseRequest(encoded);
  FUZZ_CHECK(reparsed.complete() && reparsed.value == r.value);

  // Replying with the parsed address (as BND) carries it back unchanged.
  const Buffer reply = socks5::encodeReply(socks5::Reply::HostUnreachable, destination);
  FUZZ_CHECK(reply.size() == r.consumed);
  FUZZ_CHECK(reply[0] == 0x05 && reply[1] == 0x04 && reply[2] == 0x00);
  const auto bound = parseSocks5Address(Bytes(reply).subspan(3));
  FUZZ_CHECK(bound.complete() && bound.consumed == reply.size() - 3 && bound.value == destination);
}

void checkAddress(Bytes in) {
  const auto r = checkParser(&parseSocks5Address, in);
  if (!r.complete()) return;
  checkAddressText(r.value);
  Buffer encoded;
  appendSocks5Address(encoded, r.value);
  FUZZ_CHECK(encoded == copyOf(in, r.consumed));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes in(data, size);
  checkGreeting(in);
  checkUserPass(in);
  checkGssMessage(in);
  checkRequest(in);
  checkAddress(in);
  // A session parses the greeting, then the next message from what is left.
  const auto greeting = socks5::parseGreeting(in);
  if (greeting.complete()) {
    checkUserPass(in.subspan(greeting.consumed));
    checkRequest(in.subspan(greeting.consumed));
    // After method 0x01: GSS-API messages one after another, as the session reads them.
    Bytes rest = in.subspan(greeting.consumed);
    for (int i = 0; i < 8; ++i) {
      const auto m = socks5::parseGssMessage(rest);
      checkGssMessage(rest);
      if (!m.complete()) break;
      rest = rest.subspan(m.consumed);
    }
  }
  return 0;
}
