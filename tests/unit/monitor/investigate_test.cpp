// `fwgate monitor --log`: session-log lines shaped as the gateway writes them (SessionRecord::
// toJson; errors from control_session.cpp, control_udp.cpp, control_listen.cpp, socks_*.cpp)
// through investigate(), and the definitions it proposes through the configuration parser.
#include "monitor/investigate.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "monitor/snippet.hpp"

namespace fwgate::monitor {
namespace {

using policy::Direction;
using policy::ProtocolDefinition;
using policy::Transport;

Investigation run(const std::string& log, const InvestigateOptions& options = {}) {
  std::istringstream in(log);
  return investigate(in, options);
}

// A firewall client's remoted connect (control_session.cpp), denied.
std::string fwcConnect(const std::string& time, const std::string& client, const std::string& app,
                       const std::string& requested, const std::string& rule,
                       const std::string& error) {
  return R"({"time":")" + time + R"(","duration_ms":0,"client":")" + client +
         R"(","user":null,"protocol":"fwc","host":"ws1","application":")" + app +
         R"(","os_user":"alice","command":"connect","requested":")" + requested +
         R"(","resolved":"","rule":")" + rule +
         R"(","result":"denied by the gateway's rules","reply":-1,"bytes_up":0,"bytes_down":0,)" +
         R"("error":")" + error + "\"}\n";
}

std::string undefinedConnect(const std::string& time, const std::string& client,
                             const std::string& app, const std::string& host, int port) {
  return fwcConnect(time, client, app, host + ":" + std::to_string(port), "internal clients",
                    "no protocol definition covers tcp outbound port " + std::to_string(port));
}

const std::string kSocksDenied443 =
    R"({"time":"2026-11-24T10:05:00.250Z","duration_ms":1,"client":"10.1.1.3:50000","user":"bob",)"
    R"("protocol":"socks5","command":"connect","requested":"www.example.com:443","resolved":"",)"
    R"("rule":"no web","definition":"HTTPS","result":"not-allowed","reply":2,"bytes_up":0,)"
    R"("bytes_down":0,"error":"denied by no web"})"
    "\n";

const std::string kSucceeded =
    R"({"time":"2026-11-24T10:00:00.000Z","duration_ms":120,"client":"127.0.0.1:41000",)"
    R"("user":null,"protocol":"socks5","command":"connect","requested":"127.0.0.1:8080",)"
    R"("resolved":"127.0.0.1:8080","rule":"loopback","definition":"HTTP-Alt",)"
    R"("result":"succeeded","reply":0,"bytes_up":5,"bytes_down":5})"
    "\n";

// The definitions, after a rule, as `fwgate config check` reads them.
testing::AssertionResult parses(const std::vector<ProtocolDefinition>& definitions) {
  std::string text = "[[rules]]\naction = \"allow\"\nsources = [\"loopback\"]\n";
  for (const auto& d : definitions) (text += '\n') += definitionToml(d);
  const auto result = config::parseConfig(text, "proposed.toml");
  if (result.ok()) return testing::AssertionSuccess();
  auto failure = testing::AssertionFailure() << text;
  for (const auto& e : result.errors) failure << "\nerror: " << e.toString();
  return failure;
}

TEST(InvestigateTest, EmptyInput) {
  const auto result = run("");
  EXPECT_EQ(result.lines, 0u);
  EXPECT_EQ(result.denials, 0u);
  EXPECT_TRUE(result.findings.empty());
  EXPECT_EQ(render(result), "0 log lines, 0 denied attempts in 0 groups\n");
}

TEST(InvestigateTest, MissingDefinitionProposesOneThatParses) {
  const auto result = run(
      kSucceeded +
      undefinedConnect("2026-11-24T10:00:01.120Z", "10.1.1.2:40112", "curl", "203.0.113.7", 8443) +
      undefinedConnect("2026-11-24T10:00:03.500Z", "10.1.1.2:40114", "curl", "203.0.113.7", 8443) +
      undefinedConnect("2026-11-24T10:00:05.010Z", "10.1.1.2:40116", "curl", "api.example.net",
                       8443));
  EXPECT_EQ(result.lines, 4u);
  EXPECT_EQ(result.succeeded, 1u);
  EXPECT_EQ(result.denials, 3u);
  ASSERT_EQ(result.findings.size(), 1u);
  const Finding& f = result.findings[0];
  EXPECT_EQ(f.kind, DenialKind::NoDefinition);
  EXPECT_EQ(f.transport, Transport::Tcp);
  EXPECT_EQ(f.direction, Direction::Outbound);
  EXPECT_EQ(f.port, 8443);
  EXPECT_EQ(f.application, "curl");
  EXPECT_EQ(f.count, 3u);
  EXPECT_EQ(f.destinations, (std::vector<std::string>{"203.0.113.7", "api.example.net"}));
  EXPECT_EQ(f.clients, (std::vector<std::string>{"10.1.1.2"}));
  EXPECT_EQ(f.users, (std::vector<std::string>{"alice"}));
  EXPECT_EQ(f.firstTime, "2026-11-24T10:00:01.120Z");
  EXPECT_EQ(f.lastTime, "2026-11-24T10:00:05.010Z");
  EXPECT_EQ(f.exampleLine, 2u);
  EXPECT_TRUE(f.covering.empty());
  ASSERT_TRUE(f.proposed.has_value());
  EXPECT_EQ(f.proposed->name, "CustomApp");
  EXPECT_EQ(f.proposed->primary.ports, (policy::PortRange{8443, 8443}));
  EXPECT_NE(f.suggestion.find("rule \"internal clients\" already allows it"), std::string::npos);
  ASSERT_EQ(result.proposed.size(), 1u);
  EXPECT_TRUE(parses(result.proposed));

  const std::string report = render(result);
  EXPECT_NE(report.find("denied 3x  tcp outbound port 8443  (no protocol definition covers it)\n"
                        "  from 10.1.1.2 (curl, user alice) to 203.0.113.7:8443, "
                        "api.example.net:8443, 2026-11-24T10:00:01 .. 10:00:05, log line 2\n"
                        "  would be allowed by a new definition:\n"
                        "    [protocols.CustomApp]\n    port = 8443\n"),
            std::string::npos)
      << report;
  EXPECT_EQ(report.rfind("4 log lines, 3 denied attempts in 1 group; 1 succeeded\n", 0), 0u)
      << report;
}

