// A firewall client's remoted listening socket (seed 004, "Remoted Connections", second half):
// Bind opens a socket on the gateway's external side and answers its address, Listen starts
// accepting, and every connection a remote host makes there is carried to the client's own
// listening socket: the gateway connects to it, proves itself with the listen's token and the
// remote host's address (an Accepted frame), and relays.
#include <sodium.h>

#include <spdlog/spdlog.h>
#include <asio/co_spawn.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/write.hpp>
#include <cstring>

#include "config/pac.hpp"
#include "gateway/control_session.hpp"
#include "gateway/inbound.hpp"
#include "gateway/net.hpp"
#include "gateway/outbound.hpp"
#include "gateway/relay.hpp"

namespace fwgate::gateway {

using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;
namespace control = protocol::control;

namespace {

// One connection a remote host made to a remoted listen: to the client's listening socket, the
// Accepted frame, then the relay; logged once ("accept").
// `stop`, for a server's connections: expired when the client refuses the connection (its
// listening socket is gone), which ends the listen.
asio::awaitable<void> deliverInbound(Runtime& runtime, std::shared_ptr<const Snapshot> snapshot,
                                     tcp::socket incoming, tcp::endpoint clientBack,
                                     control::Token token, SessionRecord record,
                                     std::shared_ptr<asio::steady_timer> stop,
                                     asio::ip::address source) {
  struct Slot {
    Runtime& runtime;
    asio::ip::address client;
    ~Slot() { runtime.release(client); }
  } slot{runtime, clientBack.address()};
  std::error_code ec;
  const auto peer = incoming.remote_endpoint(ec);
  tcp::socket back(incoming.get_executor());
  asio::ip::address connectedTo;
  const std::vector<asio::ip::address> candidates{clientBack.address()};
  // From the address the client reached the gateway at: accept() takes only those.
  const std::optional<asio::ip::address> from = source;
  const auto error =
      co_await connectAny(back, candidates, clientBack.port(),
                          snapshot->config->limits.connectTimeout, connectedTo, from);
  if (error) {
    if (stop && error == asio::error::connection_refused) {
      stop->expires_at(asio::steady_timer::time_point::min());
    }
    record.result = "client-unreachable";
    record.error = "connect back to " + endpointString(clientBack.address(), clientBack.port()) +
                   ": " + error.message();
    runtime.sessionLog().write(std::move(record));
    co_return;
  }
  std::array<std::uint8_t, 128> frame{};
  const control::AcceptedNotice notice{token, toControl(peer.address(), peer.port())};
  const std::size_t n = control::encodeAccepted(frame, notice);
  auto [writeEc, written] =
      co_await asio::async_write(back, asio::buffer(frame.data(), n), kNoThrow);
  if (writeEc) {
    record.result = "client-unreachable";
    record.error = "write to client: " + writeEc.message();
    runtime.sessionLog().write(std::move(record));
    co_return;
  }
  record.result = "succeeded";
  // The client's side is the relay's "client": bytes up go from the program to the remote host.
  const auto result =
      co_await relay(back, incoming, runtime.relayPaths(), snapshot->config->limits.idleTimeout);
  record.addRelay(result.bytesUp, result.bytesDown, result.idleTimeout, result.error);
  runtime.sessionLog().write(std::move(record));
}

}  // namespace

asio::ip::address ControlSession::outsideAddress() const {
  // A server with no peer to route toward and no [bind] external_address: the first address of
  // this host that is not loopback or link-local and not in a firewall-client network.
  for (const auto& a : runtime_.hostAddresses()) {
    const auto plain = unmapped(a);
    if (plain.is_loopback() || plain.is_unspecified() ||
        (plain.is_v6() && plain.to_v6().is_link_local())) {
      continue;
    }
    const auto policyAddress = toPolicy(plain);
    if (config::clientNetwork(*snapshot_->config, policyAddress) == nullptr) return plain;
  }
  return asio::ip::address_v4::any();
}

asio::awaitable<void> ControlSession::bindAndListen(protocol::Bytes body) {
  control::BindRequest request;
  control::BoundReply reply;
  out_.resize(512);
  if (!control::decodeBind(body, request)) {
    consumeFrame();
    record_.result = "BadRequest";
    record_.error = "malformed Bind";
    reply.status = Status::BadRequest;
    reply.message = record_.error;
    co_await send(out_.data(), control::encodeBound(out_, reply));
    co_return;
  }
  consumeFrame();
  const auto& config = *snapshot_->config;
  const auto& engine = *snapshot_->engine;
  const auto client = unmapped(clientEndpoint_.address());
  const auto requestedAddress = fromControl(request.requested.address);
  const bool server = request.mode == control::BindMode::Server;
  const std::uint16_t requestedPort = request.requested.port;
  record_.requested = endpointString(requestedAddress, requestedPort);
  record_.command = server ? "listen-server" : "listen";

  // Policy: a server needs a definition whose primary connection is inbound on its port and a
  // rule allowing it; a secondary listen needs a live primary connection of the same program
  // whose definition has an inbound TCP secondary connection covering the port.
  std::shared_ptr<PrimaryConnection> primary;
  policy::PortRange range{requestedPort, requestedPort};
  Status refusal = Status::Ok;
  if (server) {
    // Peers are decided one by one as they connect; now, a definition must cover the port and a
    // rule must be able to allow some peer.
    const policy::ConnectionFacts facts{policy::Transport::Tcp, policy::Direction::Inbound,
                                        requestedPort};
    policy::Request possible;
    possible.client = toPolicy(client);
    possible.clientIsLocal = runtime_.isHostAddress(client);
    possible.user = user_;
    possible.command = policy::Command::Bind;
    possible.destinationPort = requestedPort;
    possible.connection = facts;
    const auto* definition = engine.primaryFor(facts);
    if (definition != nullptr) record_.definition = definition->name;
    record_.rule = "(per peer)";
    if (requestedPort == 0) {
      refusal = Status::BadRequest;
      record_.error = "a server bind needs a port";
    } else if (definition == nullptr) {
      refusal = Status::Denied;
      record_.error =
          fmt::format("no protocol definition covers inbound TCP port {}", requestedPort);
    } else if (!engine.mayAllow(possible)) {
      refusal = Status::Denied;
      record_.rule = "default-deny";
      record_.error = fmt::format("no rule allows {} to serve {} (inbound TCP port {})",
                                  client.to_string(), definition->name, requestedPort);
    }
  } else {
    const policy::ConnectionFacts facts{policy::Transport::Tcp, policy::Direction::Inbound,
                                        requestedPort};
    for (const auto& candidate : runtime_.primariesOf(program())) {
      const auto* definition = engine.findProtocol(candidate->definition);
      if (!candidate->alive || definition == nullptr) continue;
      for (const auto& spec : definition->secondary) {
        if (spec.transport != policy::Transport::Tcp ||
            spec.direction != policy::Direction::Inbound) {
          continue;
        }
        if (requestedPort != 0 &&
            !policy::coversSecondary(*definition, facts, engine.dynamicPorts())) {
          continue;
        }
        primary = candidate;
        if (requestedPort == 0) range = spec.anyDynamicPort() ? engine.dynamicPorts() : spec.ports;
        break;
      }
      if (primary) break;
    }
    if (!primary) {
      refusal = Status::Denied;
      record_.error =
          requestedPort == 0
              ? fmt::format(
                    "no primary connection of {} (pid {}) whose protocol definition has "
                    "an inbound TCP secondary connection",
                    record_.programOrEmpty().application, pid_)
              : fmt::format(
                    "no primary connection of {} (pid {}) whose protocol definition "
                    "allows an inbound TCP secondary connection on port {}",
                    record_.programOrEmpty().application, pid_, requestedPort);
    } else {
      record_.rule = primary->rule;
      record_.definition = primary->definition;
    }
  }
  if (refusal != Status::Ok) {
    record_.result = std::string(control::statusText(refusal));
    reply.status = refusal;
    reply.message = record_.error;
    co_await send(out_.data(), control::encodeBound(out_, reply));
    co_return;
  }

  // The socket on the external side.
  std::optional<asio::ip::address> toward;
  if (primary) toward = primary->destination;
  std::error_code ec;
  auto listenAddress = externalAddressToward(config, runtime_.io(), toward, outsideAddress());
  if (!toward && config.bind.externalAddress.empty() && runtime_.isHostAddress(requestedAddress) &&
      !requestedAddress.is_loopback()) {
    listenAddress = requestedAddress;  // the program named one of the gateway's own addresses
  }
  tcp::acceptor acceptor(client_.get_executor());
  ec = openInbound(acceptor, listenAddress, requestedPort, range);
  if (ec) {
    const Status status = control::statusForErrno(ec.value());
    record_.result = std::string(control::statusText(status));
    record_.error = "listen on " + listenAddress.to_string() + ": " + ec.message();
    reply.status = status;
    reply.message = record_.error;
    co_await send(out_.data(), control::encodeBound(out_, reply));
    co_return;
  }
  const auto listening = acceptor.local_endpoint(ec);
  record_.bound = endpointString(listening.address(), listening.port());
  control::Token token{};
  randombytes_buf(token.data(), token.size());
  reply.status = Status::Ok;
  reply.bound = toControl(listening.address(), listening.port());
  reply.token = token;
  reply.definition = record_.definition;
  if (!co_await send(out_.data(), control::encodeBound(out_, reply))) co_return;

  // Listen: the program called listen() on its socket.
  deadline_.expires_after(config.limits.bindTimeout);
  control::Frame frame;
  if (!co_await readFrame(frame)) {
    record_.result = "client-closed";
    if (record_.error.empty()) record_.error = "closed before listen()";
    co_return;
  }
  control::ListenRequest listen;
  control::ListeningReply listeningReply;
  if (frame.type != static_cast<std::uint8_t>(control::MessageType::Listen) ||
      !control::decodeListen(frame.body, listen)) {
    consumeFrame();
    record_.result = "bad-request";
    record_.error = "expected Listen";
    listeningReply.status = Status::UnexpectedMessage;
    listeningReply.message = record_.error;
    co_await send(out_.data(), control::encodeListening(out_, listeningReply));
    co_return;
  }
  consumeFrame();
  const int backlog = listen.backlog == 0 ? 1 : std::min<int>(listen.backlog, 128);
  acceptor.listen(server ? backlog : 1, ec);
  listeningReply.status = ec ? control::statusForErrno(ec.value()) : Status::Ok;
  if (ec) {
    record_.error = "listen: " + ec.message();
    listeningReply.message = record_.error;
  }
  if (!co_await send(out_.data(), control::encodeListening(out_, listeningReply)) || ec) {
    record_.result = ec ? std::string(control::statusText(listeningReply.status)) : "closed";
    co_return;
  }
  record_.result = "listening";
  // With packet filters on, the external interface admits this port while the listen lasts.
  const AdmittedPort admitted = runtime_.packetFilters().admit(listening.port());

  // Accept until the policy says stop: a secondary listen takes one connection within
  // bind_timeout and ends with its primary connection; a server listens while the client keeps
  // its control connection open.
  const tcp::endpoint clientBack{client, listen.localPort};
  const auto gatewaySide = unmapped(client_.local_endpoint(ec).address());
  // Ends the listen: the primary connection's end, or (a server) the client's listening socket
  // refusing the gateway's connection (the program closed it; close() is not hooked).
  const auto stop = primary ? primary->ended
                            : std::make_shared<asio::steady_timer>(
                                  client_.get_executor(), asio::steady_timer::time_point::max());
  if (server) {
    deadline_.expires_at(asio::steady_timer::time_point::max());
  } else {
    deadline_.expires_after(config.limits.bindTimeout);
  }
  std::uint64_t accepted = 0;
  std::array<std::uint8_t, 64> sink{};
  for (;;) {
    if (primary && !primary->alive) {
      record_.error = "the primary connection ended";
      break;
    }
    auto outcome = co_await (acceptor.async_accept(kNoThrow) || deadline_.async_wait(kNoThrow) ||
                             client_.async_read_some(asio::buffer(sink), kNoThrow) ||
                             stop->async_wait(kNoThrow));
    if (outcome.index() == 1) {
      record_.error = "no connection within bind_timeout";
      break;
    }
    if (outcome.index() == 2) {
      if (record_.error.empty()) record_.error = "the client closed its listening socket";
      break;
    }
    if (outcome.index() == 3) {
      record_.error = primary ? "the primary connection ended" : "the client's socket is closed";
      break;
    }
    auto [acceptEc, incoming] = std::move(std::get<0>(outcome));
    if (acceptEc) {
      record_.error = "accept: " + acceptEc.message();
      break;
    }
    const auto from = incoming.remote_endpoint(ec);
    if (ec) continue;
    const auto fromAddress = unmapped(from.address());
    SessionRecord inbound;
    inbound.client = record_.client;
    inbound.user = record_.user;
    inbound.protocol = "fwc";
    inbound.program = record_.program;
    inbound.command = "accept";
    inbound.requested = record_.bound;
    inbound.bound = record_.bound;
    inbound.resolved = endpointString(fromAddress, from.port());
    inbound.definition = record_.definition;
    // Who may connect: the primary connection's host (by default), or whom the rules allow.
    std::string refusedWhy;
    if (primary && config.bind.secondaryPeers == config::BindSettings::SecondaryPeers::Primary) {
      inbound.rule = primary->rule;
      if (fromAddress != primary->destination) {
        refusedWhy = "only " + primary->destination.to_string() +
                     ", the host of the primary connection, may connect";
      }
    } else {
      const policy::ConnectionFacts facts{policy::Transport::Tcp, policy::Direction::Inbound,
                                          listening.port()};
      // A secondary listen's peers by the rules: a rule naming the primary's definition matches
      // through the definition's secondary connections.
      const std::string secondaryOf = primary ? primary->definition : std::string();
      const auto decision =
          decide(runtime_, *snapshot_, Requester{client, user_}, policy::Command::Bind, fromAddress,
                 listening.port(), {}, facts, secondaryOf);
      inbound.rule = decision.ruleName;
      if (!decision.allowed) refusedWhy = "denied by " + decision.ruleName;
    }
    if (refusedWhy.empty() && !runtime_.admit(client)) refusedWhy = "session limit";
    if (!refusedWhy.empty()) {
      inbound.result = "refused";
      inbound.error = "peer " + inbound.resolved + " refused: " + refusedWhy;
      runtime_.sessionLog().write(std::move(inbound));
      incoming.close(ec);
      continue;
    }
    ++accepted;
    auto onException = [&runtime = runtime_](std::exception_ptr e) {
      if (!e) return;
      ++runtime.counters().sessionExceptions;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("accepted connection ended by internal error: {}", ex.what());
      }
    };
    asio::co_spawn(client_.get_executor(),
                   deliverInbound(runtime_, snapshot_, std::move(incoming), clientBack, token,
                                  std::move(inbound), primary ? nullptr : stop, gatewaySide),
                   onException);
    if (!server) break;  // one connection per secondary listen
  }
  record_.result = accepted > 0 ? "succeeded" : "closed";
  record_.resolved = fmt::format("{} connection{}", accepted, accepted == 1 ? "" : "s");
}

}  // namespace fwgate::gateway
