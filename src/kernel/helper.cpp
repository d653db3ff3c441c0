#include "kernel/helper.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>

#include "client/discovery.hpp"
#include "kernel/dns_message.hpp"

namespace fwgate::kernel {

namespace control = protocol::control;

namespace {

constexpr std::uint32_t kAnswerTtl = 60;  // seconds: a program asks again soon, as it would anyway
constexpr int kMaxThreads = 1024;

int listenOn(int type, std::uint16_t port, bool blocking = false) {
  const int fd = ::socket(AF_INET, type | SOCK_CLOEXEC | (blocking ? 0 : SOCK_NONBLOCK), 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      (type == SOCK_STREAM && ::listen(fd, 4096) != 0)) {
    const int error = errno;
    ::close(fd);
    errno = error;
    return -1;
  }
  return fd;
}

std::uint16_t portOf(int fd) {
  sockaddr_in a{};
  socklen_t length = sizeof a;
  return ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &length) == 0 ? ntohs(a.sin_port) : 0;
}

// Closes with a reset: what the program sees for a refused or failed connection.
void reset(int fd) {
  const linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd);
}

std::string keyOf(const control::IpAddress& a) {
  return std::string(reinterpret_cast<const char*>(a.bytes.data()), a.size()) +
         static_cast<char>(a.family);
}

std::string text(const control::Endpoint& e) {
  char address[64];
  client::formatAddress(e.address, address, sizeof address);
  std::string out;
  if (e.address.family == 6) out += '[';
  out += address;
  if (e.address.family == 6) out += ']';
  out += ':';
  out += std::to_string(e.port);
  return out;
}

// The program's name: its executable's, else the thread's as the kernel recorded it.
std::string programOf(const Origin& origin) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%u/exe", origin.pid);
  char target[4096];
  const ssize_t n = ::readlink(path, target, sizeof target - 1);
  if (n > 0) {
    target[n] = '\0';
    std::string s(target);
    if (const auto at = s.rfind(" (deleted)"); at != std::string::npos) s.erase(at);
    return s.substr(s.rfind('/') + 1);
  }
  return origin.comm;
}

std::string lookUpAccount(std::uint32_t uid) {
  passwd pw{};
  passwd* found = nullptr;
  char buffer[1024];
  if (::getpwuid_r(uid, &pw, buffer, sizeof buffer, &found) == 0 && found != nullptr) {
    return pw.pw_name;
  }
  return "uid " + std::to_string(uid);
}