TEST(InvestigateTest, Port443DeniedByARuleNamesHttps) {
  const auto result = run(kSocksDenied443);
  ASSERT_EQ(result.findings.size(), 1u);
  const Finding& f = result.findings[0];
  EXPECT_EQ(f.kind, DenialKind::Rule);
  EXPECT_EQ(f.port, 443);
  EXPECT_EQ(f.rules, (std::vector<std::string>{"no web"}));
  EXPECT_EQ(f.covering, "HTTPS");
  EXPECT_FALSE(f.proposed.has_value());
  EXPECT_TRUE(result.proposed.empty());
  EXPECT_NE(f.suggestion.find("rule \"no web\" denies it"), std::string::npos) << f.suggestion;
  EXPECT_NE(f.suggestion.find("protocols = [\"HTTPS\"]"), std::string::npos) << f.suggestion;
  const std::string report = render(result);
  EXPECT_NE(report.find("denied 1x  tcp outbound port 443  (denied by rule \"no web\")\n"
                        "  from 10.1.1.3 (socks5, user bob) to www.example.com:443, "
                        "2026-11-24T10:05:00, log line 1\n"),
            std::string::npos)
      << report;

  // The default deny, from a firewall client: the same definition, another remedy.
  const auto fallback =
      run(fwcConnect("2026-11-24T10:06:00.000Z", "10.1.1.2:40300", "firefox", "[2001:db8::7]:443",
                     "default-deny", "denied by default-deny"));
  ASSERT_EQ(fallback.findings.size(), 1u);
  EXPECT_EQ(fallback.findings[0].covering, "HTTPS");
  EXPECT_EQ(fallback.findings[0].destinations, (std::vector<std::string>{"2001:db8::7"}));
  EXPECT_NE(fallback.findings[0].suggestion.find("no rule allows it: add \"HTTPS\" to the "
                                                 "protocols"),
            std::string::npos)
      << fallback.findings[0].suggestion;
  const std::string report2 = render(fallback);
  EXPECT_NE(report2.find("(no rule allows it)"), std::string::npos) << report2;
  EXPECT_NE(report2.find("to [2001:db8::7]:443,"), std::string::npos) << report2;
}

TEST(InvestigateTest, GroupsByPortAndApplicationAndCounts) {
  std::string log;
  for (int i = 0; i < 3; ++i) {
    log += undefinedConnect("2026-11-24T10:00:0" + std::to_string(i) + ".000Z", "10.1.1.2:4000",
                            "curl", "203.0.113.7", 8443);
  }
  log += undefinedConnect("2026-11-24T10:01:00.000Z", "10.1.1.4:4000", "wget", "203.0.113.7", 8443);
  log += undefinedConnect("2026-11-24T10:02:00.000Z", "10.1.1.5:4000", "wget", "203.0.113.7", 8443);
  log += undefinedConnect("2026-11-24T10:03:00.000Z", "10.1.1.2:4000", "curl", "203.0.113.9", 9000);
  log += kSocksDenied443;
  const auto result = run(log);
  EXPECT_EQ(result.denials, 7u);
  ASSERT_EQ(result.findings.size(), 4u);
  EXPECT_EQ(result.findings[0].count, 3u);
  EXPECT_EQ(result.findings[0].application, "curl");
  EXPECT_EQ(result.findings[1].count, 2u);
  EXPECT_EQ(result.findings[1].application, "wget");
  EXPECT_EQ(result.findings[1].clients, (std::vector<std::string>{"10.1.1.4", "10.1.1.5"}));
  EXPECT_EQ(result.findings[2].port, 9000);
  EXPECT_EQ(result.findings[3].port, 443);
  // One definition per port, whichever program needs it; names made unique.
  ASSERT_EQ(result.proposed.size(), 2u);
  EXPECT_EQ(result.proposed[0].name, "CustomApp");
  EXPECT_EQ(result.proposed[1].name, "CustomApp-2");
  EXPECT_EQ(result.findings[1].proposed->name, "CustomApp");
  EXPECT_EQ(result.findings[2].proposed->name, "CustomApp-2");
  EXPECT_TRUE(parses(result.proposed));
  const std::string report = render(result);
  EXPECT_NE(report.find("would be allowed by [protocols.CustomApp] above"), std::string::npos)
      << report;

  // A name the configuration already has (case-insensitively) is not reused.
  InvestigateOptions options;
  options.name = "https";
  const auto renamed = run(log, options);
  ASSERT_EQ(renamed.proposed.size(), 2u);
  EXPECT_EQ(renamed.proposed[0].name, "https-2");
  EXPECT_EQ(renamed.proposed[1].name, "https-3");
  EXPECT_TRUE(parses(renamed.proposed));
}

