#include "client/gateway_link.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
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
  // An empty view may have no data at all: memcpy from null is undefined even for 0 bytes.
  if (n > 0) std::memcpy(out, text.data(), n);
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
  out.gatewayKey = config.gatewayKey.data();
  formatServer(config.server, out.server, sizeof out.server);
}

std::size_t encodeHelloFor(const Identity& identity, std::span<std::uint8_t> out,
                           std::uint64_t timestamp, protocol::Bytes gssToken) {
  control::Hello hello;
  hello.version = control::kVersion;
  hello.user = identity.user;
  hello.password = identity.password;
  hello.host = identity.host;
  hello.application = identity.app;
  hello.osUser = identity.osUser;
  hello.pid = identity.pid;
  hello.timestamp = timestamp;
  hello.gssToken = gssToken;
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

int agentConnect(bool& required) {
  const char* named = std::getenv("FWGATE_AGENT_SOCKET");
  required = named != nullptr && named[0] != '\0';
  char user[sizeof(sockaddr_un::sun_path)] = {};
  if (const char* runtime = std::getenv("XDG_RUNTIME_DIR"); runtime != nullptr && *runtime) {
    std::snprintf(user, sizeof user, "%s/fwgate/agent.sock", runtime);
  }
  const char* candidates[] = {required ? named : user, required ? "" : "/run/fwgate/agent.sock"};
  int lastError = ENOENT;
  for (const char* path : candidates) {
    if (path[0] == '\0' || std::strlen(path) >= sizeof(sockaddr_un::sun_path)) continue;
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path, std::strlen(path));
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0) {
      // Only an agent of root or of this user holds this user's secrets.
      ucred peer{};
      socklen_t length = sizeof peer;
      if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &length) == 0 &&
          (peer.uid == 0 || peer.uid == ::getuid())) {
        return fd;
      }
      lastError = EPERM;
    } else {
      lastError = errno;
    }
    ::close(fd);
  }
  errno = lastError;
  return -1;
}

void closeChannel(Channel& channel) {
  if (channel.agent >= 0) ::close(channel.agent);
  channel.agent = -1;
}

namespace {

// A request to the agent: header, prefix and body. 0 or an errno.
int sendRequest(int agent, AgentMessage message, protocol::Bytes prefix, protocol::Bytes in,
                int timeoutMs) {
  const std::size_t length = prefix.size() + in.size();
  if (length > control::kMaxBody) return EMSGSIZE;
  const std::uint8_t header[control::kHeaderSize] = {
      static_cast<std::uint8_t>(message), static_cast<std::uint8_t>(length >> 16),
      static_cast<std::uint8_t>(length >> 8), static_cast<std::uint8_t>(length)};
  return sendAll(agent, header, sizeof header, timeoutMs) &&
                 sendAll(agent, prefix.data(), prefix.size(), timeoutMs) &&
                 sendAll(agent, in.data(), in.size(), timeoutMs)
             ? 0
             : errno;
}

// The agent's Result, `whole` bytes at the front of buf: its bytes moved to the front (`size`
// of them). 0, or the errno its status stands for, with the agent's reason in `detail`.
int resultBytes(std::uint8_t* buf, std::size_t whole, std::size_t& size, char* detail,
                std::size_t detailSize) {
  if (whole < control::kHeaderSize + 1 ||
      buf[0] != static_cast<std::uint8_t>(AgentMessage::Result)) {
    copyTo(detail, detailSize, "the agent's answer is not a Result");
    return EPROTO;
  }
  const std::uint8_t status = buf[control::kHeaderSize];
  size = whole - control::kHeaderSize - 1;
  std::memmove(buf, buf + control::kHeaderSize + 1, size);
  if (status == 0) return 0;
  copyTo(detail, detailSize, std::string_view(reinterpret_cast<const char*>(buf), size));
  const int error =
      status <= control::kMaxStatus ? control::errnoFor(static_cast<control::Status>(status)) : 0;
  return error != 0 ? error : ECONNABORTED;
}

}  // namespace

