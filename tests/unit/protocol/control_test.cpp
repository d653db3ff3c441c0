// The control-channel codec: frames, attributes, every message round trip, one byte at a time.
#include "protocol/control.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <vector>

namespace fwgate::protocol::control {
namespace {

using Buffer = std::vector<std::uint8_t>;

template <typename M>
Buffer frameOf(std::size_t (*encode)(std::span<std::uint8_t>, const M&), const M& message) {
  Buffer out(4096);
  const std::size_t n = encode(out, message);
  out.resize(n);
  return out;
}

IpAddress v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  IpAddress ip;
  ip.family = 4;
  ip.bytes[0] = a;
  ip.bytes[1] = b;
  ip.bytes[2] = c;
  ip.bytes[3] = d;
  return ip;
}

IpAddress v6Doc(std::uint8_t last) {
  IpAddress ip;
  ip.family = 6;
  ip.bytes = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last};
  return ip;
}

Frame parseWhole(const Buffer& frame) {
  const auto r = parseFrame(frame);
  EXPECT_TRUE(r.complete());
  EXPECT_EQ(r.consumed, frame.size());
  return r.value;
}

TEST(ControlFrame, HeaderCarriesTypeAndLength) {
  Buffer buffer(64);
  FrameWriter w(buffer, MessageType::GetConfig);
  const std::size_t n = w.finish();
  ASSERT_EQ(n, kHeaderSize);
  EXPECT_EQ(buffer[0], 0x03);
  EXPECT_EQ(buffer[1], 0);
  EXPECT_EQ(buffer[2], 0);
  EXPECT_EQ(buffer[3], 0);
  buffer.resize(n);
  const Frame f = parseWhole(buffer);
  EXPECT_EQ(f.type, 0x03);
  EXPECT_TRUE(f.body.empty());
}

TEST(ControlFrame, EveryPrefixNeedsMoreAndTheWholeIsComplete) {
  const Hello hello{kVersion, "alice", "secret", "host1", "curl", "alice", 42};
  const Buffer frame = frameOf(encodeHello, hello);
  ASSERT_GT(frame.size(), kHeaderSize);
  for (std::size_t n = 0; n < frame.size(); ++n) {
    const auto r = parseFrame(Bytes(frame.data(), n));
    EXPECT_TRUE(r.needMore()) << n;
    EXPECT_EQ(r.consumed, 0u);
  }
  Buffer fed;  // one byte at a time, as a reader would accumulate them
  for (std::uint8_t byte : frame) {
    fed.push_back(byte);
    const auto r = parseFrame(fed);
    EXPECT_EQ(r.complete(), fed.size() == frame.size());
  }
}

TEST(ControlFrame, SplitAtEveryOffsetOfTwoFrames) {
  const Buffer a = frameOf(encodeResolve, Resolve{"www.example.com", 0});
  const Buffer b = frameOf(encodeConnect, Connect{{v4(203, 0, 113, 7), 80}, "www.example.com"});
  Buffer both = a;
  both.insert(both.end(), b.begin(), b.end());
  for (std::size_t split = 0; split <= both.size(); ++split) {
    Buffer pending(both.begin(), both.begin() + split);
    std::vector<std::uint8_t> types;
    auto drain = [&] {
      for (;;) {
        const auto r = parseFrame(pending);
        if (!r.complete()) break;
        types.push_back(r.value.type);
        pending.erase(pending.begin(), pending.begin() + r.consumed);
      }
    };
    drain();
    pending.insert(pending.end(), both.begin() + split, both.end());
    drain();
    ASSERT_EQ(types.size(), 2u) << split;
    EXPECT_EQ(types[0], 0x05);
    EXPECT_EQ(types[1], 0x07);
    EXPECT_TRUE(pending.empty());
  }
}

TEST(ControlFrame, LengthPastTheLimitIsInvalidAtOnce) {
  const Buffer header{0x01, 0x10, 0x00, 0x01};  // 1 MiB + 1
  const auto r = parseFrame(header);
  EXPECT_TRUE(r.invalid());
  EXPECT_EQ(r.error, ParseError::BadLength);
}

