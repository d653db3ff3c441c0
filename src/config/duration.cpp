// Durations as written in the configuration: "250ms", "10s", "5m", "2h" or bare seconds.
#include <charconv>
#include <cstdint>
#include <limits>

#include "config/config.hpp"
#include "policy/address.hpp"

namespace fwgate::config {

bool parseDuration(std::string_view text, Duration& out) {
  const std::size_t digits = text.find_first_not_of("0123456789");
  if (digits == 0 || text.empty()) return false;
  const std::string_view number = text.substr(0, digits);
  const std::string_view unit = digits == std::string_view::npos ? "" : text.substr(digits);
  std::int64_t millisPerUnit = 0;
  if (unit.empty() || unit == "s") {
    millisPerUnit = 1000;
  } else if (unit == "ms") {
    millisPerUnit = 1;
  } else if (unit == "m") {
    millisPerUnit = 60 * 1000;
  } else if (unit == "h") {
    millisPerUnit = 60 * 60 * 1000;
  } else {
    return false;
  }
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc{} || end != number.data() + number.size()) return false;
  if (value > std::numeric_limits<std::int64_t>::max() / millisPerUnit) return false;
  out = Duration{value * millisPerUnit};
  return true;
}

}  // namespace fwgate::config

namespace fwgate::config {

bool parseEndpoint(std::string_view text, std::string& address, std::uint16_t& port) {
  std::string_view host;
  std::string_view portText;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return false;
    }
    host = text.substr(1, close - 1);
    portText = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) return false;
    host = text.substr(0, colon);
    portText = text.substr(colon + 1);
  }
  if (!policy::IpAddress::parse(host) || portText.empty()) return false;
  unsigned value = 0;
  const auto [end, err] =
      std::from_chars(portText.data(), portText.data() + portText.size(), value);
  if (err != std::errc{} || end != portText.data() + portText.size() || value > 65535) return false;
  address = std::string(host);
  port = static_cast<std::uint16_t>(value);
  return true;
}

}  // namespace fwgate::config
