// `fwgate filters show|apply|flush|stats`: the configuration's packet filters as nftables table
// inet fwgate, applied in one transaction; never another table.
#include <fmt/format.h>
#include <pwd.h>
#include <unistd.h>

#include <cstdio>
#include <exception>

#include "commands.hpp"
#include "config/config.hpp"
#include "filters/nft.hpp"
#include "filters/ruleset.hpp"

namespace fwgate::app {
namespace {

std::shared_ptr<const config::Config> load(const std::string& path) {
  if (path.empty()) {
    auto loaded = config::parseConfig(config::embeddedDefaultConfig(), "<embedded>");
    return loaded.config;
  }
  const auto loaded = config::loadConfigFile(path);
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) fmt::print(stderr, "{}: {}\n", path, e.toString());
    return nullptr;
  }
  return loaded.config;
}

std::string render(const config::Config& c) {
  filters::RenderOptions options;
  options.gatewayUid = ::geteuid();
  if (!c.runAsUser.empty()) {
    if (const passwd* pw = ::getpwnam(c.runAsUser.c_str())) options.gatewayUid = pw->pw_uid;
  }
  return filters::renderRuleset(c.packetFilters, options);
}

// Runs `script` through libnftables; prints nft's error and returns 1 on failure.
int runScript(const std::string& script, const char* what) {
  try {
    filters::Nft nft;
    if (const auto error = nft.run(script); !error.empty()) {
      fmt::print(stderr, "fwgate filters {}: {}", what, error);
      if (error.back() != '\n') fmt::print(stderr, "\n");
      return 1;
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "fwgate filters {}: {}\n", what, e.what());
    return 1;
  }
  return 0;
}

}  // namespace

int runFilters(const FiltersOptions& options) {
  if (options.action == "flush") {
    if (runScript(filters::flushScript(), "flush") != 0) return 1;
    fmt::print("removed table inet fwgate (no other table touched)\n");
    return 0;
  }
  if (options.action == "stats") {
    std::string json;
    try {
      filters::Nft nft;
      if (const auto error = nft.listTableJson(json); !error.empty()) {
        fmt::print(stderr, "fwgate filters stats: no table inet fwgate ({})\n", error);
        return 1;
      }
    } catch (const std::exception& e) {
      fmt::print(stderr, "fwgate filters stats: {}\n", e.what());
      return 1;
    }
    const auto counters = filters::parseCounters(json);
    fmt::print("{:<32} {:>12} {:>14}\n", "filter", "packets", "bytes");
    for (const auto& c : counters) fmt::print("{:<32} {:>12} {:>14}\n", c.name, c.packets, c.bytes);
    return 0;
  }
  const auto config = load(options.configPath);
  if (!config) return 1;
  const std::string script = render(*config);
  if (options.action == "show") {
    if (!config->packetFilters.enabled) {
      fmt::print(stderr,
                 "fwgate filters show: packet_filters.enabled = false: the gateway would not "
                 "apply this; `fwgate filters apply` would\n");
    }
    std::fwrite(script.data(), 1, script.size(), stdout);
    return 0;
  }
  // apply
  if (runScript(script, "apply") != 0) return 1;
  fmt::print("applied table inet fwgate: {} filters, one transaction\n",
             config->packetFilters.filters.size());
  return 0;
}

}  // namespace fwgate::app
