// When a firewall client fetches its configuration again: the seed's "every six hours after the
// previous refresh" (the gateway's refresh interval), and, after a failure, again soon with
// exponential back-off, while the last good configuration stays in force. Pure: the caller owns
// the clock.
#pragma once

#include <cstdint>

namespace fwgate::client {

class RefreshSchedule {
 public:
  static constexpr std::int64_t kFirstRetrySeconds = 30;
  static constexpr std::int64_t kMaxRetrySeconds = 3600;

  // `lastSuccess`: when the configuration in force was fetched (0: never).
  RefreshSchedule(std::int64_t lastSuccess, std::uint32_t intervalSeconds)
      : lastSuccess_(lastSuccess), interval_(intervalSeconds) {}

  // Whether a configuration fetched at lastSuccess is older than the interval at `now`.
  bool stale(std::int64_t now) const {
    return lastSuccess_ == 0 || now - lastSuccess_ >= interval_;
  }
  // When to try next, in absolute seconds.
  std::int64_t next() const { return next_; }

  void succeeded(std::int64_t now, std::uint32_t intervalSeconds) {
    lastSuccess_ = now;
    if (intervalSeconds >= 60) interval_ = intervalSeconds;
    failures_ = 0;
    next_ = now + interval_;
  }
  void failed(std::int64_t now) {
    std::int64_t wait = kFirstRetrySeconds;
    for (int i = 0; i < failures_ && wait < kMaxRetrySeconds; ++i) wait *= 2;
    if (wait > kMaxRetrySeconds) wait = kMaxRetrySeconds;
    // Never later than a success would have had it.
    if (lastSuccess_ != 0 && wait > interval_) wait = interval_;
    ++failures_;
    next_ = now + wait;
  }
  int failures() const { return failures_; }
  std::uint32_t interval() const { return interval_; }

 private:
  std::int64_t lastSuccess_;
  std::uint32_t interval_;
  int failures_ = 0;
  std::int64_t next_ = 0;
};

}  // namespace fwgate::client
