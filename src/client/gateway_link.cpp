#include "client/gateway_link.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace fwgate::client {

namespace control = protocol::control;

std::int64_t monotonicMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

namespace {

void copyTo(char* out, std::size_t size, std::string_view text) {
  const std::size_t n = text.size() < size - 1 ? text.size() : size - 1;
  std::memcpy(out, text.data(), n);
  out[n] = '\0';
}

}  // namespace

int resolveServer(const ServerAddress& server, GatewayEndpoints& out) {
  out = GatewayEndpoints{};
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  char port[8];
  std::snprintf(port, sizeof port, "%u", static_cast<unsigned>(server.port));
  const int rc = ::getaddrinfo(server.host.data(), port, &hints, &list);
  if (rc != 0) return rc;
  for (addrinfo* i = list; i != nullptr; i = i->ai_next) {
    if (i->ai_family == AF_INET && out.v4Length == 0) {
      std::memcpy(&out.v4, i->ai_addr, i->ai_addrlen);
      out.v4Length = i->ai_addrlen;
    } else if (i->ai_family == AF_INET6 && out.v6Length == 0) {
      std::memcpy(&out.v6, i->ai_addr, i->ai_addrlen);
      out.v6Length = i->ai_addrlen;
    }
  }
  ::freeaddrinfo(list);
  return out.any() ? 0 : EAI_NONAME;
}

void fillIdentity(const ClientConfig& config, Identity& out) {
  out = Identity{};
  if (::gethostname(out.host, sizeof out.host - 1) != 0) out.host[0] = '\0';
  // The environment, not getpwuid: NSS might go to the network from inside a hook.
  const char* login = std::getenv("USER");
  if (login == nullptr) login = std::getenv("LOGNAME");
  if (login != nullptr) {
    copyTo(out.osUser, sizeof out.osUser, login);
  } else {
    std::snprintf(out.osUser, sizeof out.osUser, "uid %u", static_cast<unsigned>(::getuid()));
  }
  out.app = config.app.data();
  out.user = config.user.data();
  out.password = config.password.data();
  out.pid = static_cast<std::uint32_t>(::getpid());
}

std::size_t encodeHelloFor(const Identity& identity, std::span<std::uint8_t> out) {
  control::Hello hello;
  hello.version = control::kVersion;
  hello.user = identity.user;
  hello.password = identity.password;
  hello.host = identity.host;
  hello.application = identity.app;
  hello.osUser = identity.osUser;
  hello.pid = identity.pid;
  return control::encodeHello(out, hello);
}

int waitFor(int fd, short events, int timeoutMs) {
  const std::int64_t deadline = monotonicMs() + timeoutMs;
  for (;;) {
    const std::int64_t left = deadline - monotonicMs();
    if (left <= 0) {
      errno = ETIMEDOUT;
      return -1;
    }
    pollfd p{fd, events, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(left));
    if (rc > 0) return 0;
    if (rc == 0) {
      errno = ETIMEDOUT;
      return -1;
    }
    if (errno != EINTR) return -1;
  }
}

int openControl(const GatewayEndpoints& gateway, int timeoutMs) {
  // One deadline for both families, not one each.
  const std::int64_t deadline = monotonicMs() + timeoutMs;
  int lastError = ENETUNREACH;
  for (int family : {AF_INET, AF_INET6}) {
    const auto* address = family == AF_INET ? &gateway.v4 : &gateway.v6;
    const socklen_t length = family == AF_INET ? gateway.v4Length : gateway.v6Length;
    if (length == 0) continue;
    const int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      lastError = errno;
      continue;
    }
    int err = 0;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(address), length) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        const std::int64_t left = deadline - monotonicMs();
        err = left > 0 && waitFor(fd, POLLOUT, static_cast<int>(left)) == 0 ? 0
              : left > 0                                                    ? errno
                                                                            : ETIMEDOUT;
        socklen_t len = sizeof err;
        if (err == 0 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      }
    }
    if (err == 0) return fd;
    ::close(fd);
    lastError = err;
  }
  errno = lastError;
  return -1;
}

bool sendAll(int fd, const std::uint8_t* data, std::size_t n, int timeoutMs) {
  while (n > 0) {
    const ssize_t sent = ::send(fd, data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent > 0) {
      data += sent;
      n -= static_cast<std::size_t>(sent);
      continue;
    }
    if (sent < 0 && errno == EINTR) continue;
    if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (waitFor(fd, POLLOUT, timeoutMs) != 0) return false;
      continue;
    }
    return false;
  }
  return true;
}

