// fwgate-remote-connect-bench: what a remoted connect costs a program, for running under the
// preload library with the control channel in clear and encrypted (bench/control-channel.sh).
// Times COUNT blocking socket() + connect() + close() to HOST:PORT one after the other, after
// WARMUP untimed ones, and prints one JSON line: the median, the 90th percentile and the
// connects per second one thread achieves. With ECHO (bytes, default 0), each connection writes
// that many bytes and reads them back from an echo server before it closes: the time until the
// destination has answered, which is what a connect costs when it returns before the destination
// is reached (fwgate run --kernel, bench/kernel-client.sh). Plain libc: nothing of fwgate is
// linked in.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s IPV4-ADDRESS PORT [COUNT] [WARMUP] [ECHO]\n", argv[0]);
    return 2;
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(std::atoi(argv[2])));
  if (inet_pton(AF_INET, argv[1], &address.sin_addr) != 1) {
    std::fprintf(stderr, "not an IPv4 address: %s\n", argv[1]);
    return 2;
  }
  const int count = argc > 3 ? std::atoi(argv[3]) : 500;
  const int warmup = argc > 4 ? std::atoi(argv[4]) : 20;
  const std::size_t echo = argc > 5 ? static_cast<std::size_t>(std::atoi(argv[5])) : 0;
  std::vector<char> out(echo, 'e');
  std::vector<char> back(echo);
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(count));
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < warmup + count; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
      std::fprintf(stderr, "connect %d: %s\n", i, std::strerror(errno));
      return 1;
    }
    if (echo > 0) {
      std::size_t got = 0;
      bool ok = ::send(fd, out.data(), echo, MSG_NOSIGNAL) == static_cast<ssize_t>(echo);
      while (ok && got < echo) {
        const ssize_t n = ::recv(fd, back.data() + got, echo - got, 0);
        ok = n > 0;
        if (ok) got += static_cast<std::size_t>(n);
      }
      if (!ok || back != out) {
        std::fprintf(stderr, "echo %d: %s\n", i, ok ? "wrong bytes" : std::strerror(errno));
        return 1;
      }
    }
    ::close(fd);
    const auto t1 = std::chrono::steady_clock::now();
    if (i >= warmup) us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::sort(us.begin(), us.end());
  const auto at = [&](double q) { return us[static_cast<std::size_t>(q * (us.size() - 1))]; };
  std::printf("{\"connects\":%d,\"p50_us\":%.1f,\"p90_us\":%.1f,\"per_second\":%.0f}\n", count,
              at(0.5), at(0.9), (warmup + count) / seconds);
  return 0;
}
