#include "client/secure/agent_server.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>

#include "client/gateway_link.hpp"
#include "client/secure/encrypted_exchange.hpp"
#include "crypto/resumption.hpp"
#include "crypto/secure_stream.hpp"
#include "protocol/control.hpp"

namespace fwgate::client {

namespace control = protocol::control;

namespace {

constexpr std::size_t kMaxConnections = 4096;
constexpr std::size_t kMaxRequest = control::kHeaderSize + control::kMaxBody;

std::vector<std::uint8_t> result(std::uint8_t status, protocol::Bytes data) {
  std::vector<std::uint8_t> out(control::kHeaderSize + 1 + data.size());
  const std::size_t length = 1 + data.size();
  out[0] = static_cast<std::uint8_t>(AgentMessage::Result);
  out[1] = static_cast<std::uint8_t>(length >> 16);
  out[2] = static_cast<std::uint8_t>(length >> 8);
  out[3] = static_cast<std::uint8_t>(length);
  out[4] = status;
  std::copy(data.begin(), data.end(), out.begin() + 5);
  return out;
}

std::vector<std::uint8_t> failure(control::Status status, const std::string& why) {
  return result(static_cast<std::uint8_t>(status),
                {reinterpret_cast<const std::uint8_t*>(why.data()), why.size()});
}

std::uint64_t nowMs() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

std::string accountOf(uid_t uid) {
  passwd pw{};
  passwd* found = nullptr;
  char buffer[4096];
  if (::getpwuid_r(uid, &pw, buffer, sizeof buffer, &found) == 0 && found != nullptr) {
    return found->pw_name;
  }
  return "uid " + std::to_string(uid);
}

// The executable a process runs ("" when it cannot be read).
std::string executableOf(const std::string& pid) {
  char target[4096];
  const ssize_t n = ::readlink(("/proc/" + pid + "/exe").c_str(), target, sizeof target - 1);
  return n > 0 ? std::string(target, static_cast<std::size_t>(n)) : std::string();
}

// A caller that may name the account and PID of the program it speaks for: root running this
// same executable (the kernel client's helper, in this process or in `fwgate kernel start`).
// A preloaded program run by root is not one: what it would say is only its environment's.
bool speaksForOthers(const ucred& peer) {
  if (peer.uid != 0) return false;
  const std::string self = executableOf("self");
  return !self.empty() && executableOf(std::to_string(peer.pid)) == self;
}

}  // namespace

struct AgentServer::Connection {
  int fd = -1;
  ucred peer{};
  std::vector<std::uint8_t> in;
  std::vector<std::uint8_t> out;  // not yet written
  std::optional<crypto::HandshakeIK> handshake;
  std::optional<crypto::SecureStream> stream;
  crypto::Key key{};
  std::string keyFrom;
  std::string ticketId;  // the gateway and key, for tickets_
  bool resumed = false;  // sealed with a ticket: the first answer is a Resume frame
  bool resumeOpened = false;
};

AgentServer::AgentServer(std::string path, const crypto::KeyPair& identity)
    : path_(std::move(path)), root_(::geteuid() == 0), static_(identity) {}

AgentServer::~AgentServer() {
  for (auto& [fd, c] : connections_) ::close(fd);
  if (listener_ >= 0) {
    ::close(listener_);
    ::unlink(path_.c_str());
  }
}

std::string AgentServer::defaultPath() {
  if (::geteuid() == 0) return "/run/fwgate/agent.sock";
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  if (runtime == nullptr || *runtime == '\0') return {};
  return std::string(runtime) + "/fwgate/agent.sock";
}

bool AgentServer::open(std::string& error) {
  if (path_.empty() || path_.size() >= sizeof(sockaddr_un::sun_path)) {
    error = "no socket path (--socket PATH, or XDG_RUNTIME_DIR for a user's agent)";
    return false;
  }
  const std::string dir = path_.substr(0, path_.rfind('/'));
  if (!dir.empty() && ::mkdir(dir.c_str(), root_ ? 0755 : 0700) != 0 && errno != EEXIST) {
    error = dir + ": " + std::strerror(errno);
    return false;
  }
  listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listener_ < 0) {
    error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path_.data(), path_.size());
  // A socket left by an agent that died is replaced; one that answers is another agent's.
  if (::connect(listener_, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0) {
    error = path_ + ": another agent is listening there";
    ::close(listener_);
    listener_ = -1;
    return false;
  }
  ::unlink(path_.c_str());
  ::close(listener_);
  listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  // SOMAXCONN: a program may open a thousand connections at once, each with an agent
  // connection of its own; a full backlog would fail its connect() (EAGAIN).
  if (listener_ < 0 ||
      ::bind(listener_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 ||
      ::chmod(path_.c_str(), root_ ? 0666 : 0600) != 0 || ::listen(listener_, SOMAXCONN) != 0) {
    error = path_ + ": " + std::strerror(errno);
    if (listener_ >= 0) ::close(listener_);
    listener_ = -1;
    return false;
  }
  return true;
}

void AgentServer::serve(const volatile std::sig_atomic_t& stop) {
  std::vector<pollfd> fds;
  while (stop == 0) {
    fds.clear();
    fds.push_back({listener_, POLLIN, 0});
    for (auto& [fd, c] : connections_) {
      fds.push_back({fd, static_cast<short>(POLLIN | (c->out.empty() ? 0 : POLLOUT)), 0});
    }
    const int n = ::poll(fds.data(), fds.size(), 200);
    if (n <= 0) continue;
    if (fds[0].revents & POLLIN) accept();
    for (std::size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      auto it = connections_.find(fds[i].fd);
      if (it == connections_.end()) continue;
      Connection& c = *it->second;
      bool alive = true;
      if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) alive = readFrom(c);
      while (alive && !c.out.empty()) {
        const ssize_t w = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
          c.out.erase(c.out.begin(), c.out.begin() + w);
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          break;
        } else if (!(w < 0 && errno == EINTR)) {
          alive = false;
        }
      }
      if (!alive) {
        ::close(c.fd);
        connections_.erase(it);
      }
    }
  }
}

