// [packet_filters]: every accepted form and the values it parses to, every error with its exact
// key path, several errors at once, and the "opens every port" warning.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace fwgate::config {
namespace {

using policy::IpAddress;
using policy::IpRange;
using policy::PortRange;
using Direction = PacketFilter::Direction;
using LocalHost = PacketFilter::LocalHost;

std::string describe(const LoadResult& r) {
  std::string out;
  for (const auto& e : r.errors) out += "\n  error: " + e.toString();
  for (const auto& w : r.warnings) out += "\n  warning: " + w.toString();
  return out;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

IpAddress address(std::string_view text) {
  return *IpAddress::parse(text);
}

IpRange range(std::string_view text) {
  return *IpRange::parse(text);
}

// A [networks.lan] with firewall_clients: the local address table is 10.1.0.0/16 and fd00::/8.
constexpr std::string_view kLan =
    "[networks.lan]\nranges = [\"10.1.0.0/16\", \"fd00::/8\"]\nfirewall_clients = true\n"
    "[control]\nlisten = [\"10.1.0.1:1745\"]\n";

// One filter table (without its header) parsed alone: its only filter.
PacketFilter parseOne(const std::string& body, std::string_view prelude = "") {
  const LoadResult r =
      parseConfig(std::string(prelude) + "[[packet_filters.filter]]\n" + body, "t.toml");
  EXPECT_TRUE(r.ok()) << body << describe(r);
  if (!r.ok() || r.config->packetFilters.filters.size() != 1) {
    ADD_FAILURE() << "expected one filter:" << describe(r);
    return {};
  }
  return r.config->packetFilters.filters[0];
}

TEST(PacketFiltersTest, AbsentSectionIsDisabledAndEmpty) {
  const LoadResult r = parseConfig("", "t.toml");
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(r.config->packetFilters, PacketFilterSettings{});
  EXPECT_FALSE(r.config->packetFilters.enabled);
}

TEST(PacketFiltersTest, EnabledWithoutFiltersIsFineAndQuiet) {
  const LoadResult r = parseConfig(
      "[packet_filters]\nenabled = true\ninterfaces = [\"eth1\"]\n[[rules]]\naction = "
      "\"allow\"\nsources = [\"loopback\"]\n",
      "t.toml");
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_TRUE(r.config->packetFilters.enabled);
  EXPECT_TRUE(r.config->packetFilters.filters.empty());
  EXPECT_TRUE(r.warnings.empty()) << describe(r);
}

TEST(PacketFiltersTest, InterfacesOutboundAndDynamicTimeout) {
  const PacketFilterSettings defaults;
  EXPECT_TRUE(defaults.interfaces.empty());
  EXPECT_FALSE(defaults.outboundDrop);
  EXPECT_EQ(defaults.dynamicTimeout, std::chrono::hours(1));

  LoadResult r = parseConfig(
      "[packet_filters]\nenabled = true\ninterfaces = [\"eth1\", \"ppp*\", \"br-lan.10\"]\n"
      "outbound = \"drop\"\ndynamic_timeout = \"10m\"\n",
      "t.toml");
  ASSERT_TRUE(r.ok()) << describe(r);
  const PacketFilterSettings& s = r.config->packetFilters;
  EXPECT_EQ(s.interfaces, (std::vector<std::string>{"eth1", "ppp*", "br-lan.10"}));
  EXPECT_TRUE(s.outboundDrop);
  EXPECT_EQ(s.dynamicTimeout, std::chrono::minutes(10));

  // Explicit "accept", integer seconds, the bounds; interfaces optional while disabled.
  r = parseConfig("[packet_filters]\noutbound = \"accept\"\ndynamic_timeout = 10\n", "t.toml");
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_FALSE(r.config->packetFilters.outboundDrop);
  EXPECT_EQ(r.config->packetFilters.dynamicTimeout, std::chrono::seconds(10));
  EXPECT_TRUE(r.config->packetFilters.interfaces.empty());
  r = parseConfig(
      "[packet_filters]\ndynamic_timeout = \"24h\"\ninterfaces = [\"a23456789012345\"]\n",
      "t.toml");
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(r.config->packetFilters.dynamicTimeout, std::chrono::hours(24));
}

TEST(PacketFiltersTest, TheFullExampleParsesToItsValues) {
  const LoadResult r = parseConfig(R"(
[packet_filters]
enabled = false

[[packet_filters.filter]]
name = "CustomApp"
protocol = "tcp"
direction = "inbound"
local_port = 4000
remote_port = "any"
local_host = "external"
remote_host = "203.0.113.0/24"

[[packet_filters.filter]]
protocol = "icmp"
direction = "both"
remote_host = "198.51.100.1-198.51.100.9"
icmp_type = 8
icmp_code = 0
)",
                                   "t.toml");
  ASSERT_TRUE(r.ok()) << describe(r);
  const auto& filters = r.config->packetFilters.filters;
  ASSERT_EQ(filters.size(), 2u);

  PacketFilter custom;
  custom.name = "CustomApp";
  custom.protocol = PacketFilter::kTcp;
  custom.direction = Direction::Inbound;
  custom.localPort = PortRange{4000, 4000};
  custom.localHost = LocalHost::External;
  custom.remoteHost = range("203.0.113.0/24");
  custom.line = 5;
  EXPECT_EQ(filters[0], custom);
  EXPECT_FALSE(filters[0].remotePort.has_value());
  EXPECT_FALSE(filters[0].localAddress.has_value());

  PacketFilter ping;
  ping.name = "filter-2";
  ping.protocol = PacketFilter::kIcmp;
  ping.direction = Direction::Both;
  ping.remoteHost = IpRange{address("198.51.100.1"), address("198.51.100.9")};
  ping.icmpType = 8;
  ping.icmpCode = 0;
  ping.line = 14;
  EXPECT_EQ(filters[1], ping);
  ASSERT_EQ(r.warnings.size(), 1u) << describe(r);
  EXPECT_EQ(r.warnings[0].path, "rules");  // none about the filters
}

TEST(PacketFiltersTest, Defaults) {
  const PacketFilter f = parseOne("protocol = \"udp\"\ndirection = \"outbound\"\n");
  EXPECT_EQ(f.name, "filter-1");
  EXPECT_EQ(f.protocol, PacketFilter::kUdp);
  EXPECT_EQ(f.direction, Direction::Outbound);
  EXPECT_FALSE(f.localPort);
  EXPECT_FALSE(f.remotePort);
  EXPECT_EQ(f.localHost, LocalHost::External);
  EXPECT_FALSE(f.localAddress);
  EXPECT_FALSE(f.remoteHost);
  EXPECT_FALSE(f.icmpType);
  EXPECT_FALSE(f.icmpCode);
  EXPECT_EQ(f.line, 1u);
}

TEST(PacketFiltersTest, ProtocolNamesAndNumbers) {
  struct Case {
    std::string value;
    std::uint8_t number;
  };
  for (const Case& c : {Case{"\"tcp\"", 6}, Case{"\"udp\"", 17}, Case{"\"icmp\"", 1},
                        Case{"\"icmpv6\"", 58}, Case{"6", 6}, Case{"17", 17}, Case{"1", 1},
                        Case{"58", 58}, Case{"0", 0}, Case{"47", 47}, Case{"255", 255}}) {
    const PacketFilter f = parseOne("protocol = " + c.value + "\ndirection = \"outbound\"\n");
    EXPECT_EQ(f.protocol, c.number) << c.value;
  }
  // The numbers of the named protocols are those protocols: ports and ICMP types apply.
  EXPECT_EQ(parseOne("protocol = 6\ndirection = \"outbound\"\nlocal_port = 80\n").localPort,
            (PortRange{80, 80}));
  EXPECT_EQ(parseOne("protocol = 58\ndirection = \"inbound\"\nicmp_type = 128\n").icmpType, 128);
}

TEST(PacketFiltersTest, DirectionsAndTheirNames) {
  for (const Direction d : {Direction::Inbound, Direction::Outbound, Direction::Both}) {
    const PacketFilter f = parseOne("protocol = \"tcp\"\nlocal_port = 25\ndirection = \"" +
                                    std::string(toString(d)) + "\"\n");
    EXPECT_EQ(f.direction, d);
  }
  EXPECT_EQ(ipProtocolName(6), "tcp");
  EXPECT_EQ(ipProtocolName(17), "udp");
  EXPECT_EQ(ipProtocolName(1), "icmp");
  EXPECT_EQ(ipProtocolName(58), "icmpv6");
  EXPECT_EQ(ipProtocolName(47), "47");
}

TEST(PacketFiltersTest, PortForms) {
  struct Case {
    std::string value;
    std::optional<PortRange> port;
  };
  for (const Case& c :
       {Case{"4000", PortRange{4000, 4000}}, Case{"\"4000\"", PortRange{4000, 4000}},
        Case{"\"1024-5000\"", PortRange{1024, 5000}}, Case{"1", PortRange{1, 1}},
        Case{"65535", PortRange{65535, 65535}}, Case{"\"7-7\"", PortRange{7, 7}},
        Case{"\"any\"", std::nullopt}}) {
    const PacketFilter f =
        parseOne("protocol = \"udp\"\ndirection = \"outbound\"\nlocal_port = " + c.value +
                 "\nremote_port = " + c.value + "\n");
    EXPECT_EQ(f.localPort, c.port) << c.value;
    EXPECT_EQ(f.remotePort, c.port) << c.value;
  }
  // "any" is the default, so it may be written for a protocol without ports.
  EXPECT_FALSE(
      parseOne("protocol = \"icmp\"\ndirection = \"both\"\nlocal_port = \"any\"\n").localPort);
}

TEST(PacketFiltersTest, LocalHostForms) {
  const std::string tcp = "protocol = \"tcp\"\ndirection = \"outbound\"\n";
  PacketFilter f = parseOne(tcp + "local_host = \"external\"\n");
  EXPECT_EQ(f.localHost, LocalHost::External);
  EXPECT_FALSE(f.localAddress);

  f = parseOne(tcp + "local_host = \"203.0.113.1\"\n");
  EXPECT_EQ(f.localHost, LocalHost::GatewayAddress);
  EXPECT_EQ(f.localAddress, address("203.0.113.1"));

  f = parseOne(tcp + "local_host = \"2001:db8::1\"\n");
  EXPECT_EQ(f.localHost, LocalHost::GatewayAddress);
  EXPECT_EQ(f.localAddress, address("2001:db8::1"));

  // An internal computer: anywhere without a local address table, else inside it.
  f = parseOne(tcp + "internal_host = \"192.168.7.5\"\n");
  EXPECT_EQ(f.localHost, LocalHost::InternalComputer);
  EXPECT_EQ(f.localAddress, address("192.168.7.5"));

  f = parseOne(tcp + "internal_host = \"10.1.1.5\"\nlocal_host = \"external\"\n", kLan);
  EXPECT_EQ(f.localHost, LocalHost::InternalComputer);
  EXPECT_EQ(f.localAddress, address("10.1.1.5"));

  f = parseOne(tcp + "internal_host = \"fd00::5\"\nremote_host = \"2001:db8::/32\"\n", kLan);
  EXPECT_EQ(f.localHost, LocalHost::InternalComputer);
  EXPECT_EQ(f.localAddress, address("fd00::5"));
  EXPECT_EQ(f.remoteHost, range("2001:db8::/32"));

  // The gateway's external address outside the local address table.
  f = parseOne(tcp + "local_host = \"203.0.113.1\"\n", kLan);
  EXPECT_EQ(f.localHost, LocalHost::GatewayAddress);
}

TEST(PacketFiltersTest, RemoteHostForms) {
  const std::string udp = "protocol = \"udp\"\ndirection = \"outbound\"\nremote_host = ";
  EXPECT_FALSE(parseOne(udp + "\"any\"\n").remoteHost);
  EXPECT_EQ(parseOne(udp + "\"203.0.113.7\"\n").remoteHost,
            (IpRange{address("203.0.113.7"), address("203.0.113.7")}));
  EXPECT_EQ(parseOne(udp + "\"203.0.113.0/24\"\n").remoteHost,
            (IpRange{address("203.0.113.0"), address("203.0.113.255")}));
  EXPECT_EQ(parseOne(udp + "\"203.0.113.1-203.0.113.9\"\n").remoteHost,
            (IpRange{address("203.0.113.1"), address("203.0.113.9")}));
  EXPECT_EQ(parseOne(udp + "\"2001:db8::/64\"\n").remoteHost, range("2001:db8::/64"));
}

TEST(PacketFiltersTest, IcmpTypeAndCode) {
  PacketFilter f = parseOne("protocol = \"icmp\"\ndirection = \"inbound\"\nicmp_type = 0\n");
  EXPECT_EQ(f.icmpType, 0);
  EXPECT_FALSE(f.icmpCode);
  f = parseOne("protocol = \"icmp\"\ndirection = \"inbound\"\nicmp_type = 3\nicmp_code = 255\n");
  EXPECT_EQ(f.icmpType, 3);
  EXPECT_EQ(f.icmpCode, 255);
  f = parseOne("protocol = \"icmpv6\"\ndirection = \"inbound\"\nlocal_host = \"2001:db8::1\"\n");
  EXPECT_EQ(f.protocol, PacketFilter::kIcmpv6);
  EXPECT_FALSE(f.icmpType);
}

TEST(PacketFiltersTest, FiltersKeepFileOrderAndNames) {
  const LoadResult r = parseConfig(
      "[[packet_filters.filter]]\nname = \"b.2\"\nprotocol = \"udp\"\ndirection = \"outbound\"\n"
      "[[packet_filters.filter]]\nprotocol = 50\ndirection = \"both\"\n"
      "[[packet_filters.filter]]\nname = \"a_1-x\"\nprotocol = \"tcp\"\ndirection = "
      "\"outbound\"\n",
      "t.toml");
  ASSERT_TRUE(r.ok()) << describe(r);
  const auto& filters = r.config->packetFilters.filters;
  ASSERT_EQ(filters.size(), 3u);
  EXPECT_EQ(filters[0].name, "b.2");
  EXPECT_EQ(filters[1].name, "filter-2");
  EXPECT_EQ(filters[1].protocol, 50);
  EXPECT_EQ(filters[2].name, "a_1-x");
  EXPECT_EQ(filters[2].line, 8u);
}

struct ErrorCase {
  std::string description;
  std::string toml;
  std::vector<std::string> paths;  // every error's path, in any order
  std::string fragment;            // in the first error's message
};

const std::string kHead = "[[packet_filters.filter]]\n";
const std::string kTcpIn = kHead + "protocol = \"tcp\"\ndirection = \"inbound\"\n";
const std::string kIcmpIn = kHead + "protocol = \"icmp\"\ndirection = \"inbound\"\n";
const std::string kF0 = "packet_filters.filter[0]";

const std::vector<ErrorCase>& errorCases() {
  static const std::vector<ErrorCase> cases = {
      {"unknown key in the section, with a suggestion",
       "[packet_filters]\nenable = true\n",
       {"packet_filters.enable"},
       "did you mean \"enabled\"?"},
      {"misspelt array of tables",
       "[[packet_filters.filters]]\n",
       {"packet_filters.filters"},
       "did you mean \"filter\"?"},
      {"misspelt section",
       "[packet_filter]\nenabled = true\n",
       {"packet_filter"},
       "did you mean \"packet_filters\"?"},
      {"enabled not a boolean",
       "[packet_filters]\nenabled = \"yes\"\n",
       {"packet_filters.enabled"},
       "expected true or false"},
      {"enabled without interfaces",
       "[packet_filters]\nenabled = true\n",
       {"packet_filters.interfaces"},
       "interfaces = [\"eth1\"]"},
      {"enabled with no interface",
       "[packet_filters]\nenabled = true\ninterfaces = []\n",
       {"packet_filters.interfaces"},
       "at least one"},
      {"interfaces not an array",
       "[packet_filters]\ninterfaces = \"eth1\"\n",
       {"packet_filters.interfaces"},
       "expected an array of strings"},
      {"interface not a string",
       "[packet_filters]\ninterfaces = [\"eth1\", 2]\n",
       {"packet_filters.interfaces[1]"},
       "expected a string"},
      {"interface name too long",
       "[packet_filters]\ninterfaces = [\"a234567890123456\"]\n",
       {"packet_filters.interfaces[0]"},
       "1..15 characters"},
      {"empty interface name",
       "[packet_filters]\ninterfaces = [\"\"]\n",
       {"packet_filters.interfaces[0]"},
       "1..15 characters"},
      {"interface name with a slash, a space, a quote, a wildcard inside",
       "[packet_filters]\ninterfaces = [\"eth/1\", \"eth 1\", \"eth\\\"1\", \"e*h\"]\n",
       {"packet_filters.interfaces[0]", "packet_filters.interfaces[1]",
        "packet_filters.interfaces[2]", "packet_filters.interfaces[3]"},
       "no whitespace, '/'"},
      {"interface listed twice",
       "[packet_filters]\ninterfaces = [\"eth1\", \"eth1\"]\n",
       {"packet_filters.interfaces[1]"},
       "listed twice"},
      {"bad outbound, with a suggestion",
       "[packet_filters]\noutbound = \"dorp\"\n",
       {"packet_filters.outbound"},
       "did you mean \"drop\"?"},
      {"outbound not a string",
       "[packet_filters]\noutbound = false\n",
       {"packet_filters.outbound"},
       "expected a string"},
      {"dynamic_timeout too short",
       "[packet_filters]\ndynamic_timeout = \"9s\"\n",
       {"packet_filters.dynamic_timeout"},
       "10s..24h"},
      {"dynamic_timeout too long",
       "[packet_filters]\ndynamic_timeout = \"25h\"\n",
       {"packet_filters.dynamic_timeout"},
       "10s..24h"},
      {"dynamic_timeout malformed",
       "[packet_filters]\ndynamic_timeout = \"1 hour\"\n",
       {"packet_filters.dynamic_timeout"},
       "invalid duration"},
      {"filter is a table, not an array of tables",
       "[packet_filters.filter]\nprotocol = \"tcp\"\n",
       {"packet_filters.filter"},
       "[[packet_filters.filter]]"},
      {"filter element not a table",
       "[packet_filters]\nfilter = [1]\n",
       {"packet_filters.filter[0]"},
       "expected a table"},
      {"unknown key in a filter, with a suggestion",
       kTcpIn + "remote_prot = 80\n",
       {kF0 + ".remote_prot"},
       "did you mean \"remote_port\"?"},
      {"missing protocol", kHead + "direction = \"inbound\"\n", {kF0 + ".protocol"}, "missing"},
      {"unknown protocol name",
       kHead + "protocol = \"sctp\"\ndirection = \"inbound\"\n",
       {kF0 + ".protocol"},
       "unknown protocol \"sctp\""},
      {"protocol in capitals",
       kHead + "protocol = \"TCP\"\ndirection = \"inbound\"\n",
       {kF0 + ".protocol"},
       "did you mean \"tcp\"?"},
      {"protocol misspelt",
       kHead + "protocol = \"udpp\"\ndirection = \"inbound\"\n",
       {kF0 + ".protocol"},
       "did you mean \"udp\"?"},
      {"protocol under another name",
       kHead + "protocol = \"icmp6\"\ndirection = \"inbound\"\n",
       {kF0 + ".protocol"},
       "did you mean \"icmpv6\"?"},
      {"protocol number in quotes",
       kHead + "protocol = \"47\"\ndirection = \"inbound\"\n",
       {kF0 + ".protocol"},
       "protocol = 47"},
      {"protocol number too large",
       kHead + "protocol = 256\ndirection = \"inbound\"\n",
       {kF0 + ".protocol"},
       "0..255"},
      {"protocol number negative",
       kHead + "protocol = -1\ndirection = \"inbound\"\n",
       {kF0 + ".protocol"},
       "0..255"},
      {"protocol of the wrong type",
       kHead + "protocol = true\ndirection = \"inbound\"\n",
       {kF0 + ".protocol"},
       "got a boolean"},
      {"missing direction", kHead + "protocol = \"tcp\"\n", {kF0 + ".direction"}, "missing"},
      {"bad direction",
       kHead + "protocol = \"tcp\"\ndirection = \"inbund\"\n",
       {kF0 + ".direction"},
       "did you mean \"inbound\"?"},
      {"direction not a string",
       kHead + "protocol = \"tcp\"\ndirection = 1\n",
       {kF0 + ".direction"},
       "expected a string"},
      {"port 0", kTcpIn + "local_port = 0\n", {kF0 + ".local_port"}, "out of range"},
      {"port too large", kTcpIn + "remote_port = 65536\n", {kF0 + ".remote_port"}, "out of range"},
      {"port string 0", kTcpIn + "local_port = \"0\"\n", {kF0 + ".local_port"}, "port 0"},
      {"range starting at 0", kTcpIn + "local_port = \"0-100\"\n", {kF0 + ".local_port"}, "port 0"},
      {"range first > last",
       kTcpIn + "local_port = \"5000-1024\"\n",
       {kF0 + ".local_port"},
       "first > last (write \"1024-5000\")"},
      {"range past 65535",
       kTcpIn + "remote_port = \"1-70000\"\n",
       {kF0 + ".remote_port"},
       "out of range"},
      {"port word",
       kTcpIn + "local_port = \"http\"\n",
       {kF0 + ".local_port"},
       "not a port, a range"},
      {"port of the wrong type",
       kTcpIn + "local_port = [80]\n",
       {kF0 + ".local_port"},
       "got an array"},
      {"ports with icmp",
       kIcmpIn + "local_port = 80\nremote_port = \"1-2\"\n",
       {kF0 + ".local_port", kF0 + ".remote_port"},
       "ports apply only to \"tcp\" and \"udp\" (protocol is \"icmp\")"},
      {"ports with another protocol number",
       kHead + "protocol = 47\ndirection = \"both\"\nlocal_port = 1723\n",
       {kF0 + ".local_port"},
       "(protocol is \"47\")"},
      {"icmp_type with tcp",
       kTcpIn + "icmp_type = 8\n",
       {kF0 + ".icmp_type"},
       "only with protocol \"icmp\" or \"icmpv6\" (protocol is \"tcp\")"},
      {"icmp_code without icmp_type",
       kIcmpIn + "icmp_code = 0\n",
       {kF0 + ".icmp_code"},
       "only with icmp_type"},
      {"icmp_type out of range", kIcmpIn + "icmp_type = 256\n", {kF0 + ".icmp_type"}, "0..255"},
      {"icmp_code out of range",
       kIcmpIn + "icmp_type = 3\nicmp_code = -1\n",
       {kF0 + ".icmp_code"},
       "0..255"},
      {"icmp_type of the wrong type",
       kIcmpIn + "icmp_type = \"echo\"\n",
       {kF0 + ".icmp_type"},
       "expected an integer"},
      {"local_host a name",
       kTcpIn + "local_host = \"gw.example\"\n",
       {kF0 + ".local_host"},
       "not \"external\" or one address of the gateway"},
      {"local_host a CIDR block",
       kTcpIn + "local_host = \"203.0.113.0/24\"\n",
       {kF0 + ".local_host"},
       "not \"external\""},
      {"local_host unspecified",
       kTcpIn + "local_host = \"0.0.0.0\"\n",
       {kF0 + ".local_host"},
       "not one address"},
      {"local_host loopback",
       kTcpIn + "local_host = \"127.0.0.1\"\n",
       {kF0 + ".local_host"},
       "loopback"},
      {"local_host inside the local address table",
       std::string(kLan) + kTcpIn + "local_host = \"10.1.0.1\"\n",
       {kF0 + ".local_host"},
       "local address table (networks.lan)"},
      {"local_host of the wrong type",
       kTcpIn + "local_host = 1\n",
       {kF0 + ".local_host"},
       "expected a string"},
      {"internal_host with a specific local_host",
       kTcpIn + "local_host = \"203.0.113.1\"\ninternal_host = \"10.1.1.5\"\n",
       {kF0 + ".internal_host"},
       "cannot go with local_host = \"203.0.113.1\""},
      {"internal_host not an address",
       kTcpIn + "internal_host = \"pc1\"\n",
       {kF0 + ".internal_host"},
       "not an IP address literal"},
      {"internal_host loopback",
       kTcpIn + "internal_host = \"::1\"\n",
       {kF0 + ".internal_host"},
       "not the address of a computer behind the gateway"},
      {"internal_host outside the local address table",
       std::string(kLan) + kTcpIn + "internal_host = \"192.168.1.5\"\n",
       {kF0 + ".internal_host"},
       "not in the local address table (the ranges of the networks with firewall_clients = "
       "true: lan)"},
      {"remote_host a name",
       kTcpIn + "remote_host = \"example.com\"\n",
       {kF0 + ".remote_host"},
       "not \"any\", an address, a CIDR block"},
      {"remote_host reversed range",
       kTcpIn + "remote_host = \"203.0.113.9-203.0.113.1\"\n",
       {kF0 + ".remote_host"},
       "first <= last"},
      {"remote_host bad prefix",
       kTcpIn + "remote_host = \"203.0.113.0/33\"\n",
       {kF0 + ".remote_host"},
       "not \"any\""},
      {"remote_host family differs from local_host's",
       kTcpIn + "local_host = \"203.0.113.1\"\nremote_host = \"2001:db8::/32\"\n",
       {kF0 + ".remote_host"},
       "IPv6 addresses, but local_host 203.0.113.1 is an IPv4 address"},
      {"remote_host family differs from internal_host's",
       kTcpIn + "internal_host = \"fd00::5\"\nremote_host = \"198.51.100.7\"\n",
       {kF0 + ".remote_host"},
       "IPv4 addresses, but internal_host fd00::5 is an IPv6 address"},
      {"icmp with an IPv6 local address",
       kIcmpIn + "local_host = \"2001:db8::1\"\n",
       {kF0 + ".local_host"},
       "an IPv6 address, but protocol \"icmp\" is ICMP for IPv4"},
      {"icmpv6 with IPv4 remote hosts",
       kHead + "protocol = \"icmpv6\"\ndirection = \"inbound\"\nremote_host = \"203.0.113.0/24\"\n",
       {kF0 + ".remote_host"},
       "IPv4 addresses, but protocol \"icmpv6\" is ICMP for IPv6 (use \"icmp\")"},
      {"invalid name", kTcpIn + "name = \"my app\"\n", {kF0 + ".name"}, "invalid filter name"},
      {"empty name", kTcpIn + "name = \"\"\n", {kF0 + ".name"}, "invalid filter name"},
      {"duplicate names",
       kTcpIn + "name = \"app\"\n" + kTcpIn + "name = \"app\"\n",
       {"packet_filters.filter[1].name"},
       "duplicate filter name \"app\" (also packet_filters.filter[0])"},
      {"name of one of the table's own counters",
       kTcpIn + "name = \"dynamic\"\n",
       {kF0 + ".name"},
       "reserved"},
      {"explicit name clashes with a default name",
       kTcpIn + kTcpIn + "name = \"filter-1\"\n",
       {"packet_filters.filter[1].name"},
       "duplicate filter name \"filter-1\""},
      {"default name clashes with an earlier explicit one",
       kTcpIn + "name = \"filter-2\"\n" + kTcpIn,
       {"packet_filters.filter[1]"},
       "duplicate filter name \"filter-2\""},
  };
  return cases;
}

TEST(PacketFiltersErrorsTest, EachErrorHasItsKeyPathAndSaysWhy) {
  for (const ErrorCase& c : errorCases()) {
    const LoadResult r = parseConfig(c.toml, "t.toml");
    std::vector<std::string> paths;
    for (const auto& e : r.errors) paths.push_back(e.path);
    EXPECT_FALSE(r.ok()) << c.description;
    EXPECT_EQ(r.config, nullptr) << c.description;
    EXPECT_EQ(sorted(paths), sorted(c.paths)) << c.description << describe(r);
    if (!r.errors.empty()) {
      EXPECT_NE(r.errors[0].message.find(c.fragment), std::string::npos)
          << c.description << ": \"" << c.fragment << "\" not in" << describe(r);
      EXPECT_GT(r.errors[0].line, 0u) << c.description;
    }
  }
}

TEST(PacketFiltersErrorsTest, EveryErrorIsReportedTogetherInFileOrder) {
  const LoadResult r = parseConfig(std::string(kLan) + R"(
[packet_filters]
enabled = "no"

[[packet_filters.filter]]
name = "web"
protocol = "tcp"
direction = "inbound"
local_port = "8080-80"
remote_host = "nowhere"
colour = "red"

[[packet_filters.filter]]
name = "web"
protocol = "icmp"
local_port = 7
icmp_code = 3
internal_host = "192.168.9.9"

[[packet_filters.filter]]
protocol = "gre"
direction = "both"
local_host = "203.0.113.1"
remote_host = "2001:db8::1"
)",
                                   "t.toml");
  ASSERT_FALSE(r.ok());
  std::vector<std::string> paths;
  for (const auto& e : r.errors) paths.push_back(e.path);
  const std::vector<std::string> expected = {
      "packet_filters.enabled",
      "packet_filters.filter[0].local_port",
      "packet_filters.filter[0].remote_host",
      "packet_filters.filter[0].colour",
      "packet_filters.filter[1].name",
      "packet_filters.filter[1].direction",
      "packet_filters.filter[1].local_port",
      "packet_filters.filter[1].icmp_code",
      "packet_filters.filter[1].internal_host",
      "packet_filters.filter[2].protocol",
      "packet_filters.filter[2].remote_host",
  };
  EXPECT_EQ(sorted(paths), sorted(expected)) << describe(r);
  EXPECT_TRUE(
      std::is_sorted(r.errors.begin(), r.errors.end(),
                     [](const Diagnostic& a, const Diagnostic& b) { return a.line < b.line; }))
      << describe(r);
}

