// Valid configurations: values land in the right fields, defaults apply, warnings are right.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.hpp"

#ifndef FWGATE_SOURCE_DIR
#error "FWGATE_SOURCE_DIR must be defined for the tests"
#endif

namespace fwgate::config {
namespace {

using namespace std::chrono_literals;

std::string describe(const LoadResult& r) {
  std::string out;
  for (const auto& e : r.errors) out += "\n  error: " + e.toString();
  for (const auto& w : r.warnings) out += "\n  warning: " + w.toString();
  return out;
}

const policy::Network* network(const Config& c, std::string_view name) {
  for (const auto& n : c.networks) {
    if (n.name == name) return &n;
  }
  return nullptr;
}

TEST(ConfigValuesTest, EveryKeyLandsInItsField) {
  const LoadResult r = parseConfig(R"(
[gateway]
user = "fwgate"
users_file = "/etc/fwgate/users"
workers = 6
balance = "round-robin"

[[listeners]]
address = "0.0.0.0"
port = 1081
methods = ["password", "none"]

[[listeners]]
address = "::1"
port = 0
methods = ["none"]

[limits]
max_sessions = 5
max_sessions_per_client = 2
handshake_timeout = "250ms"
connect_timeout = 30
idle_timeout = "2h"
bind_timeout = "5m"
udp_idle_timeout = "90s"
shutdown_grace = "1s"
relay_buffer_size = 4096
relay = "splice"

[bind]
external_address = "198.51.100.7"
require_connect = true

[log]
level = "debug"
sessions = "/var/log/fwgate/sessions.log"

[groups]
admins = ["alice", "bob"]

[networks.lan]
ranges = ["10.0.0.0/8", "192.168.1.10-192.168.1.20", "2001:db8::/32"]
domains = ["Intranet.Example.", "corp.example"]

[[rules]]
name = "lan web"
action = "allow"
sources = ["lan"]
users = ["carol"]
groups = ["admins"]
destinations = ["any"]
ports = ["80", 443, "8000-8100"]
commands = ["connect", "udp"]

[[rules]]
action = "deny"
)",
                                   "values.toml");
  ASSERT_TRUE(r.ok()) << describe(r);
  const Config& c = *r.config;
  EXPECT_EQ(c.source, "values.toml");
  EXPECT_EQ(c.runAsUser, "fwgate");
  EXPECT_EQ(c.usersFile, "/etc/fwgate/users");
  ASSERT_EQ(c.listeners.size(), 2u);
  EXPECT_EQ(c.listeners[0].address, "0.0.0.0");
  EXPECT_EQ(c.listeners[0].port, 1081);
  EXPECT_EQ(c.listeners[0].methods,
            (std::vector<AuthMethod>{AuthMethod::Password, AuthMethod::None}));
  EXPECT_EQ(c.listeners[1].address, "::1");
  EXPECT_EQ(c.listeners[1].port, 0);
  EXPECT_EQ(c.limits.maxSessions, 5u);
  EXPECT_EQ(c.limits.maxSessionsPerClient, 2u);
  EXPECT_EQ(c.limits.handshakeTimeout, 250ms);
  EXPECT_EQ(c.limits.connectTimeout, 30s);
  EXPECT_EQ(c.limits.idleTimeout, 2h);
  EXPECT_EQ(c.limits.bindTimeout, 5min);
  EXPECT_EQ(c.limits.udpIdleTimeout, 90s);
  EXPECT_EQ(c.limits.shutdownGrace, 1s);
  EXPECT_EQ(c.limits.relayBufferSize, 4096u);
  EXPECT_EQ(c.limits.relayMode, RelayMode::Splice);
  EXPECT_EQ(c.workers, 6u);
  EXPECT_EQ(c.balance, Config::Balance::RoundRobin);
  EXPECT_EQ(c.bind.externalAddress, "198.51.100.7");
  EXPECT_TRUE(c.bind.requireConnect);
  EXPECT_EQ(c.log.level, "debug");
  EXPECT_EQ(c.log.sessions, "/var/log/fwgate/sessions.log");
  EXPECT_EQ(c.groups.at("admins"), (std::vector<std::string>{"alice", "bob"}));

  ASSERT_NE(network(c, "any"), nullptr);
  EXPECT_TRUE(network(c, "any")->any);
  ASSERT_NE(network(c, "loopback"), nullptr);
  const policy::Network* lan = network(c, "lan");
  ASSERT_NE(lan, nullptr);
  ASSERT_EQ(lan->ranges.size(), 3u);
  EXPECT_EQ(lan->ranges[1].toString(), "192.168.1.10-192.168.1.20");
  EXPECT_EQ(lan->domains, (std::vector<std::string>{"intranet.example", "corp.example"}));

