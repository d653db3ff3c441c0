// IpAddress, IpRange and PortRange parsing and formatting, as tables of inputs.
#include "policy/address.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace fwgate::policy {
namespace {

IpAddress ip(std::string_view text) {
  const auto a = IpAddress::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(IpAddress{});
}

struct AddressCase {
  std::string text;
  bool valid;
  std::string formatted;  // toString() of the parsed address
  bool v6;
};

TEST(IpAddressTest, ParseTable) {
  const std::vector<AddressCase> cases = {
      {"10.1.2.3", true, "10.1.2.3", false},
      {"0.0.0.0", true, "0.0.0.0", false},
      {"255.255.255.255", true, "255.255.255.255", false},
      {"::1", true, "::1", true},
      {"::", true, "::", true},
      {"2001:DB8::1", true, "2001:db8::1", true},
      {"2001:db8:0:0:0:0:0:1", true, "2001:db8::1", true},
      {"::ffff:10.0.0.1", true, "10.0.0.1", false},  // v4-mapped is IPv4
      {"::ffff:a00:1", true, "10.0.0.1", false},
      {"::10.0.0.1", true, "::10.0.0.1", true},  // v4-compatible is not mapped
      {"", false, "", false},
      {"1.2.3", false, "", false},
      {"1.2.3.4.5", false, "", false},
      {"256.1.1.1", false, "", false},
      {"01.2.3.4", false, "", false},
      {" 1.2.3.4", false, "", false},
      {"1.2.3.4 ", false, "", false},
      {"1.2.3.4/8", false, "", false},
      {"::g", false, "", false},
      {"1:2:3:4:5:6:7:8:9", false, "", false},
      {"fe80::1%eth0", false, "", false},
      {"[::1]", false, "", false},
      {"example.com", false, "", false},
      {std::string("1.2.3.4\0.5", 10), false, "", false},
  };
  for (const auto& c : cases) {
    const auto parsed = IpAddress::parse(c.text);
    ASSERT_EQ(parsed.has_value(), c.valid) << "\"" << c.text << "\"";
    if (!parsed) continue;
    EXPECT_EQ(parsed->toString(), c.formatted) << c.text;
    EXPECT_EQ(parsed->v6, c.v6) << c.text;
  }
}

TEST(IpAddressTest, LoopbackAndUnspecified) {
  struct Case {
    std::string text;
    bool loopback;
    bool unspecified;
  };
  const std::vector<Case> cases = {
      {"127.0.0.1", true, false},  {"127.255.255.254", true, false},
      {"128.0.0.1", false, false}, {"::1", true, false},
      {"::2", false, false},       {"0.0.0.0", false, true},
      {"0.1.2.3", false, true},    {"::", false, true},
      {"10.0.0.1", false, false},  {"::ffff:127.0.0.1", true, false},
  };
  for (const auto& c : cases) {
    const IpAddress a = ip(c.text);
    EXPECT_EQ(a.isLoopback(), c.loopback) << c.text;
    EXPECT_EQ(a.isUnspecified(), c.unspecified) << c.text;
  }
}

TEST(IpAddressTest, FromBytesUnmapsV4Mapped) {
  const IpAddress mapped =
      IpAddress::fromV6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 1, 2});
  EXPECT_EQ(mapped, IpAddress::fromV4({192, 168, 1, 2}));
  EXPECT_FALSE(mapped.v6);
  const IpAddress plain =
      IpAddress::fromV6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
  EXPECT_TRUE(plain.v6);
  EXPECT_EQ(plain.toString(), "2001:db8::1");
}

struct RangeCase {
  std::string text;
  bool valid;
  std::string first;
  std::string last;
};

