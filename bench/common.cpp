#include "common.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <stdexcept>

namespace fwgate::bench {

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) reset(other.release());
  return *this;
}

void Fd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

std::uint16_t Endpoint::port() const {
  if (addr.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port);
}

namespace {

std::optional<std::uint16_t> parsePort(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  unsigned value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

}  // namespace

std::optional<Endpoint> parseLoopbackEndpoint(std::string_view text) {
  Endpoint ep;
  ep.text = std::string(text);
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    std::string host(text.substr(1, close - 1));
    auto port = parsePort(text.substr(close + 2));
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ep.addr);
    if (!port || inet_pton(AF_INET6, host.c_str(), &sin6->sin6_addr) != 1) return std::nullopt;
    if (!IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr)) return std::nullopt;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(*port);
    ep.len = sizeof(sockaddr_in6);
    return ep;
  }
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string host(text.substr(0, colon));
  auto port = parsePort(text.substr(colon + 1));
  auto* sin = reinterpret_cast<sockaddr_in*>(&ep.addr);
  if (!port || inet_pton(AF_INET, host.c_str(), &sin->sin_addr) != 1) return std::nullopt;
  const std::uint32_t v4 = ntohl(sin->sin_addr.s_addr);
  // 127.0.0.0/8, or 198.18.0.0/15 (RFC 2544's benchmarking range), which run.sh puts on lo in a
  // network namespace of its own as destinations the firewall client must treat as remote.
  if ((v4 >> 24) != 127 && (v4 >> 17) != (0xC612'0000u >> 17)) return std::nullopt;
  sin->sin_family = AF_INET;
  sin->sin_port = htons(*port);
  ep.len = sizeof(sockaddr_in);
  return ep;
}

Endpoint requireLoopbackEndpoint(std::string_view option, std::string_view text) {
  auto ep = parseLoopbackEndpoint(text);
  if (!ep) {
    throw std::runtime_error(std::string(option) + ": '" + std::string(text) +
                             "' is not a loopback HOST:PORT (127.0.0.0/8, 198.18.0.0/15 on lo, "
                             "or [::1] only)");
  }
  return *ep;
}

Fd listenTcp(const Endpoint& where, int backlog) {
  Fd fd(::socket(where.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) throw std::runtime_error("socket: " + errnoName(errno));
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&where.addr), where.len) != 0) {
    throw std::runtime_error("bind " + where.text + ": " + errnoName(errno));
  }
  if (::listen(fd.get(), backlog) != 0) {
    throw std::runtime_error("listen " + where.text + ": " + errnoName(errno));
  }
  return fd;
}

std::uint16_t localPort(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  Endpoint ep;
  ep.addr = addr;
  return ep.port();
}

namespace {

// A TCP socket with TCP_NODELAY, bound to `source` (its port picked at connect time) when one of
// `to`'s family is given. `flags`: SOCK_NONBLOCK or 0. The descriptor, or -errno.
int openBound(const Endpoint& to, const Endpoint* source, int flags) {
  int fd = ::socket(to.family(), SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
  if (fd < 0) return -errno;
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (source != nullptr && source->family() == to.family()) {
    ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&source->addr), source->len) != 0) {
      int err = errno;
      ::close(fd);
      return -err;
    }
  }
  return fd;
}

}  // namespace

int startConnect(const Endpoint& to, const Endpoint* source) {
  const int fd = openBound(to, source, SOCK_NONBLOCK);
  if (fd < 0) return fd;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&to.addr), to.len) != 0 &&
      errno != EINPROGRESS) {
    int err = errno;
    ::close(fd);
    return -err;
  }
  return fd;
}

int connectBlocking(const Endpoint& to, const Endpoint* source, double timeoutSeconds,
                    std::int64_t* connectNs) {
  const int fd = openBound(to, source, 0);
  if (fd < 0) return fd;
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeoutSeconds);
  tv.tv_usec = static_cast<suseconds_t>((timeoutSeconds - static_cast<double>(tv.tv_sec)) * 1e6);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);  // also bounds the kernel's connect
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::int64_t t0 = monotonicNs();
  int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&to.addr), to.len);
  std::int64_t t1 = monotonicNs();
  if (rc != 0) {
    int err = errno == EINPROGRESS ? ETIMEDOUT : errno;  // SO_SNDTIMEO ran out
    ::close(fd);
    return -err;
  }
  if (connectNs != nullptr) *connectNs = t1 - t0;
  return fd;
}

std::optional<Endpoint> kernelPeer(int fd) {
  Endpoint ep;
  socklen_t len = sizeof ep.addr;
  if (::syscall(SYS_getpeername, fd, reinterpret_cast<sockaddr*>(&ep.addr), &len) != 0) {
    return std::nullopt;
  }
  ep.len = len;
  char host[INET6_ADDRSTRLEN] = {};
  bool v6 = ep.family() == AF_INET6;
  if (v6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ep.addr)->sin6_addr, host,
                sizeof host);
  } else {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ep.addr)->sin_addr, host,
                sizeof host);
  }
  char text[INET6_ADDRSTRLEN + 10];
  std::snprintf(text, sizeof text, v6 ? "[%s]:%u" : "%s:%u", host, unsigned{ep.port()});
  ep.text = text;
  return ep;
}

