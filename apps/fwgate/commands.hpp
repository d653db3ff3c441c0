// The subcommands of the fwgate executable; main.cpp parses flags and calls one of these.
#pragma once

#include <string>
#include <vector>

namespace fwgate::app {

struct GatewayOptions {
  std::string configPath;           // empty: the embedded default
  std::vector<std::string> listen;  // --listen ADDR:PORT, replaces the config's listeners
  std::vector<std::string> controlListen;  // --control-listen ADDR:PORT, replaces [control] listen
};
int runGateway(const GatewayOptions& options);  // cmd_gateway.cpp

// Prints every error (and warning) with its key path; 0 when valid, 1 otherwise.
int runConfigCheck(const std::string& path);  // cmd_config.cpp
// Prints the embedded default configuration.
int runConfigDefault();  // cmd_config.cpp

struct PasswdOptions {
  std::string usersFile = "/etc/fwgate/users";
  std::string user;
  bool remove = false;             // --delete
  bool list = false;               // --list
  bool passwordFromStdin = false;  // --stdin: read one line from standard input
};
int runPasswd(const PasswdOptions& options);  // cmd_passwd.cpp

}  // namespace fwgate::app
