#include "client/preload/library.hpp"

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

extern "C" {
extern char* program_invocation_short_name;
}

namespace fwgate::client::preload {

namespace control = protocol::control;

thread_local int t_inside __attribute__((tls_model("initial-exec"))) = 0;

namespace {

Global g_global;
pthread_once_t g_globalOnce = PTHREAD_ONCE_INIT;
// One file at a time while assembling; a fresh configuration is kept in g_fresh.
char g_scratch[256 * 1024];
std::uint8_t g_fresh[256 * 1024];

int envInt(const char* name, int fallback, int low, int high) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  if (*end != '\0' || n < low || n > high) return fallback;
  return static_cast<int>(n);
}

// A program that has a cached configuration, even a stale one, works with it: refreshing it is
// worth this much of the first call's time, no more (the agent refreshes on its own schedule).
constexpr int kStaleRefreshMs = 1000;

// Fetches the configuration from the gateway into g_fresh within timeoutMs; returns the frame's
// size or 0.
std::size_t fetchConfig(Global& g, int timeoutMs) {
  std::uint8_t request[control::kHeaderSize];
  control::FrameWriter w(request, control::MessageType::GetConfig);
  const std::size_t requestSize = w.finish();
  Reply reply;
  const int error =
      exchange(g.gateway, g.identity, {request, requestSize}, g_fresh, timeoutMs, reply);
  if (error != 0 || reply.welcome.status != control::Status::Ok ||
      reply.type != static_cast<std::uint8_t>(control::MessageType::Config)) {
    char server[300];
    formatServer(g.config.server, server, sizeof server);
    debugLine(1, "refreshing the configuration from %s failed: %s", server,
              error != 0 ? std::strerror(error)
                         : std::string_view(control::statusText(reply.welcome.status)).data());
    return 0;
  }
  // Move the Config frame (header + body) to the front of g_fresh.
  const auto* frameStart = reply.body.data() - control::kHeaderSize;
  const std::size_t size = control::kHeaderSize + reply.body.size();
  std::memmove(g_fresh, frameStart, size);
  return size;
}

void load() {
  Inside inside;
  Global& g = g_global;
  g.debug = envInt("FWGATE_DEBUG", 0, 0, 9);
  g.gatewayTimeoutMs = envInt("FWGATE_TIMEOUT", 5000, 100, 600000);
  static Paths paths;  // 3 KiB: kept off the stack of the program's first call (load runs once)
  defaultPaths(paths);
  const char* app = program_invocation_short_name != nullptr ? program_invocation_short_name : "";
  assemble(g.config, paths, app, {}, {g_scratch, sizeof g_scratch});
  fillIdentity(g.config, g.identity);
  if (g.config.disabled()) {
    debugLine(2, "disabled for this program: every call goes direct");
    return;
  }
  if (g.config.server.empty()) {
    debugLine(1,
              "no gateway configured (FWGATE_SERVER, client.ini [Common] ServerName, the cache) "
              "and none found by DNS: %s; every call goes direct",
              g.config.detectProblem.data());
    return;
  }
  char server[300];
  formatServer(g.config.server, server, sizeof server);
  if (const int rc = resolveServer(g.config.server, g.gateway); rc != 0) {
    debugLine(1, "cannot resolve the gateway %s: %s; every call goes direct", server,
              ::gai_strerror(rc));
    return;
  }
  // A stale or missing configuration is refreshed once, now; the old one stays if that fails.
  // A failed attempt is remembered for a minute (the mtime of CACHE.attempt), so that with the
  // gateway away every program start does not wait for it again.
  const std::int64_t now = std::time(nullptr);
  const char* cachePath = ::geteuid() == 0 || paths.userCache[0] == '\0' ? paths.systemCache.data()
                                                                         : paths.userCache.data();
  char attemptPath[600];
  std::snprintf(attemptPath, sizeof attemptPath, "%s.attempt", cachePath);
  struct stat attempt {};
  const bool triedRecently = ::stat(attemptPath, &attempt) == 0 && now - attempt.st_mtime >= 0 &&
                             now - attempt.st_mtime < 60;
  if ((!g.config.haveGatewayConfig || now - g.config.fetchedAt > g.config.refreshSeconds) &&
      !triedRecently) {
    const std::size_t size = fetchConfig(
        g, g.config.haveGatewayConfig && g.gatewayTimeoutMs > kStaleRefreshMs ? kStaleRefreshMs
                                                                              : g.gatewayTimeoutMs);
    if (size == 0) {
      const int fd = ::open(attemptPath, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd >= 0) {
        ::futimens(fd, nullptr);
        ::close(fd);
      }
    } else {
      const protocol::Bytes body(g_fresh + control::kHeaderSize, size - control::kHeaderSize);
      assemble(g.config, paths, app, body, {g_scratch, sizeof g_scratch});
      g.config.fetchedAt = now;
      CacheHeader header{now, g.config.server};
      if (!writeCache(cachePath, header, {g_fresh, size})) {
        debugLine(2, "cannot write the cache %s: %s", cachePath, std::strerror(errno));
      }
      ::unlink(attemptPath);
      fillIdentity(g.config, g.identity);
    }
  }
  // The gateway itself is always reached directly.
  for (const auto* s : {&g.gateway.v4, &g.gateway.v6}) {
    control::AddressRange range;
    if (s->ss_family == AF_INET) {
      range.first.family = 4;
      std::memcpy(range.first.bytes.data(), &reinterpret_cast<const sockaddr_in*>(s)->sin_addr, 4);
    } else if (s->ss_family == AF_INET6) {
      range.first.family = 6;
      std::memcpy(range.first.bytes.data(), &reinterpret_cast<const sockaddr_in6*>(s)->sin6_addr,
                  16);
    } else {
      continue;
    }
    range.first = normalise(range.first);
    range.last = range.first;
    g.config.lat.add(range);
  }
  g.active = true;
  debugLine(2, "gateway %s (%s); LAT %zu ranges (gateway %zu, locallat %zu, routes %zu)", server,
            g.config.serverFrom, g.config.lat.size(), g.config.gatewayRanges,
            g.config.localLatRanges, g.config.routeRanges);
}

struct NameEntry {
  control::IpAddress address;
  char name[254] = {};
};
constexpr std::size_t kMaxNames = 256;
NameEntry g_names[kMaxNames];
std::size_t g_namesNext = 0;
pthread_mutex_t g_namesMutex = PTHREAD_MUTEX_INITIALIZER;

// fork() in another thread while one holds a lock would leave the child's copy locked: every
// lock of the library (LibraryLock), in the order they nest.
void atforkPrepare() {
  pthread_mutex_lock(&tablesMutex());
  pthread_mutex_lock(&g_namesMutex);
}
void atforkRelease() {
  pthread_mutex_unlock(&g_namesMutex);
  pthread_mutex_unlock(&tablesMutex());
}

__attribute__((constructor)) void initialise() {
  pthread_atfork(atforkPrepare, atforkRelease, atforkRelease);
}

}  // namespace

