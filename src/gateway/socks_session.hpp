// One SOCKS 4/4a/5 client connection, top to bottom: greeting -> authenticate -> request ->
// decide -> connect | bind | udp -> reply -> relay, with a record logged once at the end.
#pragma once

#include <array>
#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <memory>
#include <optional>
#include <vector>

#include "config/config.hpp"
#include "gateway/runtime.hpp"
#include "gateway/session_log.hpp"
#include "protocol/socks5.hpp"

namespace fwgate::gateway {

class SocksSession {
 public:
  // `peer`: the client's address and port, as accept() returned them.
  SocksSession(Runtime& runtime, asio::ip::tcp::socket client, asio::ip::tcp::endpoint peer,
               const config::Listener& listener);
  asio::awaitable<void> run();
  // run() ended by an exception: the record says so (RecordWriter::failed).
  void endedByError() { writer_.failed(); }

 private:
  using Reply = protocol::socks5::Reply;
  enum class Dialect { Socks4, Socks5 };

  // What the handshake asked for.
  struct Request {
    policy::Command command = policy::Command::Connect;
    protocol::Address destination;
  };

  // Phases, in order. Each returns what the next needs, so its frame is gone before the relay.
  // nullopt: the phase failed, replied (when the protocol has a reply for it) and recorded why.
  asio::awaitable<std::optional<Request>> timedHandshake();  // handshake() within its deadline
  asio::awaitable<std::optional<Request>> handshake();
  asio::awaitable<std::optional<Request>> socks5Handshake();
  asio::awaitable<std::optional<Request>> socks4Handshake();
  asio::awaitable<bool> authenticate();  // RFC 1929 sub-negotiation
  asio::awaitable<std::optional<asio::ip::tcp::socket>> connect(
      const protocol::Address& destination);
  asio::awaitable<void> bind(const protocol::Address& expectedPeer);
  asio::awaitable<void> udpAssociate(const protocol::Address& clientHint);

  // Helpers.
  // Reads more handshake bytes; false on EOF, error (the deadline's cancellation) or full buffer.
  asio::awaitable<bool> readMore();
  void consume(std::size_t n);
  // Resolves a wire address into candidate addresses (in resolver order); sets `ec` on failure.
  asio::awaitable<std::vector<asio::ip::address>> resolve(const protocol::Address& destination,
                                                          std::error_code& ec);
  // `address` empty: the destination is not known yet (BIND from any peer).
  policy::Decision decide(policy::Command command, const std::optional<asio::ip::address>& address,
                          std::uint16_t port, const std::string& name);
  // Sends the reply for the dialect in use; `bound` is BND.ADDR/BND.PORT (or SOCKS4 DSTIP/PORT).
  asio::awaitable<bool> sendReply(Reply reply, const protocol::Address& bound);
  asio::awaitable<bool> sendReply(Reply reply, const asio::ip::tcp::endpoint& bound);
  // Fails the request: the reply is sent and recorded; the caller has set record_.error.
  // (No std::string parameter: GCC 12 can destroy temporaries built in a co_await twice, so no
  // co_await expression in this code builds one.)
  asio::awaitable<void> fail(Reply reply);
  asio::awaitable<bool> write(const std::uint8_t* data, std::size_t n);
  // RFC 1961 after method 0x01: Kerberos context establishment, then the protection level.
  asio::awaitable<bool> authenticateKerberos();
  // The next RFC 1961 message; nullopt (recorded) when the client closes or sends garbage.
  asio::awaitable<std::optional<protocol::socks5::GssMessage>> readGssMessage();
  asio::awaitable<bool> writeGssMessage(protocol::socks5::GssMessageType type,
                                        const std::vector<std::uint8_t>& token);
  // Handshake bytes live on the heap only until the request is parsed.
  std::uint8_t* in() { return in_->data(); }
  // Keeps bytes the client pipelined behind its request, frees the handshake buffer.
  void endHandshake();
  // Completes when the client closes the control connection (or errors); for BIND and UDP.
  // With `keepData`, bytes the client sends are left unread (they belong to the relay after).
  asio::awaitable<void> waitClientClose(bool keepData);
  // The gateway's address the client reached (getsockname: only BIND and UDP need it).
  asio::ip::address localAddress() const;

  Runtime& runtime_;
  std::shared_ptr<const Snapshot> snapshot_;
  asio::ip::tcp::socket client_;
  const config::Listener& listener_;  // owned by the Gateway, which outlives every session
  asio::ip::tcp::endpoint clientEndpoint_;
  // The handshake's and BIND's deadline; gone before the relay (which has its own timer). On the
  // heap: an idle relay's frame would otherwise keep the empty slot (120 bytes).
  std::unique_ptr<asio::steady_timer> deadline_;
  Dialect dialect_ = Dialect::Socks5;
  std::optional<std::string> user_;
  // Greeting + auth + request, pipelined; null after the handshake. 2 KiB, grown to a whole
  // GSS-API message (64 KiB) for the Kerberos method.
  std::unique_ptr<std::vector<std::uint8_t>> in_ =
      std::make_unique<std::vector<std::uint8_t>>(2048);
  std::vector<std::uint8_t> pending_;  // bytes the client sent behind its request: relayed first
  std::size_t inLength_ = 0;
  protocol::AddressType requestType_ = protocol::AddressType::IPv4;
  SessionRecord record_;
  RecordWriter writer_;  // after record_: writes it when the session goes, at its end or at stop
};

}  // namespace fwgate::gateway
