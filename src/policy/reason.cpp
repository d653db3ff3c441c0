#include "policy/reason.hpp"

namespace fwgate::policy {

std::string_view toToken(Reason reason) {
  switch (reason) {
    case Reason::Rule:
      return "rule";
    case Reason::DefaultDeny:
      return "default-deny";
    case Reason::ProtectedDestination:
      return "protected-destination";
    case Reason::NeedsUser:
      return "needs-user";
    case Reason::NoDefinition:
      return "no-definition";
    case Reason::Secondary:
      return "secondary";
    case Reason::NoPrimary:
      return "no-primary";
    case Reason::NotPrimaryHost:
      return "not-primary-host";
    case Reason::NotRequestedPeer:
      return "not-requested-peer";
    case Reason::NotPublished:
      return "not-published";
  }
  return "unknown";
}

std::optional<Reason> reasonFromToken(std::string_view token) {
  for (const Reason r : kReasons) {
    if (toToken(r) == token) return r;
  }
  return std::nullopt;
}

}  // namespace fwgate::policy
