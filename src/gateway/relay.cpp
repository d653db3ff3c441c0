#include "gateway/relay.hpp"

#include <fcntl.h>
#include <sys/socket.h>

#include <asio/bind_allocator.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <cerrno>
#include <cstddef>
#include <memory_resource>
#include <optional>
#include <stdexcept>

#include "gateway/net.hpp"

namespace fwgate::gateway {

namespace {

using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// The allocator of the operations an idle relay keeps pending (two readiness waits, the timer's
// wait). With std::allocator, Asio hands each the first block of its per-thread cache that is big
// enough, often a larger operation's left over from the handshake (up to 321 bytes for a 137-byte
// wait); any other allocator type gets blocks of the exact size (here operator new, through the
// default memory resource).
auto exactAllocator() {
  return std::pmr::polymorphic_allocator<std::byte>();
}

// The relay's timer names its loop's io_context directly: 48 bytes less than asio::steady_timer's
// polymorphic executor, in the timer and in its pending wait.
using Timer =
    asio::basic_waitable_timer<Clock, asio::wait_traits<Clock>, asio::io_context::executor_type>;

asio::io_context::executor_type loopOf(tcp::socket& socket) {
  const auto executor = socket.get_executor();  // target() points into this copy
  const auto* loop = executor.target<asio::io_context::executor_type>();
  if (loop == nullptr)
    throw std::logic_error("relay: the socket's executor is not an io_context's");
  return *loop;
}

// Chunks one direction may move before yielding to the rest of the event loop.
constexpr int kFairnessBudget = 16;

// The relay as a small state machine driven by completion handlers, not by coroutines: an idle
// relayed connection costs two pending readiness waits and one timer, nothing more. It lives in
// the frame of relay(), which waits on its timer and does not return before every handler it
// armed has run.
class Relay {
 public:
  Relay(tcp::socket& client, tcp::socket& server, RelayPaths paths, std::chrono::milliseconds idle,
        std::span<const std::uint8_t> firstUp, RelayResult& result)
      : paths_(paths),
        idle_(idle),
        timer_(loopOf(client)),
        up_{&client, &server, &result.bytesUp},
        down_{&server, &client, &result.bytesDown},
        result_(result) {
    // Copy mode, and auto mode until a direction has moved kSpliceAfter, copy.
    up_.copying = down_.copying = paths.mode != config::RelayMode::Splice;
    up_.head = firstUp;
  }

  // Arms both directions. relay() is then the idle timer's only waiter: it wakes when the relay
  // may have been idle for idleTimeout, and when maybeComplete() cancels the timer because the
  // relay is over.
  void start() {
    lastActivity_ = Clock::now();
    pump(up_);
    pump(down_);
  }
  bool completed() const { return completed_; }
  Timer& timer() { return timer_; }
  // When to look again: the idle deadline, or never once aborted (only the handlers still armed
  // are waited for then).
  Clock::time_point nextCheck() const {
    return aborted_ ? Clock::time_point::max() : lastActivity_ + idle_;
  }
  // The timer fired (or was cancelled): aborts the relay if it has been idle for idleTimeout.
  void checkIdle() {
    if (completed_ || aborted_ || Clock::now() - lastActivity_ < idle_) return;
    idleExpired_ = true;
    abort();
  }
  // Once completed(): why it ended.
  void end() {
    result_.idleTimeout = idleExpired_;
    if (error_ != 0) result_.error = std::error_code(error_, std::system_category()).message();
  }

 private:
  struct Direction {
    tcp::socket* from;
    tcp::socket* to;
    std::uint64_t* counter;
    std::span<const std::uint8_t> head;      // the caller's bytes, sent before any read
    Pipe pipe;                               // splice: bytes in flight sit in the pipe
    std::optional<BufferPool::Lease> lease;  // copy: bytes in flight sit in a pooled buffer
    std::size_t offset = 0;                  // copy: first unsent byte in the lease
    std::size_t pending = 0;                 // bytes read but not yet written
    bool copying = true;                     // this direction copies (else it splices)
    bool noPipe = false;                     // no pipe could be had: copy from now on
    bool done = false;
  };

  bool splicing(const Direction& d) const { return !d.copying; }

  // Moves what the kernel allows; arms a readiness wait when blocked, finishes on EOF or error.
  void pump(Direction& d) {
    for (int budget = kFairnessBudget; budget > 0; --budget) {
      if (aborted_) return finish(d);
      // The caller's bytes first, then whatever the last read left in the buffer or the pipe.
      while (!d.head.empty() || d.pending > 0) {
        const bool head = !d.head.empty();
        const ssize_t m = head ? ::send(d.to->native_handle(), d.head.data(), d.head.size(),
                                        MSG_NOSIGNAL | MSG_DONTWAIT)
                          : splicing(d)
                              ? ::splice(d.pipe.readEnd(), nullptr, d.to->native_handle(), nullptr,
                                         d.pending, SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
                              : ::send(d.to->native_handle(), d.lease->data() + d.offset, d.pending,
                                       MSG_NOSIGNAL | MSG_DONTWAIT);
        if (m < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN) return wait(d, tcp::socket::wait_write);
          fail(errno);
          return finish(d);
        }
        const auto sent = static_cast<std::size_t>(m);
        if (head) {
          d.head = d.head.subspan(sent);
        } else {
          d.pending -= sent;
          d.offset += sent;
        }
        *d.counter += sent;
        lastActivity_ = Clock::now();
      }
      const ssize_t n = read(d);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) {
          release(d);  // nothing in flight: hold no pipe or buffer while waiting
          return wait(d, tcp::socket::wait_read);
        }
        fail(errno);
        return finish(d);
      }
      if (n == 0) {
        // EOF: carry the half-close across.
        std::error_code ignored;
        d.to->shutdown(tcp::socket::shutdown_send, ignored);
        return finish(d);
      }
      d.pending = static_cast<std::size_t>(n);
      d.offset = 0;
      lastActivity_ = Clock::now();
    }
    // Budget spent with data still flowing: let other connections run, then carry on.
    ++outstanding_;
    asio::post(d.from->get_executor(), [this, &d] {
      --outstanding_;
      pump(d);
    });
  }