TEST(InvestigateTest, UdpDatagramNoDefinitionCovers) {
  const std::string line =
      R"({"time":"2026-11-24T11:00:00.000Z","duration_ms":2000,"client":"10.1.1.2:40500",)"
      R"("user":null,"protocol":"fwc","host":"ws1","application":"python3","os_user":"alice",)"
      R"("command":"udp","requested":"","resolved":"","bound":"10.1.1.1:40001",)"
      R"("rule":"no-definition","result":"succeeded","reply":-1,"bytes_up":0,"bytes_down":0,)"
      R"("datagrams_up":0,"datagrams_down":0,)"
      R"("error":"no protocol definition covers udp send port 9999"})"
      "\n";
  const auto result = run(line);
  ASSERT_EQ(result.findings.size(), 1u);
  const Finding& f = result.findings[0];
  EXPECT_EQ(f.kind, DenialKind::NoDefinition);
  EXPECT_EQ(f.transport, Transport::Udp);
  EXPECT_EQ(f.direction, Direction::Send);
  EXPECT_EQ(f.port, 9999);
  EXPECT_EQ(result.succeeded, 0u);
  ASSERT_TRUE(f.proposed.has_value());
  EXPECT_TRUE(parses(result.proposed));
  EXPECT_NE(render(result).find("denied 1x  udp send port 9999"), std::string::npos);
}

TEST(InvestigateTest, RefusedAcceptSuggestsSecondaryPeers) {
  const std::string refused =
      R"({"time":"2026-11-24T12:00:00.000Z","duration_ms":0,"client":"10.1.1.2:40600",)"
      R"("user":null,"protocol":"fwc","host":"ws1","application":"python3","os_user":"alice",)"
      R"("command":"accept","requested":"198.51.100.1:4123","resolved":"203.0.113.53:51234",)"
      R"("bound":"198.51.100.1:4123","rule":"callback","definition":"Callback",)"
      R"("result":"refused","reply":-1,"bytes_up":0,"bytes_down":0,)"
      R"("error":"peer 203.0.113.53:51234 refused: only 203.0.113.7, the host of the primary )"
      R"(connection, may connect"})"
      "\n";
  const auto result = run(refused);
  ASSERT_EQ(result.findings.size(), 1u);
  const Finding& f = result.findings[0];
  EXPECT_EQ(f.kind, DenialKind::RefusedPeer);
  EXPECT_EQ(f.direction, Direction::Inbound);
  EXPECT_EQ(f.port, 0);  // a secondary listen: a dynamic port
  EXPECT_EQ(f.destinations, (std::vector<std::string>{"203.0.113.53"}));
  EXPECT_TRUE(f.rules.empty());
  EXPECT_NE(f.suggestion.find("secondary_peers = \"rules\""), std::string::npos) << f.suggestion;
  EXPECT_NE(f.suggestion.find("protocols = [\"Callback\"]"), std::string::npos) << f.suggestion;
  EXPECT_NE(f.suggestion.find("nothing to do"), std::string::npos) << f.suggestion;
  const std::string report = render(result);
  EXPECT_NE(report.find("refused 1x  tcp inbound to a listen on a dynamic port  (only the primary "
                        "connection's host may connect)\n  peer 203.0.113.53 to 10.1.1.2 "
                        "(python3, user alice)"),
            std::string::npos)
      << report;

  // A server's listen (its definition's primary connection is inbound): peers by the rules.
  InvestigateOptions options;
  options.definitions.insert(
      options.definitions.begin(),
      ProtocolDefinition{"GameServer", {{4000, 4000}, Transport::Tcp, Direction::Inbound}, {}});
  std::string server = refused;
  server.replace(server.find("4123"), 4, "4000");
  server.replace(server.find("4123"), 4, "4000");
  server.replace(server.find("Callback"), 8, "GameServer");
  server.replace(server.find("only 203.0.113.7"), std::string::npos, "denied by default-deny\"}\n");
  const auto served = run(server + server, options);
  ASSERT_EQ(served.findings.size(), 1u);
  EXPECT_EQ(served.findings[0].count, 2u);
  EXPECT_EQ(served.findings[0].port, 4000);
  EXPECT_EQ(served.findings[0].rules, (std::vector<std::string>{"default-deny"}));
  EXPECT_NE(served.findings[0].suggestion.find("no rule allows them"), std::string::npos);

  // A refusal for the session limit is not the policy's.
  std::string limited = refused;
  limited.replace(limited.find("only 203.0.113.7"), std::string::npos, "session limit\"}\n");
  const auto busy = run(limited);
  EXPECT_TRUE(busy.findings.empty());
  EXPECT_EQ(busy.otherRefusals, 1u);
}