void AgentServer::accept() {
  for (;;) {
    const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    auto c = std::make_unique<Connection>();
    c->fd = fd;
    socklen_t length = sizeof c->peer;
    // A user's agent serves that user only (its directory keeps others out; this is the lock).
    if (connections_.size() >= kMaxConnections ||
        ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->peer, &length) != 0 ||
        (!root_ && c->peer.uid != ::geteuid())) {
      ::close(fd);
      continue;
    }
    connections_.emplace(fd, std::move(c));
  }
}

bool AgentServer::readFrom(Connection& c) {
  std::uint8_t chunk[65536];
  for (;;) {
    const ssize_t n = ::recv(c.fd, chunk, sizeof chunk, MSG_DONTWAIT);
    if (n == 0) return false;
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return false;
    }
    c.in.insert(c.in.end(), chunk, chunk + n);
    if (c.in.size() > kMaxRequest + control::kHeaderSize) return false;
  }
  for (;;) {
    if (c.in.size() < control::kHeaderSize) return true;
    const std::size_t length = (std::size_t{c.in[1]} << 16) | (std::size_t{c.in[2]} << 8) | c.in[3];
    if (length > control::kMaxBody) return false;
    if (c.in.size() < control::kHeaderSize + length) return true;
    const std::uint8_t type = c.in[0];
    std::vector<std::uint8_t> body(
        c.in.begin() + control::kHeaderSize,
        c.in.begin() + static_cast<std::ptrdiff_t>(control::kHeaderSize + length));
    c.in.erase(c.in.begin(),
               c.in.begin() + static_cast<std::ptrdiff_t>(control::kHeaderSize + length));
    const auto answer = handle(c, type, body);
    c.out.insert(c.out.end(), answer.begin(), answer.end());
  }
}

