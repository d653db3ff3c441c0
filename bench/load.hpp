// The load generators: bulk throughput, short sessions, idle connections, HTTP requests, and a
// one-shot probe.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common.hpp"
#include "dial.hpp"

namespace fwgate::bench {

struct CommonLoadOptions {
  std::optional<Endpoint> proxy;  // nullopt: direct
  ProxyProtocol protocol = ProxyProtocol::Socks5;
  std::string getPath = "/small";  // HttpGet and requests: the path asked for
  std::size_t bodyBytes = 128;     // HttpGet and requests: the body the origin answers with
  Endpoint target;
  std::vector<Endpoint> sources;  // local addresses of the load generator's sockets, in turn
  std::optional<pid_t> farPid;    // the sink or echo server, for load-side CPU accounting
  std::optional<pid_t> watchPid;  // sample this process tree's CPU/memory around the window
  std::map<std::string, std::string> tags;
};

// The DialPlan of a run: its proxy, protocol, target and sources.
inline DialPlan dialPlanFor(const CommonLoadOptions& common, std::size_t echoBytes) {
  DialPlan plan(common.proxy, common.target, common.sources, echoBytes, common.protocol,
                common.getPath);
  plan.getBodyBytes = common.bodyBytes;
  return plan;
}

struct BulkOptions {
  CommonLoadOptions common;
  Endpoint sinkStats;  // the sink's counter port: bytes are counted where they arrive
  int streams = 1;
  double seconds = 5;
  double warmupSeconds = 1;
  std::size_t writeBytes = 1 << 20;
};

struct SessionsOptions {
  CommonLoadOptions common;
  int concurrency = 64;
  double seconds = 5;
  double warmupSeconds = 1;
  double sessionTimeoutSeconds = 5;
  std::size_t payloadBytes = 64;
  bool awaitPeerClose = false;  // the echo server closes first (--close-after): wait for it
};

struct IdleOptions {
  CommonLoadOptions common;
  int connections = 1000;
  int parallelOpens = 128;  // handshakes in flight while opening
  double openTimeoutSeconds = 300;
  double connTimeoutSeconds = 15;
  double settleSeconds = 2;  // held before the memory sample; drops are watched meanwhile
  double holdMaxSeconds = 3600;
  bool closeFromFarEnd = false;  // on release, SIGUSR1 the far end (farPid) so it closes first
  std::size_t payloadBytes = 16;
};

// HTTP GETs through an HTTP proxy (absolute form) or straight to the origin (origin form).
struct RequestsOptions {
  CommonLoadOptions common;
  int concurrency = 64;
  double seconds = 5;
  double warmupSeconds = 1;
  double requestTimeoutSeconds = 5;
  // false: keep-alive, each worker sends its next request on the same connection while the
  // proxy keeps it open (a new one when it closed it); true: each request on a new connection
  // with "Connection: close", done once the proxy's close has arrived.
  bool newConnectionPerRequest = false;
  std::optional<Endpoint> originStats;  // the origin's counter port: its connections per request
};

int runBulk(const BulkOptions& options);
int runRequests(const RequestsOptions& options);
int runSessions(const SessionsOptions& options);
int runIdle(const IdleOptions& options);
// One verified session (handshake + 16-byte echo); exit status 0 when it worked.
int runProbe(const CommonLoadOptions& options, double timeoutSeconds);

}  // namespace fwgate::bench
