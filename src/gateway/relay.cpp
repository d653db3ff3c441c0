#include "gateway/relay.hpp"

#include <asio/experimental/awaitable_operators.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/write.hpp>

#include <fcntl.h>

#include <cerrno>

#include "gateway/net.hpp"

namespace fwgate::gateway {

namespace {

using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

struct RelayState {
  Clock::time_point lastActivity = Clock::now();
  bool aborted = false;
  std::string error;
};

// A hard error ends both directions: wake the other pump wherever it waits.
void abortRelay(RelayState& state, const std::error_code& ec, tcp::socket& a, tcp::socket& b) {
  if (!state.aborted) {
    state.aborted = true;
    state.error = ec.message();
  }
  std::error_code ignored;
  a.cancel(ignored);
  b.cancel(ignored);
}

// One direction. Waits for readability without holding a buffer, then borrows one, drains what
// the kernel has (up to one buffer), writes it all, and returns the buffer.
asio::awaitable<void> pump(tcp::socket& from, tcp::socket& to, BufferPool& pool, RelayState& state,
                           std::uint64_t& counter) {
  for (;;) {
    if (state.aborted) co_return;
    auto lease = pool.acquire();
    std::error_code ec;
    std::size_t n = from.read_some(asio::buffer(lease.data(), lease.size()), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      // Nothing there: give the buffer back before sleeping on the socket.
      { auto released = std::move(lease); }
      auto [waitEc] = co_await from.async_wait(tcp::socket::wait_read, kNoThrow);
      if (waitEc) {
        if (!state.aborted && waitEc != asio::error::operation_aborted) {
          state.aborted = true;
          state.error = waitEc.message();
        }
        co_return;
      }
      continue;
    }
    if (ec == asio::error::eof) {
      std::error_code ignored;
      to.shutdown(tcp::socket::shutdown_send, ignored);
      co_return;
    }
    if (ec) {
      abortRelay(state, ec, from, to);
      co_return;
    }
    state.lastActivity = Clock::now();
    auto [writeEc, written] =
        co_await asio::async_write(to, asio::buffer(lease.data(), n), kNoThrow);
    counter += written;
    if (writeEc) {
      abortRelay(state, writeEc, from, to);
      co_return;
    }
    state.lastActivity = Clock::now();
  }
}

// One direction by splice(2): socket -> pipe -> socket, no copy through user space. The pipe is
// drained completely before the next read, so EAGAIN on the way in always means "no data".
asio::awaitable<void> splicePump(tcp::socket& from, tcp::socket& to, PipePool& pipes,
                                 BufferPool& buffers, RelayState& state, std::uint64_t& counter) {
  constexpr unsigned kFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
  Pipe pipe;
  for (;;) {
    if (state.aborted) co_return;
    if (!pipe.valid()) {
      pipe = pipes.acquire();
      if (!pipe.valid()) {
        // Out of descriptors for pipes: this direction carries on by copying.
        co_await pump(from, to, buffers, state, counter);
        co_return;
      }
    }
    const ssize_t n =
        ::splice(from.native_handle(), nullptr, pipe.writeEnd(), nullptr, pipe.capacity(), kFlags);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        pipes.release(std::move(pipe));  // empty: back to the pool before sleeping
        pipe = Pipe();
        auto [waitEc] = co_await from.async_wait(tcp::socket::wait_read, kNoThrow);
        if (waitEc) {
          if (waitEc != asio::error::operation_aborted) abortRelay(state, waitEc, from, to);
          co_return;
        }
        continue;
      }
      abortRelay(state, std::error_code(errno, std::system_category()), from, to);
      co_return;
    }
    if (n == 0) {
      std::error_code ignored;
      to.shutdown(tcp::socket::shutdown_send, ignored);
      pipes.release(std::move(pipe));
      co_return;
    }
    state.lastActivity = Clock::now();
    auto left = static_cast<std::size_t>(n);
    while (left > 0) {
      const ssize_t m =
          ::splice(pipe.readEnd(), nullptr, to.native_handle(), nullptr, left, kFlags);
      if (m < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) {
          auto [waitEc] = co_await to.async_wait(tcp::socket::wait_write, kNoThrow);
          if (waitEc) {
            if (waitEc != asio::error::operation_aborted) abortRelay(state, waitEc, from, to);
            co_return;  // the pipe still holds data: it is closed, not pooled
          }
          continue;
        }
        abortRelay(state, std::error_code(errno, std::system_category()), from, to);
        co_return;
      }
      left -= static_cast<std::size_t>(m);
      counter += static_cast<std::uint64_t>(m);
    }
    state.lastActivity = Clock::now();
  }
}

asio::awaitable<void> idleWatch(RelayState& state, std::chrono::milliseconds idle) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_at(state.lastActivity + idle);
    auto [ec] = co_await timer.async_wait(kNoThrow);
    if (ec) co_return;  // cancelled: the relay finished first
    if (Clock::now() - state.lastActivity >= idle) co_return;
  }
}

}  // namespace

asio::awaitable<RelayResult> relay(tcp::socket& client, tcp::socket& server, BufferPool& pool,
                                   PipePool* pipes, std::chrono::milliseconds idleTimeout) {
  using namespace asio::experimental::awaitable_operators;
  RelayResult result;
  RelayState state;
  std::error_code ec;
  client.non_blocking(true, ec);
  server.non_blocking(true, ec);
  client.set_option(tcp::no_delay(true), ec);
  server.set_option(tcp::no_delay(true), ec);

  auto up = pipes ? splicePump(client, server, *pipes, pool, state, result.bytesUp)
                  : pump(client, server, pool, state, result.bytesUp);
  auto down = pipes ? splicePump(server, client, *pipes, pool, state, result.bytesDown)
                    : pump(server, client, pool, state, result.bytesDown);
  auto outcome = co_await ((std::move(up) && std::move(down)) || idleWatch(state, idleTimeout));
  result.idleTimeout = outcome.index() == 1;
  result.error = std::move(state.error);
  co_return result;
}

}  // namespace fwgate::gateway