const Global& global() {
  pthread_once(&g_globalOnce, load);
  return g_global;
}

void debugLine(int level, const char* format, ...) {
  if (g_global.debug < level) return;
  char line[768];
  int n =
      std::snprintf(line, sizeof line, "fwgate: %s[%d]: ",
                    program_invocation_short_name != nullptr ? program_invocation_short_name : "?",
                    static_cast<int>(::getpid()));
  va_list args;
  va_start(args, format);
  const int m =
      std::vsnprintf(line + n, sizeof line - static_cast<std::size_t>(n) - 1, format, args);
  va_end(args);
  n = m < 0 ? n
            : (n + m >= static_cast<int>(sizeof line) - 1 ? static_cast<int>(sizeof line) - 2
                                                          : n + m);
  line[n++] = '\n';
  const int saved = errno;
  Inside inside;  // write() is one of our hooks; this line is the library's own
  [[maybe_unused]] const ssize_t ignored = ::write(2, line, static_cast<std::size_t>(n));
  errno = saved;
}

bool toEndpoint(const sockaddr* address, socklen_t length, control::Endpoint& out) {
  if (address->sa_family == AF_INET && length >= sizeof(sockaddr_in)) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(address);
    out.address.family = 4;
    std::memcpy(out.address.bytes.data(), &sin->sin_addr, 4);
    out.port = ntohs(sin->sin_port);
    return true;
  }
  if (address->sa_family == AF_INET6 && length >= sizeof(sockaddr_in6)) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(address);
    out.address.family = 6;
    std::memcpy(out.address.bytes.data(), &sin6->sin6_addr, 16);
    out.address = normalise(out.address);
    out.port = ntohs(sin6->sin6_port);
    return true;
  }
  return false;
}

