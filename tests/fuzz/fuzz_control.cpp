// The control-channel codec. Invariants: consumed <= size; a Complete frame re-parses alone to the
// same type and body and is NeedMore one byte short; every decoder either rejects a body or yields
// a message that re-encodes and decodes to the same fields; the attribute reader never reads past
// the body. Inputs are parsed from exact-size heap copies so ASan sees any read past the span.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "protocol/control.hpp"

namespace {

using namespace fwgate::protocol;
using namespace fwgate::protocol::control;
using Buffer = std::vector<std::uint8_t>;

// Encodes `message`, parses the frame back and hands its body to `decode`.
template <typename M, typename Encode, typename Decode>
bool roundTrip(const M& message, Encode encode, Decode decode, M& out) {
  static Buffer scratch(kHeaderSize + 8 * kMaxAttribute);
  const std::size_t n = encode(std::span<std::uint8_t>(scratch), message);
  if (n == 0) return false;  // too large to send: the encoder refused, nothing partial
  // The decoded views point into `held`: it lives until the next round trip.
  static Buffer held;
  held.assign(scratch.begin(), scratch.begin() + n);
  const Buffer& buffer = held;
  const auto frame = parseFrame(buffer);
  FUZZ_CHECK(frame.complete() && frame.consumed == n);
  return decode(frame.value.body, out);
}

void checkBody(Bytes body) {
  {
    AttributeReader reader(body);
    Tag tag;
    Bytes value;
    std::size_t seen = 0;
    while (reader.next(tag, value)) {
      FUZZ_CHECK(value.data() >= body.data() &&
                 value.data() + value.size() <= body.data() + body.size());
      seen += 3 + value.size();
    }
    FUZZ_CHECK(!reader.ok() || seen == body.size());
  }
  Hello hello;
  if (decodeHello(body, hello)) {
    Hello again;
    if (roundTrip(hello, encodeHello, decodeHello, again)) {
      FUZZ_CHECK(again.version == hello.version && again.user == hello.user &&
                 again.password == hello.password && again.host == hello.host &&
                 again.application == hello.application && again.osUser == hello.osUser &&
                 again.pid == hello.pid && again.timestamp == hello.timestamp &&
                 std::equal(again.gssToken.begin(), again.gssToken.end(), hello.gssToken.begin(),
                            hello.gssToken.end()));
    }
  }
  Welcome welcome;
  if (decodeWelcome(body, welcome)) {
    Welcome again;
    FUZZ_CHECK(roundTrip(welcome, encodeWelcome, decodeWelcome, again));
    FUZZ_CHECK(again.status == welcome.status && again.version == welcome.version &&
               again.serverName == welcome.serverName && again.message == welcome.message &&
               again.publicKey == welcome.publicKey &&
               std::equal(again.ticket.begin(), again.ticket.end(), welcome.ticket.begin(),
                          welcome.ticket.end()) &&
               (welcome.ticket.empty() || again.ticketLifetime == welcome.ticketLifetime));
  }
  KeyOffer offer;
  if (decodeKeyOffer(body, offer)) {
    KeyOffer again;
    FUZZ_CHECK(roundTrip(offer, encodeKeyOffer, decodeKeyOffer, again));
    FUZZ_CHECK(again.version == offer.version && again.publicKey == offer.publicKey &&
               again.serverName == offer.serverName);
  }
  Resolve resolve;
  if (decodeResolve(body, resolve)) {
    FUZZ_CHECK(!resolve.name.empty());
    Resolve again;
    FUZZ_CHECK(roundTrip(resolve, encodeResolve, decodeResolve, again));
    FUZZ_CHECK(again.name == resolve.name && again.family == resolve.family);
  }
  Resolved resolved;
  if (decodeResolved(body, resolved)) {
    FUZZ_CHECK(resolved.count <= kMaxResolvedAddresses);
    Resolved again;
    FUZZ_CHECK(roundTrip(resolved, encodeResolved, decodeResolved, again));
    FUZZ_CHECK(again.status == resolved.status && again.count == resolved.count &&
               again.canonical == resolved.canonical && again.message == resolved.message);
    for (std::size_t i = 0; i < resolved.count; ++i) {
      FUZZ_CHECK(resolved.addresses[i].family == 4 || resolved.addresses[i].family == 6);
      FUZZ_CHECK(again.addresses[i] == resolved.addresses[i]);
    }
  }
  Connect connect;
  if (decodeConnect(body, connect)) {
    Connect again;
    FUZZ_CHECK(roundTrip(connect, encodeConnect, decodeConnect, again));
    FUZZ_CHECK(again.destination == connect.destination && again.nameHint == connect.nameHint);
  }
  Connected connected;
  if (decodeConnected(body, connected)) {
    Connected again;
    FUZZ_CHECK(roundTrip(connected, encodeConnected, decodeConnected, again));
    FUZZ_CHECK(again.status == connected.status && again.bound == connected.bound &&
               again.definition == connected.definition && again.message == connected.message);
  }
  BindRequest bind;
  if (decodeBind(body, bind)) {
    BindRequest again;
    FUZZ_CHECK(roundTrip(bind, encodeBind, decodeBind, again));
    FUZZ_CHECK(again.requested == bind.requested && again.mode == bind.mode);
  }
  BoundReply bound;
  if (decodeBound(body, bound)) {
    BoundReply again;
    FUZZ_CHECK(roundTrip(bound, encodeBound, decodeBound, again));
    FUZZ_CHECK(again.status == bound.status && again.definition == bound.definition &&
               again.message == bound.message);
    FUZZ_CHECK(bound.status != Status::Ok ||
               (again.bound == bound.bound && again.token == bound.token));
  }
  ListenRequest listen;
  if (decodeListen(body, listen)) {
    ListenRequest again;
    FUZZ_CHECK(roundTrip(listen, encodeListen, decodeListen, again));
    FUZZ_CHECK(again.backlog == listen.backlog && again.localPort == listen.localPort);
  }
  ListeningReply listening;
  if (decodeListening(body, listening)) {
    ListeningReply again;
    FUZZ_CHECK(roundTrip(listening, encodeListening, decodeListening, again));
    FUZZ_CHECK(again.status == listening.status && again.message == listening.message);
  }
  AcceptedNotice accepted;
  if (decodeAccepted(body, accepted)) {
    AcceptedNotice again;
    FUZZ_CHECK(roundTrip(accepted, encodeAccepted, decodeAccepted, again));
    FUZZ_CHECK(again.token == accepted.token && again.peer == accepted.peer);
  }
  UdpAssociateRequest udp;
  if (decodeUdpAssociate(body, udp)) {
    UdpAssociateRequest again;
    FUZZ_CHECK(roundTrip(udp, encodeUdpAssociate, decodeUdpAssociate, again));
    FUZZ_CHECK(again.localPort == udp.localPort);
    FUZZ_CHECK(again.publish == udp.publish && again.publishPort == udp.publishPort);
  }
  UdpAssociatedReply associated;
  if (decodeUdpAssociated(body, associated)) {
    UdpAssociatedReply again;
    FUZZ_CHECK(roundTrip(associated, encodeUdpAssociated, decodeUdpAssociated, again));
    FUZZ_CHECK(again.status == associated.status && again.message == associated.message);
    FUZZ_CHECK(associated.status != Status::Ok || again.relay == associated.relay);
    FUZZ_CHECK(associated.status != Status::Ok || again.published == associated.published);
  }
  // The datagram header: what decodes re-encodes to the same bytes.
  Endpoint peer;
  if (const std::size_t n = decodeDatagramHeader(body, peer); n != 0) {
    std::uint8_t out[kMaxDatagramHeader];
    FUZZ_CHECK(n <= body.size() && encodeDatagramHeader(out, peer) == n);
    FUZZ_CHECK(std::equal(out + 3, out + n, body.begin() + 3));
  }
  (void)validConfig(body);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Buffer input(data, data + size);
  const auto r = parseFrame(input);
  FUZZ_CHECK(r.consumed <= size);
  switch (r.status) {
    case ParseStatus::Complete: {
      FUZZ_CHECK(r.consumed == kHeaderSize + r.value.body.size());
      const Buffer alone(input.begin(), input.begin() + r.consumed);
      const auto again = parseFrame(alone);
      FUZZ_CHECK(again.complete() && again.value.type == r.value.type &&
                 again.value.body.size() == r.value.body.size());
      const Buffer shorter(input.begin(), input.begin() + r.consumed - 1);
      FUZZ_CHECK(parseFrame(shorter).needMore());
      const Buffer body(r.value.body.begin(), r.value.body.end());
      checkBody(body);
      break;
    }
    case ParseStatus::NeedMore:
      FUZZ_CHECK(r.consumed == 0 && r.error == ParseError::None);
      break;
    case ParseStatus::Invalid:
      FUZZ_CHECK(r.error == ParseError::BadLength && size >= kHeaderSize);
      break;
  }
  // The body decoders also take raw input, as if it were a body: no header to protect them.
  checkBody(input);
  return 0;
}
