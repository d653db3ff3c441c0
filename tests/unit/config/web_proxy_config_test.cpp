// [web_proxy]: every key lands in its field, the defaults, each error with its key path, the
// embedded default's listener, and one address and port used once across the services.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace fwgate::config {
namespace {

using namespace std::chrono_literals;

std::string describe(const LoadResult& r) {
  std::string out;
  for (const auto& e : r.errors) out += "\n  error: " + e.toString();
  return out;
}

std::vector<std::string> errorPaths(const LoadResult& r) {
  std::vector<std::string> paths;
  for (const auto& e : r.errors) paths.push_back(e.path);
  std::sort(paths.begin(), paths.end());
  return paths;
}

policy::IpRange range(std::string_view text) {
  const auto r = policy::IpRange::parse(text);
  EXPECT_TRUE(r.has_value()) << text;
  return r.value_or(policy::IpRange{});
}

TEST(WebProxyConfigTest, EveryKeyLandsInItsField) {
  const LoadResult r = parseConfig(R"(
[web_proxy]
listen = ["10.0.1.1:8080", "[fd00::1]:3128", "127.0.0.1:0"]
tunnel_ports = [443, "8443-8444", 563]
via = false
via_name = "gw-1.corp"
x_forwarded_for = true
realm = "Corp proxy"
pac_proxy = "proxy.corp.example:8080"
backup_route = "PROXY backup.corp.example:3128"
direct_domains = ["*.intranet.example", "Partner.Example."]
direct_ranges = ["192.0.2.0/24", "198.51.100.1-198.51.100.9", "2001:db8::/32"]
max_request_line = 4096
max_header_bytes = 32768
max_header_count = 50
header_timeout = "5s"
keep_alive_timeout = "2m"
max_connections_per_client = 0
origin_pool_size = 0
origin_idle_timeout = 45
)",
                                   "t");
  ASSERT_TRUE(r.ok()) << describe(r);
  const WebProxySettings& w = r.config->webProxy;
  ASSERT_EQ(w.listeners.size(), 3u);
  EXPECT_EQ(w.listeners[0].address, "10.0.1.1");
  EXPECT_EQ(w.listeners[0].port, 8080);
  EXPECT_EQ(w.listeners[1].address, "fd00::1");
  EXPECT_EQ(w.listeners[1].port, 3128);
  EXPECT_EQ(w.listeners[2].port, 0);
  EXPECT_EQ(w.tunnelPorts, (std::vector<policy::PortRange>{{443, 443}, {8443, 8444}, {563, 563}}));
  EXPECT_FALSE(w.via);
  EXPECT_EQ(w.viaName, "gw-1.corp");
  EXPECT_TRUE(w.xForwardedFor);
  EXPECT_EQ(w.realm, "Corp proxy");
  EXPECT_EQ(w.pacProxy, "proxy.corp.example:8080");
  EXPECT_EQ(w.backupRoute, "PROXY backup.corp.example:3128");
  // "*." and a trailing dot are dropped, names lower-cased: what the PAC script compares with.
  EXPECT_EQ(w.directDomains, (std::vector<std::string>{"intranet.example", "partner.example"}));
  EXPECT_EQ(w.directRanges,
            (std::vector<policy::IpRange>{range("192.0.2.0/24"), range("198.51.100.1-198.51.100.9"),
                                          range("2001:db8::/32")}));
  EXPECT_EQ(w.maxRequestLine, 4096u);
  EXPECT_EQ(w.maxHeaderBytes, 32768u);
  EXPECT_EQ(w.maxHeaderCount, 50u);
  EXPECT_EQ(w.headerTimeout, 5s);
  EXPECT_EQ(w.keepAliveTimeout, 2min);
  EXPECT_EQ(w.maxConnectionsPerClient, 0u);
  EXPECT_EQ(w.originPoolSize, 0u);
  EXPECT_EQ(w.originIdleTimeout, 45s);
}

