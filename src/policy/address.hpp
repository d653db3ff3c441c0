// IP addresses, address ranges and port ranges as policy sees them: plain values, no sockets.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fwgate::policy {

// An IPv4 or IPv6 address. IPv4-mapped IPv6 (::ffff:a.b.c.d) is normalised to IPv4 by parse()
// and by fromV6(), so one rule written for 10.0.0.0/8 matches both socket families.
struct IpAddress {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};  // IPv4 in the first 4 bytes

  static IpAddress fromV4(std::array<std::uint8_t, 4> b);
  static IpAddress fromV6(const std::array<std::uint8_t, 16>& b);  // unmaps ::ffff:0:0/96
  static std::optional<IpAddress> parse(std::string_view text);
  std::string toString() const;
  bool isLoopback() const;     // 127.0.0.0/8, ::1
  bool isUnspecified() const;  // 0.0.0.0/8 (connect() to it reaches this host), ::

  friend auto operator<=>(const IpAddress&, const IpAddress&) = default;
};

// An inclusive range of addresses of one family.
struct IpRange {
  IpAddress first;
  IpAddress last;

  // "10.0.0.0/8", "2001:db8::/32", "10.0.0.1-10.0.0.9" (the seed's address pair), "10.0.0.1".
  static std::optional<IpRange> parse(std::string_view text);
  bool contains(const IpAddress& a) const;
  std::string toString() const;
  friend bool operator==(const IpRange&, const IpRange&) = default;
};

// An inclusive range of ports: "80", "1024-5000". Port 0 is not a valid destination port.
struct PortRange {
  std::uint16_t first = 1;
  std::uint16_t last = 65535;

  static std::optional<PortRange> parse(std::string_view text);
  bool contains(std::uint16_t port) const { return port >= first && port <= last; }
  std::string toString() const;
  friend bool operator==(const PortRange&, const PortRange&) = default;
};

}  // namespace fwgate::policy
