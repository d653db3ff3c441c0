// The gateway daemon: listeners, the accept loop, signals (HUP reload, TERM graceful stop).
#pragma once

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/signal_set.hpp>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "gateway/runtime.hpp"

namespace fwgate::gateway {

struct GatewayOptions {
  std::string configPath;                        // empty: the embedded default
  std::vector<config::Listener> listenOverride;  // --listen: replaces the configured listeners
  // --control-listen: replaces [control] listen
  std::vector<config::Listener> controlListenOverride;
  std::vector<config::Listener> webListenOverride;  // --web-listen: replaces [web_proxy] listen
};

// What a listening socket serves.
enum class Service : std::uint8_t { Socks, Control, WebProxy };

class Gateway {
 public:
  Gateway(GatewayOptions options, std::shared_ptr<const Snapshot> initial);
  ~Gateway();
  // Binds every listener, drops privileges, serves until SIGTERM/SIGINT. Returns an exit status.
  int run();

 private:
  // `listener` is an element of listeners_, which outlives every session.
  asio::awaitable<void> acceptLoop(asio::ip::tcp::acceptor& acceptor,
                                   const config::Listener& listener, Service service);
  asio::awaitable<void> handleSignals();
  asio::awaitable<void> drainAndStop();
  asio::awaitable<void> refreshPacketFilters();
  void reload();
  bool openListeners();
  bool openListener(const config::Listener& listener, Service service);
  // The listeners of one service, in order.
  std::vector<config::Listener> listenersOf(Service service) const;
  bool dropPrivileges();

  GatewayOptions options_;
  // Declared before io_ so it is destroyed after it: ~io_context destroys the sessions still
  // open after the grace period, and they release their slots in the Runtime.
  Runtime runtime_;
  asio::io_context io_{1};
  asio::signal_set signals_;
  std::vector<std::unique_ptr<asio::ip::tcp::acceptor>> acceptors_;
  std::vector<config::Listener> listeners_;  // SOCKS, then the control channel's, then the web's
  std::vector<Service> services_;            // of each element of listeners_
  bool stopping_ = false;
};

// "127.0.0.1:1080", "[::1]:1080", "0.0.0.0:0". False if malformed.
bool parseListenAddress(const std::string& text, std::string& address, std::uint16_t& port);

}  // namespace fwgate::gateway