TEST(InvestigateTest, RemotedListensWithoutADefinition) {
  const std::string head =
      R"({"time":"2026-11-24T13:00:01.000Z","duration_ms":0,"client":"10.1.1.2:40700",)"
      R"("user":null,"protocol":"fwc","host":"ws1","application":"ftpish","os_user":"alice",)";
  const std::string serverListen =
      head +
      R"x("command":"listen-server","requested":"0.0.0.0:4500","resolved":"","rule":"(per peer)",)x"
      R"("result":"denied by the gateway's rules","reply":-1,"bytes_up":0,"bytes_down":0,)"
      R"("error":"no protocol definition covers inbound TCP port 4500"})"
      "\n";
  // The program's primary connection, logged when it ends (after its listen).
  const std::string primary =
      R"({"time":"2026-11-24T13:00:00.000Z","duration_ms":9000,"client":"10.1.1.2:40690",)"
      R"("user":null,"protocol":"fwc","host":"ws1","application":"ftpish","os_user":"alice",)"
      R"("command":"connect","requested":"203.0.113.7:80","resolved":"203.0.113.7:80",)"
      R"("bound":"198.51.100.1:40000","rule":"web","definition":"HTTP","result":"succeeded",)"
      R"("reply":-1,"bytes_up":10,"bytes_down":10})"
      "\n";
  const std::string secondaryListen =
      head +
      R"("command":"listen","requested":"10.1.1.2:0","resolved":"","rule":"",)"
      R"("result":"denied by the gateway's rules","reply":-1,"bytes_up":0,"bytes_down":0,)"
      R"("error":"no primary connection of ftpish (pid 4242) whose protocol definition has an )"
      R"(inbound TCP secondary connection"})"
      "\n";
  const auto result = run(serverListen + secondaryListen + primary);
  EXPECT_EQ(result.succeeded, 1u);
  ASSERT_EQ(result.findings.size(), 2u);
  const Finding& server = result.findings[0];
  EXPECT_EQ(server.kind, DenialKind::ListenNoDefinition);
  EXPECT_EQ(server.port, 4500);
  ASSERT_TRUE(server.proposed.has_value());
  EXPECT_EQ(server.proposed->primary.direction, Direction::Inbound);
  EXPECT_FALSE(server.proposedExtends);
  const Finding& secondary = result.findings[1];
  EXPECT_EQ(secondary.kind, DenialKind::ListenNoDefinition);
  EXPECT_EQ(secondary.port, 0);
  ASSERT_TRUE(secondary.proposed.has_value());
  EXPECT_EQ(secondary.proposed->name, "HTTP");  // the primary connection's definition, extended
  EXPECT_TRUE(secondary.proposedExtends);
  ASSERT_EQ(secondary.proposed->secondary.size(), 1u);
  EXPECT_TRUE(secondary.proposed->secondary[0].anyDynamicPort());
  EXPECT_EQ(secondary.proposed->secondary[0].direction, Direction::Inbound);
  EXPECT_TRUE(parses(result.proposed));
  const std::string report = render(result);
  EXPECT_NE(report.find("would be allowed by \"HTTP\" extended:\n    [protocols.HTTP]\n"),
            std::string::npos)
      << report;

  // Without its primary connection in the log: what to add, as text.
  const auto alone = run(secondaryListen);
  ASSERT_EQ(alone.findings.size(), 1u);
  EXPECT_FALSE(alone.findings[0].proposed.has_value());
  EXPECT_NE(alone.findings[0].suggestion.find(
                R"({ ports = 0, transport = "tcp", direction = "inbound" })"),
            std::string::npos)
      << alone.findings[0].suggestion;
}

TEST(InvestigateTest, ClientFilter) {
  const std::string log =
      undefinedConnect("2026-11-24T10:00:01.000Z", "10.1.1.2:40112", "curl", "203.0.113.7", 8443) +
      undefinedConnect("2026-11-24T10:00:02.000Z", "10.1.1.9:40112", "curl", "203.0.113.7", 8443) +
      fwcConnect("2026-11-24T10:00:03.000Z", "[2001:db8::9]:40112", "curl", "203.0.113.7:8443",
                 "internal clients", "no protocol definition covers tcp outbound port 8443");
  InvestigateOptions options;
  options.client = policy::IpAddress::parse("10.1.1.9");
  const auto one = run(log, options);
  EXPECT_EQ(one.denials, 1u);
  EXPECT_EQ(one.otherClients, 2u);
  ASSERT_EQ(one.findings.size(), 1u);
  EXPECT_EQ(one.findings[0].clients, (std::vector<std::string>{"10.1.1.9"}));
  EXPECT_NE(render(one).find("2 of other clients"), std::string::npos);

  options.client = policy::IpAddress::parse("2001:db8::9");
  const auto v6 = run(log, options);
  ASSERT_EQ(v6.findings.size(), 1u);
  EXPECT_EQ(v6.findings[0].clients, (std::vector<std::string>{"2001:db8::9"}));
}

TEST(InvestigateTest, DroppedRecordLinesAreCountedNotTakenForSessions) {
  const std::string log =
      kSucceeded + R"({"time":"2026-11-24T10:00:01.000Z","dropped_records":7})" + "\n" +
      kSocksDenied443 + R"({"time":"2026-11-24T10:00:02.000Z","dropped_records":5})" + "\n";
  const auto result = run(log);
  EXPECT_EQ(result.lines, 4u);
  EXPECT_EQ(result.sessions, 2u);
  EXPECT_EQ(result.droppedRecords, 12u);
  EXPECT_EQ(result.unreadable, 0u);
  EXPECT_EQ(result.other, 0u);
  EXPECT_EQ(result.denials, 1u);
  EXPECT_NE(render(result).find("12 sessions not logged (the gateway's log queue was full)"),
            std::string::npos)
      << render(result);
}

