#include "gateway/control_session.hpp"

#include <netdb.h>
#include <sodium.h>
#include <unistd.h>

#include <fmt/format.h>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/write.hpp>
#include <cstring>

#include "config/pac.hpp"
#include "config/web_proxy_offer.hpp"
#include "crypto/noise.hpp"
#include "crypto/resumption.hpp"
#include "gateway/net.hpp"
#include "gateway/outbound.hpp"
#include "gateway/relay.hpp"
#include "gateway/reply_code.hpp"
#include "protocol/address.hpp"

namespace fwgate::gateway {

using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;
namespace control = protocol::control;

namespace {

// Client frames are small (a Hello, a name, an endpoint); anything larger is refused.
constexpr std::size_t kMaxRequest = 16 * 1024;

// How long a resumption ticket is good for.
constexpr std::chrono::hours kTicketLifetime{12};

protocol::Bytes prologue() {
  return {reinterpret_cast<const std::uint8_t*>(control::kNoisePrologue.data()),
          control::kNoisePrologue.size()};
}

control::IpAddress toControl(const policy::IpAddress& a) {
  control::IpAddress out;
  out.family = a.v6 ? 6 : 4;
  out.bytes = a.bytes;
  return out;
}

std::string hostName() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "fwgate";
  return name;
}

control::Status statusFor(const std::error_code& ec) {
  if (ec == asio::error::timed_out) return control::Status::TimedOut;
  if (ec.category() == asio::error::get_addrinfo_category()) {
    return ec.value() == EAI_AGAIN ? control::Status::NameTemporaryFailure
                                   : control::Status::NameNotFound;
  }
  if (ec == asio::error::host_not_found) return control::Status::NameNotFound;
  if (ec.category() == std::system_category() || ec.category() == std::generic_category() ||
      ec.category() == asio::error::get_system_category()) {
    return control::statusForErrno(ec.value());
  }
  return control::Status::GeneralFailure;
}

// A refused Hello's outcome.
policy::Outcome helloOutcome(control::Status status) {
  if (status == control::Status::NotFirewallClient) return policy::Outcome::NotFirewallClient;
  if (status == control::Status::AuthenticationFailed) return policy::Outcome::AuthFailed;
  return policy::Outcome::BadRequest;  // not Hello, malformed, another protocol version
}

}  // namespace

ControlSession::ControlSession(Runtime& runtime, tcp::socket client, tcp::endpoint peer)
    : runtime_(runtime),
      snapshot_(runtime.snapshot()),
      client_(std::move(client)),
      clientEndpoint_(peer),
      deadline_(client_.get_executor()),
      in_(kMaxRequest),
      writer_(runtime.sessionLog(), record_) {}

asio::awaitable<void> ControlSession::run() {
  std::error_code ec;
  record_.client = endpointString(unmapped(clientEndpoint_.address()), clientEndpoint_.port());
  record_.protocol = "fwc";
  record_.command = "hello";
  deadline_.expires_after(snapshot_->config->limits.handshakeTimeout);
  if (co_await hello()) {
    record_.result = "ok";
    // A control connection that only asks (GetConfig, Resolve) was served; a request that ends
    // it (Connect, Bind, UdpAssociate) decides its own outcome.
    record_.outcome = policy::Outcome::Succeeded;
    for (;;) {
      deadline_.expires_after(snapshot_->config->limits.handshakeTimeout);
      control::Frame frame;
      if (!co_await readFrame(frame)) break;
      if (frame.type == static_cast<std::uint8_t>(control::MessageType::GetConfig)) {
        consumeFrame();
        record_.command = "config";
        if (!co_await sendConfig()) break;
      } else if (frame.type == static_cast<std::uint8_t>(control::MessageType::Resolve)) {
        record_.command = "resolve";
        const bool ok = co_await resolveName(frame.body);
        consumeFrame();
        if (!ok) break;
      } else if (frame.type == static_cast<std::uint8_t>(control::MessageType::Connect)) {
        record_.command = "connect";
        co_await connect(frame.body);
        break;
      } else if (frame.type == static_cast<std::uint8_t>(control::MessageType::UdpAssociate)) {
        record_.command = "udp";
        co_await udpAssociate(frame.body);
        break;
      } else if (frame.type == static_cast<std::uint8_t>(control::MessageType::Bind)) {
        record_.command = "listen";
        co_await bindAndListen(frame.body);
        break;
      } else {
        record_.result = "bad-request";
        record_.outcome = policy::Outcome::BadRequest;
        record_.error = fmt::format("unexpected message type {}", frame.type);
        const std::size_t n = control::encodeWelcome(
            out_, {control::Status::UnexpectedMessage, control::kVersion, {}, {}});
        co_await send(out_.data(), n);
        break;
      }
    }
  }
  client_.close(ec);
  writer_.ended();
}

