// Shared plumbing for the load generator: fds, loopback endpoints, clocks, JSON lines.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fwgate::bench {

using Clock = std::chrono::steady_clock;

// Owns one file descriptor; closes it on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept;
  ~Fd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset(int fd = -1);
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_ = -1;
};

// A TCP or UDP endpoint on the loopback interface: 127.0.0.0/8, ::1, or 198.18.0.0/15 (which
// run.sh assigns to lo in its own network namespace); nothing else is accepted.
struct Endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
  std::string text;  // as given, e.g. "127.0.0.1:1080" or "[::1]:1080"

  int family() const { return addr.ss_family; }
  std::uint16_t port() const;
};

// Parses "A.B.C.D:PORT" or "[::1]:PORT"; nullopt unless the address is one of those above.
std::optional<Endpoint> parseLoopbackEndpoint(std::string_view text);

// Start-up helper: parses or throws std::runtime_error naming the option.
Endpoint requireLoopbackEndpoint(std::string_view option, std::string_view text);

// A listening, non-blocking TCP socket (SO_REUSEADDR); throws std::runtime_error on failure.
Fd listenTcp(const Endpoint& where, int backlog = 4096);

// The local port a socket is bound to.
std::uint16_t localPort(int fd);

// A non-blocking TCP socket with connect() started; returns -errno on failure. With a source
// address, binds it first with IP_BIND_ADDRESS_NO_PORT so connect() still picks the port.
int startConnect(const Endpoint& to, const Endpoint* source = nullptr);

// A blocking TCP connect(), the call as an ordinary program makes it (and as a preloaded library
// such as libfwgate-client.so or Dante's socksify hooks it), from `source` when given (with
// IP_BIND_ADDRESS_NO_PORT). Send and receive time out after timeoutSeconds. Returns the connected,
// blocking socket or -errno; *connectNs, when given, gets the time connect() alone took.
int connectBlocking(const Endpoint& to, const Endpoint* source, double timeoutSeconds,
                    std::int64_t* connectNs = nullptr);

// The kernel's peer of a connected socket (syscall(SYS_getpeername): past any preloaded
// library's getpeername() hook, which reports the destination the program asked for).
std::optional<Endpoint> kernelPeer(int fd);

// Whether two endpoints are the same address and port.
bool sameEndpoint(const Endpoint& a, const Endpoint& b);

// The source addresses the load generator rotates through by default: 127.2.0.1-127.2.0.254 for
// IPv4, so its TIME_WAIT sockets neither crowd one address's ports nor touch 127.0.0.1's; none for
// ::1 (there is only one IPv6 loopback address).
std::vector<Endpoint> defaultSourcesFor(const Endpoint& destination);

// Blocking connect + read to EOF, for small control exchanges; nullopt on error or timeout.
std::optional<std::string> fetchLine(const Endpoint& from, std::chrono::milliseconds timeout);

void setNonBlocking(int fd);

// "ECONNREFUSED" and friends; "errno_N" for the rest.
std::string errnoName(int err);

// Seconds on the steady clock since an arbitrary epoch, as a double.
double secondsSince(Clock::time_point start);

// Wall-clock nanoseconds on CLOCK_MONOTONIC (comparable between processes on one host).
std::int64_t monotonicNs();

// The q-quantile (0..1) of an ascending vector, nearest rank; 0 when empty.
std::uint64_t percentile(const std::vector<std::uint32_t>& sorted, double q);

// {"p50","p90","p99","p999","max","mean"} of ascending latencies.
nlohmann::json latencySummary(const std::vector<std::uint32_t>& sorted);

// One JSON object per line on stdout, flushed, so a script can read it while we run.
void emit(const nlohmann::json& record);

// Tags ("key=value" strings from the command line) merged into every record as "tags".
nlohmann::json tagsToJson(const std::map<std::string, std::string>& tags);

// Installs SIGINT/SIGTERM handlers that set a flag and ignores SIGPIPE.
void installStopSignals();
bool stopRequested();

// SIGUSR1 sets a flag that takeCloseAllRequest() returns once and clears.
void installCloseAllSignal();
bool takeCloseAllRequest();

// Error counters by reason, reported as a JSON object.
class ErrorCounts {
 public:
  void add(const std::string& reason, std::uint64_t n = 1) { counts_[reason] += n; }
  std::uint64_t total() const;
  nlohmann::json toJson() const;

 private:
  std::map<std::string, std::uint64_t> counts_;
};

}  // namespace fwgate::bench
