// Parsing the gateway's TOML into a Config: every problem is collected with its key path, and
// nothing escapes to the caller as an exception.
#include "config/config.hpp"

#include "protocol/client_settings.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>

#include "config/filters_parser.hpp"
#include "config/protocols_parser.hpp"
#include "config/toml_reader.hpp"
#include "config/users.hpp"

namespace fwgate::config {
namespace {

using detail::indexPath;
using detail::isValidSetName;
using detail::keyPath;
using detail::lowerAscii;
using detail::ProtocolsParser;
using detail::quote;
using detail::Reader;
using detail::suggestion;
using detail::typeName;
using policy::IpAddress;
using policy::IpRange;
using policy::PortRange;

constexpr std::int64_t kMaxUint32 = 4294967295;
constexpr std::int64_t kMaxWorkers = 1024;
constexpr std::size_t kMaxFileSize = 16 * 1024 * 1024;

bool isAsciiAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool isValidDomain(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > 253) return false;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = name.find('.', start);
    const std::string_view label = name.substr(start, dot - start);
    if (label.empty() || label.size() > 63) return false;
    if (!std::all_of(label.begin(), label.end(),
                     [](char c) { return isAsciiAlnum(c) || c == '-' || c == '_'; })) {
      return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

// Via's received-by and similar: letters, digits and "-._~".
bool isToken(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    return isAsciiAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
  });
}

// "gw.example:8080", "10.0.0.1:8080", "[fd00::1]:8080": what a PAC script's PROXY names.
bool isProxyEndpoint(std::string_view text) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == text.size()) return false;
  const std::string_view port = text.substr(colon + 1);
  if (port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  const int number = std::stoi(std::string(port));
  if (number < 1 || number > 65535) return false;
  std::string_view host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    const auto address = IpAddress::parse(host.substr(1, host.size() - 2));
    return address && address->v6;
  }
  return IpAddress::parse(host) || isValidDomain(host);
}

std::string normaliseDomain(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  std::string out(name);
  for (char& c : out) c = lowerAscii(c);
  return out;
}

class ConfigParser {
 public:
  explicit ConfigParser(std::vector<Diagnostic>& errors) : in_(errors) {}

  Config parse(const toml::table& root) {
    in_.rejectUnknownKeys(root, "",
                          {"gateway", "listeners", "control", "web_proxy", "firewall_client",
                           "limits", "auth_throttle", "bind", "log", "groups", "networks",
                           "protocols", "rules", "packet_filters", "kerberos"});
    config_.listeners.clear();
    config_.networks = policy::builtinNetworks();
    if (const auto* t = in_.table(root, "gateway", "")) gateway(*t);
    in_.tables(
        root, "listeners",
        [this](const toml::table& t, const std::string& path, std::size_t) { listener(t, path); });
    if (config_.listeners.empty()) config_.listeners.push_back(Listener{});
    if (const auto* t = in_.table(root, "control", "")) control(*t);
    if (const auto* t = in_.table(root, "web_proxy", "")) webProxy(*t);
    if (const auto* t = in_.table(root, "firewall_client", "")) firewallClient(*t);
    if (const auto* t = in_.table(root, "limits", "")) limits(*t);
    if (const auto* t = in_.table(root, "auth_throttle", "")) authThrottle(*t);
    if (const auto* t = in_.table(root, "kerberos", "")) kerberos(*t);
    if (const auto* t = in_.table(root, "bind", "")) bind(*t);
    if (const auto* t = in_.table(root, "log", "")) log(*t);
    if (const auto* t = in_.table(root, "groups", "")) groups(*t);
    // After the groups, which its entries name.
    if (const auto* t = in_.table(root, "firewall_client", "")) publishListens(*t);
    if (const auto* t = in_.table(root, "networks", "")) networks(*t);
    // Before the rules, which name definitions, whatever the order in the file.
    if (const auto* t = in_.table(root, "protocols", "")) config_.protocols = protocols_.parse(*t);
    protocols_.checkOverlaps(config_.protocols, config_.bind.dynamicPorts);
    in_.tables(root, "rules",
               [this](const toml::table& t, const std::string& path, std::size_t index) {
                 rule(t, path, index);
               });
    // After the networks: an internal computer must be in the local address table.
    if (const auto* t = in_.table(root, "packet_filters", "")) {
      config_.packetFilters = detail::parsePacketFilters(in_, *t, config_.networks);
    }
    requireUsersFile();
    requireKeytab();
    return std::move(config_);
  }

 private:
  void gateway(const toml::table& t) {
    in_.rejectUnknownKeys(t, "gateway", {"user", "users_file", "workers", "balance"});
    std::int64_t workers = 0;
    if (in_.integer(t, "workers", "gateway", 0, kMaxWorkers, workers)) {
      config_.workers = static_cast<std::uint32_t>(workers);
    }
    std::string balance;
    if (const auto* n = in_.string(t, "balance", "gateway", balance)) {
      if (balance == "kernel") {
        config_.balance = Config::Balance::Kernel;
      } else if (balance == "round-robin") {
        config_.balance = Config::Balance::RoundRobin;
      } else {
        in_.error("gateway.balance", *n,
                  fmt::format("unknown balance {} (expected \"kernel\" or \"round-robin\")",
                              quote(balance)));
      }
    }
    std::string user;
    if (const auto* n = in_.string(t, "user", "gateway", user)) {
      if (isValidUserName(user)) {
        config_.runAsUser = user;
      } else {
        in_.error("gateway.user", *n, fmt::format("invalid user name {}", quote(user)));
      }
    }
    std::string file;
    if (const auto* n = in_.string(t, "users_file", "gateway", file)) {
      if (file.empty()) {
        in_.error("gateway.users_file", *n, "must not be empty (leave it out instead)");
      } else {
        config_.usersFile = file;
      }
    }
  }

