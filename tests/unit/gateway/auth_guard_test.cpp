// [auth_throttle]: failed logins counted per source and per name, delays, refusals, what is
// logged once per window; and the VerifyQueue that serves sources in turn.
#include "gateway/auth_guard.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <vector>

namespace fwgate::gateway {
namespace {

using namespace std::chrono_literals;
using Clock = AuthGuard::Clock;
using Kind = AuthGuard::Event::Kind;

AuthSource source(const char* text) {
  return AuthSource::of(asio::ip::make_address(text));
}

config::AuthThrottle settings() {
  config::AuthThrottle s;
  s.window = 60s;
  s.delayAfter = 3;
  s.delay = 100ms;
  s.maxDelay = 1s;
  s.refuseAfter = 10;
  s.refuseFor = 120s;
  return s;
}

std::vector<Kind> kinds(const std::vector<AuthGuard::Event>& events) {
  std::vector<Kind> out;
  for (const auto& e : events) out.push_back(e.kind);
  return out;
}

TEST(AuthSourceTest, Ipv4AndMappedAreOneSourceAndIpv6CountsBy64) {
  EXPECT_EQ(source("192.0.2.7"), source("::ffff:192.0.2.7"));
  EXPECT_NE(source("192.0.2.7"), source("192.0.2.8"));
  EXPECT_EQ(source("192.0.2.7").toString(), "192.0.2.7");
  // One host's privacy addresses share a /64; another /64 is another source.
  EXPECT_EQ(source("2001:db8:1:2::1"), source("2001:db8:1:2:abcd:ef01:2345:6789"));
  EXPECT_NE(source("2001:db8:1:2::1"), source("2001:db8:1:3::1"));
  EXPECT_EQ(source("2001:db8:1:2::1").toString(), "2001:db8:1:2::/64");
  // An IPv4 address and the IPv6 /64 starting with the same bytes are not one source.
  EXPECT_NE(source("32.1.13.184"), source("2001:db8::1"));
}

TEST(AuthGuardTest, DelaysGrowPastTheThresholdUpToTheCap) {
  AuthGuard guard;
  const auto s = settings();
  const auto from = source("192.0.2.7");
  const Clock::time_point t0{};
  std::vector<Clock::duration> delays;
  for (int i = 0; i < 8; ++i) {
    const auto a = guard.admit(s, from, fmt::format("user{}", i), t0 + i * 1s);
    EXPECT_FALSE(a.refused);
    delays.push_back(a.delay);
    guard.failed(s, from, fmt::format("user{}", i), t0 + i * 1s);
  }
  // Failures 0..2: none; 3: 100 ms; 4: 200; 5: 400; 6: 800; 7: capped at 1 s.
  const std::vector<Clock::duration> expected = {0ms, 0ms, 0ms, 100ms, 200ms, 400ms, 800ms, 1s};
  EXPECT_EQ(delays, expected);
}

TEST(AuthGuardTest, AUserNameIsDelayedFromEverySourceButNeverRefused) {
  AuthGuard guard;
  const auto s = settings();
  const Clock::time_point t0{};
  // 30 sources, one failure each, all for alice: no source is refused or delayed by its own count.
  for (int i = 0; i < 30; ++i) {
    const std::string address = fmt::format("198.51.100.{}", i + 1);
    const auto a = guard.admit(s, source(address.c_str()), "alice", t0 + i * 1ms);
    EXPECT_FALSE(a.refused) << i;
    guard.failed(s, source(address.c_str()), "alice", t0 + i * 1ms);
  }
  // A new source trying alice is delayed (by the name's count, capped), not refused.
  const auto alice = guard.admit(s, source("203.0.113.9"), "alice", t0 + 1s);
  EXPECT_FALSE(alice.refused);
  EXPECT_EQ(alice.delay, 1s);
  // The same source trying another name is not delayed at all.
  const auto bob = guard.admit(s, source("203.0.113.9"), "bob", t0 + 1s);
  EXPECT_FALSE(bob.refused);
  EXPECT_EQ(bob.delay, 0ms);
}

TEST(AuthGuardTest, ASourceIsRefusedForRefuseForThenStartsAfresh) {
  AuthGuard guard;
  const auto s = settings();
  const auto from = source("192.0.2.7");
  const Clock::time_point t0{};
  std::vector<AuthGuard::Event> refusals;
  for (int i = 0; i < 10; ++i) {
    ASSERT_FALSE(guard.admit(s, from, fmt::format("u{}", i), t0).refused) << i;
    for (auto& e : guard.failed(s, from, fmt::format("u{}", i), t0)) {
      if (e.kind == Kind::SourceRefused) refusals.push_back(e);
    }
  }
  ASSERT_EQ(refusals.size(), 1u);
  EXPECT_EQ(refusals[0].key, "192.0.2.7");
  EXPECT_EQ(refusals[0].failures, 10u);
  EXPECT_EQ(refusals[0].lasting, 120s);

  const auto refused = guard.admit(s, from, "anyone", t0 + 119s);
  EXPECT_TRUE(refused.refused);
  EXPECT_EQ(refused.until, t0 + 120s);
  // Another source is untouched.
  EXPECT_FALSE(guard.admit(s, source("192.0.2.8"), "other", t0 + 1s).refused);
  // When the refusal ends the count starts again from nothing.
  const auto after = guard.admit(s, from, "anyone", t0 + 120s);
  EXPECT_FALSE(after.refused);
  EXPECT_EQ(after.delay, 0ms);
}

TEST(AuthGuardTest, FailuresOlderThanTheWindowAreForgotten) {
  AuthGuard guard;
  const auto s = settings();
  const auto from = source("192.0.2.7");
  const Clock::time_point t0{};
  for (int i = 0; i < 5; ++i) guard.failed(s, from, fmt::format("u{}", i), t0 + i * 1s);
  EXPECT_EQ(guard.admit(s, from, "x", t0 + 5s).delay, 400ms);  // 5 failures in the window
  // At t0 + 61 s the failures at 0 and 1 s have left the 60 s window: three remain.
  EXPECT_EQ(guard.admit(s, from, "x", t0 + 61s).delay, 100ms);
  // At t0 + 62 s the one at 2 s has too: two remain, below delay_after.
  EXPECT_EQ(guard.admit(s, from, "x", t0 + 62s).delay, 0ms);
}

TEST(AuthGuardTest, EachDelayIsLoggedOncePerWindow) {
  AuthGuard guard;
  const auto s = settings();
  const auto from = source("192.0.2.7");
  const Clock::time_point t0{};
  std::vector<std::vector<Kind>> said;
  for (int i = 0; i < 6; ++i) said.push_back(kinds(guard.failed(s, from, "alice", t0 + i * 1s)));
  // The third failure crosses delay_after for the source and for the name: both said, once.
  const std::vector<std::vector<Kind>> expected = {{}, {}, {Kind::SourceDelayed, Kind::UserDelayed},
                                                   {}, {}, {}};
  EXPECT_EQ(said, expected);
  // A window later, still failing: said again, once.
  for (int i = 0; i < 3; ++i) guard.failed(s, from, "alice", t0 + 50s + i * 1s);
  EXPECT_EQ(kinds(guard.failed(s, from, "alice", t0 + 62s)),
            (std::vector<Kind>{Kind::SourceDelayed, Kind::UserDelayed}));
  EXPECT_TRUE(guard.failed(s, from, "alice", t0 + 63s).empty());
}

TEST(AuthGuardTest, DisabledOrZeroThresholdsNeverDelayOrRefuse) {
  AuthGuard guard;
  auto off = settings();
  off.enabled = false;
  const auto from = source("192.0.2.7");
  const Clock::time_point t0{};
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(guard.failed(off, from, "alice", t0).empty());
  EXPECT_EQ(guard.trackedSources(), 0u);
  auto zero = settings();
  zero.delayAfter = 0;
  zero.refuseAfter = 0;
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(guard.failed(zero, from, "alice", t0).empty());
  const auto a = guard.admit(zero, from, "alice", t0);
  EXPECT_FALSE(a.refused);
  EXPECT_EQ(a.delay, 0ms);
}

TEST(AuthGuardTest, ASettingsChangeAppliesToTheCountsKept) {
  AuthGuard guard;
  auto s = settings();
  const auto from = source("192.0.2.7");
  const Clock::time_point t0{};
  for (int i = 0; i < 4; ++i) guard.failed(s, from, fmt::format("u{}", i), t0);
  EXPECT_EQ(guard.admit(s, from, "x", t0).delay, 200ms);
  s.delayAfter = 1;  // a reload: the same four failures count against the new threshold
  EXPECT_EQ(guard.admit(s, from, "x", t0).delay, 800ms);
}

TEST(AuthGuardTest, TrackedSourcesAndNamesAreBoundedStalestFirst) {
  AuthGuard guard;
  auto s = settings();
  s.refuseAfter = 0;
  const Clock::time_point t0{};
  const auto first = source("10.255.255.254");
  guard.failed(s, first, "first", t0);
  for (std::size_t i = 0; i < AuthGuard::kMaxTracked + 10; ++i) {
    asio::ip::address_v4 a(static_cast<std::uint32_t>(0x0a000000u + i));
    guard.failed(s, AuthSource::of(asio::ip::address(a)), fmt::format("u{}", i),
                 t0 + std::chrono::microseconds(i + 1));
  }
  EXPECT_EQ(guard.trackedSources(), AuthGuard::kMaxTracked);
  EXPECT_EQ(guard.trackedUsers(), AuthGuard::kMaxTracked);
  // The first, stalest source went: three more failures from it are its first three.
  for (int i = 0; i < 2; ++i) guard.failed(s, first, "first", t0 + 1s);
  EXPECT_EQ(guard.admit(s, first, "fresh", t0 + 1s).delay, 0ms);
}

TEST(VerifyQueueTest, ServesSourcesInTurn) {
  VerifyQueue queue(1);
  std::promise<void> release;
  auto gate = release.get_future().share();
  std::mutex mutex;
  std::vector<std::string> order;
  // The one thread is held by the first job while the rest queue up.
  std::promise<void> started;
  ASSERT_TRUE(queue.submit(source("192.0.2.1"), 0, [&] {
    started.set_value();
    gate.wait();
  }));
  started.get_future().wait();
  std::atomic<int> done{0};
  const auto job = [&](std::string name) {
    return [&, name] {
      std::lock_guard lock(mutex);
      order.push_back(name);
      ++done;
    };
  };
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(queue.submit(source("192.0.2.1"), 0, job(fmt::format("a{}", i))));
  }
  ASSERT_TRUE(queue.submit(source("192.0.2.2"), 0, job("b0")));
  ASSERT_TRUE(queue.submit(source("192.0.2.3"), 0, job("c0")));
  ASSERT_TRUE(queue.submit(source("192.0.2.2"), 0, job("b1")));
  EXPECT_EQ(queue.pending(), 7u);
  release.set_value();
  for (int i = 0; i < 500 && done.load() < 7; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(done.load(), 7);
  // a's four queued jobs do not hold back b and c: each source's next job in turn.
  EXPECT_EQ(order, (std::vector<std::string>{"a0", "b0", "c0", "a1", "b1", "a2", "a3"}));
  EXPECT_EQ(queue.pending(), 0u);
}

TEST(VerifyQueueTest, ASourceWithMaxPendingWaitingIsRefusedOthersAreNot) {
  VerifyQueue queue(1);
  std::promise<void> release;
  auto gate = release.get_future().share();
  std::promise<void> started;
  ASSERT_TRUE(queue.submit(source("192.0.2.9"), 0, [&] {
    started.set_value();
    gate.wait();
  }));
  started.get_future().wait();
  std::atomic<int> ran{0};
  const auto count = [&] { ++ran; };
  EXPECT_TRUE(queue.submit(source("192.0.2.1"), 2, count));
  EXPECT_TRUE(queue.submit(source("192.0.2.1"), 2, count));
  EXPECT_FALSE(queue.submit(source("192.0.2.1"), 2, count));  // two waiting already
  EXPECT_TRUE(queue.submit(source("192.0.2.2"), 2, count));
  release.set_value();
  for (int i = 0; i < 500 && ran.load() < 3; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(ran.load(), 3);
  // Once its queue drained, the source may submit again.
  EXPECT_TRUE(queue.submit(source("192.0.2.1"), 2, count));
  for (int i = 0; i < 500 && ran.load() < 4; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(ran.load(), 4);
}

TEST(VerifyQueueTest, StopDropsQueuedJobsAndRefusesNewOnes) {
  auto queue = std::make_unique<VerifyQueue>(1);
  std::promise<void> release;
  auto gate = release.get_future().share();
  std::promise<void> started;
  ASSERT_TRUE(queue->submit(source("192.0.2.9"), 0, [&] {
    started.set_value();
    gate.wait();
  }));
  started.get_future().wait();
  std::atomic<int> ran{0};
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(queue->submit(source("192.0.2.1"), 0, [&] { ++ran; }));
  auto stopping = std::async(std::launch::async, [&] { queue->stop(); });
  // stop() waits for the running job; release it.
  std::this_thread::sleep_for(20ms);
  release.set_value();
  ASSERT_EQ(stopping.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(ran.load(), 0);
  EXPECT_EQ(queue->pending(), 0u);
  EXPECT_FALSE(queue->submit(source("192.0.2.1"), 0, [&] { ++ran; }));
  queue.reset();  // a second stop, from the destructor, is harmless
  EXPECT_EQ(ran.load(), 0);
}

}  // namespace
}  // namespace fwgate::gateway