asio::awaitable<bool> ControlSession::readFrame(control::Frame& frame) {
  for (;;) {
    const auto parsed = control::parseFrame({in_.data(), inLength_});
    if (parsed.complete()) {
      frame = parsed.value;
      frameSize_ = parsed.consumed;
      co_return true;
    }
    if (parsed.invalid() || inLength_ == in_.size()) {
      record_.result = "bad-request";
      record_.outcome = policy::Outcome::BadRequest;
      record_.error = "control frame too large";
      co_return false;
    }
    // In clear the bytes go straight to in_; on the encrypted channel into wire_, then through
    // the records.
    std::uint8_t* into = in_.data() + inLength_;
    std::size_t room = in_.size() - inLength_;
    const std::size_t wireAt = wire_.size();
    if (secure_) {
      wire_.resize(wireAt + crypto::kMaxMessage + crypto::kRecordHeader);
      into = wire_.data() + wireAt;
      room = wire_.size() - wireAt;
    }
    auto outcome = co_await (client_.async_read_some(asio::buffer(into, room), kNoThrow) ||
                             deadline_.async_wait(kNoThrow));
    if (secure_) {
      const std::size_t got = outcome.index() == 0 ? std::get<1>(std::get<0>(outcome)) : 0;
      wire_.resize(wireAt + got);
    }
    if (outcome.index() == 1) {
      if (record_.result != "ok") {
        record_.result = "handshake-timeout";
        record_.outcome = policy::Outcome::HandshakeTimeout;
      }
      co_return false;
    }
    auto [ec, n] = std::get<0>(outcome);
    if (ec) {
      // A clean close between requests is how a control connection ends.
      if (ec != asio::error::eof || inLength_ != 0) {
        if (record_.result != "ok") {
          record_.result = "closed-in-handshake";
          record_.outcome = policy::Outcome::ClientClosed;
        }
        if (ec != asio::error::eof) record_.error = ec.message();
      }
      co_return false;
    }
    if (!secure_) {
      inLength_ += n;
      continue;
    }
    crypto::Bytes plain;
    const auto opened = secure_->open(wire_, plain);
    wire_.erase(wire_.begin(), wire_.begin() + static_cast<std::ptrdiff_t>(opened.consumed));
    if (opened.bad || plain.size() > in_.size() - inLength_) {
      record_.result = "bad-request";
      record_.outcome = policy::Outcome::BadRequest;
      record_.error = opened.bad ? "a record of the encrypted channel did not authenticate"
                                 : "control frame too large";
      co_return false;
    }
    std::copy(plain.begin(), plain.end(), in_.begin() + static_cast<std::ptrdiff_t>(inLength_));
    inLength_ += plain.size();
  }
}

void ControlSession::consumeFrame() {
  std::memmove(in_.data(), in_.data() + frameSize_, inLength_ - frameSize_);
  inLength_ -= frameSize_;
  frameSize_ = 0;
}

