// The configuration the gateway runs with when no file is given.
#include "config/config.hpp"

namespace fwgate::config {

std::string_view embeddedDefaultConfig() {
  return R"(# fwgate embedded default configuration (`fwgate config default` prints it).
# SOCKS 4/4a/5 on 127.0.0.1:1080 without authentication; the firewall-client control channel
# on 127.0.0.1:1745; the Web Proxy (HTTP, CONNECT to 443, the automatic configuration script)
# on 127.0.0.1:8080; only clients on this host are allowed; sessions are logged to standard
# error. See docs/configuration.md.

[[listeners]]
address = "127.0.0.1"
port = 1080
methods = ["none"]

[control]
listen = ["127.0.0.1:1745"]

[web_proxy]
listen = ["127.0.0.1:8080"]

[networks.loopback]
firewall_clients = true

[log]
level = "info"
sessions = "-"

[[rules]]
name = "loopback clients"
action = "allow"
sources = ["loopback"]
)";
}

}  // namespace fwgate::config
