// UDP through the firewall client: a UdpAssociate on a control connection opens a relay (the same
// one SOCKS 5 UDP ASSOCIATE uses) whose client side receives the program's datagrams, each with
// the SOCKS 5 UDP header naming its destination, decided per destination by the rules and the
// protocol definitions; it lives as long as the control connection (or until udp_idle_timeout).
#include <fmt/format.h>

#include <asio/experimental/awaitable_operators.hpp>

#include <map>
#include <optional>

#include "gateway/control_session.hpp"
#include "gateway/inbound.hpp"
#include "gateway/net.hpp"
#include "gateway/outbound.hpp"
#include "gateway/packet_filters.hpp"
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
  // RemoteBindUdpPorts: published on the external port, for the senders the rules allow.
  std::optional<policy::FirewallDecision> published;
  const policy::ConnectionFacts inbound{policy::Transport::Udp, policy::Direction::Receive,
                                        request.publishPort};
  if (request.publish) {
    const auto decision = policy::decideUdpListen(
        engine,
        clientRequest(policy::Command::Udp, std::nullopt, request.publishPort, {}, inbound));
    record_.rule = decision.rule;
    record_.definition = decision.definition;
    if (!decision.allowed) {
      record_.error = decision.reason == policy::Reason::NoDefinition
                          ? fmt::format("no protocol definition covers udp receive port {}",
                                        request.publishPort)
                          : fmt::format("no rule allows any sender to udp port {} ({})",
                                        request.publishPort, decision.definition);
      record_.outcome = policy::Outcome::Denied;
      record_.result = std::string(control::statusText(Status::Denied));
      record_.deny(decision.denial(inbound));
      reply.status = Status::Denied;
      reply.message = record_.error;
      co_await send(out_.data(), control::encodeUdpAssociated(out_, reply));
      co_return;
    }
    published = decision;
  }
  // The senders to the published port decided so far (bounded), by address.
  std::map<asio::ip::address, bool> senders;
  UdpRelay relay(
      client_.get_executor(), client, request.localPort,
      [this, &engine, &contacted, &senders, rules](const asio::ip::address& a, std::uint16_t port,
                                                   const std::string& name) {
        // The program's answer to a sender the published port admitted goes back to it.
        if (const auto it = senders.find(unmapped(a)); it != senders.end() && it->second) {
          return UdpRelay::Verdict{true, record_.rule};
        }
        const policy::ConnectionFacts facts{policy::Transport::Udp, policy::Direction::Send, port};
        const auto decision = policy::decideRemoted(
            engine, clientRequest(policy::Command::Udp, a, port, name, facts), contacted, rules);
        noteDatagram(decision, unmapped(a), port, contacted);
        return UdpRelay::Verdict{decision.allowed, decision.rule};
      },
      runtime_.resolverPool(), snapshot_->config->limits.udpIdleTimeout, record_);
  relay.acceptAlso([this, &engine, &contacted, &senders, &published,
                    &inbound](const asio::ip::udp::endpoint& sender) {
    const auto address = unmapped(sender.address());
    const auto from = toPolicy(address);
    if (policy::decideUdpSender(engine, contacted, from, sender.port()).allowed) return true;
    if (!published) return false;
    if (const auto it = senders.find(address); it != senders.end()) return it->second;
    const auto decision = policy::decideUdpPeer(
        engine, *published,
        clientRequest(policy::Command::Udp, address, inbound.port, {}, inbound));
    if (decision.allowed) {
      record_.rule = decision.rule;
    } else {
      record_.deny(decision.denial(inbound, address.to_string(), true));
      if (record_.error.empty()) {
        record_.error = fmt::format("udp from {} to port {} denied by {}", address.to_string(),
                                    inbound.port, decision.rule);
      }
    }
    constexpr std::size_t kMaxSenders = 1024;
    if (senders.size() >= kMaxSenders) senders.clear();
    senders.emplace(address, decision.allowed);
    return decision.allowed;
  });
  std::error_code ec;
  const auto local = client_.local_endpoint(ec);
  asio::ip::udp::endpoint external;
  if (!ec && published) {
    // The external side, as a remoted TCP listen's: [bind] external_address, else this host's
    // first address outside the firewall-client networks.
    external = {
        externalAddressToward(*snapshot_->config, runtime_.io(), std::nullopt, outsideAddress()),
        request.publishPort};
    ec = relay.open(unmapped(local.address()), external);
  } else if (!ec) {
    ec = relay.open(unmapped(local.address()));
  }
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
  if (published) {
    const auto remote = relay.remoteFacingEndpoint();
    reply.published = toControl(unmapped(remote.address()), remote.port());
    record_.bound = endpointString(unmapped(remote.address()), remote.port());
  }
  if (!co_await send(out_.data(), control::encodeUdpAssociated(out_, reply))) {
    record_.outcome = policy::Outcome::ClientClosed;
    co_return;
  }
  record_.result = "succeeded";
  record_.outcome = policy::Outcome::Succeeded;
  // A published port is open in the packet filters (dynamic_udp) while the association lives.
  const AdmittedPort admitted =
      published ? runtime_.packetFilters().admit(relay.remoteFacingEndpoint().port(), true)
                : AdmittedPort{};
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
