// Noise_IK_25519_ChaChaPoly_SHA256 (the Noise Protocol Framework, revision 34), sans-I/O, on
// libsodium: the handshake of the encrypted control channel (docs/control-protocol.md, "The
// encrypted channel"). The initiator knows the responder's static key before it starts (the
// gateway's key, pinned by the firewall client) and sends its own static key (the host's)
// encrypted in the first message, with a first payload: one round trip, and the client's first
// request travels in it.
//
// No Noise C library is packaged in Debian; the pattern needs X25519, ChaCha20-Poly1305, SHA-256
// and HMAC-SHA-256, all of which libsodium has. What is written here is the Noise state machine
// (about two hundred lines), tested against python3-dissononce, an independent implementation.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fwgate::crypto {

inline constexpr std::size_t kKeyBytes = 32;
inline constexpr std::size_t kTagBytes = 16;
inline constexpr std::size_t kMaxMessage = 65535;  // a Noise message, handshake or transport
inline constexpr std::size_t kMaxPlaintext = kMaxMessage - kTagBytes;

using Key = std::array<std::uint8_t, kKeyBytes>;
using Bytes = std::vector<std::uint8_t>;

// An X25519 key pair. The secret is wiped when the pair goes.
struct KeyPair {
  Key publicKey{};
  Key secretKey{};
  static KeyPair generate();
  static KeyPair fromSecret(const Key& secret);  // the public key derived
  KeyPair() = default;
  KeyPair(const KeyPair&) = default;
  KeyPair& operator=(const KeyPair&) = default;
  ~KeyPair();
};

// HMAC-SHA-256 of the parts, in order, under `key`: Noise's HKDF and the resumption keys.
Key hmacSha256(const Key& key, std::initializer_list<std::span<const std::uint8_t>> parts);

// "SHA256:" and the unpadded base64 of the key's SHA-256, as OpenSSH prints host keys: what a
// person compares.
std::string fingerprint(const Key& publicKey);
// The key as standard base64 (44 characters), as a configuration or pin file holds it.
std::string toBase64(const Key& key);
std::optional<Key> keyFromBase64(std::string_view text);

// One direction of a finished handshake: ChaCha20-Poly1305 with a counter nonce.
class CipherState {
 public:
  CipherState() = default;
  explicit CipherState(const Key& key) : key_(key), hasKey_(true) {}
  CipherState(const CipherState&) = default;
  CipherState& operator=(const CipherState&) = default;
  ~CipherState();

  bool hasKey() const { return hasKey_; }
  std::uint64_t nonce() const { return nonce_; }
  // Appends ciphertext and tag (plaintext.size() + 16 bytes) to `out`; plaintext at most
  // kMaxPlaintext bytes. False only when the nonce is exhausted (2^64 - 1 messages).
  bool encrypt(std::span<const std::uint8_t> ad, std::span<const std::uint8_t> plaintext,
               Bytes& out);
  // Appends the plaintext to `out`; false (out unchanged, the nonce not advanced) when the
  // message does not authenticate.
  bool decrypt(std::span<const std::uint8_t> ad, std::span<const std::uint8_t> ciphertext,
               Bytes& out);

 private:
  Key key_{};
  bool hasKey_ = false;
  std::uint64_t nonce_ = 0;
};

// The two directions, after the handshake; the handshake hash identifies the session (a channel
// binding: both sides have the same 32 bytes, no one else can).
struct Transport {
  CipherState send;
  CipherState receive;
  Key handshakeHash{};
  // A secret both sides derive from the finished handshake, for resuming later connections
  // without one (crypto/resumption.hpp).
  Key resumption{};
};

// IK: "<- s ... -> e, es, s, ss ... <- e, ee, se". The initiator writes message 1 and reads
// message 2; the responder reads 1 and writes 2. Any failure (a message that does not
// authenticate, a low-order point, a call out of turn) leaves the handshake failed for good.
class HandshakeIK {
 public:
  static HandshakeIK initiator(const KeyPair& local, const Key& remoteStatic,
                               std::span<const std::uint8_t> prologue);
  static HandshakeIK responder(const KeyPair& local, std::span<const std::uint8_t> prologue);
  // The ephemeral key instead of a random one: a client that binds a Kerberos token to it picks it
  // first; tests compare with another implementation.
  void useEphemeral(const KeyPair& e) {
    ephemeral_ = e;
    fixedEphemeral_ = true;
  }

  // The next message, carrying `payload` (at most kMaxMessage minus the message's keys and tags);
  // nullopt, and the handshake failed for good, when it is not this side's turn, the payload is
  // too large or a key is a low-order point.
  std::optional<Bytes> write(std::span<const std::uint8_t> payload);
  // The payload of the peer's message; nullopt, and the handshake failed for good, when it does
  // not authenticate, is malformed or comes out of turn.
  std::optional<Bytes> read(std::span<const std::uint8_t> message);

  bool complete() const { return step_ == Step::Done; }
  bool failed() const { return step_ == Step::Failed; }
  // The initiator's static key, as the responder learnt it from message 1 (the responder's, for
  // the initiator, is the one it started with).
  const Key& remoteStatic() const { return remoteStatic_; }
  // The remote ephemeral key: what a replay cache remembers.
  const Key& remoteEphemeral() const { return remoteEphemeral_; }
  // Once complete: the transport ciphers of this side.
  Transport split() const;

  // The size of message 1 and 2 around their payloads.
  static constexpr std::size_t kMessage1Overhead = kKeyBytes + (kKeyBytes + kTagBytes) + kTagBytes;
  static constexpr std::size_t kMessage2Overhead = kKeyBytes + kTagBytes;

 private:
  enum class Step : std::uint8_t { WriteFirst, ReadFirst, WriteSecond, ReadSecond, Done, Failed };
  HandshakeIK() = default;
  void mixHash(std::span<const std::uint8_t> data);
  bool mixKeyDh(const Key& secret, const Key& publicKey);
  void encryptAndHash(std::span<const std::uint8_t> plaintext, Bytes& out);
  bool decryptAndHash(std::span<const std::uint8_t> ciphertext, Bytes& out);
  std::optional<Bytes> fail();

  Step step_ = Step::Failed;
  bool initiator_ = false;
  KeyPair local_;
  KeyPair ephemeral_;
  bool fixedEphemeral_ = false;
  Key remoteStatic_{};
  Key remoteEphemeral_{};
  Key chainingKey_{};
  Key hash_{};
  CipherState cipher_;
};

}  // namespace fwgate::crypto
