#include "gateway/auth_guard.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "gateway/net.hpp"

namespace fwgate::gateway {

AuthSource AuthSource::of(const asio::ip::address& address) {
  AuthSource s;
  const auto a = unmapped(address);
  if (a.is_v4()) {
    const auto b = a.to_v4().to_bytes();
    std::copy(b.begin(), b.end(), s.bytes.begin());
  } else {
    s.v6 = true;
    const auto b = a.to_v6().to_bytes();
    std::copy(b.begin(), b.begin() + 8, s.bytes.begin());  // the /64
  }
  return s;
}

std::string AuthSource::toString() const {
  if (!v6) {
    asio::ip::address_v4::bytes_type b;
    std::copy(bytes.begin(), bytes.begin() + 4, b.begin());
    return asio::ip::address_v4(b).to_string();
  }
  asio::ip::address_v6::bytes_type b{};
  std::copy(bytes.begin(), bytes.begin() + 8, b.begin());
  return asio::ip::address_v6(b).to_string() + "/64";
}

template <typename Map, typename Key>
AuthGuard::Count& AuthGuard::entry(Map& map, const Key& key, Clock::time_point now) {
  auto it = map.find(key);
  if (it == map.end()) {
    if (map.size() >= kMaxTracked) {
      // The stalest goes: a flood of new keys forgets old quiet ones, not the ones guessing now.
      auto stalest = std::min_element(map.begin(), map.end(), [](const auto& a, const auto& b) {
        return a.second.last < b.second.last;
      });
      map.erase(stalest);
    }
    it = map.emplace(typename Map::key_type(key), Count{}).first;
  }
  it->second.last = now;
  return it->second;
}

namespace {

using Clock = AuthGuard::Clock;

template <typename Failures>
void prune(const config::AuthThrottle& settings, Failures& failures, Clock::time_point now) {
  while (!failures.empty() && now - failures.front() >= settings.window) failures.pop_front();
}

Clock::duration delayFor(const config::AuthThrottle& settings, std::size_t failures) {
  if (settings.delayAfter == 0 || failures < settings.delayAfter) return {};
  const std::size_t doublings = std::min<std::size_t>(failures - settings.delayAfter, 30);
  const auto delay =
      std::chrono::duration_cast<Clock::duration>(settings.delay) * (std::int64_t{1} << doublings);
  return std::min<Clock::duration>(delay, settings.maxDelay);
}

}  // namespace

AuthGuard::Admission AuthGuard::admit(const config::AuthThrottle& settings,
                                      const AuthSource& source, std::string_view user,
                                      Clock::time_point now) {
  std::lock_guard lock(mutex_);
  Admission a;
  if (!settings.enabled) return a;
  if (auto it = sources_.find(source); it != sources_.end()) {
    Count& c = it->second;
    if (now < c.refusedUntil) {
      a.refused = true;
      a.until = c.refusedUntil;
      return a;
    }
    prune(settings, c.failures, now);
    a.delay = delayFor(settings, c.failures.size());
  }
  if (auto it = users_.find(user); it != users_.end()) {
    prune(settings, it->second.failures, now);
    a.delay = std::max(a.delay, delayFor(settings, it->second.failures.size()));
  }
  return a;
}

std::vector<AuthGuard::Event> AuthGuard::failed(const config::AuthThrottle& settings,
                                                const AuthSource& source, std::string_view user,
                                                Clock::time_point now) {
  std::lock_guard lock(mutex_);
  std::vector<Event> events;
  if (!settings.enabled) return events;
  // Enough timestamps to decide both thresholds; older ones fall out of the window anyway.
  const std::size_t keep = std::max<std::size_t>(settings.delayAfter, settings.refuseAfter) + 1;
  const auto count = [&](Count& c) {
    prune(settings, c.failures, now);
    c.failures.push_back(now);
    while (c.failures.size() > keep) c.failures.pop_front();
    return static_cast<std::uint32_t>(c.failures.size());
  };
  const auto delaying = [&](Count& c, std::uint32_t n) {
    if (settings.delayAfter == 0 || n < settings.delayAfter) return false;
    if (c.delayLogged != Clock::time_point{} && now - c.delayLogged < settings.window) {
      return false;
    }
    c.delayLogged = now;
    return true;
  };

  Count& s = entry(sources_, source, now);
  const std::uint32_t n = count(s);
  if (settings.refuseAfter != 0 && n >= settings.refuseAfter) {
    s.refusedUntil = now + settings.refuseFor;
    s.failures.clear();  // a fresh count when the refusal ends
    events.push_back({Event::Kind::SourceRefused, source.toString(), n, settings.refuseFor});
  } else if (delaying(s, n)) {
    events.push_back({Event::Kind::SourceDelayed, source.toString(), n, settings.window});
  }

  if (user.empty()) return events;  // a failure no name was claimed for (a Kerberos token)
  Count& u = entry(users_, user, now);
  const std::uint32_t m = count(u);
  if (delaying(u, m)) {
    events.push_back({Event::Kind::UserDelayed, std::string(user), m, settings.window});
  }
  return events;
}

std::size_t AuthGuard::trackedSources() const {
  std::lock_guard lock(mutex_);
  return sources_.size();
}

std::size_t AuthGuard::trackedUsers() const {
  std::lock_guard lock(mutex_);
  return users_.size();
}

// --- VerifyQueue ---------------------------------------------------------------------------------

VerifyQueue::VerifyQueue(std::size_t threads) {
  threads_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

VerifyQueue::~VerifyQueue() {
  stop();
}

bool VerifyQueue::submit(const AuthSource& source, std::size_t maxPending,
                         std::function<void()> job) {
  {
    std::lock_guard lock(mutex_);
    if (stop_) return false;
    auto& queue = queues_[source];
    if (maxPending != 0 && queue.size() >= maxPending) return false;
    if (queue.empty()) turn_.push_back(source);
    queue.push_back(std::move(job));
    ++pending_;
  }
  wake_.notify_one();
  return true;
}

std::size_t VerifyQueue::pending() const {
  std::lock_guard lock(mutex_);
  return pending_;
}

void VerifyQueue::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stop_ && threads_.empty()) return;
    stop_ = true;
    queues_.clear();
    turn_.clear();
    pending_ = 0;
  }
  wake_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  std::lock_guard lock(mutex_);
  threads_.clear();
}

void VerifyQueue::run() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stop_ || !turn_.empty(); });
      if (stop_) return;
      const AuthSource source = turn_.front();
      turn_.pop_front();
      auto it = queues_.find(source);
      job = std::move(it->second.front());
      it->second.pop_front();
      --pending_;
      // Its next job waits for every other source's next one.
      if (it->second.empty()) {
        queues_.erase(it);
      } else {
        turn_.push_back(source);
      }
    }
    job();
  }
}

}  // namespace fwgate::gateway