asio::awaitable<bool> ControlSession::send(const std::uint8_t* data, std::size_t n) {
  if (n == 0) {
    record_.error = "reply did not fit its frame";
    co_return false;
  }
  if (handshake_) {
    // Message 2 carries this frame (the Welcome); from here on, records.
    const auto message = handshake_->write({data, n});
    std::vector<std::uint8_t> frame(control::kHeaderSize + (message ? message->size() : 0));
    const std::size_t size = message ? control::encodeHandshake(frame, *message) : 0;
    if (size == 0) {
      record_.error = "the handshake's reply could not be written";
      co_return false;
    }
    secure_.emplace(handshake_->split());
    handshake_.reset();
    const bool sent = co_await writeRaw(frame.data(), size);
    co_return sent;
  }
  if (resumeReplyDue_ && secure_) {
    // The Welcome of a resumed connection: its first record, in a Resume frame.
    resumeReplyDue_ = false;
    crypto::Bytes sealed;
    if (!secure_->seal({data, n}, sealed)) co_return false;
    std::vector<std::uint8_t> frame(control::kHeaderSize + sealed.size());
    const std::size_t size = control::encodeHandshake(frame, sealed);
    frame[0] = static_cast<std::uint8_t>(control::MessageType::Resume);
    const bool sent = co_await writeRaw(frame.data(), size);
    co_return sent;
  }
  if (secure_) {
    crypto::Bytes sealed;
    if (!secure_->seal({data, n}, sealed)) {
      record_.error = "the encrypted channel's nonces are used up";
      co_return false;
    }
    const bool sent = co_await writeRaw(sealed.data(), sealed.size());
    co_return sent;
  }
  const bool sent = co_await writeRaw(data, n);
  co_return sent;
}

asio::awaitable<bool> ControlSession::writeRaw(const std::uint8_t* data, std::size_t n) {
  auto [ec, written] = co_await asio::async_write(client_, asio::buffer(data, n), kNoThrow);
  if (ec) {
    record_.error = "write to client: " + ec.message();
    co_return false;
  }
  co_return true;
}

const policy::Network* ControlSession::clientNetwork() const {
  return config::clientNetwork(*snapshot_->config, toPolicy(unmapped(clientEndpoint_.address())));
}

asio::awaitable<void> ControlSession::offerKey() {
  consumeFrame();
  record_.command = "key";
  const std::string serverName = hostName();
  control::KeyOffer offer;
  offer.version = control::kVersion;
  offer.publicKey = runtime_.controlKey().publicKey;
  offer.serverName = serverName;
  if (co_await send(out_.data(), control::encodeKeyOffer(out_, offer))) {
    record_.result = "ok";
    record_.outcome = policy::Outcome::Succeeded;
  }
}

std::optional<std::string> ControlSession::enrolledHost(const crypto::Key& key) const {
  for (const auto& h : snapshot_->config->control.hosts) {
    if (h.key == key) return h.name;
  }
  return std::nullopt;
}

std::string ControlSession::clockProblem(std::uint64_t timestamp) const {
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  const auto skew =
      std::chrono::duration_cast<std::chrono::milliseconds>(snapshot_->config->control.maxClockSkew)
          .count();
  if (timestamp == 0) return "the Hello of a handshake carries no Timestamp";
  const auto off = static_cast<std::int64_t>(timestamp) - now;
  if (off > skew || off < -skew) {
    return fmt::format(
        "the client's clock is {} s {} the gateway's (control.max_clock_skew is {} s): a "
        "replayed handshake, or a clock to set right",
        std::abs(off) / 1000, off > 0 ? "ahead of" : "behind", skew / 1000);
  }
  return {};
}

asio::awaitable<void> ControlSession::refuseChannel(control::Welcome welcome, std::string result,
                                                    std::string why) {
  welcome.message = why;
  record_.result = std::move(result);
  record_.outcome = policy::Outcome::BadRequest;
  record_.error = why;
  co_await send(out_.data(), control::encodeWelcome(out_, welcome));
}

std::string ControlSession::takeFirstFrames(protocol::Bytes plain, std::string_view what,
                                            control::Status& status) {
  status = control::Status::BadRequest;
  if (plain.size() > in_.size()) return fmt::format("{} is too large", what);
  std::copy(plain.begin(), plain.end(), in_.begin());
  inLength_ = plain.size();
  const auto first = control::parseFrame({in_.data(), inLength_});
  if (!first.complete() ||
      first.value.type != static_cast<std::uint8_t>(control::MessageType::Hello)) {
    return fmt::format("{} carries no Hello", what);
  }
  status = control::Status::Ok;
  return {};
}

