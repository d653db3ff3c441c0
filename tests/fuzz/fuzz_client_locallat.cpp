// locallat.txt and the kernel's route tables as the client reads them (inside every host
// program). Invariants: the table never exceeds its capacity nor what the parser says it added
// (a range given twice is kept once); every range is one family with first <= last; every range's
// ends are in the table; a bad line is reported with a line number that exists.
#include <algorithm>
#include <cstdint>
#include <string_view>

#include "client/local_table.hpp"
#include "fuzz_check.hpp"

using namespace fwgate;

namespace {

struct Lines {
  std::uint32_t count = 0;
};

void bad(void* context, std::uint32_t line) {
  FUZZ_CHECK(line >= 1 && line <= static_cast<Lines*>(context)->count);
}

void checkTable(const client::LocalAddressTable& t, std::size_t added) {
  FUZZ_CHECK(t.size() <= added && t.size() <= client::LocalAddressTable::kCapacity);
  for (std::size_t i = 0; i < t.size(); ++i) {
    FUZZ_CHECK(t[i].first.family == t[i].last.family);
    FUZZ_CHECK(t[i].first.bytes <= t[i].last.bytes);
    FUZZ_CHECK(t.contains(t[i].first) && t.contains(t[i].last));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  Lines lines{static_cast<std::uint32_t>(std::count(text.begin(), text.end(), '\n') + 1)};
  static client::LocalAddressTable table;
  table.clear();
  checkTable(table, client::parseLocalLat(text, table, bad, &lines));
  table.clear();
  checkTable(table, client::parseIpv4Routes(text, table));
  table.clear();
  checkTable(table, client::parseIpv6Routes(text, table));
  return 0;
}
