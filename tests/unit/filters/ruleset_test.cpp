// table inet fwgate as text: the script for every filter form, in the chain it belongs to and
// with its counter named after the filter; the dynamic set's scripts; the counters read back
// from real `nft --json list table inet fwgate` output, and from anything else.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "filters/ruleset.hpp"

namespace fwgate::filters {
namespace {

using config::PacketFilter;
using config::PacketFilterSettings;
using Direction = PacketFilter::Direction;
using LocalHost = PacketFilter::LocalHost;

// The rules of one chain, without indentation, the chain's header line and its closing brace.
std::vector<std::string> chain(const std::string& script, std::string_view name) {
  std::vector<std::string> out;
  const std::string head = "  chain " + std::string(name) + " {\n";
  std::size_t at = script.find(head);
  if (at == std::string::npos) return out;
  at += head.size();
  const std::size_t end = script.find("\n  }\n", at);
  bool first = true;
  while (at < end) {
    const std::size_t eol = script.find('\n', at);
    std::string line = script.substr(at, eol - at);
    line.erase(0, line.find_first_not_of(' '));
    if (!first) out.push_back(line);
    first = false;
    at = eol + 1;
  }
  return out;
}

bool has(const std::vector<std::string>& lines, const std::string& line) {
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

std::string dump(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += "\n  " + l;
  return out;
}

PacketFilterSettings withInterfaces(std::vector<PacketFilter> filters, bool outboundDrop = false) {
  PacketFilterSettings s;
  s.enabled = true;
  s.interfaces = {"eth1"};
  s.outboundDrop = outboundDrop;
  s.filters = std::move(filters);
  return s;
}

PacketFilter tcpIn(std::string name) {
  PacketFilter f;
  f.name = std::move(name);
  f.protocol = PacketFilter::kTcp;
  f.direction = Direction::Inbound;
  return f;
}

policy::IpRange range(std::string_view text) {
  return *policy::IpRange::parse(text);
}

policy::IpAddress address(std::string_view text) {
  return *policy::IpAddress::parse(text);
}

std::string render(const PacketFilterSettings& s, std::uint32_t uid = 1000) {
  RenderOptions options;
  options.gatewayUid = uid;
  return renderRuleset(s, options);
}

TEST(RulesetTest, FlushRemovesOnlyOurTableAndWorksWhenAbsent) {
  EXPECT_EQ(flushScript(), "add table inet fwgate\ndelete table inet fwgate\n");
}

TEST(RulesetTest, TheTableReplacesItselfAndHasItsFixedRules) {
  const std::string script = render(withInterfaces({}));
  EXPECT_EQ(script.rfind(flushScript() + "table inet fwgate {\n", 0), 0u) << script;
  EXPECT_NE(script.find("  set dynamic_tcp {\n    type inet_service\n    flags timeout\n"),
            std::string::npos)
      << script;
  EXPECT_NE(script.find("  set dynamic_udp {\n    type inet_service\n    flags timeout\n"),
            std::string::npos)
      << script;
  EXPECT_EQ(script.substr(script.size() - 6), "  }\n}\n");
  EXPECT_NE(script.find("    type filter hook input priority filter; policy accept;\n"),
            std::string::npos);
  EXPECT_NE(script.find("    type filter hook forward priority filter; policy accept;\n"),
            std::string::npos);
  EXPECT_NE(script.find("    type filter hook output priority filter; policy accept;\n"),
            std::string::npos);

  const auto input = chain(script, "input");
  const std::vector<std::string> expected = {
      R"(iifname != { "eth1" } accept)",
      "ct state established,related accept",
      "icmpv6 type { nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit "
      R"(255 counter accept comment "neighbour discovery")",
      "icmpv6 type { mld-listener-query, mld-listener-report, mld-listener-done, "
      R"(mld2-listener-report } ip6 hoplimit 1 counter accept comment "neighbour discovery")",
      R"(ct state invalid counter drop comment "invalid")",
      R"(tcp dport @dynamic_tcp counter accept comment "dynamic")",
      R"(udp dport @dynamic_udp counter accept comment "dynamic udp")",
      R"(counter drop comment "not admitted")",
  };
  EXPECT_EQ(input, expected) << dump(input);
  const std::vector<std::string> forward = {
      "ct state established,related accept",
      R"(iifname { "eth1" } ct state invalid counter drop comment "invalid")",
      R"f(iifname { "eth1" } counter drop comment "not admitted (forward)")f",
  };
  EXPECT_EQ(chain(script, "forward"), forward) << script;
  const std::vector<std::string> output = {
      R"(oifname != { "eth1" } accept)",
      "ct state established,related accept",
      R"(counter accept comment "outbound")",
  };
  EXPECT_EQ(chain(script, "output"), output) << script;
}

TEST(RulesetTest, SeveralInterfacesAndWildcards) {
  PacketFilterSettings s = withInterfaces({});
  s.interfaces = {"eth1", "ppp*", "wan.10"};
  const std::string script = render(s);
  EXPECT_TRUE(has(chain(script, "input"), R"(iifname != { "eth1", "ppp*", "wan.10" } accept)"));
  EXPECT_TRUE(has(chain(script, "output"), R"(oifname != { "eth1", "ppp*", "wan.10" } accept)"));
  EXPECT_TRUE(has(
      chain(script, "forward"),
      R"f(iifname { "eth1", "ppp*", "wan.10" } counter drop comment "not admitted (forward)")f"));
}

TEST(RulesetTest, WithoutInterfacesNothingIsFiltered) {
  PacketFilterSettings s = withInterfaces({tcpIn("web")});
  s.interfaces.clear();
  const std::string script = render(s);
  EXPECT_NE(script.find("# packet_filters.interfaces is empty"), std::string::npos) << script;
  for (const char* name : {"input", "forward", "output"}) {
    EXPECT_TRUE(chain(script, name).empty()) << name << script;
  }
}

struct FormCase {
  std::string description;
  PacketFilter filter;
  std::string input;   // its rule in the input chain ("" when none)
  std::string output;  // its rule in the output chain ("" when none)
};

std::vector<FormCase> formCases() {
  std::vector<FormCase> cases;
  PacketFilter f = tcpIn("CustomApp-filter");
  f.localPort = policy::PortRange{4000, 4000};
  f.remoteHost = range("203.0.113.7");
  cases.push_back(
      {"tcp, one port, one remote host", f,
       R"(ip saddr 203.0.113.7 tcp dport 4000 counter accept comment "CustomApp-filter")", ""});
  f = tcpIn("cidr");
  f.remoteHost = range("10.0.0.0/8");
  f.localPort = policy::PortRange{4000, 4010};
  f.remotePort = policy::PortRange{20, 20};
  cases.push_back(
      {"cidr block, remote port and a port range", f,
       R"(ip saddr 10.0.0.0/8 tcp sport 20 tcp dport 4000-4010 counter accept comment "cidr")",
       ""});
  f = tcpIn("pair");
  f.remoteHost = range("1.2.3.4-1.2.3.9");
  cases.push_back({"address range, no ports", f,
                   R"(ip saddr 1.2.3.4-1.2.3.9 meta l4proto tcp counter accept comment "pair")",
                   ""});
  f = tcpIn("dns");
  f.protocol = PacketFilter::kUdp;
  f.direction = Direction::Both;
  f.localHost = LocalHost::GatewayAddress;
  f.localAddress = address("203.0.113.1");
  f.localPort = policy::PortRange{1024, 65535};
  f.remotePort = policy::PortRange{53, 53};
  f.remoteHost = range("198.51.100.0/24");
  cases.push_back({"udp both ways, a gateway address", f,
                   "ip saddr 198.51.100.0/24 ip daddr 203.0.113.1 udp sport 53 udp dport "
                   R"(1024-65535 counter accept comment "dns")",
                   "ip saddr 203.0.113.1 ip daddr 198.51.100.0/24 udp sport 1024-65535 udp dport "
                   R"(53 counter accept comment "dns")"});
  f = tcpIn("ssh6");
  f.localHost = LocalHost::GatewayAddress;
  f.localAddress = address("2001:db8::5");
  f.remoteHost = range("2001:db8::1-2001:db8::9");
  f.localPort = policy::PortRange{22, 22};
  cases.push_back({"IPv6 addresses", f,
                   "ip6 saddr 2001:db8::1-2001:db8::9 ip6 daddr 2001:db8::5 tcp dport 22 counter "
                   R"(accept comment "ssh6")",
                   ""});
  f = tcpIn("ping");
  f.protocol = PacketFilter::kIcmp;
  f.direction = Direction::Both;
  f.icmpType = 8;
  f.icmpCode = 0;
  cases.push_back({"icmp type and code, both ways", f,
                   R"(icmp type 8 icmp code 0 counter accept comment "ping")",
                   R"(icmp type 8 icmp code 0 counter accept comment "ping")"});
  f = tcpIn("ping6");
  f.protocol = PacketFilter::kIcmpv6;
  f.icmpType = 128;
  cases.push_back({"icmpv6 type", f, R"(icmpv6 type 128 counter accept comment "ping6")", ""});
  f = tcpIn("anyicmp");
  f.protocol = PacketFilter::kIcmp;
  f.remoteHost = range("192.0.2.1");
  cases.push_back({"icmp, any type", f,
                   R"(ip saddr 192.0.2.1 meta l4proto icmp counter accept comment "anyicmp")", ""});
  f = tcpIn("anyicmp6");
  f.protocol = PacketFilter::kIcmpv6;
  f.direction = Direction::Outbound;
  cases.push_back({"icmpv6, any type, outbound", f, "",
                   R"(meta l4proto ipv6-icmp counter accept comment "anyicmp6")"});
  f = tcpIn("gre");
  f.protocol = 47;
  f.direction = Direction::Both;
  f.remoteHost = range("192.0.2.9");
  cases.push_back({"another protocol by number", f,
                   R"(ip saddr 192.0.2.9 meta l4proto 47 counter accept comment "gre")",
                   R"(ip daddr 192.0.2.9 meta l4proto 47 counter accept comment "gre")"});
  f = tcpIn("udp-out");
  f.protocol = PacketFilter::kUdp;
  f.direction = Direction::Outbound;
  f.remotePort = policy::PortRange{123, 123};
  cases.push_back({"udp outbound to a remote port", f, "",
                   R"(udp dport 123 counter accept comment "udp-out")"});
  return cases;
}

TEST(RulesetTest, EveryFilterFormInItsChains) {
  for (const FormCase& c : formCases()) {
    const std::string script = render(withInterfaces({c.filter}));
    const auto input = chain(script, "input");
    const auto output = chain(script, "output");
    const std::string comment = "comment \"" + c.filter.name + "\"";
    const auto named = [&](const std::vector<std::string>& lines) {
      return std::count_if(lines.begin(), lines.end(), [&](const std::string& l) {
        return l.find(comment) != std::string::npos;
      });
    };
    EXPECT_EQ(named(input), c.input.empty() ? 0 : 1) << c.description << dump(input);
    EXPECT_EQ(named(output), c.output.empty() ? 0 : 1) << c.description << dump(output);
    if (!c.input.empty()) {
      EXPECT_TRUE(has(input, c.input)) << c.description << dump(input);
    }
    if (!c.output.empty()) {
      EXPECT_TRUE(has(output, c.output)) << c.description << dump(output);
    }
    EXPECT_EQ(named(chain(script, "forward")), 0) << c.description;
  }
}

TEST(RulesetTest, FiltersComeAfterTheFixedRulesInFileOrder) {
  PacketFilter b = tcpIn("b");
  b.localPort = policy::PortRange{2, 2};
  PacketFilter a = tcpIn("a");
  a.localPort = policy::PortRange{1, 1};
  const auto input = chain(render(withInterfaces({b, a})), "input");
  ASSERT_EQ(input.size(), 10u) << dump(input);
  EXPECT_EQ(input[4], R"(ct state invalid counter drop comment "invalid")");
  EXPECT_EQ(input[5], R"(tcp dport 2 counter accept comment "b")");
  EXPECT_EQ(input[6], R"(tcp dport 1 counter accept comment "a")");
  EXPECT_EQ(input[7], R"(tcp dport @dynamic_tcp counter accept comment "dynamic")");
  EXPECT_EQ(input[8], R"(udp dport @dynamic_udp counter accept comment "dynamic udp")");
}

TEST(RulesetTest, AnInternalComputerIsInTheForwardChain) {
  PacketFilter web = tcpIn("internal-web");
  web.direction = Direction::Both;
  web.localHost = LocalHost::InternalComputer;
  web.localAddress = address("10.1.1.5");
  web.localPort = policy::PortRange{80, 80};
  web.remotePort = policy::PortRange{1024, 65535};
  const std::string script = render(withInterfaces({web}));
  const std::vector<std::string> forward = {
      "ct state established,related accept",
      R"(iifname { "eth1" } ct state invalid counter drop comment "invalid")",
      R"(iifname { "eth1" } ip daddr 10.1.1.5 tcp sport 1024-65535 tcp dport 80 counter accept comment "internal-web")",
      R"f(iifname { "eth1" } counter drop comment "not admitted (forward)")f",
      R"(oifname { "eth1" } ip saddr 10.1.1.5 tcp sport 80 tcp dport 1024-65535 counter accept comment "internal-web")",
  };
  EXPECT_EQ(chain(script, "forward"), forward) << script;
  for (const std::string& rule : chain(script, "input")) {
    EXPECT_EQ(rule.find("internal-web"), std::string::npos) << rule;
  }
  EXPECT_EQ(chain(script, "output").size(), 3u) << script;
}

TEST(RulesetTest, OutboundDropKeepsTheGatewaysOwnUser) {
  PacketFilter web = tcpIn("web-out");
  web.direction = Direction::Outbound;
  web.remotePort = policy::PortRange{80, 80};
  PacketFilter inside = web;
  inside.name = "inside-out";
  inside.localHost = LocalHost::InternalComputer;
  inside.localAddress = address("10.1.1.5");
  const std::string script = render(withInterfaces({web, inside}, true), 994);
  const std::vector<std::string> output = {
      R"(oifname != { "eth1" } accept)",
      "ct state established,related accept",
      R"(tcp dport 80 counter accept comment "web-out")",
      R"(meta skuid 994 counter accept comment "gateway user")",
      "icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit "
      R"(255 counter accept comment "neighbour discovery")",
      "icmpv6 type { mld-listener-query, mld-listener-report, mld-listener-done, "
      R"(mld2-listener-report } ip6 hoplimit 1 counter accept comment "neighbour discovery")",
      R"(counter drop comment "outbound not admitted")",
  };
  EXPECT_EQ(chain(script, "output"), output) << script;
  const auto forward = chain(script, "forward");
  ASSERT_GE(forward.size(), 2u);
  EXPECT_EQ(
      forward[forward.size() - 2],
      R"(oifname { "eth1" } ip saddr 10.1.1.5 tcp dport 80 counter accept comment "inside-out")");
  EXPECT_EQ(forward.back(),
            R"f(oifname { "eth1" } counter drop comment "outbound not admitted (forward)")f");
  // Accept mode: no skuid rule, the rest counted as "outbound".
  const std::string accept = render(withInterfaces({web}, false), 994);
  EXPECT_EQ(accept.find("skuid"), std::string::npos);
  EXPECT_EQ(chain(accept, "output").back(), R"(counter accept comment "outbound")");
  EXPECT_EQ(chain(accept, "forward").back(),
            R"f(iifname { "eth1" } counter drop comment "not admitted (forward)")f");
}

TEST(RulesetTest, CommentsAndNamesAreAlwaysQuotedSafely) {
  PacketFilterSettings s = withInterfaces({tcpIn("a\"b\\c\nd")});
  s.interfaces = {"e\"th"};
  const std::string script = render(s);
  EXPECT_NE(script.find(R"(comment "a_b_c_d")"), std::string::npos) << script;
  EXPECT_NE(script.find(R"({ "e_th" })"), std::string::npos) << script;
  s.filters[0].name = std::string(200, 'x');
  EXPECT_NE(render(s).find("comment \"" + std::string(128, 'x') + "\"\n"), std::string::npos);
}

TEST(RulesetTest, DynamicPortScripts) {
  EXPECT_EQ(addDynamicPortScript(4000, std::chrono::hours(1)),
            "add element inet fwgate dynamic_tcp { 4000 timeout 3600s }\n");
  EXPECT_EQ(addDynamicPortScript(5004, std::chrono::seconds(3600), true),
            "add element inet fwgate dynamic_udp { 5004 timeout 3600s }\n");
  EXPECT_EQ(removeDynamicPortScript(5004, true),
            "add element inet fwgate dynamic_udp { 5004 }\n"
            "delete element inet fwgate dynamic_udp { 5004 }\n");
  EXPECT_EQ(removeDynamicPortScript(4000),
            "add element inet fwgate dynamic_tcp { 4000 }\n"
            "delete element inet fwgate dynamic_tcp { 4000 }\n");
  EXPECT_EQ(refreshDynamicPortsScript({4000, 4001}, std::chrono::seconds(600)),
            "add element inet fwgate dynamic_tcp { 4000, 4001 }\n"
            "delete element inet fwgate dynamic_tcp { 4000, 4001 }\n"
            "add element inet fwgate dynamic_tcp { 4000 timeout 600s, 4001 timeout 600s }\n");
  EXPECT_EQ(refreshDynamicPortsScript({}, std::chrono::seconds(600)), "");
}

// `nft -j list table inet fwgate` from a network namespace where the table of filters "tcp-4000"
// (inbound) and "peer" (both) had seen traffic: one object a line, as nft printed them.
constexpr std::string_view kListed = R"json(
{"nftables": [
{"metainfo":{"version":"1.0.6","release_name":"Lester Gooch #5","json_schema_version":1}},
{"table":{"family":"inet","name":"fwgate","handle":4}},
{"set":{"family":"inet","name":"dynamic_tcp","table":"fwgate","type":"inet_service","handle":4,"comment":"TCP ports the gateway opened: remoted listens, SOCKS BIND","flags":["timeout"],"elem":[{"elem":{"val":6000,"timeout":600,"expires":598}}]}},
{"chain":{"family":"inet","table":"fwgate","name":"input","handle":1,"type":"filter","hook":"input","prio":0,"policy":"accept"}},
{"chain":{"family":"inet","table":"fwgate","name":"forward","handle":2,"type":"filter","hook":"forward","prio":0,"policy":"accept"}},
{"chain":{"family":"inet","table":"fwgate","name":"output","handle":3,"type":"filter","hook":"output","prio":0,"policy":"accept"}},
{"rule":{"family":"inet","table":"fwgate","chain":"input","handle":5,"expr":[{"match":{"op":"!=","left":{"meta":{"key":"iifname"}},"right":"eth1"}},{"accept":null}]}},
{"rule":{"family":"inet","table":"fwgate","chain":"input","handle":6,"expr":[{"match":{"op":"in","left":{"ct":{"key":"state"}},"right":["established","related"]}},{"accept":null}]}},
{"rule":{"family":"inet","table":"fwgate","chain":"input","handle":8,"comment":"neighbour discovery","expr":[{"match":{"op":"==","left":{"payload":{"protocol":"icmpv6","field":"type"}},"right":{"set":["nd-router-advert","nd-neighbor-solicit","nd-neighbor-advert"]}}},{"match":{"op":"==","left":{"payload":{"protocol":"ip6","field":"hoplimit"}},"right":255}},{"counter":{"packets":0,"bytes":0}},{"accept":null}]}},
{"rule":{"family":"inet","table":"fwgate","chain":"input","handle":10,"comment":"neighbour discovery","expr":[{"match":{"op":"==","left":{"payload":{"protocol":"icmpv6","field":"type"}},"right":{"set":["mld-listener-query","mld-listener-report","mld-listener-done","mld2-listener-report"]}}},{"match":{"op":"==","left":{"payload":{"protocol":"ip6","field":"hoplimit"}},"right":1}},{"counter":{"packets":0,"bytes":0}},{"accept":null}]}},
{"rule":{"family":"inet","table":"fwgate","chain":"input","handle":11,"comment":"invalid","expr":[{"match":{"op":"in","left":{"ct":{"key":"state"}},"right":"invalid"}},{"counter":{"packets":0,"bytes":0}},{"drop":null}]}},
{"rule":{"family":"inet","table":"fwgate","chain":"input","handle":12,"comment":"tcp-4000","expr":[{"match":{"op":"==","left":{"payload":{"protocol":"ip","field":"saddr"}},"right":{"prefix":{"addr":"203.0.113.0","len":24}}}},{"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":4000}},{"counter":{"packets":2,"bytes":120}},{"accept":null}]}},
{"rule":{"family":"inet","table":"fwgate","chain":"input","handle":13,"comment":"peer","expr":[{"match":{"op":"==","left":{"payload":{"protocol":"ip","field":"saddr"}},"right":"203.0.113.7"}},{"match":{"op":"==","left":{"meta":{"key":"l4proto"}},"right":"tcp"}},{"counter":{"packets":1,"bytes":60}},{"accept":null}]}},
{"rule":{"family":"inet","table":"fwgate","chain":"input","handle":14,"comment":"dynamic","expr":[{"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":"@dynamic_tcp"}},{"counter":{"packets":1,"bytes":60}},{"accept":null}]}},
{"rule":{"family":"inet","table":"fwgate","chain":"input","handle":15,"comment":"not admitted","expr":[{"counter":{"packets":1,"bytes":60}},{"drop":null}]}},
{"rule":{"family":"inet","table":"fwgate","chain":"forward","handle":16,"expr":[{"match":{"op":"in","left":{"ct":{"key":"state"}},"right":["established","related"]}},{"accept":null}]}},
{"rule":{"family":"inet","table":"fwgate","chain":"forward","handle":17,"comment":"invalid","expr":[{"match":{"op":"==","left":{"meta":{"key":"iifname"}},"right":"eth1"}},{"match":{"op":"in","left":{"ct":{"key":"state"}},"right":"invalid"}},{"counter":{"packets":0,"bytes":0}},{"drop":null}]}},
{"rule":{"family":"inet","table":"fwgate","chain":"forward","handle":18,"comment":"not admitted (forward)","expr":[{"match":{"op":"==","left":{"meta":{"key":"iifname"}},"right":"eth1"}},{"counter":{"packets":0,"bytes":0}},{"drop":null}]}},
{"rule":{"family":"inet","table":"fwgate","chain":"output","handle":19,"expr":[{"match":{"op":"!=","left":{"meta":{"key":"oifname"}},"right":"eth1"}},{"accept":null}]}},
{"rule":{"family":"inet","table":"fwgate","chain":"output","handle":20,"expr":[{"match":{"op":"in","left":{"ct":{"key":"state"}},"right":["established","related"]}},{"accept":null}]}},
{"rule":{"family":"inet","table":"fwgate","chain":"output","handle":21,"comment":"peer","expr":[{"match":{"op":"==","left":{"payload":{"protocol":"ip","field":"daddr"}},"right":"203.0.113.7"}},{"match":{"op":"==","left":{"meta":{"key":"l4proto"}},"right":"tcp"}},{"counter":{"packets":1,"bytes":60}},{"accept":null}]}},
{"rule":{"family":"inet","table":"fwgate","chain":"output","handle":22,"comment":"outbound","expr":[{"counter":{"packets":1,"bytes":60}},{"accept":null}]}}
]}
)json";