std::vector<std::uint8_t> AgentServer::handle(Connection& c, std::uint8_t type,
                                              const std::vector<std::uint8_t>& body) {
  if (type == static_cast<std::uint8_t>(AgentMessage::Seal)) return seal(c, body);
  if (type == static_cast<std::uint8_t>(AgentMessage::Open)) return open(c, body);
  return failure(control::Status::UnexpectedMessage, "the agent knows Seal and Open only");
}

bool AgentServer::keyFor(const std::string& server, const std::string& pin, crypto::Key& key,
                         std::string& from, std::string& error) {
  if (!pin.empty()) {
    const auto parsed = crypto::keyFromBase64(pin);
    if (!parsed) {
      error = "the pinned gateway key is not a key (44 characters of base64)";
      return false;
    }
    key = *parsed;
    from = "pinned";
    return true;
  }
  if (auto it = learned_.find(server); it != learned_.end()) {
    key = it->second;
    from = "trust on first use";
    return true;
  }
  ClientConfig config;
  if (!parseServer(server, config.server)) {
    error = "no gateway named";
    return false;
  }
  GatewayEndpoints gateway;
  if (resolveServer(config.server, gateway) != 0) {
    error = "cannot resolve the gateway " + server;
    return false;
  }
  std::vector<std::uint8_t> buffer(4096);
  EncryptedReply asked;
  if (!gatewayKey(config, gateway, 5000, buffer, asked)) {
    error = asked.detail.empty() ? std::string("cannot ask ") + server +
                                       " for its key: " + std::strerror(asked.error)
                                 : asked.detail;
    return false;
  }
  learned_[server] = asked.key;
  key = asked.key;
  from = "trust on first use";
  return true;
}

