// The rule engine, one table of requests and expected decisions per rule set.
#include "policy/engine.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

namespace fwgate::policy {
namespace {

IpAddress ip(std::string_view text) {
  const auto a = IpAddress::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(IpAddress{});
}

// A v4-mapped IPv6 address as a socket would report it, without parse()'s normalisation.
IpAddress mapped(std::string_view v4) {
  const IpAddress a = ip(v4);
  IpAddress m;
  m.v6 = true;
  m.bytes = {0, 0, 0,    0,    0,          0,          0,          0,
             0, 0, 0xff, 0xff, a.bytes[0], a.bytes[1], a.bytes[2], a.bytes[3]};
  return m;
}

Network network(std::string name, std::vector<std::string> ranges,
                std::vector<std::string> domains = {}) {
  Network n;
  n.name = std::move(name);
  for (const auto& r : ranges) n.ranges.push_back(*IpRange::parse(r));
  n.domains = std::move(domains);
  return n;
}

std::vector<PortRange> ports(std::initializer_list<std::string_view> texts) {
  std::vector<PortRange> out;
  for (auto t : texts) out.push_back(*PortRange::parse(t));
  return out;
}

constexpr std::uint8_t bits(std::initializer_list<Command> commands) {
  std::uint8_t mask = 0;
  for (Command c : commands) mask |= static_cast<std::uint8_t>(c);
  return mask;
}

// Request builder: client, user, destination (address literal or name), port.
struct Req {
  Request r;
  Req(std::string_view client, std::string_view destination, std::uint16_t port) {
    r.client = ip(client);
    if (IpAddress::parse(destination)) {
      r.destinationAddress = ip(destination);
    } else {
      r.destinationName = std::string(destination);
    }
    r.destinationPort = port;
  }
  Req& user(std::string name) {
    r.user = std::move(name);
    return *this;
  }
  Req& command(Command c) {
    r.command = c;
    return *this;
  }
  Req& resolvedTo(std::string_view address) {
    r.destinationAddress = ip(address);
    return *this;
  }
  Req& clientAddress(IpAddress a) {
    r.client = a;
    return *this;
  }
  Req& destinationAddress(IpAddress a) {
    r.destinationAddress = a;
    return *this;
  }
  Req& isProtected() {
    r.destinationIsProtected = true;
    return *this;
  }
  Req& local() {
    r.clientIsLocal = true;
    return *this;
  }
};

struct Case {
  std::string description;
  Request request;
  bool allowed;
  std::string ruleName;
};

void runTable(const Engine& engine, const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    const Decision d = engine.decide(c.request);
    EXPECT_EQ(d.allowed, c.allowed) << c.description;
    EXPECT_EQ(d.ruleName, c.ruleName) << c.description;
    // The sentinel rule names and the reason say the same thing.
    const Reason expected = c.ruleName == "default-deny"            ? Reason::DefaultDeny
                            : c.ruleName == "protected-destination" ? Reason::ProtectedDestination
                                                                    : Reason::Rule;
    EXPECT_EQ(d.reason, expected) << c.description;
    if (d.ruleName == "default-deny" || d.ruleName == "protected-destination") {
      EXPECT_EQ(d.ruleIndex, -1) << c.description;
    } else {
      ASSERT_GE(d.ruleIndex, 0) << c.description;
      EXPECT_EQ(engine.rules()[static_cast<std::size_t>(d.ruleIndex)].name, c.ruleName)
          << c.description;
    }
  }
}

std::vector<Network> commonNetworks() {
  return {
      network("lan", {"10.0.0.0/8", "192.168.1.10-192.168.1.20"}),
      network("dmz", {"172.16.0.0/12"}),
      network("web", {"203.0.113.0/24"}, {"example.com"}),
      network("v6net", {"2001:db8::/32"}),
  };
}

TEST(EngineTest, RuleTable) {
  std::vector<Rule> rules;
  rules.push_back(Rule{"deny dmz", Action::Deny, {"dmz"}, {}, {}, {}, {}, kAllCommands});
  rules.push_back(Rule{"admins anything", Action::Allow, {}, {}, {"admins"}, {}, {}, kAllCommands});
  rules.push_back(Rule{
      "carol web ports", Action::Allow, {}, {"carol"}, {}, {}, ports({"80", "443"}), kAllCommands});
  rules.push_back(Rule{"lan web",
                       Action::Allow,
                       {"lan"},
                       {},
                       {},
                       {"web"},
                       ports({"80", "443", "8000-8100"}),
                       bits({Command::Connect})});
  rules.push_back(Rule{"lan bind v6",
                       Action::Allow,
                       {"lan"},
                       {},
                       {},
                       {"v6net"},
                       {},
                       bits({Command::Bind, Command::Udp})});
  const Engine engine(commonNetworks(), {{"admins", {"alice", "bob"}}, {"empty", {}}},
                      std::move(rules));

  const std::vector<Case> cases = {
      {"first match wins: dmz deny before admins allow",
       Req("172.16.5.5", "1.2.3.4", 80).user("alice").r, false, "deny dmz"},
      {"group member alice", Req("10.1.1.1", "1.2.3.4", 22).user("alice").r, true,
       "admins anything"},
      {"group member bob from anywhere", Req("8.8.8.8", "1.2.3.4", 22).user("bob").r, true,
       "admins anything"},
      {"user names are case-sensitive", Req("8.8.8.8", "1.2.3.4", 22).user("ALICE").r, false,
       "default-deny"},
      {"named user carol on an allowed port", Req("8.8.8.8", "1.2.3.4", 443).user("carol").r, true,
       "carol web ports"},
      {"named user carol on another port", Req("8.8.8.8", "1.2.3.4", 22).user("carol").r, false,
       "default-deny"},
      {"a user condition never matches anonymous", Req("8.8.8.8", "1.2.3.4", 80).r, false,
       "default-deny"},
      {"unknown user", Req("8.8.8.8", "1.2.3.4", 80).user("mallory").r, false, "default-deny"},
      {"anonymous lan client to web domain", Req("10.1.1.1", "example.com", 443).r, true,
       "lan web"},
      {"authenticated user still matches a rule without users",
       Req("10.1.1.1", "example.com", 443).user("mallory").r, true, "lan web"},
      {"lan client to web range and port range", Req("10.1.1.1", "203.0.113.5", 8050).r, true,
       "lan web"},
      {"port just past the range", Req("10.1.1.1", "203.0.113.5", 8101).r, false, "default-deny"},
      {"destination outside web", Req("10.1.1.1", "198.51.100.1", 443).r, false, "default-deny"},
      {"address pair: first", Req("192.168.1.10", "example.com", 80).r, true, "lan web"},
      {"address pair: last", Req("192.168.1.20", "example.com", 80).r, true, "lan web"},
      {"address pair: just outside", Req("192.168.1.21", "example.com", 80).r, false,
       "default-deny"},
      {"source outside every network", Req("8.8.8.8", "example.com", 443).r, false, "default-deny"},
      {"bind not allowed by connect-only rule",
       Req("10.1.1.1", "example.com", 443).command(Command::Bind).r, false, "default-deny"},
      {"bind to v6 network", Req("10.1.1.1", "2001:db8::5", 5000).command(Command::Bind).r, true,
       "lan bind v6"},
      {"udp to v6 network", Req("10.1.1.1", "2001:db8::5", 53).command(Command::Udp).r, true,
       "lan bind v6"},
      {"connect to v6 network is not in bind/udp rule",
       Req("10.1.1.1", "2001:db8::5", 5000).command(Command::Connect).r, false, "default-deny"},
      {"v4-mapped client address",
       Req("10.1.1.1", "example.com", 80).clientAddress(mapped("10.1.1.1")).r, true, "lan web"},
      {"v4-mapped destination address",
       Req("10.1.1.1", "1.1.1.1", 80).destinationAddress(mapped("203.0.113.9")).r, true, "lan web"},
      {"v4-mapped dmz client still denied",
       Req("10.1.1.1", "1.2.3.4", 80).clientAddress(mapped("172.16.0.1")).user("alice").r, false,
       "deny dmz"},
  };
  runTable(engine, cases);
}

TEST(EngineTest, DestinationDomainTable) {
  std::vector<Rule> rules;
  rules.push_back(Rule{"to sites", Action::Allow, {}, {}, {}, {"sites"}, {}, kAllCommands});
  const Engine engine({network("sites", {}, {"example.com", "Corp.Example.ORG."})}, {},
                      std::move(rules));
  const auto to = [](std::string_view name) { return Req("10.0.0.1", name, 443).r; };
  const std::vector<Case> cases = {
      {"exact domain", to("example.com"), true, "to sites"},
      {"upper case", to("EXAMPLE.COM"), true, "to sites"},
      {"trailing dot", to("example.com."), true, "to sites"},
      {"subdomain", to("www.example.com"), true, "to sites"},
      {"deep subdomain", to("a.b.Example.com"), true, "to sites"},
      {"look-alike without a dot", to("badexample.com"), false, "default-deny"},
      {"suffix in the middle", to("example.com.evil.net"), false, "default-deny"},
      {"parent domain", to("com"), false, "default-deny"},
      {"entry with capitals and trailing dot", to("corp.example.org"), true, "to sites"},
      {"below that entry, with trailing dot", to("x.corp.example.org."), true, "to sites"},
      {"sibling of that entry", to("example.org"), false, "default-deny"},
      {"a lone dot", to("."), false, "default-deny"},
      {"an address does not match a domain-only network", to("93.184.216.34"), false,
       "default-deny"},
      {"name and address: the name decides",
       Req("10.0.0.1", "www.example.com", 443).resolvedTo("93.184.216.34").r, true, "to sites"},
  };
  runTable(engine, cases);
}

TEST(EngineTest, ProtectedDestinationTable) {
  std::vector<Network> networks = {
      network("lan", {"10.0.0.0/8"}),
      network("gateway-host", {"10.0.0.1"}),
      network("gateway-name", {}, {"gw.example"}),
      network("everything", {"0.0.0.0/0"}),
  };
  std::vector<Rule> rules;
  rules.push_back(
      Rule{"lan anywhere", Action::Allow, {"lan"}, {}, {}, {}, ports({"80"}), kAllCommands});
  rules.push_back(
      Rule{"ssh via any", Action::Allow, {"lan"}, {}, {}, {"any"}, ports({"22"}), kAllCommands});
  rules.push_back(Rule{"ssh to gateway",
                       Action::Allow,
                       {"lan"},
                       {},
                       {},
                       {"gateway-host"},
                       ports({"22"}),
                       kAllCommands});
  rules.push_back(Rule{"deny telnet", Action::Deny, {}, {}, {}, {}, ports({"23"}), kAllCommands});
  rules.push_back(Rule{
      "by name", Action::Allow, {"lan"}, {}, {}, {"gateway-name"}, ports({"8080"}), kAllCommands});
  rules.push_back(
      Rule{"wide", Action::Allow, {"lan"}, {}, {}, {"everything"}, ports({"9000"}), kAllCommands});
  const Engine engine(std::move(networks), {}, std::move(rules));

  const std::vector<Case> cases = {
      {"unprotected: first rule allows", Req("10.2.2.2", "10.0.0.1", 80).r, true, "lan anywhere"},
      {"protected, remote: rule without destinations is skipped",
       Req("10.2.2.2", "10.0.0.1", 80).isProtected().r, false, "protected-destination"},
      {"protected, local client: protection does not apply",
       Req("10.0.0.1", "127.0.0.1", 80).isProtected().local().r, true, "lan anywhere"},
      {"protected, remote: \"any\" is skipped, the explicit network allows",
       Req("10.2.2.2", "10.0.0.1", 22).isProtected().r, true, "ssh to gateway"},
      {"unprotected: \"any\" allows", Req("10.2.2.2", "10.0.0.1", 22).r, true, "ssh via any"},
      {"protected, remote: explicit network without that address",
       Req("10.2.2.2", "127.0.0.1", 22).isProtected().r, false, "protected-destination"},
      {"protected: deny rules apply normally", Req("10.2.2.2", "10.0.0.1", 23).isProtected().r,
       false, "deny telnet"},
      {"protected, remote: a name match is not an explicit address",
       Req("10.2.2.2", "gw.example", 8080).resolvedTo("10.0.0.1").isProtected().r, false,
       "protected-destination"},
      {"unprotected: name match allows",
       Req("10.2.2.2", "gw.example", 8080).resolvedTo("10.0.0.1").r, true, "by name"},
      {"protected, remote: no address at all", Req("10.2.2.2", "localhost", 22).isProtected().r,
       false, "protected-destination"},
      {"protected, remote: a named network with 0.0.0.0/0 is explicit",
       Req("10.2.2.2", "10.0.0.1", 9000).isProtected().r, true, "wide"},
      {"protected, v4-mapped destination",
       Req("10.2.2.2", "1.1.1.1", 22).destinationAddress(mapped("10.0.0.1")).isProtected().r, true,
       "ssh to gateway"},
      {"unprotected, nothing matches", Req("8.8.8.8", "1.1.1.1", 80).r, false, "default-deny"},
      {"protected, nothing matches", Req("8.8.8.8", "10.0.0.1", 80).isProtected().r, false,
       "protected-destination"},
      {"protected, local, nothing matches", Req("8.8.8.8", "10.0.0.1", 81).isProtected().local().r,
       false, "default-deny"},
  };
  runTable(engine, cases);
}

TEST(EngineTest, EmptyListsMatchAnythingUnresolvedNamesMatchNothing) {
  std::vector<Rule> rules;
  rules.push_back(Rule{"ghost source", Action::Allow, {"nosuch"}, {}, {}, {}, {}, kAllCommands});
  rules.push_back(
      Rule{"ghost destination", Action::Allow, {}, {}, {}, {"nosuch"}, {}, kAllCommands});
  rules.push_back(Rule{"ghost group", Action::Allow, {}, {}, {"nosuch"}, {}, {}, kAllCommands});
  rules.push_back(Rule{"unrestricted", Action::Allow, {}, {}, {}, {}, {}, 0});
  const Engine engine({}, {}, std::move(rules));
  runTable(engine, {
                       {"only the unrestricted rule matches",
                        Req("10.0.0.1", "example.com", 1).user("x").command(Command::Udp).r, true,
                        "unrestricted"},
                   });
}

TEST(EngineTest, NoRulesDeniesEverything) {
  const Engine engine({}, {}, {});
  runTable(engine,
           {{"no rules", Req("127.0.0.1", "127.0.0.1", 80).local().r, false, "default-deny"}});
  EXPECT_EQ(engine.deniedCount(), 1u);
}

TEST(EngineTest, BuiltinNetworksAreAlwaysPresent) {
  std::vector<Rule> rules;
  rules.push_back(Rule{"loopback", Action::Allow, {"loopback"}, {}, {}, {}, {}, kAllCommands});
  const Engine engine({network("lan", {"10.0.0.0/8"})}, {}, std::move(rules));
  ASSERT_NE(engine.findNetwork("any"), nullptr);
  EXPECT_TRUE(engine.findNetwork("any")->any);
  ASSERT_NE(engine.findNetwork("loopback"), nullptr);
  EXPECT_TRUE(engine.findNetwork("loopback")->containsAddress(ip("127.0.0.53")));
  EXPECT_TRUE(engine.findNetwork("loopback")->containsAddress(ip("::1")));
  EXPECT_NE(engine.findNetwork("lan"), nullptr);
  EXPECT_EQ(engine.findNetwork("nosuch"), nullptr);
  runTable(engine, {{"v4 loopback", Req("127.0.0.1", "1.1.1.1", 80).r, true, "loopback"},
                    {"v6 loopback", Req("::1", "1.1.1.1", 80).r, true, "loopback"},
                    {"not loopback", Req("10.0.0.1", "1.1.1.1", 80).r, false, "default-deny"}});
}

TEST(EngineTest, NetworkContainsDomainDirectly) {
  const Network n = network("n", {}, {"example.com"});
  EXPECT_TRUE(n.containsDomain("example.com"));
  EXPECT_TRUE(n.containsDomain("WWW.Example.Com."));
  EXPECT_FALSE(n.containsDomain("badexample.com"));
  EXPECT_FALSE(n.containsDomain(""));
  Network any;
  any.any = true;
  EXPECT_TRUE(any.containsDomain("anything.invalid"));
  EXPECT_TRUE(any.containsAddress(ip("2001:db8::1")));
}

TEST(EngineTest, Counters) {
  std::vector<Rule> rules;
  rules.push_back(Rule{"deny 23", Action::Deny, {}, {}, {}, {}, ports({"23"}), kAllCommands});
  rules.push_back(Rule{"allow lan", Action::Allow, {"lan"}, {}, {}, {}, {}, kAllCommands});
  const Engine engine(commonNetworks(), {}, std::move(rules));
  engine.decide(Req("10.0.0.1", "1.1.1.1", 23).r);
  engine.decide(Req("10.0.0.1", "1.1.1.1", 80).r);
  engine.decide(Req("10.0.0.1", "1.1.1.1", 81).r);
  engine.decide(Req("8.8.8.8", "1.1.1.1", 80).r);
  EXPECT_EQ(engine.hits(0), 1u);
  EXPECT_EQ(engine.hits(1), 2u);
  EXPECT_EQ(engine.hits(2), 0u);  // out of range
  EXPECT_EQ(engine.allowedCount(), 2u);
  EXPECT_EQ(engine.deniedCount(), 2u);  // one by rule, one by default
}

TEST(EngineTest, CountersAreThreadSafe) {
  std::vector<Rule> rules;
  rules.push_back(Rule{"allow lan", Action::Allow, {"lan"}, {}, {}, {}, {}, kAllCommands});
  const Engine engine(commonNetworks(), {}, std::move(rules));
  constexpr int kPerThread = 20000;
  const auto work = [&](std::string_view client) {
    for (int i = 0; i < kPerThread; ++i) engine.decide(Req(client, "1.1.1.1", 80).r);
  };
  std::thread a(work, "10.0.0.1");
  std::thread b(work, "8.8.8.8");
  std::thread c(work, "10.0.0.2");
  a.join();
  b.join();
  c.join();
  EXPECT_EQ(engine.hits(0), 2u * kPerThread);
  EXPECT_EQ(engine.allowedCount(), 2u * kPerThread);
  EXPECT_EQ(engine.deniedCount(), 1u * kPerThread);
}

TEST(EngineTest, CommandNames) {
  EXPECT_EQ(toString(Command::Connect), "connect");
  EXPECT_EQ(toString(Command::Bind), "bind");
  EXPECT_EQ(toString(Command::Udp), "udp");
}

}  // namespace
}  // namespace fwgate::policy

