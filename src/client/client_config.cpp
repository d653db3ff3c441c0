#include "client/client_config.hpp"

#include "client/discovery.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace fwgate::client {

namespace settings = protocol::settings;
namespace control = protocol::control;

namespace {

template <std::size_t N>
void copyText(std::array<char, N>& out, std::string_view text) {
  const std::size_t n = text.size() < N - 1 ? text.size() : N - 1;
  if (n != 0) std::memcpy(out.data(), text.data(), n);  // an empty view's data() may be null
  out[n] = '\0';
}

template <std::size_t N>
void joinPath(std::array<char, N>& out, const char* a, const char* b) {
  std::snprintf(out.data(), N, "%s%s", a, b);
}

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && v[0] != '\0' ? v : nullptr;
}

bool parsePortText(std::string_view s, std::uint16_t& out) {
  if (s.empty() || s.size() > 5) return false;
  std::uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (v == 0 || v > 65535) return false;
  out = static_cast<std::uint16_t>(v);
  return true;
}

struct ProblemContext {
  ProblemFn fn;
  void* context;
  const char* where;
};

void settingsProblem(void* raw, const settings::SettingsProblem& p) {
  auto* c = static_cast<ProblemContext*>(raw);
  c->fn(c->context, c->where, p.line, p.section, p.key, p.what);
}

bool parseKerberos(std::string_view value, ClientConfig::Kerberos& out) {
  if (settings::equalsIgnoreCase(value, "auto")) {
    out = ClientConfig::Kerberos::Auto;
  } else if (settings::equalsIgnoreCase(value, "yes") || value == "1") {
    out = ClientConfig::Kerberos::Yes;
  } else if (settings::equalsIgnoreCase(value, "no") || value == "0") {
    out = ClientConfig::Kerberos::No;
  } else {
    return false;
  }
  return true;
}

// [Common]: the client's own keys.
void applyCommon(std::string_view text, ClientConfig& out, ServerAddress& commonServer,
                 const ProblemContext* problems) {
  settings::scanIni(text, [&](const settings::IniLine& line) {
    if (line.kind != settings::IniLine::Kind::KeyValue ||
        !settings::equalsIgnoreCase(line.section, settings::kCommonSection)) {
      return;
    }
    const char* bad = nullptr;
    if (settings::equalsIgnoreCase(line.key, "ServerName")) {
      if (!parseServer(line.value, commonServer)) bad = "expected host, host:port or [v6]:port";
    } else if (settings::equalsIgnoreCase(line.key, "User")) {
      copyText(out.user, line.value);
    } else if (settings::equalsIgnoreCase(line.key, "Password")) {
      copyText(out.password, line.value);
    } else if (settings::equalsIgnoreCase(line.key, "GatewayKey")) {
      if (line.value.size() != 44) {
        bad = "expected the gateway's key, 44 characters of base64 (fwgate gateway prints it)";
      } else {
        copyText(out.gatewayKey, line.value);
        out.gatewayKeyFrom = "client.ini [Common]";
      }
    } else if (settings::equalsIgnoreCase(line.key, "Kerberos")) {
      if (!parseKerberos(line.value, out.kerberos)) bad = "expected auto, yes or no";
    } else if (settings::equalsIgnoreCase(line.key, "KerberosService")) {
      copyText(out.kerberosService, line.value);
    } else {
      bad =
          "unknown key in [Common] (ServerName, User, Password, GatewayKey, Kerberos, "
          "KerberosService)";
    }
    if (bad != nullptr && problems != nullptr && problems->fn != nullptr) {
      problems->fn(problems->context, problems->where, line.line, line.section, line.key, bad);
    }
  });
}

std::string_view settingsText(protocol::Bytes body) {
  control::AttributeReader reader(body);
  control::Tag tag;
  protocol::Bytes value;
  while (reader.next(tag, value)) {
    if (tag == control::Tag::Settings) return control::readText(value);
  }
  return {};
}

}  // namespace

