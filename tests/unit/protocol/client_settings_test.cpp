// Client settings: port lists, the INI scanner, and precedence (gateway < all users < user; within
// a level the program's section over `*`), as tables.
#include "protocol/client_settings.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace fwgate::protocol::settings {
namespace {

TEST(PortList, ParsesPortsAndRanges) {
  struct Case {
    const char* text;
    bool ok;
    std::vector<std::pair<int, int>> ranges;
  };
  const std::vector<Case> cases = {
      {"", true, {}},
      {"21", true, {{21, 21}}},
      {"21, 80,1000-2000", true, {{21, 21}, {80, 80}, {1000, 2000}}},
      {" 1024 - 5000 ", true, {{1024, 5000}}},
      {"0-65535", true, {{0, 65535}}},
      {"65536", false, {}},
      {"80,", false, {}},
      {",80", false, {}},
      {"5000-1024", false, {}},
      {"http", false, {}},
      {"1-2-3", false, {}},
  };
  for (const auto& c : cases) {
    PortList list;
    EXPECT_EQ(parsePortList(c.text, list), c.ok) << c.text;
    if (!c.ok) continue;
    ASSERT_EQ(list.count, c.ranges.size()) << c.text;
    for (std::size_t i = 0; i < list.count; ++i) {
      EXPECT_EQ(list.ranges[i].first, c.ranges[i].first) << c.text;
      EXPECT_EQ(list.ranges[i].last, c.ranges[i].second) << c.text;
    }
  }
  PortList list;
  ASSERT_TRUE(parsePortList("21,1000-2000", list));
  EXPECT_TRUE(list.contains(21));
  EXPECT_TRUE(list.contains(1500));
  EXPECT_FALSE(list.contains(22));
  std::string many;
  for (int i = 1; i <= 65; ++i) many += std::to_string(i) + (i < 65 ? "," : "");
  EXPECT_FALSE(parsePortList(many, list));
}

TEST(Ini, ScannerReportsSectionsKeysAndMalformedLines) {
  const std::string text =
      "; comment\n"
      "# another\n"
      "\n"
      "[curl]\r\n"
      "  NameResolution = R  \n"
      "ServerName=\"gw.corp\"\n"
      "nonsense line\n"
      "[broken\n";
  std::vector<IniLine> lines;
  scanIni(text, [&](const IniLine& l) { lines.push_back(l); });
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0].kind, IniLine::Kind::Section);
  EXPECT_EQ(lines[0].section, "curl");
  EXPECT_EQ(lines[0].line, 4u);
  EXPECT_EQ(lines[1].kind, IniLine::Kind::KeyValue);
  EXPECT_EQ(lines[1].key, "NameResolution");
  EXPECT_EQ(lines[1].value, "R");
  EXPECT_EQ(lines[2].value, "gw.corp");
  EXPECT_EQ(lines[3].kind, IniLine::Kind::Malformed);
  EXPECT_EQ(lines[3].line, 7u);
  EXPECT_EQ(lines[4].kind, IniLine::Kind::Malformed);
}

TEST(Keys, CaseInsensitiveWithTheSeedsSpelling) {
  ASSERT_TRUE(keyByName("dontremoteoutboundtcpports"));
  EXPECT_EQ(keyName(*keyByName("dontremoteoutboundtcpports")), "DontRemoteOutboundTcpPorts");
  EXPECT_FALSE(keyByName("DontRemote"));
  EXPECT_TRUE(allowedInWildcard(Key::DontRemoteOutboundUdpPorts));
  EXPECT_FALSE(allowedInWildcard(Key::NameResolution));
  EXPECT_EQ(checkValue(Key::Disable, "1"), nullptr);
  EXPECT_NE(checkValue(Key::Disable, "maybe"), nullptr);
  EXPECT_EQ(checkValue(Key::NameResolution, "r"), nullptr);
  EXPECT_NE(checkValue(Key::NameResolution, "remote"), nullptr);
}

// What the program `curl` ends up with for one key, given the three levels' texts.
struct Level {
  const char* gateway;
  const char* allUsers;
  const char* user;
};

std::string dontRemoteFor(const Level& level, const char* app = "curl") {
  AppSettings s;
  for (const char* text : {level.gateway, level.allUsers, level.user}) applySettings(text, app, s);
  if (!s.has(Key::DontRemoteOutboundTcpPorts)) return "unset";
  std::string out;
  for (std::size_t i = 0; i < s.dontRemoteTcp.count; ++i) {
    if (!out.empty()) out += ',';
    out += std::to_string(s.dontRemoteTcp.ranges[i].first);
  }
  return out;
}

