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
  int (*bind)(int, const sockaddr*, socklen_t) = nullptr;
  int (*listen)(int, int) = nullptr;
  int (*accept)(int, sockaddr*, socklen_t*) = nullptr;
  int (*accept4)(int, sockaddr*, socklen_t*, int) = nullptr;
  int (*getsockname)(int, sockaddr*, socklen_t*) = nullptr;
  ssize_t (*sendto)(int, const void*, size_t, int, const sockaddr*, socklen_t) = nullptr;
  ssize_t (*sendmsg)(int, const msghdr*, int) = nullptr;
  int (*sendmmsg)(int, mmsghdr*, unsigned int, int) = nullptr;
  ssize_t (*send)(int, const void*, size_t, int) = nullptr;
  ssize_t (*write)(int, const void*, size_t) = nullptr;
  ssize_t (*recvfrom)(int, void*, size_t, int, sockaddr*, socklen_t*) = nullptr;
  ssize_t (*recvmsg)(int, msghdr*, int) = nullptr;
  int (*recvmmsg)(int, mmsghdr*, unsigned int, int, timespec*) = nullptr;
  ssize_t (*recv)(int, void*, size_t, int) = nullptr;
  ssize_t (*read)(int, void*, size_t) = nullptr;
  long (*syscall)(long, ...) = nullptr;
  ssize_t (*readv)(int, const iovec*, int) = nullptr;
  ssize_t (*writev)(int, const iovec*, int) = nullptr;
  ssize_t (*recvfromChk)(int, void*, size_t, size_t, int, sockaddr*, socklen_t*) = nullptr;
  ssize_t (*recvChk)(int, void*, size_t, size_t, int) = nullptr;
  ssize_t (*readChk)(int, void*, size_t, size_t) = nullptr;
  int (*dup)(int) = nullptr;
  int (*dup2)(int, int) = nullptr;
  int (*dup3)(int, int, int) = nullptr;
  int (*fcntl)(int, int, ...) = nullptr;
  int (*fcntl64)(int, int, ...) = nullptr;
  int (*pollChk)(pollfd*, nfds_t, int, size_t) = nullptr;
  int (*ppollChk)(pollfd*, nfds_t, const timespec*, const sigset_t*, size_t) = nullptr;
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

// Addresses between the kernel's and the control protocol's forms.
bool toEndpoint(const sockaddr* address, socklen_t length, protocol::control::Endpoint& out);
// "1.2.3.4:80" / "[::1]:80".
void endpointText(const protocol::control::Endpoint& e, char* out, std::size_t size);
// `e` as a socket of `family` sees it (IPv4 as mapped on AF_INET6); 0 if it cannot be shown.
socklen_t toSockaddr(const protocol::control::Endpoint& e, int family, sockaddr_storage& out);
// What getsockname/getpeername/accept do with an address: copy what fits, report the full size.
void copyAddress(const sockaddr_storage& from, socklen_t fromLength, sockaddr* to,
                 socklen_t* toLength);

// The identity of a socket, stable across dup(): its inode.
struct SocketId {
  dev_t dev = 0;
  ino_t ino = 0;
  friend bool operator==(const SocketId&, const SocketId&) = default;
};
bool socketId(int fd, SocketId& out);
// 0.0.0.0 or ::.
bool isUnspecifiedAddress(const protocol::control::IpAddress& a);
// The library's own control connection is still open under this number (the program did not
// close it, nor put something else there).
bool isOwnSocket(int fd, const SocketId& id);
// Closes the library's control connection, only if the number is still ours.
void closeOwnSocket(int fd, const SocketId& id);

