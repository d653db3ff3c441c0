// UDP through the firewall client: a UdpAssociate on a control connection opens a relay (the same
// one SOCKS 5 UDP ASSOCIATE uses) whose client side receives the program's datagrams, each with
// the SOCKS 5 UDP header naming its destination, decided per destination by the rules and the
// protocol definitions; it lives as long as the control connection (or until udp_idle_timeout).
#include <fmt/format.h>

#include <asio/experimental/awaitable_operators.hpp>

#include "gateway/control_session.hpp"
#include "gateway/net.hpp"
#include "gateway/outbound.hpp"
#include "gateway/udp_relay.hpp"

namespace fwgate::gateway {

using namespace asio::experimental::awaitable_operators;
namespace control = protocol::control;

asio::awaitable<void> ControlSession::udpAssociate(protocol::Bytes body) {
  control::UdpAssociateRequest request;
  control::UdpAssociatedReply reply;
  out_.resize(512);
  const bool valid = control::decodeUdpAssociate(body, request);
  consumeFrame();
  if (!valid) {
    record_.result = "bad-request";
    record_.error = "malformed UdpAssociate";
    reply.status = Status::BadRequest;
    reply.message = record_.error;
    co_await send(out_.data(), control::encodeUdpAssociated(out_, reply));
    co_return;
  }
  const auto client = unmapped(clientEndpoint_.address());
  const Requester requester{client, user_};
  // The hosts the client sent to, with the definition that allowed each: their secondary
  // connections (a TFTP server answering from a new port, and the client's answers to that port)
  // are allowed within that definition.
  std::vector<std::pair<asio::ip::address, std::string>> contacted;
  const auto secondaryOf = [this, &contacted](const asio::ip::address& host, std::uint16_t port,
                                              policy::Direction direction) -> std::string {
    const auto& engine = *snapshot_->engine;
    const policy::ConnectionFacts facts{policy::Transport::Udp, direction, port};
    for (const auto& [address, name] : contacted) {
      const auto* definition = engine.findProtocol(name);
      if (address == host && definition != nullptr &&
          policy::coversSecondary(*definition, facts, engine.dynamicPorts())) {
        return name;
      }
    }
    return {};
  };
  UdpRelay relay(
      client_.get_executor(), client, request.localPort,
      [this, client, requester, &contacted, &secondaryOf](
          const asio::ip::address& a, std::uint16_t port, const std::string& name) {
        const policy::ConnectionFacts facts{policy::Transport::Udp, policy::Direction::Send, port};
        auto decision =
            decide(runtime_, *snapshot_, requester, policy::Command::Udp, a, port, name, facts);
        // The Winsock Proxy's rule: what no protocol definition covers is not relayed.
        const bool undefined = decision.allowed && decision.protocol.empty() &&
                               snapshot_->config->firewallClient.requireDefinition;
        if (undefined) decision.allowed = false;
        // Never past an explicit deny or to a protected destination (the gateway's own ports).
        if (!decision.allowed && (undefined || decision.ruleIndex < 0) &&
            !(runtime_.isProtectedDestination(a, port) && !runtime_.isHostAddress(client))) {
          // An answer to a port a contacted server answered from (a two-way secondary).
          if (auto primary = secondaryOf(unmapped(a), port, policy::Direction::ReceiveSend);
              !primary.empty()) {
            decision.allowed = true;
            decision.protocol = primary + " (secondary)";
            return decision;
          }
        }
        if (undefined) {
          decision.ruleName = "no-definition";
          if (record_.error.empty()) {
            record_.error = fmt::format("no protocol definition covers udp send port {}", port);
          }
        }
        if (record_.definition.empty() || decision.allowed) record_.definition = decision.protocol;
        if (decision.allowed && !decision.protocol.empty() && contacted.size() < 64) {
          contacted.emplace_back(unmapped(a), decision.protocol);
        }
        return decision;
      },
      runtime_.resolverPool(), snapshot_->config->limits.udpIdleTimeout, record_);
  relay.acceptAlso([&secondaryOf](const asio::ip::udp::endpoint& sender) {
    return !secondaryOf(unmapped(sender.address()), sender.port(), policy::Direction::Receive)
                .empty();
  });
  std::error_code ec;
  const auto local = client_.local_endpoint(ec);
  if (!ec) ec = relay.open(unmapped(local.address()));
  if (ec) {
    reply.status = control::statusForErrno(ec.value());
    record_.result = std::string(control::statusText(reply.status));
    record_.error = "udp socket: " + ec.message();
    reply.message = record_.error;
    co_await send(out_.data(), control::encodeUdpAssociated(out_, reply));
    co_return;
  }
  const auto relayEndpoint = relay.clientFacingEndpoint();
  record_.bound = endpointString(relayEndpoint.address(), relayEndpoint.port());
  reply.status = Status::Ok;
  reply.relay = toControl(relayEndpoint.address(), relayEndpoint.port());
  if (!co_await send(out_.data(), control::encodeUdpAssociated(out_, reply))) co_return;
  record_.result = "succeeded";
  // The client sends nothing more on the control connection: any byte or its close ends it.
  std::array<std::uint8_t, 64> sink{};
  co_await (relay.run() || client_.async_read_some(asio::buffer(sink), kNoThrow));
}

}  // namespace fwgate::gateway