std::vector<std::uint8_t> AgentServer::seal(Connection& c, const std::vector<std::uint8_t>& body) {
  if (c.stream) {
    crypto::Bytes sealed;
    if (!c.stream->seal(body, sealed)) {
      return failure(control::Status::GeneralFailure, "the channel's nonces are used up");
    }
    return result(0, sealed);
  }
  if (c.handshake) {
    return failure(control::Status::UnexpectedMessage, "the handshake's answer is not opened yet");
  }
  // The first: the pin and the gateway, then Hello and the requests.
  std::size_t at = 0;
  const auto field = [&](std::string& out) {
    if (at >= body.size() || at + 1 + body[at] > body.size()) return false;
    out.assign(reinterpret_cast<const char*>(body.data() + at + 1), body[at]);
    at += 1 + body[at];
    return true;
  };
  std::string pin;
  std::string server;
  if (!field(pin) || !field(server)) {
    return failure(control::Status::BadRequest, "a first Seal without the gateway's pin and name");
  }
  const protocol::Bytes frames = protocol::Bytes(body).subspan(at);
  const auto first = control::parseFrame(frames);
  control::Hello hello;
  if (!first.complete() ||
      first.value.type != static_cast<std::uint8_t>(control::MessageType::Hello) ||
      !control::decodeHello(first.value.body, hello)) {
    return failure(control::Status::BadRequest, "the frames to seal do not start with a Hello");
  }
  std::string why;
  if (!keyFor(server, pin, c.key, c.keyFrom, why)) {
    return failure(control::Status::GeneralFailure, why);
  }
  // Who asks, as the kernel says: the PID and the account are the agent's to tell. Except for
  // the kernel client's helper (fwgate itself, run by root), which speaks for the programs it
  // carries: it names their account and PID, as the eBPF programs saw them.
  // Asked of NSS once per account for the agent's life (a read of /etc/passwd per connection
  // otherwise); the serving loop is one thread.
  auto known = accounts_.find(c.peer.uid);
  if (known == accounts_.end()) known = accounts_.emplace(c.peer.uid, accountOf(c.peer.uid)).first;
  const std::string& account = known->second;
  hello.version = control::kVersion;
  if (!trustHelper_ || !speaksForOthers(c.peer) || hello.osUser.empty() || hello.pid == 0) {
    hello.osUser = account;
    hello.pid = static_cast<std::uint32_t>(c.peer.pid);
  }
  hello.timestamp = nowMs();
  // The channel: resumed with a ticket (and its next counter), or a handshake whose ephemeral key
  // is picked now. Either names it for a Kerberos token.
  c.ticketId = server + " " + crypto::toBase64(c.key);
  Ticket* ticket = nullptr;
  if (auto t = tickets_.find(c.ticketId);
      t != tickets_.end() && std::chrono::steady_clock::now() < t->second.goodUntil) {
    ticket = &t->second;
  }
  const std::uint64_t counter = ticket != nullptr ? ticket->counter + 1 : 0;
  crypto::KeyPair ephemeral;
  crypto::Key channel{};
  if (ticket != nullptr) {
    channel = crypto::resumedConnectionId(ticket->bytes, counter);
  } else {
    ephemeral = crypto::KeyPair::generate();
    channel = ephemeral.publicKey;
  }
  // Kerberos with the agent's own credential cache: for callers of the agent's own account only
  // (fwgate run's agent is the user's; a host's agent, root's, speaks for no one's ticket).
  gss::Token token;
  if (c.peer.uid == ::geteuid()) {
    std::string kerberosError;
    token = kerberos_.tokenFor(server, channel, !hello.password.empty(), kerberosError);
    if (!kerberosError.empty()) {
      return failure(control::Status::AuthenticationFailed, kerberosError);
    }
  }
  hello.gssToken = token;
  std::vector<std::uint8_t> clear(2048 + token.size() + frames.size());
  const std::size_t helloSize = control::encodeHello(clear, hello);
  if (helloSize == 0) return failure(control::Status::BadRequest, "the Hello does not fit");
  const auto rest = frames.subspan(first.consumed);
  std::copy(rest.begin(), rest.end(), clear.begin() + static_cast<std::ptrdiff_t>(helloSize));
  const std::size_t clearSize = helloSize + rest.size();
  if (ticket != nullptr) {
    // Resumed: the ticket and a counter of its own, then the frames in the first record.
    ticket->counter = counter;
    c.stream.emplace(crypto::resumedTransport(ticket->resumption, ticket->bytes, counter, true));
    c.resumed = true;
    crypto::Bytes body(ticket->bytes);
    for (int i = 0; i < 8; ++i) body.push_back(static_cast<std::uint8_t>(counter >> (56 - 8 * i)));
    if (!c.stream->seal({clear.data(), clearSize}, body)) {
      return failure(control::Status::GeneralFailure, "the channel's nonces are used up");
    }
    std::vector<std::uint8_t> frame(control::kHeaderSize + body.size());
    control::encodeHandshake(frame, body);
    frame[0] = static_cast<std::uint8_t>(control::MessageType::Resume);
    return result(0, frame);
  }
  const protocol::Bytes prologue(
      reinterpret_cast<const std::uint8_t*>(control::kNoisePrologue.data()),
      control::kNoisePrologue.size());
  c.handshake = crypto::HandshakeIK::initiator(static_, c.key, prologue);
  c.handshake->useEphemeral(ephemeral);
  const auto message = c.handshake->write({clear.data(), clearSize});
  if (!message) {
    return failure(control::Status::BadRequest, "the frames do not fit one handshake message");
  }
  std::vector<std::uint8_t> frame(control::kHeaderSize + message->size());
  control::encodeHandshake(frame, *message);
  return result(0, frame);
}

