#include "gateway/gateway.hpp"

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <csignal>

#include <spdlog/spdlog.h>
#include <asio/co_spawn.hpp>
#include <asio/ip/v6_only.hpp>
#include <asio/steady_timer.hpp>

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
    out += m == config::AuthMethod::None ? "none" : "password";
  }
  return out;
}

// The registry slot Runtime::admit took for a client, released on every way out of its session,
// exceptions included.
struct AdmittedSlot {
  Runtime& runtime;
  asio::ip::address client;
  ~AdmittedSlot() { runtime.release(client); }
};

// The session's frame owns the socket and the session, and the slot.
asio::awaitable<void> serveSession(Runtime& runtime, tcp::socket socket,
                                   const config::Listener& listener, asio::ip::address client) {
  const AdmittedSlot slot{runtime, client};
  SocksSession session(runtime, std::move(socket), listener);
  co_await session.run();
}

asio::awaitable<void> serveWebProxy(Runtime& runtime, tcp::socket socket,
                                    asio::ip::address client) {
  const AdmittedSlot slot{runtime, client};
  WebProxySession session(runtime, std::move(socket));
  co_await session.run();
}

asio::awaitable<void> serveControl(Runtime& runtime, tcp::socket socket, asio::ip::address client) {
  const AdmittedSlot slot{runtime, client};
  ControlSession session(runtime, std::move(socket));
  co_await session.run();
}

}  // namespace

bool parseListenAddress(const std::string& text, std::string& address, std::uint16_t& port) {
  return config::parseEndpoint(text, address, port);
}

Gateway::Gateway(GatewayOptions options, std::shared_ptr<const Snapshot> initial)
    : options_(std::move(options)),
      runtime_(io_, std::move(initial)),
      signals_(io_, SIGHUP, SIGTERM, SIGINT) {
  const auto& config = *runtime_.snapshot()->config;
  const auto add = [this](const std::vector<config::Listener>& override,
                          const std::vector<config::Listener>& configured, Service service) {
    const auto& list = override.empty() ? configured : override;
    listeners_.insert(listeners_.end(), list.begin(), list.end());
    services_.insert(services_.end(), list.size(), service);
  };
  add(options_.listenOverride, config.listeners, Service::Socks);
  add(options_.controlListenOverride, config.controlListeners, Service::Control);
  add(options_.webListenOverride, config.webProxy.listeners, Service::WebProxy);
}

std::vector<config::Listener> Gateway::listenersOf(Service service) const {
  std::vector<config::Listener> out;
  for (std::size_t i = 0; i < listeners_.size(); ++i) {
    if (services_[i] == service) out.push_back(listeners_[i]);
  }
  return out;
}

Gateway::~Gateway() {
  // Sockets and timers must go before the io_context they belong to.
  runtime_.origins().clear();
  // No worker may post a result into the io_context once it is gone: finish them first.
  runtime_.resolverPool().stop();
  runtime_.authPool().stop();
  runtime_.resolverPool().join();
  runtime_.authPool().join();
}

bool Gateway::openListeners() {
  for (std::size_t i = 0; i < listeners_.size(); ++i) {
    if (!openListener(listeners_[i], services_[i])) return false;
  }
  return true;
}

