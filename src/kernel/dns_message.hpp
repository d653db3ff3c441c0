// The helper's name service reads a program's DNS query and writes the answer the gateway's
// Resolve gave (docs/kernel-client.md, "Names"). Sans-I/O, on NLnet Labs' ldns (wire format both
// ways); only A and AAAA questions are the gateway's to answer.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "protocol/control.hpp"

namespace fwgate::kernel {

struct DnsQuestion {
  std::string name;        // without the trailing dot, as asked
  std::uint16_t type = 0;  // 1 A, 28 AAAA, ...
  bool recursionDesired = false;
};

// One standard query with one question; false for anything else (then no answer is due: a
// malformed packet is dropped, as resolvers do).
bool parseDnsQuery(std::span<const std::uint8_t> packet, DnsQuestion& out);

// The answer to `query` (which parseDnsQuery accepted): `rcode` (0 NOERROR, 2 SERVFAIL, 3
// NXDOMAIN, 4 NOTIMP) and, with NOERROR, one record per address of the question's type, `ttl`
// seconds each. Empty when the query cannot be read back.
std::vector<std::uint8_t> dnsAnswer(std::span<const std::uint8_t> query, std::uint8_t rcode,
                                    std::span<const protocol::control::IpAddress> addresses,
                                    std::uint32_t ttl);

inline constexpr std::uint16_t kDnsTypeA = 1;
inline constexpr std::uint16_t kDnsTypeAAAA = 28;
inline constexpr std::uint8_t kDnsNoError = 0;
inline constexpr std::uint8_t kDnsServFail = 2;
inline constexpr std::uint8_t kDnsNxDomain = 3;
inline constexpr std::uint8_t kDnsNotImp = 4;

}  // namespace fwgate::kernel
