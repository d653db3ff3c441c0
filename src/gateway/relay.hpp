// Moves bytes between two connected TCP sockets until both directions are done.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <string>

#include "gateway/buffer_pool.hpp"
#include "gateway/pipe_pool.hpp"

namespace fwgate::gateway {

struct RelayResult {
  std::uint64_t bytesUp = 0;    // client -> server
  std::uint64_t bytesDown = 0;  // server -> client
  bool idleTimeout = false;
  std::string error;  // first hard error (reset, broken pipe), empty on clean close
};

// Half-close is carried across: EOF read on one side becomes shutdown(SHUT_WR) on the other, and
// the relay ends when both directions have seen EOF. A hard error on either side ends both.
// Bytes move by splice(2) through a pipe from `pipes` when it is given (zero copy), else through
// a buffer from `buffers`; either is held only while a chunk is in flight, so an idle relay holds
// neither. Idle = no byte in either direction for `idleTimeout`.
asio::awaitable<RelayResult> relay(asio::ip::tcp::socket& client, asio::ip::tcp::socket& server,
                                   BufferPool& buffers, PipePool* pipes,
                                   std::chrono::milliseconds idleTimeout);

}  // namespace fwgate::gateway
