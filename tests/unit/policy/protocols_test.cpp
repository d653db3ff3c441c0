// Protocol definitions: names, matching tables, the built-in catalogue, and engine decisions
// with rules that name definitions.
#include "policy/protocols.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <set>
#include <string>
#include <vector>

#include "policy/engine.hpp"

namespace fwgate::policy {
namespace {

constexpr PortRange kDynamic{1024, 5000};

ConnectionSpec spec(std::uint16_t first, std::uint16_t last, Transport t, Direction d) {
  return ConnectionSpec{PortRange{first, last}, t, d};
}

ConnectionFacts facts(Transport t, Direction d, std::uint16_t port) {
  return ConnectionFacts{t, d, port};
}

const ProtocolDefinition* find(const std::vector<ProtocolDefinition>& all, std::string_view name) {
  for (const auto& p : all) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

TEST(ProtocolNamesTest, TransportRoundTrip) {
  for (const Transport t : {Transport::Tcp, Transport::Udp}) {
    EXPECT_EQ(parseTransport(toString(t)), t);
  }
  EXPECT_EQ(toString(Transport::Tcp), "tcp");
  EXPECT_EQ(toString(Transport::Udp), "udp");
  EXPECT_EQ(parseTransport("TCP"), std::nullopt);
  EXPECT_EQ(parseTransport("sctp"), std::nullopt);
  EXPECT_EQ(parseTransport(""), std::nullopt);
}

TEST(ProtocolNamesTest, DirectionTable) {
  struct Case {
    Transport transport;
    std::string_view text;
    std::optional<Direction> expected;
  };
  const std::vector<Case> cases = {
      {Transport::Tcp, "outbound", Direction::Outbound},
      {Transport::Tcp, "inbound", Direction::Inbound},
      {Transport::Tcp, "send", std::nullopt},
      {Transport::Tcp, "send-receive", std::nullopt},
      {Transport::Udp, "send", Direction::Send},
      {Transport::Udp, "receive", Direction::Receive},
      {Transport::Udp, "send-receive", Direction::SendReceive},
      {Transport::Udp, "receive-send", Direction::ReceiveSend},
      {Transport::Udp, "outbound", std::nullopt},
      {Transport::Udp, "inbound", std::nullopt},
      {Transport::Udp, "Send", std::nullopt},
      {Transport::Udp, "sendreceive", std::nullopt},
      {Transport::Tcp, "", std::nullopt},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(parseDirection(c.transport, c.text), c.expected)
        << toString(c.transport) << " " << c.text;
    if (c.expected) {
      EXPECT_EQ(toString(*c.expected), c.text);
    }
  }
}

TEST(ProtocolNamesTest, ValidNames) {
  EXPECT_TRUE(isValidProtocolName("HTTP-Alt"));
  EXPECT_TRUE(isValidProtocolName("my_app.v2"));
  EXPECT_FALSE(isValidProtocolName(""));
  EXPECT_FALSE(isValidProtocolName("my app"));
  EXPECT_FALSE(isValidProtocolName("a/b"));
  EXPECT_FALSE(isValidProtocolName(std::string(129, 'a')));
}

TEST(ProtocolNamesTest, SpecToString) {
  EXPECT_EQ(toString(spec(21, 21, Transport::Tcp, Direction::Outbound)), "tcp 21 outbound");
  EXPECT_EQ(toString(spec(0, 0, Transport::Tcp, Direction::Inbound)), "tcp 0 (dynamic) inbound");
  EXPECT_EQ(toString(spec(6000, 6010, Transport::Udp, Direction::ReceiveSend)),
            "udp 6000-6010 receive-send");
}

TEST(ConnectionSpecTest, CoversPort) {
  const ConnectionSpec fixed = spec(8000, 8100, Transport::Tcp, Direction::Outbound);
  EXPECT_TRUE(fixed.coversPort(8000, kDynamic));
  EXPECT_TRUE(fixed.coversPort(8100, kDynamic));
  EXPECT_FALSE(fixed.coversPort(7999, kDynamic));
  EXPECT_FALSE(fixed.coversPort(8101, kDynamic));
  EXPECT_FALSE(fixed.anyDynamicPort());
  const ConnectionSpec any = spec(0, 0, Transport::Tcp, Direction::Inbound);
  EXPECT_TRUE(any.anyDynamicPort());
  EXPECT_TRUE(any.coversPort(1024, kDynamic));
  EXPECT_TRUE(any.coversPort(5000, kDynamic));
  EXPECT_FALSE(any.coversPort(1023, kDynamic));
  EXPECT_FALSE(any.coversPort(5001, kDynamic));
  EXPECT_FALSE(any.coversPort(0, kDynamic));
  EXPECT_TRUE(any.coversPort(40000, PortRange{30000, 60000}));
  EXPECT_FALSE(any.coversPort(2000, PortRange{30000, 60000}));
}

TEST(MatchesPrimaryTest, Table) {
  using enum Direction;
  constexpr Transport tcp = Transport::Tcp;
  constexpr Transport udp = Transport::Udp;
  struct Case {
    std::string description;
    ConnectionSpec spec;
    ConnectionFacts facts;
    bool matches;
  };
  const std::vector<Case> cases = {
      {"tcp same port", spec(21, 21, tcp, Outbound), facts(tcp, Outbound, 21), true},
      {"tcp other port", spec(21, 21, tcp, Outbound), facts(tcp, Outbound, 22), false},
      {"tcp wrong direction", spec(21, 21, tcp, Outbound), facts(tcp, Inbound, 21), false},
      {"tcp inbound", spec(21, 21, tcp, Inbound), facts(tcp, Inbound, 21), true},
      {"transport differs", spec(53, 53, tcp, Outbound), facts(udp, Send, 53), false},
      {"range, inside", spec(1024, 65535, tcp, Outbound), facts(tcp, Outbound, 40000), true},
      {"range, below", spec(1024, 65535, tcp, Outbound), facts(tcp, Outbound, 1023), false},
      {"port 0: in the dynamic range", spec(0, 0, tcp, Inbound), facts(tcp, Inbound, 3000), true},
      {"port 0: past the dynamic range", spec(0, 0, tcp, Inbound), facts(tcp, Inbound, 6000),
       false},
      {"udp send vs send", spec(69, 69, udp, Send), facts(udp, Send, 69), true},
      {"udp send vs send-receive", spec(53, 53, udp, SendReceive), facts(udp, Send, 53), true},
      {"udp send vs receive-send", spec(53, 53, udp, ReceiveSend), facts(udp, Send, 53), false},
      {"udp send vs receive", spec(53, 53, udp, Receive), facts(udp, Send, 53), false},
      {"udp receive vs receive", spec(9, 9, udp, Receive), facts(udp, Receive, 9), true},
      {"udp receive vs receive-send", spec(9, 9, udp, ReceiveSend), facts(udp, Receive, 9), true},
      {"udp receive vs send-receive", spec(9, 9, udp, SendReceive), facts(udp, Receive, 9), false},
      {"udp send-receive exactly", spec(9, 9, udp, SendReceive), facts(udp, SendReceive, 9), true},
      {"udp send-receive vs send spec", spec(9, 9, udp, Send), facts(udp, SendReceive, 9), false},
      {"udp receive-send exactly", spec(9, 9, udp, ReceiveSend), facts(udp, ReceiveSend, 9), true},
      {"udp receive-send vs send-receive", spec(9, 9, udp, SendReceive), facts(udp, ReceiveSend, 9),
       false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(matchesPrimary(c.spec, c.facts, kDynamic), c.matches) << c.description;
  }
}

TEST(CoversSecondaryTest, Table) {
  using enum Direction;
  const std::vector<ProtocolDefinition> all = builtinProtocols();
  const ProtocolDefinition& ftp = *find(all, "FTP");
  const ProtocolDefinition& rtsp = *find(all, "RTSP");
  const ProtocolDefinition& http = *find(all, "HTTP");
  constexpr Transport tcp = Transport::Tcp;
  constexpr Transport udp = Transport::Udp;
  struct Case {
    std::string description;
    const ProtocolDefinition& definition;
    ConnectionFacts facts;
    bool covered;
  };
  const std::vector<Case> cases = {
      {"ftp active data: inbound, dynamic port", ftp, facts(tcp, Inbound, 2000), true},
      {"ftp active data past the dynamic range", ftp, facts(tcp, Inbound, 6000), false},
      {"ftp passive data: outbound high port", ftp, facts(tcp, Outbound, 50000), true},
      {"ftp passive data: privileged port", ftp, facts(tcp, Outbound, 1000), false},
      {"ftp udp", ftp, facts(udp, Send, 2000), false},
      {"rtsp media: udp receive matches receive-send", rtsp, facts(udp, Receive, 3000), true},
      {"rtsp media: udp send does not", rtsp, facts(udp, Send, 3000), false},
      {"rtsp media: receive-send exactly", rtsp, facts(udp, ReceiveSend, 3000), true},
      {"rtsp tcp inbound", rtsp, facts(tcp, Inbound, 1024), true},
      {"the primary is not a secondary", ftp, facts(tcp, Outbound, 21), false},
      {"no secondaries", http, facts(tcp, Inbound, 2000), false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(coversSecondary(c.definition, c.facts, kDynamic), c.covered) << c.description;
  }
  EXPECT_TRUE(coversSecondary(ftp, facts(tcp, Inbound, 40000), PortRange{30000, 60000}));
}

TEST(OverlapsTest, Table) {
  using enum Direction;
  constexpr Transport tcp = Transport::Tcp;
  constexpr Transport udp = Transport::Udp;
  struct Case {
    std::string description;
    ConnectionSpec a;
    ConnectionSpec b;
    bool overlap;
  };
  const std::vector<Case> cases = {
      {"same port", spec(80, 80, tcp, Outbound), spec(80, 80, tcp, Outbound), true},
      {"range holds port", spec(8000, 8100, tcp, Outbound), spec(8080, 8080, tcp, Outbound), true},
      {"adjacent ranges", spec(8000, 8100, tcp, Outbound), spec(8101, 8200, tcp, Outbound), false},
      {"directions differ", spec(80, 80, tcp, Outbound), spec(80, 80, tcp, Inbound), false},
      {"transports differ", spec(53, 53, tcp, Outbound), spec(53, 53, udp, Send), false},
      {"port 0 against a port in the dynamic range", spec(0, 0, tcp, Outbound),
       spec(3306, 3306, tcp, Outbound), true},
      {"port 0 against a port outside it", spec(0, 0, tcp, Outbound), spec(443, 443, tcp, Outbound),
       false},
      {"udp send and send-receive", spec(53, 53, udp, Send), spec(53, 53, udp, SendReceive), true},
      {"udp receive and receive-send", spec(53, 53, udp, Receive), spec(53, 53, udp, ReceiveSend),
       true},
      {"udp send and receive", spec(53, 53, udp, Send), spec(53, 53, udp, Receive), false},
      {"udp send-receive and receive-send", spec(53, 53, udp, SendReceive),
       spec(53, 53, udp, ReceiveSend), false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(overlaps(c.a, c.b, kDynamic), c.overlap) << c.description;
    EXPECT_EQ(overlaps(c.b, c.a, kDynamic), c.overlap) << c.description << " (swapped)";
  }
}

TEST(CatalogueTest, Sanity) {
  const std::vector<ProtocolDefinition> all = builtinProtocols();
  ASSERT_GE(all.size(), 30u);
  std::set<std::string> lower;
  for (const ProtocolDefinition& p : all) {
    EXPECT_TRUE(isValidProtocolName(p.name)) << p.name;
    EXPECT_TRUE(p.builtin) << p.name;
    std::string l;
    for (char c : p.name) l += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    EXPECT_TRUE(lower.insert(l).second) << "duplicate name " << p.name;
    EXPECT_FALSE(p.primary.anyDynamicPort()) << p.name;
    EXPECT_TRUE(parseDirection(p.primary.transport, toString(p.primary.direction)))
        << p.name << ": direction does not fit its transport";
    for (const ConnectionSpec& s : p.secondary) {
      EXPECT_TRUE(parseDirection(s.transport, toString(s.direction))) << p.name;
    }
  }
  // No two built-in primaries can be the same connection.
  for (std::size_t i = 0; i < all.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      EXPECT_FALSE(overlaps(all[i].primary, all[j].primary, kDefaultDynamicPorts))
          << all[i].name << " and " << all[j].name;
    }
  }
  // A stable order: the same list every time.
  const std::vector<ProtocolDefinition> again = builtinProtocols();
  ASSERT_EQ(again.size(), all.size());
  for (std::size_t i = 0; i < all.size(); ++i) EXPECT_EQ(again[i].name, all[i].name);

  const ProtocolDefinition* ftp = find(all, "FTP");
  ASSERT_NE(ftp, nullptr);
  EXPECT_EQ(ftp->primary, spec(21, 21, Transport::Tcp, Direction::Outbound));
  EXPECT_EQ(ftp->secondary,
            (std::vector<ConnectionSpec>{spec(0, 0, Transport::Tcp, Direction::Inbound),
                                         spec(1024, 65535, Transport::Tcp, Direction::Outbound)}));
  ASSERT_NE(find(all, "FTPS"), nullptr);
  EXPECT_EQ(find(all, "FTPS")->secondary, ftp->secondary);
  ASSERT_NE(find(all, "DNS"), nullptr);
  EXPECT_EQ(find(all, "DNS")->primary, spec(53, 53, Transport::Udp, Direction::SendReceive));
  ASSERT_NE(find(all, "TFTP"), nullptr);
  EXPECT_EQ(find(all, "TFTP")->primary.direction, Direction::Send);
  EXPECT_EQ(find(all, "TFTP")->secondary.size(), 1u);
  ASSERT_NE(find(all, "IRC"), nullptr);
  EXPECT_EQ(find(all, "IRC")->secondary.size(), 1u);
  ASSERT_NE(find(all, "RTSP"), nullptr);
  EXPECT_EQ(find(all, "RTSP")->secondary.size(), 2u);
  for (std::string_view name : {"HTTP", "HTTPS", "HTTP-Alt", "SMTP", "SSH", "NTP", "MSSQL"}) {
    EXPECT_NE(find(all, name), nullptr) << name;
  }
}

// --- The engine with protocol definitions --------------------------------------------------

struct Case {
  std::string description;
  Request request;
  bool allowed;
  std::string ruleName;
  std::string protocol;
};

Request req(std::uint16_t port, Command command = Command::Connect) {
  Request r;
  r.client = *IpAddress::parse("10.0.0.5");
  r.destinationAddress = *IpAddress::parse("198.51.100.7");
  r.destinationPort = port;
  r.command = command;
  return r;
}

Request withFacts(ConnectionFacts f, Command command = Command::Connect) {
  Request r = req(f.port, command);
  r.connection = f;
  return r;
}

void runTable(const Engine& engine, const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    const Decision d = engine.decide(c.request);
    EXPECT_EQ(d.allowed, c.allowed) << c.description;
    EXPECT_EQ(d.ruleName, c.ruleName) << c.description;
    EXPECT_EQ(d.protocol, c.protocol) << c.description;
  }
}

Rule rule(std::string name, Action action, std::vector<std::string> protocols,
          std::uint8_t commands = kAllCommands) {
  Rule r;
  r.name = std::move(name);
  r.action = action;
  r.commands = commands;
  r.protocols = std::move(protocols);
  return r;
}

std::vector<ProtocolDefinition> withCustom() {
  std::vector<ProtocolDefinition> all;
  all.push_back(ProtocolDefinition{"CustomApp",
                                   spec(4443, 4443, Transport::Tcp, Direction::Outbound),
                                   {spec(0, 0, Transport::Tcp, Direction::Inbound)},
                                   false});
  // The configuration's own "Web" comes first, so it names port 80 before the catalogue's HTTP.
  all.push_back(
      ProtocolDefinition{"Web", spec(80, 80, Transport::Tcp, Direction::Outbound), {}, false});
  for (ProtocolDefinition& p : builtinProtocols()) all.push_back(std::move(p));
  return all;
}

TEST(EngineProtocolsTest, DecisionTable) {
  using enum Direction;
  std::vector<Rule> rules;
  rules.push_back(rule("web and ftp", Action::Allow, {"HTTP", "HTTPS", "FTP"}));
  rules.push_back(rule("dns", Action::Allow, {"DNS"}, static_cast<std::uint8_t>(Command::Udp)));
  rules.push_back(rule("custom", Action::Allow, {"CustomApp", "NoSuchProtocol"}));
  rules.push_back(rule("ghost only", Action::Allow, {"NoSuchProtocol"}));
  rules.push_back(rule("deny ssh", Action::Deny, {"SSH"}));
  Rule anything = rule("port 3306", Action::Allow, {});
  anything.ports = {PortRange{3306, 3306}, PortRange{7000, 7000}};
  rules.push_back(anything);
  const Engine engine({}, {}, std::move(rules), withCustom(), PortRange{1024, 5000});

  const std::vector<Case> cases = {
      {"HTTPS connect", req(443), true, "web and ftp", "HTTPS"},
      {"FTP control connection", req(21), true, "web and ftp", "FTP"},
      {"port 80: the rule names HTTP, the log names it too", req(80), true, "web and ftp", "HTTP"},
      {"a bind on 443 is TCP inbound: HTTPS does not cover it", req(443, Command::Bind), false,
       "default-deny", ""},
      {"UDP 53: DNS send-receive covers a UDP send", req(53, Command::Udp), true, "dns", "DNS"},
      {"DNS rule is udp only", req(53), false, "default-deny", "DNS-TCP"},
      {"a UDP receive on 53 is not DNS (send-receive)",
       withFacts(facts(Transport::Udp, Receive, 53)), false, "default-deny", ""},
      {"explicit facts override the command",
       withFacts(facts(Transport::Tcp, Outbound, 443), Command::Bind), true, "web and ftp",
       "HTTPS"},
      {"custom definition, unknown sibling ignored", req(4443), true, "custom", "CustomApp"},
      {"not covered by any named definition: next rules, then default deny", req(8443), false,
       "default-deny", ""},
      {"deny rule naming a definition", req(22), false, "deny ssh", "SSH"},
      {"rule without protocols: log names the covering definition", req(3306), true, "port 3306",
       "MySQL"},
      {"rule without protocols and nothing covers the port", req(7000), true, "port 3306", ""},
      {"default deny names the covering definition", req(25), false, "default-deny", "SMTP"},
  };
  runTable(engine, cases);
}

TEST(EngineProtocolsTest, OwnDefinitionsComeFirst) {
  std::vector<Rule> rules;
  rules.push_back(rule("any", Action::Allow, {}));
  rules.push_back(rule("http", Action::Allow, {"HTTP"}));
  const Engine engine({}, {}, std::move(rules), withCustom());
  runTable(engine, {{"port 80: Web before HTTP", req(80), true, "any", "Web"}});
  ASSERT_NE(engine.primaryFor(facts(Transport::Tcp, Direction::Outbound, 80)), nullptr);
  EXPECT_EQ(engine.primaryFor(facts(Transport::Tcp, Direction::Outbound, 80))->name, "Web");
}

TEST(EngineProtocolsTest, RuleNamingADefinitionNeedsItsPrimary) {
  std::vector<Rule> rules;
  rules.push_back(rule("http only", Action::Allow, {"HTTP"}));
  // HTTP is also covered by "Web", which comes first; the rule still matches through HTTP.
  const Engine engine({}, {}, std::move(rules), withCustom());
  runTable(engine,
           {{"HTTP named", req(80), true, "http only", "HTTP"},
            {"FTP data is not a primary", req(2000, Command::Bind), false, "default-deny", ""}});
}

TEST(EngineProtocolsTest, LookupsAndDynamicPorts) {
  const Engine engine({}, {}, {}, withCustom(), PortRange{30000, 40000});
  EXPECT_EQ(engine.dynamicPorts(), (PortRange{30000, 40000}));
  EXPECT_EQ(engine.protocols().size(), builtinProtocols().size() + 2);
  ASSERT_NE(engine.findProtocol("FTP"), nullptr);
  EXPECT_EQ(engine.findProtocol("FTP")->primary.ports, (PortRange{21, 21}));
  EXPECT_EQ(engine.findProtocol("ftp"), nullptr);  // exact names
  EXPECT_EQ(engine.findProtocol("nosuch"), nullptr);
  EXPECT_EQ(engine.primaryFor(facts(Transport::Tcp, Direction::Outbound, 65000)), nullptr);
  ASSERT_NE(engine.primaryFor(facts(Transport::Udp, Direction::Send, 123)), nullptr);
  EXPECT_EQ(engine.primaryFor(facts(Transport::Udp, Direction::Send, 123))->name, "NTP");

  // Without definitions (the three-argument constructor) nothing is named.
  std::vector<Rule> rules;
  rules.push_back(rule("all", Action::Allow, {}));
  rules.push_back(rule("named", Action::Allow, {"HTTP"}));
  const Engine plain({}, {}, std::move(rules));
  EXPECT_TRUE(plain.protocols().empty());
  EXPECT_EQ(plain.dynamicPorts(), kDefaultDynamicPorts);
  const Decision d = plain.decide(req(80));
  EXPECT_EQ(d.ruleName, "all");
  EXPECT_EQ(d.protocol, "");
}

TEST(EngineProtocolsTest, PortZeroDefinitionFollowsTheDynamicRange) {
  std::vector<ProtocolDefinition> defs;
  defs.push_back(
      ProtocolDefinition{"Callbacks", spec(0, 0, Transport::Tcp, Direction::Inbound), {}, false});
  std::vector<Rule> rules;
  rules.push_back(rule("callbacks", Action::Allow, {"Callbacks"}));
  const Engine narrow({}, {}, rules, defs, PortRange{1024, 5000});
  const Engine wide({}, {}, rules, defs, PortRange{30000, 60000});
  runTable(narrow, {{"in range", req(2000, Command::Bind), true, "callbacks", "Callbacks"},
                    {"outside", req(40000, Command::Bind), false, "default-deny", ""}});
  runTable(wide, {{"outside", req(2000, Command::Bind), false, "default-deny", ""},
                  {"in range", req(40000, Command::Bind), true, "callbacks", "Callbacks"}});
}

}  // namespace
}  // namespace fwgate::policy