TEST(ControlFrame, UnknownTypeParsesForTheReceiverToRefuse) {
  const Buffer frame{0x7f, 0, 0, 1, 0xaa};
  const Frame f = parseWhole(frame);
  EXPECT_EQ(f.type, 0x7f);
  EXPECT_EQ(f.body.size(), 1u);
}

TEST(ControlAttributes, TruncatedAttributeStopsTheReader) {
  const Buffer body{0x01, 0x00, 0x02, 0x00};  // says 2 bytes, has 1
  AttributeReader reader(body);
  Tag tag;
  Bytes value;
  EXPECT_FALSE(reader.next(tag, value));
  EXPECT_FALSE(reader.ok());
  const Buffer stub{0x01, 0x00};
  AttributeReader short_(stub);
  EXPECT_FALSE(short_.next(tag, value));
  EXPECT_FALSE(short_.ok());
}

TEST(ControlAttributes, UnknownTagsAreSkipped) {
  Buffer buffer(128);
  FrameWriter w(buffer, MessageType::Hello);
  w.text(static_cast<Tag>(0xEE), "from the future").u16(Tag::Version, kVersion);
  buffer.resize(w.finish());
  Hello hello;
  ASSERT_TRUE(decodeHello(parseWhole(buffer).body, hello));
  EXPECT_EQ(hello.version, kVersion);
}

TEST(ControlAttributes, WriterRefusesWhatDoesNotFit) {
  Buffer small(10);
  FrameWriter w(small, MessageType::Resolve);
  w.text(Tag::Name, "a-name-longer-than-the-buffer");
  EXPECT_EQ(w.finish(), 0u);

  Buffer big(kMaxAttribute + 64);
  FrameWriter tooLong(big, MessageType::Config);
  tooLong.text(Tag::Settings, std::string(kMaxAttribute + 1, 'x'));
  EXPECT_EQ(tooLong.finish(), 0u);

  Buffer tiny(3);
  FrameWriter noHeader(tiny, MessageType::Hello);
  EXPECT_EQ(noHeader.finish(), 0u);

  Buffer any(64);
  FrameWriter badFamily(any, MessageType::Connect);
  badFamily.endpoint(Tag::Destination, Endpoint{});
  EXPECT_EQ(badFamily.finish(), 0u);

  FrameWriter backwards(any, MessageType::Config);
  backwards.range(Tag::Range, {v4(10, 0, 0, 9), v4(10, 0, 0, 1)});
  EXPECT_EQ(backwards.finish(), 0u);
}

TEST(ControlMessages, HelloRoundTrip) {
  const Hello in{kVersion, "alice", "s3cret", "ws1.corp", "curl", "alice", 4242};
  Hello out;
  const Buffer frame1 = frameOf(encodeHello, in);
  ASSERT_TRUE(decodeHello(parseWhole(frame1).body, out));
  EXPECT_EQ(out.version, kVersion);
  EXPECT_EQ(out.user, "alice");
  EXPECT_EQ(out.password, "s3cret");
  EXPECT_EQ(out.host, "ws1.corp");
  EXPECT_EQ(out.application, "curl");
  EXPECT_EQ(out.osUser, "alice");
  EXPECT_EQ(out.pid, 4242u);
}

TEST(ControlMessages, HelloCarriesAKerberosToken) {
  const std::vector<std::uint8_t> token{0x60, 0x82, 0x01, 0x00, 0x06, 0x09};
  Hello in{kVersion, "", "", "ws1.corp", "curl", "alice", 7, 1796357603000};
  in.gssToken = token;
  Hello out;
  const Buffer frame1 = frameOf(encodeHello, in);
  ASSERT_TRUE(decodeHello(parseWhole(frame1).body, out));
  EXPECT_EQ(std::vector<std::uint8_t>(out.gssToken.begin(), out.gssToken.end()), token);
  // An empty token is malformed, not "no token".
  Buffer buffer(64);
  FrameWriter w(buffer, MessageType::Hello);
  w.u16(Tag::Version, kVersion).raw(Tag::GssToken, std::span<const std::uint8_t>{});
  buffer.resize(w.finish());
  EXPECT_FALSE(decodeHello(parseWhole(buffer).body, out));
}

