// RFC 1928 and RFC 1929 messages: values, malformed cases, and encodings byte by byte.
#include "protocol/socks5.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fwgate::protocol::socks5 {
namespace {

using Buffer = std::vector<std::uint8_t>;

Buffer bytes(std::initializer_list<int> values) {
  Buffer out;
  for (int v : values) out.push_back(static_cast<std::uint8_t>(v));
  return out;
}

Buffer text(std::string_view s) {
  return Buffer(s.begin(), s.end());
}

Buffer operator+(Buffer a, const Buffer& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

template <std::size_t N>
Buffer toBuffer(const std::array<std::uint8_t, N>& a) {
  return Buffer(a.begin(), a.end());
}

const std::array<std::uint8_t, 16> kDocIpv6{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                            0,    0,    0,    0,    0, 0, 0, 1};

template <typename T>
void expectInvalid(const ParseResult<T>& r, ParseError error) {
  EXPECT_TRUE(r.invalid());
  EXPECT_EQ(r.error, error);
}

// --- Greeting ---------------------------------------------------------------------------------

TEST(Socks5Greeting, ParsesMethodsInOrder) {
  const auto r = parseGreeting(bytes({5, 2, 2, 0}));
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.consumed, 4u);
  EXPECT_EQ(r.value.methods, bytes({2, 0}));
  EXPECT_TRUE(r.value.offers(Method::NoAuthentication));
  EXPECT_TRUE(r.value.offers(Method::UsernamePassword));
  EXPECT_FALSE(r.value.offers(Method::Gssapi));
}

TEST(Socks5Greeting, KeepsUnknownAndDuplicateMethods) {
  const auto r = parseGreeting(bytes({5, 4, 0x80, 0x02, 0x02, 0xFE}));
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.value.methods, bytes({0x80, 0x02, 0x02, 0xFE}));
  EXPECT_FALSE(r.value.offers(Method::NoAuthentication));
}

TEST(Socks5Greeting, BadVersion) {
  expectInvalid(parseGreeting(bytes({4})), ParseError::BadVersion);
  expectInvalid(parseGreeting(bytes({4, 1, 0})), ParseError::BadVersion);
  expectInvalid(parseGreeting(bytes({0, 1, 0})), ParseError::BadVersion);
  // An HTTP client on the SOCKS port.
  expectInvalid(parseGreeting(text("GET / HTTP/1.1\r\n")), ParseError::BadVersion);
}

TEST(Socks5Greeting, NoMethodsIsCompleteAndOffersNothing) {
  // RFC 1928: the server answers X'FF' ("no acceptable methods"), so the parser must not call
  // the greeting malformed; what follows it is not part of it.
  const auto r = parseGreeting(bytes({5, 0, 0, 1}));
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.consumed, 2u);
  EXPECT_TRUE(r.value.methods.empty());
  EXPECT_FALSE(r.value.offers(Method::NoAuthentication));
  EXPECT_FALSE(r.value.offers(Method::UsernamePassword));
}

TEST(Socks5Greeting, ShortIsNeedMore) {
  EXPECT_TRUE(parseGreeting({}).needMore());
  EXPECT_TRUE(parseGreeting(bytes({5})).needMore());
  EXPECT_TRUE(parseGreeting(bytes({5, 3, 0, 1})).needMore());
}

TEST(Socks5Greeting, EncodeRoundTrip) {
  const Greeting greeting{bytes({0, 2})};
  const Buffer wire = encodeGreeting(greeting);
  EXPECT_EQ(wire, bytes({5, 2, 0, 2}));
  const auto r = parseGreeting(wire);
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.value, greeting);
}

TEST(Socks5Greeting, EncodeRefusesWhatCannotBeSent) {
  EXPECT_TRUE(encodeGreeting(Greeting{}).empty());
  EXPECT_TRUE(encodeGreeting(Greeting{Buffer(256, 0)}).empty());
  EXPECT_EQ(encodeGreeting(Greeting{Buffer(255, 0)}).size(), 257u);
}

TEST(Socks5MethodSelection, Bytes) {
  EXPECT_EQ(toBuffer(encodeMethodSelection(Method::NoAuthentication)), bytes({0x05, 0x00}));
  EXPECT_EQ(toBuffer(encodeMethodSelection(Method::UsernamePassword)), bytes({0x05, 0x02}));
  EXPECT_EQ(toBuffer(encodeMethodSelection(Method::NoAcceptable)), bytes({0x05, 0xFF}));
}