  void listener(const toml::table& t, const std::string& path) {
    in_.rejectUnknownKeys(t, path, {"address", "port", "methods"});
    Listener l;
    if (const auto* n = in_.string(t, "address", path, l.address)) {
      if (!IpAddress::parse(l.address)) {
        in_.error(keyPath(path, "address"), *n,
                  fmt::format("{} is not an IP address literal (e.g. \"127.0.0.1\", \"0.0.0.0\", "
                              "\"::\")",
                              quote(l.address)));
      }
    }
    std::int64_t port = 0;
    if (in_.integer(t, "port", path, 0, 65535, port)) l.port = static_cast<std::uint16_t>(port);
    std::vector<AuthMethod> methods;
    const auto* array = in_.strings(
        t, "methods", path, [&](const std::string& s, const std::string& p, const toml::node& n) {
          const auto* known = std::find_if(std::begin(kAuthMethods), std::end(kAuthMethods),
                                           [&](const AuthMethodName& a) { return a.name == s; });
          if (known == std::end(kAuthMethods)) {
            std::string names;
            for (const auto& a : kAuthMethods) {
              names += names.empty() ? "" : ", ";
              names += quote(std::string(a.name));
            }
            in_.error(p, n, fmt::format("unknown method {} (expected one of {})", quote(s), names));
            return;
          }
          const AuthMethod m = known->method;
          if (m == AuthMethod::Kerberos && kerberosListener_.empty()) {
            kerberosListener_ = path;
            kerberosListenerLine_ = n.source().begin.line;
          }
          if (std::find(methods.begin(), methods.end(), m) != methods.end()) {
            in_.error(p, n, fmt::format("duplicate method {}", quote(s)));
            return;
          }
          methods.push_back(m);
        });
    if (array != nullptr) {
      if (array->empty()) in_.error(keyPath(path, "methods"), *array, "must not be empty");
      l.methods = methods;
    }
    if (std::find(l.methods.begin(), l.methods.end(), AuthMethod::Password) != l.methods.end() &&
        passwordListener_.empty()) {
      passwordListener_ = path;
      passwordListenerLine_ = t.source().begin.line;
    }
    if (const auto address = IpAddress::parse(l.address); address && l.port != 0) {
      const std::string endpoint = fmt::format("{} port {}", address->toString(), l.port);
      const auto [it, inserted] = endpoints_.emplace(endpoint, path);
      if (!inserted) {
        in_.error(path, t.source().begin.line,
                  fmt::format("same address and port as {} ({})", it->second, endpoint));
      }
    }
    config_.listeners.push_back(std::move(l));
  }

  void control(const toml::table& t) {
    in_.rejectUnknownKeys(t, "control",
                          {"listen", "key_file", "encryption", "max_clock_skew", "hosts"});
    endpoints(t, "control", "1745", config_.controlListeners);
    ControlSecurity& c = config_.control;
    std::string file;
    if (const auto* n = in_.string(t, "key_file", "control", file)) {
      if (file.empty()) {
        in_.error("control.key_file", *n, "must not be empty (leave it out instead)");
      } else {
        c.keyFile = file;
      }
    }
    std::string encryption;
    if (const auto* n = in_.string(t, "encryption", "control", encryption)) {
      if (encryption == "required" || encryption == "optional") {
        c.encryptionRequired = encryption == "required";
      } else {
        in_.error("control.encryption", *n,
                  fmt::format("unknown encryption {} (expected \"required\" or \"optional\")",
                              quote(encryption)));
      }
    }
    if (const auto* hosts = in_.table(t, "hosts", "control")) {
      for (const auto& [name, node] : *hosts) {
        const std::string path = fmt::format("control.hosts.{}", quote(std::string(name.str())));
        const auto* text = node.as_string();
        ControlSecurity::Host host;
        host.name = std::string(name.str());
        std::size_t length = 0;
        const char* end = nullptr;
        if (text == nullptr ||
            sodium_base642bin(host.key.data(), host.key.size(), text->get().data(),
                              text->get().size(), nullptr, &length, &end,
                              sodium_base64_VARIANT_ORIGINAL) != 0 ||
            length != host.key.size() || end != text->get().data() + text->get().size()) {
          in_.error(path, node,
                    "expected the host agent's key: 44 characters of base64 (fwgate agent "
                    "--show-host-key prints it)");
          continue;
        }
        const auto same = std::find_if(c.hosts.begin(), c.hosts.end(),
                                       [&](const auto& h) { return h.key == host.key; });
        if (same != c.hosts.end()) {
          in_.error(path, node, fmt::format("the same key as {}", quote(same->name)));
          continue;
        }
        c.hosts.push_back(std::move(host));
      }
    }
    in_.duration(t, "max_clock_skew", "control", c.maxClockSkew);
    if (const auto* n = t.get("max_clock_skew");
        n != nullptr &&
        (c.maxClockSkew < std::chrono::seconds(1) || c.maxClockSkew > std::chrono::hours(24))) {
      in_.error("control.max_clock_skew", *n, "must be 1s..24h");
    }
  }

