// The configuration the gateway runs with when no file is given.
#include "config/config.hpp"

namespace fwgate::config {

std::string_view embeddedDefaultConfig() {
  return R"(# fwgate embedded default configuration (`fwgate config default` prints it).
# SOCKS 4/4a/5 on 127.0.0.1:1080 without authentication; only clients on this host are
# allowed; sessions are logged to standard error. See docs/configuration.md.

[[listeners]]
address = "127.0.0.1"
port = 1080
methods = ["none"]

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
