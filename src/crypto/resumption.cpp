#include "crypto/resumption.hpp"

#include <sodium.h>

#include <cstring>
#include <string_view>

namespace fwgate::crypto {

namespace {

constexpr std::string_view kTicketAd = "fwgate ticket";

std::span<const std::uint8_t> bytesOf(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace

Key ticketKey(const KeyPair& gateway) {
  return hmacSha256(gateway.secretKey, {bytesOf("fwgate ticket key")});
}

Bytes issueTicket(const Key& key, const TicketContents& c) {
  std::uint8_t plain[kKeyBytes + kKeyBytes + 8];
  std::memcpy(plain, c.resumption.data(), kKeyBytes);
  std::memcpy(plain + kKeyBytes, c.clientStatic.data(), kKeyBytes);
  for (int i = 0; i < 8; ++i)
    plain[2 * kKeyBytes + i] = static_cast<std::uint8_t>(c.expiresMs >> (56 - 8 * i));
  Bytes ticket(kTicketSize);
  randombytes_buf(ticket.data(), kTicketNonce);
  unsigned long long written = 0;
  crypto_aead_chacha20poly1305_ietf_encrypt(ticket.data() + kTicketNonce, &written, plain,
                                            sizeof plain,
                                            reinterpret_cast<const std::uint8_t*>(kTicketAd.data()),
                                            kTicketAd.size(), nullptr, ticket.data(), key.data());
  sodium_memzero(plain, sizeof plain);
  return ticket;
}

std::optional<TicketContents> openTicket(const Key& key, std::span<const std::uint8_t> ticket) {
  if (ticket.size() != kTicketSize) return std::nullopt;
  std::uint8_t plain[kKeyBytes + kKeyBytes + 8];
  unsigned long long written = 0;
  if (crypto_aead_chacha20poly1305_ietf_decrypt(
          plain, &written, nullptr, ticket.data() + kTicketNonce, ticket.size() - kTicketNonce,
          reinterpret_cast<const std::uint8_t*>(kTicketAd.data()), kTicketAd.size(), ticket.data(),
          key.data()) != 0 ||
      written != sizeof plain) {
    return std::nullopt;
  }
  TicketContents c;
  std::memcpy(c.resumption.data(), plain, kKeyBytes);
  std::memcpy(c.clientStatic.data(), plain + kKeyBytes, kKeyBytes);
  for (int i = 0; i < 8; ++i) c.expiresMs = (c.expiresMs << 8) | plain[2 * kKeyBytes + i];
  sodium_memzero(plain, sizeof plain);
  return c;
}

Key resumedConnectionId(std::span<const std::uint8_t> ticket, std::uint64_t counter) {
  std::uint8_t be[8];
  for (int i = 0; i < 8; ++i) be[i] = static_cast<std::uint8_t>(counter >> (56 - 8 * i));
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, kKeyBytes);
  crypto_generichash_update(&state, ticket.data(), ticket.size());
  crypto_generichash_update(&state, be, sizeof be);
  Key out;
  crypto_generichash_final(&state, out.data(), out.size());
  return out;
}

Transport resumedTransport(const Key& resumption, std::span<const std::uint8_t> ticket,
                           std::uint64_t counter, bool initiator) {
  std::uint8_t n[8];
  for (int i = 0; i < 8; ++i) n[i] = static_cast<std::uint8_t>(counter >> (56 - 8 * i));
  Key base = hmacSha256(resumption, {ticket, std::span<const std::uint8_t>(n, 8)});
  const std::uint8_t one = 1, two = 2, three = 3;
  const Key up = hmacSha256(base, {std::span(&one, 1)});
  const Key down = hmacSha256(base, {std::span(&two, 1)});
  Transport t;
  t.send = CipherState(initiator ? up : down);
  t.receive = CipherState(initiator ? down : up);
  t.handshakeHash = hmacSha256(base, {std::span(&three, 1)});
  sodium_memzero(base.data(), base.size());
  return t;
}

}  // namespace fwgate::crypto
