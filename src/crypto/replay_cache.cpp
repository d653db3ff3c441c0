#include "crypto/replay_cache.hpp"

#include <sodium.h>

#include <cstring>

namespace fwgate::crypto {

std::size_t ReplayCache::Hash::operator()(const Key& k) const {
  // SipHash with a key of this process: the keys are the peers' choice, and a peer must not be
  // able to pick them into one bucket.
  static const auto secret = [] {
    std::array<std::uint8_t, crypto_shorthash_KEYBYTES> s{};
    if (sodium_init() >= 0) randombytes_buf(s.data(), s.size());
    return s;
  }();
  std::uint8_t out[crypto_shorthash_BYTES];
  crypto_shorthash(out, k.data(), k.size(), secret.data());
  std::size_t h;
  std::memcpy(&h, out, sizeof h);
  return h;
}

ReplayCache::Verdict ReplayCache::check(const Key& ephemeral, Clock::duration remember,
                                        Clock::time_point now) {
  std::lock_guard lock(mutex_);
  while (!order_.empty() && now - order_.front().first >= remember) {
    seen_.erase(order_.front().second);
    order_.pop_front();
  }
  if (seen_.count(ephemeral) != 0) return Verdict::Replayed;
  if (seen_.size() >= capacity_) return Verdict::Full;
  seen_.insert(ephemeral);
  order_.emplace_back(now, ephemeral);
  return Verdict::Fresh;
}

std::size_t ReplayCache::size() const {
  std::lock_guard lock(mutex_);
  return seen_.size();
}

}  // namespace fwgate::crypto
