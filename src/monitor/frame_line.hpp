// One line per frame, in the style of the seed's Network Monitor trace:
//   7 15:32:07.123456 10.1.1.2 -> 203.0.113.7 TCP: ....S., len: 0, seq: 28201-28201, ack: 0,
//     win: 8192, src: 1124 dst: 443
// TCP flags in Network Monitor's order U A P R S F ('.' where clear); `len` is the segment's
// data length and `seq` the range of sequence numbers it carries (first-first+len).
#pragma once

#include <cstdint>
#include <string>

#include "monitor/decode.hpp"

namespace fwgate::monitor {

// "....S.", ".A..S.", ".AP...": URG ACK PSH RST SYN FIN.
std::string tcpFlagsText(std::uint8_t flags);

// Appends the frame's line (and a newline) to `out`. `seconds`/`micros`: the capture time,
// printed as local time of day with microseconds.
void appendFrameLine(std::string& out, std::uint64_t number, std::int64_t seconds,
                     std::uint32_t micros, const Frame& frame);

// "10.1.1.2", "2001:db8::7": without allocation where possible.
void appendAddress(std::string& out, const policy::IpAddress& address);
std::string addressText(const policy::IpAddress& address);

// "Echo Request", "Destination Unreachable (Port Unreachable)", "type 42 code 0".
std::string icmpText(bool v6, std::uint8_t type, std::uint8_t code);

}  // namespace fwgate::monitor
