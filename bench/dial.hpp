// One client connection, directly or through a proxy, driven without blocking. SOCKS5 (no auth,
// CONNECT): connect -> greeting -> method reply -> request -> reply -> optional echo check.
// HTTP CONNECT: connect -> CONNECT request -> 2xx head -> optional echo check. HTTP GET (an idle
// keep-alive client): connect -> one GET, absolute form through a proxy -> a whole 200 response
// that leaves the connection open.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common.hpp"
#include "http_wire.hpp"

namespace fwgate::bench {

// What a Dial speaks to the proxy (or, without a proxy, to the target).
enum class ProxyProtocol : std::uint8_t {
  Socks5,       // SOCKS5 CONNECT; direct: a plain connection
  HttpConnect,  // HTTP CONNECT tunnel; direct: a plain connection
  HttpGet,      // one GET of getPath, then the connection is held; direct: origin-form GET
};

// "socks5", "http-connect", "http-get"; nullopt for anything else.
std::optional<ProxyProtocol> parseProxyProtocol(std::string_view name);
const char* proxyProtocolName(ProxyProtocol protocol);

// Where to go and how to check the relay; shared read-only by every Dial of a run.
struct DialPlan {
  std::optional<Endpoint> proxy;  // nullopt: connect to target directly
  Endpoint target;
  std::vector<Endpoint>
      sources;                  // local addresses to connect from, in turn; empty: kernel's choice
  std::size_t echoBytes = 0;    // 0: ready after the CONNECT reply; else send and expect them back
  bool awaitPeerClose = false;  // after the echo, ready only once the far end's close arrives

  ProxyProtocol protocol = ProxyProtocol::Socks5;
  std::size_t getBodyBytes = 0;  // HttpGet: the body the origin sends, checked
  bool requireKeepAlive = true;  // HttpGet: a response that closes the connection is a failure

  DialPlan(std::optional<Endpoint> proxyEp, Endpoint targetEp, std::vector<Endpoint> sourceEps,
           std::size_t echo, ProxyProtocol proto = ProxyProtocol::Socks5,
           const std::string& getPath = "/");
  std::vector<std::uint8_t> request;  // the SOCKS5 or HTTP request, built once
  std::vector<std::uint8_t> payload;  // echoBytes of a fixed pattern
};

enum class DialState : std::uint8_t {
  Idle,
  Connecting,
  MethodReply,
  ConnectReply,
  HttpReply,
  Echo,
  AwaitClose,
  Ready,
  Failed
};

const char* dialStateName(DialState state);

// Register fd() with EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET and call advance() on every event.
class Dial {
 public:
  // Starts the connect (the sequence number picks the source address); on an immediate error
  // state() is Failed and failure() says why.
  void start(const DialPlan& plan, std::uint64_t sequence);
  // Makes all the progress the socket allows without blocking.
  void advance(const DialPlan& plan, std::uint32_t events);
  // Takes a socket connected by other means (bulk --blocking-connect) as a Ready dial.
  void adopt(int fd);
  // Marks the dial failed with a reason and closes the socket.
  void fail(std::string reason);
  // Closes the socket and returns to Idle.
  void close();

  DialState state() const { return state_; }
  int fd() const { return fd_.get(); }
  const std::string& failure() const { return failure_; }
  Clock::time_point startedAt() const { return started_; }

 private:
  bool sendAll(const std::vector<std::uint8_t>& bytes, const char* what);
  bool onConnected(const DialPlan& plan, std::uint32_t events);
  // Each returns true when the phase completed and the next one may run now.
  bool readMethodReply(const DialPlan& plan);
  bool readConnectReply(const DialPlan& plan);
  bool readHttpReply(const DialPlan& plan);
  bool afterHandshake(const DialPlan& plan);
  bool readEcho(const DialPlan& plan);
  bool readPeerClose();

  Fd fd_;
  DialState state_ = DialState::Idle;
  std::size_t have_ = 0;
  std::size_t echoed_ = 0;
  std::array<std::uint8_t, 300> in_{};
  http::ResponseReader http_;
  std::string failure_;
  Clock::time_point started_{};
};

}  // namespace fwgate::bench
