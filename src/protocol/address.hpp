// A destination as carried on the wire: an IPv4 or IPv6 address or a domain name, and a port.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/parse.hpp"

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
  // True unless a Domain is empty or longer than 255 bytes: what a SOCKS5 ATYP/ADDR can carry.
  // Every parser yields encodable addresses; encoders return nothing for the others.
  bool isEncodable() const;
  // "1.2.3.4:80", "[2001:db8::1]:443", "example.com:80".
  std::string toString() const;
  // Host part only: "1.2.3.4", "2001:db8::1", "example.com".
  std::string host() const;

  friend bool operator==(const Address&, const Address&) = default;
};

// "HOST:PORT", with the host in brackets when it is an IPv6 address ("[2001:db8::1]:443").
std::string hostPortText(std::string_view host, bool ipv6, std::uint16_t port);

/*
 *  +------+----------+----------+
 *  | ATYP | DST.ADDR | DST.PORT |   ATYP 1: 4 bytes; 4: 16 bytes; 3: one length byte, then the name
 *  +------+----------+----------+
 *  |  1   | Variable |    2     |
 */
// SOCKS5 address encoding: ATYP, address, port (network order). Appends to `out`;
// appends nothing when !address.isEncodable().
void appendSocks5Address(std::vector<std::uint8_t>& out, const Address& address);

// Parses ATYP, address, port from the front of `in`. ATYP other than 1, 3, 4 is BadAddressType as
// soon as that byte is present; a domain of length 0 is BadLength. Domain bytes are not validated.
ParseResult<Address> parseSocks5Address(Bytes in);

// A name fit to resolve: 1..253 bytes of letters, digits, '-', '_' and '.', no empty label
// (a trailing dot is allowed). A name with NUL or other bytes would let "evil\0.allowed.com" pass
// a suffix rule for allowed.com while the resolver looks up "evil".
bool isValidHostName(std::string_view name);

}  // namespace fwgate::protocol
