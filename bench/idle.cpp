// idle: open N verified relayed connections, hold them, report the proxy's memory per connection.
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <thread>

#include "load.hpp"
#include "opener.hpp"
#include "procstat.hpp"

namespace fwgate::bench {

namespace {

// Ready connections the peer has closed or reset since; checked with a non-blocking peek.
std::uint64_t countDropped(const std::vector<Dial>& conns) {
  std::uint64_t dropped = 0;
  for (const auto& dial : conns) {
    char byte;
    ssize_t n = ::recv(dial.fd(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    // EOF, an error, or unsolicited bytes (the echo server never speaks first) all mean "dropped".
    if (n >= 0 || (errno != EAGAIN && errno != EINTR)) ++dropped;
  }
  return dropped;
}

// Asks the far end (the echo server) to close every connection first, then waits until all of
// ours have seen the close arrive through the proxy. Returns how many had not after the wait.
std::uint64_t closeFromFarEnd(const std::vector<Dial>& conns, pid_t farPid, double waitSeconds) {
  if (::kill(farPid, SIGUSR1) != 0) return conns.size();
  auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(waitSeconds));
  std::uint64_t open = conns.size();
  for (int loop = 0; loop < 100'000 && Clock::now() < deadline; ++loop) {
    open = 0;
    for (const auto& dial : conns) {
      char byte;
      ssize_t n = ::recv(dial.fd(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) ++open;
    }
    if (open == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return open;
}

// Waits until stdin reaches EOF, a stop signal arrives, or the hold limit passes.
const char* holdUntilReleased(double holdMaxSeconds) {
  auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(holdMaxSeconds));
  bool stdinOpen = true;
  for (int loop = 0; loop < 100'000'000; ++loop) {
    if (stopRequested()) return "signal";
    if (Clock::now() >= deadline) return "hold_max";
    if (!stdinOpen) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    pollfd p{STDIN_FILENO, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    char buf[256];
    ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
    if (n == 0) return "stdin_eof";
    if (n < 0 && errno != EINTR && errno != EAGAIN) stdinOpen = false;  // treat as "no stdin"
  }
  return "loop_bound";
}

}  // namespace

int runIdle(const IdleOptions& options) {
  installStopSignals();
  const auto& common = options.common;
  DialPlan plan = dialPlanFor(common, options.payloadBytes);
  Fd epoll(::epoll_create1(EPOLL_CLOEXEC));

  TreeSample before;
  if (common.watchPid) before = sampleProcessTree(*common.watchPid, true);

  OpenRequest request;
  request.count = options.connections;
  request.parallel = options.parallelOpens;
  request.connTimeoutSeconds = options.connTimeoutSeconds;
  request.overallTimeoutSeconds = options.openTimeoutSeconds;
  request.readyEvents = EPOLLRDHUP;
  OpenResult opened = openConnections(plan, request, epoll.get());

  // Let the proxy settle (lazy allocations, process pools), then sample.
  auto settleEnd = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(options.settleSeconds));
  for (int i = 0; i < 100'000 && Clock::now() < settleEnd && !stopRequested(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  TreeSample after;
  if (common.watchPid) after = sampleProcessTree(*common.watchPid, true);
  std::uint64_t droppedAtReady = countDropped(opened.ready);
  std::uint64_t held = opened.ready.size() - droppedAtReady;

  nlohmann::json ready{{"event", "ready"},
                       {"mode", "idle"},
                       {"tags", tagsToJson(common.tags)},
                       {"proxy", common.proxy ? common.proxy->text : "none"},
                       {"protocol", proxyProtocolName(common.protocol)},
                       {"target", common.target.text},
                       {"requested", options.connections},
                       {"opened", opened.ready.size()},
                       {"held", held},
                       {"failed", opened.failed},
                       {"dropped_while_settling", droppedAtReady},
                       {"error_reasons", opened.errors.toJson()},
                       {"open_s", opened.seconds},
                       {"interrupted", opened.interrupted},
                       {"complete", held == static_cast<std::uint64_t>(options.connections)}};
  if (common.watchPid) {
    ready["watched_pid"] = *common.watchPid;
    ready["before"] = toJson(before);
    ready["after"] = toJson(after);
    if (held > 0) {
      auto perConn = [&](std::uint64_t a, std::uint64_t b) {
        return (static_cast<double>(a) - static_cast<double>(b)) / static_cast<double>(held);
      };
      ready["rss_kb_per_conn"] = perConn(after.rssKb, before.rssKb);
      ready["pss_kb_per_conn"] = perConn(after.pssKb, before.pssKb);
    }
  }
  emit(ready);

  const char* why = holdUntilReleased(options.holdMaxSeconds);
  std::uint64_t droppedAtEnd = countDropped(opened.ready);
  nlohmann::json closed{{"event", "closed"},
                        {"mode", "idle"},
                        {"tags", tagsToJson(common.tags)},
                        {"released_by", why},
                        {"dropped_while_held", droppedAtEnd}};
  if (options.closeFromFarEnd && common.farPid) {
    auto begin = Clock::now();
    closed["not_closed_by_far_end"] = closeFromFarEnd(opened.ready, *common.farPid, 60);
    closed["far_close_s"] = secondsSince(begin);
  }
  opened.ready.clear();  // closes every connection
  emit(closed);
  return held == static_cast<std::uint64_t>(options.connections) ? 0 : 1;
}

int runProbe(const CommonLoadOptions& common, double timeoutSeconds) {
  DialPlan plan = dialPlanFor(common, 16);
  plan.requireKeepAlive = false;  // a proxy that closes after each response still works
  Fd epoll(::epoll_create1(EPOLL_CLOEXEC));
  OpenRequest request;
  request.count = 1;
  request.parallel = 1;
  request.connTimeoutSeconds = timeoutSeconds;
  request.overallTimeoutSeconds = timeoutSeconds + 1;
  OpenResult opened = openConnections(plan, request, epoll.get());
  bool ok = opened.ready.size() == 1;
  emit({{"mode", "probe"},
        {"tags", tagsToJson(common.tags)},
        {"proxy", common.proxy ? common.proxy->text : "none"},
        {"protocol", proxyProtocolName(common.protocol)},
        {"target", common.target.text},
        {"ok", ok},
        {"seconds", opened.seconds},
        {"error_reasons", opened.errors.toJson()}});
  return ok ? 0 : 1;
}

}  // namespace fwgate::bench