std::string ControlSession::replayProblem(const crypto::Key& seen, std::string_view what) {
  const auto verdict = runtime_.replayCache().check(
      seen, 2 * snapshot_->config->control.maxClockSkew, crypto::ReplayCache::Clock::now());
  if (verdict == crypto::ReplayCache::Verdict::Fresh) return {};
  return verdict == crypto::ReplayCache::Verdict::Replayed
             ? fmt::format("this {} was seen before: a replay", what)
             : std::string(
                   "too many handshakes within control.max_clock_skew to remember; try again");
}

asio::awaitable<bool> ControlSession::acceptHandshake(protocol::Bytes message) {
  const crypto::KeyPair& key = runtime_.controlKey();
  auto responder = crypto::HandshakeIK::responder(key, prologue());
  const auto payload = responder.read(message);
  consumeFrame();
  const std::string serverName = hostName();
  control::Welcome welcome{control::Status::Ok, control::kVersion, serverName, {}};
  if (!payload) {
    // Not for this key (a client that pinned another gateway, or a man in the middle's
    // handshake), or not a handshake at all. Answered in clear, with this gateway's key, so
    // that the client can name both fingerprints.
    std::string why =
        fmt::format("the handshake is not for this gateway's key {}: the client pinned another key",
                    crypto::fingerprint(key.publicKey));
    std::string result = "key-mismatch";
    welcome.status = control::Status::KeyMismatch;
    welcome.publicKey = key.publicKey;
    co_await refuseChannel(welcome, std::move(result), std::move(why));
    co_return false;
  }
  handshake_ = responder;  // the next send() is message 2
  channelId_ = responder.remoteEphemeral();
  host_ = enrolledHost(responder.remoteStatic());
  record_.program = SessionRecord::Program{};
  record_.program->encrypted = true;
  std::string why = replayProblem(responder.remoteEphemeral(), "handshake");
  if (!why.empty()) {
    welcome.status = control::Status::Replayed;
  } else {
    why = takeFirstFrames(*payload, "the handshake's first message", welcome.status);
  }
  if (!why.empty()) {
    std::string result(control::statusText(welcome.status));
    co_await refuseChannel(welcome, std::move(result), std::move(why));
    co_return false;
  }
  // A ticket for the client's later connections. Its secret comes from the finished handshake,
  // which a copy finishes now with the ephemeral key the real one will use (the payload of
  // message 2 does not change it).
  handshake_->useEphemeral(crypto::KeyPair::generate());
  auto probe = *handshake_;
  if (probe.write({})) {
    const auto expires = std::chrono::system_clock::now() + kTicketLifetime;
    ticket_ = crypto::issueTicket(
        runtime_.ticketKey(),
        {probe.split().resumption, responder.remoteStatic(),
         static_cast<std::uint64_t>(
             std::chrono::duration_cast<std::chrono::milliseconds>(expires.time_since_epoch())
                 .count())});
  }
  co_return true;
}