TEST(ControlMessages, HelloWithoutVersionIsRejected) {
  Buffer buffer(64);
  FrameWriter w(buffer, MessageType::Hello);
  w.text(Tag::User, "alice");
  buffer.resize(w.finish());
  Hello out;
  EXPECT_FALSE(decodeHello(parseWhole(buffer).body, out));
}

TEST(ControlMessages, WelcomeRoundTrip) {
  const Welcome in{Status::VersionMismatch, 7, "gw1", "client 1, gateway 7"};
  Welcome out;
  const Buffer frame2 = frameOf(encodeWelcome, in);
  ASSERT_TRUE(decodeWelcome(parseWhole(frame2).body, out));
  EXPECT_EQ(out.status, Status::VersionMismatch);
  EXPECT_EQ(out.version, 7);
  EXPECT_EQ(out.serverName, "gw1");
  EXPECT_EQ(out.message, "client 1, gateway 7");
}

// Version 3's encrypted channel: Hello's Timestamp, a KeyMismatch Welcome's key, KeyOffer and
// the Handshake frame around a Noise message.
TEST(ControlMessages, EncryptedChannelMessagesRoundTrip) {
  Hello stamped{kVersion, "", "", "ws1", "curl", "", 7};
  stamped.timestamp = 1796346913123ull;
  Hello hello;
  const Buffer h = frameOf(encodeHello, stamped);
  ASSERT_TRUE(decodeHello(parseWhole(h).body, hello));
  EXPECT_EQ(hello.timestamp, 1796346913123ull);
  const Buffer plain = frameOf(encodeHello, Hello{kVersion});
  ASSERT_TRUE(decodeHello(parseWhole(plain).body, hello));
  EXPECT_EQ(hello.timestamp, 0u);  // absent: a clear Hello
  {
    Buffer zero(64);
    FrameWriter w(zero, MessageType::Hello);
    w.u16(Tag::Version, kVersion).u64(Tag::Timestamp, 0);
    zero.resize(w.finish());
    EXPECT_FALSE(decodeHello(parseWhole(zero).body, hello));  // a zero Timestamp is malformed
  }

  PublicKey key;
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(i * 7);
  Welcome mismatch{Status::KeyMismatch, kVersion, "gw1", "another key"};
  mismatch.publicKey = key;
  Welcome welcome;
  const Buffer w = frameOf(encodeWelcome, mismatch);
  ASSERT_TRUE(decodeWelcome(parseWhole(w).body, welcome));
  EXPECT_EQ(welcome.status, Status::KeyMismatch);
  EXPECT_EQ(welcome.publicKey, key);
  EXPECT_EQ(errnoFor(Status::KeyMismatch), EACCES);
  EXPECT_EQ(errnoFor(Status::EncryptionRequired), EACCES);
  EXPECT_EQ(errnoFor(Status::Replayed), EPROTO);

  KeyOffer offer;
  const Buffer o = frameOf(encodeKeyOffer, KeyOffer{kVersion, key, "gw1"});
  ASSERT_TRUE(decodeKeyOffer(parseWhole(o).body, offer));
  EXPECT_EQ(offer.version, kVersion);
  EXPECT_EQ(offer.publicKey, key);
  EXPECT_EQ(offer.serverName, "gw1");
  {
    Buffer shortKey(64);
    FrameWriter k(shortKey, MessageType::KeyOffer);
    k.u16(Tag::Version, kVersion).raw(Tag::PublicKey, Bytes(key).first(31));
    shortKey.resize(k.finish());
    EXPECT_FALSE(decodeKeyOffer(parseWhole(shortKey).body, offer));
    Buffer noKey(64);
    FrameWriter n(noKey, MessageType::KeyOffer);
    n.u16(Tag::Version, kVersion);
    noKey.resize(n.finish());
    EXPECT_FALSE(decodeKeyOffer(parseWhole(noKey).body, offer));
  }

  const Buffer message = {1, 2, 3, 4, 5};
  Buffer frame(16);
  const std::size_t n = encodeHandshake(frame, message);
  ASSERT_EQ(n, kHeaderSize + message.size());
  frame.resize(n);
  const Frame parsed = parseWhole(frame);
  EXPECT_EQ(parsed.type, static_cast<std::uint8_t>(MessageType::Handshake));
  EXPECT_TRUE(std::equal(parsed.body.begin(), parsed.body.end(), message.begin(), message.end()));
  Buffer tooSmall(6);
  EXPECT_EQ(encodeHandshake(tooSmall, message), 0u);
}

