// Remoted listening sockets (seed 004, "Remoted Connections", second half): a bind the settings
// remote is made on the gateway's external side, getsockname reports that address and port, and
// the remote server's connection arrives at the program's own socket, which really listens (bound
// to a free local port): the gateway connects to it and first proves itself with the listen's
// token and the remote server's address, so poll/epoll/select on the listening socket need no
// help, and accept() returns a socket whose getpeername is the remote server.
#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "client/preload/library.hpp"

using namespace fwgate::client;
using namespace fwgate::client::preload;
namespace control = fwgate::protocol::control;

namespace {

// Whether the settings and the program's state make this bind a remoted one (before any real
// bind is tried), and how: Server, the gateway keeps accepting (ServerBindTcpPorts); Publish, the
// same on a port of its dynamic range (PublishBindTcp); Secondary, for a primary connection.
bool remoteByRule(const Global& g, const control::Endpoint& requested, control::BindMode& mode) {
  const auto& settings = g.config.settings;
  const std::uint16_t port = requested.port;
  mode = control::BindMode::Secondary;
  if (port != 0 && settings.serverBindTcp.contains(port)) {
    mode = control::BindMode::Server;
    return true;
  }
  if (port != 0 && settings.remoteBindTcp.contains(port)) return true;
  TablesLock lock;
  // The address the gateway reported for one of this program's remoted connections (what an FTP
  // client's getsockname on its control connection returned): the seed's remoted bind.
  if (g_remotedCount.load() > 0 && isGatewayBoundLocked(normalise(requested.address))) return true;
  // Any address and any port, in a program whose primary connections are remote.
  if (port == 0 && isUnspecifiedAddress(requested.address) && anyLiveRemotedLocked()) return true;
  // The same with no remote primary connection: published on the gateway, where it allows.
  if (port == 0 && isUnspecifiedAddress(requested.address) && settings.publishBindTcp) {
    mode = control::BindMode::Publish;
    return true;
  }
  return false;
}

int remoteBindNow(int fd, const sockaddr* address, const control::Endpoint& requested,
                  control::BindMode mode, const Global& g) {
  const bool server = mode != control::BindMode::Secondary;
  Inside inside;
  char requestedText[80];
  endpointText(requested, requestedText, sizeof requestedText);
  char serverText[300];
  formatServer(g.config.server, serverText, sizeof serverText);
  // The gateway first: a refusal leaves the program's socket as it was.
  control::BindRequest request;
  request.requested = requested;
  request.mode = mode;
  int controlFd = -1;
  Channel channel;
  RemoteBind answer;
  char detail[160] = {};
  int error = remoteBind(g.gateway, g.identity, request, g.gatewayTimeoutMs, controlFd, channel,
                         answer, detail, sizeof detail);
  if (error != 0) {
    debugLine(1, "bind %s: remoted via %s: %s%s%s", requestedText, serverText, std::strerror(error),
              detail[0] ? " — " : "", detail);
    errno = error;
    return -1;
  }
  // The program's socket really listens, on any local address and a free port: the gateway
  // connects to it for every remote connection (and accept() lets only the gateway's through).
  sockaddr_storage local{};
  socklen_t localLength = 0;
  if (address->sa_family == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(&local)->sin6_family = AF_INET6;
    localLength = sizeof(sockaddr_in6);
  } else {
    reinterpret_cast<sockaddr_in*>(&local)->sin_family = AF_INET;
    localLength = sizeof(sockaddr_in);
  }
  if (real().bind(fd, reinterpret_cast<const sockaddr*>(&local), localLength) != 0) {
    error = errno;
    closeChannel(channel);
    ::close(controlFd);
    errno = error;
    return -1;
  }
  // Where the gateway's connections will come from: the address this control connection reached.
  sockaddr_storage peer{};
  socklen_t peerLength = sizeof peer;
  control::Endpoint gatewayEndpoint;
  if (real().getpeername(controlFd, reinterpret_cast<sockaddr*>(&peer), &peerLength) != 0 ||
      !toEndpoint(reinterpret_cast<const sockaddr*>(&peer), peerLength, gatewayEndpoint)) {
    gatewayEndpoint = {};
  }
  SocketId id;
  socketId(fd, id);
  TablesLock lock;
  SocketEntry* entry = addLocked(fd, id, SocketKind::Listener);
  if (entry == nullptr) {
    closeChannel(channel);
    ::close(controlFd);
    errno = ENOBUFS;
    return -1;
  }
  adoptControlLocked(*entry, controlFd);
  entry->channel = channel;
  if (channel.agent >= 0) socketId(channel.agent, entry->agentId);
  entry->server = server;
  entry->bound = answer.bound;
  entry->token = answer.token;
  entry->gateway = normalise(gatewayEndpoint.address);
  char boundText[80];
  endpointText(answer.bound, boundText, sizeof boundText);
  debugLine(2, "bind %s: remoted via %s, the gateway listens at %s%s", requestedText, serverText,
            boundText,
            mode == control::BindMode::Server    ? " (server)"
            : mode == control::BindMode::Publish ? " (published)"
                                                 : "");
  return 0;
}

int acceptRemoted(int fd, sockaddr* address, socklen_t* length, int flags, bool withFlags) {
  const auto& r = real();
  control::Token token{};
  control::Endpoint bound;
  control::IpAddress gateway;
  {
    TablesLock lock;
    const SocketEntry* entry = findListenerLocked(fd);
    if (entry == nullptr) {
      return withFlags ? r.accept4(fd, address, length, flags) : r.accept(fd, address, length);
    }
    token = entry->token;
    bound = entry->bound;
    gateway = entry->gateway;
  }
  // Bounded: a program that accepts in a loop never spins on connections that are not the
  // gateway's (they are closed); EAGAIN comes from the kernel once the queue is empty.
  for (int attempt = 0; attempt < 1024; ++attempt) {
    const int s =
        withFlags ? r.accept4(fd, nullptr, nullptr, flags) : r.accept(fd, nullptr, nullptr);
    if (s < 0) return -1;
    // Only the gateway's connections are read (anyone else on the network is closed at once, so
    // nobody can hold accept() up), and only with the listen's token are they handed over.
    sockaddr_storage from{};
    socklen_t fromLength = sizeof from;
    control::Endpoint fromEndpoint;
    const bool fromGateway =
        r.getpeername(s, reinterpret_cast<sockaddr*>(&from), &fromLength) == 0 &&
        toEndpoint(reinterpret_cast<const sockaddr*>(&from), fromLength, fromEndpoint) &&
        (gateway.family == 0 || normalise(fromEndpoint.address) == gateway);
    control::Endpoint peer;
    int error = EPROTO;
    if (fromGateway) {
      Inside inside;
      error = readAccepted(s, token, global().gatewayTimeoutMs, peer);
    }
    if (error != 0) {
      debugLine(1, "accept on fd %d: a connection that is not the gateway's was closed", fd);
      ::close(s);
      continue;
    }
    sockaddr_storage peerAddress{};
    sockaddr_storage own{};
    socklen_t ownLength = sizeof own;
    r.getsockname(s, reinterpret_cast<sockaddr*>(&own), &ownLength);
    const socklen_t peerLength = toSockaddr(peer, own.ss_family, peerAddress);
    SocketId id;
    if (socketId(s, id)) {
      TablesLock lock;
      SocketEntry* e = addLocked(s, id, SocketKind::Remoted);
      if (e == nullptr) {
        ::close(s);
        errno = ENOBUFS;
        return -1;
      }
      std::memcpy(&e->peer, &peerAddress, peerLength);
      e->peerLength = peerLength;
      e->bound = bound;
      rememberGatewayAddressLocked(bound.address);
    }
    char peerText[80];
    endpointText(peer, peerText, sizeof peerText);
    debugLine(2, "accept on fd %d: %s, through the gateway", fd, peerText);
    if (address != nullptr && length != nullptr)
      copyAddress(peerAddress, peerLength, address, length);
    return s;
  }
  errno = EAGAIN;
  return -1;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int bind(int fd, const sockaddr* address, socklen_t length) {
  const auto& r = real();
  if (r.bind == nullptr) {
    errno = ENOSYS;
    return -1;
  }
  if (t_inside != 0 || address == nullptr) return r.bind(fd, address, length);
  control::Endpoint requested;
  // The wildcard address is where remoted binds of programs with remote primaries start from;
  // loopback, link-local and multicast never leave the host.
  if (!toEndpoint(address, length, requested) ||
      (!isUnspecifiedAddress(normalise(requested.address)) && alwaysLocal(requested.address))) {
    return r.bind(fd, address, length);
  }
  const Global& g = global();
  // FWGATE_DEBUG=2 names every TCP bind that stays on this host, and why, as connect does.
  const auto local = [&](int rc, const char* why) {
    if (g.debug >= 2) {
      const int error = errno;
      char text[80];
      endpointText(requested, text, sizeof text);
      debugLine(2, "bind %s: local (%s)%s%s", text, why, rc == 0 ? "" : ": ",
                rc == 0 ? "" : std::strerror(error));
      errno = error;
    }
    return rc;
  };
  if (!g.active) return local(r.bind(fd, address, length), "client not active for this program");
  if (g.config.settings.localBindTcp.contains(requested.port)) {
    return local(r.bind(fd, address, length), "LocalBindTcpPorts");
  }
  int type = 0;
  socklen_t typeLength = sizeof type;
  if (r.getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &typeLength) != 0 || type != SOCK_STREAM) {
    bool handled = false;
    const int rc = bindUdp(fd, address, length, handled);  // RemoteBindUdpPorts
    return handled ? rc : r.bind(fd, address, length);     // UDP: its own path
  }
  control::BindMode mode = control::BindMode::Secondary;
  if (remoteByRule(g, requested, mode)) {
    const int remoted = remoteBindNow(fd, address, requested, mode, g);
    // A published listen is the gateway's to allow: where it does not (or cannot be asked), the
    // program listens on this host, as it would without the setting.
    if (remoted == 0 || mode != control::BindMode::Publish) return remoted;
    return local(r.bind(fd, address, length), "PublishBindTcp, but the gateway did not publish it");
  }
  const int rc = r.bind(fd, address, length);
  // Neither this host's nor a local network's address: the outside, so the gateway's.
  if (rc != 0 && errno == EADDRNOTAVAIL && !isUnspecifiedAddress(requested.address) &&
      !g.config.lat.contains(requested.address)) {
    return remoteBindNow(fd, address, requested, control::BindMode::Secondary, g);
  }
  return local(rc, "no remote primary connection, not in RemoteBindTcpPorts or ServerBindTcpPorts");
}

__attribute__((visibility("default"))) int listen(int fd, int backlog) {
  const auto& r = real();
  if (r.listen == nullptr) {
    errno = ENOSYS;
    return -1;
  }
  if (t_inside != 0 || g_listenCount.load() == 0 || !maybeKind(fd, SocketKind::Listener)) {
    return r.listen(fd, backlog);
  }
  int controlFd = -1;
  Channel channel;
  {
    TablesLock lock;
    SocketEntry* entry = findListenerLocked(fd);
    if (entry == nullptr || entry->listening) return r.listen(fd, backlog);
    if (!isOwnSocket(entry->controlFd, entry->controlId)) {
      // The program closed our control connection (closing every descriptor, as daemons do):
      // the gateway has ended this listen.
      debugLine(1, "listen on fd %d: the control connection to the gateway was closed", fd);
      freeLocked(*entry);
      errno = ECONNABORTED;
      return -1;
    }
    controlFd = entry->controlFd;
    // The agent connection goes with this call, which closes it.
    if (entry->channel.agent >= 0 && isOwnSocket(entry->channel.agent, entry->agentId)) {
      channel = entry->channel;
    } else {
      channel.welcomed = entry->channel.welcomed;
    }
    entry->channel.agent = -1;
  }
  // The program's socket listens before the gateway is told, so that its first connection finds
  // it listening.
  if (r.listen(fd, backlog) != 0) return -1;
  const Global& g = global();
  char detail[160] = {};
  int error = 0;
  {
    Inside inside;
    sockaddr_storage local{};
    socklen_t localLength = sizeof local;
    control::Endpoint localEndpoint;
    if (r.getsockname(fd, reinterpret_cast<sockaddr*>(&local), &localLength) != 0 ||
        !toEndpoint(reinterpret_cast<const sockaddr*>(&local), localLength, localEndpoint)) {
      error = errno != 0 ? errno : EINVAL;
    } else {
      const std::uint16_t wire = backlog <= 0 ? 1 : backlog > 0xFFFF ? 0xFFFF : backlog;
      error = remoteListen(controlFd, channel, localEndpoint.port, wire, g.gatewayTimeoutMs, detail,
                           sizeof detail);
    }
  }
  TablesLock lock;
  SocketEntry* entry = findListenerLocked(fd);
  if (error != 0) {
    debugLine(1, "listen on fd %d: the gateway refused: %s%s%s", fd, std::strerror(error),
              detail[0] ? " — " : "", detail);
    if (entry != nullptr) freeLocked(*entry);
    // Not left listening on a local port for anyone: back to a closed socket (as Linux does for
    // a listening socket given connect(AF_UNSPEC)).
    sockaddr unspecified{};
    unspecified.sa_family = AF_UNSPEC;
    r.connect(fd, &unspecified, sizeof unspecified);
    errno = error;
    return -1;
  }
  if (entry != nullptr) entry->listening = true;
  return 0;
}

__attribute__((visibility("default"))) int getsockname(int fd, sockaddr* address,
                                                       socklen_t* length) {
  const auto& r = real();
  if (t_inside != 0 ||
      (g_listenCount.load() == 0 && g_remotedCount.load() == 0 && g_udpCount.load() == 0) ||
      address == nullptr || length == nullptr || !maybeTracked(fd)) {
    return r.getsockname(fd, address, length);
  }
  sockaddr_storage own{};
  socklen_t ownLength = sizeof own;
  if (r.getsockname(fd, reinterpret_cast<sockaddr*>(&own), &ownLength) != 0) return -1;
  control::Endpoint bound;
  bool found = false;
  {
    TablesLock lock;
    const SocketEntry* entry = findLocked(fd);
    if (entry != nullptr &&
        (entry->kind() == SocketKind::Listener || entry->kind() == SocketKind::Remoted ||
         entry->kind() == SocketKind::Udp)) {
      bound = entry->bound;
      found = bound.address.family != 0;
    }
  }
  sockaddr_storage shown{};
  const socklen_t shownLength = found ? toSockaddr(bound, own.ss_family, shown) : 0;
  if (shownLength == 0) {
    copyAddress(own, ownLength, address, length);
    return 0;
  }
  copyAddress(shown, shownLength, address, length);
  return 0;
}

__attribute__((visibility("default"))) int accept(int fd, sockaddr* address, socklen_t* length) {
  const auto& r = real();
  if (t_inside != 0 || g_listenCount.load() == 0 || !maybeKind(fd, SocketKind::Listener)) {
    return r.accept(fd, address, length);
  }
  return acceptRemoted(fd, address, length, 0, false);
}

__attribute__((visibility("default"))) int accept4(int fd, sockaddr* address, socklen_t* length,
                                                   int flags) {
  const auto& r = real();
  if (t_inside != 0 || g_listenCount.load() == 0 || !maybeKind(fd, SocketKind::Listener)) {
    return r.accept4(fd, address, length, flags);
  }
  return acceptRemoted(fd, address, length, flags, true);
}

}  // extern "C"
