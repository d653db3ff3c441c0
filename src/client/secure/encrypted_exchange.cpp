#include "client/secure/encrypted_exchange.hpp"

#include "client/secure/kerberos_proof.hpp"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "crypto/secure_stream.hpp"

namespace fwgate::client {

namespace control = protocol::control;

namespace {

protocol::Bytes prologue() {
  return {reinterpret_cast<const std::uint8_t*>(control::kNoisePrologue.data()),
          control::kNoisePrologue.size()};
}

std::uint64_t nowMs() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

// A connection that closes itself.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

bool fail(EncryptedReply& out, int error, std::string detail) {
  out.error = error;
  out.detail = std::move(detail);
  return false;
}

// A Welcome in clear where the handshake's answer was expected: the key changed (or another
// gateway answers in its place), or a gateway of another version that knows no Handshake.
void clearWelcome(const control::Welcome& w, EncryptedReply& out) {
  if (w.status == control::Status::KeyMismatch && w.publicKey) {
    crypto::Key theirs;
    std::copy(w.publicKey->begin(), w.publicKey->end(), theirs.begin());
    out.error = EACCES;
    out.detail = "the gateway's key is not the one pinned: pinned " + crypto::fingerprint(out.key) +
                 " (" + out.keyFrom + "), the gateway presents " + crypto::fingerprint(theirs) +
                 ". If its administrator replaced the key, remove the old pin (" + out.keyFrom +
                 ") and run fwgate detect; if not, something between this host and the gateway "
                 "answers in its place";
  }
}

}  // namespace

bool gatewayKey(const ClientConfig& config, const GatewayEndpoints& gateway, int timeoutMs,
                std::vector<std::uint8_t>& buffer, EncryptedReply& out) {
  if (config.gatewayKey[0] != '\0') {
    const auto key = crypto::keyFromBase64(config.gatewayKey.data());
    if (!key) {
      return fail(out, EINVAL,
                  std::string("the pinned gateway key (") + config.gatewayKeyFrom +
                      ") is not a key: 44 characters of base64");
    }
    out.key = *key;
    out.keyFrom = config.gatewayKeyFrom;
    return true;
  }
  // No pin: ask, and trust what comes (the fingerprint is shown; fwgate detect pins it).
  const std::int64_t deadline = monotonicMs() + timeoutMs;
  Fd c{openControl(gateway, timeoutMs)};
  if (c.fd < 0) return fail(out, errno, {});
  std::uint8_t request[control::kHeaderSize];
  const std::size_t n = control::FrameWriter(request, control::MessageType::KeyRequest).finish();
  if (!sendAll(c.fd, request, n, timeoutMs)) return fail(out, errno, {});
  const long size = readOneFrame(c.fd, buffer.data(), buffer.size(), deadline);
  if (size < 0) return fail(out, errno, {});
  const auto frame = control::parseFrame({buffer.data(), static_cast<std::size_t>(size)});
  control::KeyOffer offer;
  if (frame.value.type == static_cast<std::uint8_t>(control::MessageType::KeyOffer) &&
      control::decodeKeyOffer(frame.value.body, offer)) {
    std::copy(offer.publicKey.begin(), offer.publicKey.end(), out.key.begin());
    out.keyFrom = "trust on first use";
    return true;
  }
  // A gateway of another version answers the request it does not know with a Welcome that
  // names its version: that is the answer (fwgate check says DOES NOT MATCH).
  if (frame.value.type == static_cast<std::uint8_t>(control::MessageType::Welcome) &&
      control::decodeWelcome(frame.value.body, out.reply.welcome)) {
    return false;
  }
  return fail(out, EPROTO, "the gateway's answer to KeyRequest is not a KeyOffer");
}

EncryptedReply encryptedExchange(const ClientConfig& config, const GatewayEndpoints& gateway,
                                 const Identity& identity, protocol::Bytes request,
                                 std::vector<std::uint8_t>& buffer, int timeoutMs) {
  EncryptedReply out;
  const std::int64_t deadline = monotonicMs() + timeoutMs;
  if (!gatewayKey(config, gateway, timeoutMs, buffer, out)) return out;

  // The client's own static key: one per exchange (the host's enrolled key will take its place).
  // The ephemeral key is chosen first: it names the channel a Kerberos token is bound to.
  const crypto::KeyPair mine = crypto::KeyPair::generate();
  const crypto::KeyPair ephemeral = crypto::KeyPair::generate();
  auto handshake = crypto::HandshakeIK::initiator(mine, out.key, prologue());
  handshake.useEphemeral(ephemeral);
  KerberosProof kerberos(config.kerberos, config.kerberosService.data());
  std::string kerberosError;
  const gss::Token token = kerberos.tokenFor(identity.server, ephemeral.publicKey,
                                             identity.password[0] != '\0', kerberosError);
  out.kerberosService = kerberos.lastService();
  out.kerberosNote = kerberos.note();
  out.kerberosSent = !token.empty();
  if (!kerberosError.empty()) {
    fail(out, EKEYREJECTED, kerberosError);
    return out;
  }

  // Message 1: Hello (stamped) and the request.
  std::vector<std::uint8_t> clear(2048 + token.size() + request.size());
  const std::size_t helloSize = encodeHelloFor(identity, clear, nowMs(), token);
  if (helloSize == 0 || helloSize + request.size() > clear.size()) {
    fail(out, EMSGSIZE, "the Hello and its request do not fit one handshake message");
    return out;
  }
  std::copy(request.begin(), request.end(), clear.begin() + static_cast<std::ptrdiff_t>(helloSize));
  const auto message = handshake.write({clear.data(), helloSize + request.size()});
  if (!message) {
    fail(out, EPROTO, "the gateway key is not a usable X25519 key");
    return out;
  }
  std::vector<std::uint8_t> first(control::kHeaderSize + message->size());
  const std::size_t firstSize = control::encodeHandshake(first, *message);

  Fd c{openControl(gateway, timeoutMs)};
  if (c.fd < 0) {
    fail(out, errno, {});
    return out;
  }
  if (firstSize == 0 || !sendAll(c.fd, first.data(), firstSize, timeoutMs)) {
    fail(out, errno, {});
    return out;
  }

  // Message 2 (the Welcome), or a Welcome in clear.
  const long size = readOneFrame(c.fd, buffer.data(), buffer.size(), deadline);
  if (size < 0) {
    fail(out, errno, {});
    return out;
  }
  const auto frame = control::parseFrame({buffer.data(), static_cast<std::size_t>(size)});
  if (frame.value.type == static_cast<std::uint8_t>(control::MessageType::Welcome)) {
    if (!control::decodeWelcome(frame.value.body, out.reply.welcome)) {
      fail(out, EPROTO, "a malformed Welcome");
    } else {
      clearWelcome(out.reply.welcome, out);
    }
    return out;
  }
  const auto payload =
      frame.value.type == static_cast<std::uint8_t>(control::MessageType::Handshake)
          ? handshake.read(frame.value.body)
          : std::nullopt;
  if (!payload) {
    fail(out, EPROTO, "the gateway's answer to the handshake did not authenticate");
    return out;
  }
  out.encrypted = true;
  crypto::SecureStream stream(handshake.split());
  // The Welcome, in clear, at the front of the buffer; then the reply frame behind it.
  std::size_t used = 0;
  const auto place = [&](protocol::Bytes bytes) {
    if (used + bytes.size() > buffer.size()) return false;
    std::copy(bytes.begin(), bytes.end(), buffer.begin() + static_cast<std::ptrdiff_t>(used));
    return true;
  };
  const auto welcome = control::parseFrame(*payload);
  if (!welcome.complete() ||
      welcome.value.type != static_cast<std::uint8_t>(control::MessageType::Welcome) ||
      !place(*payload)) {
    fail(out, EPROTO, "the handshake's answer carries no Welcome");
    return out;
  }
  used = welcome.consumed;
  control::decodeWelcome({buffer.data() + control::kHeaderSize, used - control::kHeaderSize},
                         out.reply.welcome);
  if (out.reply.welcome.status != control::Status::Ok) return out;

  // The reply: records until one whole frame is in.
  crypto::Bytes plain;
  std::vector<std::uint8_t> record(crypto::kRecordHeader + crypto::kMaxMessage);
  for (;;) {
    const auto parsed = control::parseFrame(plain);
    if (parsed.complete()) break;
    if (parsed.invalid()) {
      fail(out, EPROTO, "a reply frame too large");
      return out;
    }
    const long n = readOneRecord(c.fd, record.data(), record.size(), deadline);
    if (n < 0) {
      fail(out, errno, {});
      return out;
    }
    const auto opened = stream.open({record.data(), static_cast<std::size_t>(n)}, plain);
    if (opened.bad) {
      fail(out, EPROTO, "a record of the encrypted channel did not authenticate");
      return out;
    }
  }
  const auto reply = control::parseFrame(plain);
  const auto frameBytes = protocol::Bytes(plain).first(reply.consumed);
  if (!place(frameBytes)) {
    fail(out, EMSGSIZE, "the reply does not fit");
    return out;
  }
  out.reply.type = reply.value.type;
  out.reply.body = {buffer.data() + used + control::kHeaderSize, reply.value.body.size()};
  return out;
}

}  // namespace fwgate::client
