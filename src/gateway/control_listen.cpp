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
  RecordWriter writer(runtime.sessionLog(), record);
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
    record.outcome = policy::Outcome::ClientUnreachable;
    record.error = "connect back to " + endpointString(clientBack.address(), clientBack.port()) +
                   ": " + error.message();
    writer.ended();
    co_return;
  }
  std::array<std::uint8_t, 128> frame{};
  const control::AcceptedNotice notice{token, toControl(peer.address(), peer.port())};
  const std::size_t n = control::encodeAccepted(frame, notice);
  auto [writeEc, written] =
      co_await asio::async_write(back, asio::buffer(frame.data(), n), kNoThrow);
  if (writeEc) {
    record.result = "client-unreachable";
    record.outcome = policy::Outcome::ClientUnreachable;
    record.error = "write to client: " + writeEc.message();
    writer.ended();
    co_return;
  }
  record.result = "succeeded";
  record.outcome = policy::Outcome::Succeeded;
  // The client's side is the relay's "client": bytes up go from the program to the remote host.
  const auto result =
      co_await relay(back, incoming, runtime.relayPaths(), snapshot->config->limits.idleTimeout);
  record.addRelay(result.bytesUp, result.bytesDown, result.idleTimeout, result.error);
  writer.ended();
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
  auto plan = co_await decideListen(body);
  if (!plan) co_return;
  auto acceptor = co_await openListen(*plan);
  if (!acceptor) co_return;
  const bool listening = co_await awaitListen(*acceptor, *plan);
  if (!listening) co_return;
  // With packet filters on, the external interface admits this port while the listen lasts.
  std::error_code ec;
  const AdmittedPort admitted = runtime_.packetFilters().admit(acceptor->local_endpoint(ec).port());
  co_await acceptPeers(*acceptor, *plan);
}

asio::awaitable<bool> ControlSession::sendBound(control::BoundReply reply) {
  out_.resize(512);
  const bool sent = co_await send(out_.data(), control::encodeBound(out_, reply));
  co_return sent;
}

asio::awaitable<std::optional<ControlSession::ListenPlan>> ControlSession::decideListen(
    protocol::Bytes body) {
  std::optional<ListenPlan> plan;
  control::BindRequest request;
  const bool valid = control::decodeBind(body, request);
  consumeFrame();
  control::BoundReply refusal;
  refusal.status = Status::Ok;
  if (!valid) {
    record_.result = "bad-request";
    record_.outcome = policy::Outcome::BadRequest;
    record_.error = "malformed Bind";
    refusal.status = Status::BadRequest;
    refusal.message = record_.error;
    co_await sendBound(refusal);
    co_return plan;
  }
  const auto client = unmapped(clientEndpoint_.address());
  const auto mode = request.mode == control::BindMode::Server    ? policy::ListenMode::Server
                    : request.mode == control::BindMode::Publish ? policy::ListenMode::Publish
                                                                 : policy::ListenMode::Secondary;
  const bool server = mode == policy::ListenMode::Server;
  const bool publish = mode == policy::ListenMode::Publish;
  const std::uint16_t port = request.requested.port;
  plan.emplace();
  plan->requestedAddress = fromControl(request.requested.address);
  plan->requestedPort = port;
  record_.requested = endpointString(plan->requestedAddress, port);
  record_.command = server ? "listen-server" : publish ? "listen-publish" : "listen";
  if (server && port == 0) {
    record_.rule = "(per peer)";
    record_.error = "a server bind needs a port";
    record_.outcome = policy::Outcome::BadRequest;
    refusal.status = Status::BadRequest;
  } else if (publish && (port != 0 || !plan->requestedAddress.is_unspecified())) {
    record_.error = "a published listen binds the wildcard address and port 0";
    record_.outcome = policy::Outcome::BadRequest;
    refusal.status = Status::BadRequest;
  } else if (publish) {
    // Off unless [firewall_client] publish_listens names the program and its user; its peers are
    // decided by the rules as they connect.
    const auto& config = *snapshot_->config;
    plan->decision = policy::decidePublish(
        *snapshot_->engine, clientRequest(policy::Command::Bind, {}, 0),
        record_.programOrEmpty().application, config.firewallClient.publishListens, config.groups);
    const auto& admission = plan->decision.admission;
    record_.rule = admission.rule;
    if (!admission.allowed) {
      refusal.status = Status::Denied;
      record_.error = listenRefusal(plan->decision, client, port);
      record_.outcome = policy::Outcome::Denied;
      record_.deny(admission.denial({policy::Transport::Tcp, policy::Direction::Inbound, 0}));
    }
  } else {
    auto primaries = livePrimaries();
    plan->decision = policy::decideListen(
        *snapshot_->engine, clientRequest(policy::Command::Bind, {}, port), primaries.live, mode);
    const auto& admission = plan->decision.admission;
    record_.rule = admission.rule;
    record_.definition = admission.definition;
    if (admission.primary) plan->primary = primaries.connections[*admission.primary];
    if (!admission.allowed) {
      refusal.status = Status::Denied;
      record_.error = listenRefusal(plan->decision, client, port);
      record_.outcome = policy::Outcome::Denied;
      record_.deny(admission.denial({policy::Transport::Tcp, policy::Direction::Inbound, port}));
    }
  }
  if (refusal.status != Status::Ok) {
    record_.result = std::string(control::statusText(refusal.status));
    refusal.message = record_.error;
    co_await sendBound(refusal);
    plan.reset();
  }
  co_return plan;
}

