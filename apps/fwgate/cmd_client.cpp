// The firewall client's commands: `fwgate run` (a program with the preload library), `fwgate check`
// (the seed's chkwsp32 / "Test Server"), `fwgate detect` ("Detect Now"), `fwgate agent` (the
// refresh daemon) and `fwgate proxy-env` (the Web Proxy for proxy-aware programs).
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include "client/client_config.hpp"
#include "client/discovery.hpp"
#include "client/gateway_link.hpp"
#include "client/proxy_env.hpp"
#include "client/refresh_schedule.hpp"
#include "client/secure/agent_server.hpp"
#include "client/secure/encrypted_exchange.hpp"
#include "commands.hpp"
#include "crypto/key_file.hpp"
#include "crypto/noise.hpp"
#include "kernel/helper.hpp"
#include "kernel/interceptor.hpp"
#include "kernel/join.hpp"
#include "protocol/client_settings.hpp"
#include "protocol/control.hpp"

#ifndef FWGATE_INSTALL_LIBDIR
#define FWGATE_INSTALL_LIBDIR "/usr/local/lib/fwgate"
#endif

namespace fwgate::app {

namespace control = protocol::control;
namespace cs = protocol::settings;

namespace {

std::string executableDir() {
  char path[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  if (n <= 0) return ".";
  path[n] = '\0';
  std::string s(path);
  return s.substr(0, s.rfind('/'));
}

bool exists(const std::string& path) {
  return ::access(path.c_str(), R_OK) == 0;
}

void applyServerOption(const std::string& server) {
  if (!server.empty()) ::setenv("FWGATE_SERVER", server.c_str(), 1);
}

struct Loaded {
  client::Paths paths;
  client::ClientConfig config;
  std::vector<char> scratch = std::vector<char>(256 * 1024);
  std::vector<std::string> problems;
};

void noteProblem(void* context, const char* where, std::uint32_t line, std::string_view section,
                 std::string_view key, const char* what) {
  auto* problems = static_cast<std::vector<std::string>*>(context);
  std::string text = where;
  if (line != 0) (text += ':') += std::to_string(line);
  if (!section.empty()) ((text += " [") += section) += ']';
  if (!key.empty()) (text += ' ') += key;
  text += ": ";
  text += what;
  problems->push_back(text);
}

void load(Loaded& l, const std::string& app, protocol::Bytes fresh = {}) {
  client::defaultPaths(l.paths);
  l.problems.clear();
  client::assemble(l.config, l.paths, app, fresh, {l.scratch.data(), l.scratch.size()}, true,
                   noteProblem, &l.problems);
}

std::string serverText(const client::ServerAddress& s) {
  char text[300];
  client::formatServer(s, text, sizeof text);
  return text;
}

// Where the gateway came from, for people: "client.ini [Common]", "DNS: wspad.corp.example A",
// "cache (found by DNS: _fwgate._tcp.corp.example SRV)".
std::string serverSource(const client::ClientConfig& c) {
  std::string text = c.serverFrom;
  const char* detected = c.server.detectedBy.data();
  if (detected[0] == '\0') return text;
  if (text == "DNS") return text + ": " + detected;
  return text + " (found by DNS: " + detected + ")";
}

// Only the cache names the gateway: `fwgate detect` and the agent look in DNS first, so that a
// record the administrator changed is followed; the cache's server stays when DNS has none.
// (With no server at all, assemble() has just asked DNS and failed: not asked twice.) Returns why
// DNS gave none, or "".
std::string detectAgain(Loaded& l) {
  auto& c = l.config;
  if (std::string_view(c.serverFrom) != "cache") return {};
  client::Detected found;
  if (client::detectServerRemembered(l.paths, {l.scratch.data(), l.scratch.size()}, found, false)) {
    c.server = found.server;
    c.serverFrom = "DNS";
    return {};
  }
  return found.problem.data();
}

// The line for no gateway at all.
std::string noGatewayText(const Loaded& l) {
  std::string text = "no gateway configured (ServerName in [Common] of " +
                     std::string(l.paths.configDir.data()) +
                     "/client.ini, FWGATE_SERVER or --server), and none found by DNS";
  if (l.config.detectProblem[0] != '\0') (text += ": ") += l.config.detectProblem.data();
  return text;
}

std::string addressText(const client::IpAddress& a) {
  char text[64];
  client::formatAddress(a, text, sizeof text);
  return text;
}

// Fetches the configuration over the encrypted channel; on success `frame` holds the whole
// Config frame, and the result names the gateway key it used.
client::EncryptedReply fetch(const client::ClientConfig& config,
                             const client::GatewayEndpoints& gateway,
                             std::vector<std::uint8_t>& frame, int timeoutMs) {
  std::uint8_t request[control::kHeaderSize];
  control::FrameWriter w(request, control::MessageType::GetConfig);
  const std::size_t size = w.finish();
  client::Identity identity;
  client::fillIdentity(config, identity);
  frame.assign(control::kMaxBody + 2 * control::kHeaderSize + 64 * 1024, 0);
  return client::encryptedExchange(config, gateway, identity, {request, size}, frame, timeoutMs);
}

// Why a fetch failed, for a person.
std::string failureText(const client::EncryptedReply& r) {
  return r.detail.empty() ? std::string(std::strerror(r.error)) : r.detail;
}

// Writes the fetched configuration, and the gateway key it came with (the pin), to the cache
// this user may write.
std::string saveCache(const Loaded& l, const client::EncryptedReply& fetched, std::int64_t now) {
  const client::Reply& reply = fetched.reply;
  const auto* start = reply.body.data() - control::kHeaderSize;
  const protocol::Bytes frame(start, control::kHeaderSize + reply.body.size());
  client::CacheHeader header{now, l.config.server, {}};
  const std::string key = crypto::toBase64(fetched.key);
  std::snprintf(header.key.data(), header.key.size(), "%s", key.c_str());
  const bool root = ::geteuid() == 0;
  for (const char* path :
       {root ? l.paths.systemCache.data() : l.paths.userCache.data(), l.paths.systemCache.data()}) {
    if (path[0] != '\0' && client::writeCache(path, header, frame)) return path;
  }
  return {};
}

const char* keyValueText(const cs::AppSettings& s, cs::Key key, char* buf, std::size_t size) {
  switch (key) {
    case cs::Key::ServerName:
      return s.serverName.data();
    case cs::Key::Disable:
      return s.disable ? "1" : "0";
    case cs::Key::NameResolution:
      buf[0] = s.nameResolution;
      buf[1] = '\0';
      return buf;
    case cs::Key::PublishBindTcp:
      return s.publishBindTcp ? "1" : "0";
    default: {
      const cs::PortList* list = nullptr;
      switch (key) {
        case cs::Key::LocalBindTcpPorts:
          list = &s.localBindTcp;
          break;
        case cs::Key::LocalBindUdpPorts:
          list = &s.localBindUdp;
          break;
        case cs::Key::RemoteBindTcpPorts:
          list = &s.remoteBindTcp;
          break;
        case cs::Key::RemoteBindUdpPorts:
          list = &s.remoteBindUdp;
          break;
        case cs::Key::ServerBindTcpPorts:
          list = &s.serverBindTcp;
          break;
        case cs::Key::DontRemoteOutboundTcpPorts:
          list = &s.dontRemoteTcp;
          break;
        default:
          list = &s.dontRemoteUdp;
          break;
      }
      std::string out;
      for (std::size_t i = 0; i < list->count; ++i) {
        if (!out.empty()) out += ",";
        out += std::to_string(list->ranges[i].first);
        if (list->ranges[i].last != list->ranges[i].first) {
          (out += '-') += std::to_string(list->ranges[i].last);
        }
      }
      std::snprintf(buf, size, "%s", out.c_str());
      return buf;
    }
  }
}

}  // namespace

std::string findClientLibrary() {
  if (const char* env = std::getenv("FWGATE_CLIENT_LIB"); env != nullptr && *env != '\0') {
    // Absolute, so that the program finds it wherever it changes directory to.
    char real[PATH_MAX];
    return ::realpath(env, real) != nullptr ? std::string(real) : std::string(env);
  }
  const std::string dir = executableDir();
  for (const std::string& candidate :
       {dir + "/../lib/fwgate/libfwgate-client.so", dir + "/../../src/client/libfwgate-client.so",
        std::string(FWGATE_INSTALL_LIBDIR) + "/libfwgate-client.so"}) {
    if (exists(candidate)) {
      char real[PATH_MAX];
      return ::realpath(candidate.c_str(), real) != nullptr ? std::string(real) : candidate;
    }
  }
  return {};
}

// Whether the dynamic loader can load `library` into a program like this one: in a child, so that
// nothing of the library runs in fwgate itself. The loader ignores an LD_PRELOAD entry it cannot
// load (a warning, then the program runs without the client), so the check comes first. Returns an
// empty string, or why not.
std::string loadProblem(const std::string& library) {
  // ld.so splits LD_PRELOAD at spaces and colons.
  if (library.find_first_of(" :\t") != std::string::npos) {
    return "the path contains a space or a colon, which LD_PRELOAD cannot carry";
  }
  int pipeFds[2];
  if (::pipe2(pipeFds, O_CLOEXEC) != 0) return std::string("pipe: ") + std::strerror(errno);
  const pid_t child = ::fork();
  if (child < 0) {
    const int error = errno;
    ::close(pipeFds[0]);
    ::close(pipeFds[1]);
    return std::string("fork: ") + std::strerror(error);
  }
  if (child == 0) {
    ::close(pipeFds[0]);
    if (::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL) != nullptr) ::_exit(0);
    const char* why = ::dlerror();
    if (why == nullptr) why = "dlopen failed";
    [[maybe_unused]] const ssize_t n = ::write(pipeFds[1], why, std::strlen(why));
    ::_exit(1);
  }
  ::close(pipeFds[1]);
  std::string why;
  char buffer[512];
  for (ssize_t n; (n = ::read(pipeFds[0], buffer, sizeof buffer)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    if (why.size() < 4096) why.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(pipeFds[0]);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
  if (why.empty()) why = "the test load ended abnormally";
  return why;
}

namespace {

volatile sig_atomic_t g_forward = 0;
void onForward(int sig) {
  g_forward = sig;
}

}  // namespace

// Kerberos for the agent's own account's programs: FWGATE_KERBEROS (auto by default).
static void setAgentKerberos(client::AgentServer& server) {
  client::ClientConfig c;
  client::kerberosFromEnvironment(c);
  server.setKerberos(c.kerberos, c.kerberosService.data());
}

namespace {

// An agent of this run, for the program when no agent answers: on a socket in a directory of its
// own (0700), named to the program by FWGATE_AGENT_SOCKET, served on a thread until destroyed.
class PrivateAgent {
 public:
  bool start(std::string& error) {
    // In $TMPDIR when its path leaves room for the socket's name (108 bytes in all).
    const char* tmp = std::getenv("TMPDIR");
    std::string base = tmp != nullptr && *tmp == '/' && std::strlen(tmp) < 64 ? tmp : "/tmp";
    dir_.assign(base.begin(), base.end());
    for (const char c : std::string_view("/fwgate-run-XXXXXX")) dir_.push_back(c);
    dir_.push_back('\0');
    if (::mkdtemp(dir_.data()) == nullptr) {
      error = std::string("cannot make a directory for the agent: ") + std::strerror(errno);
      dir_.clear();
      return false;
    }
    const std::string path = std::string(dir_.data()) + "/agent.sock";
    // A key of this run: the host's key is the host agent's alone.
    server_ = std::make_unique<client::AgentServer>(path, crypto::KeyPair::generate());
    setAgentKerberos(*server_);
    server_->trustKernelHelper(true);
    if (!server_->open(error)) {
      error = "cannot serve the agent: " + error;
      return false;
    }
    ::setenv("FWGATE_AGENT_SOCKET", path.c_str(), 1);
    serving_ = std::thread([this] { server_->serve(stop_); });
    return true;
  }
  ~PrivateAgent() {
    stop_ = 1;
    if (serving_.joinable()) serving_.join();
    server_.reset();  // removes the socket
    if (!dir_.empty()) ::rmdir(dir_.data());
  }

 private:
  std::vector<char> dir_;
  std::unique_ptr<client::AgentServer> server_;
  std::thread serving_;
  volatile sig_atomic_t stop_ = 0;
};

// Starts the program (in the cgroup whose cgroup.procs is `procsFd`, unless -1) and waits for it.
// SIGINT and SIGQUIT reach the program from the terminal; SIGTERM and SIGHUP sent here are passed
// on. Returns its wait status (126 << 8 when it could not start).
int superviseProgram(std::vector<char*>& argv, int procsFd) {
  const pid_t child = ::fork();
  if (child == 0) {
    if (procsFd >= 0 && ::write(procsFd, "0", 1) != 1) {
      std::fprintf(stderr, "fwgate run: cannot enter the cgroup: %s\n", std::strerror(errno));
      ::_exit(126);
    }
    if (procsFd >= 0) ::close(procsFd);
    ::execvp(argv[0], argv.data());
    std::fprintf(stderr, "fwgate run: cannot run %s: %s\n", argv[0], std::strerror(errno));
    ::_exit(errno == ENOENT ? 127 : 126);
  }
  if (child < 0) {
    std::fprintf(stderr, "fwgate run: fork: %s\n", std::strerror(errno));
    return 126 << 8;
  }
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGINT, &ignore, nullptr);
  ::sigaction(SIGQUIT, &ignore, nullptr);
  struct sigaction forward {};
  forward.sa_handler = onForward;
  ::sigaction(SIGTERM, &forward, nullptr);
  ::sigaction(SIGHUP, &forward, nullptr);
  int status = 0;
  for (;;) {
    const pid_t done = ::waitpid(child, &status, 0);
    if (done == child) break;
    if (done < 0 && errno != EINTR) break;
    if (const int sig = g_forward; sig != 0) {
      g_forward = 0;
      ::kill(child, sig);
    }
  }
  return status;
}

// The program's wait status as this process's exit: a signal's death is repeated on itself.
int exitLike(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    ::signal(sig, SIG_DFL);
    ::raise(sig);
    return 128 + sig;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 126;
}

// An agent answers (FWGATE_AGENT_SOCKET, the user's or the host's): whether to use it, or to
// serve one; -1 when one is required and none answers (already said).
bool agentAnswers() {
  bool required = false;
  const int probe = client::agentConnect(required);
  if (probe >= 0) ::close(probe);
  return probe >= 0 || required;
}

std::string baseName(const std::string& path) {
  return path.substr(path.rfind('/') + 1);
}

volatile sig_atomic_t g_helperStop = 0;
void onHelperStop(int) {
  g_helperStop = 1;
}

// FWGATE_TIMEOUT, as the preload library reads it: how long reaching the gateway may take.
int gatewayTimeoutMs() {
  const char* timeout = std::getenv("FWGATE_TIMEOUT");
  return timeout != nullptr && std::atoi(timeout) >= 100 ? std::atoi(timeout) : 5000;
}

// fwgate run --kernel: the program in a cgroup whose sockets the eBPF programs divert to this
// process's helper (src/kernel/).
int runKernel(const ClientRunOptions& options, std::vector<char*>& argv) {
  if (::geteuid() != 0) {
    // Without root: into the cgroup a `fwgate kernel start --opt-in` covers, by asking it.
    const std::string socket = kernel::defaultJoinSocket();
    std::string why;
    if (!kernel::joinCoveredCgroup(socket, why)) {
      std::fprintf(stderr,
                   "fwgate run --kernel: %s; without root it needs `fwgate kernel start --opt-in` "
                   "serving %s (as root, it loads the eBPF programs itself)\n",
                   why.c_str(), socket.c_str());
      return 126;
    }
    ::execvp(argv[0], argv.data());
    std::fprintf(stderr, "fwgate run: cannot run %s: %s\n", argv[0], std::strerror(errno));
    return errno == ENOENT ? 127 : 126;
  }
  Loaded l;
  load(l, baseName(options.command.front()));
  if (l.config.disabled()) {
    ::execvp(argv[0], argv.data());  // the firewall client is off for this program
    std::fprintf(stderr, "fwgate run: cannot run %s: %s\n", argv[0], std::strerror(errno));
    return errno == ENOENT ? 127 : 126;
  }
  std::string error;
  PrivateAgent agent;
  if (!options.clear && !agentAnswers() && !agent.start(error)) {
    std::fprintf(stderr, "fwgate run: %s\n", error.c_str());
    return 126;
  }
  if (options.clear) ::unsetenv("FWGATE_AGENT_SOCKET");
  kernel::Interceptor interceptor;
  if (!interceptor.create("fwgate-run-" + std::to_string(::getpid()), error)) {
    std::fprintf(stderr, "fwgate run --kernel: %s\n", error.c_str());
    return 126;
  }
  if (!interceptor.setScope({}, true, error)) {
    std::fprintf(stderr, "fwgate run --kernel: %s\n", error.c_str());
    return 126;
  }
  kernel::Helper helper(interceptor, l.config, gatewayTimeoutMs());
  helper.setVerbose(options.debug);
  if (!helper.open(error)) {
    std::fprintf(stderr, "fwgate run --kernel: %s\n", error.c_str());
    return 126;
  }
  std::thread serving([&helper] { helper.serve(g_helperStop); });
  const int status = superviseProgram(argv, interceptor.procsFd());
  g_helperStop = 1;
  serving.join();
  interceptor.close();
  return exitLike(status);
}

}  // namespace

int runProgram(const ClientRunOptions& options) {
  if (options.command.empty()) {
    std::fprintf(stderr, "fwgate run: no program given (fwgate run -- PROGRAM [ARGS...])\n");
    return 2;
  }
  if (options.kernel) {
    applyServerOption(options.server);
    std::vector<char*> argv;
    for (const auto& a : options.command) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    return runKernel(options, argv);
  }
  const std::string library = findClientLibrary();
  if (library.empty()) {
    std::fprintf(stderr,
                 "fwgate run: libfwgate-client.so not found (set FWGATE_CLIENT_LIB, or install "
                 "it to %s)\n",
                 FWGATE_INSTALL_LIBDIR);
    return 127;
  }
  if (const std::string why = loadProblem(library); !why.empty()) {
    std::fprintf(stderr, "fwgate run: cannot load the firewall client %s: %s\n", library.c_str(),
                 why.c_str());
    return 127;
  }
  applyServerOption(options.server);
  if (options.debug) ::setenv("FWGATE_DEBUG", "2", 1);
  std::string preload = library;
  if (const char* existing = std::getenv("LD_PRELOAD"); existing != nullptr && *existing != '\0') {
    preload += ":";
    preload += existing;
  }
  ::setenv("LD_PRELOAD", preload.c_str(), 1);
  std::vector<char*> argv;
  for (const auto& a : options.command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // An agent that answers (the host's, the user's, or the one FWGATE_AGENT_SOCKET names) serves
  // the program's encrypted channel: then the program is all there is to run.
  if (options.clear || agentAnswers()) {
    if (options.clear) ::unsetenv("FWGATE_AGENT_SOCKET");
    ::execvp(argv[0], argv.data());
    std::fprintf(stderr, "fwgate run: cannot run %s: %s\n", argv[0], std::strerror(errno));
    return errno == ENOENT ? 127 : 126;
  }
  std::string error;
  PrivateAgent agent;
  if (!agent.start(error)) {
    std::fprintf(stderr, "fwgate run: %s\n", error.c_str());
    return 126;
  }
  return exitLike(superviseProgram(argv, -1));
}

int runCheck(const ClientCheckOptions& options) {
  applyServerOption(options.server);
  Loaded l;
  const std::string app = options.app.empty() ? "*" : options.app;
  load(l, app);
  const auto& c = l.config;
  if (c.server.empty()) {
    std::string text = noGatewayText(l);
    text[0] = 'N';
    std::printf("%s.\n", text.c_str());
    return 2;
  }
  std::printf("Gateway: %s (from %s)\n", serverText(c.server).c_str(), serverSource(c).c_str());
  client::GatewayEndpoints gateway;
  if (const int rc = client::resolveServer(c.server, gateway); rc != 0) {
    std::printf("Cannot resolve the gateway %s: %s\n", c.server.host.data(), ::gai_strerror(rc));
    return 2;
  }
  std::vector<std::uint8_t> frame;
  const client::EncryptedReply fetched = fetch(c, gateway, frame, options.timeoutMs);
  const client::Reply& reply = fetched.reply;
  if (fetched.error == EACCES && !fetched.detail.empty()) {
    std::printf("Gateway key: REFUSED: %s\n", fetched.detail.c_str());
    return 2;
  }
  if (fetched.error == EKEYREJECTED) {
    std::printf("Kerberos: FAILED (Kerberos = yes): %s\n", fetched.detail.c_str());
    return 2;
  }
  if (fetched.error != 0) {
    std::printf("Cannot reach the control channel at %s: %s\n", serverText(c.server).c_str(),
                failureText(fetched).c_str());
    return 2;
  }
  if (!fetched.keyFrom.empty()) {
    std::printf("Gateway key: %s (%s)\n", crypto::fingerprint(fetched.key).c_str(),
                fetched.keyFrom == "trust on first use"
                    ? "not pinned yet: trusted on first use; fwgate detect pins it"
                    : ("pinned, " + fetched.keyFrom).c_str());
  }
  std::printf("Channel: %s\n", fetched.encrypted ? "encrypted (Noise_IK_25519_ChaChaPoly_SHA256)"
                                                 : "not established");
  if (fetched.kerberosSent) {
    std::printf("Kerberos: a ticket for %s, bound to the channel\n",
                fetched.kerberosService.c_str());
  } else if (!fetched.kerberosNote.empty()) {
    std::printf("Kerberos: none sent: %s\n", fetched.kerberosNote.c_str());
  }
  // How programs under the library reach it: through an agent, or in clear.
  bool agentRequired = false;
  if (const int agent = client::agentConnect(agentRequired); agent >= 0) {
    ::close(agent);
    std::printf("Programs: encrypted through the agent that answers here\n");
  } else if (agentRequired) {
    std::printf(
        "Programs: FWGATE_AGENT_SOCKET names no agent that answers: their connects "
        "fail\n");
  } else {
    std::printf(
        "Programs: no agent answers (fwgate-agent.service, or fwgate run's own): "
        "programs preloaded without fwgate run say Hello in clear\n");
  }
  int status = 0;
  if (reply.welcome.version == control::kVersion) {
    std::printf(
        "Client control protocol version MATCHES the server control protocol "
        "(version %u)\n",
        reply.welcome.version);
  } else {
    std::printf(
        "Client control protocol version (%u) DOES NOT MATCH the server control "
        "protocol (version %u)\n",
        control::kVersion, reply.welcome.version);
    status = 1;
  }
  if (!reply.welcome.serverName.empty()) {
    std::printf("Gateway name: %.*s\n", static_cast<int>(reply.welcome.serverName.size()),
                reply.welcome.serverName.data());
  }
  if (reply.welcome.status != control::Status::Ok) {
    std::printf("The gateway refused this client: %s%s%.*s\n",
                std::string(control::statusText(reply.welcome.status)).c_str(),
                reply.welcome.message.empty() ? "" : " — ",
                static_cast<int>(reply.welcome.message.size()), reply.welcome.message.data());
    return status != 0 ? status : 1;
  }
  // The configuration in force is the one just fetched.
  if (reply.type == static_cast<std::uint8_t>(control::MessageType::Config)) {
    load(l, app, reply.body);
  }
  std::printf("Network: %s\n", c.network[0] ? c.network.data() : "(none)");
  std::printf("Refresh interval: %u s\n", c.refreshSeconds);
  std::printf("Web proxy: %s\n", c.webProxy[0] != '\0' ? c.webProxy.data() : "(none)");
  if (c.pacUrl[0] != '\0') std::printf("Automatic configuration script: %s\n", c.pacUrl.data());
  std::printf(
      "Local address table (%zu ranges: %zu from the gateway, %zu from locallat.txt, "
      "%zu directly connected routes; loopback and link-local are always local):\n",
      c.lat.size(), c.gatewayRanges, c.localLatRanges, c.routeRanges);
  for (std::size_t i = 0; i < c.lat.size(); ++i) {
    const char* from = i < c.gatewayRanges                      ? "gateway"
                       : i < c.gatewayRanges + c.localLatRanges ? "locallat.txt"
                                                                : "route";
    std::printf("  %-40s %s\n",
                (addressText(c.lat[i].first) + " - " + addressText(c.lat[i].last)).c_str(), from);
  }
  std::printf("Local domain table (%zu):\n", c.ldt.size());
  for (std::size_t i = 0; i < c.ldt.size(); ++i) {
    std::printf("  %.*s\n", static_cast<int>(c.ldt[i].size()), c.ldt[i].data());
  }
  std::printf("Settings for %s:%s\n", options.app.empty() ? "all programs ([*])" : app.c_str(),
              c.disabled() ? " DISABLED (every call goes direct)" : "");
  bool any = false;
  for (std::size_t k = 0; k < cs::kKeyCount; ++k) {
    const auto key = static_cast<cs::Key>(k);
    if (!c.settings.has(key)) continue;
    char buf[1024];
    std::printf("  %s = %s\n", std::string(cs::keyName(key)).c_str(),
                keyValueText(c.settings, key, buf, sizeof buf));
    any = true;
  }
  if (!any) std::printf("  (defaults: names with a dot resolved by the gateway)\n");
  if (!l.problems.empty()) {
    std::printf("Problems in the settings (%zu):\n", l.problems.size());
    for (const auto& p : l.problems) std::printf("  %s\n", p.c_str());
  }
  return status;
}

int runDetect(const ClientCheckOptions& options) {
  applyServerOption(options.server);
  Loaded l;
  load(l, "*");
  const std::string noneInDns = detectAgain(l);
  if (l.config.server.empty()) {
    std::fprintf(stderr, "fwgate detect: %s\n", noGatewayText(l).c_str());
    return 2;
  }
  if (!noneInDns.empty()) {
    std::printf("fwgate detect: none found by DNS (%s): the cached gateway %s stays\n",
                noneInDns.c_str(), serverText(l.config.server).c_str());
  }
  std::printf("fwgate detect: gateway %s (from %s)\n", serverText(l.config.server).c_str(),
              serverSource(l.config).c_str());
  const client::ServerAddress server = l.config.server;
  client::GatewayEndpoints gateway;
  if (const int rc = client::resolveServer(l.config.server, gateway); rc != 0) {
    std::fprintf(stderr, "fwgate detect: cannot resolve %s: %s\n", l.config.server.host.data(),
                 ::gai_strerror(rc));
    return 2;
  }
  std::vector<std::uint8_t> frame;
  const client::EncryptedReply fetched = fetch(l.config, gateway, frame, options.timeoutMs);
  const client::Reply& reply = fetched.reply;
  if (fetched.error != 0 || reply.welcome.status != control::Status::Ok ||
      reply.type != static_cast<std::uint8_t>(control::MessageType::Config)) {
    std::fprintf(stderr, "fwgate detect: %s: %s; the cached configuration stays in force\n",
                 serverText(l.config.server).c_str(),
                 fetched.error != 0
                     ? failureText(fetched).c_str()
                     : std::string(control::statusText(reply.welcome.status)).c_str());
    return 1;
  }
  std::printf("fwgate detect: gateway key %s (%s)\n", crypto::fingerprint(fetched.key).c_str(),
              fetched.keyFrom == "trust on first use" ? "new: pinned now, trusted on first use"
                                                      : ("pinned, " + fetched.keyFrom).c_str());
  const std::int64_t now = std::time(nullptr);
  const std::string path = saveCache(l, fetched, now);
  load(l, "*", reply.body);
  std::printf(
      "fwgate detect: configuration from %s: network %s, %zu LAT ranges, %zu local "
      "domains, refresh every %u s\n",
      serverText(server).c_str(), l.config.network.data(), l.config.gatewayRanges,
      l.config.ldt.size(), l.config.refreshSeconds);
  if (path.empty()) {
    std::fprintf(stderr, "fwgate detect: cannot write the cache (%s, %s): %s\n",
                 l.paths.systemCache.data(), l.paths.userCache.data(), std::strerror(errno));
    return 1;
  }
  if (l.config.webProxy[0] != '\0') {
    std::printf("web proxy %s%s%s\n", l.config.webProxy.data(),
                l.config.pacUrl[0] != '\0' ? ", automatic configuration script " : "",
                l.config.pacUrl.data());
  }
  std::printf("cached in %s\n", path.c_str());
  return 0;
}

int runProxyEnv(const ProxyEnvOptions& options) {
  Loaded l;
  load(l, "*");
  if (!l.config.haveGatewayConfig) {
    std::fprintf(stderr,
                 "fwgate proxy-env: no gateway configuration cached (%s, %s): run fwgate detect "
                 "first\n",
                 l.paths.systemCache.data(),
                 l.paths.userCache[0] != '\0' ? l.paths.userCache.data() : "no user cache");
    return 1;
  }
  const client::ProxyEnvironment environment = client::proxyEnvironment(l.config);
  if (environment.proxyUrl.empty()) {
    std::fprintf(stderr,
                 "fwgate proxy-env: the gateway supplied no Web Proxy (its [firewall_client] "
                 "web_proxy is empty and no [web_proxy] listener listens on the address this "
                 "host reached its control channel on; configuration cached in %s)\n",
                 l.config.cacheRead.data());
    return 1;
  }
  const std::string text = client::renderProxyEnvironment(
      environment,
      options.format == "systemd" ? client::EnvFormat::Systemd : client::EnvFormat::Shell);
  std::fputs(text.c_str(), stdout);
  return std::fflush(stdout) == 0 ? 0 : 1;
}

namespace {
volatile sig_atomic_t g_stop = 0;
void onStop(int) {
  g_stop = 1;
}
}  // namespace

int runAgent(const ClientAgentOptions& options) {
  applyServerOption(options.server);
  struct sigaction sa {};
  sa.sa_handler = onStop;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  // Its handshakes' static key: the host key (root's agent, or --host-key), which the gateway
  // may enroll; else one of this run.
  const std::string hostKeyPath = !options.hostKey.empty() ? options.hostKey
                                  : ::geteuid() == 0       ? std::string("/var/lib/fwgate/host.key")
                                                           : std::string();
  crypto::KeyPair identity = crypto::KeyPair::generate();
  if (!hostKeyPath.empty()) {
    const auto loaded = crypto::loadOrCreateKey(hostKeyPath);
    if (!loaded.error.empty()) {
      std::fprintf(stderr, "fwgate agent: host key: %s\n", loaded.error.c_str());
      return 1;
    }
    identity = loaded.key;
  }
  if (options.showHostKey) {
    if (hostKeyPath.empty()) {
      std::fprintf(stderr, "fwgate agent: a user's agent has no host key (--host-key PATH)\n");
      return 1;
    }
    // What the gateway's administrator enrolls: [control.hosts] NAME = "KEY".
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    std::printf("%s = \"%s\"   # %s, %s\n", host, crypto::toBase64(identity.publicKey).c_str(),
                crypto::fingerprint(identity.publicKey).c_str(), hostKeyPath.c_str());
    return 0;
  }
  // The programs' encrypted channel, on its own thread, for as long as the agent runs.
  std::unique_ptr<client::AgentServer> server;
  std::thread serving;
  if (!options.once) {
    server = std::make_unique<client::AgentServer>(
        options.socket.empty() ? client::AgentServer::defaultPath() : options.socket, identity);
    setAgentKerberos(*server);
    server->trustKernelHelper(true);  // `fwgate kernel start` of this host
    std::string error;
    if (!server->open(error)) {
      std::fprintf(stderr, "fwgate agent: cannot serve programs: %s\n", error.c_str());
      return 1;
    }
    std::fprintf(stderr, "fwgate agent: serving programs on %s\n", server->path().c_str());
    serving = std::thread([&server] { server->serve(g_stop); });
  }
  const auto joined = [&] {
    if (serving.joinable()) {
      g_stop = 1;
      serving.join();
    }
  };
  Loaded l;
  load(l, "*");
  client::RefreshSchedule schedule(l.config.haveGatewayConfig ? l.config.fetchedAt : 0,
                                   l.config.refreshSeconds);
  std::fprintf(stderr, "fwgate agent: gateway %s; refreshing now, then every %u s\n",
               l.config.server.empty() ? "(none configured)" : serverText(l.config.server).c_str(),
               schedule.interval());
  while (g_stop == 0) {
    const std::int64_t now = std::time(nullptr);
    load(l, "*");
    detectAgain(l);
    client::GatewayEndpoints gateway;
    std::vector<std::uint8_t> frame;
    client::EncryptedReply fetched;
    int error = l.config.server.empty() ? EDESTADDRREQ : 0;
    if (error != 0 && l.config.detectProblem[0] != '\0') {
      std::fprintf(stderr, "fwgate agent: %s\n", noGatewayText(l).c_str());
    }
    if (error == 0 && client::resolveServer(l.config.server, gateway) != 0) error = EHOSTUNREACH;
    if (error == 0) {
      fetched = fetch(l.config, gateway, frame, options.timeoutMs);
      error = fetched.error;
    }
    const client::Reply& reply = fetched.reply;
    if (error == 0 && (reply.welcome.status != control::Status::Ok ||
                       reply.type != static_cast<std::uint8_t>(control::MessageType::Config))) {
      error = control::errnoFor(reply.welcome.status);
    }
    std::string path;
    if (error == 0) path = saveCache(l, fetched, now);
    if (error == 0 && !path.empty()) {
      load(l, "*", reply.body);
      schedule.succeeded(now, l.config.refreshSeconds);
      std::fprintf(stderr,
                   "fwgate agent: configuration refreshed (%zu LAT ranges) into %s; next "
                   "in %lld s\n",
                   l.config.gatewayRanges, path.c_str(),
                   static_cast<long long>(schedule.next() - now));
    } else {
      schedule.failed(now);
      std::fprintf(stderr,
                   "fwgate agent: refresh failed: %s; the last good configuration stays; "
                   "retry in %lld s\n",
                   error == 0           ? "cannot write the cache"
                   : fetched.error != 0 ? failureText(fetched).c_str()
                                        : std::strerror(error),
                   static_cast<long long>(schedule.next() - now));
    }
    if (options.once) return error == 0 && !path.empty() ? 0 : 1;
    while (g_stop == 0 && std::time(nullptr) < schedule.next()) {
      ::sleep(1);
    }
  }
  joined();
  std::fprintf(stderr, "fwgate agent: stopped\n");
  return 0;
}

namespace {

// systemctl ARGS..., its exit status.
int systemctl(std::vector<const char*> args) {
  args.insert(args.begin(), "systemctl");
  args.push_back(nullptr);
  const pid_t child = ::fork();
  if (child == 0) {
    ::execvp("systemctl", const_cast<char* const*>(args.data()));
    std::fprintf(stderr, "fwgate kernel: cannot run systemctl: %s\n", std::strerror(errno));
    ::_exit(127);
  }
  int status = 0;
  while (child > 0 && ::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return child < 0 || !WIFEXITED(status) ? 1 : WEXITSTATUS(status);
}

// The accounts --exempt-user names (default: root, and fwgate when it exists). False with
// the name that is no account.
bool exemptUids(const std::vector<std::string>& names, std::vector<std::uint32_t>& out,
                std::string& unknown) {
  std::vector<std::string> wanted = names;
  if (wanted.empty()) {
    wanted.push_back("root");
    if (::getpwnam("fwgate") != nullptr) wanted.push_back("fwgate");
  }
  for (const std::string& name : wanted) {
    if (name == "none") continue;
    const passwd* pw = ::getpwnam(name.c_str());
    if (pw == nullptr) {
      unknown = name;
      return false;
    }
    out.push_back(pw->pw_uid);
  }
  return true;
}

}  // namespace

int runKernelService(const KernelOptions& options) {
  if (options.action == "status") {
    const auto loaded = kernel::loadedPrograms();
    if (loaded.empty()) {
      std::printf("fwgate kernel: no eBPF program of fwgate is loaded\n");
      return 3;
    }
    std::printf("fwgate kernel: %zu eBPF programs of fwgate are loaded:", loaded.size());
    for (const auto& name : loaded) std::printf(" %s", name.c_str());
    std::printf("\n");
    return 0;
  }
  if (options.action == "install" || options.action == "remove") {
    if (!exists("/run/systemd/system")) {
      std::fprintf(stderr,
                   "fwgate kernel %s: systemd is not running here; run `fwgate kernel start` "
                   "under what starts services on this host instead\n",
                   options.action.c_str());
      return 1;
    }
    const bool install = options.action == "install";
    const int rc = systemctl({install ? "enable" : "disable", "--now", "fwgate-kernel.service"});
    if (rc != 0) return rc;
    if (!install && !kernel::loadedPrograms().empty()) {
      std::fprintf(stderr,
                   "fwgate kernel remove: eBPF programs of fwgate are still loaded (a "
                   "fwgate run --kernel, or another fwgate kernel start)\n");
      return 1;
    }
    std::printf("fwgate kernel: %s\n", install ? "installed and started (fwgate-kernel.service)"
                                               : "stopped and removed: nothing is diverted");
    return 0;
  }
  if (::geteuid() != 0) {
    std::fprintf(stderr, "fwgate kernel start: needs root (CAP_BPF, CAP_NET_ADMIN)\n");
    return 1;
  }
  applyServerOption(options.server);
  std::vector<std::uint32_t> exempt;
  std::string error;
  // Who opts in wants it: no account is exempt then unless named.
  if ((!options.optIn || !options.exempt.empty()) && !exemptUids(options.exempt, exempt, error)) {
    std::fprintf(stderr, "fwgate kernel start: --exempt-user: no account \"%s\"\n", error.c_str());
    return 1;
  }
  Loaded l;
  load(l, "*");
  PrivateAgent agent;
  if (!agentAnswers() && !agent.start(error)) {
    std::fprintf(stderr, "fwgate kernel start: %s\n", error.c_str());
    return 1;
  }
  kernel::Interceptor interceptor;
  const bool covered =
      options.optIn
          ? interceptor.create("fwgate-kernel-" + std::to_string(::getpid()), error, false)
          : interceptor.attach(options.cgroup, error);
  if (!covered || !interceptor.setScope(exempt, true, error)) {
    std::fprintf(stderr, "fwgate kernel start: %s\n", error.c_str());
    return 1;
  }
  std::unique_ptr<kernel::JoinServer> joins;
  if (options.optIn) {
    joins = std::make_unique<kernel::JoinServer>(
        options.socket.empty() ? kernel::defaultJoinSocket() : options.socket,
        interceptor.procsFd());
    if (!joins->open(error)) {
      std::fprintf(stderr, "fwgate kernel start: %s\n", error.c_str());
      return 1;
    }
  }
  kernel::Helper helper(interceptor, l.config, gatewayTimeoutMs());
  if (!helper.open(error)) {
    std::fprintf(stderr, "fwgate kernel start: %s\n", error.c_str());
    return 1;
  }
  struct sigaction sa {};
  sa.sa_handler = onHelperStop;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  std::thread answering;
  if (joins) {
    std::fprintf(stderr, "fwgate kernel: programs opt in on %s (fwgate run --kernel)\n",
                 joins->path().c_str());
    answering = std::thread([&joins] { joins->serve(g_helperStop); });
  }
  std::fprintf(stderr,
               "fwgate kernel: the programs of cgroup %s go through the gateway %s (%zu "
               "accounts exempt); SIGTERM stops and removes it\n",
               interceptor.path().c_str(), serverText(l.config.server).c_str(), exempt.size());
  std::thread serving([&helper] { helper.serve(g_helperStop); });
  // The agent refreshes the cache (every refresh interval): its tables apply from the next
  // minute on.
  for (int tick = 1; g_helperStop == 0; ++tick) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    if (tick % 300 != 0) continue;
    load(l, "*");
    if (l.config.haveGatewayConfig && !helper.refresh(l.config, error)) {
      std::fprintf(stderr, "fwgate kernel: the refreshed tables do not apply: %s\n", error.c_str());
    }
  }
  serving.join();
  if (answering.joinable()) answering.join();
  joins.reset();
  interceptor.close();
  std::fprintf(stderr, "fwgate kernel: stopped; the eBPF programs are detached\n");
  return 0;
}

}  // namespace fwgate::app