long agentCall(int agent, AgentMessage message, protocol::Bytes prefix, protocol::Bytes in,
               std::span<std::uint8_t> out, int timeoutMs, char* detail, std::size_t detailSize) {
  const std::int64_t deadline = monotonicMs() + timeoutMs;
  if (const int error = sendRequest(agent, message, prefix, in, timeoutMs); error != 0) {
    copyTo(detail, detailSize, "the agent did not take the request");
    errno = error;
    return -1;
  }
  const long n = readOneFrame(agent, out.data(), out.size(), deadline);
  if (n < 0) {
    copyTo(detail, detailSize, "the agent did not answer");
    return -1;
  }
  std::size_t size = 0;
  if (const int error =
          resultBytes(out.data(), static_cast<std::size_t>(n), size, detail, detailSize);
      error != 0) {
    errno = error;
    return -1;
  }
  return static_cast<long>(size);
}

namespace {

// The first Seal's prefix: the pinned key and the gateway, each behind a length byte.
std::size_t sealPrefix(const Identity& identity, std::uint8_t* out, std::size_t cap) {
  const std::size_t k = std::strlen(identity.gatewayKey);
  const std::size_t s = std::strlen(identity.server);
  if (k > 255 || s > 255 || 2 + k + s > cap) return 0;
  out[0] = static_cast<std::uint8_t>(k);
  std::memcpy(out + 1, identity.gatewayKey, k);
  out[1 + k] = static_cast<std::uint8_t>(s);
  std::memcpy(out + 2 + k, identity.server, s);
  return 2 + k + s;
}

// Sends the first frames of a control connection (`buf`'s first `size` bytes: Hello and the
// request): through the agent when one answers (`channel.agent` keeps it), else in clear. `buf`
// is the scratch for the sealed bytes. 0 or an errno, with the agent's reason in `detail`.
// The agent connection of a new control connection, in `channel`: 0, -1 when none answers (the
// connection stays in clear), or an errno when FWGATE_AGENT_SOCKET names one that does not.
int openAgent(Channel& channel, char* detail, std::size_t detailSize) {
  bool required = false;
  channel.agent = agentConnect(required);
  if (channel.agent >= 0) return 0;
  if (!required) return -1;
  const int error = errno;
  copyTo(detail, detailSize, "FWGATE_AGENT_SOCKET names no agent that answers");
  return error != 0 ? error : ECONNREFUSED;
}

int sendFirst(int fd, const Identity& identity, Channel& channel, std::span<std::uint8_t> buf,
              std::size_t size, int timeoutMs, char* detail, std::size_t detailSize) {
  if (const int opened = openAgent(channel, detail, detailSize); opened != 0) {
    if (opened > 0) return opened;
    return sendAll(fd, buf.data(), size, timeoutMs) ? 0 : errno;
  }
  std::uint8_t prefix[520];
  const std::size_t prefixSize = sealPrefix(identity, prefix, sizeof prefix);
  const long sealed = agentCall(channel.agent, AgentMessage::Seal, {prefix, prefixSize},
                                buf.first(size), buf, timeoutMs, detail, detailSize);
  if (sealed < 0) {
    const int error = errno;
    closeChannel(channel);
    return error;
  }
  return sendAll(fd, buf.data(), static_cast<std::size_t>(sealed), timeoutMs) ? 0 : errno;
}

// Blocking: the next reply frame, in clear, into buf: read as it is, or (through the agent) one
// unit (the handshake's answer, then records) at a time, opened, until a whole frame is in. Its
// size, or -1 with errno.
long readReply(int fd, Channel& channel, std::span<std::uint8_t> buf, std::int64_t deadline,
               char* detail, std::size_t detailSize) {
  if (channel.agent < 0) {
    channel.welcomed = true;
    return readOneFrame(fd, buf.data(), buf.size(), deadline);
  }
  std::size_t have = 0;
  for (;;) {
    const auto rest = buf.subspan(have);
    const long n = channel.welcomed ? readOneRecord(fd, rest.data(), rest.size(), deadline)
                                    : readOneFrame(fd, rest.data(), rest.size(), deadline);
    if (n < 0) return -1;
    const std::int64_t left = deadline - monotonicMs();
    const long m = agentCall(channel.agent, AgentMessage::Open, {}, rest.first(n), rest,
                             left > 0 ? static_cast<int>(left) : 1, detail, detailSize);
    if (m < 0) return -1;
    channel.welcomed = true;
    have += static_cast<std::size_t>(m);
    const auto frame = control::parseFrame(buf.first(have));
    if (frame.complete()) return static_cast<long>(frame.consumed);
    if (frame.invalid() || have == buf.size()) {
      errno = EPROTO;
      return -1;
    }
  }
}

}  // namespace