std::string ControlSession::listenRefusal(const policy::ListenDecision& decision,
                                          const asio::ip::address& client,
                                          std::uint16_t port) const {
  const auto& application = record_.programOrEmpty().application;
  switch (decision.admission.reason) {
    case policy::Reason::NotPublished:
      return fmt::format(
          "no [firewall_client] publish_listens entry allows {} (pid {}, user {}) to publish a "
          "listen",
          application.empty() ? "(unnamed program)" : application, pid_,
          user_ ? *user_ : "(anonymous)");
    case policy::Reason::NoDefinition:
      return fmt::format("no protocol definition covers inbound TCP port {}", port);
    case policy::Reason::NoPrimary:
      return port == 0 ? fmt::format(
                             "no primary connection of {} (pid {}) whose protocol definition has "
                             "an inbound TCP secondary connection",
                             application, pid_)
                       : fmt::format(
                             "no primary connection of {} (pid {}) whose protocol definition "
                             "allows an inbound TCP secondary connection on port {}",
                             application, pid_, port);
    default:
      return fmt::format("no rule allows {} to serve {} (inbound TCP port {})", client.to_string(),
                         decision.admission.definition, port);
  }
}

asio::awaitable<std::optional<tcp::acceptor>> ControlSession::openListen(ListenPlan& plan) {
  std::optional<tcp::acceptor> acceptor;
  const auto& config = *snapshot_->config;
  // The socket on the external side: toward the primary's host, else where nothing says better.
  std::optional<asio::ip::address> toward;
  if (plan.primary) toward = plan.primary->destination;
  auto listenAddress = externalAddressToward(config, runtime_.io(), toward, outsideAddress());
  const auto& requested = plan.requestedAddress;
  if (!toward && config.bind.externalAddress.empty() && runtime_.isHostAddress(requested) &&
      !requested.is_loopback()) {
    listenAddress = requested;  // the program named one of the gateway's own addresses
  }
  acceptor.emplace(client_.get_executor());
  const auto ec = openInbound(*acceptor, listenAddress, plan.requestedPort, plan.decision.ports);
  control::BoundReply reply;
  if (ec) {
    reply.status = control::statusForErrno(ec.value());
    record_.result = std::string(control::statusText(reply.status));
    record_.error = "listen on " + listenAddress.to_string() + ": " + ec.message();
    record_.outcome = policy::Outcome::GatewayFailed;
    reply.message = record_.error;
    co_await sendBound(reply);
    acceptor.reset();
    co_return acceptor;
  }
  std::error_code ignored;
  const auto listening = acceptor->local_endpoint(ignored);
  record_.bound = endpointString(listening.address(), listening.port());
  randombytes_buf(plan.token.data(), plan.token.size());
  reply.status = Status::Ok;
  reply.bound = toControl(listening.address(), listening.port());
  reply.token = plan.token;
  reply.definition = record_.definition;
  if (!co_await sendBound(reply)) {
    record_.outcome = policy::Outcome::ClientClosed;
    acceptor.reset();
  }
  co_return acceptor;
}

asio::awaitable<bool> ControlSession::awaitListen(tcp::acceptor& acceptor, ListenPlan& plan) {
  // Listen: the program called listen() on its socket.
  deadline_.expires_after(snapshot_->config->limits.bindTimeout);
  control::Frame frame;
  if (!co_await readFrame(frame)) {
    record_.result = "client-closed";
    record_.outcome = policy::Outcome::ClientClosed;
    if (record_.error.empty()) record_.error = "closed before listen()";
    co_return false;
  }
  control::ListenRequest listen;
  control::ListeningReply reply;
  out_.resize(512);
  if (frame.type != static_cast<std::uint8_t>(control::MessageType::Listen) ||
      !control::decodeListen(frame.body, listen)) {
    consumeFrame();
    record_.result = "bad-request";
    record_.outcome = policy::Outcome::BadRequest;
    record_.error = "expected Listen";
    reply.status = Status::UnexpectedMessage;
    reply.message = record_.error;
    co_await send(out_.data(), control::encodeListening(out_, reply));
    co_return false;
  }
  consumeFrame();
  plan.clientPort = listen.localPort;
  // A server's and a published listen's queue as the program asked; a secondary's, one.
  const bool server = plan.decision.mode != policy::ListenMode::Secondary;
  const int backlog = listen.backlog == 0 ? 1 : std::min<int>(listen.backlog, 128);
  std::error_code ec;
  acceptor.listen(server ? backlog : 1, ec);
  reply.status = ec ? control::statusForErrno(ec.value()) : Status::Ok;
  if (ec) {
    record_.error = "listen: " + ec.message();
    reply.message = record_.error;
  }
  if (!co_await send(out_.data(), control::encodeListening(out_, reply)) || ec) {
    record_.result = ec ? std::string(control::statusText(reply.status)) : "closed";
    record_.outcome = ec ? policy::Outcome::GatewayFailed : policy::Outcome::ClientClosed;
    co_return false;
  }
  record_.result = "listening";
  record_.outcome = policy::Outcome::Listening;
  co_return true;
}

