// The automatic configuration script (PAC: FindProxyForURL) the Web Proxy serves at /wpad.dat,
// /proxy.pac and /array.dll?Get.Routing.Script, generated from the configuration for one client
// (TMG's DirectAddressDestinations, DirectIPDestinations and backup route). See docs/web-proxy.md.
#pragma once

#include <string>
#include <string_view>

#include "config/config.hpp"

namespace fwgate::config {

// The network whose ranges and domains a client at `client` treats as local (its LAT and LDT):
// the first network with firewall_clients = true that holds the address; null when none does.
const policy::Network* clientNetwork(const Config& config, const policy::IpAddress& client);

// The automatic configuration script for a browser at `client`; `proxy` is the "host:port" its
// PROXY entry names ([web_proxy] pac_proxy, or the address and port the browser reached).
std::string pacScript(const Config& config, const policy::IpAddress& client,
                      std::string_view proxy);

}  // namespace fwgate::config
