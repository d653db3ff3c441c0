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

#include "gateway/auth_guard.hpp"
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

// The same through a VerifyQueue, in `source`'s turn (password checks, Kerberos tokens): at most
// `maxPending` of one source wait; `refused` is set, and nothing runs, past that.
template <typename Result, typename Function>
asio::awaitable<std::optional<Result>> offloadFair(VerifyQueue& queue, const AuthSource& source,
                                                   std::size_t maxPending, Function function,
                                                   std::chrono::milliseconds deadline,
                                                   bool& refused) {
  struct State {
    explicit State(asio::any_io_executor ex) : signal(ex) {}
    asio::steady_timer signal;
    std::optional<Result> result;
  };
  auto executor = co_await asio::this_coro::executor;
  auto state = std::make_shared<State>(executor);
  state->signal.expires_after(deadline);
  auto shared = std::make_shared<Function>(std::move(function));
  refused = !queue.submit(source, maxPending, [state, executor, shared] {
    Result value = (*shared)();
    asio::post(executor, [state, value = std::move(value)]() mutable {
      state->result = std::move(value);
      state->signal.cancel();
    });
  });
  if (refused) co_return std::nullopt;
  // The result is posted to this executor, so it cannot be in before this frame waits; checked
  // all the same, for an executor that runs handlers on more than one thread.
  if (!state->result) co_await state->signal.async_wait(kNoThrow);
  co_return std::move(state->result);
}

}  // namespace fwgate::gateway
