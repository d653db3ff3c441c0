// SOCKS 4 and its 4a extension (domain name after USERID when DSTIP is 0.0.0.x, x != 0).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "protocol/address.hpp"
#include "protocol/parse.hpp"

namespace fwgate::protocol::socks4 {

inline constexpr std::uint8_t kVersion = 0x04;
inline constexpr std::size_t kMaxUserIdLength = 255;
inline constexpr std::size_t kMaxDomainLength = 255;

enum class Command : std::uint8_t { Connect = 0x01, Bind = 0x02 };

enum class Reply : std::uint8_t {
  Granted = 90,
  Rejected = 91,           // rejected or failed
  IdentdUnreachable = 92,  // cannot connect to identd on the client
  IdentdMismatch = 93,     // identd reports a different user-id
};

/*
 *  +----+----+----+----+----+----+----+----+----+----+....+----+ (4a: ....+----+)
 *  | VN | CD | DSTPORT |      DSTIP        | USERID       |NULL|  DOMAIN  |NULL|
 *  +----+----+----+----+----+----+----+----+----+----+....+----+
 *     1    1      2              4           variable       1
 * VN other than 4 is BadVersion as soon as the first byte is present. CD is returned raw.
 * USERID or DOMAIN longer than its limit without a NUL is Invalid (BadLength); shorter is NeedMore.
 * An empty 4a domain is Invalid (BadLength). `destination` is IPv4 or, for 4a, a Domain (whose `ip`
 * is all zero: the 0.0.0.x marker is not kept).
 */
struct Request {
  std::uint8_t command = 0;  // raw; compare with Command values
  Address destination;
  std::string userId;
  bool isSocks4a = false;
  friend bool operator==(const Request&, const Request&) = default;
};
ParseResult<Request> parseRequest(Bytes in);
// Client side: 4a (DSTIP 0.0.0.1) when destination is a Domain. Empty when the request cannot be
// expressed: an IPv6 destination, an IPv4 one of the form 0.0.0.x (x != 0, the 4a marker), a USERID
// or domain past its limit or containing a NUL, an empty domain.
std::vector<std::uint8_t> encodeRequest(const Request& request);

// VN=0, CD, DSTPORT, DSTIP (8 bytes).
std::array<std::uint8_t, 8> encodeReply(Reply reply, std::array<std::uint8_t, 4> ip,
                                        std::uint16_t port);

}  // namespace fwgate::protocol::socks4
