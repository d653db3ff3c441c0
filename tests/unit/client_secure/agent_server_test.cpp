// The agent's socket, against a gateway's side of the handshake in this process: the first Seal
// gives message 1 whose Hello carries the caller's PID and account as the kernel tells them and a
// Timestamp; Open turns message 2 into the Welcome; later Seals and Opens are records both ways.
// Malformed or out-of-turn requests get a Result with a status, never a hang.
#include "client/secure/agent_server.hpp"

#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <optional>
#include <string>
#include <thread>

#include "client/gateway_link.hpp"
#include "crypto/resumption.hpp"
#include "crypto/secure_stream.hpp"
#include "protocol/control.hpp"

namespace fwgate::client {
namespace {

namespace control = protocol::control;
using Bytes = std::vector<std::uint8_t>;

volatile std::sig_atomic_t g_stop = 0;

class Agent {
 public:
  explicit Agent(bool trustKernelHelper = false) {
    char dir[] = "/tmp/fwgate-agent-test-XXXXXX";
    dir_ = ::mkdtemp(dir);
    server_ = std::make_unique<AgentServer>(dir_ + "/agent.sock", crypto::KeyPair::generate());
    server_->trustKernelHelper(trustKernelHelper);
    std::string error;
    opened_ = server_->open(error);
    EXPECT_TRUE(opened_) << error;
    g_stop = 0;
    if (opened_) thread_ = std::thread([this] { server_->serve(g_stop); });
  }
  ~Agent() {
    g_stop = 1;
    if (thread_.joinable()) thread_.join();
    server_.reset();
    ::rmdir(dir_.c_str());
  }
  // A connection to it, as the library makes one.
  int connect() const {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    const std::string path = server_->path();
    std::memcpy(a.sun_path, path.data(), path.size());
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    return fd;
  }

