// What the sessions of one gateway use: per event loop (Runtime) the configuration snapshot, the
// buffers and pipes, the origin pool and the firewall clients' primary connections; across loops
// (SharedState) the session log, the session registry and limits, and the pools for blocking
// calls.
#pragma once

#include <array>
#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>
#include <asio/steady_timer.hpp>
#include <asio/thread_pool.hpp>
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "config/users.hpp"
#include "crypto/noise.hpp"
#include "crypto/replay_cache.hpp"
#include "crypto/resumption.hpp"
#include "gateway/auth_guard.hpp"
#include "gateway/buffer_pool.hpp"
#include "gateway/origin_pool.hpp"
#include "gateway/packet_filters.hpp"
#include "gateway/pipe_pool.hpp"
#include "gateway/relay.hpp"
#include "gateway/session_log.hpp"
#include "gss/gss.hpp"
#include "policy/engine.hpp"

namespace fwgate::gateway {

// An immutable view of the configuration; a session keeps the one it started with.
struct Snapshot {
  std::shared_ptr<const config::Config> config;
  std::shared_ptr<const policy::Engine> engine;
  std::shared_ptr<const config::UserDatabase> users;  // null when no users file is configured
  std::shared_ptr<const gss::Acceptor> kerberos;      // null without [kerberos] keytab
};

// Builds a snapshot (engine and users file included). Errors are appended to `errors`.
std::shared_ptr<const Snapshot> makeSnapshot(std::shared_ptr<const config::Config> config,
                                             std::vector<std::string>& errors);

// A firewall client's remoted connection that is under way: the primary connection its protocol
// definition's secondary connections belong to. `ended` is cancelled when it ends, so that what
// depends on it (a remoted listen) can wait on it; `alive` is false from then on.
// The program a firewall client's connection comes from: its host's address, its PID, the
// authenticated user and the application it named. Secondary connections are matched on all four,
// so that another user on the same host cannot borrow a program's primary connection by claiming
// its PID; a PID of 0 (not told) has no primary connections.
struct ProgramKey {
  asio::ip::address client;
  std::uint32_t pid = 0;
  std::optional<std::string> user;
  std::string application;
  friend bool operator==(const ProgramKey&, const ProgramKey&) = default;
};

struct PrimaryConnection {
  std::uint64_t id = 0;
  ProgramKey program;
  asio::ip::address destination;
  std::uint16_t port = 0;
  std::string definition;  // empty: no definition covers it (then it has no secondaries)
  std::string rule;
  bool alive = true;
  // Expires (at the epoch) when the primary connection ends: a wait on it then completes at
  // once, whether it started before or after.
  std::shared_ptr<asio::steady_timer> ended;
};

struct Counters {
  std::uint64_t sessionsAccepted = 0;
  std::uint64_t sessionsRejectedByLimit = 0;
  std::uint64_t sessionExceptions = 0;
};

// Counts per key (client address, or client and host), sharded so that event loops on different
// threads rarely meet on one lock; each lock is held for one map operation.
template <typename Key>
class ShardedCounts {
 public:
  // Adds one for `key` unless it has `limit` already (0: no limit). False: at the limit.
  bool acquire(const Key& key, std::uint32_t limit);
  void release(const Key& key);
  bool contains(const Key& key) const;

 private:
  static constexpr std::size_t kShards = 16;
  struct alignas(64) Shard {
    mutable std::mutex mutex;
    std::map<Key, std::uint32_t> counts;
  };
  Shard& shardOf(const Key& key) const;
  mutable std::array<Shard, kShards> shards_;
};

// What a password login came to: accepted, a wrong name or password, or refused unverified
// ([auth_throttle]: its source failed too often, or has too many attempts waiting); `why` says
// which, for the session's error.
struct Login {
  enum class Verdict : std::uint8_t { Accepted, Rejected, Throttled };
  Verdict verdict = Verdict::Rejected;
  std::string why;
  bool accepted() const { return verdict == Verdict::Accepted; }
  bool throttled() const { return verdict == Verdict::Throttled; }
};

// One Kerberos step: Accepted while the exchange goes on (step.state Continue) and once done
// (step.peer the principal, `user` the name rules know it by), Rejected or Throttled otherwise.
struct KerberosStep {
  Login login;
  gss::Step step;
  std::string user;
};

// The host's own addresses (getifaddrs): what isHostAddress() compares with.
std::vector<asio::ip::address> hostAddressesNow();

// What every event loop of one gateway shares, safe to use from any of their threads: the
// session log, the pools for blocking calls, the packet filters, what the gateway listens on
// (written before the loops start, read-only after), the session counts its limits judge, the
// CONNECTs by (client, host) that SOCKS BIND's strict mode asks about, and the password cache.
class SharedState {
 public:
  SharedState();
  SessionLog& sessionLog() { return log_; }
  asio::thread_pool& resolverPool() { return resolverPool_; }
  // Password guessing: the failures counted, and the verification work served per source.
  AuthGuard& authGuard() { return authGuard_; }
  VerifyQueue& verifier() { return verifier_; }
  // The control channel's static key (set once, before any session) and its replay cache.
  void setControlKey(const crypto::KeyPair& key) {
    controlKey_ = key;
    ticketKey_ = crypto::ticketKey(key);
  }
  const crypto::Key& ticketKey() const { return ticketKey_; }
  const crypto::KeyPair& controlKey() const { return controlKey_; }
  crypto::ReplayCache& replayCache() { return replayCache_; }
  // table inet fwgate: the dynamic ports of remoted listens and SOCKS BIND.
  PacketFilters& packetFilters() { return packetFilters_; }

