// udp-echo and udp: datagrams through a SOCKS5 UDP ASSOCIATE relay (RFC 1928 section 7), or
// direct, against an echo server, with a fixed number in flight.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "load.hpp"
#include "procstat.hpp"
#include "servers.hpp"

namespace fwgate::bench {

namespace {

constexpr int kBatch = 64;
constexpr std::size_t kMaxDatagram = 65536;
constexpr int kSocketBuffer = 4 << 20;
constexpr std::size_t kStamp = 12;  // slot (4 bytes) + sequence number (8 bytes)

Fd udpSocket(const Endpoint& bindTo) {
  Fd fd(::socket(bindTo.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) throw std::runtime_error("udp socket: " + errnoName(errno));
  int size = kSocketBuffer;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&bindTo.addr), bindTo.len) != 0) {
    throw std::runtime_error("udp bind " + bindTo.text + ": " + errnoName(errno));
  }
  return fd;
}

Endpoint localEndpoint(int fd) {
  Endpoint ep;
  socklen_t len = sizeof ep.addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ep.addr), &len);
  ep.len = len;
  return ep;
}

// RFC 1928 address + port (ATYP, address, port) of an IPv4 or IPv6 endpoint.
void appendAddress(std::vector<std::uint8_t>& out, const Endpoint& ep) {
  if (ep.family() == AF_INET) {
    out.push_back(0x01);
    const auto* b = reinterpret_cast<const std::uint8_t*>(
        &reinterpret_cast<const sockaddr_in*>(&ep.addr)->sin_addr);
    out.insert(out.end(), b, b + 4);
  } else {
    out.push_back(0x04);
    const auto* b = reinterpret_cast<const std::uint8_t*>(
        &reinterpret_cast<const sockaddr_in6*>(&ep.addr)->sin6_addr);
    out.insert(out.end(), b, b + 16);
  }
  out.push_back(static_cast<std::uint8_t>(ep.port() >> 8));
  out.push_back(static_cast<std::uint8_t>(ep.port() & 0xff));
}

// Reads exactly n bytes from a blocking socket with a receive timeout; false on EOF or error.
bool readExactly(int fd, std::uint8_t* out, std::size_t n, std::string& why) {
  std::size_t have = 0;
  for (int guard = 0; guard < 1000 && have < n; ++guard) {
    ssize_t r = ::recv(fd, out + have, n - have, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      why = r == 0 ? "eof" : errnoName(errno);
      return false;
    }
    have += static_cast<std::size_t>(r);
  }
  return have == n;
}

// The association: the TCP connection that keeps it (open while datagrams flow) and the relay.
struct Association {
  Fd control;
  Endpoint relay;
  std::string failure;  // set when the association could not be made
};

// Greeting (no authentication), then UDP ASSOCIATE naming `client` (our UDP socket's address);
// the reply's BND is the relay (the proxy's address when it says 0.0.0.0).
Association associate(const Endpoint& proxy, const Endpoint& client) {
  Association a;
  int raw = connectBlocking(proxy, nullptr, 5);
  if (raw < 0) {
    a.failure = "connect_" + errnoName(-raw);
    return a;
  }
  a.control.reset(raw);
  std::vector<std::uint8_t> request{0x05, 0x01, 0x00};
  std::string why;
  std::array<std::uint8_t, 262> in{};
  if (::send(raw, request.data(), request.size(), MSG_NOSIGNAL) != 3 ||
      !readExactly(raw, in.data(), 2, why) || in[0] != 0x05 || in[1] != 0x00) {
    a.failure = why.empty() ? "method_rejected" : "method_reply_" + why;
    return a;
  }
  request = {0x05, 0x03, 0x00};
  appendAddress(request, client);
  if (::send(raw, request.data(), request.size(), MSG_NOSIGNAL) !=
          static_cast<ssize_t>(request.size()) ||
      !readExactly(raw, in.data(), 4, why)) {
    a.failure = "associate_reply_" + (why.empty() ? std::string("short") : why);
    return a;
  }
  if (in[0] != 0x05 || in[1] != 0x00) {
    a.failure = "socks_reply_" + std::to_string(in[1]);
    return a;
  }
  std::size_t addressBytes = in[3] == 0x01 ? 4 : in[3] == 0x04 ? 16 : 0;
  if (addressBytes == 0 || !readExactly(raw, in.data() + 4, addressBytes + 2, why)) {
    a.failure = "associate_reply_malformed";
    return a;
  }
  const std::uint8_t* p = in.data() + 4;
  std::uint16_t port = static_cast<std::uint16_t>((p[addressBytes] << 8) | p[addressBytes + 1]);
  a.relay = proxy;
  if (addressBytes == 4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&a.relay.addr);
    std::memcpy(&sin->sin_addr, p, 4);
    if (sin->sin_addr.s_addr == 0) {
      sin->sin_addr = reinterpret_cast<const sockaddr_in*>(&proxy.addr)->sin_addr;
    }
    sin->sin_port = htons(port);
  } else {
    a.failure = "associate_reply_ipv6_relay_unsupported";
  }
  return a;
}

