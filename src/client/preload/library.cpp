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

std::atomic<int> g_pendingCount{0};
std::atomic<int> g_remotedCount{0};
std::atomic<int> g_taggedCount{0};
std::atomic<int> g_listenCount{0};
std::atomic<int> g_udpCount{0};

namespace {

RealFunctions g_real;
pthread_once_t g_realOnce = PTHREAD_ONCE_INIT;
std::atomic<bool> g_realReady{false};

template <typename F>
void lookup(F& out, const char* name, void* ours) {
  void* symbol = ::dlsym(RTLD_NEXT, name);
  // RTLD_NEXT can find ourselves again when the library is loaded twice: never call that.
  if (symbol == ours) symbol = nullptr;
  out = reinterpret_cast<F>(symbol);
}

}  // namespace

}  // namespace fwgate::client::preload

// The hooks, declared here so lookup() can compare addresses with them.
extern "C" {
int connect(int, const sockaddr*, socklen_t);
int bind(int, const sockaddr*, socklen_t);
int listen(int, int);
int accept(int, sockaddr*, socklen_t*);
int accept4(int, sockaddr*, socklen_t*, int);
int getsockname(int, sockaddr*, socklen_t*);
ssize_t sendto(int, const void*, size_t, int, const sockaddr*, socklen_t);
ssize_t sendmsg(int, const msghdr*, int);
int sendmmsg(int, mmsghdr*, unsigned int, int);
ssize_t send(int, const void*, size_t, int);
ssize_t write(int, const void*, size_t);
ssize_t recvfrom(int, void*, size_t, int, sockaddr*, socklen_t*);
ssize_t recvmsg(int, msghdr*, int);
int recvmmsg(int, mmsghdr*, unsigned int, int, timespec*);
ssize_t recv(int, void*, size_t, int);
ssize_t read(int, void*, size_t);
long syscall(long, ...);
ssize_t readv(int, const iovec*, int);
ssize_t writev(int, const iovec*, int);
ssize_t __recvfrom_chk(int, void*, size_t, size_t, int, sockaddr*, socklen_t*);
ssize_t __recv_chk(int, void*, size_t, size_t, int);
ssize_t __read_chk(int, void*, size_t, size_t);
int dup(int);
int dup2(int, int);
int dup3(int, int, int);
int fcntl(int, int, ...);
int fcntl64(int, int, ...);
int __poll_chk(pollfd*, nfds_t, int, size_t);
int __ppoll_chk(pollfd*, nfds_t, const timespec*, const sigset_t*, size_t);
int getaddrinfo(const char*, const char*, const addrinfo*, addrinfo**);
hostent* gethostbyname(const char*);
hostent* gethostbyname2(const char*, int);
int gethostbyname_r(const char*, hostent*, char*, size_t, hostent**, int*);
int gethostbyname2_r(const char*, int, hostent*, char*, size_t, hostent**, int*);
int getpeername(int, sockaddr*, socklen_t*);
int getsockopt(int, int, int, void*, socklen_t*);
int poll(pollfd*, nfds_t, int);
int ppoll(pollfd*, nfds_t, const timespec*, const sigset_t*);
int select(int, fd_set*, fd_set*, fd_set*, timeval*);
int pselect(int, fd_set*, fd_set*, fd_set*, const timespec*, const sigset_t*);
int epoll_ctl(int, int, int, epoll_event*);
int epoll_wait(int, epoll_event*, int, int);
int epoll_pwait(int, epoll_event*, int, int, const sigset_t*);
}