  // Before the event loops start.
  void addListeningPort(std::uint16_t port) { listeningPorts_.insert(port); }
  void addWebProxyListener(config::Listener bound) { webProxyListeners_.push_back(bound); }
  const std::set<std::uint16_t>& listeningPorts() const { return listeningPorts_; }
  const std::vector<config::Listener>& webProxyListeners() const { return webProxyListeners_; }

  // Admission: sessions in all, per client, and Web Proxy connections per client.
  bool admit(const asio::ip::address& client, const config::Limits& limits);
  void release(const asio::ip::address& client);
  std::size_t activeSessions() const { return active_.load(std::memory_order_relaxed); }
  ShardedCounts<asio::ip::address>& webClients() { return webClients_; }
  ShardedCounts<std::pair<asio::ip::address, asio::ip::address>>& connects() { return connects_; }

  // The password cache: the keyed digest of a password verified for `user` under `users`,
  // keyed by the database's generation (a database allocated where a freed one was is still
  // another database).
  bool knownPassword(const config::UserDatabase& users, const std::string& user,
                     const std::string& digest);
  void rememberPassword(const config::UserDatabase& users, const std::string& user,
                        std::string digest);
  std::string passwordDigest(const std::string& password) const;

 private:
  PacketFilters packetFilters_;
  SessionLog log_;
  asio::thread_pool resolverPool_{4};
  AuthGuard authGuard_;
  VerifyQueue verifier_{2};
  crypto::KeyPair controlKey_;
  crypto::Key ticketKey_{};
  crypto::ReplayCache replayCache_;
  std::set<std::uint16_t> listeningPorts_;
  std::vector<config::Listener> webProxyListeners_;
  std::atomic<std::size_t> active_{0};
  ShardedCounts<asio::ip::address> perClient_;
  ShardedCounts<asio::ip::address> webClients_;
  ShardedCounts<std::pair<asio::ip::address, asio::ip::address>> connects_;
  std::mutex passwordsMutex_;
  std::uint64_t cachedGeneration_ = 0;           // generations start at 1
  std::map<std::string, std::string> verified_;  // user -> keyed digest of the password
  std::string digestKey_;
};

// One event loop's view of the gateway: what its sessions use. Everything here is used from
// the loop's own thread only; what all loops share is in SharedState, reached through it.
// A firewall client's control connections all land on one loop (by client address), so its
// primary connections and resolved names live here, unshared.
class Runtime {
 public:
  // `hostAddresses`: hostAddressesNow(), taken once for all loops.
  Runtime(asio::io_context& io, SharedState& shared, std::shared_ptr<const Snapshot> snapshot,
          std::vector<asio::ip::address> hostAddresses);

  asio::io_context& io() { return io_; }
  std::shared_ptr<const Snapshot> snapshot() const { return snapshot_; }
  void setSnapshot(std::shared_ptr<const Snapshot> s);

  BufferPool& buffers() { return buffers_; }
  // What a relay may hold bytes in flight in, and the configured [limits] relay mode.
  RelayPaths relayPaths() { return {buffers_, pipes_, snapshot_->config->limits.relayMode}; }
  SessionLog& sessionLog() { return shared_.sessionLog(); }
  const crypto::KeyPair& controlKey() const { return shared_.controlKey(); }
  const crypto::Key& ticketKey() const { return shared_.ticketKey(); }
  crypto::ReplayCache& replayCache() { return shared_.replayCache(); }
  asio::thread_pool& resolverPool() { return shared_.resolverPool(); }
  Counters& counters() { return counters_; }
  PacketFilters& packetFilters() { return shared_.packetFilters(); }

