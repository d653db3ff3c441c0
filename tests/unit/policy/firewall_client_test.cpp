// The firewall client's admission rule (policy/firewall_client.hpp): one table of connects,
// datagrams, listens and peers against one rule set, with the program's live primary
// connections given as data. No sockets, no namespaces.
#include "policy/firewall_client.hpp"

#include "policy/outcome.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace fwgate::policy {
namespace {

IpAddress ip(std::string_view text) {
  const auto a = IpAddress::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(IpAddress{});
}

// A v4-mapped IPv6 address as a socket reports it, without parse()'s normalisation.
IpAddress mapped(std::string_view v4) {
  const IpAddress a = ip(v4);
  IpAddress m;
  m.v6 = true;
  m.bytes = {0, 0, 0,    0,    0,          0,          0,          0,
             0, 0, 0xff, 0xff, a.bytes[0], a.bytes[1], a.bytes[2], a.bytes[3]};
  return m;
}

constexpr PortRange kDynamic{1024, 5000};
const char* const kClient = "10.0.0.5";
const char* const kGateway = "10.0.0.1";  // the gateway's own address: protected
const char* const kFtpServer = "198.51.100.10";
const char* const kOther = "198.51.100.20";
const char* const kBlocked = "198.51.100.66";
const char* const kTftpServer = "198.51.100.30";
const char* const kPartner = "203.0.113.5";

Rule rule(std::string name, Action action, std::vector<std::string> protocols,
          std::uint8_t commands = kAllCommands) {
  Rule r;
  r.name = std::move(name);
  r.action = action;
  r.protocols = std::move(protocols);
  r.commands = commands;
  return r;
}

std::uint8_t bit(Command c) {
  return static_cast<std::uint8_t>(c);
}

Engine makeEngine() {
  std::vector<Network> networks(3);
  networks[0].name = "internal";
  networks[0].ranges = {*IpRange::parse("10.0.0.0/8")};
  networks[1].name = "blocked";
  networks[1].ranges = {*IpRange::parse(kBlocked)};
  networks[2].name = "partners";
  networks[2].ranges = {*IpRange::parse("203.0.113.0/24")};

  std::vector<Rule> rules;
  Rule deny = rule("deny blocked", Action::Deny, {});
  deny.destinations = {"blocked"};
  rules.push_back(deny);
  for (Rule r : {rule("web", Action::Allow, {"HTTP"}, bit(Command::Connect)),
                 rule("ftp", Action::Allow, {"FTP"}, bit(Command::Connect)),
                 rule("tftp", Action::Allow, {"TFTP"}, bit(Command::Udp))}) {
    r.sources = {"internal"};
    rules.push_back(r);
  }
  Rule undefinedPorts = rule("anything 9000", Action::Allow, {});
  undefinedPorts.sources = {"internal"};
  undefinedPorts.ports = {PortRange{9000, 9001}};
  rules.push_back(undefinedPorts);
  // Peers by the rules: a server's, and a secondary listen's through FTP's secondaries.
  for (Rule r : {rule("game peers", Action::Allow, {"GameServer"}, bit(Command::Bind)),
                 rule("ftp callbacks", Action::Allow, {"FTP"}, bit(Command::Bind))}) {
    r.destinations = {"partners"};
    rules.push_back(r);
  }

  std::vector<ProtocolDefinition> protocols = {
      {"GameServer", {PortRange{7777, 7777}, Transport::Tcp, Direction::Inbound}, {}, false},
      {"Closed", {PortRange{6666, 6666}, Transport::Tcp, Direction::Inbound}, {}, false},
  };
  for (auto& p : builtinProtocols()) protocols.push_back(std::move(p));
  return Engine(std::move(networks), {}, std::move(rules), std::move(protocols), kDynamic);
}

enum class Call { Connect, Udp, UdpSender, Listen, ListenServer, Peer, ServerPeer };

const FirewallClientPolicy kDefault{true, true};
const FirewallClientPolicy kNoDefinitionNeeded{false, true};
const FirewallClientPolicy kPeersByRules{true, false};

// One row: a call, what the gateway passes, what policy must answer.
struct Case {
  std::string description;
  Call call = Call::Connect;
  const char* destination = nullptr;  // Peer, ServerPeer, UdpSender: the peer or sender
  std::uint16_t port = 0;             // Listen: the port asked; Peer: the port listened on
  std::vector<LivePrimary> primaries;
  FirewallClientPolicy policy = kDefault;
  bool protectedDestination = false;
  bool clientIsLocal = false;
  // Expected.
  bool allowed = false;
  Reason reason = Reason::DefaultDeny;
  std::string rule;
  std::string definition;
  std::optional<std::size_t> primary;  // the secondary's primary
  std::optional<PortRange> ports;      // Listen: where it may listen

