// Conversions between Asio endpoints, wire addresses and policy addresses; the awaitable tokens.
#pragma once

#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/use_awaitable.hpp>
#include <string>

#include "policy/address.hpp"
#include "protocol/address.hpp"
#include "protocol/control.hpp"

namespace fwgate::gateway {

// Completion token for the data path: errors come back as values, never as exceptions.
inline constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);

policy::IpAddress toPolicy(const asio::ip::address& a);
asio::ip::address toAsio(const policy::IpAddress& a);
// IPv4-mapped IPv6 becomes IPv4, so replies and logs show the address the peer knows.
asio::ip::address unmapped(const asio::ip::address& a);
// A wire address for an endpoint (IPv4 or IPv6, unmapped).
protocol::Address toWire(const asio::ip::tcp::endpoint& e);
protocol::Address toWire(const asio::ip::address& a, std::uint16_t port);
// The IP address in a wire address; false for domain names.
bool wireToAsio(const protocol::Address& w, asio::ip::address& out);
// "1.2.3.4:80" / "[::1]:80".
std::string endpointString(const asio::ip::address& a, std::uint16_t port);

// The control channel's address forms (IPv4-mapped IPv6 unmapped first, as the peer knows it).
protocol::control::IpAddress toControl(const asio::ip::address& a);
protocol::control::Endpoint toControl(const asio::ip::address& a, std::uint16_t port);
asio::ip::address fromControl(const protocol::control::IpAddress& a);

}  // namespace fwgate::gateway
