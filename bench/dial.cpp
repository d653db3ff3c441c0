#include "dial.hpp"

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace fwgate::bench {

namespace {

constexpr std::uint8_t kSocksVersion = 0x05;
constexpr std::uint8_t kNoAuth = 0x00;
constexpr std::uint8_t kConnect = 0x01;
constexpr std::uint8_t kAtypIpv4 = 0x01;
constexpr std::uint8_t kAtypDomain = 0x03;
constexpr std::uint8_t kAtypIpv6 = 0x04;

const std::vector<std::uint8_t> kGreeting{kSocksVersion, 1, kNoAuth};

// Length of the SOCKS5 reply starting at p, 0 while more bytes are needed, -1 if malformed.
int replyLength(const std::uint8_t* p, std::size_t n) {
  if (n >= 1 && p[0] != kSocksVersion) return -1;
  if (n < 4) return 0;
  switch (p[3]) {
    case kAtypIpv4:
      return 4 + 4 + 2;
    case kAtypIpv6:
      return 4 + 16 + 2;
    case kAtypDomain:
      return n < 5 ? 0 : 4 + 1 + p[4] + 2;
    default:
      return -1;
  }
}

std::vector<std::uint8_t> buildConnectRequest(const Endpoint& target) {
  std::vector<std::uint8_t> out{kSocksVersion, kConnect, 0x00};
  const auto* raw = reinterpret_cast<const std::uint8_t*>(&target.addr);
  if (target.family() == AF_INET) {
    out.push_back(kAtypIpv4);
    const auto& a = reinterpret_cast<const sockaddr_in*>(raw)->sin_addr;
    const auto* b = reinterpret_cast<const std::uint8_t*>(&a);
    out.insert(out.end(), b, b + 4);
  } else {
    out.push_back(kAtypIpv6);
    const auto& a = reinterpret_cast<const sockaddr_in6*>(raw)->sin6_addr;
    const auto* b = reinterpret_cast<const std::uint8_t*>(&a);
    out.insert(out.end(), b, b + 16);
  }
  out.push_back(static_cast<std::uint8_t>(target.port() >> 8));
  out.push_back(static_cast<std::uint8_t>(target.port() & 0xff));
  return out;
}

std::uint8_t patternByte(std::size_t i) {
  return static_cast<std::uint8_t>('a' + i % 26);
}

}  // namespace

std::optional<ProxyProtocol> parseProxyProtocol(std::string_view name) {
  if (name == "socks5") return ProxyProtocol::Socks5;
  if (name == "http-connect") return ProxyProtocol::HttpConnect;
  if (name == "http-get") return ProxyProtocol::HttpGet;
  return std::nullopt;
}

const char* proxyProtocolName(ProxyProtocol protocol) {
  switch (protocol) {
    case ProxyProtocol::Socks5:
      return "socks5";
    case ProxyProtocol::HttpConnect:
      return "http-connect";
    case ProxyProtocol::HttpGet:
      return "http-get";
  }
  return "unknown";
}

DialPlan::DialPlan(std::optional<Endpoint> proxyEp, Endpoint targetEp,
                   std::vector<Endpoint> sourceEps, std::size_t echo, ProxyProtocol proto,
                   const std::string& getPath)
    : proxy(std::move(proxyEp)),
      target(std::move(targetEp)),
      sources(std::move(sourceEps)),
      echoBytes(echo),
      protocol(proto) {
  auto bytesOf = [](const std::string& text) {
    return std::vector<std::uint8_t>(text.begin(), text.end());
  };
  switch (protocol) {
    case ProxyProtocol::Socks5:
      request = buildConnectRequest(target);
      break;
    case ProxyProtocol::HttpConnect:
      request = bytesOf(http::buildConnect(target.text));
      break;
    case ProxyProtocol::HttpGet:
      request = bytesOf(http::buildGet(target.text, getPath, proxy.has_value(), false));
      echoBytes = 0;  // the GET and its response are the check
      break;
  }
  payload.resize(echoBytes);
  for (std::size_t i = 0; i < echoBytes; ++i) payload[i] = patternByte(i);
}

const char* dialStateName(DialState state) {
  switch (state) {
    case DialState::Idle:
      return "idle";
    case DialState::Connecting:
      return "connect";
    case DialState::MethodReply:
      return "method_reply";
    case DialState::ConnectReply:
      return "connect_reply";
    case DialState::HttpReply:
      return "http_reply";
    case DialState::Echo:
      return "echo";
    case DialState::AwaitClose:
      return "await_close";
    case DialState::Ready:
      return "ready";
    case DialState::Failed:
      return "failed";
  }
  return "unknown";
}

void Dial::start(const DialPlan& plan, std::uint64_t sequence) {
  fd_.reset();
  have_ = 0;
  echoed_ = 0;
  failure_.clear();
  started_ = Clock::now();
  const Endpoint* source =
      plan.sources.empty() ? nullptr : &plan.sources[sequence % plan.sources.size()];
  int fd = startConnect(plan.proxy ? *plan.proxy : plan.target, source);
  if (fd < 0) {
    state_ = DialState::Failed;
    failure_ = "connect_" + errnoName(-fd);
    return;
  }
  fd_.reset(fd);
  state_ = DialState::Connecting;
}

void Dial::adopt(int fd) {
  fd_.reset(fd);
  have_ = 0;
  echoed_ = 0;
  failure_.clear();
  started_ = Clock::now();
  state_ = DialState::Ready;
}

void Dial::fail(std::string reason) {
  fd_.reset();
  state_ = DialState::Failed;
  failure_ = std::move(reason);
}

void Dial::close() {
  fd_.reset();
  state_ = DialState::Idle;
}

bool Dial::sendAll(const std::vector<std::uint8_t>& bytes, const char* what) {
  ssize_t n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
  if (n == static_cast<ssize_t>(bytes.size())) return true;
  // A fresh socket takes a few hundred bytes at once; anything else is an error worth counting.
  fail(std::string(what) + "_" + (n < 0 ? errnoName(errno) : std::string("short_write")));
  return false;
}

void Dial::advance(const DialPlan& plan, std::uint32_t events) {
  // Every pass either finishes a phase, or returns because the socket would block.
  for (int pass = 0; pass < 16; ++pass) {
    bool next = false;
    switch (state_) {
      case DialState::Connecting:
        next = onConnected(plan, events);
        break;
      case DialState::MethodReply:
        next = readMethodReply(plan);
        break;
      case DialState::ConnectReply:
        next = readConnectReply(plan);
        break;
      case DialState::HttpReply:
        next = readHttpReply(plan);
        break;
      case DialState::Echo:
        next = readEcho(plan);
        break;
      case DialState::AwaitClose:
        next = readPeerClose();
        break;
      case DialState::Idle:
      case DialState::Ready:
      case DialState::Failed:
        return;
    }
    if (!next) return;
  }
}

bool Dial::onConnected(const DialPlan& plan, std::uint32_t events) {
  if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return false;
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    fail("connect_" + errnoName(err));
    return false;
  }
  if (!(events & EPOLLOUT)) {
    fail("connect_hangup");
    return false;
  }
  bool httpRequest = plan.protocol == ProxyProtocol::HttpGet ||
                     (plan.proxy && plan.protocol == ProxyProtocol::HttpConnect);
  if (httpRequest) {
    if (!sendAll(plan.request, "http_request")) return false;
    http_.reset(plan.protocol == ProxyProtocol::HttpConnect);
    state_ = DialState::HttpReply;
    return true;
  }
  if (plan.proxy) {
    if (!sendAll(kGreeting, "greeting")) return false;
    state_ = DialState::MethodReply;
    return true;
  }
  return afterHandshake(plan);
}

