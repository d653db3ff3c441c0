// Frames grouped into conversations: one per TCP connection or UDP flow (5-tuple), with who
// started it and how it went, so that a suggestion can say which frames showed what.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "monitor/decode.hpp"

namespace fwgate::monitor {

struct Endpoint {
  policy::IpAddress address;
  std::uint16_t port = 0;
  friend auto operator<=>(const Endpoint&, const Endpoint&) = default;
};

std::string toString(const Endpoint& e);  // "10.1.1.2:4000", "[2001:db8::7]:53"

struct Conversation {
  Transport transport = Transport::Tcp;  // Tcp or Udp
  Endpoint initiator;  // who opened it (TCP: sent the SYN; UDP: sent the first datagram)
  Endpoint responder;
  // How the initiator was known: "SYN" (seen), "SYN-ACK" (the SYN was before the capture),
  // "first datagram", or "port numbers" (mid-connection: the lower or well-known port serves).
  std::string initiatorFrom;

  std::uint64_t firstFrame = 0;
  std::uint64_t lastFrame = 0;
  std::uint64_t openFrame = 0;    // the SYN, the first datagram (0 when not seen)
  std::uint64_t answerFrame = 0;  // the SYN-ACK, the first datagram back (0 when none)
  std::uint64_t resetFrame = 0;   // a RST from the responder
  std::uint64_t icmpFrame = 0;    // an ICMP error about this conversation
  std::string icmpText;           // "Destination Unreachable (Port Unreachable)"
  std::int64_t firstSeconds = 0;
  std::uint32_t synCount = 0;  // SYNs from the initiator (retransmissions of a failed attempt)
  std::uint64_t frames = 0;
  std::uint64_t bytesToResponder = 0;  // TCP/UDP data bytes
  std::uint64_t bytesToInitiator = 0;

  bool answered() const { return answerFrame != 0; }
  bool refused() const { return resetFrame != 0 && answerFrame == 0; }
};

// ICMP echo exchanges, for packet filters: one entry per (initiator, responder, v6).
struct EchoExchange {
  policy::IpAddress initiator;
  policy::IpAddress responder;
  bool v6 = false;
  std::uint64_t firstFrame = 0;
  std::uint64_t frames = 0;
  bool answered = false;
};

class ConversationTable {
 public:
  // At most `limit` conversations are kept; frames of further ones are counted in overflow().
  explicit ConversationTable(std::size_t limit = 200000) : limit_(limit) {}

  void add(std::uint64_t number, std::int64_t seconds, const Frame& frame);

  // In order of their first frame.
  const std::vector<Conversation>& conversations() const { return conversations_; }
  const std::vector<EchoExchange>& echoes() const { return echoes_; }
  std::uint64_t frames() const { return frames_; }
  std::uint64_t overflow() const { return overflow_; }

 private:
  struct Key {
    std::uint8_t transport;
    Endpoint low;
    Endpoint high;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const;
  };
  static Key keyOf(std::uint8_t transport, const Endpoint& a, const Endpoint& b);
  Conversation* find(std::uint8_t transport, const Endpoint& a, const Endpoint& b);
  void addTcp(std::uint64_t number, std::int64_t seconds, const Frame& frame);
  void addUdp(std::uint64_t number, std::int64_t seconds, const Frame& frame);
  void addIcmp(std::uint64_t number, const Frame& frame);

  std::size_t limit_;
  std::vector<Conversation> conversations_;
  std::unordered_map<Key, std::size_t, KeyHash> index_;
  std::vector<EchoExchange> echoes_;
  std::map<std::pair<policy::IpAddress, policy::IpAddress>, std::size_t> echoIndex_;
  std::uint64_t frames_ = 0;
  std::uint64_t overflow_ = 0;
};

// A port a server listens on rather than one picked per connection: below 1024, or one of the
// built-in catalogue's ports.
bool wellKnownPort(Transport transport, std::uint16_t port);

// "C1, C3": conversations by their 0-based index in the table, as the suggestion names them.
std::string conversationNames(const std::vector<std::size_t>& indexes);

}  // namespace fwgate::monitor