  Case& with(std::vector<LivePrimary> live) {
    primaries = std::move(live);
    return *this;
  }
  Case& under(FirewallClientPolicy p) {
    policy = p;
    return *this;
  }
  Case& toProtected() {
    protectedDestination = true;
    return *this;
  }
  Case& fromGatewayHost() {
    clientIsLocal = true;
    return *this;
  }
  Case expect(bool a, Reason r, std::string ruleName, std::string definitionName,
              std::optional<std::size_t> primaryIndex = std::nullopt) {
    allowed = a;
    reason = r;
    rule = std::move(ruleName);
    definition = std::move(definitionName);
    primary = primaryIndex;
    return *this;
  }
  Case listensOn(PortRange range) {
    ports = range;
    return *this;
  }
};

Case ask(std::string description, Call call, const char* destination, std::uint16_t port) {
  Case c;
  c.description = std::move(description);
  c.call = call;
  c.destination = destination;
  c.port = port;
  return c;
}

LivePrimary ftpTo(const char* host) {
  return {ip(host), "FTP", "ftp"};
}

Request requestFor(const Case& c) {
  Request r;
  r.client = ip(kClient);
  r.clientIsLocal = c.clientIsLocal;
  r.destinationPort = c.port;
  if (c.call == Call::Listen || c.call == Call::ListenServer) {
    r.command = Command::Bind;
    return r;
  }
  r.command = c.call == Call::Udp ? Command::Udp : Command::Connect;
  r.destinationAddress = ip(c.destination);
  r.destinationIsProtected = c.protectedDestination;
  return r;
}

FirewallDecision run(const Engine& engine, const Case& c, ListenDecision& listen) {
  const Request request = requestFor(c);
  switch (c.call) {
    case Call::Connect:
    case Call::Udp:
      return decideRemoted(engine, request, c.primaries, c.policy);
    case Call::UdpSender:
      return decideUdpSender(engine, c.primaries, ip(c.destination), c.port);
    case Call::Listen:
    case Call::ListenServer:
      listen = decideListen(engine, request, c.primaries,
                            c.call == Call::Listen ? ListenMode::Secondary : ListenMode::Server);
      return listen.admission;
    case Call::Peer:
    case Call::ServerPeer: {
      // The listen first (port 0 for a secondary, the port itself for a server), then the peer.
      Request asked = request;
      asked.command = Command::Bind;
      asked.destinationAddress.reset();
      asked.destinationPort = c.call == Call::Peer ? 0 : c.port;
      const ListenDecision allowed =
          decideListen(engine, asked, c.primaries,
                       c.call == Call::Peer ? ListenMode::Secondary : ListenMode::Server);
      EXPECT_TRUE(allowed.admission.allowed) << c.description << ": the listen itself";
      return decidePeer(engine, allowed, request, c.policy);
    }
  }
  return {};
}

TEST(FirewallClientPolicyTest, AdmissionTable) {
  const Engine engine = makeEngine();
  using enum Call;
  using enum Reason;
  const std::vector<Case> cases = {
      // Connect: the rules, require_definition, then a live primary's secondaries.
      ask("allowed by a rule whose definition covers it", Connect, kOther, 80)
          .expect(true, Rule, "web", "HTTP"),
      ask("allowed by a rule, no definition covers it: denied", Connect, kOther, 9000)
          .expect(false, NoDefinition, "anything 9000", ""),
      ask("no definition, require_definition off: the rule decides", Connect, kOther, 9000)
          .under(kNoDefinitionNeeded)
          .expect(true, Rule, "anything 9000", ""),
      ask("explicit deny", Connect, kBlocked, 80).expect(false, Rule, "deny blocked", "HTTP"),
      ask("no rule matches", Connect, kOther, 2000).expect(false, DefaultDeny, "default-deny", ""),
      ask("protected destination", Connect, kGateway, 2000)
          .toProtected()
          .expect(false, ProtectedDestination, "protected-destination", ""),
      ask("secondary of a live primary (TCP outbound, FTP passive)", Connect, kFtpServer, 2000)
          .with({ftpTo(kOther), ftpTo(kFtpServer)})
          .expect(true, Secondary, "ftp", "FTP", 1),
      ask("secondary of a primary on a v4-mapped address", Connect, kFtpServer, 2000)
          .with({{mapped(kFtpServer), "FTP", "ftp"}})
          .expect(true, Secondary, "ftp", "FTP", 0),
      ask("secondary where no definition covers the port", Connect, kFtpServer, 9000)
          .with({ftpTo(kFtpServer)})
          .expect(true, Secondary, "ftp", "FTP", 0),
      ask("a primary to another host lends nothing", Connect, kOther, 2000)
          .with({ftpTo(kFtpServer)})
          .expect(false, DefaultDeny, "default-deny", ""),
      ask("secondary after its primary ended (no longer among the live ones)", Connect, kFtpServer,
          2000)
          .with({{ip(kFtpServer), "HTTP", "web"}})
          .expect(false, DefaultDeny, "default-deny", ""),
      ask("a primary no definition covered lends nothing", Connect, kFtpServer, 2000)
          .with({{ip(kFtpServer), "", "anything 9000"}})
          .expect(false, DefaultDeny, "default-deny", ""),
      ask("an explicit deny is never opened by a secondary", Connect, kBlocked, 2000)
          .with({ftpTo(kBlocked)})
          .expect(false, Rule, "deny blocked", ""),
      ask("a protected destination is never opened by a secondary", Connect, kGateway, 2000)
          .with({ftpTo(kGateway)})
          .toProtected()
          .expect(false, ProtectedDestination, "protected-destination", ""),
      ask("the gateway's own host may reach it as a secondary", Connect, kGateway, 2000)
          .with({ftpTo(kGateway)})
          .toProtected()
          .fromGatewayHost()
          .expect(true, Secondary, "ftp", "FTP", 0),
      // UDP send: the same rule; a secondary is the client's half of a receive-send one.
      ask("datagram allowed by a rule whose definition covers it", Udp, kTftpServer, 69)
          .expect(true, Rule, "tftp", "TFTP"),
      ask("datagram no definition covers", Udp, kOther, 9000)
          .expect(false, NoDefinition, "anything 9000", ""),
      ask("datagram to the port a contacted server answered from", Udp, kTftpServer, 40000)
          .with({{ip(kTftpServer), "TFTP", "tftp"}})
          .expect(true, Secondary, "tftp", "TFTP", 0),
      ask("datagram to another host's new port", Udp, kOther, 40000)
          .with({{ip(kTftpServer), "TFTP", "tftp"}})
          .expect(false, DefaultDeny, "default-deny", ""),
      ask("a TCP definition's secondaries are not UDP", Udp, kFtpServer, 2000)
          .with({ftpTo(kFtpServer)})
          .expect(false, DefaultDeny, "default-deny", ""),
      // UDP received from a port not sent to: a secondary of a contacted host only.
      ask("reply from a contacted server's new port", UdpSender, kTftpServer, 40000)
          .with({{ip(kTftpServer), "TFTP", "tftp"}})
          .expect(true, Secondary, "tftp", "TFTP", 0),
      ask("datagram from a host never contacted", UdpSender, kOther, 40000)
          .with({{ip(kTftpServer), "TFTP", "tftp"}})
          .expect(false, NoPrimary, "", ""),
      // Listens: a server by its definition and the rules, a secondary by its live primary.
      ask("server bind on a defined port a rule may allow peers on", ListenServer, nullptr, 7777)
          .expect(true, Rule, "(per peer)", "GameServer")
          .listensOn({7777, 7777}),
      ask("server bind no definition covers", ListenServer, nullptr, 7778)
          .expect(false, NoDefinition, "", ""),
      ask("server bind no rule may allow a peer on", ListenServer, nullptr, 6666)
          .expect(false, DefaultDeny, "default-deny", "Closed"),
      ask("secondary listen, port 0: the definition's range", Listen, nullptr, 0)
          .with({{ip(kOther), "HTTP", "web"}, ftpTo(kFtpServer)})
          .expect(true, Secondary, "ftp", "FTP", 1)
          .listensOn(kDynamic),
      ask("secondary listen on a port the definition covers", Listen, nullptr, 3000)
          .with({ftpTo(kFtpServer)})
          .expect(true, Secondary, "ftp", "FTP", 0)
          .listensOn({3000, 3000}),
      ask("secondary listen on a port the definition does not cover", Listen, nullptr, 6000)
          .with({ftpTo(kFtpServer)})
          .expect(false, NoPrimary, "", ""),
      ask("listen with no primary", Listen, nullptr, 0).expect(false, NoPrimary, "", ""),
      ask("listen after its primary ended (one without secondaries left)", Listen, nullptr, 0)
          .with({{ip(kFtpServer), "HTTP", "web"}})
          .expect(false, NoPrimary, "", ""),
      // Peers of a listen.
      ask("peer: the primary's host (secondary_peers = primary)", Peer, kFtpServer, 3000)
          .with({ftpTo(kFtpServer)})
          .expect(true, Secondary, "ftp", "FTP", 0),
      ask("peer: another host (secondary_peers = primary)", Peer, kPartner, 3000)
          .with({ftpTo(kFtpServer)})
          .expect(false, NotPrimaryHost, "ftp", "FTP", 0),
      ask("peer by the rules, through the definition's secondaries", Peer, kPartner, 3000)
          .with({ftpTo(kFtpServer)})
          .under(kPeersByRules)
          .expect(true, Rule, "ftp callbacks", "FTP"),
      ask("peer by the rules: the primary's own host is not special", Peer, kFtpServer, 3000)
          .with({ftpTo(kFtpServer)})
          .under(kPeersByRules)
          .expect(false, DefaultDeny, "default-deny", "FTP"),
      ask("server's peer a rule allows", ServerPeer, kPartner, 7777)
          .expect(true, Rule, "game peers", "GameServer"),
      ask("server's peer no rule allows", ServerPeer, kOther, 7777)
          .expect(false, DefaultDeny, "default-deny", "GameServer"),
  };
  for (const Case& c : cases) {
    ListenDecision listen;
    const FirewallDecision d = run(engine, c, listen);
    EXPECT_EQ(d.allowed, c.allowed) << c.description;
    EXPECT_EQ(d.reason, c.reason) << c.description << ": " << toToken(d.reason);
    EXPECT_EQ(d.rule, c.rule) << c.description;
    EXPECT_EQ(d.definition, c.definition) << c.description;
    EXPECT_EQ(d.primary, c.primary) << c.description;
    if (c.ports) {
      EXPECT_EQ(listen.ports, *c.ports) << c.description;
      EXPECT_EQ(listen.primary.has_value(), c.primary.has_value()) << c.description;
    }
  }
}

TEST(FirewallClientPolicyTest, WhatTheLogAndTheRegistryAreTold) {
  const Engine engine = makeEngine();
  Request connect;
  connect.client = ip(kClient);
  connect.destinationAddress = ip(kFtpServer);
  connect.destinationPort = 21;
  const std::vector<LivePrimary> none;
  const FirewallDecision primary = decideRemoted(engine, connect, none, kDefault);
  ASSERT_TRUE(primary.allowed);
  EXPECT_EQ(primary.loggedDefinition(), "FTP");
  EXPECT_EQ(primary.definitionAsPrimary(), "FTP");  // its secondaries are FTP's

  connect.destinationPort = 2000;
  const std::vector<LivePrimary> live = {ftpTo(kFtpServer)};
  const FirewallDecision secondary = decideRemoted(engine, connect, live, kDefault);
  ASSERT_TRUE(secondary.allowed);
  EXPECT_EQ(secondary.loggedDefinition(), "FTP (secondary)");
  EXPECT_EQ(secondary.definitionAsPrimary(), "");  // a secondary has no secondaries of its own

  connect.destinationPort = 9000;
  const FirewallDecision undefined = decideRemoted(engine, connect, none, kNoDefinitionNeeded);
  ASSERT_TRUE(undefined.allowed);
  EXPECT_EQ(undefined.definitionAsPrimary(), "");
}

TEST(FirewallClientPolicyTest, ReasonTokensRoundTrip) {
  for (const Reason r : kReasons) {
    EXPECT_EQ(reasonFromToken(toToken(r)), r) << toToken(r);
  }
  EXPECT_EQ(toToken(Reason::NoDefinition), "no-definition");
  EXPECT_EQ(toToken(Reason::ProtectedDestination), "protected-destination");
  EXPECT_EQ(reasonFromToken("No-Definition"), std::nullopt);
  EXPECT_EQ(reasonFromToken(""), std::nullopt);
}

TEST(FirewallClientPolicyTest, OutcomeTokensRoundTrip) {
  for (const Outcome o : kOutcomes) {
    EXPECT_EQ(outcomeFromToken(toToken(o)), o) << toToken(o);
    EXPECT_NE(toToken(o), "unknown");
  }
  EXPECT_EQ(toToken(Outcome::BadRequest), "bad-request");
  EXPECT_EQ(toToken(Outcome::RefusedPeer), "refused-peer");
  EXPECT_EQ(outcomeFromToken("BadRequest"), std::nullopt);
  EXPECT_EQ(outcomeFromToken("ok"), std::nullopt);
}

// Published listens: the entries decide the listen, the rules each peer.
Engine publishEngine() {
  std::vector<Network> networks(2);
  networks[0].name = "internal";
  networks[0].ranges = {*IpRange::parse("10.0.0.0/8")};
  networks[1].name = "partners";
  networks[1].ranges = {*IpRange::parse("203.0.113.0/24")};
  Rule peers = rule("published peers", Action::Allow, {}, bit(Command::Bind));
  peers.sources = {"internal"};
  peers.destinations = {"partners"};
  return Engine(std::move(networks), {}, {peers}, builtinProtocols(), kDynamic);
}

TEST(FirewallClientPolicyTest, PublishTable) {
  const Engine engine = publishEngine();
  const std::vector<PublishListen> entries = {
      {"lobby for alice", {"lobby"}, {"alice"}, {}},
      {"game hosts", {"Game-Host", "other"}, {}, {"players"}},
      {"anyone's relay", {"relay"}, {}, {}},
  };
  const GroupMembers groups = {{"players", {"bob", "carol"}}};
  struct Row {
    std::string description;
    std::string application;
    std::optional<std::string> user;
    std::span<const PublishListen> entries;
    bool allowed;
    std::string rule;
  };
  const std::vector<Row> rows = {
      {"named application and user", "lobby", "alice", entries, true, "lobby for alice"},
      {"named application, another user", "lobby", "bob", entries, false, ""},
      {"named application, anonymous", "lobby", std::nullopt, entries, false, ""},
      {"another application", "curl", "alice", entries, false, ""},
      {"a user of a named group, the name's case aside", "game-host", "carol", entries, true,
       "game hosts"},
      {"a user of no named group", "game-host", "alice", entries, false, ""},
      {"an entry naming nobody: any user", "relay", std::nullopt, entries, true, "anyone's relay"},
      {"no application told", "", "alice", entries, false, ""},
      {"not configured (no entries)", "lobby", "alice", {}, false, ""},
  };
  for (const Row& row : rows) {
    Request request;
    request.client = ip(kClient);
    request.command = Command::Bind;
    request.user = row.user;
    const ListenDecision d = decidePublish(engine, request, row.application, row.entries, groups);
    EXPECT_EQ(d.mode, ListenMode::Publish) << row.description;
    EXPECT_EQ(d.admission.allowed, row.allowed) << row.description;
    EXPECT_EQ(d.admission.reason, row.allowed ? Reason::Rule : Reason::NotPublished)
        << row.description;
    EXPECT_EQ(d.admission.rule, row.rule) << row.description;
    EXPECT_EQ(d.admission.definition, "") << row.description;
    EXPECT_EQ(d.ports, kDynamic) << row.description;  // the gateway's dynamic range
    EXPECT_FALSE(d.primary.has_value()) << row.description;
  }

  // Each peer of an allowed published listen, by the rules (on the port the gateway chose).
  Request asked;
  asked.client = ip(kClient);
  asked.user = "alice";
  const ListenDecision listen = decidePublish(engine, asked, "lobby", entries, groups);
  ASSERT_TRUE(listen.admission.allowed);
  const auto peer = [&](const char* host) {
    Request r = asked;
    r.command = Command::Bind;
    r.destinationAddress = ip(host);
    r.destinationPort = 3210;
    return decidePeer(engine, listen, r, kDefault);
  };
  const FirewallDecision partner = peer(kPartner);
  EXPECT_TRUE(partner.allowed);
  EXPECT_EQ(partner.reason, Reason::Rule);
  EXPECT_EQ(partner.rule, "published peers");
  const FirewallDecision other = peer(kOther);
  EXPECT_FALSE(other.allowed);
  EXPECT_EQ(other.reason, Reason::DefaultDeny);
  EXPECT_EQ(other.rule, "default-deny");
  // secondary_peers = "primary" is about secondary listens: a published one has no primary.
  Request r = asked;
  r.command = Command::Bind;
  r.destinationAddress = ip(kPartner);
  r.destinationPort = 3210;
  EXPECT_TRUE(decidePeer(engine, listen, r, kPeersByRules).allowed);
  // The log's denial of a refused listen names no rule.
  const ListenDecision refused = decidePublish(engine, asked, "curl", entries, groups);
  const Denial denial = refused.admission.denial({Transport::Tcp, Direction::Inbound, 0});
  EXPECT_EQ(denial.reason, Reason::NotPublished);
  EXPECT_EQ(denial.rule, "");
  EXPECT_EQ(toToken(Reason::NotPublished), "not-published");
}

}  // namespace