asio::awaitable<bool> ControlSession::acceptResume(protocol::Bytes body) {
  const std::string serverName = hostName();
  control::Welcome welcome{control::Status::Ok, control::kVersion, serverName, {}};
  const auto ticket = body.first(std::min(body.size(), crypto::kTicketSize));
  const auto contents = crypto::openTicket(runtime_.ticketKey(), ticket);
  const auto nowMs =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  consumeFrame();
  if (body.size() < crypto::kTicketSize + 8 + crypto::kRecordHeader || !contents ||
      contents->expiresMs < nowMs) {
    // Refused before any key: in clear, so that the client drops the ticket.
    std::string why = contents ? "the ticket expired: the client should do a full handshake"
                               : "the ticket is not this gateway's: the client should do a full "
                                 "handshake";
    std::string result = "ticket-refused";
    welcome.status = control::Status::TicketRefused;
    co_await refuseChannel(welcome, std::move(result), std::move(why));
    co_return false;
  }
  std::uint64_t counter = 0;
  for (std::size_t i = 0; i < 8; ++i) counter = (counter << 8) | body[crypto::kTicketSize + i];
  // One counter per connection: a copy of this one is a replay. The cache remembers a digest of
  // ticket and counter as long as a handshake's ephemeral key.
  const crypto::Key seen = crypto::resumedConnectionId(ticket, counter);
  channelId_ = seen;
  secure_.emplace(crypto::resumedTransport(contents->resumption, ticket, counter, false));
  host_ = enrolledHost(contents->clientStatic);
  record_.program = SessionRecord::Program{};
  record_.program->encrypted = true;
  resumeReplyDue_ = true;
  crypto::Bytes plain;
  const auto opened = secure_->open(body.subspan(crypto::kTicketSize + 8), plain);
  std::string why;
  if (opened.bad || plain.empty()) {
    why = "the resumed connection's first record does not open";
    welcome.status = control::Status::BadRequest;
  } else if (why = replayProblem(seen, "resumed connection"); !why.empty()) {
    welcome.status = control::Status::Replayed;
  } else {
    why = takeFirstFrames(plain, "the resumed connection's first record", welcome.status);
  }
  if (!why.empty()) {
    std::string result(control::statusText(welcome.status));
    co_await refuseChannel(welcome, std::move(result), std::move(why));
    co_return false;
  }
  co_return true;
}

