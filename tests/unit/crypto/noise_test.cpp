// Noise_IK_25519_ChaChaPoly_SHA256: fwgate's handshake against itself (keys, payloads, every
// failure), and against python3-dissononce (noise_peer.py) in both roles, with fresh keys each
// run: the same messages, payloads, handshake hash and transport messages either way.
#include "crypto/noise.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>

#ifndef FWGATE_SOURCE_DIR
#error "FWGATE_SOURCE_DIR must be defined for the tests"
#endif

extern char** environ;

namespace fwgate::crypto {
namespace {

Bytes bytesOf(std::string_view s) {
  return Bytes(s.begin(), s.end());
}
std::string textOf(const Bytes& b) {
  return std::string(b.begin(), b.end());
}

std::string hex(std::span<const std::uint8_t> b) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (auto c : b) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out.empty() ? "-" : out;
}

Bytes unhex(const std::string& s) {
  Bytes out;
  if (s == "-") return out;
  for (std::size_t i = 0; i + 1 < s.size(); i += 2) {
    out.push_back(static_cast<std::uint8_t>(std::stoi(s.substr(i, 2), nullptr, 16)));
  }
  return out;
}

struct Pair {
  HandshakeIK initiator;
  HandshakeIK responder;
};

Pair handshake(const KeyPair& client, const KeyPair& server, std::string_view prologue = "fwgate") {
  const Bytes p = bytesOf(prologue);
  return {HandshakeIK::initiator(client, server.publicKey, p), HandshakeIK::responder(server, p)};
}

TEST(NoiseKeysTest, Base64AndFingerprint) {
  const KeyPair k = KeyPair::generate();
  EXPECT_EQ(KeyPair::fromSecret(k.secretKey).publicKey, k.publicKey);
  const std::string b64 = toBase64(k.publicKey);
  EXPECT_EQ(b64.size(), 44u);
  EXPECT_EQ(keyFromBase64(b64), k.publicKey);
  EXPECT_FALSE(keyFromBase64(b64.substr(0, 43)));
  EXPECT_FALSE(keyFromBase64(b64 + "A"));
  EXPECT_FALSE(keyFromBase64("not base64 at all, not at all, no no no no!!"));
  const std::string fp = fingerprint(k.publicKey);
  EXPECT_EQ(fp.rfind("SHA256:", 0), 0u);
  EXPECT_EQ(fp.size(), 7u + 43u);
  EXPECT_NE(fp, fingerprint(KeyPair::generate().publicKey));
  // RFC 7748's first test vector for X25519 base-point multiplication (Alice's keys, 6.1).
  const Bytes aliceSecret =
      unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  Key secret;
  std::copy(aliceSecret.begin(), aliceSecret.end(), secret.begin());
  EXPECT_EQ(hex(KeyPair::fromSecret(secret).publicKey),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
}

TEST(NoiseIKTest, BothSidesAgreeAndTheResponderLearnsTheInitiatorsKey) {
  const KeyPair client = KeyPair::generate();
  const KeyPair server = KeyPair::generate();
  auto [i, r] = handshake(client, server);
  const auto m1 = i.write(bytesOf("hello and connect"));
  ASSERT_TRUE(m1);
  EXPECT_EQ(m1->size(), HandshakeIK::kMessage1Overhead + 17);
  const auto p1 = r.read(*m1);
  ASSERT_TRUE(p1);
  EXPECT_EQ(textOf(*p1), "hello and connect");
  EXPECT_EQ(r.remoteStatic(), client.publicKey);
  // The payload is not in the message in clear.
  EXPECT_EQ(textOf(*m1).find("hello"), std::string::npos);
  const auto m2 = r.write(bytesOf("welcome"));
  ASSERT_TRUE(m2);
  const auto p2 = i.read(*m2);
  ASSERT_TRUE(p2);
  EXPECT_EQ(textOf(*p2), "welcome");
  ASSERT_TRUE(i.complete() && r.complete());

  Transport ti = i.split();
  Transport tr = r.split();
  EXPECT_EQ(ti.handshakeHash, tr.handshakeHash);
  for (int n = 0; n < 3; ++n) {
    Bytes up, down, plain;
    ASSERT_TRUE(ti.send.encrypt({}, bytesOf("up " + std::to_string(n)), up));
    ASSERT_TRUE(tr.receive.decrypt({}, up, plain));
    EXPECT_EQ(textOf(plain), "up " + std::to_string(n));
    plain.clear();
    ASSERT_TRUE(tr.send.encrypt({}, bytesOf("down"), down));
    ASSERT_TRUE(ti.receive.decrypt({}, down, plain));
    EXPECT_EQ(textOf(plain), "down");
  }
}

TEST(NoiseIKTest, AnotherServerKeyCannotReadMessageOne) {
  const KeyPair client = KeyPair::generate();
  const KeyPair server = KeyPair::generate();
  const KeyPair impostor = KeyPair::generate();
  auto i = HandshakeIK::initiator(client, server.publicKey, bytesOf("fwgate"));
  auto r = HandshakeIK::responder(impostor, bytesOf("fwgate"));
  const auto m1 = i.write(bytesOf("secret"));
  ASSERT_TRUE(m1);
  EXPECT_FALSE(r.read(*m1));
  EXPECT_TRUE(r.failed());
  EXPECT_FALSE(r.write({}));  // a failed handshake stays failed
}

TEST(NoiseIKTest, AnImpostorsMessageTwoIsRefused) {
  // A man in the middle with its own key answers message 2: it cannot, without the server's
  // secret, produce one the initiator accepts.
  const KeyPair client = KeyPair::generate();
  const KeyPair server = KeyPair::generate();
  const KeyPair impostor = KeyPair::generate();
  auto i = HandshakeIK::initiator(client, server.publicKey, bytesOf("fwgate"));
  const auto m1 = i.write({});
  ASSERT_TRUE(m1);
  // The impostor's own handshake, as if the client had pinned the impostor's key.
  auto fake = HandshakeIK::initiator(client, impostor.publicKey, bytesOf("fwgate"));
  auto mitm = HandshakeIK::responder(impostor, bytesOf("fwgate"));
  ASSERT_TRUE(mitm.read(*fake.write({})));
  const auto m2 = mitm.write(bytesOf("welcome"));
  ASSERT_TRUE(m2);
  EXPECT_FALSE(i.read(*m2));
  EXPECT_TRUE(i.failed());
}

TEST(NoiseIKTest, EveryBitOfEachMessageMatters) {
  const KeyPair client = KeyPair::generate();
  const KeyPair server = KeyPair::generate();
  {
    auto [i, r0] = handshake(client, server);
    const Bytes m1 = *i.write(bytesOf("payload"));
    for (std::size_t at = 0; at < m1.size(); ++at) {
      Bytes bad = m1;
      bad[at] ^= 0x01;
      auto r = HandshakeIK::responder(server, bytesOf("fwgate"));
      EXPECT_FALSE(r.read(bad)) << "byte " << at;
    }
    // Truncated, or a different prologue (another protocol version, say): refused too.
    auto r = HandshakeIK::responder(server, bytesOf("fwgate"));
    EXPECT_FALSE(r.read(std::span(m1).first(m1.size() - 1)));
    auto other = HandshakeIK::responder(server, bytesOf("fwgatf"));
    EXPECT_FALSE(other.read(m1));
    EXPECT_TRUE(r0.read(m1));
  }
  {
    auto [i0, r] = handshake(client, server);
    const Bytes m1 = *i0.write({});
    ASSERT_TRUE(r.read(m1));
    const Bytes m2 = *r.write(bytesOf("ok"));
    for (std::size_t at = 0; at < m2.size(); at += 7) {
      auto [i, rr] = handshake(client, server);
      // The same m1 again would be a replay; each initiator needs its own exchange.
      ASSERT_TRUE(rr.read(*i.write({})));
      Bytes good = *rr.write(bytesOf("ok"));
      good[at % good.size()] ^= 0x80;
      EXPECT_FALSE(i.read(good)) << "byte " << at;
    }
  }
}

TEST(NoiseIKTest, LowOrderKeysAndCallsOutOfTurnFail) {
  const KeyPair client = KeyPair::generate();
  Key zero{};
  auto i = HandshakeIK::initiator(client, zero, {});
  EXPECT_FALSE(i.write({}));  // DH with the all-zero point is all zeros: refused
  EXPECT_TRUE(i.failed());

  const KeyPair server = KeyPair::generate();
  auto [a, b] = handshake(client, server);
  EXPECT_FALSE(a.read(Bytes(96)));  // the initiator writes first
  EXPECT_TRUE(a.failed());
  EXPECT_FALSE(b.write({}));  // the responder reads first
  EXPECT_FALSE(b.split().send.hasKey());
  Bytes m1(HandshakeIK::kMessage1Overhead, 0);  // an all-zero ephemeral: low order
  auto r = HandshakeIK::responder(server, {});
  EXPECT_FALSE(r.read(m1));
}

TEST(NoiseCipherTest, ReplayedOrReorderedTransportMessagesFail) {
  const KeyPair client = KeyPair::generate();
  const KeyPair server = KeyPair::generate();
  auto [i, r] = handshake(client, server);
  ASSERT_TRUE(r.read(*i.write({})));
  ASSERT_TRUE(i.read(*r.write({})));
  Transport ti = i.split();
  Transport tr = r.split();
  Bytes first, second, plain;
  ASSERT_TRUE(ti.send.encrypt({}, bytesOf("one"), first));
  ASSERT_TRUE(ti.send.encrypt({}, bytesOf("two"), second));
  EXPECT_FALSE(tr.receive.decrypt({}, second, plain));  // out of order
  EXPECT_TRUE(plain.empty());
  ASSERT_TRUE(tr.receive.decrypt({}, first, plain));
  EXPECT_FALSE(tr.receive.decrypt({}, first, plain));  // replayed
  ASSERT_TRUE(tr.receive.decrypt({}, second, plain));
  EXPECT_EQ(textOf(plain), "onetwo");
  Bytes big;
  EXPECT_FALSE(ti.send.encrypt({}, Bytes(kMaxPlaintext + 1), big));
  EXPECT_TRUE(ti.send.encrypt({}, Bytes(kMaxPlaintext), big));
  EXPECT_EQ(big.size(), kMaxMessage);
}

// --- against python3-dissononce -----------------------------------------------------------------

class Peer {
 public:
  Peer() {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    const std::string script = std::string(FWGATE_SOURCE_DIR) + "/tests/unit/crypto/noise_peer.py";
    char* argv[] = {const_cast<char*>("/usr/bin/python3"), const_cast<char*>(script.c_str()),
                    nullptr};
    if (posix_spawn(&pid_, argv[0], &actions, nullptr, argv, environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    close(in[0]);
    close(out[1]);
    to_ = in[1];
    from_ = out[0];
  }
  ~Peer() {
    if (to_ >= 0) close(to_);
    if (from_ >= 0) close(from_);
    if (pid_ > 0) {
      // Its stdin closed, it exits; bounded all the same.
      for (int i = 0; i < 100; ++i) {
        if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
        usleep(20000);
      }
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  bool started() const { return pid_ > 0; }

  // One command, one answer line (within 10 s); "ERR" or "" on failure.
  std::string ask(const std::string& line) {
    const std::string out = line + "\n";
    if (write(to_, out.data(), out.size()) != static_cast<ssize_t>(out.size())) return "";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
        std::string answer = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return answer;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return "";
      pollfd p{from_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) return "";
      char chunk[65536];
      const ssize_t n = read(from_, chunk, sizeof chunk);
      if (n <= 0) return "";
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

 private:
  pid_t pid_ = -1;
  int to_ = -1;
  int from_ = -1;
  std::string buffer_;
};

TEST(NoiseInteropTest, FwgateInitiatesDissononceResponds) {
  Peer peer;
  ASSERT_TRUE(peer.started());
  const KeyPair client = KeyPair::generate();
  const KeyPair server = KeyPair::generate();
  const Bytes prologue = bytesOf("fwgate control 3");
  ASSERT_EQ(peer.ask("init responder " + hex(server.secretKey) + " " + hex(prologue)), "-")
      << "is python3-dissononce installed (scripts/setup-deps.sh)?";
  auto i = HandshakeIK::initiator(client, server.publicKey, prologue);
  const Bytes m1 = *i.write(bytesOf("first payload"));
  EXPECT_EQ(textOf(unhex(peer.ask("read " + hex(m1)))), "first payload");
  EXPECT_EQ(peer.ask("rs"), hex(client.publicKey));
  const std::string m2 = peer.ask("write " + hex(bytesOf("second payload")));
  ASSERT_NE(m2, "ERR");
  const auto p2 = i.read(unhex(m2));
  ASSERT_TRUE(p2);
  EXPECT_EQ(textOf(*p2), "second payload");
  Transport t = i.split();
  EXPECT_EQ(peer.ask("hash"), hex(t.handshakeHash));
  for (const std::string& text :
       std::vector<std::string>{"a transport message", "", std::string(30000, 'x')}) {
    Bytes up;
    ASSERT_TRUE(t.send.encrypt({}, bytesOf(text), up));
    EXPECT_EQ(peer.ask("decrypt " + hex(up)), hex(bytesOf(text)));
    const std::string down = peer.ask("encrypt " + hex(bytesOf(text + "!")));
    Bytes plain;
    ASSERT_TRUE(t.receive.decrypt({}, unhex(down), plain));
    EXPECT_EQ(textOf(plain), text + "!");
  }
}

TEST(NoiseInteropTest, DissononceInitiatesFwgateResponds) {
  Peer peer;
  ASSERT_TRUE(peer.started());
  const KeyPair client = KeyPair::generate();
  const KeyPair server = KeyPair::generate();
  const Bytes prologue = bytesOf("fwgate control 3");
  ASSERT_EQ(peer.ask("init initiator " + hex(client.secretKey) + " " + hex(prologue) + " " +
                     hex(server.publicKey)),
            "-");
  auto r = HandshakeIK::responder(server, prologue);
  const std::string m1 = peer.ask("write " + hex(bytesOf("hello")));
  ASSERT_NE(m1, "ERR");
  const auto p1 = r.read(unhex(m1));
  ASSERT_TRUE(p1);
  EXPECT_EQ(textOf(*p1), "hello");
  EXPECT_EQ(r.remoteStatic(), client.publicKey);
  const Bytes m2 = *r.write(bytesOf("welcome"));
  EXPECT_EQ(textOf(unhex(peer.ask("read " + hex(m2)))), "welcome");
  Transport t = r.split();
  EXPECT_EQ(peer.ask("hash"), hex(t.handshakeHash));
  Bytes down;
  ASSERT_TRUE(t.send.encrypt({}, bytesOf("from the gateway"), down));
  EXPECT_EQ(textOf(unhex(peer.ask("decrypt " + hex(down)))), "from the gateway");
  Bytes plain;
  ASSERT_TRUE(
      t.receive.decrypt({}, unhex(peer.ask("encrypt " + hex(bytesOf("from the client")))), plain));
  EXPECT_EQ(textOf(plain), "from the client");
  // A tampered message from dissononce is refused here, and one from here there.
  Bytes tampered;
  ASSERT_TRUE(t.send.encrypt({}, bytesOf("x"), tampered));
  tampered[0] ^= 1;
  EXPECT_EQ(peer.ask("decrypt " + hex(tampered)), "ERR");
}

}  // namespace
}  // namespace fwgate::crypto