SessionRecord ControlSession::acceptRecord(const tcp::endpoint& peer) const {
  SessionRecord inbound;
  inbound.client = record_.client;
  inbound.user = record_.user;
  inbound.protocol = "fwc";
  inbound.program = record_.program;
  inbound.command = "accept";
  inbound.requested = record_.bound;
  inbound.bound = record_.bound;
  inbound.resolved = endpointString(unmapped(peer.address()), peer.port());
  inbound.definition = record_.definition;
  return inbound;
}

asio::awaitable<void> ControlSession::acceptPeers(tcp::acceptor& acceptor, const ListenPlan& plan) {
  // Accept until the policy says stop: a secondary listen takes one connection within
  // bind_timeout and ends with its primary connection; a server listens while the client keeps
  // its control connection open.
  std::error_code ec;
  const auto client = unmapped(clientEndpoint_.address());
  const tcp::endpoint clientBack{client, plan.clientPort};
  const auto gatewaySide = unmapped(client_.local_endpoint(ec).address());
  const std::uint16_t port = acceptor.local_endpoint(ec).port();
  const auto& primary = plan.primary;
  // A published listen accepts as a server does, while the client keeps it.
  const bool server = plan.decision.mode != policy::ListenMode::Secondary;
  const bool fixedPort = plan.decision.mode == policy::ListenMode::Server;
  // Ends the listen: the primary connection's end, or (a server) the client's listening socket
  // refusing the gateway's connection (the program closed it; close() is not hooked).
  const auto stop = primary ? primary->ended
                            : std::make_shared<asio::steady_timer>(
                                  client_.get_executor(), asio::steady_timer::time_point::max());
  if (server) {
    deadline_.expires_at(asio::steady_timer::time_point::max());
  } else {
    deadline_.expires_after(snapshot_->config->limits.bindTimeout);
  }
  const auto rules = firewallPolicy();
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
      if (accepted == 0) record_.outcome = policy::Outcome::TimedOut;
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
      if (accepted == 0) record_.outcome = policy::Outcome::GatewayFailed;
      break;
    }
    const auto from = incoming.remote_endpoint(ec);
    if (ec) continue;
    SessionRecord inbound = acceptRecord(from);
    const auto decision = policy::decidePeer(
        *snapshot_->engine, plan.decision,
        clientRequest(policy::Command::Bind, unmapped(from.address()), port), rules);
    inbound.rule = decision.rule;
    std::string refusedWhy;
    if (!decision.allowed) {
      refusedWhy = decision.reason == policy::Reason::NotPrimaryHost
                       ? "only " + primary->destination.to_string() +
                             ", the host of the primary connection, may connect"
                       : "denied by " + decision.rule;
    } else if (!runtime_.admit(client)) {
      refusedWhy = "session limit";
    }
    if (!decision.allowed) {
      inbound.outcome = policy::Outcome::RefusedPeer;
      // A server keeps its port; a secondary or published listen's is one of a dynamic range.
      inbound.deny(decision.denial(
          {policy::Transport::Tcp, policy::Direction::Inbound, fixedPort ? port : std::uint16_t{0}},
          unmapped(from.address()).to_string(), true));
    } else if (!refusedWhy.empty()) {
      inbound.outcome = policy::Outcome::SessionLimit;
    }
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
                   deliverInbound(runtime_, snapshot_, std::move(incoming), clientBack, plan.token,
                                  std::move(inbound), primary ? nullptr : stop, gatewaySide),
                   onException);
    if (!server) break;  // one connection per secondary listen
  }
  record_.result = accepted > 0 ? "succeeded" : "closed";
  if (accepted > 0) record_.outcome = policy::Outcome::Succeeded;
  record_.resolved = fmt::format("{} connection{}", accepted, accepted == 1 ? "" : "s");
}

}  // namespace fwgate::gateway