asio::awaitable<bool> ControlSession::hello() {
  out_.resize(4096);
  control::Frame frame;
  if (!co_await readFrame(frame)) co_return false;
  if (frame.type == static_cast<std::uint8_t>(control::MessageType::KeyRequest)) {
    co_await offerKey();
    co_return false;
  }
  if (frame.type == static_cast<std::uint8_t>(control::MessageType::Handshake)) {
    if (!co_await acceptHandshake(frame.body)) co_return false;
    if (!co_await readFrame(frame)) co_return false;  // the Hello, inside message 1
  } else if (frame.type == static_cast<std::uint8_t>(control::MessageType::Resume)) {
    if (!co_await acceptResume(frame.body)) co_return false;
    if (!co_await readFrame(frame)) co_return false;  // the Hello, inside the first record
  }
  const bool encrypted = secure_.has_value() || handshake_.has_value();
  control::Welcome welcome{control::Status::Ok, control::kVersion, {}, {}};
  const std::string serverName = hostName();
  welcome.serverName = serverName;
  std::string message;
  bool throttled = false;
  control::Hello hello;
  if (frame.type != static_cast<std::uint8_t>(control::MessageType::Hello)) {
    welcome.status = control::Status::UnexpectedMessage;
    message = "the first message must be Hello";
  } else if (!control::decodeHello(frame.body, hello)) {
    welcome.status = control::Status::BadRequest;
    message = "malformed Hello";
  } else {
    record_.program =
        SessionRecord::Program{std::string(hello.host), std::string(hello.application),
                               std::string(hello.osUser), encrypted};
    pid_ = hello.pid;
    std::string clock;
    if (hello.version != control::kVersion) {
      welcome.status = control::Status::VersionMismatch;
      message = fmt::format("client control protocol version {}, gateway version {}", hello.version,
                            control::kVersion);
    } else if (!encrypted && snapshot_->config->control.encryptionRequired) {
      welcome.status = control::Status::EncryptionRequired;
      message =
          "this gateway takes firewall clients on the encrypted channel only (control.encryption "
          "= \"required\"): a client of version 3 that speaks it, or fwgate agent for the "
          "library";
    } else if (encrypted && !(clock = clockProblem(hello.timestamp)).empty()) {
      welcome.status = control::Status::Replayed;
      message = clock;
    } else if (clientNetwork() == nullptr) {
      welcome.status = control::Status::NotFirewallClient;
      message = fmt::format("{} is in no network with firewall_clients = true",
                            unmapped(clientEndpoint_.address()).to_string());
    } else {
      // Who: a password checked, or (from an enrolled host, whose root agent says from the
      // kernel who the caller is) the local account, or nobody.
      const std::string osUser(hello.osUser);
      const bool vouched = host_.has_value() && !osUser.empty();
      record_.auth = "none";
      if (!hello.gssToken.empty()) {
        // Kerberos: the user's ticket, bound to this channel (a token copied into another
        // channel does not verify), whatever the Hello's User says.
        record_.auth = "kerberos";
        if (!encrypted) {
          welcome.status = control::Status::EncryptionRequired;
          message = "a Kerberos token is taken on the encrypted channel only";
        } else if (!snapshot_->kerberos) {
          welcome.status = control::Status::AuthenticationFailed;
          message = "this gateway has no Kerberos keys ([kerberos] keytab)";
        } else {
          auto context = std::make_shared<gss::Context>(gss::Context::accepting(
              snapshot_->kerberos, gss::Token(channelId_.begin(), channelId_.end())));
          gss::Token token(hello.gssToken.begin(), hello.gssToken.end());
          const auto source = clientEndpoint_.address();
          KerberosStep step = co_await runtime_.kerberosStep(source, context, std::move(token));
          if (step.login.accepted() && step.step.done()) {
            user_ = step.user;
            record_.user = step.user;
          } else {
            welcome.status = control::Status::AuthenticationFailed;
            message = step.login.accepted() ? std::string("Kerberos: the token needs more steps")
                                            : step.login.why;
            throttled = step.login.throttled();
          }
        }
      } else if (!hello.user.empty() && (!hello.password.empty() || !vouched)) {
        std::string user(hello.user);
        std::string password(hello.password);
        record_.user = user;
        record_.auth = "password";
        const auto source = clientEndpoint_.address();
        const Login login =
            co_await runtime_.verifyPassword(snapshot_->users, source, user, std::move(password));
        if (login.accepted()) {
          user_ = user;
        } else {
          welcome.status = control::Status::AuthenticationFailed;
          message = login.throttled() ? login.why : "bad user name or password";
          throttled = login.throttled();
        }
      } else if (vouched && (hello.user.empty() || hello.user == osUser)) {
        user_ = osUser;
        record_.user = osUser;
        record_.auth = "host";
      } else if (vouched) {
        // Another account's name without its password: the host says who this is.
        record_.user = osUser;
        record_.auth = "host";
        welcome.status = control::Status::AuthenticationFailed;
        message = fmt::format("{} on {} may not speak as {} without {}'s password", osUser, *host_,
                              hello.user, hello.user);
      }
    }
  }
  consumeFrame();
  welcome.message = message;
  if (welcome.status == control::Status::Ok && !ticket_.empty()) {
    welcome.ticket = ticket_;
    welcome.ticketLifetime = static_cast<std::uint32_t>(
        std::chrono::duration_cast<std::chrono::seconds>(kTicketLifetime).count());
  }
  if (welcome.status != control::Status::Ok) {
    record_.result = std::string(control::statusText(welcome.status));
    record_.outcome = throttled ? policy::Outcome::AuthThrottled : helloOutcome(welcome.status);
    record_.error = message;
  }
  const std::size_t n = control::encodeWelcome(out_, welcome);
  const bool sent = co_await send(out_.data(), n);
  co_return sent&& welcome.status == control::Status::Ok;
}

asio::awaitable<bool> ControlSession::sendConfig() {
  const auto& config = *snapshot_->config;
  const policy::Network* network = clientNetwork();
  // The Web Proxy as this client reaches this gateway: the address its control connection reached.
  std::error_code ec;
  const auto reached = client_.local_endpoint(ec);
  config::WebProxyOffer offer;
  if (!ec) {
    offer = config::webProxyOffer(config, runtime_.webProxyListeners(),
                                  toPolicy(unmapped(reached.address())));
  }
  std::size_t size = 1024 + config.firewallClient.settingsIni.size() + offer.proxy.size() +
                     offer.pacUrl.size() + network->name.size();
  size += network->ranges.size() * 40;
  for (const auto& d : network->domains) size += d.size() + 3;
  out_.resize(size);
  control::FrameWriter w(out_, control::MessageType::Config);
  const std::string serverName = hostName();
  w.u8(control::Tag::Status, 0)
      .u16(control::Tag::Version, control::kVersion)
      .text(control::Tag::ServerName, serverName)
      .text(control::Tag::Network, network->name);
  for (const auto& range : network->ranges) {
    w.range(control::Tag::Range, {toControl(range.first), toControl(range.last)});
  }
  for (const auto& domain : network->domains) w.text(control::Tag::DomainSuffix, domain);
  const auto refresh =
      std::chrono::duration_cast<std::chrono::seconds>(config.firewallClient.refreshInterval);
  w.textIfAny(control::Tag::Settings, config.firewallClient.settingsIni)
      .u32(control::Tag::RefreshSeconds, static_cast<std::uint32_t>(refresh.count()))
      .textIfAny(control::Tag::WebProxy, offer.proxy)
      .textIfAny(control::Tag::PacUrl, offer.pacUrl);
  const std::size_t n = w.finish();
  const bool sent = co_await send(out_.data(), n);
  co_return sent;
}