// Remoted connects in progress on non-blocking sockets, and remoted sockets that are connected.
enum class PendingState { Free, Waiting, Failed };
struct Pending {
  PendingState state = PendingState::Free;
  int fd = -1;
  SocketId id;
  int error = 0;
  bool welcomed = false;              // the gateway's Welcome is read; its Connected is awaited
  protocol::control::Endpoint bound;  // the gateway's address toward the destination
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
extern std::atomic<int> g_listenCount;  // remoted listening sockets
extern std::atomic<int> g_udpCount;     // UDP sockets associated with a relay on the gateway

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

// All with the table lock held. A remoted socket: connected through the gateway (its
// destination), or accepted from a remoted listen (its remote peer). `bound` is what getsockname
// reports: the gateway's address on that connection (family 0: the real one).
void addRemoted(int fd, const SocketId& id, const sockaddr* destination, socklen_t length,
                const protocol::control::Endpoint& bound);
// Copies the destination of a remoted socket; false if `id` is not one.
bool findRemoted(const SocketId& id, sockaddr_storage& destination, socklen_t& length);
bool findRemotedBound(const SocketId& id, protocol::control::Endpoint& bound);
// The program has a remoted TCP connection that is still open (its primary connection, for the
// seed's rule that binds of such a program are remoted).
bool anyLiveRemotedLocked();
// An address the gateway reported as its own on one of this program's remoted connections.
bool isGatewayBoundLocked(const protocol::control::IpAddress& address);

// The descriptor numbers under which the program holds one socket (the first, and its
// duplicates): the socket lives while one of them still refers to it.
struct Descriptors {
  static constexpr std::size_t kMax = 8;
  int numbers[kMax] = {-1, -1, -1, -1, -1, -1, -1, -1};
  void add(int fd);
  bool anyHolds(const SocketId& id) const;
};

// Remoted listening sockets: bound on the gateway, tied to a control connection kept open while
// the program's socket lives (a closed socket's entry is dropped when next looked at).
struct Listener {
  bool used = false;
  Descriptors fds;
  SocketId id;
  int controlFd = -1;
  SocketId controlId;  // a program that closes every descriptor may reuse the number
  bool listening = false;
  bool server = false;
  protocol::control::Endpoint bound;  // the gateway's external address and port
  protocol::control::Token token{};
  protocol::control::IpAddress gateway;  // where the gateway's connections come from
};
Listener* findListenerLocked(int fd);
Listener* addListenerLocked(int fd, const SocketId& id);
void freeListenerLocked(Listener& entry);
// Drops the entries of sockets the program has closed, closing their control connections.
void sweepListenersLocked();

// UDP sockets whose datagrams to remote destinations go through a relay on the gateway, tied to
// a control connection kept open while the socket lives.
struct UdpAssociation {
  bool used = false;
  Descriptors fds;
  SocketId id;
  int controlFd = -1;
  SocketId controlId;
  sockaddr_storage relay{};  // the relay, as this socket's family addresses it
  socklen_t relayLength = 0;
  bool connected = false;            // connect()ed to a remote destination:
  protocol::control::Endpoint peer;  // that destination
  sockaddr_storage peerAddress{};    // as the program gave it (for getpeername)
  socklen_t peerLength = 0;
};
// False when `fd` certainly has no association (no lock taken): the fast path of read/write.
bool maybeUdpFd(int fd);
// `to` is a duplicate of `from` (dup, dup2, dup3, fcntl F_DUPFD): it is looked at as `from` is.
void noteDuplicate(int from, int to);
UdpAssociation* findUdpLocked(int fd);
// hooks_udp.cpp, for the connect and getpeername hooks: connect() of a UDP socket (`handled`
// false: make the real call), and the remote destination of a connected associated socket.
int connectUdp(int fd, const sockaddr* address, socklen_t length, bool& handled);
bool udpPeerName(int fd, sockaddr* address, socklen_t* length);
UdpAssociation* addUdpLocked(int fd, const SocketId& id);
void freeUdpLocked(UdpAssociation& entry);

// Names the library resolved at the gateway, by address, for the Connect's name hint.
void rememberName(const protocol::control::IpAddress& address, const char* name);
bool nameFor(const protocol::control::IpAddress& address, char* out, std::size_t size);

// epoll data of our own registrations: a tag in the high bits, the fd in the low 32.
inline constexpr std::uint64_t kEpollTag = 0xF3A75C0000000000ULL;
inline constexpr std::uint64_t kEpollTagMask = 0xFFFFFFFF00000000ULL;

}  // namespace fwgate::client::preload
