// [[firewall_client.publish_listens]]: who may publish a listen on a dynamic port. Parsed into
// policy::PublishListen; every error carries its key path.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace fwgate::config {
namespace {

std::vector<std::string> errorPaths(const LoadResult& r) {
  std::vector<std::string> paths;
  for (const auto& e : r.errors) paths.push_back(e.path);
  std::sort(paths.begin(), paths.end());
  return paths;
}

std::string describe(const LoadResult& r) {
  std::string out;
  for (const auto& e : r.errors) out += "\n  " + e.toString();
  return out;
}

TEST(ConfigPublishTest, OffByDefault) {
  const LoadResult r = parseConfig("", "t");
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_TRUE(r.config->firewallClient.publishListens.empty());
}

TEST(ConfigPublishTest, EntriesParse) {
  const LoadResult r = parseConfig(
      "[gateway]\nusers_file = \"u\"\n[groups]\nplayers = [\"bob\"]\n"
      "[[firewall_client.publish_listens]]\nname = \"lobby\"\napplications = [\"lobby\", "
      "\"python3\"]\nusers = [\"alice\"]\ngroups = [\"players\"]\n"
      "[[firewall_client.publish_listens]]\napplications = [\"relay\"]\n",
      "t");
  ASSERT_TRUE(r.ok()) << describe(r);
  const auto& entries = r.config->firewallClient.publishListens;
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].name, "lobby");
  EXPECT_EQ(entries[0].applications, (std::vector<std::string>{"lobby", "python3"}));
  EXPECT_EQ(entries[0].users, std::vector<std::string>{"alice"});
  EXPECT_EQ(entries[0].groups, std::vector<std::string>{"players"});
  // Unnamed: its place in the list.
  EXPECT_EQ(entries[1].name, "publish_listens[1]");
  EXPECT_TRUE(entries[1].users.empty() && entries[1].groups.empty());
}

TEST(ConfigPublishTest, ErrorsCarryKeyPaths) {
  struct Case {
    std::string description;
    std::string toml;
    std::vector<std::string> paths;
  };
  const std::string fc = "[[firewall_client.publish_listens]]\n";
  const std::vector<Case> cases = {
      {"no applications",
       fc + "name = \"x\"\n",
       {"firewall_client.publish_listens[0].applications"}},
      {"empty applications",
       fc + "applications = []\n",
       {"firewall_client.publish_listens[0].applications"}},
      {"a path, a wildcard, a number",
       fc + "applications = [\"/usr/bin/lobby\", \"*\", 7]\n",
       {"firewall_client.publish_listens[0].applications[0]",
        "firewall_client.publish_listens[0].applications[1]",
        "firewall_client.publish_listens[0].applications[2]"}},
      {"unknown key (the second entry)",
       fc + "applications = [\"a\"]\n" + fc + "applications = [\"b\"]\nports = \"1-2\"\n",
       {"firewall_client.publish_listens[1].ports"}},
      {"unknown group and bad user",
       "[gateway]\nusers_file = \"u\"\n" + fc +
           "applications = [\"a\"]\nusers = [\"a b\"]\ngroups = [\"nobody\"]\n",
       {"firewall_client.publish_listens[0].groups[0]",
        "firewall_client.publish_listens[0].users[0]"}},
      {"users without a users file",
       fc + "applications = [\"a\"]\nusers = [\"alice\"]\n",
       {"gateway.users_file"}},
      {"empty name",
       fc + "name = \"\"\napplications = [\"a\"]\n",
       {"firewall_client.publish_listens[0].name"}},
      {"a table, not an array of tables",
       "[firewall_client.publish_listens]\napplications = [\"a\"]\n",
       {"firewall_client.publish_listens"}},
  };
  for (const Case& c : cases) {
    const LoadResult r = parseConfig(c.toml, "t");
    EXPECT_FALSE(r.ok()) << c.description;
    std::vector<std::string> expected = c.paths;
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(errorPaths(r), expected) << c.description << describe(r);
    for (const auto& e : r.errors) EXPECT_GT(e.line, 0u) << c.description << ": " << e.toString();
  }
}

bool warnsAboutPeers(const LoadResult& r) {
  return std::any_of(r.warnings.begin(), r.warnings.end(), [](const Diagnostic& d) {
    return d.path == "firewall_client.publish_listens";
  });
}

TEST(ConfigPublishTest, WarnsWhenNoRuleCanAllowAPeer) {
  const std::string entry = "[[firewall_client.publish_listens]]\napplications = [\"lobby\"]\n";
  const LoadResult connectOnly =
      parseConfig(entry + "[[rules]]\naction = \"allow\"\ncommands = [\"connect\"]\n", "t");
  ASSERT_TRUE(connectOnly.ok()) << describe(connectOnly);
  EXPECT_TRUE(warnsAboutPeers(connectOnly));
  const LoadResult withProtocols = parseConfig(
      entry + "[[rules]]\naction = \"allow\"\ncommands = [\"bind\"]\nprotocols = [\"FTP\"]\n", "t");
  ASSERT_TRUE(withProtocols.ok()) << describe(withProtocols);
  EXPECT_TRUE(warnsAboutPeers(withProtocols));
  const LoadResult bind =
      parseConfig(entry + "[[rules]]\naction = \"allow\"\ncommands = [\"bind\"]\n", "t");
  ASSERT_TRUE(bind.ok()) << describe(bind);
  EXPECT_FALSE(warnsAboutPeers(bind));
  const LoadResult none =
      parseConfig("[[rules]]\naction = \"allow\"\ncommands = [\"connect\"]\n", "t");
  EXPECT_FALSE(warnsAboutPeers(none));
}

}  // namespace
}  // namespace fwgate::config
