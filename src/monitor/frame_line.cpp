#include "monitor/frame_line.hpp"

#include <arpa/inet.h>
#include <fmt/compile.h>
#include <fmt/format.h>

#include <ctime>
#include <iterator>

namespace fwgate::monitor {
namespace {

// Local time of day for a capture second; captures run in order, so one conversion per second.
class ClockText {
 public:
  const char* at(std::int64_t seconds) {
    if (seconds != cached_) {
      cached_ = seconds;
      const std::time_t t = static_cast<std::time_t>(seconds);
      std::tm tm{};
      localtime_r(&t, &tm);
      fmt::format_to_n(text_, sizeof text_ - 1, "{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min,
                       tm.tm_sec);
      text_[8] = '\0';
    }
    return text_;
  }

 private:
  std::int64_t cached_ = -1;
  char text_[16] = {};
};

thread_local ClockText clockText;

const char* protocolName(std::uint8_t protocol) {
  switch (protocol) {
    case 6:
      return "TCP";
    case 17:
      return "UDP";
    case 1:
      return "ICMP";
    case 58:
      return "ICMPv6";
    default:
      return nullptr;
  }
}

void appendQuoted(std::string& out, const IcmpHeader& icmp) {
  auto it = std::back_inserter(out);
  const char* name = protocolName(icmp.quotedProtocol);
  if (name != nullptr) {
    fmt::format_to(it, ", for {} ", name);
  } else {
    fmt::format_to(it, ", for protocol {} ", icmp.quotedProtocol);
  }
  appendAddress(out, icmp.quotedSrc);
  if (icmp.hasQuotedPorts) fmt::format_to(it, " src: {}", icmp.quotedSrcPort);
  out += " -> ";
  appendAddress(out, icmp.quotedDst);
  if (icmp.hasQuotedPorts) fmt::format_to(it, " dst: {}", icmp.quotedDstPort);
}

void appendTransport(std::string& out, const Frame& f) {
  auto it = std::back_inserter(out);
  switch (f.transport) {
    case Transport::Tcp: {
      const auto& t = f.tcp;
      const char flags[7] = {(t.flags & tcpflag::kUrg) ? 'U' : '.',
                             (t.flags & tcpflag::kAck) ? 'A' : '.',
                             (t.flags & tcpflag::kPsh) ? 'P' : '.',
                             (t.flags & tcpflag::kRst) ? 'R' : '.',
                             (t.flags & tcpflag::kSyn) ? 'S' : '.',
                             (t.flags & tcpflag::kFin) ? 'F' : '.',
                             '\0'};
      fmt::format_to(
          it, FMT_COMPILE("TCP: {}, len: {}, seq: {}-{}, ack: {}, win: {}, src: {} dst: {}"), flags,
          t.payloadLength, t.seq, static_cast<std::uint32_t>(t.seq + t.payloadLength), t.ack,
          t.window, t.srcPort, t.dstPort);
      return;
    }
    case Transport::Udp:
      fmt::format_to(it, FMT_COMPILE("UDP: len: {}, src: {} dst: {}"), f.udp.payloadLength,
                     f.udp.srcPort, f.udp.dstPort);
      return;
    case Transport::Icmp:
    case Transport::Icmpv6: {
      const bool v6 = f.transport == Transport::Icmpv6;
      const auto& c = f.icmp;
      fmt::format_to(it, "{}: {}", v6 ? "ICMPv6" : "ICMP", icmpText(v6, c.type, c.code));
      const bool echo = v6 ? (c.type == 128 || c.type == 129) : (c.type == 8 || c.type == 0);
      if (echo) fmt::format_to(it, ", id: {}, seq: {}", c.id, c.sequence);
      fmt::format_to(it, ", len: {}", c.payloadLength);
      if (c.hasQuoted) appendQuoted(out, c);
      return;
    }
    case Transport::Other:
    case Transport::None:
      break;
  }
  if (f.fragment) {
    fmt::format_to(it, "{}: fragment id: {}, offset: {}, len: {}{}",
                   f.network == Network::Ipv6 ? "IPv6" : "IPv4", f.fragmentId, f.fragmentOffset,
                   f.ipPayloadLength, f.moreFragments ? ", more" : "");
    return;
  }
  const char* name = protocolName(f.ipProtocol);
  if (name != nullptr) {
    fmt::format_to(it, "{}: len: {}", name, f.ipPayloadLength);  // header cut short
  } else {
    fmt::format_to(it, "IP: protocol {}, len: {}", f.ipProtocol, f.ipPayloadLength);
  }
}

}  // namespace

std::string tcpFlagsText(std::uint8_t flags) {
  std::string s = "......";
  if (flags & tcpflag::kUrg) s[0] = 'U';
  if (flags & tcpflag::kAck) s[1] = 'A';
  if (flags & tcpflag::kPsh) s[2] = 'P';
  if (flags & tcpflag::kRst) s[3] = 'R';
  if (flags & tcpflag::kSyn) s[4] = 'S';
  if (flags & tcpflag::kFin) s[5] = 'F';
  return s;
}

void appendAddress(std::string& out, const policy::IpAddress& address) {
  if (!address.v6) {  // by hand: the hottest part of a line
    char text[16];
    char* p = text;
    for (int i = 0; i < 4; ++i) {
      const unsigned b = address.bytes[i];
      if (b >= 100) *p++ = static_cast<char>('0' + b / 100);
      if (b >= 10) *p++ = static_cast<char>('0' + b / 10 % 10);
      *p++ = static_cast<char>('0' + b % 10);
      *p++ = '.';
    }
    out.append(text, p - 1);
    return;
  }
  char text[INET6_ADDRSTRLEN];
  if (inet_ntop(AF_INET6, address.bytes.data(), text, sizeof text) != nullptr) out += text;
}

std::string addressText(const policy::IpAddress& address) {
  std::string s;
  appendAddress(s, address);
  return s;
}

std::string icmpText(bool v6, std::uint8_t type, std::uint8_t code) {
  if (!v6) {
    switch (type) {
      case 0:
        return "Echo Reply";
      case 8:
        return "Echo Request";
      case 3: {
        static constexpr const char* kUnreachable[] = {"Net Unreachable",
                                                       "Host Unreachable",
                                                       "Protocol Unreachable",
                                                       "Port Unreachable",
                                                       "Fragmentation Needed",
                                                       "Source Route Failed",
                                                       "Net Unknown",
                                                       "Host Unknown",
                                                       "Source Host Isolated",
                                                       "Net Prohibited",
                                                       "Host Prohibited",
                                                       "Net Unreachable for TOS",
                                                       "Host Unreachable for TOS",
                                                       "Communication Prohibited"};
        if (code < std::size(kUnreachable)) {
          return fmt::format("Destination Unreachable ({})", kUnreachable[code]);
        }
        return fmt::format("Destination Unreachable (code {})", code);
      }
      case 4:
        return "Source Quench";
      case 5:
        return fmt::format("Redirect (code {})", code);
      case 11:
        return code == 0 ? "Time Exceeded (TTL)" : "Time Exceeded (Reassembly)";
      case 12:
        return "Parameter Problem";
      case 13:
        return "Timestamp Request";
      case 14:
        return "Timestamp Reply";
      default:
        break;
    }
  } else {
    switch (type) {
      case 1: {
        static constexpr const char* kUnreachable[] = {
            "No Route",         "Prohibited",           "Beyond Scope",  "Address Unreachable",
            "Port Unreachable", "Source Policy Failed", "Route Rejected"};
        if (code < std::size(kUnreachable)) {
          return fmt::format("Destination Unreachable ({})", kUnreachable[code]);
        }
        return fmt::format("Destination Unreachable (code {})", code);
      }
      case 2:
        return "Packet Too Big";
      case 3:
        return "Time Exceeded";
      case 4:
        return "Parameter Problem";
      case 128:
        return "Echo Request";
      case 129:
        return "Echo Reply";
      case 133:
        return "Router Solicitation";
      case 134:
        return "Router Advertisement";
      case 135:
        return "Neighbor Solicitation";
      case 136:
        return "Neighbor Advertisement";
      default:
        break;
    }
  }
  return fmt::format("type {} code {}", type, code);
}

void appendFrameLine(std::string& out, std::uint64_t number, std::int64_t seconds,
                     std::uint32_t micros, const Frame& frame) {
  auto it = std::back_inserter(out);
  fmt::format_to(it, FMT_COMPILE("{} {}.{:06} "), number, clockText.at(seconds), micros);
  for (std::uint8_t i = 0; i < frame.vlanCount && i < frame.vlan.size(); ++i) {
    fmt::format_to(it, "vlan {} ", frame.vlan[i]);
  }
  switch (frame.network) {
    case Network::Ipv4:
    case Network::Ipv6:
      appendAddress(out, frame.src);
      out += " -> ";
      appendAddress(out, frame.dst);
      out += ' ';
      appendTransport(out, frame);
      break;
    case Network::Arp:
      fmt::format_to(it, "ARP: len: {}", frame.wireLength);
      break;
    case Network::Other:
      fmt::format_to(it, "ETHERTYPE 0x{:04x}: len: {}", frame.etherType, frame.wireLength);
      break;
    case Network::None:
      fmt::format_to(it, "FRAME: len: {}", frame.wireLength);
      break;
  }
  if (frame.problem != nullptr) fmt::format_to(it, " [{}]", frame.problem);
  out += '\n';
}

}  // namespace fwgate::monitor
