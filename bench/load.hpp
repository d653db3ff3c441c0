// The load generators: bulk throughput, short sessions, idle connections, HTTP requests, and a
// one-shot probe.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
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

// What a blocking connect() to the target should turn into, checked on every connection by the
// kernel's peer (kernelPeer): the target itself (Direct), or anything else (Relayed: a preloaded
// library handed the socket to a gateway or SOCKS server). A mismatch is counted as an error.
enum class ConnectPath : std::uint8_t { Any, Direct, Relayed };
std::optional<ConnectPath> parseConnectPath(std::string_view name);

struct PathCounts {
  std::uint64_t direct = 0, relayed = 0;
  std::string relayedPeer;  // the first relayed socket's kernel peer, for the record
  nlohmann::json toJson() const;
};

// Counts the socket's path; "" when it is the expected one, else the error reason.
std::string checkPath(int fd, const Endpoint& target, ConnectPath expected, PathCounts& counts);

struct BulkOptions {
  CommonLoadOptions common;
  Endpoint sinkStats;  // the sink's counter port: bytes are counted where they arrive
  int streams = 1;
  double seconds = 5;
  double warmupSeconds = 1;
  std::size_t writeBytes = 1 << 20;
  // Each stream opened with a blocking connect() to the target (no proxy protocol of our own):
  // the path is whatever a preloaded library (libfwgate-client.so, socksify) makes of it.
  bool blockingConnect = false;
  ConnectPath path = ConnectPath::Any;  // with blockingConnect
};

// Blocking connect() one at a time to an echo server: the latency of connect() alone (what a
// preloaded library adds to it), of the first payload echo, and of the whole session.
struct ConnectsOptions {
  CommonLoadOptions common;
  double seconds = 5;
  double warmupSeconds = 1;
  double timeoutSeconds = 5;  // SO_SNDTIMEO / SO_RCVTIMEO of each socket
  std::size_t payloadBytes = 64;
  bool awaitPeerClose = false;  // the echo server closes first (--close-after): wait for it
  ConnectPath path = ConnectPath::Any;
};

// SOCKS5 UDP ASSOCIATE (or direct) against a UDP echo server, `window` datagrams in flight: each
// echoed datagram (checked) releases the next one. Rate = echoes completed in the window.
struct UdpOptions {
  CommonLoadOptions common;
  double seconds = 5;
  double warmupSeconds = 1;
  std::size_t payloadBytes = 64;
  int window = 64;
  double lossTimeoutSeconds = 1;  // a datagram not echoed by then is lost (and replaced)
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
int runConnects(const ConnectsOptions& options);
int runUdp(const UdpOptions& options);
int runIdle(const IdleOptions& options);
// One verified session (handshake + 16-byte echo); exit status 0 when it worked.
int runProbe(const CommonLoadOptions& options, double timeoutSeconds);

}  // namespace fwgate::bench
