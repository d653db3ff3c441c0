#include "gateway/gateway.hpp"

#include <grp.h>
#include <linux/capability.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <csignal>
#include <cstdlib>
#include <memory>
#include <thread>
#include <utility>

#include <spdlog/spdlog.h>
#include <asio/co_spawn.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/ip/v6_only.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include "crypto/key_file.hpp"
#include "gateway/control_session.hpp"
#include "gateway/net.hpp"
#include "gateway/socks_session.hpp"
#include "gateway/web_proxy_session.hpp"
#include "protocol/control.hpp"

namespace fwgate::gateway {

using asio::ip::tcp;

namespace {

std::string methodNames(const config::Listener& l) {
  std::string out;
  for (auto m : l.methods) {
    if (!out.empty()) out += ",";
    out += config::authMethodName(m);
  }
  return out;
}

// The registry slot Runtime::admit took for a client, released on every way out of its session,
// exceptions included, and when a session's coroutine is destroyed before it ran.
class AdmittedSlot {
 public:
  AdmittedSlot(Runtime& runtime, const asio::ip::address& client)
      : runtime_(&runtime), client_(client) {}
  AdmittedSlot(AdmittedSlot&& other) noexcept
      : runtime_(std::exchange(other.runtime_, nullptr)), client_(other.client_) {}
  AdmittedSlot(const AdmittedSlot&) = delete;
  AdmittedSlot& operator=(const AdmittedSlot&) = delete;
  AdmittedSlot& operator=(AdmittedSlot&&) = delete;
  ~AdmittedSlot() {
    if (runtime_) runtime_->release(client_);
  }

 private:
  Runtime* runtime_;
  asio::ip::address client_;
};

// The completion handler of a co_spawn on a loop: an exception that ended the coroutine is
// counted in that loop's Runtime and logged after `what`.
auto exceptionReporter(Runtime& runtime, const char* what) {
  return [&runtime, what](std::exception_ptr e) {
    if (!e) return;
    ++runtime.counters().sessionExceptions;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("{}: {}", what, ex.what());
    }
  };
}

// Runs a session on `io`. Its completion handler owns the session and the slot, so that no frame
// of our own sits between co_spawn's and the session's run() (an idle connection keeps every
// frame of its chain). Asio destroys the awaitable, and with it run()'s frame, before it calls
// the handler; at shutdown, before it destroys the handler.
template <typename Session>
void spawn(asio::io_context& io, Runtime& runtime, std::unique_ptr<Session> session,
           AdmittedSlot slot) {
  Session& running = *session;
  asio::co_spawn(io, running.run(),
                 [report = exceptionReporter(runtime, "session ended by internal error"),
                  session = std::move(session), slot = std::move(slot)](std::exception_ptr e) {
                   if constexpr (requires { session->endedByError(); }) {
                     if (e) session->endedByError();
                   }
                   report(e);
                 });
}

}  // namespace

bool parseListenAddress(const std::string& text, std::string& address, std::uint16_t& port) {
  return config::parseEndpoint(text, address, port);
}

namespace {

// Whether `endpoint` can be bound by a socket without SO_REUSEPORT: nothing else listens there,
// and so no other process's SO_REUSEPORT group could be joined by mistake.
bool portIsFree(const tcp::endpoint& endpoint, std::error_code& ec) {
  tcp::acceptor probe(asio::system_executor{});
  probe.open(endpoint.protocol(), ec);
  if (!ec) probe.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec && endpoint.address().is_v6()) {
    probe.set_option(asio::ip::v6_only(!endpoint.address().is_unspecified()), ec);
  }
  if (!ec) probe.bind(endpoint, ec);
  return !ec;
}

}  // namespace