namespace fwgate::policy {
namespace {

// A server listening on the gateway: before any peer is known, could a rule allow one?
TEST(EngineTest, MayAllowAServerBeforeItsPeersAreKnown) {
  ProtocolDefinition game;
  game.name = "Game";
  game.primary = {{4000, 4000}, Transport::Tcp, Direction::Inbound};
  std::vector<Network> networks{network("lan", {"10.0.0.0/8"}),
                                network("partner", {"198.51.100.7"})};
  Rule denyGuests{"no guests", Action::Deny, {}, {}, {}, {}, {}, kAllCommands, {}};
  denyGuests.sources = {"guests"};
  Rule partnerOnly{"partner", Action::Allow,         {"lan"}, {}, {}, {"partner"},
                   {},        bits({Command::Bind}), {"Game"}};
  Rule denyAllFromLab{"lab", Action::Deny, {"lab"}, {}, {}, {}, {}, kAllCommands, {}};
  networks.push_back(network("guests", {"10.9.0.0/16"}));
  networks.push_back(network("lab", {"10.7.0.0/16"}));
  const Engine engine(networks, {}, {denyAllFromLab, denyGuests, partnerOnly}, {game});

  Request r;
  r.command = Command::Bind;
  r.destinationPort = 4000;
  r.connection = ConnectionFacts{Transport::Tcp, Direction::Inbound, 4000};
  r.client = ip("10.1.2.3");
  EXPECT_TRUE(engine.mayAllow(r));  // the partner may connect
  r.client = ip("10.7.0.1");
  EXPECT_FALSE(engine.mayAllow(r));  // a deny without destinations decides for every peer
  r.client = ip("10.9.0.1");
  EXPECT_FALSE(engine.mayAllow(r));
  r.client = ip("10.1.2.3");
  r.connection = ConnectionFacts{Transport::Tcp, Direction::Inbound, 4001};
  r.destinationPort = 4001;
  EXPECT_FALSE(engine.mayAllow(r));  // no definition the rule names covers port 4001
  // Not counted: mayAllow is a question, not a decision.
  EXPECT_EQ(engine.allowedCount() + engine.deniedCount(), 0u);
  // A peer, once known, is decided as usual.
  r.connection = ConnectionFacts{Transport::Tcp, Direction::Inbound, 4000};
  r.destinationPort = 4000;
  r.destinationAddress = ip("198.51.100.7");
  EXPECT_TRUE(engine.decide(r).allowed);
  EXPECT_EQ(engine.decide(r).protocol, "Game");
  r.destinationAddress = ip("198.51.100.8");
  EXPECT_FALSE(engine.decide(r).allowed);
}

}  // namespace
}  // namespace fwgate::policy

