// The kernel client's sans-I/O parts: ranges as prefixes (the LPM table), resolv.conf's servers,
// and DNS queries and answers (checked by parsing the answer back byte by byte).
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>

#include "kernel/dns_message.hpp"
#include "kernel/helper.hpp"
#include "kernel/interceptor.hpp"

namespace fwgate::kernel {
namespace {

std::uint32_t ip(const char* text) {
  in_addr a{};
  EXPECT_EQ(::inet_pton(AF_INET, text, &a), 1);
  return ntohl(a.s_addr);
}

TEST(Prefixes, ACidrRangeIsOnePrefix) {
  const auto p = prefixesOf(ip("10.1.0.0"), ip("10.1.255.255"));
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].address, ip("10.1.0.0"));
  EXPECT_EQ(p[0].length, 16);
}

TEST(Prefixes, AnUnalignedRangeIsCoveredExactly) {
  // 10.0.0.5 - 10.0.0.20: .5/32, .6/31, .8/29, .16/30, .20/32
  const auto p = prefixesOf(ip("10.0.0.5"), ip("10.0.0.20"));
  std::uint64_t covered = 0;
  std::uint32_t next = ip("10.0.0.5");
  for (const auto& x : p) {
    EXPECT_EQ(x.address, next);
    EXPECT_EQ(x.address % (std::uint64_t{1} << (32 - x.length)), 0u) << "aligned";
    covered += std::uint64_t{1} << (32 - x.length);
    next = static_cast<std::uint32_t>(x.address + (std::uint64_t{1} << (32 - x.length)));
  }
  EXPECT_EQ(covered, 16u);
  EXPECT_EQ(p.size(), 5u);
}

TEST(Prefixes, TheWholeSpaceAndOneAddress) {
  const auto all = prefixesOf(0, 0xffffffffu);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].length, 0);
  const auto one = prefixesOf(ip("192.0.2.9"), ip("192.0.2.9"));
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].length, 32);
  EXPECT_TRUE(prefixesOf(2, 1).empty());
}

TEST(Prefixes, IPv6RangesAreCoveredExactly) {
  std::array<std::uint8_t, 16> first{};
  std::array<std::uint8_t, 16> last{};
  ::inet_pton(AF_INET6, "2001:db8::", first.data());
  ::inet_pton(AF_INET6, "2001:db8::ffff:ffff:ffff:ffff", last.data());
  const auto one = prefixesOf6(first, last);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].length, 64);
  EXPECT_EQ(one[0].address, first);
  // ::5 - ::8: ::5/128, ::6/127, ::8/128.
  std::array<std::uint8_t, 16> a{};
  std::array<std::uint8_t, 16> b{};
  a[15] = 5;
  b[15] = 8;
  const auto three = prefixesOf6(a, b);
  ASSERT_EQ(three.size(), 3u);
  EXPECT_EQ(three[0].length, 128);
  EXPECT_EQ(three[1].length, 127);
  EXPECT_EQ(three[1].address[15], 6);
  EXPECT_EQ(three[2].address[15], 8);
  std::array<std::uint8_t, 16> all{};
  all.fill(0xff);
  const auto everything = prefixesOf6({}, all);
  ASSERT_EQ(everything.size(), 1u);
  EXPECT_EQ(everything[0].length, 0);
  EXPECT_TRUE(prefixesOf6(b, a).empty());
}

TEST(ResolvConf, NameserversInOrderAndTheDefault) {
  const auto servers = nameserversOf(
      "# comment\nsearch example.test\nnameserver 10.0.0.53\n  nameserver\t192.0.2.1\n"
      "nameserver 2001:db8::1\nnameserverx 1.2.3.4\n");
  ASSERT_EQ(servers.size(), 2u);
  EXPECT_EQ(ntohl(servers[0]), ip("10.0.0.53"));
  EXPECT_EQ(ntohl(servers[1]), ip("192.0.2.1"));
  const auto none = nameserversOf("search example.test\n");
  ASSERT_EQ(none.size(), 1u);
  EXPECT_EQ(ntohl(none[0]), ip("127.0.0.1"));
}