int exchange(const GatewayEndpoints& gateway, const Identity& identity,
             std::span<const std::uint8_t> request, std::span<std::uint8_t> buffer, int timeoutMs,
             Reply& reply) {
  const std::int64_t deadline = monotonicMs() + timeoutMs;
  const int fd = openControl(gateway, timeoutMs);
  if (fd < 0) return errno;
  Channel channel;
  char detail[8];
  const std::size_t helloSize = encodeHelloFor(identity, buffer);
  int error = 0;
  if (helloSize == 0 || helloSize + request.size() + 256 > buffer.size()) {
    error = EMSGSIZE;
  } else {
    std::memcpy(buffer.data() + helloSize, request.data(), request.size());
    error = sendFirst(fd, identity, channel, buffer, helloSize + request.size(), timeoutMs, detail,
                      sizeof detail);
  }
  long welcomeSize = -1;
  if (error == 0) {
    welcomeSize = readReply(fd, channel, buffer, deadline, detail, sizeof detail);
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
      const long n = readReply(fd, channel, rest, deadline, detail, sizeof detail);
      if (n < 0) {
        error = errno;
      } else {
        const auto frame = control::parseFrame(rest.first(static_cast<std::size_t>(n)));
        reply.type = frame.value.type;
        reply.body = frame.value.body;
      }
    }
  }
  closeChannel(channel);
  ::close(fd);
  return error;
}

namespace {

// Hello + Connect into out, with room for the agent to seal them in place: their size, or 0.
std::size_t encodeConnectRequest(const Identity& identity, const control::Endpoint& destination,
                                 const char* nameHint, std::span<std::uint8_t> out) {
  const std::size_t helloSize = encodeHelloFor(identity, out);
  control::Connect connect;
  connect.destination = destination;
  connect.nameHint = nameHint != nullptr ? nameHint : "";
  const std::size_t connectSize =
      helloSize == 0 ? 0 : control::encodeConnect(out.subspan(helloSize), connect);
  if (connectSize == 0 || helloSize + connectSize + 256 > out.size()) return 0;
  return helloSize + connectSize;
}

}  // namespace

int sendConnectRequest(int fd, const Identity& identity, const control::Endpoint& destination,
                       const char* nameHint, Channel& channel, char* detail,
                       std::size_t detailSize) {
  if (detailSize > 0) detail[0] = '\0';
  std::uint8_t out[2048];
  const std::size_t size = encodeConnectRequest(identity, destination, nameHint, out);
  if (size == 0) return EMSGSIZE;
  return sendFirst(fd, identity, channel, out, size, 5000, detail, detailSize);
}