TEST(WebProxyConfigTest, DefaultsWithoutTheSection) {
  const LoadResult r = parseConfig("", "t");
  ASSERT_TRUE(r.ok()) << describe(r);
  const WebProxySettings& w = r.config->webProxy;
  EXPECT_TRUE(w.listeners.empty());  // a file without [web_proxy] has no Web Proxy
  EXPECT_EQ(w.tunnelPorts, (std::vector<policy::PortRange>{{443, 443}}));
  EXPECT_TRUE(w.via);
  EXPECT_EQ(w.viaName, "fwgate");
  EXPECT_FALSE(w.xForwardedFor);
  EXPECT_EQ(w.realm, "fwgate");
  EXPECT_EQ(w.pacProxy, "");
  EXPECT_EQ(w.backupRoute, "DIRECT");
  EXPECT_TRUE(w.directDomains.empty());
  EXPECT_TRUE(w.directRanges.empty());
  EXPECT_EQ(w.maxRequestLine, 8192u);
  EXPECT_EQ(w.maxHeaderBytes, 65536u);
  EXPECT_EQ(w.maxHeaderCount, 100u);
  EXPECT_EQ(w.headerTimeout, 10s);
  EXPECT_EQ(w.keepAliveTimeout, 60s);
  EXPECT_EQ(w.maxConnectionsPerClient, 256u);
  EXPECT_EQ(w.originPoolSize, 64u);
  EXPECT_EQ(w.originIdleTimeout, 30s);
  // An empty section is the same as none.
  const LoadResult empty = parseConfig("[web_proxy]\n", "t");
  ASSERT_TRUE(empty.ok()) << describe(empty);
  EXPECT_EQ(empty.config->webProxy, w);
}

TEST(WebProxyConfigTest, EmptyTunnelPortsAllowNoConnectAndEmptyBackupNone) {
  const LoadResult r = parseConfig("[web_proxy]\ntunnel_ports = []\nbackup_route = \"\"\n", "t");
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_TRUE(r.config->webProxy.tunnelPorts.empty());
  EXPECT_EQ(r.config->webProxy.backupRoute, "");
}

TEST(WebProxyConfigTest, AcceptedProxyEndpoints) {
  for (const char* proxy : {"10.0.0.1:8080", "[fd00::1]:8080", "gw:1", "gw.corp.example:65535",
                            "under_score.example:80"}) {
    const std::string text = std::string("[web_proxy]\npac_proxy = \"") + proxy +
                             "\"\nbackup_route = \"PROXY " + proxy + "\"\n";
    const LoadResult r = parseConfig(text, "t");
    EXPECT_TRUE(r.ok()) << proxy << describe(r);
  }
}

TEST(WebProxyConfigTest, TheEmbeddedDefaultServesTheWebProxyOnLoopback8080) {
  const LoadResult r = parseConfig(embeddedDefaultConfig(), "<embedded>");
  ASSERT_TRUE(r.ok()) << describe(r);
  ASSERT_EQ(r.config->webProxy.listeners.size(), 1u);
  EXPECT_EQ(r.config->webProxy.listeners[0].address, "127.0.0.1");
  EXPECT_EQ(r.config->webProxy.listeners[0].port, 8080);
  // Beside SOCKS on 1080 and the control channel on 1745.
  ASSERT_EQ(r.config->listeners.size(), 1u);
  EXPECT_EQ(r.config->listeners[0].port, 1080);
  ASSERT_EQ(r.config->controlListeners.size(), 1u);
  EXPECT_EQ(r.config->controlListeners[0].port, 1745);
}

TEST(WebProxyConfigTest, HttpIsACommandOfTheRules) {
  const LoadResult r = parseConfig(R"(
[[rules]]
action = "allow"
sources = ["loopback"]
commands = ["http", "connect"]
)",
                                   "t");
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(r.config->rules[0].commands, static_cast<std::uint8_t>(policy::Command::Http) |
                                             static_cast<std::uint8_t>(policy::Command::Connect));
  const LoadResult bad =
      parseConfig("[[rules]]\naction = \"allow\"\ncommands = [\"http\", \"https\"]\n", "t");
  ASSERT_EQ(errorPaths(bad), std::vector<std::string>{"rules[0].commands[1]"}) << describe(bad);
  // The message lists every command, http included.
  EXPECT_NE(bad.errors[0].message.find("\"http\""), std::string::npos) << describe(bad);
}

struct ErrorCase {
  std::string description;
  std::string toml;  // after "[web_proxy]\n" unless it starts with '[' or '#'
  std::vector<std::string> paths;
};

class WebProxyErrorTest : public testing::TestWithParam<ErrorCase> {};

TEST_P(WebProxyErrorTest, ReportsThePath) {
  const ErrorCase& c = GetParam();
  const bool whole = c.toml.starts_with("[") || c.toml.starts_with("#");
  const std::string text = whole ? c.toml : "[web_proxy]\n" + c.toml;
  const LoadResult r = parseConfig(text, "t");
  std::vector<std::string> expected = c.paths;
  std::sort(expected.begin(), expected.end());
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(errorPaths(r), expected) << c.description << describe(r);
  for (const auto& e : r.errors) EXPECT_NE(e.line, 0u) << c.description << ": " << e.toString();
}

