// The library's one socket table (socket_table.hpp) and what each kind of entry needs from it:
// counts for the hooks' lock-free "nothing of ours" answers, the control connections that
// listeners and UDP associations own, and the pending connects' progress.
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "client/preload/library.hpp"

namespace fwgate::client::preload {

namespace control = protocol::control;

std::atomic<int> g_pendingCount{0};
std::atomic<int> g_remotedCount{0};
std::atomic<int> g_taggedCount{0};
std::atomic<int> g_listenCount{0};
std::atomic<int> g_udpCount{0};

namespace {

pthread_mutex_t g_tables = PTHREAD_MUTEX_INITIALIZER;

// Live sockets the library can look after at once (entries of closed sockets are reused).
constexpr std::size_t kMaxSockets = 16384;
SocketTable<SocketEntry, kMaxSockets, &socketId> g_sockets;

// Addresses the gateway reported as its own (what getsockname shows on remoted connections): a
// bind to one of them is the seed's remoted bind. Few distinct ones ever; the oldest goes first.
constexpr std::size_t kMaxGatewayAddresses = 16;
control::IpAddress g_gatewayAddresses[kMaxGatewayAddresses];
std::size_t g_gatewayAddressNext = 0;

std::atomic<int>* countOf(SocketKind kind) {
  switch (kind) {
    case SocketKind::Pending:
      return &g_pendingCount;
    case SocketKind::Remoted:
      return &g_remotedCount;
    case SocketKind::Listener:
      return &g_listenCount;
    case SocketKind::Udp:
      return &g_udpCount;
    case SocketKind::None:
      break;
  }
  return nullptr;
}

// What an entry holds besides itself, let go when it is freed.
struct Release {
  void operator()(SocketEntry& e) const {
    if (auto* count = countOf(e.kind())) count->fetch_sub(1);
    if (e.hasEpoll) g_taggedCount.fetch_sub(1);
    if (e.control) closeOwnSocket(e.controlFd, e.controlId);
    if (e.channel.agent >= 0) {
      closeOwnSocket(e.channel.agent, e.agentId);
      e.channel.agent = -1;
    }
  }
};

}  // namespace

void rememberGatewayAddressLocked(const control::IpAddress& address) {
  if (address.family == 0 || isUnspecifiedAddress(address)) return;
  const control::IpAddress a = normalise(address);
  for (const auto& known : g_gatewayAddresses) {
    if (known == a) return;
  }
  g_gatewayAddresses[g_gatewayAddressNext] = a;
  g_gatewayAddressNext = (g_gatewayAddressNext + 1) % kMaxGatewayAddresses;
}

namespace {

// Every descriptor the process has open, from /proc/self/fd read with getdents64 into a small
// buffer on the stack (no allocation inside a hook).
template <typename F>
void forEachOpenDescriptor(F&& f) {
  const int dir = ::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return;
  alignas(8) char buffer[2048];
  for (int rounds = 0; rounds < 4096; ++rounds) {
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

void restoreEpollLocked(SocketEntry& e) {
  if (!e.hasEpoll) return;
  // Back to the application's own registration; the kernel reports the socket's readiness to it
  // (an epoll_ctl MOD re-queues a ready socket, edge-triggered too).
  if (real().epoll_ctl(e.epfd, EPOLL_CTL_MOD, e.epollNumber, &e.appEvent) != 0) {
    debugLine(1, "restoring the epoll registration of fd %d failed: %s", e.epollNumber,
              std::strerror(errno));
  }
  e.hasEpoll = false;
  g_taggedCount.fetch_sub(1);
}

}  // namespace

TablesLock::TablesLock() : LibraryLock(g_tables) {}

pthread_mutex_t& tablesMutex() {
  return g_tables;
}

SocketEntry* findLocked(int fd) {
  return g_sockets.findFd(fd, Release{});
}

SocketEntry* findKindLocked(int fd, SocketKind kind) {
  if (auto* count = countOf(kind); count != nullptr && count->load() == 0) return nullptr;
  SocketEntry* e = findLocked(fd);
  return e != nullptr && e->kind() == kind ? e : nullptr;
}

SocketEntry* addLocked(int fd, const SocketId& id, SocketKind kind) {
  if (SocketEntry* old = g_sockets.find(id)) g_sockets.free(*old, Release{});
  SocketEntry* e = g_sockets.add(id, fd, static_cast<std::uint8_t>(kind), Release{});
  if (e == nullptr) {
    debugLine(1, "fd %d: the library already looks after %zu sockets, its most", fd,
              g_sockets.capacity());
    return nullptr;
  }
  if (auto* count = countOf(kind)) count->fetch_add(1);
  return e;
}

void freeLocked(SocketEntry& e) {
  g_sockets.free(e, Release{});
}

void makeRemotedLocked(SocketEntry& e) {
  if (auto* count = countOf(e.kind())) count->fetch_sub(1);
  g_sockets.retag(e, static_cast<std::uint8_t>(SocketKind::Remoted));
  g_remotedCount.fetch_add(1);
  rememberGatewayAddressLocked(e.bound.address);
}

bool maybeTracked(int fd) {
  const std::uint8_t tag = g_sockets.tagHint(fd, 0xFF);
  if (tag != 0xFF) return tag != 0;
  return g_pendingCount.load(std::memory_order_relaxed) + g_remotedCount.load() +
             g_listenCount.load() + g_udpCount.load() !=
         0;
}

bool maybeKind(int fd, SocketKind kind) {
  const std::uint8_t tag = g_sockets.tagHint(fd, 0xFF);
  return tag == 0xFF || tag == static_cast<std::uint8_t>(kind);
}

void noteDuplicate(int from, int to) {
  if (to < 0 || from == to || (!maybeTracked(from) && !maybeTracked(to))) return;
  TablesLock lock;
  g_sockets.duplicate(from, to, Release{});
}

void rememberEveryNumberLocked(SocketEntry& e) {
  forEachOpenDescriptor([&](int fd) {
    SocketId id;
    if (socketId(fd, id) && id == e.id) g_sockets.remember(e, fd);
  });
}

void adoptControlLocked(SocketEntry& e, int controlFd) {
  e.control = true;
  e.controlFd = controlFd;
  socketId(controlFd, e.controlId);
}

short pendingEvents(const SocketEntry& e) {
  return e.state == PendingState::Connecting ? POLLOUT : POLLIN;
}

int pendingFd(const SocketEntry& e) {
  const bool agentsMove = e.state == PendingState::Sealing || e.state == PendingState::Opening;
  return agentsMove && e.channel.agent >= 0 ? e.channel.agent : e.fds.first();
}

void watchLocked(SocketEntry& e) {
  if (!e.hasEpoll) return;
  const bool agentsMove = e.state == PendingState::Sealing || e.state == PendingState::Opening;
  epoll_event ours{};
  ours.data.u64 = kEpollTag | static_cast<std::uint32_t>(e.epollNumber);
  ours.events = e.state == PendingState::Connecting ? EPOLLOUT
                : agentsMove                        ? 0
                                                    : EPOLLIN | EPOLLRDHUP;
  real().epoll_ctl(e.epfd, EPOLL_CTL_MOD, e.epollNumber, &ours);
  if (e.channel.agent < 0) return;
  if (agentsMove) {
    epoll_event agent{};
    agent.events = EPOLLIN;
    agent.data.u64 = ours.data.u64;
    if (real().epoll_ctl(e.epfd, EPOLL_CTL_ADD, e.channel.agent, &agent) != 0 && errno == EEXIST) {
      real().epoll_ctl(e.epfd, EPOLL_CTL_MOD, e.channel.agent, &agent);
    }
  } else {
    real().epoll_ctl(e.epfd, EPOLL_CTL_DEL, e.channel.agent, nullptr);
  }
}

void settleLocked(SocketEntry& e, int error) {
  const int fd = e.fds.first();
  if (error == 0) {
    restoreEpollLocked(e);
    makeRemotedLocked(e);
    return;
  }
  e.state = PendingState::Failed;
  e.error = error;
  // Reads and writes on it fail from now on, as on a socket whose connect failed.
  ::shutdown(fd, SHUT_RDWR);
  restoreEpollLocked(e);
  debugLine(1, "connect on fd %d failed: %s%s%s", fd, std::strerror(error),
            e.detail[0] != '\0' ? " — " : "", e.detail);
}

bool progressLocked(SocketEntry& e) {
  if (e.kind() != SocketKind::Pending || e.state == PendingState::Failed) return true;
  const int fd = e.fds.first();
  if (e.state == PendingState::Connecting) {
    // The TCP connection to the gateway first: its result, then the request, never waiting.
    pollfd p{fd, POLLOUT, 0};
    if (real().poll(&p, 1, 0) <= 0) return false;
    int error = 0;
    socklen_t length = sizeof error;
    if (real().getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
    control::Endpoint destination;
    if (error == 0 &&
        !toEndpoint(reinterpret_cast<const sockaddr*>(&e.peer), e.peerLength, destination)) {
      error = EAFNOSUPPORT;
    }
    bool sealing = false;
    if (error == 0) {
      char hint[254] = {};
      nameFor(destination.address, hint, sizeof hint);
      error = startConnectRequest(fd, global().identity, destination, hint, e.channel, sealing,
                                  e.detail, sizeof e.detail);
      if (e.channel.agent >= 0) socketId(e.channel.agent, e.agentId);
      if (error != 0 && e.detail[0] == '\0') {
        std::snprintf(e.detail, sizeof e.detail, "sending the request failed");
      }
    } else {
      std::snprintf(e.detail, sizeof e.detail, "the gateway is unreachable");
    }
    if (error != 0) {
      settleLocked(e, error);
      return true;
    }
    e.state = sealing ? PendingState::Sealing : PendingState::Waiting;
    watchLocked(e);
  }
  // As far as the descriptors allow without waiting: the agent's Results and the gateway's
  // answer, in turn.
  for (;;) {
    int error = 0;
    if (e.state == PendingState::Sealing) {
      if (finishSeal(fd, e.channel, error, e.detail, sizeof e.detail) == ReplyState::NeedMore) {
        return false;
      }
      if (error != 0) {
        settleLocked(e, error);
        return true;
      }
      e.state = PendingState::Waiting;
      watchLocked(e);
    } else if (e.state == PendingState::Waiting) {
      bool opening = false;
      if (takeConnectUnit(fd, e.channel, opening, error, e.detail, sizeof e.detail, &e.bound) ==
          ReplyState::NeedMore) {
        return false;
      }
      if (!opening) {
        settleLocked(e, error);
        return true;
      }
      e.state = PendingState::Opening;
      watchLocked(e);
    } else if (e.state == PendingState::Opening) {
      const bool welcomedBefore = e.channel.welcomed;
      if (finishOpen(e.channel, error, e.detail, sizeof e.detail, &e.bound) ==
          ReplyState::NeedMore) {
        if (e.channel.welcomed == welcomedBefore) return false;
        e.state = PendingState::Waiting;  // the Welcome is in; the Connected comes next
        watchLocked(e);
        continue;
      }
      settleLocked(e, error);
      return true;
    } else {
      return true;
    }
  }
}

bool anyLiveRemotedLocked() {
  if (g_remotedCount.load() == 0) return false;
  bool live = false;
  // Entries of closed connections are freed on the way: each is looked at once.
  g_sockets.forEach([&](SocketEntry& e) {
    if (e.kind() != SocketKind::Remoted) return true;
    for (const int n : e.fds.numbers) {
      SocketId now;
      if (n < 0 || !socketId(n, now) || !(now == e.id)) continue;
      sockaddr_storage peer{};
      socklen_t length = sizeof peer;
      live = real().getpeername(n, reinterpret_cast<sockaddr*>(&peer), &length) == 0;
      if (live) return false;
    }
    if (!g_sockets.alive(e)) g_sockets.free(e, Release{});
    return true;
  });
  return live;
}

bool isGatewayBoundLocked(const control::IpAddress& address) {
  for (const auto& known : g_gatewayAddresses) {
    if (known.family != 0 && known == address) return true;
  }
  return false;
}

}  // namespace fwgate::client::preload