asio::awaitable<bool> ControlSession::resolveName(protocol::Bytes body) {
  control::Resolve request;
  control::Resolved answer;
  std::string name;
  if (!control::decodeResolve(body, request)) {
    answer.status = control::Status::BadRequest;
  } else if (name = std::string(request.name); !protocol::isValidHostName(name)) {
    answer.status = control::Status::NameNotFound;
  } else {
    record_.requested = name;
    std::error_code ec;
    std::string host = name;
    const int family = request.family;
    const auto addresses = co_await resolveHost(runtime_, std::move(host), family,
                                                snapshot_->config->limits.connectTimeout, ec);
    if (ec) {
      answer.status = statusFor(ec);
      record_.error = "resolve " + name + ": " + errorText(ec);
      record_.outcome = policy::Outcome::DestinationFailed;
    } else {
      answer.status = control::Status::Ok;
      std::string resolved;
      for (const auto& a : addresses) {
        if (answer.count == answer.addresses.size()) break;
        answer.addresses[answer.count++] = toControl(unmapped(a));
        resolved += (resolved.empty() ? "" : " ") + unmapped(a).to_string();
      }
      record_.resolved = resolved;
      runtime_.rememberResolution(unmapped(clientEndpoint_.address()), name, addresses);
    }
  }
  out_.resize(4096);
  const std::size_t n = control::encodeResolved(out_, answer);
  const bool sent = co_await send(out_.data(), n);
  co_return sent;
}

asio::awaitable<bool> ControlSession::sendConnected(Status status, const char* message,
                                                    const tcp::socket* server) {
  control::Connected reply;
  reply.status = status;
  reply.definition = record_.definition;
  reply.message = message;
  std::error_code ec;
  const auto local = server != nullptr ? server->local_endpoint(ec) : tcp::endpoint{};
  if (server != nullptr && !ec) {
    reply.bound = {toControl(unmapped(local.address())), local.port()};
    record_.bound = endpointString(unmapped(local.address()), local.port());
  }
  out_.resize(512);
  const std::size_t n = control::encodeConnected(out_, reply);
  if (status != Status::Ok) {
    record_.result = std::string(control::statusText(status));
    if (record_.error.empty()) record_.error = message;
  }
  const bool sent = co_await send(out_.data(), n);
  co_return sent;
}