INSTANTIATE_TEST_SUITE_P(
    Keys, WebProxyErrorTest,
    testing::Values(
        ErrorCase{"unknown key", "listn = []\n", {"web_proxy.listn"}},
        ErrorCase{"not a table", "#\nweb_proxy = 1\n", {"web_proxy"}},
        ErrorCase{"listen: not an array", "listen = \"127.0.0.1:8080\"\n", {"web_proxy.listen"}},
        ErrorCase{"listen: a name", "listen = [\"localhost:8080\"]\n", {"web_proxy.listen[0]"}},
        ErrorCase{"listen: no port", "listen = [\"10.0.0.1\"]\n", {"web_proxy.listen[0]"}},
        ErrorCase{
            "listen: port too large", "listen = [\"10.0.0.1:65536\"]\n", {"web_proxy.listen[0]"}},
        ErrorCase{
            "listen: IPv6 without brackets", "listen = [\"::1:8080\"]\n", {"web_proxy.listen[0]"}},
        ErrorCase{"listen: not a string", "listen = [8080]\n", {"web_proxy.listen[0]"}},
        ErrorCase{"listen: twice",
                  "listen = [\"10.0.0.1:8080\", \"10.0.0.1:8080\"]\n",
                  {"web_proxy.listen[1]"}},
        ErrorCase{"tunnel_ports: port 0", "tunnel_ports = [0]\n", {"web_proxy.tunnel_ports[0]"}},
        ErrorCase{"tunnel_ports: reversed",
                  "tunnel_ports = [\"9000-8000\"]\n",
                  {"web_proxy.tunnel_ports[0]"}},
        ErrorCase{"tunnel_ports: not an array", "tunnel_ports = 443\n", {"web_proxy.tunnel_ports"}},
        ErrorCase{"via: not a boolean", "via = \"yes\"\n", {"web_proxy.via"}},
        ErrorCase{"via_name: empty", "via_name = \"\"\n", {"web_proxy.via_name"}},
        ErrorCase{"via_name: a space", "via_name = \"my proxy\"\n", {"web_proxy.via_name"}},
        ErrorCase{"x_forwarded_for: not a boolean",
                  "x_forwarded_for = 1\n",
                  {"web_proxy.x_forwarded_for"}},
        ErrorCase{"realm: a quote", "realm = 'say \"hi\"'\n", {"web_proxy.realm"}},
        ErrorCase{"realm: a line break", "realm = \"a\\nb\"\n", {"web_proxy.realm"}},
        ErrorCase{"pac_proxy: no port", "pac_proxy = \"gw.corp\"\n", {"web_proxy.pac_proxy"}},
        ErrorCase{"pac_proxy: port 0", "pac_proxy = \"gw.corp:0\"\n", {"web_proxy.pac_proxy"}},
        ErrorCase{"pac_proxy: bad name", "pac_proxy = \"gw corp:80\"\n", {"web_proxy.pac_proxy"}},
        ErrorCase{"pac_proxy: v4 in brackets",
                  "pac_proxy = \"[10.0.0.1]:80\"\n",
                  {"web_proxy.pac_proxy"}},
        ErrorCase{"pac_proxy: a script-breaking quote",
                  "pac_proxy = 'gw\";alert(1);\"x:80'\n",
                  {"web_proxy.pac_proxy"}},
        ErrorCase{
            "backup_route: lower-case", "backup_route = \"direct\"\n", {"web_proxy.backup_route"}},
        ErrorCase{"backup_route: SOCKS",
                  "backup_route = \"SOCKS gw:1080\"\n",
                  {"web_proxy.backup_route"}},
        ErrorCase{"backup_route: PROXY without port",
                  "backup_route = \"PROXY gw\"\n",
                  {"web_proxy.backup_route"}},
        ErrorCase{"backup_route: two routes",
                  "backup_route = \"PROXY a:1; DIRECT\"\n",
                  {"web_proxy.backup_route"}},
        ErrorCase{"direct_domains: an address",
                  "direct_domains = [\"10.0.0.1\"]\n",
                  {"web_proxy.direct_domains[0]"}},
        ErrorCase{"direct_domains: a CIDR block",
                  "direct_domains = [\"ok.example\", \"10.0.0.0/8\"]\n",
                  {"web_proxy.direct_domains[1]"}},
        ErrorCase{"direct_domains: not a name",
                  "direct_domains = [\"bad name.example\"]\n",
                  {"web_proxy.direct_domains[0]"}},
        ErrorCase{"direct_domains: a wildcard inside",
                  "direct_domains = [\"a.*.example\"]\n",
                  {"web_proxy.direct_domains[0]"}},
        ErrorCase{"direct_ranges: prefix too long",
                  "direct_ranges = [\"10.0.0.0/33\"]\n",
                  {"web_proxy.direct_ranges[0]"}},
        ErrorCase{"direct_ranges: a name",
                  "direct_ranges = [\"corp.example\"]\n",
                  {"web_proxy.direct_ranges[0]"}},
        ErrorCase{"direct_ranges: mixed families",
                  "direct_ranges = [\"10.0.0.1-::1\"]\n",
                  {"web_proxy.direct_ranges[0]"}},
        ErrorCase{"max_request_line: too small",
                  "max_request_line = 255\n",
                  {"web_proxy.max_request_line"}},
        ErrorCase{"max_request_line: more than the head",
                  "max_request_line = 65536\nmax_header_bytes = 8192\n",
                  {"web_proxy.max_request_line"}},
        ErrorCase{"max_header_bytes: too small",
                  "max_header_bytes = 1023\n",
                  {"web_proxy.max_header_bytes"}},
        ErrorCase{"max_header_bytes: too large",
                  "max_header_bytes = 4194305\n",
                  {"web_proxy.max_header_bytes"}},
        ErrorCase{"max_header_count: too small",
                  "max_header_count = 7\n",
                  {"web_proxy.max_header_count"}},
        ErrorCase{"max_header_count: a string",
                  "max_header_count = \"100\"\n",
                  {"web_proxy.max_header_count"}},
        ErrorCase{"header_timeout: not a duration",
                  "header_timeout = \"soon\"\n",
                  {"web_proxy.header_timeout"}},
        ErrorCase{"keep_alive_timeout: zero",
                  "keep_alive_timeout = 0\n",
                  {"web_proxy.keep_alive_timeout"}},
        ErrorCase{"origin_idle_timeout: not a duration",
                  "origin_idle_timeout = \"1 minute\"\n",
                  {"web_proxy.origin_idle_timeout"}},
        ErrorCase{"max_connections_per_client: negative",
                  "max_connections_per_client = -1\n",
                  {"web_proxy.max_connections_per_client"}},
        ErrorCase{"origin_pool_size: too large",
                  "origin_pool_size = 1025\n",
                  {"web_proxy.origin_pool_size"}},
        ErrorCase{"firewall_client.web_proxy: no port",
                  "[firewall_client]\nweb_proxy = \"gw.corp\"\n",
                  {"firewall_client.web_proxy"}},
        ErrorCase{"several errors, each reported",
                  "via = 1\nrealm = \"\\\\\"\norigin_pool_size = -5\n",
                  {"web_proxy.origin_pool_size", "web_proxy.realm", "web_proxy.via"}}),
    [](const testing::TestParamInfo<ErrorCase>& info) {
      return "case" + std::to_string(info.index);
    });

