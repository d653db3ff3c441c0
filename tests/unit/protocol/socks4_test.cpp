// SOCKS 4 and 4a requests and replies.
#include "protocol/socks4.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fwgate::protocol::socks4 {
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

Buffer nulTerminated(std::string_view s) {
  return text(s) + bytes({0});
}

void expectInvalid(const ParseResult<Request>& r, ParseError error) {
  EXPECT_TRUE(r.invalid());
  EXPECT_EQ(r.error, error);
}

const Buffer kConnectHeader = bytes({4, 1, 0x00, 0x50, 192, 0, 2, 1});  // CONNECT 192.0.2.1:80
const Buffer k4aHeader = bytes({4, 1, 0x01, 0xBB, 0, 0, 0, 1});         // CONNECT 4a, port 443

TEST(Socks4Request, Connect) {
  const auto r = parseRequest(kConnectHeader + nulTerminated("alice"));
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.consumed, 14u);
  EXPECT_EQ(r.value.command, static_cast<std::uint8_t>(Command::Connect));
  EXPECT_EQ(r.value.destination, Address::ipv4({192, 0, 2, 1}, 80));
  EXPECT_EQ(r.value.destination.toString(), "192.0.2.1:80");
  EXPECT_EQ(r.value.userId, "alice");
  EXPECT_FALSE(r.value.isSocks4a);
}

TEST(Socks4Request, BindWithEmptyUserId) {
  const auto r = parseRequest(bytes({4, 2, 0xFF, 0xFF, 10, 9, 8, 7, 0}));
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.consumed, 9u);
  EXPECT_EQ(r.value.command, static_cast<std::uint8_t>(Command::Bind));
  EXPECT_EQ(r.value.destination, Address::ipv4({10, 9, 8, 7}, 65535));
  EXPECT_EQ(r.value.userId, "");
}

TEST(Socks4Request, UnknownCommandIsReturnedRaw) {
  const auto r = parseRequest(bytes({4, 0x33, 0, 80, 1, 2, 3, 4, 0}));
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.value.command, 0x33);
}

TEST(Socks4Request, BadVersion) {
  expectInvalid(parseRequest(bytes({5})), ParseError::BadVersion);
  expectInvalid(parseRequest(bytes({5, 1, 0, 80, 1, 2, 3, 4, 0})), ParseError::BadVersion);
  expectInvalid(parseRequest(bytes({0x44})), ParseError::BadVersion);
}

TEST(Socks4Request, ShortIsNeedMore) {
  EXPECT_TRUE(parseRequest({}).needMore());
  EXPECT_TRUE(parseRequest(bytes({4, 1, 0, 80, 1, 2, 3})).needMore());
  EXPECT_TRUE(parseRequest(kConnectHeader).needMore());
  EXPECT_TRUE(parseRequest(kConnectHeader + text("alice")).needMore());
}

TEST(Socks4Request, UserIdLimit) {
  const std::string longest(kMaxUserIdLength, 'u');
  const auto ok = parseRequest(kConnectHeader + nulTerminated(longest));
  ASSERT_TRUE(ok.complete());
  EXPECT_EQ(ok.consumed, 8 + kMaxUserIdLength + 1);
  EXPECT_EQ(ok.value.userId, longest);

  // At the limit without its NUL yet: the NUL may still come.
  EXPECT_TRUE(parseRequest(kConnectHeader + text(longest)).needMore());
  // One past the limit without a NUL can never become valid.
  expectInvalid(parseRequest(kConnectHeader + text(longest + "u")), ParseError::BadLength);
  expectInvalid(parseRequest(kConnectHeader + nulTerminated(longest + "u")), ParseError::BadLength);
}

TEST(Socks4Request, ZeroDestinationIsPlainSocks4) {
  // 0.0.0.0 is not the 4a marker (x must be non-zero): no domain follows.
  const auto r = parseRequest(bytes({4, 1, 0, 80, 0, 0, 0, 0}) + nulTerminated("u"));
  ASSERT_TRUE(r.complete());
  EXPECT_FALSE(r.value.isSocks4a);
  EXPECT_TRUE(r.value.destination.isUnspecified());
  EXPECT_EQ(r.consumed, 10u);
}

TEST(Socks4Request, OnlyZeroFirstThreeOctetsMarkSocks4a) {
  // 0.0.1.1 and 1.0.0.1 are ordinary (if odd) destinations.
  for (const Buffer& header :
       {bytes({4, 1, 0, 80, 0, 0, 1, 1}), bytes({4, 1, 0, 80, 1, 0, 0, 1})}) {
    const auto r = parseRequest(header + nulTerminated("u") + nulTerminated("example.com"));
    ASSERT_TRUE(r.complete());
    EXPECT_FALSE(r.value.isSocks4a);
    EXPECT_EQ(r.value.destination.type, AddressType::IPv4);
    EXPECT_EQ(r.consumed, 10u);
  }
}

TEST(Socks4aRequest, DomainDestination) {
  const auto r = parseRequest(k4aHeader + nulTerminated("bob") + nulTerminated("example.com"));
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.consumed, 8u + 4 + 12);
  EXPECT_TRUE(r.value.isSocks4a);
  EXPECT_EQ(r.value.userId, "bob");
  EXPECT_EQ(r.value.destination, Address::name("example.com", 443));
  EXPECT_EQ(r.value.destination.toString(), "example.com:443");
}