TEST(IpRangeTest, ParseTable) {
  const std::vector<RangeCase> cases = {
      {"10.0.0.0/8", true, "10.0.0.0", "10.255.255.255"},
      {"10.1.2.3/8", true, "10.0.0.0", "10.255.255.255"},  // host bits are masked
      {"192.168.1.0/25", true, "192.168.1.0", "192.168.1.127"},
      {"10.0.0.7/32", true, "10.0.0.7", "10.0.0.7"},
      {"0.0.0.0/0", true, "0.0.0.0", "255.255.255.255"},
      {"192.168.1.10-192.168.1.20", true, "192.168.1.10", "192.168.1.20"},
      {" 192.168.1.10 - 192.168.1.20 ", true, "192.168.1.10", "192.168.1.20"},
      {"10.0.0.5-10.0.0.5", true, "10.0.0.5", "10.0.0.5"},
      {"10.0.0.1", true, "10.0.0.1", "10.0.0.1"},
      {"2001:db8::/32", true, "2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"},
      {"2001:db8::1-2001:db8::ff", true, "2001:db8::1", "2001:db8::ff"},
      {"::/0", true, "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
      {"::1", true, "::1", "::1"},
      {"::ffff:10.0.0.0/104", true, "10.0.0.0", "10.255.255.255"},
      {"::ffff:10.0.0.1-::ffff:10.0.0.9", true, "10.0.0.1", "10.0.0.9"},
      {"10.0.0.9-10.0.0.1", false, "", ""},  // reversed
      {"10.0.0.1-::1", false, "", ""},       // mixed families
      {"10.0.0.0/33", false, "", ""},
      {"2001:db8::/129", false, "", ""},
      {"::ffff:0:0/95", false, "", ""},  // wider than the mapped space
      {"10.0.0.0/", false, "", ""},
      {"/8", false, "", ""},
      {"10.0.0.0/-1", false, "", ""},
      {"10.0.0.0/8/8", false, "", ""},
      {"10.0.0.0/x", false, "", ""},
      {"10.0.0.1-", false, "", ""},
      {"-10.0.0.1", false, "", ""},
      {"10.0.0.1-10.0.0.2-10.0.0.3", false, "", ""},
      {"", false, "", ""},
      {"lan", false, "", ""},
  };
  for (const auto& c : cases) {
    const auto r = IpRange::parse(c.text);
    ASSERT_EQ(r.has_value(), c.valid) << "\"" << c.text << "\"";
    if (!r) continue;
    EXPECT_EQ(r->first.toString(), c.first) << c.text;
    EXPECT_EQ(r->last.toString(), c.last) << c.text;
  }
}

TEST(IpRangeTest, Contains) {
  const IpRange v4 = *IpRange::parse("10.0.0.0/8");
  EXPECT_TRUE(v4.contains(ip("10.0.0.0")));
  EXPECT_TRUE(v4.contains(ip("10.255.255.255")));
  EXPECT_TRUE(v4.contains(ip("::ffff:10.1.2.3")));
  EXPECT_FALSE(v4.contains(ip("9.255.255.255")));
  EXPECT_FALSE(v4.contains(ip("11.0.0.0")));
  EXPECT_FALSE(v4.contains(ip("::a00:1")));  // same bytes, other family
  const IpRange pair = *IpRange::parse("192.168.1.10-192.168.1.20");
  EXPECT_TRUE(pair.contains(ip("192.168.1.10")));
  EXPECT_TRUE(pair.contains(ip("192.168.1.20")));
  EXPECT_FALSE(pair.contains(ip("192.168.1.21")));
  EXPECT_FALSE(pair.contains(ip("192.168.1.9")));
  const IpRange v6 = *IpRange::parse("2001:db8::/32");
  EXPECT_TRUE(v6.contains(ip("2001:db8:1::5")));
  EXPECT_FALSE(v6.contains(ip("2001:db9::")));
  EXPECT_FALSE(v6.contains(ip("10.0.0.1")));
}

TEST(IpRangeTest, ToString) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"10.0.0.0/8", "10.0.0.0/8"},
      {"10.9.9.9/8", "10.0.0.0/8"},
      {"10.0.0.0-10.0.0.255", "10.0.0.0/24"},
      {"10.0.0.1-10.0.0.9", "10.0.0.1-10.0.0.9"},
      {"10.0.0.1", "10.0.0.1"},
      {"0.0.0.0/0", "0.0.0.0/0"},
      {"::/0", "::/0"},
      {"2001:db8::/32", "2001:db8::/32"},
  };
  for (const auto& [text, formatted] : cases) {
    const auto r = IpRange::parse(text);
    ASSERT_TRUE(r) << text;
    EXPECT_EQ(r->toString(), formatted) << text;
    EXPECT_EQ(IpRange::parse(r->toString()), r) << text;
  }
}

struct PortCase {
  std::string text;
  bool valid;
  std::uint16_t first;
  std::uint16_t last;
};

TEST(PortRangeTest, ParseTable) {
  const std::vector<PortCase> cases = {
      {"80", true, 80, 80},
      {"1", true, 1, 1},
      {"65535", true, 65535, 65535},
      {"1000-2000", true, 1000, 2000},
      {" 8000 - 8100 ", true, 8000, 8100},
      {"1-65535", true, 1, 65535},
      {"443-443", true, 443, 443},
      {"0", false, 0, 0},
      {"0-10", false, 0, 0},
      {"65536", false, 0, 0},
      {"10-65536", false, 0, 0},
      {"2000-1000", false, 0, 0},
      {"", false, 0, 0},
      {"-", false, 0, 0},
      {"80-", false, 0, 0},
      {"-80", false, 0, 0},
      {"+80", false, 0, 0},
      {"http", false, 0, 0},
      {"80 81", false, 0, 0},
      {"1-2-3", false, 0, 0},
      {"99999999999", false, 0, 0},
  };
  for (const auto& c : cases) {
    const auto p = PortRange::parse(c.text);
    ASSERT_EQ(p.has_value(), c.valid) << "\"" << c.text << "\"";
    if (!p) continue;
    EXPECT_EQ(p->first, c.first) << c.text;
    EXPECT_EQ(p->last, c.last) << c.text;
  }
}

TEST(PortRangeTest, ContainsAndToString) {
  const PortRange r = *PortRange::parse("8000-8100");
  EXPECT_FALSE(r.contains(7999));
  EXPECT_TRUE(r.contains(8000));
  EXPECT_TRUE(r.contains(8100));
  EXPECT_FALSE(r.contains(8101));
  EXPECT_EQ(r.toString(), "8000-8100");
  EXPECT_EQ(PortRange::parse("22")->toString(), "22");
}

}  // namespace
}  // namespace fwgate::policy