std::uint8_t patternByte(std::size_t i) {
  return static_cast<std::uint8_t>('A' + i % 26);
}

}  // namespace

int runUdpEcho(const ServerOptions& options) {
  installStopSignals();
  Fd epoll(::epoll_create1(EPOLL_CLOEXEC));
  std::vector<Fd> sockets;
  nlohmann::json ports = nlohmann::json::array();
  for (const auto& ep : options.listen) {
    sockets.push_back(udpSocket(ep));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = sockets.back().get();
    ::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, sockets.back().get(), &ev);
    ports.push_back(localEndpoint(sockets.back().get()).port());
  }
  emit({{"event", "listening"},
        {"role", "udp-echo"},
        {"port", ports.at(0)},
        {"ports", ports},
        {"pid", ::getpid()}});
  std::vector<std::vector<std::uint8_t>> bufs(kBatch, std::vector<std::uint8_t>(kMaxDatagram));
  std::array<mmsghdr, kBatch> msgs{};
  std::array<iovec, kBatch> iovs{};
  std::array<sockaddr_storage, kBatch> from{};
  std::uint64_t datagrams = 0;
  ErrorCounts errors;
  auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(options.lifetimeSeconds));
  epoll_event events[16];
  for (std::uint64_t loop = 0; loop < 1'000'000'000'000ULL && !stopRequested(); ++loop) {
    if (Clock::now() >= deadline) break;
    int n = ::epoll_wait(epoll.get(), events, 16, 200);
    for (int e = 0; e < n; ++e) {
      int fd = events[e].data.fd;
      for (int round = 0; round < 16; ++round) {
        for (int i = 0; i < kBatch; ++i) {
          iovs[i] = {bufs[i].data(), bufs[i].size()};
          msgs[i].msg_hdr = {};
          msgs[i].msg_hdr.msg_name = &from[i];
          msgs[i].msg_hdr.msg_namelen = sizeof from[i];
          msgs[i].msg_hdr.msg_iov = &iovs[i];
          msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int got = ::recvmmsg(fd, msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
        if (got < 0) {
          if (errno != EAGAIN && errno != EINTR) errors.add("recv_" + errnoName(errno));
          break;
        }
        for (int i = 0; i < got; ++i) iovs[i].iov_len = msgs[i].msg_len;
        datagrams += static_cast<std::uint64_t>(got);
        int sent = 0;
        for (int guard = 0; guard < 64 && sent < got; ++guard) {
          int s = ::sendmmsg(fd, msgs.data() + sent, static_cast<unsigned>(got - sent), 0);
          if (s < 0) {
            if (errno == EINTR) continue;
            errors.add("send_" + errnoName(errno));
            break;
          }
          sent += s;
        }
        if (got < kBatch) break;
      }
    }
  }
  emit({{"event", "exit"},
        {"role", "udp-echo"},
        {"datagrams", datagrams},
        {"errors", errors.toJson()}});
  return 0;
}

int runUdp(const UdpOptions& options) {
  installStopSignals();
  const auto& common = options.common;
  const std::size_t window = static_cast<std::size_t>(std::clamp(options.window, 1, 4096));
  const std::size_t payloadBytes = std::max(options.payloadBytes, kStamp);
  ErrorCounts errors;
  nlohmann::json out{{"mode", "udp"},
                     {"tags", tagsToJson(common.tags)},
                     {"proxy", common.proxy ? common.proxy->text : "none"},
                     {"target", common.target.text},
                     {"payload_bytes", payloadBytes},
                     {"window", window},
                     {"warmup_s", options.warmupSeconds},
                     {"window_s", options.seconds}};

  // Our UDP socket is on 127.0.0.1, the address the association's TCP connection comes from (to a
  // proxy on 127.0.0.1): a proxy admits datagrams only from its client's address.
  Association assoc;
  Endpoint sendTo = common.target;
  std::vector<std::uint8_t> header;  // the SOCKS UDP request header, or nothing when direct
  Fd sock = udpSocket(*parseLoopbackEndpoint("127.0.0.1:0"));
  if (common.proxy) {
    assoc = associate(*common.proxy, localEndpoint(sock.get()));
    if (!assoc.failure.empty()) {
      errors.add(assoc.failure);
      out["errors"] = errors.total();
      out["error_reasons"] = errors.toJson();
      out["echoes"] = 0;
      emit(out);
      return 1;
    }
    sendTo = assoc.relay;
    header = {0x00, 0x00, 0x00};
    appendAddress(header, common.target);
    out["relay"] = [&] {
      char host[INET_ADDRSTRLEN] = {};
      ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&sendTo.addr)->sin_addr, host,
                  sizeof host);
      return std::string(host) + ":" + std::to_string(sendTo.port());
    }();
  }
  const std::size_t datagramBytes = header.size() + payloadBytes;

  struct Slot {
    std::uint64_t seq = 0;
    Clock::time_point sentAt{};
    bool outstanding = false;
  };
  std::vector<Slot> slots(window);
  std::uint64_t nextSeq = 1;
  std::vector<std::uint8_t> tx(datagramBytes);
  std::memcpy(tx.data(), header.data(), header.size());
  for (std::size_t i = kStamp; i < payloadBytes; ++i) tx[header.size() + i] = patternByte(i);
  // Outgoing datagrams of one batch: the template with slot and sequence stamped in.
  std::vector<std::vector<std::uint8_t>> batch(kBatch, tx);
  std::array<mmsghdr, kBatch> txMsgs{};
  std::array<iovec, kBatch> txIovs{};
  std::vector<std::size_t> toSend;
  toSend.reserve(window);

  auto flush = [&](Clock::time_point now) {
    for (std::size_t at = 0; at < toSend.size();) {
      std::size_t n = std::min<std::size_t>(kBatch, toSend.size() - at);
      for (std::size_t i = 0; i < n; ++i) {
        std::size_t slot = toSend[at + i];
        Slot& s = slots[slot];
        s.seq = nextSeq++;
        s.sentAt = now;
        s.outstanding = true;
        std::uint8_t* stamp = batch[i].data() + header.size();
        auto slot32 = static_cast<std::uint32_t>(slot);
        std::memcpy(stamp, &slot32, 4);
        std::memcpy(stamp + 4, &s.seq, 8);
        txIovs[i] = {batch[i].data(), datagramBytes};
        txMsgs[i].msg_hdr = {};
        txMsgs[i].msg_hdr.msg_name = &sendTo.addr;
        txMsgs[i].msg_hdr.msg_namelen = sendTo.len;
        txMsgs[i].msg_hdr.msg_iov = &txIovs[i];
        txMsgs[i].msg_hdr.msg_iovlen = 1;
      }
      int sent = ::sendmmsg(sock.get(), txMsgs.data(), static_cast<unsigned>(n), 0);
      if (sent < 0) {
        if (errno == EINTR) continue;
        // Not sent: the slot stays outstanding and is counted lost at its timeout.
        errors.add("send_" + errnoName(errno));
        sent = static_cast<int>(n);
      }
      at += static_cast<std::size_t>(sent);
    }
    toSend.clear();
  };

  auto toDuration = [](double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  };
  auto begin = Clock::now();
  auto windowStart = begin + toDuration(options.warmupSeconds);
  auto windowEnd = windowStart + toDuration(options.seconds);
  auto lossTimeout = toDuration(options.lossTimeoutSeconds);
  WindowCpu cpu(common.watchPid, common.farPid);
  bool sampledStart = false, sampledEnd = false;
  std::uint64_t echoes = 0, echoesTotal = 0, late = 0, lost = 0, foreign = 0;
  std::vector<std::uint32_t> rttUs;
  rttUs.reserve(1 << 20);

  for (std::size_t i = 0; i < window; ++i) toSend.push_back(i);
  flush(Clock::now());

  std::vector<std::vector<std::uint8_t>> rx(kBatch, std::vector<std::uint8_t>(kMaxDatagram));
  std::array<mmsghdr, kBatch> rxMsgs{};
  std::array<iovec, kBatch> rxIovs{};
  std::array<sockaddr_storage, kBatch> rxFrom{};
  auto lastSweep = Clock::now();
  bool associationClosed = false;
  for (std::uint64_t loop = 0; loop < 10'000'000'000ULL && !stopRequested(); ++loop) {
    auto now = Clock::now();
    if (!sampledStart && now >= windowStart) {
      sampledStart = true;
      cpu.start();
    }
    if (now >= windowEnd) {
      if (!sampledEnd) {
        sampledEnd = true;
        cpu.stop();
      }
      break;
    }
    pollfd fds[2] = {{sock.get(), POLLIN, 0}, {assoc.control.get(), POLLIN, 0}};
    int ready = ::poll(fds, assoc.control.valid() ? 2 : 1, 5);
    if (ready > 0 && assoc.control.valid() && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      errors.add("association_closed_by_proxy");  // RFC 1928: the relay ends with its TCP conn
      associationClosed = true;
      break;
    }
    for (int round = 0; ready > 0 && round < 16; ++round) {
      for (int i = 0; i < kBatch; ++i) {
        rxIovs[i] = {rx[i].data(), rx[i].size()};
        rxMsgs[i].msg_hdr = {};
        rxMsgs[i].msg_hdr.msg_name = &rxFrom[i];
        rxMsgs[i].msg_hdr.msg_namelen = sizeof rxFrom[i];
        rxMsgs[i].msg_hdr.msg_iov = &rxIovs[i];
        rxMsgs[i].msg_hdr.msg_iovlen = 1;
      }
      int got = ::recvmmsg(sock.get(), rxMsgs.data(), kBatch, MSG_DONTWAIT, nullptr);
      if (got < 0) {
        if (errno != EAGAIN && errno != EINTR) errors.add("recv_" + errnoName(errno));
        break;
      }
      auto arrived = Clock::now();
      for (int i = 0; i < got; ++i) {
        Endpoint from;
        from.addr = rxFrom[i];
        from.len = rxMsgs[i].msg_hdr.msg_namelen;
        if (!sameEndpoint(from, sendTo)) {
          ++foreign;
          continue;
        }
        const std::uint8_t* d = rx[i].data();
        std::size_t len = rxMsgs[i].msg_len;
        if (len != datagramBytes) {
          errors.add(len < datagramBytes ? "udp_short_datagram" : "udp_long_datagram");
          continue;
        }
        // The reply's header names its source: the echo server (RFC 1928 section 7).
        if (!header.empty() && std::memcmp(d + 3, header.data() + 3, header.size() - 3) != 0) {
          errors.add("udp_reply_header_mismatch");
          continue;
        }
        const std::uint8_t* p = d + header.size();
        std::uint32_t slot = 0;
        std::uint64_t seq = 0;
        std::memcpy(&slot, p, 4);
        std::memcpy(&seq, p + 4, 8);
        if (std::memcmp(p + kStamp, tx.data() + header.size() + kStamp, payloadBytes - kStamp) !=
                0 ||
            slot >= window) {
          errors.add("udp_payload_mismatch");
          continue;
        }
        Slot& s = slots[slot];
        if (!s.outstanding || s.seq != seq) {
          ++late;  // already counted lost and replaced
          continue;
        }
        s.outstanding = false;
        ++echoesTotal;
        if (arrived >= windowStart && arrived < windowEnd) {
          ++echoes;
          auto us = std::chrono::duration_cast<std::chrono::microseconds>(arrived - s.sentAt);
          rttUs.push_back(
              static_cast<std::uint32_t>(std::min<std::int64_t>(us.count(), UINT32_MAX)));
        }
        toSend.push_back(slot);
      }
      if (!toSend.empty()) flush(arrived);
      if (got < kBatch) break;
    }
    now = Clock::now();
    if (now - lastSweep >= std::chrono::milliseconds(20)) {
      lastSweep = now;
      for (std::size_t i = 0; i < window; ++i) {
        if (slots[i].outstanding && now - slots[i].sentAt > lossTimeout) {
          slots[i].outstanding = false;
          ++lost;
          errors.add("udp_lost");
          toSend.push_back(i);
        }
      }
      if (!toSend.empty()) flush(now);
    }
  }
  if (sampledStart && !sampledEnd) cpu.stop();
  std::uint64_t inFlightAtEnd = 0;
  for (const auto& s : slots) inFlightAtEnd += s.outstanding ? 1 : 0;

  std::sort(rttUs.begin(), rttUs.end());
  double seconds = options.seconds;
  out["echoes"] = echoes;
  out["echoes_total"] = echoesTotal;
  out["echoes_per_s"] = static_cast<double>(echoes) / seconds;
  // Every echo crossed the relay twice: up to the echo server and back.
  out["datagrams_relayed"] = 2 * echoes;
  out["rtt_us"] = latencySummary(rttUs);
  out["lost"] = lost;
  out["late_replies"] = late;
  out["foreign_datagrams"] = foreign;
  out["in_flight_at_end"] = inFlightAtEnd;
  out["association_closed"] = associationClosed;
  out["errors"] = errors.total();
  out["error_reasons"] = errors.toJson();
  out["interrupted"] = stopRequested();
  if (sampledStart) cpu.addTo(out, seconds);
  emit(out);
  return errors.total() == 0 && echoes > 0 ? 0 : 1;
}

}  // namespace fwgate::bench
