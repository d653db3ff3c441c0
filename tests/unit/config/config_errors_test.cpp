// Configuration errors as a table: TOML text in, the exact set of error key paths out.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace fwgate::config {
namespace {

struct ErrorCase {
  std::string description;
  std::string toml;
  std::vector<std::string> paths;  // every error's path, in any order
};

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

std::string describe(const LoadResult& r) {
  std::string out;
  for (const auto& e : r.errors) out += "\n  " + e.toString();
  return out;
}

const std::vector<ErrorCase>& errorCases() {
  static const std::vector<ErrorCase> cases = {
      {"unknown key at the top", "colour = \"blue\"\n", {"colour"}},
      {"unknown table at the top", "[gatway]\nuser = \"x\"\n", {"gatway"}},
      {"unknown nested key", "[limits]\nmax_session = 5\n", {"limits.max_session"}},
      {"unknown key in rules[1]",
       "[[rules]]\naction = \"allow\"\n[[rules]]\naction = \"deny\"\nsoruces = []\n",
       {"rules[1].soruces"}},
      {"unknown key in a listener",
       "[[listeners]]\nadress = \"127.0.0.1\"\n",
       {"listeners[0].adress"}},
      {"unknown key in a network",
       "[networks.lan]\nrange = [\"10.0.0.0/8\"]\n",
       {"networks.lan.range"}},
      {"wrong type: string for integer",
       "[limits]\nmax_sessions = \"many\"\n",
       {"limits.max_sessions"}},
      {"wrong type: port as string", "[[listeners]]\nport = \"1080\"\n", {"listeners[0].port"}},
      {"wrong type: bool as string",
       "[bind]\nrequire_connect = \"yes\"\n",
       {"bind.require_connect"}},
      {"wrong type: section is a value", "gateway = 5\n", {"gateway"}},
      {"wrong type: listeners as a table", "[listeners]\naddress = \"127.0.0.1\"\n", {"listeners"}},
      {"wrong type: rules element", "rules = [1]\n", {"rules[0]"}},
      {"wrong type: sources not an array",
       "[networks.lan]\nranges = [\"10.0.0.0/8\"]\n[[rules]]\naction = \"allow\"\nsources = "
       "\"lan\"\n",
       {"rules[0].sources"}},
      {"wrong type: array element", "[groups]\nadmins = [\"alice\", 7]\n", {"groups.admins[1]"}},
      {"bad duration: space",
       "[limits]\nhandshake_timeout = \"10 s\"\n",
       {"limits.handshake_timeout"}},
      {"bad duration: unknown unit", "[limits]\nidle_timeout = \"2d\"\n", {"limits.idle_timeout"}},
      {"bad duration: zero", "[limits]\nconnect_timeout = \"0s\"\n", {"limits.connect_timeout"}},
      {"bad duration: zero seconds", "[limits]\nbind_timeout = 0\n", {"limits.bind_timeout"}},
      {"bad duration: negative", "[limits]\nudp_idle_timeout = -5\n", {"limits.udp_idle_timeout"}},
      {"bad duration: float", "[limits]\nshutdown_grace = 1.5\n", {"limits.shutdown_grace"}},
      {"bad CIDR",
       "[networks.lan]\nranges = [\"10.0.0.0/8\", \"10.0.0.0/33\"]\n",
       {"networks.lan.ranges[1]"}},
      {"reversed address pair",
       "[networks.lan]\nranges = [\"10.0.0.9-10.0.0.1\"]\n",
       {"networks.lan.ranges[0]"}},
      {"mixed-family address pair",
       "[networks.lan]\nranges = [\"10.0.0.1-::1\"]\n",
       {"networks.lan.ranges[0]"}},
      {"bad domains",
       "[networks.web]\ndomains = [\"*.example.com\", \"10.0.0.1\", \"a..b\"]\n",
       {"networks.web.domains[0]", "networks.web.domains[1]", "networks.web.domains[2]"}},
      {"redefining a built-in network",
       "[networks.any]\nranges = [\"10.0.0.0/8\"]\n",
       {"networks.any"}},
      {"control listen not an endpoint",
       "[control]\nlisten = [\"127.0.0.1\", \"gw:1745\", \"[::1]:1745\"]\n",
       {"control.listen[0]", "control.listen[1]"}},
      {"control and a listener on one port",
       "[[listeners]]\naddress = \"127.0.0.1\"\nport = 1745\n[control]\nlisten = "
       "[\"127.0.0.1:1745\"]\n",
       {"control.listen[0]"}},
      {"firewall_clients not a boolean",
       "[networks.lan]\nranges = [\"10.0.0.0/8\"]\nfirewall_clients = \"yes\"\n",
       {"networks.lan.firewall_clients"}},
      {"application settings: unknown key, bad value, [*] restriction",
       "[firewall_client.applications.curl]\nNameResolutoin = \"R\"\nDisable = \"maybe\"\n"
       "DontRemoteOutboundTcpPorts = \"25,80-\"\n[firewall_client.applications.\"*\"]\n"
       "NameResolution = \"L\"\nDontRemoteOutboundUdpPorts = \"53\"\n",
       {"firewall_client.applications.curl.NameResolutoin",
        "firewall_client.applications.curl.Disable",
        "firewall_client.applications.curl.DontRemoteOutboundTcpPorts",
        "firewall_client.applications.\"*\".NameResolution"}},
      {"application section with a path, refresh too short",
       "[firewall_client]\nrefresh_interval = \"10s\"\n[firewall_client.applications."
       "\"/usr/bin/curl\"]\nDisable = 1\n",
       {"firewall_client.refresh_interval", "firewall_client.applications.\"/usr/bin/curl\""}},
      {"redefining loopback",
       "[networks.loopback]\nranges = [\"127.0.0.1\"]\n",
       {"networks.loopback"}},
      {"invalid network name",
       "[networks.\"bad name\"]\nranges = [\"10.0.0.0/8\"]\n",
       {"networks.\"bad name\""}},
      {"unknown network",
       "[networks.lan]\nranges = [\"10.0.0.0/8\"]\n"
       "[[rules]]\naction = \"allow\"\nsources = [\"lan\", \"lam\"]\ndestinations = [\"wan\"]\n",
       {"rules[0].sources[1]", "rules[0].destinations[0]"}},
      {"unknown group",
       "[gateway]\nusers_file = \"u\"\n[[rules]]\naction = \"allow\"\ngroups = "
       "[\"admins\"]\n",
       {"rules[0].groups[0]"}},
      {"invalid user names",
       "[gateway]\nusers_file = \"u\"\n[groups]\nops = [\"a b\"]\n"
       "[[rules]]\naction = \"allow\"\nusers = [\"x:y\"]\n",
       {"groups.ops[0]", "rules[0].users[0]"}},
      {"duplicate rule name",
       "[[rules]]\nname = \"web\"\naction = \"allow\"\n[[rules]]\nname = \"web\"\naction = "
       "\"deny\"\n",
       {"rules[1].name"}},
      {"explicit name clashes with a default name",
       "[[rules]]\naction = \"allow\"\n[[rules]]\nname = \"rule-1\"\naction = \"deny\"\n",
       {"rules[1].name"}},
      {"empty rule name", "[[rules]]\nname = \"\"\naction = \"allow\"\n", {"rules[0].name"}},
      {"missing action", "[[rules]]\nname = \"x\"\n", {"rules[0].action"}},
      {"bad action", "[[rules]]\naction = \"permit\"\n", {"rules[0].action"}},
      {"bad method",
       "[[listeners]]\nmethods = [\"none\", \"gssapi\"]\n",
       {"listeners[0].methods[1]"}},
      {"duplicate method",
       "[[listeners]]\nmethods = [\"none\", \"none\"]\n",
       {"listeners[0].methods[1]"}},
      {"no methods", "[[listeners]]\nmethods = []\n", {"listeners[0].methods"}},
      {"listener port out of range", "[[listeners]]\nport = 70000\n", {"listeners[0].port"}},
      {"listener port negative", "[[listeners]]\nport = -1\n", {"listeners[0].port"}},
      {"listener address is a name",
       "[[listeners]]\naddress = \"localhost\"\n",
       {"listeners[0].address"}},
      {"duplicate listener",
       "[[listeners]]\naddress = \"127.0.0.1\"\nport = 1080\n[[listeners]]\naddress = "
       "\"127.0.0.1\"\nport = 1080\n",
       {"listeners[1]"}},
      {"rule ports out of range",
       "[[rules]]\naction = \"allow\"\nports = [0, 65536, \"2000-1000\", \"0-5\", \"x\", true]\n",
       {"rules[0].ports[0]", "rules[0].ports[1]", "rules[0].ports[2]", "rules[0].ports[3]",
        "rules[0].ports[4]", "rules[0].ports[5]"}},
      {"bad commands",
       "[[rules]]\naction = \"allow\"\ncommands = [\"connect\", \"listen\"]\n",
       {"rules[0].commands[1]"}},
      {"empty commands", "[[rules]]\naction = \"allow\"\ncommands = []\n", {"rules[0].commands"}},
      {"limit out of range",
       "[limits]\nmax_sessions = -1\nrelay_buffer_size = 1024\n",
       {"limits.max_sessions", "limits.relay_buffer_size"}},
      {"relay buffer too large",
       "[limits]\nrelay_buffer_size = 4194305\n",
       {"limits.relay_buffer_size"}},
      {"unknown relay mode", "[limits]\nrelay = \"zerocopy\"\n", {"limits.relay"}},
      {"relay mode not a string", "[limits]\nrelay = 1\n", {"limits.relay"}},
      {"workers out of range and unknown balance",
       "[gateway]\nworkers = 1025\nbalance = \"random\"\n",
       {"gateway.workers", "gateway.balance"}},
      {"negative workers", "[gateway]\nworkers = -1\n", {"gateway.workers"}},
      {"bad log level",
       "[log]\nlevel = \"verbose\"\nsessions = \"\"\n",
       {"log.level", "log.sessions"}},
      {"bad external address",
       "[bind]\nexternal_address = \"gateway.example\"\n",
       {"bind.external_address"}},
      {"password listener needs a users file",
       "[[listeners]]\nmethods = [\"password\"]\n",
       {"gateway.users_file"}},
      {"rule with users needs a users file",
       "[[rules]]\naction = \"allow\"\nusers = [\"alice\"]\n",
       {"gateway.users_file"}},
      {"bad gateway keys",
       "[gateway]\nuser = \"\"\nusers_file = \"\"\n",
       {"gateway.user", "gateway.users_file"}},
      {"bad auth_throttle values",
       "[auth_throttle]\nenabled = 1\nwindow = \"soon\"\ndelay_after = -1\nrefuse_after = "
       "2000000\nmax_pending = 0\nrefuse_for = \"forever\"\ncolour = 1\n",
       {"auth_throttle.enabled", "auth_throttle.window", "auth_throttle.delay_after",
        "auth_throttle.refuse_after", "auth_throttle.max_pending", "auth_throttle.refuse_for",
        "auth_throttle.colour"}},
      {"auth_throttle max_delay shorter than delay",
       "[auth_throttle]\ndelay = \"2s\"\nmax_delay = \"1s\"\n",
       {"auth_throttle.max_delay"}},
      {"bad [control] security values",
       "[control]\nkey_file = \"\"\nencryption = \"sometimes\"\nmax_clock_skew = \"0.5s\"\n",
       {"control.key_file", "control.encryption", "control.max_clock_skew"}},
      {"max_clock_skew out of range",
       "[control]\nmax_clock_skew = \"2d\"\n",
       {"control.max_clock_skew"}},
      {"enrolled hosts with bad keys, twice the same key",
       "[control.hosts]\na = \"short\"\nb = 7\n"
       "c = \"pNLbe5V4Vqrked3VlQc/jXk8c41+7Fvic4ab6wApRGw=\"\n"
       "d = \"pNLbe5V4Vqrked3VlQc/jXk8c41+7Fvic4ab6wApRGw=\"\n",
       {"control.hosts.\"a\"", "control.hosts.\"b\"", "control.hosts.\"d\""}},
      {"bad [kerberos] values",
       "[kerberos]\nkeytab = \"\"\nlocal_realms = [\"A@B\", \"\"]\nrealm = \"X\"\n",
       {"kerberos.keytab", "kerberos.local_realms[0]", "kerberos.local_realms[1]",
        "kerberos.realm"}},
      {"a kerberos listener without a keytab",
       "[[listeners]]\nmethods = [\"kerberos\", \"kerberos\"]\n",
       {"kerberos.keytab", "listeners[0].methods[1]"}},
      {"TOML syntax error is a file-level error", "[limits\nmax_sessions = 1\n", {""}},
      {"duplicate TOML key is a file-level error",
       "[log]\nlevel = \"info\"\nlevel = \"warn\"\n",
       {""}},
      {"many errors at once, all reported",
       "bogus = 1\n"
       "[[listeners]]\naddress = \"nope\"\nport = 99999\nmethods = [\"magic\"]\n"
       "[limits]\nhandshake_timeout = \"soon\"\nextra = true\n"
       "[networks.lan]\nranges = [\"10.0.0.0/40\"]\n"
       "[[rules]]\nname = \"a\"\naction = \"maybe\"\nsources = [\"lam\"]\n"
       "[[rules]]\nname = \"a\"\naction = \"deny\"\nports = [\"http\"]\ncolour = 1\n",
       {"bogus", "listeners[0].address", "listeners[0].port", "listeners[0].methods[0]",
        "limits.handshake_timeout", "limits.extra", "networks.lan.ranges[0]", "rules[0].action",
        "rules[0].sources[0]", "rules[1].name", "rules[1].ports[0]", "rules[1].colour"}},
  };
  return cases;
}

TEST(ConfigErrorsTest, Table) {
  for (const ErrorCase& c : errorCases()) {
    const LoadResult r = parseConfig(c.toml, "test.toml");
    std::vector<std::string> paths;
    for (const auto& e : r.errors) paths.push_back(e.path);
    EXPECT_EQ(sorted(paths), sorted(c.paths)) << c.description << describe(r);
    EXPECT_FALSE(r.ok()) << c.description;
    EXPECT_EQ(r.config, nullptr) << c.description;
    for (const auto& e : r.errors) {
      EXPECT_FALSE(e.message.empty()) << c.description;
      EXPECT_GT(e.line, 0u) << c.description << ": " << e.toString();
    }
  }
}

TEST(ConfigErrorsTest, MessagesNameTheProblem) {
  const LoadResult r = parseConfig(
      "[networks.lan]\nranges = [\"10.0.0.0/8\"]\n"
      "[[rules]]\naction = \"allow\"\nsources = [\"lan\", \"lam\"]\nsorces = []\n",
      "t");
  ASSERT_EQ(r.errors.size(), 2u) << describe(r);
  std::vector<std::string> texts;
  for (const auto& e : r.errors) texts.push_back(e.toString());
  std::sort(texts.begin(), texts.end());
  EXPECT_EQ(texts[0], "rules[0].sorces: unknown key (did you mean \"sources\"?)");
  EXPECT_EQ(texts[1], "rules[0].sources[1]: unknown network \"lam\" (did you mean \"lan\"?)");
}

TEST(ConfigErrorsTest, SyntaxErrorCarriesLineAndColumn) {
  const LoadResult r = parseConfig("[log]\nlevel = \n", "t");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].line, 2u);
  EXPECT_NE(r.errors[0].message.find("line 2"), std::string::npos) << r.errors[0].message;
  EXPECT_EQ(r.errors[0].toString(), r.errors[0].message);
}

TEST(ConfigErrorsTest, LineNumbersPointAtTheValue) {
  const LoadResult r = parseConfig("[limits]\n\nmax_sessions = 1\nidle_timeout = \"x\"\n", "t");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].line, 4u);
}

TEST(ConfigErrorsTest, MissingFileIsAnError) {
  const LoadResult r = loadConfigFile("/nonexistent/fwgate/gateway.toml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.errors[0].message.find("/nonexistent/fwgate/gateway.toml"), std::string::npos);
  EXPECT_NE(r.errors[0].message.find("No such file"), std::string::npos) << r.errors[0].message;
}

TEST(ConfigErrorsTest, DirectoryIsAnError) {
  const LoadResult r = loadConfigFile("/");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_FALSE(r.ok());
}

TEST(ConfigErrorsTest, NonUtf8TextIsReportedNotThrown) {
  const std::string text = "[log]\nlevel = \"\xff\xfe\"\n";
  LoadResult r;
  EXPECT_NO_THROW(r = parseConfig(text, "t"));
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(r.errors.empty());
}

}  // namespace
}  // namespace fwgate::config
