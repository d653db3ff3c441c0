// The client's cache file (written by fwgate detect, the agent and the library, read by every
// host program at its first network call) and the Config body inside it. Invariants: a parsed
// cache's body lies inside the file; applying the body never grows a table past its capacity; a
// body that applied once applies again to the same result.
#include <cstdint>
#include <span>

#include "client/client_config.hpp"
#include "fuzz_check.hpp"

using namespace fwgate;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  client::CacheHeader header;
  protocol::Bytes body;
  const std::span<const std::uint8_t> file(data, size);
  if (client::parseCache(file, header, body)) {
    FUZZ_CHECK(body.empty() || (body.data() >= data && body.data() + body.size() <= data + size));
  } else {
    body = protocol::Bytes(data, size);  // the body alone, as a fresh Config frame carries it
  }
  static client::ClientConfig first;
  static client::ClientConfig again;
  first = client::ClientConfig{};
  again = client::ClientConfig{};
  const bool applied = client::applyGatewayConfig(body, first);
  FUZZ_CHECK(first.lat.size() <= client::LocalAddressTable::kCapacity);
  if (applied) {
    FUZZ_CHECK(client::applyGatewayConfig(body, again));
    FUZZ_CHECK(again.lat.size() == first.lat.size());
    for (std::size_t i = 0; i < first.lat.size(); ++i) {
      FUZZ_CHECK(first.lat[i].first == again.lat[i].first &&
                 first.lat[i].last == again.lat[i].last);
    }
  }
  return 0;
}