std::uint32_t workerCount(std::uint32_t configured) {
  if (configured != 0) return configured;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) {
    return static_cast<std::uint32_t>(CPU_COUNT(&set));
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

// One event loop: its Runtime, its acceptors (one per element of listeners_ it accepts on, null
// where it does not) and its thread (none for the first, which runs on the caller's).
struct Gateway::Worker {
  Worker(SharedState& shared, std::shared_ptr<const Snapshot> snapshot,
         std::vector<asio::ip::address> hostAddresses, std::size_t index)
      : runtime(io, shared, std::move(snapshot), std::move(hostAddresses)), index(index) {}
  // Declared before io so it is destroyed after it: ~io_context destroys the sessions still
  // open after the grace period, and they release what they hold in the Runtime.
  Runtime runtime;
  asio::io_context io{1};
  // A loop with nothing to accept (round robin, or a control channel on the first loop only)
  // must not run out of work between sessions.
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::thread thread;
  std::size_t index;
};

Gateway::Gateway(GatewayOptions options, std::shared_ptr<const Snapshot> initial)
    : options_(std::move(options)), snapshot_(std::move(initial)) {
  const auto& config = *snapshot_->config;
  const auto add = [this](const std::vector<config::Listener>& override,
                          const std::vector<config::Listener>& configured, Service service) {
    const auto& list = override.empty() ? configured : override;
    listeners_.insert(listeners_.end(), list.begin(), list.end());
    services_.insert(services_.end(), list.size(), service);
  };
  add(options_.listenOverride, config.listeners, Service::Socks);
  add(options_.controlListenOverride, config.controlListeners, Service::Control);
  add(options_.webListenOverride, config.webProxy.listeners, Service::WebProxy);
  balance_ = config.balance;
  const auto count = workerCount(options_.workersOverride.value_or(config.workers));
  const auto hosts = hostAddressesNow();  // once, for every loop
  for (std::size_t i = 0; i < count; ++i) {
    workers_.push_back(std::make_unique<Worker>(shared_, snapshot_, hosts, i));
    workers_.back()->acceptors.resize(listeners_.size());
  }
  signals_ = std::make_unique<asio::signal_set>(first().io, SIGHUP, SIGTERM, SIGINT);
}

std::vector<config::Listener> Gateway::listenersOf(Service service) const {
  std::vector<config::Listener> out;
  for (std::size_t i = 0; i < listeners_.size(); ++i) {
    if (services_[i] == service) out.push_back(listeners_[i]);
  }
  return out;
}

Gateway::~Gateway() {
  for (auto& w : workers_) {
    if (w->thread.joinable()) {
      w->io.stop();
      w->thread.join();
    }
  }
  // Sockets and timers must go before the io_context they belong to.
  for (auto& w : workers_) w->runtime.origins().clear();
  signals_.reset();
  // No pool thread may post a result into an io_context once it is gone: finish them first.
  shared_.resolverPool().stop();
  shared_.verifier().stop();
  shared_.resolverPool().join();
}

bool Gateway::openListeners() {
  for (std::size_t i = 0; i < listeners_.size(); ++i) {
    if (!openListener(i)) return false;
  }
  return true;
}

// The first loop binds the configured address (port 0: the kernel picks); with more loops and
// kernel balancing, every other loop binds the same port with SO_REUSEPORT.
bool Gateway::openListener(std::size_t index) {
  const auto& listener = listeners_[index];
  const Service service = services_[index];
  std::error_code ec;
  const auto address = asio::ip::make_address(listener.address, ec);
  if (ec) {
    spdlog::error("listener {}: not an IP address", listener.address);
    return false;
  }
  const bool everyLoop = service != Service::Control &&
                         balance_ == config::Config::Balance::Kernel && workers_.size() > 1;
  tcp::endpoint endpoint{address, listener.port};
  if (everyLoop && endpoint.port() != 0 && !portIsFree(endpoint, ec)) {
    // Without this, a second gateway on the same port would join the SO_REUSEPORT group and
    // take half the connections, where it should fail to start.
    spdlog::error("cannot listen on {} ({}): {}", endpointString(address, endpoint.port()),
                  service == Service::WebProxy
                      ? "the Web Proxy: [web_proxy] listen, or --web-listen ADDR:PORT"
                      : "SOCKS: [[listeners]], or --listen ADDR:PORT",
                  ec.message());
    return false;
  }
  for (auto& worker : workers_) {
    auto acceptor = std::make_unique<tcp::acceptor>(worker->io);
    acceptor->open(endpoint.protocol(), ec);
    if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec && everyLoop) {
      acceptor->set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true),
                           ec);
    }
    if (!ec && address.is_v6()) {
      // "::" serves IPv4 too; a specific IPv6 address only IPv6.
      acceptor->set_option(asio::ip::v6_only(!address.is_unspecified()), ec);
    }
    if (!ec) acceptor->bind(endpoint, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      // Which setting to change: the two listener lists come from different keys and flags.
      spdlog::error("cannot listen on {} ({}): {}", endpointString(address, endpoint.port()),
                    service == Service::Control
                        ? "the control channel: [control] listen, or --control-listen ADDR:PORT"
                    : service == Service::WebProxy
                        ? "the Web Proxy: [web_proxy] listen, or --web-listen ADDR:PORT"
                        : "SOCKS: [[listeners]], or --listen ADDR:PORT",
                    ec.message());
      return false;
    }
    worker->acceptors[index] = std::move(acceptor);
    if (!everyLoop) break;
    if (endpoint.port() == 0) endpoint.port(worker->acceptors[index]->local_endpoint(ec).port());
  }
  const auto bound = first().acceptors[index]->local_endpoint(ec);
  shared_.addListeningPort(bound.port());
  if (service == Service::Control) {
    spdlog::info("control channel listening on {} (firewall clients, protocol version {})",
                 endpointString(bound.address(), bound.port()), protocol::control::kVersion);
  } else if (service == Service::WebProxy) {
    config::Listener actual = listener;
    actual.port = bound.port();
    shared_.addWebProxyListener(actual);
    spdlog::info("web proxy listening on {} (HTTP, CONNECT, /wpad.dat)",
                 endpointString(bound.address(), bound.port()));
  } else {
    spdlog::info("socks listening on {} (methods: {})",
                 endpointString(bound.address(), bound.port()), methodNames(listener));
  }
  return true;
}