  ASSERT_EQ(c.rules.size(), 2u);
  const policy::Rule& web = c.rules[0];
  EXPECT_EQ(web.name, "lan web");
  EXPECT_EQ(web.action, policy::Action::Allow);
  EXPECT_EQ(web.sources, (std::vector<std::string>{"lan"}));
  EXPECT_EQ(web.users, (std::vector<std::string>{"carol"}));
  EXPECT_EQ(web.groups, (std::vector<std::string>{"admins"}));
  EXPECT_EQ(web.destinations, (std::vector<std::string>{"any"}));
  ASSERT_EQ(web.ports.size(), 3u);
  EXPECT_EQ(web.ports[1], (policy::PortRange{443, 443}));
  EXPECT_EQ(web.ports[2], (policy::PortRange{8000, 8100}));
  EXPECT_EQ(web.commands, static_cast<std::uint8_t>(policy::Command::Connect) |
                              static_cast<std::uint8_t>(policy::Command::Udp));
  EXPECT_EQ(c.rules[1].name, "rule-2");
  EXPECT_EQ(c.rules[1].action, policy::Action::Deny);
  EXPECT_EQ(c.rules[1].commands, policy::kAllCommands);
}

TEST(ConfigValuesTest, EmptyDocumentGetsDefaults) {
  const LoadResult r = parseConfig("", "empty");
  ASSERT_TRUE(r.ok()) << describe(r);
  const Config& c = *r.config;
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].address, "127.0.0.1");
  EXPECT_EQ(c.listeners[0].port, 1080);
  EXPECT_EQ(c.listeners[0].methods, std::vector<AuthMethod>{AuthMethod::None});
  EXPECT_EQ(c.limits.maxSessions, 10000u);
  EXPECT_EQ(c.limits.idleTimeout, 2h);
  EXPECT_EQ(c.limits.relayBufferSize, 262144u);
  EXPECT_EQ(c.limits.relayMode, RelayMode::Auto);
  EXPECT_EQ(c.workers, 0u);
  EXPECT_EQ(c.balance, Config::Balance::Kernel);
  EXPECT_EQ(c.log.level, "info");
  EXPECT_EQ(c.log.sessions, "-");
  EXPECT_EQ(c.networks.size(), 2u);  // any, loopback
  EXPECT_TRUE(c.rules.empty());
}

TEST(ConfigValuesTest, KerberosKeysAndTheUserAPrincipalIs) {
  const LoadResult r = parseConfig(
      "[kerberos]\nkeytab = \"/etc/fwgate/fwgate.keytab\"\nlocal_realms = [\"EXAMPLE.TEST\"]\n"
      "[[listeners]]\nmethods = [\"kerberos\", \"none\"]\n"
      "[[rules]]\naction = \"allow\"\nusers = [\"alice\", \"carol@OTHER.TEST\"]\n",
      "t");
  ASSERT_TRUE(r.ok()) << describe(r);
  const Config& c = *r.config;
  EXPECT_EQ(c.kerberos.keytab, "/etc/fwgate/fwgate.keytab");
  EXPECT_EQ(c.listeners[0].methods,
            (std::vector<AuthMethod>{AuthMethod::Kerberos, AuthMethod::None}));
  // No users file needed: Kerberos names the users.
  EXPECT_TRUE(c.usersFile.empty());
  EXPECT_EQ(c.userOfPrincipal("alice@EXAMPLE.TEST"), "alice");
  EXPECT_EQ(c.userOfPrincipal("carol@OTHER.TEST"), "carol@OTHER.TEST");
  EXPECT_EQ(c.userOfPrincipal("alice/admin@EXAMPLE.TEST"), "alice/admin");
  EXPECT_EQ(c.userOfPrincipal("alice@EXAMPLE.TESTX"), "alice@EXAMPLE.TESTX");
}

TEST(ConfigValuesTest, EmptyListenerArrayGetsTheDefaultListener) {
  const LoadResult r = parseConfig("listeners = []\n", "t");
  ASSERT_TRUE(r.ok()) << describe(r);
  ASSERT_EQ(r.config->listeners.size(), 1u);
  EXPECT_EQ(r.config->listeners[0].port, 1080);
}