  // `listen = ["ADDR:PORT", ...]` of [control] and [web_proxy]; one address and port is used once
  // across both (and the SOCKS listeners' endpoints are not checked here: they are tables).
  void endpoints(const toml::table& t, const std::string& section, std::string_view examplePort,
                 std::vector<Listener>& out) {
    in_.strings(
        t, "listen", section, [&](const std::string& s, const std::string& p, const toml::node& n) {
          Listener l;
          if (!parseEndpoint(s, l.address, l.port)) {
            in_.error(p, n,
                      fmt::format("{} is not ADDRESS:PORT (e.g. \"10.0.0.1:{}\", "
                                  "\"[::]:{}\")",
                                  quote(s), examplePort, examplePort));
            return;
          }
          if (l.port != 0) {
            // Written as [[listeners]] writes it ("[0::0]:80" is "::"), so spellings cannot hide
            // a duplicate.
            const std::string endpoint =
                fmt::format("{} port {}", IpAddress::parse(l.address)->toString(), l.port);
            const auto [it, inserted] = endpoints_.emplace(endpoint, p);
            if (!inserted) {
              in_.error(p, n,
                        fmt::format("same address and port as {} ({})", it->second, endpoint));
              return;
            }
          }
          out.push_back(l);
        });
  }

  void webProxy(const toml::table& t) {
    in_.rejectUnknownKeys(
        t, "web_proxy",
        {"listen", "tunnel_ports", "via", "via_name", "x_forwarded_for", "realm", "pac_proxy",
         "backup_route", "direct_domains", "direct_ranges", "max_request_line", "max_header_bytes",
         "max_header_count", "header_timeout", "keep_alive_timeout", "max_connections_per_client",
         "origin_pool_size", "origin_idle_timeout"});
    auto& w = config_.webProxy;
    endpoints(t, "web_proxy", "8080", w.listeners);
    if (t.get("tunnel_ports") != nullptr) {
      w.tunnelPorts.clear();
      ports(t, "web_proxy", w.tunnelPorts, "tunnel_ports");
    }
    in_.boolean(t, "via", "web_proxy", w.via);
    if (const auto* n = in_.string(t, "via_name", "web_proxy", w.viaName)) {
      if (w.viaName.empty() || !isToken(w.viaName)) {
        in_.error("web_proxy.via_name", *n,
                  fmt::format("{} is not a token (letters, digits, \"-._~\")", quote(w.viaName)));
      }
    }
    in_.boolean(t, "x_forwarded_for", "web_proxy", w.xForwardedFor);
    if (const auto* n = in_.string(t, "realm", "web_proxy", w.realm)) {
      if (w.realm.find_first_of("\"\\\r\n") != std::string::npos) {
        in_.error("web_proxy.realm", *n, "must not hold quotes, backslashes or line breaks");
      }
    }
    if (const auto* n = in_.string(t, "pac_proxy", "web_proxy", w.pacProxy)) {
      if (!w.pacProxy.empty() && !isProxyEndpoint(w.pacProxy)) {
        in_.error(
            "web_proxy.pac_proxy", *n,
            fmt::format("{} is not HOST:PORT (e.g. \"gw.corp.example:8080\")", quote(w.pacProxy)));
      }
    }
    if (const auto* n = in_.string(t, "backup_route", "web_proxy", w.backupRoute)) {
      const std::string_view route = w.backupRoute;
      const bool ok = route.empty() || route == "DIRECT" ||
                      (route.starts_with("PROXY ") && isProxyEndpoint(route.substr(6)));
      if (!ok) {
        in_.error("web_proxy.backup_route", *n,
                  fmt::format("{}: expected \"DIRECT\", \"PROXY HOST:PORT\" or \"\"",
                              quote(w.backupRoute)));
      }
    }
    in_.strings(t, "direct_domains", "web_proxy",
                [&](const std::string& s, const std::string& p, const toml::node& n) {
                  std::string_view name = s;
                  if (name.starts_with("*.")) name.remove_prefix(2);
                  if (IpAddress::parse(name) || IpRange::parse(name)) {
                    in_.error(p, n,
                              fmt::format("{} is an address: list it in direct_ranges", quote(s)));
                  } else if (!isValidDomain(name)) {
                    in_.error(p, n, fmt::format("{} is not a domain name", quote(s)));
                  } else {
                    w.directDomains.push_back(normaliseDomain(name));
                  }
                });
    in_.strings(t, "direct_ranges", "web_proxy",
                [&](const std::string& s, const std::string& p, const toml::node& n) {
                  if (const auto range = IpRange::parse(s)) {
                    w.directRanges.push_back(*range);
                  } else {
                    in_.error(p, n,
                              fmt::format("{} is not an address, a CIDR block or an address "
                                          "pair \"first-last\"",
                                          quote(s)));
                  }
                });
    std::int64_t v = 0;
    if (in_.integer(t, "max_request_line", "web_proxy", 256, 1048576, v)) {
      w.maxRequestLine = static_cast<std::uint32_t>(v);
    }
    if (in_.integer(t, "max_header_bytes", "web_proxy", 1024, 4194304, v)) {
      w.maxHeaderBytes = static_cast<std::uint32_t>(v);
    }
    if (in_.integer(t, "max_header_count", "web_proxy", 8, 10000, v)) {
      w.maxHeaderCount = static_cast<std::uint32_t>(v);
    }
    if (w.maxRequestLine > w.maxHeaderBytes) {
      in_.error(
          "web_proxy.max_request_line", t.source().begin.line,
          fmt::format("{} is more than max_header_bytes ({})", w.maxRequestLine, w.maxHeaderBytes));
    }
    in_.duration(t, "header_timeout", "web_proxy", w.headerTimeout);
    in_.duration(t, "keep_alive_timeout", "web_proxy", w.keepAliveTimeout);
    in_.duration(t, "origin_idle_timeout", "web_proxy", w.originIdleTimeout);
    if (in_.integer(t, "max_connections_per_client", "web_proxy", 0, kMaxUint32, v)) {
      w.maxConnectionsPerClient = static_cast<std::uint32_t>(v);
    }
    if (in_.integer(t, "origin_pool_size", "web_proxy", 0, 1024, v)) {
      w.originPoolSize = static_cast<std::uint32_t>(v);
    }
  }

