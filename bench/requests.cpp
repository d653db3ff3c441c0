// requests: C workers send small GETs through an HTTP proxy (or straight to the origin), on
// kept-alive connections or a new connection per request, one epoll thread.
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "http_wire.hpp"
#include "load.hpp"
#include "procstat.hpp"

namespace fwgate::bench {

namespace {

constexpr std::uint32_t kEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

enum class Phase : std::uint8_t { Idle, Connecting, Response, AwaitClose };

const char* phaseName(Phase phase) {
  switch (phase) {
    case Phase::Idle:
      return "idle";
    case Phase::Connecting:
      return "connect";
    case Phase::Response:
      return "response";
    case Phase::AwaitClose:
      return "await_close";
  }
  return "unknown";
}

struct Worker {
  Fd fd;  // open between requests while kept alive
  Phase phase = Phase::Idle;
  std::uint32_t generation = 0;  // of fd: stale epoll events of a closed connection are ignored
  http::ResponseReader reader;
  Clock::time_point started{};  // of the current request, its connect included when it had one
  Clock::time_point retryAt{};  // after a failure to even create a socket, back off briefly
  std::uint64_t answeredOnConnection = 0;
  bool peerClosed = false;  // EPOLLRDHUP seen: the connection is not reused, as clients check
};

struct OriginCounters {
  bool ok = false;
  std::uint64_t requests = 0;
  std::uint64_t accepted = 0;
};

OriginCounters readOrigin(const Endpoint& stats) {
  OriginCounters out;
  auto line = fetchLine(stats, std::chrono::milliseconds(2000));
  if (!line) return out;
  auto j = nlohmann::json::parse(*line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return out;
  out.ok = true;
  out.requests = j.value("requests", std::uint64_t{0});
  out.accepted = j.value("accepted", std::uint64_t{0});
  return out;
}

// The run: workers, counters, and the window they are counted in.
class RequestRun {
 public:
  explicit RequestRun(const RequestsOptions& options)
      : options_(options),
        common_(options.common),
        epoll_(::epoll_create1(EPOLL_CLOEXEC)),
        workers_(static_cast<std::size_t>(std::max(1, options.concurrency))),
        cpu_(common_.watchPid, common_.farPid) {
    const bool viaProxy = common_.proxy.has_value();
    keepRequest_ = http::buildGet(common_.target.text, common_.getPath, viaProxy, false);
    closeRequest_ = http::buildGet(common_.target.text, common_.getPath, viaProxy, true);
    latenciesUs_.reserve(1 << 20);
  }

  int run();

 private:
  Clock::duration seconds(double s) const {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  }
  bool inWindow(Clock::time_point t) const { return t >= windowStart_ && t < windowEnd_; }

  // Starts worker i's next request: on its kept connection, else on a new one.
  void launch(std::size_t i, Clock::time_point now);
  void open(std::size_t i, Clock::time_point now);
  void onEvent(std::size_t i, std::uint32_t events);
  void readResponse(std::size_t i);
  void readClose(std::size_t i);
  void responseDone(std::size_t i, bool eofSeen);
  void finished(std::size_t i);
  void fail(std::size_t i, const std::string& reason);
  void sweep(Clock::time_point now);
  bool sendRequest(std::size_t i);
  nlohmann::json result() const;

  const RequestsOptions& options_;
  const CommonLoadOptions& common_;
  Fd epoll_;
  std::vector<Worker> workers_;
  std::string keepRequest_, closeRequest_;
  Clock::time_point windowStart_{}, windowEnd_{};
  WindowCpu cpu_;
  OriginCounters origin0_, origin1_;

  std::vector<std::uint32_t> latenciesUs_;
  ErrorCounts errors_, errorsInWindow_;
  std::uint64_t sequence_ = 0;  // connections started, for the source address rotation
  std::uint64_t answeredTotal_ = 0, connectionsInWindow_ = 0, closedByProxyInWindow_ = 0;
  std::uint64_t retriesInWindow_ = 0;  // requests sent again: the kept connection was closed
  std::uint64_t abortedAtEnd_ = 0;
};

void RequestRun::launch(std::size_t i, Clock::time_point now) {
  Worker& w = workers_[i];
  w.started = now;
  w.reader.reset();
  if (w.fd.valid()) {  // kept alive: the next request on the same connection
    if (sendRequest(i)) w.phase = Phase::Response;
    return;
  }
  open(i, now);
}

void RequestRun::open(std::size_t i, Clock::time_point now) {
  Worker& w = workers_[i];
  ++w.generation;
  w.answeredOnConnection = 0;
  w.peerClosed = false;
  const Endpoint* source =
      common_.sources.empty() ? nullptr : &common_.sources[sequence_ % common_.sources.size()];
  ++sequence_;
  int fd = startConnect(common_.proxy ? *common_.proxy : common_.target, source);
  if (fd < 0) {
    std::string reason = "connect_" + errnoName(-fd);
    errors_.add(reason);
    if (inWindow(now)) errorsInWindow_.add(reason);
    w.retryAt = now + std::chrono::milliseconds(1);
    return;
  }
  w.fd.reset(fd);
  if (inWindow(now)) ++connectionsInWindow_;
  epoll_event ev{};
  ev.events = kEvents;
  ev.data.u64 = (static_cast<std::uint64_t>(w.generation) << 32) | i;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev);
  w.phase = Phase::Connecting;
}

bool RequestRun::sendRequest(std::size_t i) {
  Worker& w = workers_[i];
  const std::string& request = options_.newConnectionPerRequest ? closeRequest_ : keepRequest_;
  ssize_t n = ::send(w.fd.get(), request.data(), request.size(), MSG_NOSIGNAL);
  if (n == static_cast<ssize_t>(request.size())) return true;
  // A request is a few hundred bytes: an idle socket takes it at once, anything else counts.
  fail(i, "request_" + (n < 0 ? errnoName(errno) : std::string("short_write")));
  return false;
}

void RequestRun::onEvent(std::size_t i, std::uint32_t events) {
  Worker& w = workers_[i];
  if (events & (EPOLLRDHUP | EPOLLHUP)) w.peerClosed = true;
  switch (w.phase) {
    case Phase::Connecting: {
      if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(w.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0 || !(events & EPOLLOUT)) {
        fail(i, err != 0 ? "connect_" + errnoName(err) : "connect_hangup");
        return;
      }
      if (!sendRequest(i)) return;
      w.phase = Phase::Response;
      readResponse(i);
      return;
    }
    case Phase::Response:
      readResponse(i);
      return;
    case Phase::AwaitClose:
      readClose(i);
      return;
    case Phase::Idle:
      return;
  }
}

void RequestRun::readResponse(std::size_t i) {
  Worker& w = workers_[i];
  char buf[16384];
  for (int pass = 0; pass < 64; ++pass) {
    ssize_t n = ::recv(w.fd.get(), buf, sizeof buf, 0);
    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) fail(i, "response_" + errnoName(errno));
      return;
    }
    if (n == 0) {
      if (!w.reader.started() && w.answeredOnConnection > 0) {
        // The proxy closed a connection it had left open (RFC 9112 section 9.3.1): send the
        // request again on a new one, as clients do; its time counts from the first attempt.
        auto now = Clock::now();
        if (inWindow(now)) ++retriesInWindow_;
        w.fd.reset();
        w.phase = Phase::Idle;
        open(i, now);
        return;
      }
      if (w.reader.finishAtEof() != http::Parse::Complete) {
        fail(i, std::string("response_") + w.reader.error());
        return;
      }
      responseDone(i, true);
      return;
    }
    std::size_t used = 0;
    http::Parse p = w.reader.feed(buf, static_cast<std::size_t>(n), used);
    if (p == http::Parse::Invalid) {
      fail(i, std::string("response_") + w.reader.error());
      return;
    }
    if (p == http::Parse::Complete) {
      if (used < static_cast<std::size_t>(n)) {
        fail(i, "bytes_after_response");
        return;
      }
      responseDone(i, false);
      return;
    }
  }
  fail(i, "response_too_long");
}

