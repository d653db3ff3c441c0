// What the monitor builds from frames and from logs, on hostile input. The input is split at its
// first 0xff 0xff pair: before it, frames (each a 2-byte length, a link-type byte and the bytes)
// go through decode, the frame line, the conversation table and suggest(); after it, text goes
// through the session log's investigate() and render(). Invariants: every frame line is one line;
// the suggestion is configuration text `fwgate config check` accepts (it names only what exists);
// investigate() counts no more denials than lines.
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "fuzz_check.hpp"
#include "monitor/conversations.hpp"
#include "monitor/decode.hpp"
#include "monitor/frame_line.hpp"
#include "monitor/investigate.hpp"
#include "monitor/suggest.hpp"

namespace {

using namespace fwgate::monitor;

constexpr int kLinkTypes[] = {link::kEthernet, link::kRaw, link::kLinuxSll, link::kLinuxSll2,
                              link::kNull};

void frames(const std::uint8_t* data, std::size_t size) {
  ConversationTable table(64);
  std::uint64_t number = 0;
  std::string line;
  while (size >= 3 && number < 256) {
    const std::size_t length = (std::size_t{data[0]} << 8 | data[1]) % 1600;
    const int linkType = kLinkTypes[data[2] % std::size(kLinkTypes)];
    data += 3, size -= 3;
    const std::size_t n = length < size ? length : size;
    const std::vector<std::uint8_t> bytes(data, data + n);  // exact size: ASan sees overreads
    data += n, size -= n;
    const Frame f = decode(linkType, bytes, static_cast<std::uint32_t>(n));
    line.clear();
    appendFrameLine(line, ++number, 1764000000, 0, f);
    FUZZ_CHECK(!line.empty() && line.back() == '\n' && line.find('\n') == line.size() - 1);
    table.add(number, 1764000000, f);
  }
  SuggestOptions options;
  options.gatewayHost = true;
  const Suggestion s = suggest(table, options);
  std::string rules;
  for (const auto& d : s.definitions) {
    if (!d.existing.empty() || d.definition.name.empty()) continue;  // covered, or impossible
    rules += "\n[[rules]]\naction = \"allow\"\nsources = [\"loopback\"]\nprotocols = [\"" +
             d.definition.name + "\"]\n";
  }
  const auto loaded = fwgate::config::parseConfig(
      std::string(fwgate::config::embeddedDefaultConfig()) + "\n" + s.text + rules, "fuzz.toml");
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.toString().c_str());
    std::fprintf(stderr, "%s", s.text.c_str());
  }
  FUZZ_CHECK(loaded.ok());
}

void log(const std::uint8_t* data, std::size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  const Investigation result = investigate(in, {});
  FUZZ_CHECK(result.denials <= result.lines);
  FUZZ_CHECK(result.unreadable <= result.lines);
  (void)render(result);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::size_t split = size;
  for (std::size_t i = 0; i + 1 < size; ++i) {
    if (data[i] == 0xff && data[i + 1] == 0xff) {
      split = i;
      break;
    }
  }
  frames(data, split);
  if (split + 2 <= size) log(data + split + 2, size - split - 2);
  return 0;
}
