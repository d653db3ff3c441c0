// Address: constructors, text forms, and the SOCKS5 ATYP/ADDR/PORT encoding shared by all messages.
#include "protocol/address.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fwgate::protocol {
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

const std::array<std::uint8_t, 16> kDocIpv6{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                            0,    0,    0,    0,    0, 0, 0, 1};

Buffer encoded(const Address& address) {
  Buffer out;
  appendSocks5Address(out, address);
  return out;
}

TEST(Address, Ipv4FactoryFillsOnlyTheFirstFourBytes) {
  const Address a = Address::ipv4({1, 2, 3, 4}, 80);
  EXPECT_EQ(a.type, AddressType::IPv4);
  EXPECT_EQ(a.ip, (std::array<std::uint8_t, 16>{1, 2, 3, 4}));
  EXPECT_EQ(a.port, 80);
  EXPECT_TRUE(a.domain.empty());
}

TEST(Address, EqualityCoversTypePortAndBytes) {
  EXPECT_EQ(Address::ipv4({1, 2, 3, 4}, 80), Address::ipv4({1, 2, 3, 4}, 80));
  EXPECT_NE(Address::ipv4({1, 2, 3, 4}, 80), Address::ipv4({1, 2, 3, 4}, 81));
  EXPECT_NE(Address::ipv4({1, 2, 3, 4}, 80), Address::ipv4({1, 2, 3, 5}, 80));
  EXPECT_NE(Address::ipv4({0, 0, 0, 0}, 0), Address::ipv6({}, 0));
  EXPECT_NE(Address::name("a", 1), Address::name("A", 1));
}

TEST(Address, Unspecified) {
  EXPECT_TRUE(Address::ipv4({0, 0, 0, 0}, 1080).isUnspecified());
  EXPECT_FALSE(Address::ipv4({0, 0, 0, 1}, 0).isUnspecified());
  EXPECT_TRUE(Address::ipv6({}, 0).isUnspecified());
  std::array<std::uint8_t, 16> last{};
  last[15] = 1;
  EXPECT_FALSE(Address::ipv6(last, 0).isUnspecified());
  EXPECT_FALSE(Address::name("", 0).isUnspecified());
  EXPECT_FALSE(Address::name("0.0.0.0", 0).isUnspecified());
}

TEST(Address, TextForms) {
  EXPECT_EQ(Address::ipv4({1, 2, 3, 4}, 80).toString(), "1.2.3.4:80");
  EXPECT_EQ(Address::ipv4({1, 2, 3, 4}, 80).host(), "1.2.3.4");
  EXPECT_EQ(Address::ipv4({255, 255, 255, 255}, 65535).toString(), "255.255.255.255:65535");
  EXPECT_EQ(Address::ipv4({0, 0, 0, 0}, 0).toString(), "0.0.0.0:0");

  EXPECT_EQ(Address::ipv6(kDocIpv6, 443).toString(), "[2001:db8::1]:443");
  EXPECT_EQ(Address::ipv6(kDocIpv6, 443).host(), "2001:db8::1");
  EXPECT_EQ(Address::ipv6({}, 0).toString(), "[::]:0");
  const std::array<std::uint8_t, 16> mapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 192, 0, 2, 1};
  EXPECT_EQ(Address::ipv6(mapped, 8080).toString(), "[::ffff:192.0.2.1]:8080");
  const std::array<std::uint8_t, 16> full{0xfe, 0x80, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7};
  EXPECT_EQ(Address::ipv6(full, 1).host(), "fe80:1:2:3:4:5:6:7");

  EXPECT_EQ(Address::name("example.com", 80).toString(), "example.com:80");
  EXPECT_EQ(Address::name("example.com", 80).host(), "example.com");
}

