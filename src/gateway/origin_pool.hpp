// Idle persistent connections from the Web Proxy to origin servers, kept for the next request to
// the same origin by the same client identity.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace fwgate::gateway {

// One pool per event loop (not thread-safe: one loop, one pool). Keys are the origin as the
// request named it ("host:port") and the identity it was used for (the authenticated user, or
// empty), so that one user's connection never carries another's request. Bounded per key; idle
// connections expire, and one the origin closed is dropped when looked at or by the sweep that
// runs once a second while the pool holds any.
class OriginPool {
 public:
  // `io` may not be constructed yet (the Runtime is built before its io_context): nothing here
  // touches it before the first put().
  explicit OriginPool(asio::io_context& io) : io_(io) {}

  struct Connection {
    asio::ip::tcp::socket socket;
    asio::ip::address peer;  // unmapped
  };
  // A live idle connection for `key` whose peer address is one of `allowed` (the policy's answer
  // for this request), or nullopt. Most recently used first.
  std::optional<Connection> take(const std::string& key,
                                 const std::vector<asio::ip::address>& allowed);
  // Keeps `connection` for `key` for `idle`; at most `maxPerKey` per key (the oldest goes first);
  // maxPerKey 0 closes it.
  void put(const std::string& key, Connection connection, std::chrono::milliseconds idle,
           std::size_t maxPerKey);
  // Whether an idle connection can still carry a request: no EOF, no error, no unasked-for data.
  static bool usable(asio::ip::tcp::socket& socket);
  std::size_t size() const { return count_; }
  // Closes every idle connection and the sweep timer: before the io_context goes.
  void clear();

 private:
  struct Idle {
    Connection connection;
    std::chrono::steady_clock::time_point expires;
  };
  asio::awaitable<void> sweepLoop();
  void sweep();

  asio::io_context& io_;
  std::optional<asio::steady_timer> sweep_;
  bool sweeping_ = false;
  std::map<std::string, std::deque<Idle>> idle_;
  std::size_t count_ = 0;
};

}  // namespace fwgate::gateway