bool Dial::afterHandshake(const DialPlan& plan) {
  if (plan.echoBytes == 0) {
    state_ = DialState::Ready;
    return false;
  }
  if (!sendAll(plan.payload, "payload")) return false;
  state_ = DialState::Echo;
  return true;
}

bool Dial::readHttpReply(const DialPlan& plan) {
  char buf[16384];
  ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
  if (n < 0) {
    if (errno != EAGAIN && errno != EINTR) fail("http_reply_" + errnoName(errno));
    return false;
  }
  std::size_t used = 0;
  // At EOF only a body delimited by the close can be complete: then not a kept connection.
  http::Parse p = n == 0 ? http_.finishAtEof() : http_.feed(buf, static_cast<std::size_t>(n), used);
  if (p == http::Parse::NeedMore) return true;
  if (p == http::Parse::Invalid) {
    fail(std::string("http_") + http_.error());
    return false;
  }
  bool tunnel = plan.protocol == ProxyProtocol::HttpConnect;
  if (tunnel ? (http_.status() < 200 || http_.status() > 299) : http_.status() != 200) {
    fail("http_status_" + std::to_string(http_.status()));
    return false;
  }
  if (used < static_cast<std::size_t>(n)) {
    fail(tunnel ? "unexpected_bytes_after_reply" : "unexpected_bytes_after_response");
    return false;
  }
  if (!tunnel) {
    if (http_.bodyBytes() != plan.getBodyBytes) {
      fail("http_body_length_mismatch");
      return false;
    }
    if (n == 0 || !http_.keepAlive()) {
      if (plan.requireKeepAlive) {
        fail("http_not_kept_alive");
        return false;
      }
      state_ = DialState::Ready;
      return false;
    }
  }
  return afterHandshake(plan);
}

