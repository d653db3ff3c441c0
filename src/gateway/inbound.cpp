#include "gateway/inbound.hpp"

#include <sodium.h>

#include <asio/ip/udp.hpp>

#include "gateway/net.hpp"

namespace fwgate::gateway {

using asio::ip::tcp;

asio::ip::address externalAddressToward(const config::Config& config, asio::io_context& io,
                                        const std::optional<asio::ip::address>& peer,
                                        const asio::ip::address& fallback) {
  std::error_code ec;
  if (!config.bind.externalAddress.empty()) {
    auto a = asio::ip::make_address(config.bind.externalAddress, ec);
    if (!ec) return a;
  }
  if (peer) {
    // The local address of the route toward the peer: a connected UDP socket sends nothing.
    asio::ip::udp::socket probe(io);
    probe.open(peer->is_v4() ? asio::ip::udp::v4() : asio::ip::udp::v6(), ec);
    if (!ec) probe.connect({*peer, 9}, ec);
    if (!ec) {
      auto local = probe.local_endpoint(ec);
      if (!ec) return unmapped(local.address());
    }
  }
  return fallback;
}

std::error_code openInbound(tcp::acceptor& acceptor, const asio::ip::address& address,
                            std::uint16_t port, policy::PortRange range) {
  std::error_code ec;
  const auto attempt = [&](std::uint16_t p) {
    std::error_code ignored;
    if (acceptor.is_open()) acceptor.close(ignored);
    acceptor.open(address.is_v4() ? tcp::v4() : tcp::v6(), ec);
    if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor.bind({address, p}, ec);
    return !ec;
  };
  if (port != 0) {
    attempt(port);
    return ec;
  }
  if (range.first == 0) range.first = 1;
  if (range.last < range.first) return asio::error::invalid_argument;
  // Random ports of the range, then every port in order from a random start: a busy range fails
  // only when it is really full.
  const std::uint32_t size = std::uint32_t{range.last} - range.first + 1;
  for (int i = 0; i < 16; ++i) {
    if (attempt(static_cast<std::uint16_t>(range.first + randombytes_uniform(size)))) return {};
    if (ec != asio::error::address_in_use) return ec;
  }
  const std::uint32_t start = randombytes_uniform(size);
  for (std::uint32_t k = 0; k < size; ++k) {
    if (attempt(static_cast<std::uint16_t>(range.first + (start + k) % size))) return {};
    if (ec != asio::error::address_in_use) return ec;
  }
  return ec;
}

}  // namespace fwgate::gateway
