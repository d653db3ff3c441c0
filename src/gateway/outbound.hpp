// The gateway's side toward destinations, shared by SOCKS and firewall-client sessions: name
// resolution off the event loop, and connecting to the first address that accepts.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "config/config.hpp"
#include "gateway/runtime.hpp"

namespace fwgate::gateway {

// Who asks: the client's address and, when authenticated, its user.
struct Requester {
  asio::ip::address client;
  std::optional<std::string> user;
  // The client can be asked for a user (the Web Proxy's 407): policy::Request::canAskForUser.
  bool canAskForUser = false;
};

// The request the rule engine decides, with the facts only the gateway knows: whether the client
// is this host, whether the destination is protected (loopback, unspecified, our own listeners).
// `address` empty: the destination is not known yet (BIND from any peer).
policy::Request policyRequest(
    const Runtime& runtime, const Requester& requester, policy::Command command,
    const std::optional<asio::ip::address>& address, std::uint16_t port, const std::string& name,
    const std::optional<policy::ConnectionFacts>& connection = std::nullopt,
    const std::string& secondaryOf = {});

// The rule engine's decision for policyRequest(...).
policy::Decision decide(const Runtime& runtime, const Snapshot& snapshot,
                        const Requester& requester, policy::Command command,
                        const std::optional<asio::ip::address>& address, std::uint16_t port,
                        const std::string& name,
                        const std::optional<policy::ConnectionFacts>& connection = std::nullopt,
                        const std::string& secondaryOf = {});

// The candidates a CONNECT may use, in order. `rule` names the rule that allowed the first, or,
// when none is allowed, the rule that denied the first.
struct Allowed {
  std::vector<asio::ip::address> addresses;
  std::string rule;
  std::string protocol;  // the protocol definition that matched the first (allowed or denied)
  // Why: Rule when a rule decided; DefaultDeny, ProtectedDestination or NeedsUser (none allowed,
  // and `rule` would decide for a user: Decision::needsUser) otherwise.
  policy::Reason reason = policy::Reason::DefaultDeny;
  bool needsUser = false;
};
Allowed allowedAddresses(const Runtime& runtime, const Snapshot& snapshot,
                         const Requester& requester,
                         const std::vector<asio::ip::address>& candidates, std::uint16_t port,
                         const std::string& name,
                         policy::Command command = policy::Command::Connect);

// getaddrinfo on the runtime's resolver pool, within `timeout`: the addresses in resolver order,
// without duplicates. `family` is 0 (any), 4 or 6. On failure `ec` is set (a getaddrinfo error, or
// timed_out, or host_not_found for an empty answer) and the result is empty. The caller has
// checked the name (protocol::isValidHostName).
asio::awaitable<std::vector<asio::ip::address>> resolveHost(Runtime& runtime, std::string host,
                                                            int family, config::Duration timeout,
                                                            std::error_code& ec);

// Connects `out` to the first of `candidates` (each on `port`) that accepts, trying them in order,
// all within `timeout`. Returns no error and sets `connected` on success; otherwise the last
// attempt's error, or timed_out when the time ran out. `out` is left closed on failure.
// `source`, when given, is bound first (the address the peer expects the connection from).
asio::awaitable<std::error_code> connectAny(
    asio::ip::tcp::socket& out, const std::vector<asio::ip::address>& candidates,
    std::uint16_t port, config::Duration timeout, asio::ip::address& connected,
    const std::optional<asio::ip::address>& source = std::nullopt);

}  // namespace fwgate::gateway
