// One Web Proxy client connection (RFC 9112): requests read in order (pipelined ones too), each
// decided by the policy, forwarded to its origin over a pooled persistent connection or tunnelled
// (CONNECT, Upgrade), answered, and logged as one line; the automatic configuration script for
// requests to the proxy itself.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gateway/origin_pool.hpp"
#include "gateway/outbound.hpp"
#include "gateway/runtime.hpp"
#include "gateway/session_log.hpp"
#include "protocol/http.hpp"

namespace fwgate::gateway {

class WebProxySession {
 public:
  // `peer`: the client's address and port, as accept() returned them.
  WebProxySession(Runtime& runtime, asio::ip::tcp::socket client, asio::ip::tcp::endpoint peer);
  asio::awaitable<void> run();

  // What waiting for bytes gave.
  enum class Read : std::uint8_t { Ok, Eof, Timeout, Error };

  // Bytes that grow without being zeroed first (recv() writes them).
  template <typename T>
  struct UninitializedAllocator : std::allocator<T> {
    template <typename U>
    struct rebind {
      using other = UninitializedAllocator<U>;
    };
    template <typename U>
    void construct(U* p) noexcept {
      ::new (static_cast<void*>(p)) U;
    }
    template <typename U, typename... Args>
    void construct(U* p, Args&&... args) {
      ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
    }
  };
  using Buffer = std::vector<std::uint8_t, UninitializedAllocator<std::uint8_t>>;

 private:
  using Clock = std::chrono::steady_clock;

  // Requests one after another until one ends the connection; the watchdog beside it enforces
  // the deadline of whatever read is under way.
  asio::awaitable<void> serve();
  asio::awaitable<void> watchdog();
  void setDeadline(Clock::time_point deadline, asio::ip::tcp::socket* watched);
  // Waits until `socket` is readable before `deadline`, then appends what it holds to `buf`. No
  // buffer is grown while waiting.
  asio::awaitable<Read> readInto(asio::ip::tcp::socket& socket, Buffer& buf, std::size_t chunk,
                                 Clock::time_point deadline);
  // Waits for the first byte of the next request (header_timeout for the first, then
  // keep_alive_timeout). False: the client closed or went quiet.
  asio::awaitable<bool> nextRequest(bool first);
  // One request, from its head to its log line. False: close the connection after it.
  asio::awaitable<bool> serveOne();
  // What a parsed request gets: the script, a forwarded exchange, or a tunnel.
  asio::awaitable<bool> handle(protocol::http::RequestHead& head, SessionRecord& record);
  asio::awaitable<bool> servePac(const protocol::http::RequestHead& head, SessionRecord& record);
  asio::awaitable<bool> forward(protocol::http::RequestHead& head, SessionRecord& record);
  asio::awaitable<bool> tunnel(const protocol::http::RequestHead& head, SessionRecord& record);
  // The user of Proxy-Authorization, verified once per connection and value. False: the client
  // offered credentials that are wrong (already answered with 407).
  // Proxy-Authorization: Negotiate (RFC 4559) with a Kerberos token: the connection's user.
  asio::awaitable<bool> negotiate(std::string token, std::string credentials,
                                  SessionRecord& record);
  asio::awaitable<bool> authenticate(const protocol::http::RequestHead& head,
                                     SessionRecord& record);
  // Resolves and decides the request's destination; on failure answers and returns nullopt (the
  // record says why; lastAnswerKeeps_ whether the connection goes on).
  asio::awaitable<std::optional<Allowed>> admit(const protocol::http::RequestHead& head,
                                                policy::Command command, SessionRecord& record);
  // Connects to one of `allowed`, or answers 502/504 and returns a closed socket.
  asio::awaitable<asio::ip::tcp::socket> connectOrigin(const Allowed& allowed, std::uint16_t port,
                                                       SessionRecord& record);

  // The request body from the client to `origin`, bytes untouched. False: the body was malformed
  // (answered 400) or a side failed (record_.error says which).
  asio::awaitable<bool> sendBody(const protocol::http::RequestHead& head,
                                 asio::ip::tcp::socket& origin, SessionRecord& record);
  // An answer of the proxy's own: status, a plain-text body from record.error, and for 407 the
  // challenge. `keepAlive` is honoured only for requests without a body left unread.
  asio::awaitable<bool> answer(int status, bool keepAlive, SessionRecord& record);
  // Pipelined client bytes first, then relay(): CONNECT and upgraded connections.
  asio::awaitable<void> relayWith(asio::ip::tcp::socket& server, SessionRecord& record);

  // Client bytes: reads more into in_ once the socket is readable, before `deadline`.
  asio::awaitable<Read> readClient(Clock::time_point deadline);
  asio::awaitable<bool> writeClient(const void* data, std::size_t n, SessionRecord& record);
  protocol::Bytes pending() const { return {in_.data() + inStart_, in_.size() - inStart_}; }
  void consume(std::size_t n);
  void releaseKept();
  protocol::http::Limits limits() const;

  Runtime& runtime_;
  std::shared_ptr<const Snapshot> snapshot_;
  asio::ip::tcp::socket client_;
  asio::ip::tcp::endpoint clientEndpoint_;
  asio::ip::tcp::endpoint localEndpoint_;
  asio::steady_timer timer_;  // the watchdog's
  Clock::time_point deadline_ = Clock::time_point::max();
  asio::ip::tcp::socket* watched_ = nullptr;  // cancelled when deadline_ passes
  bool timedOut_ = false;
  bool finished_ = false;
  // Client bytes not used yet (a head being read, body bytes, pipelined requests); freed while
  // the connection is idle, so an idle keep-alive client costs no buffer.
  Buffer in_;
  Buffer out_;  // origin bytes of the exchange under way (the session's, so that it is reused)
  std::size_t inStart_ = 0;
  std::optional<std::string> user_;  // verified user of this connection
  std::string credentials_;          // the Proxy-Authorization value user_ was verified with
  std::string userAuth_;             // how user_ was proven: "password" (Basic) or "kerberos"
  bool requestBodyLeft_ = false;     // the current request's body was not read (no keep-alive)
  bool requestKeepAlive_ = true;     // the current request did not ask to close (Connection)
  bool lastAnswerKeeps_ = false;     // the last answer() left the connection usable
  asio::ip::address connected_;      // where connectOrigin() connected
  // The origin connection of this client's last request, kept for its next one to the same
  // origin (keptKey_: origin and user); to the shared pool when it goes elsewhere or idles.
  std::optional<OriginPool::Connection> kept_;
  std::string keptKey_;
};

}  // namespace fwgate::gateway