struct WarningCase {
  std::string description;
  std::string toml;
  bool openProxy;
};

TEST(ConfigWarningsTest, OpenProxyTable) {
  const std::string allowAll = "[[rules]]\naction = \"allow\"\n";
  const std::vector<WarningCase> cases = {
      {"public listener, no password, rule without sources",
       "[[listeners]]\naddress = \"0.0.0.0\"\n" + allowAll, true},
      {"dual-stack listener", "[[listeners]]\naddress = \"::\"\n" + allowAll, true},
      {"public listener offering both methods",
       "[gateway]\nusers_file = \"u\"\n[[listeners]]\naddress = \"192.0.2.1\"\nmethods = "
       "[\"password\", \"none\"]\n" +
           allowAll,
       true},
      {"sources = [\"any\"]",
       "[[listeners]]\naddress = \"0.0.0.0\"\n[[rules]]\naction = \"allow\"\nsources = "
       "[\"any\"]\n",
       true},
      {"a network holding 0.0.0.0/0",
       "[[listeners]]\naddress = \"0.0.0.0\"\n[networks.world]\nranges = [\"0.0.0.0/0\"]\n"
       "[[rules]]\naction = \"allow\"\nsources = [\"world\"]\n",
       true},
      {"a network holding ::/0",
       "[[listeners]]\naddress = \"::\"\n[networks.world]\nranges = [\"::/0\"]\n"
       "[[rules]]\naction = \"allow\"\nsources = [\"world\"]\n",
       true},
      {"loopback listener", "[[listeners]]\naddress = \"127.0.0.1\"\n" + allowAll, false},
      {"v6 loopback listener", "[[listeners]]\naddress = \"::1\"\n" + allowAll, false},
      {"password only",
       "[gateway]\nusers_file = \"u\"\n[[listeners]]\naddress = \"0.0.0.0\"\nmethods = "
       "[\"password\"]\n" +
           allowAll,
       false},
      {"rule restricted to a network",
       "[[listeners]]\naddress = \"0.0.0.0\"\n[networks.lan]\nranges = [\"10.0.0.0/8\"]\n"
       "[[rules]]\naction = \"allow\"\nsources = [\"lan\"]\n",
       false},
      {"rule restricted to users",
       "[gateway]\nusers_file = \"u\"\n[[listeners]]\naddress = \"0.0.0.0\"\nmethods = "
       "[\"none\", \"password\"]\n[[rules]]\naction = \"allow\"\nusers = [\"alice\"]\n",
       false},
      {"deny rule only", "[[listeners]]\naddress = \"0.0.0.0\"\n[[rules]]\naction = \"deny\"\n",
       false},
  };
  for (const auto& c : cases) {
    const LoadResult r = parseConfig(c.toml, "t");
    ASSERT_TRUE(r.ok()) << c.description << describe(r);
    const bool warned = std::any_of(r.warnings.begin(), r.warnings.end(), [](const Diagnostic& w) {
      return w.message.find("open proxy") != std::string::npos;
    });
    EXPECT_EQ(warned, c.openProxy) << c.description << describe(r);
  }
}

TEST(ConfigWarningsTest, NoRules) {
  const LoadResult r = parseConfig("[log]\nlevel = \"warn\"\n", "t");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r.warnings.size(), 1u) << describe(r);
  EXPECT_EQ(r.warnings[0].path, "rules");
  EXPECT_NE(r.warnings[0].message.find("every request will be denied"), std::string::npos);
}

TEST(ConfigWarningsTest, OtherWarnings) {
  const LoadResult r = parseConfig(R"(
[gateway]
users_file = "u"
[networks.empty]
[[rules]]
action = "allow"
sources = ["loopback"]
users = ["alice"]
[[rules]]
action = "deny"
[[rules]]
name = "too late"
action = "allow"
sources = ["empty"]
)",
                                   "t");
  ASSERT_TRUE(r.ok()) << describe(r);
  std::vector<std::string> paths;
  for (const auto& w : r.warnings) paths.push_back(w.path);
  std::sort(paths.begin(), paths.end());
  EXPECT_EQ(paths, (std::vector<std::string>{"networks.empty", "rules[0]", "rules[2]"}))
      << describe(r);
}