void endpointText(const control::Endpoint& e, char* out, std::size_t size) {
  char host[64];
  formatAddress(e.address, host, sizeof host);
  std::snprintf(out, size, e.address.family == 6 ? "[%s]:%u" : "%s:%u", host,
                static_cast<unsigned>(e.port));
}

socklen_t toSockaddr(const control::Endpoint& e, int family, sockaddr_storage& out) {
  out = sockaddr_storage{};
  const control::IpAddress a = normalise(e.address);
  if (family == AF_INET) {
    if (a.family != 4) return 0;
    auto* sin = reinterpret_cast<sockaddr_in*>(&out);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(e.port);
    std::memcpy(&sin->sin_addr, a.bytes.data(), 4);
    return sizeof(sockaddr_in);
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(e.port);
  if (a.family == 4) {
    // An IPv6 socket sees IPv4 peers as mapped addresses, as the kernel shows them.
    sin6->sin6_addr.s6_addr[10] = 0xff;
    sin6->sin6_addr.s6_addr[11] = 0xff;
    std::memcpy(&sin6->sin6_addr.s6_addr[12], a.bytes.data(), 4);
  } else {
    std::memcpy(&sin6->sin6_addr, a.bytes.data(), 16);
  }
  return sizeof(sockaddr_in6);
}

void copyAddress(const sockaddr_storage& from, socklen_t fromLength, sockaddr* to,
                 socklen_t* toLength) {
  if (to != nullptr && toLength != nullptr) {
    std::memcpy(to, &from, *toLength < fromLength ? *toLength : fromLength);
  }
  if (toLength != nullptr) *toLength = fromLength;
}

bool socketId(int fd, SocketId& out) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return false;
  out.dev = st.st_dev;
  out.ino = st.st_ino;
  return true;
}

bool isUnspecifiedAddress(const control::IpAddress& a) {
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a.bytes[i] != 0) return false;
  }
  return true;
}

bool isOwnSocket(int fd, const SocketId& id) {
  SocketId now;
  return fd >= 0 && socketId(fd, now) && now == id;
}

void closeOwnSocket(int fd, const SocketId& id) {
  if (isOwnSocket(fd, id)) ::close(fd);
}

void rememberName(const control::IpAddress& address, const char* name) {
  LibraryLock lock(g_namesMutex);
  NameEntry& e = g_names[g_namesNext];
  g_namesNext = (g_namesNext + 1) % kMaxNames;
  e.address = address;
  std::snprintf(e.name, sizeof e.name, "%s", name);
}

bool nameFor(const control::IpAddress& address, char* out, std::size_t size) {
  bool found = false;
  LibraryLock lock(g_namesMutex);
  // Newest first: a name resolved again wins over an older one for the same address.
  for (std::size_t k = 1; k <= kMaxNames && !found; ++k) {
    const NameEntry& e = g_names[(g_namesNext + kMaxNames - k) % kMaxNames];
    if (e.name[0] != '\0' && e.address == address) {
      std::snprintf(out, size, "%s", e.name);
      found = true;
    }
  }
  return found;
}

}  // namespace fwgate::client::preload
