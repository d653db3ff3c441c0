#include "monitor/conversations.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "monitor/frame_line.hpp"
#include "policy/protocols.hpp"

namespace fwgate::monitor {
namespace {

constexpr std::uint8_t kTcp = 6;
constexpr std::uint8_t kUdp = 17;
constexpr std::size_t kMaxEchoes =
    4096;  // pairs of hosts; a ping sweep past that is not an application

std::size_t mix(std::size_t h, std::uint64_t v) {
  return (h ^ v) * 0x100000001b3ULL;  // FNV-1a step, a word at a time
}

std::size_t hashEndpoint(std::size_t h, const Endpoint& e) {
  for (std::size_t i = 0; i < e.address.bytes.size(); i += 8) {
    std::uint64_t word = 0;
    for (std::size_t k = 0; k < 8; ++k) word = (word << 8) | e.address.bytes[i + k];
    h = mix(h, word);
  }
  return mix(h, (std::uint64_t{e.port} << 1) | (e.address.v6 ? 1 : 0));
}

}  // namespace

std::string toString(const Endpoint& e) {
  std::string out;
  if (e.address.v6) out += '[';
  appendAddress(out, e.address);
  if (e.address.v6) out += ']';
  fmt::format_to(std::back_inserter(out), ":{}", e.port);
  return out;
}

bool wellKnownPort(Transport transport, std::uint16_t port) {
  if (port != 0 && port < 1024) return true;
  static const auto catalogue = policy::builtinProtocols();
  const auto t = transport == Transport::Udp ? policy::Transport::Udp : policy::Transport::Tcp;
  return std::any_of(catalogue.begin(), catalogue.end(), [&](const auto& d) {
    return d.primary.transport == t && !d.primary.anyDynamicPort() &&
           d.primary.ports.first == port && d.primary.ports.last == port;
  });
}

std::string conversationNames(const std::vector<std::size_t>& indexes) {
  std::string out;
  for (std::size_t i = 0; i < indexes.size(); ++i) {
    fmt::format_to(std::back_inserter(out), "{}C{}", i > 0 ? ", " : "", indexes[i] + 1);
  }
  return out;
}

std::size_t ConversationTable::KeyHash::operator()(const Key& k) const {
  return hashEndpoint(hashEndpoint(0xcbf29ce484222325ULL ^ k.transport, k.low), k.high);
}

ConversationTable::Key ConversationTable::keyOf(std::uint8_t transport, const Endpoint& a,
                                                const Endpoint& b) {
  return a < b ? Key{transport, a, b} : Key{transport, b, a};
}

Conversation* ConversationTable::find(std::uint8_t transport, const Endpoint& a,
                                      const Endpoint& b) {
  const auto it = index_.find(keyOf(transport, a, b));
  return it == index_.end() ? nullptr : &conversations_[it->second];
}

void ConversationTable::add(std::uint64_t number, std::int64_t seconds, const Frame& frame) {
  ++frames_;
  if (frame.network != Network::Ipv4 && frame.network != Network::Ipv6) return;
  switch (frame.transport) {
    case Transport::Tcp:
      addTcp(number, seconds, frame);
      break;
    case Transport::Udp:
      addUdp(number, seconds, frame);
      break;
    case Transport::Icmp:
    case Transport::Icmpv6:
      addIcmp(number, frame);
      break;
    default:
      break;
  }
}

void ConversationTable::addTcp(std::uint64_t number, std::int64_t seconds, const Frame& frame) {
  const Endpoint src{frame.src, frame.tcp.srcPort};
  const Endpoint dst{frame.dst, frame.tcp.dstPort};
  const std::uint8_t flags = frame.tcp.flags;
  const bool syn = (flags & tcpflag::kSyn) != 0;
  const bool ack = (flags & tcpflag::kAck) != 0;
  Conversation* c = find(kTcp, src, dst);
  if (c == nullptr) {
    if (conversations_.size() >= limit_) {
      ++overflow_;
      return;
    }
    Conversation n;
    n.transport = Transport::Tcp;
    n.firstFrame = number;
    n.firstSeconds = seconds;
    if (syn && !ack) {
      n.initiator = src, n.responder = dst, n.initiatorFrom = "SYN";
    } else if (syn && ack) {
      n.initiator = dst, n.responder = src, n.initiatorFrom = "SYN-ACK";
    } else {
      // Mid-connection: the side with the well-known (else the lower) port is the server.
      const bool srcServes =
          wellKnownPort(Transport::Tcp, src.port) != wellKnownPort(Transport::Tcp, dst.port)
              ? wellKnownPort(Transport::Tcp, src.port)
              : src.port < dst.port;
      n.initiator = srcServes ? dst : src;
      n.responder = srcServes ? src : dst;
      n.initiatorFrom = "port numbers";
    }
    index_.emplace(keyOf(kTcp, src, dst), conversations_.size());
    conversations_.push_back(std::move(n));
    c = &conversations_.back();
  }
  const bool fromInitiator = src == c->initiator;
  ++c->frames;
  c->lastFrame = number;
  (fromInitiator ? c->bytesToResponder : c->bytesToInitiator) += frame.tcp.payloadLength;
  if (syn && !ack && fromInitiator) {
    ++c->synCount;
    if (c->openFrame == 0) c->openFrame = number;
  }
  if (syn && ack && !fromInitiator && c->answerFrame == 0) c->answerFrame = number;
  if ((flags & tcpflag::kRst) != 0 && !fromInitiator && c->resetFrame == 0) {
    c->resetFrame = number;
  }
}

void ConversationTable::addUdp(std::uint64_t number, std::int64_t seconds, const Frame& frame) {
  const Endpoint src{frame.src, frame.udp.srcPort};
  const Endpoint dst{frame.dst, frame.udp.dstPort};
  Conversation* c = find(kUdp, src, dst);
  if (c == nullptr) {
    if (conversations_.size() >= limit_) {
      ++overflow_;
      return;
    }
    Conversation n;
    n.transport = Transport::Udp;
    n.firstFrame = number;
    n.firstSeconds = seconds;
    // An answer seen first (the capture began after the question): the well-known port serves.
    const bool answerFirst = wellKnownPort(Transport::Udp, src.port) &&
                             !wellKnownPort(Transport::Udp, dst.port) && dst.port >= 1024;
    n.initiator = answerFirst ? dst : src;
    n.responder = answerFirst ? src : dst;
    n.initiatorFrom = answerFirst ? "port numbers" : "first datagram";
    index_.emplace(keyOf(kUdp, src, dst), conversations_.size());
    conversations_.push_back(std::move(n));
    c = &conversations_.back();
  }
  const bool fromInitiator = src == c->initiator;
  ++c->frames;
  c->lastFrame = number;
  (fromInitiator ? c->bytesToResponder : c->bytesToInitiator) += frame.udp.payloadLength;
  if (fromInitiator && c->openFrame == 0) c->openFrame = number;
  if (!fromInitiator && c->answerFrame == 0) c->answerFrame = number;
}

void ConversationTable::addIcmp(std::uint64_t number, const Frame& frame) {
  const auto& icmp = frame.icmp;
  const bool v6 = frame.transport == Transport::Icmpv6;
  const bool request = v6 ? icmp.type == 128 : icmp.type == 8;
  const bool reply = v6 ? icmp.type == 129 : icmp.type == 0;
  if (request || reply) {
    if (v6 != (frame.network == Network::Ipv6)) return;  // ICMP of the other IP version: hostile
    const auto& initiator = request ? frame.src : frame.dst;
    const auto& responder = request ? frame.dst : frame.src;
    auto found = echoIndex_.find({initiator, responder});
    if (found == echoIndex_.end()) {
      if (echoes_.size() >= kMaxEchoes) return;
      echoes_.push_back({initiator, responder, v6, number, 0, false});
      found = echoIndex_.emplace(std::make_pair(initiator, responder), echoes_.size() - 1).first;
    }
    auto* it = &echoes_[found->second];
    ++it->frames;
    if (reply) it->answered = true;
    return;
  }
  if (!icmp.hasQuoted || !icmp.hasQuotedPorts) return;
  Conversation* c = find(icmp.quotedProtocol, Endpoint{icmp.quotedSrc, icmp.quotedSrcPort},
                         Endpoint{icmp.quotedDst, icmp.quotedDstPort});
  if (c == nullptr || c->icmpFrame != 0) return;
  c->icmpFrame = number;
  c->icmpText = icmpText(v6, icmp.type, icmp.code);
}

}  // namespace fwgate::monitor
