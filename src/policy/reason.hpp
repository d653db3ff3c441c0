// Why the policy allowed or denied a request: a value the gateway logs (the session log's
// `denial.reason`) and the monitor reads back, never prose.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace fwgate::policy {

enum class Reason : std::uint8_t {
  Rule,                  // a rule decided, allow or deny (Decision::ruleName names it)
  DefaultDeny,           // no rule matched (a listening server: no rule allows any peer)
  ProtectedDestination,  // no rule matched, and the destination is the gateway's own
  NeedsUser,             // an anonymous request a rule for users would decide (the Web Proxy's 407)
  NoDefinition,          // no protocol definition covers it ([firewall_client] require_definition)
  Secondary,             // a secondary connection of a live primary connection's definition
  NoPrimary,             // a secondary listen no live primary connection's definition covers
  // A peer other than the primary's host ([bind] secondary_peers = "primary").
  NotPrimaryHost,
  NotRequestedPeer,  // a SOCKS BIND's peer other than the DST.ADDR its request named
  // A published listen ([firewall_client] publish_listens) no entry allows for this program.
  NotPublished,
};

// clang-format off
inline constexpr Reason kReasons[] = {
    Reason::Rule,      Reason::DefaultDeny,    Reason::ProtectedDestination,
    Reason::NeedsUser, Reason::NoDefinition,   Reason::Secondary,
    Reason::NoPrimary, Reason::NotPrimaryHost, Reason::NotRequestedPeer,
    Reason::NotPublished};
// clang-format on

// "rule", "default-deny", "protected-destination", "needs-user", "no-definition", "secondary",
// "no-primary", "not-primary-host", "not-requested-peer", "not-published".
std::string_view toToken(Reason reason);
std::optional<Reason> reasonFromToken(std::string_view token);

}  // namespace fwgate::policy
