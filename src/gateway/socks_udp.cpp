// SOCKS 5 UDP ASSOCIATE: the TCP control connection bounds the association's life.
#include <asio/experimental/awaitable_operators.hpp>

#include "gateway/net.hpp"
#include "gateway/reply_code.hpp"
#include "gateway/socks_session.hpp"
#include "gateway/udp_relay.hpp"

namespace fwgate::gateway {

using namespace asio::experimental::awaitable_operators;

asio::awaitable<void> SocksSession::udpAssociate(const protocol::Address& hint) {
  record_.command = "udp";
  // DST.ADDR is where the client will send from: zeros, or the client's own address.
  asio::ip::address hintAddress;
  if (!wireToAsio(hint, hintAddress) ||
      (!hintAddress.is_unspecified() && hintAddress != unmapped(clientEndpoint_.address()))) {
    record_.error = "UDP ASSOCIATE address " + hint.toString() + " is not the client's own";
    record_.outcome = policy::Outcome::NotAllowed;
    co_await fail(Reply::NotAllowed);
    co_return;
  }
  UdpRelay relay(
      client_.get_executor(), clientEndpoint_.address(), hint.port,
      [this](const asio::ip::address& a, std::uint16_t port, const std::string& name) {
        const auto decision = decide(policy::Command::Udp, a, port, name);
        if (!decision.allowed) {
          record_.deny({decision.reason, policy::Transport::Udp, policy::Direction::Send, port,
                        decision.protocol, decision.ruleName, unmapped(a).to_string()});
        }
        return UdpRelay::Verdict{decision.allowed, decision.ruleName};
      },
      runtime_.resolverPool(), snapshot_->config->limits.udpIdleTimeout, record_);
  if (auto ec = relay.open(localAddress())) {
    record_.error = "udp socket: " + ec.message();
    record_.outcome = policy::Outcome::GatewayFailed;
    co_await fail(toSocks5Reply(ec));
    co_return;
  }
  const auto bound = relay.clientFacingEndpoint();
  record_.bound = endpointString(bound.address(), bound.port());
  const auto wire = toWire(bound.address(), bound.port());
  if (!co_await sendReply(Reply::Succeeded, wire)) co_return;
  record_.outcome = policy::Outcome::Succeeded;
  co_await (relay.run() || waitClientClose(false));
  record_.result = "succeeded";
}

}  // namespace fwgate::gateway