namespace fwgate::policy {
namespace {

// A secondary connection's peer (an FTP server connecting back) is matched by rules naming the
// primary's definition through the definition's secondary connections.
TEST(EngineTest, SecondaryOfMatchesThroughTheDefinitionsSecondaries) {
  const std::vector<ProtocolDefinition> catalogue = builtinProtocols();
  ASSERT_TRUE(std::any_of(catalogue.begin(), catalogue.end(),
                          [](const ProtocolDefinition& d) { return d.name == "FTP"; }));
  Rule dataPeers{"ftp data", Action::Allow,         {"lan"}, {}, {}, {},
                 {},         bits({Command::Bind}), {"FTP"}};
  const Engine engine({network("lan", {"10.0.0.0/8"})}, {}, {dataPeers}, catalogue);
  Request r;
  r.client = ip("10.1.2.3");
  r.command = Command::Bind;
  r.destinationAddress = ip("198.51.100.7");
  r.destinationPort = 2000;
  r.connection = ConnectionFacts{Transport::Tcp, Direction::Inbound, 2000};
  EXPECT_FALSE(engine.decide(r).allowed);  // as a primary connection, FTP does not cover it
  r.secondaryOf = "FTP";
  const Decision d = engine.decide(r);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.protocol, "FTP");
  r.connection = ConnectionFacts{Transport::Tcp, Direction::Inbound, 6000};  // outside 1024-5000
  r.destinationPort = 6000;
  EXPECT_FALSE(engine.decide(r).allowed);
  r.secondaryOf = "HTTP";  // HTTP has no secondary connections
  r.connection = ConnectionFacts{Transport::Tcp, Direction::Inbound, 2000};
  EXPECT_FALSE(engine.decide(r).allowed);
}

}  // namespace
}  // namespace fwgate::policy