TEST(ControlMessages, StatusOutOfRangeIsRejected) {
  Buffer buffer(64);
  FrameWriter w(buffer, MessageType::Welcome);
  w.u8(Tag::Status, kMaxStatus + 1).u16(Tag::Version, 1);
  buffer.resize(w.finish());
  Welcome out;
  EXPECT_FALSE(decodeWelcome(parseWhole(buffer).body, out));
}

TEST(ControlMessages, ResolveRoundTripAndFamilies) {
  Resolve out;
  const Buffer frame3 = frameOf(encodeResolve, Resolve{"a.example", 6});
  ASSERT_TRUE(decodeResolve(parseWhole(frame3).body, out));
  EXPECT_EQ(out.name, "a.example");
  EXPECT_EQ(out.family, 6);
  EXPECT_FALSE(
      decodeResolve(parseWhole(frameOf(encodeResolve, Resolve{"a.example", 5})).body, out));
  Buffer buffer(16);
  FrameWriter w(buffer, MessageType::Resolve);
  buffer.resize(w.finish());
  EXPECT_FALSE(decodeResolve(parseWhole(buffer).body, out));  // no name
}

TEST(ControlMessages, ResolvedKeepsOrderAndCapsTheCount) {
  Resolved in;
  in.status = Status::Ok;
  in.canonical = "www.example.com";
  in.addresses[0] = v4(203, 0, 113, 7);
  in.addresses[1] = v6Doc(7);
  in.addresses[2] = v4(203, 0, 113, 8);
  in.count = 3;
  Resolved out;
  const Buffer frame4 = frameOf(encodeResolved, in);
  ASSERT_TRUE(decodeResolved(parseWhole(frame4).body, out));
  EXPECT_EQ(out.status, Status::Ok);
  EXPECT_EQ(out.canonical, "www.example.com");
  ASSERT_EQ(out.count, 3u);
  EXPECT_EQ(out.addresses[0], v4(203, 0, 113, 7));
  EXPECT_EQ(out.addresses[1], v6Doc(7));
  EXPECT_EQ(out.addresses[2], v4(203, 0, 113, 8));

  Buffer buffer(4096);
  FrameWriter w(buffer, MessageType::Resolved);
  w.u8(Tag::Status, 0);
  for (int i = 0; i < 40; ++i) w.address(Tag::Address, v4(10, 0, 0, static_cast<std::uint8_t>(i)));
  buffer.resize(w.finish());
  ASSERT_TRUE(decodeResolved(parseWhole(buffer).body, out));
  EXPECT_EQ(out.count, kMaxResolvedAddresses);
  EXPECT_EQ(out.addresses[31], v4(10, 0, 0, 31));
}

TEST(ControlMessages, ResolvedWithABadAddressIsRejected) {
  Buffer buffer(64);
  FrameWriter w(buffer, MessageType::Resolved);
  const std::uint8_t bad[] = {4, 1, 2, 3};  // family 4 with three bytes
  w.u8(Tag::Status, 0).raw(Tag::Address, bad);
  buffer.resize(w.finish());
  Resolved out;
  EXPECT_FALSE(decodeResolved(parseWhole(buffer).body, out));
}

TEST(ControlMessages, ConnectAndConnectedRoundTrip) {
  const Connect in{{v6Doc(1), 443}, "ipv6.example"};
  Connect out;
  const Buffer frame5 = frameOf(encodeConnect, in);
  ASSERT_TRUE(decodeConnect(parseWhole(frame5).body, out));
  EXPECT_EQ(out.destination, in.destination);
  EXPECT_EQ(out.nameHint, "ipv6.example");

  const Connected reply{Status::Refused, {v4(198, 51, 100, 1), 40000}, "FTP", "connect refused"};
  Connected got;
  const Buffer frame6 = frameOf(encodeConnected, reply);
  ASSERT_TRUE(decodeConnected(parseWhole(frame6).body, got));
  EXPECT_EQ(got.status, Status::Refused);
  EXPECT_EQ(got.bound, reply.bound);
  EXPECT_EQ(got.definition, "FTP");
  EXPECT_EQ(got.message, "connect refused");

  const Connected bare{Status::Ok, {}, {}, {}};
  const Buffer frame7 = frameOf(encodeConnected, bare);
  ASSERT_TRUE(decodeConnected(parseWhole(frame7).body, got));
  EXPECT_EQ(got.bound.address.family, 0);
}