bool parseServer(std::string_view text, ServerAddress& out) {
  ServerAddress s;
  std::string_view host = text;
  if (text.empty()) return false;
  if (text.front() == '[') {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos || close < 2) return false;
    host = text.substr(1, close - 1);
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty() && (rest.front() != ':' || !parsePortText(rest.substr(1), s.port))) {
      return false;
    }
  } else {
    const std::size_t colon = text.find(':');
    if (colon != std::string_view::npos && text.find(':', colon + 1) == std::string_view::npos) {
      host = text.substr(0, colon);
      if (!parsePortText(text.substr(colon + 1), s.port)) return false;
    }
    // More than one colon and no brackets: a bare IPv6 address, default port.
  }
  if (host.empty() || host.size() >= s.host.size()) return false;
  for (char c : host) {
    if (c <= ' ' || c == '/' || c == '[' || c == ']') return false;
  }
  copyText(s.host, host);
  out = s;
  return true;
}

void formatServer(const ServerAddress& server, char* out, std::size_t size) {
  const bool v6 = std::strchr(server.host.data(), ':') != nullptr;
  std::snprintf(out, size, v6 ? "[%s]:%u" : "%s:%u", server.host.data(),
                static_cast<unsigned>(server.port));
}

void defaultPaths(Paths& out) {
  out = Paths{};
  copyText(out.resolvConf, "/etc/resolv.conf");
  copyText(out.nsswitchConf, "/etc/nsswitch.conf");
  copyText(out.configDir, env("FWGATE_CONFIG_DIR") ? env("FWGATE_CONFIG_DIR") : "/etc/fwgate");
  const char* home = env("HOME");
  if (const char* p = env("FWGATE_USER_CONFIG")) {
    copyText(out.userConfig, p);
  } else if (const char* xdg = env("XDG_CONFIG_HOME")) {
    joinPath(out.userConfig, xdg, "/fwgate/client.ini");
  } else if (home != nullptr) {
    joinPath(out.userConfig, home, "/.config/fwgate/client.ini");
  }
  if (const char* p = env("FWGATE_CACHE")) {
    copyText(out.systemCache, p);
    return;  // one cache, chosen explicitly
  }
  copyText(out.systemCache, "/var/cache/fwgate/client.cache");
  if (const char* xdg = env("XDG_CACHE_HOME")) {
    joinPath(out.userCache, xdg, "/fwgate/client.cache");
  } else if (home != nullptr) {
    joinPath(out.userCache, home, "/.cache/fwgate/client.cache");
  }
}

long readWholeFile(const char* path, char* buf, std::size_t size) {
  if (path == nullptr || path[0] == '\0') {
    errno = ENOENT;
    return -1;
  }
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  std::size_t total = 0;
  for (;;) {
    if (total == size) {
      char extra;
      const ssize_t more = ::read(fd, &extra, 1);
      ::close(fd);
      return more == 0 ? static_cast<long>(total) : -2;
    }
    const ssize_t n = ::read(fd, buf + total, size - total);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      errno = e;
      return -1;
    }
    if (n == 0) break;
    total += static_cast<std::size_t>(n);
  }
  ::close(fd);
  return static_cast<long>(total);
}