namespace {

// Peeks for one whole unit at the front of the socket's input: a frame, or (`record`) a record of
// the encrypted channel. NeedMore, or Done with either its size in `size` (error 0) or an error.
ReplyState peekUnit(int fd, std::uint8_t* buf, std::size_t cap, bool record, std::size_t& size,
                    int& error) {
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
  const auto have = static_cast<std::size_t>(n);
  std::size_t whole = 0;
  bool invalid = false;
  if (record) {
    if (have >= 2) whole = 2 + ((std::size_t{buf[0]} << 8) | buf[1]);
  } else {
    const auto frame = control::parseFrame({buf, have});
    if (frame.complete()) whole = frame.consumed;
    invalid = frame.invalid();
  }
  if (whole != 0 && whole <= have) {
    size = whole;
    error = 0;
    return ReplyState::Done;
  }
  if (invalid || have == cap || whole > cap) {
    error = EPROTO;  // larger than any answer the gateway sends
    return ReplyState::Done;
  }
  // Part of one: is the rest still coming?
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

// The next reply frame without blocking: peeked whole, consumed (nothing after it), and through
// the agent opened; in clear in buf[0..size].
ReplyState takeFrame(int fd, Channel& channel, std::uint8_t* buf, std::size_t cap,
                     std::size_t& size, int& error, char* detail, std::size_t detailSize) {
  const bool record = channel.agent >= 0 && channel.welcomed;
  if (peekUnit(fd, buf, cap, record, size, error) == ReplyState::NeedMore) {
    return ReplyState::NeedMore;
  }
  if (error != 0) return ReplyState::Done;
  consume(fd, size);
  if (channel.agent >= 0) {
    const long n = agentCall(channel.agent, AgentMessage::Open, {}, {buf, size}, {buf, cap}, 5000,
                             detail, detailSize);
    if (n < 0) {
      error = errno;
      return ReplyState::Done;
    }
    size = static_cast<std::size_t>(n);
    const auto frame = control::parseFrame({buf, size});
    if (!frame.complete()) {
      error = EPROTO;
      return ReplyState::Done;
    }
  }
  return ReplyState::Done;
}

}  // namespace

namespace {

// One frame of the answer to a connect, in clear: the Welcome (NeedMore: the Connected comes
// next) or the Connected (Done, with the channel closed).
ReplyState onConnectFrame(Channel& channel, protocol::Bytes bytes, int& error, char* detail,
                          std::size_t detailSize, control::Endpoint* bound) {
  const auto done = [&] {
    closeChannel(channel);
    return ReplyState::Done;
  };
  const auto frame = control::parseFrame(bytes);
  if (!channel.welcomed) {
    control::Welcome w;
    if (!frame.complete() ||
        frame.value.type != static_cast<std::uint8_t>(control::MessageType::Welcome) ||
        !control::decodeWelcome(frame.value.body, w)) {
      error = EPROTO;
      return done();
    }
    if (w.status != control::Status::Ok) {
      // The gateway closes after a refused Hello: no Connected follows.
      copyTo(detail, detailSize, w.message);
      error = control::errnoFor(w.status);
      return done();
    }
    channel.welcomed = true;
    error = 0;
    return ReplyState::NeedMore;
  }
  control::Connected c;
  if (!frame.complete() ||
      frame.value.type != static_cast<std::uint8_t>(control::MessageType::Connected) ||
      !control::decodeConnected(frame.value.body, c)) {
    error = EPROTO;
    return done();
  }
  copyTo(detail, detailSize, c.message);
  error = control::errnoFor(c.status);
  if (bound != nullptr) *bound = c.bound;
  return done();
}

// The agent's Result without waiting: NeedMore until it is all there, then read into buf (the
// status checked as agentCall does).
ReplyState takeResult(int agent, std::uint8_t* buf, std::size_t cap, std::size_t& size, int& error,
                      char* detail, std::size_t detailSize) {
  std::size_t whole = 0;
  if (peekUnit(agent, buf, cap, false, whole, error) == ReplyState::NeedMore) {
    return ReplyState::NeedMore;
  }
  if (error != 0) {
    copyTo(detail, detailSize, "the agent did not answer");
    return ReplyState::Done;
  }
  consume(agent, whole);
  error = resultBytes(buf, whole, size, detail, detailSize);
  return ReplyState::Done;
}

}  // namespace

ReplyState takeConnectReply(int fd, Channel& channel, int& error, char* detail,
                            std::size_t detailSize, control::Endpoint* bound) {
  if (detailSize > 0) detail[0] = '\0';
  std::uint8_t buf[2048];
  for (;;) {
    std::size_t size = 0;
    if (takeFrame(fd, channel, buf, sizeof buf, size, error, detail, detailSize) ==
        ReplyState::NeedMore) {
      return ReplyState::NeedMore;
    }
    if (error != 0) {
      closeChannel(channel);
      return ReplyState::Done;
    }
    if (onConnectFrame(channel, {buf, size}, error, detail, detailSize, bound) ==
        ReplyState::Done) {
      return ReplyState::Done;
    }
  }
}

int startConnectRequest(int fd, const Identity& identity, const control::Endpoint& destination,
                        const char* nameHint, Channel& channel, bool& sealing, char* detail,
                        std::size_t detailSize) {
  if (detailSize > 0) detail[0] = '\0';
  sealing = false;
  std::uint8_t out[2048];
  const std::size_t size = encodeConnectRequest(identity, destination, nameHint, out);
  if (size == 0) return EMSGSIZE;
  if (const int opened = openAgent(channel, detail, detailSize); opened != 0) {
    if (opened > 0) return opened;
    return sendAll(fd, out, size, 5000) ? 0 : errno;
  }
  std::uint8_t prefix[520];
  const std::size_t prefixSize = sealPrefix(identity, prefix, sizeof prefix);
  if (const int error =
          sendRequest(channel.agent, AgentMessage::Seal, {prefix, prefixSize}, {out, size}, 1000);
      error != 0) {
    copyTo(detail, detailSize, "the agent did not take the request");
    closeChannel(channel);
    return error;
  }
  sealing = true;
  return 0;
}

ReplyState finishSeal(int fd, Channel& channel, int& error, char* detail, std::size_t detailSize) {
  std::uint8_t buf[2048];
  std::size_t size = 0;
  error = 0;
  if (takeResult(channel.agent, buf, sizeof buf, size, error, detail, detailSize) ==
      ReplyState::NeedMore) {
    return ReplyState::NeedMore;
  }
  if (error == 0 && !sendAll(fd, buf, size, 5000)) error = errno;
  if (error != 0) closeChannel(channel);
  return ReplyState::Done;
}

ReplyState takeConnectUnit(int fd, Channel& channel, bool& opening, int& error, char* detail,
                           std::size_t detailSize, control::Endpoint* bound) {
  opening = false;
  error = 0;
  std::uint8_t buf[2048];
  std::size_t size = 0;
  if (channel.agent < 0) {
    // In clear, the frames are handled here, one after the other.
    for (;;) {
      if (takeFrame(fd, channel, buf, sizeof buf, size, error, detail, detailSize) ==
          ReplyState::NeedMore) {
        return ReplyState::NeedMore;
      }
      if (error != 0) return ReplyState::Done;
      if (onConnectFrame(channel, {buf, size}, error, detail, detailSize, bound) ==
          ReplyState::Done) {
        return ReplyState::Done;
      }
    }
  }
  if (peekUnit(fd, buf, sizeof buf, channel.welcomed, size, error) == ReplyState::NeedMore) {
    return ReplyState::NeedMore;
  }
  if (error == 0) {
    consume(fd, size);
    error = sendRequest(channel.agent, AgentMessage::Open, {}, {buf, size}, 1000);
    if (error != 0) copyTo(detail, detailSize, "the agent did not take the request");
  }
  if (error != 0) {
    closeChannel(channel);
    return ReplyState::Done;
  }
  opening = true;
  return ReplyState::Done;
}

ReplyState finishOpen(Channel& channel, int& error, char* detail, std::size_t detailSize,
                      control::Endpoint* bound) {
  std::uint8_t buf[2048];
  std::size_t size = 0;
  error = 0;
  if (takeResult(channel.agent, buf, sizeof buf, size, error, detail, detailSize) ==
      ReplyState::NeedMore) {
    return ReplyState::NeedMore;
  }
  if (error != 0) {
    closeChannel(channel);
    return ReplyState::Done;
  }
  return onConnectFrame(channel, {buf, size}, error, detail, detailSize, bound);
}

namespace {

// A control connection that stays open: Hello + `request`, then the Welcome and one reply frame
// (of `expected` type) into `buf`, within timeoutMs. 0 with `fd` open, `channel` as the
// connection goes on, and `body` the reply's body, else an errno (the Welcome's refusal mapped,
// with its message in `detail`), fd -1 and the channel closed.
int openSession(const GatewayEndpoints& gateway, const Identity& identity,
                std::span<const std::uint8_t> request, control::MessageType expected, int timeoutMs,
                std::span<std::uint8_t> buf, int& fd, Channel& channel, protocol::Bytes& body,
                char* detail, std::size_t detailSize) {
  if (detailSize > 0) detail[0] = '\0';
  fd = -1;
  const std::int64_t deadline = monotonicMs() + timeoutMs;
  const int s = openControl(gateway, timeoutMs);
  if (s < 0) return errno;
  const std::size_t helloSize = encodeHelloFor(identity, buf);
  int error = 0;
  if (helloSize == 0 || helloSize + request.size() + 256 > buf.size()) {
    error = EMSGSIZE;
  } else {
    std::memcpy(buf.data() + helloSize, request.data(), request.size());
    error = sendFirst(s, identity, channel, buf, helloSize + request.size(), timeoutMs, detail,
                      detailSize);
  }
  long n = error == 0 ? readReply(s, channel, buf, deadline, detail, detailSize) : -1;
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
    n = readReply(s, channel, buf, deadline, detail, detailSize);
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
    closeChannel(channel);
    ::close(s);
    return error;
  }
  fd = s;
  return 0;
}

}  // namespace