TEST(ControlMessages, RemotedListenRoundTrips) {
  const BindRequest bind{{v4(203, 0, 113, 1), 0}, BindMode::Server};
  BindRequest gotBind;
  const Buffer b = frameOf(encodeBind, bind);
  ASSERT_TRUE(decodeBind(parseWhole(b).body, gotBind));
  EXPECT_EQ(gotBind.requested, bind.requested);
  EXPECT_EQ(gotBind.mode, BindMode::Server);

  Token token{};
  for (std::size_t i = 0; i < token.size(); ++i) token[i] = static_cast<std::uint8_t>(i * 7 + 1);
  const BoundReply bound{Status::Ok, {v6Doc(9), 4321}, token, "FTP", {}};
  BoundReply gotBound;
  const Buffer c = frameOf(encodeBound, bound);
  ASSERT_TRUE(decodeBound(parseWhole(c).body, gotBound));
  EXPECT_EQ(gotBound.bound, bound.bound);
  EXPECT_EQ(gotBound.token, token);
  EXPECT_EQ(gotBound.definition, "FTP");

  // A refusal carries no address and no token, and needs none.
  const BoundReply denied{Status::Denied, {}, {}, {}, "no primary connection"};
  const Buffer d = frameOf(encodeBound, denied);
  ASSERT_TRUE(decodeBound(parseWhole(d).body, gotBound));
  EXPECT_EQ(gotBound.status, Status::Denied);
  EXPECT_EQ(gotBound.message, "no primary connection");

  ListenRequest listen{};
  const Buffer e = frameOf(encodeListen, ListenRequest{41234, 5});
  ASSERT_TRUE(decodeListen(parseWhole(e).body, listen));
  EXPECT_EQ(listen.localPort, 41234);
  EXPECT_EQ(listen.backlog, 5);
  ListeningReply listening;
  const Buffer f = frameOf(encodeListening, ListeningReply{Status::Ok, {}});
  ASSERT_TRUE(decodeListening(parseWhole(f).body, listening));
  EXPECT_EQ(listening.status, Status::Ok);

  const AcceptedNotice accepted{token, {v4(198, 51, 100, 7), 20}};
  AcceptedNotice gotAccepted;
  const Buffer g = frameOf(encodeAccepted, accepted);
  ASSERT_TRUE(decodeAccepted(parseWhole(g).body, gotAccepted));
  EXPECT_EQ(gotAccepted.token, token);
  EXPECT_EQ(gotAccepted.peer, accepted.peer);
}

TEST(ControlMessages, RemotedListenRejectsIncompleteMessages) {
  Buffer buffer(128);
  // Listen without the client's own port: the gateway would have nowhere to deliver.
  FrameWriter w(buffer, MessageType::Listen);
  w.u16(Tag::Backlog, 5);
  buffer.resize(w.finish());
  ListenRequest listen;
  EXPECT_FALSE(decodeListen(parseWhole(buffer).body, listen));
  // An Ok Bound without a token.
  Buffer ok(128);
  FrameWriter o(ok, MessageType::Bound);
  o.u8(Tag::Status, 0).endpoint(Tag::Bound, {v4(203, 0, 113, 1), 1500});
  ok.resize(o.finish());
  BoundReply bound;
  EXPECT_FALSE(decodeBound(parseWhole(ok).body, bound));
  // A token of the wrong size.
  Buffer shortToken(128);
  FrameWriter t(shortToken, MessageType::Accepted);
  const std::uint8_t eight[8] = {};
  t.raw(Tag::Token, eight).endpoint(Tag::Peer, {v4(198, 51, 100, 7), 20});
  shortToken.resize(t.finish());
  AcceptedNotice accepted;
  EXPECT_FALSE(decodeAccepted(parseWhole(shortToken).body, accepted));
}