  void firewallClient(const toml::table& t) {
    in_.rejectUnknownKeys(
        t, "firewall_client",
        {"refresh_interval", "web_proxy", "require_definition", "applications", "publish_listens"});
    auto& fc = config_.firewallClient;
    in_.boolean(t, "require_definition", "firewall_client", fc.requireDefinition);
    in_.duration(t, "refresh_interval", "firewall_client", fc.refreshInterval);
    if (fc.refreshInterval < std::chrono::minutes(1)) {
      in_.error("firewall_client.refresh_interval", t.source().begin.line, "must be at least 1m");
    }
    if (const auto* n = in_.string(t, "web_proxy", "firewall_client", fc.webProxy)) {
      // Clients put it in URLs and proxy variables: HOST:PORT exactly.
      if (!fc.webProxy.empty() && !isProxyEndpoint(fc.webProxy)) {
        in_.error(
            "firewall_client.web_proxy", *n,
            fmt::format("{} is not HOST:PORT (e.g. \"gw.corp.example:8080\")", quote(fc.webProxy)));
      }
    }
    const auto* apps = in_.table(t, "applications", "firewall_client");
    if (apps == nullptr) return;
    namespace cs = protocol::settings;
    for (const auto& [name, node] : *apps) {
      const std::string app(name.str());
      const std::string path = keyPath("firewall_client.applications", app);
      const bool wildcard = app == "*";
      if (!wildcard && (app.empty() || app.find_first_of("/[]\n\r=") != std::string::npos ||
                        cs::equalsIgnoreCase(app, cs::kCommonSection))) {
        in_.error(path, name.source().begin.line,
                  "a section is named after a program's binary name (no path), or \"*\"");
        continue;
      }
      const auto* section = node.as_table();
      if (section == nullptr) {
        in_.error(path, node, fmt::format("expected a table, got {}", typeName(node)));
        continue;
      }
      std::string lines;
      for (const auto& [keyNode, valueNode] : *section) {
        const std::string keyText(keyNode.str());
        const std::string keyPathText = keyPath(path, keyText);
        const auto key = cs::keyByName(keyText);
        if (!key) {
          std::vector<std::string> names;
          for (std::size_t i = 0; i < cs::kKeyCount; ++i) {
            names.emplace_back(cs::keyName(static_cast<cs::Key>(i)));
          }
          in_.error(keyPathText, keyNode.source().begin.line,
                    fmt::format("unknown key{}", suggestion(keyText, names)));
          continue;
        }
        if (wildcard && !cs::allowedInWildcard(*key)) {
          in_.error(keyPathText, keyNode.source().begin.line,
                    "a \"*\" section may hold only DontRemoteOutboundTcpPorts and "
                    "DontRemoteOutboundUdpPorts");
          continue;
        }
        std::string value;
        if (const auto* b = valueNode.as_boolean()) {
          value.assign(1, b->get() ? '1' : '0');
        } else if (const auto* i = valueNode.as_integer()) {
          value = std::to_string(i->get());
        } else if (const auto* str = valueNode.as_string()) {
          value = str->get();
        } else {
          in_.error(keyPathText, valueNode,
                    fmt::format("expected a string, got {}", typeName(valueNode)));
          continue;
        }
        if (value.find_first_of("\n\r") != std::string::npos) {
          in_.error(keyPathText, valueNode, "must be one line");
          continue;
        }
        if (const char* bad = cs::checkValue(*key, value)) {
          in_.error(keyPathText, valueNode, bad);
          continue;
        }
        lines += fmt::format("{}={}\n", cs::keyName(*key), value);
      }
      fc.settingsIni += fmt::format("[{}]\n{}", app, lines);
    }
  }