TEST(ConfigValuesTest, ControlChannelSecurity) {
  const ControlSecurity defaults;
  EXPECT_TRUE(defaults.keyFile.empty());
  EXPECT_FALSE(defaults.encryptionRequired);
  EXPECT_EQ(defaults.maxClockSkew, 2min);
  const LoadResult r = parseConfig(R"(
[control]
listen = ["127.0.0.1:1745"]
key_file = "/etc/fwgate/control.key"
encryption = "required"
max_clock_skew = "30s"
[[rules]]
action = "deny"
)",
                                   "t");
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(r.config->control.keyFile, "/etc/fwgate/control.key");
  EXPECT_TRUE(r.config->control.encryptionRequired);
  EXPECT_EQ(r.config->control.maxClockSkew, 30s);

  // Enrolled hosts: their keys, and users in rules without a users file.
  const LoadResult hosts = parseConfig(R"(
[control]
listen = ["127.0.0.1:1745"]
[control.hosts]
"ws1.corp" = "pNLbe5V4Vqrked3VlQc/jXk8c41+7Fvic4ab6wApRGw="
[[rules]]
action = "allow"
users = ["alice"]
)",
                                       "t");
  ASSERT_TRUE(hosts.ok()) << describe(hosts);
  ASSERT_EQ(hosts.config->control.hosts.size(), 1u);
  EXPECT_EQ(hosts.config->control.hosts[0].name, "ws1.corp");
  EXPECT_EQ(hosts.config->control.hosts[0].key[0], 0xa4);  // "pN" decoded
  for (const auto& w : hosts.warnings) {
    EXPECT_EQ(w.message.find("never matches"), std::string::npos) << w.toString();
  }
}

TEST(ConfigValuesTest, AuthThrottle) {
  const AuthThrottle defaults;
  EXPECT_TRUE(defaults.enabled);
  EXPECT_EQ(defaults.delayAfter, 5u);
  EXPECT_EQ(defaults.refuseAfter, 20u);
  const LoadResult r = parseConfig(R"(
[auth_throttle]
enabled = true
window = "2m"
delay_after = 3
delay = "100ms"
max_delay = "1s"
refuse_after = 9
refuse_for = "30s"
max_pending = 2
[[rules]]
action = "deny"
)",
                                   "t");
  ASSERT_TRUE(r.ok()) << describe(r);
  const AuthThrottle& a = r.config->authThrottle;
  EXPECT_EQ(a.window, 2min);
  EXPECT_EQ(a.delayAfter, 3u);
  EXPECT_EQ(a.delay, 100ms);
  EXPECT_EQ(a.maxDelay, 1s);
  EXPECT_EQ(a.refuseAfter, 9u);
  EXPECT_EQ(a.refuseFor, 30s);
  EXPECT_EQ(a.maxPending, 2u);

  // A delay longer than the default max_delay raises it, when max_delay is not given.
  const LoadResult raised = parseConfig("[auth_throttle]\ndelay = \"6s\"\n", "t");
  ASSERT_TRUE(raised.ok()) << describe(raised);
  EXPECT_EQ(raised.config->authThrottle.maxDelay, 6s);
}

// Passwords checked and guessing not throttled, or delays no handshake waits for, are warned of;
// with no password checked anywhere, nothing is said.
TEST(ConfigWarningsTest, PasswordListenerWithoutThrottling) {
  const std::string listener =
      "[gateway]\nusers_file = \"u\"\n[[listeners]]\naddress = \"127.0.0.1\"\nport = 1080\n"
      "methods = [\"password\"]\n[[rules]]\naction = \"deny\"\n";
  const auto paths = [](const LoadResult& r) {
    std::vector<std::string> out;
    for (const auto& w : r.warnings) {
      if (w.path.rfind("auth_throttle", 0) == 0) out.push_back(w.path + ": " + w.message);
    }
    return out;
  };
  {
    const LoadResult r = parseConfig(listener, "t");
    ASSERT_TRUE(r.ok()) << describe(r);
    EXPECT_TRUE(paths(r).empty()) << describe(r);
  }
  {
    const LoadResult r = parseConfig(listener + "[auth_throttle]\nenabled = false\n", "t");
    ASSERT_TRUE(r.ok()) << describe(r);
    const auto w = paths(r);
    ASSERT_EQ(w.size(), 1u) << describe(r);
    EXPECT_NE(w[0].find("auth_throttle.enabled: listeners[0] offers \"password\""),
              std::string::npos)
        << w[0];
  }
  {
    const LoadResult r =
        parseConfig(listener + "[auth_throttle]\ndelay_after = 0\nrefuse_after = 0\n", "t");
    ASSERT_TRUE(r.ok()) << describe(r);
    const auto w = paths(r);
    ASSERT_EQ(w.size(), 1u) << describe(r);
    EXPECT_EQ(w[0].rfind("auth_throttle.refuse_after:", 0), 0u) << w[0];
  }
  {
    const LoadResult r = parseConfig(
        listener + "[limits]\nhandshake_timeout = \"3s\"\n[auth_throttle]\nmax_delay = \"5s\"\n",
        "t");
    ASSERT_TRUE(r.ok()) << describe(r);
    const auto w = paths(r);
    ASSERT_EQ(w.size(), 1u) << describe(r);
    EXPECT_EQ(w[0].rfind("auth_throttle.max_delay:", 0), 0u) << w[0];
  }
  {
    // No users file: no password is checked, so nothing to throttle.
    const LoadResult r = parseConfig(
        "[[listeners]]\naddress = \"127.0.0.1\"\nport = 1080\n[auth_throttle]\nenabled = false\n"
        "[[rules]]\naction = \"deny\"\n",
        "t");
    ASSERT_TRUE(r.ok()) << describe(r);
    EXPECT_TRUE(paths(r).empty()) << describe(r);
  }
}

