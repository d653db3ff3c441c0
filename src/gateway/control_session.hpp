// One firewall-client control connection (docs/control-protocol.md): Hello -> Welcome, then
// requests (GetConfig, Resolve) answered in order, or a Connect after which the same connection is
// relayed to the destination as a SOCKS CONNECT is. Logged once at the end, with the user, the
// client host and the application.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "crypto/noise.hpp"
#include "crypto/secure_stream.hpp"
#include "gateway/runtime.hpp"
#include "gateway/session_log.hpp"
#include "policy/firewall_client.hpp"
#include "protocol/control.hpp"

namespace fwgate::gateway {

class ControlSession {
 public:
  // `peer`: the client's address and port, as accept() returned them.
  ControlSession(Runtime& runtime, asio::ip::tcp::socket client, asio::ip::tcp::endpoint peer);
  asio::awaitable<void> run();
  // run() ended by an exception: the record says so (RecordWriter::failed).
  void endedByError() { writer_.failed(); }

 private:
  using Status = protocol::control::Status;

  // Phases. hello() answers the Welcome; false ends the connection.
  asio::awaitable<bool> hello();
  // Version 3's encrypted channel (docs/control-protocol.md): a KeyRequest answered in clear; a
  // Handshake's message 1 opened into in_ (its Hello and requests), its reply due as message 2.
  // False: refused, replied and recorded.
  asio::awaitable<void> offerKey();
  asio::awaitable<bool> acceptHandshake(protocol::Bytes message);
  // A resumed connection (crypto/resumption.hpp): the ticket opened, the first record into in_.
  asio::awaitable<bool> acceptResume(protocol::Bytes body);
  // What both share: a refusal (recorded, the Welcome sent: in message 2 or the Resume's first
  // record once a key is agreed, else in clear); the first frames in clear into in_ (empty, or
  // why not, with the status to answer); the replay cache's word on a first message (empty:
  // fresh).
  asio::awaitable<void> refuseChannel(protocol::control::Welcome welcome, std::string result,
                                      std::string why);
  std::string takeFirstFrames(protocol::Bytes plain, std::string_view what,
                              protocol::control::Status& status);
  std::string replayProblem(const crypto::Key& seen, std::string_view what);
  // The Hello's Timestamp against the gateway's clock; empty when within max_clock_skew.
  std::string clockProblem(std::uint64_t timestamp) const;
  // The [control.hosts] name of a handshake's client key, if it is enrolled.
  std::optional<std::string> enrolledHost(const crypto::Key& key) const;
  asio::awaitable<bool> sendConfig();
  asio::awaitable<bool> resolveName(protocol::Bytes body);
  // Connects and relays; always the last request.
  asio::awaitable<void> connect(protocol::Bytes body);
  // A remoted listen (control_listen.cpp): Bind -> Bound, Listen -> Listening, then accepts for
  // as long as the policy allows; always the last request.
  asio::awaitable<void> bindAndListen(protocol::Bytes body);
  // What a remoted listen was allowed, and what its phases learn on the way.
  struct ListenPlan {
    policy::ListenDecision decision;
    std::shared_ptr<PrimaryConnection> primary;  // a secondary listen's
    asio::ip::address requestedAddress;
    std::uint16_t requestedPort = 0;
    protocol::control::Token token{};  // proves the gateway to the client's listening socket
    std::uint16_t clientPort = 0;      // the client's own listening socket (from Listen)
  };
  // The listen's phases, in order; each nullopt or false has replied and recorded why.
  // Bind decoded and decided (policy::decideListen).
  asio::awaitable<std::optional<ListenPlan>> decideListen(protocol::Bytes body);
  // The socket on the external side, bound; Bound sent.
  asio::awaitable<std::optional<asio::ip::tcp::acceptor>> openListen(ListenPlan& plan);
  // Listen read, listen(), Listening sent.
  asio::awaitable<bool> awaitListen(asio::ip::tcp::acceptor& acceptor, ListenPlan& plan);
  // Peers accepted, each decided (policy::decidePeer) and delivered, until the listen ends.
  asio::awaitable<void> acceptPeers(asio::ip::tcp::acceptor& acceptor, const ListenPlan& plan);
  asio::awaitable<bool> sendBound(protocol::control::BoundReply reply);
  // The log's words for a refused listen.
  std::string listenRefusal(const policy::ListenDecision& decision, const asio::ip::address& client,
                            std::uint16_t port) const;
  // An accepted peer's own record ("accept"), from the listen's.
  SessionRecord acceptRecord(const asio::ip::tcp::endpoint& peer) const;
  // UDP through the gateway (control_udp.cpp): a relay for the client's datagrams for as long
  // as the control connection lives; always the last request.
  asio::awaitable<void> udpAssociate(protocol::Bytes body);
  // The policy of firewall clients (policy/firewall_client.hpp) decides; these give it its data.
  // This program's live primary connections, and the same as policy's plain data, index for index.
  struct Primaries {
    std::vector<std::shared_ptr<PrimaryConnection>> connections;
    std::vector<policy::LivePrimary> live;
  };
  Primaries livePrimaries() const;
  policy::FirewallClientPolicy firewallPolicy() const;
  // A datagram's decision, in the record; an allowed destination joins `contacted`.
  void noteDatagram(const policy::FirewallDecision& decision, const asio::ip::address& destination,
                    std::uint16_t port, std::vector<policy::LivePrimary>& contacted);
  // This client's request (policyRequest: protected destinations, the client's own host).
  policy::Request clientRequest(
      policy::Command command, const std::optional<asio::ip::address>& destination,
      std::uint16_t port, const std::string& name = {},
      const std::optional<policy::ConnectionFacts>& connection = std::nullopt) const;

