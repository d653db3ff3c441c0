// Request::canAskForUser and Decision::needsUser: the Web Proxy's 407 (TMG's per-rule
// authentication), and the http command in rules.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "policy/engine.hpp"

namespace fwgate::policy {
namespace {

IpAddress ip(std::string_view text) {
  const auto a = IpAddress::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(IpAddress{});
}

Network network(std::string name, std::vector<std::string> ranges,
                std::vector<std::string> domains = {}) {
  Network n;
  n.name = std::move(name);
  for (const auto& r : ranges) n.ranges.push_back(*IpRange::parse(r));
  n.domains = std::move(domains);
  return n;
}

Rule rule(std::string name, Action action) {
  Rule r;
  r.name = std::move(name);
  r.action = action;
  return r;
}

constexpr std::uint8_t bits(std::initializer_list<Command> commands) {
  std::uint8_t mask = 0;
  for (Command c : commands) mask |= static_cast<std::uint8_t>(c);
  return mask;
}

// An anonymous Web Proxy request from the LAN that may be asked for a user.
Request web(std::string_view destination, std::uint16_t port, Command command = Command::Http) {
  Request r;
  r.client = ip("10.0.0.5");
  r.command = command;
  r.canAskForUser = true;
  if (IpAddress::parse(destination)) {
    r.destinationAddress = ip(destination);
  } else {
    r.destinationName = std::string(destination);
  }
  r.destinationPort = port;
  return r;
}

Request as(Request r, std::string user) {
  r.user = std::move(user);
  return r;
}

Request cannotAsk(Request r) {
  r.canAskForUser = false;
  return r;
}

// deny bad.example; allow the intranet to anyone on the LAN; allow the web to staff (users or the
// group), http and connect on 80 and 443; deny mallory everything; allow DNS-like udp to anyone.
Engine makeEngine() {
  std::vector<Network> networks{
      network("lan", {"10.0.0.0/8"}),
      network("intranet", {"10.9.0.0/16"}, {"intra.example"}),
      network("bad", {"198.51.100.0/24"}, {"bad.example"}),
      network("web", {"203.0.113.0/24"}, {"example.com", "bad.example"}),
  };
  std::vector<Rule> rules;
  Rule denyBad = rule("deny-bad", Action::Deny);
  denyBad.destinations = {"bad"};
  rules.push_back(denyBad);
  Rule intranet = rule("intranet", Action::Allow);
  intranet.sources = {"lan"};
  intranet.destinations = {"intranet"};
  rules.push_back(intranet);
  Rule denyMallory = rule("deny-mallory", Action::Deny);
  denyMallory.users = {"mallory"};
  rules.push_back(denyMallory);
  Rule staff = rule("staff-web", Action::Allow);
  staff.sources = {"lan"};
  staff.users = {"alice"};
  staff.groups = {"staff"};
  staff.destinations = {"web"};
  staff.ports = {PortRange{80, 80}, PortRange{443, 443}};
  staff.commands = bits({Command::Http, Command::Connect});
  rules.push_back(staff);
  Rule http = rule("http-only", Action::Allow);
  http.sources = {"lan"};
  http.commands = bits({Command::Http});
  http.ports = {PortRange{8080, 8080}};
  rules.push_back(http);
  std::map<std::string, std::vector<std::string>> groups{{"staff", {"bob"}}};
  return Engine(networks, groups, rules, builtinProtocols());
}

TEST(AskUserTest, AnAnonymousRequestStopsAtTheFirstAllowRuleForUsers) {
  const Engine engine = makeEngine();
  const Decision d = engine.decide(web("www.example.com", 80));
  EXPECT_FALSE(d.allowed);
  EXPECT_TRUE(d.needsUser);
  EXPECT_EQ(d.reason, Reason::NeedsUser);
  EXPECT_EQ(d.ruleName, "staff-web");
  EXPECT_EQ(d.ruleIndex, 3);
  EXPECT_EQ(d.protocol, "HTTP");
  // deny-mallory (before it, naming a user) did not stop it: a deny rule for users never asks.
  EXPECT_EQ(engine.rules()[2].name, "deny-mallory");
  // The same for a CONNECT tunnel the rule covers, and for an address in the network.
  const Decision tunnel = engine.decide(web("203.0.113.9", 443, Command::Connect));
  EXPECT_TRUE(tunnel.needsUser);
  EXPECT_EQ(tunnel.ruleName, "staff-web");
  EXPECT_EQ(tunnel.protocol, "HTTPS");
}

TEST(AskUserTest, WithAUserTheRulesDecideAsUsual) {
  const Engine engine = makeEngine();
  for (const char* user : {"alice", "bob"}) {
    const Decision d = engine.decide(as(web("www.example.com", 80), user));
    EXPECT_TRUE(d.allowed) << user;
    EXPECT_FALSE(d.needsUser) << user;
    EXPECT_EQ(d.ruleName, "staff-web") << user;
  }
  // A user the rule does not name is not asked again: the rules go on, and deny.
  const Decision carol = engine.decide(as(web("www.example.com", 80), "carol"));
  EXPECT_FALSE(carol.allowed);
  EXPECT_FALSE(carol.needsUser);
  EXPECT_EQ(carol.ruleName, "default-deny");
  // A deny rule for a user applies to that user.
  const Decision mallory = engine.decide(as(web("www.example.com", 80), "mallory"));
  EXPECT_FALSE(mallory.allowed);
  EXPECT_FALSE(mallory.needsUser);
  EXPECT_EQ(mallory.ruleName, "deny-mallory");
}

TEST(AskUserTest, WithoutCanAskForUserTheRuleIsSkippedAsBefore) {
  const Engine engine = makeEngine();
  const Decision d = engine.decide(cannotAsk(web("www.example.com", 80)));
  EXPECT_FALSE(d.allowed);
  EXPECT_FALSE(d.needsUser);
  EXPECT_EQ(d.ruleName, "default-deny");
  EXPECT_EQ(d.ruleIndex, -1);
  // A SOCKS client or a firewall client (which cannot be asked) is never told it needs a user.
  Request socks = cannotAsk(web("www.example.com", 443, Command::Connect));
  EXPECT_FALSE(engine.decide(socks).needsUser);
}

TEST(AskUserTest, ADenyRuleBeforeItStillDenies) {
  const Engine engine = makeEngine();
  // bad.example is in "web" too, but deny-bad comes first.
  const Decision d = engine.decide(web("www.bad.example", 80));
  EXPECT_FALSE(d.allowed);
  EXPECT_FALSE(d.needsUser);
  EXPECT_EQ(d.ruleName, "deny-bad");
  // An allow rule without users before it decides without asking.
  const Decision intranet = engine.decide(web("host.intra.example", 80));
  EXPECT_TRUE(intranet.allowed);
  EXPECT_EQ(intranet.ruleName, "intranet");
}

TEST(AskUserTest, AnAllowRuleBeforeItAllowsWithoutAsking) {
  const Engine engine = makeEngine();
  const Decision d = engine.decide(web("10.9.1.1", 443, Command::Connect));
  EXPECT_TRUE(d.allowed);
  EXPECT_FALSE(d.needsUser);
  EXPECT_EQ(d.ruleName, "intranet");
}

TEST(AskUserTest, OnlyWhenTheRulesOtherConditionsMatch) {
  const Engine engine = makeEngine();
  struct Case {
    const char* description;
    Request request;
    std::string ruleName;
    bool allowed;
  };
  Request outside = web("www.example.com", 80);
  outside.client = ip("192.0.2.1");  // not in the rule's sources
  const std::vector<Case> cases{
      {"another port", web("www.example.com", 8443), "default-deny", false},
      {"another destination", web("www.other.example", 80), "default-deny", false},
      {"another command", web("www.example.com", 80, Command::Udp), "default-deny", false},
      {"another source", outside, "default-deny", false},
      // Port 8080 is the http-only rule's, which names no users.
      {"a later rule without users", web("www.other.example", 8080), "http-only", true},
  };
  for (const Case& c : cases) {
    const Decision d = engine.decide(c.request);
    EXPECT_FALSE(d.needsUser) << c.description;
    EXPECT_EQ(d.ruleName, c.ruleName) << c.description;
    EXPECT_EQ(d.allowed, c.allowed) << c.description;
  }
}

TEST(AskUserTest, AProtectedDestinationIsNotAReasonToAsk) {
  const Engine engine = makeEngine();
  Request r = web("203.0.113.1", 80);
  r.destinationIsProtected = true;  // the rule names "web", which holds it: still allowed to ask
  EXPECT_TRUE(engine.decide(r).needsUser);
  Rule any = rule("staff-anywhere", Action::Allow);
  any.users = {"alice"};
  any.destinations = {"any"};
  const Engine anywhere({network("lan", {"10.0.0.0/8"})}, {}, {any});
  Request self = web("127.0.0.1", 80);
  self.destinationIsProtected = true;
  const Decision d = anywhere.decide(self);
  EXPECT_FALSE(d.needsUser);
  EXPECT_EQ(d.ruleName, "protected-destination");
}

TEST(AskUserTest, AChallengeCountsAsADenialNotAsTheRulesHit) {
  const Engine engine = makeEngine();
  const Decision d = engine.decide(web("www.example.com", 80));
  ASSERT_TRUE(d.needsUser);
  EXPECT_EQ(engine.hits(3), 0u);
  EXPECT_EQ(engine.deniedCount(), 1u);
  EXPECT_EQ(engine.allowedCount(), 0u);
  engine.decide(as(web("www.example.com", 80), "alice"));
  EXPECT_EQ(engine.hits(3), 1u);
  EXPECT_EQ(engine.allowedCount(), 1u);
}

TEST(HttpCommandTest, RulesNameTheWebProxysRequests) {
  Rule httpOnly = rule("http", Action::Allow);
  httpOnly.commands = bits({Command::Http});
  Rule connectOnly = rule("connect", Action::Allow);
  connectOnly.commands = bits({Command::Connect});
  connectOnly.ports = {PortRange{443, 443}};
  Rule everything = rule("all", Action::Allow);
  everything.ports = {PortRange{21, 21}};
  const Engine engine({}, {}, {httpOnly, connectOnly, everything});
  EXPECT_EQ(engine.decide(cannotAsk(web("a.example", 80))).ruleName, "http");
  // A CONNECT tunnel (the Web Proxy's or SOCKS's) is the connect command, not http.
  EXPECT_EQ(engine.decide(cannotAsk(web("a.example", 443, Command::Connect))).ruleName, "connect");
  EXPECT_EQ(engine.decide(cannotAsk(web("a.example", 22, Command::Connect))).ruleName,
            "default-deny");
  // A rule without commands covers http too.
  EXPECT_EQ(engine.decide(cannotAsk(web("a.example", 21, Command::Udp))).ruleName, "all");
  EXPECT_EQ(toString(Command::Http), "http");
  EXPECT_EQ(commandByName("http"), Command::Http);
  EXPECT_FALSE(commandByName("https").has_value());
}

TEST(HttpCommandTest, AnHttpRequestIsTcpOutboundForDefinitions) {
  Rule defined = rule("web", Action::Allow);
  defined.protocols = {"HTTP", "HTTP-Alt"};
  const Engine engine({}, {}, {defined}, builtinProtocols());
  const Decision d = engine.decide(cannotAsk(web("a.example", 8080)));
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.protocol, "HTTP-Alt");
  EXPECT_FALSE(engine.decide(cannotAsk(web("a.example", 443))).allowed);
}

}  // namespace
}  // namespace fwgate::policy
