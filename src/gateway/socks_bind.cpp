// SOCKS BIND: listen on the gateway for one incoming connection from the expected peer.
#include <asio/experimental/awaitable_operators.hpp>

#include "gateway/inbound.hpp"
#include "gateway/net.hpp"
#include "gateway/reply_code.hpp"
#include "gateway/socks_session.hpp"

namespace fwgate::gateway {

using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

asio::awaitable<void> SocksSession::bind(const protocol::Address& expected) {
  record_.command = "bind";
  std::error_code ec;
  // The expected peer: DST.ADDR, unless zero (any peer). A name is resolved to its addresses.
  std::vector<asio::ip::address> expectedAddresses;
  if (!expected.isUnspecified()) {
    expectedAddresses = co_await resolve(expected, ec);
    if (ec) {
      record_.error = "resolve " + expected.host() + ": " + errorText(ec);
      record_.outcome = policy::Outcome::DestinationFailed;
      co_await fail(toSocks5Reply(ec));
      co_return;
    }
  }
  const std::string name =
      expected.type == protocol::AddressType::Domain ? expected.domain : std::string{};
  const std::optional<asio::ip::address> peer =
      expectedAddresses.empty() ? std::nullopt : std::optional(expectedAddresses.front());

  const auto decision = decide(policy::Command::Bind, peer, expected.port, name);
  record_.rule = decision.ruleName;
  if (!decision.allowed) {
    record_.error = "denied by " + decision.ruleName;
    record_.outcome = policy::Outcome::Denied;
    record_.deny({decision.reason, policy::Transport::Tcp, policy::Direction::Inbound,
                  expected.port, decision.protocol, decision.ruleName});
    co_await fail(Reply::NotAllowed);
    co_return;
  }
  if (snapshot_->config->bind.requireConnect) {
    // The seed's strict mode: only a client already connected to that host may BIND.
    const bool connected = std::any_of(
        expectedAddresses.begin(), expectedAddresses.end(),
        [&](const auto& a) { return runtime_.hasConnect(clientEndpoint_.address(), a); });
    if (!connected) {
      record_.error = "bind.require_connect: no CONNECT session to " +
                      (peer ? peer->to_string() : std::string("any host"));
      record_.outcome = policy::Outcome::NotAllowed;
      co_await fail(Reply::NotAllowed);
      co_return;
    }
  }

  const auto listenAddress =
      externalAddressToward(*snapshot_->config, runtime_.io(), peer, localAddress());
  tcp::acceptor acceptor(client_.get_executor());
  ec = openInbound(acceptor, listenAddress, 0, snapshot_->config->bind.dynamicPorts);
  if (!ec) acceptor.listen(1, ec);
  if (ec) {
    record_.error = "bind listen on " + listenAddress.to_string() + ": " + errorText(ec);
    record_.outcome = policy::Outcome::GatewayFailed;
    co_await fail(toSocks5Reply(ec));
    co_return;
  }
  const auto listening = acceptor.local_endpoint(ec);
  record_.bound = endpointString(listening.address(), listening.port());
  // With packet filters on, the external interface admits this port while the BIND waits.
  const AdmittedPort admitted = runtime_.packetFilters().admit(listening.port());
  // First reply: where the peer should connect.
  if (!co_await sendReply(Reply::Succeeded, listening)) co_return;
  record_.outcome = policy::Outcome::Listening;

  deadline_->expires_after(snapshot_->config->limits.bindTimeout);
  for (;;) {
    auto outcome = co_await (acceptor.async_accept(kNoThrow) || deadline_->async_wait(kNoThrow) ||
                             waitClientClose(true));
    if (outcome.index() == 1) {
      record_.error = "no connection within bind_timeout";
      record_.outcome = policy::Outcome::TimedOut;
      co_await fail(Reply::TtlExpired);
      co_return;
    }
    if (outcome.index() == 2) {
      record_.result = "client-closed";
      record_.outcome = policy::Outcome::ClientClosed;
      record_.error = "client closed before the peer connected";
      co_return;
    }
    auto [acceptEc, incoming] = std::move(std::get<0>(outcome));
    if (acceptEc) {
      record_.error = "accept: " + acceptEc.message();
      record_.outcome = policy::Outcome::GatewayFailed;
      co_await fail(toSocks5Reply(acceptEc));
      co_return;
    }
    const auto from = incoming.remote_endpoint(ec);
    const auto fromAddress = unmapped(from.address());
    const bool expectedPeer = !peer || std::find(expectedAddresses.begin(), expectedAddresses.end(),
                                                 fromAddress) != expectedAddresses.end();
    const auto peerDecision =
        expectedPeer ? decide(policy::Command::Bind, fromAddress, from.port(), {}) : decision;
    if (!expectedPeer || !peerDecision.allowed) {
      // Someone else knocked: refuse that connection, keep waiting for the right one.
      record_.error = "refused peer " + endpointString(fromAddress, from.port()) +
                      (expectedPeer ? " (denied by " + peerDecision.ruleName + ")"
                                    : " (not the requested DST.ADDR)");
      record_.deny({expectedPeer ? peerDecision.reason : policy::Reason::NotRequestedPeer,
                    policy::Transport::Tcp, policy::Direction::Inbound, 0, peerDecision.protocol,
                    expectedPeer ? peerDecision.ruleName : std::string(), fromAddress.to_string(),
                    true});
      incoming.close(ec);
      continue;
    }
    record_.rule = peerDecision.ruleName;
    record_.resolved = endpointString(fromAddress, from.port());
    acceptor.close(ec);
    // Second reply: who connected.
    if (!co_await sendReply(Reply::Succeeded, from)) {
      record_.outcome = policy::Outcome::ClientClosed;
      co_return;
    }
    record_.outcome = policy::Outcome::Succeeded;
    deadline_.reset();  // the relay keeps its own idle timer
    const auto result = co_await relay(client_, incoming, runtime_.relayPaths(),
                                       snapshot_->config->limits.idleTimeout, pending_);
    record_.addRelay(result.bytesUp, result.bytesDown, result.idleTimeout, result.error);
    co_return;
  }
}

}  // namespace fwgate::gateway
