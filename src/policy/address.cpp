// IP addresses, address ranges and port ranges: parsing and formatting.
#include "policy/address.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

namespace fwgate::policy {
namespace {

constexpr std::array<std::uint8_t, 12> kV4MappedPrefix{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool isV4Mapped(const std::array<std::uint8_t, 16>& b) {
  return std::equal(kV4MappedPrefix.begin(), kV4MappedPrefix.end(), b.begin());
}

// An address as written, before v4-mapped normalisation: the prefix length of a CIDR written
// as "::ffff:10.0.0.0/104" depends on the family it was written in.
struct WrittenAddress {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};
};

std::optional<WrittenAddress> parseWritten(std::string_view text) {
  // inet_pton needs a terminated string; an embedded NUL would silently cut the text short.
  if (text.empty() || text.size() > 64 || text.find('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  const std::string copy(text);
  WrittenAddress out;
  if (copy.find(':') == std::string::npos) {
    if (inet_pton(AF_INET, copy.c_str(), out.bytes.data()) != 1) return std::nullopt;
    return out;
  }
  out.v6 = true;
  if (inet_pton(AF_INET6, copy.c_str(), out.bytes.data()) != 1) return std::nullopt;
  return out;
}

IpAddress normalise(const WrittenAddress& w) {
  if (!w.v6) return IpAddress::fromV4({w.bytes[0], w.bytes[1], w.bytes[2], w.bytes[3]});
  return IpAddress::fromV6(w.bytes);
}

std::optional<unsigned> parseDecimal(std::string_view text, unsigned max) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value > max) return std::nullopt;
  return value;
}

std::size_t familyBytes(const IpAddress& a) {
  return a.v6 ? 16 : 4;
}

// The range covered by `prefix` leading bits of `base`.
IpRange prefixRange(IpAddress base, unsigned prefix) {
  IpAddress last = base;
  const std::size_t n = familyBytes(base);
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned bitsBefore = static_cast<unsigned>(i) * 8;
    std::uint8_t mask = 0;  // bits of byte i that belong to the network part
    if (prefix >= bitsBefore + 8) {
      mask = 0xff;
    } else if (prefix > bitsBefore) {
      mask = static_cast<std::uint8_t>(0xff << (8 - (prefix - bitsBefore)));
    }
    base.bytes[i] = static_cast<std::uint8_t>(base.bytes[i] & mask);
    last.bytes[i] = static_cast<std::uint8_t>(base.bytes[i] | static_cast<std::uint8_t>(~mask));
  }
  return IpRange{base, last};
}

// The prefix length when [first, last] is exactly one CIDR block, else nullopt.
std::optional<unsigned> exactPrefix(const IpRange& r) {
  const std::size_t n = familyBytes(r.first);
  for (unsigned prefix = 0; prefix <= n * 8; ++prefix) {
    if (prefixRange(r.first, prefix) == r) return prefix;
  }
  return std::nullopt;
}

}  // namespace

IpAddress IpAddress::fromV4(std::array<std::uint8_t, 4> b) {
  IpAddress a;
  std::copy(b.begin(), b.end(), a.bytes.begin());
  return a;
}

IpAddress IpAddress::fromV6(const std::array<std::uint8_t, 16>& b) {
  if (isV4Mapped(b)) return fromV4({b[12], b[13], b[14], b[15]});
  IpAddress a;
  a.v6 = true;
  a.bytes = b;
  return a;
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  const auto written = parseWritten(text);
  if (!written) return std::nullopt;
  return normalise(*written);
}

std::string IpAddress::toString() const {
  char buffer[INET6_ADDRSTRLEN] = {};
  if (inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buffer, sizeof buffer) == nullptr) {
    return "?";
  }
  return buffer;
}

bool IpAddress::isLoopback() const {
  if (!v6) return bytes[0] == 127;
  return std::all_of(bytes.begin(), bytes.end() - 1, [](std::uint8_t b) { return b == 0; }) &&
         bytes[15] == 1;
}

bool IpAddress::isUnspecified() const {
  if (!v6) return bytes[0] == 0;
  return std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b == 0; });
}

std::optional<IpRange> IpRange::parse(std::string_view text) {
  text = trim(text);
  if (const auto slash = text.find('/'); slash != std::string_view::npos) {
    const auto written = parseWritten(trim(text.substr(0, slash)));
    if (!written) return std::nullopt;
    const unsigned familyBits = written->v6 ? 128 : 32;
    auto prefix = parseDecimal(trim(text.substr(slash + 1)), familyBits);
    if (!prefix) return std::nullopt;
    const IpAddress base = normalise(*written);
    if (written->v6 && !base.v6) {
      // "::ffff:10.0.0.0/104": a block inside the mapped space is an IPv4 block.
      if (*prefix < 96) return std::nullopt;
      *prefix -= 96;
    }
    return prefixRange(base, *prefix);
  }
  if (const auto dash = text.find('-'); dash != std::string_view::npos) {
    const auto first = IpAddress::parse(trim(text.substr(0, dash)));
    const auto last = IpAddress::parse(trim(text.substr(dash + 1)));
    if (!first || !last || first->v6 != last->v6 || *last < *first) return std::nullopt;
    return IpRange{*first, *last};
  }
  const auto single = IpAddress::parse(text);
  if (!single) return std::nullopt;
  return IpRange{*single, *single};
}

bool IpRange::contains(const IpAddress& a) const {
  // Same family is implied: the ordering puts every IPv4 address before every IPv6 one.
  return first.v6 == a.v6 && first <= a && a <= last;
}

std::string IpRange::toString() const {
  if (first == last) return first.toString();
  if (const auto prefix = exactPrefix(*this)) {
    return first.toString() + "/" + std::to_string(*prefix);
  }
  return first.toString() + "-" + last.toString();
}

std::optional<PortRange> PortRange::parse(std::string_view text) {
  text = trim(text);
  const auto dash = text.find('-');
  const auto first = parseDecimal(trim(text.substr(0, dash)), 65535);
  if (!first || *first == 0) return std::nullopt;
  if (dash == std::string_view::npos) {
    const auto port = static_cast<std::uint16_t>(*first);
    return PortRange{port, port};
  }
  const auto last = parseDecimal(trim(text.substr(dash + 1)), 65535);
  if (!last || *last < *first) return std::nullopt;
  return PortRange{static_cast<std::uint16_t>(*first), static_cast<std::uint16_t>(*last)};
}

std::string PortRange::toString() const {
  if (first == last) return std::to_string(first);
  return std::to_string(first) + "-" + std::to_string(last);
}

}  // namespace fwgate::policy