  // The host's own addresses, as hostAddressesNow() found them (at start and on SIGHUP).
  void setHostAddresses(std::vector<asio::ip::address> a) { hostAddresses_ = std::move(a); }
  // The Web Proxy's listening sockets as bound (the kernel's port for port 0, --web-listen
  // included): what the control channel offers firewall clients.
  const std::vector<config::Listener>& webProxyListeners() const {
    return shared_.webProxyListeners();
  }
  bool isHostAddress(const asio::ip::address& a) const;
  const std::vector<asio::ip::address>& hostAddresses() const { return hostAddresses_; }
  // Loopback, unspecified, or one of this gateway's own listening sockets.
  bool isProtectedDestination(const asio::ip::address& a, std::uint16_t port) const;

  // Session registry: admission by limits, per-client counts, active CONNECTs by (client, host).
  bool admit(const asio::ip::address& client) {
    return shared_.admit(client, snapshot_->config->limits);
  }
  void release(const asio::ip::address& client) { shared_.release(client); }
  std::size_t activeSessions() const { return shared_.activeSessions(); }
  void addConnect(const asio::ip::address& client, const asio::ip::address& host) {
    shared_.connects().acquire({client, host}, 0);
  }
  void removeConnect(const asio::ip::address& client, const asio::ip::address& host) {
    shared_.connects().release({client, host});
  }
  bool hasConnect(const asio::ip::address& client, const asio::ip::address& host) const {
    return shared_.connects().contains({client, host});
  }
  // Web Proxy connections per client address, against [web_proxy] max_connections_per_client.
  bool admitWebClient(const asio::ip::address& client) {
    return shared_.webClients().acquire(client,
                                        snapshot_->config->webProxy.maxConnectionsPerClient);
  }
  void releaseWebClient(const asio::ip::address& client) { shared_.webClients().release(client); }
  // One of the Web Proxy's own listening sockets (a request to the Web Proxy that names itself).
  bool isWebProxyListener(const asio::ip::address& address, std::uint16_t port) const;
  // Idle persistent connections to origin servers, for the Web Proxy.
  OriginPool& origins() { return origins_; }

  // Primary connections of firewall clients, by client address and program (PID), for the
  // secondary connections their protocol definitions allow.
  std::shared_ptr<PrimaryConnection> addPrimary(const ProgramKey& program,
                                                const asio::ip::address& destination,
                                                std::uint16_t port, std::string definition,
                                                std::string rule);
  void removePrimary(const std::shared_ptr<PrimaryConnection>& primary);
  std::vector<std::shared_ptr<PrimaryConnection>> primariesOf(const ProgramKey& program) const;

  // Names the control channel resolved for a client, so that its later Connect to one of the
  // addresses may be decided and logged by that name (a name hint nobody resolved is ignored).
  // Bounded: the oldest entries go first.
  void rememberResolution(const asio::ip::address& client, const std::string& name,
                          const std::vector<asio::ip::address>& addresses);
  std::string resolvedName(const asio::ip::address& client, const asio::ip::address& address,
                           const std::string& hint) const;

  // A password login from `source`: admitted by the AuthGuard (refused, or delayed), then checked
  // off the event loop in the VerifyQueue, its failure counted. Successful checks are remembered
  // (keyed digest) until the users file changes, so a returning client costs one hash, not an
  // argon2id run.
  asio::awaitable<Login> verifyPassword(std::shared_ptr<const config::UserDatabase> users,
                                        asio::ip::address source, std::string user,
                                        std::string password);
  // A login's admission by [auth_throttle]: the refusal (Throttled), or nullopt once any delay
  // the source or `user` has earned has passed.
  asio::awaitable<std::optional<Login>> admitLogin(const config::AuthThrottle& settings,
                                                   const AuthSource& from, std::string_view user);
  // One step of an accepting Kerberos `context` with the client's `token`: throttled and served
  // per source like a password check; a token that does not verify counts as a failed login.
  asio::awaitable<KerberosStep> kerberosStep(asio::ip::address source,
                                             std::shared_ptr<gss::Context> context,
                                             gss::Token token);

 private:
  asio::io_context& io_;
  SharedState& shared_;
  std::shared_ptr<const Snapshot> snapshot_;
  BufferPool buffers_;
  PipePool pipes_;
  Counters counters_;
  std::vector<asio::ip::address> hostAddresses_;
  OriginPool origins_;
  std::multimap<std::pair<asio::ip::address, std::uint32_t>, std::shared_ptr<PrimaryConnection>>
      primaries_;
  std::uint64_t nextPrimaryId_ = 1;
  std::map<std::pair<asio::ip::address, asio::ip::address>, std::string> resolutions_;
  std::deque<std::pair<asio::ip::address, asio::ip::address>> resolutionOrder_;
};

}  // namespace fwgate::gateway
