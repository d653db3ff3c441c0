#include "servers.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <unordered_map>
#include <vector>

#include "http_wire.hpp"

namespace fwgate::bench {

namespace {

constexpr int kMaxEvents = 256;
constexpr std::uint64_t kMaxLoops = 1'000'000'000'000ULL;

// Accepts what is pending on a listening socket (bounded per wake-up) and calls onAccept(fd).
template <class OnAccept>
void acceptPending(int listenFd, ErrorCounts& errors, OnAccept&& onAccept) {
  for (int i = 0; i < 1024; ++i) {
    int fd = ::accept4(listenFd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      onAccept(fd);
      continue;
    }
    if (errno == EAGAIN || errno == EINTR) return;
    errors.add("accept_" + errnoName(errno));
    if (errno == EMFILE || errno == ENFILE) ::usleep(1000);  // do not spin while out of fds
    return;
  }
}

void watch(int epfd, int fd, std::uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  ::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

void rewatch(int epfd, int fd, std::uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  ::epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
}

// Binds every listen address, registers them, and returns them with their ports as JSON.
std::vector<Fd> listenAll(const std::vector<Endpoint>& where, int epfd, nlohmann::json& ports) {
  std::vector<Fd> out;
  ports = nlohmann::json::array();
  for (const auto& ep : where) {
    out.push_back(listenTcp(ep));
    watch(epfd, out.back().get(), EPOLLIN);
    ports.push_back(localPort(out.back().get()));
  }
  return out;
}

bool isListener(const std::vector<Fd>& listeners, int fd) {
  for (const auto& l : listeners) {
    if (l.get() == fd) return true;
  }
  return false;
}

Clock::time_point deadlineFor(double lifetimeSeconds) {
  if (lifetimeSeconds <= 0) return Clock::time_point::max();
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(
                            std::chrono::duration<double>(lifetimeSeconds));
}

}  // namespace

int runSink(const ServerOptions& options) {
  installStopSignals();
  Fd epoll(::epoll_create1(EPOLL_CLOEXEC));
  nlohmann::json ports;
  std::vector<Fd> listeners = listenAll(options.listen, epoll.get(), ports);
  Fd statsListener = listenTcp(options.stats);
  watch(epoll.get(), statsListener.get(), EPOLLIN);
  emit({{"event", "listening"},
        {"role", "sink"},
        {"port", ports.at(0)},
        {"ports", ports},
        {"stats_port", localPort(statsListener.get())},
        {"pid", ::getpid()}});

  std::uint64_t bytes = 0, accepted = 0, active = 0;
  ErrorCounts errors;
  std::vector<char> discard(1 << 20);  // MSG_TRUNC never writes it; the kernel checks its range
  epoll_event events[kMaxEvents];
  auto deadline = deadlineFor(options.lifetimeSeconds);
  for (std::uint64_t loop = 0; loop < kMaxLoops && !stopRequested(); ++loop) {
    if (Clock::now() >= deadline) break;
    int n = ::epoll_wait(epoll.get(), events, kMaxEvents, 200);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (isListener(listeners, fd)) {
        acceptPending(fd, errors, [&](int conn) {
          watch(epoll.get(), conn, EPOLLIN | EPOLLRDHUP);
          ++accepted;
          ++active;
        });
        continue;
      }
      if (fd == statsListener.get()) {
        acceptPending(fd, errors, [&](int conn) {
          Fd c(conn);
          std::string line = nlohmann::json{{"bytes", bytes},
                                            {"t_ns", monotonicNs()},
                                            {"accepted", accepted},
                                            {"active", active}}
                                 .dump() +
                             "\n";
          ::send(c.get(), line.data(), line.size(), MSG_NOSIGNAL);
        });
        continue;
      }
      for (int round = 0; round < 8; ++round) {
        ssize_t r = ::recv(fd, discard.data(), discard.size(), MSG_TRUNC | MSG_DONTWAIT);
        if (r > 0) {
          bytes += static_cast<std::uint64_t>(r);
          continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) break;
        if (r < 0) errors.add("recv_" + errnoName(errno));
        ::close(fd);
        --active;
        break;
      }
    }
  }
  emit({{"event", "exit"},
        {"role", "sink"},
        {"bytes", bytes},
        {"accepted", accepted},
        {"errors", errors.toJson()}});
  return 0;
}

int runEcho(const ServerOptions& options) {
  installStopSignals();
  installCloseAllSignal();
  Fd epoll(::epoll_create1(EPOLL_CLOEXEC));
  nlohmann::json ports;
  std::vector<Fd> listeners = listenAll(options.listen, epoll.get(), ports);
  emit({{"event", "listening"},
        {"role", "echo"},
        {"port", ports.at(0)},
        {"ports", ports},
        {"close_after", options.closeAfterBytes},
        {"pid", ::getpid()}});

  struct Conn {
    std::string pending;       // read but not yet written back; while set, only EPOLLOUT is on
    std::uint64_t echoed = 0;  // bytes written back
  };
  std::unordered_map<int, Conn> conns;
  std::uint64_t bytes = 0, accepted = 0, closedFirst = 0;
  ErrorCounts errors;
  std::vector<char> buf(64 * 1024);
  epoll_event events[kMaxEvents];
  auto closeConn = [&](int fd) {
    conns.erase(fd);
    ::close(fd);
  };
  // With --close-after, the server closes first once it has echoed that much: the TIME_WAIT
  // then sits on the server's (non-ephemeral) port instead of on the proxy's upstream port.
  auto doneEchoing = [&](const Conn& c) {
    return options.closeAfterBytes > 0 && c.pending.empty() && c.echoed >= options.closeAfterBytes;
  };
  auto deadline = deadlineFor(options.lifetimeSeconds);
  for (std::uint64_t loop = 0; loop < kMaxLoops && !stopRequested(); ++loop) {
    if (Clock::now() >= deadline) break;
    if (takeCloseAllRequest()) {
      std::size_t count = conns.size();
      for (auto& [fd, conn] : conns) ::close(fd);
      conns.clear();
      closedFirst += count;
      emit({{"event", "closed_all"}, {"role", "echo"}, {"connections", count}});
    }
    int n = ::epoll_wait(epoll.get(), events, kMaxEvents, 200);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (isListener(listeners, fd)) {
        acceptPending(fd, errors, [&](int c) {
          watch(epoll.get(), c, EPOLLIN | EPOLLRDHUP);
          conns.emplace(c, Conn{});
          ++accepted;
        });
        continue;
      }
      auto it = conns.find(fd);
      if (it == conns.end()) continue;  // closed earlier in this batch
      Conn& conn = it->second;
      if (!conn.pending.empty()) {
        ssize_t w =
            ::send(fd, conn.pending.data(), conn.pending.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
          errors.add("send_" + errnoName(errno));
          closeConn(fd);
          continue;
        }
        if (w > 0) {
          conn.pending.erase(0, static_cast<std::size_t>(w));
          conn.echoed += static_cast<std::uint64_t>(w);
        }
        if (conn.pending.empty()) {
          if (doneEchoing(conn)) {
            ++closedFirst;
            closeConn(fd);
            continue;
          }
          rewatch(epoll.get(), fd, EPOLLIN | EPOLLRDHUP);
        }
        continue;
      }
      ssize_t r = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (r <= 0) {
        if (r < 0 && errno != ECONNRESET) errors.add("recv_" + errnoName(errno));
        closeConn(fd);
        continue;
      }
      bytes += static_cast<std::uint64_t>(r);
      ssize_t w = ::send(fd, buf.data(), static_cast<std::size_t>(r), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0 && errno != EAGAIN && errno != EINTR) {
        if (errno != ECONNRESET && errno != EPIPE) errors.add("send_" + errnoName(errno));
        closeConn(fd);
        continue;
      }
      if (w < 0) w = 0;
      conn.echoed += static_cast<std::uint64_t>(w);
      if (w < r) {
        conn.pending.assign(buf.data() + w, static_cast<std::size_t>(r - w));
        rewatch(epoll.get(), fd, EPOLLOUT);
      } else if (doneEchoing(conn)) {
        ++closedFirst;
        closeConn(fd);
      }
    }
  }
  for (auto& [fd, conn] : conns) ::close(fd);
  emit({{"event", "exit"},
        {"role", "echo"},
        {"bytes", bytes},
        {"accepted", accepted},
        {"closed_first", closedFirst},
        {"errors", errors.toJson()}});
  return 0;
}