// A query for www.example.test, type `type`, id 0x1234, RD set.
std::vector<std::uint8_t> query(std::uint16_t type) {
  std::vector<std::uint8_t> q = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
  for (const char* label : {"www", "example", "test"}) {
    q.push_back(static_cast<std::uint8_t>(std::strlen(label)));
    q.insert(q.end(), label, label + std::strlen(label));
  }
  q.push_back(0);
  q.push_back(static_cast<std::uint8_t>(type >> 8));
  q.push_back(static_cast<std::uint8_t>(type));
  q.push_back(0);
  q.push_back(1);
  return q;
}

protocol::control::IpAddress v4(const char* text) {
  protocol::control::IpAddress a;
  a.family = 4;
  ::inet_pton(AF_INET, text, a.bytes.data());
  return a;
}

TEST(Dns, AQueryIsRead) {
  DnsQuestion q;
  ASSERT_TRUE(parseDnsQuery(query(kDnsTypeA), q));
  EXPECT_EQ(q.name, "www.example.test");
  EXPECT_EQ(q.type, kDnsTypeA);
  EXPECT_TRUE(q.recursionDesired);
}

TEST(Dns, AResponseTwoQuestionsAndGarbageAreNotQueries) {
  auto response = query(kDnsTypeA);
  response[2] |= 0x80;  // QR
  DnsQuestion q;
  EXPECT_FALSE(parseDnsQuery(response, q));
  auto two = query(kDnsTypeA);
  two[5] = 2;  // QDCOUNT 2 with one question
  EXPECT_FALSE(parseDnsQuery(two, q));
  const std::vector<std::uint8_t> junk = {1, 2, 3};
  EXPECT_FALSE(parseDnsQuery(junk, q));
  EXPECT_TRUE(dnsAnswer(junk, kDnsNoError, {}, 60).empty());
}

TEST(Dns, TheAnswerCarriesTheAddressesOfTheQuestionsType) {
  const auto q = query(kDnsTypeA);
  protocol::control::IpAddress v6;
  v6.family = 6;
  v6.bytes[15] = 1;
  const protocol::control::IpAddress addresses[] = {v4("203.0.113.7"), v6, v4("203.0.113.8")};
  const auto a = dnsAnswer(q, kDnsNoError, addresses, 60);
  ASSERT_GE(a.size(), 12u);
  EXPECT_EQ(a[0], 0x12);
  EXPECT_EQ(a[1], 0x34);
  EXPECT_EQ(a[2] & 0x80, 0x80) << "QR";
  EXPECT_EQ(a[2] & 0x01, 0x01) << "RD copied";
  EXPECT_EQ(a[3] & 0x80, 0x80) << "RA";
  EXPECT_EQ(a[3] & 0x0f, 0) << "NOERROR";
  EXPECT_EQ(a[5], 1) << "one question";
  EXPECT_EQ(a[7], 2) << "two A records, no AAAA";
  // The last record's data is 203.0.113.8.
  EXPECT_EQ(std::vector<std::uint8_t>(a.end() - 4, a.end()),
            (std::vector<std::uint8_t>{203, 0, 113, 8}));
}

TEST(Dns, ErrorsCarryNoRecords) {
  const auto q = query(kDnsTypeAAAA);
  const protocol::control::IpAddress addresses[] = {v4("203.0.113.7")};
  for (const std::uint8_t rcode : {kDnsNxDomain, kDnsServFail, kDnsNotImp}) {
    const auto a = dnsAnswer(q, rcode, addresses, 60);
    ASSERT_GE(a.size(), 12u);
    EXPECT_EQ(a[3] & 0x0f, rcode);
    EXPECT_EQ(a[7], 0);
  }
  // NOERROR for AAAA with only IPv4 addresses: no data, not an error.
  const auto a = dnsAnswer(q, kDnsNoError, addresses, 60);
  EXPECT_EQ(a[3] & 0x0f, 0);
  EXPECT_EQ(a[7], 0);
}

}  // namespace
}  // namespace fwgate::kernel
