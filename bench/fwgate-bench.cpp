// fwgate-bench: load generator and far-end servers for comparing SOCKS5 and HTTP proxies on
// loopback.
// Every subcommand writes JSON lines to stdout; see bench/README.md.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <iostream>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "common.hpp"
#include "load.hpp"
#include "procstat.hpp"
#include "report.hpp"
#include "servers.hpp"

namespace {

using namespace fwgate::bench;

struct LoadFlags {
  std::string proxy = "none";
  std::string target;
  std::string source = "auto";
  std::string protocol = "socks5";
  std::string path = "/small";
  std::size_t bodyBytes = 128;
  int watchPid = 0;
  int farPid = 0;
  std::vector<std::string> tags;

  void add(CLI::App* cmd) {
    cmd->add_option("--proxy", proxy, "Proxy HOST:PORT (loopback), or 'none' for direct")
        ->capture_default_str();
    cmd->add_option("--proxy-protocol", protocol,
                    "socks5, http-connect (a CONNECT tunnel), or http-get (one GET, then the "
                    "connection is held: idle, probe)")
        ->capture_default_str();
    cmd->add_option("--path", path, "http-get and requests: the path to GET")
        ->capture_default_str();
    cmd->add_option("--body-bytes", bodyBytes,
                    "http-get and requests: the body the origin answers with (checked)")
        ->capture_default_str();
    cmd->add_option("--target", target, "Far end HOST:PORT (loopback)")->required();
    cmd->add_option("--source", source,
                    "Local addresses to connect from, used in turn: auto (127.2.0.1-254 for "
                    "IPv4), none, or a list such as 127.0.0.5,127.0.0.6")
        ->capture_default_str();
    cmd->add_option("--watch-pid", watchPid,
                    "Sample CPU/memory of this process and its descendants around the window");
    cmd->add_option("--far-pid", farPid,
                    "PID of the sink/echo server, to report the load side's CPU use");
    cmd->add_option("--tag", tags, "key=value copied into every record (repeatable)");
  }

  CommonLoadOptions resolve() const {
    CommonLoadOptions out;
    if (proxy != "none") out.proxy = requireLoopbackEndpoint("--proxy", proxy);
    out.target = requireLoopbackEndpoint("--target", target);
    auto proto = parseProxyProtocol(protocol);
    if (!proto) throw std::runtime_error("--proxy-protocol: socks5, http-connect or http-get");
    out.protocol = *proto;
    if (path.empty() || path.front() != '/') throw std::runtime_error("--path must start with /");
    out.getPath = path;
    out.bodyBytes = bodyBytes;
    const Endpoint& first = out.proxy ? *out.proxy : out.target;
    if (source == "auto") {
      out.sources = defaultSourcesFor(first);
    } else if (source != "none") {
      std::size_t from = 0;
      for (int guard = 0; guard < 4096 && from <= source.size(); ++guard) {
        auto comma = source.find(',', from);
        std::string one = source.substr(from, comma == std::string::npos ? comma : comma - from);
        bool v6 = one.find(':') != std::string::npos;
        out.sources.push_back(
            requireLoopbackEndpoint("--source", v6 ? "[" + one + "]:0" : one + ":0"));
        if (comma == std::string::npos) break;
        from = comma + 1;
      }
    }
    if (watchPid > 0) out.watchPid = static_cast<pid_t>(watchPid);
    if (farPid > 0) out.farPid = static_cast<pid_t>(farPid);
    out.tags = parseTags(tags);
    return out;
  }

