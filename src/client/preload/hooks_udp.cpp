// UDP through the gateway: a datagram a program sends to a remote destination goes to a relay on
// the gateway behind the SOCKS 5 UDP header naming that destination, from the program's own
// socket; the relay's datagrams come back to the same socket behind a header naming their remote
// source, which recvfrom/recvmsg report as the sender. Datagram boundaries are the kernel's: one
// datagram in, one out, and a short buffer truncates as the kernel does (MSG_TRUNC), never
// silently. connect() to a remote destination connects the socket to the relay (so the kernel
// filters what arrives) and remembers the destination for send/write and getpeername.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <ctime>

#include "client/preload/library.hpp"

using namespace fwgate::client;
using namespace fwgate::client::preload;
namespace control = fwgate::protocol::control;

namespace {

// IOV_MAX of the program's own vectors, and ours for the header in front.
constexpr std::size_t kMaxIov = 1024 + 1;
// The largest UDP payload IPv4 carries (65535 - 20 - 8); the header comes out of it.
constexpr std::size_t kMaxUdpPayload = 65507;

bool isUdp(int fd) {
  int type = 0;
  socklen_t length = sizeof type;
  return real().getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0 && type == SOCK_DGRAM;
}

// Whether a datagram from this socket to `destination` goes through the gateway.
bool remoteDestination(const Global& g, int fd, const control::Endpoint& destination) {
  if (!g.active || alwaysLocal(destination.address) || g.config.lat.contains(destination.address) ||
      g.config.settings.dontRemoteUdp.contains(destination.port)) {
    return false;
  }
  if (g.config.settings.localBindUdp.count != 0) {
    sockaddr_storage own{};
    socklen_t length = sizeof own;
    control::Endpoint local;
    if (real().getsockname(fd, reinterpret_cast<sockaddr*>(&own), &length) == 0 &&
        toEndpoint(reinterpret_cast<const sockaddr*>(&own), length, local) && local.port != 0 &&
        g.config.settings.localBindUdp.contains(local.port)) {
      return false;  // LocalBindUdpPorts: this socket's port is a local service's
    }
  }
  return true;
}

// A failed association is remembered for a few seconds: with the gateway away, a program's
// every datagram must not wait for it again (an event loop would stall on each).
constexpr std::int64_t kFailureMemoryMs = 5000;
std::atomic<std::int64_t> g_failedUntil{0};
std::atomic<int> g_failedError{0};

bool controlClosed(const SocketEntry& e) {
  if (!isOwnSocket(e.controlFd, e.controlId)) return true;  // the program closed it
  pollfd p{e.controlFd, POLLIN, 0};
  // The gateway sends nothing after UdpAssociated: any event is its close.
  return real().poll(&p, 1, 0) != 0;
}

// The relay for `fd`, associating the socket first if needed (or again, when the gateway ended
// the association: a connected socket is connected to the new relay and keeps its destination).
// 0, or an errno. `publishPort` not 0: published on the gateway's external UDP port
// (RemoteBindUdpPorts); a published socket associates again with its port.
int associate(int fd, const Global& g, sockaddr_storage& relay, socklen_t& relayLength,
              std::uint16_t publishPort = 0) {
  bool wasConnected = false;
  control::Endpoint peer;
  sockaddr_storage peerAddress{};
  socklen_t peerLength = 0;
  // One association a socket: the first thread claims the entry, others wait for its outcome
  // (bounded by the time the association itself may take).
  const std::int64_t waitUntil = monotonicMs() + 2 * static_cast<std::int64_t>(g.gatewayTimeoutMs);
  for (;;) {
    {
      TablesLock lock;
      SocketEntry* e = findUdpLocked(fd);
      if (e != nullptr && !e->associating) {
        if (!controlClosed(*e)) {
          relay = e->relay;
          relayLength = e->relayLength;
          return 0;
        }
        wasConnected = e->connected;
        peer = e->udpPeer;
        peerAddress = e->peer;
        peerLength = e->peerLength;
        if (publishPort == 0) publishPort = e->publishPort;
        freeLocked(*e);
        e = nullptr;
      }
      if (e == nullptr) {
        if (publishPort == 0 && monotonicMs() < g_failedUntil.load(std::memory_order_relaxed)) {
          return g_failedError.load();
        }
        SocketId id;
        if (!socketId(fd, id)) return ENOTSOCK;
        e = addLocked(fd, id, SocketKind::Udp);
        if (e == nullptr) return ENOBUFS;
        e->associating = true;
        rememberEveryNumberLocked(*e);
        break;
      }
    }
    if (monotonicMs() >= waitUntil) return ETIMEDOUT;
    const timespec pause{0, 1000000};
    ::nanosleep(&pause, nullptr);
  }
  const auto unclaim = [fd](int error) {
    TablesLock lock;
    if (SocketEntry* e = findUdpLocked(fd); e != nullptr && e->associating) freeLocked(*e);
    return error;
  };
  Inside inside;
  sockaddr_storage own{};
  socklen_t ownLength = sizeof own;
  if (real().getsockname(fd, reinterpret_cast<sockaddr*>(&own), &ownLength) != 0) {
    return unclaim(errno);
  }
  control::Endpoint local;
  if (!toEndpoint(reinterpret_cast<const sockaddr*>(&own), ownLength, local)) {
    return unclaim(EAFNOSUPPORT);
  }
  if (local.port == 0) {
    // The relay accepts datagrams from one port: bind now, as the first sendto would.
    sockaddr_storage any{};
    any.ss_family = own.ss_family;
    const socklen_t anyLength =
        own.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    if (real().bind(fd, reinterpret_cast<const sockaddr*>(&any), anyLength) != 0) {
      return unclaim(errno);
    }
    ownLength = sizeof own;
    if (real().getsockname(fd, reinterpret_cast<sockaddr*>(&own), &ownLength) != 0) {
      return unclaim(errno);
    }
    toEndpoint(reinterpret_cast<const sockaddr*>(&own), ownLength, local);
  }
  int controlFd = -1;
  control::Endpoint relayEndpoint;
  control::Endpoint published;
  char detail[160] = {};
  const int error = udpAssociate(g.gateway, g.identity, local.port, g.gatewayTimeoutMs, controlFd,
                                 relayEndpoint, detail, sizeof detail, publishPort, &published);
  char server[300];
  formatServer(g.config.server, server, sizeof server);
  if (error != 0 && publishPort != 0) {
    // A refused publish fails the program's bind(), once: nothing to remember.
    debugLine(1, "udp on fd %d: publishing udp port %u via %s failed: %s%s%s", fd,
              static_cast<unsigned>(publishPort), server, std::strerror(error),
              detail[0] ? " — " : "", detail);
    return unclaim(error);
  }
  if (error != 0) {
    debugLine(1, "udp on fd %d: association with %s failed: %s%s%s (not tried again for %d s)", fd,
              server, std::strerror(error), detail[0] ? " — " : "", detail,
              static_cast<int>(kFailureMemoryMs / 1000));
    g_failedError.store(error);
    g_failedUntil.store(monotonicMs() + kFailureMemoryMs, std::memory_order_relaxed);
    return unclaim(error);
  }
  relayLength = toSockaddr(relayEndpoint, own.ss_family, relay);
  if (relayLength == 0) {
    ::close(controlFd);
    return unclaim(EAFNOSUPPORT);
  }
  TablesLock lock;
  SocketEntry* e = findUdpLocked(fd);
  if (e == nullptr || !e->associating) {
    ::close(controlFd);  // the program closed the socket meanwhile
    return EBADF;
  }
  adoptControlLocked(*e, controlFd);
  e->associating = false;
  e->relay = relay;
  e->relayLength = relayLength;
  e->publishPort = publishPort;
  if (publishPort != 0) e->bound = published;
  if (wasConnected &&
      real().connect(fd, reinterpret_cast<const sockaddr*>(&relay), relayLength) == 0) {
    e->connected = true;
    e->udpPeer = peer;
    e->peer = peerAddress;
    e->peerLength = peerLength;
  }
  char relayText[80];
  endpointText(relayEndpoint, relayText, sizeof relayText);
  if (publishPort != 0) {
    char publishedText[80];
    endpointText(published, publishedText, sizeof publishedText);
    debugLine(2, "udp on fd %d: associated via %s, relay %s, published at %s", fd, server,
              relayText, publishedText);
    return 0;
  }
  debugLine(2, "udp on fd %d: associated via %s, relay %s", fd, server, relayText);
  return 0;
}

// One datagram to `peer` through the relay: the header, then the program's bytes, in one
// sendmsg. The program's ancillary data goes along.
ssize_t sendRemote(int fd, const control::Endpoint& peer, const iovec* iov, std::size_t iovCount,
                   const msghdr* original, int flags, const Global& g) {
  if (iovCount + 1 > kMaxIov) {
    errno = EMSGSIZE;
    return -1;
  }
  sockaddr_storage relay{};
  socklen_t relayLength = 0;
  if (const int e = associate(fd, g, relay, relayLength); e != 0) {
    errno = e;
    return -1;
  }
  std::uint8_t header[control::kMaxDatagramHeader];
  const std::size_t headerSize = control::encodeDatagramHeader(header, peer);
  std::size_t payload = 0;
  ScratchArray<iovec, 16> vectors(iovCount + 1);
  if (vectors.data() == nullptr) {
    errno = ENOMEM;
    return -1;
  }
  vectors[0] = {header, headerSize};
  for (std::size_t i = 0; i < iovCount; ++i) {
    vectors[i + 1] = iov[i];
    payload += iov[i].iov_len;
  }
  if (payload + headerSize > kMaxUdpPayload) {
    errno = EMSGSIZE;  // the kernel's answer for a datagram that cannot be sent whole
    return -1;
  }
  msghdr m{};
  m.msg_name = &relay;
  m.msg_namelen = relayLength;
  m.msg_iov = vectors.data();
  m.msg_iovlen = iovCount + 1;
  if (original != nullptr) {
    m.msg_control = original->msg_control;
    m.msg_controllen = original->msg_controllen;
  }
  const ssize_t n = real().sendmsg(fd, &m, flags);
  if (n < 0) return -1;
  return n >= static_cast<ssize_t>(headerSize) ? n - static_cast<ssize_t>(headerSize) : 0;
}

bool sameAddress(const sockaddr_storage& a, socklen_t aLength, const sockaddr_storage& b,
                 socklen_t bLength) {
  control::Endpoint x, y;
  return toEndpoint(reinterpret_cast<const sockaddr*>(&a), aLength, x) &&
         toEndpoint(reinterpret_cast<const sockaddr*>(&b), bLength, y) &&
         normalise(x.address) == normalise(y.address) && x.port == y.port;
}

std::size_t capacityOf(const iovec* v, std::size_t n) {
  std::size_t total = 0;
  for (std::size_t k = 0; k < n; ++k) total += v[k].iov_len;
  return total;
}

std::uint8_t* byteAt(const iovec* v, std::size_t n, std::size_t position) {
  for (std::size_t k = 0; k < n; ++k) {
    if (position < v[k].iov_len) return static_cast<std::uint8_t*>(v[k].iov_base) + position;
    position -= v[k].iov_len;
  }
  return nullptr;
}

// The program's buffers hold `valid` bytes of a datagram that really start `prefixSize` bytes
// earlier, at `prefix`: move them up and put the prefix in front. What no longer fits falls off
// the end, as it would have from the kernel's own copy.
void prependTo(const iovec* v, std::size_t n, std::size_t valid, const std::uint8_t* prefix,
               std::size_t prefixSize) {
  const std::size_t capacity = capacityOf(v, n);
  const std::size_t kept = prefixSize >= capacity ? 0 : std::min(valid, capacity - prefixSize);
  if (n == 1) {
    auto* base = static_cast<std::uint8_t*>(v[0].iov_base);
    if (kept > 0) std::memmove(base + prefixSize, base, kept);
    std::memcpy(base, prefix, std::min(prefixSize, capacity));
    return;
  }
  for (std::size_t i = kept; i > 0; --i) *byteAt(v, n, i - 1 + prefixSize) = *byteAt(v, n, i - 1);
  for (std::size_t i = 0; i < prefixSize && i < capacity; ++i) *byteAt(v, n, i) = prefix[i];
}

// One datagram into the program's `msg`, read in one recvmsg (so that another thread's read can
// never pair one datagram's header with another's bytes): from the relay, without its header and
// with its remote source as the sender; from anyone else, as it is. -1 with errno as the kernel's
// recvmsg. `handled` false: not an associated socket, or a call the kernel must answer itself
// (the error queue, out-of-band data): the caller makes the real call.
ssize_t recvRemote(int fd, msghdr* msg, int flags, bool& handled) {
  handled = false;
  if ((flags & (MSG_ERRQUEUE | MSG_OOB)) != 0 || msg->msg_iovlen + 1 > kMaxIov) return 0;
  sockaddr_storage relay{};
  socklen_t relayLength = 0;
  {
    TablesLock lock;
    const SocketEntry* e = findUdpLocked(fd);
    if (e == nullptr || e->associating) return 0;
    relay = e->relay;
    relayLength = e->relayLength;
  }
  ScratchArray<iovec, 16> vectors(msg->msg_iovlen + 1);
  if (vectors.data() == nullptr) return 0;  // the kernel's own call, then
  handled = true;
  const std::size_t capacity = capacityOf(msg->msg_iov, msg->msg_iovlen);
  // Bounded: malformed datagrams from the relay (there are none) are dropped, a few at a time.
  for (int attempt = 0; attempt < 64; ++attempt) {
    std::uint8_t head[control::kMaxDatagramHeader];
    vectors[0] = {head, sizeof head};
    for (std::size_t i = 0; i < msg->msg_iovlen; ++i) vectors[i + 1] = msg->msg_iov[i];
    sockaddr_storage source{};
    msghdr m{};
    m.msg_name = &source;
    m.msg_namelen = sizeof source;
    m.msg_iov = vectors.data();
    m.msg_iovlen = msg->msg_iovlen + 1;
    m.msg_control = msg->msg_control;
    m.msg_controllen = msg->msg_controllen;
    // MSG_TRUNC: the datagram's real length, whatever fitted.
    const ssize_t n = real().recvmsg(fd, &m, flags | MSG_TRUNC);
    if (n < 0) return -1;
    const auto total = static_cast<std::size_t>(n);
    const std::size_t captured = std::min(total, sizeof head + capacity);
    const std::size_t inHead = std::min(captured, sizeof head);
    const std::size_t inBuffers = captured - inHead;
    std::size_t payload = total;
    const bool fromRelay = sameAddress(source, m.msg_namelen, relay, relayLength);
    control::Endpoint peer;
    if (fromRelay) {
      const std::size_t headerSize = control::decodeDatagramHeader({head, inHead}, peer);
      if (headerSize == 0) {
        if ((flags & MSG_PEEK) != 0) real().recv(fd, head, 1, MSG_DONTWAIT);  // drop it
        continue;
      }
      prependTo(msg->msg_iov, msg->msg_iovlen, inBuffers, head + headerSize, inHead - headerSize);
      payload = total - headerSize;
    } else {
      prependTo(msg->msg_iov, msg->msg_iovlen, inBuffers, head, inHead);
    }
    msg->msg_flags = (m.msg_flags & ~MSG_TRUNC) | (payload > capacity ? MSG_TRUNC : 0);
    msg->msg_controllen = m.msg_controllen;
    if (msg->msg_name != nullptr) {
      if (fromRelay) {
        sockaddr_storage shown{};
        const socklen_t shownLength = toSockaddr(peer, relay.ss_family, shown);
        copyAddress(shown, shownLength, static_cast<sockaddr*>(msg->msg_name), &msg->msg_namelen);
      } else {
        copyAddress(source, m.msg_namelen, static_cast<sockaddr*>(msg->msg_name),
                    &msg->msg_namelen);
      }
    }
    // As the kernel: the bytes copied, or with MSG_TRUNC the datagram's whole length.
    return static_cast<ssize_t>((flags & MSG_TRUNC) != 0 ? payload : std::min(payload, capacity));
  }
  errno = EAGAIN;
  return -1;
}

// The connected destination of an associated socket, if it has one.
bool connectedPeer(int fd, control::Endpoint& peer) {
  if (!maybeUdpFd(fd)) return false;
  TablesLock lock;
  const SocketEntry* e = findUdpLocked(fd);
  if (e == nullptr || !e->connected) return false;
  peer = e->udpPeer;
  return true;
}

ssize_t sendToHook(int fd, const iovec* iov, std::size_t iovCount, const msghdr* original,
                   const sockaddr* destination, socklen_t destinationLength, int flags,
                   bool& handled) {
  handled = false;
  control::Endpoint peer;
  if (destination == nullptr) {
    if (!connectedPeer(fd, peer)) return 0;
  } else if (!toEndpoint(destination, destinationLength, peer) || alwaysLocal(peer.address)) {
    return 0;
  }
  const Global& g = global();
  if (!remoteDestination(g, fd, peer) || !isUdp(fd)) return 0;
  handled = true;
  return sendRemote(fd, peer, iov, iovCount, original, flags, g);
}

// fcntl's third argument is an int or a pointer, passed in the same register on the ABIs glibc
// supports; it is forwarded as it came, as glibc's own fcntl reads it.
template <typename Real>
int fcntlHook(Real realFcntl, int fd, int command, unsigned long argument) {
  if (realFcntl == nullptr) {
    errno = ENOSYS;
    return -1;
  }
  const int rc = realFcntl(fd, command, argument);
  if (command == F_DUPFD || command == F_DUPFD_CLOEXEC) noteDuplicate(fd, rc);
  return rc;
}

}  // namespace

