// Runs a blocking function (getaddrinfo, argon2id) on a thread pool and resumes the calling
// coroutine on its own executor, with a deadline. A late result is discarded safely: the
// worker and the waiter share the state, so neither outlives it.
#pragma once

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/thread_pool.hpp>
#include <chrono>
#include <memory>
#include <optional>

#include "gateway/net.hpp"

namespace fwgate::gateway {

template <typename Result, typename Function>
asio::awaitable<std::optional<Result>> offload(asio::thread_pool& pool, Function function,
                                               std::chrono::milliseconds deadline) {
  struct State {
    explicit State(asio::any_io_executor ex) : signal(ex) {}
    asio::steady_timer signal;  // used as an event: cancelled when the result is in
    std::optional<Result> result;
  };
  auto executor = co_await asio::this_coro::executor;
  auto state = std::make_shared<State>(executor);
  state->signal.expires_after(deadline);
  asio::post(pool, [state, executor, function = std::move(function)]() mutable {
    Result value = function();
    asio::post(executor, [state, value = std::move(value)]() mutable {
      state->result = std::move(value);
      state->signal.cancel();
    });
  });
  co_await state->signal.async_wait(kNoThrow);
  co_return std::move(state->result);  // nullopt: the deadline passed first
}

}  // namespace fwgate::gateway