  void limits(const toml::table& t) {
    in_.rejectUnknownKeys(t, "limits",
                          {"max_sessions", "max_sessions_per_client", "handshake_timeout",
                           "connect_timeout", "idle_timeout", "bind_timeout", "udp_idle_timeout",
                           "shutdown_grace", "relay_buffer_size", "relay"});
    Limits& limits = config_.limits;
    std::int64_t v = 0;
    if (in_.integer(t, "max_sessions", "limits", 0, kMaxUint32, v)) {
      limits.maxSessions = static_cast<std::uint32_t>(v);
    }
    if (in_.integer(t, "max_sessions_per_client", "limits", 0, kMaxUint32, v)) {
      limits.maxSessionsPerClient = static_cast<std::uint32_t>(v);
    }
    in_.duration(t, "handshake_timeout", "limits", limits.handshakeTimeout);
    in_.duration(t, "connect_timeout", "limits", limits.connectTimeout);
    in_.duration(t, "idle_timeout", "limits", limits.idleTimeout);
    in_.duration(t, "bind_timeout", "limits", limits.bindTimeout);
    in_.duration(t, "udp_idle_timeout", "limits", limits.udpIdleTimeout);
    in_.duration(t, "shutdown_grace", "limits", limits.shutdownGrace);
    if (in_.integer(t, "relay_buffer_size", "limits", 4096, 4194304, v)) {
      limits.relayBufferSize = static_cast<std::uint32_t>(v);
    }
    std::string relay;
    if (const auto* n = in_.string(t, "relay", "limits", relay)) {
      const auto* known =
          std::find_if(std::begin(config::kRelayModes), std::end(config::kRelayModes),
                       [&](const auto& m) { return m.name == relay; });
      if (known != std::end(config::kRelayModes)) {
        limits.relayMode = known->mode;
      } else {
        std::string names;
        for (const auto& m : config::kRelayModes) {
          if (!names.empty()) names += ", ";
          names += m.name;
        }
        in_.error("limits.relay", *n,
                  fmt::format("unknown relay mode {} (expected one of {})", quote(relay), names));
      }
    }
  }

  void authThrottle(const toml::table& t) {
    constexpr std::string_view kPath = "auth_throttle";
    in_.rejectUnknownKeys(t, kPath,
                          {"enabled", "window", "delay_after", "delay", "max_delay", "refuse_after",
                           "refuse_for", "max_pending"});
    AuthThrottle& a = config_.authThrottle;
    in_.boolean(t, "enabled", kPath, a.enabled);
    in_.duration(t, "window", kPath, a.window);
    in_.duration(t, "delay", kPath, a.delay);
    in_.duration(t, "max_delay", kPath, a.maxDelay);
    in_.duration(t, "refuse_for", kPath, a.refuseFor);
    std::int64_t v = 0;
    if (in_.integer(t, "delay_after", kPath, 0, 1000000, v)) {
      a.delayAfter = static_cast<std::uint32_t>(v);
    }
    if (in_.integer(t, "refuse_after", kPath, 0, 1000000, v)) {
      a.refuseAfter = static_cast<std::uint32_t>(v);
    }
    if (in_.integer(t, "max_pending", kPath, 1, 4096, v)) {
      a.maxPending = static_cast<std::uint32_t>(v);
    }
    if (a.maxDelay < a.delay) {
      if (const auto* n = t.get("max_delay")) {
        in_.error("auth_throttle.max_delay", *n,
                  fmt::format("{} ms is shorter than delay ({} ms)", a.maxDelay.count(),
                              a.delay.count()));
      } else {
        a.maxDelay = a.delay;
      }
    }
  }

  void bind(const toml::table& t) {
    in_.rejectUnknownKeys(
        t, "bind", {"external_address", "require_connect", "dynamic_ports", "secondary_peers"});
    std::string address;
    if (const auto* n = in_.string(t, "external_address", "bind", address)) {
      if (address.empty() || IpAddress::parse(address)) {
        config_.bind.externalAddress = address;
      } else {
        in_.error(
            "bind.external_address", *n,
            fmt::format("{} is not an IP address literal (or \"\" for automatic)", quote(address)));
      }
    }
    in_.boolean(t, "require_connect", "bind", config_.bind.requireConnect);
    protocols_.bindSettings(t, config_.bind);
  }

  void log(const toml::table& t) {
    in_.rejectUnknownKeys(t, "log", {"level", "sessions"});
    static constexpr std::array<std::string_view, 5> kLevels = {"trace", "debug", "info", "warn",
                                                                "error"};
    std::string level;
    if (const auto* n = in_.string(t, "level", "log", level)) {
      if (std::find(kLevels.begin(), kLevels.end(), level) != kLevels.end()) {
        config_.log.level = level;
      } else {
        in_.error("log.level", *n,
                  fmt::format("unknown level {} (expected trace, debug, info, warn or error)",
                              quote(level)));
      }
    }
    std::string sessions;
    if (const auto* n = in_.string(t, "sessions", "log", sessions)) {
      if (sessions.empty()) {
        in_.error("log.sessions", *n, "must not be empty (\"-\" is standard error)");
      } else {
        config_.log.sessions = sessions;
      }
    }
  }

  void groups(const toml::table& t) {
    for (const auto& [key, node] : t) {
      const std::string name(key.str());
      const std::string path = keyPath("groups", name);
      if (!isValidSetName(name)) {
        in_.error(path, key.source().begin.line,
                  "invalid group name (letters, digits, '_', '.', '-')");
        continue;
      }
      std::vector<std::string> members;
      in_.strings(node, path, [&](const std::string& s, const std::string& p, const toml::node& n) {
        if (isValidUserName(s)) {
          members.push_back(s);
        } else {
          in_.error(p, n, fmt::format("invalid user name {}", quote(s)));
        }
      });
      config_.groups[name] = std::move(members);
    }
  }

