// The gateway daemon: listeners, the accept loop, signals (HUP reload, TERM graceful stop).
#pragma once

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/signal_set.hpp>
#include <atomic>
#include <memory>
#include <optional>
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
  std::optional<std::uint32_t> workersOverride;     // --workers: replaces [gateway] workers
  // --state-dir: where control.key lives when [control] key_file is not set ("" :
  // $STATE_DIRECTORY, else /var/lib/fwgate).
  std::string stateDir;
};

// What a listening socket serves.
enum class Service : std::uint8_t { Socks, Control, WebProxy };

// The event loops a configuration asks for: [gateway] workers, or one per CPU this process may
// run on (its affinity mask: `taskset -c 0 fwgate gateway` runs one).
std::uint32_t workerCount(std::uint32_t configured);

// N event loops, one thread each (the first on the calling thread). A session stays on the loop
// that accepted it. SOCKS and Web Proxy connections are spread by the kernel over one
// SO_REUSEPORT socket per loop, or handed out in turn by the first loop ([gateway] balance);
// control-channel connections are accepted by the first loop and handed to the loop their
// client's address hashes to, so a firewall client's primary connections and its remoted
// listens meet on one loop. Signals, reloads and the packet filters' refresh run on the first.
class Gateway {
 public:
  Gateway(GatewayOptions options, std::shared_ptr<const Snapshot> initial);
  ~Gateway();
  // Binds every listener, drops privileges, serves until SIGTERM/SIGINT. Returns an exit status.
  int run();

 private:
  struct Worker;
  asio::awaitable<void> acceptLoop(Worker& worker, std::size_t listener);
  // The loop a connection accepted by `worker` on `listener` is served on.
  Worker& placeOf(Worker& worker, std::size_t listener, const asio::ip::address& client);
  void handOff(Worker& target, asio::ip::tcp::socket socket, std::size_t listener,
               asio::ip::tcp::endpoint peer);
  void spawnSession(Worker& worker, asio::ip::tcp::socket socket, std::size_t listener,
                    asio::ip::tcp::endpoint peer);
  asio::awaitable<void> handleSignals();
  asio::awaitable<void> drainAndStop();
  asio::awaitable<void> refreshPacketFilters();
  void reload();
  bool openListeners();
  bool openListener(std::size_t index);
  // The listeners of one service, in order.
  std::vector<config::Listener> listenersOf(Service service) const;
  bool dropPrivileges();
  // The control channel's key: [control] key_file, else control.key in the state directory,
  // created when missing; a key for this run only when it cannot be (logged).
  bool loadControlKey();
  Worker& first() { return *workers_.front(); }

  GatewayOptions options_;
  // Declared before the workers so it is destroyed after them: ~io_context destroys the
  // sessions still open after the grace period, and they release their slots here.
  SharedState shared_;
  std::shared_ptr<const Snapshot> snapshot_;  // the current one, as the first loop sees it
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<asio::signal_set> signals_;  // on the first loop
  std::vector<config::Listener> listeners_;    // SOCKS, then the control channel's, then the web's
  std::vector<Service> services_;              // of each element of listeners_
  config::Config::Balance balance_ = config::Config::Balance::Kernel;
  std::size_t nextWorker_ = 0;  // round robin; the first loop's
  std::atomic<bool> stopping_{false};
};

// "127.0.0.1:1080", "[::1]:1080", "0.0.0.0:0". False if malformed.
bool parseListenAddress(const std::string& text, std::string& address, std::uint16_t& port);

}  // namespace fwgate::gateway
