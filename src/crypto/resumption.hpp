// Resuming the encrypted channel without a handshake (docs/control-protocol.md, "Resumed
// connections"): a full Noise IK costs both sides five X25519 operations, which a remoted
// connect of a program feels. After one, the gateway gives the client a ticket: the handshake's
// resumption secret, the client's static key and an expiry, sealed with a key only the gateway
// has (derived from its static key, so tickets outlive a restart). A later connection sends the
// ticket and a counter in clear and its first frames sealed with keys derived from the secret,
// the ticket and the counter: symmetric work only, the same round trips.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "crypto/noise.hpp"

namespace fwgate::crypto {

inline constexpr std::size_t kTicketNonce = 12;
inline constexpr std::size_t kTicketSize = kTicketNonce + kKeyBytes + kKeyBytes + 8 + kTagBytes;

struct TicketContents {
  Key resumption{};
  Key clientStatic{};
  std::uint64_t expiresMs = 0;  // since 1970
};

// The key tickets are sealed with: the gateway's, from its static secret.
Key ticketKey(const KeyPair& gateway);
Bytes issueTicket(const Key& ticketKey, const TicketContents& contents);
// nullopt: not sealed with this key (forged, or another gateway's), or malformed.
std::optional<TicketContents> openTicket(const Key& ticketKey,
                                         std::span<const std::uint8_t> ticket);

// The two directions of a connection resumed with `ticket` and `counter` (one counter value per
// connection): the client's side (initiator) or the gateway's.
Transport resumedTransport(const Key& resumption, std::span<const std::uint8_t> ticket,
                           std::uint64_t counter, bool initiator);

// What names one resumed connection, on both sides: BLAKE2b-256 of the ticket and the counter
// (big-endian) as the Resume message carries them. The gateway's replay cache remembers it; a
// Kerberos token in the connection's Hello is bound to it.
Key resumedConnectionId(std::span<const std::uint8_t> ticket, std::uint64_t counter);

}  // namespace fwgate::crypto