// --- RFC 1961 ---------------------------------------------------------------------------------

TEST(Socks5Gss, ParsesATokenAndTheAbort) {
  auto r = parseGssMessage(bytes({1, 1, 0, 3, 0x60, 0x01, 0x02, 0xAA}));
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.consumed, 7u);
  EXPECT_EQ(r.value.type, GssMessageType::Authentication);
  EXPECT_EQ(r.value.token, bytes({0x60, 0x01, 0x02}));
  EXPECT_EQ(encodeGssMessage(r.value), bytes({1, 1, 0, 3, 0x60, 0x01, 0x02}));
  r = parseGssMessage(bytes({1, 0xFF}));
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.consumed, 2u);
  EXPECT_EQ(encodeGssMessage({GssMessageType::Abort, {}}), bytes({1, 0xFF}));
  r = parseGssMessage(bytes({1, 2, 0, 1, 0x00}));
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.value.type, GssMessageType::Protection);
}

TEST(Socks5Gss, WaitsAndRefuses) {
  EXPECT_TRUE(parseGssMessage(bytes({1, 1, 0x01})).needMore());
  EXPECT_TRUE(parseGssMessage(bytes({1, 1, 0x01, 0x00, 0xAA})).needMore());  // 256 announced
  EXPECT_EQ(parseGssMessage(bytes({5, 1, 0, 1, 0})).error, ParseError::BadVersion);
  EXPECT_EQ(parseGssMessage(bytes({1, 3, 0, 1, 0})).error, ParseError::BadVersion);
  EXPECT_EQ(parseGssMessage(bytes({1, 1, 0, 0})).error, ParseError::BadLength);
  EXPECT_TRUE(encodeGssMessage({GssMessageType::Authentication, {}}).empty());
  EXPECT_TRUE(
      encodeGssMessage({GssMessageType::Authentication, std::vector<std::uint8_t>(65536)}).empty());
}

// --- RFC 1929 ---------------------------------------------------------------------------------

TEST(Socks5UserPass, Parses) {
  const auto r = parseUserPass(bytes({1, 5}) + text("alice") + bytes({6}) + text("s3cret"));
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.consumed, 14u);
  EXPECT_EQ(r.value.username, "alice");
  EXPECT_EQ(r.value.password, "s3cret");
}

TEST(Socks5UserPass, EmptyPasswordIsAccepted) {
  const auto r = parseUserPass(bytes({1, 3}) + text("bob") + bytes({0}));
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.consumed, 6u);
  EXPECT_EQ(r.value.password, "");
}

TEST(Socks5UserPass, BinaryBytesAreKept) {
  const auto r = parseUserPass(bytes({1, 2, 0, 0xFF, 2, 0xC3, 0xA9}));
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.value.username, std::string("\0\xFF", 2));
  EXPECT_EQ(r.value.password, "\xC3\xA9");
}

TEST(Socks5UserPass, BadVersion) {
  // Clients that echo the SOCKS version into the sub-negotiation are wrong.
  expectInvalid(parseUserPass(bytes({5, 1, 'u', 1, 'p'})), ParseError::BadVersion);
  expectInvalid(parseUserPass(bytes({0})), ParseError::BadVersion);
}

TEST(Socks5UserPass, EmptyUsernameIsBadLength) {
  expectInvalid(parseUserPass(bytes({1, 0})), ParseError::BadLength);
  expectInvalid(parseUserPass(bytes({1, 0, 2, 'p', 'w'})), ParseError::BadLength);
}

TEST(Socks5UserPass, ShortIsNeedMore) {
  EXPECT_TRUE(parseUserPass(bytes({1, 3, 'b', 'o', 'b'})).needMore());
  EXPECT_TRUE(parseUserPass(bytes({1, 3, 'b', 'o', 'b', 2, 'p'})).needMore());
}

