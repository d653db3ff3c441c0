#include "crypto/noise.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace fwgate::crypto {

namespace {

constexpr std::string_view kProtocolName = "Noise_IK_25519_ChaChaPoly_SHA256";
static_assert(kProtocolName.size() == 32, "the name is the initial hash, unpadded");

void ensureSodium() {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
}

// Noise's HKDF with two outputs.
std::pair<Key, Key> hkdf2(const Key& chainingKey, std::span<const std::uint8_t> input) {
  Key temp = hmacSha256(chainingKey, {input});
  const std::uint8_t one = 1;
  const std::uint8_t two = 2;
  Key first = hmacSha256(temp, {std::span(&one, 1)});
  Key second = hmacSha256(temp, {std::span<const std::uint8_t>(first), std::span(&two, 1)});
  sodium_memzero(temp.data(), temp.size());
  return {first, second};
}

// ChaChaPoly's nonce: 32 zero bits, then the counter little-endian.
std::array<std::uint8_t, crypto_aead_chacha20poly1305_ietf_NPUBBYTES> nonceBytes(std::uint64_t n) {
  std::array<std::uint8_t, crypto_aead_chacha20poly1305_ietf_NPUBBYTES> out{};
  for (int i = 0; i < 8; ++i) out[4 + i] = static_cast<std::uint8_t>(n >> (8 * i));
  return out;
}

}  // namespace

Key hmacSha256(const Key& key, std::initializer_list<std::span<const std::uint8_t>> parts) {
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, key.data(), key.size());
  for (const auto& p : parts) crypto_auth_hmacsha256_update(&state, p.data(), p.size());
  Key out;
  crypto_auth_hmacsha256_final(&state, out.data());
  sodium_memzero(&state, sizeof state);
  return out;
}

// --- keys ----------------------------------------------------------------------------------------

KeyPair KeyPair::generate() {
  ensureSodium();
  Key secret;
  randombytes_buf(secret.data(), secret.size());
  KeyPair k = fromSecret(secret);
  sodium_memzero(secret.data(), secret.size());
  return k;
}

KeyPair KeyPair::fromSecret(const Key& secret) {
  ensureSodium();
  KeyPair k;
  k.secretKey = secret;
  crypto_scalarmult_curve25519_base(k.publicKey.data(), k.secretKey.data());
  return k;
}

KeyPair::~KeyPair() {
  sodium_memzero(secretKey.data(), secretKey.size());
}

std::string toBase64(const Key& key) {
  char out[sodium_base64_ENCODED_LEN(kKeyBytes, sodium_base64_VARIANT_ORIGINAL)];
  sodium_bin2base64(out, sizeof out, key.data(), key.size(), sodium_base64_VARIANT_ORIGINAL);
  return out;
}

