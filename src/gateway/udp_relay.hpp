// The datagram side of one SOCKS 5 UDP ASSOCIATE: a client-facing socket and a remote-facing
// socket, encapsulation both ways (RFC 1928 section 7), policy per destination.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/udp.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "gateway/session_log.hpp"
#include "policy/engine.hpp"

namespace asio {
class thread_pool;
}

namespace fwgate::gateway {

class UdpRelay {
 public:
  // A destination's verdict: whether datagrams go there, and the rule the log names.
  struct Verdict {
    bool allowed = false;
    std::string rule;
  };
  using Decide =
      std::function<Verdict(const asio::ip::address&, std::uint16_t, const std::string&)>;

  // `client`/`clientPort`: datagrams are accepted only from this address, and from this port
  // when it is not 0 (otherwise the first datagram's port is learned).
  UdpRelay(asio::any_io_executor executor, asio::ip::address client, std::uint16_t clientPort,
           Decide decide, asio::thread_pool& resolverPool, std::chrono::milliseconds idleTimeout,
           SessionRecord& record);

  // Binds the client-facing socket on `clientFacing` (port 0) and the remote-facing socket.
  std::error_code open(const asio::ip::address& clientFacing);
  asio::ip::udp::endpoint clientFacingEndpoint() const;
  // RemoteBindUdpPorts: the same, with the remote-facing socket bound on `published` (the
  // gateway's external address and the published port) instead of any address and a free port.
  std::error_code open(const asio::ip::address& clientFacing,
                       const asio::ip::udp::endpoint& published);
  asio::ip::udp::endpoint remoteFacingEndpoint() const;

  // Replies are relayed from destinations the client has sent to; `also` admits other senders
  // (a protocol definition's secondary connections: a server answering from a new port).
  using AcceptFrom = std::function<bool(const asio::ip::udp::endpoint& sender)>;
  void acceptAlso(AcceptFrom also) { acceptAlso_ = std::move(also); }

  // Relays until the idle timeout or a socket error; the session cancels it when TCP closes.
  asio::awaitable<void> run();

 private:
  asio::awaitable<void> fromClient();
  asio::awaitable<void> fromRemote();
  asio::awaitable<void> idleWatch();
  asio::awaitable<bool> resolve(const std::string& name, asio::ip::address& out);
  bool allowed(const asio::ip::udp::endpoint& destination, const std::string& name);

  asio::ip::udp::socket clientSide_;
  asio::ip::udp::socket remoteSide_;
  asio::ip::address client_;
  std::uint16_t clientPort_;
  Decide decide_;
  asio::thread_pool& resolverPool_;
  std::chrono::milliseconds idleTimeout_;
  std::chrono::steady_clock::time_point lastActivity_ = std::chrono::steady_clock::now();
  SessionRecord& record_;
  std::map<asio::ip::udp::endpoint, bool> decisions_;  // bounded cache of per-destination verdicts
  std::set<asio::ip::udp::endpoint> contacted_;        // replies are accepted only from these
  AcceptFrom acceptAlso_;                              // and from these, when set
  std::map<std::string, asio::ip::address> names_;     // bounded cache of resolved names
};

}  // namespace fwgate::gateway