namespace fwgate::client::preload {

// RemoteBindUdpPorts: the socket really binds here (any address, the port asked, or a free one if
// that is taken), then is associated with the gateway at once, published on the external port
// asked. A refused publish fails bind() with the gateway's errno (EACCES for a denial); the
// socket stays bound locally, as a failed remoted bind cannot undo a real one.
int bindUdp(int fd, const sockaddr* address, socklen_t length, bool& handled) {
  handled = false;
  control::Endpoint requested;
  if (!toEndpoint(address, length, requested) || requested.port == 0) return 0;
  const Global& g = global();
  if (!g.active || !g.config.settings.remoteBindUdp.contains(requested.port) || !isUdp(fd)) {
    return 0;
  }
  handled = true;
  sockaddr_storage local{};
  socklen_t localLength = 0;
  if (address->sa_family == AF_INET6) {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&local);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(requested.port);
    localLength = sizeof(sockaddr_in6);
  } else {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&local);
    v4->sin_family = AF_INET;
    v4->sin_port = htons(requested.port);
    localLength = sizeof(sockaddr_in);
  }
  if (real().bind(fd, reinterpret_cast<const sockaddr*>(&local), localLength) != 0) {
    if (errno != EADDRINUSE) return -1;
    // Another program has the port here: the gateway's port is what remote senders see.
    if (address->sa_family == AF_INET6) {
      reinterpret_cast<sockaddr_in6*>(&local)->sin6_port = 0;
    } else {
      reinterpret_cast<sockaddr_in*>(&local)->sin_port = 0;
    }
    if (real().bind(fd, reinterpret_cast<const sockaddr*>(&local), localLength) != 0) return -1;
  }
  sockaddr_storage relay{};
  socklen_t relayLength = 0;
  if (const int e = associate(fd, g, relay, relayLength, requested.port); e != 0) {
    errno = e;
    return -1;
  }
  return 0;
}