std::optional<Key> keyFromBase64(std::string_view text) {
  ensureSodium();
  Key key;
  std::size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(key.data(), key.size(), text.data(), text.size(), nullptr, &len, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      len != key.size() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return key;
}

std::string fingerprint(const Key& publicKey) {
  std::uint8_t digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, publicKey.data(), publicKey.size());
  char out[sodium_base64_ENCODED_LEN(sizeof digest, sodium_base64_VARIANT_ORIGINAL_NO_PADDING)];
  sodium_bin2base64(out, sizeof out, digest, sizeof digest,
                    sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
  return std::string("SHA256:") + out;
}

// --- CipherState ---------------------------------------------------------------------------------

CipherState::~CipherState() {
  sodium_memzero(key_.data(), key_.size());
}

bool CipherState::encrypt(std::span<const std::uint8_t> ad, std::span<const std::uint8_t> plaintext,
                          Bytes& out) {
  if (nonce_ == UINT64_MAX || plaintext.size() > kMaxPlaintext) return false;
  const auto n = nonceBytes(nonce_);
  const std::size_t at = out.size();
  out.resize(at + plaintext.size() + kTagBytes);
  unsigned long long written = 0;
  crypto_aead_chacha20poly1305_ietf_encrypt(out.data() + at, &written, plaintext.data(),
                                            plaintext.size(), ad.data(), ad.size(), nullptr,
                                            n.data(), key_.data());
  out.resize(at + written);
  ++nonce_;
  return true;
}

bool CipherState::decrypt(std::span<const std::uint8_t> ad,
                          std::span<const std::uint8_t> ciphertext, Bytes& out) {
  if (nonce_ == UINT64_MAX || ciphertext.size() < kTagBytes) return false;
  const auto n = nonceBytes(nonce_);
  const std::size_t at = out.size();
  out.resize(at + ciphertext.size() - kTagBytes);
  unsigned long long written = 0;
  if (crypto_aead_chacha20poly1305_ietf_decrypt(out.data() + at, &written, nullptr,
                                                ciphertext.data(), ciphertext.size(), ad.data(),
                                                ad.size(), n.data(), key_.data()) != 0) {
    out.resize(at);
    return false;
  }
  out.resize(at + written);
  ++nonce_;
  return true;
}

// --- HandshakeIK ---------------------------------------------------------------------------------

HandshakeIK HandshakeIK::initiator(const KeyPair& local, const Key& remoteStatic,
                                   std::span<const std::uint8_t> prologue) {
  ensureSodium();
  HandshakeIK h;
  h.initiator_ = true;
  h.local_ = local;
  h.remoteStatic_ = remoteStatic;
  std::copy(kProtocolName.begin(), kProtocolName.end(), h.hash_.begin());
  h.chainingKey_ = h.hash_;
  h.mixHash(prologue);
  h.mixHash(remoteStatic);  // "<- s"
  h.step_ = Step::WriteFirst;
  return h;
}

HandshakeIK HandshakeIK::responder(const KeyPair& local, std::span<const std::uint8_t> prologue) {
  ensureSodium();
  HandshakeIK h;
  h.initiator_ = false;
  h.local_ = local;
  std::copy(kProtocolName.begin(), kProtocolName.end(), h.hash_.begin());
  h.chainingKey_ = h.hash_;
  h.mixHash(prologue);
  h.mixHash(local.publicKey);  // "<- s"
  h.step_ = Step::ReadFirst;
  return h;
}

void HandshakeIK::mixHash(std::span<const std::uint8_t> data) {
  crypto_hash_sha256_state state;
  crypto_hash_sha256_init(&state);
  crypto_hash_sha256_update(&state, hash_.data(), hash_.size());
  crypto_hash_sha256_update(&state, data.data(), data.size());
  crypto_hash_sha256_final(&state, hash_.data());
}

bool HandshakeIK::mixKeyDh(const Key& secret, const Key& publicKey) {
  Key shared;
  // -1: the peer's key is a low-order point and the result all zeros: never a valid peer.
  if (crypto_scalarmult_curve25519(shared.data(), secret.data(), publicKey.data()) != 0) {
    return false;
  }
  auto [ck, k] = hkdf2(chainingKey_, shared);
  sodium_memzero(shared.data(), shared.size());
  chainingKey_ = ck;
  cipher_ = CipherState(k);
  sodium_memzero(k.data(), k.size());
  return true;
}

void HandshakeIK::encryptAndHash(std::span<const std::uint8_t> plaintext, Bytes& out) {
  const std::size_t at = out.size();
  cipher_.encrypt(hash_, plaintext, out);  // a handshake never reaches the nonce limit
  mixHash(std::span(out).subspan(at));
}

bool HandshakeIK::decryptAndHash(std::span<const std::uint8_t> ciphertext, Bytes& out) {
  if (!cipher_.decrypt(hash_, ciphertext, out)) return false;
  mixHash(ciphertext);
  return true;
}

std::optional<Bytes> HandshakeIK::fail() {
  step_ = Step::Failed;
  sodium_memzero(chainingKey_.data(), chainingKey_.size());
  cipher_ = CipherState();
  return std::nullopt;
}

std::optional<Bytes> HandshakeIK::write(std::span<const std::uint8_t> payload) {
  if (step_ != Step::WriteFirst && step_ != Step::WriteSecond) return fail();
  const std::size_t overhead = step_ == Step::WriteFirst ? kMessage1Overhead : kMessage2Overhead;
  if (payload.size() > kMaxMessage - overhead) return fail();
  if (!fixedEphemeral_) ephemeral_ = KeyPair::generate();
  Bytes out;
  out.reserve(overhead + payload.size());
  // "e"
  out.insert(out.end(), ephemeral_.publicKey.begin(), ephemeral_.publicKey.end());
  mixHash(ephemeral_.publicKey);
  if (step_ == Step::WriteFirst) {
    // "es", "s", "ss"
    if (!mixKeyDh(ephemeral_.secretKey, remoteStatic_)) return fail();
    encryptAndHash(local_.publicKey, out);
    if (!mixKeyDh(local_.secretKey, remoteStatic_)) return fail();
    encryptAndHash(payload, out);
    step_ = Step::ReadSecond;
  } else {
    // "ee", "se" (the initiator's static, this side's ephemeral)
    if (!mixKeyDh(ephemeral_.secretKey, remoteEphemeral_)) return fail();
    if (!mixKeyDh(ephemeral_.secretKey, remoteStatic_)) return fail();
    encryptAndHash(payload, out);
    step_ = Step::Done;
  }
  return out;
}

std::optional<Bytes> HandshakeIK::read(std::span<const std::uint8_t> message) {
  if (step_ != Step::ReadFirst && step_ != Step::ReadSecond) return fail();
  const std::size_t overhead = step_ == Step::ReadFirst ? kMessage1Overhead : kMessage2Overhead;
  if (message.size() < overhead || message.size() > kMaxMessage) return fail();
  std::copy_n(message.begin(), kKeyBytes, remoteEphemeral_.begin());
  mixHash(remoteEphemeral_);
  std::size_t at = kKeyBytes;
  Bytes payload;
  if (step_ == Step::ReadFirst) {
    // "es" (this side's static, the initiator's ephemeral), "s", "ss"
    if (!mixKeyDh(local_.secretKey, remoteEphemeral_)) return fail();
    Bytes rs;
    if (!decryptAndHash(message.subspan(at, kKeyBytes + kTagBytes), rs)) return fail();
    std::copy(rs.begin(), rs.end(), remoteStatic_.begin());
    at += kKeyBytes + kTagBytes;
    if (!mixKeyDh(local_.secretKey, remoteStatic_)) return fail();
    if (!decryptAndHash(message.subspan(at), payload)) return fail();
    step_ = Step::WriteSecond;
  } else {
    // "ee", "se" (this side's static, the responder's ephemeral)
    if (!mixKeyDh(ephemeral_.secretKey, remoteEphemeral_)) return fail();
    if (!mixKeyDh(local_.secretKey, remoteEphemeral_)) return fail();
    if (!decryptAndHash(message.subspan(at), payload)) return fail();
    step_ = Step::Done;
  }
  return payload;
}

Transport HandshakeIK::split() const {
  Transport t;
  if (step_ != Step::Done) return t;
  auto [first, second] = hkdf2(chainingKey_, {});
  // The first key encrypts what the initiator sends.
  t.send = CipherState(initiator_ ? first : second);
  t.receive = CipherState(initiator_ ? second : first);
  t.handshakeHash = hash_;
  static constexpr std::string_view kLabel = "fwgate resumption";
  t.resumption =
      hmacSha256(chainingKey_,
                 {std::span(reinterpret_cast<const std::uint8_t*>(kLabel.data()), kLabel.size())});
  sodium_memzero(first.data(), first.size());
  sodium_memzero(second.data(), second.size());
  return t;
}

}  // namespace fwgate::crypto
