// sessions: C workers loop connect -> SOCKS5 handshake -> 64-byte echo -> close, one epoll thread.
#include <sys/epoll.h>

#include <algorithm>
#include <vector>

#include "load.hpp"
#include "procstat.hpp"

namespace fwgate::bench {

namespace {

constexpr std::uint32_t kDialEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

struct Slot {
  Dial dial;
  std::uint32_t generation = 0;  // stale epoll events of a closed session are ignored
  Clock::time_point retryAt{};   // after a failure to even create a socket, back off briefly
};

}  // namespace

int runSessions(const SessionsOptions& options) {
  installStopSignals();
  const auto& common = options.common;
  DialPlan plan = dialPlanFor(common, options.payloadBytes);
  plan.awaitPeerClose = options.awaitPeerClose;
  Fd epoll(::epoll_create1(EPOLL_CLOEXEC));
  std::vector<Slot> slots(static_cast<std::size_t>(std::max(1, options.concurrency)));
  auto toDuration = [](double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  };
  auto begin = Clock::now();
  auto windowStart = begin + toDuration(options.warmupSeconds);
  auto windowEnd = windowStart + toDuration(options.seconds);
  auto timeout = toDuration(options.sessionTimeoutSeconds);
  auto drainEnd = windowEnd + timeout;

  std::vector<std::uint32_t> latenciesUs;
  latenciesUs.reserve(1 << 20);
  ErrorCounts errors, errorsInWindow;
  std::uint64_t completedTotal = 0, abortedAtEnd = 0;
  WindowCpu cpu(common.watchPid, common.farPid);
  bool sampledStart = false, sampledEnd = false;

  std::uint64_t launched = 0;
  auto launch = [&](std::size_t i, Clock::time_point now) {
    Slot& slot = slots[i];
    ++slot.generation;
    slot.dial.start(plan, launched++);
    if (slot.dial.state() == DialState::Failed) {
      errors.add(slot.dial.failure());
      if (now >= windowStart && now < windowEnd) errorsInWindow.add(slot.dial.failure());
      slot.dial.close();
      slot.retryAt = now + std::chrono::milliseconds(1);
      return;
    }
    epoll_event ev{};
    ev.events = kDialEvents;
    ev.data.u64 = (static_cast<std::uint64_t>(slot.generation) << 32) | i;
    ::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, slot.dial.fd(), &ev);
  };
  // Records a finished or failed session, closes it and starts the next one while in time.
  auto finish = [&](std::size_t i, Clock::time_point now) {
    Slot& slot = slots[i];
    if (slot.dial.state() == DialState::Ready) {
      slot.dial.close();
      auto end = Clock::now();
      ++completedTotal;
      if (end >= windowStart && end < windowEnd) {
        auto us =
            std::chrono::duration_cast<std::chrono::microseconds>(end - slot.dial.startedAt());
        latenciesUs.push_back(
            static_cast<std::uint32_t>(std::min<std::int64_t>(us.count(), UINT32_MAX)));
      }
      now = end;
    } else {
      errors.add(slot.dial.failure());
      if (now >= windowStart && now < windowEnd) errorsInWindow.add(slot.dial.failure());
      slot.dial.close();
    }
    if (now < windowEnd && !stopRequested()) launch(i, now);
  };

  auto startNow = Clock::now();
  for (std::size_t i = 0; i < slots.size(); ++i) launch(i, startNow);

  epoll_event events[256];
  auto lastSweep = Clock::now();
  for (std::uint64_t loop = 0; loop < 10'000'000'000ULL; ++loop) {
    auto now = Clock::now();
    if (!sampledStart && now >= windowStart) {
      sampledStart = true;
      cpu.start();
    }
    if (!sampledEnd && now >= windowEnd) {
      sampledEnd = true;
      cpu.stop();
    }
    bool busy = std::any_of(slots.begin(), slots.end(),
                            [](const Slot& s) { return s.dial.state() != DialState::Idle; });
    if (now >= drainEnd || stopRequested() || (now >= windowEnd && !busy)) break;

    int n = ::epoll_wait(epoll.get(), events, 256, 5);
    for (int e = 0; e < n; ++e) {
      auto i = static_cast<std::size_t>(events[e].data.u64 & 0xffffffffu);
      auto generation = static_cast<std::uint32_t>(events[e].data.u64 >> 32);
      if (i >= slots.size() || slots[i].generation != generation) continue;
      Slot& slot = slots[i];
      DialState before = slot.dial.state();
      if (before == DialState::Idle || before == DialState::Ready || before == DialState::Failed) {
        continue;
      }
      slot.dial.advance(plan, events[e].events);
      if (slot.dial.state() == DialState::Ready || slot.dial.state() == DialState::Failed) {
        finish(i, Clock::now());
      }
    }
    now = Clock::now();
    if (now - lastSweep >= std::chrono::milliseconds(20)) {
      lastSweep = now;
      for (std::size_t i = 0; i < slots.size(); ++i) {
        Slot& slot = slots[i];
        DialState state = slot.dial.state();
        if (state == DialState::Idle) {
          if (now < windowEnd && now >= slot.retryAt && !stopRequested()) launch(i, now);
        } else if (now - slot.dial.startedAt() > timeout) {
          slot.dial.fail(std::string("timeout_") + dialStateName(state));
          finish(i, now);
        }
      }
    }
  }
  for (auto& slot : slots) {
    if (slot.dial.state() != DialState::Idle) {
      ++abortedAtEnd;
      slot.dial.close();
    }
  }
  if (!sampledEnd) cpu.stop();

  std::sort(latenciesUs.begin(), latenciesUs.end());
  double window = options.seconds;
  nlohmann::json out{{"mode", "sessions"},
                     {"tags", tagsToJson(common.tags)},
                     {"proxy", common.proxy ? common.proxy->text : "none"},
                     {"target", common.target.text},
                     {"concurrency", options.concurrency},
                     {"payload_bytes", options.payloadBytes},
                     {"await_peer_close", options.awaitPeerClose},
                     {"warmup_s", options.warmupSeconds},
                     {"window_s", window},
                     {"sessions", latenciesUs.size()},
                     {"sessions_per_s", static_cast<double>(latenciesUs.size()) / window},
                     {"sessions_total", completedTotal},
                     {"latency_us", latencySummary(latenciesUs)},
                     {"errors", errors.total()},
                     {"errors_in_window", errorsInWindow.total()},
                     {"error_reasons", errors.toJson()},
                     {"aborted_at_end", abortedAtEnd},
                     {"interrupted", stopRequested()}};
  cpu.addTo(out, window);
  emit(out);
  return errors.total() == 0 && !latenciesUs.empty() ? 0 : 1;
}

}  // namespace fwgate::bench