TEST(ControlMessages, UdpAssociateRoundTrips) {
  UdpAssociateRequest request;
  const Buffer a = frameOf(encodeUdpAssociate, UdpAssociateRequest{5353});
  ASSERT_TRUE(decodeUdpAssociate(parseWhole(a).body, request));
  EXPECT_EQ(request.localPort, 5353);
  const Buffer zero = frameOf(encodeUdpAssociate, UdpAssociateRequest{0});
  EXPECT_FALSE(decodeUdpAssociate(parseWhole(zero).body, request));  // no port: nowhere to relay

  UdpAssociatedReply reply;
  const Buffer b =
      frameOf(encodeUdpAssociated, UdpAssociatedReply{Status::Ok, {v4(10, 0, 0, 1), 40000}, {}});
  ASSERT_TRUE(decodeUdpAssociated(parseWhole(b).body, reply));
  EXPECT_EQ(reply.relay, (Endpoint{v4(10, 0, 0, 1), 40000}));
  const Buffer c = frameOf(encodeUdpAssociated, UdpAssociatedReply{Status::Denied, {}, "no"});
  ASSERT_TRUE(decodeUdpAssociated(parseWhole(c).body, reply));
  EXPECT_EQ(reply.status, Status::Denied);
  EXPECT_EQ(reply.message, "no");
}

TEST(ControlMessages, UdpAssociatePublishRoundTrips) {
  UdpAssociateRequest request;
  const Buffer a = frameOf(encodeUdpAssociate, UdpAssociateRequest{5004, true, 5004});
  ASSERT_TRUE(decodeUdpAssociate(parseWhole(a).body, request));
  EXPECT_EQ(request.localPort, 5004);
  EXPECT_TRUE(request.publish);
  EXPECT_EQ(request.publishPort, 5004);
  // Without the attribute, no publish (the association of 1.x clients).
  const Buffer plain = frameOf(encodeUdpAssociate, UdpAssociateRequest{5004});
  ASSERT_TRUE(decodeUdpAssociate(parseWhole(plain).body, request));
  EXPECT_FALSE(request.publish);
  // Publishing on port 0 is refused: the port is what the definition and the rules decide.
  const Buffer zero = frameOf(encodeUdpAssociate, UdpAssociateRequest{5004, true, 0});
  EXPECT_FALSE(decodeUdpAssociate(parseWhole(zero).body, request));

  UdpAssociatedReply reply;
  UdpAssociatedReply published{Status::Ok, {v4(10, 0, 0, 1), 40000}, {}};
  published.published = {v4(203, 0, 113, 1), 5004};
  const Buffer b = frameOf(encodeUdpAssociated, published);
  ASSERT_TRUE(decodeUdpAssociated(parseWhole(b).body, reply));
  EXPECT_EQ(reply.relay, (Endpoint{v4(10, 0, 0, 1), 40000}));
  EXPECT_EQ(reply.published, (Endpoint{v4(203, 0, 113, 1), 5004}));
  // A plain association's reply carries none.
  const Buffer c =
      frameOf(encodeUdpAssociated, UdpAssociatedReply{Status::Ok, {v4(10, 0, 0, 1), 40000}, {}});
  ASSERT_TRUE(decodeUdpAssociated(parseWhole(c).body, reply));
  EXPECT_EQ(reply.published.address.family, 0);
}