// RemoteBindUdpPorts: a published UDP port (decideUdpListen) and each sender to it
// (decideUdpPeer), against their own rule set.
Engine makeUdpPublishEngine() {
  std::vector<Network> networks(3);
  networks[0].name = "internal";
  networks[0].ranges = {*IpRange::parse("10.0.0.0/8")};
  networks[1].name = "blocked";
  networks[1].ranges = {*IpRange::parse(kBlocked)};
  networks[2].name = "partners";
  networks[2].ranges = {*IpRange::parse("203.0.113.0/24")};
  std::vector<Rule> rules;
  Rule deny = rule("deny blocked", Action::Deny, {});
  deny.destinations = {"blocked"};
  rules.push_back(deny);
  Rule media = rule("media senders", Action::Allow, {"RTP", "SIP"}, bit(Command::Udp));
  media.sources = {"internal"};
  media.destinations = {"partners"};
  rules.push_back(media);
  Rule echo = rule("echo anywhere", Action::Allow, {"Echo"}, bit(Command::Udp));
  echo.sources = {"internal"};
  rules.push_back(echo);
  // A rule for TCP listens only: it never publishes a UDP port.
  Rule tcpOnly = rule("tcp callbacks", Action::Allow, {"Muted"}, bit(Command::Bind));
  tcpOnly.sources = {"internal"};
  rules.push_back(tcpOnly);
  std::vector<ProtocolDefinition> protocols = {
      {"RTP", {PortRange{5004, 5005}, Transport::Udp, Direction::Receive}, {}, false},
      {"SIP", {PortRange{5060, 5060}, Transport::Udp, Direction::ReceiveSend}, {}, false},
      {"Muted", {PortRange{5008, 5008}, Transport::Udp, Direction::Receive}, {}, false},
      {"Echo", {PortRange{9999, 9999}, Transport::Udp, Direction::SendReceive}, {}, false},
      {"MediaTcp", {PortRange{5010, 5010}, Transport::Tcp, Direction::Inbound}, {}, false},
  };
  return Engine(std::move(networks), {}, std::move(rules), std::move(protocols), kDynamic);
}