  static std::map<std::string, std::string> parseTags(const std::vector<std::string>& raw) {
    std::map<std::string, std::string> out;
    for (const auto& t : raw) {
      auto eq = t.find('=');
      if (eq == std::string::npos || eq == 0)
        throw std::runtime_error("--tag wants key=value: " + t);
      out[t.substr(0, eq)] = t.substr(eq + 1);
    }
    return out;
  }
};

// A port below the kernel's ephemeral range: no TIME_WAIT socket of a client can hold it, so a
// proxy can still bind it after a long run has filled the ephemeral range with TIME_WAITs.
int freePort(const std::string& host) {
  unsigned low = 32768;
  if (std::FILE* f = std::fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) {
    if (std::fscanf(f, "%u", &low) != 1) low = 32768;
    std::fclose(f);
  }
  const unsigned first = 10000;
  if (low <= first + 100) throw std::runtime_error("ephemeral range starts too low for free-port");
  std::mt19937 rng(static_cast<unsigned>(::getpid()) ^ static_cast<unsigned>(monotonicNs()));
  for (int attempt = 0; attempt < 500; ++attempt) {
    unsigned port = first + rng() % (low - first);
    auto ep = requireLoopbackEndpoint("--host", host + ":" + std::to_string(port));
    try {
      Fd fd = listenTcp(ep, 1);
      std::printf("%u\n", port);
      return 0;
    } catch (const std::runtime_error&) {
      continue;  // taken: try another
    }
  }
  throw std::runtime_error("free-port: no free port found below the ephemeral range");
}

ConnectPath pathOption(const std::string& text) {
  auto path = parseConnectPath(text);
  if (!path) throw std::runtime_error("--expect: direct, relayed or any");
  return *path;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fwgate-bench: SOCKS5/HTTP load generator, sink, echo and origin servers, report"};
  app.require_subcommand(1);

  std::vector<std::string> listen{"127.0.0.1:0"};
  std::string stats = "127.0.0.1:0";
  double lifetime = 6 * 3600;
  auto* sinkCmd = app.add_subcommand("sink", "Discarding TCP sink with a byte-counter port");
  sinkCmd->add_option("--listen", listen, "HOST:PORT for data, repeatable (port 0: any)")
      ->capture_default_str();
  sinkCmd->add_option("--stats", stats, "HOST:PORT for the counter (port 0: any)")
      ->capture_default_str();
  sinkCmd->add_option("--lifetime", lifetime, "Exit after this many seconds")
      ->capture_default_str();
  auto* echoCmd = app.add_subcommand("echo", "TCP echo server");
  echoCmd->add_option("--listen", listen, "HOST:PORT, repeatable (port 0: any)")
      ->capture_default_str();
  echoCmd->add_option("--lifetime", lifetime, "Exit after this many seconds")
      ->capture_default_str();
  std::uint64_t closeAfter = 0;
  echoCmd
      ->add_option("--close-after", closeAfter,
                   "Close a connection first once this many bytes were echoed (0: never)")
      ->capture_default_str();

  auto* udpEchoCmd = app.add_subcommand("udp-echo", "UDP echo server");
  udpEchoCmd->add_option("--listen", listen, "HOST:PORT, repeatable (port 0: any)")
      ->capture_default_str();
  udpEchoCmd->add_option("--lifetime", lifetime, "Exit after this many seconds")
      ->capture_default_str();

  std::size_t originBody = 128;
  auto* originCmd = app.add_subcommand("http-origin", "HTTP/1.1 origin answering every GET");
  originCmd->add_option("--listen", listen, "HOST:PORT, repeatable (port 0: any)")
      ->capture_default_str();
  originCmd->add_option("--stats", stats, "HOST:PORT for the counter (port 0: any)")
      ->capture_default_str();
  originCmd->add_option("--body-bytes", originBody, "Body of every 200 response")
      ->capture_default_str();
  originCmd->add_option("--lifetime", lifetime, "Exit after this many seconds")
      ->capture_default_str();

  LoadFlags bulkFlags;
  BulkOptions bulk;
  std::string sinkStats;
  auto* bulkCmd = app.add_subcommand("bulk", "Streams writing flat out; rate counted at the sink");
  bulkFlags.add(bulkCmd);
  bulkCmd->add_option("--stats", sinkStats, "The sink's counter HOST:PORT")->required();
  bulkCmd->add_option("--streams", bulk.streams)->capture_default_str()->check(CLI::Range(1, 1024));
  bulkCmd->add_option("--seconds", bulk.seconds, "Measured window")->capture_default_str();
  bulkCmd->add_option("--warmup", bulk.warmupSeconds)->capture_default_str();
  bulkCmd->add_option("--write-bytes", bulk.writeBytes)->capture_default_str();

  bulkCmd->add_flag("--blocking-connect", bulk.blockingConnect,
                    "Open each stream with a blocking connect() to --target (with --proxy none): "
                    "what a preloaded library (fwgate run, socksify) makes of it");
  std::string bulkPath = "any";
  bulkCmd
      ->add_option("--expect", bulkPath,
                   "With --blocking-connect: direct or relayed (checked on each stream by the "
                   "kernel's peer), or any")
      ->capture_default_str();

  LoadFlags connectsFlags;
  ConnectsOptions connects;
  std::string connectsPath = "any";
  auto* connectsCmd = app.add_subcommand(
      "connects", "Blocking connect() one at a time (under LD_PRELOAD: the client's path)");
  connectsFlags.add(connectsCmd);
  connectsCmd->add_option("--seconds", connects.seconds, "Measured window")->capture_default_str();
  connectsCmd->add_option("--warmup", connects.warmupSeconds)->capture_default_str();
  connectsCmd->add_option("--timeout", connects.timeoutSeconds, "Send/receive timeout")
      ->capture_default_str();
  connectsCmd->add_option("--payload", connects.payloadBytes, "Echoed after connect (0: none)")
      ->capture_default_str();
  connectsCmd->add_flag("--await-close", connects.awaitPeerClose,
                        "After the echo, wait for the far end to close (echo --close-after)");
  connectsCmd
      ->add_option("--expect", connectsPath,
                   "What connect() must become: direct or relayed (checked by the kernel's peer), "
                   "or any")
      ->capture_default_str();

  LoadFlags udpFlags;
  UdpOptions udp;
  auto* udpCmd = app.add_subcommand(
      "udp", "Datagrams through SOCKS5 UDP ASSOCIATE (or direct) to a UDP echo server");
  udpFlags.add(udpCmd);
  udpCmd->add_option("--seconds", udp.seconds, "Measured window")->capture_default_str();
  udpCmd->add_option("--warmup", udp.warmupSeconds)->capture_default_str();
  udpCmd->add_option("--payload", udp.payloadBytes, "Bytes after the SOCKS header (>= 12)")
      ->capture_default_str()
      ->check(CLI::Range(12, 65000));
  udpCmd->add_option("--window", udp.window, "Datagrams in flight")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  udpCmd
      ->add_option("--loss-timeout", udp.lossTimeoutSeconds,
                   "A datagram not echoed by then is lost")
      ->capture_default_str();

  LoadFlags sessionsFlags;
  SessionsOptions sessions;
  auto* sessionsCmd = app.add_subcommand("sessions", "Short sessions: handshake, echo 64 B, close");
  sessionsFlags.add(sessionsCmd);
  sessionsCmd->add_option("--concurrency", sessions.concurrency)
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  sessionsCmd->add_option("--seconds", sessions.seconds, "Measured window")->capture_default_str();
  sessionsCmd->add_option("--warmup", sessions.warmupSeconds)->capture_default_str();
  sessionsCmd->add_option("--timeout", sessions.sessionTimeoutSeconds, "Per session")
      ->capture_default_str();
  sessionsCmd->add_option("--payload", sessions.payloadBytes)->capture_default_str();
  sessionsCmd->add_flag("--await-close", sessions.awaitPeerClose,
                        "After the echo, wait for the far end to close (echo --close-after)");

  LoadFlags requestsFlags;
  RequestsOptions requests;
  std::string originStats;
  auto* requestsCmd =
      app.add_subcommand("requests", "Small GETs through an HTTP proxy, keep-alive or not");
  requestsFlags.add(requestsCmd);
  requestsCmd->add_option("--concurrency", requests.concurrency)
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  requestsCmd->add_option("--seconds", requests.seconds, "Measured window")->capture_default_str();
  requestsCmd->add_option("--warmup", requests.warmupSeconds)->capture_default_str();
  requestsCmd->add_option("--timeout", requests.requestTimeoutSeconds, "Per request")
      ->capture_default_str();
  requestsCmd->add_flag("--new-connection", requests.newConnectionPerRequest,
                        "Each request on a new connection, with Connection: close");
  requestsCmd->add_option("--origin-stats", originStats,
                          "The origin's counter HOST:PORT, for its connections per request");

  LoadFlags idleFlags;
  IdleOptions idle;
  auto* idleCmd = app.add_subcommand("idle", "Hold N relayed connections until stdin closes");
  idleFlags.add(idleCmd);
  idleCmd->add_option("--connections", idle.connections)
      ->capture_default_str()
      ->check(CLI::Range(1, 60000));
  idleCmd->add_option("--parallel", idle.parallelOpens, "Handshakes in flight")
      ->capture_default_str();
  idleCmd->add_option("--settle", idle.settleSeconds, "Seconds held before sampling memory")
      ->capture_default_str();
  idleCmd->add_option("--open-timeout", idle.openTimeoutSeconds)->capture_default_str();
  idleCmd->add_option("--hold-max", idle.holdMaxSeconds)->capture_default_str();
  idleCmd->add_flag("--far-close", idle.closeFromFarEnd,
                    "On release, SIGUSR1 the echo server (--far-pid) so it closes first");

  LoadFlags probeFlags;
  double probeTimeout = 3;
  auto* probeCmd = app.add_subcommand("probe", "One verified session; exit 0 if it worked");
  probeFlags.add(probeCmd);
  probeCmd->add_option("--timeout", probeTimeout)->capture_default_str();

  int statPid = 0;
  bool statPss = false;
  auto* procstatCmd = app.add_subcommand("procstat", "CPU and memory of a process tree");
  procstatCmd->add_option("--pid", statPid)->required();
  procstatCmd->add_flag("--pss", statPss, "Also sum Pss (slower)");

  std::string portHost = "127.0.0.1";
  auto* freePortCmd = app.add_subcommand("free-port", "Print a currently unused loopback port");
  freePortCmd->add_option("--host", portHost)->capture_default_str();

  std::string noteEvent;
  std::vector<std::string> noteTags;
  auto* noteCmd = app.add_subcommand("note", "Print {\"event\":E,\"tags\":{...}} (for scripts)");
  noteCmd->add_option("--event", noteEvent)->required();
  noteCmd->add_option("--tag", noteTags, "key=value (repeatable)");

  std::string reportIn, reportOut, reportSuite = "socks";
  auto* reportCmd = app.add_subcommand("report", "Markdown table from a run's JSON lines");
  reportCmd->add_option("--in", reportIn)->required();
  reportCmd->add_option("--suite", reportSuite, "socks (run.sh) or web (run-web.sh)")
      ->capture_default_str();
  reportCmd->add_option("--out", reportOut, "Also write the Markdown here");

  CLI11_PARSE(app, argc, argv);

  try {
    if (sinkCmd->parsed() || echoCmd->parsed()) {
      ServerOptions server;
      for (const auto& l : listen) server.listen.push_back(requireLoopbackEndpoint("--listen", l));
      server.lifetimeSeconds = lifetime;
      server.closeAfterBytes = closeAfter;
      if (sinkCmd->parsed()) {
        server.stats = requireLoopbackEndpoint("--stats", stats);
        return runSink(server);
      }
      return runEcho(server);
    }
    if (udpEchoCmd->parsed()) {
      ServerOptions server;
      for (const auto& l : listen) server.listen.push_back(requireLoopbackEndpoint("--listen", l));
      server.lifetimeSeconds = lifetime;
      return runUdpEcho(server);
    }
    if (connectsCmd->parsed()) {
      connects.common = connectsFlags.resolve();
      if (connects.common.proxy) throw std::runtime_error("connects: --proxy must be none");
      connects.path = pathOption(connectsPath);
      return runConnects(connects);
    }
    if (udpCmd->parsed()) {
      udp.common = udpFlags.resolve();
      return runUdp(udp);
    }
    if (originCmd->parsed()) {
      ServerOptions server;
      for (const auto& l : listen) server.listen.push_back(requireLoopbackEndpoint("--listen", l));
      server.lifetimeSeconds = lifetime;
      server.stats = requireLoopbackEndpoint("--stats", stats);
      server.bodyBytes = originBody;
      return runHttpOrigin(server);
    }
    if (requestsCmd->parsed()) {
      requests.common = requestsFlags.resolve();
      if (!originStats.empty()) {
        requests.originStats = requireLoopbackEndpoint("--origin-stats", originStats);
      }
      return runRequests(requests);
    }
    if (bulkCmd->parsed()) {
      bulk.common = bulkFlags.resolve();
      bulk.sinkStats = requireLoopbackEndpoint("--stats", sinkStats);
      bulk.path = pathOption(bulkPath);
      if (bulk.blockingConnect && bulk.common.proxy) {
        throw std::runtime_error("bulk --blocking-connect: --proxy must be none");
      }
      return runBulk(bulk);
    }
    if (sessionsCmd->parsed()) {
      sessions.common = sessionsFlags.resolve();
      return runSessions(sessions);
    }
    if (idleCmd->parsed()) {
      idle.common = idleFlags.resolve();
      return runIdle(idle);
    }
    if (probeCmd->parsed()) return runProbe(probeFlags.resolve(), probeTimeout);
    if (procstatCmd->parsed()) {
      auto sample = sampleProcessTree(static_cast<pid_t>(statPid), statPss);
      emit(toJson(sample));
      return sample.found ? 0 : 1;
    }
    if (freePortCmd->parsed()) return freePort(portHost);
    if (noteCmd->parsed()) {
      emit({{"event", noteEvent}, {"tags", tagsToJson(LoadFlags::parseTags(noteTags))}});
      return 0;
    }
    if (reportCmd->parsed()) return runReport(reportIn, reportOut, reportSuite);
  } catch (const std::exception& e) {
    std::cerr << "fwgate-bench: " << e.what() << "\n";
    return 2;
  }
  return 2;
}