bool Gateway::openListener(const config::Listener& listener, Service service) {
  std::error_code ec;
  const auto address = asio::ip::make_address(listener.address, ec);
  if (ec) {
    spdlog::error("listener {}: not an IP address", listener.address);
    return false;
  }
  auto acceptor = std::make_unique<tcp::acceptor>(io_);
  const tcp::endpoint endpoint{address, listener.port};
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec && address.is_v6()) {
    // "::" serves IPv4 too; a specific IPv6 address only IPv6.
    acceptor->set_option(asio::ip::v6_only(!address.is_unspecified()), ec);
  }
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    // Which setting to change: the two listener lists come from different keys and flags.
    spdlog::error("cannot listen on {} ({}): {}", endpointString(address, listener.port),
                  service == Service::Control
                      ? "the control channel: [control] listen, or --control-listen ADDR:PORT"
                  : service == Service::WebProxy
                      ? "the Web Proxy: [web_proxy] listen, or --web-listen ADDR:PORT"
                      : "SOCKS: [[listeners]], or --listen ADDR:PORT",
                  ec.message());
    return false;
  }
  const auto bound = acceptor->local_endpoint(ec);
  runtime_.addListeningPort(bound.port());
  if (service == Service::Control) {
    spdlog::info("control channel listening on {} (firewall clients, protocol version {})",
                 endpointString(bound.address(), bound.port()), protocol::control::kVersion);
  } else if (service == Service::WebProxy) {
    config::Listener actual = listener;
    actual.port = bound.port();
    runtime_.addWebProxyListener(actual);
    spdlog::info("web proxy listening on {} (HTTP, CONNECT, /wpad.dat)",
                 endpointString(bound.address(), bound.port()));
  } else {
    spdlog::info("socks listening on {} (methods: {})",
                 endpointString(bound.address(), bound.port()), methodNames(listener));
  }
  acceptors_.push_back(std::move(acceptor));
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

bool Gateway::dropPrivileges() {
  const auto& user = runtime_.snapshot()->config->runAsUser;
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
  if (std::string error; !runtime_.sessionLog().handTo(pw->pw_uid, pw->pw_gid, error)) {
    spdlog::error("cannot give the session log to \"{}\": {}", user, error);
    return false;
  }
  const bool filters = runtime_.packetFilters().enabled();
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
  asio::steady_timer timer(io_);
  while (!stopping_) {
    timer.expires_after(runtime_.packetFilters().refreshInterval());
    auto [ec] = co_await timer.async_wait(kNoThrow);
    if (ec) co_return;
    runtime_.packetFilters().refresh();
  }
}

int Gateway::run() {
  // splice(2) into a socket whose peer has gone raises SIGPIPE (it has no MSG_NOSIGNAL); the
  // error comes back as EPIPE instead and ends that relay only.
  ::signal(SIGPIPE, SIG_IGN);
  const auto snapshot = runtime_.snapshot();
  std::string error;
  if (!runtime_.sessionLog().open(snapshot->config->log.sessions, error)) {
    spdlog::error("log.sessions: {}", error);
    return 1;
  }
  spdlog::info("fwgate " FWGATE_VERSION
               " gateway: config {} ({} rules, {} SOCKS listeners, {} control, {} web proxy)",
               snapshot->config->source, snapshot->config->rules.size(),
               listenersOf(Service::Socks).size(), listenersOf(Service::Control).size(),
               listenersOf(Service::WebProxy).size());
  if (!openListeners()) return 1;
  std::string filterSummary;
  if (const auto error = runtime_.packetFilters().apply(*snapshot->config, filterSummary);
      !error.empty()) {
    spdlog::error("packet filters: cannot apply table inet fwgate: {}", error);
    return 1;
  }
  spdlog::info("{}", filterSummary);
  spdlog::info("session log: {}", snapshot->config->log.sessions == "-"
                                      ? std::string("stderr")
                                      : snapshot->config->log.sessions);
  if (!dropPrivileges()) return 1;

  auto onException = [this](std::exception_ptr e) {
    if (!e) return;
    ++runtime_.counters().sessionExceptions;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("internal error: {}", ex.what());
    }
  };
  for (std::size_t i = 0; i < acceptors_.size(); ++i) {
    asio::co_spawn(io_, acceptLoop(*acceptors_[i], listeners_[i], services_[i]), onException);
  }
  asio::co_spawn(io_, handleSignals(), onException);
  asio::co_spawn(io_, refreshPacketFilters(), onException);
  io_.run();
  spdlog::info("stopped: {} sessions served, {} internal errors",
               runtime_.counters().sessionsAccepted, runtime_.counters().sessionExceptions);
  return 0;
}