TEST(FirewallClientPolicyTest, PublishedUdpTable) {
  const Engine engine = makeUdpPublishEngine();
  using enum Reason;
  struct Row {
    const char* description;
    std::uint16_t port;
    const char* sender;  // nullptr: the publish itself
    bool allowed;
    Reason reason;
    std::string rule;
    std::string definition;
  };
  const std::vector<Row> rows = {
      {"publish: inbound UDP definition, a rule for some sender", 5004, nullptr, true, Rule,
       "(per peer)", "RTP"},
      {"publish: the definition's range", 5005, nullptr, true, Rule, "(per peer)", "RTP"},
      {"publish: receive-send counts as inbound", 5060, nullptr, true, Rule, "(per peer)", "SIP"},
      {"publish: no definition covers the port", 5006, nullptr, false, NoDefinition, "", ""},
      {"publish: port 0 names no definition", 0, nullptr, false, NoDefinition, "", ""},
      {"publish: a send-receive (outbound) definition is not inbound", 9999, nullptr, false,
       NoDefinition, "", ""},
      {"publish: a TCP inbound definition is not UDP", 5010, nullptr, false, NoDefinition, "", ""},
      {"publish: no udp rule may allow a sender", 5008, nullptr, false, DefaultDeny, "default-deny",
       "Muted"},
      {"sender a rule allows", 5004, kPartner, true, Rule, "media senders", "RTP"},
      {"sender as a v4-mapped address", 5004, "::ffff:203.0.113.9", true, Rule, "media senders",
       "RTP"},
      {"sender no rule allows", 5004, kOther, false, DefaultDeny, "default-deny", "RTP"},
      {"sender a deny rule names", 5004, kBlocked, false, Rule, "deny blocked", "RTP"},
      {"sender to a refused publish", 5008, kPartner, false, DefaultDeny, "default-deny", "Muted"},
  };
  for (const Row& row : rows) {
    Request request;
    request.client = ip(kClient);
    request.destinationPort = row.port;
    const FirewallDecision listen = decideUdpListen(engine, request);
    FirewallDecision d = listen;
    if (row.sender != nullptr) {
      Request from = request;
      from.destinationAddress = ip(row.sender);
      d = decideUdpPeer(engine, listen, from);
    }
    EXPECT_EQ(d.allowed, row.allowed) << row.description;
    EXPECT_EQ(d.reason, row.reason) << row.description << ": " << toToken(d.reason);
    EXPECT_EQ(d.rule, row.rule) << row.description;
    EXPECT_EQ(d.definition, row.definition) << row.description;
  }
  // A sender's denial as the session log records it: the sender is the host, a peer.
  Request request;
  request.client = ip(kClient);
  request.destinationPort = 5004;
  Request from = request;
  from.destinationAddress = ip(kOther);
  const FirewallDecision d = decideUdpPeer(engine, decideUdpListen(engine, request), from);
  const Denial denial =
      d.denial({Transport::Udp, Direction::Receive, 5004}, std::string(kOther), true);
  EXPECT_EQ(denial.reason, DefaultDeny);
  EXPECT_EQ(denial.transport, Transport::Udp);
  EXPECT_EQ(denial.direction, Direction::Receive);
  EXPECT_EQ(denial.definition, "RTP");
  EXPECT_EQ(denial.host, kOther);
  EXPECT_TRUE(denial.peer);
}

}  // namespace fwgate::policy