// Called by the connect hook for a UDP socket: a remote destination connects the socket to the
// relay; a local one (or AF_UNSPEC) ends the remote connection. -1/errno or 0; `handled` false
// when the real connect should run as it is.
int connectUdp(int fd, const sockaddr* address, socklen_t length, bool& handled) {
  handled = false;
  control::Endpoint peer;
  const bool endpoint = toEndpoint(address, length, peer);
  const Global& g = global();
  if (!endpoint || !remoteDestination(g, fd, peer)) {
    if (maybeUdpFd(fd)) {
      TablesLock lock;
      if (SocketEntry* e = findUdpLocked(fd)) e->connected = false;
    }
    return 0;
  }
  handled = true;
  sockaddr_storage relay{};
  socklen_t relayLength = 0;
  if (const int e = associate(fd, g, relay, relayLength); e != 0) {
    errno = e;
    return -1;
  }
  if (real().connect(fd, reinterpret_cast<const sockaddr*>(&relay), relayLength) != 0) return -1;
  TablesLock lock;
  if (SocketEntry* e = findUdpLocked(fd)) {
    e->connected = true;
    e->udpPeer = peer;
    std::memcpy(&e->peer, address, length);
    e->peerLength = length;
  }
  return 0;
}

}  // namespace fwgate::client::preload

