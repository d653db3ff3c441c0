#include "gateway/runtime.hpp"

#include <ifaddrs.h>
#include <netinet/in.h>
#include <sodium.h>

#include <algorithm>
#include <cctype>

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
  snapshot->engine = config->makeEngine();
  snapshot->config = std::move(config);
  return snapshot;
}

Runtime::Runtime(asio::io_context& io, std::shared_ptr<const Snapshot> snapshot)
    : io_(io),
      snapshot_(std::move(snapshot)),
      buffers_(snapshot_->config->limits.relayBufferSize),
      pipes_(snapshot_->config->limits.relayBufferSize),
      origins_(io) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
  digestKey_.resize(crypto_generichash_KEYBYTES);
  randombytes_buf(digestKey_.data(), digestKey_.size());
  refreshHostAddresses();
}

void Runtime::setSnapshot(std::shared_ptr<const Snapshot> s) {
  snapshot_ = std::move(s);
  buffers_.setBufferSize(snapshot_->config->limits.relayBufferSize);
  pipes_.setCapacity(snapshot_->config->limits.relayBufferSize);
}

void Runtime::refreshHostAddresses() {
  hostAddresses_.clear();
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    if (i->ifa_addr->sa_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
      asio::ip::address_v4::bytes_type b;
      std::memcpy(b.data(), &sin->sin_addr, 4);
      hostAddresses_.push_back(asio::ip::address_v4(b));
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
      asio::ip::address_v6::bytes_type b;
      std::memcpy(b.data(), &sin6->sin6_addr, 16);
      hostAddresses_.push_back(asio::ip::address_v6(b, sin6->sin6_scope_id));
    }
  }
  freeifaddrs(list);
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
  return listeningPorts_.contains(port) && isHostAddress(address);
}

bool Runtime::admit(const asio::ip::address& client) {
  const auto& limits = snapshot_->config->limits;
  if (limits.maxSessions != 0 && active_ >= limits.maxSessions) return false;
  auto& n = perClient_[client];
  if (limits.maxSessionsPerClient != 0 && n >= limits.maxSessionsPerClient) {
    if (n == 0) perClient_.erase(client);
    return false;
  }
  ++n;
  ++active_;
  return true;
}

void Runtime::release(const asio::ip::address& client) {
  --active_;
  auto it = perClient_.find(client);
  if (it != perClient_.end() && --it->second == 0) perClient_.erase(it);
}

bool Runtime::isWebProxyListener(const asio::ip::address& address, std::uint16_t port) const {
  if (!isHostAddress(address)) return false;
  const auto a = toPolicy(address);
  return std::any_of(webProxyListeners_.begin(), webProxyListeners_.end(),
                     [&](const config::Listener& l) {
                       if (l.port != port) return false;
                       const auto bound = policy::IpAddress::parse(l.address);
                       return bound && (bound->isUnspecified() || *bound == a);
                     });
}

bool Runtime::admitWebClient(const asio::ip::address& client) {
  const std::uint32_t limit = snapshot_->config->webProxy.maxConnectionsPerClient;
  auto& n = webClients_[client];
  if (limit != 0 && n >= limit) {
    if (n == 0) webClients_.erase(client);
    return false;
  }
  ++n;
  return true;
}

void Runtime::releaseWebClient(const asio::ip::address& client) {
  auto it = webClients_.find(client);
  if (it != webClients_.end() && --it->second == 0) webClients_.erase(it);
}

void Runtime::addConnect(const asio::ip::address& client, const asio::ip::address& host) {
  ++connects_[{client, host}];
}

void Runtime::removeConnect(const asio::ip::address& client, const asio::ip::address& host) {
  auto it = connects_.find({client, host});
  if (it != connects_.end() && --it->second == 0) connects_.erase(it);
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

bool Runtime::hasConnect(const asio::ip::address& client, const asio::ip::address& host) const {
  return connects_.contains({client, host});
}

asio::awaitable<bool> Runtime::verifyPassword(std::shared_ptr<const config::UserDatabase> users,
                                              std::string user, std::string password) {
  if (!users) co_return false;
  if (cachedUsers_ != users.get()) {
    verified_.clear();
    cachedUsers_ = users.get();
  }
  std::string digest(crypto_generichash_BYTES, '\0');
  crypto_generichash(reinterpret_cast<unsigned char*>(digest.data()), digest.size(),
                     reinterpret_cast<const unsigned char*>(password.data()), password.size(),
                     reinterpret_cast<const unsigned char*>(digestKey_.data()), digestKey_.size());
  if (auto it = verified_.find(user); it != verified_.end()) {
    if (sodium_memcmp(it->second.data(), digest.data(), digest.size()) == 0) co_return true;
  }
  // Named, not a temporary in the co_await expression: GCC 12 destroys such temporaries twice.
  auto check = [users, user, password] { return users->verify(user, password); };
  auto ok = co_await offload<bool>(authPool_, std::move(check), std::chrono::seconds(30));
  if (ok && *ok) {
    // Only remember users of the database still in force.
    if (cachedUsers_ == users.get()) verified_[user] = digest;
    co_return true;
  }
  co_return false;
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