std::vector<Diagnostic> filterWarnings(const std::string& filters, std::string_view prelude = "") {
  const LoadResult r = parseConfig(
      std::string(prelude) + filters + "[[rules]]\naction = \"allow\"\nsources = [\"loopback\"]\n",
      "t.toml");
  EXPECT_TRUE(r.ok()) << describe(r);
  return r.warnings;
}

TEST(PacketFiltersWarningsTest, EveryPortToAnyone) {
  auto w = filterWarnings(kTcpIn);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].path, kF0);
  EXPECT_EQ(w[0].line, 1u);
  EXPECT_NE(w[0].message.find("filter \"filter-1\" opens every tcp port to anyone on the "
                              "external interface"),
            std::string::npos)
      << w[0].message;

  // "both" too, udp too, a range of every port, 0.0.0.0/0 as "anyone", a specific local host.
  w = filterWarnings(kHead +
                     "protocol = \"udp\"\ndirection = \"both\"\nlocal_port = \"1-65535\"\n"
                     "remote_host = \"0.0.0.0/0\"\nlocal_host = \"203.0.113.1\"\n");
  ASSERT_EQ(w.size(), 1u);
  EXPECT_NE(w[0].message.find("every udp port of 203.0.113.1 to anyone"), std::string::npos)
      << w[0].message;

  w = filterWarnings(kTcpIn + "internal_host = \"10.1.1.5\"\nremote_port = 80\n", kLan);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_NE(w[0].message.find("of internal computer 10.1.1.5"), std::string::npos) << w[0].message;

  // The second filter only: indices count from 0.
  w = filterWarnings(kTcpIn + "local_port = 22\n" + kTcpIn);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].path, "packet_filters.filter[1]");
}

TEST(PacketFiltersWarningsTest, NarrowerFiltersAreQuiet) {
  for (const std::string& f : {
           kTcpIn + "local_port = 4000\n",
           kTcpIn + "local_port = \"1-65534\"\n",
           kTcpIn + "remote_host = \"198.51.100.7\"\n",
           kHead + "protocol = \"tcp\"\ndirection = \"outbound\"\n",
           kIcmpIn,
           kHead + "protocol = 47\ndirection = \"both\"\n",
       }) {
    EXPECT_TRUE(filterWarnings(f).empty()) << f;
  }
}

TEST(PacketFiltersTest, TheExampleFileHasFilters) {
  const LoadResult r = loadConfigFile(FWGATE_SOURCE_DIR "/examples/gateway.toml");
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_FALSE(r.config->packetFilters.filters.empty());
}

}  // namespace
}  // namespace fwgate::config