extern "C" {

__attribute__((visibility("default"))) ssize_t sendto(int fd, const void* data, size_t size,
                                                      int flags, const sockaddr* destination,
                                                      socklen_t destinationLength) {
  const auto& r = real();
  if (t_inside != 0 || (destination == nullptr && !maybeUdpFd(fd))) {
    return r.sendto(fd, data, size, flags, destination, destinationLength);
  }
  const iovec v{const_cast<void*>(data), size};
  bool handled = false;
  const ssize_t n = sendToHook(fd, &v, 1, nullptr, destination, destinationLength, flags, handled);
  return handled ? n : r.sendto(fd, data, size, flags, destination, destinationLength);
}

__attribute__((visibility("default"))) ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  const auto& r = real();
  if (t_inside != 0 || msg == nullptr || (msg->msg_name == nullptr && !maybeUdpFd(fd))) {
    return r.sendmsg(fd, msg, flags);
  }
  bool handled = false;
  const ssize_t n =
      sendToHook(fd, msg->msg_iov, msg->msg_iovlen, msg,
                 static_cast<const sockaddr*>(msg->msg_name), msg->msg_namelen, flags, handled);
  return handled ? n : r.sendmsg(fd, msg, flags);
}

__attribute__((visibility("default"))) int sendmmsg(int fd, mmsghdr* vec, unsigned int count,
                                                    int flags) {
  const auto& r = real();
  if (t_inside != 0 || vec == nullptr || count == 0 ||
      (vec[0].msg_hdr.msg_name == nullptr && !maybeUdpFd(fd))) {
    return r.sendmmsg(fd, vec, count, flags);
  }
  // One at a time through the hook, as the kernel would report: the count sent, or the error of
  // the first.
  unsigned int sent = 0;
  for (; sent < count; ++sent) {
    const ssize_t n = sendmsg(fd, &vec[sent].msg_hdr, flags);
    if (n < 0) return sent > 0 ? static_cast<int>(sent) : -1;
    vec[sent].msg_len = static_cast<unsigned int>(n);
  }
  return static_cast<int>(sent);
}