TEST(Socks5UserPass, EncodeRoundTripAtLimits) {
  for (const UserPassRequest& request :
       {UserPassRequest{"alice", "s3cret"}, UserPassRequest{"u", ""},
        UserPassRequest{std::string(255, 'u'), std::string(255, 'p')}}) {
    const Buffer wire = encodeUserPass(request);
    ASSERT_EQ(wire.size(), 3 + request.username.size() + request.password.size());
    const auto r = parseUserPass(wire);
    ASSERT_TRUE(r.complete());
    EXPECT_EQ(r.consumed, wire.size());
    EXPECT_EQ(r.value, request);
  }
  EXPECT_EQ(encodeUserPass({"ab", "c"}), bytes({1, 2, 'a', 'b', 1, 'c'}));
}

TEST(Socks5UserPass, EncodeRefusesWhatCannotBeSent) {
  EXPECT_TRUE(encodeUserPass({"", "pw"}).empty());
  EXPECT_TRUE(encodeUserPass({std::string(256, 'u'), "pw"}).empty());
  EXPECT_TRUE(encodeUserPass({"u", std::string(256, 'p')}).empty());
}

TEST(Socks5UserPass, StatusBytes) {
  EXPECT_EQ(toBuffer(encodeUserPassStatus(true)), bytes({0x01, 0x00}));
  EXPECT_EQ(toBuffer(encodeUserPassStatus(false)), bytes({0x01, 0x01}));
}

// --- Request ----------------------------------------------------------------------------------

TEST(Socks5Request, ConnectIpv4) {
  const auto r = parseRequest(bytes({5, 1, 0, 1, 192, 0, 2, 1, 0x1F, 0x90}));
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.consumed, 10u);
  EXPECT_EQ(r.value.command, static_cast<std::uint8_t>(Command::Connect));
  EXPECT_EQ(r.value.destination.type, AddressType::IPv4);
  EXPECT_EQ(r.value.destination.toString(), "192.0.2.1:8080");
  EXPECT_EQ(r.value.destination, Address::ipv4({192, 0, 2, 1}, 8080));
}

TEST(Socks5Request, BindIpv6) {
  const auto r = parseRequest(bytes({5, 2, 0, 4}) + toBuffer(kDocIpv6) + bytes({0x01, 0xBB}));
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.consumed, 22u);
  EXPECT_EQ(r.value.command, static_cast<std::uint8_t>(Command::Bind));
  EXPECT_EQ(r.value.destination.toString(), "[2001:db8::1]:443");
}

TEST(Socks5Request, UdpAssociateUnspecified) {
  const auto r = parseRequest(bytes({5, 3, 0, 1, 0, 0, 0, 0, 0, 0}));
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.value.command, static_cast<std::uint8_t>(Command::UdpAssociate));
  EXPECT_TRUE(r.value.destination.isUnspecified());
}

TEST(Socks5Request, DomainUpTo255Bytes) {
  const auto r = parseRequest(bytes({5, 1, 0, 3, 11}) + text("example.com") + bytes({0, 80}));
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.consumed, 18u);
  EXPECT_EQ(r.value.destination, Address::name("example.com", 80));

  const std::string longest(255, 'x');
  const auto max = parseRequest(bytes({5, 1, 0, 3, 255}) + text(longest) + bytes({0xFF, 0xFF}));
  ASSERT_TRUE(max.complete());
  EXPECT_EQ(max.consumed, 4u + 1 + 255 + 2);
  EXPECT_EQ(max.value.destination.domain, longest);
  EXPECT_EQ(max.value.destination.port, 65535);
}

TEST(Socks5Request, UnknownCommandAndReservedGarbageStillParse) {
  const auto r = parseRequest(bytes({5, 0x7F, 0xAA, 1, 10, 0, 0, 1, 0, 80}));
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.value.command, 0x7F);
}

TEST(Socks5Request, BadVersion) {
  expectInvalid(parseRequest(bytes({4})), ParseError::BadVersion);
  expectInvalid(parseRequest(bytes({1, 1, 0, 1, 10, 0, 0, 1, 0, 80})), ParseError::BadVersion);
}

TEST(Socks5Request, BadAddressTypeWithOnlyFourBytes) {
  for (int atyp : {0, 2, 5, 0xFF}) {
    SCOPED_TRACE(atyp);
    expectInvalid(parseRequest(bytes({5, 1, 0, atyp})), ParseError::BadAddressType);
    expectInvalid(parseRequest(bytes({5, 1, 0, atyp, 1, 2, 3, 4, 0, 80})),
                  ParseError::BadAddressType);
  }
  EXPECT_TRUE(parseRequest(bytes({5, 1, 0})).needMore());
}

