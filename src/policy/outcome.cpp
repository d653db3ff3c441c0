#include "policy/outcome.hpp"

namespace fwgate::policy {

std::string_view toToken(Outcome outcome) {
  switch (outcome) {
    case Outcome::Succeeded:
      return "succeeded";
    case Outcome::Listening:
      return "listening";
    case Outcome::Denied:
      return "denied";
    case Outcome::RefusedPeer:
      return "refused-peer";
    case Outcome::NotAllowed:
      return "not-allowed";
    case Outcome::NotFirewallClient:
      return "not-firewall-client";
    case Outcome::BadRequest:
      return "bad-request";
    case Outcome::AuthFailed:
      return "auth-failed";
    case Outcome::AuthThrottled:
      return "auth-throttled";
    case Outcome::HandshakeTimeout:
      return "handshake-timeout";
    case Outcome::TimedOut:
      return "timed-out";
    case Outcome::ClientClosed:
      return "client-closed";
    case Outcome::DestinationFailed:
      return "destination-failed";
    case Outcome::ClientUnreachable:
      return "client-unreachable";
    case Outcome::GatewayFailed:
      return "gateway-failed";
    case Outcome::SessionLimit:
      return "session-limit";
    case Outcome::Stopped:
      return "stopped";
  }
  return "unknown";
}

std::optional<Outcome> outcomeFromToken(std::string_view token) {
  for (const Outcome o : kOutcomes) {
    if (toToken(o) == token) return o;
  }
  return std::nullopt;
}

}  // namespace fwgate::policy
