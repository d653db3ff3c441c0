// Moves bytes between two connected TCP sockets until both directions are done.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <span>
#include <string>

#include "config/config.hpp"
#include "gateway/buffer_pool.hpp"
#include "gateway/pipe_pool.hpp"

namespace fwgate::gateway {

struct RelayResult {
  std::uint64_t bytesUp = 0;    // client -> server
  std::uint64_t bytesDown = 0;  // server -> client
  bool idleTimeout = false;
  std::string error;  // first hard error (reset, broken pipe), empty on clean close
};

// Where a relay's bytes in flight may sit: an event loop's buffers and pipes, and the mode that
// picks between them.
struct RelayPaths {
  BufferPool& buffers;
  PipePool& pipes;
  config::RelayMode mode = config::RelayMode::Auto;
};

// Auto mode: a direction copies until it has moved this much, then splices. A request, a reply
// or a keystroke never costs a pipe; a download pays for one copy of its first bytes only.
inline constexpr std::uint64_t kSpliceAfter = 128 * 1024;

// Half-close is carried across: EOF read on one side becomes shutdown(SHUT_WR) on the other, and
// the relay ends when both directions have seen EOF. A hard error on either side ends both.
// Bytes move by splice(2) through a pipe (zero copy) or through a buffer, as `paths.mode` says;
// either is held only while a chunk is in flight, so an idle relay holds neither. A direction
// that cannot get a pipe (out of descriptors) copies. Idle = no byte in either direction for
// `idleTimeout`.
// `firstUp`: bytes the client sent ahead (pipelined behind its request), sent to `server` before
// anything else and counted in bytesUp; they must stay valid until the relay returns.
asio::awaitable<RelayResult> relay(asio::ip::tcp::socket& client, asio::ip::tcp::socket& server,
                                   RelayPaths paths, std::chrono::milliseconds idleTimeout,
                                   std::span<const std::uint8_t> firstUp = {});

}  // namespace fwgate::gateway
