// Opens many verified connections with a bounded number of handshakes in flight.
#pragma once

#include <cstdint>
#include <vector>

#include "common.hpp"
#include "dial.hpp"

namespace fwgate::bench {

// epoll data of a ready connection: this bit plus its index in OpenResult::ready.
inline constexpr std::uint64_t kReadyTag = 1ULL << 63;

struct OpenRequest {
  int count = 1;
  int parallel = 64;
  double connTimeoutSeconds = 10;
  double overallTimeoutSeconds = 60;
  std::uint32_t readyEvents = 0;  // epoll events for ready connections (EPOLLET is added)
};

struct OpenResult {
  std::vector<Dial> ready;  // registered in the caller's epoll with kReadyTag | index
  std::uint64_t failed = 0;
  ErrorCounts errors;
  double seconds = 0;
  bool interrupted = false;  // stopped by a signal or the overall timeout
};

OpenResult openConnections(const DialPlan& plan, const OpenRequest& request, int epfd);

}  // namespace fwgate::bench