namespace {

// After setuid(), only CAP_NET_ADMIN stays (effective and permitted): what libnftables needs to
// change the dynamic set as listens open and close.
bool keepOnlyNetAdmin() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  data[CAP_TO_INDEX(CAP_NET_ADMIN)].effective = CAP_TO_MASK(CAP_NET_ADMIN);
  data[CAP_TO_INDEX(CAP_NET_ADMIN)].permitted = CAP_TO_MASK(CAP_NET_ADMIN);
  return ::syscall(SYS_capset, &header, data) == 0;
}

}  // namespace

bool Gateway::loadControlKey() {
  const auto& configured = snapshot_->config->control.keyFile;
  std::string path = configured;
  if (path.empty()) {
    std::string dir = options_.stateDir;
    if (dir.empty()) {
      // systemd's StateDirectory=; several are separated by colons, the first is ours.
      const char* state = std::getenv("STATE_DIRECTORY");
      dir = state != nullptr && *state != '\0'
                ? std::string(state).substr(0, std::string(state).find(':'))
                : std::string("/var/lib/fwgate");
    }
    path = dir + "/control.key";
  }
  auto loaded = crypto::loadOrCreateKey(path);
  if (!loaded.error.empty()) {
    if (!configured.empty()) {
      spdlog::error("control.key_file: {}", loaded.error);
      return false;
    }
    // Not configured, and the default place is not ours (a development run as a user): a key
    // for this run, said loudly, since a client that pins it refuses the next one.
    loaded.key = crypto::KeyPair::generate();
    spdlog::warn(
        "control channel: {}; using a key for this run only (clients that pin it will "
        "refuse the next run's): set [control] key_file or --state-dir",
        loaded.error);
    path = "this run only";
  } else if (loaded.created) {
    spdlog::info("control channel: created the key {}", path);
  }
  shared_.setControlKey(loaded.key);
  spdlog::info("control channel key {} ({}; encryption {})",
               crypto::fingerprint(loaded.key.publicKey), path,
               snapshot_->config->control.encryptionRequired ? "required" : "optional");
  return true;
}

bool Gateway::dropPrivileges() {
  const auto& user = snapshot_->config->runAsUser;
  if (::geteuid() != 0) return true;
  if (user.empty()) {
    spdlog::warn("running as root: [gateway] user is not set (see docs/configuration.md)");
    return true;
  }
  const passwd* pw = ::getpwnam(user.c_str());
  if (pw == nullptr) {
    spdlog::error("gateway.user: no such user \"{}\"", user);
    return false;
  }
  if (std::string error; !shared_.sessionLog().handTo(pw->pw_uid, pw->pw_gid, error)) {
    spdlog::error("cannot give the session log to \"{}\": {}", user, error);
    return false;
  }
  const bool filters = shared_.packetFilters().enabled();
  if (filters && ::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) {
    spdlog::error("cannot keep CAP_NET_ADMIN for the packet filters: {}", std::strerror(errno));
    return false;
  }
  if (::initgroups(pw->pw_name, pw->pw_gid) != 0 || ::setgid(pw->pw_gid) != 0 ||
      ::setuid(pw->pw_uid) != 0) {
    spdlog::error("cannot drop privileges to \"{}\": {}", user, std::strerror(errno));
    return false;
  }
  if (filters && !keepOnlyNetAdmin()) {
    spdlog::error("cannot keep CAP_NET_ADMIN for the packet filters: {}", std::strerror(errno));
    return false;
  }
  spdlog::info("running as user {} (uid {}{})", user, pw->pw_uid,
               filters ? ", keeping CAP_NET_ADMIN for the packet filters" : "");
  return true;
}

