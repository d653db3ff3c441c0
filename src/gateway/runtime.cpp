#include "gateway/runtime.hpp"

#include <fmt/format.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sodium.h>
#include <spdlog/spdlog.h>

#include <asio/post.hpp>
#include <asio/this_coro.hpp>

#include <algorithm>
#include <cctype>
#include <type_traits>

#include "gateway/net.hpp"
#include "gateway/offload.hpp"

namespace fwgate::gateway {

std::shared_ptr<const Snapshot> makeSnapshot(std::shared_ptr<const config::Config> config,
                                             std::vector<std::string>& errors) {
  auto snapshot = std::make_shared<Snapshot>();
  if (!config->usersFile.empty()) {
    std::string error;
    auto users = config::UserDatabase::load(config->usersFile, error);
    if (!users) {
      errors.push_back("gateway.users_file: " + error);
      return nullptr;
    }
    snapshot->users = std::make_shared<const config::UserDatabase>(std::move(*users));
  }
  if (!config->kerberos.keytab.empty()) {
    std::string error;
    snapshot->kerberos = gss::Acceptor::fromKeytab(config->kerberos.keytab, error);
    if (!snapshot->kerberos) {
      errors.push_back(fmt::format("kerberos.keytab: {}: {}", config->kerberos.keytab, error));
      return nullptr;
    }
  }
  snapshot->engine = config->makeEngine();
  snapshot->config = std::move(config);
  return snapshot;
}

template <typename Key>
typename ShardedCounts<Key>::Shard& ShardedCounts<Key>::shardOf(const Key& key) const {
  std::size_t h = 0;
  if constexpr (std::is_same_v<Key, asio::ip::address>) {
    h = std::hash<asio::ip::address>()(key);
  } else {
    h = std::hash<asio::ip::address>()(key.first) * 31 + std::hash<asio::ip::address>()(key.second);
  }
  return shards_[h % kShards];
}

template <typename Key>
bool ShardedCounts<Key>::acquire(const Key& key, std::uint32_t limit) {
  auto& shard = shardOf(key);
  const std::lock_guard lock(shard.mutex);
  auto& n = shard.counts[key];
  if (limit != 0 && n >= limit) {
    if (n == 0) shard.counts.erase(key);
    return false;
  }
  ++n;
  return true;
}

template <typename Key>
void ShardedCounts<Key>::release(const Key& key) {
  auto& shard = shardOf(key);
  const std::lock_guard lock(shard.mutex);
  auto it = shard.counts.find(key);
  if (it != shard.counts.end() && --it->second == 0) shard.counts.erase(it);
}

template <typename Key>
bool ShardedCounts<Key>::contains(const Key& key) const {
  auto& shard = shardOf(key);
  const std::lock_guard lock(shard.mutex);
  return shard.counts.contains(key);
}

template class ShardedCounts<asio::ip::address>;
template class ShardedCounts<std::pair<asio::ip::address, asio::ip::address>>;

SharedState::SharedState() {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
  digestKey_.resize(crypto_generichash_KEYBYTES);
  randombytes_buf(digestKey_.data(), digestKey_.size());
}

bool SharedState::admit(const asio::ip::address& client, const config::Limits& limits) {
  const std::size_t before = active_.fetch_add(1, std::memory_order_relaxed);
  if ((limits.maxSessions != 0 && before >= limits.maxSessions) ||
      !perClient_.acquire(client, limits.maxSessionsPerClient)) {
    active_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void SharedState::release(const asio::ip::address& client) {
  perClient_.release(client);
  active_.fetch_sub(1, std::memory_order_relaxed);
}

std::string SharedState::passwordDigest(const std::string& password) const {
  std::string digest(crypto_generichash_BYTES, '\0');
  crypto_generichash(reinterpret_cast<unsigned char*>(digest.data()), digest.size(),
                     reinterpret_cast<const unsigned char*>(password.data()), password.size(),
                     reinterpret_cast<const unsigned char*>(digestKey_.data()), digestKey_.size());
  return digest;
}

bool SharedState::knownPassword(const config::UserDatabase& users, const std::string& user,
                                const std::string& digest) {
  const std::lock_guard lock(passwordsMutex_);
  if (cachedGeneration_ != users.generation()) {
    verified_.clear();
    cachedGeneration_ = users.generation();
  }
  const auto it = verified_.find(user);
  return it != verified_.end() &&
         sodium_memcmp(it->second.data(), digest.data(), digest.size()) == 0;
}

void SharedState::rememberPassword(const config::UserDatabase& users, const std::string& user,
                                   std::string digest) {
  const std::lock_guard lock(passwordsMutex_);
  // Only remember users of the database still in force.
  if (cachedGeneration_ == users.generation()) verified_[user] = std::move(digest);
}

Runtime::Runtime(asio::io_context& io, SharedState& shared,
                 std::shared_ptr<const Snapshot> snapshot,
                 std::vector<asio::ip::address> hostAddresses)
    : io_(io),
      shared_(shared),
      snapshot_(std::move(snapshot)),
      buffers_(snapshot_->config->limits.relayBufferSize),
      pipes_(snapshot_->config->limits.relayBufferSize),
      hostAddresses_(std::move(hostAddresses)),
      origins_(io) {}

void Runtime::setSnapshot(std::shared_ptr<const Snapshot> s) {
  snapshot_ = std::move(s);
  buffers_.setBufferSize(snapshot_->config->limits.relayBufferSize);
  pipes_.setCapacity(snapshot_->config->limits.relayBufferSize);
}

std::vector<asio::ip::address> hostAddressesNow() {
  std::vector<asio::ip::address> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    if (i->ifa_addr->sa_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
      asio::ip::address_v4::bytes_type b;
      std::memcpy(b.data(), &sin->sin_addr, 4);
      out.push_back(asio::ip::address_v4(b));
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
      asio::ip::address_v6::bytes_type b;
      std::memcpy(b.data(), &sin6->sin6_addr, 16);
      out.push_back(asio::ip::address_v6(b, sin6->sin6_scope_id));
    }
  }
  freeifaddrs(list);
  return out;
}

bool Runtime::isHostAddress(const asio::ip::address& address) const {
  const auto a = unmapped(address);
  if (a.is_loopback()) return true;
  return std::any_of(hostAddresses_.begin(), hostAddresses_.end(), [&](const auto& h) {
    if (h.is_v6() && a.is_v6()) return h.to_v6().to_bytes() == a.to_v6().to_bytes();
    return h == a;
  });
}

bool Runtime::isProtectedDestination(const asio::ip::address& address, std::uint16_t port) const {
  const auto p = toPolicy(address);
  if (p.isLoopback() || p.isUnspecified()) return true;
  return shared_.listeningPorts().contains(port) && isHostAddress(address);
}

bool Runtime::isWebProxyListener(const asio::ip::address& address, std::uint16_t port) const {
  if (!isHostAddress(address)) return false;
  const auto a = toPolicy(address);
  const auto& listeners = shared_.webProxyListeners();
  return std::any_of(listeners.begin(), listeners.end(), [&](const config::Listener& l) {
    if (l.port != port) return false;
    const auto bound = policy::IpAddress::parse(l.address);
    return bound && (bound->isUnspecified() || *bound == a);
  });
}

std::shared_ptr<PrimaryConnection> Runtime::addPrimary(const ProgramKey& program,
                                                       const asio::ip::address& destination,
                                                       std::uint16_t port, std::string definition,
                                                       std::string rule) {
  auto primary = std::make_shared<PrimaryConnection>();
  primary->id = nextPrimaryId_++;
  primary->program = program;
  primary->destination = destination;
  primary->port = port;
  primary->definition = std::move(definition);
  primary->rule = std::move(rule);
  primary->ended = std::make_shared<asio::steady_timer>(io_, asio::steady_timer::time_point::max());
  primaries_.emplace(std::make_pair(program.client, program.pid), primary);
  return primary;
}

void Runtime::removePrimary(const std::shared_ptr<PrimaryConnection>& primary) {
  if (!primary) return;
  primary->alive = false;
  primary->ended->expires_at(asio::steady_timer::time_point::min());
  auto [first, last] =
      primaries_.equal_range(std::make_pair(primary->program.client, primary->program.pid));
  for (auto it = first; it != last; ++it) {
    if (it->second == primary) {
      primaries_.erase(it);
      break;
    }
  }
}

std::vector<std::shared_ptr<PrimaryConnection>> Runtime::primariesOf(
    const ProgramKey& program) const {
  std::vector<std::shared_ptr<PrimaryConnection>> out;
  if (program.pid == 0) return out;
  auto [first, last] = primaries_.equal_range(std::make_pair(program.client, program.pid));
  for (auto it = first; it != last; ++it) {
    if (it->second->program == program) out.push_back(it->second);
  }
  return out;
}

namespace {

// The operator's line for a throttling event: once per window and key.
void logThrottle(const AuthGuard::Event& e) {
  using Kind = AuthGuard::Event::Kind;
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(e.lasting).count();
  switch (e.kind) {
    case Kind::SourceRefused:
      spdlog::warn("auth: {} failed {} logins; its logins are refused for {} s", e.key, e.failures,
                   seconds);
      break;
    case Kind::SourceDelayed:
      spdlog::warn("auth: {} failed {} logins within {} s; its logins are delayed", e.key,
                   e.failures, seconds);
      break;
    case Kind::UserDelayed:
      spdlog::warn("auth: user {} failed {} logins within {} s; its logins are delayed", e.key,
                   e.failures, seconds);
      break;
  }
}

}  // namespace

asio::awaitable<std::optional<Login>> Runtime::admitLogin(const config::AuthThrottle& settings,
                                                          const AuthSource& from,
                                                          std::string_view user) {
  const auto admission = shared_.authGuard().admit(settings, from, user, AuthGuard::Clock::now());
  if (admission.refused) {
    const auto left =
        std::chrono::ceil<std::chrono::seconds>(admission.until - AuthGuard::Clock::now());
    co_return Login{Login::Verdict::Throttled,
                    fmt::format("{} failed too many logins; refused for {} s more", from.toString(),
                                left.count())};
  }
  if (admission.delay > AuthGuard::Clock::duration::zero()) {
    asio::steady_timer wait(io_);
    wait.expires_after(admission.delay);
    co_await wait.async_wait(kNoThrow);
  }
  co_return std::nullopt;
}

asio::awaitable<Login> Runtime::verifyPassword(std::shared_ptr<const config::UserDatabase> users,
                                               asio::ip::address source, std::string user,
                                               std::string password) {
  using Verdict = Login::Verdict;
  // The settings of the snapshot the login started under, kept whatever a reload does meanwhile.
  const auto config = snapshot_->config;
  const config::AuthThrottle& settings = config->authThrottle;
  const AuthSource from = AuthSource::of(source);
  AuthGuard& guard = shared_.authGuard();
  if (auto refusal = co_await admitLogin(settings, from, user)) co_return std::move(*refusal);
  if (!users) co_return Login{Verdict::Rejected, "no users file"};
  std::string digest = shared_.passwordDigest(password);
  if (shared_.knownPassword(*users, user, digest)) co_return Login{Verdict::Accepted, {}};

  // The check runs in the VerifyQueue, in this source's turn.
  bool refused = false;
  auto check = [users, user, password] { return users->verify(user, password); };
  const auto ok = co_await offloadFair<bool>(shared_.verifier(), from, settings.maxPending,
                                             std::move(check), std::chrono::seconds(30), refused);
  if (refused) {
    co_return Login{Verdict::Throttled,
                    fmt::format("{} has {} logins waiting to be checked already", from.toString(),
                                settings.maxPending)};
  }
  if (ok && *ok) {
    shared_.rememberPassword(*users, user, std::move(digest));
    co_return Login{Verdict::Accepted, {}};
  }
  if (!ok) co_return Login{Verdict::Rejected, "the password check took over 30 s"};
  for (const auto& e : guard.failed(settings, from, user, AuthGuard::Clock::now())) logThrottle(e);
  co_return Login{Verdict::Rejected, fmt::format("bad user name or password for {}", user)};
}

asio::awaitable<KerberosStep> Runtime::kerberosStep(asio::ip::address source,
                                                    std::shared_ptr<gss::Context> context,
                                                    gss::Token token) {
  using Verdict = Login::Verdict;
  const auto config = snapshot_->config;
  const config::AuthThrottle& settings = config->authThrottle;
  const AuthSource from = AuthSource::of(source);
  AuthGuard& guard = shared_.authGuard();
  KerberosStep out;
  if (auto refusal = co_await admitLogin(settings, from, {})) {
    out.login = std::move(*refusal);
    co_return out;
  }
  // gss_accept_sec_context reads the keytab and writes the replay cache: the verification
  // threads', in this source's turn.
  bool refused = false;
  auto accept = [context, token = std::move(token)] { return context->step(token); };
  auto step = co_await offloadFair<gss::Step>(shared_.verifier(), from, settings.maxPending,
                                              std::move(accept), std::chrono::seconds(30), refused);
  if (refused) {
    out.login =
        Login{Verdict::Throttled, fmt::format("{} has {} logins waiting to be checked already",
                                              from.toString(), settings.maxPending)};
    co_return out;
  }
  if (!step) {
    out.login = Login{Verdict::Rejected, "the Kerberos check took over 30 s"};
    co_return out;
  }
  out.step = std::move(*step);
  if (out.step.failed()) {
    for (const auto& e : guard.failed(settings, from, {}, AuthGuard::Clock::now())) logThrottle(e);
    out.login = Login{Verdict::Rejected, fmt::format("Kerberos: {}", out.step.error)};
    co_return out;
  }
  if (out.step.done()) out.user = config->userOfPrincipal(out.step.peer);
  out.login = Login{Verdict::Accepted, {}};
  co_return out;
}

void Runtime::rememberResolution(const asio::ip::address& client, const std::string& name,
                                 const std::vector<asio::ip::address>& addresses) {
  constexpr std::size_t kMaxResolutions = 8192;
  for (const auto& a : addresses) {
    const auto key = std::make_pair(client, a);
    const auto [it, inserted] = resolutions_.insert_or_assign(key, name);
    if (inserted) resolutionOrder_.push_back(key);
  }
  while (resolutionOrder_.size() > kMaxResolutions) {
    resolutions_.erase(resolutionOrder_.front());
    resolutionOrder_.pop_front();
  }
}

std::string Runtime::resolvedName(const asio::ip::address& client, const asio::ip::address& address,
                                  const std::string& hint) const {
  const auto it = resolutions_.find(std::make_pair(client, address));
  if (it == resolutions_.end() || hint.empty()) return {};
  // Names compare case-insensitively; a trailing dot does not matter.
  auto norm = [](std::string s) {
    if (!s.empty() && s.back() == '.') s.pop_back();
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  return norm(it->second) == norm(hint) ? it->second : std::string{};
}

}  // namespace fwgate::gateway