TEST(Socks5Request, EmptyDomainIsBadLength) {
  expectInvalid(parseRequest(bytes({5, 1, 0, 3, 0})), ParseError::BadLength);
  expectInvalid(parseRequest(bytes({5, 1, 0, 3, 0, 0, 80})), ParseError::BadLength);
}

TEST(Socks5Request, ShortIsNeedMore) {
  EXPECT_TRUE(parseRequest(bytes({5, 1, 0, 1, 10, 0, 0, 1, 0})).needMore());
  EXPECT_TRUE(parseRequest(bytes({5, 1, 0, 3})).needMore());
  EXPECT_TRUE(parseRequest(bytes({5, 1, 0, 3, 4, 'h', 'o', 's', 't', 0})).needMore());
  EXPECT_TRUE(parseRequest(bytes({5, 1, 0, 4, 0, 0, 0, 0})).needMore());
}

TEST(Socks5Request, EncodeRoundTripAllAddressTypes) {
  const std::vector<Request> requests = {
      {1, Address::ipv4({203, 0, 113, 9}, 25)}, {2, Address::ipv6(kDocIpv6, 0)},
      {3, Address::name("a", 65535)},           {1, Address::name(std::string(255, 'z'), 443)},
      {0x42, Address::ipv4({0, 0, 0, 0}, 0)},
  };
  for (const Request& request : requests) {
    SCOPED_TRACE(request.destination.toString());
    const Buffer wire = encodeRequest(request);
    const auto r = parseRequest(wire);
    ASSERT_TRUE(r.complete());
    EXPECT_EQ(r.consumed, wire.size());
    EXPECT_EQ(r.value, request);
  }
  EXPECT_EQ(encodeRequest({1, Address::name("ab", 0x0102)}),
            bytes({5, 1, 0, 3, 2, 'a', 'b', 0x01, 0x02}));
  EXPECT_TRUE(encodeRequest({1, Address::name("", 80)}).empty());
  EXPECT_TRUE(encodeRequest({1, Address::name(std::string(256, 'z'), 80)}).empty());
}

// --- Reply ------------------------------------------------------------------------------------

TEST(Socks5Reply, Ipv4Layout) {
  // VER REP RSV ATYP BND.ADDR(4) BND.PORT(2, network order)
  EXPECT_EQ(encodeReply(Reply::Succeeded, Address::ipv4({10, 1, 2, 3}, 0x1F90)),
            bytes({0x05, 0x00, 0x00, 0x01, 10, 1, 2, 3, 0x1F, 0x90}));
}

TEST(Socks5Reply, Ipv6Layout) {
  EXPECT_EQ(encodeReply(Reply::Succeeded, Address::ipv6(kDocIpv6, 443)),
            bytes({0x05, 0x00, 0x00, 0x04}) + toBuffer(kDocIpv6) + bytes({0x01, 0xBB}));
}

TEST(Socks5Reply, DomainLayout) {
  EXPECT_EQ(encodeReply(Reply::Succeeded, Address::name("gw.local", 1080)),
            bytes({0x05, 0x00, 0x00, 0x03, 8}) + text("gw.local") + bytes({0x04, 0x38}));
}

TEST(Socks5Reply, ErrorRepliesCarryTheCodeAndAnUnspecifiedAddress) {
  const std::vector<std::pair<Reply, int>> codes = {
      {Reply::Succeeded, 0x00},
      {Reply::GeneralFailure, 0x01},
      {Reply::NotAllowed, 0x02},
      {Reply::NetworkUnreachable, 0x03},
      {Reply::HostUnreachable, 0x04},
      {Reply::ConnectionRefused, 0x05},
      {Reply::TtlExpired, 0x06},
      {Reply::CommandNotSupported, 0x07},
      {Reply::AddressTypeNotSupported, 0x08},
  };
  for (const auto& [reply, code] : codes) {
    EXPECT_EQ(encodeReply(reply, Address::ipv4({0, 0, 0, 0}, 0)),
              bytes({0x05, code, 0x00, 0x01, 0, 0, 0, 0, 0, 0}));
    EXPECT_EQ(encodeReply(reply, Address::ipv6({}, 0)),
              bytes({0x05, code, 0x00, 0x04}) + Buffer(16, 0) + bytes({0, 0}));
  }
}