TEST(ConfigWarningsTest, ErrorsSuppressWarnings) {
  const LoadResult r = parseConfig("[[listeners]]\naddress = \"0.0.0.0\"\nbogus = 1\n", "t");
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.warnings.empty()) << describe(r);
}

TEST(ConfigDefaultTest, EmbeddedDefaultIsClean) {
  const LoadResult r = parseConfig(embeddedDefaultConfig(), "<embedded>");
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_TRUE(r.warnings.empty()) << describe(r);
  const Config& c = *r.config;
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].address, "127.0.0.1");
  EXPECT_EQ(c.listeners[0].port, 1080);
  EXPECT_EQ(c.listeners[0].methods, std::vector<AuthMethod>{AuthMethod::None});
  EXPECT_EQ(c.log.sessions, "-");
  ASSERT_EQ(c.controlListeners.size(), 1u);
  EXPECT_EQ(c.controlListeners[0].address, "127.0.0.1");
  EXPECT_EQ(c.controlListeners[0].port, 1745);
  ASSERT_NE(network(c, "loopback"), nullptr);
  EXPECT_TRUE(network(c, "loopback")->firewallClients);
  ASSERT_EQ(c.rules.size(), 1u);
  EXPECT_EQ(c.rules[0].name, "loopback clients");
  EXPECT_EQ(c.rules[0].action, policy::Action::Allow);
  EXPECT_EQ(c.rules[0].sources, std::vector<std::string>{"loopback"});

  const auto engine = c.makeEngine();
  policy::Request local;
  local.client = *policy::IpAddress::parse("127.0.0.1");
  local.clientIsLocal = true;
  local.destinationName = "example.com";
  local.destinationPort = 443;
  EXPECT_TRUE(engine->decide(local).allowed);
  policy::Request remote = local;
  remote.client = *policy::IpAddress::parse("10.0.0.5");
  remote.clientIsLocal = false;
  EXPECT_EQ(engine->decide(remote).ruleName, "default-deny");
}

TEST(ConfigValuesTest, FirewallClientSettings) {
  const LoadResult r = parseConfig(
      "[control]\nlisten = [\"10.0.1.1:1745\", \"[::]:1745\"]\n"
      "[networks.lan]\nranges = [\"10.0.1.0/24\"]\ndomains = [\"corp.example\"]\n"
      "firewall_clients = true\n"
      "[firewall_client]\nrefresh_interval = \"2h\"\nweb_proxy = \"10.0.1.1:8080\"\n"
      "[firewall_client.applications.curl]\nnameresolution = \"R\"\nDisable = false\n"
      "ServerBindTcpPorts = 8000\n"
      "[firewall_client.applications.\"*\"]\nDontRemoteOutboundTcpPorts = \"25\"\n"
      "[[rules]]\naction = \"allow\"\nsources = [\"lan\"]\n",
      "t");
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_TRUE(r.warnings.empty()) << describe(r);
  const Config& c = *r.config;
  ASSERT_EQ(c.controlListeners.size(), 2u);
  EXPECT_EQ(c.controlListeners[1].address, "::");
  EXPECT_TRUE(network(c, "lan")->firewallClients);
  EXPECT_FALSE(network(c, "loopback")->firewallClients);
  EXPECT_EQ(c.firewallClient.refreshInterval, 2h);
  EXPECT_EQ(c.firewallClient.webProxy, "10.0.1.1:8080");
  EXPECT_TRUE(c.firewallClient.requireDefinition);  // the Winsock Proxy's rule by default
  EXPECT_EQ(c.firewallClient.settingsIni,
            "[*]\nDontRemoteOutboundTcpPorts=25\n"
            "[curl]\nDisable=0\nServerBindTcpPorts=8000\nNameResolution=R\n");
}

