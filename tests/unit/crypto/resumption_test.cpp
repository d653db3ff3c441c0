// Resumption: a ticket opens only with the key it was sealed with and gives back what went in;
// both sides of a resumed connection derive the same keys from the handshake's resumption
// secret, the ticket and the counter, and another counter gives other keys.
#include "crypto/resumption.hpp"

#include <gtest/gtest.h>

#include <sodium.h>

#include "crypto/secure_stream.hpp"

namespace fwgate::crypto {
namespace {

Transport finishedHandshake(bool initiatorSide, const KeyPair& client, const KeyPair& server,
                            Transport* other) {
  auto i = HandshakeIK::initiator(client, server.publicKey, {});
  auto r = HandshakeIK::responder(server, {});
  r.read(*i.write({}));
  i.read(*r.write({}));
  *other = initiatorSide ? r.split() : i.split();
  return initiatorSide ? i.split() : r.split();
}

TEST(ResumptionTest, BothSidesOfAHandshakeHaveTheSameSecretAndNoOneElse) {
  const KeyPair client = KeyPair::generate();
  const KeyPair server = KeyPair::generate();
  Transport gatewaySide;
  const Transport clientSide = finishedHandshake(true, client, server, &gatewaySide);
  EXPECT_EQ(clientSide.resumption, gatewaySide.resumption);
  EXPECT_NE(clientSide.resumption, clientSide.handshakeHash);  // not the public transcript
  Transport again;
  EXPECT_NE(finishedHandshake(true, client, server, &again).resumption, clientSide.resumption);
}

TEST(ResumptionTest, TicketsOpenOnlyWithTheirKey) {
  const KeyPair gateway = KeyPair::generate();
  const Key key = ticketKey(gateway);
  EXPECT_EQ(key, ticketKey(KeyPair::fromSecret(gateway.secretKey)));  // survives a restart
  TicketContents in;
  in.resumption = KeyPair::generate().publicKey;
  in.clientStatic = KeyPair::generate().publicKey;
  in.expiresMs = 1796346913123ull;
  const Bytes ticket = issueTicket(key, in);
  ASSERT_EQ(ticket.size(), kTicketSize);
  const auto out = openTicket(key, ticket);
  ASSERT_TRUE(out);
  EXPECT_EQ(out->resumption, in.resumption);
  EXPECT_EQ(out->clientStatic, in.clientStatic);
  EXPECT_EQ(out->expiresMs, in.expiresMs);
  EXPECT_NE(issueTicket(key, in), ticket);  // a fresh nonce each time
  EXPECT_FALSE(openTicket(ticketKey(KeyPair::generate()), ticket));
  for (std::size_t at = 0; at < ticket.size(); at += 5) {
    Bytes bad = ticket;
    bad[at] ^= 0x04;
    EXPECT_FALSE(openTicket(key, bad)) << at;
  }
  EXPECT_FALSE(openTicket(key, std::span(ticket).first(kTicketSize - 1)));
}

TEST(ResumptionTest, AResumedConnectionsSidesAgreeAndEachCounterIsItsOwn) {
  const Key secret = KeyPair::generate().publicKey;
  const Bytes ticket(kTicketSize, 7);
  SecureStream client(resumedTransport(secret, ticket, 1, true));
  SecureStream gateway(resumedTransport(secret, ticket, 1, false));
  Bytes wire, plain;
  ASSERT_TRUE(client.seal(Bytes{'h', 'i'}, wire));
  EXPECT_FALSE(gateway.open(wire, plain).bad);
  EXPECT_EQ(plain, (Bytes{'h', 'i'}));
  Bytes down, back;
  ASSERT_TRUE(gateway.seal(Bytes{'o', 'k'}, down));
  EXPECT_FALSE(client.open(down, back).bad);
  EXPECT_EQ(back, (Bytes{'o', 'k'}));
  // The same first record under counter 2, or with another secret, does not open.
  SecureStream other(resumedTransport(secret, ticket, 2, false));
  EXPECT_TRUE(other.open(wire, plain).bad);
  SecureStream stranger(resumedTransport(KeyPair::generate().publicKey, ticket, 1, false));
  EXPECT_TRUE(stranger.open(wire, plain).bad);
}

}  // namespace
TEST(Resumption, ConnectionIdNamesTicketAndCounter) {
  const std::vector<std::uint8_t> ticket(kTicketSize, 0x42);
  const Key a = resumedConnectionId(ticket, 1);
  EXPECT_EQ(a, resumedConnectionId(ticket, 1));
  EXPECT_NE(a, resumedConnectionId(ticket, 2));
  std::vector<std::uint8_t> other = ticket;
  other[0] ^= 1;
  EXPECT_NE(a, resumedConnectionId(other, 1));
  // As the Resume message carries them: the ticket, then the counter big-endian.
  std::vector<std::uint8_t> message = ticket;
  for (int i = 0; i < 8; ++i) message.push_back(i == 7 ? 1 : 0);
  Key direct;
  crypto_generichash(direct.data(), direct.size(), message.data(), message.size(), nullptr, 0);
  EXPECT_EQ(a, direct);
}

}  // namespace fwgate::crypto
