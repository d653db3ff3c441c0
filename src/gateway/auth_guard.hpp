// Password guessing, throttled: failed logins counted per source (an IPv4 address, an IPv6 /64)
// and per user name over [auth_throttle] window; past `delay_after` failures an attempt waits
// (`delay`, doubling per further failure, at most `max_delay`) before it is verified; past
// `refuse_after` failures from one source, every attempt from it is refused unverified for
// `refuse_for`. A user name is delayed, never refused: a refusal per name would let anyone lock
// its owner out. The verification itself runs in a VerifyQueue, which serves sources in turn.
#pragma once

#include <array>
#include <asio/ip/address.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "config/config.hpp"

namespace fwgate::gateway {

// What failures are counted by: an IPv4 address (an IPv4-mapped one unmapped), or an IPv6
// address's /64 (one host's privacy addresses are one source).
struct AuthSource {
  std::array<std::uint8_t, 16> bytes{};
  bool v6 = false;
  static AuthSource of(const asio::ip::address& address);
  std::string toString() const;  // "192.0.2.7", "2001:db8:1:2::/64"
  friend auto operator<=>(const AuthSource&, const AuthSource&) = default;
};

class AuthGuard {
 public:
  using Clock = std::chrono::steady_clock;

  // Before an attempt is verified: refused (with `until`), or verified after `delay` (0: at once).
  struct Admission {
    bool refused = false;
    Clock::duration delay{};
    Clock::time_point until{};  // refused: when the source may try again
  };
  // Something for the operator's log, said once per window and key, never per attempt.
  struct Event {
    enum class Kind : std::uint8_t { SourceDelayed, SourceRefused, UserDelayed };
    Kind kind;
    std::string key;          // the source ("192.0.2.7") or the user name
    std::uint32_t failures;   // within the window
    Clock::duration lasting;  // SourceRefused: refuse_for; else the window
  };

  // `settings`: the snapshot's [auth_throttle] (a reload changes them; the counts stay).
  Admission admit(const config::AuthThrottle& settings, const AuthSource& source,
                  std::string_view user, Clock::time_point now);
  // A verified attempt that failed (a refused one is not counted: it told the guesser nothing, and
  // a refused source must not keep a user delayed). Returns what to log, once per window.
  std::vector<Event> failed(const config::AuthThrottle& settings, const AuthSource& source,
                            std::string_view user, Clock::time_point now);

  // Sources and names tracked (bounded: the stalest go first).
  std::size_t trackedSources() const;
  std::size_t trackedUsers() const;

  static constexpr std::size_t kMaxTracked = 65536;

 private:
  struct Count {
    std::deque<Clock::time_point> failures;  // within the window, oldest first, bounded
    Clock::time_point refusedUntil{};
    Clock::time_point delayLogged{};  // when the delay was last said, for once per window
    Clock::time_point last{};
  };
  template <typename Map, typename Key>
  static Count& entry(Map& map, const Key& key, Clock::time_point now);

  mutable std::mutex mutex_;
  std::map<AuthSource, Count> sources_;
  std::map<std::string, Count, std::less<>> users_;
};

// Verification work (argon2id) on `threads` threads, queued per source and served round-robin:
// however many attempts one source has queued, another source's next attempt is the next but
// one to run.
class VerifyQueue {
 public:
  explicit VerifyQueue(std::size_t threads);
  ~VerifyQueue();  // runs nothing more; waits for the running jobs
  VerifyQueue(const VerifyQueue&) = delete;
  VerifyQueue& operator=(const VerifyQueue&) = delete;

  // False: this source has `maxPending` jobs waiting already (0: no limit), or the queue stopped;
  // the job is dropped unrun.
  bool submit(const AuthSource& source, std::size_t maxPending, std::function<void()> job);
  // Stops the threads after the running jobs; queued jobs are dropped unrun.
  void stop();
  std::size_t pending() const;

 private:
  void run();

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::map<AuthSource, std::deque<std::function<void()>>> queues_;
  std::deque<AuthSource> turn_;  // sources with queued jobs, in the order they are served
  std::size_t pending_ = 0;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace fwgate::gateway