int remoteBind(const GatewayEndpoints& gateway, const Identity& identity,
               const control::BindRequest& request, int timeoutMs, int& controlFd, Channel& channel,
               RemoteBind& out, char* detail, std::size_t detailSize) {
  std::uint8_t req[256];
  const std::size_t size = control::encodeBind(req, request);
  if (size == 0) return EMSGSIZE;
  std::uint8_t buf[2048];
  protocol::Bytes body;
  int error = openSession(gateway, identity, {req, size}, control::MessageType::Bound, timeoutMs,
                          buf, controlFd, channel, body, detail, detailSize);
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
    closeChannel(channel);
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
  Channel channel;  // nothing follows UdpAssociated on the connection
  int error = openSession(gateway, identity, {req, size}, control::MessageType::UdpAssociated,
                          timeoutMs, buf, controlFd, channel, body, detail, detailSize);
  closeChannel(channel);
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

int remoteListen(int controlFd, Channel& channel, std::uint16_t localPort, std::uint16_t backlog,
                 int timeoutMs, char* detail, std::size_t detailSize) {
  if (detailSize > 0) detail[0] = '\0';
  const std::int64_t deadline = monotonicMs() + timeoutMs;
  std::uint8_t buf[640];
  const std::size_t size = control::encodeListen(buf, control::ListenRequest{localPort, backlog});
  int error = 0;
  long n = -1;
  if (size == 0) {
    error = EMSGSIZE;
  } else if (channel.agent >= 0) {
    // A record now: the handshake is behind.
    const long sealed = agentCall(channel.agent, AgentMessage::Seal, {}, {buf, size}, buf,
                                  timeoutMs, detail, detailSize);
    if (sealed < 0 || !sendAll(controlFd, buf, static_cast<std::size_t>(sealed), timeoutMs)) {
      error = errno;
    }
  } else if (!sendAll(controlFd, buf, size, timeoutMs)) {
    error = errno;
  }
  if (error == 0) {
    n = readReply(controlFd, channel, buf, deadline, detail, detailSize);
    if (n < 0) error = errno;
  }
  closeChannel(channel);  // nothing more travels on the connection
  if (error != 0) return error;
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
