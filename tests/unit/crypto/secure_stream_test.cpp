// The record layer: any split of the wire into reads gives the same plaintext; large writes span
// records; a forged, replayed or cut record ends the channel.
#include "crypto/secure_stream.hpp"

#include <gtest/gtest.h>

#include <numeric>

namespace fwgate::crypto {
namespace {

std::pair<SecureStream, SecureStream> connected() {
  const KeyPair client = KeyPair::generate();
  const KeyPair server = KeyPair::generate();
  auto i = HandshakeIK::initiator(client, server.publicKey, {});
  auto r = HandshakeIK::responder(server, {});
  r.read(*i.write({}));
  i.read(*r.write({}));
  return {SecureStream(i.split()), SecureStream(r.split())};
}

Bytes pattern(std::size_t n) {
  Bytes b(n);
  std::iota(b.begin(), b.end(), std::uint8_t{7});
  return b;
}

TEST(SecureStreamTest, AnySplitOfTheWireGivesThePlaintextInOrder) {
  auto [client, server] = connected();
  const Bytes big = pattern(3 * kMaxPlaintext + 100);  // four records
  Bytes wire;
  ASSERT_TRUE(client.seal(pattern(10), wire));
  ASSERT_TRUE(client.seal({}, wire));  // nothing
  ASSERT_TRUE(client.seal(big, wire));
  EXPECT_EQ(wire.size(), 10 + big.size() + 5 * (kRecordHeader + kTagBytes));
  // Fed in chunks of 1, 2, 3, ... bytes, as reads would give them.
  Bytes plain;
  std::size_t fed = 0;
  std::size_t start = 0;
  for (std::size_t chunk = 1; fed < wire.size(); ++chunk) {
    fed = std::min(wire.size(), fed + chunk * 97);
    const auto o = server.open(std::span(wire).subspan(start, fed - start), plain);
    ASSERT_FALSE(o.bad);
    start += o.consumed;
  }
  EXPECT_EQ(start, wire.size());
  Bytes expected = pattern(10);
  expected.insert(expected.end(), big.begin(), big.end());
  EXPECT_EQ(plain, expected);
  // The other direction, independently.
  Bytes down, back;
  ASSERT_TRUE(server.seal(pattern(5), down));
  EXPECT_FALSE(client.open(down, back).bad);
  EXPECT_EQ(back, pattern(5));
  EXPECT_EQ(client.handshakeHash(), server.handshakeHash());
}

TEST(SecureStreamTest, ForgedReplayedOrShortRecordsEndTheChannel) {
  {
    auto [client, server] = connected();
    Bytes wire, plain;
    ASSERT_TRUE(client.seal(pattern(40), wire));
    wire[10] ^= 0x20;
    EXPECT_TRUE(server.open(wire, plain).bad);
    EXPECT_TRUE(plain.empty());
    // Over for good: a genuine record after it is not opened either.
    Bytes next;
    ASSERT_TRUE(client.seal(pattern(1), next));
    EXPECT_TRUE(server.open(next, plain).bad);
  }
  {
    auto [client, server] = connected();
    Bytes wire, plain;
    ASSERT_TRUE(client.seal(pattern(40), wire));
    const auto once = server.open(wire, plain);
    ASSERT_FALSE(once.bad);
    EXPECT_TRUE(server.open(wire, plain).bad);  // the same record again
  }
  {
    auto [client, server] = connected();
    Bytes plain;
    const Bytes tiny = {0x00, 0x0f, 1, 2, 3};  // shorter than a tag
    EXPECT_TRUE(server.open(tiny, plain).bad);
  }
  {
    auto [client, server] = connected();
    Bytes wire, plain;
    ASSERT_TRUE(client.seal(pattern(40), wire));
    const auto part = server.open(std::span(wire).first(wire.size() - 1), plain);
    EXPECT_FALSE(part.bad);
    EXPECT_EQ(part.consumed, 0u);  // waits for the rest
    EXPECT_TRUE(plain.empty());
  }
}

TEST(SecureStreamTest, AnotherSessionsRecordsDoNotOpen) {
  auto [a, b] = connected();
  auto [c, d] = connected();
  Bytes wire, plain;
  ASSERT_TRUE(a.seal(pattern(20), wire));
  EXPECT_TRUE(d.open(wire, plain).bad);
  EXPECT_NE(a.handshakeHash(), c.handshakeHash());
}

}  // namespace
}  // namespace fwgate::crypto
