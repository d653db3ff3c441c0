#include "client/local_table.hpp"

#include <arpa/inet.h>

#include <cstdio>
#include <cstring>

namespace fwgate::client {

namespace {

bool lessOrEqual(const IpAddress& a, const IpAddress& b) {
  return std::memcmp(a.bytes.data(), b.bytes.data(), a.size()) <= 0;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// Calls f(line, number) for each line of text.
template <typename F>
void forEachLine(std::string_view text, F&& f) {
  std::uint32_t number = 0;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    ++number;
    f(text.substr(0, end), number);
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
}

// Splits on spaces and tabs into at most N fields; returns how many.
template <std::size_t N>
std::size_t fields(std::string_view line, std::array<std::string_view, N>& out) {
  std::size_t n = 0;
  while (n < N) {
    line = trim(line);
    if (line.empty()) break;
    const std::size_t end = line.find_first_of(" \t");
    out[n++] = line.substr(0, end);
    if (end == std::string_view::npos) break;
    line.remove_prefix(end);
  }
  return n;
}

bool hex(std::string_view s, std::uint64_t& out) {
  if (s.empty() || s.size() > 16) return false;
  out = 0;
  for (char c : s) {
    int v = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (v < 0) return false;
    out = out << 4 | static_cast<std::uint64_t>(v);
  }
  return true;
}

bool hexBytes(std::string_view s, std::uint8_t* out, std::size_t n) {
  if (s.size() != 2 * n) return false;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint64_t v = 0;
    if (!hex(s.substr(2 * i, 2), v)) return false;
    out[i] = static_cast<std::uint8_t>(v);
  }
  return true;
}

}  // namespace

IpAddress normalise(const IpAddress& a) {
  static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (a.family == 6 && std::memcmp(a.bytes.data(), kMapped, 12) == 0) {
    IpAddress v4;
    v4.family = 4;
    std::memcpy(v4.bytes.data(), a.bytes.data() + 12, 4);
    return v4;
  }
  return a;
}

bool parseAddress(std::string_view text, IpAddress& out) {
  char buffer[64];
  if (text.empty() || text.size() >= sizeof buffer) return false;
  std::memcpy(buffer, text.data(), text.size());
  buffer[text.size()] = '\0';
  IpAddress a;
  if (::inet_pton(AF_INET, buffer, a.bytes.data()) == 1) {
    a.family = 4;
  } else if (::inet_pton(AF_INET6, buffer, a.bytes.data()) == 1) {
    a.family = 6;
  } else {
    return false;
  }
  out = normalise(a);
  return true;
}

void formatAddress(const IpAddress& a, char* out, std::size_t size) {
  if (::inet_ntop(a.family == 4 ? AF_INET : AF_INET6, a.bytes.data(), out,
                  static_cast<socklen_t>(size)) == nullptr &&
      size > 0) {
    out[0] = '\0';
  }
}

bool LocalAddressTable::add(const AddressRange& range) {
  if (count_ == ranges_.size() || range.first.family != range.last.family ||
      (range.first.family != 4 && range.first.family != 6) ||
      !lessOrEqual(range.first, range.last)) {
    return false;
  }
  for (std::size_t i = 0; i < count_; ++i) {
    if (ranges_[i] == range) return true;
  }
  ranges_[count_++] = range;
  return true;
}

bool LocalAddressTable::contains(const IpAddress& raw) const {
  const IpAddress a = normalise(raw);
  for (std::size_t i = 0; i < count_; ++i) {
    const AddressRange& r = ranges_[i];
    if (r.first.family == a.family && lessOrEqual(r.first, a) && lessOrEqual(a, r.last)) {
      return true;
    }
  }
  return false;
}

std::size_t parseLocalLat(std::string_view text, LocalAddressTable& out,
                          void (*bad)(void* context, std::uint32_t line), void* context) {
  std::size_t added = 0;
  forEachLine(text, [&](std::string_view line, std::uint32_t number) {
    const std::size_t hash = line.find('#');
    if (hash != std::string_view::npos) line = line.substr(0, hash);
    line = trim(line);
    if (line.empty()) return;
    std::array<std::string_view, 3> f;
    std::size_t n = fields(line, f);
    if (n == 1 && f[0].find('-') != std::string_view::npos) {
      const std::size_t dash = f[0].find('-');
      f[1] = f[0].substr(dash + 1);
      f[0] = f[0].substr(0, dash);
      n = 2;
    }
    AddressRange range;
    bool ok = n >= 1 && n <= 2 && parseAddress(f[0], range.first);
    if (ok) ok = n == 1 ? (range.last = range.first, true) : parseAddress(f[1], range.last);
    if (ok && out.add(range)) {
      ++added;
    } else if (bad != nullptr) {
      bad(context, number);
    }
  });
  return added;
}

std::size_t parseIpv4Routes(std::string_view text, LocalAddressTable& out) {
  std::size_t added = 0;
  forEachLine(text, [&](std::string_view line, std::uint32_t number) {
    if (number == 1) return;  // the header
    std::array<std::string_view, 8> f;
    if (fields(line, f) < 8) return;
    std::uint64_t destination = 0, gateway = 0, flags = 0, mask = 0;
    if (!hex(f[1], destination) || !hex(f[2], gateway) || !hex(f[3], flags) || !hex(f[7], mask)) {
      return;
    }
    constexpr std::uint64_t kUp = 0x1;
    constexpr std::uint64_t kReject = 0x200;
    if (gateway != 0 || mask == 0 || (flags & kUp) == 0 || (flags & kReject) != 0) return;
    // The kernel prints the network-order word as a host integer: copying it back restores the
    // bytes on any byte order.
    const auto d = static_cast<std::uint32_t>(destination);
    const auto m = static_cast<std::uint32_t>(mask);
    const std::uint32_t last = d | ~m;
    AddressRange range;
    range.first.family = range.last.family = 4;
    std::memcpy(range.first.bytes.data(), &d, 4);
    std::memcpy(range.last.bytes.data(), &last, 4);
    if (out.add(range)) ++added;
  });
  return added;
}

std::size_t parseIpv6Routes(std::string_view text, LocalAddressTable& out) {
  std::size_t added = 0;
  forEachLine(text, [&](std::string_view line, std::uint32_t) {
    std::array<std::string_view, 10> f;
    if (fields(line, f) < 10) return;
    AddressRange range;
    range.first.family = range.last.family = 6;
    std::uint64_t prefix = 0, flags = 0;
    std::array<std::uint8_t, 16> nextHop{};
    if (!hexBytes(f[0], range.first.bytes.data(), 16) || !hex(f[1], prefix) || prefix > 128 ||
        !hexBytes(f[4], nextHop.data(), 16) || !hex(f[8], flags)) {
      return;
    }
    constexpr std::uint64_t kReject = 0x200;
    if (prefix == 0 || (flags & kReject) != 0 || f[9] == "lo") return;
    for (std::uint8_t b : nextHop) {
      if (b != 0) return;  // via a router: not directly connected
    }
    range.last = range.first;
    for (std::size_t bit = prefix; bit < 128; ++bit) {
      range.last.bytes[bit / 8] |= static_cast<std::uint8_t>(0x80 >> (bit % 8));
    }
    if (alwaysLocal(range.first)) return;
    if (out.add(range)) ++added;
  });
  return added;
}

bool LocalDomainTable::add(std::string_view suffix) {
  while (!suffix.empty() && suffix.front() == '.') suffix.remove_prefix(1);
  while (!suffix.empty() && suffix.back() == '.') suffix.remove_suffix(1);
  if (suffix.empty() || suffix.size() > kMaxName || count_ == names_.size()) return false;
  for (std::size_t i = 0; i < suffix.size(); ++i) {
    const char c = suffix[i];
    names_[count_][i] = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  }
  lengths_[count_] = static_cast<std::uint8_t>(suffix.size());
  ++count_;
  return true;
}

bool LocalDomainTable::contains(std::string_view name) const {
  while (!name.empty() && name.back() == '.') name.remove_suffix(1);
  for (std::size_t i = 0; i < count_; ++i) {
    const std::string_view suffix = (*this)[i];
    if (name.size() < suffix.size()) continue;
    const std::string_view tail = name.substr(name.size() - suffix.size());
    bool same = true;
    for (std::size_t k = 0; k < tail.size() && same; ++k) {
      const char c = tail[k];
      same = (c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) == suffix[k];
    }
    if (same && (name.size() == suffix.size() || name[name.size() - suffix.size() - 1] == '.')) {
      return true;
    }
  }
  return false;
}

bool alwaysLocal(const IpAddress& raw) {
  const IpAddress a = normalise(raw);
  const auto& b = a.bytes;
  if (a.family == 4) {
    return b[0] == 127 || b[0] == 0 || (b[0] == 169 && b[1] == 254) || b[0] >= 224;
  }
  bool zeroPrefix = true;
  for (int i = 0; i < 15; ++i) zeroPrefix = zeroPrefix && b[i] == 0;
  if (zeroPrefix && (b[15] == 0 || b[15] == 1)) return true;  // :: and ::1
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return true;     // fe80::/10
  return b[0] == 0xff;                                        // multicast
}

}  // namespace fwgate::client
