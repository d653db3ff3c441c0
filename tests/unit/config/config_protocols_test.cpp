// [protocols.NAME], rules' `protocols`, and the [bind] keys that go with them: values, errors
// with their key paths, overlap errors and warnings, and the engine makeEngine() builds.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace fwgate::config {
namespace {

using policy::ConnectionSpec;
using policy::Direction;
using policy::PortRange;
using policy::ProtocolDefinition;
using policy::Transport;

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

const ProtocolDefinition* find(const Config& c, std::string_view name) {
  for (const auto& p : c.protocols) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

ConnectionSpec spec(std::uint16_t first, std::uint16_t last, Transport t, Direction d) {
  return ConnectionSpec{PortRange{first, last}, t, d};
}

// Enough of a file that only the protocol warnings remain.
constexpr std::string_view kRule = "[[rules]]\naction = \"allow\"\nsources = [\"loopback\"]\n";

TEST(ConfigProtocolsTest, EveryKeyLandsInItsField) {
  const LoadResult r = parseConfig(std::string(R"(
[bind]
dynamic_ports = "30000-40000"
secondary_peers = "rules"

[protocols.Zeta]
port = "7000-7010"
transport = "udp"
direction = "receive-send"

[protocols.CustomApp]
port = 4443
transport = "tcp"
direction = "outbound"
secondary = [
  { ports = 0, transport = "tcp", direction = "inbound" },
  { ports = "6000-6100", transport = "udp", direction = "send" },
  { ports = "0", transport = "udp", direction = "receive" },
]

[protocols."app.v2"]
port = "9999"
transport = "tcp"
direction = "inbound"

[protocols.Callbacks]
port = 0
transport = "tcp"
direction = "inbound"

[[rules]]
action = "allow"
sources = ["loopback"]
protocols = ["HTTP", "CustomApp", "app.v2", "FTP"]
)"),
                                   "t");
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_TRUE(r.warnings.empty()) << describe(r);
  const Config& c = *r.config;
  EXPECT_EQ(c.bind.dynamicPorts, (PortRange{30000, 40000}));
  EXPECT_EQ(c.bind.secondaryPeers, BindSettings::SecondaryPeers::Rules);

  // The configuration's definitions first, in file order (not TOML's sorted key order).
  ASSERT_EQ(c.protocols.size(), policy::builtinProtocols().size() + 4);
  EXPECT_EQ(c.protocols[0].name, "Zeta");
  EXPECT_EQ(c.protocols[1].name, "CustomApp");
  EXPECT_EQ(c.protocols[2].name, "app.v2");
  EXPECT_EQ(c.protocols[3].name, "Callbacks");
  EXPECT_EQ(c.protocols[4].name, policy::builtinProtocols()[0].name);
  EXPECT_FALSE(c.protocols[0].builtin);
  EXPECT_TRUE(c.protocols[4].builtin);

  EXPECT_EQ(c.protocols[0].primary, spec(7000, 7010, Transport::Udp, Direction::ReceiveSend));
  const ProtocolDefinition& custom = c.protocols[1];
  EXPECT_EQ(custom.primary, spec(4443, 4443, Transport::Tcp, Direction::Outbound));
  EXPECT_EQ(custom.secondary,
            (std::vector<ConnectionSpec>{spec(0, 0, Transport::Tcp, Direction::Inbound),
                                         spec(6000, 6100, Transport::Udp, Direction::Send),
                                         spec(0, 0, Transport::Udp, Direction::Receive)}));
  EXPECT_EQ(c.protocols[2].primary, spec(9999, 9999, Transport::Tcp, Direction::Inbound));
  EXPECT_EQ(c.protocols[3].primary, spec(0, 0, Transport::Tcp, Direction::Inbound));

  ASSERT_EQ(c.rules.size(), 1u);
  EXPECT_EQ(c.rules[0].protocols, (std::vector<std::string>{"HTTP", "CustomApp", "app.v2", "FTP"}));
}

TEST(ConfigProtocolsTest, DefaultsWithoutTheSection) {
  const LoadResult r = parseConfig(kRule, "t");
  ASSERT_TRUE(r.ok()) << describe(r);
  const Config& c = *r.config;
  EXPECT_EQ(c.bind.dynamicPorts, policy::kDefaultDynamicPorts);
  EXPECT_EQ(c.bind.secondaryPeers, BindSettings::SecondaryPeers::Primary);
  ASSERT_EQ(c.protocols.size(), policy::builtinProtocols().size());
  for (std::size_t i = 0; i < c.protocols.size(); ++i) {
    EXPECT_EQ(c.protocols[i].name, policy::builtinProtocols()[i].name);
    EXPECT_TRUE(c.protocols[i].builtin);
  }
  EXPECT_TRUE(c.rules[0].protocols.empty());
  // A named default (GCC 12 takes a temporary Config{}'s strings for uninitialized).
  const Config defaults;
  EXPECT_EQ(defaults.protocols.size(), policy::builtinProtocols().size());
}

TEST(ConfigProtocolsTest, OverridingABuiltin) {
  const LoadResult r = parseConfig(std::string(R"(
[protocols.ftp]
port = 2121
transport = "tcp"
direction = "outbound"
secondary = [{ ports = "50000-50100", transport = "tcp", direction = "outbound" }]
[[rules]]
action = "allow"
protocols = ["ftp", "HTTP"]
sources = ["loopback"]
)"),
                                   "t");
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_TRUE(r.warnings.empty()) << describe(r);
  const Config& c = *r.config;
  EXPECT_EQ(c.protocols.size(), policy::builtinProtocols().size());
  EXPECT_EQ(find(c, "FTP"), nullptr);  // replaced, case-insensitively
  ASSERT_NE(find(c, "ftp"), nullptr);
  EXPECT_FALSE(find(c, "ftp")->builtin);
  EXPECT_EQ(find(c, "ftp")->primary.ports, (PortRange{2121, 2121}));
  EXPECT_EQ(find(c, "ftp")->secondary.size(), 1u);
  EXPECT_EQ(c.protocols[0].name, "ftp");

  const auto engine = c.makeEngine();
  policy::Request q;
  q.client = *policy::IpAddress::parse("127.0.0.1");
  q.destinationName = "ftp.example.com";
  q.destinationPort = 21;
  EXPECT_EQ(engine->decide(q).ruleName, "default-deny");  // 21 is no longer FTP
  q.destinationPort = 2121;
  const policy::Decision d = engine->decide(q);
  EXPECT_EQ(d.ruleName, "rule-1");
  EXPECT_EQ(d.protocol, "ftp");
}

struct ErrorCase {
  std::string description;
  std::string toml;
  std::vector<std::string> paths;  // every error's path, in any order
};

TEST(ConfigProtocolsTest, ErrorTable) {
  const std::string tcp = "transport = \"tcp\"\ndirection = \"outbound\"\n";
  const std::vector<ErrorCase> cases = {
      {"unknown key in a definition",
       "[protocols.X]\nport = 1\n" + tcp + "prot = 2\n",
       {"protocols.X.prot"}},
      {"not a table", "[protocols]\nX = 5\n", {"protocols.X"}},
      {"protocols not a table", "protocols = 5\n", {"protocols"}},
      {"invalid name", "[protocols.\"my app\"]\nport = 1\n" + tcp, {"protocols.\"my app\""}},
      {"same name in another case",
       "[protocols.App]\nport = 1\n" + tcp + "[protocols.APP]\nport = 2\n" + tcp,
       {"protocols.APP"}},
      {"bad transport",
       "[protocols.X]\nport = 1\ntransport = \"sctp\"\ndirection = \"outbound\"\n",
       {"protocols.X.transport"}},
      {"transport of the wrong type",
       "[protocols.X]\nport = 1\ntransport = 6\ndirection = \"outbound\"\n",
       {"protocols.X.transport"}},
      {"direction of the wrong transport",
       "[protocols.X]\nport = 1\ntransport = \"udp\"\ndirection = \"outbound\"\n",
       {"protocols.X.direction"}},
      {"udp direction on tcp",
       "[protocols.X]\nport = 1\ntransport = \"tcp\"\ndirection = \"send-receive\"\n",
       {"protocols.X.direction"}},
      {"missing everything",
       "[protocols.X]\n",
       {"protocols.X.port", "protocols.X.transport", "protocols.X.direction"}},
      {"empty range", "[protocols.X]\nport = \"5000-1024\"\n" + tcp, {"protocols.X.port"}},
      {"range containing 0", "[protocols.X]\nport = \"0-100\"\n" + tcp, {"protocols.X.port"}},
      {"port out of range", "[protocols.X]\nport = 65536\n" + tcp, {"protocols.X.port"}},
      {"negative port", "[protocols.X]\nport = -1\n" + tcp, {"protocols.X.port"}},
      {"port not a number", "[protocols.X]\nport = \"http\"\n" + tcp, {"protocols.X.port"}},
      {"port of the wrong type", "[protocols.X]\nport = 1.5\n" + tcp, {"protocols.X.port"}},
      {"unknown key in a secondary entry",
       "[protocols.X]\nport = 1\n" + tcp +
           "secondary = [{ ports = 0, transport = \"tcp\", direction = \"inbound\" },\n"
           "  { prots = 0, transport = \"tcp\", direction = \"inbound\" }]\n",
       {"protocols.X.secondary[1].prots", "protocols.X.secondary[1].ports"}},
      {"secondary with a bad direction and an empty range",
       "[protocols.X]\nport = 1\n" + tcp +
           "secondary = [{ ports = \"9-3\", transport = \"udp\", direction = \"inbound\" }]\n",
       {"protocols.X.secondary[0].ports", "protocols.X.secondary[0].direction"}},
      {"secondary not an array",
       "[protocols.X]\nport = 1\n" + tcp + "secondary = 5\n",
       {"protocols.X.secondary"}},
      {"secondary element not a table",
       "[protocols.X]\nport = 1\n" + tcp + "secondary = [5]\n",
       {"protocols.X.secondary[0]"}},
      {"user definitions overlap",
       "[protocols.A]\nport = \"8000-8100\"\n" + tcp + "[protocols.B]\nport = 8080\n" + tcp,
       {"protocols.B"}},
      {"user definitions overlap through port 0 and the dynamic range",
       "[bind]\ndynamic_ports = \"20000-30000\"\n[protocols.A]\nport = 0\n" + tcp +
           "[protocols.B]\nport = 25000\n" + tcp,
       {"protocols.B"}},
      {"udp send overlaps send-receive",
       "[protocols.A]\nport = 700\ntransport = \"udp\"\ndirection = \"send\"\n"
       "[protocols.B]\nport = 700\ntransport = \"udp\"\ndirection = \"send-receive\"\n",
       {"protocols.B"}},
      {"unknown protocol in a rule",
       "[[rules]]\naction = \"allow\"\nprotocols = [\"HTTP\", \"HTTPZ\", 5]\n",
       {"rules[0].protocols[1]", "rules[0].protocols[2]"}},
      {"rule protocols not an array",
       "[[rules]]\naction = \"allow\"\nprotocols = \"HTTP\"\n",
       {"rules[0].protocols"}},
      {"bad dynamic_ports", "[bind]\ndynamic_ports = \"5000-1024\"\n", {"bind.dynamic_ports"}},
      {"dynamic_ports with 0", "[bind]\ndynamic_ports = \"0-1000\"\n", {"bind.dynamic_ports"}},
      {"dynamic_ports not a string", "[bind]\ndynamic_ports = 1024\n", {"bind.dynamic_ports"}},
      {"bad secondary_peers", "[bind]\nsecondary_peers = \"any\"\n", {"bind.secondary_peers"}},
      {"misspelt bind key", "[bind]\ndynamic_port = \"1024-5000\"\n", {"bind.dynamic_port"}},
  };
  for (const ErrorCase& c : cases) {
    const LoadResult r = parseConfig(c.toml, "test.toml");
    std::vector<std::string> paths;
    for (const auto& e : r.errors) paths.push_back(e.path);
    EXPECT_EQ(sorted(paths), sorted(c.paths)) << c.description << describe(r);
    EXPECT_FALSE(r.ok()) << c.description;
    for (const auto& e : r.errors) {
      EXPECT_FALSE(e.message.empty()) << c.description;
      EXPECT_GT(e.line, 0u) << c.description << ": " << e.toString();
    }
  }
}

std::string errorText(std::string_view toml, std::string_view path) {
  const LoadResult r = parseConfig(toml, "t");
  for (const auto& e : r.errors) {
    if (e.path == path) return e.toString();
  }
  return "no error at " + std::string(path) + ":" + describe(r);
}

TEST(ConfigProtocolsTest, MessagesNameTheProblem) {
  EXPECT_EQ(errorText("[[rules]]\naction = \"allow\"\nprotocols = [\"HTTPZ\"]\n",
                      "rules[0].protocols[0]"),
            "rules[0].protocols[0]: unknown protocol definition \"HTTPZ\" (define it in "
            "[protocols.NAME]) (did you mean \"HTTP\"?)");
  EXPECT_EQ(errorText("[[rules]]\naction = \"allow\"\nprotocols = [\"postgresql\"]\n",
                      "rules[0].protocols[0]"),
            "rules[0].protocols[0]: unknown protocol definition \"postgresql\" (define it in "
            "[protocols.NAME]) (did you mean \"PostgreSQL\"?)");
  EXPECT_EQ(errorText("[protocols.Mine]\nport = 1\ntransport = \"tcp\"\ndirection = \"out\"\n"
                      "[[rules]]\naction = \"allow\"\nprotocols = [\"mine\"]\n",
                      "rules[0].protocols[0]"),
            "rules[0].protocols[0]: unknown protocol definition \"mine\" (define it in "
            "[protocols.NAME]) (did you mean \"Mine\"?)");
  EXPECT_EQ(errorText("[protocols.X]\nport = 1\ntransport = \"udp\"\ndirection = \"outbound\"\n",
                      "protocols.X.direction"),
            "protocols.X.direction: direction \"outbound\" does not fit transport udp (expected "
            "\"send\", \"receive\", \"send-receive\" or \"receive-send\")");
  EXPECT_NE(errorText("[protocols.X]\nport = \"5000-1024\"\ntransport = \"tcp\"\n"
                      "direction = \"outbound\"\n",
                      "protocols.X.port")
                .find("\"5000-1024\": empty range"),
            std::string::npos);
  EXPECT_EQ(errorText("[protocols.X]\nport = 1\ntransport = \"tcp\"\ndirection = \"outbound\"\n"
                      "secondary = [{ ports = 0, transport = \"tcp\", direction = \"inbound\" },\n"
                      "  { prots = 0, transport = \"tcp\", direction = \"inbound\" }]\n",
                      "protocols.X.secondary[1].prots"),
            "protocols.X.secondary[1].prots: unknown key (did you mean \"ports\"?)");
  const std::string overlap = errorText(
      "[protocols.A]\nport = \"8000-8100\"\ntransport = \"tcp\"\ndirection = "
      "\"outbound\"\n[protocols.B]\nport = 8080\ntransport = \"tcp\"\ndirection = "
      "\"outbound\"\n",
      "protocols.B");
  EXPECT_NE(overlap.find("protocols.A"), std::string::npos) << overlap;
  EXPECT_NE(overlap.find("tcp 8080 outbound"), std::string::npos) << overlap;
}

TEST(ConfigProtocolsTest, ErrorLinesPointAtTheDefinition) {
  const LoadResult r = parseConfig(
      "[protocols.A]\nport = 80\ntransport = \"udp\"\ndirection = \"send\"\n\n"
      "[protocols.B]\nport = 80\ntransport = \"udp\"\ndirection = \"send\"\n",
      "t");
  ASSERT_EQ(r.errors.size(), 1u) << describe(r);
  EXPECT_EQ(r.errors[0].path, "protocols.B");
  EXPECT_EQ(r.errors[0].line, 6u);
}

TEST(ConfigProtocolsTest, AllowedShapes) {
  // A primary inbound on port 0; definitions that differ in transport or direction; a rule
  // naming a definition defined after it in the file.
  const LoadResult r = parseConfig(std::string(R"(
[[rules]]
action = "allow"
sources = ["loopback"]
protocols = ["Later"]
[protocols.Later]
port = 0
transport = "tcp"
direction = "inbound"
[protocols.U1]
port = 6000
transport = "udp"
direction = "send-receive"
[protocols.U2]
port = 6000
transport = "udp"
direction = "receive-send"
[protocols.T1]
port = 6000
transport = "tcp"
direction = "outbound"
)"),
                                   "t");
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_TRUE(r.warnings.empty()) << describe(r);
}

TEST(ConfigProtocolsTest, Warnings) {
  const LoadResult r = parseConfig(std::string(kRule) + R"(
[protocols.MyWeb]
port = 443
transport = "tcp"
direction = "outbound"
[protocols.Resolver]
port = 53
transport = "udp"
direction = "send"
[protocols.Twice]
port = 7777
transport = "tcp"
direction = "outbound"
secondary = [
  { ports = "2000-2100", transport = "tcp", direction = "inbound" },
  { ports = 0, transport = "tcp", direction = "inbound" },
  { ports = "2000-2100", transport = "tcp", direction = "outbound" },
]
)",
                                   "t");
  ASSERT_TRUE(r.ok()) << describe(r);
  std::vector<std::string> paths;
  for (const auto& w : r.warnings) paths.push_back(w.path);
  EXPECT_EQ(sorted(paths),
            sorted({"protocols.MyWeb", "protocols.Resolver", "protocols.Twice.secondary[1]"}))
      << describe(r);
  for (const auto& w : r.warnings) {
    if (w.path == "protocols.MyWeb") {
      EXPECT_NE(w.message.find("\"HTTPS\""), std::string::npos) << w.message;
      EXPECT_NE(w.message.find("\"MyWeb\""), std::string::npos) << w.message;
    }
    if (w.path == "protocols.Resolver") {
      EXPECT_NE(w.message.find("\"DNS\""), std::string::npos) << w.message;
    }
  }

  // The engine names the configuration's definition first.
  const auto engine = r.config->makeEngine();
  policy::Request q;
  q.client = *policy::IpAddress::parse("127.0.0.1");
  q.destinationName = "example.com";
  q.destinationPort = 443;
  EXPECT_EQ(engine->decide(q).protocol, "MyWeb");
}

TEST(ConfigProtocolsTest, MakeEnginePassesDefinitionsAndDynamicPorts) {
  const LoadResult r = parseConfig(R"(
[bind]
dynamic_ports = "30000-40000"
[protocols.Callbacks]
port = 0
transport = "tcp"
direction = "inbound"
[[rules]]
name = "callbacks"
action = "allow"
protocols = ["Callbacks"]
[[rules]]
name = "web"
action = "allow"
protocols = ["HTTP", "HTTPS"]
commands = ["connect"]
)",
                                   "t");
  ASSERT_TRUE(r.ok()) << describe(r);
  const auto engine = r.config->makeEngine();
  EXPECT_EQ(engine->dynamicPorts(), (PortRange{30000, 40000}));
  EXPECT_EQ(engine->protocols().size(), r.config->protocols.size());
  ASSERT_NE(engine->findProtocol("FTP"), nullptr);

  policy::Request q;
  q.client = *policy::IpAddress::parse("10.0.0.1");
  q.destinationAddress = *policy::IpAddress::parse("198.51.100.1");
  q.destinationPort = 443;
  policy::Decision d = engine->decide(q);
  EXPECT_EQ(d.ruleName, "web");
  EXPECT_EQ(d.protocol, "HTTPS");
  q.destinationPort = 22;
  d = engine->decide(q);
  EXPECT_EQ(d.ruleName, "default-deny");
  EXPECT_EQ(d.protocol, "SSH");
  q.command = policy::Command::Bind;
  q.destinationPort = 35000;
  EXPECT_EQ(engine->decide(q).ruleName, "callbacks");
  q.destinationPort = 3000;
  EXPECT_EQ(engine->decide(q).ruleName, "default-deny");
}

}  // namespace
}  // namespace fwgate::config