namespace {

// Reads one unit into buf: a frame (a 4-byte header whose last three bytes are the body's
// length) or a record (2 bytes of length). Returns its size, or -1 with errno.
long readUnit(int fd, std::uint8_t* buf, std::size_t cap, std::int64_t deadline, bool record) {
  const std::size_t header = record ? 2 : control::kHeaderSize;
  std::size_t have = 0;
  for (;;) {
    std::size_t total = 0;
    if (have >= header) {
      total = record ? 2 + ((std::size_t{buf[0]} << 8) | buf[1])
                     : header + ((std::size_t{buf[1]} << 16) | (std::size_t{buf[2]} << 8) | buf[3]);
      if (!record && total - header > control::kMaxBody) {
        errno = EPROTO;
        return -1;
      }
      if (have == total) return static_cast<long>(total);
    }
    if (have == cap || (total != 0 && total > cap)) {
      errno = EPROTO;
      return -1;
    }
    // Read no further than this unit: what follows belongs to the next reader.
    std::size_t want = have < header ? header - have : total - have;
    if (want > cap - have) want = cap - have;
    const ssize_t n = ::recv(fd, buf + have, want, MSG_DONTWAIT);
    if (n > 0) {
      have += static_cast<std::size_t>(n);
      continue;
    }
    if (n == 0) {
      errno = ECONNRESET;
      return -1;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    const std::int64_t left = deadline - monotonicMs();
    if (left <= 0 || waitFor(fd, POLLIN, static_cast<int>(left)) != 0) {
      errno = ETIMEDOUT;
      return -1;
    }
  }
}

}  // namespace

long readOneFrame(int fd, std::uint8_t* buf, std::size_t cap, std::int64_t deadline) {
  return readUnit(fd, buf, cap, deadline, false);
}

long readOneRecord(int fd, std::uint8_t* buf, std::size_t cap, std::int64_t deadline) {
  return readUnit(fd, buf, cap, deadline, true);
}

int exchange(const GatewayEndpoints& gateway, const Identity& identity,
             std::span<const std::uint8_t> request, std::span<std::uint8_t> buffer, int timeoutMs,
             Reply& reply) {
  const std::int64_t deadline = monotonicMs() + timeoutMs;
  const int fd = openControl(gateway, timeoutMs);
  if (fd < 0) return errno;
  std::uint8_t out[2048];
  const std::size_t helloSize = encodeHelloFor(identity, out);
  int error = 0;
  if (helloSize == 0 || helloSize + request.size() > sizeof out) {
    error = EMSGSIZE;
  } else {
    std::memcpy(out + helloSize, request.data(), request.size());
    if (!sendAll(fd, out, helloSize + request.size(), timeoutMs)) error = errno;
  }
  long welcomeSize = -1;
  if (error == 0) {
    welcomeSize = readOneFrame(fd, buffer.data(), buffer.size(), deadline);
    if (welcomeSize < 0) error = errno;
  }
  if (error == 0) {
    const auto welcome = control::parseFrame(buffer.first(static_cast<std::size_t>(welcomeSize)));
    if (welcome.value.type != static_cast<std::uint8_t>(control::MessageType::Welcome) ||
        !control::decodeWelcome(welcome.value.body, reply.welcome)) {
      error = EPROTO;
    } else if (reply.welcome.status != control::Status::Ok) {
      reply.type = 0;
      reply.body = {};
    } else {
      auto rest = buffer.subspan(static_cast<std::size_t>(welcomeSize));
      const long n = readOneFrame(fd, rest.data(), rest.size(), deadline);
      if (n < 0) {
        error = errno;
      } else {
        const auto frame = control::parseFrame(rest.first(static_cast<std::size_t>(n)));
        reply.type = frame.value.type;
        reply.body = frame.value.body;
      }
    }
  }
  ::close(fd);
  return error;
}

int sendConnectRequest(int fd, const Identity& identity, const control::Endpoint& destination,
                       const char* nameHint) {
  std::uint8_t out[2048];
  const std::size_t helloSize = encodeHelloFor(identity, out);
  control::Connect connect;
  connect.destination = destination;
  connect.nameHint = nameHint != nullptr ? nameHint : "";
  const std::size_t connectSize =
      helloSize == 0 ? 0
                     : control::encodeConnect({out + helloSize, sizeof out - helloSize}, connect);
  if (connectSize == 0) return EMSGSIZE;
  return sendAll(fd, out, helloSize + connectSize, 5000) ? 0 : errno;
}

namespace {

// Peeks for one whole frame at the front of the socket's input. NeedMore, or Done with either the
// frame's size in `size` (error 0) or an error.
ReplyState peekFrame(int fd, std::uint8_t* buf, std::size_t cap, std::size_t& size, int& error) {
  ssize_t n;
  do {
    n = ::recv(fd, buf, cap, MSG_PEEK | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return ReplyState::NeedMore;
    error = errno;
    return ReplyState::Done;
  }
  if (n == 0) {
    error = ECONNABORTED;  // the gateway closed before answering
    return ReplyState::Done;
  }
  const auto frame = control::parseFrame({buf, static_cast<std::size_t>(n)});
  if (frame.complete()) {
    size = frame.consumed;
    error = 0;
    return ReplyState::Done;
  }
  if (frame.invalid() || static_cast<std::size_t>(n) == cap) {
    error = EPROTO;  // larger than any answer the gateway sends
    return ReplyState::Done;
  }
  // Part of a frame: is the rest still coming?
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) {
    error = ECONNABORTED;
    return ReplyState::Done;
  }
  return ReplyState::NeedMore;
}

void consume(int fd, std::size_t n) {
  std::uint8_t sink[512];
  while (n > 0) {
    const ssize_t r = ::recv(fd, sink, n < sizeof sink ? n : sizeof sink, MSG_DONTWAIT);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return;
    n -= static_cast<std::size_t>(r);
  }
}

}  // namespace

ReplyState takeConnectReply(int fd, bool& welcomed, int& error, char* detail,
                            std::size_t detailSize, control::Endpoint* bound) {
  if (detailSize > 0) detail[0] = '\0';
  std::uint8_t buf[2048];
  std::size_t size = 0;
  if (!welcomed) {
    if (peekFrame(fd, buf, sizeof buf, size, error) == ReplyState::NeedMore) {
      return ReplyState::NeedMore;
    }
    if (error != 0) return ReplyState::Done;
    control::Welcome w;
    const auto frame = control::parseFrame({buf, size});
    if (frame.value.type != static_cast<std::uint8_t>(control::MessageType::Welcome) ||
        !control::decodeWelcome(frame.value.body, w)) {
      error = EPROTO;
      return ReplyState::Done;
    }
    consume(fd, size);
    if (w.status != control::Status::Ok) {
      // The gateway closes after a refused Hello: no Connected follows.
      copyTo(detail, detailSize, w.message);
      error = control::errnoFor(w.status);
      return ReplyState::Done;
    }
    welcomed = true;
  }
  if (peekFrame(fd, buf, sizeof buf, size, error) == ReplyState::NeedMore) {
    return ReplyState::NeedMore;
  }
  if (error != 0) return ReplyState::Done;
  control::Connected c;
  const auto frame = control::parseFrame({buf, size});
  if (frame.value.type != static_cast<std::uint8_t>(control::MessageType::Connected) ||
      !control::decodeConnected(frame.value.body, c)) {
    error = EPROTO;
    return ReplyState::Done;
  }
  copyTo(detail, detailSize, c.message);
  error = control::errnoFor(c.status);
  if (bound != nullptr) *bound = c.bound;
  consume(fd, size);
  return ReplyState::Done;
}

namespace {

// A control connection that stays open: Hello + `request`, then the Welcome and one reply frame
// (of `expected` type) into `buf`, within timeoutMs. 0 with `fd` open and `body` the reply's
// body, else an errno (the Welcome's refusal mapped, with its message in `detail`) and fd -1.
int openSession(const GatewayEndpoints& gateway, const Identity& identity,
                std::span<const std::uint8_t> request, control::MessageType expected, int timeoutMs,
                std::span<std::uint8_t> buf, int& fd, protocol::Bytes& body, char* detail,
                std::size_t detailSize) {
  if (detailSize > 0) detail[0] = '\0';
  fd = -1;
  const std::int64_t deadline = monotonicMs() + timeoutMs;
  const int s = openControl(gateway, timeoutMs);
  if (s < 0) return errno;
  const std::size_t helloSize = encodeHelloFor(identity, buf);
  int error = 0;
  if (helloSize == 0 || helloSize + request.size() > buf.size()) {
    error = EMSGSIZE;
  } else {
    std::memcpy(buf.data() + helloSize, request.data(), request.size());
    if (!sendAll(s, buf.data(), helloSize + request.size(), timeoutMs)) error = errno;
  }
  long n = error == 0 ? readOneFrame(s, buf.data(), buf.size(), deadline) : -1;
  if (error == 0 && n < 0) error = errno;
  if (error == 0) {
    control::Welcome welcome;
    const auto frame = control::parseFrame(buf.first(static_cast<std::size_t>(n)));
    if (frame.value.type != static_cast<std::uint8_t>(control::MessageType::Welcome) ||
        !control::decodeWelcome(frame.value.body, welcome)) {
      error = EPROTO;
    } else if (welcome.status != control::Status::Ok) {
      copyTo(detail, detailSize, welcome.message);
      error = control::errnoFor(welcome.status);
    }
  }
  if (error == 0) {
    n = readOneFrame(s, buf.data(), buf.size(), deadline);
    if (n < 0) error = errno;
  }
  if (error == 0) {
    const auto frame = control::parseFrame(buf.first(static_cast<std::size_t>(n)));
    if (frame.value.type != static_cast<std::uint8_t>(expected)) {
      error = EPROTO;
    } else {
      body = frame.value.body;
    }
  }
  if (error != 0) {
    ::close(s);
    return error;
  }
  fd = s;
  return 0;
}

}  // namespace

int remoteBind(const GatewayEndpoints& gateway, const Identity& identity,
               const control::BindRequest& request, int timeoutMs, int& controlFd, RemoteBind& out,
               char* detail, std::size_t detailSize) {
  std::uint8_t req[256];
  const std::size_t size = control::encodeBind(req, request);
  if (size == 0) return EMSGSIZE;
  std::uint8_t buf[2048];
  protocol::Bytes body;
  int error = openSession(gateway, identity, {req, size}, control::MessageType::Bound, timeoutMs,
                          buf, controlFd, body, detail, detailSize);
  if (error != 0) return error;
  control::BoundReply reply;
  if (!control::decodeBound(body, reply)) {
    error = EPROTO;
  } else {
    copyTo(detail, detailSize, reply.message);
    error = control::errnoFor(reply.status);
    out.bound = reply.bound;
    out.token = reply.token;
  }
  if (error != 0) {
    ::close(controlFd);
    controlFd = -1;
  }
  return error;
}

int udpAssociate(const GatewayEndpoints& gateway, const Identity& identity, std::uint16_t localPort,
                 int timeoutMs, int& controlFd, control::Endpoint& relay, char* detail,
                 std::size_t detailSize, std::uint16_t publishPort, control::Endpoint* published) {
  std::uint8_t req[64];
  const std::size_t size = control::encodeUdpAssociate(
      req, control::UdpAssociateRequest{localPort, publishPort != 0, publishPort});
  if (size == 0) return EMSGSIZE;
  std::uint8_t buf[2048];
  protocol::Bytes body;
  int error = openSession(gateway, identity, {req, size}, control::MessageType::UdpAssociated,
                          timeoutMs, buf, controlFd, body, detail, detailSize);
  if (error != 0) return error;
  control::UdpAssociatedReply reply;
  if (!control::decodeUdpAssociated(body, reply)) {
    error = EPROTO;
  } else {
    copyTo(detail, detailSize, reply.message);
    error = control::errnoFor(reply.status);
    relay = reply.relay;
    if (publishPort != 0) {
      *published = reply.published;
      // A gateway that does not publish answers a plain association: not what was asked.
      if (error == 0 && published->address.family == 0) {
        error = EPROTO;
        copyTo(detail, detailSize, "the gateway did not publish the port");
      }
    }
  }
  if (error != 0) {
    ::close(controlFd);
    controlFd = -1;
  }
  return error;
}

int remoteListen(int controlFd, std::uint16_t localPort, std::uint16_t backlog, int timeoutMs,
                 char* detail, std::size_t detailSize) {
  if (detailSize > 0) detail[0] = '\0';
  const std::int64_t deadline = monotonicMs() + timeoutMs;
  std::uint8_t buf[512];
  const std::size_t size = control::encodeListen(buf, control::ListenRequest{localPort, backlog});
  if (size == 0) return EMSGSIZE;
  if (!sendAll(controlFd, buf, size, timeoutMs)) return errno;
  const long n = readOneFrame(controlFd, buf, sizeof buf, deadline);
  if (n < 0) return errno;
  control::ListeningReply reply;
  const auto frame = control::parseFrame({buf, static_cast<std::size_t>(n)});
  if (frame.value.type != static_cast<std::uint8_t>(control::MessageType::Listening) ||
      !control::decodeListening(frame.value.body, reply)) {
    return EPROTO;
  }
  copyTo(detail, detailSize, reply.message);
  return control::errnoFor(reply.status);
}

int readAccepted(int fd, const control::Token& token, int timeoutMs, control::Endpoint& peer) {
  std::uint8_t buf[256];
  const long n = readOneFrame(fd, buf, sizeof buf, monotonicMs() + timeoutMs);
  if (n < 0) return EPROTO;
  control::AcceptedNotice notice;
  const auto frame = control::parseFrame({buf, static_cast<std::size_t>(n)});
  if (frame.value.type != static_cast<std::uint8_t>(control::MessageType::Accepted) ||
      !control::decodeAccepted(frame.value.body, notice)) {
    return EPROTO;
  }
  // Constant time: the token is the only thing that tells the gateway from anyone else.
  unsigned char diff = 0;
  for (std::size_t i = 0; i < token.size(); ++i) diff |= token[i] ^ notice.token[i];
  if (diff != 0) return EPROTO;
  peer = notice.peer;
  return 0;
}

}  // namespace fwgate::client
