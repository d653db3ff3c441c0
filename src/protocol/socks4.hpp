// SOCKS 4 and its 4a extension (domain name after USERID when DSTIP is 0.0.0.x, x != 0).
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "protocol/address.hpp"
#include "protocol/parse.hpp"

namespace fwgate::protocol::socks4 {

inline constexpr std::uint8_t kVersion = 0x04;
inline constexpr std::size_t kMaxUserIdLength = 255;
inline constexpr std::size_t kMaxDomainLength = 255;

enum class Command : std::uint8_t { Connect = 0x01, Bind = 0x02 };

enum class Reply : std::uint8_t {
  Granted = 90,
  Rejected = 91,             // rejected or failed
  IdentdUnreachable = 92,    // cannot connect to identd on the client
  IdentdMismatch = 93,       // identd reports a different user-id
};

/*
 *  +----+----+----+----+----+----+----+----+----+----+....+----+ (4a: ....+----+)
 *  | VN | CD | DSTPORT |      DSTIP        | USERID       |NULL|  DOMAIN  |NULL|
 *  +----+----+----+----+----+----+----+----+----+----+....+----+
 *     1    1      2              4           variable       1
 * USERID or DOMAIN longer than its limit without a NUL is Invalid (BadLength).
 * An empty 4a domain is Invalid (BadLength). `destination` is IPv4 or, for 4a, a Domain.
 */
struct Request {
  std::uint8_t command = 0;  // raw; compare with Command values
  Address destination;
  std::string userId;
  bool isSocks4a = false;
};
ParseResult<Request> parseRequest(Bytes in);

// VN=0, CD, DSTPORT, DSTIP (8 bytes).
std::array<std::uint8_t, 8> encodeReply(Reply reply, std::array<std::uint8_t, 4> ip,
                                        std::uint16_t port);

}  // namespace fwgate::protocol::socks4