int runHttpOrigin(const ServerOptions& options) {
  installStopSignals();
  installCloseAllSignal();
  Fd epoll(::epoll_create1(EPOLL_CLOEXEC));
  nlohmann::json ports;
  std::vector<Fd> listeners = listenAll(options.listen, epoll.get(), ports);
  Fd statsListener = listenTcp(options.stats);
  watch(epoll.get(), statsListener.get(), EPOLLIN);
  emit({{"event", "listening"},
        {"role", "http-origin"},
        {"port", ports.at(0)},
        {"ports", ports},
        {"stats_port", localPort(statsListener.get())},
        {"body_bytes", options.bodyBytes},
        {"pid", ::getpid()}});

  const std::string keepResponse = http::buildResponse(options.bodyBytes, false);
  const std::string closeResponse = http::buildResponse(options.bodyBytes, true);
  struct Conn {
    std::string in;              // received, not yet answered
    std::string out;             // answers not yet written; while set, only EPOLLOUT is on
    std::uint64_t bodyLeft = 0;  // of a request body still to skip
    bool closing = false;        // answered a request that asked to close: close once written
  };
  std::unordered_map<int, Conn> conns;
  std::uint64_t requests = 0, accepted = 0, closedFirst = 0;
  ErrorCounts errors;
  std::vector<char> buf(64 * 1024);
  epoll_event events[kMaxEvents];
  auto closeConn = [&](int fd) {
    conns.erase(fd);
    ::close(fd);
  };
  // Answers every complete request in conn.in (stopping after one that asks to close).
  auto answer = [&](Conn& conn) {
    std::size_t at = 0;
    for (int guard = 0; guard < 100'000 && !conn.closing; ++guard) {
      if (conn.bodyLeft > 0) {
        std::size_t skip =
            static_cast<std::size_t>(std::min<std::uint64_t>(conn.bodyLeft, conn.in.size() - at));
        at += skip;
        conn.bodyLeft -= skip;
        if (conn.bodyLeft > 0) break;
      }
      http::RequestHead head;
      http::Parse p = http::scanRequest(std::string_view(conn.in).substr(at), head);
      if (p == http::Parse::NeedMore) break;
      if (p == http::Parse::Invalid) {
        errors.add("bad_request");
        conn.closing = true;
        break;
      }
      at += head.headBytes;
      conn.bodyLeft = head.contentLength;
      ++requests;
      conn.closing = !head.keepAlive;
      conn.out += conn.closing ? closeResponse : keepResponse;
    }
    conn.in.erase(0, at);
  };
  // Writes what is pending; false if the connection was closed.
  auto flush = [&](int fd, Conn& conn) {
    if (!conn.out.empty()) {
      ssize_t w = ::send(fd, conn.out.data(), conn.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0 && errno != EAGAIN && errno != EINTR) {
        if (errno != ECONNRESET && errno != EPIPE) errors.add("send_" + errnoName(errno));
        closeConn(fd);
        return false;
      }
      if (w > 0) conn.out.erase(0, static_cast<std::size_t>(w));
    }
    if (conn.out.empty() && conn.closing) {
      ++closedFirst;
      closeConn(fd);
      return false;
    }
    return true;
  };

  auto deadline = deadlineFor(options.lifetimeSeconds);
  for (std::uint64_t loop = 0; loop < kMaxLoops && !stopRequested(); ++loop) {
    if (Clock::now() >= deadline) break;
    if (takeCloseAllRequest()) {
      std::size_t count = conns.size();
      for (auto& [fd, conn] : conns) ::close(fd);
      conns.clear();
      closedFirst += count;
      emit({{"event", "closed_all"}, {"role", "http-origin"}, {"connections", count}});
    }
    int n = ::epoll_wait(epoll.get(), events, kMaxEvents, 200);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (isListener(listeners, fd)) {
        acceptPending(fd, errors, [&](int c) {
          watch(epoll.get(), c, EPOLLIN | EPOLLRDHUP);
          conns.emplace(c, Conn{});
          ++accepted;
        });
        continue;
      }
      if (fd == statsListener.get()) {
        acceptPending(fd, errors, [&](int c) {
          Fd stat(c);
          std::string line = nlohmann::json{{"requests", requests},
                                            {"accepted", accepted},
                                            {"active", conns.size()},
                                            {"t_ns", monotonicNs()}}
                                 .dump() +
                             "\n";
          ::send(stat.get(), line.data(), line.size(), MSG_NOSIGNAL);
        });
        continue;
      }
      auto it = conns.find(fd);
      if (it == conns.end()) continue;  // closed earlier in this batch
      Conn& conn = it->second;
      if (!conn.out.empty()) {  // blocked on writing: only EPOLLOUT is on
        if (flush(fd, conn) && conn.out.empty()) rewatch(epoll.get(), fd, EPOLLIN | EPOLLRDHUP);
        continue;
      }
      ssize_t r = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (r <= 0) {
        if (r < 0 && errno != ECONNRESET) errors.add("recv_" + errnoName(errno));
        closeConn(fd);
        continue;
      }
      conn.in.append(buf.data(), static_cast<std::size_t>(r));
      answer(conn);
      if (flush(fd, conn) && !conn.out.empty()) rewatch(epoll.get(), fd, EPOLLOUT);
    }
  }
  for (auto& [fd, conn] : conns) ::close(fd);
  emit({{"event", "exit"},
        {"role", "http-origin"},
        {"requests", requests},
        {"accepted", accepted},
        {"closed_first", closedFirst},
        {"errors", errors.toJson()}});
  return 0;
}

}  // namespace fwgate::bench