bool Dial::readMethodReply(const DialPlan& plan) {
  ssize_t n = ::recv(fd_.get(), in_.data() + have_, in_.size() - have_, 0);
  if (n < 0) {
    if (errno != EAGAIN && errno != EINTR) fail("method_reply_" + errnoName(errno));
    return false;
  }
  if (n == 0) {
    fail("method_reply_eof");
    return false;
  }
  have_ += static_cast<std::size_t>(n);
  if (have_ < 2) return true;
  if (have_ > 2 || in_[0] != kSocksVersion || in_[1] != kNoAuth) {
    fail("method_rejected");
    return false;
  }
  if (!sendAll(plan.request, "request")) return false;
  have_ = 0;
  state_ = DialState::ConnectReply;
  return true;
}

bool Dial::readConnectReply(const DialPlan& plan) {
  ssize_t n = ::recv(fd_.get(), in_.data() + have_, in_.size() - have_, 0);
  if (n < 0) {
    if (errno != EAGAIN && errno != EINTR) fail("connect_reply_" + errnoName(errno));
    return false;
  }
  if (n == 0) {
    fail("connect_reply_eof");
    return false;
  }
  have_ += static_cast<std::size_t>(n);
  int length = replyLength(in_.data(), have_);
  if (length < 0) {
    fail("connect_reply_malformed");
    return false;
  }
  if (length == 0 || have_ < static_cast<std::size_t>(length)) return true;
  if (in_[1] != 0) {
    fail("socks_reply_" + std::to_string(in_[1]));
    return false;
  }
  if (have_ > static_cast<std::size_t>(length)) {
    fail("unexpected_bytes_after_reply");  // nothing was sent yet, so nothing may come back
    return false;
  }
  return afterHandshake(plan);
}

bool Dial::readEcho(const DialPlan& plan) {
  std::uint8_t buf[4096];
  std::size_t want = std::min(sizeof buf, plan.echoBytes - echoed_);
  ssize_t n = ::recv(fd_.get(), buf, want, 0);
  if (n < 0) {
    if (errno != EAGAIN && errno != EINTR) fail("echo_" + errnoName(errno));
    return false;
  }
  if (n == 0) {
    fail("echo_eof");
    return false;
  }
  if (std::memcmp(buf, plan.payload.data() + echoed_, static_cast<std::size_t>(n)) != 0) {
    fail("echo_mismatch");
    return false;
  }
  echoed_ += static_cast<std::size_t>(n);
  if (echoed_ < plan.echoBytes) return true;
  if (plan.awaitPeerClose) {
    state_ = DialState::AwaitClose;
    return true;
  }
  state_ = DialState::Ready;
  return false;
}

bool Dial::readPeerClose() {
  std::uint8_t byte;
  ssize_t n = ::recv(fd_.get(), &byte, 1, 0);
  if (n < 0) {
    if (errno != EAGAIN && errno != EINTR) fail("await_close_" + errnoName(errno));
    return false;
  }
  if (n > 0) {
    fail("unexpected_bytes_after_echo");
    return false;
  }
  state_ = DialState::Ready;
  return false;
}

}  // namespace fwgate::bench
