// The subcommands of the fwgate executable; main.cpp parses flags and calls one of these.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fwgate::app {

struct GatewayOptions {
  std::string configPath;                  // empty: the embedded default
  std::vector<std::string> listen;         // --listen ADDR:PORT, replaces the config's listeners
  std::vector<std::string> controlListen;  // --control-listen ADDR:PORT, replaces [control] listen
  std::vector<std::string> webListen;      // --web-listen ADDR:PORT, replaces [web_proxy] listen
  std::optional<std::uint32_t> workers;    // --workers N, replaces [gateway] workers
  std::string stateDir;                    // --state-dir DIR: control.key's directory
};
int runGateway(const GatewayOptions& options);  // cmd_gateway.cpp

// Prints every error (and warning) with its key path; 0 when valid, 1 otherwise.
int runConfigCheck(const std::string& path);  // cmd_config.cpp
// Prints the embedded default configuration.
int runConfigDefault();  // cmd_config.cpp

struct ConfigPacOptions {
  std::string configPath;  // -c/--config; empty: the embedded default
  std::string client;      // --client ADDR: the browser's address
  std::string proxy;       // --proxy HOST:PORT; empty: pac_proxy, else the first listener's
};
// Prints the automatic configuration script the Web Proxy serves that client; 1 on a
// configuration error, 2 on a bad flag.
int runConfigPac(const ConfigPacOptions& options);  // cmd_config.cpp

struct PasswdOptions {
  std::string usersFile = "/etc/fwgate/users";
  std::string user;
  bool remove = false;             // --delete
  bool list = false;               // --list
  bool passwordFromStdin = false;  // --stdin: read one line from standard input
};
int runPasswd(const PasswdOptions& options);  // cmd_passwd.cpp

// The firewall client (cmd_client.cpp).
struct ClientRunOptions {
  std::string server;                // --server: FWGATE_SERVER for the program
  bool debug = false;                // --debug: FWGATE_DEBUG=2
  bool clear = false;                // --clear: no agent, the control channel in clear
  bool kernel = false;               // --kernel: the eBPF programs, not the preload library
  std::vector<std::string> command;  // the program and its arguments
};
// With an agent answering (or --clear): execs the program, returns only on failure. Without one:
// serves a private agent for the program's life and returns its exit status.
int runProgram(const ClientRunOptions& options);
// libfwgate-client.so: FWGATE_CLIENT_LIB, beside the executable (installed or build tree), or the
// install directory. Empty when not found.
std::string findClientLibrary();

struct ClientCheckOptions {
  std::string server;
  std::string app;  // check: the program whose settings to show
  int timeoutMs = 5000;
};
// Exit status: 0 versions match and the gateway accepts this client, 1 mismatch or refused,
// 2 no gateway configured or unreachable.
int runCheck(const ClientCheckOptions& options);
// Fetches the configuration now and writes the cache; 0 on success.
int runDetect(const ClientCheckOptions& options);

struct ClientAgentOptions {
  std::string server;
  bool once = false;  // one refresh, then exit (0 on success)
  int timeoutMs = 5000;
  std::string socket;   // --socket: where the library reaches it ("" : AgentServer::defaultPath())
  std::string hostKey;  // --host-key: its handshakes' key ("": /var/lib/fwgate/host.key for root)
  bool showHostKey = false;  // --show-host-key: print the [control.hosts] line, exit
};
int runAgent(const ClientAgentOptions& options);

// `fwgate kernel`: the kernel-level firewall client for the whole host (docs/kernel-client.md).
struct KernelOptions {
  std::string action;               // start (in the foreground), install, remove, status
  std::string server;               // --server
  std::string cgroup = "/";         // --cgroup: what it covers (the hierarchy's top: every process)
  std::vector<std::string> exempt;  // --exempt-user (default: root, and fwgate if it exists)
  bool optIn = false;               // --opt-in: only processes that ask (fwgate run --kernel)
  std::string socket;               // --socket: where they ask (kernel::defaultJoinSocket())
};
int runKernelService(const KernelOptions& options);

struct ProxyEnvOptions {
  std::string format = "shell";  // --format: "shell" (export lines) or "systemd" (EnvironmentFile=)
};
// Prints http_proxy, https_proxy and no_proxy (and the upper-case names) for the Web Proxy the
// cached gateway configuration names; 1 when it names none.
int runProxyEnv(const ProxyEnvOptions& options);

// `fwgate monitor` (cmd_monitor.cpp).
struct MonitorOptions {
  std::string interface;           // -i: live capture
  std::string file;                // -r: pcap or pcapng file ("-": standard input)
  std::string logPath;             // --log: the gateway's session log ("-": standard input)
  std::string filter;              // -f/--filter: BPF expression
  int bufferMegabytes = 0;         // -B/--buffer-size
  std::uint64_t count = 0;         // -c: stop after this many frames
  int durationSeconds = 0;         // --duration
  std::string writeFile;           // -w: save the frames as well
  bool promiscuous = false;        // -p/--promiscuous
  bool suggest = false;            // --suggest
  bool frames = false;             // --frames: with --suggest, print the frames too
  std::string client;              // --client ADDR
  std::string name = "CustomApp";  // --name: of new definitions
  std::string configPath;          // --config: the gateway's definitions and dynamic ports
  bool gatewayHost = false;        // --gateway-host: suggest packet filters
};
// 0 done, 1 capture/file/log error, 2 usage.
int runMonitor(const MonitorOptions& options);

// `fwgate filters` (cmd_filters.cpp).
struct FiltersOptions {
  std::string action;      // show, apply, flush, stats
  std::string configPath;  // -c/--config; empty: the embedded default
};
// 0 done, 1 configuration or nftables error.
int runFilters(const FiltersOptions& options);

}  // namespace fwgate::app
