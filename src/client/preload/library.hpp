// The preload library's process-wide state: the real libc functions (resolved once, with a check
// that dlsym did not hand back our own hook), the per-thread "inside the library" guard that makes
// every hook a pass-through for the library's own calls, the configuration (loaded once, on first
// need), the debug line, and the tables of remoted sockets.
#pragma once

#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdint>

#include "client/client_config.hpp"
#include "client/gateway_link.hpp"
#include "client/preload/socket_table.hpp"

namespace fwgate::client::preload {

// The real libc functions, one member per line of hooks.def.
struct RealFunctions {
#define FWGATE_HOOK(field, symbol, result, parameters) result(*field) parameters = nullptr;
#include "client/preload/hooks.def"
#undef FWGATE_HOOK
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

// Every lock the library takes: held only by library code (t_inside is raised first, so a signal
// handler that interrupts the holder and calls a hooked function passes straight through instead
// of waiting for a lock its own thread holds), and registered with pthread_atfork (a fork while
// another thread holds it leaves the child's copy unlocked). Never nested the other way round:
// the tables lock is taken before the names lock.
struct LibraryLock {
  explicit LibraryLock(pthread_mutex_t& mutex) : mutex_(mutex) {
    ++t_inside;
    pthread_mutex_lock(&mutex_);
  }
  ~LibraryLock() {
    pthread_mutex_unlock(&mutex_);
    --t_inside;
  }
  LibraryLock(const LibraryLock&) = delete;
  LibraryLock& operator=(const LibraryLock&) = delete;

 private:
  pthread_mutex_t& mutex_;
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

// Addresses between the kernel's and the control protocol's forms.
bool toEndpoint(const sockaddr* address, socklen_t length, protocol::control::Endpoint& out);
// "1.2.3.4:80" / "[::1]:80".
void endpointText(const protocol::control::Endpoint& e, char* out, std::size_t size);
// `e` as a socket of `family` sees it (IPv4 as mapped on AF_INET6); 0 if it cannot be shown.
socklen_t toSockaddr(const protocol::control::Endpoint& e, int family, sockaddr_storage& out);
// What getsockname/getpeername/accept do with an address: copy what fits, report the full size.
void copyAddress(const sockaddr_storage& from, socklen_t fromLength, sockaddr* to,
                 socklen_t* toLength);

bool socketId(int fd, SocketId& out);
// 0.0.0.0 or ::.
bool isUnspecifiedAddress(const protocol::control::IpAddress& a);
// The library's own control connection is still open under this number (the program did not
// close it, nor put something else there).
bool isOwnSocket(int fd, const SocketId& id);
// Closes the library's control connection, only if the number is still ours.
void closeOwnSocket(int fd, const SocketId& id);

// What the library knows of one of the program's sockets (one entry a socket, whatever its
// descriptor numbers; tables.cpp).
enum class SocketKind : std::uint8_t {
  None = 0,
  Pending = 1,   // a remoted connect in progress on a non-blocking socket (or failed, unreported)
  Remoted = 2,   // connected through the gateway, or accepted from a remoted listen
  Listener = 3,  // bound (and listening) on the gateway
  Udp = 4,       // its datagrams to remote destinations go through a relay on the gateway
};
enum class PendingState : std::uint8_t {
  Connecting = 0,  // the TCP connection to the gateway is being made
  Waiting = 1,     // the request is sent: the gateway's Welcome and Connected are awaited
  Failed = 2,      // settled with `error`, not yet reported to the program
  Sealing = 3,     // the agent seals the request: its Result is awaited on channel.agent
  Opening = 4,     // the agent opens the gateway's answer: its Result is awaited likewise
};
struct SocketEntry {
  SocketId id;
  Descriptors fds;
  std::uint8_t tag = 0;  // SocketKind
  SocketKind kind() const { return static_cast<SocketKind>(tag); }

  // Pending, Remoted: the destination as the program gave it (getpeername), or the remote peer of
  // an accepted connection. Udp: the remote destination it is connected to, as given.
  sockaddr_storage peer{};
  socklen_t peerLength = 0;
  // Remoted, Listener: what getsockname reports, the gateway's address (family 0: the real one).
  protocol::control::Endpoint bound;

  // Pending.
  PendingState state = PendingState::Connecting;
  // The control exchange's channel (in clear, or through the agent) and its progress: the
  // Welcome read, the Connected awaited. Listener: the agent connection kept from Bind to Listen.
  Channel channel;
  SocketId agentId;       // of channel.agent, so that a descriptor the program reused is not closed
  bool hasEpoll = false;  // the application's epoll registration is replaced by ours
  int error = 0;
  int epfd = 0;
  int epollNumber = 0;  // the descriptor number registered there
  epoll_event appEvent{};
  char detail[160] = {};