TEST(InvestigateTest, UnreadableLinesAreCountedNeverThrown) {
  const std::string log = kSucceeded + "not json at all\n" + "\n" +
                          R"({"time":"2026-11-24T10:00:00.000Z","client":)" + "\n" + "[1,2,3]\n" +
                          "\xff\xfe{}\n" + kSocksDenied443 + R"({"command":42,"result":null})" +
                          "\n";
  Investigation result;
  ASSERT_NO_THROW(result = run(log));
  EXPECT_EQ(result.lines, 8u);
  EXPECT_EQ(result.unreadable, 4u);
  EXPECT_EQ(result.firstUnreadableLine, 2u);
  EXPECT_EQ(result.sessions, 3u);
  EXPECT_EQ(result.denials, 1u);
  EXPECT_EQ(result.other, 1u);
  EXPECT_NE(render(result).find("4 unreadable (first: line 2)"), std::string::npos);
}

TEST(InvestigateTest, OutcomesThatAreNotDenialsAreOnlyCounted) {
  const auto line = [](const std::string& protocol, const std::string& command,
                       const std::string& result, const std::string& error) {
    return R"({"time":"2026-11-24T10:00:00.000Z","client":"10.1.1.2:1","user":null,"protocol":")" +
           protocol + R"(","command":")" + command +
           R"(","requested":"203.0.113.7:25","resolved":"","rule":"mail","result":")" + result +
           R"(","reply":5,"bytes_up":0,"bytes_down":0,"error":")" + error + "\"}\n";
  };
  const auto result = run(
      line("socks5", "connect", "refused", "connect 203.0.113.7:25: Connection refused") +
      line("socks5", "none", "handshake-timeout", "") + line("socks5", "none", "bad-version", "") +
      line("socks5", "none", "closed-in-handshake", "") +
      line("socks5", "none", "auth-failed", "") +
      line("socks4", "connect", "not-allowed",
           "listener requires authentication; SOCKS 4 has none") +
      line("fwc", "connect", "connection refused", "connect 203.0.113.7:25: Connection refused") +
      line("fwc", "listen", "succeeded", "no connection within bind_timeout"));
  EXPECT_TRUE(result.findings.empty());
  EXPECT_EQ(result.denials, 0u);
  EXPECT_EQ(result.failed, 2u);
  EXPECT_EQ(result.timeouts, 1u);
  EXPECT_EQ(result.malformed, 1u);
  EXPECT_EQ(result.clientClosed, 1u);
  EXPECT_EQ(result.authFailures, 1u);
  EXPECT_EQ(result.otherRefusals, 1u);
  EXPECT_EQ(result.succeeded, 1u);
}

// Lines with the gateway's fields (outcome, denial): read from the fields, whatever the prose.
std::string fielded(const std::string& protocol, const std::string& command,
                    const std::string& requested, const std::string& outcome,
                    const std::string& denial, const std::string& error,
                    const std::string& extra = "") {
  return R"({"time":"2026-11-25T09:00:00.000Z","duration_ms":0,"client":"10.1.1.2:41000",)"
         R"("user":null,"protocol":")" +
         protocol + R"(","host":"ws1","application":"app","os_user":"alice","command":")" +
         command + R"(","requested":")" + requested + R"(","resolved":"","rule":"legacy",)" +
         R"("result":"whatever the old words were","reply":-1,"bytes_up":0,"bytes_down":0,)" +
         extra + R"("outcome":")" + outcome + "\"" +
         (denial.empty() ? std::string() : R"(,"denial":)" + denial) +
         (error.empty() ? std::string() : R"(,"error":")" + error + "\"") + "}\n";
}

std::string denialJson(const std::string& reason, const std::string& transport,
                       const std::string& direction, int port, const std::string& definition,
                       const std::string& rule, const std::string& host = "", bool peer = false) {
  return R"({"definition":")" + definition + R"(","direction":")" + direction + R"(","host":")" +
         host + R"(","peer":)" + (peer ? "true" : "false") + R"(,"port":)" + std::to_string(port) +
         R"(,"reason":")" + reason + R"(","rule":")" + rule + R"(","transport":")" + transport +
         R"("})";
}

