// The encrypted channel's decoders: a Noise IK message 1 read by the gateway, a message 2 read by
// the client, the record layer's open(), and a resumption ticket opened by the gateway. Keys and
// ephemerals are fixed, so genuine messages are reproducible. Invariants: the first byte picks the
// decoder; input that is not the genuine message (or the genuine one with any byte changed) is
// refused and leaves the handshake failed; open() consumes at most what it was given, only whole
// records, and yields plaintext only for records that authenticate, which random bytes never do;
// nothing reads past the input (ASan, exact-size heap copies).
#include <cstdint>
#include <cstring>
#include <vector>

#include "crypto/noise.hpp"
#include "crypto/resumption.hpp"
#include "crypto/secure_stream.hpp"
#include "fuzz_check.hpp"

namespace {

using namespace fwgate::crypto;

KeyPair fixed(std::uint8_t seed) {
  Key secret;
  for (std::size_t i = 0; i < secret.size(); ++i) secret[i] = static_cast<std::uint8_t>(seed + i);
  return KeyPair::fromSecret(secret);
}

const std::vector<std::uint8_t> kPrologue = {'f', 'w', 'g', 'a', 't', 'e'};

struct Genuine {
  Bytes message1;
  Bytes message2;
};

const Genuine& genuine() {
  static const Genuine g = [] {
    auto i = HandshakeIK::initiator(fixed(1), fixed(2).publicKey, kPrologue);
    i.useEphemeral(fixed(3));
    auto r = HandshakeIK::responder(fixed(2), kPrologue);
    r.useEphemeral(fixed(4));
    Genuine out;
    out.message1 = *i.write(Bytes{'h', 'i'});
    r.read(out.message1);
    out.message2 = *r.write(Bytes{'o', 'k'});
    return out;
  }();
  return g;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t mode = data[0] % 4;
  const Bytes input(data + 1, data + size);
  const Genuine& g = genuine();
  if (mode == 0) {
    auto r = HandshakeIK::responder(fixed(2), kPrologue);
    r.useEphemeral(fixed(4));
    const auto payload = r.read(input);
    FUZZ_CHECK(payload.has_value() == (input == g.message1));
    FUZZ_CHECK(r.failed() != payload.has_value());
    if (payload) FUZZ_CHECK((*payload == Bytes{'h', 'i'}));
  } else if (mode == 1) {
    auto i = HandshakeIK::initiator(fixed(1), fixed(2).publicKey, kPrologue);
    i.useEphemeral(fixed(3));
    FUZZ_CHECK(i.write(Bytes{'h', 'i'}) == g.message1);
    const auto payload = i.read(input);
    FUZZ_CHECK(payload.has_value() == (input == g.message2));
    FUZZ_CHECK(i.failed() != payload.has_value());
    FUZZ_CHECK(i.complete() == payload.has_value());
  } else if (mode == 3) {
    // A ticket: only one sealed with the gateway's ticket key opens, and this one never was.
    static const Key key = ticketKey(fixed(2));
    static const Bytes genuineTicket =
        issueTicket(key, {fixed(5).publicKey, fixed(6).publicKey, 7});
    const auto opened = openTicket(key, input);
    FUZZ_CHECK(opened.has_value() == (input == genuineTicket));
    if (opened) FUZZ_CHECK(opened->expiresMs == 7 && opened->clientStatic == fixed(6).publicKey);
    FUZZ_CHECK(openTicket(key, genuineTicket).has_value());
  } else {
    // A live session: the wire is the fuzzer's bytes, behind one genuine record when the input's
    // second byte is odd.
    auto i = HandshakeIK::initiator(fixed(1), fixed(2).publicKey, kPrologue);
    i.useEphemeral(fixed(3));
    auto r = HandshakeIK::responder(fixed(2), kPrologue);
    r.useEphemeral(fixed(4));
    r.read(*i.write({}));
    i.read(*r.write({}));
    SecureStream client(i.split());
    SecureStream server(r.split());
    Bytes wire;
    const bool lead = !input.empty() && (input[0] & 1);
    if (lead) FUZZ_CHECK(client.seal(Bytes{'g', 'o'}, wire));
    const std::size_t genuineBytes = wire.size();
    wire.insert(wire.end(), input.begin(), input.end());
    const Bytes exact(wire);
    Bytes plain;
    const auto o = server.open(exact, plain);
    FUZZ_CHECK(o.consumed <= exact.size());
    // Random bytes after the genuine record never authenticate: the plaintext is the genuine
    // record's, or nothing.
    FUZZ_CHECK(o.consumed == (lead ? genuineBytes : 0));
    FUZZ_CHECK(plain == (lead ? Bytes{'g', 'o'} : Bytes{}));
    if (o.bad) FUZZ_CHECK(server.open(exact, plain).bad);
  }
  return 0;
}
