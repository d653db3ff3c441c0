// The preload library's process-wide state: the real libc functions (resolved once, with a check
// that dlsym did not hand back our own hook), the per-thread "inside the library" guard that makes
// every hook a pass-through for the library's own calls, the configuration (loaded once, on first
// need), the debug line, and the tables of remoted sockets.
#pragma once

#include <netdb.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdint>

#include "client/client_config.hpp"
#include "client/gateway_link.hpp"

namespace fwgate::client::preload {

struct RealFunctions {
  int (*connect)(int, const sockaddr*, socklen_t) = nullptr;
  int (*getaddrinfo)(const char*, const char*, const addrinfo*, addrinfo**) = nullptr;
  hostent* (*gethostbyname)(const char*) = nullptr;
  hostent* (*gethostbyname2)(const char*, int) = nullptr;
  int (*gethostbyname_r)(const char*, hostent*, char*, size_t, hostent**, int*) = nullptr;
  int (*gethostbyname2_r)(const char*, int, hostent*, char*, size_t, hostent**, int*) = nullptr;
  int (*getpeername)(int, sockaddr*, socklen_t*) = nullptr;
  int (*getsockopt)(int, int, int, void*, socklen_t*) = nullptr;
  int (*poll)(pollfd*, nfds_t, int) = nullptr;
  int (*ppoll)(pollfd*, nfds_t, const timespec*, const sigset_t*) = nullptr;
  int (*select)(int, fd_set*, fd_set*, fd_set*, timeval*) = nullptr;
  int (*pselect)(int, fd_set*, fd_set*, fd_set*, const timespec*, const sigset_t*) = nullptr;
  int (*epoll_ctl)(int, int, int, epoll_event*) = nullptr;
  int (*epoll_wait)(int, epoll_event*, int, int) = nullptr;
  int (*epoll_pwait)(int, epoll_event*, int, int, const sigset_t*) = nullptr;
  int (*epoll_pwait2)(int, epoll_event*, int, const timespec*, const sigset_t*) = nullptr;
};
const RealFunctions& real();

// Nonzero while this thread runs library code: hooks then call straight through.
extern thread_local int t_inside __attribute__((tls_model("initial-exec")));
struct Inside {
  Inside() { ++t_inside; }
  ~Inside() { --t_inside; }
  Inside(const Inside&) = delete;
  Inside& operator=(const Inside&) = delete;
};

struct Global {
  ClientConfig config;
  GatewayEndpoints gateway;
  Identity identity;
  bool active = false;          // a gateway is known and resolved, and the program is not disabled
  int debug = 0;                // FWGATE_DEBUG: 1 failures, 2 every decision
  int gatewayTimeoutMs = 5000;  // reaching the gateway (FWGATE_TIMEOUT, ms)
  int replyTimeoutMs = 120000;  // the gateway's answer to a remoted connect or resolution
};
// Loads the configuration on first use (thread-safe, once per process).
const Global& global();

// One line on stderr, "fwgate: PROGRAM[PID]: ...", when FWGATE_DEBUG >= level.
void debugLine(int level, const char* format, ...) __attribute__((format(printf, 2, 3)));

// The identity of a socket, stable across dup(): its inode.
struct SocketId {
  dev_t dev = 0;
  ino_t ino = 0;
  friend bool operator==(const SocketId&, const SocketId&) = default;
};
bool socketId(int fd, SocketId& out);

// Remoted connects in progress on non-blocking sockets, and remoted sockets that are connected.
enum class PendingState { Free, Waiting, Failed };
struct Pending {
  PendingState state = PendingState::Free;
  int fd = -1;
  SocketId id;
  int error = 0;
  bool welcomed = false;  // the gateway's Welcome is read; its Connected is awaited
  sockaddr_storage destination{};
  socklen_t destinationLength = 0;
  bool hasEpoll = false;  // the application's epoll registration is replaced by ours
  int epfd = -1;
  epoll_event appEvent{};
  char detail[160] = {};
};

// All table functions take the table lock themselves unless named *Locked.
extern std::atomic<int> g_pendingCount;  // entries not Free
extern std::atomic<int> g_remotedCount;
extern std::atomic<int> g_taggedCount;  // epoll registrations of ours

void lockTables();
void unlockTables();
struct TablesLock {
  TablesLock() { lockTables(); }
  ~TablesLock() { unlockTables(); }
  TablesLock(const TablesLock&) = delete;
  TablesLock& operator=(const TablesLock&) = delete;
};
// The pending entry for fd, if it is still the same socket (a stale entry is freed).
Pending* findPendingLocked(int fd);
Pending* addPendingLocked(int fd, const SocketId& id, const sockaddr* destination,
                          socklen_t length);
void freePendingLocked(Pending& entry);
// Reads the gateway's answer without blocking; true when the entry is settled (connected: the
// entry is freed and the socket recorded as remoted; failed: state Failed).
bool progressLocked(Pending& entry);
void settleLocked(Pending& entry, int error);

// Both with the table lock held.
void addRemoted(const SocketId& id, const sockaddr* destination, socklen_t length);
// Copies the destination of a remoted socket; false if `id` is not one.
bool findRemoted(const SocketId& id, sockaddr_storage& destination, socklen_t& length);

// Names the library resolved at the gateway, by address, for the Connect's name hint.
void rememberName(const protocol::control::IpAddress& address, const char* name);
bool nameFor(const protocol::control::IpAddress& address, char* out, std::size_t size);

// epoll data of our own registrations: a tag in the high bits, the fd in the low 32.
inline constexpr std::uint64_t kEpollTag = 0xF3A75C0000000000ULL;
inline constexpr std::uint64_t kEpollTagMask = 0xFFFFFFFF00000000ULL;

}  // namespace fwgate::client::preload
