// The local address table (LAT) and local domain table (LDT) of a firewall client: what is local
// is reached directly, everything else through the gateway. Fixed capacity, no allocation: the
// preload library keeps one per process.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "protocol/control.hpp"

namespace fwgate::client {

using protocol::control::AddressRange;
using protocol::control::IpAddress;

// IPv4-mapped IPv6 addresses are unmapped first, so one range serves both socket families.
IpAddress normalise(const IpAddress& a);
bool parseAddress(std::string_view text, IpAddress& out);
// "a.b.c.d" -> "a.b.c.d", for messages.
void formatAddress(const IpAddress& a, char* out, std::size_t size);

class LocalAddressTable {
 public:
  static constexpr std::size_t kCapacity = 1024;
  // False when full or the range is malformed (different families, first > last).
  bool add(const AddressRange& range);
  bool contains(const IpAddress& address) const;
  std::size_t size() const { return count_; }
  const AddressRange& operator[](std::size_t i) const { return ranges_[i]; }
  void clear() { count_ = 0; }

 private:
  std::array<AddressRange, kCapacity> ranges_{};
  std::size_t count_ = 0;
};

// The seed's Locallat.txt: each line a pair of addresses "first last" (a single address is
// written twice); '#' starts a comment; "first-last" and one address alone are accepted too.
// Calls bad(line number) for a line it cannot read. Returns the ranges added.
std::size_t parseLocalLat(std::string_view text, LocalAddressTable& out,
                          void (*bad)(void* context, std::uint32_t line) = nullptr,
                          void* context = nullptr);

// The host's directly connected routes (no gateway, not a default route) from the text of
// /proc/net/route and /proc/net/ipv6_route; loopback and link-local are local anyway.
std::size_t parseIpv4Routes(std::string_view procNetRoute, LocalAddressTable& out);
std::size_t parseIpv6Routes(std::string_view procNetIpv6Route, LocalAddressTable& out);

class LocalDomainTable {
 public:
  static constexpr std::size_t kCapacity = 128;
  static constexpr std::size_t kMaxName = 253;
  bool add(std::string_view suffix);  // "corp.example" matches it and every name below it
  bool contains(std::string_view name) const;
  std::size_t size() const { return count_; }
  std::string_view operator[](std::size_t i) const { return {names_[i].data(), lengths_[i]}; }
  void clear() { count_ = 0; }

 private:
  std::array<std::array<char, kMaxName + 1>, kCapacity> names_{};
  std::array<std::uint8_t, kCapacity> lengths_{};
  std::size_t count_ = 0;
};

// Local whatever the tables say: loopback, unspecified, link-local, multicast, broadcast.
bool alwaysLocal(const IpAddress& address);

}  // namespace fwgate::client