bool sameEndpoint(const Endpoint& a, const Endpoint& b) {
  if (a.family() != b.family() || a.port() != b.port()) return false;
  if (a.family() == AF_INET) {
    return reinterpret_cast<const sockaddr_in*>(&a.addr)->sin_addr.s_addr ==
           reinterpret_cast<const sockaddr_in*>(&b.addr)->sin_addr.s_addr;
  }
  return std::memcmp(&reinterpret_cast<const sockaddr_in6*>(&a.addr)->sin6_addr,
                     &reinterpret_cast<const sockaddr_in6*>(&b.addr)->sin6_addr,
                     sizeof(in6_addr)) == 0;
}

std::vector<Endpoint> defaultSourcesFor(const Endpoint& destination) {
  std::vector<Endpoint> out;
  if (destination.family() != AF_INET) return out;
  for (int host = 1; host <= 254; ++host) {
    out.push_back(*parseLoopbackEndpoint("127.2.0." + std::to_string(host) + ":0"));
  }
  return out;
}

std::optional<std::string> fetchLine(const Endpoint& from, std::chrono::milliseconds timeout) {
  int raw = startConnect(from);
  if (raw < 0) return std::nullopt;
  Fd fd(raw);
  auto deadline = Clock::now() + timeout;
  std::string out;
  char buf[512];
  for (int guard = 0; guard < 1000 && Clock::now() < deadline; ++guard) {
    pollfd p{fd.get(), POLLIN, 0};
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (::poll(&p, 1, static_cast<int>(left > 0 ? left : 0)) <= 0) continue;
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n == 0) return out;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return std::nullopt;
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  return std::nullopt;
}

void setNonBlocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL, 0);
  ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

std::string errnoName(int err) {
  switch (err) {
    case ECONNREFUSED:
      return "ECONNREFUSED";
    case ECONNRESET:
      return "ECONNRESET";
    case ECONNABORTED:
      return "ECONNABORTED";
    case ETIMEDOUT:
      return "ETIMEDOUT";
    case EPIPE:
      return "EPIPE";
    case EMFILE:
      return "EMFILE";
    case ENFILE:
      return "ENFILE";
    case ENOBUFS:
      return "ENOBUFS";
    case ENOMEM:
      return "ENOMEM";
    case EADDRNOTAVAIL:
      return "EADDRNOTAVAIL";
    case EADDRINUSE:
      return "EADDRINUSE";
    case EHOSTUNREACH:
      return "EHOSTUNREACH";
    case ENETUNREACH:
      return "ENETUNREACH";
    case EAGAIN:
      return "EAGAIN";
    case EINVAL:
      return "EINVAL";
    case EACCES:
      return "EACCES";
    case EPERM:
      return "EPERM";
    case EMSGSIZE:
      return "EMSGSIZE";
    case ENOTCONN:
      return "ENOTCONN";
    default:
      return "errno_" + std::to_string(err);
  }
}

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::int64_t monotonicNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::uint64_t percentile(const std::vector<std::uint32_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size(), std::max<std::size_t>(rank, 1)) - 1];
}

nlohmann::json latencySummary(const std::vector<std::uint32_t>& sorted) {
  double sum = 0;
  for (auto v : sorted) sum += v;
  return {{"p50", percentile(sorted, 0.50)},
          {"p90", percentile(sorted, 0.90)},
          {"p99", percentile(sorted, 0.99)},
          {"p999", percentile(sorted, 0.999)},
          {"max", sorted.empty() ? 0 : sorted.back()},
          {"mean", sorted.empty() ? 0.0 : sum / static_cast<double>(sorted.size())}};
}

void emit(const nlohmann::json& record) {
  std::string line = record.dump();
  line.push_back('\n');
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

nlohmann::json tagsToJson(const std::map<std::string, std::string>& tags) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [key, value] : tags) out[key] = value;
  return out;
}

namespace {
std::atomic<bool> gStop{false};
std::atomic<bool> gCloseAll{false};
void onStopSignal(int) {
  gStop.store(true);
}
void onCloseAllSignal(int) {
  gCloseAll.store(true);
}
}  // namespace

void installStopSignals() {
  struct sigaction sa {};
  sa.sa_handler = onStopSignal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
}

void installCloseAllSignal() {
  struct sigaction sa {};
  sa.sa_handler = onCloseAllSignal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGUSR1, &sa, nullptr);
}

bool takeCloseAllRequest() {
  return gCloseAll.exchange(false);
}

bool stopRequested() {
  return gStop.load(std::memory_order_relaxed);
}

std::uint64_t ErrorCounts::total() const {
  std::uint64_t sum = 0;
  for (const auto& [reason, n] : counts_) sum += n;
  return sum;
}

nlohmann::json ErrorCounts::toJson() const {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [reason, n] : counts_) out[reason] = n;
  return out;
}

}  // namespace fwgate::bench