  void networks(const toml::table& t) {
    for (const auto& [key, node] : t) {
      const std::string name(key.str());
      const std::string path = keyPath("networks", name);
      if (name == "loopback" && node.as_table() != nullptr) {
        // A built-in network can only be opened to firewall clients, not redefined.
        const auto& table = *node.as_table();
        if (table.size() != 1 || !table.contains("firewall_clients")) {
          in_.error(path, key.source().begin.line,
                    "\"loopback\" is built in and cannot be redefined (only firewall_clients "
                    "can be set on it)");
          continue;
        }
        bool enabled = false;
        if (in_.boolean(table, "firewall_clients", path, enabled)) {
          for (auto& net : config_.networks) {
            if (net.name == name) net.firewallClients = enabled;
          }
        }
        continue;
      }
      if (name == "any" || name == "loopback") {
        in_.error(path, key.source().begin.line,
                  fmt::format("{} is built in and cannot be redefined", quote(name)));
        continue;
      }
      if (!isValidSetName(name)) {
        in_.error(path, key.source().begin.line,
                  "invalid network name (letters, digits, '_', '.', '-')");
        continue;
      }
      const auto* table = node.as_table();
      if (table == nullptr) {
        in_.error(path, node, fmt::format("expected a table, got {}", typeName(node)));
        continue;
      }
      in_.rejectUnknownKeys(*table, path, {"ranges", "domains", "firewall_clients"});
      policy::Network network;
      network.name = name;
      in_.boolean(*table, "firewall_clients", path, network.firewallClients);
      in_.strings(*table, "ranges", path,
                  [&](const std::string& s, const std::string& p, const toml::node& n) {
                    if (const auto range = IpRange::parse(s)) {
                      network.ranges.push_back(*range);
                    } else {
                      in_.error(p, n,
                                fmt::format("{} is not an address, a CIDR block or an address "
                                            "pair \"first-last\" (same family, first <= last)",
                                            quote(s)));
                    }
                  });
      in_.strings(*table, "domains", path,
                  [&](const std::string& s, const std::string& p, const toml::node& n) {
                    if (IpAddress::parse(s) || IpRange::parse(s)) {
                      in_.error(p, n, fmt::format("{} is an address: list it in ranges", quote(s)));
                    } else if (s.starts_with("*.") || s.starts_with(".")) {
                      in_.error(p, n,
                                fmt::format("{}: write the bare domain, it already matches every "
                                            "name below it",
                                            quote(s)));
                    } else if (!isValidDomain(s)) {
                      in_.error(p, n, fmt::format("{} is not a domain name", quote(s)));
                    } else {
                      network.domains.push_back(normaliseDomain(s));
                    }
                  });
      config_.networks.push_back(std::move(network));
    }
  }

  void networkNames(const toml::table& t, std::string_view key, const std::string& path,
                    std::vector<std::string>& out) {
    in_.strings(t, key, path, [&](const std::string& s, const std::string& p, const toml::node& n) {
      const bool known = std::any_of(config_.networks.begin(), config_.networks.end(),
                                     [&](const policy::Network& net) { return net.name == s; });
      if (known) {
        out.push_back(s);
        return;
      }
      std::vector<std::string> names;
      for (const auto& net : config_.networks) names.push_back(net.name);
      in_.error(p, n, fmt::format("unknown network {}{}", quote(s), suggestion(s, names)));
    });
  }

  // [[firewall_client.publish_listens]]: { name, applications, users, groups }.
  void publishListens(const toml::table& fc) {
    in_.tables(fc, "publish_listens", "firewall_client",
               [this](const toml::table& t, const std::string& path, std::size_t index) {
                 publishListen(t, path, index);
               });
  }

  void publishListen(const toml::table& t, const std::string& path, std::size_t index) {
    in_.rejectUnknownKeys(t, path, {"name", "applications", "users", "groups"});
    policy::PublishListen entry;
    entry.name = fmt::format("publish_listens[{}]", index);
    if (const auto* n = in_.string(t, "name", path, entry.name)) {
      if (entry.name.empty()) in_.error(keyPath(path, "name"), *n, "must not be empty");
    }
    namespace cs = protocol::settings;
    const auto* apps = in_.strings(
        t, "applications", path,
        [&](const std::string& s, const std::string& p, const toml::node& n) {
          if (s.empty() || s == "*" || s.find_first_of("/[]\n\r=") != std::string::npos ||
              cs::equalsIgnoreCase(s, cs::kCommonSection)) {
            in_.error(
                p, n,
                fmt::format("{} is not a program's binary name (no path, no \"*\")", quote(s)));
            return;
          }
          entry.applications.push_back(s);
        });
    if (apps == nullptr && t.get("applications") == nullptr) {
      in_.error(keyPath(path, "applications"), t.source().begin.line,
                "missing: name the programs that may publish a listen, e.g. [\"lobby\"]");
    } else if (apps != nullptr && apps->empty()) {
      in_.error(keyPath(path, "applications"), *apps, "must name at least one program");
    }
    usersAndGroups(t, path, entry.users, entry.groups);
    config_.firewallClient.publishListens.push_back(std::move(entry));
  }