TEST(InvestigateTest, TheGatewaysFieldsDecideNotItsWords) {
  struct Case {
    std::string description;
    std::string line;
    DenialKind kind;
    Transport transport;
    Direction direction;
    std::uint16_t port;
    std::vector<std::string> destinations;
    std::vector<std::string> rules;
    std::string definition;
  };
  const std::vector<Case> cases = {
      {"connect no definition covers",
       fielded("fwc", "connect", "203.0.113.7:8443", "denied",
               denialJson("no-definition", "tcp", "outbound", 8443, "", "internal clients"),
               "words that say nothing"),
       DenialKind::NoDefinition,
       Transport::Tcp,
       Direction::Outbound,
       8443,
       {"203.0.113.7"},
       {"internal clients"},
       ""},
      {"a datagram's denial survives the idle timeout",
       fielded(
           "fwc", "udp", "", "succeeded",
           denialJson("no-definition", "udp", "send", 9999, "", "internal clients", "203.0.113.9"),
           "udp idle timeout", R"("datagrams_up":3,"datagrams_down":3,)"),
       DenialKind::NoDefinition,
       Transport::Udp,
       Direction::Send,
       9999,
       {"203.0.113.9"},
       {"internal clients"},
       ""},
      {"a SOCKS datagram a rule denies, with its port",
       fielded("socks5", "udp", "0.0.0.0:0", "succeeded",
               denialJson("rule", "udp", "send", 53, "DNS", "no dns", "203.0.113.53"), "",
               R"("datagrams_up":0,"datagrams_down":0,)"),
       DenialKind::Rule,
       Transport::Udp,
       Direction::Send,
       53,
       {"203.0.113.53"},
       {"no dns"},
       "DNS"},
      {"server listen no definition covers",
       fielded("fwc", "listen-server", "0.0.0.0:4500", "denied",
               denialJson("no-definition", "tcp", "inbound", 4500, "", ""), ""),
       DenialKind::ListenNoDefinition,
       Transport::Tcp,
       Direction::Inbound,
       4500,
       {},
       {},
       ""},
      {"secondary listen with no primary",
       fielded("fwc", "listen", "10.1.1.2:0", "denied",
               denialJson("no-primary", "tcp", "inbound", 0, "", ""), ""),
       DenialKind::ListenNoDefinition,
       Transport::Tcp,
       Direction::Inbound,
       0,
       {},
       {},
       ""},
      {"server listen no rule allows",
       fielded("fwc", "listen-server", "0.0.0.0:7777", "denied",
               denialJson("default-deny", "tcp", "inbound", 7777, "GameServer", "default-deny"),
               ""),
       DenialKind::Rule,
       Transport::Tcp,
       Direction::Inbound,
       7777,
       {},
       {"default-deny"},
       "GameServer"},
      {"a peer other than the primary's host",
       fielded("fwc", "accept", "198.51.100.1:4123", "refused-peer",
               denialJson("not-primary-host", "tcp", "inbound", 0, "FTP", "", "203.0.113.53", true),
               ""),
       DenialKind::RefusedPeer,
       Transport::Tcp,
       Direction::Inbound,
       0,
       {"203.0.113.53"},
       {},
       "FTP"},
      {"a server's peer no rule allows",
       fielded("fwc", "accept", "198.51.100.1:7777", "refused-peer",
               denialJson("default-deny", "tcp", "inbound", 7777, "GameServer", "default-deny",
                          "203.0.113.54", true),
               ""),
       DenialKind::RefusedPeer,
       Transport::Tcp,
       Direction::Inbound,
       7777,
       {"203.0.113.54"},
       {"default-deny"},
       "GameServer"},
      {"a SOCKS BIND's peer not the one requested",
       fielded("socks5", "bind", "203.0.113.7:0", "timed-out",
               denialJson("not-requested-peer", "tcp", "inbound", 0, "", "", "203.0.113.66", true),
               "no connection within bind_timeout"),
       DenialKind::RefusedPeer,
       Transport::Tcp,
       Direction::Inbound,
       0,
       {"203.0.113.66"},
       {},
       ""},
      {"a SOCKS connect a rule denies",
       fielded("socks5", "connect", "www.example.com:443", "denied",
               denialJson("rule", "tcp", "outbound", 443, "HTTPS", "no web"),
               "no protocol definition covers tcp outbound port 1"),
       DenialKind::Rule,
       Transport::Tcp,
       Direction::Outbound,
       443,
       {"www.example.com"},
       {"no web"},
       "HTTPS"},
  };
  for (const Case& c : cases) {
    const auto result = run(c.line);
    ASSERT_EQ(result.findings.size(), 1u) << c.description;
    const Finding& f = result.findings[0];
    EXPECT_EQ(f.kind, c.kind) << c.description;
    EXPECT_EQ(f.transport, c.transport) << c.description;
    EXPECT_EQ(f.direction, c.direction) << c.description;
    EXPECT_EQ(f.port, c.port) << c.description;
    EXPECT_EQ(f.destinations, c.destinations) << c.description;
    EXPECT_EQ(f.rules, c.rules) << c.description;
    EXPECT_EQ(f.definition, c.definition) << c.description;
    EXPECT_EQ(result.succeeded + result.other + result.otherRefusals, 0u) << c.description;
  }
}

TEST(InvestigateTest, OutcomesWithoutADenialAreCountedByTheirToken) {
  const auto line = [](const std::string& outcome, const std::string& error = "") {
    // The prose says "denied by": the outcome says otherwise, and wins.
    return fielded("socks5", "connect", "203.0.113.7:25", outcome, "",
                   error.empty() ? "denied by mail" : error);
  };
  const auto result =
      run(line("succeeded") + line("listening") + line("destination-failed") +
          line("client-unreachable") + line("gateway-failed") + line("handshake-timeout") +
          line("timed-out") + line("client-closed") + line("bad-request") + line("auth-failed") +
          line("not-allowed") + line("not-firewall-client") + line("session-limit") +
          line("stopped", "the gateway stopped") + line("a-token-from-the-future"));
  EXPECT_TRUE(result.findings.empty());
  EXPECT_EQ(result.succeeded, 2u);
  EXPECT_EQ(result.failed, 3u);
  EXPECT_EQ(result.timeouts, 2u);
  EXPECT_EQ(result.clientClosed, 1u);
  EXPECT_EQ(result.malformed, 1u);
  EXPECT_EQ(result.authFailures, 1u);
  EXPECT_EQ(result.otherRefusals, 3u);
  EXPECT_EQ(result.stopped, 1u);
  EXPECT_EQ(result.other, 1u);
  EXPECT_NE(render(result).find("1 stopped by the gateway"), std::string::npos) << render(result);
  // The Web Proxy asking who the client is (407) is authentication, not a denial.
  const auto asked =
      run(fielded("http", "http", "www.example.com:80", "denied",
                  denialJson("needs-user", "tcp", "outbound", 80, "HTTP", "staff"), ""));
  EXPECT_TRUE(asked.findings.empty());
  EXPECT_EQ(asked.authFailures, 1u);
  // A denial field that is not whole is not taken for one: the line counts by its outcome.
  const auto broken = run(fielded("fwc", "connect", "203.0.113.7:80", "denied",
                                  R"({"reason":"no-such-reason","transport":"tcp"})", ""));
  EXPECT_TRUE(broken.findings.empty());
  EXPECT_EQ(broken.otherRefusals, 1u);
}