  // Listener, Udp: the control connection kept open while the program's socket lives (`control`
  // false: none yet).
  bool control = false;
  int controlFd = 0;
  SocketId controlId;
  // Listener.
  bool listening = false;
  bool server = false;
  protocol::control::Token token{};
  protocol::control::IpAddress gateway;  // where the gateway's connections come from
  // Udp.
  bool associating = false;  // a thread is associating it with the gateway right now
  bool connected = false;    // connect()ed to a remote destination (`udpPeer`, `peer`)
  sockaddr_storage relay{};  // the relay, as this socket's family addresses it
  socklen_t relayLength = 0;
  protocol::control::Endpoint udpPeer;
  // Udp published (RemoteBindUdpPorts): the external port asked (0: not published); `bound` is
  // the gateway's external address and that port, what getsockname reports.
  std::uint16_t publishPort = 0;
};

// Counts of entries by kind (read without the lock: a zero lets a hook pass straight through).
extern std::atomic<int> g_pendingCount;
extern std::atomic<int> g_remotedCount;
extern std::atomic<int> g_taggedCount;  // epoll registrations of ours
extern std::atomic<int> g_listenCount;
extern std::atomic<int> g_udpCount;

// The table lock. Functions named *Locked expect it held; the others take it.
struct TablesLock : LibraryLock {
  TablesLock();
};
pthread_mutex_t& tablesMutex();

// The entry of the socket descriptor `fd` holds now, of any kind (nullptr: none). A number the
// table remembered for a socket that is gone is forgotten, the entry freed if nothing holds it.
SocketEntry* findLocked(int fd);
// The same, only of one kind.
SocketEntry* findKindLocked(int fd, SocketKind kind);
inline SocketEntry* findPendingLocked(int fd) {
  return findKindLocked(fd, SocketKind::Pending);
}
inline SocketEntry* findListenerLocked(int fd) {
  return findKindLocked(fd, SocketKind::Listener);
}
inline SocketEntry* findUdpLocked(int fd) {
  return findKindLocked(fd, SocketKind::Udp);
}
// A new entry (the socket's existing entry, of whatever kind, is replaced). nullptr when the
// table is full of live sockets: the caller fails the program's call with ENOBUFS.
SocketEntry* addLocked(int fd, const SocketId& id, SocketKind kind);
void freeLocked(SocketEntry& entry);
// A pending connect that settled into a remoted socket.
void makeRemotedLocked(SocketEntry& entry);
// Whether `fd` may have an entry (of `kind`), without the lock: false is certain for numbers the
// table has seen; an unseen duplicate is found again when the slow path looks it up by identity.
bool maybeTracked(int fd);
bool maybeKind(int fd, SocketKind kind);
// The fast path of read/write/send/recv: false when `fd` certainly has no association.
inline bool maybeUdpFd(int fd) {
  return g_udpCount.load(std::memory_order_relaxed) != 0 && maybeKind(fd, SocketKind::Udp);
}
// `to` is a duplicate of `from` (dup, dup2, dup3, fcntl F_DUPFD): it is the same socket to the
// table.
void noteDuplicate(int from, int to);
// hooks_udp.cpp, for the connect hook: connect() of a UDP socket (`handled` false: make the
// real call).
int connectUdp(int fd, const sockaddr* address, socklen_t length, bool& handled);
// hooks_udp.cpp, for the bind hook: bind() of a UDP socket to a port in RemoteBindUdpPorts is
// bound locally and published on the gateway (`handled` false: make the real bind).
int bindUdp(int fd, const sockaddr* address, socklen_t length, bool& handled);
// Every descriptor number that holds the entry's socket now is remembered under it (duplicates
// the program made before the library took an interest in the socket).
void rememberEveryNumberLocked(SocketEntry& entry);

// Pending connects. Reads the gateway's answer without blocking; true when the entry is settled
// (connected: it is a remoted socket now; failed: state Failed).
bool progressLocked(SocketEntry& entry);
void settleLocked(SocketEntry& entry, int error);
// The poll events that move a pending connect on: POLLOUT while connecting to the gateway,
// POLLIN while its answer is awaited.
short pendingEvents(const SocketEntry& entry);
// The descriptor a pending connect waits on now: the program's socket, or the agent connection
// while the agent has the next move (Sealing, Opening).
int pendingFd(const SocketEntry& entry);
// A pending connect's epoll registrations for its state: ours on the program's socket (nothing
// while the agent has the move) and the agent connection's, tagged with the program's number.
void watchLocked(SocketEntry& entry);

// The program has a remoted TCP connection that is still open (its primary connection, for the
// seed's rule that binds of such a program are remoted).
bool anyLiveRemotedLocked();
// An address the gateway reported as its own on one of this program's remoted connections.
bool isGatewayBoundLocked(const protocol::control::IpAddress& address);
void rememberGatewayAddressLocked(const protocol::control::IpAddress& address);
// Listener and Udp entries: the control connection, adopted by the entry (closed when it is
// freed).
void adoptControlLocked(SocketEntry& entry, int controlFd);

// Room for `count` elements: up to N on the stack, more in a private mapping, so that no hook
// takes more than a few KiB of its caller's stack (green threads and coroutines run on small
// ones). data() is nullptr when the mapping failed.
template <typename T, std::size_t N>
class ScratchArray {
 public:
  explicit ScratchArray(std::size_t count) : bytes_(count * sizeof(T)) {
    if (count <= N) {
      data_ = local_;
      bytes_ = 0;
      return;
    }
    void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    data_ = p == MAP_FAILED ? nullptr : static_cast<T*>(p);
    if (data_ == nullptr) bytes_ = 0;
  }
  ~ScratchArray() {
    if (bytes_ != 0) ::munmap(data_, bytes_);
  }
  ScratchArray(const ScratchArray&) = delete;
  ScratchArray& operator=(const ScratchArray&) = delete;
  T* data() { return data_; }
  T& operator[](std::size_t i) { return data_[i]; }

 private:
  T local_[N];
  T* data_ = nullptr;
  std::size_t bytes_ = 0;
};

// Names the library resolved at the gateway, by address, for the Connect's name hint.
void rememberName(const protocol::control::IpAddress& address, const char* name);
bool nameFor(const protocol::control::IpAddress& address, char* out, std::size_t size);

// epoll data of our own registrations: a tag in the high bits, the fd in the low 32.
inline constexpr std::uint64_t kEpollTag = 0xF3A75C0000000000ULL;
inline constexpr std::uint64_t kEpollTagMask = 0xFFFFFFFF00000000ULL;

}  // namespace fwgate::client::preload