asio::awaitable<void> Gateway::refreshPacketFilters() {
  asio::steady_timer timer(first().io);
  while (!stopping_) {
    timer.expires_after(shared_.packetFilters().refreshInterval());
    auto [ec] = co_await timer.async_wait(kNoThrow);
    if (ec) co_return;
    shared_.packetFilters().refresh();
  }
}

int Gateway::run() {
  // splice(2) into a socket whose peer has gone raises SIGPIPE (it has no MSG_NOSIGNAL); the
  // error comes back as EPIPE instead and ends that relay only.
  ::signal(SIGPIPE, SIG_IGN);
  const auto snapshot = snapshot_;
  std::string error;
  if (!shared_.sessionLog().open(snapshot->config->log.sessions, error)) {
    spdlog::error("log.sessions: {}", error);
    return 1;
  }
  spdlog::info("fwgate " FWGATE_VERSION
               " gateway: config {} ({} rules, {} SOCKS listeners, {} control, {} web proxy; "
               "{} workers, {} balancing)",
               snapshot->config->source, snapshot->config->rules.size(),
               listenersOf(Service::Socks).size(), listenersOf(Service::Control).size(),
               listenersOf(Service::WebProxy).size(), workers_.size(),
               balance_ == config::Config::Balance::Kernel ? "kernel" : "round-robin");
  // The key before the listeners: a "control channel listening" line means its key is in place.
  if (!listenersOf(Service::Control).empty() && !loadControlKey()) return 1;
  if (!openListeners()) return 1;
  std::string filterSummary;
  if (const auto error = shared_.packetFilters().apply(*snapshot->config, filterSummary);
      !error.empty()) {
    spdlog::error("packet filters: cannot apply table inet fwgate: {}", error);
    return 1;
  }
  spdlog::info("{}", filterSummary);
  spdlog::info("session log: {}", snapshot->config->log.sessions == "-"
                                      ? std::string("stderr")
                                      : snapshot->config->log.sessions);
  // Before any loop thread starts: they inherit the credentials (capset is per thread).
  if (!dropPrivileges()) return 1;

  for (auto& worker : workers_) {
    for (std::size_t i = 0; i < listeners_.size(); ++i) {
      if (!worker->acceptors[i]) continue;
      asio::co_spawn(worker->io, acceptLoop(*worker, i),
                     exceptionReporter(worker->runtime, "internal error"));
    }
  }
  asio::co_spawn(first().io, handleSignals(), exceptionReporter(first().runtime, "internal error"));
  asio::co_spawn(first().io, refreshPacketFilters(),
                 exceptionReporter(first().runtime, "internal error"));
  for (std::size_t i = 1; i < workers_.size(); ++i) {
    Worker& w = *workers_[i];
    w.thread = std::thread([&w] {
      const std::string name = "fwgate-loop" + std::to_string(w.index);
      ::pthread_setname_np(::pthread_self(), name.c_str());
      w.io.run();
    });
  }
  first().io.run();
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
  Counters total;
  for (auto& w : workers_) {
    total.sessionsAccepted += w->runtime.counters().sessionsAccepted;
    total.sessionExceptions += w->runtime.counters().sessionExceptions;
  }
  SessionLog& log = shared_.sessionLog();
  log.flush();
  spdlog::info("stopped: {} sessions served, {} internal errors", total.sessionsAccepted,
               total.sessionExceptions);
  // What the session log could not take: said once, where an administrator reads the rest.
  if (log.droppedRecords() != 0 || log.lostLines() != 0) {
    spdlog::warn("session log: {} records dropped (queue full), {} lines lost (write failed)",
                 log.droppedRecords(), log.lostLines());
  }
  return 0;
}