TEST(Address, Encodable) {
  EXPECT_TRUE(Address::ipv4({}, 0).isEncodable());
  EXPECT_TRUE(Address::ipv6({}, 0).isEncodable());
  EXPECT_TRUE(Address::name("x", 0).isEncodable());
  EXPECT_TRUE(Address::name(std::string(255, 'x'), 0).isEncodable());
  EXPECT_FALSE(Address::name("", 0).isEncodable());
  EXPECT_FALSE(Address::name(std::string(256, 'x'), 0).isEncodable());
}

TEST(Socks5Address, EncodingLayout) {
  EXPECT_EQ(encoded(Address::ipv4({192, 0, 2, 1}, 0x1234)),
            bytes({0x01, 192, 0, 2, 1, 0x12, 0x34}));
  EXPECT_EQ(encoded(Address::ipv6(kDocIpv6, 0xABCD)),
            bytes({0x04}) + Buffer(kDocIpv6.begin(), kDocIpv6.end()) + bytes({0xAB, 0xCD}));
  EXPECT_EQ(encoded(Address::name("ex.org", 80)),
            bytes({0x03, 6}) + text("ex.org") + bytes({0, 80}));
}

TEST(Socks5Address, AppendKeepsWhatIsAlreadyThere) {
  Buffer out = bytes({0xAA});
  appendSocks5Address(out, Address::ipv4({1, 2, 3, 4}, 5));
  EXPECT_EQ(out, bytes({0xAA, 1, 1, 2, 3, 4, 0, 5}));
  appendSocks5Address(out, Address::name("", 5));
  EXPECT_EQ(out.size(), 8u);
}

TEST(Socks5Address, RoundTripAllTypes) {
  const std::vector<Address> addresses = {
      Address::ipv4({127, 0, 0, 1}, 1080),
      Address::ipv4({}, 0),
      Address::ipv6(kDocIpv6, 443),
      Address::ipv6({}, 65535),
      Address::name("a", 1),
      Address::name(std::string(255, '.'), 2),
      Address::name(std::string("\0\xFF", 2), 3),
  };
  for (const Address& address : addresses) {
    SCOPED_TRACE(address.toString());
    const Buffer wire = encoded(address) + bytes({0xEE});
    const auto r = parseSocks5Address(wire);
    ASSERT_TRUE(r.complete());
    EXPECT_EQ(r.consumed, wire.size() - 1);
    EXPECT_EQ(r.value, address);
  }
}

TEST(Socks5Address, Malformed) {
  for (int atyp : {0, 2, 5, 0xFF}) {
    const auto r = parseSocks5Address(bytes({atyp}));
    EXPECT_TRUE(r.invalid());
    EXPECT_EQ(r.error, ParseError::BadAddressType);
  }
  const auto empty = parseSocks5Address(bytes({3, 0}));
  EXPECT_TRUE(empty.invalid());
  EXPECT_EQ(empty.error, ParseError::BadLength);
  EXPECT_TRUE(parseSocks5Address({}).needMore());
  EXPECT_TRUE(parseSocks5Address(bytes({3})).needMore());
  EXPECT_TRUE(parseSocks5Address(bytes({4, 0, 0})).needMore());
}

}  // namespace
}  // namespace fwgate::protocol

namespace fwgate::protocol {
namespace {

TEST(HostName, AcceptsHostnamesAndRejectsBytesThatCouldFoolSuffixRules) {
  struct Case {
    std::string name;
    bool valid;
  };
  const std::vector<Case> table = {
      {"example.com", true},
      {"EXAMPLE.com.", true},
      {"a-b_c.d1", true},
      {"localhost", true},
      {std::string(63, 'a') + ".com", true},
      {std::string(64, 'a') + ".com", false},
      {std::string("evil.com\0.allowed.com", 21), false},
      {"", false},
      {".", false},
      {"a..b", false},
      {".example.com", false},
      {"exa mple.com", false},
      {"example.com/", false},
      {"ex\xc3\xa4mple.com", false},
  };
  for (const auto& c : table) EXPECT_EQ(isValidHostName(c.name), c.valid) << c.name;
}

}  // namespace
}  // namespace fwgate::protocol