void RequestRun::responseDone(std::size_t i, bool eofSeen) {
  Worker& w = workers_[i];
  if (w.reader.status() != 200) {
    fail(i, "http_status_" + std::to_string(w.reader.status()));
    return;
  }
  if (w.reader.bodyBytes() != common_.bodyBytes) {
    fail(i, "body_length_mismatch");
    return;
  }
  ++w.answeredOnConnection;
  if (options_.newConnectionPerRequest) {
    if (eofSeen) {
      finished(i);
      return;
    }
    w.phase = Phase::AwaitClose;
    readClose(i);
    return;
  }
  // Not kept: the proxy said so, or its close has already arrived (a client checks a connection
  // before reusing it; the rest are caught as retries).
  if (eofSeen || !w.reader.keepAlive() || w.peerClosed) {
    if (inWindow(Clock::now())) ++closedByProxyInWindow_;
    w.fd.reset();
  }
  finished(i);
}

void RequestRun::readClose(std::size_t i) {
  Worker& w = workers_[i];
  char byte;
  ssize_t n = ::recv(w.fd.get(), &byte, 1, 0);
  if (n < 0) {
    if (errno != EAGAIN && errno != EINTR) fail(i, "await_close_" + errnoName(errno));
    return;
  }
  if (n > 0) {
    fail(i, "bytes_after_response");
    return;
  }
  w.fd.reset();
  finished(i);
}

// A request answered in full (and, per request, its connection closed by the proxy).
void RequestRun::finished(std::size_t i) {
  Worker& w = workers_[i];
  auto end = Clock::now();
  ++answeredTotal_;
  if (inWindow(end)) {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(end - w.started).count();
    latenciesUs_.push_back(static_cast<std::uint32_t>(std::min<std::int64_t>(us, UINT32_MAX)));
  }
  w.phase = Phase::Idle;
  if (end < windowEnd_ && !stopRequested()) {
    launch(i, end);
  } else {
    w.fd.reset();  // the run is over: the client closes what it kept
  }
}