bool parseCache(std::span<const std::uint8_t> file, CacheHeader& header,
                protocol::Bytes& configBody) {
  const std::string_view text(reinterpret_cast<const char*>(file.data()), file.size());
  const std::size_t end = text.find("\n\n");
  if (!text.starts_with("fwgate-cache 1\n") || end == std::string_view::npos) return false;
  CacheHeader h;
  std::string_view lines = text.substr(0, end);
  std::string_view detected;
  bool haveFetched = false;
  while (!lines.empty()) {
    const std::size_t nl = lines.find('\n');
    const std::string_view line = lines.substr(0, nl);
    if (line.starts_with("fetched ")) {
      std::int64_t v = 0;
      for (char c : line.substr(8)) {
        // A number past int64 is no time this cache was written: malformed, not overflowed.
        if (c < '0' || c > '9' || v > (INT64_MAX - 9) / 10) return false;
        v = v * 10 + (c - '0');
      }
      h.fetchedAt = v;
      haveFetched = true;
    } else if (line.starts_with("server ")) {
      if (!parseServer(line.substr(7), h.server)) return false;
    } else if (line.starts_with("detected ")) {
      detected = line.substr(9);
    } else if (line.starts_with("key ")) {
      if (line.size() - 4 != 44) return false;
      copyText(h.key, line.substr(4));
    }
    if (nl == std::string_view::npos) break;
    lines.remove_prefix(nl + 1);
  }
  const auto frame = control::parseFrame(file.subspan(end + 2));
  if (!haveFetched || !frame.complete() ||
      frame.value.type != static_cast<std::uint8_t>(control::MessageType::Config) ||
      !control::validConfig(frame.value.body)) {
    return false;
  }
  if (!h.server.empty()) copyText(h.server.detectedBy, detected);
  header = h;
  configBody = frame.value.body;
  return true;
}

bool writeCache(const char* path, const CacheHeader& header, protocol::Bytes configFrame) {
  char dir[512];
  std::snprintf(dir, sizeof dir, "%s", path);
  if (char* slash = std::strrchr(dir, '/'); slash != nullptr && slash != dir) {
    *slash = '\0';
    // Create each missing directory of the path (0755: the cache holds no secrets).
    for (char* p = dir + 1; *p != '\0'; ++p) {
      if (*p == '/') {
        *p = '\0';
        ::mkdir(dir, 0755);
        *p = '/';
      }
    }
    ::mkdir(dir, 0755);
  }
  char tmp[600];
  std::snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, static_cast<int>(::getpid()));
  const int fd = ::open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  char server[640] = {};
  if (!header.server.empty()) {
    std::memcpy(server, "server ", 7);
    formatServer(header.server, server + 7, sizeof server - 8);
    std::strcat(server, "\n");
    const char* detected = header.server.detectedBy.data();
    // One line: a record name with a line break in it (not one DNS gives) is left out.
    if (detected[0] != '\0' && std::strchr(detected, '\n') == nullptr) {
      std::snprintf(server + std::strlen(server), sizeof server - std::strlen(server),
                    "detected %s\n", detected);
    }
  }
  char key[80] = {};
  if (header.key[0] != '\0' && std::strlen(header.key.data()) == 44) {
    std::snprintf(key, sizeof key, "key %s\n", header.key.data());
  }
  char head[800];
  const int n = std::snprintf(head, sizeof head, "fwgate-cache 1\nfetched %lld\n%s%s\n",
                              static_cast<long long>(header.fetchedAt), server, key);
  bool ok = ::write(fd, head, static_cast<std::size_t>(n)) == n &&
            ::write(fd, configFrame.data(), configFrame.size()) ==
                static_cast<ssize_t>(configFrame.size());
  ok = ::close(fd) == 0 && ok;
  if (!ok || ::rename(tmp, path) != 0) {
    const int e = errno;
    ::unlink(tmp);
    errno = e;
    return false;
  }
  return true;
}