TEST(ConfigValuesTest, RequireDefinition) {
  const LoadResult off = parseConfig("[firewall_client]\nrequire_definition = false\n", "t");
  ASSERT_TRUE(off.ok()) << describe(off);
  EXPECT_FALSE(off.config->firewallClient.requireDefinition);
  const LoadResult bad = parseConfig("[firewall_client]\nrequire_definition = \"no\"\n", "t");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.errors[0].path, "firewall_client.require_definition");
}

TEST(ConfigWarningsTest, FirewallClientsWithoutControlChannel) {
  const LoadResult r = parseConfig(
      "[networks.lan]\nranges = [\"10.0.1.0/24\"]\nfirewall_clients = true\n"
      "[[rules]]\naction = \"allow\"\nsources = [\"lan\"]\n",
      "t");
  ASSERT_TRUE(r.ok()) << describe(r);
  ASSERT_EQ(r.warnings.size(), 1u) << describe(r);
  EXPECT_EQ(r.warnings[0].path, "control.listen");
}

TEST(ConfigDefaultTest, ExampleFileIsClean) {
  const LoadResult r = loadConfigFile(FWGATE_SOURCE_DIR "/examples/gateway.toml");
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_TRUE(r.warnings.empty()) << describe(r);
  EXPECT_GE(r.config->listeners.size(), 2u);
  EXPECT_GE(r.config->rules.size(), 3u);
}

TEST(ConfigEngineTest, MakeEngineDecidesWithTheConfiguredRules) {
  const LoadResult r = parseConfig(R"(
[gateway]
users_file = "u"
[[listeners]]
methods = ["password"]
[groups]
ops = ["dave"]
[networks.lan]
ranges = ["10.0.0.0/8"]
[networks.sites]
domains = ["example.com"]
[[rules]]
name = "ops anywhere"
action = "allow"
groups = ["ops"]
[[rules]]
name = "lan sites"
action = "allow"
sources = ["lan"]
destinations = ["sites"]
ports = [443]
)",
                                   "t");
  ASSERT_TRUE(r.ok()) << describe(r);
  const auto engine = r.config->makeEngine();
  policy::Request q;
  q.client = *policy::IpAddress::parse("10.1.2.3");
  q.destinationName = "www.example.com";
  q.destinationPort = 443;
  EXPECT_EQ(engine->decide(q).ruleName, "lan sites");
  q.destinationPort = 80;
  EXPECT_EQ(engine->decide(q).ruleName, "default-deny");
  q.user = "dave";
  EXPECT_EQ(engine->decide(q).ruleName, "ops anywhere");
}

struct DurationCase {
  std::string text;
  bool valid;
  std::int64_t millis;
};

TEST(DurationTest, ParseTable) {
  const std::vector<DurationCase> cases = {
      {"250ms", true, 250},
      {"10s", true, 10000},
      {"5m", true, 300000},
      {"2h", true, 7200000},
      {"10", true, 10000},
      {"0", true, 0},
      {"0ms", true, 0},
      {"", false, 0},
      {"s", false, 0},
      {"ms", false, 0},
      {"10x", false, 0},
      {"10S", false, 0},
      {"1.5s", false, 0},
      {"-1s", false, 0},
      {" 10s", false, 0},
      {"10 s", false, 0},
      {"10s ", false, 0},
      {"1h30m", false, 0},
      {"99999999999999999999s", false, 0},
      {"9223372036854775807h", false, 0},
  };
  for (const auto& c : cases) {
    Duration d{-1};
    ASSERT_EQ(parseDuration(c.text, d), c.valid) << "\"" << c.text << "\"";
    if (c.valid) {
      EXPECT_EQ(d.count(), c.millis) << c.text;
    }
  }
}

TEST(DiagnosticTest, ToString) {
  EXPECT_EQ((Diagnostic{"rules[1].action", "expected \"allow\" or \"deny\""}.toString()),
            "rules[1].action: expected \"allow\" or \"deny\"");
  EXPECT_EQ((Diagnostic{"", "cannot open x"}.toString()), "cannot open x");
}

}  // namespace
}  // namespace fwgate::config
