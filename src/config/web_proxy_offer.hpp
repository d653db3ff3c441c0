// What the control channel tells a firewall client about the Web Proxy (docs/control-protocol.md:
// WebProxy and PacUrl in Config): the seed's "name or IP address of the Web proxy" and "automatic
// discovery settings for Web browsers".
#pragma once

#include <span>
#include <string>

#include "config/config.hpp"

namespace fwgate::config {

struct WebProxyOffer {
  std::string proxy;   // "host:port", "[v6]:port"; empty: none
  std::string pacUrl;  // "http://host:port/wpad.dat"; empty: none
};

// For a client that reached the control channel at `reached` (the connection's local address):
// [firewall_client] web_proxy when it is set (and no PAC URL: it may be another proxy); else the
// first of `webListeners` (the Web Proxy's listening sockets, with the ports they are bound to)
// that listens on `reached` or on an unspecified address of its family ("::" on both), named by
// `reached` and that port, with its /wpad.dat. A listener on port 0 is skipped (not bound yet).
WebProxyOffer webProxyOffer(const Config& config, std::span<const Listener> webListeners,
                            const policy::IpAddress& reached);

// "10.0.0.1:8080", "[fd00::1]:8080".
std::string hostPort(const policy::IpAddress& address, std::uint16_t port);

}  // namespace fwgate::config
