#include "crypto/secure_stream.hpp"

#include <algorithm>

namespace fwgate::crypto {

bool SecureStream::seal(std::span<const std::uint8_t> plaintext, Bytes& wire) {
  while (!plaintext.empty()) {
    const std::size_t n = std::min(plaintext.size(), kMaxPlaintext);
    const std::size_t at = wire.size();
    const std::size_t length = n + kTagBytes;
    wire.push_back(static_cast<std::uint8_t>(length >> 8));
    wire.push_back(static_cast<std::uint8_t>(length));
    if (!t_.send.encrypt({}, plaintext.first(n), wire)) {
      wire.resize(at);
      return false;
    }
    plaintext = plaintext.subspan(n);
  }
  return true;
}

SecureStream::Opened SecureStream::open(std::span<const std::uint8_t> wire, Bytes& plaintext) {
  Opened o;
  if (broken_) {
    o.bad = true;
    return o;
  }
  for (;;) {
    const auto rest = wire.subspan(o.consumed);
    if (rest.size() < kRecordHeader) return o;
    const std::size_t length = (std::size_t{rest[0]} << 8) | rest[1];
    if (length < kTagBytes) {
      broken_ = o.bad = true;
      return o;
    }
    if (rest.size() < kRecordHeader + length) return o;
    if (!t_.receive.decrypt({}, rest.subspan(kRecordHeader, length), plaintext)) {
      broken_ = o.bad = true;
      return o;
    }
    o.consumed += kRecordHeader + length;
  }
}

}  // namespace fwgate::crypto