TEST(InvestigateTest, OldLinesSpellingsStillCount) {
  // The control channel's listen once wrote "BadRequest" where everything else wrote
  // "bad-request"; both are malformed requests.
  const std::string old =
      R"({"time":"2026-11-24T10:00:00.000Z","client":"10.1.1.2:1","user":null,"protocol":"fwc",)"
      R"("command":"listen","requested":"","resolved":"","rule":"","result":"BadRequest",)"
      R"("reply":-1,"bytes_up":0,"bytes_down":0,"error":"malformed Bind"})"
      "\n";
  std::string current = old;
  current.replace(current.find("BadRequest"), 10, "bad-request");
  const auto result = run(old + current);
  EXPECT_EQ(result.malformed, 2u);
}

// A port scan through a firewall client: thousands of groups, each needing a new definition.
TEST(InvestigateTest, PortScanIsNamedUniquelyAndRenderedBounded) {
  constexpr int kPorts = 5000;
  std::string log;
  for (int i = 0; i < kPorts; ++i) {
    log += undefinedConnect("2026-11-24T10:00:00.000Z", "10.1.1.2:40000", "nmap", "203.0.113.7",
                            20000 + i);
  }
  // Two more attempts on one port: that group first, the rest in log order.
  log +=
      undefinedConnect("2026-11-24T10:00:01.000Z", "10.1.1.2:40000", "nmap", "203.0.113.7", 20007);
  log +=
      undefinedConnect("2026-11-24T10:00:02.000Z", "10.1.1.2:40000", "nmap", "203.0.113.7", 20007);
  InvestigateOptions options;
  // A configured name in the middle of the sequence (case-insensitively) is skipped.
  options.definitions.insert(
      options.definitions.begin(),
      ProtocolDefinition{"customapp-3", {{1, 1}, Transport::Tcp, Direction::Outbound}, {}});
  const auto result = run(log, options);
  EXPECT_EQ(result.lines, static_cast<std::size_t>(kPorts) + 2);
  EXPECT_EQ(result.denials, static_cast<std::size_t>(kPorts) + 2);
  ASSERT_EQ(result.findings.size(), static_cast<std::size_t>(kPorts));
  ASSERT_EQ(result.proposed.size(), static_cast<std::size_t>(kPorts));
  EXPECT_EQ(result.findings[0].port, 20007);
  EXPECT_EQ(result.findings[0].count, 3u);
  EXPECT_EQ(result.findings[1].port, 20000);
  EXPECT_EQ(result.findings[2].port, 20001);
  EXPECT_EQ(result.findings.back().port, 20000 + kPorts - 1);
  std::set<std::string> names;
  for (std::size_t i = 0; i < result.findings.size(); ++i) {
    const Finding& f = result.findings[i];
    ASSERT_TRUE(f.proposed.has_value()) << i;
    EXPECT_FALSE(f.proposedExtends) << i;
    EXPECT_EQ(f.proposed->primary.ports, (policy::PortRange{f.port, f.port})) << i;
    EXPECT_EQ(f.proposed->name, result.proposed[i].name) << i;
    EXPECT_TRUE(names.insert(f.proposed->name).second) << f.proposed->name;
  }
  EXPECT_EQ(result.proposed[0].name, "CustomApp");
  EXPECT_EQ(result.proposed[1].name, "CustomApp-2");
  EXPECT_EQ(result.proposed[2].name, "CustomApp-4");
  EXPECT_EQ(result.proposed.back().name, "CustomApp-" + std::to_string(kPorts + 1));
  EXPECT_TRUE(parses(
      std::vector<ProtocolDefinition>(result.proposed.begin(), result.proposed.begin() + 50)));

  // 100 groups in full, then one line for the rest.
  const std::string report = render(result);
  const auto lines = std::count(report.begin(), report.end(), '\n');
  EXPECT_LT(lines, 1500) << report.substr(0, 2000);
  EXPECT_NE(report.find("port = 20099\n"), std::string::npos);  // the 100th group (20007 first)
  EXPECT_EQ(report.find("port = 20100\n"), std::string::npos);
  EXPECT_NE(report.find("\n... and 4900 more groups (4900 attempts): from 10.1.1.2; --client "
                        "ADDRESS investigates one client's attempts\n"),
            std::string::npos)
      << report.substr(report.size() - std::min<std::size_t>(report.size(), 2000));
  EXPECT_EQ(report.rfind("5002 log lines, 5002 denied attempts in 5000 groups\n", 0), 0u);

  // Exactly 100 groups: no summary line.
  Investigation hundred = result;
  hundred.findings.resize(100);
  EXPECT_EQ(render(hundred).find("more group"), std::string::npos);
  hundred.findings.push_back(result.findings[100]);
  EXPECT_NE(render(hundred).find("\n... and 1 more group (1 attempt): from 10.1.1.2;"),
            std::string::npos);
}

