// Conversations, frame lines and suggestions, from frames built as values (no bytes, no pcap).
#include <gtest/gtest.h>

#include "config/config.hpp"
#include "monitor/conversations.hpp"
#include "monitor/frame_line.hpp"
#include "monitor/snippet.hpp"
#include "monitor/suggest.hpp"

namespace fwgate::monitor {
namespace {

using policy::IpAddress;

IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}

Frame tcpFrame(const char* src, std::uint16_t sport, const char* dst, std::uint16_t dport,
               std::uint8_t flags, std::uint32_t payload = 0) {
  Frame f;
  f.network = Network::Ipv4;
  f.src = ip(src);
  f.dst = ip(dst);
  f.ipProtocol = 6;
  f.transport = Transport::Tcp;
  f.tcp.srcPort = sport;
  f.tcp.dstPort = dport;
  f.tcp.flags = flags;
  f.tcp.payloadLength = payload;
  return f;
}

Frame udpFrame(const char* src, std::uint16_t sport, const char* dst, std::uint16_t dport) {
  Frame f;
  f.network = Network::Ipv4;
  f.src = ip(src);
  f.dst = ip(dst);
  f.ipProtocol = 17;
  f.transport = Transport::Udp;
  f.udp.srcPort = sport;
  f.udp.dstPort = dport;
  f.udp.payloadLength = 20;
  return f;
}

constexpr std::uint8_t kSyn = tcpflag::kSyn;
constexpr std::uint8_t kSynAck = tcpflag::kSyn | tcpflag::kAck;
constexpr std::uint8_t kAck = tcpflag::kAck;

class Capture {
 public:
  void add(const Frame& f) {
    ++n_;
    table_.add(n_, 1764000000 + static_cast<std::int64_t>(n_), f);
  }
  void handshake(const char* c, std::uint16_t cp, const char* s, std::uint16_t sp) {
    add(tcpFrame(c, cp, s, sp, kSyn));
    add(tcpFrame(s, sp, c, cp, kSynAck));
    add(tcpFrame(c, cp, s, sp, kAck, 10));
  }
  const ConversationTable& table() const { return table_; }

