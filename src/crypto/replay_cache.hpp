// Noise IK's first message is acted on before the client has proved it holds its ephemeral key
// (the gateway answers Hello and the first request): a copy replayed from a capture must be
// refused. Each message 1 carries a Timestamp in its Hello; the gateway refuses one further than
// `max_clock_skew` from its clock, and remembers every ephemeral key it accepted for twice that,
// so a copy within the window is refused too. Thread-safe (the loops share one cache).
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <mutex>
#include <unordered_set>

#include "crypto/noise.hpp"

namespace fwgate::crypto {

class ReplayCache {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Verdict : std::uint8_t { Fresh, Replayed, Full };

  explicit ReplayCache(std::size_t capacity = kDefaultCapacity) : capacity_(capacity) {}

  // Fresh: not seen within `remember`, and now remembered. Full: `capacity` keys are remembered
  // already; nothing is (a flood of handshakes is refused rather than let replays through).
  Verdict check(const Key& ephemeral, Clock::duration remember, Clock::time_point now);
  std::size_t size() const;

  static constexpr std::size_t kDefaultCapacity = 1 << 20;

 private:
  struct Hash {
    std::size_t operator()(const Key& k) const;
  };
  mutable std::mutex mutex_;
  std::unordered_set<Key, Hash> seen_;
  std::deque<std::pair<Clock::time_point, Key>> order_;  // oldest first
  std::size_t capacity_;
};

}  // namespace fwgate::crypto
