// A destination as carried on the wire: an IPv4 or IPv6 address or a domain name, and a port.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace fwgate::protocol {

// SOCKS5 ATYP values (RFC 1928 section 4).
enum class AddressType : std::uint8_t { IPv4 = 0x01, Domain = 0x03, IPv6 = 0x04 };

struct Address {
  AddressType type = AddressType::IPv4;
  std::array<std::uint8_t, 16> ip{};  // IPv4 uses the first 4 bytes, network order
  std::string domain;                 // only for AddressType::Domain, 1..255 bytes
  std::uint16_t port = 0;             // host order

  static Address ipv4(std::array<std::uint8_t, 4> bytes, std::uint16_t port);
  static Address ipv6(const std::array<std::uint8_t, 16>& bytes, std::uint16_t port);
  static Address name(std::string domain, std::uint16_t port);

  // All-zero IPv4/IPv6 address (the "unspecified" DST.ADDR of BIND and UDP ASSOCIATE).
  bool isUnspecified() const;
  // "1.2.3.4:80", "[2001:db8::1]:443", "example.com:80".
  std::string toString() const;
  // Host part only: "1.2.3.4", "2001:db8::1", "example.com".
  std::string host() const;

  friend bool operator==(const Address&, const Address&) = default;
};

// SOCKS5 address encoding: ATYP, address, port (network order). Appends to `out`.
void appendSocks5Address(std::vector<std::uint8_t>& out, const Address& address);

}  // namespace fwgate::protocol