// Both directions of a connection until both have ended; a hard error on either side resets the
// program's. Non-blocking sockets. A direction starts by copying through a buffer (a short
// exchange costs no pipe) and moves to splice(2) through a pipe of its own once it has carried
// kSpliceAfter bytes (bulk transfers stay in the kernel).
void relay(int program, int gateway) {
  constexpr std::size_t kSpliceAfter = 256 * 1024;
  constexpr std::size_t kChunk = 1 << 20;
  constexpr std::size_t kBuffer = 64 * 1024;
  struct Direction {
    int from, to;
    std::vector<char> buffer;  // copy mode: [at, at + held) waits to be written
    std::size_t at = 0;
    int pipe[2] = {-1, -1};  // splice mode
    std::size_t held = 0;    // bytes read and not yet written, in either mode
    std::size_t carried = 0;
    bool eof = false;
    bool done = false;
  };
  Direction d[2] = {{program, gateway, std::vector<char>(kBuffer)},
                    {gateway, program, std::vector<char>(kBuffer)}};
  bool failed = false;
  const auto hard = [](ssize_t n) { return n < 0 && errno != EAGAIN && errno != EINTR; };
  while (!failed && !(d[0].done && d[1].done)) {
    pollfd p[2] = {{program, 0, 0}, {gateway, 0, 0}};
    for (int i = 0; i < 2; ++i) {
      const Direction& x = d[i];
      if (x.done) continue;
      if (!x.eof && x.held < (x.pipe[0] >= 0 ? kChunk : 1)) p[i].events |= POLLIN;  // from p[i]
      if (x.held > 0) p[1 - i].events |= POLLOUT;
    }
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2 && !failed; ++i) {
      Direction& x = d[i];
      if (x.done) continue;
      // In splice mode the pipe takes more while it still holds some: reads and writes overlap.
      const bool room = x.pipe[0] >= 0 ? x.held < kChunk : x.held == 0;
      if (!x.eof && room && (p[i].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        if (x.pipe[0] < 0 && x.carried >= kSpliceAfter) {
          if (::pipe2(x.pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
            failed = true;
            break;
          }
        }
        const ssize_t n = x.pipe[0] >= 0
                              ? ::splice(x.from, nullptr, x.pipe[1], nullptr, kChunk,
                                         SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
                              : ::recv(x.from, x.buffer.data(), x.buffer.size(), MSG_DONTWAIT);
        if (n > 0) {
          x.held += static_cast<std::size_t>(n);
          if (x.pipe[0] < 0) x.at = 0;
        } else if (n == 0) {
          x.eof = true;
        } else if (hard(n)) {
          failed = true;
        }
      }
      while (x.held > 0) {
        const ssize_t n = x.pipe[0] >= 0 ? ::splice(x.pipe[0], nullptr, x.to, nullptr, x.held,
                                                    SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
                                         : ::send(x.to, x.buffer.data() + x.at, x.held,
                                                  MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n <= 0) {
          failed = hard(n);
          break;
        }
        x.held -= static_cast<std::size_t>(n);
        x.at += static_cast<std::size_t>(n);
        x.carried += static_cast<std::size_t>(n);
      }
      if (x.eof && x.held == 0) {
        ::shutdown(x.to, SHUT_WR);
        x.done = true;
      }
    }
  }
  for (auto& x : d) {
    if (x.pipe[0] >= 0) ::close(x.pipe[0]);
    if (x.pipe[1] >= 0) ::close(x.pipe[1]);
  }
  if (failed) {
    reset(program);
  } else {
    ::close(program);
  }
  ::close(gateway);
}

}  // namespace

std::string Helper::accountOf(std::uint32_t uid) {
  {
    std::lock_guard lock(mutex_);
    if (const auto found = accounts_.find(uid); found != accounts_.end()) return found->second;
  }
  std::string name = lookUpAccount(uid);
  std::lock_guard lock(mutex_);
  return accounts_.emplace(uid, std::move(name)).first->second;
}

std::vector<std::uint32_t> nameserversOf(std::string_view resolvConf) {
  // resolv.conf as the client core reads it for discovery (and the system resolver does).
  client::ResolverConf conf;
  client::parseResolvConf(resolvConf, conf);
  std::vector<std::uint32_t> out;
  for (std::size_t i = 0; i < conf.serverCount; ++i) {
    if (conf.servers[i].ss_family == AF_INET) {
      out.push_back(reinterpret_cast<const sockaddr_in&>(conf.servers[i]).sin_addr.s_addr);
    }
  }
  if (out.empty()) out.push_back(htonl(INADDR_LOOPBACK));
  return out;
}

Helper::Helper(Interceptor& interceptor, const client::ClientConfig& config, int timeoutMs)
    : interceptor_(interceptor),
      config_(config),
      current_(std::make_shared<client::ClientConfig>(config)),
      timeoutMs_(timeoutMs) {}

std::shared_ptr<const client::ClientConfig> Helper::current() {
  std::lock_guard lock(mutex_);
  return current_;
}

bool Helper::installLocal(const client::ClientConfig& config, std::string& error) {
  std::vector<control::AddressRange> lat;
  for (std::size_t i = 0; i < config.lat.size(); ++i) lat.push_back(config.lat[i]);
  return interceptor_.setLocal(lat, error);
}

bool Helper::refresh(const client::ClientConfig& fresh, std::string& error) {
  auto next = std::make_shared<const client::ClientConfig>(fresh);
  if (!installLocal(*next, error)) return false;
  std::lock_guard lock(mutex_);
  current_ = std::move(next);
  return true;
}

Helper::~Helper() {
  for (const int fd : {tcp_, tcp6_, dnsUdp_, dnsTcp_, udp_}) {
    if (fd >= 0) ::close(fd);
  }
}

bool Helper::open(std::string& error) {
  char server[300];
  client::formatServer(config_.server, server, sizeof server);
  server_ = server;
  client::fillIdentity(config_, identity_);
  if (config_.server.empty()) {
    error = "no gateway is configured (FWGATE_SERVER, client.ini, or fwgate detect)";
    return false;
  }
  if (client::resolveServer(config_.server, gateway_) != 0) {
    error = "cannot resolve the gateway " + server_;
    return false;
  }
  tcp_ = listenOn(SOCK_STREAM, 0, true);  // accept() blocks in the acceptor threads
  // The name service: UDP and TCP on one port.
  for (int attempt = 0; attempt < 16 && dnsTcp_ < 0; ++attempt) {
    if (dnsUdp_ >= 0) ::close(dnsUdp_);
    dnsUdp_ = listenOn(SOCK_DGRAM, 0);
    if (dnsUdp_ >= 0) dnsTcp_ = listenOn(SOCK_STREAM, portOf(dnsUdp_));
  }
  if (tcp_ < 0 || dnsUdp_ < 0 || dnsTcp_ < 0) {
    error = std::string("cannot listen on 127.0.0.1: ") + std::strerror(errno);
    return false;
  }
  char resolvConf[8192];
  const long n = client::readWholeFile("/etc/resolv.conf", resolvConf, sizeof resolvConf);
  resolvers_ = nameserversOf(n > 0 ? std::string_view(resolvConf, static_cast<std::size_t>(n))
                                   : std::string_view());
  if (!installLocal(config_, error) || !interceptor_.setResolvers(resolvers_, error)) {
    return false;
  }
  const int probe = client::openControl(gateway_, timeoutMs_);
  if (probe >= 0) ::close(probe);
  gatewayAnswers(probe >= 0, errno);
  // Datagrams to remote destinations arrive on 127.64.0.0 + their slot: any address, this port;
  // IP_PKTINFO says which (and sets the source of the answers).
  udp_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_in any{};
  any.sin_family = AF_INET;
  const int one = 1;
  if (udp_ < 0 || ::setsockopt(udp_, IPPROTO_IP, IP_PKTINFO, &one, sizeof one) != 0 ||
      ::bind(udp_, reinterpret_cast<sockaddr*>(&any), sizeof any) != 0) {
    error = std::string("cannot open the UDP port: ") + std::strerror(errno);
    return false;
  }
  // Native IPv6 connects to [::1], when this namespace has it; else they are left alone.
  tcp6_ = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in6 loopback6{};
  loopback6.sin6_family = AF_INET6;
  loopback6.sin6_addr = in6addr_loopback;
  std::uint16_t port6 = 0;
  if (tcp6_ >= 0 && ::bind(tcp6_, reinterpret_cast<sockaddr*>(&loopback6), sizeof loopback6) == 0 &&
      ::listen(tcp6_, 4096) == 0) {
    socklen_t length = sizeof loopback6;
    ::getsockname(tcp6_, reinterpret_cast<sockaddr*>(&loopback6), &length);
    port6 = ntohs(loopback6.sin6_port);
  } else if (tcp6_ >= 0) {
    ::close(tcp6_);
    tcp6_ = -1;
  }
  return interceptor_.setPorts(portOf(tcp_), portOf(dnsUdp_), portOf(udp_), port6, error);
}

void Helper::gatewayAnswers(bool answers, int error) {
  std::lock_guard lock(mutex_);
  if (interceptor_.refusing() == !answers) return;
  interceptor_.setRefuse(!answers);
  if (answers) {
    std::fprintf(stderr, "fwgate run: the gateway %s answers again\n", server_.c_str());
  } else {
    std::fprintf(stderr,
                 "fwgate run: the gateway %s is unreachable (%s): connections outside the local "
                 "network fail (EPERM) until it answers\n",
                 server_.c_str(), std::strerror(error));
  }
}

void Helper::watchGateway(const volatile std::sig_atomic_t& stop) {
  while (stop == 0) {
    for (int i = 0; i < 10 && stop == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (stop != 0 || !interceptor_.refusing()) continue;
    const int probe = client::openControl(gateway_, timeoutMs_);
    const int error = errno;
    if (probe >= 0) ::close(probe);
    gatewayAnswers(probe >= 0, error);
  }
}

void Helper::remember(const control::IpAddress& address, const std::string& name) {
  std::lock_guard lock(mutex_);
  if (names_.size() >= 4096) names_.clear();
  names_[keyOf(address)] = name;
}

std::string Helper::nameOf(const control::IpAddress& address) {
  std::lock_guard lock(mutex_);
  const auto found = names_.find(keyOf(address));
  return found == names_.end() ? std::string() : found->second;
}

void Helper::serve(const volatile std::sig_atomic_t& stop) {
  std::thread watching([this, &stop] { watchGateway(stop); });
  {
    std::lock_guard lock(mutex_);
    ++threads_;
  }
  std::thread(&Helper::acceptConnections, this, tcp_).detach();
  if (tcp6_ >= 0) {
    std::lock_guard lock(mutex_);
    ++threads_;
    std::thread(&Helper::acceptConnections, this, tcp6_).detach();
  }
  while (stop == 0) {
    pollfd p[3] = {{udp_, POLLIN, 0}, {dnsUdp_, POLLIN, 0}, {dnsTcp_, POLLIN, 0}};
    if (::poll(p, 3, 200) <= 0) continue;
    if (p[0].revents != 0) takeDatagrams();
    if (p[1].revents != 0) {
      for (;;) {
        std::vector<std::uint8_t> query(4096);
        sockaddr_storage from{};
        socklen_t length = sizeof from;
        const ssize_t n = ::recvfrom(dnsUdp_, query.data(), query.size(), 0,
                                     reinterpret_cast<sockaddr*>(&from), &length);
        if (n < 0) break;
        query.resize(static_cast<std::size_t>(n));
        run([this, q = std::move(query), from, length]() mutable {
          answerDatagram(std::move(q), from, length);
        });
      }
    }
    if (p[2].revents != 0) {
      for (int fd; (fd = ::accept4(dnsTcp_, nullptr, nullptr, SOCK_CLOEXEC)) >= 0;) {
        if (!run([this, fd] { answerStream(fd); })) ::close(fd);
      }
    }
  }
  watching.join();
  // The program has ended: its connections end with it; a moment for their threads.
  std::unique_lock lock(mutex_);
  stopping_ = true;
  ::shutdown(tcp_, SHUT_RD);  // wakes the acceptors' accept()
  if (tcp6_ >= 0) ::shutdown(tcp6_, SHUT_RD);
  work_.notify_all();
  idle_.wait_for(lock, std::chrono::seconds(2), [this] { return threads_ == 0; });
}

// --- UDP ---------------------------------------------------------------------------------------
// A program's socket (by its address) and its association with the gateway: the helper's socket
// of its own that sends through the relay, the control connection that keeps it, and the
// datagrams waiting for it to be associated.
struct Helper::Association {
  sockaddr_in program{};
  int socket = -1;
  int control = -1;
  int wake[2] = {-1, -1};
  control::Endpoint relay;
  std::deque<std::pair<control::Endpoint, std::vector<std::uint8_t>>> queue;  // under mutex_
  bool ended = false;
  ~Association() {
    for (const int fd : {socket, control, wake[0], wake[1]}) {
      if (fd >= 0) ::close(fd);
    }
  }
};

void Helper::takeDatagrams() {
  // One buffer for the loop (one thread reads here); a datagram keeps only its own bytes.
  static thread_local std::vector<std::uint8_t> received(65536);
  for (int count = 0; count < 256; ++count) {
    sockaddr_in from{};
    char control[CMSG_SPACE(sizeof(in_pktinfo))];
    iovec io{received.data(), received.size()};
    msghdr msg{};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_iov = &io;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(udp_, &msg, 0);
    if (n < 0) return;
    in_addr to{};
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
        to = reinterpret_cast<const in_pktinfo*>(CMSG_DATA(c))->ipi_addr;
      }
    }
    // Only this host's programs, to a slot address: anything else is not a diverted datagram.
    const std::uint32_t slot = ntohl(to.s_addr) - Interceptor::kSlotNet;
    control::Endpoint destination;
    if ((ntohl(from.sin_addr.s_addr) >> 24) != 127 ||
        (ntohl(to.s_addr) & 0xffff0000u) != Interceptor::kSlotNet ||
        !interceptor_.destinationOfSlot(slot, destination)) {
      continue;
    }
    std::vector<std::uint8_t> payload(received.begin(), received.begin() + n);
    const std::string key =
        std::to_string(from.sin_addr.s_addr) + ":" + std::to_string(from.sin_port);
    std::shared_ptr<Association> a;
    bool fresh = false;
    {
      std::lock_guard lock(mutex_);
      if (associations_.size() > 1024) {
        std::erase_if(associations_, [](const auto& entry) { return entry.second->ended; });
      }
      auto& slotFor = associations_[key];
      if (!slotFor || slotFor->ended) {
        slotFor = std::make_shared<Association>();
        slotFor->program = from;
        fresh = true;
      }
      a = slotFor;
      if (a->queue.size() < 256) a->queue.emplace_back(destination, std::move(payload));
    }
    if (fresh) {
      if (::pipe2(a->wake, O_CLOEXEC | O_NONBLOCK) != 0 || !run([this, a] { associate(a); })) {
        std::lock_guard lock(mutex_);
        a->ended = true;
      }
    } else if (a->wake[1] >= 0) {
      [[maybe_unused]] const ssize_t w = ::write(a->wake[1], "", 1);
    }
  }
}

void Helper::associate(std::shared_ptr<Association> a) {
  const auto end = [&] {
    std::lock_guard lock(mutex_);
    a->ended = true;
  };
  a->socket = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_in any{};
  any.sin_family = AF_INET;
  if (a->socket < 0 || ::bind(a->socket, reinterpret_cast<sockaddr*>(&any), sizeof any) != 0) {
    end();
    return;
  }
  // Who sends: the program the eBPF program saw, else (a connected socket) the run's.
  client::Identity identity = identity_;
  Origin origin;
  std::string app;
  if (interceptor_.takeUdpOrigin(ntohs(a->program.sin_port), origin)) {
    app = programOf(origin);
    identity.app = app.c_str();
    identity.pid = origin.pid;
    std::snprintf(identity.osUser, sizeof identity.osUser, "%s", accountOf(origin.uid).c_str());
  }
  char detail[200] = {};
  const int error = client::udpAssociate(gateway_, identity, portOf(a->socket), timeoutMs_,
                                         a->control, a->relay, detail, sizeof detail);
  if (error != 0) {
    if (error == ECONNREFUSED || error == ETIMEDOUT || error == EHOSTUNREACH) {
      gatewayAnswers(false, error);
    }
    std::fprintf(stderr,
                 "fwgate run: UDP from port %u: the gateway %s refused to carry it: %s%s%s\n",
                 ntohs(a->program.sin_port), server_.c_str(), std::strerror(error),
                 detail[0] != '\0' ? " — " : "", detail);
    end();
    return;
  }
  sockaddr_in relay{};
  relay.sin_family = AF_INET;
  std::memcpy(&relay.sin_addr, a->relay.address.bytes.data(), 4);
  relay.sin_port = htons(a->relay.port);
  constexpr auto kIdle = std::chrono::seconds(60);
  auto last = std::chrono::steady_clock::now();
  std::vector<std::uint8_t> buffer(65536 + control::kMaxDatagramHeader);
  for (;;) {
    // Up: what waits, each datagram behind the header naming its destination.
    for (;;) {
      std::pair<control::Endpoint, std::vector<std::uint8_t>> next;
      {
        std::lock_guard lock(mutex_);
        if (a->queue.empty()) break;
        next = std::move(a->queue.front());
        a->queue.pop_front();
      }
      std::uint8_t header[control::kMaxDatagramHeader];
      const std::size_t size = control::encodeDatagramHeader(header, next.first);
      iovec io[2] = {{header, size}, {next.second.data(), next.second.size()}};
      msghdr msg{};
      msg.msg_name = &relay;
      msg.msg_namelen = sizeof relay;
      msg.msg_iov = io;
      msg.msg_iovlen = 2;
      ::sendmsg(a->socket, &msg, MSG_NOSIGNAL);
      last = std::chrono::steady_clock::now();
    }
    pollfd p[3] = {{a->socket, POLLIN, 0}, {a->control, POLLIN, 0}, {a->wake[0], POLLIN, 0}};
    if (::poll(p, 3, 1000) < 0 && errno != EINTR) break;
    if (p[1].revents != 0) break;  // the gateway ended the association
    if (p[2].revents != 0) {
      char drain[64];
      while (::read(a->wake[0], drain, sizeof drain) > 0) {
      }
    }
    if (p[0].revents != 0) {
      // Down: from the relay, to the program, from the slot address of its source.
      for (;;) {
        sockaddr_in from{};
        socklen_t length = sizeof from;
        const ssize_t n = ::recvfrom(a->socket, buffer.data(), buffer.size(), 0,
                                     reinterpret_cast<sockaddr*>(&from), &length);
        if (n < 0) break;
        if (from.sin_addr.s_addr != relay.sin_addr.s_addr || from.sin_port != relay.sin_port) {
          continue;
        }
        control::Endpoint source;
        const std::size_t header =
            control::decodeDatagramHeader({buffer.data(), static_cast<std::size_t>(n)}, source);
        const std::uint32_t slot = header != 0 ? interceptor_.slotOf(source) : 0;
        if (slot == 0) continue;  // from a host the program never sent to
        char control[CMSG_SPACE(sizeof(in_pktinfo))] = {};
        iovec io{buffer.data() + header, static_cast<std::size_t>(n) - header};
        msghdr msg{};
        msg.msg_name = &a->program;
        msg.msg_namelen = sizeof a->program;
        msg.msg_iov = &io;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
        in_pktinfo info{};
        info.ipi_spec_dst.s_addr = htonl(Interceptor::kSlotNet + slot);
        std::memcpy(CMSG_DATA(c), &info, sizeof info);
        ::sendmsg(udp_, &msg, MSG_NOSIGNAL);
        last = std::chrono::steady_clock::now();
      }
    }
    std::lock_guard lock(mutex_);
    if (stopping_ || std::chrono::steady_clock::now() - last > kIdle) break;
  }
  end();
}

void Helper::acceptConnections(int listener) {
  // The thread that accepts a connection carries it: no handoff between accept() and the
  // gateway. One more acceptor is started when none is left waiting; one that finds two others
  // waiting when its connection ends goes.
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      ++acceptors_[listener];
    }
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    const int error = errno;
    {
      std::lock_guard lock(mutex_);
      --acceptors_[listener];
      if (stopping_) {
        if (fd >= 0) reset(fd);
        --threads_;
        idle_.notify_all();
        return;
      }
      if (acceptors_[listener] == 0 && threads_ < kMaxThreads) {
        ++threads_;
        std::thread(&Helper::acceptConnections, this, listener).detach();
      }
    }
    if (fd < 0) {
      if (error != EINTR && error != ECONNABORTED) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));  // EMFILE: not a busy loop
      }
      continue;
    }
    carry(fd);
    std::lock_guard lock(mutex_);
    if (acceptors_[listener] >= 2) {
      --threads_;
      idle_.notify_all();
      return;
    }
  }
}

