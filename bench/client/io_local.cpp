// fwgate-io-bench: what the firewall client's read/write/send/recv hooks cost a program's LOCAL
// I/O, for running with and without libfwgate-client.so (bench/client-overhead.sh). Two loops:
// write()+read() of 64 bytes over a socketpair, and sendto()+recvfrom() of 64 bytes over UDP to
// 127.0.0.1. Prints one JSON line with the median per round trip over the batches. Plain libc.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

double nowNs() {
  return std::chrono::duration<double, std::nano>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

template <typename RoundTrip>
double medianNs(int batches, int perBatch, RoundTrip&& roundTrip, int& failures) {
  std::vector<double> perCall;
  for (int b = 0; b < batches + 2; ++b) {  // two warm-up batches
    const double start = nowNs();
    for (int i = 0; i < perBatch; ++i) {
      if (!roundTrip()) ++failures;
    }
    if (b >= 2) perCall.push_back((nowNs() - start) / perBatch);
  }
  std::sort(perCall.begin(), perCall.end());
  return perCall[perCall.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int batches = argc > 1 ? std::atoi(argv[1]) : 40;
  const int perBatch = argc > 2 ? std::atoi(argv[2]) : 10000;
  char payload[64];
  std::memset(payload, 'x', sizeof payload);
  char buffer[128];
  int failures = 0;

  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return 1;
  const double pairNs = medianNs(
      batches, perBatch,
      [&] {
        return write(pair[0], payload, sizeof payload) == sizeof payload &&
               read(pair[1], buffer, sizeof buffer) == sizeof payload;
      },
      failures);

  const int a = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const int b = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(b, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) return 1;
  socklen_t length = sizeof to;
  getsockname(b, reinterpret_cast<sockaddr*>(&to), &length);
  const double udpNs = medianNs(
      batches, perBatch,
      [&] {
        sockaddr_in from{};
        socklen_t fromLength = sizeof from;
        return sendto(a, payload, sizeof payload, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) ==
                   sizeof payload &&
               recvfrom(b, buffer, sizeof buffer, 0, reinterpret_cast<sockaddr*>(&from),
                        &fromLength) == sizeof payload;
      },
      failures);
  std::printf(
      "{\"batches\":%d,\"per_batch\":%d,\"ns_per_pair_roundtrip_p50\":%.0f,"
      "\"ns_per_udp_roundtrip_p50\":%.0f,\"failures\":%d,\"preloaded\":%s}\n",
      batches, perBatch, pairNs, udpNs, failures,
      std::getenv("LD_PRELOAD") != nullptr ? "true" : "false");
  return failures == 0 ? 0 : 1;
}
