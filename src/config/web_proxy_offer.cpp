#include "config/web_proxy_offer.hpp"

#include "protocol/address.hpp"

#include <algorithm>

namespace fwgate::config {

std::string hostPort(const policy::IpAddress& address, std::uint16_t port) {
  return protocol::hostPortText(address.toString(), address.v6, port);
}

WebProxyOffer webProxyOffer(const Config& config, std::span<const Listener> webListeners,
                            const policy::IpAddress& reached) {
  WebProxyOffer offer;
  if (!config.firewallClient.webProxy.empty()) {
    offer.proxy = config.firewallClient.webProxy;
    return offer;
  }
  // Unmapped: a client that reached "::" over IPv4 reached an IPv4 address.
  const policy::IpAddress here = reached.v6 ? policy::IpAddress::fromV6(reached.bytes) : reached;
  for (const Listener& listener : webListeners) {
    const auto address = policy::IpAddress::parse(listener.address);
    if (!address || listener.port == 0) continue;
    const bool unspecified = std::all_of(address->bytes.begin(), address->bytes.end(),
                                         [](std::uint8_t b) { return b == 0; });
    // "0.0.0.0" serves IPv4, "::" both families (the gateway opens it dual-stack).
    const bool fits = *address == here || (unspecified && (address->v6 || !here.v6));
    if (!fits) continue;
    offer.proxy = hostPort(here, listener.port);
    offer.pacUrl = "http://";
    offer.pacUrl += offer.proxy;
    offer.pacUrl += "/wpad.dat";
    return offer;
  }
  return offer;
}

}  // namespace fwgate::config
