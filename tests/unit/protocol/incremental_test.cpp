// Every parser against every way a stream socket may deliver its bytes: one at a time, split in two
// at every offset, in random chunks, and with the next message (or early payload) already behind
// it.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/socks4.hpp"
#include "protocol/socks5.hpp"

namespace fwgate::protocol {
namespace {

using Buffer = std::vector<std::uint8_t>;

Buffer bytes(std::initializer_list<int> values) {
  Buffer out;
  for (int v : values) out.push_back(static_cast<std::uint8_t>(v));
  return out;
}

Buffer text(std::string_view s) {
  return Buffer(s.begin(), s.end());
}

Buffer operator+(Buffer a, const Buffer& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

Bytes prefix(const Buffer& buffer, std::size_t n) {
  return Bytes(buffer).first(n);
}

template <typename T>
using Parser = ParseResult<T> (*)(Bytes);

// Growing the buffer one byte per read: NeedMore on every proper prefix, then Complete.
template <typename T>
void expectByteAtATime(Parser<T> parse, const Buffer& message, const T& expected) {
  for (std::size_t n = 0; n < message.size(); ++n) {
    const ParseResult<T> r = parse(prefix(message, n));
    ASSERT_TRUE(r.needMore()) << "prefix of " << n << " of " << message.size() << " bytes";
    EXPECT_EQ(r.error, ParseError::None);
    EXPECT_EQ(r.consumed, 0u);
  }
  const ParseResult<T> r = parse(message);
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.error, ParseError::None);
  EXPECT_EQ(r.consumed, message.size());
  EXPECT_TRUE(r.value == expected);
}

// Two reads split at every offset of message + unrelated trailing bytes; the message's own bytes
// are consumed exactly and the trailer is left alone, whichever read completes it.
template <typename T>
void expectSplitAtEveryOffset(Parser<T> parse, const Buffer& message, const T& expected) {
  const Buffer stream = message + bytes({0x05, 0x01, 0x00, 0x04, 0xFF});
  for (std::size_t split = 0; split <= stream.size(); ++split) {
    SCOPED_TRACE("split at " + std::to_string(split));
    Buffer received(stream.begin(), stream.begin() + static_cast<std::ptrdiff_t>(split));
    const ParseResult<T> first = parse(received);
    if (split < message.size()) {
      ASSERT_TRUE(first.needMore());
    } else {
      ASSERT_TRUE(first.complete());
      EXPECT_EQ(first.consumed, message.size());
      EXPECT_TRUE(first.value == expected);
    }
    received.assign(stream.begin(), stream.end());
    const ParseResult<T> second = parse(received);
    ASSERT_TRUE(second.complete());
    EXPECT_EQ(second.consumed, message.size());
    EXPECT_TRUE(second.value == expected);
  }
}

template <typename T>
void expectIncremental(Parser<T> parse, const Buffer& message, const T& expected) {
  expectByteAtATime(parse, message, expected);
  expectSplitAtEveryOffset(parse, message, expected);
}

// A malformed message is NeedMore until byte `firstBad` arrives, then Invalid with `error` on
// that prefix and every longer one: the session can reject as early as the spec allows.
template <typename T>
void expectInvalidFrom(Parser<T> parse, const Buffer& message, std::size_t firstBad,
                       ParseError error) {
  ASSERT_LE(firstBad, message.size());
  for (std::size_t n = 0; n <= message.size(); ++n) {
    const ParseResult<T> r = parse(prefix(message, n));
    if (n < firstBad) {
      EXPECT_TRUE(r.needMore()) << "prefix of " << n;
    } else {
      EXPECT_TRUE(r.invalid()) << "prefix of " << n;
      EXPECT_EQ(r.error, error) << "prefix of " << n;
    }
  }
}

const std::array<std::uint8_t, 16> kDocIpv6{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                            0,    0,    0,    0,    0, 0, 0, 1};

TEST(Incremental, Socks5Greeting) {
  expectIncremental(&socks5::parseGreeting, bytes({5, 1, 0}), socks5::Greeting{{0}});
  expectIncremental(&socks5::parseGreeting, bytes({5, 3, 0, 1, 2}), socks5::Greeting{{0, 1, 2}});
  Buffer all(255);
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::uint8_t>(i);
  expectIncremental(&socks5::parseGreeting, bytes({5, 255}) + all, socks5::Greeting{all});
}

TEST(Incremental, Socks5UserPass) {
  expectIncremental(&socks5::parseUserPass,
                    bytes({1, 5}) + text("alice") + bytes({6}) + text("s3cret"),
                    socks5::UserPassRequest{"alice", "s3cret"});
  expectIncremental(&socks5::parseUserPass, bytes({1, 1, 'u', 0}),
                    socks5::UserPassRequest{"u", ""});
  const std::string user(255, 'u');
  const std::string pass(255, 'p');
  expectIncremental(&socks5::parseUserPass,
                    bytes({1, 255}) + text(user) + bytes({255}) + text(pass),
                    socks5::UserPassRequest{user, pass});
}

TEST(Incremental, Socks5Request) {
  expectIncremental(&socks5::parseRequest, bytes({5, 1, 0, 1, 192, 0, 2, 1, 0x1F, 0x90}),
                    socks5::Request{1, Address::ipv4({192, 0, 2, 1}, 8080)});
  expectIncremental(
      &socks5::parseRequest,
      bytes({5, 1, 0, 4}) + Buffer(kDocIpv6.begin(), kDocIpv6.end()) + bytes({0x01, 0xBB}),
      socks5::Request{1, Address::ipv6(kDocIpv6, 443)});
  expectIncremental(&socks5::parseRequest,
                    bytes({5, 3, 0, 3, 11}) + text("example.com") + bytes({0, 53}),
                    socks5::Request{3, Address::name("example.com", 53)});
  const std::string longest(255, 'd');
  expectIncremental(&socks5::parseRequest,
                    bytes({5, 1, 0, 3, 255}) + text(longest) + bytes({0, 80}),
                    socks5::Request{1, Address::name(longest, 80)});
  // Unknown command and garbage in RSV still parse: the session answers 0x07 itself.
  expectIncremental(&socks5::parseRequest, bytes({5, 0x09, 0xFF, 1, 10, 0, 0, 1, 0, 22}),
                    socks5::Request{0x09, Address::ipv4({10, 0, 0, 1}, 22)});
}

TEST(Incremental, Socks4Request) {
  expectIncremental(&socks4::parseRequest,
                    bytes({4, 1, 0, 80, 192, 0, 2, 1}) + text("bob") + bytes({0}),
                    socks4::Request{1, Address::ipv4({192, 0, 2, 1}, 80), "bob", false});
  expectIncremental(&socks4::parseRequest, bytes({4, 2, 0x1F, 0x90, 10, 0, 0, 1, 0}),
                    socks4::Request{2, Address::ipv4({10, 0, 0, 1}, 8080), "", false});
  expectIncremental(&socks4::parseRequest,
                    bytes({4, 1, 0, 80, 0, 0, 0, 1}) + text("bob") + bytes({0}) +
                        text("example.com") + bytes({0}),
                    socks4::Request{1, Address::name("example.com", 80), "bob", true});
  const std::string user(socks4::kMaxUserIdLength, 'u');
  const std::string domain(socks4::kMaxDomainLength, 'd');
  expectIncremental(
      &socks4::parseRequest,
      bytes({4, 1, 1, 187, 0, 0, 0, 99}) + text(user) + bytes({0}) + text(domain) + bytes({0}),
      socks4::Request{1, Address::name(domain, 443), user, true});
}

TEST(Incremental, Socks5AddressAlone) {
  expectIncremental(&parseSocks5Address, bytes({1, 127, 0, 0, 1, 0, 1}),
                    Address::ipv4({127, 0, 0, 1}, 1));
  expectIncremental(&parseSocks5Address, bytes({3, 1, 'a', 0xFF, 0xFF}), Address::name("a", 65535));
}

TEST(Incremental, MalformedIsReportedAtTheFirstBadByte) {
  expectInvalidFrom(&socks5::parseGreeting, bytes({4, 1, 0}), 1, ParseError::BadVersion);

  expectInvalidFrom(&socks5::parseUserPass, bytes({5, 1, 'u', 1, 'p'}), 1, ParseError::BadVersion);
  expectInvalidFrom(&socks5::parseUserPass, bytes({1, 0, 1, 'p'}), 2, ParseError::BadLength);

  expectInvalidFrom(&socks5::parseRequest, bytes({4, 1, 0, 1, 1, 2, 3, 4, 0, 80}), 1,
                    ParseError::BadVersion);
  expectInvalidFrom(&socks5::parseRequest, bytes({5, 1, 0, 2, 1, 2, 3, 4, 0, 80}), 4,
                    ParseError::BadAddressType);
  expectInvalidFrom(&socks5::parseRequest, bytes({5, 1, 0, 3, 0, 0, 80}), 5, ParseError::BadLength);

  expectInvalidFrom(&socks4::parseRequest, bytes({5, 1, 0, 80, 1, 2, 3, 4, 0}), 1,
                    ParseError::BadVersion);
  const Buffer fixed = bytes({4, 1, 0, 80, 1, 2, 3, 4});
  expectInvalidFrom(&socks4::parseRequest, fixed + Buffer(socks4::kMaxUserIdLength + 1, 'u'),
                    8 + socks4::kMaxUserIdLength + 1, ParseError::BadLength);
  const Buffer fixed4a = bytes({4, 1, 0, 80, 0, 0, 0, 1, 'u', 0});
  expectInvalidFrom(&socks4::parseRequest, fixed4a + bytes({0}), fixed4a.size() + 1,
                    ParseError::BadLength);
  expectInvalidFrom(&socks4::parseRequest, fixed4a + Buffer(socks4::kMaxDomainLength + 1, 'd'),
                    fixed4a.size() + socks4::kMaxDomainLength + 1, ParseError::BadLength);
}

// What a session does: append each read to a buffer, parse the phase's message from the front,
// drop `consumed` bytes, move to the next phase. Returns what is left after the last phase.
struct Socks5Handshake {
  socks5::Greeting greeting;
  socks5::UserPassRequest credentials;
  socks5::Request request;
  Buffer leftover;
  bool failed = false;
};

Socks5Handshake runSocks5Handshake(const Buffer& stream, const std::vector<std::size_t>& reads) {
  Socks5Handshake out;
  Buffer buffer;
  int phase = 0;
  std::size_t offset = 0;
  auto advance = [&](auto& result, auto& target) {
    if (result.invalid()) out.failed = true;
    if (!result.complete()) return false;
    target = result.value;
    buffer.erase(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(result.consumed));
    ++phase;
    return true;
  };
  for (std::size_t read : reads) {
    const std::size_t n = std::min(read, stream.size() - offset);
    buffer.insert(buffer.end(), stream.begin() + static_cast<std::ptrdiff_t>(offset),
                  stream.begin() + static_cast<std::ptrdiff_t>(offset + n));
    offset += n;
    bool progressed = true;
    while (progressed && phase < 3 && !out.failed) {
      if (phase == 0) {
        auto r = socks5::parseGreeting(buffer);
        progressed = advance(r, out.greeting);
      } else if (phase == 1) {
        auto r = socks5::parseUserPass(buffer);
        progressed = advance(r, out.credentials);
      } else {
        auto r = socks5::parseRequest(buffer);
        progressed = advance(r, out.request);
      }
    }
  }
  if (phase < 3) out.failed = true;
  out.leftover = buffer;
  return out;
}

class PipelinedSocks5 : public ::testing::Test {
 protected:
  const Buffer greeting_ = bytes({5, 2, 0, 2});
  const Buffer credentials_ = bytes({1, 3}) + text("bob") + bytes({2}) + text("pw");
  const Buffer request_ = bytes({5, 1, 0, 3, 4}) + text("host") + bytes({0x1F, 0x90});
  const Buffer payload_ = text("GET / HTTP/1.0\r\n\r\n");
  const Buffer stream_ = greeting_ + credentials_ + request_ + payload_;