asio::awaitable<void> Gateway::acceptLoop(tcp::acceptor& acceptor, const config::Listener& listener,
                                          Service service) {
  auto onException = [this](std::exception_ptr e) {
    if (!e) return;
    ++runtime_.counters().sessionExceptions;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("session ended by internal error: {}", ex.what());
    }
  };
  asio::steady_timer backoff(io_);
  while (!stopping_) {
    auto [ec, socket] = co_await acceptor.async_accept(kNoThrow);
    if (ec) {
      if (ec == asio::error::operation_aborted || stopping_) co_return;
      // Out of descriptors or memory: say so and pause instead of spinning.
      spdlog::warn("accept: {}", ec.message());
      backoff.expires_after(std::chrono::milliseconds(100));
      co_await backoff.async_wait(kNoThrow);
      continue;
    }
    std::error_code peerEc;
    const auto client = unmapped(socket.remote_endpoint(peerEc).address());
    if (peerEc) continue;
    if (!runtime_.admit(client)) {
      ++runtime_.counters().sessionsRejectedByLimit;
      SessionRecord record;
      record.client = endpointString(client, socket.remote_endpoint(peerEc).port());
      record.result = "session-limit";
      runtime_.sessionLog().write(record);
      continue;  // the socket closes here
    }
    ++runtime_.counters().sessionsAccepted;
    if (service == Service::Control) {
      asio::co_spawn(io_, serveControl(runtime_, std::move(socket), client), onException);
    } else if (service == Service::WebProxy) {
      asio::co_spawn(io_, serveWebProxy(runtime_, std::move(socket), client), onException);
    } else {
      asio::co_spawn(io_, serveSession(runtime_, std::move(socket), listener, client), onException);
    }
  }
}

asio::awaitable<void> Gateway::handleSignals() {
  for (;;) {
    auto [ec, signal] = co_await signals_.async_wait(kNoThrow);
    if (ec) co_return;
    if (signal == SIGHUP) {
      reload();
      continue;
    }
    spdlog::info("signal {}: no new sessions; waiting up to {} ms for {} active", signal,
                 runtime_.snapshot()->config->limits.shutdownGrace.count(),
                 runtime_.activeSessions());
    stopping_ = true;
    for (auto& a : acceptors_) {
      std::error_code ignored;
      a->close(ignored);
    }
    co_await drainAndStop();
    co_return;
  }
}

asio::awaitable<void> Gateway::drainAndStop() {
  asio::steady_timer tick(io_);
  const auto deadline =
      std::chrono::steady_clock::now() + runtime_.snapshot()->config->limits.shutdownGrace;
  while (runtime_.activeSessions() > 0 && std::chrono::steady_clock::now() < deadline) {
    tick.expires_after(std::chrono::milliseconds(50));
    co_await tick.async_wait(kNoThrow);
  }
  if (runtime_.activeSessions() > 0) {
    spdlog::warn("grace period over: closing {} sessions", runtime_.activeSessions());
  }
  io_.stop();
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
        spdlog::set_level(spdlog::level::from_str(snapshot->config->log.level));
        runtime_.setSnapshot(std::move(snapshot));
        runtime_.refreshHostAddresses();
        spdlog::info("SIGHUP: reloaded {} ({} rules); established sessions keep their rules",
                     options_.configPath, runtime_.snapshot()->config->rules.size());
        std::string summary;
        if (const auto failed =
                runtime_.packetFilters().apply(*runtime_.snapshot()->config, summary);
            !failed.empty()) {
          spdlog::error("SIGHUP: packet filters: {}; the kernel keeps the previous table", failed);
        } else {
          spdlog::info("SIGHUP: {}", summary);
        }
      }
    }
  }
  if (!runtime_.sessionLog().open(runtime_.snapshot()->config->log.sessions, error)) {
    spdlog::error("log.sessions: {}", error);
  }
}

}  // namespace fwgate::gateway
