// `fwgate config check`, `fwgate config default` and `fwgate config pac`.
#include <fmt/format.h>

#include <cstdio>
#include <string>
#include <vector>

#include "commands.hpp"
#include "config/config.hpp"
#include "config/pac.hpp"
#include "config/users.hpp"
#include "config/web_proxy_offer.hpp"
#include "gss/gss.hpp"

namespace fwgate::app {
namespace {

std::string counted(std::size_t n, std::string_view word) {
  return fmt::format("{} {}{}", n, word, n == 1 ? "" : "s");
}

// "path: message (line N)"; syntax errors already name their line and column.
std::string located(const config::Diagnostic& d) {
  if (d.line == 0 || d.path.empty()) return d.toString();
  return fmt::format("{} (line {})", d.toString(), d.line);
}

// The gateway loads the users file at start; problems with it are reported as warnings,
// since the check may run on another machine than the gateway.
std::vector<config::Diagnostic> checkUsersFile(const config::Config& c) {
  std::vector<config::Diagnostic> out;
  if (c.usersFile.empty()) return out;
  std::string error;
  const auto db = config::UserDatabase::load(c.usersFile, error);
  if (!db) {
    out.push_back({"gateway.users_file", error + " (the gateway will not start without it)"});
    return out;
  }
  // With Kerberos, users are also the realm's: a name the file lacks may be a principal's.
  const auto missing = [&](const std::string& user, std::string path) {
    if (c.kerberos.keytab.empty() && db->find(user) == nullptr) {
      out.push_back({std::move(path), fmt::format("user \"{}\" is not in {}", user, c.usersFile)});
    }
  };
  for (const auto& [group, members] : c.groups) {
    for (std::size_t i = 0; i < members.size(); ++i) {
      const bool dotted = group.find('.') != std::string::npos;
      missing(members[i], dotted ? fmt::format("groups.\"{}\"[{}]", group, i)
                                 : fmt::format("groups.{}[{}]", group, i));
    }
  }
  for (std::size_t r = 0; r < c.rules.size(); ++r) {
    for (std::size_t i = 0; i < c.rules[r].users.size(); ++i) {
      missing(c.rules[r].users[i], fmt::format("rules[{}].users[{}]", r, i));
    }
  }
  return out;
}

// The same for the Kerberos keys: read as the gateway reads them.
std::vector<config::Diagnostic> checkKeytab(const config::Config& c) {
  std::vector<config::Diagnostic> out;
  if (c.kerberos.keytab.empty()) return out;
  std::string error;
  if (const auto acceptor = gss::Acceptor::fromKeytab(c.kerberos.keytab, error); !acceptor) {
    out.push_back({"kerberos.keytab", fmt::format("{}: {} (the gateway will not start without it)",
                                                  c.kerberos.keytab, error)});
  }
  return out;
}

}  // namespace

int runConfigCheck(const std::string& path) {
  const config::LoadResult result = config::loadConfigFile(path);
  std::vector<config::Diagnostic> warnings = result.warnings;
  if (result.config) {
    const auto users = checkUsersFile(*result.config);
    warnings.insert(warnings.end(), users.begin(), users.end());
    const auto keys = checkKeytab(*result.config);
    warnings.insert(warnings.end(), keys.begin(), keys.end());
  }
  for (const auto& e : result.errors) fmt::print("error: {}\n", located(e));
  for (const auto& w : warnings) fmt::print("warning: {}\n", located(w));

  if (!result.errors.empty()) {
    fmt::print("{}: {}, {}\n", path, counted(result.errors.size(), "error"),
               counted(warnings.size(), "warning"));
    return 1;
  }
  const config::Config& c = *result.config;
  fmt::print("{}: OK ({}, {}{})\n", path, counted(c.rules.size(), "rule"),
             counted(c.listeners.size(), "listener"),
             warnings.empty() ? "" : ", " + counted(warnings.size(), "warning"));
  return 0;
}

int runConfigDefault() {
  const std::string_view text = config::embeddedDefaultConfig();
  fmt::print("{}", text);
  return std::fflush(stdout) == 0 ? 0 : 1;
}

int runConfigPac(const ConfigPacOptions& options) {
  const auto client = policy::IpAddress::parse(options.client);
  if (!client) {
    fmt::print(stderr, "fwgate config pac: --client {}: not an IP address\n", options.client);
    return 2;
  }
  const config::LoadResult result =
      options.configPath.empty()
          ? config::parseConfig(config::embeddedDefaultConfig(), "<embedded>")
          : config::loadConfigFile(options.configPath);
  if (!result.ok()) {
    for (const auto& e : result.errors) fmt::print(stderr, "error: {}\n", located(e));
    return 1;
  }
  const config::Config& c = *result.config;
  std::string proxy = options.proxy.empty() ? c.webProxy.pacProxy : options.proxy;
  if (proxy.empty()) {
    // What a browser would have reached: the first listener, when it names one address.
    for (const auto& listener : c.webProxy.listeners) {
      const auto address = policy::IpAddress::parse(listener.address);
      if (address && !address->isUnspecified() && listener.port != 0) {
        proxy = config::hostPort(*address, listener.port);
        break;
      }
    }
  }
  if (proxy.empty()) {
    fmt::print(stderr,
               "fwgate config pac: no [web_proxy] pac_proxy and no listener on one address: "
               "pass --proxy HOST:PORT\n");
    return 2;
  }
  fmt::print("{}", config::pacScript(c, *client, proxy));
  return std::fflush(stdout) == 0 ? 0 : 1;
}

}  // namespace fwgate::app
