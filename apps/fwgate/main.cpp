// fwgate: one executable, one subcommand per part. Parses flags and calls into commands.hpp.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "commands.hpp"

int main(int argc, char** argv) {
  using namespace fwgate::app;
  CLI::App app{"fwgate: a firewall gateway (SOCKS 4/4a/5, firewall client, policy, monitor)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "fwgate 0.1.0");

  GatewayOptions gateway;
  auto* gatewayCmd = app.add_subcommand("gateway", "Run the gateway daemon");
  gatewayCmd->add_option("-c,--config", gateway.configPath,
                         "Configuration file (TOML); without it, the embedded default");
  gatewayCmd->add_option("-l,--listen", gateway.listen,
                         "ADDR:PORT for the SOCKS service, replacing the configured listeners "
                         "(repeatable; [::1]:1080 for IPv6)");
  gatewayCmd->add_option("--control-listen", gateway.controlListen,
                         "ADDR:PORT for the firewall-client control channel, replacing "
                         "[control] listen (repeatable)");

  std::string checkPath;
  auto* configCmd = app.add_subcommand("config", "Check or print configuration");
  configCmd->require_subcommand(1);
  auto* checkCmd = configCmd->add_subcommand("check", "Validate a configuration file");
  checkCmd->add_option("path", checkPath, "Configuration file")->required();
  auto* defaultCmd = configCmd->add_subcommand("default", "Print the embedded default");

  PasswdOptions passwd;
  auto* passwdCmd = app.add_subcommand("passwd", "Add, change, delete or list users");
  passwdCmd->add_option("-f,--users-file", passwd.usersFile, "Users file")->capture_default_str();
  passwdCmd->add_option("user", passwd.user, "User name");
  passwdCmd->add_flag("-d,--delete", passwd.remove, "Delete the user");
  passwdCmd->add_flag("--list", passwd.list, "List user names");
  passwdCmd->add_flag("--stdin", passwd.passwordFromStdin,
                      "Read the password from standard input instead of prompting");

  CLI11_PARSE(app, argc, argv);

  if (gatewayCmd->parsed()) return runGateway(gateway);
  if (checkCmd->parsed()) return runConfigCheck(checkPath);
  if (defaultCmd->parsed()) return runConfigDefault();
  if (passwdCmd->parsed()) return runPasswd(passwd);
  return 2;
}