TEST(Socks4aRequest, AnyNonZeroLastOctet) {
  const auto r = parseRequest(bytes({4, 2, 0, 21, 0, 0, 0, 255}) + nulTerminated("") +
                              nulTerminated("ftp.example"));
  ASSERT_TRUE(r.complete());
  EXPECT_TRUE(r.value.isSocks4a);
  EXPECT_EQ(r.value.command, static_cast<std::uint8_t>(Command::Bind));
  EXPECT_EQ(r.value.destination, Address::name("ftp.example", 21));
}

TEST(Socks4aRequest, LongUserIdThenDomain) {
  const std::string user(kMaxUserIdLength, 'u');
  const auto r = parseRequest(k4aHeader + nulTerminated(user) + nulTerminated("example.net"));
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.consumed, 8 + kMaxUserIdLength + 1 + 12);
  EXPECT_EQ(r.value.userId, user);
  EXPECT_EQ(r.value.destination, Address::name("example.net", 443));
  // The domain scan starts after the USERID, with its own limit.
  EXPECT_TRUE(parseRequest(k4aHeader + nulTerminated(user) + text("example.net")).needMore());
}

TEST(Socks4aRequest, DomainLimit) {
  const std::string longest(kMaxDomainLength, 'd');
  const auto ok = parseRequest(k4aHeader + nulTerminated("") + nulTerminated(longest));
  ASSERT_TRUE(ok.complete());
  EXPECT_EQ(ok.value.destination.domain, longest);

  EXPECT_TRUE(parseRequest(k4aHeader + nulTerminated("") + text(longest)).needMore());
  expectInvalid(parseRequest(k4aHeader + nulTerminated("") + text(longest + "d")),
                ParseError::BadLength);
}

TEST(Socks4aRequest, EmptyDomainIsBadLength) {
  expectInvalid(parseRequest(k4aHeader + nulTerminated("bob") + bytes({0})), ParseError::BadLength);
  expectInvalid(parseRequest(k4aHeader + bytes({0, 0})), ParseError::BadLength);
}

TEST(Socks4aRequest, MissingDomainIsNeedMore) {
  EXPECT_TRUE(parseRequest(k4aHeader + nulTerminated("bob")).needMore());
}

TEST(Socks4Request, EncodeRoundTrip) {
  const std::vector<Request> requests = {
      {1, Address::ipv4({192, 0, 2, 1}, 80), "alice", false},
      {2, Address::ipv4({0, 0, 0, 0}, 0), "", false},
      {1, Address::name("example.com", 443), "bob", true},
      {1, Address::name(std::string(kMaxDomainLength, 'd'), 1), std::string(kMaxUserIdLength, 'u'),
       true},
  };
  for (const Request& request : requests) {
    SCOPED_TRACE(request.destination.toString());
    const Buffer wire = encodeRequest(request);
    const auto r = parseRequest(wire);
    ASSERT_TRUE(r.complete());
    EXPECT_EQ(r.consumed, wire.size());
    EXPECT_EQ(r.value, request);
  }
}

TEST(Socks4Request, EncodeLayout) {
  EXPECT_EQ(encodeRequest({1, Address::ipv4({10, 0, 0, 1}, 0x1F90), "id", false}),
            bytes({4, 1, 0x1F, 0x90, 10, 0, 0, 1, 'i', 'd', 0}));
  EXPECT_EQ(encodeRequest({1, Address::name("h.example", 80), "", true}),
            bytes({4, 1, 0, 80, 0, 0, 0, 1, 0}) + nulTerminated("h.example"));
}

TEST(Socks4Request, EncodeRefusesWhatCannotBeSent) {
  const std::array<std::uint8_t, 16> loopback6{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  EXPECT_TRUE(encodeRequest({1, Address::ipv6(loopback6, 80), "", false}).empty());
  EXPECT_TRUE(
      encodeRequest({1, Address::ipv4({1, 2, 3, 4}, 80), std::string("a\0b", 3), false}).empty());
  EXPECT_TRUE(encodeRequest({1, Address::ipv4({1, 2, 3, 4}, 80),
                             std::string(kMaxUserIdLength + 1, 'u'), false})
                  .empty());
  // 0.0.0.7 would be read back as a 4a request.
  EXPECT_TRUE(encodeRequest({1, Address::ipv4({0, 0, 0, 7}, 80), "", false}).empty());
  EXPECT_TRUE(encodeRequest({1, Address::name("", 80), "", true}).empty());
  EXPECT_TRUE(encodeRequest({1, Address::name(std::string("ex\0ample", 8), 80), "", true}).empty());
  EXPECT_TRUE(
      encodeRequest({1, Address::name(std::string(kMaxDomainLength + 1, 'd'), 80), "", true})
          .empty());
}

TEST(Socks4Reply, Layout) {
  // VN=0 CD DSTPORT(2, network order) DSTIP(4)
  const auto granted = encodeReply(Reply::Granted, {10, 0, 0, 1}, 0x1F90);
  EXPECT_EQ(Buffer(granted.begin(), granted.end()), bytes({0x00, 90, 0x1F, 0x90, 10, 0, 0, 1}));
  for (const auto& [reply, code] :
       {std::pair{Reply::Granted, 90}, std::pair{Reply::Rejected, 91},
        std::pair{Reply::IdentdUnreachable, 92}, std::pair{Reply::IdentdMismatch, 93}}) {
    const auto wire = encodeReply(reply, {0, 0, 0, 0}, 0);
    EXPECT_EQ(Buffer(wire.begin(), wire.end()), bytes({0x00, code, 0, 0, 0, 0, 0, 0}));
  }
}

}  // namespace
}  // namespace fwgate::protocol::socks4
