// connects: blocking connect() one at a time, as an ordinary program makes it, so that a preloaded
// library (libfwgate-client.so, Dante's socksify) can turn it into a remoted connect: the time of
// connect() alone, then of the first 64-byte echo round trip, then the far end's close.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "load.hpp"
#include "procstat.hpp"

namespace fwgate::bench {

namespace {

std::uint32_t clampNs(std::int64_t ns) {
  return static_cast<std::uint32_t>(std::clamp<std::int64_t>(ns, 0, UINT32_MAX));
}

// {"p50",...} of ascending nanoseconds, in microseconds with a fraction.
nlohmann::json summaryUs(const std::vector<std::uint32_t>& sortedNs) {
  nlohmann::json ns = latencySummary(sortedNs);
  nlohmann::json us = nlohmann::json::object();
  for (const auto& [key, value] : ns.items()) us[key] = value.get<double>() / 1000.0;
  return us;
}

// Sends all of `bytes` on a blocking socket; "" or the error reason.
std::string sendAll(int fd, const std::vector<std::uint8_t>& bytes) {
  std::size_t sent = 0;
  for (int guard = 0; guard < 1000 && sent < bytes.size(); ++guard) {
    ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return "send_" + (n < 0 ? errnoName(errno) : std::string("zero"));
    sent += static_cast<std::size_t>(n);
  }
  return sent == bytes.size() ? "" : "send_stalled";
}

// Reads exactly `expect` back; "" or the error reason (a receive timeout is timeout_echo).
std::string readEcho(int fd, const std::vector<std::uint8_t>& expect) {
  std::vector<std::uint8_t> got(expect.size());
  std::size_t have = 0;
  for (int guard = 0; guard < 1000 && have < got.size(); ++guard) {
    ssize_t n = ::recv(fd, got.data() + have, got.size() - have, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno == EAGAIN ? "timeout_echo" : "echo_" + errnoName(errno);
    if (n == 0) return "echo_eof";
    have += static_cast<std::size_t>(n);
  }
  if (have < got.size()) return "echo_stalled";
  return std::memcmp(got.data(), expect.data(), got.size()) == 0 ? "" : "echo_mismatch";
}

// Waits for the far end's close; "" or the error reason.
std::string awaitClose(int fd) {
  std::uint8_t byte;
  for (int guard = 0; guard < 100; ++guard) {
    ssize_t n = ::recv(fd, &byte, 1, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) return "";
    if (n > 0) return "unexpected_bytes_after_echo";
    return errno == EAGAIN ? "timeout_await_close" : "await_close_" + errnoName(errno);
  }
  return "await_close_interrupted";
}

}  // namespace

std::optional<ConnectPath> parseConnectPath(std::string_view name) {
  if (name == "any") return ConnectPath::Any;
  if (name == "direct") return ConnectPath::Direct;
  if (name == "relayed") return ConnectPath::Relayed;
  return std::nullopt;
}

std::string checkPath(int fd, const Endpoint& target, ConnectPath expected, PathCounts& counts) {
  auto peer = kernelPeer(fd);
  if (!peer) return "getpeername_" + errnoName(errno);
  bool direct = sameEndpoint(*peer, target);
  (direct ? counts.direct : counts.relayed) += 1;
  if (!direct && counts.relayedPeer.empty()) counts.relayedPeer = peer->text;
  if (expected == ConnectPath::Relayed && direct) return "not_relayed";
  if (expected == ConnectPath::Direct && !direct) return "not_direct";
  return "";
}

nlohmann::json PathCounts::toJson() const {
  return {{"kernel_peer_is_target", direct},
          {"kernel_peer_elsewhere", relayed},
          {"kernel_peer_example", relayedPeer}};
}

int runConnects(const ConnectsOptions& options) {
  installStopSignals();
  const auto& common = options.common;
  std::vector<std::uint8_t> payload(options.payloadBytes);
  for (std::size_t i = 0; i < payload.size(); ++i) {
    payload[i] = static_cast<std::uint8_t>('a' + i % 26);
  }
  auto toDuration = [](double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  };
  auto begin = Clock::now();
  auto windowStart = begin + toDuration(options.warmupSeconds);
  auto windowEnd = windowStart + toDuration(options.seconds);

  std::vector<std::uint32_t> connectNs, echoNs, sessionNs;
  connectNs.reserve(1 << 18);
  echoNs.reserve(1 << 18);
  sessionNs.reserve(1 << 18);
  ErrorCounts errors, errorsInWindow;
  PathCounts paths;
  WindowCpu cpu(common.watchPid, common.farPid);
  bool sampledStart = false;
  std::uint64_t attempts = 0, completedTotal = 0;

  for (std::uint64_t loop = 0; loop < 100'000'000ULL && !stopRequested(); ++loop) {
    auto now = Clock::now();
    if (!sampledStart && now >= windowStart) {
      sampledStart = true;
      cpu.start();
    }
    if (now >= windowEnd) break;
    const Endpoint* source =
        common.sources.empty() ? nullptr : &common.sources[attempts % common.sources.size()];
    ++attempts;
    std::int64_t t0 = monotonicNs(), connectTook = 0, echoTook = 0;
    std::string failure;
    int raw = connectBlocking(common.target, source, options.timeoutSeconds, &connectTook);
    Fd fd(raw >= 0 ? raw : -1);
    if (raw < 0) failure = "connect_" + errnoName(-raw);
    if (failure.empty()) failure = checkPath(fd.get(), common.target, options.path, paths);
    if (failure.empty() && !payload.empty()) {
      std::int64_t e0 = monotonicNs();
      failure = sendAll(fd.get(), payload);
      if (failure.empty()) failure = readEcho(fd.get(), payload);
      echoTook = monotonicNs() - e0;
    }
    if (failure.empty() && options.awaitPeerClose) failure = awaitClose(fd.get());
    fd.reset();
    auto end = Clock::now();
    bool inWindow = end >= windowStart && end < windowEnd;
    if (!failure.empty()) {
      errors.add(failure);
      if (inWindow) errorsInWindow.add(failure);
      continue;
    }
    ++completedTotal;
    if (inWindow) {
      connectNs.push_back(clampNs(connectTook));
      echoNs.push_back(clampNs(echoTook));
      sessionNs.push_back(clampNs(monotonicNs() - t0));
    }
  }
  if (sampledStart) cpu.stop();

  std::sort(connectNs.begin(), connectNs.end());
  std::sort(echoNs.begin(), echoNs.end());
  std::sort(sessionNs.begin(), sessionNs.end());
  double window = options.seconds;
  nlohmann::json out{{"mode", "connects"},
                     {"tags", tagsToJson(common.tags)},
                     {"target", common.target.text},
                     {"payload_bytes", options.payloadBytes},
                     {"await_peer_close", options.awaitPeerClose},
                     {"warmup_s", options.warmupSeconds},
                     {"window_s", window},
                     {"connects", connectNs.size()},
                     {"connects_per_s", static_cast<double>(connectNs.size()) / window},
                     {"connects_total", completedTotal},
                     {"attempts", attempts},
                     {"connect_us", summaryUs(connectNs)},
                     {"echo_us", summaryUs(echoNs)},
                     {"session_us", summaryUs(sessionNs)},
                     {"paths", paths.toJson()},
                     {"errors", errors.total()},
                     {"errors_in_window", errorsInWindow.total()},
                     {"error_reasons", errors.toJson()},
                     {"interrupted", stopRequested()}};
  if (sampledStart) cpu.addTo(out, window);
  emit(out);
  return errors.total() == 0 && !connectNs.empty() ? 0 : 1;
}

}  // namespace fwgate::bench