asio::awaitable<void> ControlSession::connect(protocol::Bytes body) {
  control::Connect request;
  if (!control::decodeConnect(body, request)) {
    consumeFrame();
    record_.error = "malformed Connect";
    record_.outcome = policy::Outcome::BadRequest;
    co_await sendConnected(Status::BadRequest, "malformed Connect");
    co_return;
  }
  const auto address = fromControl(request.destination.address);
  const std::uint16_t port = request.destination.port;
  const std::string hint(request.nameHint);
  consumeFrame();
  // The name is used for rules and the log only if this gateway resolved it to this address for
  // this client: a claimed name must not open what a domain rule keeps closed.
  const std::string name =
      runtime_.resolvedName(unmapped(clientEndpoint_.address()), address, hint);
  record_.requested =
      name.empty() ? endpointString(address, port) : fmt::format("{}:{}", name, port);
  if (port == 0) {
    record_.outcome = policy::Outcome::BadRequest;
    co_await sendConnected(Status::BadRequest, "port 0");
    co_return;
  }
  const auto primaries = livePrimaries();
  const auto decision = policy::decideRemoted(
      *snapshot_->engine, clientRequest(policy::Command::Connect, address, port, name),
      primaries.live, firewallPolicy());
  record_.rule = decision.rule;
  record_.definition = decision.loggedDefinition();
  if (!decision.allowed) {
    record_.error = decision.reason == policy::Reason::NoDefinition
                        ? fmt::format("no protocol definition covers tcp outbound port {}", port)
                        : "denied by " + decision.rule;
    record_.outcome = policy::Outcome::Denied;
    record_.deny(decision.denial({policy::Transport::Tcp, policy::Direction::Outbound, port}));
    co_await sendConnected(Status::Denied, record_.error.c_str());
    co_return;
  }
  const std::vector<asio::ip::address> addresses{address};
  tcp::socket server(client_.get_executor());
  asio::ip::address connectedTo;
  const auto error = co_await connectAny(server, addresses, port,
                                         snapshot_->config->limits.connectTimeout, connectedTo);
  if (error) {
    record_.error = "connect " + endpointString(address, port) + ": " + error.message();
    record_.outcome = policy::Outcome::DestinationFailed;
    const Status status = statusFor(error);
    co_await sendConnected(status, record_.error.c_str());
    co_return;
  }
  record_.resolved = endpointString(connectedTo, port);
  record_.result = "succeeded";
  if (!co_await sendConnected(Status::Ok, "", &server)) {
    record_.outcome = policy::Outcome::ClientClosed;
    co_return;
  }
  record_.outcome = policy::Outcome::Succeeded;

  // From here the connection is the application's byte stream, in clear on the encrypted channel
  // too. Bytes it sent behind its Connect (none, with fwgate's client) go first: inside the
  // records, then after them.
  std::vector<std::uint8_t> pending(in_.begin(), in_.begin() + inLength_);
  pending.insert(pending.end(), wire_.begin(), wire_.end());
  wire_ = {};
  secure_.reset();
  inLength_ = 0;
  in_ = {};
  out_ = {};
  if (!pending.empty()) {
    auto [ec, n] = co_await asio::async_write(server, asio::buffer(pending), kNoThrow);
    record_.bytesUp += n;
    if (ec) {
      record_.error = "write to destination: " + ec.message();
      co_return;
    }
  }
  runtime_.addConnect(unmapped(clientEndpoint_.address()), connectedTo);
  const auto primary = runtime_.addPrimary(program(), connectedTo, port,
                                           decision.definitionAsPrimary(), record_.rule);
  const auto result =
      co_await relay(client_, server, runtime_.relayPaths(), snapshot_->config->limits.idleTimeout);
  runtime_.removePrimary(primary);
  runtime_.removeConnect(unmapped(clientEndpoint_.address()), connectedTo);
  record_.addRelay(result.bytesUp, result.bytesDown, result.idleTimeout, result.error);
}

ProgramKey ControlSession::program() const {
  return ProgramKey{unmapped(clientEndpoint_.address()), pid_, user_,
                    record_.programOrEmpty().application};
}

ControlSession::Primaries ControlSession::livePrimaries() const {
  Primaries out;
  for (auto& primary : runtime_.primariesOf(program())) {
    if (!primary->alive) continue;
    out.live.push_back(policy::LivePrimary{toPolicy(unmapped(primary->destination)),
                                           primary->definition, primary->rule});
    out.connections.push_back(std::move(primary));
  }
  return out;
}

policy::FirewallClientPolicy ControlSession::firewallPolicy() const {
  const auto& config = *snapshot_->config;
  return {config.firewallClient.requireDefinition,
          config.bind.secondaryPeers == config::BindSettings::SecondaryPeers::Primary};
}

policy::Request ControlSession::clientRequest(
    policy::Command command, const std::optional<asio::ip::address>& destination,
    std::uint16_t port, const std::string& name,
    const std::optional<policy::ConnectionFacts>& connection) const {
  return policyRequest(runtime_, Requester{unmapped(clientEndpoint_.address()), user_}, command,
                       destination, port, name, connection);
}

}  // namespace fwgate::gateway