TEST(Socks5Reply, UnencodableAddressGivesNothing) {
  EXPECT_TRUE(encodeReply(Reply::Succeeded, Address::name("", 80)).empty());
}

// --- UDP header -------------------------------------------------------------------------------

TEST(Socks5Udp, Ipv4HeaderThenPayload) {
  const Buffer datagram = bytes({0, 0, 0, 1, 198, 51, 100, 7, 0, 53}) + text("query");
  const auto r = parseUdpHeader(datagram);
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.consumed, 10u);
  EXPECT_EQ(r.value.fragment, 0);
  EXPECT_EQ(r.value.address, Address::ipv4({198, 51, 100, 7}, 53));
  EXPECT_EQ(Buffer(datagram.begin() + 10, datagram.end()), text("query"));
}

TEST(Socks5Udp, EmptyPayloadIsFine) {
  const auto r = parseUdpHeader(bytes({0, 0, 0, 3, 1, 'h', 0, 7}));
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.consumed, 8u);
  EXPECT_EQ(r.value.address, Address::name("h", 7));
}

TEST(Socks5Udp, Ipv6AndDomain) {
  const auto v6 = parseUdpHeader(bytes({0, 0, 0, 4}) + toBuffer(kDocIpv6) + bytes({0, 53, 'x'}));
  ASSERT_TRUE(v6.complete());
  EXPECT_EQ(v6.consumed, 22u);
  EXPECT_EQ(v6.value.address, Address::ipv6(kDocIpv6, 53));

  const std::string longest(255, 'n');
  const auto name = parseUdpHeader(bytes({0, 0, 0, 3, 255}) + text(longest) + bytes({1, 0}));
  ASSERT_TRUE(name.complete());
  EXPECT_EQ(name.consumed, 4u + 1 + 255 + 2);
  EXPECT_EQ(name.value.address, Address::name(longest, 256));
}

TEST(Socks5Udp, FragmentIsReturnedAndReservedIsNotChecked) {
  const auto r = parseUdpHeader(bytes({0xAB, 0xCD, 0x81, 1, 1, 2, 3, 4, 0, 1}));
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.value.fragment, 0x81);
}

TEST(Socks5Udp, ShortDatagramIsBadLength) {
  expectInvalid(parseUdpHeader({}), ParseError::BadLength);
  expectInvalid(parseUdpHeader(bytes({0, 0, 0})), ParseError::BadLength);
  expectInvalid(parseUdpHeader(bytes({0, 0, 0, 1, 1, 2, 3, 4, 0})), ParseError::BadLength);
  expectInvalid(parseUdpHeader(bytes({0, 0, 0, 3})), ParseError::BadLength);
  expectInvalid(parseUdpHeader(bytes({0, 0, 0, 3, 200}) + text("short")), ParseError::BadLength);
}

TEST(Socks5Udp, BadAddressTypeAndEmptyDomain) {
  expectInvalid(parseUdpHeader(bytes({0, 0, 0, 2, 1, 2, 3, 4, 0, 1})), ParseError::BadAddressType);
  expectInvalid(parseUdpHeader(bytes({0, 0, 0, 0})), ParseError::BadAddressType);
  expectInvalid(parseUdpHeader(bytes({0, 0, 0, 3, 0, 0, 1})), ParseError::BadLength);
}

TEST(Socks5Udp, EncodeLayoutAndRoundTrip) {
  EXPECT_EQ(encodeUdpHeader(Address::ipv4({192, 0, 2, 55}, 5353)),
            bytes({0x00, 0x00, 0x00, 0x01, 192, 0, 2, 55, 0x14, 0xE9}));
  for (const Address& address :
       {Address::ipv4({1, 2, 3, 4}, 1), Address::ipv6(kDocIpv6, 65535),
        Address::name("dns.example", 53), Address::name(std::string(255, 'q'), 9)}) {
    SCOPED_TRACE(address.toString());
    const Buffer datagram = encodeUdpHeader(address) + text("payload");
    const auto r = parseUdpHeader(datagram);
    ASSERT_TRUE(r.complete());
    EXPECT_EQ(r.value, (UdpHeader{0, address}));
    EXPECT_EQ(datagram.size() - r.consumed, 7u);
  }
  EXPECT_TRUE(encodeUdpHeader(Address::name(std::string(300, 'q'), 9)).empty());
}

}  // namespace
}  // namespace fwgate::protocol::socks5
