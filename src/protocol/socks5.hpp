// SOCKS Protocol Version 5 (RFC 1928) and Username/Password authentication (RFC 1929).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "protocol/address.hpp"
#include "protocol/parse.hpp"

namespace fwgate::protocol::socks5 {

inline constexpr std::uint8_t kVersion = 0x05;
inline constexpr std::uint8_t kUserPassVersion = 0x01;

// Method identifiers (RFC 1928 section 3).
enum class Method : std::uint8_t {
  NoAuthentication = 0x00,
  Gssapi = 0x01,
  UsernamePassword = 0x02,
  NoAcceptable = 0xFF,
};

enum class Command : std::uint8_t { Connect = 0x01, Bind = 0x02, UdpAssociate = 0x03 };

// REP values (RFC 1928 section 6).
enum class Reply : std::uint8_t {
  Succeeded = 0x00,
  GeneralFailure = 0x01,
  NotAllowed = 0x02,
  NetworkUnreachable = 0x03,
  HostUnreachable = 0x04,
  ConnectionRefused = 0x05,
  TtlExpired = 0x06,
  CommandNotSupported = 0x07,
  AddressTypeNotSupported = 0x08,
};

/*
 * Greeting:  +----+----------+----------+
 *            |VER | NMETHODS | METHODS  |
 *            +----+----------+----------+
 *            | 1  |    1     | 1 to 255 |
 */
struct Greeting {
  std::vector<std::uint8_t> methods;  // raw, in the client's order
  bool offers(Method m) const;
  friend bool operator==(const Greeting&, const Greeting&) = default;
};
ParseResult<Greeting> parseGreeting(Bytes in);
// Client side; empty when methods is empty or has more than 255 entries.
std::vector<std::uint8_t> encodeGreeting(const Greeting& greeting);
// Server's choice: VER, METHOD.
std::array<std::uint8_t, 2> encodeMethodSelection(Method method);

/*
 * RFC 1929:  +----+------+----------+------+----------+
 *            |VER | ULEN |  UNAME   | PLEN |  PASSWD  |
 *            +----+------+----------+------+----------+
 *            | 1  |  1   | 1 to 255 |  1   | 1 to 255 |
 * ULEN == 0 is invalid (BadLength); PLEN == 0 is accepted (an empty password).
 */
struct UserPassRequest {
  std::string username;
  std::string password;
  friend bool operator==(const UserPassRequest&, const UserPassRequest&) = default;
};
ParseResult<UserPassRequest> parseUserPass(Bytes in);
// Client side; empty when the username is empty or either field is longer than 255 bytes.
std::vector<std::uint8_t> encodeUserPass(const UserPassRequest& request);
// VER=1, STATUS: 0x00 on success, 0x01 otherwise (RFC 1929 section 2).
std::array<std::uint8_t, 2> encodeUserPassStatus(bool success);

/*
 * GSS-API method (RFC 1961), after method 0x01 is selected:
 *            +------+------+------+.......................+
 *            | VER  | MTYP | LEN  |         TOKEN         |
 *            +------+------+------+.......................+
 *            | 0x01 |  1   |  2   | up to 2^16 - 1 octets |
 * MTYP 1: a context-establishment token; 2: the protection level, wrapped (a one-octet token
 * unwrapped by the NEC reference implementation and clients compatible with it); 0xFF: abort,
 * which has no LEN or TOKEN. LEN == 0 for MTYP 1 or 2 is BadLength, another MTYP Invalid.
 */
enum class GssMessageType : std::uint8_t { Authentication = 0x01, Protection = 0x02, Abort = 0xFF };
inline constexpr std::uint8_t kGssVersion = 0x01;
struct GssMessage {
  GssMessageType type = GssMessageType::Abort;
  std::vector<std::uint8_t> token;
  friend bool operator==(const GssMessage&, const GssMessage&) = default;
};
ParseResult<GssMessage> parseGssMessage(Bytes in);
// Empty when the token is empty (for MTYP 1 and 2) or longer than 65535 octets.
std::vector<std::uint8_t> encodeGssMessage(const GssMessage& message);
// The protection levels (RFC 1961 section 4.3); 0x00 is "no per-message protection", which
// Dante and curl speak and this gateway answers (the data stays in clear, as with a password).
inline constexpr std::uint8_t kGssProtectionNone = 0x00;

/*
 * Request:   +----+-----+-------+------+----------+----------+
 *            |VER | CMD |  RSV  | ATYP | DST.ADDR | DST.PORT |
 *            +----+-----+-------+------+----------+----------+
 *            | 1  |  1  | X'00' |  1   | Variable |    2     |
 * The command byte is returned raw: an unknown command parses Complete and the session replies
 * 0x07. An ATYP other than 1, 3, 4 is BadAddressType as soon as the 4th byte is present (reply
 * 0x08). A domain of length 0 is BadLength. RSV is not checked (peers send garbage there).
 */
struct Request {
  std::uint8_t command = 0;  // compare with Command values
  Address destination;
  friend bool operator==(const Request&, const Request&) = default;
};
ParseResult<Request> parseRequest(Bytes in);
// Client side, RSV=0; empty when !destination.isEncodable().
std::vector<std::uint8_t> encodeRequest(const Request& request);

// Reply: VER REP RSV ATYP BND.ADDR BND.PORT; a Domain is encoded as ATYP 3.
// Empty when !bound.isEncodable().
std::vector<std::uint8_t> encodeReply(Reply reply, const Address& bound);

/*
 * UDP request header: +----+------+------+----------+----------+----------+
 *                     |RSV | FRAG | ATYP | DST.ADDR | DST.PORT |   DATA   |
 *                     +----+------+------+----------+----------+----------+
 *                     | 2  |  1   |  1   | Variable |    2     | Variable |
 * A datagram is whole: NeedMore is never returned; a short datagram is Invalid (BadLength).
 * `consumed` is the header length; the payload is the rest. RSV is not checked; FRAG is returned
 * and the caller drops FRAG != 0 (this gateway does not reassemble).
 */
struct UdpHeader {
  std::uint8_t fragment = 0;
  Address address;
  friend bool operator==(const UdpHeader&, const UdpHeader&) = default;
};
ParseResult<UdpHeader> parseUdpHeader(Bytes datagram);
// RSV=0, FRAG=0, then the address; empty when !address.isEncodable().
std::vector<std::uint8_t> encodeUdpHeader(const Address& address);

}  // namespace fwgate::protocol::socks5