  ssize_t read(Direction& d) {
    // Auto mode: a direction that has moved enough starts splicing at a chunk boundary, when
    // nothing sits in the buffer.
    if (d.copying && paths_.mode == config::RelayMode::Auto && !d.noPipe &&
        *d.counter >= kSpliceAfter) {
      d.copying = false;
      d.lease.reset();
    }
    if (!d.copying && !d.pipe.valid()) {
      d.pipe = paths_.pipes.acquire();
      if (!d.pipe.valid()) d.copying = d.noPipe = true;  // out of descriptors for pipes
    }
    if (splicing(d)) {
      return ::splice(d.from->native_handle(), nullptr, d.pipe.writeEnd(), nullptr,
                      d.pipe.capacity(), SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    }
    if (!d.lease) d.lease.emplace(paths_.buffers.acquire());
    return ::recv(d.from->native_handle(), d.lease->data(), d.lease->size(), MSG_DONTWAIT);
  }

  // Gives back the pipe or buffer; only called when nothing is in flight.
  void release(Direction& d) {
    if (d.pipe.valid()) paths_.pipes.release(std::move(d.pipe));
    d.pipe = Pipe();
    d.lease.reset();
  }

  void wait(Direction& d, tcp::socket::wait_type type) {
    tcp::socket& socket = type == tcp::socket::wait_read ? *d.from : *d.to;
    ++outstanding_;
    socket.async_wait(type,
                      asio::bind_allocator(exactAllocator(), [this, &d](const std::error_code& ec) {
                        --outstanding_;
                        if (ec) {
                          if (ec != asio::error::operation_aborted) fail(ec.value());
                          return finish(d);
                        }
                        pump(d);
                      }));
  }

  void finish(Direction& d) {
    if (d.done) return;
    d.done = true;
    if (d.pending == 0) release(d);
    d.pipe = Pipe();  // a pipe still holding data is closed, never pooled
    d.lease.reset();
    maybeComplete();
  }

  // A hard error ends both directions; the first one is the relay's error.
  void fail(int error) {
    if (!aborted_) error_ = error;
    abort();
  }

  // Ends both directions: wakes whatever each one waits for.
  void abort() {
    aborted_ = true;
    std::error_code ignored;
    up_.from->cancel(ignored);
    down_.from->cancel(ignored);
  }

  void maybeComplete() {
    if (completed_ || !up_.done || !down_.done || outstanding_ > 0) return;
    completed_ = true;
    timer_.cancel();  // wakes relay()
  }

  RelayPaths paths_;
  std::chrono::milliseconds idle_;
  Timer timer_;  // idle deadline, and the event that the relay is over
  Direction up_;
  Direction down_;
  RelayResult& result_;
  Clock::time_point lastActivity_;
  int outstanding_ = 0;  // handlers armed and not yet run
  bool aborted_ = false;
  bool idleExpired_ = false;
  bool completed_ = false;
  int error_ = 0;  // the errno that aborted the relay; its text is made once, at the end
};

}  // namespace

asio::awaitable<RelayResult> relay(tcp::socket& client, tcp::socket& server, RelayPaths paths,
                                   std::chrono::milliseconds idleTimeout,
                                   std::span<const std::uint8_t> firstUp) {
  RelayResult result;
  std::error_code ec;
  // The pumps use MSG_DONTWAIT and SPLICE_F_NONBLOCK, but splice(2) from a socket blocks unless
  // the socket itself is non-blocking. Asio made it so for its own async operations before;
  // only a socket that has had none costs an ioctl here.
  if (!client.native_non_blocking()) client.native_non_blocking(true, ec);
  if (!server.native_non_blocking()) server.native_non_blocking(true, ec);
  client.set_option(tcp::no_delay(true), ec);
  server.set_option(tcp::no_delay(true), ec);
  // The wait is here rather than in a coroutine of Relay's own: one frame fewer per idle relay.
  Relay relay(client, server, paths, idleTimeout, firstUp, result);
  relay.start();
  while (!relay.completed()) {
    relay.timer().expires_at(relay.nextCheck());
    co_await relay.timer().async_wait(asio::bind_allocator(exactAllocator(), kNoThrow));
    relay.checkIdle();
  }
  relay.end();
  co_return result;
}

}  // namespace fwgate::gateway
