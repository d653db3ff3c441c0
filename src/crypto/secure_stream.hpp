// The encrypted channel's record layer, sans-I/O: after the Noise handshake, each direction is a
// sequence of records, a big-endian u16 length (16..65535) and that many bytes of
// ChaCha20-Poly1305 ciphertext with its tag. The plaintext inside is the control protocol's own
// byte stream (its frames, which may be larger than one record or share one), so the control
// codec above it does not change.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "crypto/noise.hpp"

namespace fwgate::crypto {

inline constexpr std::size_t kRecordHeader = 2;

class SecureStream {
 public:
  explicit SecureStream(Transport transport) : t_(std::move(transport)) {}

  // Appends `plaintext` to `wire` as records (one per kMaxPlaintext bytes; an empty plaintext
  // writes nothing). False when this direction's nonces are used up.
  bool seal(std::span<const std::uint8_t> plaintext, Bytes& wire);

  // Opens the complete records at the front of `wire`, appending their plaintext; a record cut
  // short waits for more bytes. `bad`: a length below one tag, or a record that does not
  // authenticate (forged, replayed, reordered, or for another session): the channel is over.
  struct Opened {
    std::size_t consumed = 0;
    bool bad = false;
  };
  Opened open(std::span<const std::uint8_t> wire, Bytes& plaintext);

  const Key& handshakeHash() const { return t_.handshakeHash; }

 private:
  Transport t_;
  bool broken_ = false;
};

}  // namespace fwgate::crypto