std::vector<std::uint8_t> AgentServer::open(Connection& c, const std::vector<std::uint8_t>& body) {
  if (c.resumed && !c.resumeOpened) {
    const auto frame = control::parseFrame(body);
    if (!frame.complete()) return failure(control::Status::BadRequest, "not one whole frame");
    if (frame.value.type == static_cast<std::uint8_t>(control::MessageType::Welcome)) {
      // Refused in clear (a ticket of a key the gateway no longer has, or expired): the next
      // connection does a full handshake.
      tickets_.erase(c.ticketId);
      control::Welcome w;
      const bool decoded = control::decodeWelcome(frame.value.body, w);
      return failure(control::Status::TicketRefused,
                     std::string("the gateway refused the agent's resumption ticket; the next "
                                 "connection does a full handshake") +
                         (decoded && !w.message.empty() ? ": " + std::string(w.message) : ""));
    }
    if (frame.value.type != static_cast<std::uint8_t>(control::MessageType::Resume)) {
      return failure(control::Status::BadRequest, "the gateway's answer is not a Resume");
    }
    crypto::Bytes plain;
    const auto opened = c.stream->open(frame.value.body, plain);
    if (opened.bad || opened.consumed != frame.value.body.size()) {
      return failure(control::Status::BadRequest, "the gateway's answer does not authenticate");
    }
    c.resumeOpened = true;
    return result(0, plain);
  }
  if (c.stream) {
    crypto::Bytes plain;
    const auto opened = c.stream->open(body, plain);
    if (opened.bad || opened.consumed != body.size()) {
      return failure(control::Status::BadRequest, "a record that does not authenticate");
    }
    return result(0, plain);
  }
  if (!c.handshake) {
    return failure(control::Status::UnexpectedMessage, "nothing sealed on this connection yet");
  }
  const auto frame = control::parseFrame(body);
  if (!frame.complete()) return failure(control::Status::BadRequest, "not one whole frame");
  if (frame.value.type == static_cast<std::uint8_t>(control::MessageType::Welcome)) {
    // In clear: the gateway could not read the handshake (another key), or it is of another
    // version. The key mismatch is said with both fingerprints.
    control::Welcome w;
    if (control::decodeWelcome(frame.value.body, w) && w.status == control::Status::KeyMismatch &&
        w.publicKey) {
      crypto::Key theirs;
      std::copy(w.publicKey->begin(), w.publicKey->end(), theirs.begin());
      return failure(control::Status::KeyMismatch,
                     "the gateway's key is not the one pinned: pinned " +
                         crypto::fingerprint(c.key) + " (" + c.keyFrom +
                         "), the gateway presents " + crypto::fingerprint(theirs));
    }
    c.handshake.reset();
    return result(0, body);
  }
  if (frame.value.type != static_cast<std::uint8_t>(control::MessageType::Handshake)) {
    return failure(control::Status::BadRequest, "the gateway's answer is not a Handshake");
  }
  const auto payload = c.handshake->read(frame.value.body);
  if (!payload) {
    return failure(control::Status::BadRequest,
                   "the gateway's answer to the handshake did not authenticate");
  }
  const crypto::Transport transport = c.handshake->split();
  c.handshake.reset();
  // The Welcome may carry a ticket: later connections to this gateway resume with it.
  const auto welcome = control::parseFrame(*payload);
  control::Welcome w;
  if (welcome.complete() &&
      welcome.value.type == static_cast<std::uint8_t>(control::MessageType::Welcome) &&
      control::decodeWelcome(welcome.value.body, w) && w.status == control::Status::Ok &&
      w.ticket.size() == crypto::kTicketSize && w.ticketLifetime > 600) {
    Ticket& t = tickets_[c.ticketId];
    t.bytes.assign(w.ticket.begin(), w.ticket.end());
    t.resumption = transport.resumption;
    t.goodUntil = std::chrono::steady_clock::now() + std::chrono::seconds(w.ticketLifetime - 300);
    t.counter = 0;
  }
  c.stream.emplace(transport);
  return result(0, *payload);
}

}  // namespace fwgate::client
