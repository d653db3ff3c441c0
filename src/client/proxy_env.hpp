// The environment that points proxy-aware programs (curl, wget, git, pip, apt, Go, Python, node)
// at the Web Proxy the gateway supplies: http_proxy, https_proxy and no_proxy, in lower and upper
// case, from a client's gateway settings. For the fwgate commands (`fwgate proxy-env`); it
// allocates, and the preload library never links it.
#pragma once

#include <string>
#include <vector>

#include "client/client_config.hpp"

namespace fwgate::client {

struct ProxyEnvironment {
  std::string proxyUrl;              // "http://host:port"; empty: the gateway names no Web Proxy
  std::vector<std::string> noProxy;  // no_proxy entries, in order, each once
};

// From the gateway's WebProxy, the local domain table and the local address table.
ProxyEnvironment proxyEnvironment(const ClientConfig& config);

// no_proxy entries for one LAT range: one address ("10.0.0.5", "::1"), or the fewest CIDR blocks
// that cover it exactly ("10.0.0.0/8"; a pair "10.0.0.1 10.0.0.6" is 10.0.0.1, 10.0.0.2/31,
// 10.0.0.4/31, 10.0.0.6): the form curl, wget, Python and Go all read.
void appendNoProxyRange(const AddressRange& range, std::vector<std::string>& out);

enum class EnvFormat { Shell, Systemd };
// Shell: "export NAME='value'" lines for eval or a profile script. Systemd: "NAME=value" lines for
// EnvironmentFile= (the values hold no spaces, quotes or backslashes).
std::string renderProxyEnvironment(const ProxyEnvironment& environment, EnvFormat format);

}  // namespace fwgate::client
