// The Kerberos token a firewall client's Hello carries on the encrypted channel
// (docs/control-protocol.md, "Kerberos"): an AP-REQ for the gateway's service (fwgate/GATEWAY)
// from the user's credential cache, bound to the channel it travels in (the handshake's
// ephemeral key, or the resumed connection's id), so that a copy is good in no other channel.
// Made by fwgate check and the agent; the preload library links no Kerberos.
#pragma once

#include <chrono>
#include <string>

#include "client/client_config.hpp"
#include "crypto/noise.hpp"
#include "gss/gss.hpp"

namespace fwgate::client {

class KerberosProof {
 public:
  // `mode` and `service` as ClientConfig has them (service empty: fwgate@ the gateway's host).
  KerberosProof(ClientConfig::Kerberos mode, std::string service);

  // The token for a channel named `channel` to gateway `server` ("host:port"); `hasPassword`:
  // the Hello carries a password already (Auto then sends none). Empty when none is sent: with
  // Auto that is no error (no ticket, or the service is unknown; `note` says why, once), with Yes
  // `error` says why and the connection must not go ahead without it.
  gss::Token tokenFor(const std::string& server, const crypto::Key& channel, bool hasPassword,
                      std::string& error);
  // Why Auto last sent none, for diagnostics ("" when it did send or was never asked).
  const std::string& note() const { return note_; }
  // The service last asked for ("fwgate@10.0.0.1").
  const std::string& lastService() const { return lastService_; }

 private:
  ClientConfig::Kerberos mode_;
  std::string service_;
  std::string note_;
  std::string lastService_;
  // After a failure in Auto, no new attempt for a while: a missing service principal would cost
  // every connection a round trip to the KDC.
  std::chrono::steady_clock::time_point quietUntil_{};
};

// "fwgate@HOST" for a server "HOST:PORT" or "[V6]:PORT".
std::string defaultKerberosService(const std::string& server);

}  // namespace fwgate::client
