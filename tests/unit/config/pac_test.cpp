// The PAC script's text: which network's ranges and domains, the implicit local ranges, the route,
// escaping, determinism, and no name resolution. tests/integration/test_pac.py runs the same
// script in node.
#include "config/pac.hpp"

#include <gtest/gtest.h>

#include <string>

namespace fwgate::config {
namespace {

std::shared_ptr<const Config> load(std::string_view toml) {
  const LoadResult r = parseConfig(toml, "t");
  std::string errors;
  for (const auto& e : r.errors) errors += "\n  " + e.toString();
  EXPECT_TRUE(r.ok()) << errors;
  return r.config ? r.config : std::make_shared<const Config>();
}

policy::IpAddress ip(std::string_view text) {
  const auto a = policy::IpAddress::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(policy::IpAddress{});
}

bool has(const std::string& script, std::string_view piece) {
  return script.find(piece) != std::string::npos;
}

// The script without its comment lines.
std::string code(const std::string& script) {
  std::string out;
  std::size_t start = 0;
  while (start < script.size()) {
    std::size_t end = script.find('\n', start);
    if (end == std::string::npos) end = script.size();
    const std::string line = script.substr(start, end - start);
    const std::size_t first = line.find_first_not_of(' ');
    if (first == std::string::npos || line.compare(first, 2, "//") != 0) {
      out += line;
      out += '\n';
    }
    start = end + 1;
  }
  return out;
}

constexpr std::string_view kTwoNetworks = R"(
[web_proxy]
listen = ["10.0.1.1:8080"]
direct_domains = ["*.partner.example", "Shared.Example"]
direct_ranges = ["192.0.2.1-192.0.2.6", "2001:db8::/32", "10.0.0.0/16"]

[networks.lan]
ranges = ["10.0.0.0/16", "fd00::/8"]
domains = ["corp.example", "shared.example"]
firewall_clients = true

[networks.lab]
ranges = ["10.9.0.0/24"]
domains = ["lab.example"]
firewall_clients = true

[networks.dmz]
ranges = ["172.16.0.0/12"]
domains = ["dmz.example"]

[[rules]]
action = "allow"
sources = ["lan", "lab"]
)";

TEST(ClientNetworkTest, TheFirstFirewallClientNetworkHoldingTheAddress) {
  const auto config = load(R"(
[networks.b-narrow]
ranges = ["10.1.0.0/16"]
firewall_clients = true
[networks.a-wide]
ranges = ["10.0.0.0/8"]
firewall_clients = true
[networks.c-servers]
ranges = ["10.2.0.0/16"]
)");
  const policy::Network* n = clientNetwork(*config, ip("10.1.2.3"));
  ASSERT_NE(n, nullptr);
  // The first in the configuration's order (networks come in name order), not the narrowest.
  EXPECT_EQ(n->name, "a-wide");
  // Without firewall_clients a network is nobody's LAT; "wide" still holds its addresses.
  EXPECT_EQ(clientNetwork(*config, ip("10.2.0.1"))->name, "a-wide");
  EXPECT_EQ(clientNetwork(*config, ip("192.0.2.1")), nullptr);
}

TEST(ClientNetworkTest, NoneWhenNoFirewallClientNetworkHoldsIt) {
  const auto config = load(R"(
[networks.servers]
ranges = ["10.2.0.0/16"]
[networks.lan]
ranges = ["10.1.0.0/16"]
firewall_clients = true
)");
  EXPECT_EQ(clientNetwork(*config, ip("10.2.0.1")), nullptr);
  EXPECT_EQ(clientNetwork(*config, ip("127.0.0.1")), nullptr);  // loopback is not opened here
  ASSERT_NE(clientNetwork(*config, ip("10.1.0.1")), nullptr);
  // An IPv4-mapped address, as a dual-stack socket reports it, is the IPv4 address.
  policy::IpAddress mapped;
  mapped.v6 = true;
  mapped.bytes = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 0, 1};
  ASSERT_NE(clientNetwork(*config, mapped), nullptr);
  EXPECT_EQ(clientNetwork(*config, mapped)->name, "lan");
}

TEST(ClientNetworkTest, TheEmbeddedDefaultOpensLoopback) {
  const auto config = load(embeddedDefaultConfig());
  ASSERT_NE(clientNetwork(*config, ip("127.0.0.1")), nullptr);
  EXPECT_EQ(clientNetwork(*config, ip("::1"))->name, "loopback");
  EXPECT_EQ(clientNetwork(*config, ip("10.0.0.1")), nullptr);
}

