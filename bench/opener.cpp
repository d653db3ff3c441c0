#include "opener.hpp"

#include <sys/epoll.h>

#include <algorithm>

namespace fwgate::bench {

namespace {

constexpr std::uint32_t kDialEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
constexpr int kMaxEvents = 256;

bool inFlight(const Dial& dial) {
  return dial.state() != DialState::Idle && dial.state() != DialState::Ready &&
         dial.state() != DialState::Failed;
}

}  // namespace

OpenResult openConnections(const DialPlan& plan, const OpenRequest& request, int epfd) {
  OpenResult result;
  result.ready.reserve(static_cast<std::size_t>(request.count));
  auto begin = Clock::now();
  auto deadline = begin + std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>(request.overallTimeoutSeconds));
  auto connTimeout = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(request.connTimeoutSeconds));
  std::vector<Dial> slots(static_cast<std::size_t>(std::max(1, request.parallel)));
  int started = 0;

  auto settle = [&](std::size_t slot) {
    Dial& dial = slots[slot];
    if (dial.state() == DialState::Failed) {
      ++result.failed;
      result.errors.add(dial.failure());
      dial.close();
    } else if (dial.state() == DialState::Ready) {
      std::size_t index = result.ready.size();
      epoll_event ev{};
      ev.events = request.readyEvents | EPOLLET;
      ev.data.u64 = kReadyTag | index;
      ::epoll_ctl(epfd, EPOLL_CTL_MOD, dial.fd(), &ev);
      result.ready.push_back(std::move(dial));
      dial = Dial{};
    }
  };

  epoll_event events[kMaxEvents];
  for (int loop = 0; loop < 100'000'000; ++loop) {
    auto now = Clock::now();
    if (stopRequested() || now >= deadline) {
      result.interrupted =
          started < request.count || std::any_of(slots.begin(), slots.end(), inFlight);
      break;
    }
    // Refill idle slots, then stop when nothing is left to do.
    for (std::size_t s = 0; s < slots.size() && started < request.count; ++s) {
      if (slots[s].state() != DialState::Idle) continue;
      slots[s].start(plan, static_cast<std::uint64_t>(started));
      ++started;
      if (slots[s].state() == DialState::Connecting) {
        epoll_event ev{};
        ev.events = kDialEvents;
        ev.data.u64 = s;
        ::epoll_ctl(epfd, EPOLL_CTL_ADD, slots[s].fd(), &ev);
      }
      settle(s);
    }
    if (started >= request.count && std::none_of(slots.begin(), slots.end(), inFlight)) break;

    int n = ::epoll_wait(epfd, events, kMaxEvents, 20);
    for (int i = 0; i < n; ++i) {
      std::uint64_t tag = events[i].data.u64;
      if (tag & kReadyTag) {  // an already-open connection spoke or closed: not ours to judge here
        continue;
      }
      Dial& dial = slots[static_cast<std::size_t>(tag)];
      if (!inFlight(dial)) continue;
      dial.advance(plan, events[i].events);
      settle(static_cast<std::size_t>(tag));
    }
    now = Clock::now();
    for (std::size_t s = 0; s < slots.size(); ++s) {
      if (inFlight(slots[s]) && now - slots[s].startedAt() > connTimeout) {
        slots[s].fail(std::string("timeout_") + dialStateName(slots[s].state()));
        settle(s);
      }
    }
  }
  for (auto& dial : slots) {
    if (inFlight(dial)) {
      ++result.failed;
      result.errors.add("abandoned_" + std::string(dialStateName(dial.state())));
      dial.close();
    }
  }
  result.seconds = secondsSince(begin);
  return result;
}

}  // namespace fwgate::bench
