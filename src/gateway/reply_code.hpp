// The one mapping from an operation's error to the SOCKS reply code a client sees.
#pragma once

#include <string>
#include <system_error>

#include "protocol/socks4.hpp"
#include "protocol/socks5.hpp"

namespace fwgate::gateway {

// Connect/resolve/bind errors -> RFC 1928 REP. Success maps to Succeeded.
protocol::socks5::Reply toSocks5Reply(const std::error_code& ec);
// SOCKS 4 has one failure code for everything but success.
protocol::socks4::Reply toSocks4Reply(protocol::socks5::Reply reply);
// Human-readable text of an error for the session log (resolver errors via gai_strerror).
std::string errorText(const std::error_code& ec);
// Short stable name for the session log: "succeeded", "refused", "host-unreachable", ...
const char* replyName(protocol::socks5::Reply reply);

}  // namespace fwgate::gateway
