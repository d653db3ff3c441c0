#include "gateway/udp_relay.hpp"

#include <netdb.h>

#include <asio/experimental/awaitable_operators.hpp>
#include <asio/ip/v6_only.hpp>
#include <asio/steady_timer.hpp>
#include <asio/thread_pool.hpp>
#include <cstring>

#include "gateway/net.hpp"
#include "gateway/offload.hpp"
#include "protocol/socks5.hpp"

namespace fwgate::gateway {

using asio::ip::udp;
using namespace asio::experimental::awaitable_operators;
namespace socks5 = protocol::socks5;

namespace {
constexpr std::size_t kMaxDatagram = 65535;
constexpr std::size_t kMaxCached = 1024;

udp::endpoint unmapped(const udp::endpoint& e) {
  return {gateway::unmapped(e.address()), e.port()};
}
}  // namespace

UdpRelay::UdpRelay(asio::any_io_executor executor, asio::ip::address client,
                   std::uint16_t clientPort, Decide decide, asio::thread_pool& resolverPool,
                   std::chrono::milliseconds idleTimeout, SessionRecord& record)
    : clientSide_(executor),
      remoteSide_(executor),
      client_(gateway::unmapped(client)),
      clientPort_(clientPort),
      decide_(std::move(decide)),
      resolverPool_(resolverPool),
      idleTimeout_(idleTimeout),
      record_(record) {}

std::error_code UdpRelay::open(const asio::ip::address& clientFacing) {
  std::error_code ec;
  clientSide_.open(clientFacing.is_v4() ? udp::v4() : udp::v6(), ec);
  if (!ec) clientSide_.bind({clientFacing, 0}, ec);
  if (ec) return ec;
  // One dual-stack socket reaches IPv4 and IPv6 destinations; IPv4-only hosts fall back.
  remoteSide_.open(udp::v6(), ec);
  if (!ec) remoteSide_.set_option(asio::ip::v6_only(false), ec);
  if (!ec) remoteSide_.bind({asio::ip::address_v6::any(), 0}, ec);
  if (ec) {
    std::error_code ignored;
    remoteSide_.close(ignored);
    ec.clear();
    remoteSide_.open(udp::v4(), ec);
    if (!ec) remoteSide_.bind({asio::ip::address_v4::any(), 0}, ec);
  }
  return ec;
}

std::error_code UdpRelay::open(const asio::ip::address& clientFacing,
                               const udp::endpoint& published) {
  std::error_code ec;
  clientSide_.open(clientFacing.is_v4() ? udp::v4() : udp::v6(), ec);
  if (!ec) clientSide_.bind({clientFacing, 0}, ec);
  if (ec) return ec;
  const auto address = gateway::unmapped(published.address());
  remoteSide_.open(address.is_v4() ? udp::v4() : udp::v6(), ec);
  if (!ec) remoteSide_.bind({address, published.port()}, ec);
  return ec;
}

udp::endpoint UdpRelay::remoteFacingEndpoint() const {
  std::error_code ec;
  return remoteSide_.local_endpoint(ec);
}

udp::endpoint UdpRelay::clientFacingEndpoint() const {
  std::error_code ec;
  return clientSide_.local_endpoint(ec);
}

asio::awaitable<void> UdpRelay::run() {
  co_await (fromClient() || fromRemote() || idleWatch());
}

bool UdpRelay::allowed(const udp::endpoint& destination, const std::string& name) {
  if (auto it = decisions_.find(destination); it != decisions_.end()) return it->second;
  const auto decision = decide_(destination.address(), destination.port(), name);
  if (record_.rule.empty() || decision.allowed) record_.rule = decision.rule;
  if (decisions_.size() >= kMaxCached) decisions_.clear();
  decisions_.emplace(destination, decision.allowed);
  return decision.allowed;
}

asio::awaitable<bool> UdpRelay::resolve(const std::string& name, asio::ip::address& out) {
  if (auto it = names_.find(name); it != names_.end()) {
    out = it->second;
    co_return true;
  }
  // Named, not a temporary in the co_await expression: GCC 12 destroys such temporaries twice.
  auto lookup = [name]() -> std::optional<asio::ip::address> {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    addrinfo* list = nullptr;
    if (::getaddrinfo(name.c_str(), nullptr, &hints, &list) != 0 || list == nullptr) {
      return std::nullopt;
    }
    std::optional<asio::ip::address> result;
    if (list->ai_family == AF_INET) {
      asio::ip::address_v4::bytes_type b;
      std::memcpy(b.data(), &reinterpret_cast<const sockaddr_in*>(list->ai_addr)->sin_addr, 4);
      result = asio::ip::address_v4(b);
    } else if (list->ai_family == AF_INET6) {
      asio::ip::address_v6::bytes_type b;
      std::memcpy(b.data(), &reinterpret_cast<const sockaddr_in6*>(list->ai_addr)->sin6_addr, 16);
      result = asio::ip::address_v6(b);
    }
    ::freeaddrinfo(list);
    return result;
  };
  auto answer = co_await offload<std::optional<asio::ip::address>>(resolverPool_, std::move(lookup),
                                                                   std::chrono::seconds(10));
  if (!answer || !*answer) co_return false;
  if (names_.size() >= kMaxCached) names_.clear();
  names_[name] = **answer;
  out = **answer;
  co_return true;
}

asio::awaitable<void> UdpRelay::fromClient() {
  std::vector<std::uint8_t> buffer(kMaxDatagram + 1);
  const bool remoteIsV6 = remoteSide_.local_endpoint().address().is_v6();
  for (;;) {
    udp::endpoint sender;
    auto [ec, n] = co_await clientSide_.async_receive_from(asio::buffer(buffer), sender, kNoThrow);
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      continue;  // e.g. ECONNREFUSED from an earlier send: keep serving
    }
    sender = unmapped(sender);
    // Only the client that owns the association, from its declared (or first) port.
    if (sender.address() != client_) continue;
    if (clientPort_ != 0 && sender.port() != clientPort_) continue;
    if (clientPort_ == 0) clientPort_ = sender.port();

    auto header = socks5::parseUdpHeader({buffer.data(), n});
    if (!header.complete() || header.value.fragment != 0) continue;  // fragments are dropped
    const auto& wire = header.value.address;
    asio::ip::address address;
    std::string name;
    if (!wireToAsio(wire, address)) {
      name = wire.domain;
      if (!protocol::isValidHostName(name) || !co_await resolve(name, address)) continue;
    }
    const udp::endpoint destination{address, wire.port};
    if (!allowed(destination, name)) continue;
    udp::endpoint target = destination;
    if (remoteIsV6 && address.is_v4()) {
      target = {asio::ip::make_address_v6(asio::ip::v4_mapped, address.to_v4()), wire.port};
    } else if (!remoteIsV6 && address.is_v6()) {
      continue;  // no IPv6 on this host
    }
    const auto payload = n - header.consumed;
    auto [sendEc, sent] = co_await remoteSide_.async_send_to(
        asio::buffer(buffer.data() + header.consumed, payload), target, kNoThrow);
    if (sendEc) continue;
    if (contacted_.size() >= kMaxCached) contacted_.clear();
    contacted_.insert(destination);
    lastActivity_ = std::chrono::steady_clock::now();
    record_.bytesUp += sent;
    ++record_.datagramsUp;
  }
}