  // `users` and `groups` of a rule or a publish_listens entry: valid user names, groups defined
  // in [groups]; the first table that names any is remembered for the users-file check.
  void usersAndGroups(const toml::table& t, const std::string& path,
                      std::vector<std::string>& users, std::vector<std::string>& groups) {
    in_.strings(t, "users", path,
                [&](const std::string& s, const std::string& p, const toml::node& n) {
                  if (isValidUserName(s)) {
                    users.push_back(s);
                  } else {
                    in_.error(p, n, fmt::format("invalid user name {}", quote(s)));
                  }
                });
    in_.strings(t, "groups", path,
                [&](const std::string& s, const std::string& p, const toml::node& n) {
                  if (config_.groups.contains(s)) {
                    groups.push_back(s);
                    return;
                  }
                  std::vector<std::string> names;
                  for (const auto& [name, members] : config_.groups) names.push_back(name);
                  in_.error(p, n,
                            fmt::format("unknown group {} (define it in [groups]){}", quote(s),
                                        suggestion(s, names)));
                });
    if ((!users.empty() || !groups.empty()) && namingRule_.empty()) {
      namingRule_ = path;
      namingRuleLine_ = t.source().begin.line;
    }
  }

  void rule(const toml::table& t, const std::string& path, std::size_t index) {
    in_.rejectUnknownKeys(t, path,
                          {"name", "action", "sources", "users", "groups", "destinations", "ports",
                           "commands", "protocols"});
    policy::Rule r;
    r.name = fmt::format("rule-{}", index + 1);
    std::string namePath = path;
    std::uint32_t nameLine = t.source().begin.line;
    if (const auto* n = in_.string(t, "name", path, r.name)) {
      namePath = keyPath(path, "name");
      nameLine = n->source().begin.line;
      if (r.name.empty()) in_.error(namePath, nameLine, "must not be empty");
    }
    if (const auto [it, inserted] = ruleNames_.emplace(r.name, path); !inserted) {
      in_.error(namePath, nameLine,
                fmt::format("duplicate rule name {} (also {})", quote(r.name), it->second));
    }

    std::string action;
    if (t.get("action") == nullptr) {
      in_.error(keyPath(path, "action"), t.source().begin.line,
                "missing: every rule needs action = \"allow\" or \"deny\"");
    } else if (const auto* n = in_.string(t, "action", path, action)) {
      if (action == "allow" || action == "deny") {
        r.action = action == "allow" ? policy::Action::Allow : policy::Action::Deny;
      } else {
        in_.error(keyPath(path, "action"), *n,
                  fmt::format("expected \"allow\" or \"deny\", got {}", quote(action)));
      }
    }

    networkNames(t, "sources", path, r.sources);
    networkNames(t, "destinations", path, r.destinations);
    usersAndGroups(t, path, r.users, r.groups);
    ports(t, path, r.ports);
    commands(t, path, r.commands);
    protocols_.ruleProtocols(t, path, config_.protocols, r.protocols);
    config_.rules.push_back(std::move(r));
  }

  void ports(const toml::table& t, const std::string& rulePath, std::vector<PortRange>& out,
             std::string_view key = "ports") {
    const toml::node* node = t.get(key);
    if (node == nullptr) return;
    const std::string path = keyPath(rulePath, key);
    const auto* array = node->as_array();
    if (array == nullptr) {
      in_.error(path, *node, fmt::format("expected an array of ports, got {}", typeName(*node)));
      return;
    }
    for (std::size_t i = 0; i < array->size(); ++i) {
      const toml::node& element = (*array)[i];
      if (const auto* number = element.as_integer()) {
        if (number->get() >= 1 && number->get() <= 65535) {
          const auto port = static_cast<std::uint16_t>(number->get());
          out.push_back(PortRange{port, port});
        } else {
          in_.error(indexPath(path, i), element,
                    fmt::format("port {} is out of range (must be 1..65535)", number->get()));
        }
      } else if (const auto* text = element.as_string()) {
        if (const auto range = PortRange::parse(text->get())) {
          out.push_back(*range);
        } else {
          in_.error(indexPath(path, i), element,
                    fmt::format("{} is not a port or port range (e.g. \"443\", \"8000-8100\"; "
                                "ports are 1..65535, first <= last)",
                                quote(text->get())));
        }
      } else {
        in_.error(indexPath(path, i), element,
                  fmt::format("expected a port number or a \"first-last\" string, got {}",
                              typeName(element)));
      }
    }
  }

  void commands(const toml::table& t, const std::string& rulePath, std::uint8_t& out) {
    std::uint8_t mask = 0;
    const auto* array = in_.strings(
        t, "commands", rulePath,
        [&](const std::string& s, const std::string& p, const toml::node& n) {
          if (const auto command = policy::commandByName(s)) {
            mask |= static_cast<std::uint8_t>(*command);
          } else {
            std::string names;
            for (const policy::Command c : policy::kCommands) {
              if (!names.empty()) names += ", ";
              names += quote(policy::toString(c));
            }
            in_.error(p, n,
                      fmt::format("unknown command {} (expected one of {})", quote(s), names));
          }
        });
    if (array == nullptr) return;
    if (array->empty()) {
      in_.error(keyPath(rulePath, "commands"), *array,
                "must not be empty (leave it out to allow every command)");
    }
    if (mask != 0) out = mask;
  }