TEST(WebProxyConfigTest, OneEndpointServesOneService) {
  // [control] is read before [web_proxy], whatever the order in the file: the later one is named.
  const LoadResult control = parseConfig(R"(
[web_proxy]
listen = ["127.0.0.1:8080"]
[control]
listen = ["127.0.0.1:8080"]
)",
                                         "t");
  ASSERT_EQ(errorPaths(control), std::vector<std::string>{"web_proxy.listen[0]"})
      << describe(control);
  EXPECT_NE(control.errors[0].message.find("control.listen[0]"), std::string::npos)
      << describe(control);
  const LoadResult socks = parseConfig(R"(
[[listeners]]
address = "::"
port = 3128
[web_proxy]
listen = ["[0:0::0]:3128"]
)",
                                       "t");
  ASSERT_EQ(errorPaths(socks), std::vector<std::string>{"web_proxy.listen[0]"}) << describe(socks);
  EXPECT_NE(socks.errors[0].message.find("listeners[0]"), std::string::npos) << describe(socks);
  // Port 0 (a kernel-picked port) is never a duplicate; another address or port is not either.
  const LoadResult fine = parseConfig(R"(
[[listeners]]
address = "127.0.0.1"
port = 0
[control]
listen = ["127.0.0.1:0", "127.0.0.1:1745"]
[web_proxy]
listen = ["127.0.0.1:0", "127.0.0.2:1745", "127.0.0.1:8080"]
)",
                                      "t");
  EXPECT_TRUE(fine.ok()) << describe(fine);
}

}  // namespace
}  // namespace fwgate::config