bool applyGatewayConfig(protocol::Bytes body, ClientConfig& out) {
  if (!control::validConfig(body)) return false;
  control::AttributeReader reader(body);
  control::Tag tag;
  protocol::Bytes value;
  while (reader.next(tag, value)) {
    switch (tag) {
      case control::Tag::Range: {
        control::AddressRange range;
        if (control::readRange(value, range) && out.lat.add(range)) ++out.gatewayRanges;
        break;
      }
      case control::Tag::DomainSuffix:
        out.ldt.add(control::readText(value));
        break;
      case control::Tag::RefreshSeconds: {
        std::uint32_t seconds = 0;
        if (control::readU32(value, seconds) && seconds >= 60) out.refreshSeconds = seconds;
        break;
      }
      case control::Tag::Network:
        copyText(out.network, control::readText(value));
        break;
      case control::Tag::ServerName:
        copyText(out.gatewayName, control::readText(value));
        break;
      // Left out rather than cut short when too long: a truncated address would be wrong.
      case control::Tag::WebProxy:
        if (value.size() < out.webProxy.size()) copyText(out.webProxy, control::readText(value));
        break;
      case control::Tag::PacUrl:
        if (value.size() < out.pacUrl.size()) copyText(out.pacUrl, control::readText(value));
        break;
      default:
        break;
    }
  }
  out.haveGatewayConfig = true;
  return true;
}

