// The firewall client's own logic: tables, Locallat.txt, routes, server names, the cache, the
// assembly of settings from every source, and the refresh schedule with a clock the test controls.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "client/client_config.hpp"
#include "client/local_table.hpp"
#include "client/refresh_schedule.hpp"
#include "protocol/control.hpp"

namespace fwgate::client {
namespace {

namespace control = protocol::control;

IpAddress ip(const char* text) {
  IpAddress a;
  EXPECT_TRUE(parseAddress(text, a)) << text;
  return a;
}

AddressRange range(const char* first, const char* last) {
  return {ip(first), ip(last)};
}

TEST(LocalAddressTable, RangesOfBothFamiliesAndMappedAddresses) {
  LocalAddressTable lat;
  ASSERT_TRUE(lat.add(range("10.0.1.0", "10.0.1.255")));
  ASSERT_TRUE(lat.add(range("2001:db8::", "2001:db8::ffff")));
  EXPECT_FALSE(lat.add(range("10.0.0.9", "10.0.0.1")));        // backwards
  EXPECT_FALSE(lat.add({ip("10.0.0.1"), ip("2001:db8::1")}));  // mixed families
  EXPECT_TRUE(lat.contains(ip("10.0.1.0")));
  EXPECT_TRUE(lat.contains(ip("10.0.1.255")));
  EXPECT_FALSE(lat.contains(ip("10.0.2.0")));
  EXPECT_TRUE(lat.contains(ip("::ffff:10.0.1.7")));  // parseAddress unmaps
  IpAddress mapped;
  mapped.family = 6;
  mapped.bytes = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 1, 7};
  EXPECT_TRUE(lat.contains(mapped));  // contains() unmaps too
  EXPECT_TRUE(lat.contains(ip("2001:db8::abcd")));
  EXPECT_FALSE(lat.contains(ip("2001:db8::1:0")));
  EXPECT_EQ(lat.size(), 2u);
}

TEST(LocalAddressTable, AlwaysLocal) {
  for (const char* a : {"127.0.0.1", "127.9.9.9", "0.0.0.0", "169.254.1.1", "224.0.0.1",
                        "255.255.255.255", "::1", "::", "fe80::1", "ff02::1", "::ffff:127.0.0.1"}) {
    EXPECT_TRUE(alwaysLocal(ip(a))) << a;
  }
  for (const char* a : {"10.0.0.1", "203.0.113.7", "2001:db8::1", "::ffff:203.0.113.7"}) {
    EXPECT_FALSE(alwaysLocal(ip(a))) << a;
  }
}

TEST(LocalLat, PairsSingleAddressesCommentsAndBadLines) {
  const std::string text =
      "# the seed's format: each range a pair of addresses\n"
      "10.0.0.0 10.0.0.255\n"
      "192.168.5.7   192.168.5.7   # one address, written twice\n"
      "172.16.0.1\n"
      "172.17.0.0-172.17.0.9\n"
      "\n"
      "not-an-address 10.0.0.1\n"
      "10.9.0.9 10.9.0.1\n";
  LocalAddressTable lat;
  std::vector<std::uint32_t> bad;
  const std::size_t added = parseLocalLat(
      text, lat,
      [](void* c, std::uint32_t line) {
        static_cast<std::vector<std::uint32_t>*>(c)->push_back(line);
      },
      &bad);
  EXPECT_EQ(added, 4u);
  EXPECT_EQ(bad, (std::vector<std::uint32_t>{7, 8}));
  EXPECT_TRUE(lat.contains(ip("10.0.0.128")));
  EXPECT_TRUE(lat.contains(ip("192.168.5.7")));
  EXPECT_FALSE(lat.contains(ip("192.168.5.8")));
  EXPECT_TRUE(lat.contains(ip("172.16.0.1")));
  EXPECT_TRUE(lat.contains(ip("172.17.0.9")));
}

TEST(Routes, OnlyDirectlyConnectedOnesAreLocal) {
  // /proc/net/route: little-endian hex words as the kernel prints them on x86.
  const std::string v4 =
      "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
      "eth0\t00000000\t0101000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"   // default via 10.0.1.1
      "eth0\t0001000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"   // 10.0.1.0/24 direct
      "eth1\t0000A8C0\t0101000A\t0003\t0\t0\t0\t0000FFFF\t0\t0\t0\n"   // 192.168/16 via router
      "eth2\t000010AC\t00000000\t0201\t0\t0\t0\t0000FFFF\t0\t0\t0\n";  // reject route
  LocalAddressTable lat;
  EXPECT_EQ(parseIpv4Routes(v4, lat), 1u);
  EXPECT_TRUE(lat.contains(ip("10.0.1.200")));
  EXPECT_FALSE(lat.contains(ip("10.0.2.1")));
  EXPECT_FALSE(lat.contains(ip("192.168.1.1")));
  EXPECT_FALSE(lat.contains(ip("203.0.113.7")));

  const std::string v6 =
      "20010db8000000010000000000000000 40 00000000000000000000000000000000 00 "
      "00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth0\n"
      "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
      "fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n"
      "fe800000000000000000000000000000 40 00000000000000000000000000000000 00 "
      "00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth0\n";
  LocalAddressTable lat6;
  EXPECT_EQ(parseIpv6Routes(v6, lat6), 1u);
  EXPECT_TRUE(lat6.contains(ip("2001:db8:0:1::42")));
  EXPECT_FALSE(lat6.contains(ip("2001:db8:0:2::1")));
}

TEST(LocalDomainTable, SuffixesOnLabelBoundaries) {
  LocalDomainTable ldt;
  ASSERT_TRUE(ldt.add("Corp.Example."));
  ASSERT_TRUE(ldt.add(".lab"));
  EXPECT_TRUE(ldt.contains("corp.example"));
  EXPECT_TRUE(ldt.contains("www.CORP.example."));
  EXPECT_FALSE(ldt.contains("notcorp.example"));
  EXPECT_FALSE(ldt.contains("example"));
  EXPECT_TRUE(ldt.contains("printer.lab"));
}

TEST(ServerAddress, Forms) {
  struct Case {
    const char* text;
    bool ok;
    const char* host;
    int port;
  };
  for (const Case& c : std::vector<Case>{{"gw", true, "gw", 1745},
                                         {"gw.corp:1800", true, "gw.corp", 1800},
                                         {"10.0.0.1", true, "10.0.0.1", 1745},
                                         {"[2001:db8::1]:99", true, "2001:db8::1", 99},
                                         {"2001:db8::1", true, "2001:db8::1", 1745},
                                         {"[2001:db8::1]", true, "2001:db8::1", 1745},
                                         {"gw:0", false, "", 0},
                                         {"gw:70000", false, "", 0},
                                         {"", false, "", 0},
                                         {"g w", false, "", 0},
                                         {"[::1", false, "", 0}}) {
    ServerAddress s;
    EXPECT_EQ(parseServer(c.text, s), c.ok) << c.text;
    if (!c.ok) continue;
    EXPECT_STREQ(s.host.data(), c.host) << c.text;
    EXPECT_EQ(s.port, c.port) << c.text;
  }
  ServerAddress v6;
  ASSERT_TRUE(parseServer("[2001:db8::1]:99", v6));
  char text[100];
  formatServer(v6, text, sizeof text);
  EXPECT_STREQ(text, "[2001:db8::1]:99");
}

// A Config frame as a gateway sends it.
std::vector<std::uint8_t> configFrame(const char* settings) {
  std::vector<std::uint8_t> frame(4096);
  control::FrameWriter w(frame, control::MessageType::Config);
  w.u8(control::Tag::Status, 0)
      .u16(control::Tag::Version, control::kVersion)
      .text(control::Tag::ServerName, "gw1")
      .text(control::Tag::Network, "internal")
      .range(control::Tag::Range, range("10.0.1.0", "10.0.1.255"))
      .text(control::Tag::DomainSuffix, "corp.example")
      .text(control::Tag::Settings, settings)
      .u32(control::Tag::RefreshSeconds, 7200);
  frame.resize(w.finish());
  return frame;
}

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/fwgate-client-test.XXXXXX";
    path_ = ::mkdtemp(pattern);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name, const std::string& text) const {
    const std::string p = path_ + "/" + name;
    std::filesystem::create_directories(std::filesystem::path(p).parent_path());
    std::ofstream(p) << text;
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(Cache, WriteAndReadBack) {
  TempDir dir;
  const auto frame = configFrame("[*]\nDontRemoteOutboundTcpPorts=25\n");
  CacheHeader header;
  header.fetchedAt = 1700000000;
  ASSERT_TRUE(parseServer("gw.corp:1745", header.server));
  const std::string path = dir.path() + "/deep/er/client.cache";
  ASSERT_TRUE(writeCache(path.c_str(), header, frame));
  std::vector<char> buf(64 * 1024);
  const long n = readWholeFile(path.c_str(), buf.data(), buf.size());
  ASSERT_GT(n, 0);
  CacheHeader back;
  protocol::Bytes body;
  ASSERT_TRUE(
      parseCache({reinterpret_cast<const std::uint8_t*>(buf.data()), static_cast<std::size_t>(n)},
                 back, body));
  EXPECT_EQ(back.fetchedAt, 1700000000);
  EXPECT_STREQ(back.server.host.data(), "gw.corp");
  EXPECT_STREQ(back.server.detectedBy.data(), "");
  EXPECT_EQ(body.size() + control::kHeaderSize, frame.size());
  // A truncated cache is refused, not half-used.
  CacheHeader ignored;
  EXPECT_FALSE(parseCache(
      {reinterpret_cast<const std::uint8_t*>(buf.data()), static_cast<std::size_t>(n - 1)}, ignored,
      body));
}

TEST(Cache, AServerFoundByDnsSaysSoThroughTheCache) {
  TempDir dir;
  const auto frame = configFrame("");
  CacheHeader header{1700000000, {}};
  ASSERT_TRUE(parseServer("gw.corp.test:1760", header.server));
  std::snprintf(header.server.detectedBy.data(), header.server.detectedBy.size(), "%s",
                "_fwgate._tcp.corp.test SRV");
  const std::string path = dir.path() + "/client.cache";
  ASSERT_TRUE(writeCache(path.c_str(), header, frame));
  std::vector<char> buf(64 * 1024);
  const long n = readWholeFile(path.c_str(), buf.data(), buf.size());
  ASSERT_GT(n, 0);
  const std::string head =
      "fwgate-cache 1\nfetched 1700000000\nserver gw.corp.test:1760\n"
      "detected _fwgate._tcp.corp.test SRV\n\n";
  EXPECT_EQ(std::string(buf.data(), head.size()), head);
  CacheHeader back;
  protocol::Bytes body;
  ASSERT_TRUE(
      parseCache({reinterpret_cast<const std::uint8_t*>(buf.data()), static_cast<std::size_t>(n)},
                 back, body));
  EXPECT_STREQ(back.server.host.data(), "gw.corp.test");
  EXPECT_EQ(back.server.port, 1760);
  EXPECT_STREQ(back.server.detectedBy.data(), "_fwgate._tcp.corp.test SRV");
}

class Environment {
 public:
  explicit Environment(std::vector<std::pair<const char*, std::string>> vars) {
    for (const char* name :
         {"FWGATE_SERVER", "FWGATE_USER", "FWGATE_PASSWORD", "FWGATE_DISABLE", "FWGATE_CONFIG_DIR",
          "FWGATE_USER_CONFIG", "FWGATE_CACHE", "HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"}) {
      const char* old = ::getenv(name);
      saved_.emplace_back(name, old != nullptr ? std::optional<std::string>(old) : std::nullopt);
      ::unsetenv(name);
    }
    for (const auto& [name, value] : vars) ::setenv(name, value.c_str(), 1);
  }
  ~Environment() {
    for (const auto& [name, value] : saved_) {
      if (value) {
        ::setenv(name, value->c_str(), 1);
      } else {
        ::unsetenv(name);
      }
    }
  }

 private:
  std::vector<std::pair<const char*, std::optional<std::string>>> saved_;
};

// Paths from the environment, without DNS detection (which would read the machine's resolver
// files): discovery_test.cpp tests it against a name server of its own.
Paths testPaths() {
  Paths paths;
  defaultPaths(paths);
  EXPECT_STREQ(paths.resolvConf.data(), "/etc/resolv.conf");
  EXPECT_STREQ(paths.nsswitchConf.data(), "/etc/nsswitch.conf");
  paths.resolvConf[0] = '\0';
  return paths;
}

ClientConfig assembleFor(const std::string& app, const std::vector<std::uint8_t>* fresh = nullptr) {
  const Paths paths = testPaths();
  static ClientConfig config;  // large: not on the stack
  std::vector<char> scratch(256 * 1024);
  protocol::Bytes body;
  if (fresh != nullptr) body = protocol::Bytes(*fresh).subspan(control::kHeaderSize);
  assemble(config, paths, app, body, {scratch.data(), scratch.size()}, false);
  return config;
}

TEST(Assemble, EverySourceInItsPlace) {
  TempDir dir;
  const auto frame = configFrame("[curl]\nNameResolution=L\nDontRemoteOutboundTcpPorts=1\n");
  CacheHeader header{1700000000, {}};
  ASSERT_TRUE(parseServer("gw-from-cache", header.server));
  ASSERT_TRUE(writeCache((dir.path() + "/cache").c_str(), header, frame));
  dir.file("etc/client.ini",
           "[Common]\nServerName=gw-common:1800\nUser=alice\nPassword=one\n"
           "[curl]\nDontRemoteOutboundTcpPorts=2\n");
  dir.file("home/client.ini", "[Common]\nPassword=two\n[*]\nDontRemoteOutboundTcpPorts=3\n");
  dir.file("etc/locallat.txt", "192.168.9.1 192.168.9.9\n");
  Environment env({{"FWGATE_CONFIG_DIR", dir.path() + "/etc"},
                   {"FWGATE_USER_CONFIG", dir.path() + "/home/client.ini"},
                   {"FWGATE_CACHE", dir.path() + "/cache"}});
  const ClientConfig c = assembleFor("curl");
  EXPECT_TRUE(c.haveGatewayConfig);
  EXPECT_EQ(c.fetchedAt, 1700000000);
  EXPECT_EQ(c.refreshSeconds, 7200u);
  EXPECT_STREQ(c.network.data(), "internal");
  EXPECT_STREQ(c.gatewayName.data(), "gw1");
  EXPECT_TRUE(c.lat.contains(ip("10.0.1.9")));
  EXPECT_TRUE(c.lat.contains(ip("192.168.9.5")));
  EXPECT_EQ(c.gatewayRanges, 1u);
  EXPECT_EQ(c.localLatRanges, 1u);
  EXPECT_TRUE(c.ldt.contains("www.corp.example"));
  // Gateway < all users < user; the user's [*] beats the lower levels' [curl].
  EXPECT_EQ(c.settings.nameResolution, 'L');
  ASSERT_EQ(c.settings.dontRemoteTcp.count, 1u);
  EXPECT_EQ(c.settings.dontRemoteTcp.ranges[0].first, 3);
  // [Common]: the user's file overrides the password only.
  EXPECT_STREQ(c.user.data(), "alice");
  EXPECT_STREQ(c.password.data(), "two");
  EXPECT_STREQ(c.server.host.data(), "gw-common");
  EXPECT_EQ(c.server.port, 1800);
  EXPECT_STREQ(c.serverFrom, "client.ini [Common]");
}

TEST(Assemble, WhichGatewayWins) {
  TempDir dir;
  const auto frame = configFrame("[wget]\nServerName=gw-app\n");
  CacheHeader header{1700000000, {}};
  ASSERT_TRUE(parseServer("gw-cache", header.server));
  ASSERT_TRUE(writeCache((dir.path() + "/cache").c_str(), header, frame));
  struct Case {
    const char* app;
    const char* ini;
    const char* env;
    const char* expected;
    const char* from;
  };
  for (const Case& c : std::vector<Case>{
           {"curl", "", nullptr, "gw-cache", "cache"},
           {"curl", "[Common]\nServerName=gw-common\n", nullptr, "gw-common",
            "client.ini [Common]"},
           {"wget", "[Common]\nServerName=gw-common\n", nullptr, "gw-app", "application settings"},
           {"wget", "[Common]\nServerName=gw-common\n", "gw-env", "gw-env", "FWGATE_SERVER"},
       }) {
    dir.file("etc/client.ini", c.ini);
    std::vector<std::pair<const char*, std::string>> vars{
        {"FWGATE_CONFIG_DIR", dir.path() + "/etc"}, {"FWGATE_CACHE", dir.path() + "/cache"}};
    if (c.env != nullptr) vars.emplace_back("FWGATE_SERVER", c.env);
    Environment env(vars);
    const ClientConfig config = assembleFor(c.app);
    EXPECT_STREQ(config.server.host.data(), c.expected) << c.app << " " << c.ini;
    EXPECT_STREQ(config.serverFrom, c.from) << c.app << " " << c.ini;
  }
}

TEST(Assemble, NewestCacheWinsAndAFreshConfigurationReplacesIt) {
  TempDir dir;
  const auto old = configFrame("[curl]\nNameResolution=L\n");
  const auto newer = configFrame("[curl]\nNameResolution=R\n");
  CacheHeader h2{200, {}};
  ASSERT_TRUE(writeCache((dir.path() + "/home/.cache/fwgate/client.cache").c_str(), h2, newer));
  Environment env({{"FWGATE_CONFIG_DIR", dir.path() + "/etc"}, {"HOME", dir.path() + "/home"}});
  // The system cache (/var/cache/fwgate) is not there in a test: the user's is used.
  ClientConfig c = assembleFor("curl");
  EXPECT_EQ(c.fetchedAt, 200);
  EXPECT_EQ(c.settings.nameResolution, 'R');
  c = assembleFor("curl", &old);
  EXPECT_EQ(c.settings.nameResolution, 'L');
  EXPECT_EQ(c.fetchedAt, 0);  // a fresh configuration's time is the caller's to set
}

TEST(Assemble, ProblemsAreReportedWithTheirPlace) {
  TempDir dir;
  dir.file("etc/client.ini", "[curl]\nNameResolutoin=R\n[*]\nDisable=1\n[Common]\nColour=blue\n");
  dir.file("etc/locallat.txt", "10.0.0.1 nonsense\n");
  Environment env(
      {{"FWGATE_CONFIG_DIR", dir.path() + "/etc"}, {"FWGATE_CACHE", dir.path() + "/none"}});
  const Paths paths = testPaths();
  static ClientConfig config;
  std::vector<char> scratch(64 * 1024);
  std::vector<std::string> problems;
  assemble(
      config, paths, "curl", {}, {scratch.data(), scratch.size()}, false,
      [](void* ctx, const char* where, std::uint32_t line, std::string_view section,
         std::string_view key, const char* what) {
        static_cast<std::vector<std::string>*>(ctx)->push_back(
            std::string(std::filesystem::path(where).filename()) + ":" + std::to_string(line) +
            " [" + std::string(section) + "] " + std::string(key) + ": " + what);
      },
      &problems);
  ASSERT_EQ(problems.size(), 4u);
  EXPECT_EQ(problems[0], "client.ini:2 [curl] NameResolutoin: unknown key");
  EXPECT_NE(problems[1].find("client.ini:4 [*] Disable: a [*] section may hold only"),
            std::string::npos);
  EXPECT_NE(problems[2].find("client.ini:6 [Common] Colour"), std::string::npos);
  EXPECT_NE(problems[3].find("locallat.txt:1"), std::string::npos);
  // No gateway anywhere, and detection off here: it says so.
  EXPECT_TRUE(config.server.empty());
  EXPECT_STREQ(config.serverFrom, "nowhere");
  EXPECT_STREQ(config.detectProblem.data(), "DNS detection is off");
}

TEST(Assemble, ADisabledProgramDoesNotLookForTheGateway) {
  TempDir dir;
  // Were it asked, the name server would be this host's own (loopback only).
  const std::string resolv = dir.file("resolv.conf", "nameserver 127.0.0.1\nsearch corp.test\n");
  Environment env({{"FWGATE_CONFIG_DIR", dir.path() + "/etc"},
                   {"FWGATE_CACHE", dir.path() + "/none"},
                   {"FWGATE_DISABLE", "1"}});
  Paths paths = testPaths();
  std::snprintf(paths.resolvConf.data(), paths.resolvConf.size(), "%s", resolv.c_str());
  paths.nsswitchConf[0] = '\0';
  static ClientConfig config;
  std::vector<char> scratch(64 * 1024);
  assemble(config, paths, "curl", {}, {scratch.data(), scratch.size()}, false);
  EXPECT_TRUE(config.disabled());
  EXPECT_TRUE(config.server.empty());
  EXPECT_STREQ(config.detectProblem.data(),
               "not looked for: the client is disabled for this program");
}

TEST(RefreshSchedule, IntervalAfterSuccessBackOffAfterFailure) {
  std::int64_t now = 1'000'000;  // the test's clock
  RefreshSchedule s(0, 6 * 3600);
  EXPECT_TRUE(s.stale(now));  // never fetched
  s.succeeded(now, 6 * 3600);
  EXPECT_EQ(s.next(), now + 6 * 3600);
  EXPECT_FALSE(s.stale(now + 6 * 3600 - 1));
  EXPECT_TRUE(s.stale(now + 6 * 3600));

  now = s.next();
  std::vector<std::int64_t> waits;
  for (int i = 0; i < 9; ++i) {
    s.failed(now);
    waits.push_back(s.next() - now);
    now = s.next();
  }
  EXPECT_EQ(waits, (std::vector<std::int64_t>{30, 60, 120, 240, 480, 960, 1920, 3600, 3600}));
  EXPECT_EQ(s.failures(), 9);
  s.succeeded(now, 3600);
  EXPECT_EQ(s.failures(), 0);
  EXPECT_EQ(s.next(), now + 3600);

  // With a short interval the retry is never later than the next regular refresh would be.
  RefreshSchedule shortInterval(now, 120);
  for (int i = 0; i < 4; ++i) shortInterval.failed(now);
  EXPECT_EQ(shortInterval.next(), now + 120);
}

}  // namespace
}  // namespace fwgate::client