TEST(PacScriptTest, LowerCasesTheHostBeforeAnyComparison) {
  const auto config = load(kTwoNetworks);
  const std::string s = code(pacScript(*config, ip("10.0.1.5"), "10.0.1.1:8080"));
  const std::size_t body = s.find("function FindProxyForURL(url, host) {");
  ASSERT_NE(body, std::string::npos) << s;
  const std::size_t lower = s.find("host = host.toLowerCase();", body);
  ASSERT_NE(lower, std::string::npos) << s;
  // Nothing reads the host between the function's start and the lower-casing.
  EXPECT_EQ(s.find("host", body + 35), lower) << s;
}

TEST(PacScriptTest, TheClientNetworksDomainsAndRangesAndTheExtraOnes) {
  const auto config = load(kTwoNetworks);
  const std::string s = pacScript(*config, ip("10.0.1.5"), "10.0.1.1:8080");
  // lan's, then [web_proxy]'s, each once, normalised.
  EXPECT_TRUE(has(s,
                  "var fwgateDirectDomains = [\n  \"corp.example\",\n  \"shared.example\",\n"
                  "  \"partner.example\"\n];\n"))
      << s;
  EXPECT_FALSE(has(s, "\"lab.example\"")) << "another firewall-client network's domain\n" << s;
  EXPECT_FALSE(has(s, "\"dmz.example\"")) << s;
  EXPECT_TRUE(has(s,
                  "var fwgateDirectNets4 = [\n"
                  "  [\"127.0.0.0\", \"255.0.0.0\"],\n"
                  "  [\"169.254.0.0\", \"255.255.0.0\"],\n"
                  "  [\"10.0.0.0\", \"255.255.0.0\"],\n"
                  // 192.0.2.1-192.0.2.6: the fewest exact blocks.
                  "  [\"192.0.2.1\", \"255.255.255.255\"],\n"
                  "  [\"192.0.2.2\", \"255.255.255.254\"],\n"
                  "  [\"192.0.2.4\", \"255.255.255.254\"],\n"
                  "  [\"192.0.2.6\", \"255.255.255.255\"]\n"
                  "];\n"))
      << s;
  EXPECT_TRUE(has(s,
                  "var fwgateDirectRanges6 = [\n"
                  "  [\"::1\", \"::1\"],\n"
                  "  [\"fe80::\", \"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff\"],\n"
                  "  [\"fd00::\", \"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff\"],\n"
                  "  [\"2001:db8::\", \"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff\"]\n"
                  "];\n"))
      << s;
  EXPECT_TRUE(has(s, "network lan (its ranges and domains)")) << s;
  EXPECT_TRUE(has(s, "for the client 10.0.1.5.")) << s;
}

TEST(PacScriptTest, AnotherFirewallClientNetworkGetsItsOwn) {
  const auto config = load(kTwoNetworks);
  const std::string s = pacScript(*config, ip("10.9.0.7"), "10.0.1.1:8080");
  EXPECT_TRUE(has(s, "\"lab.example\"")) << s;
  EXPECT_TRUE(has(s, "[\"10.9.0.0\", \"255.255.255.0\"]")) << s;
  EXPECT_FALSE(has(s, "\"corp.example\"")) << s;
  EXPECT_TRUE(has(s, "\"partner.example\"")) << s;  // direct_domains are everyone's
}

TEST(PacScriptTest, WithoutAFirewallClientNetworkTheNetworksHoldingTheClient) {
  const auto config = load(kTwoNetworks);
  const std::string dmz = pacScript(*config, ip("172.16.5.5"), "10.0.1.1:8080");
  EXPECT_TRUE(has(dmz, "\"dmz.example\"")) << dmz;
  EXPECT_TRUE(has(dmz, "[\"172.16.0.0\", \"255.240.0.0\"]")) << dmz;
  EXPECT_TRUE(has(dmz, "networks dmz") || has(dmz, "network dmz")) << dmz;
  EXPECT_FALSE(has(dmz, "\"corp.example\"")) << dmz;
  // In no network at all: only the implicit ranges and [web_proxy]'s own.
  const std::string nowhere = pacScript(*config, ip("198.51.100.1"), "10.0.1.1:8080");
  EXPECT_TRUE(has(nowhere, "Local for it: no network of the gateway's")) << nowhere;
  EXPECT_TRUE(has(nowhere, "var fwgateDirectDomains = [\n  \"partner.example\",\n")) << nowhere;
  // "any" holds every address, yet makes nothing local.
  EXPECT_FALSE(has(nowhere, "network any")) << nowhere;
}