__attribute__((visibility("default"))) ssize_t send(int fd, const void* data, size_t size,
                                                    int flags) {
  const auto& r = real();
  if (t_inside != 0 || !maybeUdpFd(fd)) return r.send(fd, data, size, flags);
  const iovec v{const_cast<void*>(data), size};
  bool handled = false;
  const ssize_t n = sendToHook(fd, &v, 1, nullptr, nullptr, 0, flags, handled);
  return handled ? n : r.send(fd, data, size, flags);
}

__attribute__((visibility("default"))) ssize_t write(int fd, const void* data, size_t size) {
  const auto& r = real();
  if (t_inside != 0 || !maybeUdpFd(fd)) return r.write(fd, data, size);
  const iovec v{const_cast<void*>(data), size};
  bool handled = false;
  const ssize_t n = sendToHook(fd, &v, 1, nullptr, nullptr, 0, 0, handled);
  return handled ? n : r.write(fd, data, size);
}

__attribute__((visibility("default"))) ssize_t writev(int fd, const iovec* iov, int count) {
  const auto& r = real();
  if (t_inside != 0 || count < 0 || !maybeUdpFd(fd)) return r.writev(fd, iov, count);
  bool handled = false;
  const ssize_t n =
      sendToHook(fd, iov, static_cast<std::size_t>(count), nullptr, nullptr, 0, 0, handled);
  return handled ? n : r.writev(fd, iov, count);
}

