#include "protocol/socks4.hpp"

#include <algorithm>
#include <utility>

namespace fwgate::protocol::socks4 {
namespace {

constexpr std::size_t kFixedLength = 8;  // VN CD DSTPORT DSTIP

template <typename T>
ParseResult<T> invalid(ParseError error) {
  ParseResult<T> result;
  result.status = ParseStatus::Invalid;
  result.error = error;
  return result;
}

// A NUL-terminated field starting at `from`, at most `maxLength` bytes before its NUL.
struct Field {
  ParseStatus status = ParseStatus::NeedMore;
  std::string text;
  std::size_t end = 0;  // one past the NUL
};

Field scanNulTerminated(Bytes in, std::size_t from, std::size_t maxLength) {
  Field field;
  const Bytes rest = in.subspan(from);
  const Bytes window = rest.first(std::min(rest.size(), maxLength + 1));
  const auto nul = std::find(window.begin(), window.end(), std::uint8_t{0});
  if (nul != window.end()) {
    field.status = ParseStatus::Complete;
    field.text.assign(window.begin(), nul);
    field.end = from + field.text.size() + 1;
  } else if (rest.size() > maxLength) {
    field.status = ParseStatus::Invalid;
  }
  return field;
}

// DSTIP 0.0.0.x with x != 0 announces a 4a domain after USERID.
bool isSocks4aMarker(Bytes ip) {
  return ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && ip[3] != 0;
}

bool fits(const std::string& field, std::size_t maxLength) {
  return field.size() <= maxLength && field.find('\0') == std::string::npos;
}

}  // namespace

ParseResult<Request> parseRequest(Bytes in) {
  if (in.empty()) return {};
  if (in[0] != kVersion) return invalid<Request>(ParseError::BadVersion);
  if (in.size() < kFixedLength) return {};

  const std::uint16_t port = static_cast<std::uint16_t>((in[2] << 8) | in[3]);
  const Bytes ip = in.subspan(4, 4);

  Field userId = scanNulTerminated(in, kFixedLength, kMaxUserIdLength);
  if (userId.status == ParseStatus::Invalid) return invalid<Request>(ParseError::BadLength);
  if (userId.status == ParseStatus::NeedMore) return {};

  ParseResult<Request> result;
  Request& request = result.value;
  request.command = in[1];
  request.userId = std::move(userId.text);
  std::size_t end = userId.end;

  if (isSocks4aMarker(ip)) {
    Field domain = scanNulTerminated(in, end, kMaxDomainLength);
    if (domain.status == ParseStatus::Invalid) return invalid<Request>(ParseError::BadLength);
    if (domain.status == ParseStatus::NeedMore) return {};
    if (domain.text.empty()) return invalid<Request>(ParseError::BadLength);
    request.destination = Address::name(std::move(domain.text), port);
    request.isSocks4a = true;
    end = domain.end;
  } else {
    request.destination = Address::ipv4({ip[0], ip[1], ip[2], ip[3]}, port);
  }

  result.status = ParseStatus::Complete;
  result.consumed = end;
  return result;
}

std::vector<std::uint8_t> encodeRequest(const Request& request) {
  const Address& destination = request.destination;
  if (destination.type == AddressType::IPv6 || !fits(request.userId, kMaxUserIdLength)) return {};
  const bool socks4a = destination.type == AddressType::Domain;
  if (!socks4a && isSocks4aMarker(Bytes(destination.ip).first(4))) return {};
  if (socks4a && (destination.domain.empty() || !fits(destination.domain, kMaxDomainLength))) {
    return {};
  }

  std::vector<std::uint8_t> out{kVersion, request.command,
                                static_cast<std::uint8_t>(destination.port >> 8),
                                static_cast<std::uint8_t>(destination.port & 0xFF)};
  if (socks4a) {
    out.insert(out.end(), {0, 0, 0, 1});
  } else {
    out.insert(out.end(), destination.ip.begin(), destination.ip.begin() + 4);
  }
  out.insert(out.end(), request.userId.begin(), request.userId.end());
  out.push_back(0);
  if (socks4a) {
    out.insert(out.end(), destination.domain.begin(), destination.domain.end());
    out.push_back(0);
  }
  return out;
}

std::array<std::uint8_t, 8> encodeReply(Reply reply, std::array<std::uint8_t, 4> ip,
                                        std::uint16_t port) {
  return {0x00,
          static_cast<std::uint8_t>(reply),
          static_cast<std::uint8_t>(port >> 8),
          static_cast<std::uint8_t>(port & 0xFF),
          ip[0],
          ip[1],
          ip[2],
          ip[3]};
}

}  // namespace fwgate::protocol::socks4
