// The far ends of the benchmark: a discarding sink with a byte counter, an echo server, and an
// HTTP origin server.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common.hpp"

namespace fwgate::bench {

struct ServerOptions {
  // One listener each: the same port on several loopback addresses lets every target of a run
  // reach its own destination address.
  std::vector<Endpoint> listen;
  Endpoint stats;                     // sink only: a connection gets one JSON line of counters
  double lifetimeSeconds = 0;         // exit after this long even if never signalled
  std::uint64_t closeAfterBytes = 0;  // echo only: close first once this much was echoed; 0 never
  std::size_t bodyBytes = 128;        // http-origin only: the body of every 200 response
};

// Reads and discards (MSG_TRUNC: no copy to user space), counting every byte received.
int runSink(const ServerOptions& options);

// Writes back whatever it reads; stops reading a connection while its write side is blocked.
// SIGUSR1 closes every open connection from the server's side (the listeners stay).
int runEcho(const ServerOptions& options);

// An HTTP/1.1 origin: answers every request with 200 and bodyBytes of a fixed pattern, keeps the
// connection unless the request asked to close (or is HTTP/1.0 without keep-alive), answers
// pipelined requests in order. A connection to the stats port gets one line
// {"requests","accepted","active","t_ns"}. SIGUSR1 closes every open connection.
int runHttpOrigin(const ServerOptions& options);

// UDP: sends every datagram back to its sender (recvmmsg/sendmmsg, 4 MiB socket buffers).
int runUdpEcho(const ServerOptions& options);

}  // namespace fwgate::bench