 private:
  std::string dir_;
  std::unique_ptr<AgentServer> server_;
  std::thread thread_;
  bool opened_ = false;
};

// One call: the result's bytes, or the status and reason.
struct Answer {
  long size = -1;
  int error = 0;
  std::string detail;
  Bytes bytes;
};
Answer call(int fd, AgentMessage m, const Bytes& prefix, const Bytes& in) {
  Answer a;
  a.bytes.resize(1 << 20);
  char detail[256] = {};
  a.size = agentCall(fd, m, prefix, in, a.bytes, 5000, detail, sizeof detail);
  a.error = a.size < 0 ? errno : 0;
  a.detail = detail;
  if (a.size >= 0) a.bytes.resize(static_cast<std::size_t>(a.size));
  return a;
}

Bytes prefix(const std::string& key, const std::string& server) {
  Bytes p;
  for (const std::string* field : {&key, &server}) {
    p.push_back(static_cast<std::uint8_t>(field->size()));
    for (const char c : *field) p.push_back(static_cast<std::uint8_t>(c));
  }
  return p;
}

Bytes helloAndResolve(std::uint32_t claimedPid) {
  Bytes out(1024);
  control::Hello hello;
  hello.version = control::kVersion;
  hello.user = "alice";
  hello.password = "secret";
  hello.host = "ws1";
  hello.application = "curl";
  hello.osUser = "somebody-else";  // the agent says who, not the program
  hello.pid = claimedPid;
  std::size_t n = control::encodeHello(out, hello);
  n += control::encodeResolve(std::span(out).subspan(n), control::Resolve{"www.example.test", 0});
  out.resize(n);
  return out;
}

protocol::Bytes prologue() {
  return {reinterpret_cast<const std::uint8_t*>(control::kNoisePrologue.data()),
          control::kNoisePrologue.size()};
}

// The Hello the gateway reads from the agent's first Seal of helloAndResolve(claimedPid).
control::Hello sealedHello(Agent& agent, std::uint32_t claimedPid, std::string& osUser) {
  const int fd = agent.connect();
  const crypto::KeyPair gateway = crypto::KeyPair::generate();
  const Answer first =
      call(fd, AgentMessage::Seal, prefix(crypto::toBase64(gateway.publicKey), "gw.example:1745"),
           helloAndResolve(claimedPid));
  ::close(fd);
  control::Hello hello;
  EXPECT_GE(first.size, 0) << first.detail;
  if (first.size < 0) return hello;
  auto responder = crypto::HandshakeIK::responder(gateway, prologue());
  static std::optional<Bytes> payload;
  payload = responder.read(control::parseFrame(first.bytes).value.body);
  EXPECT_TRUE(payload);
  if (!payload) return hello;
  EXPECT_TRUE(control::decodeHello(control::parseFrame(*payload).value.body, hello));
  osUser = std::string(hello.osUser);
  return hello;
}

TEST(AgentServerTest, TheKernelHelperNamesTheProgramOnlyWhenTrustedAndRoot) {
  // This process runs the agent's own executable: as root, it is what the kernel client's
  // helper is; the claim holds only when the agent was told to trust that.
  std::string osUser;
  {
    Agent plain;
    const control::Hello hello = sealedHello(plain, 4242, osUser);
    EXPECT_EQ(hello.pid, static_cast<std::uint32_t>(::getpid()));
    EXPECT_NE(osUser, "somebody-else");
  }
  Agent trusting(true);
  const control::Hello hello = sealedHello(trusting, 4242, osUser);
  if (::geteuid() == 0) {
    EXPECT_EQ(hello.pid, 4242u);
    EXPECT_EQ(osUser, "somebody-else");
  } else {
    EXPECT_EQ(hello.pid, static_cast<std::uint32_t>(::getpid()));  // not root: the kernel's word
    EXPECT_NE(osUser, "somebody-else");
  }
}

TEST(AgentServerTest, SealsAHandshakeTheGatewayReadsAndOpensItsAnswer) {
  Agent agent;
  const int fd = agent.connect();
  const crypto::KeyPair gateway = crypto::KeyPair::generate();
  const Answer first =
      call(fd, AgentMessage::Seal, prefix(crypto::toBase64(gateway.publicKey), "gw.example:1745"),
           helloAndResolve(1));
  ASSERT_GE(first.size, 0) << first.detail;
  const auto frame = control::parseFrame(first.bytes);
  ASSERT_TRUE(frame.complete());
  ASSERT_EQ(frame.value.type, static_cast<std::uint8_t>(control::MessageType::Handshake));
  const std::string bytes(first.bytes.begin(), first.bytes.end());
  EXPECT_EQ(bytes.find("secret"), std::string::npos);
  EXPECT_EQ(bytes.find("www.example.test"), std::string::npos);

  // The gateway's side.
  auto responder = crypto::HandshakeIK::responder(gateway, prologue());
  const auto payload = responder.read(frame.value.body);
  ASSERT_TRUE(payload);
  const auto helloFrame = control::parseFrame(*payload);
  control::Hello hello;
  ASSERT_TRUE(control::decodeHello(helloFrame.value.body, hello));
  EXPECT_EQ(hello.user, "alice");
  EXPECT_EQ(hello.password, "secret");
  EXPECT_EQ(hello.application, "curl");
  EXPECT_EQ(hello.pid, static_cast<std::uint32_t>(::getpid()));  // not the claimed 1
  const passwd* me = ::getpwuid(::getuid());
  ASSERT_NE(me, nullptr);
  EXPECT_EQ(hello.osUser, me->pw_name);
  EXPECT_GT(hello.timestamp, 1700000000000ull);
  const auto resolve = control::parseFrame(protocol::Bytes(*payload).subspan(helloFrame.consumed));
  EXPECT_EQ(resolve.value.type, static_cast<std::uint8_t>(control::MessageType::Resolve));

  Bytes welcome(256);
  welcome.resize(
      control::encodeWelcome(welcome, {control::Status::Ok, control::kVersion, "gw", {}}));
  const auto message2 = responder.write(welcome);
  ASSERT_TRUE(message2);
  Bytes handshake(control::kHeaderSize + message2->size());
  control::encodeHandshake(handshake, *message2);
  const Answer opened = call(fd, AgentMessage::Open, {}, handshake);
  ASSERT_GE(opened.size, 0) << opened.detail;
  EXPECT_EQ(opened.bytes, welcome);

  // Records both ways.
  crypto::SecureStream gatewayStream(responder.split());
  const Answer sealed = call(fd, AgentMessage::Seal, {}, Bytes{'a', 'b', 'c'});
  ASSERT_GE(sealed.size, 0) << sealed.detail;
  crypto::Bytes plain;
  EXPECT_FALSE(gatewayStream.open(sealed.bytes, plain).bad);
  EXPECT_EQ(plain, (Bytes{'a', 'b', 'c'}));
  crypto::Bytes record;
  ASSERT_TRUE(gatewayStream.seal(Bytes{'x', 'y'}, record));
  const Answer back = call(fd, AgentMessage::Open, {}, record);
  ASSERT_GE(back.size, 0) << back.detail;
  EXPECT_EQ(back.bytes, (Bytes{'x', 'y'}));
  // A record replayed is refused.
  const Answer replayed = call(fd, AgentMessage::Open, {}, record);
  EXPECT_LT(replayed.size, 0);
  ::close(fd);
}

// After a handshake whose Welcome carries a ticket, the next connection resumes: a Resume frame
// (the ticket, a counter, the first record) the gateway opens with its ticket key alone; a
// refused ticket is dropped, and the connection after that does a full handshake again.
TEST(AgentServerTest, ALaterConnectionResumesWithTheTicket) {
  Agent agent;
  const crypto::KeyPair gateway = crypto::KeyPair::generate();
  const Bytes pin = prefix(crypto::toBase64(gateway.publicKey), "gw.example:1745");
  {
    const int fd = agent.connect();
    const Answer first = call(fd, AgentMessage::Seal, pin, helloAndResolve(1));
    ASSERT_GE(first.size, 0) << first.detail;
    auto responder = crypto::HandshakeIK::responder(gateway, prologue());
    ASSERT_TRUE(responder.read(control::parseFrame(first.bytes).value.body));
    responder.useEphemeral(crypto::KeyPair::generate());
    auto probe = responder;
    ASSERT_TRUE(probe.write({}));
    const Bytes ticket = crypto::issueTicket(
        crypto::ticketKey(gateway), {probe.split().resumption, responder.remoteStatic(), 1});
    control::Welcome w{control::Status::Ok, control::kVersion, "gw", {}};
    w.ticket = ticket;
    w.ticketLifetime = 3600;
    Bytes welcome(512);
    welcome.resize(control::encodeWelcome(welcome, w));
    const auto message2 = responder.write(welcome);
    Bytes handshake(control::kHeaderSize + message2->size());
    control::encodeHandshake(handshake, *message2);
    ASSERT_GE(call(fd, AgentMessage::Open, {}, handshake).size, 0);
    ::close(fd);
  }
  const int fd = agent.connect();
  const Answer resumed = call(fd, AgentMessage::Seal, pin, helloAndResolve(1));
  ASSERT_GE(resumed.size, 0) << resumed.detail;
  const auto frame = control::parseFrame(resumed.bytes);
  ASSERT_EQ(frame.value.type, static_cast<std::uint8_t>(control::MessageType::Resume));
  const auto body = frame.value.body;
  const auto ticket = body.first(crypto::kTicketSize);
  const auto contents = crypto::openTicket(crypto::ticketKey(gateway), ticket);
  ASSERT_TRUE(contents);
  std::uint64_t counter = 0;
  for (std::size_t i = 0; i < 8; ++i) counter = (counter << 8) | body[crypto::kTicketSize + i];
  EXPECT_EQ(counter, 1u);
  crypto::SecureStream gatewaySide(
      crypto::resumedTransport(contents->resumption, ticket, counter, false));
  crypto::Bytes plain;
  ASSERT_FALSE(gatewaySide.open(body.subspan(crypto::kTicketSize + 8), plain).bad);
  control::Hello hello;
  ASSERT_TRUE(control::decodeHello(control::parseFrame(plain).value.body, hello));
  EXPECT_EQ(hello.pid, static_cast<std::uint32_t>(::getpid()));
  // The gateway's Welcome, its first record in a Resume frame.
  Bytes welcome(256);
  welcome.resize(
      control::encodeWelcome(welcome, {control::Status::Ok, control::kVersion, "gw", {}}));
  crypto::Bytes record;
  ASSERT_TRUE(gatewaySide.seal(welcome, record));
  Bytes reply(control::kHeaderSize + record.size());
  control::encodeHandshake(reply, record);
  reply[0] = static_cast<std::uint8_t>(control::MessageType::Resume);
  const Answer opened = call(fd, AgentMessage::Open, {}, reply);
  ASSERT_GE(opened.size, 0) << opened.detail;
  EXPECT_EQ(opened.bytes, welcome);
  ::close(fd);

  // A refusal in clear drops the ticket: the next Seal is a full handshake.
  const int third = agent.connect();
  ASSERT_EQ(control::parseFrame(call(third, AgentMessage::Seal, pin, helloAndResolve(1)).bytes)
                .value.type,
            static_cast<std::uint8_t>(control::MessageType::Resume));
  Bytes refusal(256);
  refusal.resize(control::encodeWelcome(
      refusal, {control::Status::TicketRefused, control::kVersion, "gw", "expired"}));
  const Answer refused = call(third, AgentMessage::Open, {}, refusal);
  EXPECT_LT(refused.size, 0);
  EXPECT_NE(refused.detail.find("full handshake"), std::string::npos) << refused.detail;
  ::close(third);
  const int fourth = agent.connect();
  EXPECT_EQ(control::parseFrame(call(fourth, AgentMessage::Seal, pin, helloAndResolve(1)).bytes)
                .value.type,
            static_cast<std::uint8_t>(control::MessageType::Handshake));
  ::close(fourth);
}

TEST(AgentServerTest, AKeyMismatchNamesBothFingerprints) {
  Agent agent;
  const int fd = agent.connect();
  const crypto::KeyPair pinned = crypto::KeyPair::generate();
  const crypto::KeyPair other = crypto::KeyPair::generate();
  ASSERT_GE(call(fd, AgentMessage::Seal, prefix(crypto::toBase64(pinned.publicKey), "gw:1745"),
                 helloAndResolve(1))
                .size,
            0);
  control::Welcome w{control::Status::KeyMismatch, control::kVersion, "gw", "not mine"};
  control::PublicKey theirs;
  std::copy(other.publicKey.begin(), other.publicKey.end(), theirs.begin());
  w.publicKey = theirs;
  Bytes clear(256);
  clear.resize(control::encodeWelcome(clear, w));
  const Answer a = call(fd, AgentMessage::Open, {}, clear);
  EXPECT_LT(a.size, 0);
  EXPECT_EQ(a.error, EACCES);
  EXPECT_NE(a.detail.find(crypto::fingerprint(pinned.publicKey)), std::string::npos) << a.detail;
  EXPECT_NE(a.detail.find(crypto::fingerprint(other.publicKey)), std::string::npos) << a.detail;
  ::close(fd);
}

TEST(AgentServerTest, RequestsOutOfTurnOrMalformedAreAnsweredNotHung) {
  Agent agent;
  const int fd = agent.connect();
  const Answer open = call(fd, AgentMessage::Open, {}, Bytes{1, 2, 3});
  EXPECT_LT(open.size, 0);
  EXPECT_NE(open.detail.find("nothing sealed"), std::string::npos) << open.detail;
  const Answer noPrefix = call(fd, AgentMessage::Seal, {}, Bytes{});
  EXPECT_LT(noPrefix.size, 0);
  const Answer noHello =
      call(fd, AgentMessage::Seal,
           prefix(crypto::toBase64(crypto::KeyPair::generate().publicKey), "gw:1745"),
           Bytes{9, 0, 0, 0});
  EXPECT_LT(noHello.size, 0);
  EXPECT_NE(noHello.detail.find("do not start with a Hello"), std::string::npos) << noHello.detail;
  const Answer badPin =
      call(fd, AgentMessage::Seal, prefix("not-a-key", "gw:1745"), helloAndResolve(1));
  EXPECT_LT(badPin.size, 0);
  EXPECT_NE(badPin.detail.find("not a key"), std::string::npos) << badPin.detail;
  // Still serving: a good first Seal on a new connection works.
  const int again = agent.connect();
  const Answer ok = call(again, AgentMessage::Seal,
                         prefix(crypto::toBase64(crypto::KeyPair::generate().publicKey), "gw:1745"),
                         helloAndResolve(1));
  EXPECT_GE(ok.size, 0) << ok.detail;
  ::close(fd);
  ::close(again);
}

}  // namespace
}  // namespace fwgate::client