  void expectHandshake(const Socks5Handshake& h) {
    ASSERT_FALSE(h.failed);
    EXPECT_TRUE(h.greeting.offers(socks5::Method::UsernamePassword));
    EXPECT_EQ(h.credentials.username, "bob");
    EXPECT_EQ(h.credentials.password, "pw");
    EXPECT_EQ(h.request.command, static_cast<std::uint8_t>(socks5::Command::Connect));
    EXPECT_EQ(h.request.destination, Address::name("host", 8080));
    EXPECT_EQ(h.leftover, payload_);
  }
};

TEST_F(PipelinedSocks5, GreetingAndRequestInOneBufferConsumeExactly) {
  const Buffer both = greeting_ + request_;
  const auto greeting = socks5::parseGreeting(both);
  ASSERT_TRUE(greeting.complete());
  EXPECT_EQ(greeting.consumed, greeting_.size());
  const auto request = socks5::parseRequest(Bytes(both).subspan(greeting.consumed));
  ASSERT_TRUE(request.complete());
  EXPECT_EQ(request.consumed, request_.size());
  EXPECT_EQ(request.value.destination, Address::name("host", 8080));
}

TEST_F(PipelinedSocks5, WholeHandshakeAndEarlyDataInOneRead) {
  expectHandshake(runSocks5Handshake(stream_, {stream_.size()}));
}

TEST_F(PipelinedSocks5, OneByteReads) {
  expectHandshake(runSocks5Handshake(stream_, std::vector<std::size_t>(stream_.size(), 1)));
}

TEST_F(PipelinedSocks5, TwoReadsSplitAtEveryOffset) {
  for (std::size_t split = 0; split <= stream_.size(); ++split) {
    SCOPED_TRACE("split at " + std::to_string(split));
    expectHandshake(runSocks5Handshake(stream_, {split, stream_.size()}));
  }
}

TEST_F(PipelinedSocks5, RandomReads) {
  std::mt19937 rng(20240601);
  std::uniform_int_distribution<std::size_t> size(1, 9);
  for (int round = 0; round < 200; ++round) {
    std::vector<std::size_t> reads;
    for (std::size_t total = 0; total < stream_.size(); total += reads.back()) {
      reads.push_back(size(rng));
    }
    expectHandshake(runSocks5Handshake(stream_, reads));
  }
}

TEST_F(PipelinedSocks5, TruncatedStreamNeverCompletes) {
  const Buffer truncated(stream_.begin(),
                         stream_.begin() + static_cast<std::ptrdiff_t>(greeting_.size() + 2));
  EXPECT_TRUE(runSocks5Handshake(truncated, {truncated.size()}).failed);
}

TEST(PipelinedSocks4, RequestFollowedByEarlyDataAtEverySplit) {
  const Buffer request =
      bytes({4, 1, 0, 80, 0, 0, 0, 7}) + text("id") + bytes({0}) + text("example.org") + bytes({0});
  const Buffer payload = bytes({0, 0, 4, 'd', 'a', 't', 'a'});  // NULs in early data are not ours
  const Buffer stream = request + payload;
  for (std::size_t split = 0; split <= stream.size(); ++split) {
    SCOPED_TRACE("split at " + std::to_string(split));
    const auto first = socks4::parseRequest(prefix(stream, split));
    EXPECT_EQ(first.complete(), split >= request.size());
    const auto whole = socks4::parseRequest(stream);
    ASSERT_TRUE(whole.complete());
    EXPECT_EQ(whole.consumed, request.size());
    EXPECT_EQ(whole.value.destination, Address::name("example.org", 80));
    EXPECT_EQ(Buffer(stream.begin() + static_cast<std::ptrdiff_t>(whole.consumed), stream.end()),
              payload);
  }
}

TEST(IncrementalUdp, EveryTruncationIsBadLengthNeverNeedMore) {
  const std::vector<Buffer> headers = {
      bytes({0, 0, 0, 1, 198, 51, 100, 7, 0, 53}),
      bytes({0, 0, 0, 4}) + Buffer(kDocIpv6.begin(), kDocIpv6.end()) + bytes({0, 53}),
      bytes({0, 0, 0, 3, 3}) + text("a.b") + bytes({0, 53}),
  };
  for (const Buffer& header : headers) {
    for (std::size_t n = 0; n < header.size(); ++n) {
      const auto r = socks5::parseUdpHeader(prefix(header, n));
      EXPECT_TRUE(r.invalid()) << "datagram of " << n;
      EXPECT_EQ(r.error, ParseError::BadLength) << "datagram of " << n;
    }
    const auto r = socks5::parseUdpHeader(header + text("payload"));
    ASSERT_TRUE(r.complete());
    EXPECT_EQ(r.consumed, header.size());
  }
}

}  // namespace
}  // namespace fwgate::protocol