bool Helper::run(std::function<void()> work) {
  std::lock_guard lock(mutex_);
  if (waiting_ > static_cast<int>(jobs_.size())) {
    // An idle thread takes it: no thread is made per connection.
    jobs_.push_back(std::move(work));
    work_.notify_one();
    return true;
  }
  if (threads_ >= kMaxThreads) return false;
  ++threads_;
  std::thread([this, first = std::move(work)]() mutable {
    std::function<void()> job = std::move(first);
    for (;;) {
      job();
      std::unique_lock lock(mutex_);
      ++waiting_;
      // Idle threads stay a while for the next connection, then go.
      work_.wait_for(lock, std::chrono::seconds(30),
                     [this] { return !jobs_.empty() || stopping_; });
      --waiting_;
      if (jobs_.empty()) {
        --threads_;
        idle_.notify_all();
        return;
      }
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
  }).detach();
  return true;
}

void Helper::carry(int client) {
  sockaddr_storage peer{};
  socklen_t length = sizeof peer;
  Origin origin;
  const auto portOfPeer = [&] {
    return ntohs(peer.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6&>(peer).sin6_port
                                            : reinterpret_cast<sockaddr_in&>(peer).sin_port);
  };
  if (::getpeername(client, reinterpret_cast<sockaddr*>(&peer), &length) != 0 ||
      !interceptor_.takeOrigin(portOfPeer(), origin)) {
    reset(client);  // not a diverted connection
    return;
  }
  const std::string app = programOf(origin);
  const std::string destination = text(origin.destination);
  client::Identity identity = identity_;
  identity.app = app.c_str();
  identity.pid = origin.pid;
  std::snprintf(identity.osUser, sizeof identity.osUser, "%s", accountOf(origin.uid).c_str());
  if (current()->settings.dontRemoteTcp.contains(origin.destination.port)) {
    // The program's settings keep this port local: a direct connection, relayed.
    sockaddr_storage to{};
    socklen_t toLength = 0;
    if (origin.destination.address.family == 6) {
      auto& a = reinterpret_cast<sockaddr_in6&>(to);
      a.sin6_family = AF_INET6;
      std::memcpy(&a.sin6_addr, origin.destination.address.bytes.data(), 16);
      a.sin6_port = htons(origin.destination.port);
      toLength = sizeof a;
    } else {
      auto& a = reinterpret_cast<sockaddr_in&>(to);
      a.sin_family = AF_INET;
      std::memcpy(&a.sin_addr, origin.destination.address.bytes.data(), 4);
      a.sin_port = htons(origin.destination.port);
      toLength = sizeof a;
    }
    const int fd = ::socket(to.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int error = 0;
    if (fd < 0 || (::connect(fd, reinterpret_cast<sockaddr*>(&to), toLength) != 0 &&
                   (errno != EINPROGRESS || client::waitFor(fd, POLLOUT, timeoutMs_) != 0))) {
      error = errno;
    }
    socklen_t el = sizeof error;
    if (error == 0) ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &el);
    if (error != 0) {
      if (fd >= 0) ::close(fd);
      reset(client);
      return;
    }
    relay(client, fd);
    return;
  }
  const int gateway = client::openControl(gateway_, timeoutMs_);
  if (gateway < 0) {
    const int error = errno;
    gatewayAnswers(false, error);
    std::fprintf(stderr, "fwgate run: %s[%u] connect %s: the gateway %s is unreachable: %s\n",
                 app.c_str(), origin.pid, destination.c_str(), server_.c_str(),
                 std::strerror(error));
    reset(client);
    return;
  }
  const std::string hint = nameOf(origin.destination.address);
  client::Channel channel;
  char detail[200] = {};
  int error = client::sendConnectRequest(gateway, identity, origin.destination, hint.c_str(),
                                         channel, detail, sizeof detail);
  while (error == 0) {
    if (client::waitFor(gateway, POLLIN, timeoutMs_ + 10000) != 0) {
      error = ETIMEDOUT;
      break;
    }
    if (client::takeConnectReply(gateway, channel, error, detail, sizeof detail) ==
        client::ReplyState::Done) {
      break;
    }
  }
  client::closeChannel(channel);
  if (error != 0) {
    std::fprintf(stderr, "fwgate run: %s[%u] connect %s%s%s%s via %s: %s%s%s\n", app.c_str(),
                 origin.pid, destination.c_str(), hint.empty() ? "" : " (", hint.c_str(),
                 hint.empty() ? "" : ")", server_.c_str(), std::strerror(error),
                 detail[0] != '\0' ? " — " : "", detail);
    ::close(gateway);
    reset(client);
    return;
  }
  if (verbose_) {
    std::fprintf(stderr, "fwgate run: %s[%u] connect %s%s%s%s: remoted via %s\n", app.c_str(),
                 origin.pid, destination.c_str(), hint.empty() ? "" : " (", hint.c_str(),
                 hint.empty() ? "" : ")", server_.c_str());
  }
  relay(client, gateway);
}

std::vector<std::uint8_t> Helper::askResolver(std::span<const std::uint8_t> query) {
  // This process is outside the cgroup: its own query goes where it is sent.
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {};
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = resolvers_.front();
  to.sin_port = htons(53);
  std::vector<std::uint8_t> reply(4096);
  ssize_t n = -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0 &&
      ::send(fd, query.data(), query.size(), 0) == static_cast<ssize_t>(query.size()) &&
      client::waitFor(fd, POLLIN, 3000) == 0) {
    n = ::recv(fd, reply.data(), reply.size(), 0);
  }
  ::close(fd);
  reply.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return reply;
}