// A firewall client's successful connection (control_session.cpp), logged when it ends.
std::string fwcConnected(const std::string& time, const std::string& client, const std::string& app,
                         const std::string& requested, const std::string& definition) {
  return R"({"time":")" + time + R"(","duration_ms":9000,"client":")" + client +
         R"(","user":null,"protocol":"fwc","host":"ws1","application":")" + app +
         R"(","os_user":"alice","command":"connect","requested":")" + requested +
         R"(","resolved":")" + requested + R"(","bound":"198.51.100.1:40000","rule":"web",)" +
         (definition.empty() ? std::string() : R"("definition":")" + definition + "\",") +
         R"("result":"succeeded","reply":-1,"bytes_up":10,"bytes_down":10})" + "\n";
}

TEST(InvestigateTest, SecondaryListenUsesTheLatestConnectionStartedBeforeIt) {
  const std::string listen =
      R"({"time":"2026-11-24T13:00:01.000Z","duration_ms":0,"client":"10.1.1.2:40700",)"
      R"("user":null,"protocol":"fwc","host":"ws1","application":"ftpish","os_user":"alice",)"
      R"("command":"listen","requested":"10.1.1.2:0","resolved":"","rule":"",)"
      R"("result":"denied by the gateway's rules","reply":-1,"bytes_up":0,"bytes_down":0,)"
      R"("error":"no primary connection of ftpish (pid 4242) whose protocol definition has an )"
      R"(inbound TCP secondary connection"})"
      "\n";
  const std::string before2121 =
      fwcConnected("2026-11-24T13:00:00.500Z", "10.1.1.2:40690", "ftpish", "203.0.113.7:2121", "");
  const std::string earlierHttp = fwcConnected("2026-11-24T13:00:00.000Z", "10.1.1.2:40680",
                                               "ftpish", "203.0.113.7:80", "HTTP");
  const std::string afterHttps = fwcConnected("2026-11-24T13:00:02.000Z", "10.1.1.2:40710",
                                              "ftpish", "203.0.113.7:443", "HTTPS");
  const std::string otherApp = fwcConnected("2026-11-24T13:00:00.900Z", "10.1.1.2:40695", "browser",
                                            "203.0.113.8:8080", "HTTP-Alt");
  const std::string otherClient =
      fwcConnected("2026-11-24T13:00:00.950Z", "10.1.1.9:40695", "ftpish", "203.0.113.8:21", "FTP");

  // The latest to start before the listen, whether logged before or after it (a connection
  // still open at the listen is logged when it ends); not the first logged, not a later one.
  const auto result = run(before2121 + otherApp + otherClient + listen + earlierHttp + afterHttps);
  ASSERT_EQ(result.findings.size(), 1u);
  const Finding& f = result.findings[0];
  EXPECT_EQ(f.kind, DenialKind::ListenNoDefinition);
  ASSERT_TRUE(f.proposed.has_value()) << f.suggestion;
  EXPECT_FALSE(f.proposedExtends);
  EXPECT_EQ(f.proposed->name, "CustomApp");
  EXPECT_EQ(f.proposed->primary.ports, (policy::PortRange{2121, 2121}));
  ASSERT_EQ(f.proposed->secondary.size(), 1u);
  EXPECT_TRUE(f.proposed->secondary[0].anyDynamicPort());
  EXPECT_NE(f.suggestion.find("connection to port 2121"), std::string::npos) << f.suggestion;
  EXPECT_TRUE(parses(result.proposed));

  // Logged in the other order: the same choice.
  const auto reversed = run(afterHttps + earlierHttp + listen + before2121);
  ASSERT_EQ(reversed.findings.size(), 1u);
  ASSERT_TRUE(reversed.findings[0].proposed.has_value());
  EXPECT_EQ(reversed.findings[0].proposed->primary.ports, (policy::PortRange{2121, 2121}));

  // Only the HTTP connection before it: HTTP extended.
  const auto http = run(listen + earlierHttp + afterHttps);
  ASSERT_EQ(http.findings.size(), 1u);
  ASSERT_TRUE(http.findings[0].proposed.has_value());
  EXPECT_EQ(http.findings[0].proposed->name, "HTTP");
  EXPECT_TRUE(http.findings[0].proposedExtends);

  // Only connections after the listen, or of other programs and clients: no primary connection.
  for (const std::string& log :
       {listen + afterHttps, afterHttps + listen, otherApp + otherClient + listen + afterHttps}) {
    const auto none = run(log);
    ASSERT_EQ(none.findings.size(), 1u) << log;
    EXPECT_FALSE(none.findings[0].proposed.has_value()) << log;
    EXPECT_TRUE(none.proposed.empty()) << log;
    EXPECT_TRUE(none.findings[0].covering.empty()) << log;
    EXPECT_NE(none.findings[0].suggestion.find("the log has no connection of ftpish before the "
                                               "listen"),
              std::string::npos)
        << none.findings[0].suggestion;
  }
}

}  // namespace
}  // namespace fwgate::monitor