 private:
  ConversationTable table_;
  std::uint64_t n_ = 0;
};

TEST(FrameLine, SeedStyle) {
  Frame f = tcpFrame("10.1.1.2", 1124, "203.0.113.7", 443, kSyn);
  f.tcp.seq = 28201;
  f.tcp.window = 8192;
  std::string line;
  appendFrameLine(line, 1, 0, 5, f);
  EXPECT_NE(line.find("10.1.1.2 -> 203.0.113.7 TCP: ....S., len: 0, seq: 28201-28201, ack: 0, "
                      "win: 8192, src: 1124 dst: 443\n"),
            std::string::npos)
      << line;
  EXPECT_EQ(line.substr(0, 2), "1 ");
  EXPECT_NE(line.find(".000005 "), std::string::npos) << line;
}

TEST(FrameLine, FlagsInNetworkMonitorOrder) {
  EXPECT_EQ(tcpFlagsText(0), "......");
  EXPECT_EQ(tcpFlagsText(kSynAck), ".A..S.");
  EXPECT_EQ(tcpFlagsText(0x3f), "UAPRSF");
  EXPECT_EQ(tcpFlagsText(tcpflag::kRst | tcpflag::kAck), ".A.R..");
}

TEST(FrameLine, SequenceRangeWrapsAround) {
  Frame f = tcpFrame("10.1.1.2", 1, "10.1.1.3", 2, kAck, 0x20);
  f.tcp.seq = 0xfffffff0U;
  std::string line;
  appendFrameLine(line, 1, 0, 0, f);
  EXPECT_NE(line.find("seq: 4294967280-16,"), std::string::npos) << line;
}

TEST(Conversations, InitiatorFromSynSynAckOrPorts) {
  Capture c;
  c.add(tcpFrame("10.1.1.2", 40000, "203.0.113.7", 21, kSyn));
  c.add(tcpFrame("203.0.113.7", 443, "10.1.1.2", 40001, kSynAck));  // the SYN was missed
  c.add(tcpFrame("203.0.113.7", 22, "10.1.1.2", 40002, kAck, 5));   // mid-connection
  const auto& all = c.table().conversations();
  ASSERT_EQ(all.size(), 3U);
  EXPECT_EQ(all[0].initiatorFrom, "SYN");
  EXPECT_EQ(all[0].responder.port, 21);
  EXPECT_EQ(all[1].initiatorFrom, "SYN-ACK");
  EXPECT_EQ(all[1].initiator.port, 40001);
  EXPECT_EQ(all[2].initiatorFrom, "port numbers");
  EXPECT_EQ(all[2].responder.port, 22);
}

TEST(Conversations, RefusedUnansweredAndIcmp) {
  Capture c;
  c.add(tcpFrame("10.1.1.2", 40000, "203.0.113.7", 8443, kSyn));
  c.add(tcpFrame("203.0.113.7", 8443, "10.1.1.2", 40000, tcpflag::kRst | tcpflag::kAck));
  for (int i = 0; i < 3; ++i) c.add(tcpFrame("10.1.1.2", 40001, "203.0.113.7", 9000, kSyn));
  c.add(udpFrame("10.1.1.2", 50000, "203.0.113.7", 7777));
  Frame icmp;
  icmp.network = Network::Ipv4;
  icmp.src = ip("203.0.113.7");
  icmp.dst = ip("10.1.1.2");
  icmp.transport = Transport::Icmp;
  icmp.icmp.type = 3;
  icmp.icmp.code = 3;
  icmp.icmp.hasQuoted = true;
  icmp.icmp.quotedSrc = ip("10.1.1.2");
  icmp.icmp.quotedDst = ip("203.0.113.7");
  icmp.icmp.quotedProtocol = 17;
  icmp.icmp.hasQuotedPorts = true;
  icmp.icmp.quotedSrcPort = 50000;
  icmp.icmp.quotedDstPort = 7777;
  c.add(icmp);
  const auto& all = c.table().conversations();
  ASSERT_EQ(all.size(), 3U);
  EXPECT_TRUE(all[0].refused());
  EXPECT_EQ(all[1].synCount, 3U);
  EXPECT_FALSE(all[1].answered());
  EXPECT_EQ(all[2].icmpFrame, 7U);
  EXPECT_EQ(all[2].icmpText, "Destination Unreachable (Port Unreachable)");
  const auto s = suggest(c.table(), {});
  EXPECT_NE(s.text.find("refused (RST frame 2)"), std::string::npos) << s.text;
  EXPECT_NE(s.text.find("never answered (3 SYNs)"), std::string::npos) << s.text;
  EXPECT_NE(s.text.find("Destination Unreachable (Port Unreachable) (ICMP frame 7)"),
            std::string::npos)
      << s.text;
}

TEST(Suggest, FtpActiveIsTheBuiltInFtp) {
  Capture c;
  c.handshake("10.1.1.2", 40000, "203.0.113.7", 21);
  c.handshake("203.0.113.7", 20, "10.1.1.2", 45123);
  c.handshake("203.0.113.7", 20, "10.1.1.2", 45125);
  const auto s = suggest(c.table(), {});
  ASSERT_EQ(s.definitions.size(), 1U);
  EXPECT_EQ(s.definitions[0].existing, "FTP");
  EXPECT_EQ(s.definitions[0].definition.primary.ports.first, 21);
  ASSERT_EQ(s.definitions[0].definition.secondary.size(), 1U);
  EXPECT_TRUE(s.definitions[0].definition.secondary[0].anyDynamicPort());
  EXPECT_EQ(s.text.find("[protocols."), std::string::npos) << s.text;
  EXPECT_NE(s.text.find("The built-in definition \"FTP\" covers it"), std::string::npos);
}

TEST(Suggest, UnknownPortGetsANewDefinitionWithDynamicSecondaries) {
  Capture c;
  c.handshake("10.1.1.2", 40000, "203.0.113.7", 2121);
  c.handshake("203.0.113.7", 40100, "10.1.1.2", 45123);
  c.handshake("10.1.1.2", 40001, "203.0.113.7", 50123);  // passive-style, server's port
  SuggestOptions o;
  o.name = "Legacy";
  const auto s = suggest(c.table(), o);
  ASSERT_EQ(s.definitions.size(), 1U);
  const auto& d = s.definitions[0].definition;
  EXPECT_EQ(d.name, "Legacy");
  EXPECT_TRUE(s.definitions[0].existing.empty());
  ASSERT_EQ(d.secondary.size(), 2U);
  EXPECT_TRUE(d.secondary[0].anyDynamicPort());
  EXPECT_EQ(d.secondary[0].direction, policy::Direction::Inbound);
  EXPECT_EQ(d.secondary[1].ports, (policy::PortRange{1024, 65535}));
  EXPECT_EQ(d.secondary[1].direction, policy::Direction::Outbound);
  EXPECT_NE(s.text.find(definitionToml(d)), std::string::npos) << s.text;
}

TEST(Suggest, TftpAnswersFromANewPort) {
  Capture c;
  c.add(udpFrame("10.1.1.2", 45000, "203.0.113.7", 69));
  c.add(udpFrame("203.0.113.7", 51000, "10.1.1.2", 45000));
  c.add(udpFrame("10.1.1.2", 45000, "203.0.113.7", 51000));
  const auto s = suggest(c.table(), {});
  ASSERT_EQ(s.definitions.size(), 1U);
  EXPECT_EQ(s.definitions[0].existing, "TFTP") << s.text;
}

TEST(Suggest, DnsThenTheApplicationAreTwoDefinitions) {
  Capture c;
  c.add(udpFrame("10.1.1.2", 45000, "203.0.113.53", 53));
  c.add(udpFrame("203.0.113.53", 53, "10.1.1.2", 45000));
  c.handshake("10.1.1.2", 40000, "203.0.113.7", 443);
  const auto s = suggest(c.table(), {});
  ASSERT_EQ(s.definitions.size(), 2U);
  EXPECT_EQ(s.definitions[0].existing, "DNS");
  EXPECT_EQ(s.definitions[1].existing, "HTTPS");
}

TEST(Suggest, SeveralServersOnOnePortAreOneDefinition) {
  Capture c;
  c.handshake("10.1.1.2", 40000, "203.0.113.7", 7000);
  c.handshake("10.1.1.2", 40001, "203.0.113.8", 7000);
  c.handshake("10.1.1.2", 40002, "203.0.113.9", 7001);
  const auto s = suggest(c.table(), {});
  ASSERT_EQ(s.definitions.size(), 2U);
  EXPECT_EQ(s.definitions[0].conversations.size(), 2U);
  EXPECT_EQ(s.definitions[0].definition.name, "CustomApp");
  EXPECT_EQ(s.definitions[1].definition.name, "CustomApp-2");
}

TEST(Suggest, ClientChosenOrFirst) {
  Capture c;
  c.handshake("10.1.1.2", 40000, "203.0.113.7", 7000);
  c.handshake("10.1.1.3", 40000, "203.0.113.7", 7100);
  auto s = suggest(c.table(), {});
  EXPECT_EQ(*s.client, ip("10.1.1.2"));
  ASSERT_EQ(s.definitions.size(), 1U);
  EXPECT_EQ(s.definitions[0].definition.primary.ports.first, 7000);
  SuggestOptions o;
  o.client = ip("10.1.1.3");
  s = suggest(c.table(), o);
  ASSERT_EQ(s.definitions.size(), 1U);
  EXPECT_EQ(s.definitions[0].definition.primary.ports.first, 7100);
}

TEST(Suggest, NothingToSuggest) {
  Capture c;
  Frame arp;
  arp.network = Network::Arp;
  c.add(arp);
  const auto s = suggest(c.table(), {});
  EXPECT_FALSE(s.client);
  EXPECT_NE(s.text.find("nothing to suggest"), std::string::npos);
}

TEST(Suggest, AnsweredAndUnansweredUdpOnOnePortAreOneDefinition) {
  Capture c;
  c.add(udpFrame("10.1.1.2", 45000, "203.0.113.7", 5000));
  c.add(udpFrame("203.0.113.7", 5000, "10.1.1.2", 45000));
  c.add(udpFrame("10.1.1.2", 45001, "203.0.113.8", 5000));  // never answered
  const auto s = suggest(c.table(), {});
  ASSERT_EQ(s.definitions.size(), 1U) << s.text;
  EXPECT_EQ(s.definitions[0].definition.primary.direction, policy::Direction::Send);
  EXPECT_EQ(s.definitions[0].conversations.size(), 2U);
}

TEST(Suggest, AListeningPortThatRepeatsIsKept) {
  Capture c;
  c.handshake("10.1.1.2", 40000, "203.0.113.7", 7000);
  c.handshake("203.0.113.7", 40100, "10.1.1.2", 5001);
  c.handshake("203.0.113.7", 40101, "10.1.1.2", 5001);
  const auto s = suggest(c.table(), {});
  ASSERT_EQ(s.definitions.size(), 1U);
  ASSERT_EQ(s.definitions[0].definition.secondary.size(), 1U);
  EXPECT_EQ(s.definitions[0].definition.secondary[0].ports, (policy::PortRange{5001, 5001}));
}

TEST(Suggest, RemoteFirstUdpGetsAnExplanationNotADefinition) {
  Capture c;
  c.add(udpFrame("203.0.113.7", 6100, "10.1.1.2", 45000));
  SuggestOptions o;
  o.client = ip("10.1.1.2");
  const auto s = suggest(c.table(), o);
  ASSERT_EQ(s.definitions.size(), 1U);
  EXPECT_TRUE(s.definitions[0].definition.name.empty());
  EXPECT_EQ(s.text.find("[protocols."), std::string::npos) << s.text;
  EXPECT_NE(s.text.find("RemoteBindUdpPorts"), std::string::npos) << s.text;
}

TEST(Suggest, AConfiguredDefinitionWithTheSamePrimaryIsExtended) {
  Capture c;
  c.handshake("10.1.1.2", 40000, "203.0.113.7", 7000);
  c.handshake("203.0.113.7", 40100, "10.1.1.2", 45123);
  SuggestOptions o;
  policy::ProtocolDefinition mine{
      "Mine", {{7000, 7000}, policy::Transport::Tcp, policy::Direction::Outbound}, {}, false};
  o.definitions.insert(o.definitions.begin(), mine);
  const auto s = suggest(c.table(), o);
  ASSERT_EQ(s.definitions.size(), 1U);
  EXPECT_EQ(s.definitions[0].existing, "Mine");
  EXPECT_EQ(s.text.find("[protocols."), std::string::npos) << s.text;
  EXPECT_NE(s.text.find("{ ports = 0, transport = \"tcp\", direction = \"inbound\" },"),
            std::string::npos)
      << s.text;
}

TEST(Suggest, NewNamesAvoidTheConfiguredOnes) {
  Capture c;
  c.handshake("10.1.1.2", 40000, "203.0.113.7", 7000);
  SuggestOptions o;
  o.definitions.push_back(
      {"customapp", {{9, 9}, policy::Transport::Tcp, policy::Direction::Outbound}, {}, false});
  const auto s = suggest(c.table(), o);
  ASSERT_EQ(s.definitions.size(), 1U);
  EXPECT_EQ(s.definitions[0].definition.name, "CustomApp-2");
}

TEST(Suggest, AScanIsCapped) {
  Capture c;
  // 300 hosts, each on its own port: not one program.
  for (int n = 0; n < 300; ++n) {
    const std::string host =
        "198.51." + std::to_string(n / 200) + "." + std::to_string(n % 200 + 1);
    c.add(tcpFrame("10.1.1.2", 40000, host.c_str(), static_cast<std::uint16_t>(2000 + n), kSyn));
  }
  SuggestOptions o;
  o.gatewayHost = true;
  const auto s = suggest(c.table(), o);
  EXPECT_EQ(s.definitions.size(), o.definitionLimit);
  EXPECT_NE(s.text.find("look like a scan"), std::string::npos);
  EXPECT_NE(s.text.find("and 200 more filters"), std::string::npos) << s.text.size();
}

// The whole output, comments included, is configuration text the gateway accepts.
TEST(Suggest, OutputPassesTheConfigurationCheck) {
  Capture c;
  c.handshake("203.0.113.1", 40000, "203.0.113.7", 2121);
  c.handshake("203.0.113.7", 40100, "203.0.113.1", 45123);
  c.add(udpFrame("203.0.113.1", 45000, "203.0.113.9", 5555));
  Frame ping;
  ping.network = Network::Ipv4;
  ping.src = ip("203.0.113.1");
  ping.dst = ip("203.0.113.7");
  ping.transport = Transport::Icmp;
  ping.icmp.type = 8;
  c.add(ping);
  SuggestOptions o;
  o.gatewayHost = true;
  const auto s = suggest(c.table(), o);
  EXPECT_NE(s.text.find("[[packet_filters.filter]]"), std::string::npos) << s.text;
  EXPECT_NE(s.text.find("local_port = \"32768-60999\""), std::string::npos) << s.text;
  EXPECT_NE(s.text.find("icmp_type = 8"), std::string::npos) << s.text;
  const std::string rule =
      "\n[[rules]]\nname = \"app\"\naction = \"allow\"\nsources = [\"loopback\"]\nprotocols = "
      "[\"CustomApp\", \"CustomApp-2\"]\n";
  const auto loaded = config::parseConfig(
      std::string(config::embeddedDefaultConfig()) + "\n" + s.text + rule, "suggestion.toml");
  std::string errors;
  for (const auto& e : loaded.errors) errors += e.toString() + "\n";
  EXPECT_TRUE(loaded.ok()) << errors << s.text;
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded.config->packetFilters.filters.size(), 4U);
}

}  // namespace
}  // namespace fwgate::monitor
