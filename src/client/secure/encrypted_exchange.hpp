// A firewall client's control exchange on the encrypted channel (docs/control-protocol.md, "The
// encrypted channel"), for the fwgate commands (check, detect, agent): the gateway's key from the
// pin (FWGATE_GATEWAY_KEY, client.ini, the cache) or, with none, asked for in clear and trusted
// on first use; a Noise IK handshake whose first message carries Hello and the request; the reply
// in a record. Blocking, with one time limit. The preload library does not link this (it keeps no
// cryptography): it will reach the same channel through the agent.
#pragma once

#include <string>
#include <vector>

#include "client/client_config.hpp"
#include "client/gateway_link.hpp"
#include "crypto/noise.hpp"

namespace fwgate::client {

struct EncryptedReply {
  int error = 0;           // an errno; 0: the gateway answered (see reply.welcome.status)
  std::string detail;      // for a person: why, with both fingerprints when the key changed
  Reply reply;             // views into the caller's buffer
  crypto::Key key{};       // the gateway key the exchange used (to pin)
  std::string keyFrom;     // where it came from: the pin's source, or "trust on first use"
  bool encrypted = false;  // the reply came over the encrypted channel
  // Kerberos: whether the Hello carried a token, for which service, and (when it carried none
  // in Auto) why not.
  bool kerberosSent = false;
  std::string kerberosService;
  std::string kerberosNote;
};

// Hello (with `identity` and a Timestamp) and `request` (one frame) to the gateway; the Welcome
// and one reply frame into `buffer` (kMaxBody and more).
EncryptedReply encryptedExchange(const ClientConfig& config, const GatewayEndpoints& gateway,
                                 const Identity& identity, protocol::Bytes request,
                                 std::vector<std::uint8_t>& buffer, int timeoutMs);

// The gateway's key from the pin in `config`, or asked for in clear (KeyRequest). False when
// neither gives one: `out.error` and `out.detail` say why, or (error 0) a gateway of another
// version answered with a Welcome, in `out.reply` (views into `buffer`).
bool gatewayKey(const ClientConfig& config, const GatewayEndpoints& gateway, int timeoutMs,
                std::vector<std::uint8_t>& buffer, EncryptedReply& out);

}  // namespace fwgate::client