TEST(PacScriptTest, LoopbackCountsOnlyForALoopbackClient) {
  const auto config = load(R"(
[networks.everything]
ranges = ["0.0.0.0/0"]
domains = ["all.example"]
)");
  const std::string remote = pacScript(*config, ip("192.0.2.1"), "gw:8080");
  EXPECT_TRUE(has(remote, "network everything (")) << remote;
  const std::string local = pacScript(*config, ip("127.0.0.1"), "gw:8080");
  EXPECT_TRUE(has(local, "networks loopback, everything")) << local;
}

TEST(PacScriptTest, TheRouteIsTheProxyThenTheBackupRoute) {
  const std::string direct = pacScript(*load(""), ip("10.0.0.1"), "gw.corp:8080");
  EXPECT_TRUE(has(direct, "var fwgateRoute = \"PROXY gw.corp:8080; DIRECT\";\n")) << direct;
  const std::string other =
      pacScript(*load("[web_proxy]\nbackup_route = \"PROXY backup.corp:3128\"\n"), ip("10.0.0.1"),
                "[fd00::1]:8080");
  EXPECT_TRUE(has(other, "var fwgateRoute = \"PROXY [fd00::1]:8080; PROXY backup.corp:3128\";\n"))
      << other;
  const std::string none =
      pacScript(*load("[web_proxy]\nbackup_route = \"\"\n"), ip("10.0.0.1"), "gw:8080");
  EXPECT_TRUE(has(none, "var fwgateRoute = \"PROXY gw:8080\";\n")) << none;
  // Every other answer is DIRECT or that route.
  const std::string c = code(none);
  std::size_t at = 0;
  while ((at = c.find("return ", at)) != std::string::npos) {
    const std::string rest = c.substr(at, 60);
    at += 7;
    if (rest.find('"') == 7) {
      EXPECT_EQ(rest.substr(0, 16), "return \"DIRECT\";") << rest;
    }
  }
}

TEST(PacScriptTest, NeverResolvesANameAndSaysWhy) {
  const auto config = load(kTwoNetworks);
  const std::string s = pacScript(*config, ip("10.0.1.5"), "10.0.1.1:8080");
  const std::string c = code(s);
  EXPECT_FALSE(has(c, "dnsResolve")) << c;
  EXPECT_FALSE(has(c, "myIpAddress")) << c;
  EXPECT_FALSE(has(c, "isResolvable")) << c;
  EXPECT_TRUE(has(s, "// No name is resolved here: dnsResolve()")) << s;
  // isInNet (which resolves a name it is given) is called after the IPv4-literal test only.
  const std::size_t call = c.find("if (isInNet(");
  ASSERT_NE(call, std::string::npos) << c;
  EXPECT_NE(c.find("if (fwgateIsIpv4(host)) return fwgateInNets4(host)"), std::string::npos) << c;
}

TEST(PacScriptTest, SingleLabelNamesLocalhostAndDomainsAreDirect) {
  const std::string c = code(pacScript(*load(kTwoNetworks), ip("10.0.1.5"), "gw:8080"));
  EXPECT_TRUE(has(c, "isPlainHostName(host) || host == \"localhost\"")) << c;
  EXPECT_TRUE(has(c, "if (host == domain || dnsDomainIs(host, \".\" + domain)) return \"DIRECT\";"))
      << c;
}

TEST(PacScriptTest, StringsAreEscaped) {
  const std::string s = pacScript(*load(""), ip("10.0.0.1"), "a\"b\\c\nd\x01\xe2\x80\xa8:1");
  EXPECT_TRUE(has(s, "var fwgateRoute = \"PROXY a\\\"b\\\\c\\u000ad\\u0001\\u2028:1; DIRECT\";\n"))
      << s;
}

TEST(PacScriptTest, Deterministic) {
  const auto config = load(kTwoNetworks);
  const std::string a = pacScript(*config, ip("10.0.1.5"), "10.0.1.1:8080");
  const std::string b = pacScript(*load(kTwoNetworks), ip("10.0.1.5"), "10.0.1.1:8080");
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, pacScript(*config, ip("10.0.1.5"), "10.0.1.1:8080"));
}

TEST(PacScriptTest, AWholeFamilyRangeIsOneBlock) {
  const std::string s =
      pacScript(*load("[web_proxy]\ndirect_ranges = [\"0.0.0.0/0\"]\n"), ip("10.0.0.1"), "gw:8080");
  EXPECT_TRUE(has(s, "  [\"0.0.0.0\", \"0.0.0.0\"]\n")) << s;
  const std::string top =
      pacScript(*load("[web_proxy]\ndirect_ranges = [\"255.255.255.254-255.255.255.255\"]\n"),
                ip("10.0.0.1"), "gw:8080");
  EXPECT_TRUE(has(top, "  [\"255.255.255.254\", \"255.255.255.254\"]\n")) << top;
}

}  // namespace
}  // namespace fwgate::config