__attribute__((visibility("default"))) ssize_t readv(int fd, const iovec* iov, int count) {
  const auto& r = real();
  if (t_inside != 0 || count < 0 || !maybeUdpFd(fd)) return r.readv(fd, iov, count);
  msghdr m{};
  m.msg_iov = const_cast<iovec*>(iov);
  m.msg_iovlen = static_cast<std::size_t>(count);
  bool handled = false;
  const ssize_t n = recvRemote(fd, &m, 0, handled);
  return handled ? n : r.readv(fd, iov, count);
}

// _FORTIFY_SOURCE builds call these instead of recvfrom, recv and read (most distribution
// binaries): the same hooks, after the same buffer check (which aborts, as glibc's does).
__attribute__((visibility("default"))) ssize_t __recvfrom_chk(int fd, void* data, size_t size,
                                                              size_t bufferSize, int flags,
                                                              sockaddr* source,
                                                              socklen_t* sourceLength) {
  const auto& r = real();
  if (size > bufferSize || t_inside != 0 || !maybeUdpFd(fd)) {
    return r.recvfromChk(fd, data, size, bufferSize, flags, source, sourceLength);
  }
  return recvfrom(fd, data, size, flags, source, sourceLength);
}

__attribute__((visibility("default"))) ssize_t __recv_chk(int fd, void* data, size_t size,
                                                          size_t bufferSize, int flags) {
  const auto& r = real();
  if (size > bufferSize || t_inside != 0 || !maybeUdpFd(fd)) {
    return r.recvChk(fd, data, size, bufferSize, flags);
  }
  return recv(fd, data, size, flags);
}