void RequestRun::fail(std::size_t i, const std::string& reason) {
  Worker& w = workers_[i];
  auto now = Clock::now();
  errors_.add(reason);
  if (inWindow(now)) errorsInWindow_.add(reason);
  w.fd.reset();
  w.phase = Phase::Idle;
  if (now < windowEnd_ && !stopRequested()) launch(i, now);
}

void RequestRun::sweep(Clock::time_point now) {
  auto timeout = seconds(options_.requestTimeoutSeconds);
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    Worker& w = workers_[i];
    if (w.phase == Phase::Idle) {
      if (now < windowEnd_ && now >= w.retryAt && !stopRequested()) launch(i, now);
    } else if (now - w.started > timeout) {
      fail(i, std::string("timeout_") + phaseName(w.phase));
    }
  }
}

int RequestRun::run() {
  auto begin = Clock::now();
  windowStart_ = begin + seconds(options_.warmupSeconds);
  windowEnd_ = windowStart_ + seconds(options_.seconds);
  auto drainEnd = windowEnd_ + seconds(options_.requestTimeoutSeconds);
  bool sampledStart = false, sampledEnd = false;
  for (std::size_t i = 0; i < workers_.size(); ++i) launch(i, Clock::now());

  epoll_event events[256];
  auto lastSweep = Clock::now();
  for (std::uint64_t loop = 0; loop < 10'000'000'000ULL; ++loop) {
    auto now = Clock::now();
    if (!sampledStart && now >= windowStart_) {
      sampledStart = true;
      if (options_.originStats) origin0_ = readOrigin(*options_.originStats);
      cpu_.start();
    }
    if (!sampledEnd && now >= windowEnd_) {
      sampledEnd = true;
      cpu_.stop();
      if (options_.originStats) origin1_ = readOrigin(*options_.originStats);
    }
    bool busy = std::any_of(workers_.begin(), workers_.end(),
                            [](const Worker& w) { return w.phase != Phase::Idle; });
    if (now >= drainEnd || stopRequested() || (now >= windowEnd_ && !busy)) break;

    int n = ::epoll_wait(epoll_.get(), events, 256, 5);
    for (int e = 0; e < n; ++e) {
      auto i = static_cast<std::size_t>(events[e].data.u64 & 0xffffffffu);
      auto generation = static_cast<std::uint32_t>(events[e].data.u64 >> 32);
      if (i >= workers_.size() || workers_[i].generation != generation) continue;
      onEvent(i, events[e].events);
    }
    now = Clock::now();
    if (now - lastSweep >= std::chrono::milliseconds(20)) {
      lastSweep = now;
      sweep(now);
    }
  }
  for (auto& w : workers_) {
    if (w.phase != Phase::Idle) ++abortedAtEnd_;
    w.fd.reset();
    w.phase = Phase::Idle;
  }
  if (!sampledEnd) cpu_.stop();
  std::sort(latenciesUs_.begin(), latenciesUs_.end());
  emit(result());
  return errors_.total() == 0 && !latenciesUs_.empty() ? 0 : 1;
}

nlohmann::json RequestRun::result() const {
  double window = options_.seconds;
  auto answered = static_cast<double>(latenciesUs_.size());
  nlohmann::json out{{"mode", "requests"},
                     {"tags", tagsToJson(common_.tags)},
                     {"proxy", common_.proxy ? common_.proxy->text : "none"},
                     {"target", common_.target.text},
                     {"path", common_.getPath},
                     {"body_bytes", common_.bodyBytes},
                     {"concurrency", options_.concurrency},
                     {"keep_alive", !options_.newConnectionPerRequest},
                     {"warmup_s", options_.warmupSeconds},
                     {"window_s", window},
                     {"requests", latenciesUs_.size()},
                     {"requests_per_s", answered / window},
                     {"requests_total", answeredTotal_},
                     {"connections_in_window", connectionsInWindow_},
                     {"connections_per_request",
                      answered > 0 ? static_cast<double>(connectionsInWindow_) / answered : 0.0},
                     {"closed_by_proxy_in_window", closedByProxyInWindow_},
                     {"retries_in_window", retriesInWindow_},
                     {"latency_us", latencySummary(latenciesUs_)},
                     {"errors", errors_.total()},
                     {"errors_in_window", errorsInWindow_.total()},
                     {"error_reasons", errors_.toJson()},
                     {"aborted_at_end", abortedAtEnd_},
                     {"interrupted", stopRequested()}};
  if (origin0_.ok && origin1_.ok) {
    std::uint64_t requests = origin1_.requests - origin0_.requests;
    std::uint64_t accepted = origin1_.accepted - origin0_.accepted;
    out["origin_requests"] = requests;
    out["origin_connections"] = accepted;
    out["origin_connections_per_request"] =
        requests > 0 ? static_cast<double>(accepted) / static_cast<double>(requests) : 0.0;
  }
  cpu_.addTo(out, window);
  return out;
}

}  // namespace

int runRequests(const RequestsOptions& options) {
  installStopSignals();
  RequestRun run(options);
  return run.run();
}

}  // namespace fwgate::bench
