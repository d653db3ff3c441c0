// fwgate-connect-bench: what connect() to a local destination costs, for running with and without
// libfwgate-client.so (bench/client-overhead.sh). A listener thread accepts and closes; the main
// thread times batches of socket() + connect() + close() and prints one JSON line with the median
// and the spread of the per-call time over the batches. Plain libc: nothing of fwgate is linked in.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

double nowNs() {
  return std::chrono::duration<double, std::nano>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s IPV4-ADDRESS [BATCHES] [PER-BATCH]\n", argv[0]);
    return 2;
  }
  const int batches = argc > 2 ? std::atoi(argv[2]) : 50;
  const int perBatch = argc > 3 ? std::atoi(argv[3]) : 1000;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  if (inet_pton(AF_INET, argv[1], &address.sin_addr) != 1) {
    std::fprintf(stderr, "not an IPv4 address: %s\n", argv[1]);
    return 2;
  }
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      listen(listener, 4096) != 0) {
    std::fprintf(stderr, "listen on %s: %s\n", argv[1], std::strerror(errno));
    return 1;
  }
  socklen_t length = sizeof address;
  getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  std::atomic<bool> stop{false};
  std::thread acceptor([&] {
    while (!stop.load()) {
      const int c = accept(listener, nullptr, nullptr);
      if (c >= 0) close(c);
    }
  });

  std::vector<double> perCall;
  int failures = 0;
  for (int b = 0; b < batches + 2; ++b) {  // two warm-up batches
    const double start = nowNs();
    for (int i = 0; i < perBatch; ++i) {
      const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (connect(s, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) ++failures;
      // RST instead of FIN: no TIME_WAIT piles up on the client side over the run.
      const linger l{1, 0};
      setsockopt(s, SOL_SOCKET, SO_LINGER, &l, sizeof l);
      close(s);
    }
    if (b >= 2) perCall.push_back((nowNs() - start) / perBatch);
  }
  stop.store(true);
  shutdown(listener, SHUT_RDWR);
  const int wake = socket(AF_INET, SOCK_STREAM, 0);
  connect(wake, reinterpret_cast<sockaddr*>(&address), sizeof address);
  close(wake);
  acceptor.join();
  close(listener);

  std::sort(perCall.begin(), perCall.end());
  const auto at = [&](double q) {
    return perCall[static_cast<std::size_t>(q * (perCall.size() - 1))];
  };
  std::printf(
      "{\"target\":\"%s\",\"batches\":%d,\"per_batch\":%d,\"ns_per_connect_p50\":%.0f,"
      "\"ns_per_connect_min\":%.0f,\"ns_per_connect_max\":%.0f,\"failures\":%d,"
      "\"preloaded\":%s}\n",
      argv[1], batches, perBatch, at(0.5), perCall.front(), perCall.back(), failures,
      std::getenv("LD_PRELOAD") != nullptr ? "true" : "false");
  return failures == 0 ? 0 : 1;
}