namespace fwgate::client::preload {

namespace {

void resolveReal() {
  auto& r = g_real;
  lookup(r.connect, "connect", reinterpret_cast<void*>(&::connect));
  lookup(r.bind, "bind", reinterpret_cast<void*>(&::bind));
  lookup(r.listen, "listen", reinterpret_cast<void*>(&::listen));
  lookup(r.accept, "accept", reinterpret_cast<void*>(&::accept));
  lookup(r.accept4, "accept4", reinterpret_cast<void*>(&::accept4));
  lookup(r.getsockname, "getsockname", reinterpret_cast<void*>(&::getsockname));
  lookup(r.sendto, "sendto", reinterpret_cast<void*>(&::sendto));
  lookup(r.sendmsg, "sendmsg", reinterpret_cast<void*>(&::sendmsg));
  lookup(r.sendmmsg, "sendmmsg", reinterpret_cast<void*>(&::sendmmsg));
  lookup(r.send, "send", reinterpret_cast<void*>(&::send));
  lookup(r.write, "write", reinterpret_cast<void*>(&::write));
  lookup(r.recvfrom, "recvfrom", reinterpret_cast<void*>(&::recvfrom));
  lookup(r.recvmsg, "recvmsg", reinterpret_cast<void*>(&::recvmsg));
  lookup(r.recvmmsg, "recvmmsg", reinterpret_cast<void*>(&::recvmmsg));
  lookup(r.recv, "recv", reinterpret_cast<void*>(&::recv));
  lookup(r.read, "read", reinterpret_cast<void*>(&::read));
  lookup(r.syscall, "syscall", reinterpret_cast<void*>(&::syscall));
  lookup(r.readv, "readv", reinterpret_cast<void*>(&::readv));
  lookup(r.writev, "writev", reinterpret_cast<void*>(&::writev));
  lookup(r.recvfromChk, "__recvfrom_chk", reinterpret_cast<void*>(&::__recvfrom_chk));
  lookup(r.recvChk, "__recv_chk", reinterpret_cast<void*>(&::__recv_chk));
  lookup(r.readChk, "__read_chk", reinterpret_cast<void*>(&::__read_chk));
  lookup(r.dup, "dup", reinterpret_cast<void*>(&::dup));
  lookup(r.dup2, "dup2", reinterpret_cast<void*>(&::dup2));
  lookup(r.dup3, "dup3", reinterpret_cast<void*>(&::dup3));
  lookup(r.fcntl, "fcntl", reinterpret_cast<void*>(&::fcntl));
  lookup(r.pollChk, "__poll_chk", reinterpret_cast<void*>(&::__poll_chk));
  lookup(r.ppollChk, "__ppoll_chk", reinterpret_cast<void*>(&::__ppoll_chk));
  // Newer than some libcs: looked up by name only.
  r.fcntl64 = reinterpret_cast<decltype(r.fcntl64)>(::dlsym(RTLD_NEXT, "fcntl64"));
  lookup(r.getaddrinfo, "getaddrinfo", reinterpret_cast<void*>(&::getaddrinfo));
  lookup(r.gethostbyname, "gethostbyname", reinterpret_cast<void*>(&::gethostbyname));
  lookup(r.gethostbyname2, "gethostbyname2", reinterpret_cast<void*>(&::gethostbyname2));
  lookup(r.gethostbyname_r, "gethostbyname_r", reinterpret_cast<void*>(&::gethostbyname_r));
  lookup(r.gethostbyname2_r, "gethostbyname2_r", reinterpret_cast<void*>(&::gethostbyname2_r));
  lookup(r.getpeername, "getpeername", reinterpret_cast<void*>(&::getpeername));
  lookup(r.getsockopt, "getsockopt", reinterpret_cast<void*>(&::getsockopt));
  lookup(r.poll, "poll", reinterpret_cast<void*>(&::poll));
  lookup(r.ppoll, "ppoll", reinterpret_cast<void*>(&::ppoll));
  lookup(r.select, "select", reinterpret_cast<void*>(&::select));
  lookup(r.pselect, "pselect", reinterpret_cast<void*>(&::pselect));
  lookup(r.epoll_ctl, "epoll_ctl", reinterpret_cast<void*>(&::epoll_ctl));
  lookup(r.epoll_wait, "epoll_wait", reinterpret_cast<void*>(&::epoll_wait));
  lookup(r.epoll_pwait, "epoll_pwait", reinterpret_cast<void*>(&::epoll_pwait));
  // Newer than some libcs: looked up by name only.
  r.epoll_pwait2 = reinterpret_cast<decltype(r.epoll_pwait2)>(::dlsym(RTLD_NEXT, "epoll_pwait2"));
  g_realReady.store(true, std::memory_order_release);
}

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

// Fetches the configuration from the gateway into g_fresh; returns the frame's size or 0.
std::size_t fetchConfig(Global& g) {
  std::uint8_t request[control::kHeaderSize];
  control::FrameWriter w(request, control::MessageType::GetConfig);
  const std::size_t requestSize = w.finish();
  Reply reply;
  const int error =
      exchange(g.gateway, g.identity, {request, requestSize}, g_fresh, g.gatewayTimeoutMs, reply);
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
  Paths paths;
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
              "no gateway configured (FWGATE_SERVER, client.ini [Common] ServerName or "
              "`fwgate detect`): every call goes direct");
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
    const std::size_t size = fetchConfig(g);
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

pthread_mutex_t g_tables = PTHREAD_MUTEX_INITIALIZER;
constexpr std::size_t kMaxPending = 256;
Pending g_pending[kMaxPending];

struct Remoted {
  bool used = false;
  int fd = -1;
  SocketId id;
  sockaddr_storage destination{};
  socklen_t length = 0;
  control::Endpoint bound;
};
constexpr std::size_t kMaxRemoted = 4096;
Remoted g_remoted[kMaxRemoted];
std::size_t g_remotedNext = 0;

struct NameEntry {
  control::IpAddress address;
  char name[254] = {};
};
constexpr std::size_t kMaxNames = 256;
NameEntry g_names[kMaxNames];
std::size_t g_namesNext = 0;
pthread_mutex_t g_namesMutex = PTHREAD_MUTEX_INITIALIZER;

// fork() in another thread while one holds a table lock would leave the child's copy locked.
void atforkPrepare() {
  pthread_mutex_lock(&g_tables);
  pthread_mutex_lock(&g_namesMutex);
}
void atforkRelease() {
  pthread_mutex_unlock(&g_namesMutex);
  pthread_mutex_unlock(&g_tables);
}

__attribute__((constructor)) void initialise() {
  pthread_once(&g_realOnce, resolveReal);
  pthread_atfork(atforkPrepare, atforkRelease, atforkRelease);
}

}  // namespace

const RealFunctions& real() {
  // Every hook starts here, read() and write() too: one acquire load once resolved.
  if (!g_realReady.load(std::memory_order_acquire)) pthread_once(&g_realOnce, resolveReal);
  return g_real;
}

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

void lockTables() {
  pthread_mutex_lock(&g_tables);
}

void unlockTables() {
  pthread_mutex_unlock(&g_tables);
}

Pending* findPendingLocked(int fd) {
  if (g_pendingCount.load() == 0) return nullptr;
  for (auto& e : g_pending) {
    if (e.state == PendingState::Free || e.fd != fd) continue;
    SocketId now;
    if (socketId(fd, now) && now == e.id) return &e;
    freePendingLocked(e);  // closed, and the number reused (or not): forget it
    return nullptr;
  }
  return nullptr;
}

Pending* addPendingLocked(int fd, const SocketId& id, const sockaddr* destination,
                          socklen_t length) {
  for (auto& e : g_pending) {
    if (e.state != PendingState::Free && e.fd == fd) freePendingLocked(e);
  }
  for (auto& e : g_pending) {
    if (e.state != PendingState::Free) continue;
    e = Pending{};
    e.state = PendingState::Waiting;
    e.fd = fd;
    e.id = id;
    std::memcpy(&e.destination, destination, length);
    e.destinationLength = length;
    g_pendingCount.fetch_add(1);
    return &e;
  }
  return nullptr;
}

void freePendingLocked(Pending& e) {
  if (e.state == PendingState::Free) return;
  if (e.hasEpoll) g_taggedCount.fetch_sub(1);
  e = Pending{};
  g_pendingCount.fetch_sub(1);
}

namespace {

void restoreEpollLocked(Pending& e) {
  if (!e.hasEpoll) return;
  // Back to the application's own registration; the kernel reports the socket's readiness to it
  // (an epoll_ctl MOD re-queues a ready socket, edge-triggered too).
  if (real().epoll_ctl(e.epfd, EPOLL_CTL_MOD, e.fd, &e.appEvent) != 0) {
    debugLine(1, "restoring the epoll registration of fd %d failed: %s", e.fd,
              std::strerror(errno));
  }
  e.hasEpoll = false;
  g_taggedCount.fetch_sub(1);
}

}  // namespace

void settleLocked(Pending& e, int error) {
  if (error == 0) {
    addRemoted(e.fd, e.id, reinterpret_cast<const sockaddr*>(&e.destination), e.destinationLength,
               e.bound);
    restoreEpollLocked(e);
    freePendingLocked(e);
    return;
  }
  e.state = PendingState::Failed;
  e.error = error;
  // Reads and writes on it fail from now on, as on a socket whose connect failed.
  ::shutdown(e.fd, SHUT_RDWR);
  restoreEpollLocked(e);
  debugLine(1, "connect on fd %d failed: %s%s%s", e.fd, std::strerror(error),
            e.detail[0] != '\0' ? " — " : "", e.detail);
}

bool progressLocked(Pending& e) {
  if (e.state != PendingState::Waiting) return true;
  int error = 0;
  Inside inside;
  if (takeConnectReply(e.fd, e.welcomed, error, e.detail, sizeof e.detail, &e.bound) ==
      ReplyState::NeedMore) {
    return false;
  }
  settleLocked(e, error);
  return true;
}

void addRemoted(int fd, const SocketId& id, const sockaddr* destination, socklen_t length,
                const control::Endpoint& bound) {
  Remoted* slot = nullptr;
  for (auto& r : g_remoted) {
    if (r.used && r.id == id) slot = &r;
  }
  if (slot == nullptr) {
    slot = &g_remoted[g_remotedNext];
    g_remotedNext = (g_remotedNext + 1) % kMaxRemoted;
    if (!slot->used) g_remotedCount.fetch_add(1);
  }
  slot->used = true;
  slot->fd = fd;
  slot->id = id;
  std::memcpy(&slot->destination, destination, length);
  slot->length = length;
  slot->bound = bound;
}

bool findRemotedBound(const SocketId& id, control::Endpoint& bound) {
  for (const auto& r : g_remoted) {
    if (r.used && r.id == id && r.bound.address.family != 0) {
      bound = r.bound;
      return true;
    }
  }
  return false;
}

bool anyLiveRemotedLocked() {
  if (g_remotedCount.load() == 0) return false;
  for (auto& r : g_remoted) {
    if (!r.used) continue;
    SocketId now;
    if (!socketId(r.fd, now) || !(now == r.id)) continue;
    sockaddr_storage peer{};
    socklen_t length = sizeof peer;
    if (real().getpeername(r.fd, reinterpret_cast<sockaddr*>(&peer), &length) == 0) return true;
  }
  return false;
}

bool isGatewayBoundLocked(const control::IpAddress& address) {
  for (const auto& r : g_remoted) {
    if (r.used && r.bound.address.family != 0 && !isUnspecifiedAddress(r.bound.address) &&
        normalise(r.bound.address) == address) {
      return true;
    }
  }
  return false;
}

void Descriptors::add(int fd) {
  int* free = nullptr;
  for (int& n : numbers) {
    if (n == fd) return;
    if (n < 0 && free == nullptr) free = &n;
  }
  if (free == nullptr) free = &numbers[kMax - 1];  // more duplicates than kept: the newest wins
  *free = fd;
}

bool Descriptors::anyHolds(const SocketId& id) const {
  for (const int n : numbers) {
    if (isOwnSocket(n, id)) return true;
  }
  return false;
}

namespace {

// Every descriptor the process has open, from /proc/self/fd read with getdents64 into a buffer on
// the stack (no allocation inside a hook).
template <typename F>
void forEachOpenDescriptor(F&& f) {
  const int dir = ::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return;
  alignas(8) char buffer[4096];
  for (int rounds = 0; rounds < 1024; ++rounds) {
    const long n = ::syscall(SYS_getdents64, dir, buffer, sizeof buffer);
    if (n <= 0) break;
    for (long offset = 0; offset < n;) {
      const auto* entry = reinterpret_cast<const dirent64*>(buffer + offset);
      offset += entry->d_reclen;
      const char* name = entry->d_name;
      if (name[0] < '0' || name[0] > '9') continue;
      const int fd = std::atoi(name);
      if (fd != dir) f(fd);
    }
  }
  ::close(dir);
}

constexpr std::size_t kMaxListeners = 128;
Listener g_listeners[kMaxListeners];
}  // namespace

void freeListenerLocked(Listener& entry) {
  if (!entry.used) return;
  closeOwnSocket(entry.controlFd, entry.controlId);
  entry = Listener{};
  g_listenCount.fetch_sub(1);
}

void sweepListenersLocked() {
  if (g_listenCount.load() == 0) return;
  for (auto& e : g_listeners) {
    if (e.used && !e.fds.anyHolds(e.id)) freeListenerLocked(e);
  }
}

Listener* findListenerLocked(int fd) {
  if (g_listenCount.load() == 0) return nullptr;
  // By the socket, not the number: a dup() of a remoted listening socket is the same socket.
  SocketId now;
  if (!socketId(fd, now)) return nullptr;
  for (auto& e : g_listeners) {
    if (!e.used || !(e.id == now)) continue;
    e.fds.add(fd);
    return &e;
  }
  return nullptr;
}

namespace {
constexpr std::size_t kMaxUdp = 256;
UdpAssociation g_udp[kMaxUdp];
// Descriptor numbers below kUdpBits that have an association: read() and write() of every other
// descriptor pass through without taking the lock.
constexpr int kUdpBits = 4096;
std::atomic<std::uint64_t> g_udpFds[kUdpBits / 64];

void markUdpFd(int fd, bool on) {
  if (fd < 0 || fd >= kUdpBits) return;
  const std::uint64_t bit = std::uint64_t{1} << (fd % 64);
  if (on) {
    g_udpFds[fd / 64].fetch_or(bit);
  } else {
    g_udpFds[fd / 64].fetch_and(~bit);
  }
}
}  // namespace

bool maybeUdpFd(int fd) {
  if (g_udpCount.load(std::memory_order_relaxed) == 0 || fd < 0) return false;
  if (fd >= kUdpBits) return true;
  return (g_udpFds[fd / 64].load(std::memory_order_relaxed) >> (fd % 64)) & 1U;
}

void freeUdpLocked(UdpAssociation& entry) {
  if (!entry.used) return;
  closeOwnSocket(entry.controlFd, entry.controlId);
  // The bits stay: a number that no longer holds an associated socket is found out (and its bit
  // cleared) by findUdpLocked, at the price of one lookup.
  entry = UdpAssociation{};
  g_udpCount.fetch_sub(1);
}

UdpAssociation* findUdpLocked(int fd) {
  if (g_udpCount.load() == 0) return nullptr;
  // By the socket, not the number: a dup() of an associated socket is the same socket.
  SocketId now;
  if (socketId(fd, now)) {
    for (auto& e : g_udp) {
      if (!e.used || !(e.id == now)) continue;
      e.fds.add(fd);
      markUdpFd(fd, true);
      return &e;
    }
  }
  markUdpFd(fd, false);  // closed, or the number reused for something else
  return nullptr;
}

void noteDuplicate(int from, int to) {
  if (to < 0 || (g_udpCount.load() == 0 && g_listenCount.load() == 0)) return;
  SocketId id;
  if (!socketId(to, id)) return;
  TablesLock lock;
  for (auto& e : g_udp) {
    if (e.used && e.id == id) {
      e.fds.add(to);
      markUdpFd(to, true);
    }
  }
  for (auto& e : g_listeners) {
    if (e.used && e.id == id) e.fds.add(to);
  }
  (void)from;
}

UdpAssociation* addUdpLocked(int fd, const SocketId& id) {
  for (auto& e : g_udp) {
    if (e.used && !e.fds.anyHolds(e.id)) freeUdpLocked(e);
  }
  for (auto& e : g_udp) {
    if (e.used) continue;
    e = UdpAssociation{};
    e.used = true;
    e.id = id;
    e.fds.add(fd);
    markUdpFd(fd, true);
    // Duplicates the program made before the first remote send are the same socket too.
    forEachOpenDescriptor([&](int other) {
      SocketId otherId;
      if (other != fd && socketId(other, otherId) && otherId == id) {
        e.fds.add(other);
        markUdpFd(other, true);
      }
    });
    g_udpCount.fetch_add(1);
    return &e;
  }
  return nullptr;
}

Listener* addListenerLocked(int fd, const SocketId& id) {
  sweepListenersLocked();
  for (auto& e : g_listeners) {
    if (e.used) continue;
    e = Listener{};
    e.used = true;
    e.id = id;
    e.fds.add(fd);
    g_listenCount.fetch_add(1);
    return &e;
  }
  return nullptr;
}

bool findRemoted(const SocketId& id, sockaddr_storage& destination, socklen_t& length) {
  for (const auto& r : g_remoted) {
    if (r.used && r.id == id) {
      destination = r.destination;
      length = r.length;
      return true;
    }
  }
  return false;
}

void rememberName(const control::IpAddress& address, const char* name) {
  pthread_mutex_lock(&g_namesMutex);
  NameEntry& e = g_names[g_namesNext];
  g_namesNext = (g_namesNext + 1) % kMaxNames;
  e.address = address;
  std::snprintf(e.name, sizeof e.name, "%s", name);
  pthread_mutex_unlock(&g_namesMutex);
}

bool nameFor(const control::IpAddress& address, char* out, std::size_t size) {
  bool found = false;
  pthread_mutex_lock(&g_namesMutex);
  // Newest first: a name resolved again wins over an older one for the same address.
  for (std::size_t k = 1; k <= kMaxNames && !found; ++k) {
    const NameEntry& e = g_names[(g_namesNext + kMaxNames - k) % kMaxNames];
    if (e.name[0] != '\0' && e.address == address) {
      std::snprintf(out, size, "%s", e.name);
      found = true;
    }
  }
  pthread_mutex_unlock(&g_namesMutex);
  return found;
}

}  // namespace fwgate::client::preload
