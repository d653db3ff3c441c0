// The far ends of the benchmark: a discarding sink with a byte counter, and an echo server.
#pragma once

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
};

// Reads and discards (MSG_TRUNC: no copy to user space), counting every byte received.
int runSink(const ServerOptions& options);

// Writes back whatever it reads; stops reading a connection while its write side is blocked.
// SIGUSR1 closes every open connection from the server's side (the listeners stay).
int runEcho(const ServerOptions& options);

}  // namespace fwgate::bench