namespace {

// A connection on its way from the loop that accepted it to the loop that serves it. If it
// never arrives (the target loop stopped first), the descriptor is closed and the admission
// slot given back.
struct HandedSocket {
  SharedState* shared;
  int fd;
  tcp::endpoint peer;
  HandedSocket(SharedState& s, int f, tcp::endpoint p) : shared(&s), fd(f), peer(p) {}
  HandedSocket(HandedSocket&& o) noexcept : shared(o.shared), fd(o.fd), peer(o.peer) { o.fd = -1; }
  HandedSocket& operator=(HandedSocket&&) = delete;
  ~HandedSocket() {
    if (fd < 0) return;
    ::close(fd);
    shared->release(unmapped(peer.address()));
  }
  int take() { return std::exchange(fd, -1); }
};

}  // namespace

Gateway::Worker& Gateway::placeOf(Worker& worker, std::size_t listener,
                                  const asio::ip::address& client) {
  if (workers_.size() == 1) return worker;
  if (services_[listener] == Service::Control) {
    return *workers_[std::hash<asio::ip::address>()(client) % workers_.size()];
  }
  if (balance_ == config::Config::Balance::RoundRobin) {
    return *workers_[nextWorker_++ % workers_.size()];
  }
  return worker;
}

void Gateway::handOff(Worker& target, tcp::socket socket, std::size_t listener,
                      tcp::endpoint peer) {
  std::error_code ec;
  const auto protocol = peer.protocol();
  const int fd = socket.release(ec);
  if (ec) {
    shared_.release(unmapped(peer.address()));
    return;
  }
  asio::post(target.io, [this, &target, listener, protocol,
                         handed = HandedSocket(shared_, fd, peer)]() mutable {
    std::error_code adoptEc;
    tcp::socket adopted(target.io);
    adopted.assign(protocol, handed.fd, adoptEc);
    if (adoptEc) return;  // handed closes it and gives the slot back
    handed.take();
    spawnSession(target, std::move(adopted), listener, handed.peer);
  });
}

void Gateway::spawnSession(Worker& worker, tcp::socket socket, std::size_t listener,
                           tcp::endpoint peer) {
  Runtime& runtime = worker.runtime;
  AdmittedSlot slot(runtime, unmapped(peer.address()));
  switch (services_[listener]) {
    case Service::Control:
      spawn(worker.io, runtime, std::make_unique<ControlSession>(runtime, std::move(socket), peer),
            std::move(slot));
      break;
    case Service::WebProxy:
      spawn(worker.io, runtime, std::make_unique<WebProxySession>(runtime, std::move(socket), peer),
            std::move(slot));
      break;
    case Service::Socks:
      spawn(worker.io, runtime,
            std::make_unique<SocksSession>(runtime, std::move(socket), peer, listeners_[listener]),
            std::move(slot));
      break;
  }
}

asio::awaitable<void> Gateway::acceptLoop(Worker& worker, std::size_t listener) {
  tcp::acceptor& acceptor = *worker.acceptors[listener];
  Runtime& runtime = worker.runtime;
  asio::steady_timer backoff(worker.io);
  tcp::endpoint peer;  // filled by accept(): no getpeername per connection
  while (!stopping_) {
    auto [ec, socket] = co_await acceptor.async_accept(peer, kNoThrow);
    if (ec) {
      if (ec == asio::error::operation_aborted || stopping_) co_return;
      // Out of descriptors or memory: say so and pause instead of spinning.
      spdlog::warn("accept: {}", ec.message());
      backoff.expires_after(std::chrono::milliseconds(100));
      co_await backoff.async_wait(kNoThrow);
      continue;
    }
    const auto client = unmapped(peer.address());
    if (!runtime.admit(client)) {
      ++runtime.counters().sessionsRejectedByLimit;
      SessionRecord record;
      record.client = endpointString(client, peer.port());
      record.result = "session-limit";
      record.outcome = policy::Outcome::SessionLimit;
      runtime.sessionLog().write(std::move(record));
      continue;  // the socket closes here
    }
    ++runtime.counters().sessionsAccepted;
    Worker& target = placeOf(worker, listener, client);
    if (&target == &worker) {
      spawnSession(worker, std::move(socket), listener, peer);
    } else {
      handOff(target, std::move(socket), listener, peer);
    }
  }
}