__attribute__((visibility("default"))) ssize_t __read_chk(int fd, void* data, size_t size,
                                                          size_t bufferSize) {
  const auto& r = real();
  if (size > bufferSize || t_inside != 0 || !maybeUdpFd(fd)) {
    return r.readChk(fd, data, size, bufferSize);
  }
  return read(fd, data, size);
}

// Duplicates of an associated socket are the same socket to the hooks above.
__attribute__((visibility("default"))) int dup(int fd) {
  const int rc = real().dup(fd);
  noteDuplicate(fd, rc);
  return rc;
}

__attribute__((visibility("default"))) int dup2(int fd, int to) {
  const int rc = real().dup2(fd, to);
  noteDuplicate(fd, rc);
  return rc;
}

__attribute__((visibility("default"))) int dup3(int fd, int to, int flags) {
  const int rc = real().dup3(fd, to, flags);
  noteDuplicate(fd, rc);
  return rc;
}

__attribute__((visibility("default"))) int fcntl(int fd, int command, ...) {
  va_list args;
  va_start(args, command);
  const unsigned long argument = va_arg(args, unsigned long);
  va_end(args);
  return fcntlHook(real().fcntl, fd, command, argument);
}

__attribute__((visibility("default"))) int fcntl64(int fd, int command, ...) {
  va_list args;
  va_start(args, command);
  const unsigned long argument = va_arg(args, unsigned long);
  va_end(args);
  // Without fcntl64 in this libc (before glibc 2.28) fcntl is the same call on LP64.
  return fcntlHook(real().fcntl64 != nullptr ? real().fcntl64 : real().fcntl, fd, command,
                   argument);
}

__attribute__((visibility("default"))) ssize_t recvmsg(int fd, msghdr* msg, int flags) {
  const auto& r = real();
  if (t_inside != 0 || msg == nullptr || !maybeUdpFd(fd)) return r.recvmsg(fd, msg, flags);
  bool handled = false;
  const ssize_t n = recvRemote(fd, msg, flags, handled);
  return handled ? n : r.recvmsg(fd, msg, flags);
}

__attribute__((visibility("default"))) ssize_t recvfrom(int fd, void* data, size_t size, int flags,
                                                        sockaddr* source, socklen_t* sourceLength) {
  const auto& r = real();
  if (t_inside != 0 || !maybeUdpFd(fd)) {
    return r.recvfrom(fd, data, size, flags, source, sourceLength);
  }
  iovec v{data, size};
  msghdr m{};
  m.msg_name = source;
  m.msg_namelen = sourceLength != nullptr ? *sourceLength : 0;
  if (sourceLength == nullptr) m.msg_name = nullptr;
  m.msg_iov = &v;
  m.msg_iovlen = 1;
  bool handled = false;
  const ssize_t n = recvRemote(fd, &m, flags, handled);
  if (!handled) return r.recvfrom(fd, data, size, flags, source, sourceLength);
  if (n >= 0 && sourceLength != nullptr && source != nullptr) *sourceLength = m.msg_namelen;
  return n;
}

