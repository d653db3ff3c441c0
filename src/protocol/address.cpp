#include "protocol/address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <charconv>
#include <utility>

namespace fwgate::protocol {
namespace {

constexpr std::size_t kMaxDomainLength = 255;

// Bytes of ATYP + address + port once the ATYP (and, for a domain, its length) byte is known.
std::size_t encodedSize(AddressType type, std::size_t domainLength) {
  switch (type) {
    case AddressType::IPv4:
      return 1 + 4 + 2;
    case AddressType::IPv6:
      return 1 + 16 + 2;
    case AddressType::Domain:
      return 1 + 1 + domainLength + 2;
  }
  return 0;
}

}  // namespace

Address Address::ipv4(std::array<std::uint8_t, 4> bytes, std::uint16_t port) {
  Address address;
  address.type = AddressType::IPv4;
  std::copy(bytes.begin(), bytes.end(), address.ip.begin());
  address.port = port;
  return address;
}

Address Address::ipv6(const std::array<std::uint8_t, 16>& bytes, std::uint16_t port) {
  Address address;
  address.type = AddressType::IPv6;
  address.ip = bytes;
  address.port = port;
  return address;
}

Address Address::name(std::string domain, std::uint16_t port) {
  Address address;
  address.type = AddressType::Domain;
  address.domain = std::move(domain);
  address.port = port;
  return address;
}

bool Address::isUnspecified() const {
  const auto isZero = [](std::uint8_t b) { return b == 0; };
  switch (type) {
    case AddressType::IPv4:
      return std::all_of(ip.begin(), ip.begin() + 4, isZero);
    case AddressType::IPv6:
      return std::all_of(ip.begin(), ip.end(), isZero);
    case AddressType::Domain:
      return false;
  }
  return false;
}

bool Address::isEncodable() const {
  switch (type) {
    case AddressType::IPv4:
    case AddressType::IPv6:
      return true;
    case AddressType::Domain:
      return !domain.empty() && domain.size() <= kMaxDomainLength;
  }
  return false;
}

std::string Address::host() const {
  switch (type) {
    case AddressType::IPv4: {
      char text[INET_ADDRSTRLEN] = {};
      ::inet_ntop(AF_INET, ip.data(), text, sizeof text);
      return text;
    }
    case AddressType::IPv6: {
      char text[INET6_ADDRSTRLEN] = {};
      ::inet_ntop(AF_INET6, ip.data(), text, sizeof text);
      return text;
    }
    case AddressType::Domain:
      return domain;
  }
  return {};
}

std::string Address::toString() const {
  return hostPortText(host(), type == AddressType::IPv6, port);
}

// Written into a string sized once, exactly: reserve() or += past the 15 bytes kept inline would
// round the allocation up to 31 (libstdc++ doubles), and session records keep several of these.
// (Not `"[" + std::string + "]"` either: GCC 12 at -O3 reports a -Wrestrict false positive for
// the rvalue operator+ that inserts at the front, GCC bug 105329.)
std::string hostPortText(std::string_view host, bool ipv6, std::uint16_t port) {
  char portText[8];
  const char* portEnd = std::to_chars(portText, portText + sizeof portText, port).ptr;
  std::string out(host.size() + static_cast<std::size_t>(portEnd - portText) + (ipv6 ? 3 : 1), ':');
  char* p = out.data();
  if (ipv6) *p++ = '[';
  p = std::copy(host.begin(), host.end(), p);
  if (ipv6) *p++ = ']';
  *p++ = ':';
  std::copy(static_cast<const char*>(portText), portEnd, p);
  return out;
}

void appendSocks5Address(std::vector<std::uint8_t>& out, const Address& address) {
  if (!address.isEncodable()) return;
  out.push_back(static_cast<std::uint8_t>(address.type));
  switch (address.type) {
    case AddressType::IPv4:
      out.insert(out.end(), address.ip.begin(), address.ip.begin() + 4);
      break;
    case AddressType::IPv6:
      out.insert(out.end(), address.ip.begin(), address.ip.end());
      break;
    case AddressType::Domain:
      out.push_back(static_cast<std::uint8_t>(address.domain.size()));
      out.insert(out.end(), address.domain.begin(), address.domain.end());
      break;
  }
  out.push_back(static_cast<std::uint8_t>(address.port >> 8));
  out.push_back(static_cast<std::uint8_t>(address.port & 0xFF));
}

ParseResult<Address> parseSocks5Address(Bytes in) {
  ParseResult<Address> result;
  if (in.empty()) return result;

  const std::uint8_t atyp = in[0];
  if (atyp != static_cast<std::uint8_t>(AddressType::IPv4) &&
      atyp != static_cast<std::uint8_t>(AddressType::Domain) &&
      atyp != static_cast<std::uint8_t>(AddressType::IPv6)) {
    result.status = ParseStatus::Invalid;
    result.error = ParseError::BadAddressType;
    return result;
  }
  const auto type = static_cast<AddressType>(atyp);

  std::size_t domainLength = 0;
  if (type == AddressType::Domain) {
    if (in.size() < 2) return result;
    domainLength = in[1];
    if (domainLength == 0) {
      result.status = ParseStatus::Invalid;
      result.error = ParseError::BadLength;
      return result;
    }
  }

  const std::size_t size = encodedSize(type, domainLength);
  if (in.size() < size) return result;

  Address& address = result.value;
  address.type = type;
  switch (type) {
    case AddressType::IPv4:
      std::copy(in.begin() + 1, in.begin() + 5, address.ip.begin());
      break;
    case AddressType::IPv6:
      std::copy(in.begin() + 1, in.begin() + 17, address.ip.begin());
      break;
    case AddressType::Domain:
      address.domain.assign(in.begin() + 2,
                            in.begin() + 2 + static_cast<std::ptrdiff_t>(domainLength));
      break;
  }
  address.port = static_cast<std::uint16_t>((in[size - 2] << 8) | in[size - 1]);

  result.status = ParseStatus::Complete;
  result.consumed = size;
  return result;
}

bool isValidHostName(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > 253) return false;
  std::size_t label = 0;
  for (const char c : name) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok || ++label > 63) return false;
  }
  return label > 0;
}

}  // namespace fwgate::protocol