TEST(Precedence, GatewayThenAllUsersThenUserAndProgramOverWildcard) {
  struct Case {
    Level level;
    const char* expected;
  };
  const std::vector<Case> cases = {
      {{"", "", ""}, "unset"},
      {{"[curl]\nDontRemoteOutboundTcpPorts=1\n", "", ""}, "1"},
      {{"[*]\nDontRemoteOutboundTcpPorts=1\n", "", ""}, "1"},
      {{"[curl]\nDontRemoteOutboundTcpPorts=1\n[*]\nDontRemoteOutboundTcpPorts=2\n", "", ""},
       "1"},  // program over *, whatever the order
      {{"[curl]\nDontRemoteOutboundTcpPorts=1\n", "[curl]\nDontRemoteOutboundTcpPorts=2\n", ""},
       "2"},
      {{"[curl]\nDontRemoteOutboundTcpPorts=1\n", "[curl]\nDontRemoteOutboundTcpPorts=2\n",
        "[curl]\nDontRemoteOutboundTcpPorts=3\n"},
       "3"},
      {{"[curl]\nDontRemoteOutboundTcpPorts=1\n", "", "[*]\nDontRemoteOutboundTcpPorts=3\n"},
       "3"},  // a higher level's * beats a lower level's program section
      {{"[wget]\nDontRemoteOutboundTcpPorts=1\n", "", ""}, "unset"},
      {{"[CURL]\ndontremoteoutboundtcpports=4\n", "", ""}, "4"},
      {{"[curl]\nDontRemoteOutboundTcpPorts=1\n", "[curl]\nDontRemoteOutboundTcpPorts=bad\n", ""},
       "1"},  // a bad value is skipped, the lower level stays
  };
  for (const auto& c : cases) {
    EXPECT_EQ(dontRemoteFor(c.level), c.expected)
        << c.level.gateway << "|" << c.level.allUsers << "|" << c.level.user;
  }
}

TEST(Precedence, WildcardMayHoldOnlyTheDontRemoteKeys) {
  struct Problem {
    std::uint32_t line;
    std::string section, key, what;
  };
  std::vector<Problem> problems;
  auto sink = [](void* context, const SettingsProblem& p) {
    static_cast<std::vector<Problem>*>(context)->push_back(
        {p.line, std::string(p.section), std::string(p.key), p.what});
  };
  AppSettings s;
  applySettings(
      "[*]\nNameResolution=L\nDisable=1\nDontRemoteOutboundUdpPorts=53\n[curl]\nFrobnicate=1\n"
      "Disable=maybe\n[Common]\nUser=alice\n",
      "curl", s, sink, &problems);
  EXPECT_FALSE(s.has(Key::NameResolution));
  EXPECT_FALSE(s.has(Key::Disable));
  EXPECT_TRUE(s.has(Key::DontRemoteOutboundUdpPorts));
  ASSERT_EQ(problems.size(), 4u);
  EXPECT_EQ(problems[0].line, 2u);
  EXPECT_EQ(problems[0].key, "NameResolution");
  EXPECT_NE(problems[0].what.find("[*]"), std::string::npos);
  EXPECT_EQ(problems[1].key, "Disable");
  EXPECT_EQ(problems[2].key, "Frobnicate");
  EXPECT_EQ(problems[2].what, "unknown key");
  EXPECT_EQ(problems[3].key, "Disable");
  EXPECT_EQ(problems[3].section, "curl");
}

TEST(Precedence, AllKeysStore) {
  AppSettings s;
  applySettings(
      "[app]\nServerName=gw.corp:1745\nDisable=yes\nNameResolution=l\nLocalBindTcpPorts=20\n"
      "ServerBindTcpPorts=8000-8010\n",
      "app", s);
  EXPECT_STREQ(s.serverName.data(), "gw.corp:1745");
  EXPECT_TRUE(s.disable);
  EXPECT_EQ(s.nameResolution, 'L');
  EXPECT_TRUE(s.localBindTcp.contains(20));
  EXPECT_TRUE(s.serverBindTcp.contains(8005));
}

TEST(Precedence, PublishBindTcp) {
  EXPECT_EQ(keyByName("publishbindtcp"), Key::PublishBindTcp);
  EXPECT_EQ(keyName(Key::PublishBindTcp), "PublishBindTcp");
  EXPECT_FALSE(allowedInWildcard(Key::PublishBindTcp));
  EXPECT_EQ(checkValue(Key::PublishBindTcp, "1"), nullptr);
  EXPECT_NE(checkValue(Key::PublishBindTcp, "80"), nullptr);
  AppSettings s;
  EXPECT_FALSE(s.publishBindTcp);  // off by default
  applySettings("[app]\nPublishBindTcp = 1\n", "app", s);
  EXPECT_TRUE(s.publishBindTcp);
  EXPECT_TRUE(s.has(Key::PublishBindTcp));
  // A later level turns it off again; `*` may not hold it.
  applySettings("[app]\nPublishBindTcp = no\n", "app", s);
  EXPECT_FALSE(s.publishBindTcp);
  AppSettings w;
  applySettings("[*]\nPublishBindTcp = 1\n", "app", w);
  EXPECT_FALSE(w.publishBindTcp);
}

}  // namespace
}  // namespace fwgate::protocol::settings