TEST(CountersTest, RealOutputSumsByCommentInRuleOrder) {
  const std::vector<Counter> counters = parseCounters(kListed);
  std::vector<std::string> names;
  for (const Counter& c : counters) names.push_back(c.name);
  const std::vector<std::string> expected = {
      "neighbour discovery",    "invalid", "tcp-4000", "peer", "dynamic", "not admitted",
      "not admitted (forward)", "outbound"};
  ASSERT_EQ(names, expected);
  EXPECT_EQ(counters[2].packets, 2u);
  EXPECT_EQ(counters[2].bytes, 120u);
  EXPECT_EQ(counters[3].packets, 2u) << "peer: one inbound and one outbound";
  EXPECT_EQ(counters[3].bytes, 120u);
  EXPECT_EQ(counters[4].packets, 1u);
  EXPECT_EQ(counters[5].packets, 1u);
  EXPECT_EQ(counters[5].bytes, 60u);
  EXPECT_EQ(counters[0].packets, 0u);
  EXPECT_EQ(counters[7].packets, 1u);
}

TEST(CountersTest, AnythingElseGivesWhatCanBeRead) {
  for (const char* garbage :
       {"", "not json", "{", "[]", "null", "42", R"({"nftables": 3})", R"({"nftables": [1, "x"]})",
        R"({"nftables": [{"rule": []}, {"rule": {"comment": 5, "expr": []}}]})",
        R"({"nftables": [{"rule": {"comment": "a", "expr": {"counter": {}}}}]})",
        R"({"nftables": [{"rule": {"comment": "a", "expr": [{"accept": null}]}}]})"}) {
    EXPECT_TRUE(parseCounters(garbage).empty()) << garbage;
  }
  // Odd counters count as zero; a rule without a comment is left out.
  const auto counters = parseCounters(
      R"({"nftables": [{"rule": {"expr": [{"counter": {"packets": 5, "bytes": 5}}]}},)"
      R"({"rule": {"comment": "x", "expr": [{"counter": {"packets": -1, "bytes": "7"}}]}},)"
      R"({"rule": {"comment": "x", "expr": [{"counter": {"packets": 3, "bytes": 4}}]}}]})");
  ASSERT_EQ(counters.size(), 1u);
  EXPECT_EQ(counters[0].name, "x");
  EXPECT_EQ(counters[0].packets, 3u);
  EXPECT_EQ(counters[0].bytes, 4u);
}

}  // namespace
}  // namespace fwgate::filters