asio::awaitable<void> UdpRelay::fromRemote() {
  std::vector<std::uint8_t> buffer(kMaxDatagram + 262);
  constexpr std::size_t kHeaderRoom = 262;  // largest SOCKS5 UDP header
  for (;;) {
    udp::endpoint sender;
    auto [ec, n] = co_await remoteSide_.async_receive_from(
        asio::buffer(buffer.data() + kHeaderRoom, buffer.size() - kHeaderRoom), sender, kNoThrow);
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      continue;
    }
    sender = unmapped(sender);
    // Replies only from destinations the client has sent to (or that `acceptAlso_` admits), and
    // only once the client is known.
    if (clientPort_ == 0 ||
        (!contacted_.contains(sender) && !(acceptAlso_ && acceptAlso_(sender)))) {
      continue;
    }
    const auto header = socks5::encodeUdpHeader(toWire(sender.address(), sender.port()));
    std::uint8_t* start = buffer.data() + kHeaderRoom - header.size();
    std::memcpy(start, header.data(), header.size());
    auto [sendEc, sent] = co_await clientSide_.async_send_to(
        asio::buffer(start, header.size() + n), udp::endpoint{client_, clientPort_}, kNoThrow);
    if (sendEc) continue;
    lastActivity_ = std::chrono::steady_clock::now();
    record_.bytesDown += n;
    ++record_.datagramsDown;
  }
}

asio::awaitable<void> UdpRelay::idleWatch() {
  asio::steady_timer timer(clientSide_.get_executor());
  for (;;) {
    timer.expires_at(lastActivity_ + idleTimeout_);
    auto [ec] = co_await timer.async_wait(kNoThrow);
    if (ec) co_return;
    if (std::chrono::steady_clock::now() - lastActivity_ >= idleTimeout_) {
      // Not over what the session recorded first (a datagram's denial says more).
      if (record_.error.empty()) record_.error = "udp idle timeout";
      co_return;
    }
  }
}

}  // namespace fwgate::gateway