std::vector<std::uint8_t> Helper::answer(std::span<const std::uint8_t> query) {
  DnsQuestion question;
  if (!parseDnsQuery(query, question)) return {};  // dropped, as a resolver drops garbage
  if (client::resolvedLocally(*current(), question.name)) {
    const auto reply = askResolver(query);
    return !reply.empty() ? reply : dnsAnswer(query, kDnsServFail, {}, 0);
  }
  if (question.type != kDnsTypeA && question.type != kDnsTypeAAAA) {
    return dnsAnswer(query, kDnsNotImp, {}, 0);  // the gateway resolves addresses only
  }
  std::uint8_t request[600];
  const std::size_t size = control::encodeResolve(
      request, {question.name, static_cast<std::uint8_t>(question.type == kDnsTypeA ? 4 : 6)});
  if (size == 0) return dnsAnswer(query, kDnsServFail, {}, 0);
  const client::Identity identity = identity_;
  std::vector<std::uint8_t> buffer(8192);
  client::Reply reply;
  const int error =
      client::exchange(gateway_, identity, {request, size}, buffer, timeoutMs_ + 10000, reply);
  control::Resolved resolved;
  if (error != 0 || reply.welcome.status != control::Status::Ok ||
      reply.type != static_cast<std::uint8_t>(control::MessageType::Resolved) ||
      !control::decodeResolved(reply.body, resolved)) {
    if (error != 0) gatewayAnswers(false, error);
    return dnsAnswer(query, kDnsServFail, {}, 0);
  }
  if (resolved.status == control::Status::NameNotFound) {
    return dnsAnswer(query, kDnsNxDomain, {}, 0);
  }
  if (resolved.status != control::Status::Ok) return dnsAnswer(query, kDnsServFail, {}, 0);
  for (std::size_t i = 0; i < resolved.count; ++i) remember(resolved.addresses[i], question.name);
  return dnsAnswer(query, kDnsNoError, {resolved.addresses.data(), resolved.count}, kAnswerTtl);
}