  // Reads until a whole frame is at the front of the input; false on EOF, error, timeout or a
  // frame too large (recorded). The frame stays until consumeFrame(). On the encrypted channel
  // the input is what the records opened to.
  asio::awaitable<bool> readFrame(protocol::control::Frame& frame);
  void consumeFrame();
  // Writes a frame: in clear, as the handshake's message 2 (the first after a Handshake), or
  // sealed in records.
  asio::awaitable<bool> send(const std::uint8_t* data, std::size_t n);
  asio::awaitable<bool> writeRaw(const std::uint8_t* data, std::size_t n);
  // `server`: the connected destination socket, whose local address is reported as Bound.
  asio::awaitable<bool> sendConnected(Status status, const char* message,
                                      const asio::ip::tcp::socket* server = nullptr);
  // Where a remoted server listens when nothing says better (control_listen.cpp).
  asio::ip::address outsideAddress() const;
  // The program this connection speaks for (client address, PID, user, application).
  ProgramKey program() const;
  // The network (with firewall_clients) the client is in, or null.
  const policy::Network* clientNetwork() const;

  Runtime& runtime_;
  std::shared_ptr<const Snapshot> snapshot_;
  asio::ip::tcp::socket client_;
  asio::ip::tcp::endpoint clientEndpoint_;
  asio::steady_timer deadline_;
  std::optional<std::string> user_;
  std::uint32_t pid_ = 0;         // the program's PID, from Hello (0: not told)
  std::vector<std::uint8_t> in_;  // control frames; released before a relay
  std::size_t inLength_ = 0;      // bytes received into in_
  std::size_t frameSize_ = 0;     // bytes of the frame at the front of in_
  std::vector<std::uint8_t> out_;
  // The encrypted channel: the handshake until message 2 is sent, then the records' ciphers.
  // wire_ holds bytes read but not yet opened (a record cut short; after Connected, the
  // application's first bytes).
  std::optional<crypto::HandshakeIK> handshake_;
  std::optional<crypto::SecureStream> secure_;
  bool resumeReplyDue_ = false;      // the Welcome goes in a Resume frame
  crypto::Bytes ticket_;             // issued after a full handshake, carried by the Welcome
  std::optional<std::string> host_;  // the enrolled host whose agent's key the handshake proved
  // What names this encrypted channel: the handshake's ephemeral key, or the resumed
  // connection's id. A Kerberos token in the Hello must be bound to it.
  crypto::Key channelId_{};
  std::vector<std::uint8_t> wire_;
  SessionRecord record_;
  RecordWriter writer_;  // after record_: writes it when the session goes, at its end or at stop
};

}  // namespace fwgate::gateway