  void kerberos(const toml::table& t) {
    in_.rejectUnknownKeys(t, "kerberos", {"keytab", "local_realms"});
    auto& k = config_.kerberos;
    if (const auto* n = in_.string(t, "keytab", "kerberos", k.keytab); n && k.keytab.empty()) {
      in_.error("kerberos.keytab", *n, "must not be empty (leave [kerberos] out instead)");
    }
    in_.strings(t, "local_realms", "kerberos",
                [&](const std::string& s, const std::string& p, const toml::node& n) {
                  if (s.empty() || s.find_first_of("@/ ") != std::string::npos) {
                    in_.error(p, n, fmt::format("{} is not a realm name", quote(s)));
                    return;
                  }
                  k.localRealms.push_back(s);
                });
  }

  // A listener offering "kerberos" needs the service's keys.
  void requireKeytab() {
    if (kerberosListener_.empty() || !config_.kerberos.keytab.empty()) return;
    in_.error("kerberos.keytab", kerberosListenerLine_,
              fmt::format("required: {} offers \"kerberos\"", kerberosListener_));
  }

  // Password listeners and user conditions need somewhere to look users up.
  void requireUsersFile() {
    if (!config_.usersFile.empty()) return;
    if (!passwordListener_.empty()) {
      in_.error("gateway.users_file", passwordListenerLine_,
                fmt::format("required: {} offers \"password\"", passwordListener_));
    } else if (!namingRule_.empty() && config_.control.hosts.empty() &&
               config_.kerberos.keytab.empty()) {
      // Enrolled hosts and Kerberos name their users; without them only the file does.
      in_.error("gateway.users_file", namingRuleLine_,
                fmt::format("required: {} names users or groups", namingRule_));
    }
  }

  Reader in_;
  ProtocolsParser protocols_{in_};
  Config config_;
  std::string passwordListener_;  // first listener offering "password", and its line
  std::string kerberosListener_;  // first listener offering "kerberos", and its line
  std::uint32_t kerberosListenerLine_ = 0;
  std::uint32_t passwordListenerLine_ = 0;
  std::string namingRule_;  // first rule with users or groups, and its line
  std::uint32_t namingRuleLine_ = 0;
  std::map<std::string, std::string> ruleNames_;  // name -> path of the rule that has it
  std::map<std::string, std::string> endpoints_;  // "address port N" -> listener path
};

std::optional<std::string> readWholeFile(const std::string& path, std::string& error) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = fmt::format("cannot open {}: {}", path, std::strerror(errno));
    return std::nullopt;
  }
  std::string text;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    error = fmt::format("cannot read {}: not a regular file", path);
    ::close(fd);
    return std::nullopt;
  }
  char buffer[16384];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = fmt::format("cannot read {}: {}", path, std::strerror(errno));
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
    if (text.size() > kMaxFileSize) {
      error = fmt::format("cannot read {}: larger than {} bytes", path, kMaxFileSize);
      ::close(fd);
      return std::nullopt;
    }
  }
  ::close(fd);
  return text;
}

}  // namespace

std::string Diagnostic::toString() const {
  return path.empty() ? message : fmt::format("{}: {}", path, message);
}

std::string_view authMethodName(AuthMethod method) {
  for (const auto& a : kAuthMethods) {
    if (a.method == method) return a.name;
  }
  return "?";
}

std::string Config::userOfPrincipal(const std::string& principal) const {
  const auto at = principal.rfind('@');
  if (at == std::string::npos) return principal;
  const std::string_view realm = std::string_view(principal).substr(at + 1);
  for (const auto& local : kerberos.localRealms) {
    if (local == realm) return principal.substr(0, at);
  }
  return principal;
}

std::shared_ptr<const policy::Engine> Config::makeEngine() const {
  return std::make_shared<const policy::Engine>(networks, groups, rules, protocols,
                                                bind.dynamicPorts);
}

LoadResult parseConfig(std::string_view tomlText, std::string_view sourceName) {
  LoadResult result;
  try {
    toml::table root;
    try {
      root = toml::parse(tomlText, sourceName);
    } catch (const toml::parse_error& e) {
      const auto& at = e.source().begin;
      result.errors.push_back(Diagnostic{
          "", fmt::format("line {}, column {}: {}", at.line, at.column, e.description()), at.line});
      return result;
    }
    Config config = ConfigParser(result.errors).parse(root);
    // Report in file order; problems without a line (none today) go last.
    std::stable_sort(
        result.errors.begin(), result.errors.end(), [](const Diagnostic& a, const Diagnostic& b) {
          return (a.line == 0 ? UINT32_MAX : a.line) < (b.line == 0 ? UINT32_MAX : b.line);
        });
    config.source = std::string(sourceName);
    if (result.errors.empty()) {
      result.warnings = checkWarnings(config);
      result.config = std::make_shared<const Config>(std::move(config));
    }
  } catch (const std::exception& e) {
    result.config.reset();
    result.errors.push_back(Diagnostic{"", fmt::format("internal error: {}", e.what())});
  } catch (...) {
    result.config.reset();
    result.errors.push_back(Diagnostic{"", "internal error"});
  }
  return result;
}

LoadResult loadConfigFile(const std::string& path) {
  std::string error;
  const auto text = readWholeFile(path, error);
  if (!text) {
    LoadResult result;
    result.errors.push_back(Diagnostic{"", error});
    return result;
  }
  return parseConfig(*text, path);
}

}  // namespace fwgate::config
