#include "gateway/socks_session.hpp"

#include <netdb.h>

#include <fmt/format.h>
#include <algorithm>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/ip/udp.hpp>
#include <asio/write.hpp>

#include "gateway/net.hpp"
#include "gateway/offload.hpp"
#include "gateway/outbound.hpp"
#include "gateway/relay.hpp"
#include "gateway/reply_code.hpp"
#include "protocol/socks4.hpp"

namespace fwgate::gateway {

using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;
namespace socks5 = protocol::socks5;
namespace socks4 = protocol::socks4;

SocksSession::SocksSession(Runtime& runtime, tcp::socket client, tcp::endpoint peer,
                           const config::Listener& listener)
    : runtime_(runtime),
      snapshot_(runtime.snapshot()),
      client_(std::move(client)),
      listener_(listener),
      clientEndpoint_(peer),
      deadline_(std::make_unique<asio::steady_timer>(client_.get_executor())),
      writer_(runtime.sessionLog(), record_) {}

asio::awaitable<void> SocksSession::run() {
  std::error_code ec;
  record_.client = endpointString(clientEndpoint_.address(), clientEndpoint_.port());
  deadline_->expires_after(snapshot_->config->limits.handshakeTimeout);

  const auto request = co_await timedHandshake();
  endHandshake();
  if (request && request->command == policy::Command::Connect) {
    auto server = co_await connect(request->destination);
    if (server) {
      const auto host = unmapped(server->remote_endpoint(ec).address());
      runtime_.addConnect(clientEndpoint_.address(), host);
      if (co_await sendReply(Reply::Succeeded, server->local_endpoint(ec))) {
        record_.outcome = policy::Outcome::Succeeded;
        deadline_.reset();  // the relay keeps its own idle timer
        const auto result = co_await relay(client_, *server, runtime_.relayPaths(),
                                           snapshot_->config->limits.idleTimeout, pending_);
        record_.addRelay(result.bytesUp, result.bytesDown, result.idleTimeout, result.error);
      }
      runtime_.removeConnect(clientEndpoint_.address(), host);
    }
  } else if (request && request->command == policy::Command::Bind) {
    co_await bind(request->destination);
  } else if (request && request->command == policy::Command::Udp) {
    co_await udpAssociate(request->destination);
  }
  client_.close(ec);
  writer_.ended();
}

asio::ip::address SocksSession::localAddress() const {
  std::error_code ec;
  return unmapped(client_.local_endpoint(ec).address());
}

asio::awaitable<std::optional<SocksSession::Request>> SocksSession::timedHandshake() {
  // One race against the handshake deadline for the whole handshake (greeting, authentication,
  // request), not one per read: each `||` costs two coroutines.
  auto outcome = co_await (handshake() || deadline_->async_wait(kNoThrow));
  std::optional<Request> request;
  if (outcome.index() == 0) {
    request = std::move(std::get<0>(outcome));
  } else {
    record_.result = "handshake-timeout";
    record_.outcome = policy::Outcome::HandshakeTimeout;
    record_.error.clear();  // the cancelled read's "Operation canceled"
  }
  co_return request;
}

asio::awaitable<std::optional<SocksSession::Request>> SocksSession::handshake() {
  // GCC 12 miscompiles `co_return co_await` and co_return inside switch: plain ifs, named result.
  std::optional<Request> request;
  if (!co_await readMore()) co_return request;
  // One listener serves every dialect: the first byte tells them apart.
  const std::uint8_t version = in()[0];
  if (version == socks5::kVersion) {
    request = co_await socks5Handshake();
  } else if (version == socks4::kVersion) {
    request = co_await socks4Handshake();
  } else {
    record_.result = "bad-version";
    record_.outcome = policy::Outcome::BadRequest;
    record_.error = "first byte " + std::to_string(version) + " is not SOCKS 4 or 5";
  }
  co_return request;
}

void SocksSession::endHandshake() {
  if (!in_) return;
  pending_.assign(in(), in() + inLength_);
  inLength_ = 0;
  in_.reset();
}

asio::awaitable<bool> SocksSession::readMore() {
  if (inLength_ == in_->size()) {
    record_.result = "bad-request";
    record_.outcome = policy::Outcome::BadRequest;
    record_.error = "handshake message too large";
    co_return false;
  }
  // run() races the whole handshake against its deadline.
  auto [ec, n] = co_await client_.async_read_some(
      asio::buffer(in() + inLength_, in_->size() - inLength_), kNoThrow);
  if (ec) {
    record_.result = "closed-in-handshake";
    record_.outcome = policy::Outcome::ClientClosed;
    if (ec != asio::error::eof) record_.error = ec.message();
    co_return false;
  }
  inLength_ += n;
  co_return true;
}

void SocksSession::consume(std::size_t n) {
  std::memmove(in(), in() + n, inLength_ - n);
  inLength_ -= n;
}

asio::awaitable<bool> SocksSession::write(const std::uint8_t* data, std::size_t n) {
  auto [ec, written] = co_await asio::async_write(client_, asio::buffer(data, n), kNoThrow);
  if (ec) {
    record_.error = "write to client: " + ec.message();
    co_return false;
  }
  co_return true;
}

// --- SOCKS 5 --------------------------------------------------------------------------------

asio::awaitable<std::optional<SocksSession::Request>> SocksSession::socks5Handshake() {
  dialect_ = Dialect::Socks5;
  record_.protocol = "socks5";

  auto greeting = socks5::parseGreeting({in(), inLength_});
  while (greeting.needMore()) {
    if (!co_await readMore()) co_return std::nullopt;
    greeting = socks5::parseGreeting({in(), inLength_});
  }
  if (greeting.invalid()) {
    record_.result = "bad-greeting";
    record_.outcome = policy::Outcome::BadRequest;
    co_return std::nullopt;
  }
  consume(greeting.consumed);

  // The listener's methods in its order of preference; a password-only listener never takes 0x00.
  auto chosen = socks5::Method::NoAcceptable;
  for (auto m : listener_.methods) {
    if (m == config::AuthMethod::None && greeting.value.offers(socks5::Method::NoAuthentication)) {
      chosen = socks5::Method::NoAuthentication;
      break;
    }
    if (m == config::AuthMethod::Password &&
        greeting.value.offers(socks5::Method::UsernamePassword)) {
      chosen = socks5::Method::UsernamePassword;
      break;
    }
    if (m == config::AuthMethod::Kerberos && snapshot_->kerberos &&
        greeting.value.offers(socks5::Method::Gssapi)) {
      chosen = socks5::Method::Gssapi;
      break;
    }
  }
  const auto selection = socks5::encodeMethodSelection(chosen);
  if (!co_await write(selection.data(), selection.size())) co_return std::nullopt;
  if (chosen == socks5::Method::NoAcceptable) {
    record_.result = "no-acceptable-method";
    record_.outcome = policy::Outcome::BadRequest;
    co_return std::nullopt;
  }
  if (chosen == socks5::Method::UsernamePassword && !co_await authenticate())
    co_return std::nullopt;
  if (chosen == socks5::Method::Gssapi && !co_await authenticateKerberos()) co_return std::nullopt;

  auto request = socks5::parseRequest({in(), inLength_});
  while (request.needMore()) {
    if (!co_await readMore()) co_return std::nullopt;
    request = socks5::parseRequest({in(), inLength_});
  }
  if (request.invalid()) {
    record_.outcome = policy::Outcome::BadRequest;
    if (request.error == protocol::ParseError::BadAddressType) {
      record_.error = "address type " + std::to_string(in()[3]) + " not supported";
      co_await fail(Reply::AddressTypeNotSupported);
    } else {
      record_.result = "bad-request";
    }
    co_return std::nullopt;
  }
  consume(request.consumed);
  const auto& destination = request.value.destination;
  requestType_ = destination.type;
  record_.requested = destination.toString();

  std::optional<Request> result;
  const auto command = static_cast<socks5::Command>(request.value.command);
  if (command == socks5::Command::Connect) {
    result = Request{policy::Command::Connect, destination};
  } else if (command == socks5::Command::Bind) {
    result = Request{policy::Command::Bind, destination};
  } else if (command == socks5::Command::UdpAssociate) {
    result = Request{policy::Command::Udp, destination};
  }
  if (result) co_return result;
  record_.command = "unknown";
  record_.outcome = policy::Outcome::BadRequest;
  record_.error = "command " + std::to_string(request.value.command) + " not supported";
  co_await fail(Reply::CommandNotSupported);
  co_return std::nullopt;
}

asio::awaitable<bool> SocksSession::authenticate() {
  auto auth = socks5::parseUserPass({in(), inLength_});
  while (auth.needMore()) {
    if (!co_await readMore()) co_return false;
    auth = socks5::parseUserPass({in(), inLength_});
  }
  if (auth.invalid()) {
    const auto status = socks5::encodeUserPassStatus(false);
    co_await write(status.data(), status.size());
    record_.result = "bad-auth-request";
    record_.outcome = policy::Outcome::BadRequest;
    co_return false;
  }
  consume(auth.consumed);
  auto& [name, password] = auth.value;
  record_.user = name;
  record_.auth = "password";
  const auto source = clientEndpoint_.address();
  const Login login =
      co_await runtime_.verifyPassword(snapshot_->users, source, name, std::move(password));
  const auto status = socks5::encodeUserPassStatus(login.accepted());
  if (!co_await write(status.data(), status.size())) co_return false;
  if (!login.accepted()) {
    // RFC 1929: a failure status is followed by closing the connection.
    record_.result = login.throttled() ? "auth-throttled" : "auth-failed";
    record_.outcome =
        login.throttled() ? policy::Outcome::AuthThrottled : policy::Outcome::AuthFailed;
    record_.error = login.why;
    co_return false;
  }
  user_ = name;
  co_return true;
}

asio::awaitable<std::optional<socks5::GssMessage>> SocksSession::readGssMessage() {
  auto message = socks5::parseGssMessage({in(), inLength_});
  while (message.needMore()) {
    if (!co_await readMore()) co_return std::nullopt;
    message = socks5::parseGssMessage({in(), inLength_});
  }
  if (message.invalid()) {
    record_.result = "bad-auth-request";
    record_.outcome = policy::Outcome::BadRequest;
    record_.error = "malformed GSS-API message (RFC 1961)";
    const auto abort = socks5::encodeGssMessage({socks5::GssMessageType::Abort, {}});
    co_await write(abort.data(), abort.size());
    co_return std::nullopt;
  }
  consume(message.consumed);
  co_return std::move(message.value);
}

asio::awaitable<bool> SocksSession::writeGssMessage(socks5::GssMessageType type,
                                                    const std::vector<std::uint8_t>& token) {
  socks5::GssMessage message{type, token};
  const auto out = socks5::encodeGssMessage(message);
  const bool sent = co_await write(out.data(), out.size());
  co_return sent;
}

asio::awaitable<bool> SocksSession::authenticateKerberos() {
  using Type = socks5::GssMessageType;
  record_.auth = "kerberos";
  in_->resize(4 + 0xFFFF);
  auto context = std::make_shared<gss::Context>(gss::Context::accepting(snapshot_->kerberos));
  const auto source = clientEndpoint_.address();
  const std::vector<std::uint8_t> none;
  // Kerberos needs one token each way; SPNEGO and others a few more.
  constexpr int kMaxRounds = 8;
  for (int round = 0;; ++round) {
    auto message = co_await readGssMessage();
    if (!message) co_return false;
    if (message->type != Type::Authentication || round == kMaxRounds) {
      record_.result = "bad-auth-request";
      record_.outcome = policy::Outcome::BadRequest;
      record_.error = message->type == Type::Abort
                          ? std::string("the client aborted the GSS-API exchange")
                          : fmt::format("GSS-API message type {} during context establishment",
                                        static_cast<int>(message->type));
      if (message->type != Type::Abort) co_await writeGssMessage(Type::Abort, none);
      co_return false;
    }
    auto token = std::move(message->token);
    KerberosStep step = co_await runtime_.kerberosStep(source, context, std::move(token));
    if (!step.login.accepted()) {
      record_.result = step.login.throttled() ? "auth-throttled" : "auth-failed";
      record_.outcome =
          step.login.throttled() ? policy::Outcome::AuthThrottled : policy::Outcome::AuthFailed;
      record_.error = step.login.why;
      co_await writeGssMessage(Type::Abort, none);
      co_return false;
    }
    if (!step.step.token.empty() &&
        !co_await writeGssMessage(Type::Authentication, step.step.token)) {
      co_return false;
    }
    if (step.step.done()) {
      user_ = step.user;
      record_.user = step.user;
      break;
    }
  }
  // The protection level. This gateway offers none (0x00): the relay stays in clear, as with a
  // password (curl and Dante's clients take it; per-message encapsulation is not implemented).
  auto message = co_await readGssMessage();
  if (!message) co_return false;
  bool nec = false;
  bool ok = false;
  std::vector<std::uint8_t> level;
  if (message->type == Type::Protection) {
    level = context->unwrap(message->token, ok);
    // The NEC reference implementation's unwrapped octet (curl --socks5-gssapi-nec).
    if (!ok && message->token.size() == 1) {
      nec = true;
      ok = true;
      level = message->token;
    }
  }
  if (!ok || level.size() != 1) {
    record_.result = "bad-auth-request";
    record_.outcome = policy::Outcome::BadRequest;
    record_.error = "no valid GSS-API protection-level message (RFC 1961 section 4.3)";
    co_await writeGssMessage(Type::Abort, none);
    co_return false;
  }
  const std::vector<std::uint8_t> chosen{socks5::kGssProtectionNone};
  const auto answer = nec ? chosen : context->wrap(chosen);
  const bool sent = co_await writeGssMessage(Type::Protection, answer);
  co_return sent;
}

// --- SOCKS 4 / 4a ----------------------------------------------------------------------------

asio::awaitable<std::optional<SocksSession::Request>> SocksSession::socks4Handshake() {
  dialect_ = Dialect::Socks4;
  record_.protocol = "socks4";
  auto request = socks4::parseRequest({in(), inLength_});
  while (request.needMore()) {
    if (!co_await readMore()) co_return std::nullopt;
    request = socks4::parseRequest({in(), inLength_});
  }
  if (request.invalid()) {
    record_.error = "malformed SOCKS 4 request";
    record_.outcome = policy::Outcome::BadRequest;
    co_await fail(Reply::GeneralFailure);
    record_.result = "bad-request";
    co_return std::nullopt;
  }
  consume(request.consumed);
  if (request.value.isSocks4a) record_.protocol = "socks4a";
  const auto& destination = request.value.destination;
  requestType_ = protocol::AddressType::IPv4;
  record_.requested = destination.toString();

  // SOCKS 4 has no authentication: a listener that requires a password refuses it.
  if (std::find(listener_.methods.begin(), listener_.methods.end(), config::AuthMethod::None) ==
      listener_.methods.end()) {
    record_.error = "listener requires authentication; SOCKS 4 has none";
    record_.outcome = policy::Outcome::NotAllowed;
    co_await fail(Reply::NotAllowed);
    co_return std::nullopt;
  }
  std::optional<Request> result;
  const auto command = static_cast<socks4::Command>(request.value.command);
  if (command == socks4::Command::Connect) {
    result = Request{policy::Command::Connect, destination};
  } else if (command == socks4::Command::Bind) {
    result = Request{policy::Command::Bind, destination};
  }
  if (result) co_return result;
  record_.command = "unknown";
  record_.outcome = policy::Outcome::BadRequest;
  record_.error = "command " + std::to_string(request.value.command) + " not supported";
  co_await fail(Reply::CommandNotSupported);
  co_return std::nullopt;
}

// --- Replies --------------------------------------------------------------------------------

asio::awaitable<bool> SocksSession::sendReply(Reply reply, const protocol::Address& bound) {
  record_.result = replyName(reply);
  if (dialect_ == Dialect::Socks4) {
    const auto code = toSocks4Reply(reply);
    record_.reply = static_cast<int>(code);
    std::array<std::uint8_t, 4> ip{};
    if (bound.type == protocol::AddressType::IPv4) std::copy_n(bound.ip.begin(), 4, ip.begin());
    const auto bytes = socks4::encodeReply(code, ip, bound.port);
    const bool ok = co_await write(bytes.data(), bytes.size());
    co_return ok;
  }
  record_.reply = static_cast<int>(reply);
  const auto bytes = socks5::encodeReply(reply, bound);
  const bool ok = co_await write(bytes.data(), bytes.size());
  co_return ok;
}

asio::awaitable<bool> SocksSession::sendReply(Reply reply, const tcp::endpoint& bound) {
  const auto wire = toWire(bound);
  const bool ok = co_await sendReply(reply, wire);
  co_return ok;
}

asio::awaitable<void> SocksSession::fail(Reply reply) {
  // Error replies carry the address type of the request (a domain request gets IPv4 zeros).
  const auto zero = requestType_ == protocol::AddressType::IPv6
                        ? protocol::Address::ipv6({}, 0)
                        : protocol::Address::ipv4({0, 0, 0, 0}, 0);
  co_await sendReply(reply, zero);
}

// --- Resolution and policy --------------------------------------------------------------------

asio::awaitable<std::vector<asio::ip::address>> SocksSession::resolve(
    const protocol::Address& destination, std::error_code& ec) {
  asio::ip::address literal;
  if (wireToAsio(destination, literal)) co_return std::vector{literal};
  if (!protocol::isValidHostName(destination.domain)) {
    ec = asio::error::host_not_found;  // never hand odd bytes to the resolver or to policy
    co_return std::vector<asio::ip::address>{};
  }

  std::string host = destination.domain;
  auto addresses = co_await resolveHost(runtime_, std::move(host), 0,
                                        snapshot_->config->limits.connectTimeout, ec);
  co_return addresses;
}

policy::Decision SocksSession::decide(policy::Command command,
                                      const std::optional<asio::ip::address>& address,
                                      std::uint16_t port, const std::string& name) {
  return gateway::decide(runtime_, *snapshot_, Requester{clientEndpoint_.address(), user_}, command,
                         address, port, name);
}

// --- CONNECT --------------------------------------------------------------------------------

asio::awaitable<std::optional<tcp::socket>> SocksSession::connect(
    const protocol::Address& destination) {
  record_.command = "connect";
  std::error_code ec;
  const auto candidates = co_await resolve(destination, ec);
  if (ec) {
    record_.error = "resolve " + destination.host() + ": " + errorText(ec);
    record_.outcome = policy::Outcome::DestinationFailed;
    co_await fail(toSocks5Reply(ec));
    co_return std::nullopt;
  }
  const std::string name =
      destination.type == protocol::AddressType::Domain ? destination.domain : std::string{};
  const Allowed allowed =
      allowedAddresses(runtime_, *snapshot_, Requester{clientEndpoint_.address(), user_},
                       candidates, destination.port, name);
  record_.rule = allowed.rule;
  record_.definition = allowed.protocol;
  if (allowed.addresses.empty()) {
    record_.error = "denied by " + allowed.rule;
    record_.outcome = policy::Outcome::Denied;
    record_.deny({allowed.reason, policy::Transport::Tcp, policy::Direction::Outbound,
                  destination.port, allowed.protocol, allowed.rule});
    co_await fail(Reply::NotAllowed);
    co_return std::nullopt;
  }

  // Every allowed address in resolver order, all within one connect timeout.
  tcp::socket server(client_.get_executor());
  asio::ip::address connectedTo;
  const auto lastError = co_await connectAny(server, allowed.addresses, destination.port,
                                             snapshot_->config->limits.connectTimeout, connectedTo);
  if (!lastError) record_.resolved = endpointString(connectedTo, destination.port);
  if (!server.is_open()) {
    record_.error = "connect " + destination.toString() + ": " + lastError.message();
    record_.outcome = policy::Outcome::DestinationFailed;
    co_await fail(toSocks5Reply(lastError));
    co_return std::nullopt;
  }

  co_return std::move(server);
}

asio::awaitable<void> SocksSession::waitClientClose(bool keepData) {
  std::array<std::uint8_t, 256> sink;
  for (;;) {
    auto [ec] = co_await client_.async_wait(tcp::socket::wait_read, kNoThrow);
    if (ec) co_return;
    const auto n = ::recv(client_.native_handle(), sink.data(), sink.size(),
                          keepData ? MSG_PEEK | MSG_DONTWAIT : MSG_DONTWAIT);
    if (n == 0) co_return;  // EOF: the client is gone
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      co_return;
    }
    if (keepData) {
      // Data for the relay that follows: stop watching, wait until cancelled.
      asio::steady_timer forever(client_.get_executor(), std::chrono::hours(24 * 365));
      co_await forever.async_wait(kNoThrow);
      co_return;
    }
  }
}

}  // namespace fwgate::gateway
