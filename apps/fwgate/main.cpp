// fwgate: one executable, one subcommand per part. Parses flags and calls into commands.hpp.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string_view>

#include "commands.hpp"

int main(int argc, char** argv) {
  using namespace fwgate::app;
  CLI::App app{"fwgate: a firewall gateway (SOCKS 4/4a/5, firewall client, policy, monitor)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "fwgate " FWGATE_VERSION);

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
  gatewayCmd->add_option("--web-listen", gateway.webListen,
                         "ADDR:PORT for the Web Proxy (HTTP, CONNECT, automatic configuration "
                         "script), replacing [web_proxy] listen (repeatable)");
  gatewayCmd
      ->add_option("--workers", gateway.workers,
                   "Event loops, one thread each, replacing [gateway] workers (0: one per CPU "
                   "the process may run on)")
      ->check(CLI::Range(0, 1024));
  gatewayCmd->add_option("--state-dir", gateway.stateDir,
                         "Where control.key is kept when [control] key_file is not set (default "
                         "$STATE_DIRECTORY, else /var/lib/fwgate)");

  std::string checkPath;
  auto* configCmd = app.add_subcommand("config", "Check or print configuration");
  configCmd->require_subcommand(1);
  auto* checkCmd = configCmd->add_subcommand("check", "Validate a configuration file");
  checkCmd->add_option("path", checkPath, "Configuration file")->required();
  auto* defaultCmd = configCmd->add_subcommand("default", "Print the embedded default");
  ConfigPacOptions pac;
  auto* pacCmd = configCmd->add_subcommand(
      "pac", "Print the automatic configuration script (PAC) the Web Proxy serves a client");
  pacCmd->add_option("-c,--config", pac.configPath,
                     "Configuration file (TOML); without it, the embedded default");
  pacCmd->add_option("--client", pac.client, "The browser's IP address")->required();
  pacCmd->add_option("--proxy", pac.proxy,
                     "HOST:PORT the script's PROXY names (else [web_proxy] pac_proxy, else the "
                     "first [web_proxy] listener)");

  PasswdOptions passwd;
  auto* passwdCmd = app.add_subcommand("passwd", "Add, change, delete or list users");
  passwdCmd->add_option("-f,--users-file", passwd.usersFile, "Users file")->capture_default_str();
  passwdCmd->add_option("user", passwd.user, "User name");
  passwdCmd->add_flag("-d,--delete", passwd.remove, "Delete the user");
  passwdCmd->add_flag("--list", passwd.list, "List user names");
  passwdCmd->add_flag("--stdin", passwd.passwordFromStdin,
                      "Read the password from standard input instead of prompting");

  ClientRunOptions run;
  auto* runCmd = app.add_subcommand("run",
                                    "Run a program through the gateway: fwgate run [--server S] "
                                    "[--debug] [--kernel] -- PROGRAM ...");
  runCmd->add_option("--server", run.server, "Gateway HOST[:PORT] (else the client settings)");
  runCmd->add_flag("--debug", run.debug, "One line on stderr per remoting decision");
  runCmd->add_flag("--clear", run.clear,
                   "Without an agent: the control channel in clear (the gateway must allow it)");
  runCmd->add_flag("--kernel", run.kernel,
                   "Divert the program's sockets in the kernel (eBPF on a cgroup of its own), for "
                   "programs that do not use libc (Go, static binaries); as root");
  runCmd->prefix_command();
  runCmd->allow_extras();

  KernelOptions kernelOptions;
  auto* kernelCmd = app.add_subcommand(
      "kernel",
      "The kernel-level firewall client for every process of this host (eBPF on the cgroup "
      "tree): start (in the foreground, as fwgate-kernel.service does), install, remove, status");
  kernelCmd->add_option("action", kernelOptions.action, "start, install, remove or status")
      ->required()
      ->check(CLI::IsMember({"start", "install", "remove", "status"}));
  kernelCmd->add_option("--server", kernelOptions.server, "Gateway HOST[:PORT]");
  kernelCmd
      ->add_option("--cgroup", kernelOptions.cgroup,
                   "The cgroup whose processes it covers, below the cgroup2 hierarchy's top")
      ->capture_default_str();
  kernelCmd->add_flag("--opt-in", kernelOptions.optIn,
                      "Cover only the processes that ask: any user's fwgate run --kernel, "
                      "without root (a cgroup of its own, the socket of --socket)");
  kernelCmd->add_option("--socket", kernelOptions.socket,
                        "Where --opt-in takes requests (default /run/fwgate/kernel.sock, or "
                        "FWGATE_KERNEL_SOCKET)");
  kernelCmd->add_option("--exempt-user", kernelOptions.exempt,
                        "An account whose programs go direct, repeatable (default: root, and "
                        "fwgate if it exists; 'none': no account)");

  ClientCheckOptions check;
  auto* clientCheckCmd = app.add_subcommand(
      "check", "Test the gateway: control protocol versions, LAT, settings for --app");
  clientCheckCmd->add_option("--server", check.server, "Gateway HOST[:PORT]");
  clientCheckCmd->add_option("--app", check.app, "Show the settings that apply to this program");
  clientCheckCmd->add_option("--timeout-ms", check.timeoutMs, "Time limit per step")
      ->capture_default_str();

  ClientCheckOptions detect;
  auto* detectCmd = app.add_subcommand(
      "detect",
      "Find the gateway (by DNS when none is configured) and fetch its client configuration now");
  detectCmd->add_option("--server", detect.server, "Gateway HOST[:PORT]");
  detectCmd->add_option("--timeout-ms", detect.timeoutMs, "Time limit")->capture_default_str();

  ClientAgentOptions agent;
  auto* agentCmd =
      app.add_subcommand("agent",
                         "Serve the firewall client's encrypted channel on a Unix socket and keep "
                         "the client configuration fresh");
  agentCmd->add_option("--server", agent.server, "Gateway HOST[:PORT]");
  agentCmd->add_option("--socket", agent.socket,
                       "The socket programs reach it on (default /run/fwgate/agent.sock for root, "
                       "$XDG_RUNTIME_DIR/fwgate/agent.sock for a user)");
  agentCmd->add_option("--host-key", agent.hostKey,
                       "The host key its handshakes prove, which the gateway enrolls in "
                       "[control.hosts] (default /var/lib/fwgate/host.key for root)");
  agentCmd->add_flag("--show-host-key", agent.showHostKey,
                     "Print the [control.hosts] line that enrolls this host, and exit");
  agentCmd->add_flag("--once", agent.once, "Refresh once and exit");
  agentCmd->add_option("--timeout-ms", agent.timeoutMs, "Time limit per refresh")
      ->capture_default_str();

  ProxyEnvOptions proxyEnv;
  auto* proxyEnvCmd = app.add_subcommand(
      "proxy-env",
      "Print http_proxy, https_proxy and no_proxy for the gateway's Web Proxy (after detect)");
  proxyEnvCmd
      ->add_option("--format", proxyEnv.format,
                   "shell: export lines (eval \"$(fwgate proxy-env)\"); systemd: lines for "
                   "EnvironmentFile=")
      ->check(CLI::IsMember({"shell", "systemd"}))
      ->capture_default_str();

  MonitorOptions monitor;
  auto* monitorCmd = app.add_subcommand(
      "monitor",
      "See what a program does on the wire and the protocol definition it needs: "
      "fwgate monitor (-i IFACE | -r FILE) [--suggest] | --log GATEWAY-LOG");
  monitorCmd->add_option("-i,--interface", monitor.interface, "Capture live on this interface");
  monitorCmd->add_option("-r,--read", monitor.file, "Read a pcap or pcapng file ('-': stdin)");
  monitorCmd->add_option("--log", monitor.logPath,
                         "Investigation mode: the denied attempts in the gateway's session log "
                         "and the definitions that would allow them ('-': stdin)");
  monitorCmd->add_option("-f,--filter", monitor.filter, "BPF filter, tcpdump syntax");
  monitorCmd
      ->add_option("-B,--buffer-size", monitor.bufferMegabytes,
                   "Kernel capture buffer in MB (default 2)")
      ->check(CLI::Range(1, 2047));
  monitorCmd->add_option("-c,--count", monitor.count, "Stop after this many frames");
  monitorCmd
      ->add_option("--duration", monitor.durationSeconds,
                   "Stop a live capture after this many seconds")
      ->check(CLI::Range(1, 86400 * 365));
  monitorCmd->add_option("-w,--write", monitor.writeFile, "Also save the frames to a pcap file");
  monitorCmd->add_flag("-p,--promiscuous", monitor.promiscuous, "Promiscuous mode");
  monitorCmd->add_flag("--suggest", monitor.suggest,
                       "Propose protocol definitions (and packet filters for a program on the "
                       "gateway host), as configuration text");
  monitorCmd->add_flag("--frames", monitor.frames, "With --suggest: print the frames as well");
  monitorCmd->add_option("--client", monitor.client,
                         "The address of the host running the program (else the first host "
                         "to open a conversation)");
  monitorCmd->add_option("--name", monitor.name, "Name for new definitions")->capture_default_str();
  monitorCmd->add_option("--config", monitor.configPath,
                         "Gateway configuration: its definitions and dynamic ports");
  monitorCmd->add_flag("--gateway-host", monitor.gatewayHost,
                       "The program runs on the gateway host: suggest static packet filters");

  FiltersOptions filtersOptions;
  auto* filtersCmd = app.add_subcommand(
      "filters", "Packet filters as nftables table inet fwgate: show, apply, flush, stats");
  filtersCmd->require_subcommand(1);
  for (const auto& [name, help] : std::initializer_list<std::pair<const char*, const char*>>{
           {"show", "Print the nftables ruleset the configuration makes"},
           {"apply", "Apply it in one transaction (replaces table inet fwgate only)"},
           {"flush", "Remove table inet fwgate, and nothing else"},
           {"stats", "Packets and bytes per filter, the dynamic ports and the drops"}}) {
    auto* sub = filtersCmd->add_subcommand(name, help);
    sub->add_option("-c,--config", filtersOptions.configPath,
                    "Gateway configuration (else the embedded default)");
    sub->callback([&filtersOptions, name] { filtersOptions.action = name; });
  }

  // `fwgate run [OPTIONS] -- PROGRAM ARGS...`: everything after "--" is the program's, untouched.
  if (argc > 1 && std::string_view(argv[1]) == "run") {
    for (int i = 2; i < argc; ++i) {
      if (std::string_view(argv[i]) != "--") continue;
      for (int k = i + 1; k < argc; ++k) run.command.emplace_back(argv[k]);
      argc = i;
      break;
    }
  }
  CLI11_PARSE(app, argc, argv);

  if (runCmd->parsed()) {
    if (run.command.empty()) run.command = runCmd->remaining();
    return runProgram(run);
  }
  if (clientCheckCmd->parsed()) return runCheck(check);
  if (detectCmd->parsed()) return runDetect(detect);
  if (agentCmd->parsed()) return runAgent(agent);
  if (kernelCmd->parsed()) return runKernelService(kernelOptions);
  if (proxyEnvCmd->parsed()) return runProxyEnv(proxyEnv);

  if (monitorCmd->parsed()) return runMonitor(monitor);
  if (filtersCmd->parsed()) return runFilters(filtersOptions);
  if (gatewayCmd->parsed()) return runGateway(gateway);
  if (checkCmd->parsed()) return runConfigCheck(checkPath);
  if (defaultCmd->parsed()) return runConfigDefault();
  if (pacCmd->parsed()) return runConfigPac(pac);
  if (passwdCmd->parsed()) return runPasswd(passwd);
  return 2;
}