TEST(DatagramHeader, RoundTripsAndRejects) {
  std::uint8_t out[kMaxDatagramHeader];
  const Endpoint v4peer{v4(198, 51, 100, 53), 53};
  ASSERT_EQ(encodeDatagramHeader(out, v4peer), 10u);
  const std::uint8_t expected[] = {0, 0, 0, 1, 198, 51, 100, 53, 0, 53};
  EXPECT_TRUE(std::equal(std::begin(expected), std::end(expected), out));
  Endpoint got;
  EXPECT_EQ(decodeDatagramHeader({out, 10}, got), 10u);
  EXPECT_EQ(got, v4peer);
  const Endpoint v6peer{v6Doc(7), 443};
  ASSERT_EQ(encodeDatagramHeader(out, v6peer), 22u);
  EXPECT_EQ(decodeDatagramHeader({out, 22}, got), 22u);
  EXPECT_EQ(got, v6peer);
  EXPECT_EQ(decodeDatagramHeader({out, 21}, got), 0u);     // short
  EXPECT_EQ(encodeDatagramHeader({out, 21}, v6peer), 0u);  // does not fit
  out[2] = 1;                                              // a fragment
  EXPECT_EQ(decodeDatagramHeader({out, 22}, got), 0u);
  const std::uint8_t name[] = {0, 0, 0, 3, 4, 'h', 'o', 's', 't', 0, 53};
  EXPECT_EQ(decodeDatagramHeader(name, got), 0u);  // names never come from the relay
  EXPECT_EQ(encodeDatagramHeader(out, Endpoint{}), 0u);
}

TEST(ControlMessages, ConfigValidation) {
  Buffer buffer(512);
  FrameWriter w(buffer, MessageType::Config);
  w.u8(Tag::Status, 0)
      .u16(Tag::Version, kVersion)
      .range(Tag::Range, {v4(10, 0, 1, 0), v4(10, 0, 1, 255)})
      .range(Tag::Range, {v6Doc(0), v6Doc(255)})
      .text(Tag::DomainSuffix, ".corp.example")
      .text(Tag::Settings, "[curl]\nNameResolution=R\n")
      .u32(Tag::RefreshSeconds, 21600);
  buffer.resize(w.finish());
  EXPECT_TRUE(validConfig(parseWhole(buffer).body));

  Buffer mixed(64);
  FrameWriter m(mixed, MessageType::Config);
  const std::uint8_t range[] = {4, 10, 0, 0, 1, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  m.u8(Tag::Status, 0).raw(Tag::Range, range);
  mixed.resize(m.finish());
  EXPECT_FALSE(validConfig(parseWhole(mixed).body));
}

TEST(ControlStatus, ErrnoMapping) {
  EXPECT_EQ(errnoFor(Status::Ok), 0);
  EXPECT_EQ(errnoFor(Status::Denied), EACCES);
  EXPECT_EQ(errnoFor(Status::Refused), ECONNREFUSED);
  EXPECT_EQ(errnoFor(Status::TimedOut), ETIMEDOUT);
  EXPECT_EQ(errnoFor(Status::NetworkUnreachable), ENETUNREACH);
  EXPECT_EQ(errnoFor(Status::HostUnreachable), EHOSTUNREACH);
  for (int e : {ECONNREFUSED, ETIMEDOUT, ENETUNREACH, EHOSTUNREACH, EACCES, EAFNOSUPPORT}) {
    EXPECT_EQ(errnoFor(statusForErrno(e)), e) << e;
  }
  EXPECT_EQ(statusForErrno(EIO), Status::GeneralFailure);
  for (int s = 0; s <= kMaxStatus; ++s) {
    EXPECT_FALSE(statusText(static_cast<Status>(s)).empty());
  }
}

TEST(ControlMessages, PublishBindRoundTrips) {
  // A published listen: the wildcard address, port 0, mode 2 on the wire.
  const BindRequest bind{{v4(0, 0, 0, 0), 0}, BindMode::Publish};
  const Buffer b = frameOf(encodeBind, bind);
  BindRequest got;
  ASSERT_TRUE(decodeBind(parseWhole(b).body, got));
  EXPECT_EQ(got.requested, bind.requested);
  EXPECT_EQ(got.mode, BindMode::Publish);
  EXPECT_EQ(static_cast<std::uint8_t>(BindMode::Publish), 2);

  // A mode after Publish is malformed.
  Buffer bad(128);
  FrameWriter w(bad, MessageType::Bind);
  w.endpoint(Tag::Requested, bind.requested).u8(Tag::BindMode, 3);
  bad.resize(w.finish());
  ASSERT_FALSE(bad.empty());
  EXPECT_FALSE(decodeBind(parseWhole(bad).body, got));
}

}  // namespace
}  // namespace fwgate::protocol::control
