// Remoted TCP connect, and what makes it look like a plain connect to the program: readiness in
// poll/ppoll/select/pselect/epoll only once the gateway has answered, the destination's result in
// SO_ERROR, the destination in getpeername. Every hook bails out in its first lines for anything
// that is not a remoted socket.
#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "client/preload/library.hpp"

using namespace fwgate::client;
using namespace fwgate::client::preload;
namespace control = fwgate::protocol::control;

namespace {

// The gateway's address as the program's socket (of `family`) can reach it.
socklen_t gatewayFor(const Global& g, int family, sockaddr_storage& out) {
  if (family == AF_INET) {
    if (g.gateway.v4Length == 0) return 0;
    out = g.gateway.v4;
    return g.gateway.v4Length;
  }
  if (g.gateway.v6Length != 0) {
    out = g.gateway.v6;
    return g.gateway.v6Length;
  }
  if (g.gateway.v4Length == 0) return 0;
  // An IPv6 socket reaches an IPv4 gateway through its mapped address (unless IPV6_V6ONLY).
  const auto* v4 = reinterpret_cast<const sockaddr_in*>(&g.gateway.v4);
  sockaddr_in6 mapped{};
  mapped.sin6_family = AF_INET6;
  mapped.sin6_port = v4->sin_port;
  mapped.sin6_addr.s6_addr[10] = 0xff;
  mapped.sin6_addr.s6_addr[11] = 0xff;
  std::memcpy(&mapped.sin6_addr.s6_addr[12], &v4->sin_addr, 4);
  std::memcpy(&out, &mapped, sizeof mapped);
  return sizeof mapped;
}

bool programsOwnMistake(int error) {
  return error == EISCONN || error == EALREADY || error == EBADF || error == ENOTSOCK ||
         error == EINVAL || error == EAFNOSUPPORT || error == EADDRNOTAVAIL;
}

int remoteConnect(int fd, const sockaddr* address, socklen_t length,
                  const control::Endpoint& destination, const Global& g) {
  Inside inside;
  char destinationText[80];
  endpointText(destination, destinationText, sizeof destinationText);
  char server[300];
  formatServer(g.config.server, server, sizeof server);
  sockaddr_storage gateway{};
  const socklen_t gatewayLength = gatewayFor(g, address->sa_family, gateway);
  if (gatewayLength == 0) {
    debugLine(1, "connect %s: the gateway %s has no address of this socket's family",
              destinationText, server);
    errno = ENETUNREACH;
    return -1;
  }
  SocketId id;
  if (!socketId(fd, id)) return real().connect(fd, address, length);  // the kernel's ENOTSOCK
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return -1;
  const bool nonBlocking = (flags & O_NONBLOCK) != 0;
  if (nonBlocking) {
    // Never waits: the connection to the gateway, the request and the answer all move on from
    // the program's own poll/select/epoll (pollPending, filterEpoll), getsockopt or connect.
    TablesLock lock;
    SocketEntry* e = addLocked(fd, id, SocketKind::Pending);
    if (e == nullptr) {
      errno = ENOBUFS;
      return -1;
    }
    std::memcpy(&e->peer, address, length);
    e->peerLength = length;
    e->state = PendingState::Connecting;
    if (real().connect(fd, reinterpret_cast<const sockaddr*>(&gateway), gatewayLength) != 0 &&
        errno != EINPROGRESS) {
      const int error = errno;
      freeLocked(*e);
      if (!programsOwnMistake(error)) {
        debugLine(1, "connect %s: gateway %s unreachable: %s", destinationText, server,
                  std::strerror(error));
      }
      errno = error;
      return -1;
    }
    debugLine(2, "connect %s: remoted via %s, in progress", destinationText, server);
    // The gateway may have accepted already (the request goes now), and even answered: a
    // non-blocking connect that completes at once returns its result, as the kernel's may.
    progressLocked(*e);
    if (e->kind() == SocketKind::Remoted) return 0;
    if (e->state == PendingState::Failed) {
      const int error = e->error;
      freeLocked(*e);
      errno = error;
      return -1;
    }
    errno = EINPROGRESS;
    return -1;
  }
  {
    // Room first: a full table fails this socket, before the gateway hears of it.
    TablesLock lock;
    SocketEntry* e = addLocked(fd, id, SocketKind::Remoted);
    if (e == nullptr) {
      errno = ENOBUFS;
      return -1;
    }
    std::memcpy(&e->peer, address, length);
    e->peerLength = length;
  }
  const auto forget = [&] {
    const int saved = errno;
    TablesLock lock;
    if (SocketEntry* e = findLocked(fd)) freeLocked(*e);
    errno = saved;
  };
  // A blocking socket is made non-blocking only inside this call, so that reaching the gateway
  // is bounded by FWGATE_TIMEOUT; its flags are restored exactly before returning.
  if (::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    forget();
    return -1;
  }
  auto restore = [&] {
    const int saved = errno;
    ::fcntl(fd, F_SETFL, flags);
    errno = saved;
  };

  int error = 0;
  if (real().connect(fd, reinterpret_cast<const sockaddr*>(&gateway), gatewayLength) != 0) {
    error = errno;
    if (error == EINPROGRESS) {
      error = waitFor(fd, POLLOUT, g.gatewayTimeoutMs) == 0 ? 0 : errno;
      socklen_t len = sizeof error;
      if (error == 0 && real().getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0) {
        error = errno;
      }
    }
  }
  if (error != 0) {
    restore();
    forget();
    if (!programsOwnMistake(error)) {
      debugLine(1, "connect %s: gateway %s unreachable: %s", destinationText, server,
                std::strerror(error));
    }
    errno = error;
    return -1;
  }
  char hint[254] = {};
  nameFor(destination.address, hint, sizeof hint);
  Channel channel;
  char detail[160] = {};
  if (const int e =
          sendConnectRequest(fd, g.identity, destination, hint, channel, detail, sizeof detail);
      e != 0) {
    restore();
    forget();
    debugLine(1, "connect %s: sending the request to %s failed: %s%s%s", destinationText, server,
              std::strerror(e), detail[0] ? " — " : "", detail);
    errno = e;
    return -1;
  }
  debugLine(2, "connect %s%s%s%s: remoted via %s", destinationText, hint[0] ? " (" : "", hint,
            hint[0] ? ")" : "", server);
  control::Endpoint bound;
  for (;;) {
    if (waitFor(fd, POLLIN, g.replyTimeoutMs) != 0) {
      error = ETIMEDOUT;
      break;
    }
    if (takeConnectReply(fd, channel, error, detail, sizeof detail, &bound) == ReplyState::Done) {
      break;
    }
  }
  closeChannel(channel);  // a timeout leaves it open
  restore();
  if (error != 0) {
    ::shutdown(fd, SHUT_RDWR);
    forget();
    debugLine(1, "connect %s via %s: %s%s%s", destinationText, server, std::strerror(error),
              detail[0] ? " — " : "", detail);
    errno = error;
    return -1;
  }
  TablesLock lock;
  if (SocketEntry* e = findLocked(fd)) {
    e->bound = bound;
    rememberGatewayAddressLocked(bound.address);
  }
  return 0;
}

// What the program sees of a settled pending socket in poll terms.
short visibleEvents(int fd, short requested, const SocketEntry* entry) {
  if (entry != nullptr && entry->state == PendingState::Failed) {
    return static_cast<short>(POLLERR | POLLHUP | (requested & (POLLOUT | POLLWRNORM)));
  }
  pollfd p{fd, requested, 0};
  Inside inside;
  return real().poll(&p, 1, 0) == 1 ? p.revents : 0;
}

// poll with pending remoted connects among the fds: while the gateway has not answered, the
// socket is watched for the answer (POLLIN) and reported as not ready; once it has, as it is.
int pollPending(pollfd* fds, nfds_t n, const timespec* timeout, const sigset_t* mask) {
  constexpr std::size_t kTracked = 64;
  const std::int64_t deadline =
      timeout == nullptr ? -1 : monotonicMs() + timeout->tv_sec * 1000 + timeout->tv_nsec / 1000000;
  for (;;) {
    std::size_t index[kTracked];
    short requested[kTracked];
    int program[kTracked];  // the program's descriptor, where we watch the agent's instead
    std::size_t tracked = 0;
    bool settledNow = false;
    {
      TablesLock lock;
      for (nfds_t i = 0; i < n && tracked < kTracked; ++i) {
        if (!maybeKind(fds[i].fd, SocketKind::Pending)) continue;
        SocketEntry* e = findPendingLocked(fds[i].fd);
        if (e == nullptr) continue;
        progressLocked(*e);
        index[tracked] = i;
        requested[tracked] = fds[i].events;
        program[tracked] = fds[i].fd;
        ++tracked;
        e = findPendingLocked(fds[i].fd);
        if (e == nullptr || e->state == PendingState::Failed) {
          settledNow = true;  // report it without waiting
        } else {
          fds[i].events = pendingEvents(*e);
          fds[i].fd = pendingFd(*e);
        }
      }
    }
    timespec left{};
    const timespec* wait = nullptr;
    if (settledNow) {
      wait = &left;
    } else if (deadline >= 0) {
      const std::int64_t ms = deadline - monotonicMs();
      left.tv_sec = ms > 0 ? ms / 1000 : 0;
      left.tv_nsec = ms > 0 ? (ms % 1000) * 1000000 : 0;
      wait = &left;
    }
    const int rc = real().ppoll(fds, n, wait, mask);
    const int saved = errno;
    {
      TablesLock lock;
      for (std::size_t k = 0; k < tracked; ++k) {
        pollfd& p = fds[index[k]];
        const short got = rc > 0 ? p.revents : 0;
        p.events = requested[k];
        p.fd = program[k];
        SocketEntry* e = findPendingLocked(p.fd);
        if (e != nullptr && e->state != PendingState::Failed && got != 0) progressLocked(*e);
        e = findPendingLocked(p.fd);
        if (e != nullptr && e->state != PendingState::Failed) {
          p.revents = 0;
        } else if (rc >= 0) {
          p.revents = visibleEvents(p.fd, requested[k], e);
        }
      }
    }
    if (rc < 0) {
      errno = saved;
      return rc;
    }
    int ready = 0;
    for (nfds_t i = 0; i < n; ++i) ready += fds[i].revents != 0 ? 1 : 0;
    if (ready > 0 || (deadline >= 0 && monotonicMs() >= deadline)) return ready;
  }
}

bool anyPendingIn(const pollfd* fds, nfds_t n) {
  bool maybe = false;
  for (nfds_t i = 0; i < n && !maybe; ++i) maybe = maybeKind(fds[i].fd, SocketKind::Pending);
  if (!maybe) return false;
  TablesLock lock;
  for (nfds_t i = 0; i < n; ++i) {
    if (maybeKind(fds[i].fd, SocketKind::Pending) && findPendingLocked(fds[i].fd) != nullptr) {
      return true;
    }
  }
  return false;
}

int selectPending(int nfds, fd_set* readfds, fd_set* writefds, fd_set* exceptfds,
                  const timespec* timeout, const sigset_t* mask, bool& handled) {
  handled = false;
  if (nfds <= 0 || nfds > FD_SETSIZE) return 0;
  bool any = false;
  std::size_t asked = 0;
  {
    TablesLock lock;
    for (int fd = 0; fd < nfds; ++fd) {
      if ((readfds && FD_ISSET(fd, readfds)) || (writefds && FD_ISSET(fd, writefds)) ||
          (exceptfds && FD_ISSET(fd, exceptfds))) {
        ++asked;
        any = any || (maybeKind(fd, SocketKind::Pending) && findPendingLocked(fd) != nullptr);
      }
    }
  }
  if (!any) return 0;
  handled = true;
  // A few KiB of the caller's stack at most (green threads, coroutines): a large set is mapped.
  ScratchArray<pollfd, 64> fds(asked);
  if (fds.data() == nullptr) {
    errno = ENOMEM;
    return -1;
  }
  nfds_t n = 0;
  for (int fd = 0; fd < nfds; ++fd) {
    short events = 0;
    if (readfds && FD_ISSET(fd, readfds)) events |= POLLIN;
    if (writefds && FD_ISSET(fd, writefds)) events |= POLLOUT;
    if (exceptfds && FD_ISSET(fd, exceptfds)) events |= POLLPRI;
    if (events != 0) fds[n++] = pollfd{fd, events, 0};
  }
  const int rc = pollPending(fds.data(), n, timeout, mask);
  if (rc < 0) return rc;
  if (readfds) FD_ZERO(readfds);
  if (writefds) FD_ZERO(writefds);
  if (exceptfds) FD_ZERO(exceptfds);
  int count = 0;
  for (nfds_t i = 0; i < n; ++i) {
    const short r = fds[i].revents;
    if (r & POLLNVAL) {
      errno = EBADF;
      return -1;
    }
    if (readfds && (fds[i].events & POLLIN) && (r & (POLLIN | POLLHUP | POLLERR))) {
      FD_SET(fds[i].fd, readfds);
      ++count;
    }
    if (writefds && (fds[i].events & POLLOUT) && (r & (POLLOUT | POLLERR))) {
      FD_SET(fds[i].fd, writefds);
      ++count;
    }
    if (exceptfds && (fds[i].events & POLLPRI) && (r & POLLPRI)) {
      FD_SET(fds[i].fd, exceptfds);
      ++count;
    }
  }
  return count;
}

// Drops our own registrations' events from an epoll result (settling their connects, which gives
// the program's registration back), and says how many are left.
int filterEpoll(epoll_event* events, int count) {
  int kept = 0;
  for (int i = 0; i < count; ++i) {
    if ((events[i].data.u64 & kEpollTagMask) != kEpollTag) {
      events[kept++] = events[i];
      continue;
    }
    const int fd = static_cast<int>(events[i].data.u64 & 0xFFFFFFFFu);
    TablesLock lock;
    if (SocketEntry* e = findPendingLocked(fd); e != nullptr) progressLocked(*e);
  }
  return kept;
}

template <typename Wait>
int epollWaitPending(epoll_event* events, int max, int timeoutMs, Wait&& wait) {
  const std::int64_t deadline = timeoutMs < 0 ? -1 : monotonicMs() + timeoutMs;
  for (;;) {
    int ms = -1;
    if (deadline >= 0) {
      const std::int64_t left = deadline - monotonicMs();
      ms = left > 0 ? static_cast<int>(left) : 0;
    }
    const int rc = wait(events, max, ms);
    if (rc <= 0 || (g_taggedCount.load() == 0 && g_pendingCount.load() == 0)) return rc;
    const int kept = filterEpoll(events, rc);
    if (kept > 0 || ms == 0) return kept;
  }
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int connect(int fd, const sockaddr* address,
                                                   socklen_t length) {
  const auto& r = real();
  if (r.connect == nullptr) {
    errno = ENOSYS;
    return -1;
  }
  // An address longer than any the library keeps is the kernel's to refuse (EINVAL).
  if (t_inside != 0 || address == nullptr || length > sizeof(sockaddr_storage)) {
    return r.connect(fd, address, length);
  }
  control::Endpoint destination;
  if (!toEndpoint(address, length, destination) || alwaysLocal(destination.address)) {
    if (maybeUdpFd(fd)) {
      bool handled = false;
      connectUdp(fd, address, length, handled);  // forgets a remote destination
    }
    return r.connect(fd, address, length);
  }
  const Global& g = global();
  const auto local = [&] {
    if (g.debug >= 2) {
      char text[80];
      endpointText(destination, text, sizeof text);
      debugLine(2, "connect %s: local, direct", text);
    }
    return r.connect(fd, address, length);
  };
  if (!g.active || g.config.lat.contains(destination.address)) {
    if (maybeUdpFd(fd)) {
      bool handled = false;
      connectUdp(fd, address, length, handled);
    }
    return local();
  }
  int type = 0;
  socklen_t typeLength = sizeof type;
  if (r.getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &typeLength) != 0) {
    return r.connect(fd, address, length);
  }
  if (type == SOCK_DGRAM) {
    bool handled = false;
    const int rc = connectUdp(fd, address, length, handled);
    return handled ? rc : local();
  }
  if (type != SOCK_STREAM) return r.connect(fd, address, length);  // raw sockets
  if (g.config.settings.dontRemoteTcp.contains(destination.port)) return local();
  {
    // connect() again on a socket whose remoted connect is under way answers as the kernel does:
    // EALREADY while in progress, EISCONN once connected, the error once (then it is forgotten).
    TablesLock lock;
    if (g_remotedCount.load() != 0 && maybeKind(fd, SocketKind::Remoted)) {
      // Connected through the gateway already (the kernel's own connect to it completed while
      // the library watched): connected, never remoted again.
      if (const SocketEntry* e = findLocked(fd); e != nullptr && e->kind() == SocketKind::Remoted) {
        errno = EISCONN;
        return -1;
      }
    }
    if (SocketEntry* e = findPendingLocked(fd); e != nullptr) {
      progressLocked(*e);
      if (e->kind() == SocketKind::Remoted) {
        errno = EISCONN;
      } else if (e->state != PendingState::Failed) {
        errno = EALREADY;
      } else {
        errno = e->error;
        freeLocked(*e);
      }
      return -1;
    }
  }
  return remoteConnect(fd, address, length, destination, g);
}

__attribute__((visibility("default"))) int getsockopt(int fd, int level, int name, void* value,
                                                      socklen_t* length) {
  const auto& r = real();
  if (t_inside != 0 || level != SOL_SOCKET || name != SO_ERROR || g_pendingCount.load() == 0 ||
      value == nullptr || length == nullptr || *length < sizeof(int) ||
      !maybeKind(fd, SocketKind::Pending)) {
    return r.getsockopt(fd, level, name, value, length);
  }
  int error = 0;
  {
    TablesLock lock;
    SocketEntry* e = findPendingLocked(fd);
    if (e == nullptr) return r.getsockopt(fd, level, name, value, length);
    progressLocked(*e);
    // As the kernel answers: 0 while in progress (asked before the socket was reported
    // writable) or once connected; a failure once, then it is forgotten.
    if (e->kind() == SocketKind::Pending && e->state == PendingState::Failed) {
      error = e->error;
      freeLocked(*e);
    }
  }
  *static_cast<int*>(value) = error;
  *length = sizeof(int);
  return 0;
}

__attribute__((visibility("default"))) int getpeername(int fd, sockaddr* address,
                                                       socklen_t* length) {
  const auto& r = real();
  if (t_inside != 0 || address == nullptr || length == nullptr || !maybeTracked(fd)) {
    return r.getpeername(fd, address, length);
  }
  sockaddr_storage peer{};
  socklen_t peerLength = 0;
  {
    TablesLock lock;
    const SocketEntry* e = findLocked(fd);
    if (e != nullptr && e->kind() == SocketKind::Pending) {
      errno = ENOTCONN;  // still connecting, or failed
      return -1;
    }
    const bool shown = e != nullptr && (e->kind() == SocketKind::Remoted ||
                                        (e->kind() == SocketKind::Udp && e->connected));
    if (!shown) return r.getpeername(fd, address, length);
    peer = e->peer;
    peerLength = e->peerLength;
  }
  copyAddress(peer, peerLength, address, length);
  return 0;
}

__attribute__((visibility("default"))) int poll(pollfd* fds, nfds_t n, int timeoutMs) {
  const auto& r = real();
  if (t_inside != 0 || g_pendingCount.load() == 0 || !anyPendingIn(fds, n)) {
    return r.poll(fds, n, timeoutMs);
  }
  timespec ts{timeoutMs / 1000, (timeoutMs % 1000) * 1000000L};
  return pollPending(fds, n, timeoutMs < 0 ? nullptr : &ts, nullptr);
}

// _FORTIFY_SOURCE builds call these: the same hooks after the same check (which aborts).
__attribute__((visibility("default"))) int __poll_chk(pollfd* fds, nfds_t n, int timeoutMs,
                                                      size_t fdsLength) {
  if (fdsLength / sizeof(pollfd) < n) return real().pollChk(fds, n, timeoutMs, fdsLength);
  return poll(fds, n, timeoutMs);
}

__attribute__((visibility("default"))) int __ppoll_chk(pollfd* fds, nfds_t n,
                                                       const timespec* timeout,
                                                       const sigset_t* mask, size_t fdsLength) {
  if (fdsLength / sizeof(pollfd) < n) return real().ppollChk(fds, n, timeout, mask, fdsLength);
  return ppoll(fds, n, timeout, mask);
}

__attribute__((visibility("default"))) int ppoll(pollfd* fds, nfds_t n, const timespec* timeout,
                                                 const sigset_t* mask) {
  const auto& r = real();
  if (t_inside != 0 || g_pendingCount.load() == 0 || !anyPendingIn(fds, n)) {
    return r.ppoll(fds, n, timeout, mask);
  }
  return pollPending(fds, n, timeout, mask);
}

__attribute__((visibility("default"))) int select(int nfds, fd_set* readfds, fd_set* writefds,
                                                  fd_set* exceptfds, timeval* timeout) {
  const auto& r = real();
  if (t_inside != 0 || g_pendingCount.load() == 0) {
    return r.select(nfds, readfds, writefds, exceptfds, timeout);
  }
  timespec ts{};
  if (timeout != nullptr) ts = {timeout->tv_sec, timeout->tv_usec * 1000};
  bool handled = false;
  const int rc = selectPending(nfds, readfds, writefds, exceptfds,
                               timeout == nullptr ? nullptr : &ts, nullptr, handled);
  return handled ? rc : r.select(nfds, readfds, writefds, exceptfds, timeout);
}

__attribute__((visibility("default"))) int pselect(int nfds, fd_set* readfds, fd_set* writefds,
                                                   fd_set* exceptfds, const timespec* timeout,
                                                   const sigset_t* mask) {
  const auto& r = real();
  if (t_inside != 0 || g_pendingCount.load() == 0) {
    return r.pselect(nfds, readfds, writefds, exceptfds, timeout, mask);
  }
  bool handled = false;
  const int rc = selectPending(nfds, readfds, writefds, exceptfds, timeout, mask, handled);
  return handled ? rc : r.pselect(nfds, readfds, writefds, exceptfds, timeout, mask);
}

__attribute__((visibility("default"))) int epoll_ctl(int epfd, int op, int fd, epoll_event* event) {
  const auto& r = real();
  if (t_inside != 0 || g_pendingCount.load() == 0) return r.epoll_ctl(epfd, op, fd, event);
  if (!maybeKind(fd, SocketKind::Pending)) return r.epoll_ctl(epfd, op, fd, event);
  TablesLock lock;
  SocketEntry* e = findPendingLocked(fd);
  if (e == nullptr || e->state == PendingState::Failed) return r.epoll_ctl(epfd, op, fd, event);
  if (op == EPOLL_CTL_DEL) {
    const int rc = r.epoll_ctl(epfd, op, fd, event);
    if (e->hasEpoll && e->epfd == epfd) {
      if (e->channel.agent >= 0) r.epoll_ctl(epfd, EPOLL_CTL_DEL, e->channel.agent, nullptr);
      e->hasEpoll = false;
      g_taggedCount.fetch_sub(1);
    }
    return rc;
  }
  if (event == nullptr) return r.epoll_ctl(epfd, op, fd, event);
  // Until the gateway answers, we watch the socket for that answer; the program's registration is
  // kept and put back when the connect settles.
  epoll_event ours{};
  ours.events = e->state == PendingState::Connecting ? EPOLLOUT : EPOLLIN | EPOLLRDHUP;
  ours.data.u64 = kEpollTag | static_cast<std::uint32_t>(fd);
  const int rc = r.epoll_ctl(epfd, op, fd, &ours);
  if (rc == 0) {
    if (!e->hasEpoll) g_taggedCount.fetch_add(1);
    e->hasEpoll = true;
    e->epfd = epfd;
    e->epollNumber = fd;
    e->appEvent = *event;
    watchLocked(*e);  // the agent's turn: its connection, not the socket
  }
  return rc;
}

__attribute__((visibility("default"))) int epoll_wait(int epfd, epoll_event* events, int max,
                                                      int timeoutMs) {
  const auto& r = real();
  if (t_inside != 0 || (g_taggedCount.load() == 0 && g_pendingCount.load() == 0)) {
    return r.epoll_wait(epfd, events, max, timeoutMs);
  }
  return epollWaitPending(events, max, timeoutMs, [&](epoll_event* ev, int m, int ms) {
    return r.epoll_wait(epfd, ev, m, ms);
  });
}

__attribute__((visibility("default"))) int epoll_pwait(int epfd, epoll_event* events, int max,
                                                       int timeoutMs, const sigset_t* mask) {
  const auto& r = real();
  if (t_inside != 0 || (g_taggedCount.load() == 0 && g_pendingCount.load() == 0)) {
    return r.epoll_pwait(epfd, events, max, timeoutMs, mask);
  }
  return epollWaitPending(events, max, timeoutMs, [&](epoll_event* ev, int m, int ms) {
    return r.epoll_pwait(epfd, ev, m, ms, mask);
  });
}

__attribute__((visibility("default"))) int epoll_pwait2(int epfd, epoll_event* events, int max,
                                                        const timespec* timeout,
                                                        const sigset_t* mask) {
  const auto& r = real();
  if (r.epoll_pwait2 == nullptr) {
    errno = ENOSYS;
    return -1;
  }
  if (t_inside != 0 || (g_taggedCount.load() == 0 && g_pendingCount.load() == 0)) {
    return r.epoll_pwait2(epfd, events, max, timeout, mask);
  }
  const int timeoutMs = timeout == nullptr
                            ? -1
                            : static_cast<int>(timeout->tv_sec * 1000 + timeout->tv_nsec / 1000000);
  return epollWaitPending(events, max, timeoutMs, [&](epoll_event* ev, int m, int ms) {
    timespec ts{ms / 1000, (ms % 1000) * 1000000L};
    return r.epoll_pwait2(epfd, ev, m, ms < 0 ? nullptr : &ts, mask);
  });
}

}  // extern "C"
