// Durations as written in the configuration: "250ms", "10s", "5m", "2h" or bare seconds.
#include <charconv>
#include <cstdint>
#include <limits>

#include "config/config.hpp"

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