asio::awaitable<void> Gateway::handleSignals() {
  for (;;) {
    auto [ec, signal] = co_await signals_->async_wait(kNoThrow);
    if (ec) co_return;
    if (signal == SIGHUP) {
      reload();
      continue;
    }
    spdlog::info("signal {}: no new sessions; waiting up to {} ms for {} active", signal,
                 snapshot_->config->limits.shutdownGrace.count(), shared_.activeSessions());
    stopping_ = true;
    // Each loop closes its own acceptors: an acceptor is not to be touched from another thread.
    for (auto& worker : workers_) {
      asio::post(worker->io, [&w = *worker] {
        for (auto& a : w.acceptors) {
          std::error_code ignored;
          if (a) a->close(ignored);
        }
      });
    }
    co_await drainAndStop();
    co_return;
  }
}

asio::awaitable<void> Gateway::drainAndStop() {
  asio::steady_timer tick(first().io);
  const auto deadline = std::chrono::steady_clock::now() + snapshot_->config->limits.shutdownGrace;
  while (shared_.activeSessions() > 0 && std::chrono::steady_clock::now() < deadline) {
    tick.expires_after(std::chrono::milliseconds(50));
    co_await tick.async_wait(kNoThrow);
  }
  if (shared_.activeSessions() > 0) {
    spdlog::warn("grace period over: closing {} sessions", shared_.activeSessions());
  }
  for (auto& w : workers_) w->io.stop();
}

void Gateway::reload() {
  std::string error;
  if (options_.configPath.empty()) {
    spdlog::info("SIGHUP: embedded configuration; reopening the session log");
  } else {
    auto loaded = config::loadConfigFile(options_.configPath);
    for (const auto& w : loaded.warnings) spdlog::warn("config: {}", w.toString());
    if (!loaded.ok()) {
      for (const auto& e : loaded.errors) spdlog::error("config: {}", e.toString());
      spdlog::error("SIGHUP: {} errors in {}; keeping the running configuration",
                    loaded.errors.size(), options_.configPath);
    } else {
      std::vector<std::string> errors;
      auto snapshot = makeSnapshot(loaded.config, errors);
      if (!snapshot) {
        for (const auto& e : errors) spdlog::error("config: {}", e);
        spdlog::error("SIGHUP: keeping the running configuration");
      } else {
        const auto& next = *snapshot->config;
        if ((options_.listenOverride.empty() && next.listeners != listenersOf(Service::Socks)) ||
            (options_.controlListenOverride.empty() &&
             next.controlListeners != listenersOf(Service::Control)) ||
            (options_.webListenOverride.empty() &&
             next.webProxy.listeners != listenersOf(Service::WebProxy))) {
          spdlog::warn("SIGHUP: listener changes take effect at the next restart");
        }
        if ((!options_.workersOverride && next.workers != snapshot_->config->workers) ||
            next.balance != snapshot_->config->balance) {
          spdlog::warn("SIGHUP: [gateway] workers and balance take effect at the next restart");
        }
        if (next.control.keyFile != snapshot_->config->control.keyFile) {
          spdlog::warn("SIGHUP: [control] key_file takes effect at the next restart");
        }
        spdlog::set_level(spdlog::level::from_str(snapshot->config->log.level));
        snapshot_ = std::move(snapshot);
        // Each loop takes the new snapshot on its own thread, between two of its handlers.
        const auto hosts = hostAddressesNow();
        for (auto& worker : workers_) {
          asio::post(worker->io, [&runtime = worker->runtime, s = snapshot_, hosts] {
            runtime.setSnapshot(s);
            runtime.setHostAddresses(hosts);
          });
        }
        spdlog::info("SIGHUP: reloaded {} ({} rules); established sessions keep their rules",
                     options_.configPath, snapshot_->config->rules.size());
        std::string summary;
        if (const auto failed = shared_.packetFilters().apply(*snapshot_->config, summary);
            !failed.empty()) {
          spdlog::error("SIGHUP: packet filters: {}; the kernel keeps the previous table", failed);
        } else {
          spdlog::info("SIGHUP: {}", summary);
        }
      }
    }
  }
  if (!shared_.sessionLog().open(snapshot_->config->log.sessions, error)) {
    spdlog::error("log.sessions: {}", error);
  }
}

}  // namespace fwgate::gateway
