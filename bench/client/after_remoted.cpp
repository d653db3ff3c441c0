// fwgate-client-table-bench: what the preload library's hooks cost a long-lived program as its
// remoted connections pile up (bench/client-overhead.sh --table). Run in a network namespace
// whose only route is the internal network, so REMOTE is outside the local address table.
//
// The program keeps its first remoted connection open and makes (and closes) more, up to each
// checkpoint; at every checkpoint it times, in batches, the calls a busy program makes all the
// time: getpeername() of a local TCP connection, getpeername() of the first remoted connection,
// socket() + connect() + close() to a listener on LOCAL (its own address: a LAT lookup), and a
// 64-byte write() + read() over a socketpair. One JSON line per checkpoint: the median per-call
// time over the batches (ns). Without the library (REMOTE unreachable) only checkpoint 0 runs and
// the remoted getpeername is absent. Plain libc: nothing of fwgate is linked in.
//
//   fwgate-client-table-bench LOCAL REMOTE:PORT CHECKPOINTS [BATCHES] [PER-BATCH]
//   e.g. fwgate-client-table-bench 10.254.1.2 10.254.2.2:9 0,1000,10000 30 2000
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

double nowNs() {
  return std::chrono::duration<double, std::nano>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

template <typename F>
double medianNs(int batches, int perBatch, F&& call) {
  std::vector<double> perCall;
  for (int b = 0; b < batches; ++b) {
    const double start = nowNs();
    for (int i = 0; i < perBatch; ++i) call();
    perCall.push_back((nowNs() - start) / perBatch);
  }
  std::sort(perCall.begin(), perCall.end());
  return perCall[perCall.size() / 2];
}

bool parseEndpoint(const char* text, sockaddr_in& out) {
  std::string s(text);
  const auto colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  out = sockaddr_in{};
  out.sin_family = AF_INET;
  out.sin_port = htons(static_cast<std::uint16_t>(std::atoi(s.c_str() + colon + 1)));
  return inet_pton(AF_INET, s.substr(0, colon).c_str(), &out.sin_addr) == 1;
}

int connectTo(const sockaddr_in& a) {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) return -1;
  if (::connect(s, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    ::close(s);
    return -1;
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s LOCAL REMOTE:PORT CHECKPOINTS [BATCHES] [PER-BATCH]\n",
                 argv[0]);
    return 2;
  }
  sockaddr_in local{};
  local.sin_family = AF_INET;
  sockaddr_in remote{};
  if (inet_pton(AF_INET, argv[1], &local.sin_addr) != 1 || !parseEndpoint(argv[2], remote)) {
    std::fprintf(stderr, "bad address\n");
    return 2;
  }
  std::vector<long> checkpoints;
  for (const char* p = argv[3]; *p != '\0';) {
    checkpoints.push_back(std::strtol(p, const_cast<char**>(&p), 10));
    if (*p == ',') ++p;
  }
  const int batches = argc > 4 ? std::atoi(argv[4]) : 30;
  const int perBatch = argc > 5 ? std::atoi(argv[5]) : 2000;

  // A local listener on LOCAL that accepts and closes (for the connect timing and the local
  // connection whose getpeername is timed).
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(listener, reinterpret_cast<const sockaddr*>(&local), sizeof local) != 0 ||
      ::listen(listener, 4096) != 0) {
    std::perror("listen");
    return 1;
  }
  socklen_t length = sizeof local;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&local), &length);
  std::atomic<bool> stop{false};
  std::vector<int> kept;  // the accepted end of the timed local connection
  std::thread acceptor([&] {
    while (!stop.load()) {
      const int c = ::accept(listener, nullptr, nullptr);
      if (c < 0) continue;
      if (kept.empty()) {
        kept.push_back(c);
      } else {
        ::close(c);
      }
    }
  });
  const int localConnection = connectTo(local);
  int pair[2];
  ::socketpair(AF_UNIX, SOCK_STREAM, 0, pair);

  const int first = connectTo(remote);
  long made = first >= 0 ? 1 : 0;
  for (const long checkpoint : checkpoints) {
    if (checkpoint > 0 && first < 0) break;
    for (; made < checkpoint; ++made) {
      const int s = connectTo(remote);
      if (s < 0) {
        std::perror("remoted connect");
        return 1;
      }
      linger l{1, 0};  // a reset: no TIME_WAIT to run the ports out
      ::setsockopt(s, SOL_SOCKET, SO_LINGER, &l, sizeof l);
      ::close(s);
    }
    // The gateway finishes with the connections just closed before anything is timed.
    if (checkpoint > 0) std::this_thread::sleep_for(std::chrono::seconds(2));
    sockaddr_storage peer{};
    const double localPeer = medianNs(batches, perBatch, [&] {
      socklen_t n = sizeof peer;
      ::getpeername(localConnection, reinterpret_cast<sockaddr*>(&peer), &n);
    });
    double remotedPeer = -1;
    bool remotedRight = false;
    if (first >= 0) {
      remotedPeer = medianNs(batches, perBatch, [&] {
        socklen_t n = sizeof peer;
        ::getpeername(first, reinterpret_cast<sockaddr*>(&peer), &n);
      });
      const auto* sin = reinterpret_cast<const sockaddr_in*>(&peer);
      remotedRight =
          sin->sin_addr.s_addr == remote.sin_addr.s_addr && sin->sin_port == remote.sin_port;
    }
    const double connectLocal = medianNs(batches, perBatch / 10 + 1, [&] {
      const int s = connectTo(local);
      if (s >= 0) ::close(s);
    });
    char byte[64] = {};
    const double writeRead = medianNs(batches, perBatch, [&] {
      if (::write(pair[0], byte, sizeof byte) == sizeof byte) {
        [[maybe_unused]] const ssize_t n = ::read(pair[1], byte, sizeof byte);
      }
    });
    std::printf(
        "{\"remoted\":%ld,\"getpeername_local_ns\":%.0f,\"getpeername_remoted_ns\":%.0f,"
        "\"remoted_peer_right\":%s,\"connect_local_ns\":%.0f,\"write_read_64_ns\":%.0f}\n",
        first >= 0 ? made : 0, localPeer, remotedPeer, remotedRight ? "true" : "false",
        connectLocal, writeRead);
    std::fflush(stdout);
  }
  stop.store(true);
  ::shutdown(listener, SHUT_RDWR);
  const int wake = connectTo(local);
  if (wake >= 0) ::close(wake);
  acceptor.join();
  return 0;
}