void Helper::answerDatagram(std::vector<std::uint8_t> query, sockaddr_storage from,
                            socklen_t length) {
  const auto reply = answer(query);
  if (!reply.empty()) {
    ::sendto(dnsUdp_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), length);
  }
}

void Helper::answerStream(int client) {
  // RFC 1035 4.2.2: each message behind its length; as many as the program sends.
  for (int count = 0; count < 64; ++count) {
    std::uint8_t head[2];
    std::vector<std::uint8_t> query;
    const auto readExactly = [&](std::uint8_t* into, std::size_t n) {
      for (std::size_t at = 0; at < n;) {
        if (client::waitFor(client, POLLIN, 10000) != 0) return false;
        const ssize_t got = ::recv(client, into + at, n - at, 0);
        if (got <= 0) return false;
        at += static_cast<std::size_t>(got);
      }
      return true;
    };
    if (!readExactly(head, 2)) break;
    query.resize(static_cast<std::size_t>(head[0] << 8 | head[1]));
    if (query.empty() || !readExactly(query.data(), query.size())) break;
    const auto reply = answer(query);
    if (reply.empty()) break;
    const std::uint8_t length[2] = {static_cast<std::uint8_t>(reply.size() >> 8),
                                    static_cast<std::uint8_t>(reply.size())};
    if (::send(client, length, 2, MSG_NOSIGNAL | MSG_MORE) != 2 ||
        ::send(client, reply.data(), reply.size(), MSG_NOSIGNAL) !=
            static_cast<ssize_t>(reply.size())) {
      break;
    }
  }
  ::close(client);
}

}  // namespace fwgate::kernel
