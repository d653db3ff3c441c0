#include "gateway/net.hpp"

#include <cstring>

namespace fwgate::gateway {

policy::IpAddress toPolicy(const asio::ip::address& a) {
  if (a.is_v4()) return policy::IpAddress::fromV4(a.to_v4().to_bytes());
  return policy::IpAddress::fromV6(a.to_v6().to_bytes());
}

asio::ip::address toAsio(const policy::IpAddress& a) {
  if (!a.v6) return asio::ip::address_v4({a.bytes[0], a.bytes[1], a.bytes[2], a.bytes[3]});
  return asio::ip::address_v6(a.bytes);
}

asio::ip::address unmapped(const asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  }
  return a;
}

protocol::Address toWire(const asio::ip::address& address, std::uint16_t port) {
  const auto a = unmapped(address);
  if (a.is_v4()) return protocol::Address::ipv4(a.to_v4().to_bytes(), port);
  return protocol::Address::ipv6(a.to_v6().to_bytes(), port);
}

protocol::Address toWire(const asio::ip::tcp::endpoint& e) {
  return toWire(e.address(), e.port());
}

bool wireToAsio(const protocol::Address& w, asio::ip::address& out) {
  switch (w.type) {
    case protocol::AddressType::IPv4:
      out = asio::ip::address_v4({w.ip[0], w.ip[1], w.ip[2], w.ip[3]});
      return true;
    case protocol::AddressType::IPv6:
      out = unmapped(asio::ip::address_v6(w.ip));
      return true;
    case protocol::AddressType::Domain:
      return false;
  }
  return false;
}

std::string endpointString(const asio::ip::address& address, std::uint16_t port) {
  const auto a = unmapped(address);
  return protocol::hostPortText(a.to_string(), a.is_v6(), port);
}

protocol::control::IpAddress toControl(const asio::ip::address& a) {
  protocol::control::IpAddress out;
  const auto plain = unmapped(a);
  if (plain.is_v4()) {
    out.family = 4;
    const auto b = plain.to_v4().to_bytes();
    std::memcpy(out.bytes.data(), b.data(), 4);
  } else {
    out.family = 6;
    const auto b = plain.to_v6().to_bytes();
    std::memcpy(out.bytes.data(), b.data(), 16);
  }
  return out;
}

protocol::control::Endpoint toControl(const asio::ip::address& a, std::uint16_t port) {
  return {toControl(a), port};
}

asio::ip::address fromControl(const protocol::control::IpAddress& a) {
  if (a.family == 4) {
    asio::ip::address_v4::bytes_type b;
    std::memcpy(b.data(), a.bytes.data(), 4);
    return asio::ip::address_v4(b);
  }
  asio::ip::address_v6::bytes_type b;
  std::memcpy(b.data(), a.bytes.data(), 16);
  return unmapped(asio::ip::address_v6(b));
}

}  // namespace fwgate::gateway
