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
    record_.outcome = policy::Outcome::BadRequest;
    record_.error = "malformed UdpAssociate";
    reply.status = Status::BadRequest;
    reply.message = record_.error;
    co_await send(out_.data(), control::encodeUdpAssociated(out_, reply));
    co_return;
  }
  const auto client = unmapped(clientEndpoint_.address());
  // The hosts the client sent to, with the definition and rule that allowed each: the primary
  // connections of the association's secondaries (a TFTP server answering from a new port, and
  // the client's answers to that port). Both deciders below use it; the relay, a local that
  // dies first, holds them.
  std::vector<policy::LivePrimary> contacted;
  const auto& engine = *snapshot_->engine;
  const auto rules = firewallPolicy();
  UdpRelay relay(
      client_.get_executor(), client, request.localPort,
      [this, &engine, &contacted, rules](const asio::ip::address& a, std::uint16_t port,
                                         const std::string& name) {
        const policy::ConnectionFacts facts{policy::Transport::Udp, policy::Direction::Send, port};
        const auto decision = policy::decideRemoted(
            engine, clientRequest(policy::Command::Udp, a, port, name, facts), contacted, rules);
        noteDatagram(decision, unmapped(a), port, contacted);
        return UdpRelay::Verdict{decision.allowed, decision.rule};
      },
      runtime_.resolverPool(), snapshot_->config->limits.udpIdleTimeout, record_);
  relay.acceptAlso([&engine, &contacted](const asio::ip::udp::endpoint& sender) {
    const auto from = toPolicy(unmapped(sender.address()));
    return policy::decideUdpSender(engine, contacted, from, sender.port()).allowed;
  });
  std::error_code ec;
  const auto local = client_.local_endpoint(ec);
  if (!ec) ec = relay.open(unmapped(local.address()));
  if (ec) {
    reply.status = control::statusForErrno(ec.value());
    record_.result = std::string(control::statusText(reply.status));
    record_.error = "udp socket: " + ec.message();
    record_.outcome = policy::Outcome::GatewayFailed;
    reply.message = record_.error;
    co_await send(out_.data(), control::encodeUdpAssociated(out_, reply));
    co_return;
  }
  const auto relayEndpoint = relay.clientFacingEndpoint();
  record_.bound = endpointString(relayEndpoint.address(), relayEndpoint.port());
  reply.status = Status::Ok;
  reply.relay = toControl(relayEndpoint.address(), relayEndpoint.port());
  if (!co_await send(out_.data(), control::encodeUdpAssociated(out_, reply))) {
    record_.outcome = policy::Outcome::ClientClosed;
    co_return;
  }
  record_.result = "succeeded";
  record_.outcome = policy::Outcome::Succeeded;
  // The client sends nothing more on the control connection: any byte or its close ends it.
  std::array<std::uint8_t, 64> sink{};
  co_await (relay.run() || client_.async_read_some(asio::buffer(sink), kNoThrow));
}

void ControlSession::noteDatagram(const policy::FirewallDecision& decision,
                                  const asio::ip::address& destination, std::uint16_t port,
                                  std::vector<policy::LivePrimary>& contacted) {
  if (decision.reason == policy::Reason::Secondary) return;  // the record names the primaries
  if (decision.reason == policy::Reason::NoDefinition && record_.error.empty()) {
    record_.error = fmt::format("no protocol definition covers udp send port {}", port);
  }
  if (!decision.allowed) {
    record_.deny(decision.denial({policy::Transport::Udp, policy::Direction::Send, port},
                                 destination.to_string()));
  }
  if (record_.definition.empty() || decision.allowed) record_.definition = decision.definition;
  constexpr std::size_t kMaxContacted = 64;
  if (decision.allowed && !decision.definition.empty() && contacted.size() < kMaxContacted) {
    contacted.push_back({toPolicy(destination), decision.definition, decision.rule});
  }
}

}  // namespace fwgate::gateway
