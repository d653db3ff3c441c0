#include "gateway/origin_pool.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <cerrno>

#include "gateway/net.hpp"

namespace fwgate::gateway {

using asio::ip::tcp;

bool OriginPool::usable(tcp::socket& socket) {
  std::uint8_t byte = 0;
  const ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

std::optional<OriginPool::Connection> OriginPool::take(
    const std::string& key, const std::vector<asio::ip::address>& allowed) {
  const auto it = idle_.find(key);
  if (it == idle_.end()) return std::nullopt;
  auto& list = it->second;
  const auto now = std::chrono::steady_clock::now();
  std::optional<Connection> out;
  while (!list.empty() && !out) {
    Idle entry = std::move(list.back());
    list.pop_back();
    --count_;
    if (entry.expires <= now || !usable(entry.connection.socket)) continue;  // closes it
    if (std::find(allowed.begin(), allowed.end(), entry.connection.peer) == allowed.end()) {
      continue;  // the policy no longer allows this address for this request
    }
    out = std::move(entry.connection);
  }
  if (list.empty()) idle_.erase(it);
  return out;
}

void OriginPool::put(const std::string& key, Connection connection, std::chrono::milliseconds idle,
                     std::size_t maxPerKey) {
  if (maxPerKey == 0 || idle.count() <= 0) return;
  auto& list = idle_[key];
  while (list.size() >= maxPerKey) {
    list.pop_front();
    --count_;
  }
  list.push_back(Idle{std::move(connection), std::chrono::steady_clock::now() + idle});
  ++count_;
  if (!sweeping_) {
    sweeping_ = true;
    if (!sweep_) sweep_.emplace(io_);
    asio::co_spawn(io_, sweepLoop(), asio::detached);
  }
}

void OriginPool::clear() {
  idle_.clear();
  count_ = 0;
  sweep_.reset();
}

void OriginPool::sweep() {
  const auto now = std::chrono::steady_clock::now();
  for (auto it = idle_.begin(); it != idle_.end();) {
    auto& list = it->second;
    const auto before = list.size();
    std::erase_if(list, [&](Idle& e) { return e.expires <= now || !usable(e.connection.socket); });
    count_ -= before - list.size();
    it = list.empty() ? idle_.erase(it) : std::next(it);
  }
}

asio::awaitable<void> OriginPool::sweepLoop() {
  while (count_ > 0) {
    sweep_->expires_after(std::chrono::seconds(1));
    auto [ec] = co_await sweep_->async_wait(kNoThrow);
    if (ec) break;
    sweep();
  }
  sweeping_ = false;
}

}  // namespace fwgate::gateway