__attribute__((visibility("default"))) int recvmmsg(int fd, mmsghdr* vec, unsigned int count,
                                                    int flags, timespec* timeout) {
  const auto& r = real();
  if (t_inside != 0 || vec == nullptr || count == 0 || !maybeUdpFd(fd)) {
    return r.recvmmsg(fd, vec, count, flags, timeout);
  }
  // The first as the program asked (blocking or not), the rest only if already there.
  // MSG_WAITFORONE is what the kernel would do with the rest anyway; the timeout is not applied.
  unsigned int got = 0;
  for (; got < count; ++got) {
    const int f = got == 0 ? (flags & ~MSG_WAITFORONE) : (flags | MSG_DONTWAIT) & ~MSG_WAITFORONE;
    bool handled = false;
    const ssize_t n = recvRemote(fd, &vec[got].msg_hdr, f, handled);
    if (!handled)
      return got > 0 ? static_cast<int>(got) : r.recvmmsg(fd, vec, count, flags, timeout);
    if (n < 0) {
      if (got > 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      return got > 0 ? static_cast<int>(got) : -1;
    }
    vec[got].msg_len = static_cast<unsigned int>(n);
  }
  return static_cast<int>(got);
}

__attribute__((visibility("default"))) ssize_t recv(int fd, void* data, size_t size, int flags) {
  const auto& r = real();
  if (t_inside != 0 || !maybeUdpFd(fd)) return r.recv(fd, data, size, flags);
  iovec v{data, size};
  msghdr m{};
  m.msg_iov = &v;
  m.msg_iovlen = 1;
  bool handled = false;
  const ssize_t n = recvRemote(fd, &m, flags, handled);
  return handled ? n : r.recv(fd, data, size, flags);
}

__attribute__((visibility("default"))) ssize_t read(int fd, void* data, size_t size) {
  const auto& r = real();
  if (t_inside != 0 || !maybeUdpFd(fd)) return r.read(fd, data, size);
  iovec v{data, size};
  msghdr m{};
  m.msg_iov = &v;
  m.msg_iovlen = 1;
  bool handled = false;
  const ssize_t n = recvRemote(fd, &m, 0, handled);
  return handled ? n : r.read(fd, data, size);
}

}  // extern "C"

// libuv (and so dig, node) sends and receives batches through syscall(__NR_sendmmsg /
// __NR_recvmmsg), past libc's wrappers: those two numbers are routed through the hooks above,
// every other one goes straight through with its six argument registers as they came.
extern "C" __attribute__((visibility("default"))) long syscall(long number, ...) {
  va_list args;
  va_start(args, number);
  long a[6];
  for (long& v : a) v = va_arg(args, long);
  va_end(args);
  const auto& r = real();
  // A batch with destinations may be the socket's first datagrams: the hook decides.
  const auto* batch = reinterpret_cast<const mmsghdr*>(a[1]);
  if (t_inside == 0 && (number == SYS_sendmmsg || number == SYS_recvmmsg) &&
      (maybeUdpFd(static_cast<int>(a[0])) || (number == SYS_sendmmsg && batch != nullptr &&
                                              a[2] > 0 && batch[0].msg_hdr.msg_name != nullptr))) {
    const int fd = static_cast<int>(a[0]);
    auto* vec = reinterpret_cast<mmsghdr*>(a[1]);
    const auto count = static_cast<unsigned int>(a[2]);
    const int flags = static_cast<int>(a[3]);
    return number == SYS_sendmmsg
               ? sendmmsg(fd, vec, count, flags)
               : recvmmsg(fd, vec, count, flags, reinterpret_cast<timespec*>(a[4]));
  }
  if (r.syscall == nullptr) {
    errno = ENOSYS;
    return -1;
  }
  return r.syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
