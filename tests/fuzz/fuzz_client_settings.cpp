// The client settings INI (client.ini, the user's file and the gateway's settings text), parsed
// inside every host program. The input's first line is the application name, the rest the text.
// Invariants: every problem reported lies within the text and names a line that exists; port lists
// hold at most their capacity, each range first <= last; the server name stays NUL-terminated;
// applying the same text twice gives the same settings (the parser keeps no state).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "fuzz_check.hpp"
#include "protocol/client_settings.hpp"

namespace {

using namespace fwgate::protocol;
using namespace fwgate::protocol::settings;

struct Seen {
  std::string_view text;
  std::uint32_t lines = 0;
};

void checkProblem(void* context, const SettingsProblem& p) {
  const auto* seen = static_cast<const Seen*>(context);
  FUZZ_CHECK(p.line >= 1 && p.line <= seen->lines);
  FUZZ_CHECK(p.what != nullptr);
  for (const std::string_view part : {p.section, p.key}) {
    if (part.empty()) continue;
    FUZZ_CHECK(part.data() >= seen->text.data() &&
               part.data() + part.size() <= seen->text.data() + seen->text.size());
  }
}

void checkList(const PortList& list) {
  FUZZ_CHECK(list.count <= list.ranges.size());
  for (std::size_t i = 0; i < list.count; ++i) {
    FUZZ_CHECK(list.ranges[i].first <= list.ranges[i].last);
  }
}

bool same(const AppSettings& a, const AppSettings& b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t newline = input.find('\n');
  const std::string_view app = newline == std::string_view::npos ? input : input.substr(0, newline);
  const std::string_view text =
      newline == std::string_view::npos ? std::string_view{} : input.substr(newline + 1);
  Seen seen{text, static_cast<std::uint32_t>(std::count(text.begin(), text.end(), '\n') + 1)};
  AppSettings first;
  std::memset(&first, 0, sizeof first);  // padding too: the two results are compared bytewise
  applySettings(text, app, first, checkProblem, &seen);
  for (const PortList* list :
       {&first.localBindTcp, &first.localBindUdp, &first.remoteBindTcp, &first.remoteBindUdp,
        &first.serverBindTcp, &first.dontRemoteTcp, &first.dontRemoteUdp}) {
    checkList(*list);
  }
  FUZZ_CHECK(std::memchr(first.serverName.data(), '\0', first.serverName.size()) != nullptr);
  FUZZ_CHECK(first.nameResolution == 0 || first.nameResolution == 'L' ||
             first.nameResolution == 'R');
  AppSettings again;
  std::memset(&again, 0, sizeof again);
  applySettings(text, app, again);
  FUZZ_CHECK(same(first, again));
  return 0;
}