void assemble(ClientConfig& out, const Paths& paths, std::string_view app,
              protocol::Bytes gatewayConfig, std::span<char> scratch, bool withRoutes,
              ProblemFn problem, void* context) {
  out = ClientConfig{};
  copyText(out.app, app);
  if (const char* d = env("FWGATE_DISABLE")) out.disabledByEnvironment = d[0] == '1';
  auto* bytes = reinterpret_cast<const std::uint8_t*>(scratch.data());
  ServerAddress cacheServer;
  std::array<char, 64> cacheKey{};

  // 1. The gateway's configuration: fresh, or the newest readable cache.
  if (gatewayConfig.empty()) {
    const char* best = nullptr;
    std::int64_t bestTime = -1;
    for (const char* path : {paths.systemCache.data(), paths.userCache.data()}) {
      const long n = readWholeFile(path, scratch.data(), scratch.size());
      CacheHeader header;
      protocol::Bytes body;
      if (n > 0 && parseCache({bytes, static_cast<std::size_t>(n)}, header, body) &&
          header.fetchedAt > bestTime) {
        best = path;
        bestTime = header.fetchedAt;
      }
    }
    if (best != nullptr) {
      const long n = readWholeFile(best, scratch.data(), scratch.size());
      CacheHeader header;
      if (n > 0 && parseCache({bytes, static_cast<std::size_t>(n)}, header, gatewayConfig)) {
        out.fetchedAt = header.fetchedAt;
        cacheServer = header.server;
        cacheKey = header.key;
        copyText(out.cacheRead, best);
      }
    }
  }
  if (!gatewayConfig.empty() && applyGatewayConfig(gatewayConfig, out)) {
    ProblemContext pc{problem, context, "gateway"};
    settings::applySettings(settingsText(gatewayConfig), app, out.settings,
                            problem != nullptr ? settingsProblem : nullptr, &pc);
  }

  // 2. All users, then the user: settings sections and [Common].
  ServerAddress commonServer;
  char iniPath[600];
  std::snprintf(iniPath, sizeof iniPath, "%s/client.ini", paths.configDir.data());
  for (const char* path : {static_cast<const char*>(iniPath), paths.userConfig.data()}) {
    const long n = readWholeFile(path, scratch.data(), scratch.size());
    if (n == -2 && problem != nullptr) problem(context, path, 0, {}, {}, "file too large");
    if (n <= 0) continue;
    const std::string_view text(scratch.data(), static_cast<std::size_t>(n));
    ProblemContext pc{problem, context, path};
    settings::applySettings(text, app, out.settings, problem != nullptr ? settingsProblem : nullptr,
                            &pc);
    applyCommon(text, out, commonServer, &pc);
  }

  // 3. Locallat.txt and the host's directly connected routes.
  char latPath[600];
  std::snprintf(latPath, sizeof latPath, "%s/locallat.txt", paths.configDir.data());
  if (const long n = readWholeFile(latPath, scratch.data(), scratch.size()); n > 0) {
    struct Bad {
      ProblemFn fn;
      void* context;
      const char* path;
    } bad{problem, context, latPath};
    out.localLatRanges = parseLocalLat(
        {scratch.data(), static_cast<std::size_t>(n)}, out.lat,
        problem == nullptr ? nullptr
                           : +[](void* c, std::uint32_t line) {
                               auto* b = static_cast<Bad*>(c);
                               b->fn(b->context, b->path, line, {}, {},
                                     "expected a pair of addresses \"first last\"");
                             },
        &bad);
  }
  if (withRoutes) {
    if (const long n = readWholeFile("/proc/net/route", scratch.data(), scratch.size()); n > 0) {
      out.routeRanges += parseIpv4Routes({scratch.data(), static_cast<std::size_t>(n)}, out.lat);
    }
    if (const long n = readWholeFile("/proc/net/ipv6_route", scratch.data(), scratch.size());
        n > 0) {
      out.routeRanges += parseIpv6Routes({scratch.data(), static_cast<std::size_t>(n)}, out.lat);
    }
  }

  // 4. Which gateway: the environment, the program's section, [Common], the cache, DNS.
  ServerAddress appServer;
  const bool haveAppServer = out.settings.has(settings::Key::ServerName) &&
                             parseServer(out.settings.serverName.data(), appServer);
  if (const char* e = env("FWGATE_SERVER"); e != nullptr && parseServer(e, out.server)) {
    out.serverFrom = "FWGATE_SERVER";
  } else if (haveAppServer) {
    out.server = appServer;
    out.serverFrom = "application settings";
  } else if (!commonServer.empty()) {
    out.server = commonServer;
    out.serverFrom = "client.ini [Common]";
  } else if (!cacheServer.empty()) {
    out.server = cacheServer;
    out.serverFrom = "cache";
  } else if (out.disabled()) {
    copyText(out.detectProblem, "not looked for: the client is disabled for this program");
  } else {
    // 5. Nothing names one: DNS detection (the files above are all read, scratch is free).
    Detected found;
    if (detectServerRemembered(paths, scratch, found, true)) {
      out.server = found.server;
      out.serverFrom = "DNS";
    } else {
      out.detectProblem = found.problem;
    }
  }
  // The pin: the environment, [Common], or the cache's when the cache names this same gateway.
  if (const char* k = env("FWGATE_GATEWAY_KEY")) {
    copyText(out.gatewayKey, k);
    out.gatewayKeyFrom = "FWGATE_GATEWAY_KEY";
  } else if (out.gatewayKey[0] == '\0' && cacheKey[0] != '\0' && !cacheServer.empty() &&
             cacheServer.port == out.server.port &&
             std::strcmp(cacheServer.host.data(), out.server.host.data()) == 0) {
    out.gatewayKey = cacheKey;
    out.gatewayKeyFrom = "cache";
  }
  if (const char* u = env("FWGATE_USER")) copyText(out.user, u);
  if (const char* p = env("FWGATE_PASSWORD")) copyText(out.password, p);
  if (const char* k = env("FWGATE_KERBEROS")) parseKerberos(k, out.kerberos);
  if (const char* k = env("FWGATE_KERBEROS_SERVICE")) copyText(out.kerberosService, k);
}

void kerberosFromEnvironment(ClientConfig& out) {
  if (const char* k = std::getenv("FWGATE_KERBEROS")) parseKerberos(k, out.kerberos);
  if (const char* k = std::getenv("FWGATE_KERBEROS_SERVICE")) copyText(out.kerberosService, k);
}

bool resolvedLocally(const ClientConfig& config, std::string_view name) {
  while (!name.empty() && name.back() == '.') name.remove_suffix(1);
  const auto endsWith = [&](std::string_view suffix) {
    return name.size() >= suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
  };
  if (name.empty() || name == "localhost" || endsWith(".localhost") || endsWith(".local")) {
    return true;
  }
  const char mode = config.settings.nameResolution;
  if (mode == 'L') return true;
  if (mode != 'R' && name.find('.') == std::string_view::npos) return true;
  return config.ldt.contains(name);
}

}  // namespace fwgate::client
